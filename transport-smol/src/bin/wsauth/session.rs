//! `wsauth session check`: Django's `get_user()` decision for a session
//! cookie (or, with `--channels`, Channels' `AuthMiddlewareStack` decision).

use super::input::{self, Credential, SecretArgs};
use super::output::{self, Failure};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::path::PathBuf;
use tracing::info;
use wsauth_core::{
    django::session::SessionCredential, django::session::SessionError,
    django::session::SessionSettings, django::session::SessionStep, parse_iso8601_utc, ErrorKind,
    PkKind, SessionEngine, SessionRow, SessionVerifier, UserKey, UserRecord,
};

/// Django's default `AUTHENTICATION_BACKENDS`.
const MODEL_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";
/// Largest cookie value / Cookie header accepted, bytes.
const MAX_COOKIE_BYTES: usize = 64 * 1024;

const MSG_NO_USER: &str = "The session's user does not exist";
const MSG_TOO_LARGE: &str = "Session cookie is too large";
const MSG_NOT_UTF8: &str = "Session cookie is not valid UTF-8";

#[derive(Debug, Subcommand)]
pub(crate) enum SessionCommand {
    /// Decide Django's `get_user()` for a session cookie.
    ///
    /// Exit 0: a user is authenticated; 1: anonymous (no cookie, bad or expired
    /// session, unknown or inactive user, session hash mismatch); 2: usage or config error.
    Check(CheckArgs),
}

/// `SESSION_ENGINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// `django.contrib.sessions.backends.db` (also cached_db / cache / file: the cookie holds a key).
    Db,
    /// `django.contrib.sessions.backends.signed_cookies` (the cookie is the session).
    #[value(name = "signed_cookies", alias = "signed-cookies")]
    SignedCookies,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The session cookie's VALUE, or `-` to read it from stdin.
    #[arg(value_name = "VALUE", conflicts_with = "cookie_header")]
    value: Option<OsString>,
    /// A `Cookie` request header (repeatable). Django's ASGI handler joins repeated
    /// headers with ","; with --channels only the first one is read, as Channels does.
    #[arg(long = "cookie-header", value_name = "H")]
    cookie_header: Vec<OsString>,
    /// SESSION_ENGINE.
    #[arg(long, value_enum, default_value_t = Backend::Db)]
    backend: Backend,
    #[command(flatten)]
    secrets: SecretArgs,
    /// SESSION_COOKIE_AGE, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1_209_600)]
    cookie_age: i64,
    /// SESSION_COOKIE_NAME.
    #[arg(long, value_name = "N", default_value = "sessionid")]
    cookie_name: String,
    /// JSON list of auth_user rows: pk, username, password, is_active, is_staff, is_superuser.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// db backend: the django_session row as JSON {"session_key","session_data","expire_date"}
    /// (expire_date ISO 8601 or Unix seconds), or a list of rows, or [] / null for none.
    #[arg(long, value_name = "FILE")]
    session_row: Option<PathBuf>,
    /// Read the session row and the user from the Django database itself
    /// (`postgres://…`, `sqlite://…`), as `get_user()` does.
    #[arg(long, value_name = "URL", conflicts_with_all = ["users", "session_row"])]
    database: Option<String>,
    #[command(flatten)]
    db: DbArgs,
    /// Decide as Channels' AuthMiddlewareStack: only the first Cookie header, and no
    /// fallback-key session hash (the default follows django.contrib.auth.get_user, which accepts it).
    #[arg(long)]
    channels: bool,
    /// AUTHENTICATION_BACKENDS entry (repeatable; default ModelBackend).
    #[arg(long = "auth-backend", value_name = "B")]
    auth_backends: Vec<String>,
    /// Unix seconds to use instead of the clock.
    #[arg(long, value_name = "UNIX", allow_hyphen_values = true)]
    now: Option<i64>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// The tables `--database` reads.
#[derive(Debug, Clone, Args)]
pub(crate) struct DbArgs {
    /// With --database: the user model's table (AUTH_USER_MODEL's db_table).
    #[arg(long, value_name = "T", default_value = "auth_user")]
    pub(crate) user_table: String,
    /// With --database: the user table's primary-key column.
    #[arg(long, value_name = "C", default_value = "id")]
    pub(crate) user_pk_column: String,
    /// With --database: the session table.
    #[arg(long, value_name = "T", default_value = "django_session")]
    pub(crate) session_table: String,
    /// With --database: the user model's primary-key type.
    #[arg(long, value_enum, default_value_t = Pk::Int)]
    pub(crate) pk: Pk,
}

/// The user model's pk type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Pk {
    /// AutoField / BigAutoField.
    Int,
    /// UUIDField.
    Uuid,
    /// A text field.
    Str,
}

impl DbArgs {
    /// A host over `url` with these tables (no routes).
    pub(crate) fn host(&self, url: &str) -> Result<wsauth_smol::sql::SqlHost, Failure> {
        let mut db =
            wsauth_core::config::DatabaseConfig::new(wsauth_core::SecretRef::Value(url.into()));
        db.user_table = self.user_table.clone();
        db.user_pk_column = self.user_pk_column.clone();
        db.session_table = self.session_table.clone();
        let mut config = wsauth_core::Config {
            database: Some(db),
            ..wsauth_core::Config::default()
        };
        config.users.pk = self.pk_config();
        wsauth_smol::sql::SqlHost::new(&config, url).map_err(|e| Failure::usage(e.to_string()))
    }

    pub(crate) fn pk_config(&self) -> wsauth_core::config::PkConfig {
        match self.pk {
            Pk::Int => wsauth_core::config::PkConfig::Int,
            Pk::Uuid => wsauth_core::config::PkConfig::Uuid,
            Pk::Str => wsauth_core::config::PkConfig::Str,
        }
    }
}

/// Runs one database lookup, bounded in time: a failure is a config error (exit 2).
pub(crate) fn lookup<T>(
    what: &str,
    fut: futures::future::BoxFuture<'_, Result<T, wsauth_smol::LookupError>>,
) -> Result<T, Failure> {
    use futures::FutureExt;
    smol::block_on(async {
        let deadline = smol::Timer::after(std::time::Duration::from_secs(10)).fuse();
        let fut = fut.fuse();
        futures::pin_mut!(deadline, fut);
        futures::select! {
            r = fut => r.map_err(|e| Failure::config(format!("--database: {what}: {e}"))),
            _ = deadline => Err(Failure::config(format!("--database: {what}: no answer within 10 s"))),
        }
    })
}

pub(crate) fn run(cmd: SessionCommand) -> i32 {
    match cmd {
        SessionCommand::Check(args) => output::finish(args.json, check(&args)),
    }
}

/// A user row from `--users`.
#[derive(Debug, Clone)]
struct UserRow {
    /// The pk as the file has it (a JSON integer or string).
    pk: Value,
    /// `str(pk)`.
    pk_text: String,
    username: String,
    password: String,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
}

/// Why no user was authenticated.
struct Rejection {
    kind: ErrorKind,
    message: &'static str,
}

impl From<SessionError> for Rejection {
    fn from(e: SessionError) -> Self {
        Rejection {
            kind: e.kind(),
            message: e.message(),
        }
    }
}

fn check(args: &CheckArgs) -> Result<i32, Failure> {
    if args.value.as_deref().is_some_and(|v| v == "-") && args.secrets.reads_stdin() {
        return Err(Failure::usage(
            "the session cookie and --secret cannot both be read from stdin",
        ));
    }
    let (secret, fallbacks) = args.secrets.resolve()?;
    let now = input::now(args.now)?;
    if args.cookie_age < 0 {
        return Err(Failure::usage("--cookie-age must not be negative"));
    }
    let settings = SessionSettings {
        engine: match args.backend {
            Backend::Db => SessionEngine::Db,
            Backend::SignedCookies => SessionEngine::SignedCookies,
        },
        cookie_name: args.cookie_name.clone(),
        cookie_age: args.cookie_age,
        auth_backends: if args.auth_backends.is_empty() {
            vec![MODEL_BACKEND.to_owned()]
        } else {
            args.auth_backends.clone()
        },
        accept_fallback_hash: !args.channels,
    };
    let verifier = SessionVerifier::new(settings, secret, fallbacks)
        .map_err(|e| Failure::usage(format!("secret key refused: {e}")))?;
    let outcome = decide(args, &verifier, now)?;
    Ok(report(outcome, args.json))
}

fn decide(
    args: &CheckArgs,
    verifier: &SessionVerifier,
    now: i64,
) -> Result<Result<(String, UserRow), Rejection>, Failure> {
    let cookie = match session_cookie(args)? {
        Ok(c) => c,
        Err(r) => return Ok(Err(r)),
    };
    // The users file types each pk itself (see `find_user`), so the check's
    // own key is not used here.
    let credential = cookie.as_ref().map(|c| match c {
        CookieSource::Value(v) => SessionCredential::Cookie(v),
        CookieSource::Header(h) => SessionCredential::CookieHeader(h),
    });
    let host = match &args.database {
        Some(url) => Some(args.db.host(url)?),
        None => None,
    };
    let pk_kind = match &host {
        Some(_) => args.db.pk_config().into(),
        None => PkKind::Str,
    };
    let mut check = verifier.check(credential, pk_kind, now);
    let mut found: Option<UserRow> = None;
    loop {
        match check.poll() {
            SessionStep::NeedRow { session_key } if host.is_some() => {
                use wsauth_smol::Host;
                let Some(h) = host.as_ref() else { continue };
                let rec = lookup("session", h.session(session_key))?;
                let row = rec.as_ref().map(|r| SessionRow {
                    session_key: &r.session_key,
                    session_data: &r.session_data,
                    expire_date: r.expire_date,
                });
                check.answer_row(row.as_ref());
            }
            SessionStep::NeedUser { key, user_id } if host.is_some() => {
                use wsauth_smol::Host;
                let Some(h) = host.as_ref() else { continue };
                let user_id = user_id.to_string();
                let row = lookup("user", h.user(&key, &user_id))?;
                found = row.map(|u| UserRow {
                    pk: Value::from(u.pk.clone()),
                    pk_text: u.pk,
                    username: u.username,
                    password: u.password,
                    is_active: u.is_active,
                    is_staff: u.is_staff,
                    is_superuser: u.is_superuser,
                });
                let record = found.as_ref().map(|user| UserRecord {
                    pk: &user.pk_text,
                    password: &user.password,
                    is_active: user.is_active,
                    is_staff: user.is_staff,
                    is_superuser: user.is_superuser,
                });
                check.answer_user(record.as_ref());
            }
            SessionStep::NeedRow { session_key } => {
                // No row source given: the key has no row (an invalid session, exit 1).
                let Some(path) = args.session_row.as_ref() else {
                    check.answer_row(None);
                    continue;
                };
                let rows = read_session_rows(path)?;
                let row = rows
                    .iter()
                    .find(|r| r.session_key == session_key)
                    .map(|r| SessionRow {
                        session_key: &r.session_key,
                        session_data: &r.session_data,
                        expire_date: r.expire_date,
                    });
                check.answer_row(row.as_ref());
            }
            SessionStep::NeedUser { user_id, .. } => {
                let path = args.users.as_ref().ok_or_else(|| {
                    Failure::usage("--users FILE is required to decide a session's user")
                })?;
                let users = read_users(path)?;
                found = find_user(&users, user_id).cloned();
                let record = found.as_ref().map(|user| UserRecord {
                    pk: &user.pk_text,
                    password: &user.password,
                    is_active: user.is_active,
                    is_staff: user.is_staff,
                    is_superuser: user.is_superuser,
                });
                check.answer_user(record.as_ref());
            }
            SessionStep::Done(Ok(auth)) => {
                return Ok(match found {
                    Some(user) => Ok((auth.user_id.clone(), user)),
                    None => Err(reject(ErrorKind::UserNotFound, MSG_NO_USER)),
                })
            }
            SessionStep::Done(Err(e)) => return Ok(Err(e.into())),
        }
    }
}

fn reject(kind: ErrorKind, message: &'static str) -> Rejection {
    Rejection { kind, message }
}

/// Where the session cookie comes from.
enum CookieSource {
    /// The positional VALUE.
    Value(String),
    /// The Cookie header the core reads `--cookie-name` from.
    Header(String),
}

/// The positional VALUE, or the Cookie header as Django (repeated headers
/// joined with ",") or Channels (the first one) sees it. `Ok(None)`: there is none.
fn session_cookie(args: &CheckArgs) -> Result<Result<Option<CookieSource>, Rejection>, Failure> {
    if let Some(v) = &args.value {
        return Ok(
            match input::read_credential(v, MAX_COOKIE_BYTES, "session cookie")? {
                Credential::Text(t) if t.is_empty() => Ok(None),
                Credential::Text(t) => Ok(Some(CookieSource::Value(t))),
                Credential::TooLarge => Err(reject(ErrorKind::TooLarge, MSG_TOO_LARGE)),
                Credential::NotUtf8 => Err(reject(ErrorKind::BadSession, MSG_NOT_UTF8)),
            },
        );
    }
    let headers: Vec<String> = args
        .cookie_header
        .iter()
        .map(|h| latin1(h.as_encoded_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            Failure::usage(format!(
                "--cookie-header is longer than {MAX_COOKIE_BYTES} bytes"
            ))
        })?;
    let header = if args.channels {
        // Channels' CookieMiddleware reads only the first Cookie header.
        headers.into_iter().next()
    } else if headers.is_empty() {
        None
    } else {
        // Django's ASGIRequest joins repeated headers with ",".
        Some(headers.join(","))
    };
    Ok(Ok(header.map(CookieSource::Header)))
}

/// Headers are bytes; Django and Channels decode them as latin-1.
fn latin1(bytes: &[u8]) -> Result<String, ()> {
    if bytes.len() > MAX_COOKIE_BYTES {
        return Err(());
    }
    Ok(bytes.iter().map(|&b| char::from(b)).collect())
}

fn report(outcome: Result<(String, UserRow), Rejection>, json: bool) -> i32 {
    match outcome {
        Ok((user_id, user)) => {
            info!("session authenticates a user");
            if json {
                output::Object::new()
                    .field("valid", &Value::Bool(true))
                    .field("user_id", &Value::from(user_id))
                    .object(
                        "user",
                        output::Object::new()
                            .field("pk", &user.pk)
                            .field("username", &Value::from(user.username))
                            .field("is_staff", &Value::Bool(user.is_staff))
                            .field("is_superuser", &Value::Bool(user.is_superuser))
                            .field("is_active", &Value::Bool(user.is_active)),
                    )
                    .print();
            } else {
                output::print_line(&format!(
                    "valid: user_id={} username={:?} staff={} superuser={} active={}",
                    user.pk_text, user.username, user.is_staff, user.is_superuser, user.is_active
                ));
            }
            output::exit_code(true)
        }
        Err(r) => {
            info!(
                kind = r.kind.as_str(),
                "session does not authenticate a user"
            );
            if json {
                output::invalid_json(r.kind.as_str(), r.message).print();
            } else {
                output::print_line(&format!("invalid: {} ({})", r.message, r.kind.as_str()));
            }
            output::exit_code(false)
        }
    }
}

/// A `django_session` row from `--session-row`.
#[derive(Debug)]
struct OwnedRow {
    session_key: String,
    session_data: String,
    expire_date: i64,
}

fn read_session_rows(path: &std::path::Path) -> Result<Vec<OwnedRow>, Failure> {
    let what = "--session-row";
    let value = input::read_json_file(path, what)?;
    let items = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        _ => {
            return Err(Failure::config(format!(
                "{what} {}: expected a JSON object, a list of objects or null",
                path.display()
            )))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = |field: &str| format!("{what} {}: row {i}: {field}", path.display());
            let obj = item.as_object().ok_or_else(|| Failure::config(at("not an object")))?;
            let text = |field: &str| -> Result<String, Failure> {
                match obj.get(field) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(Failure::config(at(&format!("`{field}` must be a string")))),
                    None => Err(Failure::config(at(&format!("`{field}` is missing")))),
                }
            };
            let expire_date = match obj.get("expire_date") {
                Some(Value::String(s)) => parse_iso8601_utc(s).ok_or_else(|| {
                    Failure::config(at(&format!(
                        "`expire_date` {s:?} is not an ISO 8601 date-time (e.g. 2025-06-29T14:06:40+00:00)"
                    )))
                })?,
                Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                    Failure::config(at("`expire_date` must be whole Unix seconds"))
                })?,
                Some(_) => {
                    return Err(Failure::config(at("`expire_date` must be an ISO 8601 string")))
                }
                None => return Err(Failure::config(at("`expire_date` is missing"))),
            };
            Ok(OwnedRow {
                session_key: text("session_key")?,
                session_data: text("session_data")?,
                expire_date,
            })
        })
        .collect()
}

fn read_users(path: &std::path::Path) -> Result<Vec<UserRow>, Failure> {
    let what = "--users";
    let value = input::read_json_file(path, what)?;
    let items = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        _ => {
            return Err(Failure::config(format!(
                "{what} {}: expected a JSON list of auth_user rows",
                path.display()
            )))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at =
                |msg: &str| Failure::config(format!("{what} {}: row {i}: {msg}", path.display()));
            let obj: &Map<String, Value> = item.as_object().ok_or_else(|| at("not an object"))?;
            let flag = |field: &str, default: bool| -> Result<bool, Failure> {
                match obj.get(field) {
                    None | Some(Value::Null) => Ok(default),
                    Some(Value::Bool(b)) => Ok(*b),
                    Some(_) => Err(at(&format!("`{field}` must be true or false"))),
                }
            };
            let (pk, pk_text) = match obj.get("pk").or_else(|| obj.get("id")) {
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                    (Value::Number(n.clone()), n.to_string())
                }
                Some(Value::String(s)) => (Value::String(s.clone()), s.clone()),
                Some(_) => return Err(at("`pk` must be an integer or a string")),
                None => return Err(at("`pk` is missing")),
            };
            let username = match obj.get("username") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(at("`username` must be a string")),
            };
            let password = match obj.get("password") {
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(at("`password` must be a string (the stored hash)")),
                None => return Err(at("`password` is missing (the stored hash)")),
            };
            Ok(UserRow {
                pk,
                pk_text,
                username,
                password,
                is_active: flag("is_active", true)?,
                is_staff: flag("is_staff", false)?,
                is_superuser: flag("is_superuser", false)?,
            })
        })
        .collect()
}

/// `_default_manager.get(pk=pk.to_python(session_user_id))`. Each row's pk
/// says its type: a JSON integer is an integer pk, a string that reads as a
/// UUID a UUID pk, any other string a text pk. The session's user id and the
/// row's pk are coerced alike by the core and compared as keys.
fn find_user<'a>(users: &'a [UserRow], session_user_id: &str) -> Option<&'a UserRow> {
    users.iter().find(|u| {
        let (kind, have) = match &u.pk {
            Value::Number(_) => (PkKind::Int, UserKey::from_text(&u.pk_text, PkKind::Int)),
            Value::String(s) => match UserKey::from_text(s, PkKind::Uuid) {
                Ok(k) => (PkKind::Uuid, Ok(k)),
                Err(_) => (PkKind::Str, UserKey::from_text(s, PkKind::Str)),
            },
            _ => return false,
        };
        match (UserKey::from_text(session_user_id, kind), have) {
            (Ok(want), Ok(have)) => want != UserKey::NoMatch && want == have,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_match_as_django_coerces_the_session_user_id() {
        let row = |pk: Value| UserRow {
            pk_text: match &pk {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            pk,
            username: String::new(),
            password: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
        };
        let users = vec![
            row(Value::from(1)),
            row(Value::from("6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f")),
            row(Value::from("alice")),
        ];
        let pk_of = |id: &str| find_user(&users, id).map(|u| u.pk_text.clone());
        assert_eq!(pk_of("1").as_deref(), Some("1"));
        assert_eq!(pk_of("01").as_deref(), Some("1"));
        assert_eq!(pk_of(" +1_0 ").as_deref(), None, "int() reads 10");
        assert_eq!(pk_of(" +0_1 ").as_deref(), Some("1"));
        assert_eq!(pk_of("1.0"), None);
        assert_eq!(pk_of("2"), None);
        assert_eq!(
            pk_of("6F1C2B9E3D4A4C5B8E7F0A1B2C3D4E5F").as_deref(),
            Some("6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f")
        );
        assert_eq!(pk_of("alice").as_deref(), Some("alice"));
        assert_eq!(pk_of("Alice"), None);
    }
}
