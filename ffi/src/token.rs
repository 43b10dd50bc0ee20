//! `wsauth_token_verifier`: SimpleJWT's `AccessToken(token)` decision.

use crate::boundary::{self, OutBuf, MAX_BYTES_INPUT, MAX_JSON_INPUT};
use crate::errors::{set_last_error, settings_error};
use crate::jsonw;
use crate::wsauth_result;
use serde::Deserialize;
use std::ffi::c_char;
use wsauth_core::{
    Algorithm, ClaimValue, ErrorKind, InlineStr, JwtSettings, MintRequest, SecretKey, TokenVerifier,
};

/// A verifier for SimpleJWT access tokens: immutable once built, so one
/// handle may be shared by any number of threads.
#[allow(non_camel_case_types)]
pub struct wsauth_token_verifier {
    _private: [u8; 0],
}

/// The settings document `wsauth_token_verifier_new` reads. Names follow
/// SimpleJWT's settings, lower-cased.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSettingsDoc {
    secret: String,
    #[serde(default)]
    fallback_secrets: Vec<String>,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    leeway: u32,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    user_id_claim: Option<String>,
    #[serde(default)]
    token_type_claim: Option<String>,
    #[serde(default)]
    jti_claim: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    revoke_token_claim: Option<String>,
    #[serde(default)]
    max_token_bytes: Option<usize>,
}

fn build_verifier(doc: TokenSettingsDoc) -> Result<TokenVerifier, wsauth_result> {
    let mut settings = JwtSettings::default();
    if let Some(name) = doc.algorithm.as_deref() {
        settings.algorithm = Algorithm::from_name(name).ok_or_else(|| {
            set_last_error("settings: algorithm must be HS256, HS384 or HS512");
            wsauth_result::WSAUTH_RESULT_INVALID_SETTINGS
        })?;
    }
    settings.leeway = doc.leeway;
    settings.audience = doc.audience;
    settings.issuer = doc.issuer;
    let set = |dst: &mut String, src: Option<String>| {
        if let Some(s) = src {
            *dst = s;
        }
    };
    set(&mut settings.user_id_claim, doc.user_id_claim);
    set(&mut settings.token_type_claim, doc.token_type_claim);
    set(&mut settings.jti_claim, doc.jti_claim);
    set(&mut settings.token_type, doc.token_type);
    set(&mut settings.revoke_token_claim, doc.revoke_token_claim);
    if let Some(max) = doc.max_token_bytes {
        settings.max_token_bytes = max;
    }
    let key_err = |e: wsauth_core::KeyError| {
        set_last_error(&format!("settings: {e}"));
        wsauth_result::WSAUTH_RESULT_INVALID_KEY
    };
    TokenVerifier::new(settings, SecretKey::from(doc.secret.as_str()))
        .and_then(|v| {
            v.with_fallback_keys(
                doc.fallback_secrets
                    .iter()
                    .map(|k| SecretKey::from(k.as_str())),
            )
        })
        .map_err(key_err)
}

/// Error kinds as numbers, for `wsauth_token_verifier_check`: 0 is "valid",
/// then the contract's kinds in order (`wsauth_error_kind_name` gives the
/// names).
pub const WSAUTH_KIND_NONE: u32 = 0;
/// `malformed`.
pub const WSAUTH_KIND_MALFORMED: u32 = 1;
/// `bad_signature`.
pub const WSAUTH_KIND_BAD_SIGNATURE: u32 = 2;
/// `bad_algorithm`.
pub const WSAUTH_KIND_BAD_ALGORITHM: u32 = 3;
/// `expired`.
pub const WSAUTH_KIND_EXPIRED: u32 = 4;
/// `not_yet_valid`.
pub const WSAUTH_KIND_NOT_YET_VALID: u32 = 5;
/// `wrong_token_type`.
pub const WSAUTH_KIND_WRONG_TOKEN_TYPE: u32 = 6;
/// `missing_claim`.
pub const WSAUTH_KIND_MISSING_CLAIM: u32 = 7;
/// `bad_audience`.
pub const WSAUTH_KIND_BAD_AUDIENCE: u32 = 8;
/// `bad_issuer`.
pub const WSAUTH_KIND_BAD_ISSUER: u32 = 9;
/// `too_large`.
pub const WSAUTH_KIND_TOO_LARGE: u32 = 10;
/// Any other kind (sessions and users): see `wsauth_error_kind_name`.
pub const WSAUTH_KIND_OTHER: u32 = 255;

/// The number of an error kind (see `WSAUTH_KIND_*`): its position in the
/// contract's list, plus one.
pub(crate) fn kind_number(kind: ErrorKind) -> u32 {
    ErrorKind::ALL
        .iter()
        .position(|k| *k == kind)
        .and_then(|i| u32::try_from(i + 1).ok())
        .unwrap_or(WSAUTH_KIND_OTHER)
}

/// The contract name of error kind number `kind` (`"expired"`, …), `"valid"`
/// for 0, or `"unknown"`: a static NUL-terminated string, never NULL.
#[no_mangle]
pub extern "C" fn wsauth_error_kind_name(kind: u32) -> *const c_char {
    const NAMES: [&std::ffi::CStr; 17] = [
        c"valid",
        c"malformed",
        c"bad_signature",
        c"bad_algorithm",
        c"expired",
        c"not_yet_valid",
        c"wrong_token_type",
        c"missing_claim",
        c"bad_audience",
        c"bad_issuer",
        c"too_large",
        c"revoked",
        c"bad_session",
        c"session_expired",
        c"session_hash_mismatch",
        c"user_not_found",
        c"user_inactive",
    ];
    usize::try_from(kind)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or(c"unknown".as_ptr(), |n| n.as_ptr())
}

/// The decision alone, for hot paths: `*kind_out` receives
/// `WSAUTH_KIND_NONE` (0) for a valid token, or the error kind's number.
/// Use `wsauth_token_verifier_check_json` for the claims and the message.
///
/// # Safety
/// `verifier` must be a live handle; `token` must point to `token_len`
/// readable bytes; `kind_out` to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_token_verifier_check(
    verifier: *const wsauth_token_verifier,
    token: *const c_char,
    token_len: usize,
    now: i64,
    kind_out: *mut u32,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let v = unsafe { boundary::borrow::<TokenVerifier, _>(verifier) }?;
        boundary::check_out(kind_out)?;
        let kind = if token_len > v.settings().max_token_bytes.min(MAX_BYTES_INPUT) {
            kind_number(ErrorKind::TooLarge)
        } else {
            // SAFETY: caller contract above.
            let token = unsafe { boundary::text(token, token_len, MAX_BYTES_INPUT) }?;
            match v.verify(token, now) {
                Ok(_) => WSAUTH_KIND_NONE,
                Err(e) => kind_number(e.kind()),
            }
        };
        // SAFETY: checked non-NULL above; caller promises it is writable.
        unsafe { kind_out.write(kind) };
        Ok(())
    })
}

/// The user id of a valid token is absent (the token has no user id claim).
pub const WSAUTH_USER_ID_ABSENT: u32 = 0;
/// The user id is a string: its UTF-8 text is the call's text output.
pub const WSAUTH_USER_ID_STR: u32 = 1;
/// The user id is an integer within `int64_t`: `user_id_int`.
pub const WSAUTH_USER_ID_INT: u32 = 2;
/// Any other user id (a float, a boolean, null, a larger integer, a long
/// string, an object or an array): the text output is its JSON, written as
/// `wsauth_token_verifier_check_json` writes it.
pub const WSAUTH_USER_ID_JSON: u32 = 3;
/// The user id is a string holding an integer in canonical decimal (what
/// Python's `str(int)` writes: `"42"`, `"-7"`; SimpleJWT writes `str(pk)`):
/// the string is `user_id_int` written in decimal; no text output.
pub const WSAUTH_USER_ID_DECIMAL_STR: u32 = 4;

/// `s` when it is exactly the decimal form of an `i64` (no sign but a
/// leading `-`, no leading zero, not `-0`).
fn canonical_decimal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let first = *digits.as_bytes().first()?;
    if digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if first == b'0' && (digits.len() > 1 || digits.len() != s.len()) {
        return None;
    }
    s.parse().ok()
}

/// What `wsauth_token_verifier_check_result` writes: the decision and the
/// user id of `wsauth_token_verifier_check_json`'s answer, without the claims.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct wsauth_token_check {
    /// `WSAUTH_KIND_NONE` (0) for a valid token, else the error kind's number
    /// (`wsauth_error_kind_name` gives its name).
    pub kind: u32,
    /// For a valid token, how its user id is given: `WSAUTH_USER_ID_*`.
    pub user_id_type: u32,
    /// The user id, when `user_id_type` is `WSAUTH_USER_ID_INT`; else 0.
    pub user_id_int: i64,
    /// A valid token's `exp` (whole Unix seconds); else 0.
    pub exp: i64,
}

/// The decision with the user id and, for a rejection, the message — the
/// answer of `wsauth_token_verifier_check_json` without its claims, so a
/// caller that reads the claims only on demand pays only for the decision.
/// The same `(token, now)` given to `wsauth_token_verifier_check_json`
/// yields the same decision, user id, message and the claims.
/// `wsauth_token_verifier_check_result_payload` also hands out the valid
/// token's decoded payload, to read the claims from without verifying again.
///
/// `*result_out` receives the kind, the user id's type and, for an integer,
/// its value. The text output `out` receives, for a valid token, the user id
/// (`WSAUTH_USER_ID_STR`: its UTF-8 text; `WSAUTH_USER_ID_JSON`: its JSON;
/// otherwise nothing), and for a rejected token the message (`"Token is
/// expired"`, …); `*out_len` its length (not NUL-terminated). A text longer
/// than `out_cap` gives `WSAUTH_RESULT_BUFFER_TOO_SMALL` with the length
/// needed in `*out_len`, and `*result_out` untouched.
///
/// # Safety
/// `verifier` must be a live handle; `token` must point to `token_len`
/// readable bytes; `result_out` to a writable `wsauth_token_check`; `out`
/// to `out_cap` writable bytes; `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_token_verifier_check_result(
    verifier: *const wsauth_token_verifier,
    token: *const c_char,
    token_len: usize,
    now: i64,
    result_out: *mut wsauth_token_check,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let v = unsafe { boundary::borrow::<TokenVerifier, _>(verifier) }?;
        boundary::check_out(result_out)?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        // SAFETY: caller contract above.
        unsafe { check_result_into(v, token, token_len, now, result_out, &dst, None) }
    })
}

/// `wsauth_token_verifier_check_result`, also handing out a valid token's
/// decoded payload, so that its claims can be read without verifying the
/// token again: the payload segment base64url-decoded, byte for byte what
/// PyJWT passes to `json.loads` (duplicate keys, `NaN`, big integers and
/// escapes as signed; a JSON object, so at least 2 bytes).
///
/// The payload output is optional and never fails the call: for a valid
/// token `*payload_len` receives the payload's length, and the payload is
/// written to `payload` when it fits (`*payload_len <= payload_cap`);
/// otherwise `payload` is left untouched (read the claims with
/// `wsauth_token_verifier_claims_json`, or call again with a larger
/// buffer). `token_len` bytes always suffice (a decoded payload is shorter
/// than its token), and so do 3/4 of `max_token_bytes`. For a rejected
/// token `*payload_len` receives 0. `payload` may be NULL when
/// `payload_cap` is 0. On any result other than `WSAUTH_RESULT_OK`
/// (including a text output that does not fit) neither `payload` nor
/// `*payload_len` is written.
///
/// # Safety
/// As `wsauth_token_verifier_check_result`; `payload` must point to
/// `payload_cap` writable bytes, not overlapping `out`, and `payload_len`
/// to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_token_verifier_check_result_payload(
    verifier: *const wsauth_token_verifier,
    token: *const c_char,
    token_len: usize,
    now: i64,
    result_out: *mut wsauth_token_check,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
    payload: *mut c_char,
    payload_cap: usize,
    payload_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let v = unsafe { boundary::borrow::<TokenVerifier, _>(verifier) }?;
        boundary::check_out(result_out)?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let payload_dst = OutBuf::new(payload, payload_cap, payload_len)?;
        // SAFETY: caller contract above.
        unsafe {
            check_result_into(
                v,
                token,
                token_len,
                now,
                result_out,
                &dst,
                Some(&payload_dst),
            )
        }
    })
}

/// The body of `wsauth_token_verifier_check_result[_payload]`: decides the
/// token, then writes the text, the payload (when asked for) and the
/// result, in that order, so that a text that does not fit writes nothing
/// else.
///
/// # Safety
/// `token` must point to `token_len` readable bytes; `result_out` (checked
/// non-NULL) to a writable `wsauth_token_check`; `dst` and `payload` are
/// buffers as `OutBuf::write` requires.
unsafe fn check_result_into(
    v: &TokenVerifier,
    token: *const c_char,
    token_len: usize,
    now: i64,
    result_out: *mut wsauth_token_check,
    dst: &OutBuf,
    payload: Option<&OutBuf>,
) -> Result<(), wsauth_result> {
    let mut result = wsauth_token_check {
        kind: WSAUTH_KIND_NONE,
        user_id_type: WSAUTH_USER_ID_ABSENT,
        user_id_int: 0,
        exp: 0,
    };
    let rejected = |result: wsauth_token_check, message: &[u8]| {
        // SAFETY: the caller's contract.
        unsafe { dst.write(message) }?;
        if let Some(p) = payload {
            // SAFETY: the caller's contract.
            unsafe { p.write(b"") }?;
        }
        // SAFETY: checked non-NULL by the caller, writable per its contract.
        unsafe { result_out.write(result) };
        Ok(())
    };
    if token_len > v.settings().max_token_bytes.min(MAX_BYTES_INPUT) {
        // As `wsauth_token_verifier_check_json`: never read the bytes.
        result.kind = kind_number(ErrorKind::TooLarge);
        return rejected(result, b"Token is too large");
    }
    // SAFETY: the caller's contract.
    let token = unsafe { boundary::text(token, token_len, MAX_BYTES_INPUT) }?;
    let t = match v.verify(token, now) {
        Ok(t) => t,
        Err(e) => {
            result.kind = kind_number(e.kind());
            return rejected(result, e.message().as_bytes());
        }
    };
    result.exp = t.exp();
    let json: String;
    let text: &[u8] = match t.user_id() {
        None => b"",
        Some(ClaimValue::Str(s)) => match canonical_decimal(s.as_str()) {
            Some(i) => {
                result.user_id_type = WSAUTH_USER_ID_DECIMAL_STR;
                result.user_id_int = i;
                b""
            }
            None => {
                result.user_id_type = WSAUTH_USER_ID_STR;
                s.as_str().as_bytes()
            }
        },
        Some(ClaimValue::Int(i)) => {
            result.user_id_type = WSAUTH_USER_ID_INT;
            result.user_id_int = *i;
            b""
        }
        Some(_) => {
            // The writer of `check_json`, for the values whose JSON form is
            // not a plain text or number.
            match t.claim_json(&v.settings().user_id_claim, true) {
                Some(text) => {
                    result.user_id_type = WSAUTH_USER_ID_JSON;
                    json = text;
                    json.as_bytes()
                }
                None => b"",
            }
        }
    };
    // SAFETY: the caller's contract.
    unsafe { dst.write(text) }?;
    if let Some(p) = payload {
        // A payload that does not fit is not an error of the call: its
        // length is in `*payload_len`, the buffer untouched.
        // SAFETY: the caller's contract.
        match t.with_payload_bytes(|bytes| unsafe { p.write(bytes) }) {
            Some(Ok(()) | Err(wsauth_result::WSAUTH_RESULT_BUFFER_TOO_SMALL)) => {}
            Some(Err(e)) => return Err(e),
            // A verified token's payload always decodes.
            None => return Err(wsauth_result::WSAUTH_RESULT_PANIC),
        }
    }
    // SAFETY: checked non-NULL by the caller, writable per its contract.
    unsafe { result_out.write(result) };
    Ok(())
}

/// The claims of a token `wsauth_token_verifier_check_result` accepted:
/// the `"claims"` member of `wsauth_token_verifier_check_json`'s answer for
/// the same token and clock, alone (the decision is made again; a token it
/// rejects is `WSAUTH_RESULT_INVALID_REQUEST`, with the kind in
/// `wsauth_last_error`). The output is not NUL-terminated; `*out_len`
/// receives its length; `wsauth_token_check_json_capacity(token_len)` bytes
/// always suffice.
///
/// # Safety
/// `verifier` must be a live handle; `token` must point to `token_len`
/// readable bytes; `out` to `out_cap` writable bytes; `out_len` to a
/// writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_token_verifier_claims_json(
    verifier: *const wsauth_token_verifier,
    token: *const c_char,
    token_len: usize,
    now: i64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let v = unsafe { boundary::borrow::<TokenVerifier, _>(verifier) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let rejected = |kind: ErrorKind| {
            set_last_error(&format!(
                "claims: the token is rejected ({})",
                kind.as_str()
            ));
            wsauth_result::WSAUTH_RESULT_INVALID_REQUEST
        };
        if token_len > v.settings().max_token_bytes.min(MAX_BYTES_INPUT) {
            return Err(rejected(ErrorKind::TooLarge));
        }
        // SAFETY: caller contract above.
        let token = unsafe { boundary::text(token, token_len, MAX_BYTES_INPUT) }?;
        let verified = v.verify(token, now).map_err(|e| rejected(e.kind()))?;
        // SAFETY: caller contract above.
        unsafe { dst.write(verified.payload_json(true).as_bytes()) }
    })
}

/// Largest output `wsauth_token_verifier_check_json` can write for a token
/// of `token_len` bytes: a buffer this large never gets
/// `WSAUTH_RESULT_BUFFER_TOO_SMALL`.
#[no_mangle]
pub extern "C" fn wsauth_token_check_json_capacity(token_len: usize) -> usize {
    // The payload is at most 3/4 of the token; the answer may write it
    // twice (the user id can be all of it, and the claims are), and
    // `json.dumps` with `ensure_ascii` writes at most 6 characters per
    // payload byte (`\u0001` for a control byte, `\u00e9` for each byte
    // of a 2-byte character): 2 * 6 * 3/4 = 9 per token byte.
    token_len.saturating_mul(9).saturating_add(4096)
}

/// Builds a token verifier from a JSON settings document:
/// `{"secret": "…", "fallback_secrets": ["…"], "algorithm": "HS256", "leeway": 0,
/// "audience": null, "issuer": null, "user_id_claim": "user_id",
/// "token_type_claim": "token_type", "jti_claim": "jti"}` (only `secret` is
/// required). On success `*verifier_out` receives a handle to free with
/// `wsauth_token_verifier_free`.
///
/// # Safety
/// `settings_json` must point to `settings_len` readable bytes;
/// `verifier_out` must point to a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn wsauth_token_verifier_new(
    settings_json: *const c_char,
    settings_len: usize,
    verifier_out: *mut *mut wsauth_token_verifier,
) -> wsauth_result {
    boundary::guard(|| {
        boundary::check_out(verifier_out)?;
        // SAFETY: caller contract above.
        let raw = unsafe { boundary::text(settings_json, settings_len, MAX_JSON_INPUT) }?;
        let doc: TokenSettingsDoc =
            serde_json::from_str(raw).map_err(|e| settings_error("settings", &e))?;
        let verifier = build_verifier(doc)?;
        let handle = boundary::into_handle::<TokenVerifier, wsauth_token_verifier>(verifier);
        // SAFETY: checked non-NULL above; caller promises it is writable.
        unsafe { verifier_out.write(handle) };
        Ok(())
    })
}

/// Frees a verifier. NULL is a no-op.
///
/// # Safety
/// `verifier` must be NULL or a live handle from `wsauth_token_verifier_new`,
/// not used by any thread afterwards.
#[no_mangle]
pub unsafe extern "C" fn wsauth_token_verifier_free(verifier: *mut wsauth_token_verifier) {
    // SAFETY: caller contract above.
    boundary::guard_void(|| unsafe { boundary::free_handle::<TokenVerifier, _>(verifier) });
}

/// Decides a token as `AccessToken(token)` does at time `now` (Unix seconds)
/// and writes the CLI's JSON shape to `out`:
/// `{"valid":true,"user_id":"1","claims":{…}}` or
/// `{"valid":false,"error":{"kind":"expired","message":"Token is expired"}}`.
/// An invalid token is a successful call (`WSAUTH_RESULT_OK`) whose JSON says
/// `"valid":false`. The output is not NUL-terminated; `*out_len` receives its
/// length. `wsauth_token_check_json_capacity(token_len)` bytes always suffice.
///
/// # Safety
/// `verifier` must be a live handle; `token` must point to `token_len`
/// readable bytes; `out` to `out_cap` writable bytes; `out_len` to a writable
/// `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_token_verifier_check_json(
    verifier: *const wsauth_token_verifier,
    token: *const c_char,
    token_len: usize,
    now: i64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let v = unsafe { boundary::borrow::<TokenVerifier, _>(verifier) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let mut json = Vec::with_capacity(256 + token_len.min(MAX_BYTES_INPUT));
        if token_len > v.settings().max_token_bytes.min(MAX_BYTES_INPUT) {
            // The decision does not depend on the bytes: never read them.
            let e = ErrorKind::TooLarge;
            jsonw::push_invalid(&mut json, e.as_str(), "Token is too large");
        } else {
            // SAFETY: caller contract above.
            let token = unsafe { boundary::text(token, token_len, MAX_BYTES_INPUT) }?;
            check_json(v, token, now, &mut json);
        }
        // SAFETY: caller contract above.
        unsafe { dst.write(&json) }
    })
}

/// Appends the check result for `token` to `out`: the core's JSON, the same
/// the CLI prints (strict RFC 8259, duplicate keys resolved as Python does).
pub(crate) fn check_json(v: &TokenVerifier, token: &str, now: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(v.check_json(token, now).1.as_bytes());
}

/// What `wsauth_token_verifier_mint` reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintDoc {
    user_id: serde_json::Value,
    #[serde(default = "default_lifetime")]
    lifetime: i64,
    jti: String,
    #[serde(default)]
    extra: serde_json::Map<String, serde_json::Value>,
}

fn default_lifetime() -> i64 {
    300
}

fn claim_value(v: &serde_json::Value) -> Option<ClaimValue> {
    Some(match v {
        serde_json::Value::Null => ClaimValue::Null,
        serde_json::Value::Bool(b) => ClaimValue::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => ClaimValue::Int(i),
            None => ClaimValue::Float(n.as_f64()?),
        },
        serde_json::Value::String(s) => ClaimValue::Str(InlineStr::new(s)?),
        _ => return None,
    })
}

/// Mints a token shaped like SimpleJWT's, signed with the verifier's signing
/// key, from a JSON request: `{"user_id": "1", "lifetime": 300, "jti":
/// "<32 hex>", "extra": {"is_staff": true}}` (`lifetime` defaults to 300;
/// `extra` values are null, booleans, numbers or strings up to 256 bytes).
/// For development and tests. The token (not NUL-terminated) goes to `out`.
///
/// # Safety
/// `verifier` must be a live handle; `request_json` must point to
/// `request_len` readable bytes; `out` to `out_cap` writable bytes; `out_len`
/// to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_token_verifier_mint(
    verifier: *const wsauth_token_verifier,
    request_json: *const c_char,
    request_len: usize,
    now: i64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard(|| {
        // SAFETY: caller contract above.
        let v = unsafe { boundary::borrow::<TokenVerifier, _>(verifier) }?;
        let dst = OutBuf::new(out, out_cap, out_len)?;
        // SAFETY: caller contract above.
        let raw = unsafe { boundary::text(request_json, request_len, MAX_JSON_INPUT) }?;
        let doc: MintDoc =
            serde_json::from_str(raw).map_err(|e| settings_error("mint request", &e))?;
        let invalid = |what: &str| {
            set_last_error(&format!("mint request: {what}"));
            wsauth_result::WSAUTH_RESULT_INVALID_REQUEST
        };
        let user_id =
            claim_value(&doc.user_id).ok_or_else(|| invalid("user_id must be a scalar"))?;
        let mut extra = Vec::with_capacity(doc.extra.len());
        for (k, val) in &doc.extra {
            extra.push((
                k.as_str(),
                claim_value(val).ok_or_else(|| invalid("extra values must be scalars"))?,
            ));
        }
        if doc.jti.is_empty() {
            return Err(invalid("jti must not be empty"));
        }
        let req = MintRequest {
            user_id,
            lifetime: doc.lifetime,
            jti: &doc.jti,
            extra: &extra,
        };
        let token = v
            .try_mint(&req, now)
            .map_err(|_| invalid("a claim value cannot be written, or exp overflows"))?;
        // SAFETY: caller contract above.
        unsafe { dst.write(token.as_bytes()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_decimal_is_what_python_str_of_an_int_writes() {
        for n in [0i64, 1, 7, 42, -1, -42, 1_000_000, i64::MAX, i64::MIN] {
            assert_eq!(canonical_decimal(&n.to_string()), Some(n));
        }
        for s in [
            "",
            "-",
            "-0",
            "00",
            "01",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "١",
            "9223372036854775808",
            "-9223372036854775809",
            "0x1",
            "abc",
        ] {
            assert_eq!(canonical_decimal(s), None, "{s:?}");
        }
    }

    #[test]
    fn kind_numbers_follow_the_contract_list_and_names_match() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            let n = kind_number(*kind);
            assert_eq!(n as usize, i + 1);
            // SAFETY: `wsauth_error_kind_name` returns a static NUL-terminated string.
            let name = unsafe { std::ffi::CStr::from_ptr(wsauth_error_kind_name(n)) };
            assert_eq!(name.to_str(), Ok(kind.as_str()));
        }
        let named = [
            (WSAUTH_KIND_MALFORMED, ErrorKind::Malformed),
            (WSAUTH_KIND_BAD_SIGNATURE, ErrorKind::BadSignature),
            (WSAUTH_KIND_BAD_ALGORITHM, ErrorKind::BadAlgorithm),
            (WSAUTH_KIND_EXPIRED, ErrorKind::Expired),
            (WSAUTH_KIND_NOT_YET_VALID, ErrorKind::NotYetValid),
            (WSAUTH_KIND_WRONG_TOKEN_TYPE, ErrorKind::WrongTokenType),
            (WSAUTH_KIND_MISSING_CLAIM, ErrorKind::MissingClaim),
            (WSAUTH_KIND_BAD_AUDIENCE, ErrorKind::BadAudience),
            (WSAUTH_KIND_BAD_ISSUER, ErrorKind::BadIssuer),
            (WSAUTH_KIND_TOO_LARGE, ErrorKind::TooLarge),
        ];
        for (n, kind) in named {
            assert_eq!(kind_number(kind), n);
        }
        // SAFETY: as above.
        let unknown = unsafe { std::ffi::CStr::from_ptr(wsauth_error_kind_name(999)) };
        assert_eq!(unknown.to_str(), Ok("unknown"));
    }
}
