//! Verifying an access token performs zero heap allocations (within the
//! default size limit): a counting global allocator watches this thread
//! while `verify` runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use wsauth_core::{
    Algorithm, ClaimValue, InlineStr, JwtSettings, MintRequest, PkKind, SecretKey, TokenVerifier,
    UserKey,
};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc() {
    // `try_with`: the slot may be gone while the thread shuts down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while `f` runs.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    let after = ALLOCS.with(Cell::get);
    (after - before, r)
}

const NOW: i64 = 1_750_000_000;

fn verifier(settings: JwtSettings) -> TokenVerifier {
    TokenVerifier::new(
        settings,
        SecretKey::from("alloc-free-test-secret-0123456789abcdef"),
    )
    .expect("key accepted")
}

#[test]
fn the_counter_sees_allocations() {
    let (n, v) = allocations(|| vec![1u8; 64]);
    assert!(n >= 1, "the counting allocator must notice a Vec");
    drop(v);
}

#[test]
fn verify_allocates_nothing() {
    let configs = [
        JwtSettings::default(),
        JwtSettings {
            algorithm: Algorithm::Hs384,
            ..JwtSettings::default()
        },
        JwtSettings {
            algorithm: Algorithm::Hs512,
            audience: Some("aud-1".into()),
            issuer: Some("https://issuer.example".into()),
            leeway: 30,
            ..JwtSettings::default()
        },
    ];
    for cfg in configs {
        let v = verifier(cfg);
        let extra = [
            ("is_staff", ClaimValue::Bool(true)),
            (
                "name",
                ClaimValue::Str(InlineStr::new("Zo\u{eb} \u{1F600}").expect("fits")),
            ),
            ("score", ClaimValue::Float(2.5)),
            (
                "hash_password",
                ClaimValue::Str(InlineStr::new("ABCDEF0123456789").expect("fits")),
            ),
        ];
        let req = MintRequest {
            user_id: ClaimValue::Str(InlineStr::new("42").expect("fits")),
            lifetime: 300,
            jti: "0123456789abcdef0123456789abcdef",
            extra: &extra,
        };
        let token = v.mint(&req, NOW);

        let (n, result) =
            allocations(|| v.verify(&token, NOW + 10).map(|t| (t.exp(), t.is_staff())));
        assert_eq!(result, Ok((NOW + 300, true)));
        assert_eq!(n, 0, "verify of a valid token allocated {n} times");

        let verified = v.verify(&token, NOW).expect("valid");
        let (n, key) = allocations(|| verified.user_key(PkKind::Int));
        assert_eq!(key, Ok(UserKey::Int(42)));
        assert_eq!(n, 0, "user_key allocated");
        let (n, claim) = allocations(|| verified.claim("score"));
        assert_eq!(claim, Some(ClaimValue::Float(2.5)));
        assert_eq!(n, 0, "claim allocated");

        // Rejections do not allocate either.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'Q' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        let garbage = "not.a.token";
        for (bad, when) in [
            (&token[..], NOW + 10_000),
            (&tampered[..], NOW),
            (garbage, NOW),
        ] {
            let (n, result) = allocations(|| v.verify(bad, when).map(|_| ()));
            assert!(result.is_err());
            assert_eq!(n, 0, "a rejection allocated {n} times");
        }
    }

    // A long user id (beyond InlineStr) is read exactly, still without the heap.
    let v = verifier(JwtSettings::default());
    let payload = format!(
        r#"{{"token_type":"access","exp":{},"iat":{NOW},"jti":"j","user_id":"{}7"}}"#,
        NOW + 60,
        " ".repeat(400)
    );
    let token = sign_hs256(&payload, b"alloc-free-test-secret-0123456789abcdef");
    let verified = v.verify(&token, NOW).expect("valid");
    assert_eq!(verified.user_id(), Some(&ClaimValue::Other));
    let (n, key) = allocations(|| verified.user_key(PkKind::Int));
    assert_eq!((n, key), (0, Ok(UserKey::Int(7))));
}

fn sign_hs256(payload: &str, key: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, KeyInit, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!(
        "{}.{}",
        b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(payload)
    );
    let mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    let sig = mac.chain_update(input.as_bytes()).finalize().into_bytes();
    format!("{input}.{}", b64.encode(sig))
}
