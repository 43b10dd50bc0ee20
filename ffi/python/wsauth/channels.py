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

A connection no route could accept — over a configured rate limit (4429),
or a lookup that failed (1013) — is accepted and closed here with the
core's code, before the inner application runs.

``RequireAuthMixin`` enforces a consumer's requirement (anonymous,
authenticated, staff, superuser, owner or member): the core applies that
route's policy to the middleware's decision (``Handshake.authorize``, no
second verification) and the mixin carries the result out — accept, or
accept then close with the core's code and reason (4401 / 4403 / 1013), so
browsers can read the code (a close before accept only shows them 1006);
the accept answers the ``bearer`` subprotocol when the client offered it,
as the core's decision says. It also closes with 4401 when the token
expires on the open socket, unless the client refreshes it with
``{"type": "refresh", "token": "…"}``.

Python only translates: origins, rate limits, credentials, users, sessions
and requirements are decided by the Rust core through libwsauth; the ORM
answers the core's lookups and the requirement's ``check`` its access step.
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

from ._native import lib
from ._core import DEFAULT_AUTH_BACKENDS, DEFAULT_SESSION_COOKIE_AGE, Authenticator, Connection, Handshake, WsauthError, _seconds
from ._core import EDGE_DEFAULT_HEADER, EDGE_DEFAULT_MAX_AGE_MS, EdgeVerifier, edge_refusal

__all__ = [
    "WsAuthMiddleware",
    "WsAuthMiddlewareStack",
    "RequireAuthMixin",
    "Requirement",
    "owner",
    "member",
    "django_config",
    "get_authenticator",
    "get_rate_store",
    "set_rate_store",
    "GatewayPrincipalMiddleware",
    "GatewayPrincipalMiddlewareStack",
]

#: Synthetic paths of the requirement routes in the core's configuration.
#: Channels routes by URL itself; the core decides credentials on the strict
#: identify route ``/`` once per connection, then each consumer's
#: requirement by authorizing that decision for its route.
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
#: The most permissive route: what the core decides there, every route gets
#: at least (a close there closes the connection whatever its consumer).
_GATE = _PATHS["anonymous"]

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
    # The peer (for the core's rate step) only for connection attempts.
    peer = _peer(scope) if scope.get("type") == "websocket" else None
    return get_authenticator().start(
        path,
        query=scope.get("query_string", b"") or b"",
        headers=headers,
        peer=peer,
    )


def _decide(scope: Dict[str, Any], path: str) -> Tuple[Handshake, Dict[str, Any], Any]:
    """Runs one core decision for ``scope`` (sync, in a database thread):
    origin, the rate step (answered from the process's rate store), the
    credential and its lookups."""
    known = (scope.get("wsauth") or {}).get("users")
    lookups = _Lookups(known)
    hs = _start(scope, path)
    decision = hs.run(fetch_session=lookups.session, fetch_user=lookups.fetch_user, rate_store=get_rate_store())
    user = lookups.user if decision.get("action") == "accept" and decision.get("principal") else None
    if user is not None:
        scope.setdefault("wsauth", {}).setdefault("users", {})[str(user.pk)] = user
    return hs, decision, user


# ---------------------------------------------------------------------------
# Middleware


_rate_store: Any = None


def get_rate_store() -> Any:
    """The store the rate step is answered from: ``None`` for the process's
    bounded :class:`wsauth.MemoryRateStore`, or one set with
    :func:`set_rate_store` (e.g. backed by Redis, shared by processes)."""
    return _rate_store


def set_rate_store(store: Any) -> None:
    """Answers the rate step of ``limits.rate_limit`` from ``store`` (an
    object with ``get(peer) -> tat_ms`` and ``compare_and_set(peer,
    expected, new, idle_at_ms) -> None | found``); ``None`` restores the
    process's own."""
    global _rate_store
    _rate_store = store


async def _refuse_upgrade(receive: Any, send: Any) -> None:
    """Refuses a WebSocket upgrade before accepting it: ASGI servers answer a
    ``websocket.close`` sent before ``websocket.accept`` with HTTP 403."""
    message = await receive()
    if message.get("type") == "websocket.connect":
        await send({"type": "websocket.close"})


def _close_of(decision: Dict[str, Any]) -> Tuple[int, str]:
    """The code and reason of a close decision, as the core gave them."""
    close = decision.get("close")
    if not close:
        action = decision.get("action")
        raise WsauthError(lib.WSAUTH_RESULT_INVALID_STATE, "wsauth.channels", f"expected a close decision, got {action!r}")
    return close["code"], close.get("reason", "")


async def _accept_and_close(decision: Dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts (with the decision's subprotocol) and closes with its code."""
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    code, reason = _close_of(decision)
    await send({"type": "websocket.accept", "subprotocol": decision.get("subprotocol")})
    await send({"type": "websocket.close", "code": code, "reason": reason})


class WsAuthMiddleware(BaseMiddleware):
    """Decides each connection once with the core and records it:
    ``scope["user"]`` (a user instance or ``AnonymousUser``) and
    ``scope["wsauth"]``: ``{"decision": {...}, "principal": {...} | None,
    "subprotocol": "bearer" | None, "rejected": {"code": 4401, "reason":
    "token expired"} | None, "users": {pk: user}}``. ``RequireAuthMixin``
    reads that decision instead of deciding again.

    A WebSocket whose ``Origin`` the core refuses is refused before accept
    (HTTP 403); one that no route would accept (the core's decision on its
    most permissive route is a close: 4429 over the rate limit, 1013 a
    failed lookup) is accepted and closed with that code. In both cases the
    inner application never runs."""

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> Any:
        kind = scope.get("type")
        if kind in ("websocket", "http"):
            scope = dict(scope)
            scope["wsauth"] = {"users": {}}
            hs, decision, user = await database_sync_to_async(_decide)(scope, "/")
            if kind == "websocket":
                if decision.get("action") == "deny":
                    return await _refuse_upgrade(receive, send)
                gate = hs.authorize(_GATE).decision()
                if gate.get("action") == "close":
                    return await _accept_and_close(gate, receive, send)
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


class RequireAuthMixin:
    """Mix into an ``AsyncWebsocketConsumer`` (before it) to enforce
    ``requirement``: ``"anonymous"``, ``"authenticated"`` (default),
    ``"staff"``, ``"superuser"``, ``owner(check, kwarg)`` or
    ``member(check, kwarg)``. A refused connection is accepted, then closed
    with the core's code and reason (4401 no / invalid credential, 4403 not
    allowed, 1013 lookup failed) so browsers can read the code. ``accept()``
    answers the ``bearer`` subprotocol when the client offered it, also
    before such a close.

    The credential is not verified again here: the core applies the
    requirement's route policy to the decision ``WsAuthMiddleware`` made for
    this connection (``scope["wsauth"]``, ``Handshake.authorize``); owner
    and member routes ask their access step, answered by ``check(user,
    value)`` once. ``wsauth_decision`` is that decision."""

    requirement: Union[str, Requirement] = "authenticated"
    wsauth_connection: Optional[Connection] = None
    wsauth_decision: Optional[Dict[str, Any]] = None
    _wsauth_timer: Optional[asyncio.TimerHandle] = None

    def _wsauth_path(self) -> str:
        """The core route of this consumer's requirement."""
        req = self.requirement
        if isinstance(req, str):
            path = _PATHS.get(req)
            if path is None:
                raise ImproperlyConfigured(f"wsauth: unknown requirement {req!r}")
            return path
        kwargs = (self.scope.get("url_route") or {}).get("kwargs") or {}  # type: ignore[attr-defined]
        value = kwargs.get(req.kwarg)
        if value is None:
            raise ImproperlyConfigured(f"wsauth: the route has no {req.kwarg!r} keyword for {req.kind} checks")
        return f"/{req.kind}/{quote(str(value), safe='')}"

    def _wsauth_has_access(self, step: Dict[str, Any]) -> bool:
        """Answers the core's access step for the resource it names (run in
        a database thread); only owner / member routes ask it."""
        req = self.requirement
        assert isinstance(req, Requirement)
        return bool(req.check(self.scope.get("user"), step["value"]))  # type: ignore[attr-defined]

    async def _wsauth_authorize(self, decided: Handshake) -> Tuple[Handshake, Dict[str, Any]]:
        """The core's decision for this consumer's requirement."""
        hs = decided.authorize(self._wsauth_path())
        step = hs.poll()
        if step["step"] == "done":
            return hs, step["decision"]
        return hs, await database_sync_to_async(hs.run)(has_access=self._wsauth_has_access)

    async def websocket_connect(self, message: Dict[str, Any]) -> None:
        scope = self.scope  # type: ignore[attr-defined]
        info = scope.get("wsauth") or {}
        decided = info.get("handshake")
        if decided is None:
            raise ImproperlyConfigured("wsauth: RequireAuthMixin needs WsAuthMiddlewareStack around the router")
        hs, decision = await self._wsauth_authorize(decided)
        self.wsauth_decision = decision
        if decision.get("action") == "accept":
            if decision.get("principal"):
                self.wsauth_connection = Connection(hs)
            await super().websocket_connect(message)  # type: ignore[misc]
            self._wsauth_schedule()
            return
        code, reason = _close_of(decision)
        await self.accept()
        await self.close(code=code, reason=reason)  # type: ignore[attr-defined]

    async def accept(self, subprotocol: Optional[str] = None, headers: Any = None) -> None:
        if subprotocol is None:
            decision = self.wsauth_decision or (self.scope.get("wsauth") or {})  # type: ignore[attr-defined]
            subprotocol = decision.get("subprotocol")
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
        # A refresh is decided on this consumer's route: the new token's
        # user, then the requirement again (its access step included).
        lookups = _Lookups((self.scope.get("wsauth") or {}).get("users"))  # type: ignore[attr-defined]
        hs.run(fetch_session=lookups.session, fetch_user=lookups.fetch_user, has_access=self._wsauth_has_access)
        return conn.finish(hs, time.time())

    async def websocket_disconnect(self, message: Dict[str, Any]) -> None:
        if self._wsauth_timer is not None:
            self._wsauth_timer.cancel()
            self._wsauth_timer = None
        await super().websocket_disconnect(message)  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Edge mode: behind `wsauth serve` with `[upstream]`


#: The principal header's default name (the gateway's `[upstream] header`).
GATEWAY_HEADER = EDGE_DEFAULT_HEADER


def _gateway_user(user: Dict[str, Any]) -> Any:
    """The user the verified principal names, loaded through the ORM (run in
    a database thread): ``AnonymousUser`` when it no longer exists or is
    inactive."""
    model = get_user_model()
    try:
        found = model._default_manager.filter(pk=user["id"]).first()
    except (ValueError, TypeError, ValidationError):  # a pk Django cannot coerce: no such user
        found = None
    if found is None or not getattr(found, "is_active", True):
        return AnonymousUser()
    return found


class GatewayPrincipalMiddleware(BaseMiddleware):
    """For an app behind the wsauth gateway (edge mode): the gateway decided
    the handshake and forwarded it with one signed, timestamped, path-bound
    principal header instead of credentials. This middleware has the core
    verify that header against ``scope["path"]`` with the shared secret
    (Django setting ``WSAUTH_GATEWAY_SECRET``; optional
    ``WSAUTH_GATEWAY_HEADER``, default ``x-wsauth-principal``, and
    ``WSAUTH_GATEWAY_MAX_AGE_MS``, default the gateway's) and sets

    * ``scope["user"]``: a lazy user (Channels' ``UserLazyObject``), loaded
      once per connection through the ORM by the verified id before the
      inner application runs; ``AnonymousUser`` for an anonymous principal
      or a user that no longer exists or is inactive;
    * ``scope["wsauth"]``: the core's verified answer, ``{"valid": True,
      "user": {"id", "numeric", "is_staff", "is_superuser", "is_active",
      "auth", "carrier", "exp"} | None, "route", "path", "issued_at_ms"}``.

    A WebSocket whose header is missing, repeated, forged, stale or signed
    for another path is accepted, then closed with the core's code for it
    (4401, so browsers can read it); the inner application never runs.
    Other scope types pass through untouched."""

    def __init__(
        self,
        inner: Any,
        *,
        secret: Union[str, bytes, None] = None,
        header: Optional[str] = None,
        max_age_ms: Optional[int] = None,
    ) -> None:
        super().__init__(inner)
        from django.conf import settings

        if secret is None:
            secret = getattr(settings, "WSAUTH_GATEWAY_SECRET", None)
        if not secret:
            raise ImproperlyConfigured(
                "wsauth: GatewayPrincipalMiddleware needs WSAUTH_GATEWAY_SECRET (the gateway's [upstream] secret)"
            )
        if header is None:
            header = getattr(settings, "WSAUTH_GATEWAY_HEADER", None) or GATEWAY_HEADER
        if max_age_ms is None:
            max_age_ms = getattr(settings, "WSAUTH_GATEWAY_MAX_AGE_MS", None)
        if max_age_ms is None:
            max_age_ms = EDGE_DEFAULT_MAX_AGE_MS
        if isinstance(max_age_ms, bool) or not isinstance(max_age_ms, int) or max_age_ms < 0:
            raise ImproperlyConfigured("wsauth: WSAUTH_GATEWAY_MAX_AGE_MS must be a whole number of milliseconds")
        self.header = header.encode("utf-8")
        self.max_age_ms = max_age_ms
        try:
            self.verifier = EdgeVerifier(secret)
        except WsauthError as e:
            raise ImproperlyConfigured(f"wsauth: WSAUTH_GATEWAY_SECRET was refused: {e}") from None
        self.refusal = edge_refusal()

    def verify(self, scope: Dict[str, Any]) -> Dict[str, Any]:
        """The core's answer for ``scope``'s principal header: the core picks
        it out of the headers and decides (missing, repeated, a path that is
        not UTF-8, then the header itself)."""
        return self.verifier.verify_scope(scope, header=self.header, max_age_ms=self.max_age_ms)

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> Any:
        if scope.get("type") != "websocket":
            return await super().__call__(scope, receive, send)
        verified = self.verify(scope)
        if not verified.get("valid"):
            message = await receive()
            if message.get("type") != "websocket.connect":
                return None
            code, reason = self.refusal
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": code, "reason": reason})
            return None
        from channels.auth import UserLazyObject

        scope = dict(scope)
        scope["wsauth"] = verified
        user = UserLazyObject()
        principal = verified.get("user")
        user._wrapped = AnonymousUser() if principal is None else await database_sync_to_async(_gateway_user)(principal)
        scope["user"] = user
        return await super().__call__(scope, receive, send)


def GatewayPrincipalMiddlewareStack(inner: Any, **kwargs: Any) -> Any:
    """For an app behind the wsauth gateway: ``scope["user"]`` from the
    verified principal header (see :class:`GatewayPrincipalMiddleware`),
    with Channels' cookie and session middleware kept for the app's own
    use of ``scope["session"]``."""
    return CookieMiddleware(SessionMiddleware(GatewayPrincipalMiddleware(inner, **kwargs)))
