//! Configuration types, loaded by the CLI (TOML), the FFI (JSON) and the
//! transports with serde, then turned into an [`Authenticator`] with
//! [`Authenticator::from_config`].
//!
//! Secrets are *references* (a value, an environment variable or a file);
//! the host resolves them ([`Config::resolve_secrets`]) — the core never
//! reads the environment or the file system.
//!
//! ```toml
//! [jwt]
//! secret = { env = "DJANGO_SECRET_KEY" }
//! algorithm = "HS256"
//! leeway = 0
//!
//! [users]
//! source = "claims"          # or "directory"
//!
//! [credentials]
//! carriers = ["subprotocol", "header", "query", "cookie", "session", "message"]
//!
//! [origins]
//! allowed = ["https://app.example.com", "http://localhost:*"]
//!
//! [[routes]]
//! name = "chat"
//! path = "/ws/chat/<room>/"
//! requirement = "anonymous"
//!
//! [[routes]]
//! name = "receipts"
//! path = "/ws/receipts/<int:id>/"
//! requirement = { owner = "id" }
//! ```

use crate::django::session::{SessionEngine, SessionSettings, SessionVerifier};
use crate::edge::{valid_header_name, UpstreamAddr, UpstreamError};
use crate::jwt::key::{Algorithm, KeyError, SecretKey};
use crate::jwt::userid::PkKind;
use crate::jwt::{JwtSettings, TokenVerifier, DEFAULT_MAX_TOKEN_BYTES};
use crate::pipeline::decide::{AuthSettings, Authenticator, UserSource};
use crate::pipeline::origin::{OriginPatternError, OriginPolicy};
use crate::pipeline::ratelimit::RateLimit;
use crate::pipeline::route::{PathPattern, Requirement, Route, RouteError, Routes};
use crate::pipeline::view::{Carrier, CredentialSettings};
use crate::sql::{bind_sql, BoundSql, Placeholders, SqlError};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Where a secret comes from. In TOML: `"literal"`, `{ value = "…" }`,
/// `{ env = "VAR" }` or `{ file = "/path" }`. `Debug` hides literal values.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretRef {
    /// The secret itself.
    Value(String),
    /// The name of an environment variable holding it.
    Env(String),
    /// A file holding it: UTF-8, one trailing line ending (`\n` or
    /// `\r\n`) removed ([`secret_from_file`]).
    File(String),
}

impl SecretRef {
    /// The secret, with the host doing only the I/O: `env` reads an
    /// environment variable, `read_file` a file's bytes. The rules for what
    /// those hold are here ([`secret_from_file`]). `None` when unavailable.
    pub fn resolve(
        &self,
        env: impl FnOnce(&str) -> Option<String>,
        read_file: impl FnOnce(&str) -> Option<Vec<u8>>,
    ) -> Option<String> {
        match self {
            SecretRef::Value(v) => Some(v.clone()),
            SecretRef::Env(name) => env(name),
            SecretRef::File(path) => secret_from_file(&read_file(path)?),
        }
    }
}

/// A secret file's contents as the secret: UTF-8 text with exactly one
/// trailing line ending removed (`echo "$SECRET" > file` and editors add one;
/// any other whitespace is part of the secret, as Django would see it in
/// `SECRET_KEY`). `None` for text that is not UTF-8.
pub fn secret_from_file(contents: &[u8]) -> Option<String> {
    let text = core::str::from_utf8(contents).ok()?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    Some(String::from(text))
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Value(v) => write!(f, "Value(<{} bytes redacted>)", v.len()),
            SecretRef::Env(n) => f.debug_tuple("Env").field(n).finish(),
            SecretRef::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, or a table with one of `value`, `env`, `file`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretRef, E> {
                Ok(SecretRef::Value(v.into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<SecretRef, E> {
                Ok(SecretRef::Value(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("expected one of `value`, `env`, `file`"));
                };
                let val: String = map.next_value()?;
                let out = match key.as_str() {
                    "value" => SecretRef::Value(val),
                    "env" => SecretRef::Env(val),
                    "file" => SecretRef::File(val),
                    other => {
                        return Err(de::Error::unknown_field(other, &["value", "env", "file"]))
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(
                        "expected exactly one of `value`, `env`, `file`",
                    ));
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// Which database a `[database].url` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseKind {
    /// `postgres://` / `postgresql://`.
    Postgres,
    /// `sqlite:` (`sqlite:///abs/path`, `sqlite://rel/path`, `sqlite::memory:`).
    Sqlite,
}

impl DatabaseKind {
    /// The backend's placeholder syntax.
    pub fn placeholders(self) -> Placeholders {
        match self {
            DatabaseKind::Postgres => Placeholders::Dollar,
            DatabaseKind::Sqlite => Placeholders::QuestionNumbered,
        }
    }
}

/// The database a URL names, by its scheme; `None` for any other.
pub fn database_kind(url: &str) -> Option<DatabaseKind> {
    let scheme = url.split_once(':')?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "postgres" | "postgresql" => Some(DatabaseKind::Postgres),
        "sqlite" => Some(DatabaseKind::Sqlite),
        _ => None,
    }
}

/// `[jwt]`: SimpleJWT settings, named after them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// `SIGNING_KEY` (defaults to `SECRET_KEY` in SimpleJWT).
    pub secret: Option<SecretRef>,
    /// Extra keys accepted for verification (SimpleJWT has none: opt-in).
    pub fallback_secrets: Vec<SecretRef>,
    /// `ALGORITHM`: `HS256`, `HS384` or `HS512`.
    pub algorithm: String,
    /// `LEEWAY`, seconds.
    pub leeway: u32,
    /// `AUDIENCE`.
    pub audience: Option<String>,
    /// `ISSUER`.
    pub issuer: Option<String>,
    /// `USER_ID_CLAIM`.
    pub user_id_claim: String,
    /// `TOKEN_TYPE_CLAIM`.
    pub token_type_claim: String,
    /// `JTI_CLAIM`.
    pub jti_claim: String,
    /// `REVOKE_TOKEN_CLAIM`.
    pub revoke_token_claim: String,
}

impl Default for JwtConfig {
    fn default() -> Self {
        let d = JwtSettings::default();
        JwtConfig {
            secret: None,
            fallback_secrets: Vec::new(),
            algorithm: d.algorithm.as_str().into(),
            leeway: d.leeway,
            audience: d.audience,
            issuer: d.issuer,
            user_id_claim: d.user_id_claim,
            token_type_claim: d.token_type_claim,
            jti_claim: d.jti_claim,
            revoke_token_claim: d.revoke_token_claim,
        }
    }
}

/// The user model's primary key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkConfig {
    /// `AutoField` / `BigAutoField`.
    #[default]
    Int,
    /// `UUIDField`.
    Uuid,
    /// A text field.
    Str,
}

impl From<PkConfig> for PkKind {
    fn from(p: PkConfig) -> Self {
        match p {
            PkConfig::Int => PkKind::Int,
            PkConfig::Uuid => PkKind::Uuid,
            PkConfig::Str => PkKind::Str,
        }
    }
}

/// `[users]`: where user flags come from and which extra checks run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersConfig {
    /// `claims` (no lookups) or `directory` (the host looks the user up).
    pub source: UserSource,
    /// Primary key type.
    pub pk: PkConfig,
    /// Ask the host whether a token's `jti` is revoked.
    pub check_revoked_jti: bool,
    /// SimpleJWT `CHECK_REVOKE_TOKEN` (directory only).
    pub check_password_claim: bool,
    /// SimpleJWT `CHECK_USER_IS_ACTIVE` (directory only).
    pub check_user_is_active: bool,
}

impl Default for UsersConfig {
    fn default() -> Self {
        UsersConfig {
            source: UserSource::Claims,
            pk: PkConfig::Int,
            check_revoked_jti: false,
            check_password_claim: false,
            check_user_is_active: true,
        }
    }
}

/// `SESSION_ENGINE`, by family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineConfig {
    /// `db`, `cached_db`, `cache`, `file`: the host fetches the row.
    #[default]
    Db,
    /// `signed_cookies`.
    SignedCookies,
    /// `cache`: the pickled session in the cache (Redis).
    Cache,
    /// `cached_db`: the cache, else the `django_session` row.
    CachedDb,
}

/// `[session]`: Django sessions (optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// `SESSION_ENGINE`.
    pub engine: EngineConfig,
    /// `SESSION_COOKIE_NAME`.
    pub cookie_name: String,
    /// `SESSION_COOKIE_AGE`, seconds.
    pub cookie_age: i64,
    /// `AUTHENTICATION_BACKENDS`.
    pub auth_backends: Vec<String>,
    /// Accept fallback-key session hashes (as `django.contrib.auth.get_user`).
    pub accept_fallback_hash: bool,
    /// `SECRET_KEY` (default: the JWT secret).
    pub secret: Option<SecretRef>,
    /// `SECRET_KEY_FALLBACKS`.
    pub fallback_secrets: Vec<SecretRef>,
    /// `cache` / `cached_db`: the cache's `LOCATION` (default: `[redis] url`).
    pub cache_url: Option<SecretRef>,
    /// The cache's `KEY_PREFIX`.
    pub cache_key_prefix: String,
    /// The cache's `VERSION`.
    pub cache_version: i64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        let d = SessionSettings::default();
        SessionConfig {
            engine: EngineConfig::Db,
            cookie_name: d.cookie_name,
            cookie_age: d.cookie_age,
            auth_backends: d.auth_backends,
            accept_fallback_hash: d.accept_fallback_hash,
            secret: None,
            fallback_secrets: Vec::new(),
            cache_url: None,
            cache_key_prefix: String::new(),
            cache_version: 1,
        }
    }
}

/// `[credentials]`: where credentials are looked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialsConfig {
    /// Carriers in order; `message` enables first-message auth. When unset:
    /// `subprotocol`, `header`, `query`, then `cookie` if `jwt_cookie` is set
    /// and `session` if a `[session]` table exists.
    pub carriers: Option<Vec<Carrier>>,
    /// The bearer subprotocol name.
    pub subprotocol: String,
    /// `AUTH_HEADER_TYPES`.
    pub header_types: Vec<String>,
    /// `AUTH_HEADER_NAME` as an HTTP header name (`Authorization`).
    pub header_name: String,
    /// Query parameters, in order.
    pub query_params: Vec<String>,
    /// Cookie holding a JWT (for the `cookie` carrier).
    pub jwt_cookie: Option<String>,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        let d = CredentialSettings::default();
        CredentialsConfig {
            carriers: None,
            subprotocol: d.subprotocol,
            header_types: d.header_types,
            header_name: "Authorization".into(),
            query_params: d.query_params,
            jwt_cookie: d.jwt_cookie,
        }
    }
}

/// Origin checking mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginModeConfig {
    /// DESIGN §3 allowlist.
    #[default]
    Allowlist,
    /// Channels' `OriginValidator` patterns.
    Channels,
}

/// `[origins]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginsConfig {
    /// Mode.
    pub mode: OriginModeConfig,
    /// Allowed origins / patterns.
    pub allowed: Vec<String>,
    /// Allowlist mode: refuse requests without an `Origin` header.
    pub require_origin: bool,
}

impl Default for OriginsConfig {
    fn default() -> Self {
        OriginsConfig {
            mode: OriginModeConfig::Allowlist,
            allowed: vec!["http://localhost:*".into(), "http://127.0.0.1:*".into()],
            require_origin: false,
        }
    }
}

/// `[[routes]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A name (reported to the host in access requests).
    pub name: String,
    /// The path pattern (`/ws/chat/<room>/`).
    pub path: String,
    /// The requirement.
    pub requirement: Requirement,
    /// Anonymous routes: refuse invalid credentials with 4401 instead of connecting anonymously.
    #[serde(default)]
    pub strict: bool,
    /// Allow first-message auth here (default: whether `message` is a carrier).
    #[serde(default)]
    pub auth_message: Option<bool>,
    /// Owner / member routes with a `[database]`: the access query. `:user`
    /// is the principal's pk, `:<name>` a path parameter; a returned row
    /// means allowed ([`bind_sql`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
}

impl RouteConfig {
    /// This route's access SQL for a backend's `style`: checked against the
    /// route's path parameters and rewritten ([`bind_sql`]). `None` without `sql`.
    pub fn bound_sql(&self, style: Placeholders) -> Option<Result<BoundSql, SqlError>> {
        let sql = self.sql.as_deref()?;
        let pattern = PathPattern::parse(&self.path).ok();
        let names: Vec<&str> = pattern
            .as_ref()
            .map(|p| p.param_names().collect())
            .unwrap_or_default();
        Some(bind_sql(sql, &names, style))
    }
}

/// `[database]`: the Django app's own database, read as Django reads it.
///
/// ```toml
/// [database]
/// url = "postgres://app@127.0.0.1:5432/app"   # or "sqlite:///srv/app/db.sqlite3", { env = "DATABASE_URL" }, { file = "…" }
/// pool_size = 8
/// lookup_timeout_ms = 500
/// user_table = "auth_user"
/// session_table = "django_session"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…`, `postgresql://…` or `sqlite://…` (a secret reference: it may hold a password).
    pub url: SecretRef,
    /// Most connections open at once.
    #[serde(default = "DatabaseConfig::default_pool_size")]
    pub pool_size: u32,
    /// A lookup slower than this failed (the connection closes 1013).
    #[serde(default = "DatabaseConfig::default_lookup_timeout_ms")]
    pub lookup_timeout_ms: u64,
    /// The user model's table (`AUTH_USER_MODEL`'s `db_table`).
    #[serde(default = "DatabaseConfig::default_user_table")]
    pub user_table: String,
    /// Its primary-key column.
    #[serde(default = "DatabaseConfig::default_user_pk_column")]
    pub user_pk_column: String,
    /// The session table (`django_session`).
    #[serde(default = "DatabaseConfig::default_session_table")]
    pub session_table: String,
    /// Keep answers this long (milliseconds); 0, the default: no cache, a
    /// change made in Django is seen on the next handshake.
    #[serde(default)]
    pub cache_ttl_ms: u64,
}

impl DatabaseConfig {
    fn default_pool_size() -> u32 {
        8
    }
    fn default_lookup_timeout_ms() -> u64 {
        500
    }
    fn default_user_table() -> String {
        "auth_user".into()
    }
    fn default_user_pk_column() -> String {
        "id".into()
    }
    fn default_session_table() -> String {
        "django_session".into()
    }

    /// A database at `url` with the defaults (pool 8, 500 ms, `auth_user`, `django_session`).
    pub fn new(url: SecretRef) -> Self {
        DatabaseConfig {
            url,
            pool_size: Self::default_pool_size(),
            lookup_timeout_ms: Self::default_lookup_timeout_ms(),
            user_table: Self::default_user_table(),
            user_pk_column: Self::default_user_pk_column(),
            session_table: Self::default_session_table(),
            cache_ttl_ms: 0,
        }
    }
}

/// Whether `name` is usable as a table or column name as written (ASCII
/// letters, digits, `_`, optionally one `schema.` prefix): table names are
/// the one thing not bound as parameters.
pub fn is_sql_identifier(name: &str) -> bool {
    let ok = |part: &str| {
        part.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    match name.split_once('.') {
        Some((schema, table)) => ok(schema) && ok(table),
        None => ok(name),
    }
}

/// `[limits.rate_limit]`: connection attempts per key (peer IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Attempts per period, sustained.
    pub requests: u32,
    /// The period, seconds.
    pub period_secs: u32,
    /// Attempts allowed at once.
    pub burst: u32,
    /// Where the state is kept (`"redis"`: one count for every gateway).
    #[serde(default)]
    pub store: crate::shared::RateStoreKind,
    /// With `store = "redis"`: admit attempts while Redis is unreachable
    /// instead of closing 1013 (rate limits only; nothing else fails open).
    #[serde(default)]
    pub fail_open: bool,
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest token, bytes.
    pub max_token_bytes: usize,
    /// Largest session cookie value, bytes.
    pub max_cookie_bytes: usize,
    /// Largest control message, bytes.
    pub max_message_bytes: usize,
    /// Seconds the host allows for the HTTP upgrade (host-enforced).
    pub handshake_timeout_secs: u32,
    /// Seconds a client without a credential has for its auth message.
    pub auth_message_timeout_secs: u32,
    /// Connection-attempt rate limit.
    pub rate_limit: Option<RateLimitConfig>,
    /// `[limits.admission]`: connection caps, idle timeout, outbox budgets,
    /// trusted proxies.
    pub admission: crate::admission::AdmissionConfig,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            max_cookie_bytes: 8 * 1024,
            max_message_bytes: 16 * 1024,
            handshake_timeout_secs: 10,
            auth_message_timeout_secs: 10,
            rate_limit: None,
            admission: crate::admission::AdmissionConfig::default(),
        }
    }
}

/// `[upstream]`: forward every accepted connection to this app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `ws://host:port` of the ASGI server (no path: the client's path and
    /// query are forwarded as they came, credentials removed).
    pub url: String,
    /// The HMAC key shared with the app (`WSAUTH_GATEWAY_SECRET` there).
    pub secret: Option<SecretRef>,
    /// The principal header's name.
    pub header: String,
    /// How long connecting to the upstream (TCP + handshake) may take.
    pub connect_timeout_ms: u64,
    /// Forward the Django session cookie (the app reads `scope["session"]`).
    pub keep_session_cookie: bool,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            url: String::new(),
            secret: None,
            header: crate::edge::DEFAULT_HEADER.into(),
            connect_timeout_ms: crate::edge::DEFAULT_CONNECT_TIMEOUT_MS,
            keep_session_cookie: false,
        }
    }
}

impl UpstreamConfig {
    /// Every problem with this section: the setting's name and why.
    pub fn problems(&self) -> Vec<(&'static str, UpstreamError)> {
        let mut out = Vec::new();
        if let Err(e) = UpstreamAddr::parse(&self.url) {
            out.push(("url", e));
        }
        if !valid_header_name(&self.header) {
            out.push(("header", UpstreamError::BadHeader));
        }
        if self.connect_timeout_ms == 0 || self.connect_timeout_ms > 60_000 {
            out.push(("connect_timeout_ms", UpstreamError::BadTimeout));
        }
        if self.secret.is_none() {
            out.push(("secret", UpstreamError::MissingSecret));
        }
        out
    }

    /// The settings [`crate::edge::Edge::new`] takes.
    pub fn settings(&self) -> crate::edge::EdgeSettings<'_> {
        crate::edge::EdgeSettings {
            url: &self.url,
            header: &self.header,
            connect_timeout_ms: self.connect_timeout_ms,
            keep_session_cookie: self.keep_session_cookie,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[jwt]`.
    pub jwt: JwtConfig,
    /// `[users]`.
    pub users: UsersConfig,
    /// `[session]` (sessions are off without it).
    pub session: Option<SessionConfig>,
    /// `[credentials]`.
    pub credentials: CredentialsConfig,
    /// `[origins]`.
    pub origins: OriginsConfig,
    /// `[[routes]]`, tried in order.
    pub routes: Vec<RouteConfig>,
    /// `[limits]`.
    pub limits: LimitsConfig,
    /// `[database]`: users, sessions and access from the app's database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseConfig>,
    /// `[redis]`: state shared by every gateway (revocations, rate limits,
    /// cache sessions).
    pub redis: Option<crate::shared::RedisConfig>,
    /// `[upstream]`: edge mode — forward every accepted connection to the
    /// app behind the gateway, with a signed principal header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamConfig>,
}

impl Config {
    /// A configuration built in code: `secret` signs and verifies tokens,
    /// everything else at its default (user flags from token claims, no
    /// routes yet). Add routes with [`Config::route`]; a host with its own
    /// user store needs [`Config::users_from`]`(UserSource::Directory)` —
    /// [`Config::check`] lists what is wrong, as for a file.
    pub fn new(secret: SecretRef) -> Self {
        let mut c = Config::default();
        c.jwt.secret = Some(secret);
        c
    }

    /// Adds a route (tried in the order added).
    pub fn route(mut self, route: RouteConfig) -> Self {
        self.routes.push(route);
        self
    }

    /// Where user flags come from: token claims, or the host's user directory.
    pub fn users_from(mut self, source: UserSource) -> Self {
        self.users.source = source;
        self
    }

    /// The connection-attempt rate limit per peer.
    pub fn rate_limit(mut self, requests: u32, period_secs: u32, burst: u32) -> Self {
        self.limits.rate_limit = Some(RateLimitConfig {
            requests,
            period_secs,
            burst,
            store: crate::shared::RateStoreKind::default(),
            fail_open: false,
        });
        self
    }
}

impl Config {
    /// [`Config::check`] for a host: with `host_has_users`, a `claims`
    /// source is a mistake (the host's users would never be asked).
    pub fn check_for_host(&self, host_has_users: bool) -> Vec<ConfigError> {
        let mut errs = self.check();
        if host_has_users && !self.asks_for_users() {
            errs.push(ConfigError::new(
                "users.source",
                ConfigErrorKind::UsersNeverAsked,
            ));
        }
        errs
    }
}

impl Config {
    /// Whether a handshake may ask the host for a user: directory users,
    /// or Django sessions (`get_user()` always loads the user).
    pub fn asks_for_users(&self) -> bool {
        self.users.source == UserSource::Directory || self.session.is_some()
    }
}

impl RouteConfig {
    /// A route: its name (reported to the host in access requests), its
    /// path pattern (`/ws/receipts/<int:id>/`) and its requirement.
    pub fn new(name: &str, path: &str, requirement: Requirement) -> Self {
        RouteConfig {
            name: name.into(),
            path: path.into(),
            requirement,
            strict: false,
            auth_message: None,
            sql: None,
        }
    }

    /// Anonymous routes: refuse an invalid credential (4401) instead of
    /// connecting anonymously.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Allow (or forbid) first-message auth on this route.
    pub fn auth_message(mut self, allowed: bool) -> Self {
        self.auth_message = Some(allowed);
        self
    }
}

/// What is wrong, for a `config check` line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// `jwt.secret` is not set.
    MissingSecret,
    /// A secret reference could not be resolved (unset variable, unreadable file).
    UnresolvedSecret,
    /// A key was refused.
    Key(KeyError),
    /// Not one of `HS256`, `HS384`, `HS512`.
    BadAlgorithm,
    /// A route's pattern or requirement is invalid.
    Route(RouteError),
    /// Two routes share a name.
    DuplicateRoute,
    /// There are no routes.
    NoRoutes,
    /// An origin pattern is invalid.
    Origin(OriginPatternError),
    /// No carrier is configured.
    NoCarriers,
    /// A carrier appears twice.
    DuplicateCarrier,
    /// The host keeps a user store, but `users.source = "claims"` takes user
    /// flags from token claims and there are no sessions: its users would
    /// never be asked.
    UsersNeverAsked,
    /// The `session` carrier needs a `[session]` table.
    SessionCarrierWithoutSession,
    /// Sessions need `users.source = "directory"` (a session names a user the host must load).
    SessionNeedsDirectory,
    /// `check_password_claim` needs `users.source = "directory"`.
    PasswordClaimNeedsDirectory,
    /// The `cookie` carrier needs `credentials.jwt_cookie`.
    CookieCarrierWithoutName,
    /// A list that must not be empty is empty.
    Empty,
    /// A size or time limit must be greater than zero.
    Zero,
    /// `require_origin` only applies to the allowlist mode.
    RequireOriginInChannelsMode,
    /// A route's access SQL is refused.
    Sql(SqlError),
    /// An owner / member route with a `[database]` needs `sql`.
    AccessNeedsSql,
    /// `sql` on a route that asks no access question (not owner / member).
    SqlWithoutAccess,
    /// `sql` needs a `[database]`.
    SqlWithoutDatabase,
    /// Not a plain table or column name.
    BadIdentifier,
    /// Not a `postgres://`, `postgresql://` or `sqlite:` URL.
    BadDatabaseUrl,
    /// Not an IP address (`limits.admission.trusted_proxies`).
    NotAnAddress,
    /// A Redis rate store or a cache session engine needs `[redis]` (or
    /// `session.cache_url`).
    NeedsRedis,
    /// An `[upstream]` setting is unusable.
    Upstream(UpstreamError),
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigErrorKind::MissingSecret => f.write_str("a signing secret is required"),
            ConfigErrorKind::UnresolvedSecret => {
                f.write_str("the secret could not be resolved (variable unset or file unreadable)")
            }
            ConfigErrorKind::Key(e) => fmt::Display::fmt(e, f),
            ConfigErrorKind::BadAlgorithm => f.write_str("expected HS256, HS384 or HS512"),
            ConfigErrorKind::Route(e) => fmt::Display::fmt(e, f),
            ConfigErrorKind::DuplicateRoute => f.write_str("another route has the same name"),
            ConfigErrorKind::NoRoutes => f.write_str("at least one route is required"),
            ConfigErrorKind::Origin(e) => fmt::Display::fmt(e, f),
            ConfigErrorKind::NoCarriers => f.write_str("at least one carrier is required"),
            ConfigErrorKind::DuplicateCarrier => f.write_str("the carrier is listed twice"),
            ConfigErrorKind::UsersNeverAsked => f.write_str(
                "the host has a user store, but users.source = \"claims\" takes user flags from token claims and never asks it: set users.source = \"directory\"",
            ),
            ConfigErrorKind::SessionCarrierWithoutSession => {
                f.write_str("the session carrier needs a [session] table")
            }
            ConfigErrorKind::SessionNeedsDirectory => {
                f.write_str("sessions need users.source = \"directory\"")
            }
            ConfigErrorKind::PasswordClaimNeedsDirectory => {
                f.write_str("check_password_claim needs users.source = \"directory\"")
            }
            ConfigErrorKind::CookieCarrierWithoutName => {
                f.write_str("the cookie carrier needs credentials.jwt_cookie")
            }
            ConfigErrorKind::Empty => f.write_str("must not be empty"),
            ConfigErrorKind::Zero => f.write_str("must be greater than zero"),
            ConfigErrorKind::Sql(e) => fmt::Display::fmt(e, f),
            ConfigErrorKind::AccessNeedsSql => f.write_str(
                "an owner / member route needs `sql` (the access query) when [database] is set",
            ),
            ConfigErrorKind::SqlWithoutAccess => {
                f.write_str("`sql` is only asked on owner / member routes")
            }
            ConfigErrorKind::SqlWithoutDatabase => f.write_str("`sql` needs a [database] table"),
            ConfigErrorKind::BadIdentifier => {
                f.write_str("expected a plain table / column name (letters, digits, `_`, one optional `schema.`)")
            }
            ConfigErrorKind::BadDatabaseUrl => {
                f.write_str("expected a postgres://, postgresql:// or sqlite: URL")
            }
            ConfigErrorKind::NeedsRedis => {
                f.write_str("needs a [redis] table (or session.cache_url for the session cache)")
            }
            ConfigErrorKind::RequireOriginInChannelsMode => {
                f.write_str("require_origin applies to the allowlist mode only (Channels refuses a missing Origin unless \"*\" is listed)")
            }
            ConfigErrorKind::NotAnAddress => f.write_str("expected an IP address"),
            ConfigErrorKind::Upstream(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// A configuration problem and where it is (`routes[2].requirement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending field.
    pub path: String,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    fn new(path: impl Into<String>, kind: ConfigErrorKind) -> Self {
        ConfigError {
            path: path.into(),
            kind,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)
    }
}

impl core::error::Error for ConfigError {}

/// Secrets the host resolved from a [`Config`].
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// JWT keys: the signing key first, then accepted fallbacks.
    pub jwt: Vec<SecretKey>,
    /// Django `SECRET_KEY` then `SECRET_KEY_FALLBACKS` (sessions); empty: the JWT keys.
    pub django: Vec<SecretKey>,
    /// `upstream.secret`: signs the principal header in edge mode.
    pub upstream: Option<SecretKey>,
}

impl Config {
    /// The carriers in effect (the configured list, or the default derived from the other settings).
    pub fn effective_carriers(&self) -> Vec<Carrier> {
        if let Some(list) = &self.credentials.carriers {
            return list.clone();
        }
        let mut out = vec![Carrier::Subprotocol, Carrier::Header, Carrier::Query];
        if self.credentials.jwt_cookie.is_some() {
            out.push(Carrier::Cookie);
        }
        if self.session.is_some() {
            out.push(Carrier::Session);
        }
        out
    }

    /// The reference app's routes: `/ws/chat/<room>/` anonymous,
    /// `/ws/admin/chat/` and `/ws/logs/` staff, `/ws/receipts/<id>/` owner,
    /// `/ws/conversations/<id>/` member.
    pub fn reference_routes() -> Vec<RouteConfig> {
        let r = |name: &str, path: &str, requirement: Requirement| RouteConfig {
            name: name.into(),
            path: path.into(),
            requirement,
            strict: false,
            auth_message: None,
            sql: None,
        };
        vec![
            r("chat", "/ws/chat/<room>/", Requirement::Anonymous),
            r("admin_chat", "/ws/admin/chat/", Requirement::Staff),
            r("logs", "/ws/logs/", Requirement::Staff),
            r(
                "receipts",
                "/ws/receipts/<id>/",
                Requirement::Owner("id".into()),
            ),
            r(
                "conversations",
                "/ws/conversations/<id>/",
                Requirement::Member("id".into()),
            ),
        ]
    }

    /// Every structural problem (secrets are not resolved here).
    pub fn check(&self) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        if self.jwt.secret.is_none() {
            errs.push(ConfigError::new(
                "jwt.secret",
                ConfigErrorKind::MissingSecret,
            ));
        }
        if Algorithm::from_name(&self.jwt.algorithm).is_none() {
            errs.push(ConfigError::new(
                "jwt.algorithm",
                ConfigErrorKind::BadAlgorithm,
            ));
        }
        for (field, v) in [
            ("jwt.user_id_claim", &self.jwt.user_id_claim),
            ("jwt.token_type_claim", &self.jwt.token_type_claim),
            ("jwt.jti_claim", &self.jwt.jti_claim),
        ] {
            if v.is_empty() {
                errs.push(ConfigError::new(field, ConfigErrorKind::Empty));
            }
        }
        let directory = self.users.source == UserSource::Directory;
        if self.users.check_password_claim && !directory {
            errs.push(ConfigError::new(
                "users.check_password_claim",
                ConfigErrorKind::PasswordClaimNeedsDirectory,
            ));
        }
        if self.session.is_some() && !directory {
            errs.push(ConfigError::new(
                "users.source",
                ConfigErrorKind::SessionNeedsDirectory,
            ));
        }
        if let Some(s) = &self.session {
            if s.cookie_name.is_empty() {
                errs.push(ConfigError::new(
                    "session.cookie_name",
                    ConfigErrorKind::Empty,
                ));
            }
            if s.auth_backends.is_empty() {
                errs.push(ConfigError::new(
                    "session.auth_backends",
                    ConfigErrorKind::Empty,
                ));
            }
            if s.cookie_age <= 0 {
                errs.push(ConfigError::new(
                    "session.cookie_age",
                    ConfigErrorKind::Zero,
                ));
            }
        }
        let c = &self.credentials;
        let carriers = self.effective_carriers();
        if carriers.is_empty() {
            errs.push(ConfigError::new(
                "credentials.carriers",
                ConfigErrorKind::NoCarriers,
            ));
        }
        for (i, carrier) in carriers.iter().enumerate() {
            let path = format!("credentials.carriers[{i}]");
            if carriers
                .get(..i)
                .is_some_and(|before| before.contains(carrier))
            {
                errs.push(ConfigError::new(
                    path.clone(),
                    ConfigErrorKind::DuplicateCarrier,
                ));
            }
            match carrier {
                Carrier::Session if self.session.is_none() => errs.push(ConfigError::new(
                    path,
                    ConfigErrorKind::SessionCarrierWithoutSession,
                )),
                Carrier::Cookie if c.jwt_cookie.as_deref().is_none_or(str::is_empty) => errs.push(
                    ConfigError::new(path, ConfigErrorKind::CookieCarrierWithoutName),
                ),
                Carrier::Subprotocol if c.subprotocol.is_empty() => errs.push(ConfigError::new(
                    "credentials.subprotocol",
                    ConfigErrorKind::Empty,
                )),
                Carrier::Header if c.header_types.is_empty() || c.header_name.is_empty() => errs
                    .push(ConfigError::new(
                        "credentials.header_types",
                        ConfigErrorKind::Empty,
                    )),
                Carrier::Query if c.query_params.is_empty() => errs.push(ConfigError::new(
                    "credentials.query_params",
                    ConfigErrorKind::Empty,
                )),
                _ => {}
            }
        }
        match self.origins.mode {
            OriginModeConfig::Allowlist => {
                if let Err((i, e)) =
                    OriginPolicy::allowlist(&self.origins.allowed, self.origins.require_origin)
                {
                    errs.push(ConfigError::new(
                        format!("origins.allowed[{i}]"),
                        ConfigErrorKind::Origin(e),
                    ));
                }
            }
            OriginModeConfig::Channels => {
                if self.origins.require_origin {
                    errs.push(ConfigError::new(
                        "origins.require_origin",
                        ConfigErrorKind::RequireOriginInChannelsMode,
                    ));
                }
                if let Err((i, e)) = OriginPolicy::channels(&self.origins.allowed) {
                    errs.push(ConfigError::new(
                        format!("origins.allowed[{i}]"),
                        ConfigErrorKind::Origin(e),
                    ));
                }
            }
        }
        if self.routes.is_empty() {
            errs.push(ConfigError::new("routes", ConfigErrorKind::NoRoutes));
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.name.is_empty() {
                errs.push(ConfigError::new(
                    format!("routes[{i}].name"),
                    ConfigErrorKind::Empty,
                ));
            } else if self
                .routes
                .get(..i)
                .is_some_and(|b| b.iter().any(|o| o.name == r.name))
            {
                errs.push(ConfigError::new(
                    format!("routes[{i}].name"),
                    ConfigErrorKind::DuplicateRoute,
                ));
            }
            if let Err(e) = Route::new(&r.name, &r.path, r.requirement.clone()) {
                let field = match e {
                    RouteError::Pattern(_) => "path",
                    _ => "requirement",
                };
                errs.push(ConfigError::new(
                    format!("routes[{i}].{field}"),
                    ConfigErrorKind::Route(e),
                ));
            }
        }
        self.check_database(&mut errs);
        let l = &self.limits;
        for (field, v) in [
            ("limits.max_token_bytes", l.max_token_bytes),
            ("limits.max_cookie_bytes", l.max_cookie_bytes),
            ("limits.max_message_bytes", l.max_message_bytes),
            (
                "limits.handshake_timeout_secs",
                l.handshake_timeout_secs as usize,
            ),
            (
                "limits.auth_message_timeout_secs",
                l.auth_message_timeout_secs as usize,
            ),
        ] {
            if v == 0 {
                errs.push(ConfigError::new(field, ConfigErrorKind::Zero));
            }
        }
        let a = &l.admission;
        for (field, v) in [
            (
                "limits.admission.outbox_bytes_per_connection",
                a.outbox_bytes_per_connection,
            ),
            ("limits.admission.outbox_bytes_total", a.outbox_bytes_total),
        ] {
            if v == 0 {
                errs.push(ConfigError::new(field, ConfigErrorKind::Zero));
            }
        }
        for (i, p) in a.trusted_proxies.iter().enumerate() {
            if p.trim().parse::<core::net::IpAddr>().is_err() {
                errs.push(ConfigError::new(
                    format!("limits.admission.trusted_proxies[{i}]"),
                    ConfigErrorKind::NotAnAddress,
                ));
            }
        }
        if let Some(rl) = &l.rate_limit {
            for (field, v) in [
                ("limits.rate_limit.requests", rl.requests),
                ("limits.rate_limit.period_secs", rl.period_secs),
                ("limits.rate_limit.burst", rl.burst),
            ] {
                if v == 0 {
                    errs.push(ConfigError::new(field, ConfigErrorKind::Zero));
                }
            }
        }
        if self.redis.is_none() {
            if self.limits.rate_limit.map(|r| r.store) == Some(crate::shared::RateStoreKind::Redis)
            {
                errs.push(ConfigError::new(
                    "limits.rate_limit.store",
                    ConfigErrorKind::NeedsRedis,
                ));
            }
            if let Some(s) = &self.session {
                if matches!(s.engine, EngineConfig::Cache | EngineConfig::CachedDb)
                    && s.cache_url.is_none()
                {
                    errs.push(ConfigError::new(
                        "session.engine",
                        ConfigErrorKind::NeedsRedis,
                    ));
                }
            }
        }
        if let Some(up) = &self.upstream {
            for (field, e) in up.problems() {
                errs.push(ConfigError::new(
                    format!("upstream.{field}"),
                    ConfigErrorKind::Upstream(e),
                ));
            }
        }
        errs
    }

    fn check_database(&self, errs: &mut Vec<ConfigError>) {
        if let Some(db) = &self.database {
            if let SecretRef::Value(url) = &db.url {
                if database_kind(url).is_none() {
                    errs.push(ConfigError::new(
                        "database.url",
                        ConfigErrorKind::BadDatabaseUrl,
                    ));
                }
            }
            if db.pool_size == 0 {
                errs.push(ConfigError::new(
                    "database.pool_size",
                    ConfigErrorKind::Zero,
                ));
            }
            if db.lookup_timeout_ms == 0 {
                errs.push(ConfigError::new(
                    "database.lookup_timeout_ms",
                    ConfigErrorKind::Zero,
                ));
            }
            for (field, v) in [
                ("database.user_table", &db.user_table),
                ("database.user_pk_column", &db.user_pk_column),
                ("database.session_table", &db.session_table),
            ] {
                if !is_sql_identifier(v) {
                    errs.push(ConfigError::new(field, ConfigErrorKind::BadIdentifier));
                }
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let access = matches!(
                r.requirement,
                Requirement::Owner(_) | Requirement::Member(_)
            );
            match (&r.sql, &self.database) {
                (None, Some(_)) if access => errs.push(ConfigError::new(
                    format!("routes[{i}].sql"),
                    ConfigErrorKind::AccessNeedsSql,
                )),
                (None, _) => {}
                (Some(_), None) => errs.push(ConfigError::new(
                    format!("routes[{i}].sql"),
                    ConfigErrorKind::SqlWithoutDatabase,
                )),
                (Some(_), Some(_)) if !access => errs.push(ConfigError::new(
                    format!("routes[{i}].sql"),
                    ConfigErrorKind::SqlWithoutAccess,
                )),
                (Some(_), Some(_)) => {
                    if let Some(Err(e)) = r.bound_sql(Placeholders::Dollar) {
                        errs.push(ConfigError::new(
                            format!("routes[{i}].sql"),
                            ConfigErrorKind::Sql(e),
                        ));
                    }
                }
            }
        }
    }

    /// Resolves the secret references with `resolve` (called for `env` and
    /// `file` references only; return `None` when unavailable).
    pub fn resolve_secrets(
        &self,
        mut resolve: impl FnMut(&SecretRef) -> Option<String>,
    ) -> Result<Secrets, ConfigError> {
        let mut one = |path: &str, r: &SecretRef| -> Result<SecretKey, ConfigError> {
            let value = match r {
                SecretRef::Value(v) => Some(v.clone()),
                other => resolve(other),
            };
            let value =
                value.ok_or_else(|| ConfigError::new(path, ConfigErrorKind::UnresolvedSecret))?;
            if value.is_empty() {
                return Err(ConfigError::new(
                    path,
                    ConfigErrorKind::Key(KeyError::Empty),
                ));
            }
            Ok(SecretKey::new(value.into_bytes()))
        };
        let mut out = Secrets::default();
        let Some(signing) = &self.jwt.secret else {
            return Err(ConfigError::new(
                "jwt.secret",
                ConfigErrorKind::MissingSecret,
            ));
        };
        out.jwt.push(one("jwt.secret", signing)?);
        for (i, r) in self.jwt.fallback_secrets.iter().enumerate() {
            out.jwt.push(one(&format!("jwt.fallback_secrets[{i}]"), r)?);
        }
        if let Some(s) = &self.session {
            if let Some(r) = &s.secret {
                out.django.push(one("session.secret", r)?);
                for (i, r) in s.fallback_secrets.iter().enumerate() {
                    out.django
                        .push(one(&format!("session.fallback_secrets[{i}]"), r)?);
                }
            }
        }
        if let Some(r) = self.upstream.as_ref().and_then(|u| u.secret.as_ref()) {
            out.upstream = Some(one("upstream.secret", r)?);
        }
        Ok(out)
    }

    /// Edge mode's settings (`None` without `[upstream]`), for an
    /// authenticator built from this configuration: the forwarded handshake
    /// loses exactly the credentials `auth` reads.
    pub fn edge(
        &self,
        secrets: &Secrets,
        auth: &Authenticator,
    ) -> Result<Option<crate::edge::Edge>, ConfigError> {
        let Some(up) = &self.upstream else {
            return Ok(None);
        };
        let secret = secrets
            .upstream
            .as_ref()
            .ok_or_else(|| ConfigError::new("upstream.secret", ConfigErrorKind::MissingSecret))?;
        crate::edge::Edge::new(&up.settings(), secret, auth.settings().credentials.clone())
            .map(Some)
            .map_err(|e| ConfigError::new("upstream", ConfigErrorKind::Upstream(e)))
    }
}

impl Authenticator {
    /// Builds an authenticator from a checked configuration and resolved
    /// secrets. Returns the first problem ([`Config::check`] lists all).
    pub fn from_config(config: &Config, secrets: &Secrets) -> Result<Self, ConfigError> {
        if let Some(e) = config.check().into_iter().next() {
            return Err(e);
        }
        let algorithm = Algorithm::from_name(&config.jwt.algorithm)
            .ok_or_else(|| ConfigError::new("jwt.algorithm", ConfigErrorKind::BadAlgorithm))?;
        let settings = JwtSettings {
            algorithm,
            leeway: config.jwt.leeway,
            audience: config.jwt.audience.clone(),
            issuer: config.jwt.issuer.clone(),
            user_id_claim: config.jwt.user_id_claim.clone(),
            token_type_claim: config.jwt.token_type_claim.clone(),
            jti_claim: config.jwt.jti_claim.clone(),
            revoke_token_claim: config.jwt.revoke_token_claim.clone(),
            max_token_bytes: config.limits.max_token_bytes,
            ..JwtSettings::default()
        };
        let mut keys = secrets.jwt.iter().cloned();
        let signing = keys
            .next()
            .ok_or_else(|| ConfigError::new("jwt.secret", ConfigErrorKind::MissingSecret))?;
        let tokens = TokenVerifier::new(settings, signing)
            .map_err(|e| ConfigError::new("jwt.secret", ConfigErrorKind::Key(e)))?
            .with_fallback_keys(keys)
            .map_err(|e| ConfigError::new("jwt.fallback_secrets", ConfigErrorKind::Key(e)))?;

        let mut routes = Vec::with_capacity(config.routes.len());
        for (i, r) in config.routes.iter().enumerate() {
            let route = Route::new(&r.name, &r.path, r.requirement.clone()).map_err(|e| {
                ConfigError::new(
                    format!("routes[{i}].requirement"),
                    ConfigErrorKind::Route(e),
                )
            })?;
            routes.push(route.strict(r.strict).auth_message(r.auth_message));
        }

        let origins = match config.origins.mode {
            OriginModeConfig::Allowlist => {
                OriginPolicy::allowlist(&config.origins.allowed, config.origins.require_origin)
            }
            OriginModeConfig::Channels => OriginPolicy::channels(&config.origins.allowed),
        }
        .map_err(|(i, e)| {
            ConfigError::new(format!("origins.allowed[{i}]"), ConfigErrorKind::Origin(e))
        })?;

        let c = &config.credentials;
        let credentials = CredentialSettings {
            carriers: config.effective_carriers(),
            subprotocol: c.subprotocol.clone(),
            header_types: c.header_types.clone(),
            header_name: c.header_name.clone(),
            query_params: c.query_params.clone(),
            jwt_cookie: c.jwt_cookie.clone(),
            session_cookie: config
                .session
                .as_ref()
                .map(|s| s.cookie_name.clone())
                .unwrap_or_else(|| "sessionid".into()),
            max_token_bytes: config.limits.max_token_bytes,
            max_cookie_bytes: config.limits.max_cookie_bytes,
        };
        let settings = AuthSettings {
            users: config.users.source,
            pk_kind: config.users.pk.into(),
            check_revoked_jti: config.users.check_revoked_jti,
            check_password_claim: config.users.check_password_claim,
            check_user_is_active: config.users.check_user_is_active,
            auth_message_timeout: i64::from(config.limits.auth_message_timeout_secs),
            max_message_bytes: config.limits.max_message_bytes,
            credentials,
        };
        let rate_limit = config
            .limits
            .rate_limit
            .and_then(|rl| RateLimit::new(rl.requests, u64::from(rl.period_secs) * 1000, rl.burst));

        let mut auth = Authenticator::new(tokens, Routes::new(routes))
            .with_origins(origins)
            .with_rate_limit(rate_limit);
        if let Some(s) = &config.session {
            let django = if secrets.django.is_empty() {
                &secrets.jwt
            } else {
                &secrets.django
            };
            let mut keys = django.iter().cloned();
            let secret = keys.next().ok_or_else(|| {
                ConfigError::new("session.secret", ConfigErrorKind::MissingSecret)
            })?;
            let session_settings = SessionSettings {
                engine: match s.engine {
                    EngineConfig::Db => SessionEngine::Db,
                    EngineConfig::SignedCookies => SessionEngine::SignedCookies,
                    EngineConfig::Cache => SessionEngine::Cache,
                    EngineConfig::CachedDb => SessionEngine::CachedDb,
                },
                cookie_name: s.cookie_name.clone(),
                cookie_age: s.cookie_age,
                auth_backends: s.auth_backends.clone(),
                accept_fallback_hash: s.accept_fallback_hash,
            };
            let verifier = SessionVerifier::new(session_settings, secret, keys.collect())
                .map_err(|e| ConfigError::new("session.secret", ConfigErrorKind::Key(e)))?
                .with_cache_key(&s.cache_key_prefix, s.cache_version);
            auth = auth.with_sessions(verifier);
        }
        Ok(auth.with_settings(settings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config {
            jwt: JwtConfig {
                secret: Some(SecretRef::Value("s3cret".into())),
                ..JwtConfig::default()
            },
            routes: Config::reference_routes(),
            ..Config::default()
        }
    }

    #[test]
    fn redis_features_need_redis() {
        let mut c = base();
        c.limits.rate_limit = Some(RateLimitConfig {
            requests: 1,
            period_secs: 1,
            burst: 1,
            store: crate::shared::RateStoreKind::Redis,
            fail_open: false,
        });
        c.session = Some(SessionConfig {
            engine: EngineConfig::Cache,
            ..SessionConfig::default()
        });
        c.users.source = UserSource::Directory;
        let kinds: Vec<_> = c.check().into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [ConfigErrorKind::NeedsRedis, ConfigErrorKind::NeedsRedis]
        );
        c.redis = Some(crate::shared::RedisConfig::default());
        assert_eq!(c.check(), Vec::new());
    }

    #[test]
    fn reference_config_is_clean() {
        assert_eq!(base().check(), Vec::new());
        let secrets = base().resolve_secrets(|_| None).unwrap();
        // One rule for secret files, whoever reads them.
        for (bytes, want) in [
            (&b"s3cret\n"[..], Some("s3cret")),
            (b"s3cret\r\n", Some("s3cret")),
            (b"s3cret\n\n", Some("s3cret\n")),
            (b"s3cret ", Some("s3cret ")),
            (b"s3cret", Some("s3cret")),
            (b"\xff\xfe", None),
        ] {
            assert_eq!(secret_from_file(bytes).as_deref(), want, "{bytes:?}");
            let r = SecretRef::File("f".into());
            assert_eq!(
                r.resolve(|_| None, |_| Some(bytes.to_vec())).as_deref(),
                want
            );
        }
        let auth = Authenticator::from_config(&base(), &secrets).unwrap();
        assert_eq!(auth.routes().iter().count(), 5);
    }

    #[test]
    fn problems_have_paths() {
        let mut c = base();
        c.jwt.secret = None;
        c.jwt.algorithm = "RS256".into();
        c.routes.push(RouteConfig {
            name: "chat".into(),
            path: "/x/<id>/".into(),
            requirement: Requirement::Owner("room".into()),
            strict: false,
            auth_message: None,
            sql: None,
        });
        c.credentials.carriers = Some(vec![
            Carrier::Subprotocol,
            Carrier::Header,
            Carrier::Query,
            Carrier::Cookie,
            Carrier::Session,
            Carrier::Query,
        ]);
        c.origins.allowed.push("example.com".into());
        c.limits.max_token_bytes = 0;
        let paths: Vec<String> = c.check().into_iter().map(|e| e.path).collect();
        for want in [
            "jwt.secret",
            "jwt.algorithm",
            "routes[5].name",
            "routes[5].requirement",
            "credentials.carriers[5]",
            "credentials.carriers[4]",
            "origins.allowed[2]",
            "limits.max_token_bytes",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "missing {want} in {paths:?}"
            );
        }
    }

    #[test]
    fn unresolved_env_secret() {
        let mut c = base();
        c.jwt.secret = Some(SecretRef::Env("NOPE".into()));
        let err = c.resolve_secrets(|_| None).unwrap_err();
        assert_eq!(err.path, "jwt.secret");
        assert_eq!(err.kind, ConfigErrorKind::UnresolvedSecret);
        let ok = c
            .resolve_secrets(|r| matches!(r, SecretRef::Env(n) if n == "NOPE").then(|| "v".into()));
        assert_eq!(ok.map(|s| s.jwt.len()), Ok(1));
    }

    #[test]
    fn loads_from_json() {
        let text = r#"{
            "jwt": {"secret": {"env": "DJANGO_SECRET_KEY"}, "fallback_secrets": ["old"], "algorithm": "HS384", "leeway": 5},
            "users": {"source": "directory", "pk": "uuid", "check_revoked_jti": true},
            "session": {"engine": "signed_cookies", "cookie_name": "sid"},
            "credentials": {"carriers": ["query", "session", "message"]},
            "origins": {"mode": "channels", "allowed": [".example.com"]},
            "routes": [
                {"name": "chat", "path": "/ws/chat/<room>/", "requirement": "anonymous", "strict": true},
                {"name": "r", "path": "/ws/r/<int:id>/", "requirement": {"owner": "id"}}
            ],
            "limits": {"rate_limit": {"requests": 10, "period_secs": 60, "burst": 20}}
        }"#;
        let c: Config = serde_json::from_str(text).unwrap();
        assert_eq!(c.check(), Vec::new());
        assert_eq!(
            c.jwt.secret,
            Some(SecretRef::Env("DJANGO_SECRET_KEY".into()))
        );
        assert_eq!(c.jwt.fallback_secrets, vec![SecretRef::Value("old".into())]);
        assert_eq!(c.routes[1].requirement, Requirement::Owner("id".into()));
        assert_eq!(
            c.effective_carriers(),
            vec![Carrier::Query, Carrier::Session, Carrier::Message]
        );
        let secrets = c.resolve_secrets(|_| Some("from-env".into())).unwrap();
        let auth = Authenticator::from_config(&c, &secrets).unwrap();
        assert_eq!(auth.settings().pk_kind, PkKind::Uuid);
        assert!(auth
            .sessions()
            .is_some_and(|s| s.settings().cookie_name == "sid"));
        assert!(auth.rate_limit().is_some());
        assert_eq!(auth.tokens().settings().algorithm, Algorithm::Hs384);

        let unknown = serde_json::from_str::<Config>(r#"{"jwt": {"secrett": "x"}}"#);
        assert!(unknown.is_err());
        let two = serde_json::from_str::<SecretRef>(r#"{"env": "A", "file": "B"}"#);
        assert!(two.is_err());
    }

    #[test]
    fn database_contract() {
        let text = r#"{
            "jwt": {"secret": "s"},
            "users": {"source": "database"},
            "database": {"url": {"env": "DATABASE_URL"}, "pool_size": 4, "lookup_timeout_ms": 250},
            "routes": [
                {"name": "chat", "path": "/ws/chat/<room>/", "requirement": "anonymous"},
                {"name": "receipts", "path": "/ws/receipts/<int:id>/", "requirement": {"owner": "id"},
                 "sql": "SELECT 1 FROM shop_receipt WHERE id = :id AND owner_id = :user"}
            ]
        }"#;
        let c: Config = serde_json::from_str(text).unwrap();
        assert_eq!(c.check(), Vec::new());
        assert_eq!(c.users.source, UserSource::Directory);
        let db = c.database.as_ref().unwrap();
        assert_eq!(db.url, SecretRef::Env("DATABASE_URL".into()));
        assert_eq!((db.pool_size, db.lookup_timeout_ms), (4, 250));
        assert_eq!(
            (
                db.user_table.as_str(),
                db.session_table.as_str(),
                db.cache_ttl_ms
            ),
            ("auth_user", "django_session", 0)
        );
        let pg = c.routes[1]
            .bound_sql(Placeholders::Dollar)
            .unwrap()
            .unwrap();
        assert_eq!(
            pg.text,
            "SELECT 1 FROM shop_receipt WHERE id = $1 AND owner_id = $2"
        );
        assert_eq!(
            database_kind("sqlite:///srv/db.sqlite3"),
            Some(DatabaseKind::Sqlite)
        );
        assert_eq!(
            database_kind("postgresql://a@b/c"),
            Some(DatabaseKind::Postgres)
        );
        assert_eq!(database_kind("mysql://x"), None);

        let mut bad = c.clone();
        bad.routes[1].sql = Some("SELECT 1 FROM r WHERE id = :pk AND o = :user".into());
        bad.routes[0].sql = Some("SELECT 1 WHERE :user".into());
        bad.routes.push(RouteConfig {
            name: "conv".into(),
            path: "/ws/c/<id>/".into(),
            requirement: Requirement::Member("id".into()),
            strict: false,
            auth_message: None,
            sql: None,
        });
        let db = bad.database.as_mut().unwrap();
        db.user_table = "auth_user; DROP".into();
        db.url = SecretRef::Value("mysql://x".into());
        db.pool_size = 0;
        let got: Vec<(String, ConfigErrorKind)> =
            bad.check().into_iter().map(|e| (e.path, e.kind)).collect();
        for want in [
            ("database.url", ConfigErrorKind::BadDatabaseUrl),
            ("database.pool_size", ConfigErrorKind::Zero),
            ("database.user_table", ConfigErrorKind::BadIdentifier),
            ("routes[0].sql", ConfigErrorKind::SqlWithoutAccess),
            (
                "routes[1].sql",
                ConfigErrorKind::Sql(SqlError::UnknownParameter {
                    name: "pk".into(),
                    offset: 27,
                }),
            ),
            ("routes[2].sql", ConfigErrorKind::AccessNeedsSql),
        ] {
            assert!(
                got.iter().any(|(p, k)| p == want.0 && *k == want.1),
                "missing {want:?} in {got:?}"
            );
        }
        let mut no_db = c;
        no_db.database = None;
        assert_eq!(
            no_db
                .check()
                .into_iter()
                .map(|e| e.path)
                .collect::<Vec<_>>(),
            vec![String::from("routes[1].sql")]
        );
        assert!(is_sql_identifier("public.auth_user"));
        assert!(!is_sql_identifier("a.b.c"));
        assert!(!is_sql_identifier("1abc"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let shown = alloc::format!("{:?}", SecretRef::Value("topsecret".into()));
        assert!(!shown.contains("topsecret"));
    }

    #[test]
    fn config_problems() {
        let c = UpstreamConfig {
            url: "wss://x".into(),
            header: "Authorization".into(),
            connect_timeout_ms: 0,
            ..UpstreamConfig::default()
        };
        let names: Vec<&str> = c.problems().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["url", "header", "connect_timeout_ms", "secret"]);
    }
}
