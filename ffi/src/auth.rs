//! `wsauth_authenticator` and `wsauth_handshake`: the whole upgrade decision
//! (origin → route → credential → principal → policy), with the host
//! answering lookups from C.

use crate::boundary::{self, OutBuf, MAX_BYTES_INPUT, MAX_JSON_INPUT};
use crate::errors::{redact_quoted, set_last_error, settings_error};
use crate::jsonw;
use crate::owned::Owned;
use crate::wsauth_result;
use serde::Deserialize;
use std::ffi::c_char;
use std::net::IpAddr;
use std::sync::Arc;
use wsauth_core::{
    Answer, AuthMethod, Authenticator, Close, Config, Decision, Handshake, HandshakeView,
    Principal, Relation, Request, RouteMatch, SecretRef, SessionRow, Step, UserRecord,
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

/// One request header for `wsauth_authenticator_start`. `name` is ASCII
/// (compared case-insensitively); `value` is the raw header bytes.
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

/// `wsauth_handshake_poll`: the handshake is decided; read it with
/// `wsauth_handshake_decision` / `wsauth_handshake_decision_json`.
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

/// Request field: the session key, `str(pk)`, jti, or (access steps) the user id.
pub const WSAUTH_FIELD_KEY: u32 = 1;
/// Request field (access steps): the route's name.
pub const WSAUTH_FIELD_ROUTE: u32 = 2;
/// Request field (access steps): the route parameter naming the resource.
pub const WSAUTH_FIELD_PARAM: u32 = 3;
/// Request field (access steps): the resource, percent-decoded.
pub const WSAUTH_FIELD_VALUE: u32 = 4;

/// Decision action: accept the upgrade.
pub const WSAUTH_ACTION_ACCEPT: u32 = 1;
/// Decision action: accept, then close at once with the close code (so browsers see it).
pub const WSAUTH_ACTION_CLOSE: u32 = 2;
/// Decision action: refuse the upgrade with the HTTP status in `code` (origin not allowed).
pub const WSAUTH_ACTION_DENY: u32 = 3;
/// Decision action: accept and wait for `{"type":"auth","token":…}` as the first message.
pub const WSAUTH_ACTION_AWAIT_MESSAGE: u32 = 4;

/// The request a handshake was started with, owned by its handle.
pub(crate) struct OwnedView {
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    peer: Option<IpAddr>,
}

/// Borrowed header pairs, as `HandshakeView` takes them.
type HeaderRefs = [(&'static str, &'static [u8])];

/// What a `wsauth_handshake` handle owns.
///
/// `hs` borrows from `view`, `msg` and `auth`: those are never changed or
/// freed while `hs` lives, and fields drop in declaration order, so `hs`
/// goes first.
pub(crate) struct HandshakeHandle {
    hs: Handshake<'static>,
    view: Option<Owned<OwnedView>>,
    _refs: Option<Owned<HeaderRefs>>,
    _msg: Option<Owned<[u8]>>,
    auth: Arc<Authenticator>,
}

impl HandshakeHandle {
    /// Starts an upgrade handshake on an owned copy of the request.
    fn start(auth: Arc<Authenticator>, view: OwnedView, now: i64) -> Self {
        let view = Owned::new(Box::new(view));
        // SAFETY: `view` is kept in the returned handle next to `hs`, which is dropped first.
        let v: &'static OwnedView = unsafe { view.extend() };
        let refs: Vec<(&'static str, &'static [u8])> = v
            .headers
            .iter()
            .map(|(n, val)| (n.as_str(), val.as_slice()))
            .collect();
        let refs = Owned::new(refs.into_boxed_slice());
        // SAFETY: as above, `refs` lives in the handle beside `hs`.
        let r: &'static HeaderRefs = unsafe { refs.extend() };
        // SAFETY: the handle holds a clone of the Arc, so the authenticator
        // outlives `hs`; it is never mutated.
        let a: &'static Authenticator = unsafe { &*Arc::as_ptr(&auth) };
        let mut hv = HandshakeView::new(&v.path, &v.query, r);
        if let Some(peer) = v.peer {
            hv = hv.with_peer(peer);
        }
        let hs = a.start(&hv, now);
        HandshakeHandle {
            hs,
            view: Some(view),
            _refs: Some(refs),
            _msg: None,
            auth,
        }
    }

    /// Wraps a handshake the connection started for an in-band message.
    pub(crate) fn for_message(
        hs: Handshake<'static>,
        msg: Owned<[u8]>,
        auth: Arc<Authenticator>,
    ) -> Self {
        HandshakeHandle {
            hs,
            view: None,
            _refs: None,
            _msg: Some(msg),
            auth,
        }
    }

    pub(crate) fn path(&self) -> Option<&str> {
        self.view.as_ref().map(|v| v.get().path.as_str())
    }

    pub(crate) fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    pub(crate) fn decision(&self) -> Option<&Decision> {
        self.hs.decision()
    }
}

// ---------------------------------------------------------------------------
// Configuration

fn resolve_secret(r: &SecretRef) -> Option<String> {
    match r {
        SecretRef::Value(v) => Some(v.clone()),
        SecretRef::Env(name) => std::env::var(name).ok(),
        SecretRef::File(path) => std::fs::read_to_string(path).ok().map(|mut s| {
            while s.ends_with('\n') || s.ends_with('\r') {
                s.pop();
            }
            s
        }),
    }
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
/// `credentials`, `origins`, `routes`, `limits`). Secrets are given as
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
        let auth = Arc::new(build_authenticator(raw)?);
        let handle = boundary::into_handle::<Arc<Authenticator>, wsauth_authenticator>(auth);
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
    boundary::guard_void(|| unsafe {
        boundary::free_handle::<Arc<Authenticator>, _>(authenticator)
    });
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

/// Starts deciding an upgrade request at `now`: `path` is the request path
/// without the query, still percent-encoded; `query` the raw query string
/// (without `?`); `headers` the request headers in order (repeated headers
/// repeated); `peer` the client's IP address as text (may be empty). The
/// library copies what it needs. On success `*handshake_out` receives a
/// handle to drive with `wsauth_handshake_poll` and free with
/// `wsauth_handshake_free`.
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
        let auth = unsafe { boundary::borrow::<Arc<Authenticator>, _>(authenticator) }?;
        boundary::check_out(handshake_out)?;
        // SAFETY: caller contract above (each pair below).
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
        let mut owned_headers = Vec::with_capacity(list.len());
        let mut total = 0usize;
        for h in list {
            // SAFETY: caller contract above.
            let name = unsafe { boundary::text(h.name, h.name_len, 1024) }?;
            // SAFETY: caller contract above.
            let value = unsafe { boundary::bytes(h.value, h.value_len, MAX_BYTES_INPUT) }?;
            total = total.saturating_add(name.len()).saturating_add(value.len());
            if total > MAX_BYTES_INPUT {
                return Err(wsauth_result::WSAUTH_RESULT_INPUT_TOO_LARGE);
            }
            owned_headers.push((name.to_owned(), value.to_vec()));
        }
        let view = OwnedView {
            path: path.to_owned(),
            query: query.to_owned(),
            headers: owned_headers,
            peer: parse_peer(peer)?,
        };
        write_handle(
            handshake_out,
            HandshakeHandle::start(Arc::clone(auth), view, now),
        );
        Ok(())
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
        let auth = unsafe { boundary::borrow::<Arc<Authenticator>, _>(authenticator) }?;
        boundary::check_out(handshake_out)?;
        // SAFETY: caller contract above.
        let raw = unsafe { boundary::text(request_json, request_len, MAX_JSON_INPUT) }?;
        let doc: StartDoc = serde_json::from_str(raw).map_err(|e| settings_error("request", &e))?;
        let mut headers = Vec::with_capacity(doc.headers.len());
        for (name, value) in doc.headers {
            let bytes = latin1_bytes(&value).ok_or_else(|| {
                set_last_error(
                    "request: a header value has a character above U+00FF (send Latin-1 text)",
                );
                wsauth_result::WSAUTH_RESULT_INVALID_REQUEST
            })?;
            headers.push((name, bytes));
        }
        let view = OwnedView {
            path: doc.path,
            query: doc.query,
            headers,
            peer: parse_peer(doc.peer.as_deref().unwrap_or(""))?,
        };
        write_handle(
            handshake_out,
            HandshakeHandle::start(Arc::clone(auth), view, now),
        );
        Ok(())
    })
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

fn step_code(r: &Request<'_>) -> u32 {
    match r {
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

/// Advances the handshake and writes what it needs next to `*step_out`:
/// `WSAUTH_STEP_DONE` or one of the `WSAUTH_STEP_*` lookups, whose inputs
/// `wsauth_handshake_request_field` reads. Polling again without answering
/// returns the same step.
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
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        boundary::check_out(step_out)?;
        let code = match h.hs.poll() {
            Step::Done(_) => WSAUTH_STEP_DONE,
            Step::Lookup(r) => step_code(&r),
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

fn request_field<'r>(r: &Request<'r>, field: u32) -> Option<&'r str> {
    match (r, field) {
        (Request::Session { key }, WSAUTH_FIELD_KEY) => Some(key),
        (Request::User { pk, .. }, WSAUTH_FIELD_KEY) => Some(pk),
        (Request::JtiRevoked { jti }, WSAUTH_FIELD_KEY) => Some(jti),
        (Request::Access { user, .. }, WSAUTH_FIELD_KEY) => Some(user),
        (Request::Access { route, .. }, WSAUTH_FIELD_ROUTE) => Some(route),
        (Request::Access { param, .. }, WSAUTH_FIELD_PARAM) => Some(param),
        (Request::Access { value, .. }, WSAUTH_FIELD_VALUE) => Some(value),
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
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let Step::Lookup(r) = h.hs.poll() else {
            return Err(wsauth_result::WSAUTH_RESULT_INVALID_STATE);
        };
        let value = request_field(&r, field).ok_or(wsauth_result::WSAUTH_RESULT_INVALID_STATE)?;
        // SAFETY: caller contract above.
        unsafe { dst.write(value.as_bytes()) }
    })
}

/// Which answers the pending step accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Session,
    User,
    Bool,
}

fn pending(h: &mut HandshakeHandle) -> Result<Expect, wsauth_result> {
    match h.hs.poll() {
        Step::Done(_) => Err(wsauth_result::WSAUTH_RESULT_INVALID_STATE),
        Step::Lookup(Request::Session { .. }) => Ok(Expect::Session),
        Step::Lookup(Request::User { .. }) => Ok(Expect::User),
        Step::Lookup(_) => Ok(Expect::Bool),
    }
}

fn answer(
    h: &mut HandshakeHandle,
    want: Option<Expect>,
    a: Answer<'_>,
) -> Result<(), wsauth_result> {
    let have = pending(h)?;
    if want.is_some_and(|w| w != have) {
        set_last_error("handshake: this answer does not fit the pending step");
        return Err(wsauth_result::WSAUTH_RESULT_INVALID_STATE);
    }
    h.hs.answer(a);
    Ok(())
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
        answer(h, Some(Expect::Session), Answer::Session(Some(row)))
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
        answer(h, Some(Expect::User), Answer::User(Some(rec)))
    })
}

/// Answers `WSAUTH_STEP_SESSION` or `WSAUTH_STEP_USER` with "there is none".
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
            Expect::Session => answer(h, None, Answer::Session(None)),
            Expect::User => answer(h, None, Answer::User(None)),
            Expect::Bool => {
                set_last_error("handshake: this step needs a yes/no answer");
                Err(wsauth_result::WSAUTH_RESULT_INVALID_STATE)
            }
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
        let a = match h.hs.poll() {
            Step::Lookup(Request::JtiRevoked { .. }) => Answer::Revoked(value),
            Step::Lookup(Request::Access { .. }) => Answer::Access(value),
            _ => {
                set_last_error("handshake: this answer does not fit the pending step");
                return Err(wsauth_result::WSAUTH_RESULT_INVALID_STATE);
            }
        };
        answer(h, Some(Expect::Bool), a)
    })
}

/// Answers any pending step with "the lookup failed" (database or cache
/// down): the decision becomes a 1013 close, never a 4401.
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
        answer(h, None, Answer::Failed)
    })
}

fn action_of(d: &Decision) -> (u32, wsauth_close) {
    match d {
        Decision::Accept(_) => (WSAUTH_ACTION_ACCEPT, wsauth_close::NONE),
        Decision::Close(c) => (WSAUTH_ACTION_CLOSE, wsauth_close::from_close(c)),
        Decision::Deny { status } => (WSAUTH_ACTION_DENY, wsauth_close::status(*status)),
        Decision::AwaitFirstMessage(_) => (WSAUTH_ACTION_AWAIT_MESSAGE, wsauth_close::NONE),
    }
}

/// The decision: `*action_out` is a `WSAUTH_ACTION_*`; `*close_out` holds the
/// close code and reason for `WSAUTH_ACTION_CLOSE`, the HTTP status (in
/// `code`) for `WSAUTH_ACTION_DENY`, and zeros otherwise.
/// `WSAUTH_RESULT_INVALID_STATE` while lookups are pending.
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
        let d = h
            .decision()
            .ok_or(wsauth_result::WSAUTH_RESULT_INVALID_STATE)?;
        let (action, close) = action_of(d);
        // SAFETY: checked non-NULL above; the caller promises it is writable.
        unsafe { action_out.write(action) };
        // SAFETY: as above.
        unsafe { close_out.write(close) };
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

/// `subprotocol` is the handshake's answer to the client's offer
/// (`Handshake::subprotocol`): written for a close decision too, since a
/// browser that offered subprotocols fails an accept without one (1006).
pub(crate) fn push_decision(
    out: &mut Vec<u8>,
    auth: &Authenticator,
    d: &Decision,
    path: Option<&str>,
    subprotocol: Option<&str>,
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
            push_close(out, c);
            out.extend_from_slice(b",\"subprotocol\":");
            push_opt_str(out, subprotocol);
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

fn push_request(out: &mut Vec<u8>, r: &Request<'_>) {
    match r {
        Request::Session { key } => {
            out.extend_from_slice(b"{\"step\":\"session\",\"session_key\":");
            jsonw::push_str(out, key);
        }
        Request::User { pk, .. } => {
            out.extend_from_slice(b"{\"step\":\"user\",\"pk\":");
            jsonw::push_str(out, pk);
        }
        Request::JtiRevoked { jti } => {
            out.extend_from_slice(b"{\"step\":\"jti_revoked\",\"jti\":");
            jsonw::push_str(out, jti);
        }
        Request::Access {
            user,
            relation,
            route,
            param,
            value,
        } => {
            out.extend_from_slice(b"{\"step\":\"access\",\"relation\":");
            out.extend_from_slice(match relation {
                Relation::Owner => b"\"owner\"",
                Relation::Member => b"\"member\"",
            });
            out.extend_from_slice(b",\"user\":");
            jsonw::push_str(out, user);
            out.extend_from_slice(b",\"route\":");
            jsonw::push_str(out, route);
            out.extend_from_slice(b",\"param\":");
            jsonw::push_str(out, param);
            out.extend_from_slice(b",\"value\":");
            jsonw::push_str(out, value);
        }
        _ => out.extend_from_slice(b"{\"step\":\"unknown\""),
    }
    out.push(b'}');
}

/// As `wsauth_handshake_poll`, with the step and its inputs as JSON (one
/// crossing for bindings): `{"step":"session","session_key":…}`,
/// `{"step":"user","pk":…}`, `{"step":"jti_revoked","jti":…}`,
/// `{"step":"access","relation":"owner"|"member","user":…,"route":…,"param":…,"value":…}`
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
        let h = unsafe { boundary::borrow_mut::<HandshakeHandle, _>(handshake) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let mut json = Vec::with_capacity(256);
        let decided = match h.hs.poll() {
            Step::Lookup(r) => {
                push_request(&mut json, &r);
                None
            }
            Step::Done(d) => Some(d),
        };
        if let Some(d) = decided {
            json.extend_from_slice(b"{\"step\":\"done\",\"decision\":");
            push_decision(&mut json, &h.auth, &d, h.path(), h.hs.subprotocol());
            json.push(b'}');
        }
        // SAFETY: caller contract above.
        unsafe { dst.write(&json) }
    })
}

/// The decision as JSON: `{"action":"accept","principal":{"user_id":1,
/// "is_staff":…,"is_superuser":…,"is_active":…,"method":"jwt"|"session",
/// "carrier":"query",…,"expires_at":…}|null,"subprotocol":"bearer"|null,
/// "deadline":…|null,"route":"chat","params":{"room":"lobby"}}`,
/// `{"action":"close","close":{"code":4401,"reason":"token expired"},
/// "subprotocol":"bearer"|null}` (accept with that subprotocol, then close),
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
        let d = h
            .decision()
            .ok_or(wsauth_result::WSAUTH_RESULT_INVALID_STATE)?;
        let mut json = Vec::with_capacity(256);
        push_decision(&mut json, &h.auth, d, h.path(), h.hs.subprotocol());
        // SAFETY: caller contract above.
        unsafe { dst.write(&json) }
    })
}
