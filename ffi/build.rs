//! With the `python` feature (set only by the Python package's build,
//! `ffi/python/pyproject.toml`), compiles cffi's API-mode extension module
//! `wsauth._native.lib_native` into the library: the C glue cffi writes from
//! `include/wsauth.h` (see `cffi_module.py`), so that Python calls the ABI
//! through compiled wrappers instead of libffi. Without the feature (the C
//! library, every cargo command of the workspace) this does nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "python")]
    python_module();
}

#[cfg(feature = "python")]
fn python_module() {
    use std::env;
    use std::path::PathBuf;
    use std::process::Command;

    println!("cargo:rerun-if-changed=include/wsauth.h");
    println!("cargo:rerun-if-changed=cffi_module.py");
    println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    // maturin names the interpreter it builds for; a plain cargo build with
    // the feature uses the first python3 on PATH.
    let python = env::var_os("PYTHON_SYS_EXECUTABLE")
        .or_else(|| env::var_os("PYO3_PYTHON"))
        .unwrap_or_else(|| "python3".into());
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let source = out_dir.join("wsauth_cffi.c");
    let run = Command::new(&python)
        .arg(manifest.join("cffi_module.py"))
        .arg(manifest.join("include").join("wsauth.h"))
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.to_string_lossy()));
    assert!(
        run.status.success(),
        "cffi_module.py failed (is cffi installed for {}?):\n{}",
        python.to_string_lossy(),
        String::from_utf8_lossy(&run.stderr)
    );
    // The last line printed (cffi reports the file it writes before it).
    let stdout = String::from_utf8(run.stdout).expect("UTF-8 output");
    let python_include = stdout.lines().last().expect("the Python include directory");
    cc::Build::new()
        .file(&source)
        .include(python_include.trim())
        .include(manifest.join("include"))
        // The module's init function is exported by `src/python.rs` (a cdylib
        // exports only the symbols Rust declares).
        .define("PyInit_lib_native", "wsauth_python_module_init")
        // The full C API, not the limited one cffi picks by default: the
        // module is built for the interpreter that installs it, and
        // `check_token` uses METH_FASTCALL.
        .define("_CFFI_NO_LIMITED_API", None)
        .warnings(false)
        .compile("wsauth_cffi");
}
