#![no_main]
//! Round trip: a token minted by `TokenVerifier::mint` verifies at any moment
//! of its lifetime with the claims it was minted with, and any single-byte
//! change to it is rejected (every change alters either the signed bytes or
//! the signature's canonical base64url text).

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsauth_core::{ClaimValue, InlineStr, MintRequest};
use wsauth_fuzz::{profile_settings, verifier, NOW};

#[derive(Arbitrary, Debug)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    profile: u8,
    user_id: Value,
    lifetime: u32,
    jti: [u8; 16],
    extra: Vec<(String, Value)>,
    verify_at: u32,
    change_at: u16,
    change_to: u8,
}

fn claim(v: &Value) -> Option<ClaimValue> {
    Some(match v {
        Value::Null => ClaimValue::Null,
        Value::Bool(b) => ClaimValue::Bool(*b),
        Value::Int(i) => ClaimValue::Int(*i),
        // NaN is written as `NaN` (Python does the same) and never equals itself.
        Value::Float(f) if f.is_nan() => return None,
        Value::Float(f) => ClaimValue::Float(*f),
        Value::Str(s) => ClaimValue::Str(InlineStr::new(s)?),
    })
}

/// Python truthiness, as SimpleJWT's `TokenUser.is_staff` sees the claim.
fn truthy(v: &ClaimValue) -> bool {
    match v {
        ClaimValue::Null => false,
        ClaimValue::Bool(b) => *b,
        ClaimValue::Int(i) => *i != 0,
        ClaimValue::Float(f) => *f != 0.0,
        ClaimValue::Str(s) => !s.as_str().is_empty(),
        _ => true,
    }
}

fuzz_target!(|input: Input| {
    let profile = usize::from(input.profile);
    let settings = profile_settings(profile);
    let v = verifier(profile);
    let Some(user_id) = claim(&input.user_id) else {
        return;
    };
    // Claims the mint request or the settings own, or that PyJWT types.
    let reserved = [
        settings.token_type_claim.as_str(),
        settings.user_id_claim.as_str(),
        settings.jti_claim.as_str(),
        "exp",
        "iat",
        "nbf",
        "jti",
        "sub",
        "aud",
        "iss",
    ];
    let mut extra = Vec::new();
    for (name, value) in input.extra.iter().take(8) {
        if reserved.contains(&name.as_str()) {
            continue;
        }
        let Some(c) = claim(value) else { return };
        extra.push((name.as_str(), c));
    }
    let lifetime = 1 + i64::from(input.lifetime % (30 * 86_400));
    let jti: String = input.jti.iter().map(|b| format!("{b:02x}")).collect();
    let req = MintRequest {
        user_id,
        lifetime,
        jti: &jti,
        extra: &extra,
    };
    let token = v.mint(&req, NOW);
    if token.len() > settings.max_token_bytes {
        return;
    }

    let at = NOW + i64::from(input.verify_at) % lifetime;
    let t = match v.verify(&token, at) {
        Ok(t) => t,
        Err(e) => panic!(
            "minted token rejected at now+{}: {} ({})",
            at - NOW,
            e.kind(),
            e.message()
        ),
    };
    assert_eq!(t.exp(), NOW + lifetime);
    assert_eq!(t.iat(), Some(NOW));
    assert_eq!(t.jti(), Some(jti.as_str()));
    assert_eq!(t.user_id(), Some(&user_id));
    // The last occurrence of a repeated extra claim wins, as in a Python dict.
    let last = |n: &str| extra.iter().rev().find(|(k, _)| *k == n).map(|(_, c)| *c);
    assert_eq!(t.is_staff(), last("is_staff").is_some_and(|c| truthy(&c)));
    assert_eq!(
        t.is_superuser(),
        last("is_superuser").is_some_and(|c| truthy(&c))
    );

    // Any single-byte change (to printable ASCII: the verifier takes text) is rejected.
    let mut bytes = token.clone().into_bytes();
    let i = usize::from(input.change_at) % bytes.len();
    let to = 0x20 + input.change_to % 0x5f;
    if bytes[i] == to {
        return;
    }
    bytes[i] = to;
    let changed = String::from_utf8(bytes).expect("ASCII");
    assert!(
        v.verify(&changed, at).is_err(),
        "a token changed at byte {i} was accepted: {changed}"
    );
});
