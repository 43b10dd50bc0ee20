//! [`SqlHost`]: the host steps answered from the Django app's own database
//! (SQLite or PostgreSQL), the way Django reads it.
//!
//! * the user: `SELECT password, is_active, is_staff, is_superuser FROM
//!   <user_table> WHERE <pk> = $1` (`auth_user` or the `AUTH_USER_MODEL`
//!   table; int, UUID or text primary key);
//! * the session: `SELECT session_data, CAST(expire_date AS text) FROM
//!   <session_table> WHERE session_key = $1`; `expire_date` is read as the
//!   database writes it (SQLite: Django's text; PostgreSQL: `timestamptz`
//!   as text in the connection's UTC) and turned into Unix seconds by the
//!   core's [`parse_iso8601_utc`];
//! * access: the route's `sql`, its `:user` / `:<param>` rewritten by the
//!   core's [`bind_sql`](wsauth_core::sql::bind_sql) and bound, never pasted; a
//!   returned row means allowed.
//!
//! Every statement is prepared (and cached per connection). On PostgreSQL the
//! parameter types come from the server's own inference at prepare time
//! (`id = $1` with an `integer` column binds an `i32`); a value that cannot
//! have that type (`abc` for an integer) matches no row. On SQLite values
//! are bound as text except the user's pk (integer for int pks, the 32-digit
//! hex Django stores for UUID pks).
//!
//! The pool is bounded (`pool_size`), waiting for a connection is bounded by
//! the lookup timeout, and the gateway bounds each lookup by the same
//! timeout ([`Limits::lookup_timeout`](crate::Limits)): the database down or
//! slow → [`LookupError`] → 1013. A connection broken underneath (the server
//! restarted) is retried once on a fresh one, so recovery needs no restart.
//! There is no cache unless `cache_ttl_ms` is set: a change made in Django
//! is seen on the next handshake.
//!
//! Runtime: sqlx runs its connection tasks on smol (`sql-smol`) or tokio
//! (`sql-tokio`); with both features it uses tokio inside a tokio runtime
//! and smol's global executor elsewhere.

use crate::host::{AccessQuery, Host, LookupError, SessionRecord, UserRow};
use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, Executor, Row, SqlSafeStr, Statement, TypeInfo};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wsauth_core::{
    config::database_kind, config::is_sql_identifier, config::DatabaseConfig, config::DatabaseKind,
    config::PkConfig, parse_iso8601_utc, Config, Requirement, UserKey,
};

/// Why a [`SqlHost`] could not be made, or a statement could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlSetupError {
    /// The config path it concerns (`database.url`, `routes[3].sql`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SqlSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for SqlSetupError {}

fn setup(path: impl Into<String>, message: impl Into<String>) -> SqlSetupError {
    SqlSetupError {
        path: path.into(),
        message: message.into(),
    }
}

#[derive(Clone)]
enum Pool {
    Pg(PgPool),
    Lite(SqlitePool),
}

/// A PostgreSQL parameter's type as the server inferred it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgParam {
    I16,
    I32,
    I64,
    Uuid,
    Text,
}

#[derive(Debug, Clone)]
struct Stmt {
    /// Config path, for errors.
    path: String,
    text: String,
    /// Parameter names in bind order (`user`, path parameters; `pk`, `key` for the fixed ones).
    params: Vec<String>,
}

/// One bound value.
#[derive(Debug, Clone)]
enum Value {
    I16(i16),
    I32(i32),
    I64(i64),
    Uuid(sqlx::types::Uuid),
    Text(String),
}

#[derive(Debug, Clone)]
enum Cached {
    User(Option<UserRow>),
    Session(Option<SessionRecord>),
    Access(bool),
}

/// The host steps from the app's database. See the [module docs](self).
pub struct SqlHost {
    pool: Pool,
    kind: DatabaseKind,
    pk: PkConfig,
    user: Stmt,
    session: Stmt,
    /// Route name → access statement.
    routes: HashMap<String, Stmt>,
    /// PostgreSQL: each statement's parameter types, learned at first prepare.
    pg_types: Mutex<HashMap<String, Arc<Vec<PgParam>>>>,
    cache_ttl: Option<Duration>,
    cache: Mutex<HashMap<String, (Instant, Cached)>>,
}

impl std::fmt::Debug for SqlHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlHost")
            .field("kind", &self.kind)
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

const CACHE_MAX_ENTRIES: usize = 100_000;

impl SqlHost {
    /// A host over the database `url` (the resolved `[database].url`) for
    /// `config` (its `[database]` table, user pk type and route SQL). No
    /// connection is made here: the database may be down at start and come
    /// up later. Must be called inside the runtime sqlx uses (smol: anywhere).
    pub fn new(config: &Config, url: &str) -> Result<Self, SqlSetupError> {
        let db = config
            .database
            .as_ref()
            .ok_or_else(|| setup("database", "no [database] table"))?;
        let kind = database_kind(url).ok_or_else(|| {
            setup(
                "database.url",
                "expected a postgres://, postgresql:// or sqlite: URL",
            )
        })?;
        for (path, v) in [
            ("database.user_table", &db.user_table),
            ("database.user_pk_column", &db.user_pk_column),
            ("database.session_table", &db.session_table),
        ] {
            if !is_sql_identifier(v) {
                return Err(setup(path, "not a plain table / column name"));
            }
        }
        let timeout = Duration::from_millis(db.lookup_timeout_ms.max(1));
        let pool = match kind {
            DatabaseKind::Postgres => {
                let opts = PgConnectOptions::from_str(url)
                    .map_err(|e| setup("database.url", e.to_string()))?
                    .application_name("wsauth");
                Pool::Pg(
                    PgPoolOptions::new()
                        .max_connections(db.pool_size.max(1))
                        .min_connections(0)
                        .acquire_timeout(timeout)
                        .test_before_acquire(false)
                        .connect_lazy_with(opts),
                )
            }
            DatabaseKind::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(|e| setup("database.url", e.to_string()))?
                    .read_only(true)
                    .create_if_missing(false)
                    .busy_timeout(timeout);
                Pool::Lite(
                    SqlitePoolOptions::new()
                        .max_connections(db.pool_size.max(1))
                        .min_connections(0)
                        .acquire_timeout(timeout)
                        .test_before_acquire(false)
                        .connect_lazy_with(opts),
                )
            }
            _ => return Err(setup("database.url", "unsupported database")),
        };
        let style = kind.placeholders();
        let ph = |n: usize| match kind {
            DatabaseKind::Postgres => format!("${n}"),
            _ => format!("?{n}"),
        };
        let user = Stmt {
            path: "database.user_table".into(),
            text: format!(
                "SELECT password, is_active, is_staff, is_superuser FROM {} WHERE {} = {}",
                db.user_table,
                db.user_pk_column,
                ph(1)
            ),
            params: vec!["pk".into()],
        };
        let session = Stmt {
            path: "database.session_table".into(),
            text: format!(
                "SELECT session_data, CAST(expire_date AS text) FROM {} WHERE session_key = {}",
                db.session_table,
                ph(1)
            ),
            params: vec!["key".into()],
        };
        let mut routes = HashMap::new();
        for (i, r) in config.routes.iter().enumerate() {
            if !matches!(
                r.requirement,
                Requirement::Owner(_) | Requirement::Member(_)
            ) {
                continue;
            }
            let path = format!("routes[{i}].sql");
            match r.bound_sql(style) {
                None => return Err(setup(path, "an owner / member route needs `sql`")),
                Some(Err(e)) => return Err(setup(path, e.to_string())),
                Some(Ok(b)) => {
                    routes.insert(
                        r.name.clone(),
                        Stmt {
                            path,
                            text: b.text,
                            params: b.params,
                        },
                    );
                }
            }
        }
        Ok(SqlHost {
            pool,
            kind,
            pk: config.users.pk,
            user,
            session,
            routes,
            pg_types: Mutex::new(HashMap::new()),
            cache_ttl: (db.cache_ttl_ms > 0).then(|| Duration::from_millis(db.cache_ttl_ms)),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Which database this is.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The `[database]` table this host needs (for callers building one).
    pub fn database_config(config: &Config) -> Option<&DatabaseConfig> {
        config.database.as_ref()
    }

    /// Prepares every statement (user, session, each route's access SQL)
    /// against the real schema and lists what fails, with its config path.
    pub async fn check(&self) -> Vec<SqlSetupError> {
        let mut out = Vec::new();
        let mut all: Vec<&Stmt> = vec![&self.user, &self.session];
        let mut routes: Vec<&Stmt> = self.routes.values().collect();
        routes.sort_by(|a, b| a.path.cmp(&b.path));
        all.extend(routes);
        for s in all {
            if let Err(e) = self.prepare(s).await {
                out.push(setup(s.path.clone(), e));
            }
        }
        out
    }

    /// Closes the pool (open connections are closed).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Pg(p) => p.close().await,
            Pool::Lite(p) => p.close().await,
        }
    }

    /// Prepares `s` and, on PostgreSQL, learns its parameter types.
    async fn prepare(&self, s: &Stmt) -> Result<Option<Arc<Vec<PgParam>>>, String> {
        match &self.pool {
            Pool::Pg(pool) => {
                if let Some(t) = lock(&self.pg_types).get(&s.text) {
                    return Ok(Some(t.clone()));
                }
                let stmt = pool
                    .prepare(AssertSqlSafe(s.text.clone()).into_sql_str())
                    .await
                    .map_err(|e| e.to_string())?;
                let mut types = Vec::new();
                if let Some(sqlx::Either::Left(params)) = stmt.parameters() {
                    for (i, t) in params.iter().enumerate() {
                        types.push(match t.name() {
                            "INT2" => PgParam::I16,
                            "INT4" => PgParam::I32,
                            "INT8" => PgParam::I64,
                            "UUID" => PgParam::Uuid,
                            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "UNKNOWN" => {
                                PgParam::Text
                            }
                            other => {
                                return Err(format!(
                                    "parameter :{} has type {other}; only integer, uuid and text parameters are bound",
                                    s.params.get(i).map(String::as_str).unwrap_or("?")
                                ))
                            }
                        });
                    }
                }
                let types = Arc::new(types);
                lock(&self.pg_types).insert(s.text.clone(), types.clone());
                Ok(Some(types))
            }
            Pool::Lite(pool) => {
                pool.prepare(AssertSqlSafe(s.text.clone()).into_sql_str())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(None)
            }
        }
    }

    /// The values for `s`'s parameters, `None` when a value cannot have
    /// its parameter's type (no row can match).
    fn values(
        &self,
        s: &Stmt,
        types: Option<&[PgParam]>,
        get: impl Fn(&str) -> Option<(String, bool)>,
    ) -> Result<Option<Vec<Value>>, LookupError> {
        let mut out = Vec::with_capacity(s.params.len());
        for (i, name) in s.params.iter().enumerate() {
            // `(value, is the user's pk)`.
            let Some((v, is_pk)) = get(name) else {
                return Err(LookupError::new(format!(
                    "{}: no value for :{name}",
                    s.path
                )));
            };
            let value = match types {
                Some(types) => match types.get(i).copied().unwrap_or(PgParam::Text) {
                    PgParam::I16 => v.parse().ok().map(Value::I16),
                    PgParam::I32 => v.parse().ok().map(Value::I32),
                    PgParam::I64 => v.parse().ok().map(Value::I64),
                    PgParam::Uuid => sqlx::types::Uuid::parse_str(&v).ok().map(Value::Uuid),
                    PgParam::Text => Some(Value::Text(v)),
                },
                None if is_pk => match self.pk {
                    PkConfig::Int => v.parse().ok().map(Value::I64),
                    // Django's UUIDField on SQLite: char(32), hex without hyphens.
                    PkConfig::Uuid => sqlx::types::Uuid::parse_str(&v)
                        .ok()
                        .map(|u| Value::Text(u.simple().to_string())),
                    PkConfig::Str => Some(Value::Text(v)),
                },
                None => Some(Value::Text(v)),
            };
            match value {
                Some(v) => out.push(v),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// Runs `s` with the parameters `get` gives and returns its first row
    /// decoded by `pg` / `lite`; `Ok(None)` when there is none.
    async fn fetch<T>(
        &self,
        s: &Stmt,
        get: impl Fn(&str) -> Option<(String, bool)>,
        pg: impl Fn(&PgRow) -> Result<T, sqlx::Error>,
        lite: impl Fn(&SqliteRow) -> Result<T, sqlx::Error>,
    ) -> Result<Option<T>, LookupError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let result = self.fetch_once(s, &get, &pg, &lite).await;
            match result {
                Err(Failure::Broken(e)) if tries < 2 => {
                    tracing::debug!(statement = %s.path, error = %e, "database connection broken; retrying once");
                }
                Err(Failure::Broken(e)) | Err(Failure::Other(e)) => {
                    return Err(LookupError::new(format!("{}: {e}", s.path)))
                }
                Ok(v) => return Ok(v),
            }
        }
    }

    async fn fetch_once<T>(
        &self,
        s: &Stmt,
        get: &impl Fn(&str) -> Option<(String, bool)>,
        pg: &impl Fn(&PgRow) -> Result<T, sqlx::Error>,
        lite: &impl Fn(&SqliteRow) -> Result<T, sqlx::Error>,
    ) -> Result<Option<T>, Failure> {
        let types = self.prepare(s).await.map_err(Failure::Other)?;
        let Some(values) = self
            .values(s, types.as_deref().map(Vec::as_slice), get)
            .map_err(|e| Failure::Other(e.to_string()))?
        else {
            return Ok(None);
        };
        match &self.pool {
            Pool::Pg(pool) => {
                let mut q = sqlx::query(AssertSqlSafe(s.text.clone()));
                for v in values {
                    q = match v {
                        Value::I16(x) => q.bind(x),
                        Value::I32(x) => q.bind(x),
                        Value::I64(x) => q.bind(x),
                        Value::Uuid(x) => q.bind(x),
                        Value::Text(x) => q.bind(x),
                    };
                }
                let row = q.fetch_optional(pool).await.map_err(Failure::from)?;
                row.as_ref()
                    .map(pg)
                    .transpose()
                    .map_err(|e| Failure::Other(e.to_string()))
            }
            Pool::Lite(pool) => {
                let mut q = sqlx::query(AssertSqlSafe(s.text.clone()));
                for v in values {
                    q = match v {
                        Value::I16(x) => q.bind(x),
                        Value::I32(x) => q.bind(x),
                        Value::I64(x) => q.bind(x),
                        Value::Uuid(x) => q.bind(x.simple().to_string()),
                        Value::Text(x) => q.bind(x),
                    };
                }
                let row = q.fetch_optional(pool).await.map_err(Failure::from)?;
                row.as_ref()
                    .map(lite)
                    .transpose()
                    .map_err(|e| Failure::Other(e.to_string()))
            }
        }
    }

    fn cached(&self, key: &str) -> Option<Cached> {
        let ttl = self.cache_ttl?;
        let cache = lock(&self.cache);
        let (at, v) = cache.get(key)?;
        (at.elapsed() < ttl).then(|| v.clone())
    }

    fn remember(&self, key: String, v: Cached) {
        if self.cache_ttl.is_none() {
            return;
        }
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), v));
    }

    async fn user_row(&self, key: &UserKey, pk: &str) -> Result<Option<UserRow>, LookupError> {
        if matches!(key, UserKey::NoMatch) {
            return Ok(None);
        }
        let ck = format!("u\0{pk}");
        if let Some(Cached::User(u)) = self.cached(&ck) {
            return Ok(u);
        }
        let pk_text = key.to_string();
        let row = self
            .fetch(
                &self.user,
                |_| Some((pk_text.clone(), true)),
                |r: &PgRow| {
                    Ok((
                        r.try_get::<Option<String>, _>(0)?,
                        r.try_get::<bool, _>(1)?,
                        r.try_get::<bool, _>(2)?,
                        r.try_get::<bool, _>(3)?,
                    ))
                },
                |r: &SqliteRow| {
                    Ok((
                        r.try_get::<Option<String>, _>(0)?,
                        r.try_get::<bool, _>(1)?,
                        r.try_get::<bool, _>(2)?,
                        r.try_get::<bool, _>(3)?,
                    ))
                },
            )
            .await?;
        let user = match row {
            None => None,
            Some((None, ..)) => {
                return Err(LookupError::new(format!(
                    "{}: user {pk} has a NULL password",
                    self.user.path
                )))
            }
            Some((Some(password), is_active, is_staff, is_superuser)) => Some(UserRow {
                pk: pk.to_string(),
                username: String::new(),
                password,
                is_active,
                is_staff,
                is_superuser,
            }),
        };
        self.remember(ck, Cached::User(user.clone()));
        Ok(user)
    }

    async fn session_row(&self, key: &str) -> Result<Option<SessionRecord>, LookupError> {
        let ck = format!("s\0{key}");
        if let Some(Cached::Session(s)) = self.cached(&ck) {
            return Ok(s);
        }
        let row = self
            .fetch(
                &self.session,
                |_| Some((key.to_string(), false)),
                |r: &PgRow| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)),
                |r: &SqliteRow| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)),
            )
            .await?;
        let rec = match row {
            None => None,
            Some((data, expire)) => {
                let Some(expire_date) = parse_iso8601_utc(&expire) else {
                    return Err(LookupError::new(format!(
                        "{}: unreadable expire_date {expire:?}",
                        self.session.path
                    )));
                };
                Some(SessionRecord {
                    session_key: key.to_string(),
                    session_data: data,
                    expire_date,
                })
            }
        };
        self.remember(ck, Cached::Session(rec.clone()));
        Ok(rec)
    }

    async fn allowed(&self, q: &AccessQuery<'_>) -> Result<bool, LookupError> {
        let Some(stmt) = self.routes.get(q.route) else {
            // No SQL for this route: nothing grants access.
            return Ok(false);
        };
        let mut ck = format!("a\0{}\0{}", q.route, q.user);
        for (n, v) in q.params {
            ck.push('\0');
            ck.push_str(n);
            ck.push('=');
            ck.push_str(v);
        }
        if let Some(Cached::Access(a)) = self.cached(&ck) {
            return Ok(a);
        }
        let row = self
            .fetch(
                stmt,
                |name| {
                    if name == wsauth_core::sql::USER_PARAM {
                        Some((q.user.to_string(), true))
                    } else {
                        q.params
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, v)| (v.clone(), false))
                    }
                },
                |_: &PgRow| Ok(()),
                |_: &SqliteRow| Ok(()),
            )
            .await?;
        let allowed = row.is_some();
        self.remember(ck, Cached::Access(allowed));
        Ok(allowed)
    }
}

enum Failure {
    /// The connection broke (server restarted): worth one retry on a fresh one.
    Broken(String),
    Other(String),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
                Failure::Broken(e.to_string())
            }
            other => Failure::Other(other.to_string()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Host for SqlHost {
    fn user<'a>(
        &'a self,
        key: &'a UserKey,
        pk: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRow>, LookupError>> {
        Box::pin(self.user_row(key, pk))
    }

    fn session<'a>(
        &'a self,
        session_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, LookupError>> {
        Box::pin(self.session_row(session_key))
    }

    fn access<'a>(
        &'a self,
        query: &'a AccessQuery<'a>,
    ) -> BoxFuture<'a, Result<bool, LookupError>> {
        Box::pin(self.allowed(query))
    }
}

/// The SQLite schema Django's migrations create for `auth_user`,
/// `django_session` and the reference app (`shop`: receipts, conversations
/// and their members), as `manage.py sqlmigrate` prints it.
pub const REFERENCE_SCHEMA_SQLITE: &str = include_str!("reference_schema_sqlite.sql");

/// Creates a SQLite database at `path` laid out as Django lays it out
/// ([`REFERENCE_SCHEMA_SQLITE`]) holding the reference app's demo data
/// (users 1 `admin`, staff, and 2 `customer`; receipt 100 owned by user 2;
/// conversation 1 with both users, conversation 2 with the admin only).
/// An existing file is replaced.
pub async fn create_reference_sqlite(path: &std::path::Path) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .map_err(|e| e.to_string())?;
    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
    for stmt in REFERENCE_SCHEMA_SQLITE
        .split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        conn.execute(AssertSqlSafe(stmt.to_string()))
            .await
            .map_err(|e| format!("{e}: {stmt}"))?;
    }
    for u in crate::reference::demo_users() {
        sqlx::query(
            "INSERT INTO auth_user (id, password, last_login, is_superuser, username, last_name, email, is_staff, is_active, date_joined, first_name) \
             VALUES (?1, ?2, NULL, ?3, ?4, '', '', ?5, ?6, '2025-01-01 00:00:00', '')",
        )
        .bind(u.pk.parse::<i64>().unwrap_or(0))
        .bind(&u.password)
        .bind(u.is_superuser)
        .bind(&u.username)
        .bind(u.is_staff)
        .bind(u.is_active)
        .execute(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    }
    for stmt in [
        "INSERT INTO shop_receipt (id, title, owner_id) VALUES (100, 'demo receipt', 2)",
        "INSERT INTO shop_conversation (id, title) VALUES (1, 'admin and customer'), (2, 'admins')",
        "INSERT INTO shop_conversation_members (conversation_id, user_id) VALUES (1, 1), (1, 2), (2, 1)",
    ] {
        conn.execute(stmt).await.map_err(|e| e.to_string())?;
    }
    drop(conn);
    pool.close().await;
    Ok(())
}

#[cfg(all(test, feature = "sql-smol"))]
mod tests {
    use super::*;
    use crate::reference;
    use wsauth_core::{Relation, SecretRef};

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        futures::executor::block_on(f)
    }

    struct Db {
        dir: std::path::PathBuf,
        url: String,
    }

    impl Drop for Db {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn demo_db(name: &str) -> Db {
        let dir = std::env::temp_dir().join(format!("wsauth-sql-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("db.sqlite3");
        run(create_reference_sqlite(&file)).unwrap();
        Db {
            url: format!("sqlite://{}", file.display()),
            dir,
        }
    }

    fn config(url: &str) -> Config {
        reference::database_config(
            SecretRef::Value("s".repeat(50)),
            SecretRef::Value(url.into()),
        )
    }

    fn access<'a>(
        user: &'a str,
        route: &'a str,
        params: &'a [(String, String)],
    ) -> AccessQuery<'a> {
        AccessQuery {
            user,
            relation: Relation::Owner,
            route,
            param: "id",
            value: &params[0].1,
            params,
        }
    }

    #[test]
    fn answers_from_the_reference_database() {
        let db = demo_db("answers");
        let host = SqlHost::new(&config(&db.url), &db.url).unwrap();
        assert_eq!(run(host.check()), Vec::new());
        let admin = run(host.user(&UserKey::Int(1), "1")).unwrap().unwrap();
        assert!(admin.is_staff && admin.is_superuser && admin.is_active);
        assert!(admin.password.starts_with("pbkdf2_sha256$"));
        let customer = run(host.user(&UserKey::Int(2), "2")).unwrap().unwrap();
        assert!(!customer.is_staff);
        assert_eq!(run(host.user(&UserKey::Int(3), "3")).unwrap(), None);
        assert_eq!(run(host.user(&UserKey::NoMatch, "")).unwrap(), None);

        let p = |v: &str| vec![("id".to_string(), v.to_string())];
        let receipt = p("100");
        assert!(run(host.access(&access("2", "receipts", &receipt))).unwrap());
        assert!(!run(host.access(&access("1", "receipts", &receipt))).unwrap());
        let conv1 = p("1");
        let conv2 = p("2");
        assert!(run(host.access(&access("2", "conversations", &conv1))).unwrap());
        assert!(!run(host.access(&access("2", "conversations", &conv2))).unwrap());
        // SQL in a parameter is a value: no row, nothing dropped.
        for evil in ["100' OR '1'='1", "100; DROP TABLE shop_receipt; --", "abc"] {
            let q = p(evil);
            assert!(
                !run(host.access(&access("2", "receipts", &q))).unwrap(),
                "{evil}"
            );
        }
        assert!(run(host.access(&access("2", "receipts", &receipt))).unwrap());
        // A route without SQL grants nothing.
        assert!(!run(host.access(&access("2", "nope", &receipt))).unwrap());
        assert_eq!(run(host.session("missing")).unwrap(), None);
        run(host.close());
    }

    #[test]
    fn sessions_expire_dates_and_bad_rows() {
        let db = demo_db("sessions");
        {
            let opts = SqliteConnectOptions::from_str(&db.url).unwrap();
            let pool = run(SqlitePoolOptions::new().connect_with(opts)).unwrap();
            for stmt in [
                "INSERT INTO django_session VALUES ('k1', 'data', '2025-06-29 14:06:40.5')",
                "INSERT INTO django_session VALUES ('k2', 'data', 'not a date')",
                "INSERT INTO auth_user (id, password, is_superuser, username, last_name, email, is_staff, is_active, date_joined, first_name) VALUES (7, '!unusable', 0, 'u7', '', '', 0, 1, '2025-01-01 00:00:00', '')",
            ] {
                run(pool.execute(stmt)).unwrap();
            }
            run(pool.close());
        }
        let host = SqlHost::new(&config(&db.url), &db.url).unwrap();
        let row = run(host.session("k1")).unwrap().unwrap();
        assert_eq!(row.expire_date, 1_751_206_001);
        assert_eq!(row.session_data, "data");
        // An unreadable row is a failed lookup (1013), never "no session".
        assert!(run(host.session("k2")).is_err());
        // An unusable password is a user like any other (its session hash never matches).
        let u = run(host.user(&UserKey::Int(7), "7")).unwrap().unwrap();
        assert_eq!(u.password, "!unusable");
        run(host.close());
    }

    #[test]
    fn wrong_schema_is_reported_and_a_failed_lookup() {
        let db = demo_db("schema");
        let mut c = config(&db.url);
        c.database.as_mut().unwrap().user_table = "auth_users".into();
        c.routes[3].sql =
            Some("SELECT 1 FROM shop_receipt WHERE id = :id AND owner = :user".into());
        let host = SqlHost::new(&c, &db.url).unwrap();
        let paths: Vec<String> = run(host.check()).into_iter().map(|e| e.path).collect();
        assert_eq!(paths, vec!["database.user_table", "routes[3].sql"]);
        assert!(run(host.user(&UserKey::Int(1), "1")).is_err());
        let receipt = vec![("id".to_string(), "100".to_string())];
        assert!(run(host.access(&access("2", "receipts", &receipt))).is_err());
        run(host.close());

        // A database that is not there: lookups fail, nothing panics.
        let gone = "sqlite:///nonexistent/dir/db.sqlite3";
        let host = SqlHost::new(&config(gone), gone).unwrap();
        assert!(run(host.user(&UserKey::Int(1), "1")).is_err());
        assert!(!run(host.check()).is_empty());

        let mut bad = config(gone);
        bad.database.as_mut().unwrap().session_table = "x; DROP".into();
        assert_eq!(
            SqlHost::new(&bad, gone).unwrap_err().path,
            "database.session_table"
        );
        assert!(SqlHost::new(&config(gone), "mysql://x").is_err());
    }

    #[test]
    fn ttl_cache_is_opt_in() {
        let db = demo_db("cache");
        let mut c = config(&db.url);
        c.database.as_mut().unwrap().cache_ttl_ms = 60_000;
        let cached = SqlHost::new(&c, &db.url).unwrap();
        let fresh = SqlHost::new(&config(&db.url), &db.url).unwrap();
        assert!(
            run(cached.user(&UserKey::Int(2), "2"))
                .unwrap()
                .unwrap()
                .is_active
        );
        {
            let opts = SqliteConnectOptions::from_str(&db.url).unwrap();
            let pool = run(SqlitePoolOptions::new().connect_with(opts)).unwrap();
            run(pool.execute("UPDATE auth_user SET is_active = 0 WHERE id = 2")).unwrap();
            run(pool.close());
        }
        // No cache: the change is seen at once; with a TTL: after it.
        assert!(
            !run(fresh.user(&UserKey::Int(2), "2"))
                .unwrap()
                .unwrap()
                .is_active
        );
        assert!(
            run(cached.user(&UserKey::Int(2), "2"))
                .unwrap()
                .unwrap()
                .is_active
        );
        run(cached.close());
        run(fresh.close());
    }
}
