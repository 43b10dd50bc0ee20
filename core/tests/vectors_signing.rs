//! `django.core.signing` against the vectors the real Django produced:
//! every `salted_hmac`, `b62`, `django_signing_sign`, `django_signing_unsign`
//! and `django_signed_cookie` vector.
//!
//! The sign / unsign vectors record only the call's name or the signed value;
//! the call parameters (salt, separator, algorithm, key, max_age, fallbacks,
//! the object to serialize) are in `tests/data/signing_calls.json`, keyed by
//! vector id. Secrets and `now` come from the vector file, so a freshly
//! generated set (other secrets, other clock) passes unchanged.

use serde_json::Value;
use sha2::Digest;
use std::path::PathBuf;
use wsauth_core::{
    django::signing::b62_decode, django::signing::b62_encode, django::signing::b64_encode,
    django::signing::get_signed_cookie, django::signing::loads, django::signing::salted_hmac,
    django::signing::CookieSigner, django::signing::HashAlg, django::signing::Signer,
    django::signing::SigningError, django::signing::TimestampSigner, SecretKey,
};

fn vectors_path() -> PathBuf {
    if let Some(p) = std::env::var_os("WSAUTH_VECTORS") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        root.join("vectors/vectors.json"),
        root.join("../shared/vectors/vectors.json"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("vectors.json not found: set WSAUTH_VECTORS")
}

fn load_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Vectors {
    doc: Value,
}

impl Vectors {
    fn load() -> Self {
        Vectors {
            doc: load_json(&vectors_path()),
        }
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.doc["vectors"]
            .as_array()
            .expect("vectors array")
            .iter()
            .filter(move |v| v["kind"] == kind)
    }

    /// `meta.secrets` entry whose name starts with `prefix` (names carry notes).
    fn secret(&self, prefix: &str) -> String {
        self.doc["meta"]["secrets"]
            .as_object()
            .expect("meta.secrets")
            .iter()
            .find(|(k, _)| k.split_whitespace().next() == Some(prefix))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("meta.secrets has no {prefix}"))
            .to_owned()
    }
}

fn calls() -> Value {
    load_json(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/signing_calls.json"))
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// A key named in `signing_calls.json`.
fn resolve_key(vectors: &Vectors, vector: &Value, name: &str) -> SecretKey {
    match name {
        "SECRET_KEY" => SecretKey::from(s(&vector["settings"]["SECRET_KEY"])),
        "OLD_SECRET_KEY" => SecretKey::from(vectors.secret("OLD_SECRET_KEY").as_str()),
        literal => SecretKey::from(literal),
    }
}

fn resolve_fallbacks(vector: &Value, spec: &Value) -> Vec<SecretKey> {
    match spec {
        Value::String(name) if name == "SECRET_KEY_FALLBACKS" => vector["settings"]
            ["SECRET_KEY_FALLBACKS"]
            .as_array()
            .expect("SECRET_KEY_FALLBACKS")
            .iter()
            .map(|k| SecretKey::from(s(k)))
            .collect(),
        Value::Array(keys) => keys.iter().map(|k| SecretKey::from(s(k))).collect(),
        other => panic!("bad fallback_keys spec {other}"),
    }
}

fn alg(call: &Value) -> HashAlg {
    match call["algorithm"].as_str() {
        None => HashAlg::Sha256,
        Some(name) => HashAlg::from_name(name).expect("known algorithm"),
    }
}

fn sep(call: &Value) -> char {
    let text = call["sep"].as_str().unwrap_or(":");
    let mut chars = text.chars();
    let c = chars.next().expect("one-character sep");
    assert!(chars.next().is_none(), "one-character sep");
    c
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn salted_hmac_vectors() {
    let vectors = Vectors::load();
    let mut n = 0;
    for v in vectors.of_kind("salted_hmac") {
        let i = &v["inputs"];
        let alg = HashAlg::from_name(s(&i["algorithm"])).expect("algorithm");
        let (key_salt, value, secret) = (s(&i["key_salt"]), s(&i["value"]), s(&i["secret"]));
        let mac = salted_hmac(
            alg,
            key_salt.as_bytes(),
            value.as_bytes(),
            secret.as_bytes(),
        );
        let id = s(&v["id"]);
        assert_eq!(hex(&mac), s(&v["expected"]["hexdigest"]), "{id}");
        assert_eq!(
            b64_encode(&mac),
            s(&v["expected"]["digest_b64url_nopad"]),
            "{id}"
        );
        let material = [key_salt.as_bytes(), secret.as_bytes()].concat();
        let derived = match alg {
            HashAlg::Sha1 => sha1::Sha1::digest(&material).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(&material).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(&material).to_vec(),
        };
        assert_eq!(
            hex(&derived),
            s(&v["expected"]["derived_hmac_key_hex"]),
            "{id}"
        );
        n += 1;
    }
    assert_eq!(n, 6, "salted_hmac vectors checked");
}

#[test]
fn b62_vectors() {
    let vectors = Vectors::load();
    let mut n = 0;
    for v in vectors.of_kind("b62") {
        let int = v["inputs"]["int"].as_i64().expect("int");
        let encoded = b62_encode(int);
        assert_eq!(encoded, s(&v["expected"]["encoded"]), "{}", v["id"]);
        assert_eq!(
            b62_decode(&encoded),
            v["expected"]["roundtrip"].as_i64(),
            "{}",
            v["id"]
        );
        n += 1;
    }
    assert_eq!(n, 9, "b62 vectors checked");
}

#[test]
fn sign_vectors() {
    let vectors = Vectors::load();
    let calls = calls();
    let mut n = 0;
    for v in vectors.of_kind("django_signing_sign") {
        let id = s(&v["id"]);
        let call = &calls[id];
        assert!(
            call.is_object(),
            "{id}: no call parameters in signing_calls.json"
        );
        let now = v["now"].as_i64().expect("now");
        let key = resolve_key(&vectors, v, s(&call["key"]));
        let salt = call["salt"].as_str();
        let got = match s(&call["op"]) {
            "Signer.sign" => Signer::try_new(key, vec![], salt, sep(call), alg(call))
                .expect("safe sep")
                .sign(s(&call["value"])),
            "Signer.sign_object" => Signer::try_new(key, vec![], salt, sep(call), alg(call))
                .expect("safe sep")
                .sign_object(s(&call["json"]).as_bytes(), call["compress"] == true),
            "TimestampSigner.sign" => {
                TimestampSigner::try_new(key, vec![], salt, sep(call), alg(call))
                    .expect("safe sep")
                    .sign(s(&call["value"]), now)
            }
            "dumps" => wsauth_core::django::signing::dumps(
                s(&call["json"]).as_bytes(),
                &key,
                salt.expect("dumps salt"),
                call["compress"] == true,
                now,
            ),
            other => panic!("{id}: unknown op {other}"),
        };
        assert_eq!(v["expected"]["ok"], true, "{id}");
        assert_eq!(got, s(&v["expected"]["value"]), "{id}");
        n += 1;
    }
    assert_eq!(n, 14, "django_signing_sign vectors checked");
}

/// The outcome Django reported, in this crate's terms.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// `unsign` returned this string.
    Text(String),
    /// `loads` returned this JSON value.
    Json(Value),
    /// `BadSignature('No ":" found in value')`.
    NoSeparator,
    /// Any other `BadSignature`.
    BadSignature,
    /// `SignatureExpired` with the age / max_age of its message.
    Expired { age: i64, max_age: i64 },
    /// zlib / JSON / base64 errors.
    BadPayload,
}

fn expected_outcome(v: &Value, as_json: bool) -> Outcome {
    let e = &v["expected"];
    if e["ok"] == true {
        return if as_json {
            Outcome::Json(e["value"].clone())
        } else {
            Outcome::Text(s(&e["value"]).to_owned())
        };
    }
    let message = e["message"].as_str().unwrap_or_default();
    match (s(&e["exception"]), e["exception_module"].as_str()) {
        ("BadSignature", _) if message.starts_with("No ") => Outcome::NoSeparator,
        ("BadSignature", _) => Outcome::BadSignature,
        ("SignatureExpired", _) => {
            // "Signature age 3600.0 > 3599 seconds"
            let nums: Vec<f64> = message
                .split_whitespace()
                .filter_map(|w| w.parse::<f64>().ok())
                .collect();
            assert_eq!(nums.len(), 2, "{message}");
            Outcome::Expired {
                age: nums[0] as i64,
                max_age: nums[1] as i64,
            }
        }
        ("error", Some("zlib")) | ("JSONDecodeError", _) | ("Error", Some("binascii")) => {
            Outcome::BadPayload
        }
        (other, module) => panic!("{}: unmapped exception {other} ({module:?})", v["id"]),
    }
}

fn outcome_of_error(e: SigningError) -> Outcome {
    match e {
        SigningError::NoSeparator => Outcome::NoSeparator,
        SigningError::BadSignature => Outcome::BadSignature,
        SigningError::Expired { age, max_age } => Outcome::Expired { age, max_age },
        SigningError::BadPayload => Outcome::BadPayload,
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn unsign_vectors() {
    let vectors = Vectors::load();
    let calls = calls();
    let mut n = 0;
    for v in vectors.of_kind("django_signing_unsign") {
        let id = s(&v["id"]);
        let call = &calls[id];
        assert!(
            call.is_object(),
            "{id}: no call parameters in signing_calls.json"
        );
        let now = v["now"].as_i64().expect("now");
        let signed = s(&v["inputs"]["signed_value"]);
        let key = resolve_key(&vectors, v, s(&call["key"]));
        let fallbacks = resolve_fallbacks(v, &call["fallback_keys"]);
        let salt = call["salt"].as_str();
        let max_age = call["max_age"].as_i64();
        let op = s(&call["op"]);
        let got = match op {
            "Signer.unsign" => Signer::try_new(key, fallbacks, salt, sep(call), alg(call))
                .expect("safe sep")
                .unsign(signed)
                .map(|t| Outcome::Text(t.to_owned())),
            "TimestampSigner.unsign" => {
                TimestampSigner::try_new(key, fallbacks, salt, sep(call), alg(call))
                    .expect("safe sep")
                    .unsign(signed, max_age, now)
                    .map(|t| Outcome::Text(t.to_owned()))
            }
            "loads" => loads(
                signed,
                &key,
                &fallbacks,
                salt.expect("loads salt"),
                max_age,
                now,
            )
            .map(|text| Outcome::Json(serde_json::from_str(&text).expect("loads returns JSON"))),
            other => panic!("{id}: unknown op {other}"),
        };
        let got = got.unwrap_or_else(outcome_of_error);
        assert_eq!(got, expected_outcome(v, op == "loads"), "{id}");
        n += 1;
    }
    assert_eq!(n, 20, "django_signing_unsign vectors checked");
}

#[test]
fn signed_cookie_vectors() {
    let vectors = Vectors::load();
    let calls = calls();
    let mut n = 0;
    for v in vectors.of_kind("django_signed_cookie") {
        let id = s(&v["id"]);
        let call = &calls[id];
        assert_eq!(call["op"], "get_signed_cookie", "{id}");
        let now = v["now"].as_i64().expect("now");
        let i = &v["inputs"];
        let secret = SecretKey::from(s(&v["settings"]["SECRET_KEY"]));
        let fallbacks = resolve_fallbacks(v, &Value::from("SECRET_KEY_FALLBACKS"));
        let (name, salt, value) = (s(&i["cookie_name"]), s(&i["salt"]), s(&i["cookie_value"]));
        assert_eq!(
            v["settings"]["SIGNED_COOKIE_LEGACY_SALT_FALLBACK"], true,
            "{id}"
        );
        let got = get_signed_cookie(
            value,
            name,
            salt,
            &secret,
            &fallbacks,
            call["max_age"].as_i64(),
            now,
        )
        .map(|t| Outcome::Text(t.to_owned()))
        .unwrap_or_else(outcome_of_error);
        assert_eq!(got, expected_outcome(v, false), "{id}");

        let signer = CookieSigner::new(&secret, &fallbacks);
        if let Some(plain) = call["set_signed_cookie_value"].as_str() {
            // set_signed_cookie(name, plain, salt=salt) at `now` made this value.
            assert_eq!(signer.sign(plain, name, salt, now), value, "{id}");
        } else {
            // Signed with the legacy salt: refused once the fallback is off.
            let strict = signer.clone().with_legacy_salt_fallback(false);
            assert_eq!(
                strict.unsign(value, name, salt, call["max_age"].as_i64(), now),
                Err(SigningError::BadSignature),
                "{id}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 2, "django_signed_cookie vectors checked");
}
