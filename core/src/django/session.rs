//! Django sessions and `django.contrib.auth.get_user`.
//!
//! The decision, step by step, as Django 5.2 and Channels 4 take it:
//!
//! 1. The session cookie (`SESSION_COOKIE_NAME`) names a session only if it is
//!    non-empty and at least 8 characters long ([`SessionVerifier::session_key`]).
//! 2. Load the session dict:
//!    - `signed_cookies`: the cookie *is* the session, signed with the salt
//!      `"django.contrib.sessions.backends.signed_cookies"` and accepted while
//!      `now - signed_at <= SESSION_COOKIE_AGE` ([`SessionVerifier::load_signed_cookie`]).
//!      Custom expiries (`set_expiry`) are not enforced, as in Django.
//!    - `db` / `cached_db` / `cache` / `file`: the host fetches the row for the
//!      key; it counts only while `expire_date > now`, and its `session_data`
//!      is signed with the salt `"django.contrib.sessions.SessionStore"`, with
//!      no age limit ([`SessionVerifier::load_db_row`]).
//!
//!    Both accept `SECRET_KEY` then `SECRET_KEY_FALLBACKS` for the signature.
//! 3. Read `_auth_user_id`, `_auth_user_backend` and `_auth_user_hash`
//!    ([`SessionAuth`]); a session without the first two is anonymous.
//! 4. The host looks the user up by `user_id` (with Django's `pk.to_python`
//!    coercion) and [`SessionVerifier::check_user`] finishes: the backend is in
//!    `AUTHENTICATION_BACKENDS`, the user is active (except under the
//!    `AllowAllUsers…` backends), and `_auth_user_hash` equals
//!    `get_session_auth_hash()` under `SECRET_KEY` — or, with
//!    [`SessionSettings::accept_fallback_hash`] (Django's `get_user`, not
//!    Channels'), under a fallback key.
//!
//! [`SessionVerifier::check`] takes these steps in Django's order for one
//! request: [`SessionCheck::poll`] asks for the session row and then the user
//! (keyed by `_auth_user_id` coerced for the pk type, [`UserKey::from_text`]),
//! and the host answers each lookup until the verdict.

use crate::django::cookie::cookie_value;
use crate::django::signing::{salted_hmac, HashAlg, SigningError, TimestampSigner};
use crate::error::ErrorKind;
use crate::jwt::key::{KeyError, SecretKey};
use crate::jwt::userid::{PkKind, UserKey};
use crate::py::compare::compare_digest;
use crate::py::json::{self, Encoding, JsonValue};
use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Salt of the `signed_cookies` backend.
pub const SIGNED_COOKIES_SALT: &str = "django.contrib.sessions.backends.signed_cookies";
/// Salt of the `db`, `cached_db`, `cache` and `file` backends
/// (`"django.contrib.sessions." + SessionStore.__qualname__`).
pub const SESSION_STORE_SALT: &str = "django.contrib.sessions.SessionStore";
/// `salted_hmac` key salt of `AbstractBaseUser.get_session_auth_hash`.
pub const SESSION_AUTH_HASH_SALT: &str =
    "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash";

/// Backends whose `user_can_authenticate` lets inactive users in.
const ALLOW_ALL_USERS_BACKENDS: [&str; 2] = [
    "django.contrib.auth.backends.AllowAllUsersModelBackend",
    "django.contrib.auth.backends.AllowAllUsersRemoteUserBackend",
];

/// `SESSION_ENGINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionEngine {
    /// `db`, `cached_db`, `cache`, `file`: the cookie holds a key; the host fetches the row.
    #[default]
    Db,
    /// `signed_cookies`: the cookie is the session.
    SignedCookies,
    /// `cache`: the session dict, pickled, under the cache key
    /// ([`SessionVerifier::cache_key`]); no entry is no session.
    Cache,
    /// `cached_db`: the cache entry, else the `django_session` row.
    CachedDb,
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
    /// `expire_date`, Unix seconds (see [`parse_iso8601_utc`]).
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

const fn bad(message: &'static str) -> SessionError {
    SessionError::new(ErrorKind::BadSession, message)
}

const NO_SESSION: SessionError =
    bad("No session: the session cookie is missing or shorter than 8 characters");
const CORRUPTED: SessionError = bad("Session data corrupted (bad signature)");
const UNREADABLE: SessionError = bad("Session data is not readable (base64, zlib or JSON)");
const NOT_A_DICT: SessionError = bad("Session data is not a JSON object");
const ANONYMOUS: SessionError =
    bad("Anonymous session: no _auth_user_id / _auth_user_backend (not logged in)");
const BAD_USER_ID: SessionError = bad("Session _auth_user_id is not a string or an integer");
const BAD_BACKEND: SessionError = bad("Session _auth_user_backend is not a string");
const BACKEND_NOT_CONFIGURED: SessionError =
    bad("Session _auth_user_backend is not in AUTHENTICATION_BACKENDS");
const COOKIE_EXPIRED: SessionError = SessionError::new(
    ErrorKind::SessionExpired,
    "Session cookie is older than SESSION_COOKIE_AGE",
);
const ROW_EXPIRED: SessionError = SessionError::new(
    ErrorKind::SessionExpired,
    "Session has expired (expire_date <= now)",
);
const ROW_KEY_MISMATCH: SessionError = bad("Session row is not the row of this session key");
const HASH_MISSING: SessionError = SessionError::new(
    ErrorKind::SessionHashMismatch,
    "Session has no _auth_user_hash (unverified session)",
);
const HASH_MISMATCH: SessionError = SessionError::new(
    ErrorKind::SessionHashMismatch,
    "Session hash does not match the user's password (password changed or key rotated)",
);
const USER_INACTIVE: SessionError = SessionError::new(ErrorKind::UserInactive, "User is inactive");
const NO_COOKIE: SessionError = bad("No session cookie");
const SHORT_KEY: SessionError =
    bad("Session key is too short (Django ignores keys under 8 characters)");
const NO_ROW: SessionError = bad("No session row for this key");
const USER_NOT_FOUND: SessionError =
    SessionError::new(ErrorKind::UserNotFound, "The session's user does not exist");

/// Decodes sessions and decides `get_user` as Django does.
#[derive(Debug, Clone)]
pub struct SessionVerifier {
    settings: SessionSettings,
    secret: SecretKey,
    fallbacks: Vec<SecretKey>,
    cache_prefix: String,
    cache_version: i64,
}

/// `django.contrib.sessions.backends.cache.KEY_PREFIX`.
pub const CACHE_SESSION_PREFIX: &str = "django.contrib.sessions.cache";
/// `django.contrib.sessions.backends.cached_db.KEY_PREFIX`.
pub const CACHED_DB_SESSION_PREFIX: &str = "django.contrib.sessions.cached_db";

const CACHE_UNREADABLE: SessionError =
    bad("Session cache value is not a plain pickled dict (refused)");

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
        Ok(SessionVerifier {
            settings,
            secret,
            fallbacks,
            cache_prefix: String::new(),
            cache_version: 1,
        })
    }

    /// The cache's `KEY_PREFIX` and `VERSION` (default `""` and `1`).
    pub fn with_cache_key(mut self, prefix: &str, version: i64) -> Self {
        self.cache_prefix = String::from(prefix);
        self.cache_version = version;
        self
    }

    /// The cache key Django's `cache` / `cached_db` engines keep this
    /// session under: `default_key_func`, `"%s:%s:%s" % (KEY_PREFIX,
    /// VERSION, engine_prefix + session_key)` — exactly the Redis key
    /// `RedisCache` reads. `None` for the other engines.
    pub fn cache_key(&self, session_key: &str) -> Option<String> {
        let engine = match self.settings.engine {
            SessionEngine::Cache => CACHE_SESSION_PREFIX,
            SessionEngine::CachedDb => CACHED_DB_SESSION_PREFIX,
            SessionEngine::Db | SessionEngine::SignedCookies => return None,
        };
        Some(alloc::format!(
            "{}:{}:{engine}{session_key}",
            self.cache_prefix,
            self.cache_version
        ))
    }

    /// `cache` / `cached_db`: a cache value as `RedisCache` stored it
    /// (`RedisSerializer`: the session dict pickled). Only plain types are
    /// read; anything else is refused ([`crate::unpickle`]).
    pub fn load_cached(&self, value: &[u8]) -> Result<SessionAuth, SessionError> {
        let v = crate::py::pickle::unpickle(value).map_err(|_| CACHE_UNREADABLE)?;
        session_auth_from_pickle(&v)
    }

    /// The settings.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// The session key a cookie value names, if Django would use it
    /// (`_validate_session_key`: non-empty and at least 8 characters).
    pub fn session_key<'a>(&self, cookie_value: &'a str) -> Option<&'a str> {
        (cookie_value.chars().count() >= 8).then_some(cookie_value)
    }

    /// The session cookie's value in one `Cookie` header (parsed as
    /// `django.http.parse_cookie` does, last occurrence wins), if it names a
    /// session ([`SessionVerifier::session_key`]). Channels reads only the
    /// first `Cookie` header of a request.
    pub fn session_cookie<'a>(&self, cookie_header: &'a str) -> Option<Cow<'a, str>> {
        cookie_value(cookie_header, &self.settings.cookie_name)
            .filter(|v| self.session_key(v).is_some())
    }

    fn signer(&self, salt: &str) -> TimestampSigner {
        TimestampSigner::new(
            self.secret.clone(),
            self.fallbacks.clone(),
            Some(salt),
            ':',
            HashAlg::Sha256,
        )
    }

    /// `signed_cookies` backend: the cookie value is the session, valid for
    /// `SESSION_COOKIE_AGE` seconds after it was signed.
    pub fn load_signed_cookie(
        &self,
        cookie_value: &str,
        now: i64,
    ) -> Result<SessionAuth, SessionError> {
        let key = self.session_key(cookie_value).ok_or(NO_SESSION)?;
        let data = self
            .signer(SIGNED_COOKIES_SALT)
            .unsign_object_bytes(key, Some(self.settings.cookie_age), now)
            .map_err(|e| match e {
                SigningError::Expired { .. } => COOKIE_EXPIRED,
                e if e.is_bad_signature() => CORRUPTED,
                _ => UNREADABLE,
            })?;
        session_auth_from_json(&data)
    }

    /// db / cache backends: a row the host fetched (expiry checked here).
    /// `session_data` carries no age limit; only `expire_date > now` counts.
    pub fn load_db_row(&self, row: &SessionRow<'_>, now: i64) -> Result<SessionAuth, SessionError> {
        if self.session_key(row.session_key).is_none() {
            return Err(ROW_KEY_MISMATCH);
        }
        if row.expire_date <= now {
            return Err(ROW_EXPIRED);
        }
        self.decode(row.session_data)
    }

    /// `SessionStore.decode(session_data)` (db-format data, no expiry), then
    /// the auth fields.
    pub fn decode(&self, session_data: &str) -> Result<SessionAuth, SessionError> {
        let data = self
            .signer(SESSION_STORE_SALT)
            .unsign_object_bytes(session_data, None, 0)
            .map_err(|e| {
                if e.is_bad_signature() {
                    CORRUPTED
                } else {
                    UNREADABLE
                }
            })?;
        session_auth_from_json(&data)
    }

    /// `_auth_user_backend in AUTHENTICATION_BACKENDS` — checked before the
    /// user lookup in Django, so a host can skip the lookup when it fails.
    pub fn backend_allowed(&self, auth: &SessionAuth) -> Result<(), SessionError> {
        if self.settings.auth_backends.contains(&auth.backend) {
            Ok(())
        } else {
            Err(BACKEND_NOT_CONFIGURED)
        }
    }

    /// `user.get_session_auth_hash()` under `SECRET_KEY`: 64 hex digits.
    pub fn session_auth_hash(&self, password: &str) -> String {
        session_auth_hash(password, &self.secret)
    }

    /// The rest of `get_user`: backend allowed, user active, session hash.
    /// `user` is the row the host found for `auth.user_id` (a missing row is
    /// the host's `user_not_found`).
    pub fn check_user(
        &self,
        auth: &SessionAuth,
        user: &UserRecord<'_>,
    ) -> Result<(), SessionError> {
        self.backend_allowed(auth)?;
        if !user.is_active && !ALLOW_ALL_USERS_BACKENDS.contains(&auth.backend.as_str()) {
            return Err(USER_INACTIVE);
        }
        let stored = match auth.hash.as_deref() {
            Some(h) if !h.is_empty() => h.as_bytes(),
            _ => return Err(HASH_MISSING),
        };
        let mut ok = compare_digest(stored, self.session_auth_hash(user.password).as_bytes());
        if self.settings.accept_fallback_hash {
            for key in &self.fallbacks {
                ok |= compare_digest(stored, session_auth_hash(user.password, key).as_bytes());
            }
        }
        if ok {
            Ok(())
        } else {
            Err(HASH_MISMATCH)
        }
    }
}

impl SessionVerifier {
    /// Starts a standalone session check (`django.contrib.auth.get_user`, or
    /// Channels' with [`SessionSettings::accept_fallback_hash`] off) at time
    /// `now`. `credential` is where the session cookie comes from (`None`: the
    /// request has none); `pk` is the user model's primary key type, which
    /// decides how `_auth_user_id` is coerced for the user lookup.
    pub fn check(
        &self,
        credential: Option<SessionCredential<'_>>,
        pk: PkKind,
        now: i64,
    ) -> SessionCheck<'_> {
        let cookie = match credential {
            None => None,
            Some(SessionCredential::Cookie(c)) => Some(Cow::Borrowed(c)),
            Some(SessionCredential::CookieHeader(h)) => cookie_value(h, &self.settings.cookie_name),
        };
        let state = match cookie.as_deref() {
            None => CheckState::Done(Err(NO_COOKIE)),
            Some(c) => match (self.session_key(c), self.settings.engine) {
                (None, _) => CheckState::Done(Err(SHORT_KEY)),
                (Some(key), SessionEngine::SignedCookies) => {
                    self.after_load(self.load_signed_cookie(key, now), pk)
                }
                (Some(key), _) => CheckState::NeedRow { key: key.into() },
            },
        };
        SessionCheck {
            verifier: self,
            pk,
            now,
            state,
        }
    }

    /// Django checks the backend before it looks the user up.
    fn after_load(&self, loaded: Result<SessionAuth, SessionError>, pk: PkKind) -> CheckState {
        let auth = match loaded.and_then(|a| self.backend_allowed(&a).map(|()| a)) {
            Ok(a) => a,
            Err(e) => return CheckState::Done(Err(e)),
        };
        // `pk.to_python` raises for a value the pk type cannot read; no row matches.
        match UserKey::from_text(&auth.user_id, pk) {
            Ok(key) => CheckState::NeedUser { auth, key },
            Err(_) => CheckState::Done(Err(USER_NOT_FOUND)),
        }
    }
}

/// Where a standalone session check reads the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCredential<'a> {
    /// The session cookie's value.
    Cookie(&'a str),
    /// One `Cookie` header, parsed as `django.http.parse_cookie` does (last
    /// occurrence wins). Channels reads only the first `Cookie` header of a
    /// request; Django joins repeated ones with `,`.
    CookieHeader(&'a str),
}

/// What a [`SessionCheck`] needs next.
// `UserKey` keeps text keys inline on purpose, as it does everywhere.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStep<'c> {
    /// db / cache engines: the `django_session` row of this key
    /// ([`SessionCheck::answer_row`]).
    NeedRow {
        /// The session key.
        session_key: &'c str,
    },
    /// The user whose pk equals `key` ([`SessionCheck::answer_user`]).
    NeedUser {
        /// `_auth_user_id` coerced for the pk type (compare a row's pk
        /// coerced the same way, [`UserKey::from_text`]).
        key: UserKey,
        /// `_auth_user_id` as the session holds it.
        user_id: &'c str,
    },
    /// The verdict: the session's auth fields, or why it names no user.
    Done(Result<&'c SessionAuth, SessionError>),
}

// `UserKey` keeps text keys inline on purpose, as it does everywhere.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum CheckState {
    NeedRow { key: String },
    NeedUser { auth: SessionAuth, key: UserKey },
    Done(Result<SessionAuth, SessionError>),
}

/// A standalone session check in progress: [`SessionCheck::poll`] until
/// [`SessionStep::Done`], answering each lookup it asks for. An answer it
/// did not ask for is ignored.
#[derive(Debug, Clone)]
pub struct SessionCheck<'v> {
    verifier: &'v SessionVerifier,
    pk: PkKind,
    now: i64,
    state: CheckState,
}

impl SessionCheck<'_> {
    /// What the check needs next, or its verdict.
    pub fn poll(&self) -> SessionStep<'_> {
        match &self.state {
            CheckState::NeedRow { key } => SessionStep::NeedRow { session_key: key },
            CheckState::NeedUser { auth, key } => SessionStep::NeedUser {
                key: *key,
                user_id: &auth.user_id,
            },
            CheckState::Done(r) => SessionStep::Done(r.as_ref().map_err(|e| *e)),
        }
    }

    /// The row found for [`SessionStep::NeedRow`]'s key (`None`: no row).
    pub fn answer_row(&mut self, row: Option<&SessionRow<'_>>) {
        let CheckState::NeedRow { key } = &self.state else {
            return;
        };
        let next = match row {
            None => CheckState::Done(Err(NO_ROW)),
            Some(r) if r.session_key != key.as_str() => CheckState::Done(Err(ROW_KEY_MISMATCH)),
            Some(r) => self
                .verifier
                .after_load(self.verifier.load_db_row(r, self.now), self.pk),
        };
        self.state = next;
    }

    /// The user found for [`SessionStep::NeedUser`]'s key (`None`: no user).
    pub fn answer_user(&mut self, user: Option<&UserRecord<'_>>) {
        if !matches!(self.state, CheckState::NeedUser { .. }) {
            return;
        }
        let state = core::mem::replace(&mut self.state, CheckState::Done(Err(USER_NOT_FOUND)));
        if let (CheckState::NeedUser { auth, .. }, Some(u)) = (state, user) {
            self.state = CheckState::Done(self.verifier.check_user(&auth, u).map(|()| auth));
        }
    }
}

/// `salted_hmac(SESSION_AUTH_HASH_SALT, password, secret, algorithm="sha256").hexdigest()`.
pub fn session_auth_hash(password: &str, secret: &SecretKey) -> String {
    let mac = salted_hmac(
        HashAlg::Sha256,
        SESSION_AUTH_HASH_SALT.as_bytes(),
        password.as_bytes(),
        secret.expose(),
    );
    let mut out = String::with_capacity(mac.len().saturating_mul(2));
    for b in mac {
        out.extend(char::from_digit(u32::from(b >> 4), 16));
        out.extend(char::from_digit(u32::from(b & 15), 16));
    }
    out
}

/// The auth fields of a session dict, given its serialized bytes (Latin-1
/// JSON, as `JSONSerializer` reads them).
fn session_auth_from_pickle(
    v: &crate::py::pickle::PickleValue,
) -> Result<SessionAuth, SessionError> {
    use crate::py::pickle::PickleValue as P;
    if !matches!(v, P::Dict(_)) {
        return Err(NOT_A_DICT);
    }
    let (Some(user_id), Some(backend)) = (v.get("_auth_user_id"), v.get("_auth_user_backend"))
    else {
        return Err(ANONYMOUS);
    };
    let user_id = match user_id {
        P::Str(s) => s.clone(),
        P::Int(n) => alloc::format!("{n}"),
        _ => return Err(BAD_USER_ID),
    };
    let backend = match backend {
        P::Str(s) => s.clone(),
        _ => return Err(BAD_BACKEND),
    };
    let hash = match v.get("_auth_user_hash") {
        Some(P::Str(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    Ok(SessionAuth {
        user_id,
        backend,
        hash,
    })
}

fn session_auth_from_json(data: &[u8]) -> Result<SessionAuth, SessionError> {
    let obj = json::parse_object(data, Encoding::Latin1).map_err(|e| match e {
        json::JsonError::NotAnObject => NOT_A_DICT,
        _ => UNREADABLE,
    })?;
    let (Some(user_id), Some(backend)) = (obj.get("_auth_user_id"), obj.get("_auth_user_backend"))
    else {
        return Err(ANONYMOUS);
    };
    let user_id = match user_id {
        JsonValue::Str(s) => s.to_string().ok_or(BAD_USER_ID)?,
        JsonValue::Int(0) => "0".into(),
        JsonValue::Int(n) => alloc::format!("{n}"),
        JsonValue::BigInt(b) => {
            let mut s = String::with_capacity(b.digits().len().saturating_add(1));
            if b.negative() {
                s.push('-');
            }
            s.extend(b.digits().iter().map(|&d| char::from(d)));
            s
        }
        _ => return Err(BAD_USER_ID),
    };
    let backend = match backend {
        JsonValue::Str(s) => s.to_string().ok_or(BAD_BACKEND)?,
        _ => return Err(BAD_BACKEND),
    };
    // `not session_hash`: a missing, empty or other falsy value is
    // unverified; a non-string can never equal the hex digest either.
    let hash = match obj.get("_auth_user_hash") {
        Some(JsonValue::Str(s)) if !s.is_empty() => s.to_string(),
        _ => None,
    };
    Ok(SessionAuth {
        user_id,
        backend,
        hash,
    })
}

/// Parses an `expire_date` as Django and its databases write it into Unix
/// seconds: `YYYY-MM-DD`, then optionally `T`, `t` or a space and
/// `HH:MM[:SS[.ffffff]]` (`,` also separates the fraction; digits beyond the
/// sixth are ignored, as Python does), then optionally `Z` or an offset
/// `±HH[:MM[:SS]]` / `±HHMM`. No offset means UTC (Django stores UTC when
/// `USE_TZ` is on). A fraction rounds **up** to the next whole second, which
/// keeps `expire_date > now` exact for a whole-second `now`.
// Fixed-width fields: a 4-digit year, 2-digit others, so every value is
// below 10^4 and the result within years 1-9999 ± one day; `p.i` only
// advances past bytes of `s`.
#[allow(clippy::arithmetic_side_effects)]
pub fn parse_iso8601_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4)?;
    p.eat(b'-')?;
    let month = p.digits(2)?;
    p.eat(b'-')?;
    let day = p.digits(2)?;
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut secs, mut frac) = (0i64, false);
    if let Some(&sep) = b.get(p.i) {
        if !matches!(sep, b'T' | b't' | b' ') {
            return None;
        }
        p.i += 1;
        let hour = p.digits(2)?;
        p.eat(b':')?;
        let minute = p.digits(2)?;
        let mut second = 0;
        if p.peek() == Some(b':') {
            p.i += 1;
            second = p.digits(2)?;
            if matches!(p.peek(), Some(b'.' | b',')) {
                p.i += 1;
                let start = p.i;
                while matches!(p.peek(), Some(b'0'..=b'9')) {
                    if p.i - start < 6 && p.peek() != Some(b'0') {
                        frac = true;
                    }
                    p.i += 1;
                }
                if p.i == start {
                    return None;
                }
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        secs = hour * 3600 + minute * 60 + second;
        match p.peek() {
            None => {}
            Some(b'Z' | b'z') => {
                p.i += 1;
            }
            Some(sign @ (b'+' | b'-')) => {
                p.i += 1;
                let oh = p.digits(2)?;
                let mut om = 0;
                let mut os = 0;
                if p.peek() == Some(b':') {
                    p.i += 1;
                    om = p.digits(2)?;
                    if p.peek() == Some(b':') {
                        p.i += 1;
                        os = p.digits(2)?;
                    }
                } else if p.peek().is_some() {
                    om = p.digits(2)?;
                }
                if oh > 23 || om > 59 || os > 59 {
                    return None;
                }
                let offset = oh * 3600 + om * 60 + os;
                // Local time = UTC + offset.
                secs -= if sign == b'+' { offset } else { -offset };
            }
            Some(_) => return None,
        }
        if p.i != b.len() {
            return None;
        }
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + secs + i64::from(frac))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

// `n` is 2 or 4, so `v` < 10^4; `i` only advances past bytes of `b`.
#[allow(clippy::arithmetic_side_effects)]
impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
    fn digits(&mut self, n: usize) -> Option<i64> {
        let mut v = 0i64;
        for _ in 0..n {
            let d = self.peek()?;
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(d - b'0');
            self.i += 1;
        }
        Some(v)
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
// Called with year 1-9999, month 1-12, day 1-31: every term is below 10^7.
#[allow(clippy::arithmetic_side_effects)]
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::signing::dumps;

    const NOW: i64 = 1_750_000_000;
    const BACKEND: &str = "django.contrib.auth.backends.ModelBackend";
    const PASSWORD: &str = "pbkdf2_sha256$1000000$salt$hash=";

    fn keys() -> (SecretKey, SecretKey) {
        (
            SecretKey::from("current-secret"),
            SecretKey::from("old-secret"),
        )
    }

    fn verifier(accept_fallback_hash: bool, backends: &[&str]) -> SessionVerifier {
        let (cur, old) = keys();
        let settings = SessionSettings {
            accept_fallback_hash,
            auth_backends: backends.iter().map(|b| String::from(*b)).collect(),
            ..SessionSettings::default()
        };
        SessionVerifier::new(settings, cur, alloc::vec![old]).unwrap()
    }

    fn session(json: &str) -> String {
        dumps(
            json.as_bytes(),
            &keys().0,
            SESSION_STORE_SALT,
            true,
            NOW - 3600,
        )
    }

    fn logged_in(user_id: &str, hash: &str) -> String {
        alloc::format!(
            "{{\"_auth_user_id\":{user_id},\"_auth_user_backend\":\"{BACKEND}\",\"_auth_user_hash\":\"{hash}\"}}"
        )
    }

    fn user(is_active: bool) -> UserRecord<'static> {
        UserRecord {
            pk: "1",
            password: PASSWORD,
            is_active,
            is_staff: false,
            is_superuser: false,
        }
    }

    /// Decode a db session and run `check_user`; the error kind or `None`.
    fn decide(
        v: &SessionVerifier,
        data: &str,
        u: &UserRecord<'_>,
    ) -> Result<SessionAuth, ErrorKind> {
        let row = SessionRow {
            session_key: "abcdefgh",
            session_data: data,
            expire_date: NOW + 1,
        };
        let auth = v.load_db_row(&row, NOW).map_err(|e| e.kind())?;
        v.check_user(&auth, u).map_err(|e| e.kind())?;
        Ok(auth)
    }

    #[test]
    fn get_user_decisions() {
        let (cur, old) = keys();
        let good = session_auth_hash(PASSWORD, &cur);
        let fallback = session_auth_hash(PASSWORD, &old);
        let other = session_auth_hash("pbkdf2_sha256$1000000$salt$changed=", &cur);
        let allow_all = "django.contrib.auth.backends.AllowAllUsersModelBackend";
        // (case, session JSON, accept fallback hash, backends, user active, outcome)
        type Row<'a> = (
            &'a str,
            String,
            bool,
            &'a [&'a str],
            bool,
            Result<&'a str, ErrorKind>,
        );
        let rows: &[Row<'_>] = &[
            ("valid", logged_in("\"1\"", &good), false, &[BACKEND], true, Ok("1")),
            ("int id", logged_in("1", &good), false, &[BACKEND], true, Ok("1")),
            ("negative zero id", logged_in("-0", &good), false, &[BACKEND], true, Ok("0")),
            ("big int id", logged_in("123456789012345678901234567890", &good), false, &[BACKEND], true,
                Ok("123456789012345678901234567890")),
            ("float id", logged_in("1.0", &good), false, &[BACKEND], true, Err(ErrorKind::BadSession)),
            ("null id", logged_in("null", &good), false, &[BACKEND], true, Err(ErrorKind::BadSession)),
            ("anonymous", "{}".into(), false, &[BACKEND], true, Err(ErrorKind::BadSession)),
            ("id only", "{\"_auth_user_id\":\"1\"}".into(), false, &[BACKEND], true, Err(ErrorKind::BadSession)),
            ("not a dict", "[1,2]".into(), false, &[BACKEND], true, Err(ErrorKind::BadSession)),
            ("not json", "{".into(), false, &[BACKEND], true, Err(ErrorKind::BadSession)),
            ("backend not configured", logged_in("\"1\"", &good), false, &["other.Backend"], true,
                Err(ErrorKind::BadSession)),
            ("missing hash", alloc::format!("{{\"_auth_user_id\":\"1\",\"_auth_user_backend\":\"{BACKEND}\"}}"),
                true, &[BACKEND], true, Err(ErrorKind::SessionHashMismatch)),
            ("empty hash", logged_in("\"1\"", ""), true, &[BACKEND], true, Err(ErrorKind::SessionHashMismatch)),
            ("number hash", alloc::format!("{{\"_auth_user_id\":\"1\",\"_auth_user_backend\":\"{BACKEND}\",\"_auth_user_hash\":7}}"),
                true, &[BACKEND], true, Err(ErrorKind::SessionHashMismatch)),
            ("password changed", logged_in("\"1\"", &other), true, &[BACKEND], true,
                Err(ErrorKind::SessionHashMismatch)),
            ("fallback hash, get_user", logged_in("\"1\"", &fallback), true, &[BACKEND], true, Ok("1")),
            ("fallback hash, channels", logged_in("\"1\"", &fallback), false, &[BACKEND], true,
                Err(ErrorKind::SessionHashMismatch)),
            ("inactive", logged_in("\"1\"", &good), false, &[BACKEND], false, Err(ErrorKind::UserInactive)),
            ("inactive, allow-all backend",
                alloc::format!("{{\"_auth_user_id\":\"1\",\"_auth_user_backend\":\"{allow_all}\",\"_auth_user_hash\":\"{good}\"}}"),
                false, &[allow_all], false, Ok("1")),
            ("duplicate key, last wins",
                alloc::format!("{{\"_auth_user_id\":\"9\",\"_auth_user_backend\":\"{BACKEND}\",\"_auth_user_hash\":\"{good}\",\"_auth_user_id\":\"1\"}}"),
                false, &[BACKEND], true, Ok("1")),
        ];
        for (case, json, accept, backends, active, want) in rows {
            let v = verifier(*accept, backends);
            let got = decide(&v, &session(json), &user(*active));
            assert_eq!(
                got.map(|a| a.user_id).as_deref().map_err(|e| *e),
                want.map_err(|e| e),
                "{case}"
            );
        }
    }

    #[test]
    fn loading_errors() {
        let v = verifier(true, &[BACKEND]);
        let (cur, _) = keys();
        let data = session(&logged_in("\"1\"", "h"));
        let row = |expire_date, key| SessionRow {
            session_key: key,
            session_data: &data,
            expire_date,
        };
        assert!(v.load_db_row(&row(NOW + 1, "abcdefgh"), NOW).is_ok());
        assert_eq!(
            v.load_db_row(&row(NOW, "abcdefgh"), NOW)
                .unwrap_err()
                .kind(),
            ErrorKind::SessionExpired
        );
        assert_eq!(
            v.load_db_row(&row(NOW + 1, "short"), NOW)
                .unwrap_err()
                .kind(),
            ErrorKind::BadSession
        );
        let tampered = alloc::format!("{}A", &data[..data.len() - 1]);
        let bad_row = SessionRow {
            session_key: "abcdefgh",
            session_data: &tampered,
            expire_date: NOW + 1,
        };
        assert_eq!(v.load_db_row(&bad_row, NOW).unwrap_err(), CORRUPTED);
        // signed_cookies: valid for SESSION_COOKIE_AGE seconds, inclusive.
        let age = v.settings().cookie_age;
        let cookie = dumps(
            logged_in("\"1\"", "h").as_bytes(),
            &cur,
            SIGNED_COOKIES_SALT,
            true,
            NOW,
        );
        assert!(v.load_signed_cookie(&cookie, NOW + age).is_ok());
        assert_eq!(
            v.load_signed_cookie(&cookie, NOW + age + 1)
                .unwrap_err()
                .kind(),
            ErrorKind::SessionExpired
        );
        assert_eq!(
            v.load_signed_cookie(&data, NOW).unwrap_err(),
            CORRUPTED,
            "db salt is not the cookie salt"
        );
        assert_eq!(v.load_signed_cookie("abc", NOW).unwrap_err(), NO_SESSION);
        // A session cookie of 7 characters names no session; 8 does.
        assert_eq!(v.session_cookie("sessionid=abcdefg"), None);
        assert_eq!(
            v.session_cookie("sessionid=abcdefgh").as_deref(),
            Some("abcdefgh")
        );
        assert_eq!(
            v.session_cookie("sessionid=\"\u{e9}bcdefgh\"").as_deref(),
            Some("\u{e9}bcdefgh")
        );
    }

    /// Drives a check to its verdict: the lookups it asked for (`row:KEY`,
    /// `user:KEY`) and the verdict (`_auth_user_id` or the error).
    fn drive(
        v: &SessionVerifier,
        credential: Option<SessionCredential<'_>>,
        pk: PkKind,
        row: Option<SessionRow<'_>>,
        user: Option<UserRecord<'_>>,
    ) -> (Vec<String>, Result<String, SessionError>) {
        let mut check = v.check(credential, pk, NOW);
        let mut asked = Vec::new();
        for _ in 0..4 {
            match check.poll() {
                SessionStep::NeedRow { session_key } => {
                    asked.push(alloc::format!("row:{session_key}"));
                    check.answer_row(row.as_ref());
                }
                SessionStep::NeedUser { key, user_id } => {
                    asked.push(alloc::format!("user:{key}"));
                    assert!(!user_id.is_empty());
                    check.answer_user(user.as_ref());
                }
                SessionStep::Done(r) => return (asked, r.map(|a| a.user_id.clone())),
            }
        }
        panic!("the check did not finish");
    }

    #[test]
    fn check_steps() {
        let (cur, old) = keys();
        let good = session_auth_hash(PASSWORD, &cur);
        let fallback = session_auth_hash(PASSWORD, &old);
        let other = session_auth_hash("pbkdf2_sha256$1000000$salt$changed=", &cur);
        let signed =
            |json: &str, at: i64| dumps(json.as_bytes(), &cur, SIGNED_COOKIES_SALT, true, at);
        let valid_cookie = signed(&logged_in("\"1\"", &good), NOW - 60);
        let old_cookie = signed(&logged_in("\"1\"", &good), NOW - 1_209_601);
        let tampered_cookie = alloc::format!("{}A", &valid_cookie[..valid_cookie.len() - 1]);
        let tampered_cookie = if tampered_cookie == valid_cookie {
            alloc::format!("{}B", &valid_cookie[..valid_cookie.len() - 1])
        } else {
            tampered_cookie
        };
        let header = alloc::format!("csrftoken=x; sessionid={valid_cookie}; theme=dark");
        const KEY: &str = "k7v3x9q2m4n8p1r5";
        let data = |user_id: &str, hash: &str| session(&logged_in(user_id, hash));
        fn row(data: &str, expire_date: i64) -> SessionRow<'_> {
            SessionRow {
                session_key: KEY,
                session_data: data,
                expire_date,
            }
        }
        let uuid = "6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f";
        let uuid_data = data(&alloc::format!("\"{}\"", uuid.to_uppercase()), &good);
        let (good_data, int_data) = (data("\"1\"", &good), data("1", &good));
        let (padded_data, text_data) = (data("\" 01 \"", &good), data("\"abc\"", &good));
        let (fallback_data, other_data) = (data("\"1\"", &fallback), data("\"1\"", &other));
        let signed_engine = |accept: bool, backends: &[&str]| {
            let mut v = verifier(accept, backends);
            v.settings.engine = SessionEngine::SignedCookies;
            v
        };
        let db = verifier(false, &[BACKEND]);
        let db_get_user = verifier(true, &[BACKEND]);
        let signed_v = signed_engine(false, &[BACKEND]);
        let other_backend = verifier(false, &["other.Backend"]);
        let inactive = user(false);
        let cookie = SessionCredential::Cookie;
        // (case, verifier, credential, pk, row, user, lookups asked, verdict)
        type Case<'a> = (
            &'a str,
            &'a SessionVerifier,
            Option<SessionCredential<'a>>,
            PkKind,
            Option<SessionRow<'a>>,
            Option<UserRecord<'a>>,
            &'a [&'a str],
            Result<&'a str, SessionError>,
        );
        let u = Some(user(true));
        let cases: &[Case<'_>] = &[
            (
                "no cookie",
                &db,
                None,
                PkKind::Int,
                None,
                u,
                &[],
                Err(NO_COOKIE),
            ),
            (
                "header without the session cookie",
                &db,
                Some(SessionCredential::CookieHeader("csrftoken=x")),
                PkKind::Int,
                None,
                u,
                &[],
                Err(NO_COOKIE),
            ),
            (
                "short key",
                &db,
                Some(cookie("abcdefg")),
                PkKind::Int,
                None,
                u,
                &[],
                Err(SHORT_KEY),
            ),
            (
                "empty key",
                &db,
                Some(cookie("")),
                PkKind::Int,
                None,
                u,
                &[],
                Err(SHORT_KEY),
            ),
            (
                "signed_cookies ok",
                &signed_v,
                Some(cookie(&valid_cookie)),
                PkKind::Int,
                None,
                u,
                &["user:1"],
                Ok("1"),
            ),
            (
                "signed_cookies from a header",
                &signed_v,
                Some(SessionCredential::CookieHeader(&header)),
                PkKind::Int,
                None,
                u,
                &["user:1"],
                Ok("1"),
            ),
            (
                "signed_cookies expired",
                &signed_v,
                Some(cookie(&old_cookie)),
                PkKind::Int,
                None,
                u,
                &[],
                Err(COOKIE_EXPIRED),
            ),
            (
                "signed_cookies tampered",
                &signed_v,
                Some(cookie(&tampered_cookie)),
                PkKind::Int,
                None,
                u,
                &[],
                Err(CORRUPTED),
            ),
            (
                "db ok",
                &db,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&good_data, NOW + 1)),
                u,
                &["row:k7v3x9q2m4n8p1r5", "user:1"],
                Ok("1"),
            ),
            (
                "db int user id",
                &db,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&int_data, NOW + 1)),
                u,
                &["row:k7v3x9q2m4n8p1r5", "user:1"],
                Ok("1"),
            ),
            (
                "db row missing",
                &db,
                Some(cookie(KEY)),
                PkKind::Int,
                None,
                u,
                &["row:k7v3x9q2m4n8p1r5"],
                Err(NO_ROW),
            ),
            (
                "db row expired",
                &db,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&good_data, NOW)),
                u,
                &["row:k7v3x9q2m4n8p1r5"],
                Err(ROW_EXPIRED),
            ),
            (
                "db row of another key",
                &db,
                Some(cookie("zzzzzzzzzzzz")),
                PkKind::Int,
                Some(row(&good_data, NOW + 1)),
                u,
                &["row:zzzzzzzzzzzz"],
                Err(ROW_KEY_MISMATCH),
            ),
            (
                "backend not allowed",
                &other_backend,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&good_data, NOW + 1)),
                u,
                &["row:k7v3x9q2m4n8p1r5"],
                Err(BACKEND_NOT_CONFIGURED),
            ),
            (
                "user missing",
                &db,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&good_data, NOW + 1)),
                None,
                &["row:k7v3x9q2m4n8p1r5", "user:1"],
                Err(USER_NOT_FOUND),
            ),
            (
                "user inactive",
                &db,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&good_data, NOW + 1)),
                Some(inactive),
                &["row:k7v3x9q2m4n8p1r5", "user:1"],
                Err(USER_INACTIVE),
            ),
            (
                "hash mismatch",
                &db,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&other_data, NOW + 1)),
                u,
                &["row:k7v3x9q2m4n8p1r5", "user:1"],
                Err(HASH_MISMATCH),
            ),
            (
                "fallback hash, channels",
                &db,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&fallback_data, NOW + 1)),
                u,
                &["row:k7v3x9q2m4n8p1r5", "user:1"],
                Err(HASH_MISMATCH),
            ),
            (
                "fallback hash, get_user",
                &db_get_user,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&fallback_data, NOW + 1)),
                u,
                &["row:k7v3x9q2m4n8p1r5", "user:1"],
                Ok("1"),
            ),
            (
                "int pk reads the id as int()",
                &db,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&padded_data, NOW + 1)),
                u,
                &["row:k7v3x9q2m4n8p1r5", "user:1"],
                Ok(" 01 "),
            ),
            (
                "text pk keeps the id as is",
                &db,
                Some(cookie(KEY)),
                PkKind::Str,
                Some(row(&padded_data, NOW + 1)),
                u,
                &["row:k7v3x9q2m4n8p1r5", "user: 01 "],
                Ok(" 01 "),
            ),
            (
                "uuid pk reads the id as a UUID",
                &db,
                Some(cookie(KEY)),
                PkKind::Uuid,
                Some(row(&uuid_data, NOW + 1)),
                u,
                &[
                    "row:k7v3x9q2m4n8p1r5",
                    "user:6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f",
                ],
                Ok("6F1C2B9E-3D4A-4C5B-8E7F-0A1B2C3D4E5F"),
            ),
            (
                "int pk, id not a number",
                &db,
                Some(cookie(KEY)),
                PkKind::Int,
                Some(row(&text_data, NOW + 1)),
                u,
                &["row:k7v3x9q2m4n8p1r5"],
                Err(USER_NOT_FOUND),
            ),
        ];
        for (case, v, credential, pk, row, user, want_asked, want) in cases {
            let (asked, got) = drive(v, *credential, *pk, *row, *user);
            assert_eq!(asked, *want_asked, "{case}: lookups");
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{case}: verdict");
        }
    }

    #[test]
    fn check_ignores_answers_it_did_not_ask_for() {
        let v = verifier(false, &[BACKEND]);
        let mut check = v.check(
            Some(SessionCredential::Cookie("k7v3x9q2m4n8p1r5")),
            PkKind::Int,
            NOW,
        );
        check.answer_user(None);
        assert_eq!(
            check.poll(),
            SessionStep::NeedRow {
                session_key: "k7v3x9q2m4n8p1r5"
            }
        );
        check.answer_row(None);
        check.answer_row(None);
        assert_eq!(check.poll(), SessionStep::Done(Err(NO_ROW)));
        check.answer_user(Some(&user(true)));
        assert_eq!(check.poll(), SessionStep::Done(Err(NO_ROW)));
    }

    #[test]
    fn iso8601_table() {
        let rows: &[(&str, Option<i64>)] = &[
            ("1970-01-01T00:00:00+00:00", Some(0)),
            ("2025-06-29T14:06:40+00:00", Some(1_751_206_000)),
            ("2025-06-29 14:06:40", Some(1_751_206_000)),
            ("2025-06-29T14:06:40Z", Some(1_751_206_000)),
            ("2025-06-29t14:06:40z", Some(1_751_206_000)),
            ("2025-06-29T14:06:40.000000+00:00", Some(1_751_206_000)),
            ("2025-06-29T14:06:40.0000009", Some(1_751_206_000)),
            ("2025-06-29 14:06:40.5", Some(1_751_206_001)),
            ("2025-06-29T14:06:40,000001", Some(1_751_206_001)),
            ("2025-06-29T16:06:40+02:00", Some(1_751_206_000)),
            ("2025-06-29T16:06:40+0200", Some(1_751_206_000)),
            ("2025-06-29T16:06:40+02", Some(1_751_206_000)),
            ("2025-06-29T12:06:40-02:00", Some(1_751_206_000)),
            ("2025-06-29T14:06", Some(1_751_205_960)),
            ("2025-06-29", Some(1_751_155_200)),
            ("2024-02-29T00:00:00", Some(1_709_164_800)),
            ("2023-02-29T00:00:00", None),
            ("2025-06-29T24:00:00", None),
            ("2025-06-29T14:06:60", None),
            ("2025-13-01", None),
            ("2025-06-29T14:06:40+", None),
            ("2025-06-29T14:06:40.", None),
            ("2025-06-29T14:06:40 ", None),
            ("2025-06-29X14:06:40", None),
            ("0000-01-01", None),
            ("", None),
            ("٢٠٢٥-06-29", None),
        ];
        for (s, want) in rows {
            assert_eq!(parse_iso8601_utc(s), *want, "{s:?}");
        }
    }

    #[test]
    fn days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
    }
}
