//! `django.core.signing`, byte-exact with Django 5.x.
//!
//! STUB: public surface fixed; bodies are being filled in.

use crate::key::SecretKey;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The hash of `salted_hmac` / a `Signer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlg {
    /// SHA-1 (Django's old default; explicit only).
    Sha1,
    /// SHA-256 (the default).
    #[default]
    Sha256,
    /// SHA-512.
    Sha512,
}

/// `salted_hmac(key_salt, value, secret, algorithm=…).digest()`.
pub fn salted_hmac(alg: HashAlg, key_salt: &[u8], value: &[u8], secret: &[u8]) -> Vec<u8> {
    let _ = (alg, key_salt, value, secret);
    Vec::new()
}

/// `b62_encode`.
pub fn b62_encode(n: i64) -> String {
    let _ = n;
    String::new()
}

/// `b62_decode` (`None` for characters outside the alphabet or overflow).
pub fn b62_decode(s: &str) -> Option<i64> {
    let _ = s;
    None
}

/// Why a signed value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningError {
    /// `BadSignature('No ":" found in value')`.
    NoSeparator,
    /// `BadSignature('Signature "…" does not match')`.
    BadSignature,
    /// `SignatureExpired('Signature age … > … seconds')`.
    Expired {
        /// Age in seconds.
        age: i64,
        /// The configured maximum.
        max_age: i64,
    },
    /// The timestamp is not base62.
    BadTimestamp,
    /// Signed, but the payload is not base64 / zlib / JSON.
    BadPayload,
}

impl fmt::Display for SigningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningError::NoSeparator => f.write_str("No \":\" found in value"),
            SigningError::BadSignature => f.write_str("Signature does not match"),
            SigningError::Expired { age, max_age } => {
                write!(f, "Signature age {age} > {max_age} seconds")
            }
            SigningError::BadTimestamp => f.write_str("Timestamp is not base62"),
            SigningError::BadPayload => f.write_str("Signed payload is not valid data"),
        }
    }
}

impl core::error::Error for SigningError {}

/// `django.core.signing.Signer`.
#[derive(Debug, Clone)]
pub struct Signer {
    keys: Vec<SecretKey>,
    salt: String,
    sep: char,
    alg: HashAlg,
}

impl Signer {
    /// `Signer(key=key, salt=salt, sep=sep, algorithm=alg, fallback_keys=fallbacks)`;
    /// `salt = None` means Django's default `"django.core.signing.Signer"`.
    pub fn new(
        key: SecretKey,
        fallbacks: Vec<SecretKey>,
        salt: Option<&str>,
        sep: char,
        alg: HashAlg,
    ) -> Self {
        let mut keys = alloc::vec![key];
        keys.extend(fallbacks);
        Signer {
            keys,
            salt: salt.unwrap_or("django.core.signing.Signer").into(),
            sep,
            alg,
        }
    }

    /// `sign(value)`.
    pub fn sign(&self, value: &str) -> String {
        let _ = (value, &self.keys, &self.salt, self.sep, self.alg);
        String::new()
    }

    /// `unsign(signed)`: the value, borrowed from the input.
    pub fn unsign<'a>(&self, signed: &'a str) -> Result<&'a str, SigningError> {
        let _ = signed;
        Err(SigningError::BadSignature)
    }
}

/// `django.core.signing.TimestampSigner`.
#[derive(Debug, Clone)]
pub struct TimestampSigner {
    inner: Signer,
}

impl TimestampSigner {
    /// As [`Signer::new`]; `salt = None` means `"django.core.signing.TimestampSigner"`.
    pub fn new(
        key: SecretKey,
        fallbacks: Vec<SecretKey>,
        salt: Option<&str>,
        sep: char,
        alg: HashAlg,
    ) -> Self {
        TimestampSigner {
            inner: Signer::new(
                key,
                fallbacks,
                Some(salt.unwrap_or("django.core.signing.TimestampSigner")),
                sep,
                alg,
            ),
        }
    }

    /// `sign(value)` at `now`.
    pub fn sign(&self, value: &str, now: i64) -> String {
        let _ = (value, now, &self.inner);
        String::new()
    }

    /// `unsign(value, max_age)` at `now`.
    pub fn unsign<'a>(
        &self,
        signed: &'a str,
        max_age: Option<i64>,
        now: i64,
    ) -> Result<&'a str, SigningError> {
        let _ = (signed, max_age, now);
        Err(SigningError::BadSignature)
    }
}

/// `signing.loads(s, key, salt, max_age, fallback_keys)` at `now`: returns the
/// serialized JSON text (decoded as Latin-1, as Django's `JSONSerializer` does), as UTF-8.
pub fn loads(
    signed: &str,
    key: &SecretKey,
    fallbacks: &[SecretKey],
    salt: &str,
    max_age: Option<i64>,
    now: i64,
) -> Result<String, SigningError> {
    let _ = (signed, key, fallbacks, salt, max_age, now);
    Err(SigningError::BadSignature)
}

/// `signing.dumps(obj, key, salt, compress)` at `now`, where `json` is the
/// already-serialized JSON text (`json.dumps(obj, separators=(",", ":"))`).
pub fn dumps(json: &[u8], key: &SecretKey, salt: &str, compress: bool, now: i64) -> String {
    let _ = (json, key, salt, compress, now);
    String::new()
}
