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


# `check_token`, added to the module by `wsauth_python_module_extend`:
# TokenVerifier.check()'s common case in one C call — the decision from
# wsauth_token_verifier_check_result_payload, written into the result dict
# without a Python-level step per field, with the valid token's decoded
# payload kept (as bytes) for the claims, so reading them never verifies the
# token again. It holds the GIL (the call takes about a microsecond) and
# needs no per-thread buffers. Anything unusual (a token that is not a str or
# bytes, a user id given as JSON, a result other than OK, a message longer
# than its buffer) returns None: the caller then takes the Python path,
# which handles every case.
FAST_CHECK = r"""
static PyObject *wsauth_key_valid, *wsauth_key_user_id, *wsauth_key_claims, *wsauth_key_error,
    *wsauth_key_kind, *wsauth_key_message;

/* The decoded payload of any token within the default max_token_bytes
 * (8 KiB) fits: 3/4 of it. A larger one (a verifier configured for larger
 * tokens) keeps what reads its claims from the core instead. */
#define WSAUTH_FAST_PAYLOAD_CAP 6144

/* check_token(verifier_address, token, now, verifier, lazy_type, pending_key);
 * `now` None reads the clock as `int(time.time())` does. */
static PyObject *wsauth_check_token(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  (void)self;
  if (nargs != 6) {
    PyErr_SetString(PyExc_TypeError, "check_token takes 6 arguments");
    return NULL;
  }
  size_t address = PyLong_AsSize_t(args[0]);
  if (address == (size_t)-1 && PyErr_Occurred()) return NULL;
  long long now;
  if (args[2] == Py_None) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) Py_RETURN_NONE;
    now = (long long)ts.tv_sec;
  } else {
    now = PyLong_AsLongLong(args[2]);
    if (now == -1 && PyErr_Occurred()) return NULL;
  }
  if (!PyType_Check(args[4])) {
    PyErr_SetString(PyExc_TypeError, "check_token: lazy_type must be a type");
    return NULL;
  }
  const char *token;
  Py_ssize_t token_len;
  if (PyUnicode_CheckExact(args[1])) {
    token = PyUnicode_AsUTF8AndSize(args[1], &token_len);
    if (token == NULL) {
      PyErr_Clear(); /* e.g. a lone surrogate: the Python path answers */
      Py_RETURN_NONE;
    }
  } else if (PyBytes_CheckExact(args[1])) {
    token = PyBytes_AS_STRING(args[1]);
    token_len = PyBytes_GET_SIZE(args[1]);
  } else {
    Py_RETURN_NONE;
  }
  wsauth_token_check res;
  char text[512];
  size_t text_len = 0;
  char payload[WSAUTH_FAST_PAYLOAD_CAP];
  size_t payload_len = 0;
  wsauth_result rc = wsauth_token_verifier_check_result_payload(
      (const wsauth_token_verifier *)address, token, (size_t)token_len, (int64_t)now, &res, text, sizeof text,
      &text_len, payload, sizeof payload, &payload_len);
  if (rc != WSAUTH_RESULT_OK) Py_RETURN_NONE;
  PyObject *out = PyDict_New();
  if (out == NULL) return NULL;
  if (res.kind != WSAUTH_KIND_NONE) {
    PyObject *error = PyDict_New();
    PyObject *kind = PyUnicode_FromString(wsauth_error_kind_name(res.kind));
    PyObject *message = PyUnicode_DecodeUTF8(text, (Py_ssize_t)text_len, "strict");
    int bad = error == NULL || kind == NULL || message == NULL ||
              PyDict_SetItem(out, wsauth_key_valid, Py_False) < 0 ||
              PyDict_SetItem(error, wsauth_key_kind, kind) < 0 ||
              PyDict_SetItem(error, wsauth_key_message, message) < 0 ||
              PyDict_SetItem(out, wsauth_key_error, error) < 0;
    Py_XDECREF(error);
    Py_XDECREF(kind);
    Py_XDECREF(message);
    if (bad) {
      Py_DECREF(out);
      return NULL;
    }
    return out;
  }
  PyObject *user_id = NULL;
  switch (res.user_id_type) {
    case WSAUTH_USER_ID_ABSENT:
      break;
    case WSAUTH_USER_ID_DECIMAL_STR: {
      char digits[24];
      int n = snprintf(digits, sizeof digits, "%lld", (long long)res.user_id_int);
      user_id = PyUnicode_FromStringAndSize(digits, n);
      if (user_id == NULL) goto fail;
      break;
    }
    case WSAUTH_USER_ID_STR:
      user_id = PyUnicode_DecodeUTF8(text, (Py_ssize_t)text_len, "strict");
      if (user_id == NULL) goto fail;
      break;
    case WSAUTH_USER_ID_INT:
      user_id = PyLong_FromLongLong((long long)res.user_id_int);
      if (user_id == NULL) goto fail;
      break;
    default:
      Py_DECREF(out);
      Py_RETURN_NONE;
  }
  /* The claims: an instance of lazy_type (a dict subclass) whose only
   * entry, pending_key -> the decoded payload (bytes, parsed on first use as
   * PyJWT parses it) or, for a payload larger than the buffer,
   * (verifier, token, now), tells it how to read them. */
  PyObject *source;
  if (payload_len >= 2 && payload_len <= sizeof payload) {
    source = PyBytes_FromStringAndSize(payload, (Py_ssize_t)payload_len);
  } else {
    PyObject *now_obj = PyLong_FromLongLong(now);
    source = now_obj == NULL ? NULL : PyTuple_Pack(3, args[3], args[1], now_obj);
    Py_XDECREF(now_obj);
  }
  PyTypeObject *lazy = (PyTypeObject *)args[4];
  PyObject *no_args = source == NULL ? NULL : PyTuple_New(0);
  PyObject *claims = no_args == NULL ? NULL : lazy->tp_new(lazy, no_args, NULL);
  Py_XDECREF(no_args);
  if (claims != NULL && (!PyDict_Check(claims) || PyDict_SetItem(claims, args[5], source) < 0)) {
    Py_CLEAR(claims);
  }
  Py_XDECREF(source);
  if (claims == NULL || PyDict_SetItem(out, wsauth_key_valid, Py_True) < 0 ||
      (user_id != NULL && PyDict_SetItem(out, wsauth_key_user_id, user_id) < 0) ||
      PyDict_SetItem(out, wsauth_key_claims, claims) < 0) {
    Py_XDECREF(claims);
    goto fail;
  }
  Py_DECREF(claims);
  Py_XDECREF(user_id);
  return out;
fail:
  Py_XDECREF(user_id);
  Py_DECREF(out);
  return NULL;
}

static PyMethodDef wsauth_methods[] = {
    {"check_token", (PyCFunction)(void (*)(void))wsauth_check_token, METH_FASTCALL,
     "TokenVerifier.check()'s common case; None: take the Python path."},
    {NULL, NULL, 0, NULL},
};

/* Called with the module cffi made (a new reference, or NULL). */
PyObject *wsauth_python_module_extend(PyObject *module) {
  if (module == NULL || !PyModule_Check(module)) return module;
  if ((wsauth_key_valid = PyUnicode_InternFromString("valid")) == NULL ||
      (wsauth_key_user_id = PyUnicode_InternFromString("user_id")) == NULL ||
      (wsauth_key_claims = PyUnicode_InternFromString("claims")) == NULL ||
      (wsauth_key_error = PyUnicode_InternFromString("error")) == NULL ||
      (wsauth_key_kind = PyUnicode_InternFromString("kind")) == NULL ||
      (wsauth_key_message = PyUnicode_InternFromString("message")) == NULL ||
      PyModule_AddFunctions(module, wsauth_methods) < 0) {
    Py_DECREF(module);
    return NULL;
  }
  return module;
}
"""


def main() -> int:
    header_path, out_path = sys.argv[1], sys.argv[2]
    with open(header_path, encoding="utf-8") as f:
        header = f.read()
    ffi = cffi.FFI()
    ffi.cdef(declarations(header))
    ffi.set_source("wsauth._native.lib_native", '#include <stdio.h>\n#include <time.h>\n#include "wsauth.h"\n' + FAST_CHECK)
    ffi.emit_c_code(out_path)
    print(sysconfig.get_paths()["include"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
