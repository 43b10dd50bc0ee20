//! `django.core.signing`, byte-exact with Django 5.2.
//!
//! - [`salted_hmac`]: `django.utils.crypto.salted_hmac` (the hash derives the
//!   key *and* runs the HMAC).
//! - [`b62_encode`] / [`b62_decode`], [`b64_encode`] / [`b64_decode`]: the
//!   encodings of signed values. [`b64_decode`] is as lenient as Python's
//!   `base64.urlsafe_b64decode`.
//! - [`Signer`] / [`TimestampSigner`]: `value:signature` and
//!   `value:timestamp:signature`, current key first, then the fallbacks; the
//!   signature is compared as text, in constant time.
//! - [`dumps`] / [`loads`]: signed (optionally zlib-compressed) JSON. The JSON
//!   itself is produced and consumed by the caller; [`loads`] checks that the
//!   payload is JSON that Python's `json.loads` accepts and returns its text.
//!   Compression reproduces CPython's `zlib.compress` byte for byte, so
//!   [`dumps`] output equals Django's, including the `.` decision.
//! - [`get_signed_cookie`] / [`CookieSigner`]: `HttpRequest.get_signed_cookie`.
//!
//! Time is an argument (`now`, Unix seconds); nothing here reads a clock.
//!
//! Differences from Django, all on inputs only a key holder can produce:
//! a compressed payload that inflates to more than [`MAX_DECOMPRESSED_BYTES`]
//! is refused ([`SigningError::BadPayload`]) where Django has no limit, and a
//! timestamp is a whole number of seconds.

use crate::jwt::key::SecretKey;
use crate::py::compare::compare_digest;
use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use core::fmt;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// The largest payload [`loads`] inflates from a compressed (`.`-prefixed)
/// value: 1 MiB. Django has no limit; a larger payload is refused with
/// [`SigningError::BadPayload`] so a zlib bomb cannot exhaust memory.
pub const MAX_DECOMPRESSED_BYTES: usize = 1 << 20;

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

impl HashAlg {
    /// The `hashlib` name Django's `algorithm=` argument takes.
    pub const fn as_str(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// Parses a `hashlib` name (`"sha1"`, `"sha256"`, `"sha512"`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha1" => Some(HashAlg::Sha1),
            "sha256" => Some(HashAlg::Sha256),
            "sha512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }
}

macro_rules! salted_hmac_with {
    ($h:ty, $key_salt:expr, $value:expr, $secret:expr) => {{
        let mut kdf = <$h as Digest>::new();
        Digest::update(&mut kdf, $key_salt);
        Digest::update(&mut kdf, $secret);
        let key = kdf.finalize();
        match <Hmac<$h> as KeyInit>::new_from_slice(&key) {
            Ok(mut mac) => {
                Mac::update(&mut mac, $value);
                mac.finalize().into_bytes().to_vec()
            }
            // HMAC takes keys of any length; this arm is unreachable.
            Err(_) => Vec::new(),
        }
    }};
}

/// `salted_hmac(key_salt, value, secret, algorithm=…).digest()`:
/// `HMAC-H(key = H(key_salt + secret), value)`.
pub fn salted_hmac(alg: HashAlg, key_salt: &[u8], value: &[u8], secret: &[u8]) -> Vec<u8> {
    match alg {
        HashAlg::Sha1 => salted_hmac_with!(Sha1, key_salt, value, secret),
        HashAlg::Sha256 => salted_hmac_with!(Sha256, key_salt, value, secret),
        HashAlg::Sha512 => salted_hmac_with!(Sha512, key_salt, value, secret),
    }
}

const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// Each arm subtracts its own range's first byte: the results are 0..62.
#[allow(clippy::arithmetic_side_effects)]
fn b62_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'Z' => Some(c - b'A' + 10),
        b'a'..=b'z' => Some(c - b'a' + 36),
        _ => None,
    }
}

/// `b62_encode`: most significant digit first, `"0"` for 0, a leading `-`
/// for negatives.
pub fn b62_encode(n: i64) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut m = n.unsigned_abs();
    let mut digits = [0u8; 12];
    let mut len = 0;
    while m > 0 {
        if let (Some(slot), Some(&d)) = (digits.get_mut(len), B62.get((m % 62) as usize)) {
            *slot = d;
        }
        m /= 62;
        // At most 11 digits for a u64.
        len = len.saturating_add(1);
    }
    let mut out = String::with_capacity(len.saturating_add(1));
    if n < 0 {
        out.push('-');
    }
    for &d in digits.iter().take(len).rev() {
        out.push(char::from(d));
    }
    out
}

/// `b62_decode`. `None` where Django raises (empty text, a character
/// outside the alphabet) and where the value does not fit an `i64` (Django
/// returns a big integer). As in Django, `"-"` decodes to 0 and leading
/// zeros are allowed.
pub fn b62_decode(s: &str) -> Option<i64> {
    match b62_decode_wide(s)? {
        WideInt::Exact(v) => i64::try_from(v).ok(),
        WideInt::Huge { .. } => None,
    }
}

/// A base-62 timestamp of any length, as Python's unbounded `int` holds it.
#[derive(Debug, Clone, Copy)]
enum WideInt {
    /// Fits an `i128`.
    Exact(i128),
    /// Beyond `i128`; `finite` is false when Python's `float(value)` raises
    /// `OverflowError` (|value| rounds to 2**1024 or more).
    Huge { negative: bool, finite: bool },
}

fn b62_decode_wide(s: &str) -> Option<WideInt> {
    if s.is_empty() {
        return None;
    }
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut exact: Option<i128> = Some(0);
    let mut approx = 0f64;
    for &c in digits.as_bytes() {
        let d = b62_digit(c)?;
        exact = exact
            .and_then(|v| v.checked_mul(62))
            .and_then(|v| v.checked_add(i128::from(d)));
        approx = approx * 62.0 + f64::from(d);
    }
    Some(match exact {
        // `v` is in 0..=i128::MAX (non-negative digits, checked), so its negation is exact.
        Some(v) => WideInt::Exact(if negative { v.saturating_neg() } else { v }),
        None => WideInt::Huge {
            negative,
            finite: approx.is_finite(),
        },
    })
}

/// Django's `b64_encode`: URL-safe base64 without `=` padding.
pub fn b64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// Django's `b64_decode`: `urlsafe_b64decode(s + "=" * (-len(s) % 4))`, with
/// CPython's non-validating rules: characters outside the alphabet are
/// skipped, both `-`/`+` and `_`/`/` are accepted, a complete `=` padding
/// ends the data, and the unused low bits of the last character are ignored.
/// `None` where Python raises `binascii.Error` (a lone trailing character or
/// incomplete padding).
pub fn b64_decode(s: &[u8]) -> Option<Vec<u8>> {
    // Python's `-len(s) % 4`.
    let pad = s.len().wrapping_neg() % 4;
    let mut out = Vec::with_capacity((s.len() / 4).saturating_mul(3).saturating_add(3));
    let mut quad_pos = 0u8;
    let mut pads = 0u8;
    let mut left = 0u8;
    for &c in s.iter().chain(b"===".iter().take(pad)) {
        if c == b'=' {
            if quad_pos >= 2 {
                pads = pads.saturating_add(1);
                if quad_pos.saturating_add(pads) >= 4 {
                    return Some(out);
                }
            }
            continue;
        }
        let Some(v) = lenient_sextet(c) else {
            continue;
        };
        pads = 0;
        match quad_pos {
            0 => {
                left = v;
                quad_pos = 1;
            }
            1 => {
                out.push((left << 2) | (v >> 4));
                left = v & 0x0f;
                quad_pos = 2;
            }
            2 => {
                out.push((left << 4) | (v >> 2));
                left = v & 0x03;
                quad_pos = 3;
            }
            _ => {
                out.push((left << 6) | v);
                quad_pos = 0;
            }
        }
    }
    (quad_pos == 0).then_some(out)
}

/// A base64 character of either alphabet (`-` / `+` and `_` / `/`).
// Each arm subtracts its own range's first byte: the results are 0..64.
#[allow(clippy::arithmetic_side_effects)]
fn lenient_sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' | b'+' => Some(62),
        b'_' | b'/' => Some(63),
        _ => None,
    }
}

/// Why a signed value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningError {
    /// `BadSignature('No ":" found in value')`: the separator does not occur.
    NoSeparator,
    /// `BadSignature('Signature "…" does not match')`: no accepted key
    /// produces the signature.
    BadSignature,
    /// `SignatureExpired('Signature age … > … seconds')`.
    Expired {
        /// Age in seconds (saturated to the `i64` range).
        age: i64,
        /// The configured maximum.
        max_age: i64,
    },
    /// The timestamp is missing or not base62 (Django raises `ValueError`), or
    /// is too large for Python's `float` (`OverflowError`).
    BadTimestamp,
    /// Signed, but the payload is not base64 / zlib / JSON, or inflates to
    /// more than [`MAX_DECOMPRESSED_BYTES`].
    BadPayload,
    /// The separator is one Django refuses (`ValueError("Unsafe Signer
    /// separator")`): a newline, `-`, `=`, a digit or a character in `A`–`z`.
    UnsafeSeparator,
}

impl SigningError {
    /// True for the errors Django raises as `BadSignature` (including its
    /// subclass `SignatureExpired`); the rest are `ValueError`s and zlib /
    /// JSON errors.
    pub fn is_bad_signature(&self) -> bool {
        matches!(
            self,
            SigningError::NoSeparator | SigningError::BadSignature | SigningError::Expired { .. }
        )
    }
}

impl fmt::Display for SigningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningError::NoSeparator => f.write_str("No separator found in value"),
            SigningError::BadSignature => f.write_str("Signature does not match"),
            SigningError::Expired { age, max_age } => {
                write!(f, "Signature age {age} > {max_age} seconds")
            }
            SigningError::BadTimestamp => f.write_str("Timestamp is not base62"),
            SigningError::BadPayload => f.write_str("Signed payload is not valid data"),
            SigningError::UnsafeSeparator => f.write_str(
                "Unsafe Signer separator (cannot be empty or consist of only A-z0-9-_=)",
            ),
        }
    }
}

impl core::error::Error for SigningError {}

/// Django's `_SEP_UNSAFE = r"^[A-z0-9-_=]*$"` for a one-character separator
/// (`$` also matches before a trailing newline, so `"\n"` is unsafe).
fn sep_is_unsafe(sep: char) -> bool {
    matches!(sep, '\n' | '-' | '=' | '0'..='9' | 'A'..='z')
}

/// `django.core.signing.Signer`.
///
/// The separator is one character (Django accepts any string that is not
/// unsafe; every Django caller uses `":"`).
#[derive(Debug, Clone)]
pub struct Signer {
    keys: Vec<SecretKey>,
    salt: String,
    sep: char,
    alg: HashAlg,
}

impl Signer {
    /// `Signer(key=key, salt=salt, sep=sep, algorithm=alg, fallback_keys=fallbacks)`;
    /// `salt = None` (or empty, as `salt or …` treats it) means Django's
    /// default `"django.core.signing.Signer"`.
    ///
    /// Django refuses an unsafe separator (see [`SigningError::UnsafeSeparator`]);
    /// this constructor accepts it and [`Signer::try_new`] refuses it.
    pub fn new(
        key: SecretKey,
        fallbacks: Vec<SecretKey>,
        salt: Option<&str>,
        sep: char,
        alg: HashAlg,
    ) -> Self {
        Self::with_default_salt(key, fallbacks, salt, "django.core.signing.Signer", sep, alg)
    }

    /// As [`Signer::new`], refusing the separators Django refuses.
    pub fn try_new(
        key: SecretKey,
        fallbacks: Vec<SecretKey>,
        salt: Option<&str>,
        sep: char,
        alg: HashAlg,
    ) -> Result<Self, SigningError> {
        if sep_is_unsafe(sep) {
            return Err(SigningError::UnsafeSeparator);
        }
        Ok(Self::new(key, fallbacks, salt, sep, alg))
    }

    fn with_default_salt(
        key: SecretKey,
        fallbacks: Vec<SecretKey>,
        salt: Option<&str>,
        default_salt: &str,
        sep: char,
        alg: HashAlg,
    ) -> Self {
        let mut keys = Vec::with_capacity(fallbacks.len().saturating_add(1));
        keys.push(key);
        keys.extend(fallbacks);
        let salt = match salt {
            Some(s) if !s.is_empty() => s,
            _ => default_salt,
        };
        Signer {
            keys,
            salt: salt.into(),
            sep,
            alg,
        }
    }

    /// The salt in use (after Django's default rule).
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The separator.
    pub fn sep(&self) -> char {
        self.sep
    }

    /// `signature(value, key)` for the key at `index` (0 = the current key,
    /// then the fallbacks). An empty fallback key means the current key, as
    /// `key or self.key` does.
    fn signature_with(&self, value: &str, index: usize) -> String {
        let primary = self.keys.first().map(SecretKey::expose).unwrap_or_default();
        let key = match self.keys.get(index) {
            Some(k) if !k.is_empty() => k.expose(),
            _ => primary,
        };
        let mut key_salt = Vec::with_capacity(self.salt.len().saturating_add(6));
        key_salt.extend_from_slice(self.salt.as_bytes());
        key_salt.extend_from_slice(b"signer");
        b64_encode(&salted_hmac(self.alg, &key_salt, value.as_bytes(), key))
    }

    /// `signature(value)` with the current key.
    pub fn signature(&self, value: &str) -> String {
        self.signature_with(value, 0)
    }

    /// `sign(value)`: `value + sep + signature(value)`.
    pub fn sign(&self, value: &str) -> String {
        let sig = self.signature(value);
        let cap = value
            .len()
            .saturating_add(self.sep.len_utf8())
            .saturating_add(sig.len());
        let mut out = String::with_capacity(cap);
        out.push_str(value);
        out.push(self.sep);
        out.push_str(&sig);
        out
    }

    /// `unsign(signed)`: the value, borrowed from the input. The text after
    /// the last separator must equal the signature under the current key or a
    /// fallback, compared as text in constant time.
    pub fn unsign<'a>(&self, signed: &'a str) -> Result<&'a str, SigningError> {
        let (value, sig) = signed
            .rsplit_once(self.sep)
            .ok_or(SigningError::NoSeparator)?;
        let mut ok = false;
        for index in 0..self.keys.len() {
            // Every key is tried, so the time does not reveal which one matched.
            ok |= compare_digest(sig.as_bytes(), self.signature_with(value, index).as_bytes());
        }
        if ok {
            Ok(value)
        } else {
            Err(SigningError::BadSignature)
        }
    }

    /// `sign_object(obj, compress=compress)` where `json` is the serialized
    /// object (`json.dumps(obj, separators=(",", ":"))`).
    pub fn sign_object(&self, json: &[u8], compress: bool) -> String {
        self.sign(&encode_payload(json, compress))
    }

    /// `unsign_object(signed)`: the JSON text (see [`loads`]).
    pub fn unsign_object(&self, signed: &str) -> Result<String, SigningError> {
        decode_payload(self.unsign(signed)?)
    }
}

/// `django.core.signing.TimestampSigner`.
#[derive(Debug, Clone)]
pub struct TimestampSigner {
    inner: Signer,
}

impl TimestampSigner {
    /// As [`Signer::new`]; `salt = None` (or empty) means
    /// `"django.core.signing.TimestampSigner"`.
    pub fn new(
        key: SecretKey,
        fallbacks: Vec<SecretKey>,
        salt: Option<&str>,
        sep: char,
        alg: HashAlg,
    ) -> Self {
        TimestampSigner {
            inner: Signer::with_default_salt(
                key,
                fallbacks,
                salt,
                "django.core.signing.TimestampSigner",
                sep,
                alg,
            ),
        }
    }

    /// As [`TimestampSigner::new`], refusing the separators Django refuses.
    pub fn try_new(
        key: SecretKey,
        fallbacks: Vec<SecretKey>,
        salt: Option<&str>,
        sep: char,
        alg: HashAlg,
    ) -> Result<Self, SigningError> {
        if sep_is_unsafe(sep) {
            return Err(SigningError::UnsafeSeparator);
        }
        Ok(Self::new(key, fallbacks, salt, sep, alg))
    }

    /// The underlying [`Signer`] (its salt, separator, keys).
    pub fn signer(&self) -> &Signer {
        &self.inner
    }

    /// `sign(value)` at `now`: `value:b62(now):signature`.
    pub fn sign(&self, value: &str, now: i64) -> String {
        let ts = b62_encode(now);
        let mut v = String::with_capacity(value.len().saturating_add(1).saturating_add(ts.len()));
        v.push_str(value);
        v.push(self.inner.sep);
        v.push_str(&ts);
        self.inner.sign(&v)
    }

    /// `unsign(value, max_age)` at `now`. With `max_age`, a value is expired
    /// when `now - timestamp > max_age`; an age equal to `max_age` and a
    /// negative age (a timestamp in the future) are accepted.
    pub fn unsign<'a>(
        &self,
        signed: &'a str,
        max_age: Option<i64>,
        now: i64,
    ) -> Result<&'a str, SigningError> {
        let result = self.inner.unsign(signed)?;
        let (value, ts) = result
            .rsplit_once(self.inner.sep)
            .ok_or(SigningError::BadTimestamp)?;
        let ts = b62_decode_wide(ts).ok_or(SigningError::BadTimestamp)?;
        if let Some(max_age) = max_age {
            check_age(ts, max_age, now)?;
        }
        Ok(value)
    }

    /// `sign_object(obj, compress=compress)` at `now` (this is [`dumps`]).
    pub fn sign_object(&self, json: &[u8], compress: bool, now: i64) -> String {
        self.sign(&encode_payload(json, compress), now)
    }

    /// `unsign_object(signed, max_age=max_age)` at `now` (this is [`loads`]).
    pub fn unsign_object(
        &self,
        signed: &str,
        max_age: Option<i64>,
        now: i64,
    ) -> Result<String, SigningError> {
        decode_payload(self.unsign(signed, max_age, now)?)
    }

    /// [`TimestampSigner::unsign_object`] without the JSON step: the raw
    /// serialized bytes (Latin-1 text), for callers that parse them directly.
    pub(crate) fn unsign_object_bytes(
        &self,
        signed: &str,
        max_age: Option<i64>,
        now: i64,
    ) -> Result<Vec<u8>, SigningError> {
        decode_payload_bytes(self.unsign(signed, max_age, now)?)
    }
}

/// `age = time.time() - timestamp; if age > max_age: raise SignatureExpired`,
/// with Python's float arithmetic for the age (exact for every timestamp
/// below 2**53).
fn check_age(ts: WideInt, max_age: i64, now: i64) -> Result<(), SigningError> {
    let age: f64 = match ts {
        // Python converts both operands to float, then subtracts.
        WideInt::Exact(ts) => now as f64 - ts as f64,
        WideInt::Huge { finite: false, .. } => return Err(SigningError::BadTimestamp),
        WideInt::Huge { negative: true, .. } => f64::INFINITY,
        WideInt::Huge {
            negative: false, ..
        } => f64::NEG_INFINITY,
    };
    // `age` is integer-valued; compare it with the integer `max_age` exactly,
    // as Python compares a float with an int.
    const LIMIT: f64 = 1.7e38; // inside i128
    let expired = if age > LIMIT {
        true
    } else if age < -LIMIT {
        false
    } else {
        (age as i128) > i128::from(max_age)
    };
    if expired {
        let age = if age >= i64::MAX as f64 {
            i64::MAX
        } else {
            age as i64
        };
        return Err(SigningError::Expired { age, max_age });
    }
    Ok(())
}

/// `sign_object`'s payload: base64 of the JSON bytes, or `"."` + base64 of
/// their zlib compression when that is shorter than `len(data) - 1`.
fn encode_payload(json: &[u8], compress: bool) -> String {
    if compress {
        let compressed = zlib_compress(json);
        if compressed.len() < json.len().saturating_sub(1) {
            let b64_len = compressed.len().div_ceil(3).saturating_mul(4);
            let mut out = String::with_capacity(b64_len.saturating_add(1));
            out.push('.');
            out.push_str(&b64_encode(&compressed));
            return out;
        }
    }
    b64_encode(json)
}

/// `zlib.compress(data)` (level 6), byte for byte as CPython's zlib.
fn zlib_compress(data: &[u8]) -> Vec<u8> {
    crate::py::deflate::zlib_compress(data)
}

/// `unsign_object` after the signature check, up to the serializer: `.`
/// means zlib, then the raw JSON bytes (Latin-1 text).
fn decode_payload_bytes(b64: &str) -> Result<Vec<u8>, SigningError> {
    let (compressed, b64) = match b64.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, b64),
    };
    let data = b64_decode(b64.as_bytes()).ok_or(SigningError::BadPayload)?;
    if compressed {
        miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&data, MAX_DECOMPRESSED_BYTES)
            .map_err(|_| SigningError::BadPayload)
    } else {
        Ok(data)
    }
}

/// `unsign_object` after the signature check: the bytes are read as Latin-1
/// and must be JSON `json.loads` accepts. Returns the JSON text, re-encoded
/// as UTF-8.
fn decode_payload(b64: &str) -> Result<String, SigningError> {
    let data = decode_payload_bytes(b64)?;
    crate::py::json::parse(&data, crate::py::json::Encoding::Latin1)
        .map_err(|_| SigningError::BadPayload)?;
    Ok(latin1_to_string(&data))
}

/// `bytes.decode("latin-1")`, as UTF-8.
pub(crate) fn latin1_to_string(bytes: &[u8]) -> String {
    match core::str::from_utf8(bytes) {
        Ok(s) if s.is_ascii() => s.into(),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// `signing.loads(s, key, salt, max_age, fallback_keys)` at `now`: returns the
/// serialized JSON text (decoded as Latin-1, as Django's `JSONSerializer` does), as UTF-8.
/// An empty `salt` means the `TimestampSigner` default, as in Django.
pub fn loads(
    signed: &str,
    key: &SecretKey,
    fallbacks: &[SecretKey],
    salt: &str,
    max_age: Option<i64>,
    now: i64,
) -> Result<String, SigningError> {
    TimestampSigner::new(
        key.clone(),
        fallbacks.to_vec(),
        Some(salt),
        ':',
        HashAlg::Sha256,
    )
    .unsign_object(signed, max_age, now)
}

/// `signing.dumps(obj, key, salt, compress)` at `now`, where `json` is the
/// already-serialized JSON text (`json.dumps(obj, separators=(",", ":"))`).
pub fn dumps(json: &[u8], key: &SecretKey, salt: &str, compress: bool, now: i64) -> String {
    TimestampSigner::new(key.clone(), Vec::new(), Some(salt), ':', HashAlg::Sha256)
        .sign_object(json, compress, now)
}

/// Signed cookies (`HttpResponse.set_signed_cookie` /
/// `HttpRequest.get_signed_cookie`): a [`TimestampSigner`] keyed with
/// `b"django.http.cookies" + SECRET_KEY` (fallbacks prefixed alike).
#[derive(Debug, Clone)]
pub struct CookieSigner {
    key: SecretKey,
    fallbacks: Vec<SecretKey>,
    legacy_salt_fallback: bool,
}

fn cookie_key(secret: &SecretKey) -> SecretKey {
    let mut k = Vec::with_capacity(secret.len().saturating_add(19));
    k.extend_from_slice(b"django.http.cookies");
    k.extend_from_slice(secret.expose());
    SecretKey::new(k)
}

impl CookieSigner {
    /// `SECRET_KEY` and `SECRET_KEY_FALLBACKS`; `SIGNED_COOKIE_LEGACY_SALT_FALLBACK`
    /// is on, as Django's default.
    pub fn new(secret: &SecretKey, fallbacks: &[SecretKey]) -> Self {
        CookieSigner {
            key: cookie_key(secret),
            fallbacks: fallbacks.iter().map(cookie_key).collect(),
            legacy_salt_fallback: true,
        }
    }

    /// `SIGNED_COOKIE_LEGACY_SALT_FALLBACK`.
    pub fn with_legacy_salt_fallback(mut self, on: bool) -> Self {
        self.legacy_salt_fallback = on;
        self
    }

    fn signer(&self, salt: &str) -> TimestampSigner {
        TimestampSigner::new(
            self.key.clone(),
            self.fallbacks.clone(),
            Some(salt),
            ':',
            HashAlg::Sha256,
        )
    }

    /// `set_signed_cookie(name, value, salt=salt)`'s cookie value at `now`.
    pub fn sign(&self, value: &str, cookie_name: &str, salt: &str, now: i64) -> String {
        self.signer(&v2_salt(cookie_name, salt)).sign(value, now)
    }

    /// `get_signed_cookie(name, salt=salt, max_age=max_age)` for the cookie's
    /// value at `now`: the v2 salt first; on a bad signature (not an expired
    /// one) the legacy salt `cookie_name + salt`, when enabled.
    pub fn unsign<'a>(
        &self,
        cookie_value: &'a str,
        cookie_name: &str,
        salt: &str,
        max_age: Option<i64>,
        now: i64,
    ) -> Result<&'a str, SigningError> {
        match self
            .signer(&v2_salt(cookie_name, salt))
            .unsign(cookie_value, max_age, now)
        {
            Err(e)
                if self.legacy_salt_fallback
                    && e.is_bad_signature()
                    && !matches!(e, SigningError::Expired { .. }) =>
            {
                let cap = cookie_name.len().saturating_add(salt.len());
                let mut legacy = String::with_capacity(cap);
                legacy.push_str(cookie_name);
                legacy.push_str(salt);
                self.signer(&legacy).unsign(cookie_value, max_age, now)
            }
            other => other,
        }
    }
}

/// `_cookie_signer_salt`: `f"django.http.cookies.v2:{len(salt)}:{salt}{cookie_name}"`
/// (`len` counts characters).
fn v2_salt(cookie_name: &str, salt: &str) -> String {
    alloc::format!(
        "django.http.cookies.v2:{}:{}{}",
        salt.chars().count(),
        salt,
        cookie_name
    )
}

/// `request.get_signed_cookie(cookie_name, salt=salt, max_age=max_age)` for
/// the cookie's value, with Django's default `SIGNED_COOKIE_LEGACY_SALT_FALLBACK = True`.
pub fn get_signed_cookie<'a>(
    cookie_value: &'a str,
    cookie_name: &str,
    salt: &str,
    secret: &SecretKey,
    fallbacks: &[SecretKey],
    max_age: Option<i64>,
    now: i64,
) -> Result<&'a str, SigningError> {
    CookieSigner::new(secret, fallbacks).unsign(cookie_value, cookie_name, salt, max_age, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b62_table() {
        for (n, s) in [
            (0i64, "0"),
            (61, "z"),
            (62, "10"),
            (-62, "-10"),
            (i64::MAX, "AzL8n0Y58m7"),
        ] {
            assert_eq!(b62_encode(n), s);
            assert_eq!(b62_decode(s), Some(n));
        }
        assert_eq!(b62_decode(&b62_encode(i64::MIN)), Some(i64::MIN));
        assert_eq!(b62_decode(""), None);
        assert_eq!(b62_decode("-"), Some(0));
        assert_eq!(b62_decode("007"), Some(7));
        assert_eq!(b62_decode("1+"), None);
        assert_eq!(b62_decode("zzzzzzzzzzzzzzzzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn b64_decode_lenient_rules() {
        // (input, Python's urlsafe_b64decode(s + pad) or None for binascii.Error)
        let rows: &[(&[u8], Option<&[u8]>)] = &[
            (b"", Some(b"")),
            (b"YQ", Some(b"a")),
            (b"YR", Some(b"a")),
            (b"YQ==", Some(b"a")),
            (b"Y", None),
            (b"Y Q", None),
            (b"YQ=x", None),
            (b"+/-_", Some(&[0xfb, 0xff, 0xbf])),
            (b"YWJj=", Some(b"abc")),
            (b"YW=Jj", Some(b"abc")),
            (b"YQ==YWJj", Some(b"a")),
            (b"\xc3\xa9YQ", None),
            (b"\xc3\xa9Y!Q", Some(b"a")),
        ];
        for (input, want) in rows {
            assert_eq!(b64_decode(input).as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn zlib_bomb_is_refused() {
        let key = SecretKey::from("k");
        let signer = TimestampSigner::new(key.clone(), Vec::new(), Some("s"), ':', HashAlg::Sha256);
        let sign = |json: &[u8]| {
            let z = miniz_oxide::deflate::compress_to_vec_zlib(json, 9);
            signer.sign(&alloc::format!(".{}", b64_encode(&z)), 0)
        };
        // A JSON string of MAX_DECOMPRESSED_BYTES bytes exactly is accepted ...
        let mut json = alloc::vec![b'a'; MAX_DECOMPRESSED_BYTES];
        json[0] = b'"';
        json[MAX_DECOMPRESSED_BYTES - 1] = b'"';
        assert_eq!(
            loads(&sign(&json), &key, &[], "s", None, 0).map(|t| t.len()),
            Ok(MAX_DECOMPRESSED_BYTES)
        );
        // ... one byte more is not, however well it is signed.
        json.insert(1, b'a');
        assert_eq!(
            loads(&sign(&json), &key, &[], "s", None, 0),
            Err(SigningError::BadPayload)
        );
    }

    #[test]
    fn unsafe_separators() {
        for c in ['\n', '-', '=', '0', '9', 'A', '[', '_', '`', 'z'] {
            assert!(sep_is_unsafe(c), "{c:?}");
        }
        for c in [':', '/', '.', '~', ' ', '{', '@'] {
            assert!(!sep_is_unsafe(c), "{c:?}");
        }
    }
}
