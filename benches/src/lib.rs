//! Shared fixtures for the wsauth benchmarks, the differential tests and the
//! fuzz targets.
//!
//! Tokens are built here exactly as PyJWT writes them for SimpleJWT (header
//! `{"alg":"HS256","typ":"JWT"}`, payload `token_type, exp, iat, jti, user_id`
//! in that order, unpadded base64url), signed with an independent HMAC so a
//! bug in the verifier cannot hide in the fixture.
//!
//! [`Reference`] is the comparison oracle for the differential checks: the
//! `jsonwebtoken` crate configured to check what PyJWT checks, plus the few
//! SimpleJWT rules `jsonwebtoken` has no notion of. The differences that
//! remain are listed (and each one is demonstrated) in `tests/differential.rs`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};
use std::time::{SystemTime, UNIX_EPOCH};

pub use wsauth_core::Algorithm;

/// The signing key used throughout (the vectors' `SECRET_KEY`).
pub const SECRET: &str = "vectors-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ";

/// A key that is configured nowhere.
pub const OTHER_SECRET: &str = "attacker-chosen-key-that-is-not-configured-anywhere-0000000000000";

/// A `uuid4().hex` as SimpleJWT writes it.
pub const JTI: &str = "5deaf7cb90ae4aa19d99bbc485d1d10b";

/// The header PyJWT writes for SimpleJWT with `ALGORITHM = "HS256"`.
pub const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The current time in whole Unix seconds (the clock `jsonwebtoken` reads).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Runs `f(now)` until the wall clock did not tick over a second boundary
/// during the call, so that a decision made with `now` and one made by a
/// library reading the clock itself (such as `jsonwebtoken`) saw the same second.
pub fn with_stable_clock<T>(mut f: impl FnMut(i64) -> T) -> T {
    loop {
        let before = unix_now();
        let out = f(before);
        if unix_now() == before {
            return out;
        }
    }
}

/// Unpadded base64url, as PyJWT's `base64url_encode`.
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Strict unpadded base64url decoding (`None` on any error).
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// HMAC of `msg` under `key` with the hash `alg` names.
pub fn hmac_sign(alg: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }
    match alg {
        Algorithm::Hs256 => run::<Hmac<Sha256>>(key, msg),
        Algorithm::Hs384 => run::<Hmac<Sha384>>(key, msg),
        Algorithm::Hs512 => run::<Hmac<Sha512>>(key, msg),
    }
}

/// `b64(header) "." b64(payload) "." b64(HMAC(signing input))` from raw
/// header and payload bytes (which need not be JSON, nor UTF-8).
pub fn sign_token(alg: Algorithm, key: &[u8], header: &[u8], payload: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64url(header), b64url(payload));
    let sig = hmac_sign(alg, key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&sig))
}

/// Signs an already-encoded signing input (`header_b64 "." payload_b64`),
/// for tokens whose segments are deliberately unusual (padding, say).
pub fn sign_segments(alg: Algorithm, key: &[u8], signing_input: &str) -> String {
    let sig = hmac_sign(alg, key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&sig))
}

/// The payload SimpleJWT writes for an access token issued at `now`:
/// `{"token_type":"access","exp":…,"iat":…,"jti":…,"user_id":…}`.
/// `user_id_json` is the claim's JSON text (`"\"1\""` for SimpleJWT 5.5).
pub fn simplejwt_payload(now: i64, lifetime: i64, jti: &str, user_id_json: &str) -> String {
    format!(
        r#"{{"token_type":"access","exp":{},"iat":{now},"jti":"{jti}","user_id":{user_id_json}}}"#,
        now.saturating_add(lifetime)
    )
}

/// A SimpleJWT-shaped HS256 access token for user `"1"`, issued at `now`.
pub fn simplejwt_token(key: &[u8], now: i64, lifetime: i64) -> String {
    let payload = simplejwt_payload(now, lifetime, JTI, r#""1""#);
    sign_token(
        Algorithm::Hs256,
        key,
        HS256_HEADER.as_bytes(),
        payload.as_bytes(),
    )
}

/// `token` with the last character of its signature replaced so that the
/// signature still decodes canonically but to different bytes: the verifier
/// has to compute the HMAC to reject it (a plain `Invalid crypto padding`
/// would measure the base64 decoder instead).
pub fn tamper_signature(token: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = token.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        if let Some(pos) = ALPHABET.iter().position(|c| c == last) {
            // Flip the lowest bit that carries data in the final character of
            // a 43- or 86-character segment (its two low bits are padding).
            let flipped = ALPHABET.get(pos ^ 0b100).copied().unwrap_or(b'A');
            *last = flipped;
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// Claims of a SimpleJWT access token, as a `jsonwebtoken` user would declare them.
#[derive(Debug, Clone, Deserialize)]
pub struct SimpleJwtClaims {
    /// `token_type`.
    pub token_type: String,
    /// `exp`.
    pub exp: u64,
    /// `iat`.
    pub iat: u64,
    /// `jti`.
    pub jti: String,
    /// `user_id` (a string in SimpleJWT 5.5).
    pub user_id: String,
}

/// A `jsonwebtoken` validation that checks what PyJWT checks for SimpleJWT:
/// the one configured algorithm, `exp` required, `nbf` checked when present,
/// no audience check unless one is configured (SimpleJWT passes
/// `verify_aud=False` when `AUDIENCE` is `None`), and SimpleJWT's leeway
/// (`jsonwebtoken` defaults to 60 seconds).
pub fn jsonwebtoken_validation(alg: Algorithm, leeway: u32) -> jsonwebtoken::Validation {
    let alg = match alg {
        Algorithm::Hs256 => jsonwebtoken::Algorithm::HS256,
        Algorithm::Hs384 => jsonwebtoken::Algorithm::HS384,
        Algorithm::Hs512 => jsonwebtoken::Algorithm::HS512,
    };
    let mut v = jsonwebtoken::Validation::new(alg);
    v.leeway = u64::from(leeway);
    v.validate_nbf = true;
    v.validate_aud = false;
    v
}

/// What the reference decided.
#[derive(Debug, Clone, PartialEq)]
pub enum RefDecision {
    /// Accepted; the payload as `jsonwebtoken` parsed it.
    Accept(Value),
    /// Rejected.
    Reject,
    /// The input lies where the reference cannot say what SimpleJWT decides
    /// (Python's `int()` of a string `iat`): compare nothing.
    Undecided,
}

/// The differential reference: `jsonwebtoken` (the checks PyJWT shares with
/// it) followed by the SimpleJWT / PyJWT rules it has no notion of.
pub struct Reference {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    leeway: i64,
}

impl Reference {
    /// A reference for tokens signed with `key` under `alg`, with `leeway` seconds.
    pub fn new(alg: Algorithm, key: &[u8], leeway: u32) -> Self {
        Reference {
            key: jsonwebtoken::DecodingKey::from_secret(key),
            validation: jsonwebtoken_validation(alg, leeway),
            leeway: i64::from(leeway),
        }
    }

    /// Decides `token`. `now` must be the wall clock's current second (see
    /// [`with_stable_clock`]), since `jsonwebtoken` reads the clock itself.
    pub fn decide(&self, token: &str, now: i64) -> RefDecision {
        let Ok(data) = jsonwebtoken::decode::<Value>(token, &self.key, &self.validation) else {
            return RefDecision::Reject;
        };
        let claims = data.claims;
        let Some(obj) = claims.as_object() else {
            return RefDecision::Reject;
        };
        // PyJWT: `iat`, when present, must pass `int()` and not be in the future.
        match obj.get("iat") {
            None => {}
            Some(Value::String(_)) => return RefDecision::Undecided,
            Some(v) => match python_int(v) {
                Some(iat) if iat <= i128::from(now) + i128::from(self.leeway) => {}
                _ => return RefDecision::Reject,
            },
        }
        // PyJWT: `sub` and `jti`, when present, must be strings.
        for name in ["sub", "jti"] {
            if obj.get(name).is_some_and(|v| !v.is_string()) {
                return RefDecision::Reject;
            }
        }
        // SimpleJWT `Token.verify`: a jti, and the access token type.
        if !obj.contains_key("jti") {
            return RefDecision::Reject;
        }
        if obj.get("token_type").and_then(Value::as_str) != Some("access") {
            return RefDecision::Reject;
        }
        RefDecision::Accept(claims)
    }
}

/// Python's `int(v)` of a parsed JSON number or bool (floats truncate toward
/// zero; beyond the `i128` range the result saturates); `None` where `int()`
/// raises (null, containers, non-finite floats).
/// Strings are not handled here.
pub fn python_int(v: &Value) -> Option<i128> {
    match v {
        Value::Bool(b) => Some(i128::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Some(i128::from(u))
            } else {
                let f = n.as_f64()?;
                // Saturates beyond i128, where the exact integer cannot
                // matter for a time check.
                f.is_finite().then(|| f.trunc() as i128)
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplejwt_token_matches_the_vectors_byte_for_byte() {
        // Vector `jwt.default.valid.staff.issued` (real SimpleJWT 5.5.1 output).
        let expected = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzUwMDAwMzAwLCJpYXQiOjE3NTAwMDAwMDAsImp0aSI6IjVkZWFmN2NiOTBhZTRhYTE5ZDk5YmJjNDg1ZDFkMTBiIiwidXNlcl9pZCI6IjEifQ.pIqMqSPB6aZXlaX2scyiAkdaS8yZqAaWd-9oWKKq60A";
        assert_eq!(
            simplejwt_token(SECRET.as_bytes(), 1_750_000_000, 300),
            expected
        );
    }

    #[test]
    fn tampered_signature_is_canonical_and_different() {
        let token = simplejwt_token(SECRET.as_bytes(), 1_750_000_000, 300);
        let bad = tamper_signature(&token);
        assert_ne!(bad, token);
        assert_eq!(bad.len(), token.len());
        let sig = |t: &str| b64url_decode(t.rsplit('.').next().unwrap_or("")).unwrap_or_default();
        let (good_sig, bad_sig) = (sig(&token), sig(&bad));
        assert_eq!(bad_sig.len(), 32, "tampered signature must still decode");
        assert_ne!(good_sig, bad_sig);
    }

    #[test]
    fn reference_accepts_a_fresh_token_and_rejects_a_tampered_one() {
        let key = SECRET.as_bytes();
        let reference = Reference::new(Algorithm::Hs256, key, 0);
        with_stable_clock(|now| {
            let token = simplejwt_token(key, now, 300);
            assert!(matches!(
                reference.decide(&token, now),
                RefDecision::Accept(_)
            ));
            assert_eq!(
                reference.decide(&tamper_signature(&token), now),
                RefDecision::Reject
            );
            let expired = simplejwt_token(key, now - 400, 300);
            assert_eq!(reference.decide(&expired, now), RefDecision::Reject);
        });
    }

    #[test]
    fn python_int_truncates_toward_zero() {
        let rows: [(&str, Option<i128>); 8] = [
            ("1750000000", Some(1_750_000_000)),
            ("1750000000.9", Some(1_750_000_000)),
            ("-1.5", Some(-1)),
            ("true", Some(1)),
            ("null", None),
            ("[1]", None),
            ("18446744073709551615", Some(18_446_744_073_709_551_615)),
            ("-1e300", Some(i128::MIN)),
        ];
        for (json, expected) in rows {
            let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
            assert_eq!(python_int(&v), expected, "int({json})");
        }
    }
}
