"""Django Channels integration, decided by the wsauth core.

``WsAuthMiddlewareStack(inner)`` is a drop-in for Channels'
``AuthMiddlewareStack``: it keeps ``scope["cookies"]`` and
``scope["session"]`` (Channels' own cookie and session middleware) and sets
``scope["user"]`` — resolved before the inner application runs, as Channels
does — from a token (``?token=`` / ``?access=``, ``Authorization: Bearer``,
or the ``bearer`` subprotocol) or a Django session cookie. Invalid
credentials leave ``AnonymousUser``; why is in ``scope["wsauth"]``. The
core decides each connection once, here: a WebSocket whose ``Origin`` it
refuses is refused before accept (HTTP 403).

``RequireAuthMixin`` enforces a consumer's requirement (authenticated, staff,
superuser, owner or member) on the middleware's decision by accepting, then
closing with 4401 / 4403, so browsers can read the code (a close before
accept only shows them 1006); the accept answers the ``bearer`` subprotocol
when the client offered it, as the core's decision says. It also closes
with 4401 when the token expires on the open socket, unless the client
refreshes it with ``{"type": "refresh", "token": "…"}``.

Python only translates: credentials, users and sessions are decided by the
Rust core through libwsauth; the ORM answers the core's lookups.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import quote

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.signals import setting_changed
from django.db import models

from ._core import DEFAULT_AUTH_BACKENDS, DEFAULT_SESSION_COOKIE_AGE, Authenticator, Connection, Handshake, _seconds

__all__ = [
    "WsAuthMiddleware",
    "WsAuthMiddlewareStack",
    "RequireAuthMixin",
    "Requirement",
    "owner",
    "member",
    "django_config",
    "get_authenticator",
]

#: Synthetic paths of the requirement routes in the core's configuration.
#: Channels routes by URL itself; the core only decides credentials + policy.
_ROUTES: List[Dict[str, Any]] = [
    {"name": "identify", "path": "/", "requirement": "anonymous", "strict": True, "auth_message": False},
    {"name": "anonymous", "path": "/anonymous", "requirement": "anonymous", "auth_message": False},
    {"name": "authenticated", "path": "/authenticated", "requirement": "authenticated", "auth_message": False},
    {"name": "staff", "path": "/staff", "requirement": "staff", "auth_message": False},
    {"name": "superuser", "path": "/superuser", "requirement": "superuser", "auth_message": False},
    {"name": "owner", "path": "/owner/<resource>", "requirement": {"owner": "resource"}, "auth_message": False},
    {"name": "member", "path": "/member/<resource>", "requirement": {"member": "resource"}, "auth_message": False},
]
_PATHS = {"anonymous": "/anonymous", "authenticated": "/authenticated", "staff": "/staff", "superuser": "/superuser"}

_INT_FIELDS = (models.AutoField, models.BigAutoField, models.SmallAutoField, models.IntegerField)


def _pk_kind(field: Any) -> str:
    if isinstance(field, _INT_FIELDS):
        return "int"
    if isinstance(field, models.UUIDField):
        return "uuid"
    return "str"


def _header_name(meta_name: str) -> str:
    """``HTTP_AUTHORIZATION`` → ``Authorization``."""
    name = meta_name[5:] if meta_name.startswith("HTTP_") else meta_name
    return "-".join(p.capitalize() for p in name.split("_"))


def _merge(base: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def django_config(settings: Any = None) -> Dict[str, Any]:
    """The core configuration equivalent to Django's settings: ``SECRET_KEY``,
    ``SECRET_KEY_FALLBACKS``, ``SIMPLE_JWT`` (``SIGNING_KEY``, ``ALGORITHM``,
    ``LEEWAY``, ``AUDIENCE``, ``ISSUER``, claim names, ``AUTH_HEADER_TYPES``,
    ``AUTH_HEADER_NAME``, ``USER_ID_FIELD``, ``CHECK_USER_IS_ACTIVE``,
    ``CHECK_REVOKE_TOKEN``, ``REVOKE_TOKEN_CLAIM``), ``SESSION_ENGINE``,
    ``SESSION_COOKIE_NAME``, ``SESSION_COOKIE_AGE``, ``AUTHENTICATION_BACKENDS``.
    An optional ``WSAUTH`` setting (a dict with the same sections as the
    core configuration) is merged over the result."""
    if settings is None:
        from django.conf import settings as django_settings

        settings = django_settings
    sj = dict(getattr(settings, "SIMPLE_JWT", None) or {})
    user_model = get_user_model()
    pk = user_model._meta.pk
    user_id_field = sj.get("USER_ID_FIELD", "id")
    if user_id_field not in (pk.name, pk.attname):
        raise ImproperlyConfigured("wsauth: SIMPLE_JWT['USER_ID_FIELD'] must name the user model's primary key")
    header_types = sj.get("AUTH_HEADER_TYPES", ("Bearer",))
    if isinstance(header_types, str):
        header_types = (header_types,)
    jwt: Dict[str, Any] = {
        "secret": sj.get("SIGNING_KEY") or settings.SECRET_KEY,
        "algorithm": sj.get("ALGORITHM", "HS256"),
        "leeway": _seconds(sj.get("LEEWAY", 0), "SIMPLE_JWT['LEEWAY']"),
        "user_id_claim": sj.get("USER_ID_CLAIM", "user_id"),
        "token_type_claim": sj.get("TOKEN_TYPE_CLAIM", "token_type"),
        "jti_claim": sj.get("JTI_CLAIM", "jti"),
        "revoke_token_claim": sj.get("REVOKE_TOKEN_CLAIM", "hash_password"),
    }
    if sj.get("AUDIENCE") is not None:
        jwt["audience"] = sj["AUDIENCE"]
    if sj.get("ISSUER") is not None:
        jwt["issuer"] = sj["ISSUER"]
    config: Dict[str, Any] = {
        "jwt": jwt,
        "users": {
            "source": "directory",
            "pk": _pk_kind(pk),
            "check_user_is_active": bool(sj.get("CHECK_USER_IS_ACTIVE", True)),
            "check_password_claim": bool(sj.get("CHECK_REVOKE_TOKEN", False)),
        },
        "credentials": {
            "carriers": ["subprotocol", "header", "query"],
            "query_params": ["token", "access"],
            "header_types": list(header_types),
            "header_name": _header_name(sj.get("AUTH_HEADER_NAME", "HTTP_AUTHORIZATION")),
        },
        "origins": {"mode": "channels", "allowed": ["*"]},
        "routes": _ROUTES,
    }
    engine = getattr(settings, "SESSION_ENGINE", "django.contrib.sessions.backends.db")
    family = engine.rsplit(".", 1)[-1]
    if family in ("db", "cached_db", "signed_cookies"):
        config["session"] = {
            "engine": "signed_cookies" if family == "signed_cookies" else "db",
            "cookie_name": getattr(settings, "SESSION_COOKIE_NAME", "sessionid"),
            "cookie_age": _seconds(getattr(settings, "SESSION_COOKIE_AGE", DEFAULT_SESSION_COOKIE_AGE), "SESSION_COOKIE_AGE"),
            "auth_backends": list(getattr(settings, "AUTHENTICATION_BACKENDS", DEFAULT_AUTH_BACKENDS)),
            "accept_fallback_hash": True,
            "secret": settings.SECRET_KEY,
            "fallback_secrets": list(getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ()),
        }
        config["credentials"]["carriers"].append("session")
    extra = getattr(settings, "WSAUTH", None)
    if "session" not in config and "session" in ((extra or {}).get("credentials") or {}).get("carriers", ["session"]):
        raise ImproperlyConfigured(
            f"wsauth: SESSION_ENGINE {engine!r} cannot be read (db, cached_db and signed_cookies can); "
            "set WSAUTH = {'credentials': {'carriers': ['subprotocol', 'header', 'query']}} to use tokens only"
        )
    if extra:
        config = _merge(config, dict(extra))
    return config


_authenticator: Optional[Authenticator] = None
_RELEVANT = {
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "SIMPLE_JWT",
    "SESSION_ENGINE",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_AGE",
    "AUTHENTICATION_BACKENDS",
    "AUTH_USER_MODEL",
    "WSAUTH",
}


def get_authenticator() -> Authenticator:
    """The authenticator for the current Django settings (built once, rebuilt
    when a relevant setting changes, e.g. under ``override_settings``)."""
    global _authenticator
    auth = _authenticator
    if auth is None:
        auth = _authenticator = Authenticator(django_config())
    return auth


def _reset(setting: str = "", **_: Any) -> None:
    global _authenticator
    if setting in _RELEVANT:
        _authenticator = None


setting_changed.connect(_reset, dispatch_uid="wsauth.channels.reset")


# ---------------------------------------------------------------------------
# Lookups answered from the ORM (run in a database thread).


def _session_model() -> Any:
    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore
    get_model = getattr(store, "get_model_class", None)
    if get_model is not None:
        return get_model()
    from django.contrib.sessions.models import Session

    return Session


class _Lookups:
    """Answers the core's lookups; remembers the user objects it loaded."""

    def __init__(self, known: Optional[Dict[str, Any]] = None) -> None:
        self.users: Dict[str, Any] = dict(known or {})
        self.user: Any = None

    def session(self, key: str) -> Optional[Dict[str, Any]]:
        return _session_model().objects.filter(session_key=key).values("session_key", "session_data", "expire_date").first()

    def fetch_user(self, pk: str) -> Optional[Dict[str, Any]]:
        user = self.users.get(pk)
        if user is None:
            model = get_user_model()
            try:
                user = model._default_manager.filter(pk=pk).first()
            except (ValueError, TypeError, ValidationError):  # a pk Django cannot coerce: no such user
                user = None
            if user is None:
                return None
            self.users[pk] = user
        self.user = user
        return {
            "pk": str(user.pk),
            "password": user.password or "",
            "is_active": getattr(user, "is_active", True),
            "is_staff": getattr(user, "is_staff", False),
            "is_superuser": getattr(user, "is_superuser", False),
        }


def _peer(scope: Dict[str, Any]) -> Optional[str]:
    client = scope.get("client")
    if not client:
        return None
    try:
        return str(ipaddress.ip_address(client[0]))
    except (ValueError, TypeError, IndexError):
        return None


def _start(scope: Dict[str, Any], path: str) -> Handshake:
    headers = list(scope.get("headers", ()) or ())
    offered = scope.get("subprotocols") or ()
    if offered and not any(name.lower() == b"sec-websocket-protocol" for name, _ in headers):
        # ASGI servers put the offer in both places; some test harnesses only in "subprotocols".
        headers.append((b"sec-websocket-protocol", ", ".join(offered).encode("latin-1")))
    return get_authenticator().start(
        path,
        query=scope.get("query_string", b"") or b"",
        headers=headers,
        peer=_peer(scope),
        now=time.time(),
    )


def _decide(scope: Dict[str, Any], path: str) -> Tuple[Handshake, Dict[str, Any], Any]:
    """Runs one core decision for ``scope`` (sync, in a database thread)."""
    known = (scope.get("wsauth") or {}).get("users")
    lookups = _Lookups(known)
    hs = _start(scope, path)
    decision = hs.run(fetch_session=lookups.session, fetch_user=lookups.fetch_user)
    user = lookups.user if decision.get("action") == "accept" and decision.get("principal") else None
    if user is not None:
        scope.setdefault("wsauth", {}).setdefault("users", {})[str(user.pk)] = user
    return hs, decision, user


# ---------------------------------------------------------------------------
# Middleware


def _check_rate(scope: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The core's rate decision for this attempt (a close decision with 4429),
    or ``None`` to go on.

    TODO(rate limit): libwsauth has no rate step yet, so a configured
    ``limits.rate_limit`` is not enforced on this path. The missing ABI
    function is ``wsauth_authenticator_check_rate`` (the core's
    ``Authenticator::check_rate(&mut RateState, now_ms)`` behind the C ABI,
    with the per-peer ``RateState`` as an opaque handle or bytes the host
    keeps). When it exists: keep one state per ``_peer(scope)`` here (bounded,
    least recently used evicted), call it before ``_decide`` and return its
    close decision — a limited attempt is never verified, and the
    middleware accepts it (echoing the subprotocol) and closes with 4429.
    The limiter arithmetic stays in the core."""
    return None


async def _refuse_upgrade(receive: Any, send: Any) -> None:
    """Refuses a WebSocket upgrade before accepting it: ASGI servers answer a
    ``websocket.close`` sent before ``websocket.accept`` with HTTP 403."""
    message = await receive()
    if message.get("type") == "websocket.connect":
        await send({"type": "websocket.close"})


async def _accept_and_close(decision: Dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts (with the decision's subprotocol) and closes with its code."""
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    close = decision.get("close") or {}
    await send({"type": "websocket.accept", "subprotocol": decision.get("subprotocol")})
    await send({"type": "websocket.close", "code": close.get("code", 1013), "reason": close.get("reason", "")})


class WsAuthMiddleware(BaseMiddleware):
    """Decides each connection once with the core and records it:
    ``scope["user"]`` (a user instance or ``AnonymousUser``) and
    ``scope["wsauth"]``: ``{"decision": {...}, "principal": {...} | None,
    "subprotocol": "bearer" | None, "rejected": {"code": 4401, "reason":
    "token expired"} | None, "users": {pk: user}}``. ``RequireAuthMixin``
    reads that decision instead of deciding again.

    A WebSocket whose ``Origin`` the core refuses is refused before accept
    (HTTP 403); the inner application never runs."""

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> Any:
        kind = scope.get("type")
        if kind in ("websocket", "http"):
            scope = dict(scope)
            scope["wsauth"] = {"users": {}}
            if kind == "websocket":
                limited = _check_rate(scope)
                if limited is not None:
                    return await _accept_and_close(limited, receive, send)
            hs, decision, user = await database_sync_to_async(_decide)(scope, "/")
            if kind == "websocket" and decision.get("action") == "deny":
                return await _refuse_upgrade(receive, send)
            info = scope["wsauth"]
            info["decision"] = decision
            info["handshake"] = hs
            info["principal"] = decision.get("principal")
            info["subprotocol"] = decision.get("subprotocol")
            info["rejected"] = decision.get("close")
            scope["user"] = user if user is not None else AnonymousUser()
        return await super().__call__(scope, receive, send)


def WsAuthMiddlewareStack(inner: Any) -> Any:
    """Drop-in for ``channels.auth.AuthMiddlewareStack``: cookies, session,
    then ``scope["user"]`` decided by wsauth."""
    return CookieMiddleware(SessionMiddleware(WsAuthMiddleware(inner)))


# ---------------------------------------------------------------------------
# Consumer helper


@dataclass(frozen=True)
class Requirement:
    """An owner / member requirement: ``check(user, resource)`` (run in a
    database thread) says whether ``user`` may use the resource named by the
    URL route keyword ``kwarg``."""

    kind: str
    check: Callable[[Any, str], bool]
    kwarg: str = "pk"


def owner(check: Callable[[Any, str], bool], kwarg: str = "pk") -> Requirement:
    """The connecting user must own the resource (``check(user, value)``)."""
    return Requirement("owner", check, kwarg)


def member(check: Callable[[Any, str], bool], kwarg: str = "pk") -> Requirement:
    """The connecting user must be a member of the resource (``check(user, value)``)."""
    return Requirement("member", check, kwarg)


#: The core's fixed close reasons (wsauth_core::close::reasons) for the
#: requirement checks the mixin makes on the middleware's principal.
_AUTH_REQUIRED = (4401, "authentication required")
_FORBIDDEN = {
    "staff": (4403, "staff only"),
    "superuser": (4403, "superuser only"),
    "owner": (4403, "not the owner"),
    "member": (4403, "not a member"),
}
_LOOKUP_FAILED = (1013, "lookup failed, try again later")


class RequireAuthMixin:
    """Mix into an ``AsyncWebsocketConsumer`` (before it) to enforce
    ``requirement``: ``"anonymous"``, ``"authenticated"`` (default),
    ``"staff"``, ``"superuser"``, ``owner(check, kwarg)`` or
    ``member(check, kwarg)``. A refused connection is accepted, then closed
    (4401 no / invalid credential, 4403 not allowed, 1013 lookup failed) so
    browsers can read the code. ``accept()`` answers the ``bearer``
    subprotocol when the client offered it, also before such a close.

    The credential is not verified again here: the mixin reads the decision
    ``WsAuthMiddleware`` made for this connection (``scope["wsauth"]``) and
    checks only the consumer's own requirement against its principal; owner
    and member checks call ``check(user, value)`` once."""

    requirement: Union[str, Requirement] = "authenticated"
    wsauth_connection: Optional[Connection] = None
    wsauth_decision: Optional[Dict[str, Any]] = None
    _wsauth_timer: Optional[asyncio.TimerHandle] = None

    def _wsauth_resource(self) -> Tuple[Optional[Requirement], Optional[str]]:
        req = self.requirement
        if isinstance(req, str):
            if req not in _PATHS:
                raise ImproperlyConfigured(f"wsauth: unknown requirement {req!r}")
            return None, None
        kwargs = (self.scope.get("url_route") or {}).get("kwargs") or {}  # type: ignore[attr-defined]
        value = kwargs.get(req.kwarg)
        if value is None:
            raise ImproperlyConfigured(f"wsauth: the route has no {req.kwarg!r} keyword for {req.kind} checks")
        return req, str(value)

    async def _wsauth_refusal(self, decision: Dict[str, Any]) -> Optional[Tuple[int, str]]:
        """``(code, reason)`` when this consumer refuses the connection the
        middleware decided, else ``None``."""
        req, value = self._wsauth_resource()
        close = decision.get("close")
        if self.requirement == "anonymous":
            # An anonymous route takes a refused credential as no credential
            # (4401 only); a failed lookup or a limit still closes.
            if close is not None and close.get("code") != 4401:
                return close["code"], close.get("reason", "")
            return None
        if decision.get("action") != "accept":
            close = close or {"code": 1013, "reason": _LOOKUP_FAILED[1]}
            return close["code"], close.get("reason", "")
        principal = decision.get("principal")
        if not principal:
            return _AUTH_REQUIRED
        if req is None:
            if self.requirement == "staff" and not principal.get("is_staff"):
                return _FORBIDDEN["staff"]
            if self.requirement == "superuser" and not principal.get("is_superuser"):
                return _FORBIDDEN["superuser"]
            return None
        user = self.scope.get("user")  # type: ignore[attr-defined]
        try:
            allowed = await database_sync_to_async(req.check)(user, value)
        except Exception:
            return _LOOKUP_FAILED
        return None if allowed else _FORBIDDEN[req.kind]

    async def websocket_connect(self, message: Dict[str, Any]) -> None:
        scope = self.scope  # type: ignore[attr-defined]
        info = scope.get("wsauth") or {}
        decision = info.get("decision")
        if decision is None:
            raise ImproperlyConfigured("wsauth: RequireAuthMixin needs WsAuthMiddlewareStack around the router")
        self.wsauth_decision = decision
        refusal = await self._wsauth_refusal(decision)
        if refusal is None:
            if decision.get("action") == "accept" and decision.get("principal"):
                self.wsauth_connection = Connection(info["handshake"])
            await super().websocket_connect(message)  # type: ignore[misc]
            self._wsauth_schedule()
            return
        await self.accept()
        await self.close(code=refusal[0], reason=refusal[1])  # type: ignore[attr-defined]

    async def accept(self, subprotocol: Optional[str] = None, headers: Any = None) -> None:
        if subprotocol is None:
            subprotocol = (self.scope.get("wsauth") or {}).get("subprotocol")  # type: ignore[attr-defined]
        await super().accept(subprotocol, headers)  # type: ignore[misc]

    def _wsauth_schedule(self) -> None:
        if self._wsauth_timer is not None:
            self._wsauth_timer.cancel()
            self._wsauth_timer = None
        conn = self.wsauth_connection
        deadline = conn.poll_timeout() if conn is not None else None
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, deadline - time.time())
        self._wsauth_timer = loop.call_later(delay, lambda: loop.create_task(self._wsauth_timeout()))

    async def _wsauth_timeout(self) -> None:
        conn = self.wsauth_connection
        if conn is None:
            return
        close = conn.handle_timeout(time.time())
        if close is not None:
            await self.close(code=close[0], reason=close[1])  # type: ignore[attr-defined]
        else:
            self._wsauth_schedule()

    async def websocket_receive(self, message: Dict[str, Any]) -> None:
        conn = self.wsauth_connection
        if conn is not None:
            payload = message.get("text")
            data = payload if payload is not None else (message.get("bytes") or b"")
            action, close, hs = conn.handle_message(data, time.time())
            if action == Connection.STEPS and hs is not None:
                close = await database_sync_to_async(self._wsauth_finish)(conn, hs)
                action = Connection.CLOSE if close is not None else Connection.HANDLED
            if action == Connection.CLOSE and close is not None:
                await self.close(code=close[0], reason=close[1])  # type: ignore[attr-defined]
                return
            if action == Connection.HANDLED:
                self._wsauth_schedule()
                return
        await super().websocket_receive(message)  # type: ignore[misc]

    def _wsauth_finish(self, conn: Connection, hs: Handshake) -> Optional[Tuple[int, str]]:
        # A refresh is decided on the middleware's route (the credential
        # alone); the consumer's requirement was checked at connect.
        lookups = _Lookups((self.scope.get("wsauth") or {}).get("users"))  # type: ignore[attr-defined]
        hs.run(fetch_session=lookups.session, fetch_user=lookups.fetch_user)
        return conn.finish(hs, time.time())

    async def websocket_disconnect(self, message: Dict[str, Any]) -> None:
        if self._wsauth_timer is not None:
            self._wsauth_timer.cancel()
            self._wsauth_timer = None
        await super().websocket_disconnect(message)  # type: ignore[misc]
