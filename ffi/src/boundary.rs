//! The one place where raw pointers from C become Rust values, and where
//! Rust results become C outputs. Everything here follows the rules written
//! in `ffi/README.md`: NULL, invalid UTF-8 and oversized input are answered
//! with a result code; outputs are written only on success; every body runs
//! behind a panic boundary.

use crate::errors;
use crate::wsauth_result;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use wsauth_core::UnixTime;

/// Largest JSON document (settings, requests, configs) the ABI reads.
pub(crate) const MAX_JSON_INPUT: usize = 1 << 20;

/// Largest byte string (tokens, cookies, messages, header values) the ABI reads.
pub(crate) const MAX_BYTES_INPUT: usize = 1 << 20;

/// The ABI's clock inputs, `int64_t` Unix seconds, as the core's clock type.
/// The one place a C time becomes a [`UnixTime`].
pub(crate) fn unix_secs(now: i64) -> UnixTime {
    UnixTime::from_secs(now)
}

/// As [`unix_secs`], for the functions whose clock is `int64_t now_ms`
/// (Unix milliseconds: the rate limit's resolution).
pub(crate) fn unix_millis(now_ms: i64) -> UnixTime {
    UnixTime::from_millis(now_ms)
}

/// Runs `f`, turning a panic into [`wsauth_result::WSAUTH_RESULT_PANIC`].
/// The thread's last error is cleared first; a failure that recorded no
/// message of its own gets the result's description.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), wsauth_result>) -> wsauth_result {
    errors::clear_last_error();
    let rc = guard_keep_error(f);
    if rc != wsauth_result::WSAUTH_RESULT_OK && !errors::has_last_error() {
        errors::set_last_error(rc.describe().to_str().unwrap_or("error"));
    }
    rc
}

/// [`guard`] without touching the last error (for `wsauth_last_error` itself).
pub(crate) fn guard_keep_error(f: impl FnOnce() -> Result<(), wsauth_result>) -> wsauth_result {
    // AssertUnwindSafe: after a panic the only state that may be observed is
    // the caller's handle, and every handle method either completes or leaves
    // the handle in a state that is valid (see README, "Panics").
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => wsauth_result::WSAUTH_RESULT_OK,
        Ok(Err(code)) => code,
        Err(_) => wsauth_result::WSAUTH_RESULT_PANIC,
    }
}

/// Runs `f` for a function without a result (the `_free` functions):
/// a panic is swallowed, never propagated into C.
pub(crate) fn guard_void(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// Borrows `len` bytes at `ptr`. A zero length accepts any pointer, NULL included.
///
/// # Safety
/// Unless `len` is 0, `ptr` must be NULL or point to `len` readable bytes that
/// stay valid and unmodified for `'a`.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const c_char,
    len: usize,
    max: usize,
) -> Result<&'a [u8], wsauth_result> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(wsauth_result::WSAUTH_RESULT_NULL_PARAMETER);
    }
    if len > max {
        return Err(wsauth_result::WSAUTH_RESULT_INPUT_TOO_LARGE);
    }
    // SAFETY: `ptr` is non-NULL and the caller promises `len` readable bytes
    // valid for `'a`; `len <= max <= isize::MAX`.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// Borrows `len` bytes at `ptr` as UTF-8 text.
///
/// # Safety
/// As for [`bytes`].
pub(crate) unsafe fn text<'a>(
    ptr: *const c_char,
    len: usize,
    max: usize,
) -> Result<&'a str, wsauth_result> {
    // SAFETY: forwarded caller contract.
    let raw = unsafe { bytes(ptr, len, max) }?;
    std::str::from_utf8(raw).map_err(|_| wsauth_result::WSAUTH_RESULT_INVALID_UTF8)
}

/// A destination buffer for bytes plus its written-length out-parameter,
/// checked for NULL up front so that no work is done for a call that could
/// not report its result.
pub(crate) struct OutBuf {
    ptr: *mut c_char,
    cap: usize,
    len_out: *mut usize,
}

impl OutBuf {
    /// Checks the pointers: `len_out` must be non-NULL, and `ptr` must be
    /// non-NULL unless `cap` is 0.
    pub(crate) fn new(
        ptr: *mut c_char,
        cap: usize,
        len_out: *mut usize,
    ) -> Result<Self, wsauth_result> {
        if len_out.is_null() || (ptr.is_null() && cap != 0) {
            return Err(wsauth_result::WSAUTH_RESULT_NULL_PARAMETER);
        }
        Ok(OutBuf { ptr, cap, len_out })
    }

    /// Copies `data` into the buffer and writes its length, or returns
    /// `WSAUTH_RESULT_BUFFER_TOO_SMALL` with the needed length in `*len_out`
    /// and the buffer untouched.
    ///
    /// # Safety
    /// `ptr` must point to `cap` writable bytes and `len_out` to a writable
    /// `size_t`, neither overlapping `data`.
    pub(crate) unsafe fn write(&self, data: &[u8]) -> Result<(), wsauth_result> {
        if data.len() > self.cap {
            // SAFETY: `len_out` was checked non-NULL and the caller promises it is writable.
            unsafe { self.len_out.write(data.len()) };
            return Err(wsauth_result::WSAUTH_RESULT_BUFFER_TOO_SMALL);
        }
        if !data.is_empty() {
            // SAFETY: `data.len() <= cap`, `ptr` is non-NULL (cap > 0 here) and
            // points to `cap` writable bytes that do not overlap `data`.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.cast::<u8>(), data.len())
            };
        }
        // SAFETY: `len_out` was checked non-NULL and the caller promises it is writable.
        unsafe { self.len_out.write(data.len()) };
        Ok(())
    }
}

/// Writes `value` to `out` after checking it is non-NULL.
///
/// # Safety
/// `out` must be NULL or point to a writable `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) -> Result<(), wsauth_result> {
    if out.is_null() {
        return Err(wsauth_result::WSAUTH_RESULT_NULL_PARAMETER);
    }
    // SAFETY: non-NULL and writable per the caller's contract.
    unsafe { out.write(value) };
    Ok(())
}

/// Checks that an out-pointer is non-NULL before doing any work.
pub(crate) fn check_out<T>(out: *mut T) -> Result<(), wsauth_result> {
    if out.is_null() {
        Err(wsauth_result::WSAUTH_RESULT_NULL_PARAMETER)
    } else {
        Ok(())
    }
}

/// Moves `value` to the heap and hands C an opaque pointer to it.
pub(crate) fn into_handle<T, H>(value: T) -> *mut H {
    Box::into_raw(Box::new(value)).cast::<H>()
}

/// Borrows the Rust value behind an opaque handle.
///
/// # Safety
/// `handle` must be NULL or a pointer returned by [`into_handle`] with the
/// same `T` and not yet freed, and no `&mut` to it may exist for `'a`.
pub(crate) unsafe fn borrow<'a, T, H>(handle: *const H) -> Result<&'a T, wsauth_result> {
    if handle.is_null() {
        return Err(wsauth_result::WSAUTH_RESULT_NULL_PARAMETER);
    }
    // SAFETY: per the contract, `handle` came from `Box<T>::into_raw` and is live.
    Ok(unsafe { &*handle.cast::<T>() })
}

/// Borrows the Rust value behind an opaque handle mutably.
///
/// # Safety
/// As for [`borrow`], and no other reference to it may exist for `'a`
/// (single-thread handles: the caller must not share them across threads).
pub(crate) unsafe fn borrow_mut<'a, T, H>(handle: *mut H) -> Result<&'a mut T, wsauth_result> {
    if handle.is_null() {
        return Err(wsauth_result::WSAUTH_RESULT_NULL_PARAMETER);
    }
    // SAFETY: per the contract, `handle` came from `Box<T>::into_raw`, is live and unaliased.
    Ok(unsafe { &mut *handle.cast::<T>() })
}

/// Drops the Rust value behind an opaque handle; NULL is a no-op.
///
/// # Safety
/// `handle` must be NULL or a pointer returned by [`into_handle`] with the
/// same `T`, not yet freed; it must not be used afterwards.
pub(crate) unsafe fn free_handle<T, H>(handle: *mut H) {
    if handle.is_null() {
        return;
    }
    // SAFETY: per the contract, `handle` came from `Box<T>::into_raw` and is freed once.
    drop(unsafe { Box::from_raw(handle.cast::<T>()) });
}
