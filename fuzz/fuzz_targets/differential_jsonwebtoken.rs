#![no_main]
//! Differential: for HS256/384/512 tokens, wsauth and the `jsonwebtoken`
//! crate (configured as `wsauth_benches::Reference`, shared as `wsauth_fuzz::fixtures`: PyJWT's checks, plus
//! the SimpleJWT rules `jsonwebtoken` lacks) must both accept or both reject,
//! and agree on `exp` and `jti` when they accept.
//!
//! Inputs are structured (header members, claims, key, leeway, one optional
//! byte change) so that none of the documented differences can arise; each
//! is demonstrated by a row of `benches/tests/differential.rs`:
//!
//!  1. `exp` boundary: PyJWT expires at `exp <= now - leeway`, jsonwebtoken
//!     at `exp < now - leeway`. Here: `exp == now - leeway` is skipped.
//!  2. Fractional `exp` / `nbf`: `int()` truncates, jsonwebtoken rounds.
//!     Here: fractional time claims are skipped.
//!  3. Base64 padding: PyJWT accepts some `=`, jsonwebtoken none.
//!     Here: tokens containing `=` are skipped.
//!  4. `iat`: PyJWT checks `int(iat)` and `iat <= now + leeway`, jsonwebtoken
//!     ignores it. Here: the reference checks it; a string `iat` (Python's
//!     `int()` of text) is left undecided.
//!  5. `NaN` / `Infinity` / overflowing literals: Python reads them, serde_json
//!     does not. Here: payloads are serde_json output.
//!  6. Duplicate keys: Python keeps the last, jsonwebtoken refuses a duplicated
//!     registered claim. Here: claim names are unique.
//!  7. SimpleJWT requires a `jti` and `token_type == "access"`.
//!     Here: checked by the reference.
//!  8. PyJWT requires `jti` and `sub` to be strings. Here: checked by the reference.
//!  9. `aud` without AUDIENCE: accepted by SimpleJWT, refused by jsonwebtoken's
//!     default. Here: `validate_aud = false`.
//! 10. `nbf`: unchecked by jsonwebtoken's default; a negative, bool or string
//!     `nbf` passes Python's `int()` but not jsonwebtoken's u64.
//!     Here: `validate_nbf = true`, and such an `nbf` is skipped.
//! 11. Leeway: jsonwebtoken defaults to 60 s. Here: set to SimpleJWT's.
//! 12. Header member types: PyJWT ignores `typ` and unknown members,
//!     jsonwebtoken types its registered members. Here: `typ` is a string and
//!     extra members never use a registered name.
//! 13. `crit` / `b64`: enforced by PyJWT, ignored by jsonwebtoken.
//!     Here: never generated.
//! 14. `exp` in year 10000 or later: SimpleJWT crashes (wsauth rejects),
//!     jsonwebtoken accepts. Here: skipped.
//! 15. wsauth's size limit (8 KiB). Here: larger tokens are skipped.
//! 16. Text encodings (BOM, surrogates): Python passes them, serde_json does
//!     not. Here: payloads are UTF-8 JSON. (UTF-16/32 payloads: PyJWT accepts,
//!     wsauth and jsonwebtoken both refuse; see the test file.)
//! 17. Keys: PyJWT refuses empty and PEM/SSH-looking keys. Here: fixed keys.

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};
use wsauth_core::{JwtSettings, SecretKey, TokenVerifier, jwt::DEFAULT_MAX_TOKEN_BYTES};
use wsauth_fuzz::fixtures::{python_int, with_stable_clock, Algorithm, RefDecision, Reference};
use wsauth_fuzz::{sign_token, OTHER_SECRET, SECRET};

#[derive(Arbitrary, Debug)]
enum HeaderAlg {
    Hs256,
    Hs384,
    Hs512,
    None,
    Lowercase,
    Missing,
    Number,
}

#[derive(Arbitrary, Debug)]
enum Name {
    TokenType,
    Exp,
    Iat,
    Nbf,
    Jti,
    Sub,
    UserId,
    Aud,
    Iss,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Val {
    /// `now + offset`: where the time decisions happen.
    Offset(i16),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Access,
    Bool(bool),
    Null,
    List(Vec<String>),
    Object(Vec<(String, i32)>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    configured: u8,
    alg: HeaderAlg,
    typ: Option<String>,
    kid: Option<Result<String, i64>>,
    header_extra: Vec<(String, Option<i32>)>,
    /// Start from the claims SimpleJWT writes (then `claims` override / add).
    simplejwt_base: bool,
    claims: Vec<(Name, Val)>,
    wrong_key: bool,
    leeway: u8,
    change: Option<(u16, u8)>,
}

/// Header names jsonwebtoken types (or PyJWT enforces): never used for extras.
const REGISTERED_HEADER: &[&str] = &[
    "alg", "typ", "kid", "cty", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit", "enc",
    "zip", "url", "nonce", "b64",
];

fn value(v: &Val, now: i64) -> Value {
    match v {
        Val::Offset(o) => Value::from(now + i64::from(*o)),
        Val::Int(i) => Value::from(*i),
        Val::UInt(u) => Value::from(*u),
        Val::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Val::Str(s) => Value::from(s.as_str()),
        Val::Access => Value::from("access"),
        Val::Bool(b) => Value::from(*b),
        Val::Null => Value::Null,
        Val::List(l) => Value::from(l.clone()),
        Val::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), Value::from(*v)))
                .collect(),
        ),
    }
}

fn name(n: &Name) -> &str {
    match n {
        Name::TokenType => "token_type",
        Name::Exp => "exp",
        Name::Iat => "iat",
        Name::Nbf => "nbf",
        Name::Jti => "jti",
        Name::Sub => "sub",
        Name::UserId => "user_id",
        Name::Aud => "aud",
        Name::Iss => "iss",
        Name::Other(s) => s,
    }
}

/// True when a documented difference could decide this payload (see the list above).
fn outside_common_ground(claims: &Map<String, Value>, now: i64, leeway: i64) -> bool {
    let time = |k: &str| claims.get(k);
    let fractional =
        |v: &Value| v.as_f64().is_some_and(|f| f.fract() != 0.0) && !v.is_i64() && !v.is_u64();
    if let Some(exp) = time("exp") {
        if fractional(exp) {
            return true; // 2
        }
        if let Some(e) = python_int(exp).filter(|_| exp.is_number()) {
            if e == i128::from(now - leeway) || e >= 253_402_300_800 {
                return true; // 1, 14
            }
        }
    }
    if let Some(nbf) = time("nbf") {
        if fractional(nbf) || nbf.is_boolean() || nbf.is_string() {
            return true; // 2, 10
        }
        if python_int(nbf).is_some_and(|n| n < 0) {
            return true; // 10
        }
    }
    false
}

fuzz_target!(|input: Input| {
    if input.claims.len() > 16 || input.header_extra.len() > 8 {
        return;
    }
    let configured = match input.configured % 3 {
        0 => Algorithm::Hs256,
        1 => Algorithm::Hs384,
        _ => Algorithm::Hs512,
    };
    let leeway = u32::from(input.leeway);
    let key = if input.wrong_key {
        OTHER_SECRET
    } else {
        SECRET
    };
    let settings = JwtSettings {
        algorithm: configured,
        leeway,
        ..JwtSettings::default()
    };
    let wsauth = TokenVerifier::new(settings, SecretKey::from(SECRET)).expect("valid key");
    let reference = Reference::new(configured, SECRET.as_bytes(), leeway);

    with_stable_clock(|now| {
        let mut header = Map::new();
        let signing_alg = match input.alg {
            HeaderAlg::Hs256 => Algorithm::Hs256,
            HeaderAlg::Hs384 => Algorithm::Hs384,
            HeaderAlg::Hs512 => Algorithm::Hs512,
            _ => configured,
        };
        for (k, v) in &input.header_extra {
            if !REGISTERED_HEADER.contains(&k.as_str()) {
                header.insert(k.clone(), v.map_or(Value::Null, Value::from));
            }
        }
        match input.alg {
            HeaderAlg::None => header.insert("alg".into(), "none".into()),
            HeaderAlg::Lowercase => {
                header.insert("alg".into(), signing_alg.as_str().to_lowercase().into())
            }
            HeaderAlg::Missing => None,
            HeaderAlg::Number => header.insert("alg".into(), 256.into()),
            _ => header.insert("alg".into(), signing_alg.as_str().into()),
        };
        if let Some(typ) = &input.typ {
            header.insert("typ".into(), typ.as_str().into());
        }
        match &input.kid {
            Some(Ok(s)) => header.insert("kid".into(), s.as_str().into()),
            Some(Err(i)) => header.insert("kid".into(), (*i).into()),
            None => None,
        };
        let mut claims = Map::new();
        if input.simplejwt_base {
            claims.insert("token_type".into(), "access".into());
            claims.insert("exp".into(), (now + 300).into());
            claims.insert("iat".into(), now.into());
            claims.insert("jti".into(), "5deaf7cb90ae4aa19d99bbc485d1d10b".into());
            claims.insert("user_id".into(), "1".into());
        }
        for (n, v) in &input.claims {
            claims.insert(name(n).to_owned(), value(v, now));
        }
        if outside_common_ground(&claims, now, i64::from(leeway)) {
            return;
        }
        let header = serde_json::to_vec(&header).expect("serialisable");
        let payload = serde_json::to_vec(&claims).expect("serialisable");
        let mut token = sign_token(signing_alg, key.as_bytes(), &header, &payload);
        if let Some((at, byte)) = input.change {
            let at = usize::from(at) % token.len();
            // Printable ASCII only: the verifier takes text.
            let byte = 0x20 + byte % 0x5f;
            let mut bytes = token.into_bytes();
            bytes[at] = byte;
            token = String::from_utf8(bytes).expect("ASCII");
        }
        if token.contains('=') || token.len() > DEFAULT_MAX_TOKEN_BYTES {
            return; // 3, 15
        }

        let ours = wsauth.verify(&token, now);
        match (reference.decide(&token, now), ours) {
            (RefDecision::Undecided, _) => {}
            (RefDecision::Reject, Err(_)) => {}
            (RefDecision::Accept(theirs), Ok(t)) => {
                let exp = theirs.get("exp").and_then(python_int);
                assert_eq!(exp, Some(i128::from(t.exp())), "exp differs for {token}");
                let jti = theirs.get("jti").and_then(Value::as_str);
                if jti.is_some_and(|j| j.len() <= 256) {
                    assert_eq!(t.jti(), jti, "jti differs for {token}");
                }
            }
            (RefDecision::Accept(_), Err(e)) => {
                panic!(
                    "jsonwebtoken+SimpleJWT accept, wsauth rejects ({}): {token}",
                    e.kind()
                )
            }
            (RefDecision::Reject, Ok(_)) => {
                panic!("jsonwebtoken+SimpleJWT reject, wsauth accepts: {token}")
            }
        }
    });
});
