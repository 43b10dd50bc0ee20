//! `wsauth_edge_verifier`: the principal header of edge mode, signed by a
//! gateway (`wsauth serve` with `[upstream]`) and verified by the app behind
//! it. The format and the decision are the core's (`wsauth_core::edge`).

use crate::auth::{wsauth_close, wsauth_header};
use crate::boundary::{self, OutBuf, MAX_BYTES_INPUT};
use crate::errors::set_last_error;
use crate::wsauth_result;
use std::ffi::c_char;
use wsauth_core::edge::{
    principal_from_json, EdgeError, PrincipalSigner, DEFAULT_MAX_AGE_MS, MAX_HEADER_BYTES,
};
use wsauth_core::SecretKey;

/// Verifies (and, for tests and gateways outside `wsauth serve`, signs)
/// principal headers with one upstream secret: immutable once built, so one
/// handle may be shared by any number of threads.
#[allow(non_camel_case_types)]
pub struct wsauth_edge_verifier {
    _private: [u8; 0],
}

/// How long a principal header is accepted after it was issued, by default
/// (milliseconds): the gateway's own default.
pub const WSAUTH_EDGE_DEFAULT_MAX_AGE_MS: u64 = 10_000;

/// The longest principal header value a verifier reads; a longer one is
/// refused as `too_large` without being read.
pub const WSAUTH_EDGE_MAX_HEADER_BYTES: usize = 2048;

// The header spells the values out (cbindgen cannot evaluate the core's
// constants); they must stay the core's.
const _: () = assert!(WSAUTH_EDGE_DEFAULT_MAX_AGE_MS == DEFAULT_MAX_AGE_MS);
const _: () = assert!(WSAUTH_EDGE_MAX_HEADER_BYTES == MAX_HEADER_BYTES);

/// Bytes that always suffice for the output of `wsauth_edge_verify_json`
/// and `wsauth_edge_verify_headers_json`.
pub const WSAUTH_EDGE_VERIFY_JSON_CAPACITY: usize = 16384;

/// Builds a verifier for the upstream secret (`secret_len` bytes, not
/// empty: `WSAUTH_RESULT_INVALID_KEY`). On success `*verifier_out` receives
/// a handle to free with `wsauth_edge_verifier_free`.
///
/// # Safety
/// `secret` must point to `secret_len` readable bytes; `verifier_out` to a
/// writable pointer.
#[no_mangle]
pub unsafe extern "C" fn wsauth_edge_verifier_new(
    secret: *const c_char,
    secret_len: usize,
    verifier_out: *mut *mut wsauth_edge_verifier,
) -> wsauth_result {
    boundary::guard(|| {
        boundary::check_out(verifier_out)?;
        // SAFETY: caller contract above.
        let raw = unsafe { boundary::bytes(secret, secret_len, MAX_BYTES_INPUT) }?;
        let signer = PrincipalSigner::new(&SecretKey::new(raw.to_vec())).ok_or_else(|| {
            set_last_error("edge verifier: the upstream secret must not be empty");
            wsauth_result::WSAUTH_RESULT_INVALID_KEY
        })?;
        let handle = boundary::into_handle::<PrincipalSigner, wsauth_edge_verifier>(signer);
        // SAFETY: checked non-NULL above; caller promises it is writable.
        unsafe { verifier_out.write(handle) };
        Ok(())
    })
}

/// Frees a verifier. NULL is a no-op.
///
/// # Safety
/// `verifier` must be NULL or a live handle from `wsauth_edge_verifier_new`,
/// not used by any thread afterwards.
#[no_mangle]
pub unsafe extern "C" fn wsauth_edge_verifier_free(verifier: *mut wsauth_edge_verifier) {
    // SAFETY: caller contract above.
    boundary::guard_void(|| unsafe { boundary::free_handle::<PrincipalSigner, _>(verifier) });
}

/// Verifies a principal header for a connection on `path` (the path as the
/// app sees it, percent-decoded: ASGI's `scope["path"]`) at `now_ms` (Unix
/// milliseconds), issued at most `max_age_ms` before (see
/// `WSAUTH_EDGE_DEFAULT_MAX_AGE_MS`), and writes the core's JSON to `out`:
/// `{"valid":true,"user":{"id":"1","numeric":true,"is_staff":…,
/// "is_superuser":…,"is_active":…,"auth":"jwt","carrier":"query","exp":N}|null,
/// "route":…,"path":…,"issued_at_ms":N}` or
/// `{"valid":false,"error":{"kind":"missing|too_large|malformed|bad_signature|stale|from_the_future|wrong_path","message":…}}`.
/// `header_value` NULL means the header is missing (`header_len` is then
/// ignored); its bytes need not be UTF-8 (such a value is `malformed`). A
/// refused header is a successful call whose JSON says `"valid":false`;
/// close such a connection with `wsauth_edge_refusal`. The output is not
/// NUL-terminated; `WSAUTH_EDGE_VERIFY_JSON_CAPACITY` bytes always suffice.
/// A host that has the request's headers as received (repeated ones
/// included) and its path as bytes passes them to
/// `wsauth_edge_verify_headers_json` instead, which also decides which
/// header to read.
///
/// # Safety
/// `verifier` must be a live handle; `header_value` NULL or pointing to
/// `header_len` readable bytes; `path` to `path_len` readable bytes; `out`
/// to `out_cap` writable bytes; `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_edge_verify_json(
    verifier: *const wsauth_edge_verifier,
    header_value: *const c_char,
    header_len: usize,
    path: *const c_char,
    path_len: usize,
    now_ms: i64,
    max_age_ms: u64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let v = unsafe { boundary::borrow::<PrincipalSigner, _>(verifier) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        // SAFETY: caller contract above.
        let path = unsafe { boundary::text(path, path_len, MAX_BYTES_INPUT) }?;
        let now = boundary::unix_millis(now_ms);
        let json = if header_value.is_null() {
            v.verify_json(None, path, now, max_age_ms)
        } else if let Some(refused) = v.refuse_by_length_json(header_len) {
            // Refused by its length, unread.
            refused
        } else {
            // SAFETY: caller contract above.
            let value = unsafe { boundary::bytes(header_value, header_len, MAX_HEADER_BYTES) }?;
            v.verify_json(Some(value), path, now, max_age_ms)
        };
        // SAFETY: caller contract above.
        unsafe { dst.write(json.as_bytes()) }
    })
}

/// Most headers `wsauth_edge_verify_headers_json` reads in one call.
const MAX_HEADERS: usize = 1 << 16;

/// Verifies the principal header of a request as the app received it, and
/// writes the core's JSON to `out` (the shape of `wsauth_edge_verify_json`).
/// `header` (`header_len` bytes) is the principal header's name; `headers`
/// the request's `headers_len` headers in order, repeated ones repeated
/// (ASGI's `scope["headers"]`); names are compared as bytes, ASCII
/// case-insensitively, and neither names nor values need be UTF-8. `path`
/// (`path_len` bytes) is the path as the app sees it, percent-decoded
/// (ASGI's `scope["path"]`), as bytes, not necessarily UTF-8.
///
/// The core decides: no header of that name is `missing`, more than one
/// `repeated`, a path that is not UTF-8 `wrong_path` (a signed path always
/// is), and one header is verified as `wsauth_edge_verify_json` verifies
/// it, at `now_ms` (Unix milliseconds), issued at most `max_age_ms` before.
/// A value longer than `WSAUTH_EDGE_MAX_HEADER_BYTES` is not read (it is
/// `too_large`). A refused header is a successful call whose JSON says
/// `"valid":false`; close such a connection with `wsauth_edge_refusal`.
/// More than 65536 headers, names of more than 1 MiB in all, or a longer
/// `header` or `path`, are `WSAUTH_RESULT_INPUT_TOO_LARGE`. The output is
/// not NUL-terminated; `WSAUTH_EDGE_VERIFY_JSON_CAPACITY` bytes always
/// suffice.
///
/// # Safety
/// `verifier` must be a live handle; `header` must point to `header_len`
/// readable bytes; `headers` to `headers_len` entries (NULL when
/// `headers_len` is 0), each `name`/`value` to `name_len`/`value_len`
/// readable bytes (a value longer than `WSAUTH_EDGE_MAX_HEADER_BYTES` need
/// only be non-NULL); `path` to `path_len` readable bytes; `out` to
/// `out_cap` writable bytes; `out_len` to a writable `size_t`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn wsauth_edge_verify_headers_json(
    verifier: *const wsauth_edge_verifier,
    header: *const c_char,
    header_len: usize,
    headers: *const wsauth_header,
    headers_len: usize,
    path: *const c_char,
    path_len: usize,
    now_ms: i64,
    max_age_ms: u64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let v = unsafe { boundary::borrow::<PrincipalSigner, _>(verifier) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        // SAFETY: caller contract above.
        let header = unsafe { boundary::bytes(header, header_len, MAX_BYTES_INPUT) }?;
        // SAFETY: caller contract above.
        let path = unsafe { boundary::bytes(path, path_len, MAX_BYTES_INPUT) }?;
        if headers_len > MAX_HEADERS {
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
        let mut pairs: Vec<(&[u8], &[u8])> = Vec::with_capacity(list.len());
        let mut names = 0usize;
        for h in list {
            // SAFETY: caller contract above.
            let name = unsafe { boundary::bytes(h.name, h.name_len, MAX_BYTES_INPUT) }?;
            names = names.saturating_add(name.len());
            if names > MAX_BYTES_INPUT {
                return Err(wsauth_result::WSAUTH_RESULT_INPUT_TOO_LARGE);
            }
            let value: &[u8] = if h.value_len > MAX_HEADER_BYTES {
                if h.value.is_null() {
                    return Err(wsauth_result::WSAUTH_RESULT_NULL_PARAMETER);
                }
                // Not read; the core answers for its length.
                &[0; MAX_HEADER_BYTES + 1]
            } else {
                // SAFETY: caller contract above.
                unsafe { boundary::bytes(h.value, h.value_len, MAX_HEADER_BYTES) }?
            };
            pairs.push((name, value));
        }
        let json = v.verify_headers_json(
            header,
            pairs,
            path,
            boundary::unix_millis(now_ms),
            max_age_ms,
        );
        // SAFETY: caller contract above.
        unsafe { dst.write(json.as_bytes()) }
    })
}

/// Bytes that always suffice for `wsauth_edge_sign`'s output, for a user
/// document of `user_len`, a route of `route_len` and a path of `path_len`
/// bytes.
#[no_mangle]
pub extern "C" fn wsauth_edge_sign_capacity(
    user_len: usize,
    route_len: usize,
    path_len: usize,
) -> usize {
    // Every byte of text may become a six-byte JSON escape; the payload is
    // then base64 (4 bytes per 3), framed by the version, time and MAC.
    let payload = user_len
        .saturating_add(route_len)
        .saturating_add(path_len)
        .saturating_mul(6)
        .saturating_add(256);
    payload.saturating_mul(4) / 3 + 128
}

/// Signs a principal header as a gateway does: the user document `user_json`
/// (`user_len` bytes, the `"user"` object `wsauth_edge_verify_json` answers
/// with; NULL for an anonymous principal) on route `route`, bound to `path`
/// (the path as forwarded, percent-encoded, without the query), issued at
/// `now_ms` (Unix milliseconds). A user document the core would not accept
/// in a header is `WSAUTH_RESULT_INVALID_REQUEST`. The value (ASCII, not
/// NUL-terminated) goes to `out`; `wsauth_edge_sign_capacity` bytes always
/// suffice. For tests and gateways other than `wsauth serve`.
///
/// # Safety
/// `verifier` must be a live handle; `user_json` NULL or pointing to
/// `user_len` readable bytes; `route` to `route_len` and `path` to
/// `path_len` readable bytes; `out` to `out_cap` writable bytes; `out_len`
/// to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_edge_sign(
    verifier: *const wsauth_edge_verifier,
    user_json: *const c_char,
    user_len: usize,
    route: *const c_char,
    route_len: usize,
    path: *const c_char,
    path_len: usize,
    now_ms: i64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let v = unsafe { boundary::borrow::<PrincipalSigner, _>(verifier) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        // SAFETY: caller contract above.
        let route = unsafe { boundary::text(route, route_len, MAX_BYTES_INPUT) }?;
        // SAFETY: caller contract above.
        let path = unsafe { boundary::text(path, path_len, MAX_BYTES_INPUT) }?;
        let principal = if user_json.is_null() {
            principal_from_json(b"null")
        } else {
            // SAFETY: caller contract above.
            let raw = unsafe { boundary::bytes(user_json, user_len, MAX_BYTES_INPUT) }?;
            principal_from_json(raw)
        }
        .map_err(|e| {
            set_last_error(&format!(
                "edge principal: the user document is not one a gateway writes ({})",
                e.kind()
            ));
            wsauth_result::WSAUTH_RESULT_INVALID_REQUEST
        })?;
        let value = v.sign(&principal, route, path, boundary::unix_millis(now_ms));
        // SAFETY: caller contract above.
        unsafe { dst.write(value.as_bytes()) }
    })
}

/// The close that refuses a connection whose principal header was refused
/// (any kind): the core's code (4401) and reason. Accept the WebSocket, then
/// close with it, so browsers can read the code.
///
/// # Safety
/// `close_out` must point to a writable `wsauth_close`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_edge_refusal(close_out: *mut wsauth_close) -> wsauth_result {
    boundary::guard(|| {
        let close = wsauth_close::from_close(&EdgeError::Missing.close());
        // SAFETY: caller contract above (checked non-NULL inside).
        unsafe { boundary::write_out(close_out, close) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_capacity_covers_the_worst_case() {
        let s = PrincipalSigner::new(&SecretKey::new(b"k".to_vec())).unwrap();
        let user = "{\"id\":\"\\u0001é\",\"numeric\":false,\"is_staff\":true,\"is_superuser\":true,\"is_active\":true,\"auth\":\"jwt\",\"carrier\":\"subprotocol\",\"exp\":-9223372036854775808}";
        let p = principal_from_json(user.as_bytes()).unwrap();
        let route = "\u{1}".repeat(50);
        let path = "\u{1}".repeat(500);
        let v = s.sign(
            &p,
            &route,
            &path,
            wsauth_core::UnixTime::from_millis(i64::MAX),
        );
        assert!(v.len() <= wsauth_edge_sign_capacity(user.len(), route.len(), path.len()));
    }
}
