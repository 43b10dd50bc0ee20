//! `wsauth_session_verifier`: Django's `get_user()` decision for a session,
//! as a stateless step function the host calls until it gets a verdict.

use crate::boundary::{self, OutBuf, MAX_JSON_INPUT};
use crate::errors::{set_last_error, settings_error};
use crate::jsonw;
use crate::wsauth_result;
use serde::{Deserialize, Deserializer};
use std::ffi::c_char;
use wsauth_core::{
    django::session::SessionCredential, django::session::SessionSettings,
    django::session::SessionStep, django::session::SESSION_STORE_SALT,
    django::session::SIGNED_COOKIES_SALT, django::signing::dumps, parse_iso8601_utc, ErrorKind,
    PkKind, SecretKey, SessionEngine, SessionRow, SessionVerifier, UserRecord,
};

/// What a `wsauth_session_verifier` handle owns: the verifier, plus the
/// signing key for `wsauth_session_verifier_mint`.
pub(crate) struct SessionHandle {
    verifier: SessionVerifier,
    secret: SecretKey,
}

/// A session verifier: immutable once built, so one handle may be shared by
/// any number of threads.
#[allow(non_camel_case_types)]
pub struct wsauth_session_verifier {
    _private: [u8; 0],
}

/// The settings document `wsauth_session_verifier_new` reads, named after
/// Django's settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionSettingsDoc {
    secret: String,
    #[serde(default)]
    fallback_secrets: Vec<String>,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    cookie_name: Option<String>,
    #[serde(default)]
    cookie_age: Option<i64>,
    #[serde(default)]
    auth_backends: Option<Vec<String>>,
    #[serde(default)]
    accept_fallback_hash: Option<bool>,
}

/// Parses an engine name: Django's dotted `SESSION_ENGINE` path or its last part.
pub(crate) fn parse_engine(name: &str) -> Option<SessionEngine> {
    let short = name.rsplit('.').next().unwrap_or(name);
    match short {
        "db" | "cached_db" | "cache" | "file" => Some(SessionEngine::Db),
        "signed_cookies" => Some(SessionEngine::SignedCookies),
        _ => None,
    }
}

fn build(doc: SessionSettingsDoc) -> Result<SessionHandle, wsauth_result> {
    let mut settings = SessionSettings::default();
    if let Some(engine) = doc.engine.as_deref() {
        settings.engine = parse_engine(engine).ok_or_else(|| {
            set_last_error("settings: engine must be db, cached_db, cache, file or signed_cookies");
            wsauth_result::WSAUTH_RESULT_INVALID_SETTINGS
        })?;
    }
    if let Some(name) = doc.cookie_name {
        settings.cookie_name = name;
    }
    if let Some(age) = doc.cookie_age {
        settings.cookie_age = age;
    }
    if let Some(backends) = doc.auth_backends {
        settings.auth_backends = backends;
    }
    if let Some(b) = doc.accept_fallback_hash {
        settings.accept_fallback_hash = b;
    }
    let fallbacks = doc
        .fallback_secrets
        .iter()
        .map(|k| SecretKey::from(k.as_str()))
        .collect();
    let secret = SecretKey::from(doc.secret.as_str());
    let verifier = SessionVerifier::new(settings, secret.clone(), fallbacks).map_err(|e| {
        set_last_error(&format!("settings: {e}"));
        wsauth_result::WSAUTH_RESULT_INVALID_KEY
    })?;
    Ok(SessionHandle { verifier, secret })
}

/// Absent → `None`; `null` → `Some(None)`; a value → `Some(Some(v))`.
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RowDoc {
    session_key: String,
    session_data: String,
    expire_date: ExpireDate,
}

/// `expire_date` as Unix seconds, or as the database stores it (ISO 8601
/// text, converted by the core's one rule, `parse_iso8601_utc`).
#[derive(Deserialize)]
#[serde(untagged)]
enum ExpireDate {
    Secs(i64),
    Iso(String),
}

impl ExpireDate {
    fn unix_secs(&self) -> Result<i64, wsauth_result> {
        match self {
            ExpireDate::Secs(n) => Ok(*n),
            ExpireDate::Iso(text) => parse_iso8601_utc(text).ok_or_else(|| {
                set_last_error("session request: row.expire_date is not an ISO 8601 date and time");
                wsauth_result::WSAUTH_RESULT_INVALID_REQUEST
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Pk {
    Int(i64),
    Str(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserDoc {
    pk: Pk,
    password: String,
    #[serde(default = "yes")]
    is_active: bool,
    #[serde(default)]
    is_staff: bool,
    #[serde(default)]
    is_superuser: bool,
}

fn yes() -> bool {
    true
}

/// One step of a session check.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDoc {
    #[serde(default)]
    cookie: Option<String>,
    #[serde(default)]
    cookie_header: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    row: Option<Option<RowDoc>>,
    #[serde(default, deserialize_with = "double_option")]
    user: Option<Option<UserDoc>>,
}

fn step(
    v: &SessionVerifier,
    doc: &StepDoc,
    now: i64,
    out: &mut Vec<u8>,
) -> Result<(), wsauth_result> {
    let expire_date = match &doc.row {
        Some(Some(r)) => Some(r.expire_date.unix_secs()?),
        _ => None,
    };
    let credential = match (&doc.cookie, &doc.cookie_header) {
        (Some(c), _) => Some(SessionCredential::Cookie(c)),
        (None, Some(h)) => Some(SessionCredential::CookieHeader(h)),
        (None, None) => None,
    };
    // The host looks the user up by `user_id` itself, so the pk type only
    // names the key the core would compare.
    let mut check = v.check(credential, PkKind::Str, now);
    if let SessionStep::NeedRow { session_key } = check.poll() {
        let Some(row) = &doc.row else {
            out.extend_from_slice(b"{\"need\":\"session_row\",\"session_key\":");
            jsonw::push_str(out, session_key);
            out.push(b'}');
            return Ok(());
        };
        let row = row
            .as_ref()
            .zip(expire_date)
            .map(|(r, expire_date)| SessionRow {
                session_key: &r.session_key,
                session_data: &r.session_data,
                expire_date,
            });
        check.answer_row(row.as_ref());
    }
    if let SessionStep::NeedUser { user_id, .. } = check.poll() {
        let Some(user) = &doc.user else {
            out.extend_from_slice(b"{\"need\":\"user\",\"user_id\":");
            jsonw::push_str(out, user_id);
            out.push(b'}');
            return Ok(());
        };
        let pk_text = user.as_ref().map(|u| match &u.pk {
            Pk::Int(n) => n.to_string(),
            Pk::Str(s) => s.clone(),
        });
        let record = user
            .as_ref()
            .zip(pk_text.as_deref())
            .map(|(u, pk)| UserRecord {
                pk,
                password: &u.password,
                is_active: u.is_active,
                is_staff: u.is_staff,
                is_superuser: u.is_superuser,
            });
        check.answer_user(record.as_ref());
    }
    match (check.poll(), &doc.user) {
        (SessionStep::Done(Ok(auth)), Some(Some(user))) => {
            out.extend_from_slice(b"{\"valid\":true,\"user_id\":");
            jsonw::push_str(out, &auth.user_id);
            out.extend_from_slice(b",\"user\":{\"pk\":");
            match &user.pk {
                Pk::Int(n) => jsonw::push_int(out, *n),
                Pk::Str(s) => jsonw::push_str(out, s),
            }
            out.extend_from_slice(b",\"is_active\":");
            jsonw::push_bool(out, user.is_active);
            out.extend_from_slice(b",\"is_staff\":");
            jsonw::push_bool(out, user.is_staff);
            out.extend_from_slice(b",\"is_superuser\":");
            jsonw::push_bool(out, user.is_superuser);
            out.extend_from_slice(b"}}");
        }
        (SessionStep::Done(Err(e)), _) => jsonw::push_invalid(out, e.kind().as_str(), e.message()),
        // A verdict only follows an answered user lookup; the two steps above
        // answer every lookup the check asks for.
        _ => jsonw::push_invalid(
            out,
            ErrorKind::UserNotFound.as_str(),
            "The session's user does not exist",
        ),
    }
    Ok(())
}

/// Builds a session verifier from a JSON settings document:
/// `{"secret": "<SECRET_KEY>", "fallback_secrets": ["<SECRET_KEY_FALLBACKS>…"],
/// "engine": "db" | "signed_cookies" (or Django's dotted SESSION_ENGINE),
/// "cookie_name": "sessionid", "cookie_age": 1209600, "auth_backends":
/// ["django.contrib.auth.backends.ModelBackend"], "accept_fallback_hash": true}`
/// (only `secret` is required). `accept_fallback_hash: false` decides as
/// Channels' `get_user` does; `true` as Django's.
///
/// # Safety
/// `settings_json` must point to `settings_len` readable bytes;
/// `verifier_out` must point to a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn wsauth_session_verifier_new(
    settings_json: *const c_char,
    settings_len: usize,
    verifier_out: *mut *mut wsauth_session_verifier,
) -> wsauth_result {
    boundary::guard(|| {
        boundary::check_out(verifier_out)?;
        // SAFETY: caller contract above.
        let raw = unsafe { boundary::text(settings_json, settings_len, MAX_JSON_INPUT) }?;
        let doc: SessionSettingsDoc =
            serde_json::from_str(raw).map_err(|e| settings_error("settings", &e))?;
        let handle = boundary::into_handle::<SessionHandle, wsauth_session_verifier>(build(doc)?);
        // SAFETY: checked non-NULL above; caller promises it is writable.
        unsafe { verifier_out.write(handle) };
        Ok(())
    })
}

/// Frees a session verifier. NULL is a no-op.
///
/// # Safety
/// `verifier` must be NULL or a live handle from `wsauth_session_verifier_new`,
/// not used by any thread afterwards.
#[no_mangle]
pub unsafe extern "C" fn wsauth_session_verifier_free(verifier: *mut wsauth_session_verifier) {
    // SAFETY: caller contract above.
    boundary::guard_void(|| unsafe { boundary::free_handle::<SessionHandle, _>(verifier) });
}

/// One step of Django's `get_user()` for a session, at time `now`.
///
/// The request is a JSON object: the credential as `"cookie"` (the session
/// cookie's value) or `"cookie_header"` (the first `Cookie` header, parsed as
/// Channels does), plus whatever the host has looked up so far: `"row"` (the
/// `django_session` row `{"session_key","session_data","expire_date"}` with
/// `expire_date` as the database stores it, ISO 8601 text (converted by the
/// core: `wsauth_core::parse_iso8601_utc`), or Unix seconds; `null` when
/// there is none) and `"user"`
/// (`{"pk","password","is_active","is_staff","is_superuser"}`, or `null` when
/// the user does not exist). A member left out means "not looked up yet".
///
/// The answer written to `out` (not NUL-terminated) is one of
/// `{"need":"session_row","session_key":"…"}` (db engines),
/// `{"need":"user","user_id":"…"}`,
/// `{"valid":true,"user_id":"1","user":{"pk":1,"is_active":true,…}}` or
/// `{"valid":false,"error":{"kind":"session_hash_mismatch","message":"…"}}`.
/// The host repeats the call with the requested item added until it gets a
/// verdict; each call is independent (the handle keeps no state).
///
/// # Safety
/// `verifier` must be a live handle; `request_json` must point to
/// `request_len` readable bytes; `out` to `out_cap` writable bytes; `out_len`
/// to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_session_verifier_step_json(
    verifier: *const wsauth_session_verifier,
    request_json: *const c_char,
    request_len: usize,
    now: i64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let v = &unsafe { boundary::borrow::<SessionHandle, _>(verifier) }?.verifier;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        // SAFETY: caller contract above.
        let raw = unsafe { boundary::text(request_json, request_len, MAX_JSON_INPUT) }?;
        let doc: StepDoc =
            serde_json::from_str(raw).map_err(|e| settings_error("session request", &e))?;
        let mut json = Vec::with_capacity(256);
        step(v, &doc, now, &mut json)?;
        // SAFETY: caller contract above.
        unsafe { dst.write(&json) }
    })
}

/// What `wsauth_session_verifier_mint` reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintDoc {
    user_id: String,
    password: String,
    #[serde(default)]
    backend: Option<String>,
}

/// Signs a logged-in session as Django's `login()` would store it
/// (`_auth_user_id`, `_auth_user_backend`, `_auth_user_hash` made with the
/// current `SECRET_KEY`), at time `now`. For the `signed_cookies` engine the
/// output is the cookie value; for db engines it is the `session_data` text
/// of a `django_session` row. Request: `{"user_id": "1", "password":
/// "<stored password hash>", "backend": "<dotted path>"}` (`backend`
/// defaults to the first of the verifier's `auth_backends`). For development
/// and tests. The output is not NUL-terminated.
///
/// # Safety
/// `verifier` must be a live handle; `request_json` must point to
/// `request_len` readable bytes; `out` to `out_cap` writable bytes; `out_len`
/// to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_session_verifier_mint(
    verifier: *const wsauth_session_verifier,
    request_json: *const c_char,
    request_len: usize,
    now: i64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<SessionHandle, _>(verifier) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        // SAFETY: caller contract above.
        let raw = unsafe { boundary::text(request_json, request_len, MAX_JSON_INPUT) }?;
        let doc: MintDoc =
            serde_json::from_str(raw).map_err(|e| settings_error("session request", &e))?;
        let settings = h.verifier.settings();
        let backend = match doc
            .backend
            .as_deref()
            .or(settings.auth_backends.first().map(String::as_str))
        {
            Some(b) => b,
            None => {
                set_last_error("session request: no backend given and none configured");
                return Err(wsauth_result::WSAUTH_RESULT_INVALID_REQUEST);
            }
        };
        let hex = h.verifier.session_auth_hash(&doc.password);
        let mut json = Vec::with_capacity(256);
        json.extend_from_slice(b"{\"_auth_user_id\":");
        jsonw::push_str(&mut json, &doc.user_id);
        json.extend_from_slice(b",\"_auth_user_backend\":");
        jsonw::push_str(&mut json, backend);
        json.extend_from_slice(b",\"_auth_user_hash\":");
        jsonw::push_str(&mut json, &hex);
        json.push(b'}');
        let salt = match settings.engine {
            SessionEngine::SignedCookies => SIGNED_COOKIES_SALT,
            SessionEngine::Db | SessionEngine::Cache | SessionEngine::CachedDb => {
                SESSION_STORE_SALT
            }
        };
        let signed = dumps(&json, &h.secret, salt, true, now);
        // SAFETY: caller contract above.
        unsafe { dst.write(signed.as_bytes()) }
    })
}
