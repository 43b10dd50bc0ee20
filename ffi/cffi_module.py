"""Writes the C source of cffi's API-mode extension module
``wsauth._native.lib_native`` from the committed header (run by build.rs
with the `python` feature) and prints the Python include directory (its last line of output).

Usage: cffi_module.py <wsauth.h> <output.c>
"""

import re
import sys
import sysconfig

import cffi


def declarations(header: str) -> str:
    """The header as cffi's cdef reads it: no C++ guards, no includes, no
    include guard; integer ``#define`` constants kept."""
    text = re.sub(r"#ifdef __cplusplus\n.*?#endif[^\n]*\n", "", header, flags=re.S)
    keep = re.compile(r"#define [A-Za-z_][A-Za-z0-9_]* -?[0-9]+\s*$")
    return "\n".join(line for line in text.splitlines() if not line.startswith("#") or keep.match(line))


def main() -> int:
    header_path, out_path = sys.argv[1], sys.argv[2]
    with open(header_path, encoding="utf-8") as f:
        header = f.read()
    ffi = cffi.FFI()
    ffi.cdef(declarations(header))
    ffi.set_source("wsauth._native.lib_native", '#include "wsauth.h"')
    ffi.emit_c_code(out_path)
    print(sysconfig.get_paths()["include"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
