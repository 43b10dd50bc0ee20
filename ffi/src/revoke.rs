//! Revocations shared on Redis: what to store and publish (the core's
//! rule, [`wsauth_core::RedisConfig::revoke`]); the caller does the I/O
//! (`SET key 1 EX ttl_secs` and `PUBLISH channel message`).

use crate::boundary::{self, OutBuf, MAX_JSON_INPUT};
use crate::errors::{set_last_error, settings_error};
use crate::wsauth_result;
use serde::Deserialize;
use std::ffi::c_char;
use wsauth_core::{RedisConfig, Revoked};

/// What `wsauth_revocation_json` reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeDoc {
    #[serde(default)]
    redis: RedisConfig,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
}

/// The Redis writes that revoke a token id or a user at time `now` (Unix
/// seconds). Request: `{"redis": {<the [redis] table>}, "jti": "…", "exp":
/// <the token's exp, optional>}` or `{"redis": {…}, "user": "<str(pk)>"}`.
/// Answer (not NUL-terminated): `{"key":"…","ttl_secs":N,"channel":"…",
/// "message":"…"}`. A bad id or an already expired token is
/// `WSAUTH_RESULT_INVALID_REQUEST` with the reason in `wsauth_last_error`.
///
/// # Safety
/// `request_json` must point to `request_len` readable bytes; `out` to
/// `out_cap` writable bytes; `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_revocation_json(
    request_json: *const c_char,
    request_len: usize,
    now: i64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        let dst = OutBuf::new(out, out_cap, out_len)?;
        // SAFETY: caller contract above.
        let raw = unsafe { boundary::text(request_json, request_len, MAX_JSON_INPUT) }?;
        let doc: RevokeDoc =
            serde_json::from_str(raw).map_err(|e| settings_error("revocation request", &e))?;
        let what = match (&doc.jti, &doc.user) {
            (Some(j), None) => Revoked::Jti(j),
            (None, Some(u)) => Revoked::User(u),
            _ => {
                set_last_error("revocation request: give exactly one of `jti` and `user`");
                return Err(wsauth_result::WSAUTH_RESULT_INVALID_REQUEST);
            }
        };
        let r = doc.redis.revoke(what, doc.exp, now).map_err(|e| {
            set_last_error(&format!("revocation request: {e}"));
            wsauth_result::WSAUTH_RESULT_INVALID_REQUEST
        })?;
        let json = serde_json::json!({
            "key": r.key,
            "ttl_secs": r.ttl_secs,
            "channel": r.channel,
            "message": r.message,
        });
        let bytes = serde_json::to_vec(&json).map_err(|_| wsauth_result::WSAUTH_RESULT_PANIC)?;
        // SAFETY: caller contract above.
        unsafe { dst.write(&bytes) }
    })
}
