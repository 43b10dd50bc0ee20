//! Properties of minting and verifying: round trips, tamper detection, and
//! no panics on any input (including the JSON scanner behind a valid signature).

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use wsauth_core::{
    Algorithm, ClaimValue, ErrorKind, InlineStr, JwtSettings, MintRequest, SecretKey, TokenVerifier,
};

const KEY: &str = "property-test-secret-key-0123456789";

fn verifier(alg: Algorithm) -> TokenVerifier {
    let settings = JwtSettings {
        algorithm: alg,
        ..JwtSettings::default()
    };
    TokenVerifier::new(settings, SecretKey::from(KEY)).expect("key accepted")
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::Hs256),
        Just(Algorithm::Hs384),
        Just(Algorithm::Hs512)
    ]
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64 / 8.0),
    ]
}

fn claim_value() -> impl Strategy<Value = ClaimValue> {
    prop_oneof![
        Just(ClaimValue::Null),
        any::<bool>().prop_map(ClaimValue::Bool),
        any::<i64>().prop_map(ClaimValue::Int),
        finite_f64().prop_map(ClaimValue::Float),
        "\\PC{0,24}".prop_map(|s| ClaimValue::Str(InlineStr::new(&s).expect("short"))),
        "[\\u{0}-\\u{7f}]{0,24}".prop_map(|s| ClaimValue::Str(InlineStr::new(&s).expect("short"))),
    ]
}

/// Equality that tells `0.0` from `-0.0` (Python's repr keeps the sign).
fn same(a: &ClaimValue, b: &ClaimValue) -> bool {
    match (a, b) {
        (ClaimValue::Float(x), ClaimValue::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token over arbitrary header and payload bytes, correctly signed with HS256.
fn signed(header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let mac =
        <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(KEY.as_bytes()).expect("any key length");
    format!(
        "{input}.{}",
        b64(&mac.chain_update(input.as_bytes()).finalize().into_bytes())
    )
}

/// JSON-ish text: valid JSON with Python's extensions most of the time.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("NaN".to_string()),
        Just("-Infinity".to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        "-?[1-9][0-9]{18,40}",
        finite_f64().prop_map(|f| format!("{f:e}")),
        "\\PC{0,12}".prop_map(|s| serde_json::to_string(&s).expect("string")),
        Just("\"\\ud800\\udc00\\ud83d\"".to_string()),
        Just("\"\\u0000\\n\\\"\"".to_string()),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z]{0,3}", inner), 0..6).prop_map(|v| {
                let members: Vec<String> = v
                    .into_iter()
                    .map(|(k, val)| format!("\"{k}\" : {val}"))
                    .collect();
                format!("{{ {} }}", members.join(" ,\n"))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mint_then_verify_round_trips(
        alg in algorithm(),
        user_id in claim_value(),
        lifetime in 1i64..10_000_000,
        now in 0i64..4_000_000_000,
        jti in "[0-9a-f]{32}",
        extra in prop::collection::vec(("x_[a-z0-9_]{1,10}", claim_value()), 0..5),
    ) {
        let v = verifier(alg);
        let extra_refs: Vec<(&str, ClaimValue)> = extra.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        let req = MintRequest { user_id, lifetime, jti: &jti, extra: &extra_refs };
        let token = v.try_mint(&req, now).expect("every generated value is writable");
        let t = v.verify(&token, now).expect("a fresh token verifies");
        prop_assert_eq!(t.exp(), now + lifetime);
        prop_assert_eq!(t.iat(), Some(now));
        prop_assert_eq!(t.jti(), Some(jti.as_str()));
        prop_assert!(same(t.user_id().expect("user id present"), &user_id));
        for (name, _) in &extra {
            // A repeated name keeps the last value, as a Python dict does.
            let want = extra.iter().rev().find(|(k, _)| k == name).map(|(_, c)| *c).expect("present");
            let got = t.claim(name).expect("claim present");
            prop_assert!(same(&got, &want), "{} = {:?}, want {:?}", name, got, want);
        }
        // Expiry boundary: exp == now is expired, one second earlier is not.
        prop_assert_eq!(v.verify(&token, now + lifetime).map(|_| ()).map_err(|e| e.kind()), Err(ErrorKind::Expired));
        prop_assert!(v.verify(&token, now + lifetime - 1).is_ok());
        // The strict payload dump is JSON that serde_json reads.
        let json: serde_json::Value = serde_json::from_str(&t.payload_json(true)).expect("strict JSON");
        prop_assert_eq!(json["exp"].as_i64(), Some(now + lifetime));
    }

    #[test]
    fn any_single_byte_change_is_rejected(
        alg in algorithm(),
        uid in any::<i64>(),
        idx in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let v = verifier(alg);
        let req = MintRequest {
            user_id: ClaimValue::Int(uid),
            lifetime: 300,
            jti: "0123456789abcdef0123456789abcdef",
            extra: &[("is_staff", ClaimValue::Bool(true))],
        };
        let token = v.mint(&req, 1_750_000_000);
        prop_assert!(v.verify(&token, 1_750_000_000).is_ok());
        let mut bytes = token.into_bytes();
        let i = idx.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        prop_assert!(v.verify_bytes(&bytes, 1_750_000_000).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), now in any::<i64>()) {
        let v = verifier(Algorithm::Hs256);
        let _ = v.verify_bytes(&bytes, now);
    }

    #[test]
    fn token_shaped_text_never_panics(text in "[A-Za-z0-9_=.-]{0,300}", now in any::<i64>()) {
        let v = verifier(Algorithm::Hs256);
        let _ = v.verify(&text, now);
    }

    #[test]
    fn signed_arbitrary_payload_bytes_never_panic(
        header in prop_oneof![
            Just(br#"{"alg":"HS256","typ":"JWT"}"#.to_vec()),
            prop::collection::vec(any::<u8>(), 0..64),
        ],
        payload in prop::collection::vec(any::<u8>(), 0..400),
        now in any::<i64>(),
    ) {
        let v = verifier(Algorithm::Hs256);
        let token = signed(&header, &payload);
        if let Ok(t) = v.verify(&token, now) {
            let _ = t.payload_json(false);
            let _ = t.user_key(wsauth_core::PkKind::Uuid);
        }
    }

    #[test]
    fn signed_json_payloads_never_panic_and_dump_strictly(
        value in json_value(),
        exp in prop_oneof![
            Just("1750000300".to_string()),
            json_value(),
        ],
        user_id in json_value(),
        now in prop_oneof![Just(1_750_000_000i64), any::<i64>()],
    ) {
        let v = verifier(Algorithm::Hs256);
        let payload = format!(
            r#"{{"token_type":"access","exp":{exp},"iat":{value},"jti":"j","user_id":{user_id},"x":{value},"x":{value}}}"#
        );
        let token = signed(br#"{"alg":"HS256","typ":"JWT"}"#, payload.as_bytes());
        match v.verify(&token, now) {
            Ok(t) => {
                let strict = t.payload_json(true);
                let parsed: Result<serde_json::Value, _> = serde_json::from_str(&strict);
                prop_assert!(parsed.is_ok(), "strict dump is not JSON: {}", strict);
                for pk in [wsauth_core::PkKind::Int, wsauth_core::PkKind::Uuid, wsauth_core::PkKind::Str] {
                    let _ = t.user_key(pk);
                }
            }
            Err(e) => prop_assert!(!e.message().is_empty()),
        }
    }

    #[test]
    fn size_limit_comes_first(len in 8193usize..20_000) {
        let v = verifier(Algorithm::Hs256);
        let text = "a".repeat(len);
        prop_assert_eq!(v.verify(&text, 0).map(|_| ()).map_err(|e| e.kind()), Err(ErrorKind::TooLarge));
    }
}
