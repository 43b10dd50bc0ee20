//! The Python package's compiled module (feature `python`, set only by the
//! build of `ffi/python`): cffi's API-mode glue, compiled by `build.rs`, is
//! linked into the library, which Python then imports as the extension
//! module `wsauth._native.lib_native`. Not part of the C ABI (the header
//! leaves it out).

use std::ffi::c_void;

extern "C" {
    /// cffi's `PyInit_lib_native`, renamed by `build.rs`.
    fn wsauth_python_module_init() -> *mut c_void;
    /// Adds `check_token` (see `cffi_module.py`) to the module cffi made.
    fn wsauth_python_module_extend(module: *mut c_void) -> *mut c_void;
}

/// The extension module's init function (a `PyObject *`), called by
/// Python's import system with the GIL held. A cdylib exports only the
/// symbols Rust declares, hence this forwarder to the C glue.
///
/// # Safety
/// Only Python's import system may call it.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn PyInit_lib_native() -> *mut c_void {
    // SAFETY: the C glue's init needs only what the import system provides.
    let module = unsafe { wsauth_python_module_init() };
    // SAFETY: `module` is what the init returned (a new reference or NULL),
    // which is what the extension takes.
    unsafe { wsauth_python_module_extend(module) }
}
