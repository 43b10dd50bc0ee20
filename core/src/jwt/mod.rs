//! SimpleJWT access tokens, verified as `AccessToken(token)` decides
//! (PyJWT 2.15 `jwt.decode` followed by SimpleJWT 5.5's `Token.verify`).
//!
//! The checks run in PyJWT's order, the first failure wins:
//!
//! 1. size limit (wsauth's own, `too_large`);
//! 2. segments: `rsplit(".", 1)` then `split(".", 1)`;
//! 3. strict base64url of the header, header JSON (Python `json.loads`), an
//!    object; `b64: false` refused; payload and signature base64url;
//! 4. header rules: `kid` a string, `crit` a non-empty list of `"b64"` with
//!    `b64` present; `typ` ignored;
//! 5. `alg` present and equal to the configured algorithm (`bad_algorithm`);
//! 6. HMAC over the raw received signing input, constant-time compare
//!    (`bad_signature`), against the signing key, then opt-in fallbacks;
//! 7. payload JSON, an object;
//! 8. `iat` / `nbf` / `exp` through Python `int()`, with the leeway
//!    (`not_yet_valid`, `expired`); `iss`; `aud`; `sub` / `jti` must be strings;
//! 9. SimpleJWT: `exp` present, `datetime.fromtimestamp(exp)` must not crash
//!    (numeric strings and years outside 1–9999 crash Django; wsauth rejects
//!    them as `malformed`), jti claim present, token-type claim equal to
//!    `"access"`.
//!
//! Messages are SimpleJWT's: `Token is invalid` for every PyJWT failure except
//! expiry (`Token is expired`), then `Token has no 'exp' claim`,
//! `Token has no id`, `Token has no type`, `Token has wrong type`.
//!
//! Verifying performs no heap allocation for tokens up to
//! [`DEFAULT_MAX_TOKEN_BYTES`]: segments are decoded into a stack buffer and
//! the claims a caller needs are copied into [`InlineStr`]s.
//!
//! Known differences from the Python stack:
//! - inputs that crash Django (a numeric-string `exp`, an `exp` outside years
//!   1–9999) are `malformed` with their own messages
//!   (`Token 'exp' claim is not a number` / `… is out of range`);
//! - a key PyJWT's `prepare_key` would refuse on every call is refused once,
//!   when the verifier is built ([`KeyError`]); DER keys are recognised by
//!   shape (SubjectPublicKeyInfo, PKCS#1, certificate), not fully parsed;
//! - JSON in UTF-16/32 (which `json.loads(bytes)` autodetects) is
//!   `malformed`; so is JSON nested deeper than 900 levels, where CPython's
//!   `RecursionError` comes at 1000 minus its current stack depth (so a
//!   nesting close to that bound may be decided differently);
//! - settings: `LEEWAY` is whole seconds, `now` is whole seconds (equivalent
//!   for integer claims), `AUDIENCE` is one string, and the claim-name
//!   settings cannot be `None`.

mod claims;
mod hs256;
pub mod key;
pub mod userid;

use crate::error::ErrorKind;
use crate::jwt::claims::{ClaimNames, Claims, Slot};
use crate::jwt::hs256::Hs256Key;
use crate::jwt::key::{Algorithm, KeyError, SecretKey};
use crate::jwt::userid::{PkKind, UserIdError, UserKey};
use crate::py::b64;
use crate::py::json::{self, Encoding, JsonObject, JsonStr, JsonValue};
use crate::py::pyint::{self, PyInt};
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha384, Sha512};

/// Default size limit for a token, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A decoded segment of a token within the default limit fits here.
const STACK_DECODE_BYTES: usize = DEFAULT_MAX_TOKEN_BYTES / 4 * 3;

/// A decoded segment of a typical token (a few claims) fits here; only this
/// much is zeroed on the stack for it.
const SMALL_DECODE_BYTES: usize = 512;

/// Length of an unpadded HS256 signature segment.
const HS256_SIGNATURE_CHARS: usize = signature_chars(Algorithm::Hs256);

/// SimpleJWT's own claims and a couple more fit here (zeroing the buffer
/// shows on the verify path).
const TYPICAL_DECODE_BYTES: usize = 192;

/// The header segments PyJWT / SimpleJWT (and most other libraries) write for
/// each algorithm: `{"alg":…,"typ":"JWT"}`, `{"typ":"JWT","alg":…}` and
/// `{"alg":…}`. A byte-equal header decodes to an object whose only members
/// are `alg` (the configured algorithm) and `typ`, so it passes every header
/// check; base64 and JSON are skipped for it. Any other header takes the
/// full path.
const fn known_headers(alg: Algorithm) -> [&'static [u8]; 3] {
    match alg {
        Algorithm::Hs256 => [
            b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            b"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9",
            b"eyJhbGciOiJIUzI1NiJ9",
        ],
        Algorithm::Hs384 => [
            b"eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9",
            b"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzM4NCJ9",
            b"eyJhbGciOiJIUzM4NCJ9",
        ],
        Algorithm::Hs512 => [
            b"eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9",
            b"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9",
            b"eyJhbGciOiJIUzUxMiJ9",
        ],
    }
}

/// Length of an unpadded base64url signature of `alg`.
const fn signature_chars(alg: Algorithm) -> usize {
    match alg {
        Algorithm::Hs256 => 43,
        Algorithm::Hs384 => 64,
        Algorithm::Hs512 => 86,
    }
}

/// `(signing_input, payload_seg, sig_seg)` without searching for the dots,
/// when `token` starts with one of the [`known_headers`] of `alg` and a dot,
/// and has a dot where a signature of `alg` would start (the common case,
/// measured on the verify path). That is the split of `rsplit_once('.')`
/// then `split_once('.')`, or else leads to the same decision, `malformed`:
/// no known header holds a dot, so the first dot is the one after the
/// header; if another dot follows the one before the signature, here the
/// signature segment holds a dot, and after `rsplit_once` the payload
/// segment would: neither is base64url, and every check before the segments
/// are decoded passes for a known header or fails as `malformed`.
fn split_known(token: &str, alg: Algorithm) -> Option<(&str, &str, &str)> {
    let bytes = token.as_bytes();
    let sig_dot = bytes
        .len()
        .checked_sub(signature_chars(alg))?
        .checked_sub(1)?;
    if bytes.get(sig_dot) != Some(&b'.') {
        return None;
    }
    let header = known_headers(alg).into_iter().find(|h| {
        h.len() < sig_dot
            && bytes.get(h.len()) == Some(&b'.')
            && bytes
                .get(..h.len())
                .is_some_and(|p| crate::text::bytes_eq(p, h))
    })?;
    Some((
        token.get(..sig_dot)?,
        token.get(header.len().saturating_add(1)..sig_dot)?,
        token.get(sig_dot.saturating_add(1)..)?,
    ))
}

/// The SimpleJWT settings that matter for verification, named after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// `ALGORITHM`.
    pub algorithm: Algorithm,
    /// `LEEWAY`, whole seconds.
    pub leeway: u32,
    /// `AUDIENCE` (checked only when set).
    pub audience: Option<String>,
    /// `ISSUER` (checked only when set).
    pub issuer: Option<String>,
    /// `USER_ID_CLAIM`.
    pub user_id_claim: String,
    /// `TOKEN_TYPE_CLAIM`.
    pub token_type_claim: String,
    /// `JTI_CLAIM`.
    pub jti_claim: String,
    /// The token type `AccessToken` expects (`"access"`).
    pub token_type: String,
    /// `REVOKE_TOKEN_CLAIM` (read only when the host checks revocation by password hash).
    pub revoke_token_claim: String,
    /// Largest accepted token, bytes.
    pub max_token_bytes: usize,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            algorithm: Algorithm::Hs256,
            leeway: 0,
            audience: None,
            issuer: None,
            user_id_claim: "user_id".into(),
            token_type_claim: "token_type".into(),
            jti_claim: "jti".into(),
            token_type: "access".into(),
            revoke_token_claim: "hash_password".into(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }
}

pub use crate::text::InlineStr;

/// A claim's JSON value, as Python's `json.loads` would see it.
// Strings are stored inline on purpose: verification never touches the heap.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ClaimValue {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// An integer beyond `i64` (Python keeps it exact); the flag is true when negative.
    BigInt(bool),
    /// A float (including `NaN` / `Infinity`, which Python accepts).
    Float(f64),
    /// A string (escapes decoded).
    Str(InlineStr),
    /// A string longer than [`InlineStr::CAPACITY`] (or holding a lone
    /// surrogate), an object or an array.
    Other,
}

impl ClaimValue {
    pub(crate) fn from_json(v: &JsonValue<'_>) -> ClaimValue {
        match v {
            JsonValue::Null => ClaimValue::Null,
            JsonValue::Bool(b) => ClaimValue::Bool(*b),
            JsonValue::Int(i) => ClaimValue::Int(*i),
            JsonValue::BigInt(b) => ClaimValue::BigInt(b.negative()),
            JsonValue::Float(f) => ClaimValue::Float(*f),
            JsonValue::Str(s) => s.to_inline().map_or(ClaimValue::Other, ClaimValue::Str),
            JsonValue::Array(_) | JsonValue::Object(_) => ClaimValue::Other,
        }
    }

    /// Python truthiness (`bool(value)`); `Other` counts as true (a
    /// non-empty string or container is the only way to get it from a token).
    pub fn is_truthy(&self) -> bool {
        match self {
            ClaimValue::Null => false,
            ClaimValue::Bool(b) => *b,
            ClaimValue::Int(i) => *i != 0,
            ClaimValue::BigInt(_) => true,
            ClaimValue::Float(f) => *f != 0.0,
            ClaimValue::Str(s) => !s.is_empty(),
            ClaimValue::Other => true,
        }
    }

    /// The string, for [`ClaimValue::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ClaimValue::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }
}

/// Python truthiness of a JSON value.
fn truthy(v: &JsonValue<'_>) -> bool {
    match v {
        JsonValue::Null => false,
        JsonValue::Bool(b) => *b,
        JsonValue::Int(i) => *i != 0,
        JsonValue::BigInt(_) => true,
        JsonValue::Float(f) => *f != 0.0,
        JsonValue::Str(s) => !s.is_empty(),
        JsonValue::Array(a) => !a.is_empty(),
        JsonValue::Object(o) => !o.is_empty(),
    }
}

/// What to mint (dev tokens shaped like SimpleJWT's).
#[derive(Debug, Clone)]
pub struct MintRequest<'a> {
    /// The user id claim's value, usually the string form of the pk (`"1"`).
    pub user_id: ClaimValue,
    /// Lifetime in seconds (SimpleJWT's `ACCESS_TOKEN_LIFETIME`, 300 by default).
    pub lifetime: i64,
    /// 32 lowercase hex characters (`uuid4().hex`); the host supplies randomness.
    pub jti: &'a str,
    /// Extra claims appended after SimpleJWT's (e.g. `("is_staff", Bool(true))`).
    pub extra: &'a [(&'a str, ClaimValue)],
}

/// A token that passed every check. Borrows the token text; owns nothing on the heap.
#[derive(Debug, Clone)]
pub struct VerifiedToken<'t> {
    token: &'t str,
    payload_seg: &'t str,
    user_id_claim_name: Option<InlineStr>,
    exp: i64,
    iat: Option<i64>,
    user_id: Option<ClaimValue>,
    jti: Option<InlineStr>,
    is_staff: bool,
    is_superuser: bool,
    revoke_claim: Option<InlineStr>,
}

impl<'t> VerifiedToken<'t> {
    /// The token text.
    pub fn token(&self) -> &'t str {
        self.token
    }
    /// `exp`, as Python's `int()` read it.
    pub fn exp(&self) -> i64 {
        self.exp
    }
    /// `iat`, if present (and within `i64`).
    pub fn iat(&self) -> Option<i64> {
        self.iat
    }
    /// The user id claim's value (`None` when the claim is missing).
    pub fn user_id(&self) -> Option<&ClaimValue> {
        self.user_id.as_ref()
    }
    /// The jti claim, when it is a string.
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_ref().map(|s| s.as_str())
    }
    /// Truthiness of the `is_staff` claim (SimpleJWT's `TokenUser.is_staff`).
    pub fn is_staff(&self) -> bool {
        self.is_staff
    }
    /// Truthiness of the `is_superuser` claim.
    pub fn is_superuser(&self) -> bool {
        self.is_superuser
    }
    /// The revoke claim (`hash_password`), when it is a string.
    pub fn revoke_claim(&self) -> Option<&str> {
        self.revoke_claim.as_ref().map(|s| s.as_str())
    }

    /// Runs `f` on the decoded payload: the bytes PyJWT hands to
    /// `json.loads` (the payload segment, base64url-decoded, exactly as the
    /// verification decoded it), so a host can build the claims as PyJWT
    /// does without verifying the token again. No heap for tokens within
    /// the default limit; `None` only for a payload that cannot be decoded,
    /// which a verified token's always can.
    pub fn with_payload_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let seg = self.payload_seg.as_bytes();
        let need = b64::decoded_len(seg).ok()?;
        with_buffer(need, |buf| {
            let n = b64::decode_strict(seg, buf).ok()?;
            Some(f(buf.get(..n)?))
        })
    }

    /// Runs `f` on the decoded payload object (no heap for tokens within the default limit).
    fn with_payload<R>(&self, f: impl FnOnce(JsonObject<'_>) -> Option<R>) -> Option<R> {
        self.with_payload_bytes(|bytes| f(json::parse_object(bytes, Encoding::Utf8).ok()?))
            .flatten()
    }

    /// The claim named `name` (the last duplicate, as Python's `dict` keeps it).
    pub fn claim(&self, name: &str) -> Option<ClaimValue> {
        self.with_payload(|obj| obj.get(name).map(|v| ClaimValue::from_json(&v)))
    }

    /// The user id claim coerced exactly as `User.objects.get(USER_ID_FIELD=claim)`
    /// coerces it for a field of kind `pk`. Unlike [`ClaimValue::to_user_key`]
    /// this is exact for values a [`ClaimValue`] cannot hold (strings longer
    /// than [`InlineStr::CAPACITY`], integers beyond `i64`): it reads the
    /// claim again from the token. `Ok(UserKey::NoMatch)` when the claim is
    /// missing (SimpleJWT then answers "Token contained no recognizable user
    /// identification"; check [`user_id`](Self::user_id) first).
    pub fn user_key(&self, pk: PkKind) -> Result<UserKey, UserIdError> {
        let Some(value) = &self.user_id else {
            return Ok(UserKey::NoMatch);
        };
        if matches!(value, ClaimValue::Other | ClaimValue::BigInt(_)) {
            if let Some(name) = &self.user_id_claim_name {
                let exact = self.with_payload(|obj| {
                    obj.get(name.as_str())
                        .map(|v| userid::user_key_from_json(&v, pk))
                });
                if let Some(r) = exact {
                    return r;
                }
            }
        }
        value.to_user_key(pk)
    }

    /// One claim as JSON text, written as [`payload_json`](Self::payload_json)
    /// writes values (e.g. the user id exactly as the token carries it,
    /// big integers included); `None` when the claim is missing.
    pub fn claim_json(&self, name: &str, strict: bool) -> Option<String> {
        self.with_payload(|obj| {
            let v = obj.get(name)?;
            let mut out = String::new();
            write_dumps(&mut out, &v, strict).ok()?;
            Some(out)
        })
    }

    /// The payload as Python's `json.dumps(payload, separators=(",", ":"))`
    /// writes it (duplicate keys resolved as a `dict` does, `ensure_ascii`).
    /// With `strict`, the output is always RFC 8259 JSON: non-finite floats
    /// become `null` and lone surrogates U+FFFD.
    pub fn payload_json(&self, strict: bool) -> String {
        self.with_payload(|obj| {
            let mut out = String::new();
            write_dumps(&mut out, &JsonValue::Object(obj), strict).ok()?;
            Some(out)
        })
        .unwrap_or_else(|| String::from("{}"))
    }
}

/// Why a token was rejected: a contract kind plus SimpleJWT's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenError {
    kind: ErrorKind,
    message: &'static str,
}

impl TokenError {
    /// Builds an error.
    pub const fn new(kind: ErrorKind, message: &'static str) -> Self {
        TokenError { kind, message }
    }
    /// The contract kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// SimpleJWT's wording (`Token is invalid`, `Token is expired`, `Token has wrong type`, …).
    pub fn message(&self) -> &'static str {
        self.message
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl core::error::Error for TokenError {}

/// `{"valid":false,"error":{"kind":…,"message":…}}` (ASCII; both texts are
/// fixed strings of the core, escaped anyway).
pub fn invalid_json(kind: &str, message: &str) -> String {
    let mut out = String::from("{\"valid\":false,\"error\":{\"kind\":");
    push_json_str(&mut out, kind);
    out.push_str(",\"message\":");
    push_json_str(&mut out, message);
    out.push_str("}}");
    out
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                use core::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

const INVALID: &str = "Token is invalid";
const E_TOO_LARGE: TokenError = TokenError::new(ErrorKind::TooLarge, "Token is too large");
const E_MALFORMED: TokenError = TokenError::new(ErrorKind::Malformed, INVALID);
const E_ALG: TokenError = TokenError::new(ErrorKind::BadAlgorithm, INVALID);
const E_SIG: TokenError = TokenError::new(ErrorKind::BadSignature, INVALID);
const E_IMMATURE: TokenError = TokenError::new(ErrorKind::NotYetValid, INVALID);
const E_EXPIRED: TokenError = TokenError::new(ErrorKind::Expired, "Token is expired");
const E_ISSUER: TokenError = TokenError::new(ErrorKind::BadIssuer, INVALID);
const E_AUDIENCE: TokenError = TokenError::new(ErrorKind::BadAudience, INVALID);
const E_NO_EXP: TokenError = TokenError::new(ErrorKind::MissingClaim, "Token has no 'exp' claim");
const E_EXP_NOT_NUMBER: TokenError =
    TokenError::new(ErrorKind::Malformed, "Token 'exp' claim is not a number");
const E_EXP_RANGE: TokenError =
    TokenError::new(ErrorKind::Malformed, "Token 'exp' claim is out of range");
const E_NO_ID: TokenError = TokenError::new(ErrorKind::MissingClaim, "Token has no id");
const E_NO_TYPE: TokenError = TokenError::new(ErrorKind::MissingClaim, "Token has no type");
const E_WRONG_TYPE: TokenError = TokenError::new(ErrorKind::WrongTokenType, "Token has wrong type");

/// `datetime(1, 1, 1, tzinfo=utc).timestamp()`.
const MIN_TIMESTAMP: i64 = -62_135_596_800;
/// `datetime(10000, 1, 1, tzinfo=utc).timestamp()` (year 10000 is out of range).
const MAX_TIMESTAMP_EXCL: i64 = 253_402_300_800;

/// A keyed HMAC state, cloned for every verification.
#[derive(Clone)]
enum KeyState {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

impl fmt::Debug for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyState::Hs256(_) => "KeyState(HS256, <redacted>)",
            KeyState::Hs384(_) => "KeyState(HS384, <redacted>)",
            KeyState::Hs512(_) => "KeyState(HS512, <redacted>)",
        })
    }
}

impl KeyState {
    fn new(alg: Algorithm, key: &SecretKey) -> Result<Self, KeyError> {
        check_hmac_key(key.expose())?;
        let k = key.expose();
        // HMAC accepts keys of any length; the error arm is unreachable in practice.
        Ok(match alg {
            Algorithm::Hs256 => KeyState::Hs256(
                <Hmac<Sha256> as KeyInit>::new_from_slice(k).map_err(|_| KeyError::Empty)?,
            ),
            Algorithm::Hs384 => KeyState::Hs384(
                <Hmac<Sha384> as KeyInit>::new_from_slice(k).map_err(|_| KeyError::Empty)?,
            ),
            Algorithm::Hs512 => KeyState::Hs512(
                <Hmac<Sha512> as KeyInit>::new_from_slice(k).map_err(|_| KeyError::Empty)?,
            ),
        })
    }

    /// Constant-time check of `sig` over `msg`.
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            KeyState::Hs256(m) => mac_verify(m, msg, sig),
            KeyState::Hs384(m) => mac_verify(m, msg, sig),
            KeyState::Hs512(m) => mac_verify(m, msg, sig),
        }
    }

    /// The signature over `msg`, written to `out`; returns its length.
    fn sign(&self, msg: &[u8], out: &mut [u8; 64]) -> usize {
        fn put(out: &mut [u8; 64], tag: &[u8]) -> usize {
            let n = tag.len().min(64);
            if let (Some(dst), Some(src)) = (out.get_mut(..n), tag.get(..n)) {
                dst.copy_from_slice(src);
            }
            n
        }
        match self {
            KeyState::Hs256(m) => put(out, &m.clone().chain_update(msg).finalize().into_bytes()),
            KeyState::Hs384(m) => put(out, &m.clone().chain_update(msg).finalize().into_bytes()),
            KeyState::Hs512(m) => put(out, &m.clone().chain_update(msg).finalize().into_bytes()),
        }
    }
}

/// Clones the keyed state (the key is not hashed again), feeds `msg`, and
/// compares the tag with `sig` in constant time.
#[inline]
fn mac_verify<M: Mac + Clone>(keyed: &M, msg: &[u8], sig: &[u8]) -> bool {
    #[cfg(feature = "counters")]
    crate::counters::count_token_mac();
    let mut mac = keyed.clone();
    mac.update(msg);
    mac.verify_slice(sig).is_ok()
}

/// Verifies access tokens against a key ring (signing key first, then opt-in fallbacks).
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    settings: JwtSettings,
    keys: Vec<KeyState>,
    /// The signing key's HS256 state, stepped on the verify path (`None`
    /// for the other algorithms).
    fast: Option<Hs256Key>,
    /// `settings.user_id_claim`, copied once for every [`VerifiedToken`].
    user_id_claim_name: Option<InlineStr>,
    decoder: b64::Decoder,
    /// The claim names a decision reads (from `settings`).
    names: ClaimNames,
}

impl TokenVerifier {
    /// A verifier for `settings` with the signing key. The key is refused as
    /// PyJWT's `HMACAlgorithm.prepare_key` refuses it: empty, or looking like
    /// a PEM / SSH / DER public key or certificate, or JSON holding a `kty`
    /// member (a JWK).
    pub fn new(settings: JwtSettings, signing_key: SecretKey) -> Result<Self, KeyError> {
        let state = KeyState::new(settings.algorithm, &signing_key)?;
        Ok(TokenVerifier {
            fast: (settings.algorithm == Algorithm::Hs256)
                .then(|| Hs256Key::new(signing_key.expose())),
            user_id_claim_name: InlineStr::new(&settings.user_id_claim),
            decoder: b64::Decoder::new(),
            names: ClaimNames::new(&settings),
            settings,
            keys: alloc::vec![state],
        })
    }

    /// Also accept tokens signed with these keys (SimpleJWT itself does not).
    pub fn with_fallback_keys(
        mut self,
        keys: impl IntoIterator<Item = SecretKey>,
    ) -> Result<Self, KeyError> {
        for k in keys {
            self.keys.push(KeyState::new(self.settings.algorithm, &k)?);
        }
        Ok(self)
    }

    /// The settings.
    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// `AccessToken(token)`'s decision as one JSON object — the shape the
    /// CLI prints and the C ABI returns (DESIGN §5), written in one place:
    /// `{"valid":true,"user_id":<as the token carries it>,"claims":{…}}`
    /// (no `user_id` member when the token has no such claim)
    /// (claims as Python's `json.dumps` writes them, duplicate keys resolved
    /// as a `dict` does, strictly RFC 8259: no `NaN`) or
    /// `{"valid":false,"error":{"kind":"expired","message":"Token is expired"}}`.
    pub fn check_json(&self, token: &str, now: i64) -> (bool, String) {
        match self.verify(token, now) {
            Ok(v) => {
                let mut out = String::from("{\"valid\":true,");
                // A token without the claim (AccessToken accepts it) has no user_id member.
                if let Some(uid) = v.claim_json(&self.settings().user_id_claim, true) {
                    out.push_str("\"user_id\":");
                    out.push_str(&uid);
                    out.push(',');
                }
                out.push_str("\"claims\":");
                out.push_str(&v.payload_json(true));
                out.push('}');
                (true, out)
            }
            Err(e) => (false, invalid_json(e.kind().as_str(), e.message())),
        }
    }

    /// `AccessToken(token)` at time `now` (Unix seconds).
    #[inline]
    pub fn verify<'t>(&self, token: &'t str, now: i64) -> Result<VerifiedToken<'t>, TokenError> {
        // Inlined, with every path returning this one value: the token (over
        // 1 KB) is built where the caller keeps it rather than copied there
        // (the copies were measured on the verify path).
        let mut out = Ok(VerifiedToken {
            token,
            payload_seg: "",
            user_id_claim_name: None,
            exp: 0,
            iat: None,
            user_id: None,
            jti: None,
            is_staff: false,
            is_superuser: false,
            revoke_claim: None,
        });
        if let Ok(t) = &mut out {
            if let Err(e) = self.verify_into(t, now) {
                out = Err(e);
            }
        }
        out
    }

    /// [`verify`](Self::verify), writing the claims into `out` (whose
    /// `token` is set).
    #[inline(never)]
    fn verify_into<'t>(&self, out: &mut VerifiedToken<'t>, now: i64) -> Result<(), TokenError> {
        let token = out.token;
        if token.len() > self.settings.max_token_bytes {
            return Err(E_TOO_LARGE);
        }
        let (signing_input, payload_seg, sig_seg, alg_ok) =
            match split_known(token, self.settings.algorithm) {
                Some((signing_input, payload_seg, sig_seg)) => {
                    (signing_input, payload_seg, sig_seg, true)
                }
                None => self.split_checked(token)?,
            };
        out.payload_seg = payload_seg;
        self.verify_parts(out, signing_input, sig_seg, alg_ok, now)
    }

    /// PyJWT's split (`rsplit(".", 1)` then `split(".", 1)`) and header
    /// checks: `(signing_input, payload_seg, sig_seg, alg_ok)`.
    #[allow(clippy::type_complexity)]
    fn split_checked<'t>(
        &self,
        token: &'t str,
    ) -> Result<(&'t str, &'t str, &'t str, bool), TokenError> {
        let (signing_input, sig_seg) = token.rsplit_once('.').ok_or(E_MALFORMED)?;
        let (header_seg, payload_seg) = signing_input.split_once('.').ok_or(E_MALFORMED)?;
        // Every failure PyJWT reports before the algorithm check is
        // `malformed`, so the header can be settled first, on its own.
        let alg_ok = self.check_header(header_seg.as_bytes())?;
        Ok((signing_input, payload_seg, sig_seg, alg_ok))
    }

    /// [`verify`](Self::verify) once the token is split and its header
    /// checked (`alg_ok`: whether `alg` is the configured algorithm); `out`
    /// has the token and its payload segment.
    #[inline(always)]
    fn verify_parts(
        &self,
        out: &mut VerifiedToken<'_>,
        signing_input: &str,
        sig_seg: &str,
        alg_ok: bool,
        now: i64,
    ) -> Result<(), TokenError> {
        let payload_seg = out.payload_seg;
        let p_need = b64::decoded_len(payload_seg.as_bytes()).map_err(|_| E_MALFORMED)?;
        if let (true, Some(key), HS256_SIGNATURE_CHARS) = (alg_ok, &self.fast, sig_seg.len()) {
            return self.verify_hs256(key, signing_input, sig_seg, p_need, now, out);
        }
        let mut sig = [0u8; 64];
        let sig_len = match b64::decoded_len(sig_seg.as_bytes()) {
            Ok(n) if n <= sig.len() => b64::decode_strict(sig_seg.as_bytes(), &mut sig),
            _ => b64::validate_strict(sig_seg.as_bytes()).map(|_| usize::MAX),
        }
        .map_err(|_| E_MALFORMED)?;
        // PyJWT decodes the payload segment before it checks the algorithm
        // and the signature, so a payload that is not strict base64url is
        // `malformed` whatever follows. The HMAC comes first here all the
        // same: a rejected token's payload is then only checked (cheaper
        // than decoding it), an accepted one's decoded once, after the HMAC.
        let sig = sig.get(..sig_len).unwrap_or(&[]);
        let sig_ok = alg_ok
            && !sig.is_empty()
            && self
                .keys
                .iter()
                .any(|k| k.verify(signing_input.as_bytes(), sig));
        if !sig_ok {
            b64::validate_strict(payload_seg.as_bytes()).map_err(|_| E_MALFORMED)?;
            return Err(if alg_ok { E_SIG } else { E_ALG });
        }
        with_buffer(p_need, |buf| self.verify_in(buf, now, out))
    }

    /// [`verify`](Self::verify) for raw bytes (e.g. a header value); bytes
    /// that are not UTF-8 are `malformed`, as they cannot be base64url.
    pub fn verify_bytes<'t>(
        &self,
        token: &'t [u8],
        now: i64,
    ) -> Result<VerifiedToken<'t>, TokenError> {
        if token.len() > self.settings.max_token_bytes {
            return Err(E_TOO_LARGE);
        }
        let text = core::str::from_utf8(token).map_err(|_| E_MALFORMED)?;
        self.verify(text, now)
    }

    /// The header checks: `Err` when it is malformed, else whether `alg`
    /// is the configured algorithm.
    fn check_header(&self, seg: &[u8]) -> Result<bool, TokenError> {
        let alg = self.settings.algorithm;
        if known_headers(alg).contains(&seg) {
            return Ok(true);
        }
        let need = b64::decoded_len(seg).map_err(|_| E_MALFORMED)?;
        with_buffer(need, |buf| header_outcome(buf, seg, alg))
    }

    /// [`verify_parts`](Self::verify_parts) for an HS256 token with an
    /// unpadded signature segment (43 characters, 32 bytes), on the
    /// stepped HMAC (see [`hs256`]) and the vector base64 decoder
    /// ([`b64::Decoder`]): the signature and the payload are decoded between
    /// the steps of the hash; the payload's JSON is read only once the
    /// signature matched (PyJWT's order: a rejected token costs no scan). The
    /// decision is the sequential path's (the `hmac` crate and the scalar
    /// decoder): a signature or payload segment that is not strict base64url
    /// is `malformed` whatever the signature, a signature that matches no key
    /// is `bad_signature`, and the claims decide only then
    /// (`fast_path_decides_as_the_sequential_path`).
    #[inline(always)]
    fn verify_hs256(
        &self,
        key: &Hs256Key,
        signing_input: &str,
        sig_seg: &str,
        p_need: usize,
        now: i64,
        out: &mut VerifiedToken<'_>,
    ) -> Result<(), TokenError> {
        #[cfg(feature = "counters")]
        crate::counters::count_token_mac();
        let msg = signing_input.as_bytes();
        let mut mac = key.start(msg);
        mac.step();
        let mut sig = [0u8; 32];
        if b64::decode_strict(sig_seg.as_bytes(), &mut sig) != Ok(32) {
            return Err(E_MALFORMED);
        }
        let matched = mac.finish_matches(&sig)
            || self
                .keys
                .get(1..)
                .unwrap_or(&[])
                .iter()
                .any(|k| k.verify(msg, &sig));
        if !matched {
            // PyJWT decodes the payload before it compares the signature: a
            // payload that is not strict base64url is `malformed` whatever
            // the signature. Checking it costs less than decoding it.
            b64::validate_strict(out.payload_seg.as_bytes()).map_err(|_| E_MALFORMED)?;
            return Err(E_SIG);
        }
        with_buffer(p_need, |buf| {
            let n = self
                .decoder
                .decode_strict(out.payload_seg.as_bytes(), buf)
                .map_err(|_| E_MALFORMED)?;
            let payload = buf.get(..n).ok_or(E_MALFORMED)?;
            let mut c = Claims::none();
            c.collect(payload, &self.names).map_err(|_| E_MALFORMED)?;
            self.accept(&c, now, out)
        })
    }

    /// The payload checks of a token whose signature matched; `p_buf`
    /// holds exactly the decoded payload.
    fn verify_in(
        &self,
        p_buf: &mut [u8],
        now: i64,
        out: &mut VerifiedToken<'_>,
    ) -> Result<(), TokenError> {
        let p_len =
            b64::decode_strict(out.payload_seg.as_bytes(), p_buf).map_err(|_| E_MALFORMED)?;
        // Payload.
        let payload_bytes = p_buf.get(..p_len).ok_or(E_MALFORMED)?;
        let mut c = Claims::none();
        c.collect(payload_bytes, &self.names)
            .map_err(|_| E_MALFORMED)?;
        self.accept(&c, now, out)
    }

    /// The claim checks of a token whose signature matched, and the
    /// claims a caller reads written into `out`.
    #[inline(always)]
    fn accept(
        &self,
        c: &Claims<'_>,
        now: i64,
        out: &mut VerifiedToken<'_>,
    ) -> Result<(), TokenError> {
        let s = &self.settings;
        self.check_claims(c, now)?;
        let exp = c.get(Slot::Exp).ok_or(E_NO_EXP)?;
        let exp = check_fromtimestamp(exp)?;
        if c.get(Slot::JtiClaim).is_none() {
            return Err(E_NO_ID);
        }
        match c.get(Slot::TokenType) {
            None => return Err(E_NO_TYPE),
            Some(JsonValue::Str(t)) if t.eq_str(&s.token_type) => {}
            Some(_) => return Err(E_WRONG_TYPE),
        }
        // Written in place: the inline strings are large.
        out.exp = exp;
        out.iat = c
            .get(Slot::Iat)
            .and_then(|v| pyint::int_of_json(v).ok())
            .and_then(PyInt::to_i64);
        match c.get(Slot::UserId) {
            None => out.user_id = None,
            Some(JsonValue::Str(v)) => {
                if let ClaimValue::Str(slot) =
                    out.user_id.insert(ClaimValue::Str(InlineStr::empty()))
                {
                    if !v.write_inline(slot) {
                        out.user_id = Some(ClaimValue::Other);
                    }
                }
            }
            Some(v) => out.user_id = Some(ClaimValue::from_json(v)),
        }
        // `user_key` reads the claim again only for these.
        if matches!(out.user_id, Some(ClaimValue::Other | ClaimValue::BigInt(_))) {
            out.user_id_claim_name = self.user_id_claim_name;
        }
        set_inline(&mut out.jti, c.get(Slot::JtiClaim));
        out.is_staff = c.get(Slot::IsStaff).is_some_and(truthy);
        out.is_superuser = c.get(Slot::IsSuperuser).is_some_and(truthy);
        set_inline(&mut out.revoke_claim, c.get(Slot::Revoke));
        Ok(())
    }

    /// PyJWT's `_validate_claims` with SimpleJWT's options.
    fn check_claims(&self, c: &Claims<'_>, now: i64) -> Result<(), TokenError> {
        let s = &self.settings;
        // Python compares unbounded integers: `now ± leeway` (i64 ± u32) is
        // exact in i128 (it can never saturate), and so is every comparison
        // with a claim, huge claims included (`PyInt::Huge`).
        let leeway = i128::from(s.leeway);
        let latest = i128::from(now).saturating_add(leeway);
        let earliest = i128::from(now).saturating_sub(leeway);
        if let Some(v) = c.get(Slot::Iat) {
            let iat = pyint::int_of_json(v).map_err(|_| E_MALFORMED)?;
            if iat.cmp_i128(latest) == Ordering::Greater {
                return Err(E_IMMATURE);
            }
        }
        if let Some(v) = c.get(Slot::Nbf) {
            let nbf = pyint::int_of_json(v).map_err(|_| E_MALFORMED)?;
            if nbf.cmp_i128(latest) == Ordering::Greater {
                return Err(E_IMMATURE);
            }
        }
        if let Some(v) = c.get(Slot::Exp) {
            let exp = pyint::int_of_json(v).map_err(|_| E_MALFORMED)?;
            if exp.cmp_i128(earliest) != Ordering::Greater {
                return Err(E_EXPIRED);
            }
        }
        if let Some(issuer) = &s.issuer {
            match c.get(Slot::Iss) {
                Some(JsonValue::Str(iss)) if iss.eq_str(issuer) => {}
                _ => return Err(E_ISSUER),
            }
        }
        if let Some(audience) = &s.audience {
            let aud = match c.get(Slot::Aud) {
                Some(v) if truthy(v) => *v,
                _ => return Err(E_AUDIENCE),
            };
            let matched = match aud {
                JsonValue::Str(a) => a.eq_str(audience),
                JsonValue::Array(list) => {
                    let mut found = false;
                    for item in list.iter() {
                        let JsonValue::Str(a) = item else {
                            return Err(E_AUDIENCE);
                        };
                        found |= a.eq_str(audience);
                    }
                    found
                }
                _ => return Err(E_AUDIENCE),
            };
            if !matched {
                return Err(E_AUDIENCE);
            }
        }
        if matches!(c.get(Slot::Sub), Some(v) if !matches!(v, JsonValue::Str(_))) {
            return Err(E_MALFORMED);
        }
        if matches!(c.get(Slot::Jti), Some(v) if !matches!(v, JsonValue::Str(_))) {
            return Err(E_MALFORMED);
        }
        Ok(())
    }

    /// Mints a token shaped like SimpleJWT's, signed with the signing key.
    /// Values that JSON cannot carry from a [`ClaimValue`] (`BigInt`, `Other`)
    /// are written as `null`; use [`try_mint`](Self::try_mint) to refuse them.
    pub fn mint(&self, req: &MintRequest<'_>, now: i64) -> String {
        self.mint_inner(req, now, false).unwrap_or_default()
    }

    /// [`mint`](Self::mint), refusing values it cannot write and an `exp` overflow.
    pub fn try_mint(&self, req: &MintRequest<'_>, now: i64) -> Result<String, MintError> {
        self.mint_inner(req, now, true)
    }

    fn mint_inner(
        &self,
        req: &MintRequest<'_>,
        now: i64,
        strict: bool,
    ) -> Result<String, MintError> {
        let s = &self.settings;
        let exp = now
            .checked_add(req.lifetime)
            .ok_or(MintError::ExpOverflow)?;
        // Python dict semantics: a repeated key keeps its first position, takes the last value.
        let mut claims: Vec<(&str, MintValue<'_>)> =
            Vec::with_capacity(req.extra.len().saturating_add(7));
        let mut set = |k, v| {
            if let Some(slot) = claims.iter_mut().find(|(name, _)| *name == k) {
                slot.1 = v;
            } else {
                claims.push((k, v));
            }
        };
        set(s.token_type_claim.as_str(), MintValue::Text(&s.token_type));
        set("exp", MintValue::Int(exp));
        set("iat", MintValue::Int(now));
        set(s.jti_claim.as_str(), MintValue::Text(req.jti));
        set(s.user_id_claim.as_str(), MintValue::Claim(&req.user_id));
        for (k, v) in req.extra {
            set(k, MintValue::Claim(v));
        }
        if let Some(a) = &s.audience {
            set("aud", MintValue::Text(a));
        }
        if let Some(i) = &s.issuer {
            set("iss", MintValue::Text(i));
        }
        let mut payload = String::with_capacity(160);
        payload.push('{');
        for (n, (k, v)) in claims.iter().enumerate() {
            if n > 0 {
                payload.push(',');
            }
            json::write_py_str(&mut payload, k.chars().map(u32::from));
            payload.push(':');
            match v {
                MintValue::Text(t) => json::write_py_str(&mut payload, t.chars().map(u32::from)),
                MintValue::Int(i) => write_claim(&mut payload, &ClaimValue::Int(*i), strict)?,
                MintValue::Claim(c) => write_claim(&mut payload, c, strict)?,
            }
        }
        payload.push('}');

        let header = match s.algorithm {
            Algorithm::Hs256 => r#"{"alg":"HS256","typ":"JWT"}"#,
            Algorithm::Hs384 => r#"{"alg":"HS384","typ":"JWT"}"#,
            Algorithm::Hs512 => r#"{"alg":"HS512","typ":"JWT"}"#,
        };
        let signing_len = b64::encoded_len(header.len().saturating_add(payload.len()));
        let mut token = String::with_capacity(signing_len.saturating_add(90));
        b64::encode_into(header.as_bytes(), &mut token);
        token.push('.');
        b64::encode_into(payload.as_bytes(), &mut token);
        let mut sig = [0u8; 64];
        let key = self.keys.first().ok_or(MintError::NoKey)?;
        let n = key.sign(token.as_bytes(), &mut sig);
        token.push('.');
        b64::encode_into(sig.get(..n).unwrap_or(&[]), &mut token);
        Ok(token)
    }
}

enum MintValue<'a> {
    Text(&'a str),
    Int(i64),
    Claim(&'a ClaimValue),
}

fn write_claim(out: &mut String, c: &ClaimValue, strict: bool) -> Result<(), MintError> {
    use core::fmt::Write as _;
    match c {
        ClaimValue::Null => out.push_str("null"),
        ClaimValue::Bool(true) => out.push_str("true"),
        ClaimValue::Bool(false) => out.push_str("false"),
        ClaimValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        ClaimValue::Float(f) => {
            let _ = json::write_py_float(out, *f);
        }
        ClaimValue::Str(s) => json::write_py_str(out, s.as_str().chars().map(u32::from)),
        ClaimValue::BigInt(_) | ClaimValue::Other => {
            if strict {
                return Err(MintError::Unrepresentable);
            }
            out.push_str("null");
        }
    }
    Ok(())
}

/// Why [`TokenVerifier::try_mint`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MintError {
    /// A claim value is `ClaimValue::BigInt` or `ClaimValue::Other`, which carry no value to write.
    Unrepresentable,
    /// `now + lifetime` overflows.
    ExpOverflow,
    /// The verifier has no key (cannot happen through the public constructors).
    NoKey,
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MintError::Unrepresentable => "a claim value cannot be written as JSON",
            MintError::ExpOverflow => "exp is out of range",
            MintError::NoKey => "no signing key",
        })
    }
}

impl core::error::Error for MintError {}

/// Sets `slot` to the string `v` when it is one an [`InlineStr`] holds, else `None`.
fn set_inline(slot: &mut Option<InlineStr>, v: Option<&JsonValue<'_>>) {
    match v {
        Some(JsonValue::Str(v)) => {
            if !v.write_inline(slot.insert(InlineStr::empty())) {
                *slot = None;
            }
        }
        _ => *slot = None,
    }
}

/// SimpleJWT's `datetime.fromtimestamp(exp, tz=utc)` on the raw value:
/// numeric strings raise `TypeError`, years outside 1–9999 `ValueError` /
/// `OverflowError` / `OSError`. Returns `int(exp)`.
fn check_fromtimestamp(v: &JsonValue<'_>) -> Result<i64, TokenError> {
    let in_range = match v {
        JsonValue::Str(_) => return Err(E_EXP_NOT_NUMBER),
        JsonValue::Float(f) => *f >= MIN_TIMESTAMP as f64 && *f < MAX_TIMESTAMP_EXCL as f64,
        JsonValue::Bool(_) | JsonValue::Int(_) | JsonValue::BigInt(_) => {
            let i = pyint::int_of_json(v).map_err(|_| E_MALFORMED)?;
            i.cmp_i128(i128::from(MIN_TIMESTAMP)) != Ordering::Less
                && i.cmp_i128(i128::from(MAX_TIMESTAMP_EXCL)) == Ordering::Less
        }
        // int() already refused these in the claim checks.
        JsonValue::Null | JsonValue::Array(_) | JsonValue::Object(_) => return Err(E_MALFORMED),
    };
    if !in_range {
        return Err(E_EXP_RANGE);
    }
    pyint::int_of_json(v)
        .ok()
        .and_then(PyInt::to_i64)
        .ok_or(E_EXP_RANGE)
}

/// Decodes the header segment `seg` into `buf` and runs PyJWT's header
/// checks: `Err` when it is malformed, else whether `alg` is `want`.
fn header_outcome(buf: &mut [u8], seg: &[u8], want: Algorithm) -> Result<bool, TokenError> {
    let h_len = b64::decode_strict(seg, buf).map_err(|_| E_MALFORMED)?;
    let h_buf = buf.get(..h_len).ok_or(E_MALFORMED)?;
    let header = json::parse_object(h_buf, Encoding::Utf8).map_err(|_| E_MALFORMED)?;
    let mut alg = None;
    let mut kid = None;
    let mut crit = None;
    let mut b64_member = None;
    for (k, v) in header.members() {
        if k.eq_str("alg") {
            alg = Some(v);
        } else if k.eq_str("kid") {
            kid = Some(v);
        } else if k.eq_str("crit") {
            crit = Some(v);
        } else if k.eq_str("b64") {
            b64_member = Some(v);
        }
    }
    // `b64: false` (detached payload) is never accepted here.
    if b64_member == Some(JsonValue::Bool(false)) {
        return Err(E_MALFORMED);
    }
    if let Some(v) = kid {
        if !matches!(v, JsonValue::Str(_)) {
            return Err(E_MALFORMED);
        }
    }
    if let Some(v) = crit {
        let JsonValue::Array(list) = v else {
            return Err(E_MALFORMED);
        };
        if list.is_empty() {
            return Err(E_MALFORMED);
        }
        for item in list.iter() {
            let ok = matches!(item, JsonValue::Str(st) if st.eq_str("b64")) && b64_member.is_some();
            if !ok {
                return Err(E_MALFORMED);
            }
        }
    }
    Ok(matches!(alg, Some(JsonValue::Str(a)) if a.eq_str(want.as_str())))
}

/// Runs `f` on a zeroed buffer of `need` bytes: on the stack when it fits
/// (every segment of a token within the default size limit; a small buffer
/// for a typical one, so that only that much is zeroed), else on the heap.
fn with_buffer<R>(need: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    if need <= TYPICAL_DECODE_BYTES {
        let mut typical = [0u8; TYPICAL_DECODE_BYTES];
        if let Some(buf) = typical.get_mut(..need) {
            return f(buf);
        }
    }
    if need <= SMALL_DECODE_BYTES {
        let mut small = [0u8; SMALL_DECODE_BYTES];
        if let Some(buf) = small.get_mut(..need) {
            return f(buf);
        }
    }
    with_large_buffer(need, f)
}

#[inline(never)]
fn with_large_buffer<R>(need: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut stack = [0u8; STACK_DECODE_BYTES];
    match stack.get_mut(..need) {
        Some(buf) => f(buf),
        None => {
            let mut heap = alloc::vec![0u8; need];
            f(&mut heap)
        }
    }
}

// ------------------------------------------------------------ json.dumps of a payload

fn write_dumps(out: &mut String, v: &JsonValue<'_>, strict: bool) -> fmt::Result {
    use core::fmt::Write as _;
    match v {
        JsonValue::Null => out.push_str("null"),
        JsonValue::Bool(true) => out.push_str("true"),
        JsonValue::Bool(false) => out.push_str("false"),
        JsonValue::Int(i) => write!(out, "{i}")?,
        JsonValue::BigInt(b) => {
            if b.negative() {
                out.push('-');
            }
            for &d in b.digits() {
                out.push(char::from(d));
            }
        }
        JsonValue::Float(f) => {
            if strict && !f.is_finite() {
                out.push_str("null");
            } else {
                json::write_py_float(out, *f)?;
            }
        }
        JsonValue::Str(s) => write_dumps_str(out, s, strict),
        JsonValue::Array(a) => {
            out.push('[');
            for (n, item) in a.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_dumps(out, &item, strict)?;
            }
            out.push(']');
        }
        JsonValue::Object(o) => {
            // dict semantics: first position, last value.
            let mut members: Vec<(JsonStr<'_>, JsonValue<'_>)> = Vec::new();
            for (k, val) in o.members() {
                match members.iter_mut().find(|(k2, _)| k2.chars().eq(k.chars())) {
                    Some(slot) => slot.1 = val,
                    None => members.push((k, val)),
                }
            }
            out.push('{');
            for (n, (k, val)) in members.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_dumps_str(out, k, strict);
                out.push(':');
                write_dumps(out, val, strict)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_dumps_str(out: &mut String, s: &JsonStr<'_>, strict: bool) {
    if strict {
        json::write_py_str(
            out,
            s.chars().map(|c| {
                if (0xD800..0xE000).contains(&c) {
                    0xFFFD
                } else {
                    c
                }
            }),
        );
    } else {
        json::write_py_str(out, s.chars());
    }
}

// ------------------------------------------------------------ Authorization header

/// The `Authorization` header has the configured type but not exactly two
/// parts (DRF `AuthenticationFailed`, code `bad_authorization_header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthHeaderError;

impl AuthHeaderError {
    /// The contract kind (`malformed`).
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Malformed
    }
    /// DRF's message.
    pub fn message(&self) -> &'static str {
        "Authorization header must contain two space-delimited values"
    }
}

impl fmt::Display for AuthHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for AuthHeaderError {}

/// `JWTAuthentication.get_raw_token`: splits the header value on ASCII
/// whitespace runs (`bytes.split()`); `Ok(None)` when it is empty or its first
/// part is not exactly one of `types` (`AUTH_HEADER_TYPES`, compared as
/// ISO-8859-1 bytes, case-sensitive); an error when there are not exactly two
/// parts; else the raw token.
pub fn bearer_from_authorization<'a>(
    header: &'a [u8],
    types: &[&str],
) -> Result<Option<&'a [u8]>, AuthHeaderError> {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C);
    let mut parts = header.split(is_ws).filter(|p| !p.is_empty());
    let Some(first) = parts.next() else {
        return Ok(None);
    };
    let matches_type = |t: &&str| {
        let mut bytes = first.iter();
        t.chars()
            .all(|c| match (u8::try_from(u32::from(c)), bytes.next()) {
                (Ok(want), Some(&got)) => want == got,
                _ => false,
            })
            && bytes.next().is_none()
    };
    if !types.iter().any(matches_type) {
        return Ok(None);
    }
    match (parts.next(), parts.next()) {
        (Some(token), None) => Ok(Some(token)),
        _ => Err(AuthHeaderError),
    }
}

// ------------------------------------------------------------ key checks (prepare_key)

/// PyJWT `HMACAlgorithm.prepare_key`'s refusals.
fn check_hmac_key(key: &[u8]) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if is_pem_format(key) || is_ssh_key(key) || looks_like_der_key(key) || looks_like_jwk(key) {
        return Err(KeyError::AsymmetricLooking);
    }
    Ok(())
}

const PEM_LABELS: [&[u8]; 16] = [
    b"CERTIFICATE",
    b"TRUSTED CERTIFICATE",
    b"PRIVATE KEY",
    b"PUBLIC KEY",
    b"ENCRYPTED PRIVATE KEY",
    b"OPENSSH PRIVATE KEY",
    b"DSA PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"RSA PUBLIC KEY",
    b"EC PRIVATE KEY",
    b"DH PARAMETERS",
    b"NEW CERTIFICATE REQUEST",
    b"CERTIFICATE REQUEST",
    b"SSH2 PUBLIC KEY",
    b"SSH2 ENCRYPTED PRIVATE KEY",
    b"X509 CRL",
];

/// `jwt.utils.is_pem_format`: a `----[- ]BEGIN <label>[- ]----` marker
/// followed later by the matching END marker.
fn is_pem_format(key: &[u8]) -> bool {
    let mut begin_end: [Option<usize>; 16] = [None; 16];
    for i in 0..key.len() {
        let Some(rest) = key.get(i..) else { break };
        let Some(rest) = rest.strip_prefix(b"----") else {
            continue;
        };
        let Some((sep, rest)) = rest.split_first() else {
            continue;
        };
        if *sep != b'-' && *sep != b' ' {
            continue;
        }
        let (is_begin, rest) = if let Some(r) = rest.strip_prefix(b"BEGIN ") {
            (true, r)
        } else if let Some(r) = rest.strip_prefix(b"END ") {
            (false, r)
        } else {
            continue;
        };
        for (li, label) in PEM_LABELS.iter().enumerate() {
            let Some(r) = rest.strip_prefix(*label) else {
                continue;
            };
            let Some((sep2, r)) = r.split_first() else {
                continue;
            };
            if (*sep2 != b'-' && *sep2 != b' ') || !r.starts_with(b"----") {
                continue;
            }
            // `----` + sep + `BEGIN ` / `END ` + label + sep + `----`.
            let fixed: usize = if is_begin { 16 } else { 14 };
            let marker_len = label.len().saturating_add(fixed);
            if is_begin {
                if let Some(slot) = begin_end.get_mut(li) {
                    *slot = Some(i.saturating_add(marker_len));
                }
            } else if matches!(begin_end.get(li), Some(Some(b)) if *b < i) {
                return true;
            }
            break;
        }
    }
    false
}

/// `jwt.utils.is_ssh_key`.
fn is_ssh_key(key: &[u8]) -> bool {
    const PREFIXES: [&[u8]; 6] = [
        b"ssh-ed25519",
        b"ssh-rsa",
        b"ssh-dss",
        b"ecdsa-sha2-nistp256",
        b"ecdsa-sha2-nistp384",
        b"ecdsa-sha2-nistp521",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p))
}

/// One DER TLV at the start of `s`: (tag, contents, rest).
fn der_tlv(s: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = s.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let (lb, rest) = rest.split_at_checked(n)?;
        (
            lb.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)),
            rest,
        )
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The tags of the TLVs that exactly fill `s` (up to 4).
fn der_children(s: &[u8]) -> Option<([u8; 4], usize)> {
    let mut tags = [0u8; 4];
    let mut n = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let (tag, _, r) = der_tlv(rest)?;
        *tags.get_mut(n)? = tag;
        // `n` indexed `tags`, so it is at most 4 after this.
        n = n.saturating_add(1);
        rest = r;
    }
    Some((tags, n))
}

/// A structural stand-in for cryptography's `load_der_public_key` /
/// `load_der_x509_certificate` succeeding: a SubjectPublicKeyInfo, a PKCS#1
/// RSA public key or an X.509 certificate shape filling the whole key.
fn looks_like_der_key(key: &[u8]) -> bool {
    let Some((0x30, body, [])) = der_tlv(key) else {
        return false;
    };
    let Some((tags, n)) = der_children(body) else {
        return false;
    };
    match tags.get(..n) {
        // SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }.
        Some([0x30, 0x03]) => {
            matches!(der_tlv(body), Some((0x30, alg, _)) if matches!(der_tlv(alg), Some((0x06, _, _))))
        }
        // RSAPublicKey: SEQUENCE { INTEGER, INTEGER }.
        Some([0x02, 0x02]) => true,
        // Certificate: SEQUENCE { tbsCertificate, signatureAlgorithm, signature }.
        Some([0x30, 0x30, 0x03]) => true,
        _ => false,
    }
}

/// PyJWT's JWK refusal: the key parses as JSON holding, at any depth, an
/// object with a `kty` member. Too deeply nested JSON falls back to PyJWT's
/// textual check.
fn looks_like_jwk(key: &[u8]) -> bool {
    match json::parse_with(key, Encoding::Utf8, json::IntDigits::Unlimited) {
        Ok(v) => has_kty(&v, 0),
        Err(json::JsonError::TooDeep) => {
            let text = key.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(key);
            let start = text
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
            match start.and_then(|i| text.get(i)) {
                Some(b'{') => true,
                Some(b'[') => text.windows(5).enumerate().any(|(i, w)| {
                    w == b"\"kty\""
                        && text.get(i.saturating_add(5)..).and_then(|r| {
                            r.iter()
                                .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                        }) == Some(&b':')
                }),
                _ => false,
            }
        }
        Err(_) => false,
    }
}

fn has_kty(v: &JsonValue<'_>, depth: usize) -> bool {
    if depth > json::MAX_DEPTH {
        return false;
    }
    match v {
        JsonValue::Object(o) => {
            o.members().any(|(k, _)| k.eq_str("kty"))
                || o.members()
                    .any(|(_, val)| has_kty(&val, depth.saturating_add(1)))
        }
        JsonValue::Array(a) => a.iter().any(|val| has_kty(&val, depth.saturating_add(1))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_checks() {
        let rows: &[(&[u8], Result<(), KeyError>)] = &[
            (b"", Err(KeyError::Empty)),
            (b"secret", Ok(())),
            (
                b"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
                Err(KeyError::AsymmetricLooking),
            ),
            (
                b"---- BEGIN SSH2 PUBLIC KEY ----\nx\n---- END SSH2 PUBLIC KEY ----",
                Err(KeyError::AsymmetricLooking),
            ),
            (
                b"-----END PUBLIC KEY----- -----BEGIN PUBLIC KEY-----",
                Ok(()),
            ),
            (
                b"-----BEGIN PUBLIC KEY----- -----END PRIVATE KEY-----",
                Ok(()),
            ),
            (b"ssh-rsa AAAAB3NzaC1yc2E", Err(KeyError::AsymmetricLooking)),
            (b"xssh-rsa", Ok(())),
            (
                br#"{"kty":"oct","k":"abc"}"#,
                Err(KeyError::AsymmetricLooking),
            ),
            (
                br#"[{"keys":[{"kty":"RSA"}]}]"#,
                Err(KeyError::AsymmetricLooking),
            ),
            (br#"{"kid":"x"}"#, Ok(())),
            (br#"{"k\u0074y":1}"#, Err(KeyError::AsymmetricLooking)),
            // SPKI shape: SEQUENCE { SEQUENCE { OID }, BIT STRING }.
            (
                &[
                    0x30, 0x09, 0x30, 0x03, 0x06, 0x01, 0x2a, 0x03, 0x02, 0x00, 0x01,
                ],
                Err(KeyError::AsymmetricLooking),
            ),
            (
                &[0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03],
                Err(KeyError::AsymmetricLooking),
            ),
            (b"0\x06\x02\x01\x05\x02\x01\x03trailing", Ok(())),
        ];
        for (key, want) in rows {
            assert_eq!(
                check_hmac_key(key),
                *want,
                "{:?}",
                core::str::from_utf8(key)
            );
        }
        // Nesting beyond CPython's recursion limit: PyJWT's textual fallback.
        let n = 1500;
        assert_eq!(check_hmac_key("[".repeat(n).as_bytes()), Ok(()));
        assert_eq!(
            check_hmac_key(alloc::format!("  {}", "[".repeat(n)).as_bytes()),
            Ok(())
        );
        let list_with_kty = alloc::format!("{}\"kty\" :", "[".repeat(n));
        assert_eq!(
            check_hmac_key(list_with_kty.as_bytes()),
            Err(KeyError::AsymmetricLooking)
        );
        let deep_obj = "{\"a\":".repeat(n);
        assert_eq!(
            check_hmac_key(deep_obj.as_bytes()),
            Err(KeyError::AsymmetricLooking)
        );
        let closed = alloc::format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        assert_eq!(
            check_hmac_key(closed.as_bytes()),
            Err(KeyError::AsymmetricLooking)
        );
        // Shallow enough for CPython: parsed, no `kty`, accepted.
        let shallow = alloc::format!("{}1{}", "{\"a\":".repeat(50), "}".repeat(50));
        assert_eq!(check_hmac_key(shallow.as_bytes()), Ok(()));
    }

    const KEY: &str = "unit-test-secret-0123456789abcdef";

    fn sign(alg: Algorithm, header: &str, payload: &str) -> String {
        let state = KeyState::new(alg, &SecretKey::from(KEY)).unwrap();
        let mut t = String::new();
        b64::encode_into(header.as_bytes(), &mut t);
        t.push('.');
        b64::encode_into(payload.as_bytes(), &mut t);
        let mut sig = [0u8; 64];
        let n = state.sign(t.as_bytes(), &mut sig);
        t.push('.');
        b64::encode_into(&sig[..n], &mut t);
        t
    }

    fn check(settings: JwtSettings, token: &str, now: i64) -> Result<(), ErrorKind> {
        let v = TokenVerifier::new(settings, SecretKey::from(KEY)).unwrap();
        v.verify(token, now).map(|_| ()).map_err(|e| e.kind())
    }

    #[test]
    fn check_json_is_strict_and_keeps_the_user_id_as_carried() {
        const H: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
        let v = TokenVerifier::new(JwtSettings::default(), SecretKey::from(KEY)).unwrap();
        let rows: &[(&str, &str)] = &[
            // Big integers keep every digit; the last duplicate wins, as in a dict.
            (
                r#"{"token_type":"access","exp":2000000000,"jti":"j","user_id":1,"user_id":123456789012345678901234567891}"#,
                r#"{"valid":true,"user_id":123456789012345678901234567891,"claims":{"token_type":"access","exp":2000000000,"jti":"j","user_id":123456789012345678901234567891}}"#,
            ),
            // NaN never reaches a JSON reader; a string id stays a string.
            (
                r#"{"token_type":"access","exp":2000000000,"jti":"j","user_id":"7","f":NaN}"#,
                r#"{"valid":true,"user_id":"7","claims":{"token_type":"access","exp":2000000000,"jti":"j","user_id":"7","f":null}}"#,
            ),
            // No user id claim: no user_id member.
            (
                r#"{"token_type":"access","exp":2000000000,"jti":"j"}"#,
                r#"{"valid":true,"claims":{"token_type":"access","exp":2000000000,"jti":"j"}}"#,
            ),
            (
                r#"{"token_type":"access","exp":1,"jti":"j","user_id":1}"#,
                r#"{"valid":false,"error":{"kind":"expired","message":"Token is expired"}}"#,
            ),
        ];
        for (payload, want) in rows {
            let (valid, got) = v.check_json(&sign(Algorithm::Hs256, H, payload), 1_750_000_000);
            assert_eq!(got, *want, "{payload}");
            assert_eq!(valid, want.starts_with(r#"{"valid":true"#));
        }
    }

    #[test]
    fn payload_bytes_are_the_signed_payload_as_sent() {
        const H: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
        let v = TokenVerifier::new(JwtSettings::default(), SecretKey::from(KEY)).unwrap();
        // Duplicates, NaN, big integers, escapes and raw UTF-8 stay exactly
        // as signed: the host's `json.loads` reads them as PyJWT does.
        let payloads = [
            r#"{"token_type":"access","exp":2000000000,"jti":"j","user_id":"1","user_id":"2"}"#,
            r#"{"token_type":"access","exp":2000000000,"jti":"j","f":NaN,"g":-Infinity}"#,
            r#"{"token_type":"access","exp":2000000000,"jti":"j","n":123456789012345678901234567891}"#,
            "{\"token_type\":\"access\",\"exp\":2000000000,\"jti\":\"j\",\"s\":\"\\ud800 Zo\u{eb}\"}",
            r#" { "token_type" : "access" , "exp" : 2000000000 , "jti" : "j" } "#,
        ];
        for payload in payloads {
            let token = sign(Algorithm::Hs256, H, payload);
            let verified = v.verify(&token, 1_750_000_000).unwrap();
            let got = verified.with_payload_bytes(|b| b.to_vec());
            assert_eq!(got.as_deref(), Some(payload.as_bytes()), "{payload}");
        }
        let big = alloc::format!(
            r#"{{"token_type":"access","exp":2000000000,"jti":"j","pad":"{}"}}"#,
            "x".repeat(7000)
        );
        let settings = JwtSettings {
            max_token_bytes: 64 * 1024,
            ..JwtSettings::default()
        };
        let v = TokenVerifier::new(settings, SecretKey::from(KEY)).unwrap();
        let token = sign(Algorithm::Hs256, H, &big);
        let verified = v.verify(&token, 1_750_000_000).unwrap();
        assert_eq!(
            verified.with_payload_bytes(|b| b == big.as_bytes()),
            Some(true)
        );
    }

    #[test]
    fn verify_table() {
        const H: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
        let base = |extra: &str| {
            alloc::format!(
                r#"{{"token_type":"access","exp":1000,"iat":900,"jti":"j","user_id":"1"{extra}}}"#
            )
        };
        let d = JwtSettings::default;
        let rows: &[(JwtSettings, String, i64, Result<(), ErrorKind>)] = &[
            (d(), sign(Algorithm::Hs256, H, &base("")), 999, Ok(())),
            (
                d(),
                sign(Algorithm::Hs256, H, &base("")),
                1000,
                Err(ErrorKind::Expired),
            ),
            (
                JwtSettings { leeway: 5, ..d() },
                sign(Algorithm::Hs256, H, &base("")),
                1004,
                Ok(()),
            ),
            (
                d(),
                sign(Algorithm::Hs256, H, &base(r#","nbf":1000"#)),
                999,
                Err(ErrorKind::NotYetValid),
            ),
            (
                d(),
                sign(Algorithm::Hs256, H, &base(r#","iat":-1e300"#)),
                999,
                Ok(()),
            ),
            (
                d(),
                sign(Algorithm::Hs256, H, &base(r#","exp":1e30"#)),
                999,
                Err(ErrorKind::Malformed),
            ),
            (
                d(),
                sign(Algorithm::Hs256, H, &base(r#","exp":"5000""#)),
                999,
                Err(ErrorKind::Malformed),
            ),
            (
                d(),
                sign(Algorithm::Hs256, H, &base(r#","exp":"500""#)),
                999,
                Err(ErrorKind::Expired),
            ),
            (
                d(),
                sign(Algorithm::Hs384, r#"{"alg":"HS384"}"#, &base("")),
                999,
                Err(ErrorKind::BadAlgorithm),
            ),
            (
                JwtSettings {
                    algorithm: Algorithm::Hs384,
                    ..d()
                },
                sign(Algorithm::Hs384, r#"{"alg":"HS384"}"#, &base("")),
                999,
                Ok(()),
            ),
            (
                JwtSettings {
                    algorithm: Algorithm::Hs512,
                    ..d()
                },
                sign(Algorithm::Hs256, r#"{"alg":"HS512"}"#, &base("")),
                999,
                Err(ErrorKind::BadSignature),
            ),
            (
                d(),
                sign(
                    Algorithm::Hs256,
                    r#"{"alg":"HS256","alg":"none"}"#,
                    &base(""),
                ),
                999,
                Err(ErrorKind::BadAlgorithm),
            ),
            (
                d(),
                sign(
                    Algorithm::Hs256,
                    r#"{"alg":"none","alg":"HS256"}"#,
                    &base(""),
                ),
                999,
                Ok(()),
            ),
            (
                d(),
                sign(Algorithm::Hs256, H, &base(r#","token_type":"refresh""#)),
                999,
                Err(ErrorKind::WrongTokenType),
            ),
            (
                d(),
                sign(Algorithm::Hs256, H, &base(r#","\u0065xp":10"#)),
                999,
                Err(ErrorKind::Expired),
            ),
            (
                JwtSettings {
                    audience: Some("a".into()),
                    ..d()
                },
                sign(Algorithm::Hs256, H, &base(r#","aud":["b","a"]"#)),
                999,
                Ok(()),
            ),
            (
                JwtSettings {
                    audience: Some("a".into()),
                    ..d()
                },
                sign(Algorithm::Hs256, H, &base(r#","aud":0"#)),
                999,
                Err(ErrorKind::BadAudience),
            ),
            (
                JwtSettings {
                    issuer: Some("i".into()),
                    ..d()
                },
                sign(Algorithm::Hs256, H, &base(r#","iss":"i""#)),
                999,
                Ok(()),
            ),
            (
                JwtSettings {
                    max_token_bytes: 10,
                    ..d()
                },
                "aaaaaaaaaaa".into(),
                0,
                Err(ErrorKind::TooLarge),
            ),
            (
                JwtSettings {
                    max_token_bytes: 11,
                    ..d()
                },
                "aaaaaaaaaaa".into(),
                0,
                Err(ErrorKind::Malformed),
            ),
        ];
        for (n, (settings, token, now, want)) in rows.iter().enumerate() {
            assert_eq!(
                check(settings.clone(), token, *now),
                *want,
                "row {n}: {token}"
            );
        }
    }

    #[test]
    fn known_headers_decide_as_the_full_path() {
        for alg in [Algorithm::Hs256, Algorithm::Hs384, Algorithm::Hs512] {
            let a = alg.as_str();
            let texts = [
                alloc::format!(r#"{{"alg":"{a}","typ":"JWT"}}"#),
                alloc::format!(r#"{{"typ":"JWT","alg":"{a}"}}"#),
                alloc::format!(r#"{{"alg":"{a}"}}"#),
            ];
            for (seg, text) in known_headers(alg).iter().zip(&texts) {
                let mut enc = String::new();
                b64::encode_into(text.as_bytes(), &mut enc);
                assert_eq!(enc.as_bytes(), *seg, "{text}");
                let mut buf = [0u8; 64];
                assert_eq!(header_outcome(&mut buf, seg, alg), Ok(true), "{text}");
            }
        }
        // Another algorithm's known header takes the full path and is refused.
        let v = TokenVerifier::new(
            JwtSettings {
                algorithm: Algorithm::Hs384,
                ..JwtSettings::default()
            },
            SecretKey::from(KEY),
        )
        .unwrap();
        assert_eq!(
            v.check_header(known_headers(Algorithm::Hs256)[0]),
            Ok(false)
        );
        assert_eq!(v.check_header(b"e30"), Ok(false));
        assert_eq!(v.check_header(b"e3"), Err(E_MALFORMED));
    }

    /// `verify` through PyJWT's own split, without [`split_known`].
    fn verify_generic<'t>(
        v: &TokenVerifier,
        token: &'t str,
        now: i64,
    ) -> Result<VerifiedToken<'t>, TokenError> {
        if token.len() > v.settings.max_token_bytes {
            return Err(E_TOO_LARGE);
        }
        let (signing_input, payload_seg, sig_seg, alg_ok) = v.split_checked(token)?;
        let mut out = VerifiedToken {
            token,
            payload_seg,
            user_id_claim_name: None,
            exp: 0,
            iat: None,
            user_id: None,
            jti: None,
            is_staff: false,
            is_superuser: false,
            revoke_claim: None,
        };
        v.verify_parts(&mut out, signing_input, sig_seg, alg_ok, now)
            .map(|()| out)
    }

    /// Tokens near the shape [`split_known`] takes: a known or other
    /// header, dots and padding anywhere, signatures of every length near
    /// the algorithm's.
    fn near_tokens() -> impl proptest::strategy::Strategy<Value = (Algorithm, String)> {
        use proptest::prelude::*;
        let alg = prop_oneof![
            Just(Algorithm::Hs256),
            Just(Algorithm::Hs384),
            Just(Algorithm::Hs512)
        ];
        let seg_char = prop_oneof![
            8 => prop::sample::select(b"ABCDEFGHIJabcdefghij0123456789-_".to_vec()),
            1 => prop::sample::select(b".=+/ ".to_vec()),
        ];
        let seg = proptest::collection::vec(seg_char, 0..12);
        let edit = (any::<prop::sample::Index>(), seg);
        (
            alg,
            0..3usize,
            prop_oneof![Just(0usize), Just(1), Just(2)],
            proptest::collection::vec(edit, 0..3),
            any::<bool>(),
        )
            .prop_map(|(alg, header, payload, edits, cut)| {
                let a = alg.as_str();
                let headers = [
                    alloc::format!(r#"{{"alg":"{a}","typ":"JWT"}}"#),
                    alloc::format!(r#"{{"alg":"{a}"}}"#),
                    alloc::format!(r#"{{"alg":"{a}","kid":"k"}}"#),
                ];
                let payloads = [
                    r#"{"token_type":"access","exp":2000,"jti":"j","user_id":"1"}"#,
                    r#"{"token_type":"access","exp":2000,"jti":"j","user_id":7,"is_staff":true}"#,
                    r#"{"exp":1}"#,
                ];
                let mut t = sign(alg, &headers[header % 3], payloads[payload]).into_bytes();
                for (at, text) in edits {
                    let i = at.index(t.len() + 1);
                    if cut && i < t.len() {
                        t.truncate(i);
                    }
                    t.splice(i..i, text);
                }
                (alg, String::from_utf8(t).unwrap())
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 4096,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The split without searching decides exactly as PyJWT's split.
        #[test]
        fn split_known_decides_as_the_generic_split((alg, token) in near_tokens()) {
            let v = TokenVerifier::new(
                JwtSettings { algorithm: alg, ..JwtSettings::default() },
                SecretKey::from(KEY),
            )
            .unwrap();
            let fast = v.verify(&token, 1000).map(|t| alloc::format!("{t:?}"));
            let generic = verify_generic(&v, &token, 1000).map(|t| alloc::format!("{t:?}"));
            proptest::prop_assert_eq!(fast, generic);
            if let Some((signing_input, payload, sig)) = split_known(&token, alg) {
                // Where the first dot comes after the signature's dot, it is the same split.
                if !sig.contains('.') {
                    let (si, sg) = token.rsplit_once('.').unwrap();
                    proptest::prop_assert_eq!((signing_input, sig), (si, sg));
                    proptest::prop_assert_eq!(Some(payload), si.split_once('.').map(|p| p.1));
                }
            }
        }
    }

    /// `v` without its block-stepped HS256 key: every token takes the
    /// sequential path on the `hmac` crate.
    fn sequential(v: &TokenVerifier) -> TokenVerifier {
        let mut s = v.clone();
        s.fast = None;
        s
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 4096,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The block-stepped HS256 path decides every token (near the
        /// common shapes, damaged anywhere) as the sequential path, with a
        /// fallback key or without, at any time.
        #[test]
        fn fast_path_decides_as_the_sequential_path(
            (alg, token) in near_tokens(),
            fallback in proptest::prelude::any::<bool>(),
            now in proptest::prop_oneof![proptest::strategy::Just(1000i64), 0i64..3000],
        ) {
            let mut v = TokenVerifier::new(
                JwtSettings { algorithm: alg, ..JwtSettings::default() },
                SecretKey::from(if fallback { "another signing key" } else { KEY }),
            )
            .unwrap();
            if fallback {
                v = v.with_fallback_keys([SecretKey::from(KEY)]).unwrap();
            }
            let fast = v.verify(&token, now).map(|t| alloc::format!("{t:?}"));
            let slow = sequential(&v).verify(&token, now).map(|t| alloc::format!("{t:?}"));
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn fast_path_is_taken_and_agrees_on_every_outcome() {
        let v = TokenVerifier::new(JwtSettings::default(), SecretKey::from(KEY)).unwrap();
        assert!(v.fast.is_some());
        let h = r#"{"alg":"HS256","typ":"JWT"}"#;
        let good = sign(
            Algorithm::Hs256,
            h,
            r#"{"token_type":"access","exp":2000,"jti":"j","user_id":"1"}"#,
        );
        let mut bad_sig = good.clone().into_bytes();
        let last = bad_sig.len() - 2;
        bad_sig[last] = if bad_sig[last] == b'A' { b'B' } else { b'A' };
        let bad_sig = String::from_utf8(bad_sig).unwrap();
        let (head, sig) = good.rsplit_once('.').unwrap();
        let (h64, _) = head.split_once('.').unwrap();
        let bad_payload = alloc::format!("{h64}.e*J9.{sig}");
        let expired = sign(
            Algorithm::Hs256,
            h,
            r#"{"token_type":"access","exp":10,"jti":"j","user_id":"1"}"#,
        );
        let not_json = sign(Algorithm::Hs256, h, "{");
        let cases = [
            (good.as_str(), None),
            (bad_sig.as_str(), Some(ErrorKind::BadSignature)),
            (bad_payload.as_str(), Some(ErrorKind::Malformed)),
            (expired.as_str(), Some(ErrorKind::Expired)),
            (not_json.as_str(), Some(ErrorKind::Malformed)),
        ];
        for (token, want) in cases {
            let fast = v.verify(token, 1000).err().map(|e| e.kind());
            let slow = sequential(&v).verify(token, 1000).err().map(|e| e.kind());
            assert_eq!(fast, want, "{token}");
            assert_eq!(slow, want, "{token}");
        }
    }

    #[test]
    fn split_known_takes_the_common_shape() {
        for alg in [Algorithm::Hs256, Algorithm::Hs384, Algorithm::Hs512] {
            let header = alloc::format!(r#"{{"alg":"{}","typ":"JWT"}}"#, alg.as_str());
            let token = sign(alg, &header, r#"{"exp":1}"#);
            let (si, sig) = token.rsplit_once('.').unwrap();
            let payload = si.split_once('.').unwrap().1;
            assert_eq!(split_known(&token, alg), Some((si, payload, sig)));
            // Header, dot and signature only: PyJWT finds no payload.
            let short = alloc::format!("{}.{sig}", si.split_once('.').unwrap().0);
            assert_eq!(split_known(&short, alg), None);
        }
    }

    #[test]
    fn large_tokens_use_the_heap_path() {
        let big = "x".repeat(20_000);
        let payload = alloc::format!(
            r#"{{"token_type":"access","exp":1000,"jti":"j","user_id":"1","pad":"{big}"}}"#
        );
        let token = sign(Algorithm::Hs256, r#"{"alg":"HS256"}"#, &payload);
        let settings = JwtSettings {
            max_token_bytes: 100_000,
            ..JwtSettings::default()
        };
        let v = TokenVerifier::new(settings, SecretKey::from(KEY)).unwrap();
        let t = v.verify(&token, 999).unwrap();
        assert_eq!(t.claim("pad"), Some(ClaimValue::Other));
        assert_eq!(
            t.claim_json("pad", true).map(|s| s.len()),
            Some(big.len() + 2)
        );
        assert_eq!(t.user_key(PkKind::Int), Ok(UserKey::Int(1)));
    }

    #[test]
    fn fallback_keys_are_opt_in() {
        let token = sign(
            Algorithm::Hs256,
            r#"{"alg":"HS256"}"#,
            r#"{"token_type":"access","exp":9,"jti":"j"}"#,
        );
        let other =
            TokenVerifier::new(JwtSettings::default(), SecretKey::from("another-key")).unwrap();
        assert_eq!(
            other.verify(&token, 0).map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::BadSignature)
        );
        let with_fallback = other.with_fallback_keys([SecretKey::from(KEY)]).unwrap();
        assert!(with_fallback.verify(&token, 0).is_ok());
        assert_eq!(
            TokenVerifier::new(JwtSettings::default(), SecretKey::from(KEY))
                .unwrap()
                .with_fallback_keys([SecretKey::from("")])
                .map(|_| ()),
            Err(KeyError::Empty)
        );
        assert_eq!(
            TokenVerifier::new(JwtSettings::default(), SecretKey::from("")).map(|_| ()),
            Err(KeyError::Empty)
        );
    }

    #[test]
    fn mint_follows_dict_semantics_and_settings() {
        let settings = JwtSettings {
            audience: Some("aud".into()),
            issuer: Some("iss".into()),
            ..JwtSettings::default()
        };
        let v = TokenVerifier::new(settings, SecretKey::from(KEY)).unwrap();
        let extra = [
            ("user_id", ClaimValue::Int(5)),
            ("x", ClaimValue::Float(0.5)),
            ("aud", ClaimValue::Null),
        ];
        let req = MintRequest {
            user_id: ClaimValue::Null,
            lifetime: 60,
            jti: "j",
            extra: &extra,
        };
        let token = v.mint(&req, 100);
        let t = v.verify(&token, 100).unwrap();
        assert_eq!(
            t.payload_json(false),
            r#"{"token_type":"access","exp":160,"iat":100,"jti":"j","user_id":5,"x":0.5,"aud":"aud","iss":"iss"}"#
        );
        assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
        let bad = MintRequest {
            user_id: ClaimValue::Other,
            lifetime: 60,
            jti: "j",
            extra: &[],
        };
        assert_eq!(v.try_mint(&bad, 0), Err(MintError::Unrepresentable));
        let overflow = MintRequest {
            user_id: ClaimValue::Null,
            lifetime: i64::MAX,
            jti: "j",
            extra: &[],
        };
        assert_eq!(v.try_mint(&overflow, 1), Err(MintError::ExpOverflow));
    }

    #[test]
    fn verify_bytes_refuses_non_utf8() {
        let v = TokenVerifier::new(JwtSettings::default(), SecretKey::from(KEY)).unwrap();
        let e = v.verify_bytes(b"a.b.\xff", 0).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::Malformed, "Token is invalid")
        );
    }

    #[test]
    fn bearer_header() {
        let t: &[&str] = &["Bearer"];
        assert_eq!(
            bearer_from_authorization(b"Bearer abc", t),
            Ok(Some(&b"abc"[..]))
        );
        assert_eq!(
            bearer_from_authorization(b"  Bearer \t abc \r\n", t),
            Ok(Some(&b"abc"[..]))
        );
        assert_eq!(bearer_from_authorization(b"bearer abc", t), Ok(None));
        assert_eq!(bearer_from_authorization(b"", t), Ok(None));
        assert_eq!(bearer_from_authorization(b" \x0b ", t), Ok(None));
        assert_eq!(bearer_from_authorization(b"Basic abc", t), Ok(None));
        assert_eq!(
            bearer_from_authorization(b"Bearer", t),
            Err(AuthHeaderError)
        );
        assert_eq!(
            bearer_from_authorization(b"Bearer a b", t),
            Err(AuthHeaderError)
        );
        assert_eq!(bearer_from_authorization(b"Bearer\xa0abc", t), Ok(None));
        let latin: &[&str] = &["B\u{e9}arer"];
        assert_eq!(
            bearer_from_authorization(b"B\xe9arer x", latin),
            Ok(Some(&b"x"[..]))
        );
        assert_eq!(
            bearer_from_authorization("B\u{e9}arer x".as_bytes(), latin),
            Ok(None)
        );
    }
}
