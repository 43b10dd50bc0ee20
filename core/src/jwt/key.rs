//! Secret keys and algorithms.

use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroize;

/// HMAC algorithm of a JWT (SimpleJWT's `ALGORITHM`). Only the HMAC family is
/// supported; every other `alg` is rejected as `bad_algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA256, the default and the hot path.
    #[default]
    Hs256,
    /// HMAC-SHA384.
    Hs384,
    /// HMAC-SHA512.
    Hs512,
}

impl Algorithm {
    /// The JOSE name, as it appears in the header's `alg`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Hs384 => "HS384",
            Algorithm::Hs512 => "HS512",
        }
    }

    /// Parses the JOSE name (exact, case-sensitive, as PyJWT compares).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Algorithm::Hs256),
            "HS384" => Some(Algorithm::Hs384),
            "HS512" => Some(Algorithm::Hs512),
            _ => None,
        }
    }
}

/// A secret (Django `SECRET_KEY`, a fallback, or SimpleJWT's `SIGNING_KEY`).
/// Its `Debug` never shows the bytes, and the bytes are zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// Wraps raw key bytes (Django encodes `str` keys as UTF-8).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        SecretKey(bytes.into())
    }

    /// The key bytes. Never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty key, which PyJWT refuses.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for SecretKey {
    fn from(s: &str) -> Self {
        SecretKey::new(s.as_bytes())
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<{} bytes redacted>)", self.0.len())
    }
}

/// Why a key was refused when building a verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is empty (PyJWT raises `InvalidKeyError` for it).
    Empty,
    /// The key looks like a PEM/SSH/DER public key or a JWK (PyJWT refuses
    /// those as HMAC secrets to prevent algorithm confusion).
    AsymmetricLooking,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("the signing key is empty"),
            KeyError::AsymmetricLooking => f.write_str(
                "the key looks like an asymmetric key or certificate and cannot be used as an HMAC secret",
            ),
        }
    }
}

impl core::error::Error for KeyError {}
