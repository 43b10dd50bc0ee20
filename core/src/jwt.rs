//! SimpleJWT access tokens, verified as `AccessToken(token)` decides
//! (PyJWT 2.x `jwt.decode` followed by SimpleJWT's `Token.verify`).
//!
//! STUB: public surface fixed; bodies are being filled in.

use crate::error::ErrorKind;
use crate::key::{Algorithm, KeyError, SecretKey};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Default size limit for a token, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

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

/// A short string stored inline (no heap), for claim values copied out of a
/// token's payload. Holds up to [`InlineStr::CAPACITY`] bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineStr {
    len: u16,
    buf: [u8; InlineStr::CAPACITY],
}

impl InlineStr {
    /// Capacity in bytes.
    pub const CAPACITY: usize = 256;

    /// Copies `s` if it fits.
    pub fn new(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        if bytes.len() > Self::CAPACITY {
            return None;
        }
        let mut buf = [0u8; Self::CAPACITY];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(InlineStr { len: bytes.len() as u16, buf })
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        let len = usize::from(self.len).min(Self::CAPACITY);
        core::str::from_utf8(&self.buf[..len]).unwrap_or("")
    }
}

impl fmt::Debug for InlineStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A claim's JSON value, as Python's `json.loads` would see it.
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
    /// A string longer than [`InlineStr::CAPACITY`], an object or an array.
    Other,
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
    /// `iat`, if present.
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

/// Verifies access tokens against a key ring (signing key first, then opt-in fallbacks).
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    settings: JwtSettings,
    keys: Vec<SecretKey>,
}

impl TokenVerifier {
    /// A verifier for `settings` with the signing key.
    pub fn new(settings: JwtSettings, signing_key: SecretKey) -> Result<Self, KeyError> {
        if signing_key.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(TokenVerifier { settings, keys: alloc::vec![signing_key] })
    }

    /// Also accept tokens signed with these keys (SimpleJWT itself does not).
    pub fn with_fallback_keys(
        mut self,
        keys: impl IntoIterator<Item = SecretKey>,
    ) -> Result<Self, KeyError> {
        for k in keys {
            if k.is_empty() {
                return Err(KeyError::Empty);
            }
            self.keys.push(k);
        }
        Ok(self)
    }

    /// The settings.
    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// `AccessToken(token)` at time `now` (Unix seconds).
    pub fn verify<'t>(&self, token: &'t str, now: i64) -> Result<VerifiedToken<'t>, TokenError> {
        let _ = (token, now);
        Err(TokenError::new(ErrorKind::Malformed, "Token is invalid"))
    }

    /// Mints a token shaped like SimpleJWT's, signed with the signing key.
    pub fn mint(&self, req: &MintRequest<'_>, now: i64) -> String {
        let _ = (req, now);
        String::new()
    }
}
