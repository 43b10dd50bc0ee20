//! Django sessions and `django.contrib.auth.get_user`.
//!
//! STUB: public surface fixed; bodies are being filled in.

use crate::error::ErrorKind;
use crate::key::{KeyError, SecretKey};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// `SESSION_ENGINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionEngine {
    /// `db`, `cached_db`, `cache`, `file`: the cookie holds a key; the host fetches the row.
    #[default]
    Db,
    /// `signed_cookies`: the cookie is the session.
    SignedCookies,
}

/// Session-related Django settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// `SESSION_ENGINE`.
    pub engine: SessionEngine,
    /// `SESSION_COOKIE_NAME`.
    pub cookie_name: String,
    /// `SESSION_COOKIE_AGE`, seconds.
    pub cookie_age: i64,
    /// `AUTHENTICATION_BACKENDS`.
    pub auth_backends: Vec<String>,
    /// Accept a session hash made with a `SECRET_KEY_FALLBACKS` entry, as
    /// `django.contrib.auth.get_user` does (Channels does not).
    pub accept_fallback_hash: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            engine: SessionEngine::Db,
            cookie_name: "sessionid".into(),
            cookie_age: 1_209_600,
            auth_backends: alloc::vec!["django.contrib.auth.backends.ModelBackend".into()],
            accept_fallback_hash: true,
        }
    }
}

/// A `django_session` row the host fetched for a session key.
#[derive(Debug, Clone, Copy)]
pub struct SessionRow<'a> {
    /// `session_key`.
    pub session_key: &'a str,
    /// `session_data`.
    pub session_data: &'a str,
    /// `expire_date`, Unix seconds.
    pub expire_date: i64,
}

/// The auth fields of a decoded session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAuth {
    /// `_auth_user_id`, as text (`str()` of a JSON int).
    pub user_id: String,
    /// `_auth_user_backend`.
    pub backend: String,
    /// `_auth_user_hash` (missing or empty: unverified).
    pub hash: Option<String>,
}

/// A user row (`auth_user`), as the host supplies it.
#[derive(Debug, Clone, Copy)]
pub struct UserRecord<'a> {
    /// `str(pk)`.
    pub pk: &'a str,
    /// The stored password hash text (`pbkdf2_sha256$…`).
    pub password: &'a str,
    /// `is_active`.
    pub is_active: bool,
    /// `is_staff`.
    pub is_staff: bool,
    /// `is_superuser`.
    pub is_superuser: bool,
}

/// Why a session does not authenticate a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionError {
    kind: ErrorKind,
    message: &'static str,
}

impl SessionError {
    /// Builds an error.
    pub const fn new(kind: ErrorKind, message: &'static str) -> Self {
        SessionError { kind, message }
    }
    /// The contract kind (`bad_session`, `session_expired`, `session_hash_mismatch`, `user_not_found`, `user_inactive`).
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// A readable message.
    pub fn message(&self) -> &'static str {
        self.message
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl core::error::Error for SessionError {}

/// Decodes sessions and decides `get_user` as Django does.
#[derive(Debug, Clone)]
pub struct SessionVerifier {
    settings: SessionSettings,
    secret: SecretKey,
    fallbacks: Vec<SecretKey>,
}

impl SessionVerifier {
    /// `SECRET_KEY` and `SECRET_KEY_FALLBACKS`.
    pub fn new(
        settings: SessionSettings,
        secret: SecretKey,
        fallbacks: Vec<SecretKey>,
    ) -> Result<Self, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(SessionVerifier { settings, secret, fallbacks })
    }

    /// The settings.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// The session key a cookie value names, if Django would use it (`len >= 8`).
    pub fn session_key<'a>(&self, cookie_value: &'a str) -> Option<&'a str> {
        let _ = cookie_value;
        None
    }

    /// `signed_cookies` backend: the cookie value is the session.
    pub fn load_signed_cookie(&self, cookie_value: &str, now: i64) -> Result<SessionAuth, SessionError> {
        let _ = (cookie_value, now, &self.secret, &self.fallbacks);
        Err(SessionError::new(ErrorKind::BadSession, "Session data corrupted"))
    }

    /// db / cache backends: a row the host fetched (expiry checked here).
    pub fn load_db_row(&self, row: &SessionRow<'_>, now: i64) -> Result<SessionAuth, SessionError> {
        let _ = (row, now);
        Err(SessionError::new(ErrorKind::BadSession, "Session data corrupted"))
    }

    /// The rest of `get_user`: backend allowed, user active, session hash.
    pub fn check_user(&self, auth: &SessionAuth, user: &UserRecord<'_>) -> Result<(), SessionError> {
        let _ = (auth, user);
        Err(SessionError::new(ErrorKind::SessionHashMismatch, "Session hash does not match"))
    }
}
