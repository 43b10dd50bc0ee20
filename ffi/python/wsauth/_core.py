"""Token and session verifiers: thin wrappers over libwsauth.

Every decision is made by the Rust core; this module only converts Python
values to the C ABI's inputs and its JSON answers back to dicts.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple, Union

try:
    # cffi's API-mode module, compiled into libwsauth by the package build
    # (ffi/build.rs): calls go through compiled wrappers.
    from ._native.lib_native import ffi, lib  # type: ignore[import-not-found]

    COMPILED = True
except ImportError:  # a library built without it: cffi's ABI mode (libffi)
    from ._native import ffi, lib

    COMPILED = False
try:
    # TokenVerifier.check()'s common case in one C call (ffi/cffi_module.py).
    from ._native.lib_native import check_token as _check_token  # type: ignore[import-not-found]
except ImportError:
    _check_token = None

__all__ = [
    "Authenticator",
    "Handshake",
    "Connection",
    "WsauthError",
    "SettingsError",
    "TokenVerifier",
    "SessionVerifier",
    "CheckResult",
    "Claims",
    "LazyClaims",
    "MemoryRateStore",
    "EdgeVerifier",
]

CheckResult = dict  # {"valid": bool, "user_id": ..., "claims": {...}} or {"valid": False, "error": {...}}

_OK: int = lib.WSAUTH_RESULT_OK
_BUFFER_TOO_SMALL: int = lib.WSAUTH_RESULT_BUFFER_TOO_SMALL
_INVALID_UTF8: int = lib.WSAUTH_RESULT_INVALID_UTF8
_INPUT_TOO_LARGE: int = lib.WSAUTH_RESULT_INPUT_TOO_LARGE
_SETTINGS_RESULTS = (
    lib.WSAUTH_RESULT_INVALID_SETTINGS,
    lib.WSAUTH_RESULT_INVALID_KEY,
)

DEFAULT_AUTH_BACKENDS = ("django.contrib.auth.backends.ModelBackend",)
DEFAULT_SESSION_COOKIE_AGE = 1209600


class WsauthError(Exception):
    """A call into libwsauth failed: rejected settings or request, or an internal error.

    ``result`` is the ABI's ``wsauth_result`` code. Messages never contain
    secrets, tokens or cookie values.
    """

    def __init__(self, result: int, context: str, detail: str = "") -> None:
        self.result = result
        self.context = context
        self.detail = detail
        what = ffi.string(lib.wsauth_result_describe(result)).decode("utf-8", "replace")
        text = f"{context}: {what}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


class SettingsError(WsauthError, ValueError):
    """Settings that libwsauth (or this wrapper) refuses, e.g. an empty key or an RS256 algorithm."""

    def __init__(self, context: str, detail: str = "", result: Optional[int] = None) -> None:
        super().__init__(lib.WSAUTH_RESULT_INVALID_SETTINGS if result is None else result, context, detail)


def _last_error() -> str:
    buf = ffi.new("char[]", 1024)
    n = ffi.new("size_t *")
    if lib.wsauth_last_error(buf, 1024, n) != _OK:
        return ""
    return ffi.unpack(buf, n[0]).decode("utf-8", "replace")


def _raise(result: int, context: str) -> None:
    if result == _OK:
        return
    detail = _last_error()
    if result in _SETTINGS_RESULTS:
        raise SettingsError(context, detail, result)
    raise WsauthError(result, context, detail)


def _now(now: Union[int, float, None]) -> int:
    """Unix seconds, floored (the core compares whole seconds, as SimpleJWT's
    integer claims against ``floor(now)`` decide the same)."""
    if now is None:
        return int(time.time())
    if isinstance(now, _dt.datetime):
        return int(now.timestamp() // 1)
    return int(now // 1)


def _now_ms(now: Union[int, float, _dt.datetime, None]) -> int:
    """Unix milliseconds, floored: the clock of a handshake (the rate limit's
    resolution; the core compares token and session times in whole seconds,
    the floor of this)."""
    if now is None:
        return time.time_ns() // 1_000_000
    if isinstance(now, _dt.datetime):
        now = now.timestamp()
    if isinstance(now, int):
        return now * 1000
    return math.floor(now * 1000)


def _seconds(value: Any, name: str) -> int:
    """Whole non-negative seconds from an int, an integral float or a timedelta."""
    if isinstance(value, _dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(name, "must be a number of seconds or a timedelta")
    if value < 0 or value != int(value):
        raise SettingsError(name, "must be a whole, non-negative number of seconds")
    return int(value)


def _text(value: Any, name: str) -> str:
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise SettingsError(name, "must be UTF-8 text") from None
    if not isinstance(value, str):
        raise SettingsError(name, "must be a string")
    return value


class _Scratch(threading.local):
    """Per-thread output buffer, so concurrent checks never share memory."""

    def __init__(self) -> None:
        self.cap = 16384
        self.buf = ffi.new("char[]", self.cap)
        self.out_len = ffi.new("size_t *")
        self.kind = ffi.new("uint32_t *")
        # wsauth_token_verifier_check_result_payload's outputs, in two
        # attributes: the result and its text; the decoded payload (any
        # token within the default max_token_bytes, 8 KiB, has one that fits
        # in 3/4 of it; a larger one is read from the core when used).
        self.check = (ffi.new("wsauth_token_check *"), ffi.new("char[]", 1024), 1024, ffi.new("size_t *"))
        self.payload = (ffi.new("char[]", 6144), 6144, ffi.new("size_t *"))

    def ensure(self, cap: int) -> None:
        if cap > self.cap:
            self.cap = cap
            self.buf = ffi.new("char[]", cap)

    def ensure_text(self, cap: int) -> tuple:
        if cap > self.check[2]:
            self.check = (self.check[0], ffi.new("char[]", cap), cap, self.check[3])
        return self.check


_scratch = _Scratch()
_check_json = lib.wsauth_token_verifier_check_json
_check_fast = lib.wsauth_token_verifier_check
_check_result = lib.wsauth_token_verifier_check_result_payload
_claims_json = lib.wsauth_token_verifier_claims_json
_unpack = ffi.unpack
#: Parsed claims kept (decoded payload → claims, process-wide; and token →
#: claims per verifier for tokens whose payload was not handed out), so
#: that reading the claims of a token seen again does not parse its payload
#: in Python again.
CLAIMS_CACHE_SIZE = 2048
_payload_claims: Dict[bytes, dict] = {}
_capacity = lib.wsauth_token_check_json_capacity
_loads = json.loads
_malformed: CheckResult = {"valid": False, "error": {"kind": "malformed", "message": "Token is invalid"}}
_MALFORMED_JSON = json.dumps(_malformed, separators=(",", ":"))
_USER_ID_ABSENT: int = lib.WSAUTH_USER_ID_ABSENT
_USER_ID_STR: int = lib.WSAUTH_USER_ID_STR
_USER_ID_INT: int = lib.WSAUTH_USER_ID_INT
_USER_ID_DECIMAL_STR: int = lib.WSAUTH_USER_ID_DECIMAL_STR
#: The core's error kind names by number (``wsauth_error_kind_name``).
_KIND_NAMES: Dict[int, str] = {
    n: ffi.string(lib.wsauth_error_kind_name(n)).decode("ascii") for n in range(1, lib.WSAUTH_KIND_TOO_LARGE + 1)
}


class _Pending:
    """The key under which unread claims keep what reads them (never a
    claim name: those are strings)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<claims not read yet>"


_PENDING = _Pending()
_claims_lock = threading.Lock()


class Claims(dict):
    """A valid token's claims: a plain ``dict`` (pickled as one)."""

    __slots__ = ()

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (dict, (dict(self),))

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


def _claims_of_payload(payload: bytes) -> dict:
    """The claims of a valid token from its decoded payload, exactly as
    PyJWT builds them (``json.loads`` of the same bytes), to be copied (never
    modified: it may be the one kept for the payload)."""
    cached = _payload_claims.get(payload)
    if cached is not None:
        return cached
    claims = _loads(payload)
    # Kept only when every claim is a scalar (copies then share nothing
    # mutable): a nested object or array needs a second "{" byte or a "["
    # byte (inside strings, or in other characters, they only make this
    # say no).
    if payload.count(b"{") == 1 and b"[" not in payload:
        if len(_payload_claims) >= CLAIMS_CACHE_SIZE:
            _payload_claims.clear()
        _payload_claims[payload] = claims
    return claims


def _read_claims(claims: "LazyClaims") -> None:
    """Fills ``claims`` with the token's claims and makes it a
    :class:`Claims` (a plain dict from then on): parsed from the decoded
    payload ``check()`` kept, as PyJWT parses it — the token is not verified
    again —, or, for a payload too large for the buffer it was offered, as
    the core writes them for the same token and clock
    (``wsauth_token_verifier_claims_json``)."""
    with _claims_lock:
        if claims.__class__ is not LazyClaims:
            return
        source = dict.__getitem__(claims, _PENDING)
        if source.__class__ is bytes:
            values = _claims_of_payload(source)
        else:
            verifier, token, now = source
            values = verifier._claims_of(token, now)
        dict.clear(claims)
        dict.update(claims, values)
        claims.__class__ = Claims


class LazyClaims(Claims):
    """A valid token's claims, parsed on first use.

    ``check()`` decides a token and keeps its decoded payload (the bytes
    PyJWT hands to ``json.loads``) without parsing it; the claims are parsed
    from it, as PyJWT parses them, the first time
    this mapping is used in any way — indexing, iteration, ``len``, ``==``,
    ``repr``, ``json.dumps``, ``pickle``, ``copy`` — after which it is a
    :class:`Claims`, a plain ``dict``. The token is not verified again
    (only a payload larger than ``check()``'s buffer, 6 KiB, possible with
    ``max_token_bytes`` above 8 KiB, is read from the core: the claims of
    ``check_json`` for the same token and clock). Code reading ``dict``
    internals directly from C (not through the mapping methods) should call
    ``dict(claims)`` first.
    """

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        _read_claims(self)
        return dict.__getitem__(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        _read_claims(self)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        _read_claims(self)
        dict.__delitem__(self, key)

    def __contains__(self, key: Any) -> bool:
        _read_claims(self)
        return dict.__contains__(self, key)

    def __iter__(self) -> Any:
        _read_claims(self)
        return dict.__iter__(self)

    def __reversed__(self) -> Any:
        _read_claims(self)
        return dict.__reversed__(self)

    def __len__(self) -> int:
        _read_claims(self)
        return dict.__len__(self)

    def __eq__(self, other: Any) -> Any:
        _read_claims(self)
        if other.__class__ is LazyClaims:
            _read_claims(other)
        return dict.__eq__(self, other)

    def __ne__(self, other: Any) -> Any:
        _read_claims(self)
        if other.__class__ is LazyClaims:
            _read_claims(other)
        return dict.__ne__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        _read_claims(self)
        return dict.__repr__(self)

    def __or__(self, other: Any) -> Any:
        _read_claims(self)
        return dict.__or__(self, other)

    def __ror__(self, other: Any) -> Any:
        _read_claims(self)
        return dict.__ror__(self, other)

    def __ior__(self, other: Any) -> Any:
        _read_claims(self)
        return dict.__ior__(self, other)

    def __sizeof__(self) -> int:
        _read_claims(self)
        return dict.__sizeof__(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        _read_claims(self)
        return (dict, (dict(self),))

    def __reduce__(self) -> Any:
        _read_claims(self)
        return (dict, (dict(self),))

    def get(self, key: Any, default: Any = None) -> Any:
        _read_claims(self)
        return dict.get(self, key, default)

    def keys(self) -> Any:
        _read_claims(self)
        return dict.keys(self)

    def values(self) -> Any:
        _read_claims(self)
        return dict.values(self)

    def items(self) -> Any:
        _read_claims(self)
        return dict.items(self)

    def copy(self) -> dict:
        _read_claims(self)
        return dict(self)

    def pop(self, *args: Any) -> Any:
        _read_claims(self)
        return dict.pop(self, *args)

    def popitem(self) -> Any:
        _read_claims(self)
        return dict.popitem(self)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        _read_claims(self)
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        _read_claims(self)
        dict.update(self, *args, **kwargs)

    def clear(self) -> None:
        _read_claims(self)
        dict.clear(self)


_Lazy = LazyClaims
_time = time.time
class TokenVerifier:
    """SimpleJWT's ``AccessToken(token)`` decision, made by the Rust core.

    Arguments are named after SimpleJWT's settings. ``secret`` is
    ``SIGNING_KEY``; ``fallbacks`` are extra keys to accept (SimpleJWT itself
    accepts none). Instances are immutable and may be shared between threads.
    """

    __slots__ = (
        "_handle",
        "_address",
        "_claims",
        "algorithm",
        "leeway",
        "audience",
        "issuer",
        "user_id_claim",
        "token_type_claim",
        "jti_claim",
    )

    def __init__(
        self,
        secret: Union[str, bytes],
        *,
        fallbacks: Iterable[Union[str, bytes]] = (),
        algorithm: str = "HS256",
        leeway: Union[int, float, _dt.timedelta] = 0,
        audience: Optional[str] = None,
        issuer: Optional[str] = None,
        user_id_claim: str = "user_id",
        token_type_claim: str = "token_type",
        jti_claim: str = "jti",
        max_token_bytes: Optional[int] = None,
    ) -> None:
        if algorithm not in ("HS256", "HS384", "HS512"):
            raise SettingsError("TokenVerifier", f"algorithm {algorithm!r} is not supported (HS256, HS384, HS512)")
        if audience is not None and not isinstance(audience, str):
            raise SettingsError("TokenVerifier", "audience must be a single string")
        if issuer is not None and not isinstance(issuer, str):
            raise SettingsError("TokenVerifier", "issuer must be a string")
        doc: dict = {
            "secret": _text(secret, "secret"),
            "fallback_secrets": [_text(k, "fallbacks") for k in fallbacks],
            "algorithm": algorithm,
            "leeway": _seconds(leeway, "leeway"),
            "audience": audience,
            "issuer": issuer,
            "user_id_claim": _text(user_id_claim, "user_id_claim"),
            "token_type_claim": _text(token_type_claim, "token_type_claim"),
            "jti_claim": _text(jti_claim, "jti_claim"),
        }
        if max_token_bytes is not None:
            doc["max_token_bytes"] = int(max_token_bytes)
        raw = json.dumps(doc).encode("utf-8")
        out = ffi.new("wsauth_token_verifier **")
        _raise(lib.wsauth_token_verifier_new(raw, len(raw), out), "TokenVerifier")
        self._handle = ffi.gc(out[0], lib.wsauth_token_verifier_free)
        self._address = int(ffi.cast("uintptr_t", self._handle))
        self._claims: dict = {}
        self.algorithm = algorithm
        self.leeway = doc["leeway"]
        self.audience = audience
        self.issuer = issuer
        self.user_id_claim = doc["user_id_claim"]
        self.token_type_claim = doc["token_type_claim"]
        self.jti_claim = doc["jti_claim"]

    def __repr__(self) -> str:
        return f"TokenVerifier(algorithm={self.algorithm!r}, leeway={self.leeway}, audience={self.audience!r}, issuer={self.issuer!r})"

    @classmethod
    def from_django_settings(cls, settings: Any = None, *, fallbacks: Iterable[Union[str, bytes]] = ()) -> "TokenVerifier":
        """A verifier configured like SimpleJWT from Django settings.

        Reads ``SIMPLE_JWT`` (``SIGNING_KEY`` defaulting to ``SECRET_KEY``,
        ``ALGORITHM``, ``LEEWAY``, ``AUDIENCE``, ``ISSUER``, ``USER_ID_CLAIM``,
        ``TOKEN_TYPE_CLAIM``, ``JTI_CLAIM``). SimpleJWT ignores
        ``SECRET_KEY_FALLBACKS``, so no fallback key is accepted unless given.
        """
        if settings is None:
            from django.conf import settings as django_settings

            settings = django_settings
        sj = dict(getattr(settings, "SIMPLE_JWT", None) or {})
        key = sj.get("SIGNING_KEY") or settings.SECRET_KEY
        return cls(
            key,
            fallbacks=fallbacks,
            algorithm=sj.get("ALGORITHM", "HS256"),
            leeway=sj.get("LEEWAY", 0),
            audience=sj.get("AUDIENCE"),
            issuer=sj.get("ISSUER"),
            user_id_claim=sj.get("USER_ID_CLAIM", "user_id"),
            token_type_claim=sj.get("TOKEN_TYPE_CLAIM", "token_type"),
            jti_claim=sj.get("JTI_CLAIM", "jti"),
        )

    def check(self, token: Union[str, bytes], now: Union[int, float, None] = None) -> CheckResult:
        """``AccessToken(token)`` at ``now`` (Unix seconds; default: the clock).

        Returns ``{"valid": True, "user_id": "1", "claims": {...}}`` or
        ``{"valid": False, "error": {"kind": "expired", "message": "Token is expired"}}``.

        Every call is decided by the core (signature, expiry, claims). The
        claims are a :class:`LazyClaims`: a ``dict`` parsed the first time it
        is used, from the decoded payload the core hands out with the
        decision, exactly as PyJWT parses it (``json.loads``: duplicate keys,
        ``NaN``, big integers, lone surrogates as PyJWT gives them) — the
        token is not verified again, and a caller that needs only the
        decision and the user id never pays for parsing. Each call returns
        a new dict.
        """
        t = None if now is None else _now(now)
        if _check_token is not None:
            # None: the C call reads the clock as int(time.time()) does.
            fast = _check_token(self._address, token, t, self, _Lazy, _PENDING)
            if fast is not None:
                return fast
        if t is None:
            t = int(_time())
        try:
            data = token.encode() if token.__class__ is str else bytes(token)  # type: ignore[union-attr]
        except (UnicodeEncodeError, TypeError):
            return {"valid": False, "error": dict(_malformed["error"])}
        result, text, cap, text_len = _scratch.check
        payload, payload_cap, payload_len = _scratch.payload
        rc = _check_result(self._handle, data, len(data), t, result, text, cap, text_len, payload, payload_cap, payload_len)
        if rc != _OK:
            if rc == _INVALID_UTF8:
                return {"valid": False, "error": dict(_malformed["error"])}
            if rc != _BUFFER_TOO_SMALL:
                _raise(rc, "TokenVerifier.check")
            result, text, cap, text_len = _scratch.ensure_text(text_len[0])
            _raise(
                _check_result(self._handle, data, len(data), t, result, text, cap, text_len, payload, payload_cap, payload_len),
                "TokenVerifier.check",
            )
        kind = result.kind
        if kind == 0:
            n = payload_len[0]
            # The decoded payload, parsed on first use (never verified
            # again); one too large for the buffer is read from the core.
            source = _unpack(payload, n) if 2 <= n <= payload_cap else (self, data, t)
            how = result.user_id_type
            if how == _USER_ID_DECIMAL_STR:
                return {"valid": True, "user_id": str(result.user_id_int), "claims": _Lazy({_PENDING: source})}
            if how == _USER_ID_STR:
                return {"valid": True, "user_id": _unpack(text, text_len[0]).decode(), "claims": _Lazy({_PENDING: source})}
            if how == _USER_ID_INT:
                return {"valid": True, "user_id": result.user_id_int, "claims": _Lazy({_PENDING: source})}
            claims = _Lazy({_PENDING: source})
            if how == _USER_ID_ABSENT:
                return {"valid": True, "claims": claims}
            # Any other user id (a float, NaN, a big integer, a long string,
            # an object, …): the claim's value as PyJWT parses it, the same
            # object as in the claims (as SimpleJWT's token[USER_ID_CLAIM]).
            return {"valid": True, "user_id": claims[self.user_id_claim], "claims": claims}
        name = _KIND_NAMES.get(kind)
        if name is None:
            return self._check_json(data, t)
        return {"valid": False, "error": {"kind": name, "message": _unpack(text, text_len[0]).decode()}}

    def _check_json(self, data: bytes, t: int) -> CheckResult:
        """The core's whole answer (``wsauth_token_verifier_check_json``)
        for the token bytes ``data`` at whole second ``t``, parsed: what
        :meth:`check` returns, with the claims read at once."""
        return _loads(self._check_json_text(data, t))

    def _check_json_text(self, data: bytes, t: int) -> str:
        """:meth:`_check_json`'s JSON text."""
        s = _scratch
        cap = s.cap
        if len(data) * 9 + 4096 > cap:
            s.ensure(_capacity(len(data)))
            cap = s.cap
        rc = _check_json(self._handle, data, len(data), t, s.buf, cap, s.out_len)
        if rc == _BUFFER_TOO_SMALL:
            s.ensure(s.out_len[0])
            rc = _check_json(self._handle, data, len(data), t, s.buf, s.cap, s.out_len)
        if rc != _OK:
            if rc == _INVALID_UTF8:
                return _MALFORMED_JSON
            _raise(rc, "TokenVerifier.check")
        # Decoded here: json.loads would first guess the encoding of bytes.
        return _unpack(s.buf, s.out_len[0]).decode("utf-8", "surrogatepass")

    def _claims_of(self, token: Union[str, bytes], t: int) -> dict:
        """The claims of a token :meth:`check` accepted at ``t``, to be
        copied (never modified: it may be the one kept for the token)."""
        data = token.encode() if token.__class__ is str else token  # type: ignore[union-attr]
        cached = self._claims.get(data)
        if cached is not None:
            return cached
        s = _scratch
        cap = s.cap
        if len(data) * 9 + 4096 > cap:
            s.ensure(_capacity(len(data)))
            cap = s.cap
        rc = _claims_json(self._handle, data, len(data), t, s.buf, cap, s.out_len)
        if rc == _BUFFER_TOO_SMALL:
            s.ensure(s.out_len[0])
            rc = _claims_json(self._handle, data, len(data), t, s.buf, s.cap, s.out_len)
        # A token check() accepted at `t` is accepted again: the core decides
        # the same token at the same second the same way.
        _raise(rc, "TokenVerifier.check")
        text = _unpack(s.buf, s.out_len[0]).decode("utf-8", "surrogatepass")
        claims = _loads(text)
        # Kept only when every claim is a scalar (copies then share nothing
        # mutable): a nested object or array would need a second "{" or a
        # "[" (inside strings they only make this say no).
        if text.count("{") == 1 and "[" not in text:
            cache = self._claims
            if len(cache) >= CLAIMS_CACHE_SIZE:
                cache.clear()
            cache[data] = claims
        return claims

    def is_valid(self, token: Union[str, bytes], now: Union[int, float, None] = None) -> bool:
        """The decision alone (no claims): True when ``AccessToken(token)`` would accept it."""
        try:
            data = token.encode() if token.__class__ is str else bytes(token)  # type: ignore[union-attr]
        except (UnicodeEncodeError, TypeError):
            return False
        s = _scratch
        rc = _check_fast(self._handle, data, len(data), int(time.time()) if now is None else _now(now), s.kind)
        if rc == _INVALID_UTF8:
            return False
        _raise(rc, "TokenVerifier.is_valid")
        return s.kind[0] == 0

    def mint(
        self,
        user_id: Union[str, int],
        *,
        lifetime: Union[int, _dt.timedelta] = 300,
        jti: Optional[str] = None,
        extra: Optional[Mapping[str, Any]] = None,
        now: Union[int, float, None] = None,
    ) -> str:
        """A token shaped like SimpleJWT's, signed with this verifier's key (for development and tests)."""
        if isinstance(lifetime, _dt.timedelta):
            lifetime = int(lifetime.total_seconds())
        req = {
            "user_id": user_id,
            "lifetime": int(lifetime),
            "jti": jti if jti is not None else uuid.uuid4().hex,
            "extra": dict(extra or {}),
        }
        raw = json.dumps(req).encode("utf-8")
        buf = ffi.new("char[]", 16384)
        n = ffi.new("size_t *")
        _raise(lib.wsauth_token_verifier_mint(self._handle, raw, len(raw), _now(now), buf, 16384, n), "TokenVerifier.mint")
        return ffi.unpack(buf, n[0]).decode("ascii")


RowFetcher = Callable[[str], Optional[Mapping[str, Any]]]
UserFetcher = Callable[[str], Optional[Mapping[str, Any]]]


class SessionVerifier:
    """Django's ``get_user()`` decision for a session cookie, made by the Rust core.

    ``engine`` is ``"db"`` (also ``cached_db`` / ``cache`` / ``file``: the
    cookie names a row the host fetches) or ``"signed_cookies"`` (the cookie
    is the session), or Django's dotted ``SESSION_ENGINE``.
    ``accept_fallback_hash=True`` decides as ``django.contrib.auth.get_user``
    (a session hash made with a ``SECRET_KEY_FALLBACKS`` key is accepted);
    ``False`` as Channels' ``get_user``.
    """

    __slots__ = ("_handle", "engine", "cookie_name", "cookie_age")

    def __init__(
        self,
        secret: Union[str, bytes],
        *,
        fallbacks: Iterable[Union[str, bytes]] = (),
        engine: str = "db",
        cookie_name: str = "sessionid",
        cookie_age: Union[int, _dt.timedelta] = DEFAULT_SESSION_COOKIE_AGE,
        auth_backends: Iterable[str] = DEFAULT_AUTH_BACKENDS,
        accept_fallback_hash: bool = True,
    ) -> None:
        doc = {
            "secret": _text(secret, "secret"),
            "fallback_secrets": [_text(k, "fallbacks") for k in fallbacks],
            "engine": engine,
            "cookie_name": _text(cookie_name, "cookie_name"),
            "cookie_age": _seconds(cookie_age, "cookie_age"),
            "auth_backends": [_text(b, "auth_backends") for b in auth_backends],
            "accept_fallback_hash": bool(accept_fallback_hash),
        }
        raw = json.dumps(doc).encode("utf-8")
        out = ffi.new("wsauth_session_verifier **")
        _raise(lib.wsauth_session_verifier_new(raw, len(raw), out), "SessionVerifier")
        self._handle = ffi.gc(out[0], lib.wsauth_session_verifier_free)
        self.engine = "signed_cookies" if engine.rsplit(".", 1)[-1] == "signed_cookies" else "db"
        self.cookie_name = doc["cookie_name"]
        self.cookie_age = doc["cookie_age"]

    def __repr__(self) -> str:
        return f"SessionVerifier(engine={self.engine!r}, cookie_name={self.cookie_name!r}, cookie_age={self.cookie_age})"

    @classmethod
    def from_django_settings(cls, settings: Any = None, *, accept_fallback_hash: bool = True) -> "SessionVerifier":
        """A verifier configured from ``SECRET_KEY``, ``SECRET_KEY_FALLBACKS``,
        ``SESSION_ENGINE``, ``SESSION_COOKIE_NAME``, ``SESSION_COOKIE_AGE`` and
        ``AUTHENTICATION_BACKENDS``."""
        if settings is None:
            from django.conf import settings as django_settings

            settings = django_settings
        return cls(
            settings.SECRET_KEY,
            fallbacks=getattr(settings, "SECRET_KEY_FALLBACKS", ()) or (),
            engine=getattr(settings, "SESSION_ENGINE", "django.contrib.sessions.backends.db"),
            cookie_name=getattr(settings, "SESSION_COOKIE_NAME", "sessionid"),
            cookie_age=getattr(settings, "SESSION_COOKIE_AGE", DEFAULT_SESSION_COOKIE_AGE),
            auth_backends=getattr(settings, "AUTHENTICATION_BACKENDS", DEFAULT_AUTH_BACKENDS),
            accept_fallback_hash=accept_fallback_hash,
        )

    def step(self, request: Mapping[str, Any], now: Union[int, float, None] = None) -> dict:
        """One stateless step (see ``wsauth_session_verifier_step_json``): returns
        ``{"need": "session_row", "session_key": …}``, ``{"need": "user", "user_id": …}``
        or a verdict."""
        raw = json.dumps(request).encode("utf-8")
        cap = 4096
        buf = ffi.new("char[]", cap)
        n = ffi.new("size_t *")
        _raise(
            lib.wsauth_session_verifier_step_json(self._handle, raw, len(raw), _now(now), buf, cap, n),
            "SessionVerifier.step",
        )
        return json.loads(ffi.unpack(buf, n[0]))

    def check(
        self,
        *,
        cookie: Optional[str] = None,
        cookie_header: Optional[Union[str, bytes]] = None,
        fetch_row: Optional[RowFetcher] = None,
        fetch_user: Optional[UserFetcher] = None,
        now: Union[int, float, None] = None,
    ) -> dict:
        """Decides a session given the cookie value (or the first ``Cookie``
        header) and two lookups: ``fetch_row(session_key)`` returns the
        ``django_session`` row as ``{"session_key", "session_data", "expire_date"}``
        (``expire_date`` as Django reads it — a datetime —, its ISO 8601 text,
        or whole Unix seconds; the core converts it) or ``None``;
        ``fetch_user(user_id)`` returns ``{"pk", "password", "is_active",
        "is_staff", "is_superuser"}`` or ``None``.

        Returns ``{"valid": True, "user_id": "1", "user": {...}}`` or
        ``{"valid": False, "error": {"kind": …, "message": …}}``.
        """
        t = _now(now)
        req: dict = {}
        if cookie is not None:
            req["cookie"] = cookie
        elif cookie_header is not None:
            req["cookie_header"] = cookie_header.decode("latin-1") if isinstance(cookie_header, bytes) else cookie_header
        for _ in range(4):
            res = self.step(req, t)
            need = res.get("need")
            if need is None:
                return res
            if need == "session_row":
                if fetch_row is None:
                    raise TypeError("SessionVerifier.check: this engine needs fetch_row")
                row = fetch_row(res["session_key"])
                req["row"] = None if row is None else session_row(row)
            elif need == "user":
                if fetch_user is None:
                    raise TypeError("SessionVerifier.check: fetch_user is required")
                user = fetch_user(res["user_id"])
                req["user"] = None if user is None else dict(user)
            else:  # pragma: no cover - the ABI only asks for the two above
                raise WsauthError(lib.WSAUTH_RESULT_INVALID_STATE, "SessionVerifier.check", f"unknown step {need!r}")
        raise WsauthError(lib.WSAUTH_RESULT_INVALID_STATE, "SessionVerifier.check", "too many steps")


def _naive_zone() -> Optional[_dt.tzinfo]:
    """The zone Django reads naive datetimes in (``USE_TZ = False``: local
    time in ``TIME_ZONE``), or ``None`` (UTC) without Django settings."""
    try:
        from django.conf import settings
        from django.utils import timezone

        if settings.configured and not settings.USE_TZ:
            return timezone.get_default_timezone()
    except ImportError:  # pragma: no cover - Django is optional
        pass
    return None


def expire_date_text(value: Union[_dt.datetime, str]) -> str:
    """A session row's ``expire_date`` as the core reads it: ISO 8601 text,
    exactly as stored (microseconds and offset kept). An aware datetime is
    written as it is; a naive one is the database's own text, UTC when
    Django's ``USE_TZ`` is on (the core's reading of text without an
    offset), else local time in ``TIME_ZONE``, whose offset is attached.
    Converting it to a point in time is the core's rule alone
    (``wsauth_core::parse_iso8601_utc``)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, _dt.datetime):
        raise TypeError("expire_date must be a datetime, ISO 8601 text or whole Unix seconds")
    if value.tzinfo is None:
        zone = _naive_zone()
        if zone is not None:
            from django.utils import timezone

            value = timezone.make_aware(value, zone)
    return value.isoformat()


def session_row(row: Mapping[str, Any]) -> dict:
    """A ``django_session`` row in the ABI's shape: ``expire_date`` as ISO
    8601 text (see :func:`expire_date_text`), or whole Unix seconds given as
    an ``int``."""
    expire = row["expire_date"]
    is_int = isinstance(expire, int) and not isinstance(expire, bool)
    return {
        "session_key": str(row["session_key"]),
        "session_data": str(row["session_data"]),
        "expire_date": expire if is_int else expire_date_text(expire),
    }


# ---------------------------------------------------------------------------
# The whole upgrade decision: authenticator → handshake → connection.


def _json_out(fn: Callable[..., int], context: str, *args: Any, cap: int = 8192) -> dict:
    buf = ffi.new("char[]", cap)
    n = ffi.new("size_t *")
    _raise(fn(*args, buf, cap, n), context)
    return json.loads(ffi.unpack(buf, n[0]))


class Authenticator:
    """The core's ``Authenticator``, built from a configuration dict with the
    same members as the ``wsauth serve`` TOML file (``jwt``, ``users``,
    ``session``, ``credentials``, ``origins``, ``routes``, ``limits``).
    Immutable; share one between threads."""

    __slots__ = ("_handle",)

    def __init__(self, config: Mapping[str, Any]) -> None:
        raw = json.dumps(config).encode("utf-8")
        out = ffi.new("wsauth_authenticator **")
        _raise(lib.wsauth_authenticator_new(raw, len(raw), out), "Authenticator")
        self._handle = ffi.gc(out[0], lib.wsauth_authenticator_free)

    def start(
        self,
        path: str,
        *,
        query: Union[str, bytes] = "",
        headers: Iterable[tuple] = (),
        peer: Optional[str] = None,
        now: Union[int, float, None] = None,
    ) -> "Handshake":
        """Starts deciding an upgrade. ``headers`` are ``(name, value)`` pairs
        of ``bytes`` (ASGI) or ``str``; ``query`` the raw query string;
        ``peer`` the client's IP address (with ``limits.rate_limit``
        configured, the handshake asks for its limiter state first); ``now``
        Unix seconds (default: the clock), counted in milliseconds."""
        hdrs = []
        for name, value in headers:
            if isinstance(name, bytes):
                name = name.decode("latin-1")
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            hdrs.append((name, value))
        req: dict = {
            "path": path,
            "query": query.decode("latin-1") if isinstance(query, bytes) else query,
            "headers": hdrs,
        }
        if peer:
            req["peer"] = peer
        raw = json.dumps(req).encode("utf-8")
        out = ffi.new("wsauth_handshake **")
        _raise(lib.wsauth_authenticator_start_json_ms(self._handle, raw, len(raw), _now_ms(now), out), "Authenticator.start")
        return Handshake(ffi.gc(out[0], lib.wsauth_handshake_free))


class MemoryRateStore:
    """Per-peer rate-limit states (``tat_ms``) for one process: the store
    :meth:`Handshake.run` answers the rate step from unless given another
    (e.g. one backed by Redis with the same two methods). The states are
    the core's; the store only keeps them, at most ``max_peers`` at a time:
    when full, the states the core said may be forgotten (``idle_at_ms``
    passed) go first, then the least recently stored."""

    def __init__(self, max_peers: int = 100_000) -> None:
        if max_peers < 1:
            raise ValueError("max_peers must be at least 1")
        self._lock = threading.Lock()
        self._states: "OrderedDict[str, Tuple[int, int]]" = OrderedDict()
        self._max = max_peers

    def __len__(self) -> int:
        with self._lock:
            return len(self._states)

    def get(self, peer: str) -> int:
        with self._lock:
            return self._states.get(peer, (0, 0))[0]

    def compare_and_set(self, peer: str, expected: int, new: int, idle_at_ms: int) -> Optional[int]:
        """Stores ``new`` if the state is still ``expected`` (returns None),
        else returns the state found."""
        with self._lock:
            states = self._states
            found = states.get(peer, (0, 0))[0]
            if found != expected:
                return found
            states[peer] = (new, idle_at_ms)
            states.move_to_end(peer)
            if len(states) > self._max:
                self._shrink()
            return None

    def _shrink(self) -> None:
        # Forget idle states; if too many are still live, the least recently
        # stored, down to 7/8 of the bound so a full store is not swept on
        # every attempt.
        states = self._states
        now_ms = time.time_ns() // 1_000_000
        for key in [k for k, (_, idle_at) in states.items() if idle_at <= now_ms]:
            del states[key]
        keep = self._max - self._max // 8
        while len(states) > keep:
            states.popitem(last=False)


_rate_store = MemoryRateStore()


class Handshake:
    """One decision in progress. ``poll()`` returns the next step as a dict
    (``{"step": "user", "pk": "1"}`` …, or ``{"step": "done", "decision": {...}}``);
    answer lookups with the ``answer_*`` methods. Not thread-safe: use from
    one thread at a time."""

    __slots__ = ("_handle",)

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def poll(self) -> dict:
        return _json_out(lib.wsauth_handshake_poll_json, "Handshake.poll", self._handle)

    def decision(self) -> dict:
        return _json_out(lib.wsauth_handshake_decision_json, "Handshake.decision", self._handle)

    def answer_session(self, row: Mapping[str, Any]) -> None:
        """Answers the session step with the ``django_session`` row as read
        (``expire_date`` a datetime, ISO 8601 text or whole Unix seconds:
        the core converts it)."""
        r = session_row(row)
        key = r["session_key"].encode("utf-8")
        data = r["session_data"].encode("utf-8")
        expire = r["expire_date"]
        if isinstance(expire, int):
            rc = lib.wsauth_handshake_answer_session(self._handle, key, len(key), data, len(data), expire)
        else:
            text = expire.encode("utf-8")
            rc = lib.wsauth_handshake_answer_session_iso(self._handle, key, len(key), data, len(data), text, len(text))
        _raise(rc, "Handshake.answer_session")

    def authorize(self, path: str, now: Union[int, float, None] = None) -> "Handshake":
        """The route policy of ``path`` applied to the principal this decided
        handshake accepted, as a new handshake (``wsauth_handshake_authorize``):
        the credential is not verified again (no session, user or rate step;
        an owner / member route asks ``access``). A credential this handshake
        refused is anonymous on a non-strict anonymous route; 1013 and 4429
        stay."""
        p = path.encode("utf-8")
        out = ffi.new("wsauth_handshake **")
        _raise(lib.wsauth_handshake_authorize(self._handle, p, len(p), _now(now), out), "Handshake.authorize")
        return Handshake(ffi.gc(out[0], lib.wsauth_handshake_free))

    def answer_user(self, pk: Any, password: str, *, is_active: bool = True, is_staff: bool = False, is_superuser: bool = False) -> None:
        p = str(pk).encode("utf-8")
        pw = (password or "").encode("utf-8")
        _raise(
            lib.wsauth_handshake_answer_user(
                self._handle, p, len(p), pw, len(pw), bool(is_active), bool(is_staff), bool(is_superuser)
            ),
            "Handshake.answer_user",
        )

    def answer_none(self) -> None:
        _raise(lib.wsauth_handshake_answer_none(self._handle), "Handshake.answer_none")

    def answer_bool(self, value: bool) -> None:
        _raise(lib.wsauth_handshake_answer_bool(self._handle, bool(value)), "Handshake.answer_bool")

    def answer_failed(self) -> None:
        _raise(lib.wsauth_handshake_answer_failed(self._handle), "Handshake.answer_failed")

    def answer_rate(self, tat_ms: int) -> None:
        _raise(lib.wsauth_handshake_answer_rate(self._handle, int(tat_ms)), "Handshake.answer_rate")

    def answer_stored(self) -> None:
        _raise(lib.wsauth_handshake_answer_stored(self._handle), "Handshake.answer_stored")

    def run(
        self,
        *,
        fetch_session: Optional[Callable[[str], Optional[Mapping[str, Any]]]] = None,
        fetch_user: Optional[Callable[[str], Optional[Mapping[str, Any]]]] = None,
        is_revoked: Optional[Callable[[str], bool]] = None,
        has_access: Optional[Callable[[dict], bool]] = None,
        rate_store: Optional[Any] = None,
    ) -> dict:
        """Drives the handshake to its decision with these lookups (a lookup
        that raises, or one that is missing, is answered "failed": 1013).
        The rate step (``limits.rate_limit``) is answered from ``rate_store``,
        by default one :class:`MemoryRateStore` per process."""
        store = _rate_store if rate_store is None else rate_store
        for _ in range(16):
            step = self.poll()
            kind = step["step"]
            if kind == "done":
                return step["decision"]
            try:
                if kind == "rate":
                    self.answer_rate(store.get(step["peer"]))
                elif kind == "rate_commit":
                    found = store.compare_and_set(
                        step["peer"], step["expected_tat_ms"], step["new_tat_ms"], step["idle_at_ms"]
                    )
                    self.answer_stored() if found is None else self.answer_rate(found)
                elif kind == "session" and fetch_session is not None:
                    row = fetch_session(step["session_key"])
                    self.answer_none() if row is None else self.answer_session(row)
                elif kind == "user" and fetch_user is not None:
                    rec = fetch_user(step["pk"])
                    if rec is None:
                        self.answer_none()
                    else:
                        self.answer_user(
                            rec["pk"],
                            rec.get("password", ""),
                            is_active=rec.get("is_active", True),
                            is_staff=rec.get("is_staff", False),
                            is_superuser=rec.get("is_superuser", False),
                        )
                elif kind == "jti_revoked" and is_revoked is not None:
                    self.answer_bool(is_revoked(step["jti"]))
                elif kind == "access" and has_access is not None:
                    self.answer_bool(has_access(step))
                else:
                    self.answer_failed()
            except WsauthError:
                raise
            except Exception:
                self.answer_failed()
        raise WsauthError(lib.WSAUTH_RESULT_INVALID_STATE, "Handshake.run", "too many steps")


class Connection:
    """An open connection (after an accepting decision): token expiry,
    first-message auth and in-band refresh. Not thread-safe."""

    __slots__ = ("_handle",)

    DELIVER = lib.WSAUTH_MESSAGE_DELIVER
    HANDLED = lib.WSAUTH_MESSAGE_HANDLED
    CLOSE = lib.WSAUTH_MESSAGE_CLOSE
    STEPS = lib.WSAUTH_MESSAGE_STEPS

    def __init__(self, handshake: Handshake) -> None:
        out = ffi.new("wsauth_connection **")
        _raise(lib.wsauth_connection_new(handshake._handle, out), "Connection")
        self._handle = ffi.gc(out[0], lib.wsauth_connection_free)

    def info(self) -> dict:
        return _json_out(lib.wsauth_connection_json, "Connection.info", self._handle)

    def poll_timeout(self) -> Optional[int]:
        has = ffi.new("bool *")
        at = ffi.new("int64_t *")
        _raise(lib.wsauth_connection_poll_timeout(self._handle, has, at), "Connection.poll_timeout")
        return int(at[0]) if has[0] else None

    def handle_timeout(self, now: Union[int, float, None] = None) -> Optional[tuple]:
        """``(code, reason)`` to close with, or ``None``."""
        close = ffi.new("wsauth_close *")
        _raise(lib.wsauth_connection_handle_timeout(self._handle, _now(now), close), "Connection.handle_timeout")
        return _close_tuple(close)

    def handle_message(self, message: Union[str, bytes], now: Union[int, float, None] = None) -> tuple:
        """``(action, close, handshake)``: action is ``DELIVER``, ``HANDLED``,
        ``CLOSE`` (close is ``(code, reason)``) or ``STEPS`` (drive the
        handshake, then call :meth:`finish`)."""
        data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        action = ffi.new("uint32_t *")
        close = ffi.new("wsauth_close *")
        steps = ffi.new("wsauth_handshake **")
        _raise(
            lib.wsauth_connection_handle_message(self._handle, data, len(data), _now(now), action, close, steps),
            "Connection.handle_message",
        )
        hs = Handshake(ffi.gc(steps[0], lib.wsauth_handshake_free)) if steps[0] != ffi.NULL else None
        return int(action[0]), _close_tuple(close), hs

    def finish(self, handshake: Handshake, now: Union[int, float, None] = None) -> Optional[tuple]:
        close = ffi.new("wsauth_close *")
        _raise(lib.wsauth_connection_finish(self._handle, handshake._handle, _now(now), close), "Connection.finish")
        return _close_tuple(close)


def _close_tuple(close: Any) -> Optional[tuple]:
    if close.code == 0:
        return None
    return int(close.code), ffi.string(close.reason, close.reason_len).decode("utf-8", "replace")


def revocation(
    *,
    jti: Optional[str] = None,
    user: Optional[str] = None,
    exp: Optional[int] = None,
    redis: Optional[Mapping[str, Any]] = None,
    now: Union[int, float, None] = None,
) -> dict:
    """What revoking a token id (until ``exp``) or a user (for the
    configured window) writes to Redis, by the core's rule:
    ``{"key", "ttl_secs", "channel", "message"}``. ``redis`` is the
    gateways' ``[redis]`` table (``key_prefix``, windows, …)."""
    doc: Dict[str, Any] = {"redis": dict(redis or {})}
    if jti is not None:
        doc["jti"] = jti
    if user is not None:
        doc["user"] = str(user)
    if exp is not None:
        doc["exp"] = int(exp)
    raw = json.dumps(doc).encode("utf-8")
    return _json_out(lib.wsauth_revocation_json, "revocation", raw, len(raw), _now(now))


def _publish(rev: dict, redis: Optional[Mapping[str, Any]], client: Any) -> int:
    if client is None:
        import redis as redis_py  # the `redis` package: pip install redis

        url = (redis or {}).get("url", "redis://127.0.0.1:6379/0")
        if not isinstance(url, str):
            raise SettingsError("revocation: give `client` or a string `url` in the redis table")
        client = redis_py.Redis.from_url(url)
    pipe = client.pipeline(transaction=True)
    pipe.set(rev["key"], 1, ex=rev["ttl_secs"])
    pipe.publish(rev["channel"], rev["message"])
    _, heard = pipe.execute()
    return int(heard)


def revoke_jti(
    jti: str,
    *,
    exp: Optional[int] = None,
    redis: Optional[Mapping[str, Any]] = None,
    client: Any = None,
    now: Union[int, float, None] = None,
) -> int:
    """Revokes a token id on every gateway sharing ``redis`` (the ``[redis]``
    table; or pass a ``redis.Redis`` as ``client``): stored until ``exp``
    (the token's expiry; else the configured window) and published, so open
    sockets carrying it close with 4401. Returns how many gateways heard it.
    For Django's ``user_logged_out`` or a token blacklist view."""
    return _publish(revocation(jti=jti, exp=exp, redis=redis, now=now), redis, client)


def revoke_user(
    pk: Any,
    *,
    redis: Optional[Mapping[str, Any]] = None,
    client: Any = None,
    now: Union[int, float, None] = None,
) -> int:
    """Revokes every credential of user ``pk`` (``str(pk)``) on every gateway
    sharing ``redis`` for the configured ``user_revocation_secs``, closing
    its open sockets with 4401. For a password-change or deactivation signal."""
    return _publish(revocation(user=str(pk), redis=redis, now=now), redis, client)


# ---------------------------------------------------------------------------
# Edge mode: the principal header a gateway (``wsauth serve`` with
# ``[upstream]``) forwards. Format, signature, age and path binding are the
# core's (``wsauth_edge_*``); this block only moves bytes.


#: How long a principal header is accepted after it was issued (ms): the
#: gateway's default, as the core defines it.
EDGE_DEFAULT_MAX_AGE_MS: int = int(lib.WSAUTH_EDGE_DEFAULT_MAX_AGE_MS)
#: The principal header's default name (the gateway's ``[upstream] header``).
EDGE_DEFAULT_HEADER: str = "x-wsauth-principal"


class _EdgeScratch(threading.local):
    def __init__(self) -> None:
        self.cap = 16384
        self.buf = ffi.new("char[]", self.cap)
        self.out_len = ffi.new("size_t *")


_edge_scratch = _EdgeScratch()


def _edge_call(fn: Callable[[Any, int, Any], int], context: str) -> bytes:
    """Calls ``fn(buf, cap, out_len)``, growing the buffer once when the core
    reports a larger output."""
    s = _edge_scratch
    rc = fn(s.buf, s.cap, s.out_len)
    if rc == _BUFFER_TOO_SMALL:
        s.cap = int(s.out_len[0])
        s.buf = ffi.new("char[]", s.cap)
        rc = fn(s.buf, s.cap, s.out_len)
    _raise(rc, context)
    return ffi.unpack(s.buf, s.out_len[0])


def edge_refusal() -> Tuple[int, str]:
    """The close (code, reason) for a refused principal header (4401), as
    the core defines it: accept, then close with it."""
    close = ffi.new("wsauth_close *")
    _raise(lib.wsauth_edge_refusal(close), "edge_refusal")
    out = _close_tuple(close)
    assert out is not None
    return out


class EdgeVerifier:
    """Verifies (and, for tests and gateways outside ``wsauth serve``,
    signs) edge mode's principal header with the upstream secret. Immutable;
    may be shared between threads. Never shows the secret."""

    __slots__ = ("_handle",)

    def __init__(self, secret: Union[str, bytes]) -> None:
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        out = ffi.new("wsauth_edge_verifier **")
        _raise(lib.wsauth_edge_verifier_new(raw, len(raw), out), "EdgeVerifier")
        self._handle = ffi.gc(out[0], lib.wsauth_edge_verifier_free)

    def __repr__(self) -> str:
        return "EdgeVerifier(<secret redacted>)"

    def verify(
        self,
        value: Union[bytes, str, None],
        path: str,
        now: Union[int, float, _dt.datetime, None] = None,
        max_age_ms: Optional[int] = None,
    ) -> Dict[str, Any]:
        """The core's answer for header ``value`` (``None``: missing) on
        ``path`` (ASGI's ``scope["path"]``) at ``now`` (Unix seconds; default
        the clock): ``{"valid": True, "user": {...} | None, "route": ...,
        "path": ..., "issued_at_ms": ...}`` or ``{"valid": False, "error":
        {"kind": ..., "message": ...}}``."""
        if isinstance(value, str):
            value = value.encode("utf-8")
        data = ffi.NULL if value is None else bytes(value)
        n = 0 if value is None else len(data)
        p = path.encode("utf-8", "surrogateescape")
        age = EDGE_DEFAULT_MAX_AGE_MS if max_age_ms is None else int(max_age_ms)
        now_ms = _now_ms(now)
        raw = _edge_call(
            lambda buf, cap, out_len: lib.wsauth_edge_verify_json(
                self._handle, data, n, p, len(p), now_ms, age, buf, cap, out_len
            ),
            "EdgeVerifier.verify",
        )
        return json.loads(raw)

    def verify_scope(
        self,
        scope: Mapping[str, Any],
        header: Union[str, bytes] = EDGE_DEFAULT_HEADER,
        now: Union[int, float, _dt.datetime, None] = None,
        max_age_ms: Optional[int] = None,
    ) -> Dict[str, Any]:
        """The core's answer for the principal header of an ASGI connection
        ``scope``, in the shape of :meth:`verify`. Its ``headers`` go to the
        core as they are, and its ``path`` as UTF-8 (``surrogatepass``: a
        path holding surrogates, which no signed path does, arrives as bytes
        that are not UTF-8); the core reads the headers named ``header``
        and decides — none is ``missing``, more than one ``repeated``, a path
        that is not UTF-8 ``wrong_path`` — then verifies the one at ``now``
        (Unix seconds; default the clock)."""
        name = header.encode("utf-8") if isinstance(header, str) else bytes(header)
        pairs = list(scope.get("headers") or ())
        headers = ffi.new("wsauth_header[]", len(pairs))
        keep: list[Any] = []  # the buffers the entries point into, alive until the call returns
        for i, (n, v) in enumerate(pairs):
            nb = ffi.from_buffer(n)
            vb = ffi.from_buffer(v)
            keep.append((nb, vb))
            entry = headers[i]
            entry.name = nb
            entry.name_len = len(nb)
            entry.value = vb
            entry.value_len = len(vb)
        p = scope.get("path", "").encode("utf-8", "surrogatepass")
        age = EDGE_DEFAULT_MAX_AGE_MS if max_age_ms is None else int(max_age_ms)
        now_ms = _now_ms(now)
        raw = _edge_call(
            lambda buf, cap, out_len: lib.wsauth_edge_verify_headers_json(
                self._handle, name, len(name), headers, len(pairs), p, len(p), now_ms, age, buf, cap, out_len
            ),
            "EdgeVerifier.verify_scope",
        )
        del keep
        return json.loads(raw)

    def sign(
        self,
        user: Optional[Mapping[str, Any]],
        route: str,
        path: str,
        now: Union[int, float, _dt.datetime, None] = None,
    ) -> str:
        """A principal header as the gateway writes it: ``user`` in the shape
        :meth:`verify` answers with (``None``: anonymous), on ``route``,
        bound to ``path`` (as forwarded, percent-encoded), issued ``now``."""
        doc = ffi.NULL if user is None else json.dumps(dict(user)).encode("utf-8")
        n = 0 if user is None else len(doc)
        r = route.encode("utf-8")
        p = path.encode("utf-8")
        now_ms = _now_ms(now)
        raw = _edge_call(
            lambda buf, cap, out_len: lib.wsauth_edge_sign(
                self._handle, doc, n, r, len(r), p, len(p), now_ms, buf, cap, out_len
            ),
            "EdgeVerifier.sign",
        )
        return raw.decode("ascii")
