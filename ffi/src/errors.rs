//! Readable messages for failed calls: a per-thread "last error" that the
//! constructors and JSON readers set, read with `wsauth_last_error`.
//! Messages never contain input values (secrets, tokens, cookies): quoted
//! strings are redacted from parser messages.

use crate::boundary::{self, OutBuf};
use crate::wsauth_result;
use std::cell::RefCell;
use std::ffi::c_char;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `message` as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    LAST_ERROR.with(|e| {
        if let Ok(mut e) = e.try_borrow_mut() {
            e.clear();
            e.push_str(message);
        }
    });
}

/// Forgets this thread's last error (every call starts with a clean slate).
pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|e| {
        if let Ok(mut e) = e.try_borrow_mut() {
            e.clear();
        }
    });
}

/// True when this thread has a last error recorded.
pub(crate) fn has_last_error() -> bool {
    LAST_ERROR.with(|e| e.try_borrow().map(|s| !s.is_empty()).unwrap_or(false))
}

/// Records a JSON parse / shape error for document `what` and returns
/// the matching result code.
pub(crate) fn settings_error(what: &str, err: &serde_json::Error) -> wsauth_result {
    set_last_error(&format!("{what}: {}", redact_quoted(&err.to_string())));
    if what.ends_with("request") {
        wsauth_result::WSAUTH_RESULT_INVALID_REQUEST
    } else {
        wsauth_result::WSAUTH_RESULT_INVALID_SETTINGS
    }
}

/// Replaces every `"…"` in a parser message by `"…"` so that no value from
/// the input (which may be a secret) is echoed. Field names, which serde
/// quotes with backticks, stay readable.
pub(crate) fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for c in msg.chars() {
        if c == '"' {
            if inside {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    if inside {
        out.push_str("…\"");
    }
    out
}

/// Copies this thread's last error message (UTF-8, not NUL-terminated) to
/// `out`. The message describes the most recent call on the calling thread
/// (other than `wsauth_last_error` itself): empty (`*out_len == 0`) when that
/// call succeeded, otherwise why it failed (at least the result's
/// description). Reading it does not clear it.
///
/// # Safety
/// `out` must point to `out_cap` writable bytes and `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn wsauth_last_error(
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> wsauth_result {
    boundary::guard_keep_error(|| {
        let dst = OutBuf::new(out, out_cap, out_len)?;
        let msg = LAST_ERROR.with(|e| e.try_borrow().map(|s| s.clone()).unwrap_or_default());
        // SAFETY: caller contract above.
        unsafe { dst.write(msg.as_bytes()) }
    })
}

#[cfg(test)]
mod tests {
    use super::redact_quoted;

    #[test]
    fn quoted_values_are_redacted() {
        let cases = [
            (
                "invalid type: string \"s3cret\", expected u32 at line 1 column 9",
                "invalid type: string \"…\", expected u32 at line 1 column 9",
            ),
            (
                "unknown field `secrt`, expected one of `secret`",
                "unknown field `secrt`, expected one of `secret`",
            ),
            ("dangling \"abc", "dangling \"…\""),
        ];
        for (input, want) in cases {
            assert_eq!(redact_quoted(input), want);
            assert!(!redact_quoted(input).contains("s3cret"));
        }
    }
}
