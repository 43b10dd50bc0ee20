//! `wsauth_authenticator` and `wsauth_handshake`: the whole upgrade decision
//! (origin → rate limit → route → credential → principal → policy), with
//! the host answering lookups from C.

use crate::boundary::{self, OutBuf, MAX_BYTES_INPUT, MAX_JSON_INPUT};
use crate::errors::{redact_quoted, set_last_error, settings_error};
use crate::jsonw;
use crate::wsauth_result;
use serde::Deserialize;
use std::borrow::Cow;
use std::ffi::c_char;
use std::net::IpAddr;
use wsauth_core::{
    parse_iso8601_utc, Answer, AuthMethod, Authenticator, Close, Config, Connection, Decision,
    Handshake, HandshakeView, Principal, RateState, Relation, Request, RouteMatch, SecretRef,
    SessionRow, Step, UnixTime, UserRecord,
};

/// An authenticator built from a JSON configuration: immutable, shareable by
/// any number of threads.
#[allow(non_camel_case_types)]
pub struct wsauth_authenticator {
    _private: [u8; 0],
}

/// One upgrade (or in-band auth / refresh message) being decided. Use from
/// one thread at a time.
#[allow(non_camel_case_types)]
pub struct wsauth_handshake {
    _private: [u8; 0],
}

/// One request header for `wsauth_authenticator_start` (`name` is ASCII,
/// compared case-insensitively) and `wsauth_edge_verify_headers_json`
/// (`name` is any bytes, compared ASCII case-insensitively); `value` is the
/// raw header bytes.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct wsauth_header {
    /// Header name.
    pub name: *const c_char,
    /// Length of `name`, bytes.
    pub name_len: usize,
    /// Header value (bytes, not necessarily UTF-8).
    pub value: *const c_char,
    /// Length of `value`, bytes.
    pub value_len: usize,
}

/// A close code and its reason, as the decision or the connection gives them.
/// `reason` is UTF-8, `reason_len` bytes long and NUL-terminated; it never
/// holds a credential. `code` is 0 when there is nothing to close.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct wsauth_close {
    /// The close code (4401, 4403, …), an HTTP status for a refused upgrade, or 0.
    pub code: u32,
    /// Length of `reason`, bytes (at most 123).
    pub reason_len: u32,
    /// The reason text, NUL-terminated.
    pub reason: [c_char; 124],
}

impl wsauth_close {
    pub(crate) const NONE: wsauth_close = wsauth_close {
        code: 0,
        reason_len: 0,
        reason: [0; 124],
    };

    pub(crate) fn from_close(c: &Close) -> Self {
        let mut out = wsauth_close::NONE;
        out.code = u32::from(c.code_u16());
        let text = c.reason.as_str().as_bytes();
        let n = text.len().min(123);
        for (dst, src) in out.reason.iter_mut().zip(text.iter().take(n)) {
            *dst = *src as c_char;
        }
        out.reason_len = n as u32;
        out
    }

    pub(crate) fn status(status: u16) -> Self {
        let mut out = wsauth_close::NONE;
        out.code = u32::from(status);
        out
    }
}

/// Who a decision (or an open connection) accepted. Fields that do not apply
/// are zero / false. `user_id` is the id as text (`str(pk)`, or the token's
/// claim as it was), `user_id_len` bytes, NUL-terminated; `user_id_numeric`
/// tells whether it was a number.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct wsauth_principal {
    /// True for an authenticated user; false for anonymous.
    pub authenticated: bool,
    /// `is_staff`.
    pub is_staff: bool,
    /// `is_superuser`.
    pub is_superuser: bool,
    /// `is_active` (always true for claims-only users, as SimpleJWT's `TokenUser`).
    pub is_active: bool,
    /// How the user authenticated: `WSAUTH_METHOD_*`.
    pub method: u32,
    /// True when `expires_at` holds the credential's expiry.
    pub has_expires_at: bool,
    /// The token's `exp` (Unix seconds); sessions have none.
    pub expires_at: i64,
    /// True when `deadline` holds when the connection closes unless refreshed.
    pub has_deadline: bool,
    /// Unix seconds: `exp` plus leeway, or the auth-message deadline.
    pub deadline: i64,
    /// True when the user id was a number.
    pub user_id_numeric: bool,
    /// Length of `user_id`, bytes (at most 256).
    pub user_id_len: u32,
    /// The user id, NUL-terminated.
    pub user_id: [c_char; 257],
}

/// `wsauth_principal.method`: anonymous (no user).
pub const WSAUTH_METHOD_NONE: u32 = 0;
/// `wsauth_principal.method`: a JWT (from any carrier).
pub const WSAUTH_METHOD_JWT: u32 = 1;
/// `wsauth_principal.method`: a Django session cookie.
pub const WSAUTH_METHOD_SESSION: u32 = 2;

impl wsauth_principal {
    pub(crate) const NONE: wsauth_principal = wsauth_principal {
        authenticated: false,
        is_staff: false,
        is_superuser: false,
        is_active: false,
        method: WSAUTH_METHOD_NONE,
        has_expires_at: false,
        expires_at: 0,
        has_deadline: false,
        deadline: 0,
        user_id_numeric: false,
        user_id_len: 0,
        user_id: [0; 257],
    };

    pub(crate) fn of(p: &Principal, deadline: Option<i64>) -> Self {
        let mut out = wsauth_principal::NONE;
        out.has_deadline = deadline.is_some();
        out.deadline = deadline.unwrap_or(0);
        let Some(u) = p.user() else {
            return out;
        };
        out.authenticated = true;
        out.is_staff = u.is_staff;
        out.is_superuser = u.is_superuser;
        out.is_active = u.is_active;
        out.method = match u.method {
            AuthMethod::Session => WSAUTH_METHOD_SESSION,
            _ => WSAUTH_METHOD_JWT,
        };
        out.has_expires_at = u.expires_at.is_some();
        out.expires_at = u.expires_at.unwrap_or(0);
        out.user_id_numeric = u.id.is_numeric();
        let text = u.id.as_str().as_bytes();
        let n = text.len().min(256);
        for (dst, src) in out.user_id.iter_mut().zip(text.iter().take(n)) {
            *dst = *src as c_char;
        }
        out.user_id_len = u32::try_from(n).unwrap_or(0);
        out
    }
}

/// `wsauth_handshake_poll`: the handshake is decided; read it with
/// `wsauth_handshake_decision`, `wsauth_handshake_decision_subprotocol`,
/// `wsauth_handshake_decision_principal` or `wsauth_handshake_decision_json`.
pub const WSAUTH_STEP_DONE: u32 = 0;
/// Look up the `django_session` row whose key is field `WSAUTH_FIELD_KEY`;
/// answer with `wsauth_handshake_answer_session` or `wsauth_handshake_answer_none`.
pub const WSAUTH_STEP_SESSION: u32 = 1;
/// Look up the user whose `str(pk)` is field `WSAUTH_FIELD_KEY`; answer with
/// `wsauth_handshake_answer_user` or `wsauth_handshake_answer_none`.
pub const WSAUTH_STEP_USER: u32 = 2;
/// Is the token id in field `WSAUTH_FIELD_KEY` revoked? Answer with
/// `wsauth_handshake_answer_bool` (true: revoked).
pub const WSAUTH_STEP_JTI_REVOKED: u32 = 3;
/// Does user `WSAUTH_FIELD_KEY` own resource `WSAUTH_FIELD_VALUE` (route
/// `WSAUTH_FIELD_ROUTE`, parameter `WSAUTH_FIELD_PARAM`)? Answer with
/// `wsauth_handshake_answer_bool` (true: allowed).
pub const WSAUTH_STEP_OWNER: u32 = 4;
/// As `WSAUTH_STEP_OWNER`, for membership.
pub const WSAUTH_STEP_MEMBER: u32 = 5;
/// The rate limit (`limits.rate_limit`), asked before any credential is
/// verified: the limiter state stored for the peer in field
/// `WSAUTH_FIELD_PEER`. Answer with `wsauth_handshake_answer_rate` (its
/// `tat_ms`; 0, or `wsauth_handshake_answer_none`, for a peer with none).
pub const WSAUTH_STEP_RATE: u32 = 6;
/// Store the peer's new limiter state if it is still the expected one (a
/// compare-and-set; read both with `wsauth_handshake_request_rate_commit`).
/// Answer with `wsauth_handshake_answer_stored`, or — when another attempt
/// changed it meanwhile — `wsauth_handshake_answer_rate` with the state
/// found. An attempt over the limit never gets here: it closes with 4429.
pub const WSAUTH_STEP_RATE_COMMIT: u32 = 7;

/// Request field: the session key, `str(pk)`, jti, or (access steps) the user id.
pub const WSAUTH_FIELD_KEY: u32 = 1;
/// Request field (access steps): the route's name.
pub const WSAUTH_FIELD_ROUTE: u32 = 2;
/// Request field (access steps): the route parameter naming the resource.
pub const WSAUTH_FIELD_PARAM: u32 = 3;
/// Request field (access steps): the resource, percent-decoded.
pub const WSAUTH_FIELD_VALUE: u32 = 4;
/// Request field (rate steps): the peer's IP address as text (`127.0.0.1`, `::1`).
pub const WSAUTH_FIELD_PEER: u32 = 5;
/// Request field (jti and access steps): the user id as text.
pub const WSAUTH_FIELD_USER: u32 = 6;

/// Decision action: accept the upgrade.
pub const WSAUTH_ACTION_ACCEPT: u32 = 1;
/// Decision action: accept, then close at once with the close code (so browsers see it).
pub const WSAUTH_ACTION_CLOSE: u32 = 2;
/// Decision action: refuse the upgrade with the HTTP status in `code` (origin not allowed).
pub const WSAUTH_ACTION_DENY: u32 = 3;
/// Decision action: accept and wait for `{"type":"auth","token":…}` as the first message.
pub const WSAUTH_ACTION_AWAIT_MESSAGE: u32 = 4;

/// What a `wsauth_handshake` handle owns: the core's handshake (which owns
/// everything it needs, authenticator included), the request path for the
/// decision's route parameters, and the current step, polled once after
/// every change so the getters read it without asking the core again.
pub(crate) struct HandshakeHandle {
    hs: Handshake,
    /// The upgrade's request path; `None` for an in-band message handshake.
    path: Option<String>,
    step: Step,
}

impl HandshakeHandle {
    fn new(hs: Handshake, path: Option<String>) -> Self {
        let step = hs.poll();
        HandshakeHandle { hs, path, step }
    }

    /// Wraps a handshake the connection started for an in-band message.
    pub(crate) fn for_message(hs: Handshake) -> Self {
        HandshakeHandle::new(hs, None)
    }

    fn answer(&mut self, a: Answer<'_>) {
        self.hs.answer(a);
        self.step = self.hs.poll();
    }

    pub(crate) fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    pub(crate) fn authenticator(&self) -> &Authenticator {
        self.hs.authenticator()
    }

    pub(crate) fn request(&self) -> Option<&Request> {
        match &self.step {
            Step::Lookup(r) => Some(r),
            Step::Done(_) => None,
        }
    }

    pub(crate) fn decision(&self) -> Option<&Decision> {
        match &self.step {
            Step::Done(d) => Some(d),
            Step::Lookup(_) => None,
        }
    }

    /// The open connection for an accepting upgrade decision; `None` for a
    /// message handshake, before the decision, and for close / deny.
    pub(crate) fn connection(&self) -> Option<Connection> {
        self.path.as_ref()?;
        self.hs.connection()
    }
}

// ---------------------------------------------------------------------------
// Configuration

fn resolve_secret(r: &SecretRef) -> Option<String> {
    // The rule for what a secret file holds is the core's; only the I/O is here.
    r.resolve(
        |name| std::env::var(name).ok(),
        |path| std::fs::read(path).ok(),
    )
}

fn build_authenticator(raw: &str) -> Result<Authenticator, wsauth_result> {
    let config: Config = serde_json::from_str(raw).map_err(|e| settings_error("config", &e))?;
    let invalid = |e: wsauth_core::ConfigError| {
        set_last_error(&format!("config: {}", redact_quoted(&e.to_string())));
        wsauth_result::WSAUTH_RESULT_INVALID_SETTINGS
    };
    let secrets = config.resolve_secrets(resolve_secret).map_err(invalid)?;
    Authenticator::from_config(&config, &secrets).map_err(invalid)
}

/// Builds an authenticator from a JSON configuration with the same members
/// as the `wsauth serve` TOML file (`jwt`, `users`, `session`,
/// `credentials`, `origins`, `routes`, `limits`; `limits.rate_limit`
/// `{"requests": N, "period_secs": S, "burst": B}` adds the rate step to
/// every handshake started with a peer address). Secrets are given as
/// `"value"`, `{"value": …}`, `{"env": "VAR"}` or `{"file": "/path"}`
/// (environment and files are read here, once). Problems are reported as
/// `WSAUTH_RESULT_INVALID_SETTINGS` with the offending member in
/// `wsauth_last_error`.
///
/// # Safety
/// `config_json` must point to `config_len` readable bytes;
/// `authenticator_out` must point to a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn wsauth_authenticator_new(
    config_json: *const c_char,
    config_len: usize,
    authenticator_out: *mut *mut wsauth_authenticator,
) -> wsauth_result {
    boundary::guard(|| {
        boundary::check_out(authenticator_out)?;
        // SAFETY: caller contract above.
        let raw = unsafe { boundary::text(config_json, config_len, MAX_JSON_INPUT) }?;
        let auth = build_authenticator(raw)?;
        let handle = boundary::into_handle::<Authenticator, wsauth_authenticator>(auth);
        // SAFETY: checked non-NULL above; caller promises it is writable.
        unsafe { authenticator_out.write(handle) };
        Ok(())
    })
}

/// Frees an authenticator. NULL is a no-op. Handshakes and connections made
/// from it stay valid (they keep what they need).
///
/// # Safety
/// `authenticator` must be NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn wsauth_authenticator_free(authenticator: *mut wsauth_authenticator) {
    // SAFETY: caller contract above.
    boundary::guard_void(|| unsafe { boundary::free_handle::<Authenticator, _>(authenticator) });
}

// ---------------------------------------------------------------------------
// Starting a handshake

fn parse_peer(peer: &str) -> Result<Option<IpAddr>, wsauth_result> {
    if peer.is_empty() {
        return Ok(None);
    }
    peer.parse::<IpAddr>().map(Some).map_err(|_| {
        set_last_error("request: peer is not an IP address");
        wsauth_result::WSAUTH_RESULT_INVALID_REQUEST
    })
}

fn write_handle(out: *mut *mut wsauth_handshake, h: HandshakeHandle) {
    let handle = boundary::into_handle::<HandshakeHandle, wsauth_handshake>(h);
    // SAFETY: every caller checked `out` non-NULL before doing any work, and
    // its caller promised it is writable.
    unsafe { out.write(handle) };
}

/// The shared body of `wsauth_authenticator_start` / `_start_ms`: the view
/// borrows the caller's memory for this call only (the handshake owns what
/// it keeps).
///
/// # Safety
/// As for `wsauth_authenticator_start`.
#[allow(clippy::too_many_arguments)]
unsafe fn start_raw(
    authenticator: *const wsauth_authenticator,
    path: *const c_char,
    path_len: usize,
    query: *const c_char,
    query_len: usize,
    headers: *const wsauth_header,
    headers_len: usize,
    peer: *const c_char,
    peer_len: usize,
    now: UnixTime,
    handshake_out: *mut *mut wsauth_handshake,
) -> Result<(), wsauth_result> {
    // SAFETY: caller contract.
    let auth = unsafe { boundary::borrow::<Authenticator, _>(authenticator) }?;
    boundary::check_out(handshake_out)?;
    // SAFETY: caller contract (each pair below).
    let path = unsafe { boundary::text(path, path_len, MAX_BYTES_INPUT) }?;
    // SAFETY: as above.
    let query = unsafe { boundary::text(query, query_len, MAX_BYTES_INPUT) }?;
    // SAFETY: as above.
    let peer = unsafe { boundary::text(peer, peer_len, 64) }?;
    if headers_len > 1024 {
        return Err(wsauth_result::WSAUTH_RESULT_INPUT_TOO_LARGE);
    }
    let list: &[wsauth_header] = if headers_len == 0 {
        &[]
    } else if headers.is_null() {
        return Err(wsauth_result::WSAUTH_RESULT_NULL_PARAMETER);
    } else {
        // SAFETY: non-NULL, and the caller promises `headers_len` readable entries.
        unsafe { std::slice::from_raw_parts(headers, headers_len) }
    };
    let mut pairs: Vec<(&str, &[u8])> = Vec::with_capacity(list.len());
    let mut total = 0usize;
    for h in list {
        // SAFETY: caller contract.
        let name = unsafe { boundary::text(h.name, h.name_len, 1024) }?;
        // SAFETY: caller contract.
        let value = unsafe { boundary::bytes(h.value, h.value_len, MAX_BYTES_INPUT) }?;
        total = total.saturating_add(name.len()).saturating_add(value.len());
        if total > MAX_BYTES_INPUT {
            return Err(wsauth_result::WSAUTH_RESULT_INPUT_TOO_LARGE);
        }
        pairs.push((name, value));
    }
    let mut view = HandshakeView::new(path, query, &pairs);
    if let Some(peer) = parse_peer(peer)? {
        view = view.with_peer(peer);
    }
    let hs = auth.start(&view, now);
    write_handle(
        handshake_out,
        HandshakeHandle::new(hs, Some(path.to_owned())),
    );
    Ok(())
}

/// Starts deciding an upgrade request at `now` (Unix seconds): `path` is
/// the request path without the query, still percent-encoded; `query` the
/// raw query string (without `?`); `headers` the request headers in order
/// (repeated headers repeated); `peer` the client's IP address as text
/// (`"127.0.0.1"`, `"::1"`; may be empty). With a configured
/// `limits.rate_limit` and a peer, the first step is `WSAUTH_STEP_RATE`;
/// the limiter then counts whole seconds (`wsauth_authenticator_start_ms`
/// counts milliseconds). Nothing passed in is kept. On success
/// `*handshake_out` receives a handle to drive with `wsauth_handshake_poll`
/// and free with `wsauth_handshake_free`.
///
/// # Safety
/// `authenticator` must be a live handle; each pointer/length pair must
/// describe readable memory; `headers` must point to `headers_len` entries;
/// `handshake_out` must point to a writable pointer.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn wsauth_authenticator_start(
    authenticator: *const wsauth_authenticator,
    path: *const c_char,
    path_len: usize,
    query: *const c_char,
    query_len: usize,
    headers: *const wsauth_header,
    headers_len: usize,
    peer: *const c_char,
    peer_len: usize,
    now: i64,
    handshake_out: *mut *mut wsauth_handshake,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        unsafe {
            start_raw(
                authenticator,
                path,
                path_len,
                query,
                query_len,
                headers,
                headers_len,
                peer,
                peer_len,
                boundary::unix_secs(now),
                handshake_out,
            )
        }
    })
}

/// As `wsauth_authenticator_start`, with the clock in Unix milliseconds
/// (`now_ms`): token and session checks still compare whole seconds (the
/// floor), the rate limit uses the milliseconds.
///
/// # Safety
/// As for `wsauth_authenticator_start`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn wsauth_authenticator_start_ms(
    authenticator: *const wsauth_authenticator,
    path: *const c_char,
    path_len: usize,
    query: *const c_char,
    query_len: usize,
    headers: *const wsauth_header,
    headers_len: usize,
    peer: *const c_char,
    peer_len: usize,
    now_ms: i64,
    handshake_out: *mut *mut wsauth_handshake,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        unsafe {
            start_raw(
                authenticator,
                path,
                path_len,
                query,
                query_len,
                headers,
                headers_len,
                peer,
                peer_len,
                boundary::unix_millis(now_ms),
                handshake_out,
            )
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartDoc {
    path: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    peer: Option<String>,
}

/// Text with every character ≤ U+00FF, as the bytes of the same values.
fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// As `wsauth_authenticator_start`, with the request as one JSON document
/// (for bindings, one crossing): `{"path": "/ws/chat/lobby/", "query":
/// "token=…", "headers": [["origin", "http://localhost:8000"], …], "peer":
/// "127.0.0.1"}`. Header values are Latin-1 text — each byte 0x00–0xFF as
/// the character of the same code point, as ASGI servers and Channels
/// decode them; a character above U+00FF is `WSAUTH_RESULT_INVALID_REQUEST`.
///
/// # Safety
/// `authenticator` must be a live handle; `request_json` must point to
/// `request_len` readable bytes; `handshake_out` to a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn wsauth_authenticator_start_json(
    authenticator: *const wsauth_authenticator,
    request_json: *const c_char,
    request_len: usize,
    now: i64,
    handshake_out: *mut *mut wsauth_handshake,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        unsafe {
            start_json_raw(
                authenticator,
                request_json,
                request_len,
                boundary::unix_secs(now),
                handshake_out,
            )
        }
    })
}

/// As `wsauth_authenticator_start_json`, with the clock in Unix milliseconds
/// (`now_ms`), as `wsauth_authenticator_start_ms`: token and session checks
/// compare whole seconds (the floor), the rate limit uses the milliseconds.
///
/// # Safety
/// As for `wsauth_authenticator_start_json`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_authenticator_start_json_ms(
    authenticator: *const wsauth_authenticator,
    request_json: *const c_char,
    request_len: usize,
    now_ms: i64,
    handshake_out: *mut *mut wsauth_handshake,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        unsafe {
            start_json_raw(
                authenticator,
                request_json,
                request_len,
                boundary::unix_millis(now_ms),
                handshake_out,
            )
        }
    })
}

/// The shared body of `wsauth_authenticator_start_json` / `_json_ms`.
///
/// # Safety
/// As for `wsauth_authenticator_start_json`.
unsafe fn start_json_raw(
    authenticator: *const wsauth_authenticator,
    request_json: *const c_char,
    request_len: usize,
    now: UnixTime,
    handshake_out: *mut *mut wsauth_handshake,
) -> Result<(), wsauth_result> {
    // SAFETY: caller contract.
    let auth = unsafe { boundary::borrow::<Authenticator, _>(authenticator) }?;
    boundary::check_out(handshake_out)?;
    // SAFETY: caller contract.
    let raw = unsafe { boundary::text(request_json, request_len, MAX_JSON_INPUT) }?;
    let doc: StartDoc = serde_json::from_str(raw).map_err(|e| settings_error("request", &e))?;
    let mut headers = Vec::with_capacity(doc.headers.len());
    for (name, value) in &doc.headers {
        let bytes = latin1_bytes(value).ok_or_else(|| {
            set_last_error(
                "request: a header value has a character above U+00FF (send Latin-1 text)",
            );
            wsauth_result::WSAUTH_RESULT_INVALID_REQUEST
        })?;
        headers.push((name.as_str(), bytes));
    }
    let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let mut view = HandshakeView::new(&doc.path, &doc.query, &pairs);
    if let Some(peer) = parse_peer(doc.peer.as_deref().unwrap_or(""))? {
        view = view.with_peer(peer);
    }
    let hs = auth.start(&view, now);
    write_handle(
        handshake_out,
        HandshakeHandle::new(hs, Some(doc.path.clone())),
    );
    Ok(())
}

/// Frees a handshake. NULL is a no-op.
///
/// # Safety
/// `handshake` must be NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_free(handshake: *mut wsauth_handshake) {
    // SAFETY: caller contract above.
    boundary::guard_void(|| unsafe { boundary::free_handle::<HandshakeHandle, _>(handshake) });
}

// ---------------------------------------------------------------------------
// Driving a handshake

fn step_code(r: &Request) -> u32 {
    match r {
        Request::Rate { .. } => WSAUTH_STEP_RATE,
        Request::RateCommit { .. } => WSAUTH_STEP_RATE_COMMIT,
        Request::Session { .. } => WSAUTH_STEP_SESSION,
        Request::User { .. } => WSAUTH_STEP_USER,
        Request::JtiRevoked { .. } => WSAUTH_STEP_JTI_REVOKED,
        Request::Access {
            relation: Relation::Owner,
            ..
        } => WSAUTH_STEP_OWNER,
        Request::Access { .. } => WSAUTH_STEP_MEMBER,
        _ => u32::MAX,
    }
}

/// Writes what the handshake needs next to `*step_out`: `WSAUTH_STEP_DONE`
/// or one of the `WSAUTH_STEP_*` lookups, whose inputs
/// `wsauth_handshake_request_field` (and, for `WSAUTH_STEP_RATE_COMMIT`,
/// `wsauth_handshake_request_rate_commit`) read. Polling again without
/// answering returns the same step. The steps come in the core's order:
/// rate limit, then the credential's lookups, then access.
///
/// # Safety
/// `handshake` must be a live handle used by no other thread; `step_out`
/// must point to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_poll(
    handshake: *mut wsauth_handshake,
    step_out: *mut u32,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        boundary::check_out(step_out)?;
        let code = match h.request() {
            None => WSAUTH_STEP_DONE,
            Some(r) => step_code(r),
        };
        if code == u32::MAX {
            set_last_error("handshake: the core asked for a lookup this library does not know");
            return Err(wsauth_result::WSAUTH_RESULT_INVALID_STATE);
        }
        // SAFETY: checked non-NULL above; caller promises it is writable.
        unsafe { step_out.write(code) };
        Ok(())
    })
}

fn request_field(r: &Request, field: u32) -> Option<Cow<'_, str>> {
    match (r, field) {
        (Request::Rate { peer } | Request::RateCommit { peer, .. }, WSAUTH_FIELD_PEER) => {
            Some(Cow::Owned(peer.to_string()))
        }
        (Request::Session { key }, WSAUTH_FIELD_KEY) => Some(Cow::Borrowed(key.as_str())),
        (Request::User { pk, .. }, WSAUTH_FIELD_KEY) => Some(Cow::Borrowed(pk.as_str())),
        (Request::JtiRevoked { jti, .. }, WSAUTH_FIELD_KEY) => Some(Cow::Borrowed(jti.as_str())),
        (Request::JtiRevoked { user, .. }, WSAUTH_FIELD_USER) => Some(Cow::Borrowed(user.as_str())),
        (Request::Access { user, .. }, WSAUTH_FIELD_KEY | WSAUTH_FIELD_USER) => {
            Some(Cow::Borrowed(user.as_str()))
        }
        (Request::Access { route, .. }, WSAUTH_FIELD_ROUTE) => Some(Cow::Borrowed(route.as_str())),
        (Request::Access { param, .. }, WSAUTH_FIELD_PARAM) => Some(Cow::Borrowed(param.as_str())),
        (Request::Access { value, .. }, WSAUTH_FIELD_VALUE) => Some(Cow::Borrowed(value.as_str())),
        _ => None,
    }
}

/// Copies one input of the pending lookup (`WSAUTH_FIELD_*`) to `out`.
/// `WSAUTH_RESULT_INVALID_STATE` when the handshake is decided or the field
/// does not apply to the pending step.
///
/// # Safety
/// `handshake` must be a live handle used by no other thread; `out` must
/// point to `out_cap` writable bytes; `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_request_field(
    handshake: *mut wsauth_handshake,
    field: u32,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let r = h
            .request()
            .ok_or(wsauth_result::WSAUTH_RESULT_INVALID_STATE)?;
        let value = request_field(r, field).ok_or_else(|| {
            set_last_error("handshake: this field does not apply to the pending step");
            wsauth_result::WSAUTH_RESULT_INVALID_STATE
        })?;
        // SAFETY: caller contract above.
        unsafe { dst.write(value.as_bytes()) }
    })
}

/// The inputs of `WSAUTH_STEP_RATE_COMMIT`: store `*new_tat_ms_out` for the
/// peer (field `WSAUTH_FIELD_PEER`) if its stored state is still
/// `*expected_tat_ms_out` (a compare-and-set); the host may forget the
/// peer's state at `*idle_at_ms_out` (Unix ms). `WSAUTH_RESULT_INVALID_STATE`
/// at any other step.
///
/// # Safety
/// `handshake` must be a live handle used by no other thread; the
/// out-pointers must be writable.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_request_rate_commit(
    handshake: *mut wsauth_handshake,
    expected_tat_ms_out: *mut i64,
    new_tat_ms_out: *mut i64,
    idle_at_ms_out: *mut i64,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        boundary::check_out(expected_tat_ms_out)?;
        boundary::check_out(new_tat_ms_out)?;
        boundary::check_out(idle_at_ms_out)?;
        let Some(Request::RateCommit {
            expected,
            new,
            idle_at_ms,
            ..
        }) = h.request()
        else {
            set_last_error("handshake: no rate-limit commit is pending");
            return Err(wsauth_result::WSAUTH_RESULT_INVALID_STATE);
        };
        // SAFETY: checked non-NULL above; the caller promises they are writable.
        unsafe { expected_tat_ms_out.write(expected.tat_ms) };
        // SAFETY: as above.
        unsafe { new_tat_ms_out.write(new.tat_ms) };
        // SAFETY: as above.
        unsafe { idle_at_ms_out.write(*idle_at_ms) };
        Ok(())
    })
}

/// Which answers the pending step accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Rate,
    RateCommit,
    Session,
    User,
    Bool,
}

fn pending(h: &HandshakeHandle) -> Result<Expect, wsauth_result> {
    match h.request() {
        None => {
            set_last_error("handshake: already decided");
            Err(wsauth_result::WSAUTH_RESULT_INVALID_STATE)
        }
        Some(Request::Rate { .. }) => Ok(Expect::Rate),
        Some(Request::RateCommit { .. }) => Ok(Expect::RateCommit),
        Some(Request::Session { .. }) => Ok(Expect::Session),
        Some(Request::User { .. }) => Ok(Expect::User),
        Some(_) => Ok(Expect::Bool),
    }
}

fn misfit() -> wsauth_result {
    set_last_error("handshake: this answer does not fit the pending step");
    wsauth_result::WSAUTH_RESULT_INVALID_STATE
}

fn answer(h: &mut HandshakeHandle, want: &[Expect], a: Answer<'_>) -> Result<(), wsauth_result> {
    let have = pending(h)?;
    if !want.is_empty() && !want.contains(&have) {
        return Err(misfit());
    }
    h.answer(a);
    Ok(())
}

/// Answers `WSAUTH_STEP_RATE` with the peer's stored limiter state
/// (`tat_ms`, 0 for a peer with none), or `WSAUTH_STEP_RATE_COMMIT` with the
/// state found instead of the expected one (the compare-and-set failed: the
/// handshake decides again on it, and may ask to commit again).
///
/// # Safety
/// `handshake` must be a live handle used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_answer_rate(
    handshake: *mut wsauth_handshake,
    tat_ms: i64,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        answer(
            h,
            &[Expect::Rate, Expect::RateCommit],
            Answer::Rate(RateState { tat_ms }),
        )
    })
}

/// Answers `WSAUTH_STEP_RATE_COMMIT`: the new state was stored.
///
/// # Safety
/// `handshake` must be a live handle used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_answer_stored(
    handshake: *mut wsauth_handshake,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        answer(h, &[Expect::RateCommit], Answer::Stored)
    })
}

/// Answers `WSAUTH_STEP_SESSION` with the `django_session` row
/// (`expire_date` in Unix seconds).
///
/// # Safety
/// `handshake` must be a live handle used by no other thread; each
/// pointer/length pair must describe readable memory.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_answer_session(
    handshake: *mut wsauth_handshake,
    session_key: *const c_char,
    session_key_len: usize,
    session_data: *const c_char,
    session_data_len: usize,
    expire_date: i64,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        // SAFETY: caller contract above.
        let session_key = unsafe { boundary::text(session_key, session_key_len, MAX_BYTES_INPUT) }?;
        // SAFETY: caller contract above.
        let session_data =
            unsafe { boundary::text(session_data, session_data_len, MAX_BYTES_INPUT) }?;
        let row = SessionRow {
            session_key,
            session_data,
            expire_date,
        };
        answer(h, &[Expect::Session], Answer::Session(Some(row)))
    })
}

/// As `wsauth_handshake_answer_session`, with `expire_date` as the database
/// stores it: ISO 8601 text (`2025-06-15T12:00:00.250000+00:00`, a space
/// instead of `T`, `Z` or an offset; no offset means UTC). The core converts
/// it with its one rule (`wsauth_core::parse_iso8601_utc`: a fraction of a
/// second counts as the next whole second). Text that is not such a date is
/// `WSAUTH_RESULT_INVALID_REQUEST` and answers nothing.
///
/// # Safety
/// `handshake` must be a live handle used by no other thread; each
/// pointer/length pair must describe readable memory.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn wsauth_handshake_answer_session_iso(
    handshake: *mut wsauth_handshake,
    session_key: *const c_char,
    session_key_len: usize,
    session_data: *const c_char,
    session_data_len: usize,
    expire_date: *const c_char,
    expire_date_len: usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        // SAFETY: caller contract above.
        let session_key = unsafe { boundary::text(session_key, session_key_len, MAX_BYTES_INPUT) }?;
        // SAFETY: caller contract above.
        let session_data =
            unsafe { boundary::text(session_data, session_data_len, MAX_BYTES_INPUT) }?;
        // SAFETY: caller contract above.
        let expire_text = unsafe { boundary::text(expire_date, expire_date_len, 64) }?;
        let expire_date = parse_iso8601_utc(expire_text).ok_or_else(|| {
            set_last_error("session row: expire_date is not an ISO 8601 date and time");
            wsauth_result::WSAUTH_RESULT_INVALID_REQUEST
        })?;
        let row = SessionRow {
            session_key,
            session_data,
            expire_date,
        };
        answer(h, &[Expect::Session], Answer::Session(Some(row)))
    })
}

/// Answers `WSAUTH_STEP_USER` with the user row: `pk` as `str(pk)`,
/// `password` the stored hash text, and the flags.
///
/// # Safety
/// `handshake` must be a live handle used by no other thread; each
/// pointer/length pair must describe readable memory.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn wsauth_handshake_answer_user(
    handshake: *mut wsauth_handshake,
    pk: *const c_char,
    pk_len: usize,
    password: *const c_char,
    password_len: usize,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        // SAFETY: caller contract above.
        let pk = unsafe { boundary::text(pk, pk_len, 1024) }?;
        // SAFETY: caller contract above.
        let password = unsafe { boundary::text(password, password_len, 4096) }?;
        let rec = UserRecord {
            pk,
            password,
            is_active,
            is_staff,
            is_superuser,
        };
        answer(h, &[Expect::User], Answer::User(Some(rec)))
    })
}

/// Answers `WSAUTH_STEP_SESSION` or `WSAUTH_STEP_USER` with "there is none",
/// or `WSAUTH_STEP_RATE` with "no state stored for this peer" (as
/// `wsauth_handshake_answer_rate(handshake, 0)`).
///
/// # Safety
/// `handshake` must be a live handle used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_answer_none(
    handshake: *mut wsauth_handshake,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        match pending(h)? {
            Expect::Session => answer(h, &[], Answer::Session(None)),
            Expect::User => answer(h, &[], Answer::User(None)),
            Expect::Rate => answer(h, &[], Answer::Rate(RateState::default())),
            Expect::Bool | Expect::RateCommit => Err(misfit()),
        }
    })
}

/// Answers `WSAUTH_STEP_JTI_REVOKED` (true: revoked) or
/// `WSAUTH_STEP_OWNER` / `WSAUTH_STEP_MEMBER` (true: allowed).
///
/// # Safety
/// `handshake` must be a live handle used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_answer_bool(
    handshake: *mut wsauth_handshake,
    value: bool,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        let a = match h.request() {
            Some(Request::JtiRevoked { .. }) => Answer::Revoked(value),
            Some(Request::Access { .. }) => Answer::Access(value),
            None => return pending(h).map(|_| ()),
            Some(_) => return Err(misfit()),
        };
        answer(h, &[Expect::Bool], a)
    })
}

/// Answers any pending step with "the lookup failed" (database, cache or
/// limiter store down): the decision becomes a 1013 close, never a 4401.
///
/// # Safety
/// `handshake` must be a live handle used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_answer_failed(
    handshake: *mut wsauth_handshake,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        answer(h, &[], Answer::Failed)
    })
}

fn action_of(d: &Decision) -> (u32, wsauth_close) {
    match d {
        Decision::Accept(_) => (WSAUTH_ACTION_ACCEPT, wsauth_close::NONE),
        Decision::Close(c) => (WSAUTH_ACTION_CLOSE, wsauth_close::from_close(&c.close)),
        Decision::Deny { status } => (WSAUTH_ACTION_DENY, wsauth_close::status(*status)),
        Decision::AwaitFirstMessage(_) => (WSAUTH_ACTION_AWAIT_MESSAGE, wsauth_close::NONE),
    }
}

fn decided(h: &HandshakeHandle) -> Result<&Decision, wsauth_result> {
    h.decision().ok_or_else(|| {
        set_last_error("handshake: lookups are still pending");
        wsauth_result::WSAUTH_RESULT_INVALID_STATE
    })
}

/// The decision: `*action_out` is a `WSAUTH_ACTION_*`; `*close_out` holds the
/// close code and reason for `WSAUTH_ACTION_CLOSE`, the HTTP status (in
/// `code`) for `WSAUTH_ACTION_DENY`, and zeros otherwise.
/// `WSAUTH_RESULT_INVALID_STATE` while lookups are pending. The subprotocol
/// to answer the upgrade with (also on `WSAUTH_ACTION_CLOSE`) comes from
/// `wsauth_handshake_decision_subprotocol`.
///
/// # Safety
/// `handshake` must be a live handle; the out-pointers must be writable.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_decision(
    handshake: *const wsauth_handshake,
    action_out: *mut u32,
    close_out: *mut wsauth_close,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        boundary::check_out(action_out)?;
        boundary::check_out(close_out)?;
        let (action, close) = action_of(decided(h)?);
        // SAFETY: checked non-NULL above; the caller promises it is writable.
        unsafe { action_out.write(action) };
        // SAFETY: as above.
        unsafe { close_out.write(close) };
        Ok(())
    })
}

/// The `Sec-WebSocket-Protocol` to answer the upgrade with (`bearer` when
/// the client offered it, never the token), on every accepting decision —
/// `WSAUTH_ACTION_ACCEPT`, `WSAUTH_ACTION_AWAIT_MESSAGE` and
/// `WSAUTH_ACTION_CLOSE` (a browser that offered a subprotocol fails an
/// accept without one and never sees the close code). `*out_len` is 0 when
/// there is none (and for `WSAUTH_ACTION_DENY`). `WSAUTH_RESULT_INVALID_STATE`
/// while lookups are pending.
///
/// # Safety
/// `handshake` must be a live handle; `out` must point to `out_cap` writable
/// bytes; `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_decision_subprotocol(
    handshake: *const wsauth_handshake,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let sub = decided(h)?.subprotocol().unwrap_or("");
        // SAFETY: caller contract above.
        unsafe { dst.write(sub.as_bytes()) }
    })
}

/// The HTTP status to refuse the upgrade with for `WSAUTH_ACTION_DENY`
/// (403: origin not allowed); 0 for every other action.
/// `WSAUTH_RESULT_INVALID_STATE` while lookups are pending.
///
/// # Safety
/// `handshake` must be a live handle; `status_out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_decision_http_status(
    handshake: *const wsauth_handshake,
    status_out: *mut u32,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        boundary::check_out(status_out)?;
        let status = decided(h)?.denied_status().map_or(0, u32::from);
        // SAFETY: caller contract above.
        unsafe { boundary::write_out(status_out, status) }
    })
}

/// Who the decision accepts, in `*principal_out`: for `WSAUTH_ACTION_ACCEPT`
/// the user (or `authenticated == false` on an anonymous route) and the
/// deadline (token expiry plus leeway); for `WSAUTH_ACTION_AWAIT_MESSAGE`
/// nobody yet, with the auth-message deadline; all zeros for
/// `WSAUTH_ACTION_CLOSE` / `WSAUTH_ACTION_DENY`.
/// `WSAUTH_RESULT_INVALID_STATE` while lookups are pending.
///
/// # Safety
/// `handshake` must be a live handle; `principal_out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_decision_principal(
    handshake: *const wsauth_handshake,
    principal_out: *mut wsauth_principal,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        boundary::check_out(principal_out)?;
        let p = match decided(h)? {
            Decision::Accept(a) => wsauth_principal::of(&a.principal, a.deadline),
            Decision::AwaitFirstMessage(w) => {
                wsauth_principal::of(&Principal::Anonymous, Some(w.deadline))
            }
            Decision::Close(_) | Decision::Deny { .. } => wsauth_principal::NONE,
        };
        // SAFETY: caller contract above.
        unsafe { boundary::write_out(principal_out, p) }
    })
}

// ---------------------------------------------------------------------------
// Another route's policy for a decided handshake

/// The same caller's decision for another route, without verifying the
/// credential again: the route policy of `path` (percent-encoded, without
/// the query) applied to the principal the finished handshake `decided`
/// decided, at `now` (Unix seconds). For hosts that decide a connection once
/// and check each endpoint's own requirement afterwards (the Channels
/// drop-in's consumers).
///
/// `*handshake_out` receives a new handshake: drive it as any other. It asks
/// no credential lookup (no session, user or revocation step, no rate step);
/// an owner / member route asks `WSAUTH_STEP_OWNER` / `WSAUTH_STEP_MEMBER`.
/// Its decision: the route's requirement on the accepted user (4403 with the
/// core's reason when not allowed, 4401 for nobody on a protected route); a
/// credential `decided` refused (4401) is anonymous on a non-strict anonymous
/// route and refused again, with the same reason, on any other; a failed
/// lookup (1013), a rate limit (4429) or a refused Origin stays what it was;
/// no route for `path` is 4404. The subprotocol to answer is the one
/// `decided` answers. `decided` is not changed and stays usable.
/// `WSAUTH_RESULT_INVALID_STATE` while `decided` has lookups pending.
///
/// # Safety
/// `decided` must be a live handle used by no other thread for the call;
/// `path` must point to `path_len` readable bytes; `handshake_out` to a
/// writable pointer.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_authorize(
    decided: *const wsauth_handshake,
    path: *const c_char,
    path_len: usize,
    now: i64,
    handshake_out: *mut *mut wsauth_handshake,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(decided) }?;
        boundary::check_out(handshake_out)?;
        // SAFETY: caller contract above.
        let path = unsafe { boundary::text(path, path_len, MAX_BYTES_INPUT) }?;
        self::decided(h)?;
        let hs = h.hs.authorize(path, boundary::unix_secs(now));
        write_handle(
            handshake_out,
            HandshakeHandle::new(hs, Some(path.to_owned())),
        );
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// JSON

pub(crate) fn push_principal(out: &mut Vec<u8>, p: &Principal) {
    let Some(u) = p.user() else {
        out.extend_from_slice(b"null");
        return;
    };
    out.extend_from_slice(b"{\"user_id\":");
    if u.id.is_numeric() {
        out.extend_from_slice(u.id.as_str().as_bytes());
    } else {
        jsonw::push_str(out, u.id.as_str());
    }
    out.extend_from_slice(b",\"is_staff\":");
    jsonw::push_bool(out, u.is_staff);
    out.extend_from_slice(b",\"is_superuser\":");
    jsonw::push_bool(out, u.is_superuser);
    out.extend_from_slice(b",\"is_active\":");
    jsonw::push_bool(out, u.is_active);
    out.extend_from_slice(b",\"method\":");
    match u.method {
        AuthMethod::Jwt(c) => {
            out.extend_from_slice(b"\"jwt\",\"carrier\":");
            jsonw::push_str(out, c.as_str());
        }
        AuthMethod::Session => out.extend_from_slice(b"\"session\",\"carrier\":\"session\""),
        _ => out.extend_from_slice(b"\"other\",\"carrier\":null"),
    }
    out.extend_from_slice(b",\"expires_at\":");
    push_opt_int(out, u.expires_at);
    out.push(b'}');
}

fn push_opt_int(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(n) => jsonw::push_int(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

fn push_opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => jsonw::push_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

pub(crate) fn push_close(out: &mut Vec<u8>, c: &Close) {
    out.extend_from_slice(b"{\"code\":");
    jsonw::push_int(out, i64::from(c.code_u16()));
    out.extend_from_slice(b",\"reason\":");
    jsonw::push_str(out, c.reason.as_str());
    if let Some(r) = c.retry_after {
        out.extend_from_slice(b",\"retry_after\":");
        jsonw::push_int(out, i64::try_from(r).unwrap_or(i64::MAX));
    }
    out.push(b'}');
}

fn push_route(out: &mut Vec<u8>, auth: &Authenticator, m: &RouteMatch, path: Option<&str>) {
    let Some(route) = auth.routes().get(m.index()) else {
        out.extend_from_slice(b"null,\"params\":{}");
        return;
    };
    jsonw::push_str(out, route.name());
    out.extend_from_slice(b",\"params\":{");
    if let Some(path) = path {
        for (i, name) in route.pattern().param_names().enumerate() {
            if let Some(v) = m.param(path, i) {
                if i > 0 {
                    out.push(b',');
                }
                jsonw::push_str(out, name);
                out.push(b':');
                jsonw::push_str(out, &v);
            }
        }
    }
    out.push(b'}');
}

pub(crate) fn push_decision(
    out: &mut Vec<u8>,
    auth: &Authenticator,
    d: &Decision,
    path: Option<&str>,
) {
    match d {
        Decision::Accept(a) => {
            out.extend_from_slice(b"{\"action\":\"accept\",\"principal\":");
            push_principal(out, &a.principal);
            out.extend_from_slice(b",\"subprotocol\":");
            push_opt_str(out, a.subprotocol.as_ref().map(|s| s.as_str()));
            out.extend_from_slice(b",\"deadline\":");
            push_opt_int(out, a.deadline);
            out.extend_from_slice(b",\"route\":");
            push_route(out, auth, &a.route, path);
            out.push(b'}');
        }
        Decision::Close(c) => {
            out.extend_from_slice(b"{\"action\":\"close\",\"close\":");
            push_close(out, &c.close);
            out.extend_from_slice(b",\"subprotocol\":");
            push_opt_str(out, c.subprotocol.as_ref().map(|s| s.as_str()));
            out.push(b'}');
        }
        Decision::Deny { status } => {
            out.extend_from_slice(b"{\"action\":\"deny\",\"status\":");
            jsonw::push_int(out, i64::from(*status));
            out.push(b'}');
        }
        Decision::AwaitFirstMessage(w) => {
            out.extend_from_slice(b"{\"action\":\"await_message\",\"deadline\":");
            jsonw::push_int(out, w.deadline);
            out.extend_from_slice(b",\"subprotocol\":");
            push_opt_str(out, w.subprotocol.as_ref().map(|s| s.as_str()));
            out.extend_from_slice(b",\"route\":");
            push_route(out, auth, &w.route, path);
            out.push(b'}');
        }
    }
}

fn push_request(out: &mut Vec<u8>, r: &Request) {
    match r {
        Request::Rate { peer } => {
            out.extend_from_slice(b"{\"step\":\"rate\",\"peer\":");
            jsonw::push_str(out, &peer.to_string());
        }
        Request::RateCommit {
            peer,
            expected,
            new,
            idle_at_ms,
        } => {
            out.extend_from_slice(b"{\"step\":\"rate_commit\",\"peer\":");
            jsonw::push_str(out, &peer.to_string());
            out.extend_from_slice(b",\"expected_tat_ms\":");
            jsonw::push_int(out, expected.tat_ms);
            out.extend_from_slice(b",\"new_tat_ms\":");
            jsonw::push_int(out, new.tat_ms);
            out.extend_from_slice(b",\"idle_at_ms\":");
            jsonw::push_int(out, *idle_at_ms);
        }
        Request::Session { key } => {
            out.extend_from_slice(b"{\"step\":\"session\",\"session_key\":");
            jsonw::push_str(out, key);
        }
        Request::User { pk, .. } => {
            out.extend_from_slice(b"{\"step\":\"user\",\"pk\":");
            jsonw::push_str(out, pk.as_str());
        }
        Request::JtiRevoked { jti, user } => {
            out.extend_from_slice(b"{\"step\":\"jti_revoked\",\"jti\":");
            jsonw::push_str(out, jti.as_str());
            out.extend_from_slice(b",\"user\":");
            jsonw::push_str(out, user.as_str());
        }
        Request::Access {
            user,
            relation,
            route,
            param,
            value,
            params,
        } => {
            out.extend_from_slice(b"{\"step\":\"access\",\"relation\":");
            out.extend_from_slice(match relation {
                Relation::Owner => b"\"owner\"",
                Relation::Member => b"\"member\"",
            });
            out.extend_from_slice(b",\"user\":");
            jsonw::push_str(out, user.as_str());
            out.extend_from_slice(b",\"route\":");
            jsonw::push_str(out, route);
            out.extend_from_slice(b",\"param\":");
            jsonw::push_str(out, param);
            out.extend_from_slice(b",\"value\":");
            jsonw::push_str(out, value);
            out.extend_from_slice(b",\"params\":{");
            for (i, (name, v)) in params.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                jsonw::push_str(out, name);
                out.push(b':');
                jsonw::push_str(out, v);
            }
            out.push(b'}');
        }
        _ => out.extend_from_slice(b"{\"step\":\"unknown\""),
    }
    out.push(b'}');
}

/// As `wsauth_handshake_poll`, with the step and its inputs as JSON (one
/// crossing for bindings): `{"step":"rate","peer":"127.0.0.1"}`,
/// `{"step":"rate_commit","peer":…,"expected_tat_ms":…,"new_tat_ms":…,"idle_at_ms":…}`,
/// `{"step":"session","session_key":…}`, `{"step":"user","pk":…}`,
/// `{"step":"jti_revoked","jti":…,"user":…}`,
/// `{"step":"access","relation":"owner"|"member","user":…,"route":…,"param":…,"value":…,"params":{…}}`
/// or `{"step":"done","decision":{…}}` with the decision as in
/// `wsauth_handshake_decision_json`.
///
/// # Safety
/// `handshake` must be a live handle used by no other thread; `out` must
/// point to `out_cap` writable bytes; `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_poll_json(
    handshake: *mut wsauth_handshake,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let mut json = Vec::with_capacity(256);
        match &h.step {
            Step::Lookup(r) => push_request(&mut json, r),
            Step::Done(d) => {
                json.extend_from_slice(b"{\"step\":\"done\",\"decision\":");
                push_decision(&mut json, h.authenticator(), d, h.path());
                json.push(b'}');
            }
        }
        // SAFETY: caller contract above.
        unsafe { dst.write(&json) }
    })
}

/// The decision as JSON: `{"action":"accept","principal":{"user_id":1,
/// "is_staff":…,"is_superuser":…,"is_active":…,"method":"jwt"|"session",
/// "carrier":"query",…,"expires_at":…}|null,"subprotocol":"bearer"|null,
/// "deadline":…|null,"route":"chat","params":{"room":"lobby"}}`,
/// `{"action":"close","close":{"code":4401,"reason":"token expired"},"subprotocol":"bearer"|null}`
/// (a 4429 close adds `"retry_after"` seconds to `close`),
/// `{"action":"deny","status":403}` or `{"action":"await_message",…}`.
/// `WSAUTH_RESULT_INVALID_STATE` while lookups are pending.
///
/// # Safety
/// `handshake` must be a live handle; `out` must point to `out_cap` writable
/// bytes; `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_handshake_decision_json(
    handshake: *const wsauth_handshake,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let d = decided(h)?;
        let mut json = Vec::with_capacity(256);
        push_decision(&mut json, h.authenticator(), d, h.path());
        // SAFETY: caller contract above.
        unsafe { dst.write(&json) }
    })
}
