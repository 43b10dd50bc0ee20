//! `wsauth_connection`: an open WebSocket after an accepting decision —
//! token expiry, first-message auth and in-band refresh.

use crate::auth::{
    push_principal, wsauth_close, wsauth_handshake, wsauth_principal, HandshakeHandle,
};
use crate::boundary::{self, OutBuf};
use crate::errors::set_last_error;
use crate::wsauth_result;
use std::ffi::c_char;
use wsauth_core::{ConnState, Connection, MessageAction};

/// An open connection. Use from one thread at a time.
#[allow(non_camel_case_types)]
pub struct wsauth_connection {
    _private: [u8; 0],
}

/// `wsauth_connection_handle_message`: not a control message; deliver it to the application.
pub const WSAUTH_MESSAGE_DELIVER: u32 = 1;
/// A control message, handled (auth accepted — read the new principal with
/// `wsauth_connection_principal` —, deadline extended), or any message after
/// the connection closed; do not deliver it.
pub const WSAUTH_MESSAGE_HANDLED: u32 = 2;
/// Close the connection with the code and reason in `*close_out`.
pub const WSAUTH_MESSAGE_CLOSE: u32 = 3;
/// The auth / refresh message needs lookups: drive `*steps_out` like an
/// upgrade handshake, then call `wsauth_connection_finish` with it.
pub const WSAUTH_MESSAGE_STEPS: u32 = 4;

/// `wsauth_connection_state`: accepted without a credential, waiting for `{"type":"auth"}`.
pub const WSAUTH_CONN_AWAITING_AUTH: u32 = 1;
/// Open.
pub const WSAUTH_CONN_OPEN: u32 = 2;
/// Closed: a close was returned; nothing more happens.
pub const WSAUTH_CONN_CLOSED: u32 = 3;

/// Largest message `wsauth_connection_handle_message` accepts (1 GiB): messages
/// are borrowed, not copied, so only absurd lengths are refused.
const MAX_MESSAGE_INPUT: usize = 1 << 30;

/// What a `wsauth_connection` handle owns: the core's connection, which
/// holds its own authenticator, route and resource.
struct ConnectionHandle {
    conn: Connection,
}

/// A connection for a handshake whose decision accepts
/// (`WSAUTH_ACTION_ACCEPT` or `WSAUTH_ACTION_AWAIT_MESSAGE`). The handshake
/// is not consumed: free it as usual. `WSAUTH_RESULT_INVALID_STATE` when the
/// handshake is undecided, closes or denies, or was started for a message.
///
/// # Safety
/// `handshake` must be a live handle; `connection_out` must point to a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn wsauth_connection_new(
    handshake: *const wsauth_handshake,
    connection_out: *mut *mut wsauth_connection,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        boundary::check_out(connection_out)?;
        let conn = h.connection().ok_or_else(|| {
            set_last_error(
                "connection: the handshake is undecided, does not accept, or is a message's",
            );
            wsauth_result::WSAUTH_RESULT_INVALID_STATE
        })?;
        let handle = ConnectionHandle { conn };
        let ptr = boundary::into_handle::<ConnectionHandle, wsauth_connection>(handle);
        // SAFETY: checked non-NULL above; caller promises it is writable.
        unsafe { connection_out.write(ptr) };
        Ok(())
    })
}

/// Frees a connection. NULL is a no-op.
///
/// # Safety
/// `connection` must be NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn wsauth_connection_free(connection: *mut wsauth_connection) {
    // SAFETY: caller contract above.
    boundary::guard_void(|| unsafe { boundary::free_handle::<ConnectionHandle, _>(connection) });
}

/// `WSAUTH_CONN_*`.
///
/// # Safety
/// `connection` must be a live handle; `state_out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn wsauth_connection_state(
    connection: *const wsauth_connection,
    state_out: *mut u32,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let c = unsafe { boundary::borrow::<ConnectionHandle, _>(connection) }?;
        let state = match c.conn.state() {
            ConnState::AwaitingAuth => WSAUTH_CONN_AWAITING_AUTH,
            ConnState::Open => WSAUTH_CONN_OPEN,
            ConnState::Closed => WSAUTH_CONN_CLOSED,
        };
        // SAFETY: caller contract above.
        unsafe { boundary::write_out(state_out, state) }
    })
}

/// When `wsauth_connection_handle_timeout` must be called next:
/// `*has_deadline_out` is false when there is no deadline (sessions,
/// anonymous principals, closed connections); otherwise `*deadline_out` is
/// the Unix time.
///
/// # Safety
/// `connection` must be a live handle; the out-pointers must be writable.
#[no_mangle]
pub unsafe extern "C" fn wsauth_connection_poll_timeout(
    connection: *const wsauth_connection,
    has_deadline_out: *mut bool,
    deadline_out: *mut i64,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let c = unsafe { boundary::borrow::<ConnectionHandle, _>(connection) }?;
        boundary::check_out(has_deadline_out)?;
        boundary::check_out(deadline_out)?;
        let d = c.conn.poll_timeout();
        // SAFETY: checked non-NULL above; the caller promises it is writable.
        unsafe { has_deadline_out.write(d.is_some()) };
        // SAFETY: as above.
        unsafe { deadline_out.write(d.unwrap_or(0)) };
        Ok(())
    })
}

/// Time passed: `*close_out` receives the close to send (4401 token expired,
/// 4408 no auth message) or a zero code when the connection stays open.
///
/// # Safety
/// `connection` must be a live handle used by no other thread; `close_out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn wsauth_connection_handle_timeout(
    connection: *mut wsauth_connection,
    now: i64,
    close_out: *mut wsauth_close,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let c = unsafe { boundary::borrow_mut::<ConnectionHandle, _>(connection) }?;
        boundary::check_out(close_out)?;
        let close = c
            .conn
            .handle_timeout(boundary::unix_secs(now))
            .map_or(wsauth_close::NONE, |cl| wsauth_close::from_close(&cl));
        // SAFETY: checked non-NULL; caller promises it is writable.
        unsafe { close_out.write(close) };
        Ok(())
    })
}

/// A message arrived at `now` (text or binary payload). `*action_out` is a
/// `WSAUTH_MESSAGE_*`; `*close_out` holds the close for
/// `WSAUTH_MESSAGE_CLOSE` (zeros otherwise); `*steps_out` receives a new
/// handshake for `WSAUTH_MESSAGE_STEPS` (NULL otherwise), owned by the
/// caller. Control messages are `{"type":"auth","token":…}` and
/// `{"type":"refresh","token":…}`.
///
/// # Safety
/// `connection` must be a live handle used by no other thread; `message`
/// must point to `message_len` readable bytes; the out-pointers must be writable.
#[no_mangle]
pub unsafe extern "C" fn wsauth_connection_handle_message(
    connection: *mut wsauth_connection,
    message: *const c_char,
    message_len: usize,
    now: i64,
    action_out: *mut u32,
    close_out: *mut wsauth_close,
    steps_out: *mut *mut wsauth_handshake,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let c = unsafe { boundary::borrow_mut::<ConnectionHandle, _>(connection) }?;
        boundary::check_out(action_out)?;
        boundary::check_out(close_out)?;
        boundary::check_out(steps_out)?;
        // SAFETY: caller contract above.
        let msg = unsafe { boundary::bytes(message, message_len, MAX_MESSAGE_INPUT) }?;
        let (code, close, steps) = match c.conn.handle_message(msg, boundary::unix_secs(now)) {
            MessageAction::Deliver => (WSAUTH_MESSAGE_DELIVER, wsauth_close::NONE, None),
            MessageAction::Close(cl) => (WSAUTH_MESSAGE_CLOSE, wsauth_close::from_close(&cl), None),
            MessageAction::Steps(hs) => (
                WSAUTH_MESSAGE_STEPS,
                wsauth_close::NONE,
                Some(HandshakeHandle::for_message(hs)),
            ),
            // Authenticated, Extended, Ignored (and any later kind): nothing to deliver.
            _ => (WSAUTH_MESSAGE_HANDLED, wsauth_close::NONE, None),
        };
        let steps = steps.map_or(std::ptr::null_mut(), |h| {
            boundary::into_handle::<HandshakeHandle, wsauth_handshake>(h)
        });
        // SAFETY: checked non-NULL above; the caller promises it is writable.
        unsafe { action_out.write(code) };
        // SAFETY: as above.
        unsafe { close_out.write(close) };
        // SAFETY: as above.
        unsafe { steps_out.write(steps) };
        Ok(())
    })
}

/// Applies the decision of a message handshake (from
/// `WSAUTH_MESSAGE_STEPS`, driven to `WSAUTH_STEP_DONE`): `*close_out`
/// receives the close to send, or a zero code when the connection stays open
/// (auth accepted, deadline extended). The handshake is not consumed.
/// `WSAUTH_RESULT_INVALID_STATE` while it still has pending lookups.
///
/// # Safety
/// `connection` must be a live handle used by no other thread; `handshake` a
/// live handle; `close_out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn wsauth_connection_finish(
    connection: *mut wsauth_connection,
    handshake: *const wsauth_handshake,
    now: i64,
    close_out: *mut wsauth_close,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let c = unsafe { boundary::borrow_mut::<ConnectionHandle, _>(connection) }?;
        // SAFETY: caller contract above.
        let h = unsafe { boundary::borrow::<HandshakeHandle, _>(handshake) }?;
        boundary::check_out(close_out)?;
        let d = *h.decision().ok_or_else(|| {
            set_last_error("connection: the message handshake still has pending lookups");
            wsauth_result::WSAUTH_RESULT_INVALID_STATE
        })?;
        let close = match c.conn.finish(&d, boundary::unix_secs(now)) {
            MessageAction::Close(cl) => wsauth_close::from_close(&cl),
            _ => wsauth_close::NONE,
        };
        // SAFETY: checked non-NULL; caller promises it is writable.
        unsafe { close_out.write(close) };
        Ok(())
    })
}

/// Who is connected now, in `*principal_out` (anonymous while awaiting the
/// auth message; the user after an auth message was `WSAUTH_MESSAGE_HANDLED`),
/// with the connection's current deadline (as `wsauth_connection_poll_timeout`).
///
/// # Safety
/// `connection` must be a live handle; `principal_out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn wsauth_connection_principal(
    connection: *const wsauth_connection,
    principal_out: *mut wsauth_principal,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let c = unsafe { boundary::borrow::<ConnectionHandle, _>(connection) }?;
        let p = wsauth_principal::of(c.conn.principal(), c.conn.poll_timeout());
        // SAFETY: caller contract above.
        unsafe { boundary::write_out(principal_out, p) }
    })
}

/// The connection as JSON: `{"state":"open"|"awaiting_auth"|"closed",
/// "principal":{…}|null,"deadline":…|null}` (principal as in
/// `wsauth_handshake_decision_json`).
///
/// # Safety
/// `connection` must be a live handle; `out` must point to `out_cap`
/// writable bytes; `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_connection_json(
    connection: *const wsauth_connection,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let c = unsafe { boundary::borrow::<ConnectionHandle, _>(connection) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let mut json = Vec::with_capacity(256);
        json.extend_from_slice(b"{\"state\":");
        json.extend_from_slice(match c.conn.state() {
            ConnState::AwaitingAuth => b"\"awaiting_auth\"",
            ConnState::Open => b"\"open\"",
            ConnState::Closed => b"\"closed\"",
        });
        json.extend_from_slice(b",\"principal\":");
        push_principal(&mut json, c.conn.principal());
        json.extend_from_slice(b",\"deadline\":");
        match c.conn.poll_timeout() {
            Some(d) => crate::jsonw::push_int(&mut json, d),
            None => json.extend_from_slice(b"null"),
        }
        json.push(b'}');
        // SAFETY: caller contract above.
        unsafe { dst.write(&json) }
    })
}
