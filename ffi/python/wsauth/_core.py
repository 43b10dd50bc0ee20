"""Token and session verifiers: thin wrappers over libwsauth.

Every decision is made by the Rust core; this module only converts Python
values to the C ABI's inputs and its JSON answers back to dicts.
"""

from __future__ import annotations

import datetime as _dt
import json
import threading
import time
import uuid
from typing import Any, Callable, Iterable, Mapping, Optional, Union

from ._native import ffi, lib

__all__ = [
    "WsauthError",
    "SettingsError",
    "TokenVerifier",
    "SessionVerifier",
    "CheckResult",
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

    def ensure(self, cap: int) -> None:
        if cap > self.cap:
            self.cap = cap
            self.buf = ffi.new("char[]", cap)


_scratch = _Scratch()
_check_json = lib.wsauth_token_verifier_check_json
_capacity = lib.wsauth_token_check_json_capacity
_loads = json.loads
_malformed: CheckResult = {"valid": False, "error": {"kind": "malformed", "message": "Token is invalid"}}


class TokenVerifier:
    """SimpleJWT's ``AccessToken(token)`` decision, made by the Rust core.

    Arguments are named after SimpleJWT's settings. ``secret`` is
    ``SIGNING_KEY``; ``fallbacks`` are extra keys to accept (SimpleJWT itself
    accepts none). Instances are immutable and may be shared between threads.
    """

    __slots__ = ("_handle", "algorithm", "leeway", "audience", "issuer", "user_id_claim", "token_type_claim", "jti_claim")

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
            "fallbacks": [_text(k, "fallbacks") for k in fallbacks],
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
        """
        try:
            data = token.encode() if token.__class__ is str else bytes(token)  # type: ignore[union-attr]
        except (UnicodeEncodeError, TypeError):
            return {"valid": False, "error": dict(_malformed["error"])}
        t = int(time.time()) if now is None else _now(now)
        s = _scratch
        cap = s.cap
        if len(data) * 2 + 4096 > cap:
            s.ensure(_capacity(len(data)))
            cap = s.cap
        rc = _check_json(self._handle, data, len(data), t, s.buf, cap, s.out_len)
        if rc != _OK:
            if rc == _INVALID_UTF8:
                return {"valid": False, "error": dict(_malformed["error"])}
            _raise(rc, "TokenVerifier.check")
        return _loads(ffi.unpack(s.buf, s.out_len[0]))

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
            "fallbacks": [_text(k, "fallbacks") for k in fallbacks],
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
        (``expire_date`` a datetime or Unix seconds) or ``None``;
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


def unix_seconds(value: Union[_dt.datetime, int, float]) -> int:
    """Unix seconds (floored) of an aware datetime, a naive one in Django's
    default time zone, or a number."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            try:
                from django.utils import timezone

                value = timezone.make_aware(value, timezone.get_default_timezone())
            except Exception:  # Django not configured: treat as UTC
                value = value.replace(tzinfo=_dt.timezone.utc)
        return int(value.timestamp() // 1)
    return int(value // 1)


def session_row(row: Mapping[str, Any]) -> dict:
    """A ``django_session`` row in the ABI's shape."""
    return {
        "session_key": str(row["session_key"]),
        "session_data": str(row["session_data"]),
        "expire_date": unix_seconds(row["expire_date"]),
    }
