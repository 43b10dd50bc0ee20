"""Edge mode from the app's side: real Daphne serving the reference app
behind ``GatewayPrincipalMiddlewareStack`` (refapp.asgi_gateway).

Straight to Daphne, a client that forges, replays or omits the principal
header is accepted and closed with the core's refusal (4401), and a header
signed by the Rust signer (the gateway's own code, through libwsauth) opens
with ``scope["user"]`` loaded by Django's ORM. The gateway tests
(test_gateway_serve.py) put `wsauth serve` in front."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any, Dict, Optional

import jwt as pyjwt
import pytest

import harness
from conftest import GATEWAY_SECRET, Served
from wsauth import EdgeVerifier
from wsauth._core import edge_refusal

ADMIN_PATH = "/ws/admin/chat/"


def user_id(token: str) -> str:
    """The user a seeded SimpleJWT token names (its ``user_id`` claim)."""
    return str(pyjwt.decode(token, options={"verify_signature": False})["user_id"])


def principal(uid: str, staff: bool, exp: Optional[int] = None) -> Dict[str, Any]:
    """A user document as the gateway signs it (a JWT from the query)."""
    return {
        "id": uid,
        "numeric": True,
        "is_staff": staff,
        "is_superuser": False,
        "is_active": True,
        "auth": "jwt",
        "carrier": "query",
        "exp": exp if exp is not None else int(time.time()) + 300,
    }


def connect(served: Served, path: str, headers=()) -> harness.WsClient:
    return harness.WsClient(served.ws_base + path, headers=headers)


def reached(served: Served) -> int:
    """WebSocket connections that reached the Daphne app so far."""
    with urllib.request.urlopen(f"http://{harness.HOST}:{served.port}/ws-count/", timeout=10) as r:
        return int(json.loads(r.read())["websocket"])


REFUSED = ("CLOSE", edge_refusal()[0])


def test_refusal_is_the_cores_4401():
    code, reason = edge_refusal()
    assert code == 4401
    assert reason


def test_signed_header_opens_and_the_orm_user_is_scope_user(daphne_gateway):
    served = daphne_gateway
    uid = user_id(served.tokens["staff"])
    signed = principal(uid, True)
    value = EdgeVerifier(GATEWAY_SECRET).sign(signed, "admin_chat", ADMIN_PATH)
    with connect(served, ADMIN_PATH, [("X-WsAuth-Principal", value)]) as ws:
        kind, hello = harness.outcome(ws)
        assert kind == "OPEN", hello
        # The seeded staff user, as the ORM has it.
        assert hello["username"] == "admin" and hello["staff"] is True and hello["authenticated"] is True
        assert str(hello["pk"]) == uid
        assert hello["route"] == "admin_chat"
        assert hello["principal"] == signed  # scope["wsauth"]["user"]: what the gateway signed
        ws.send_json({"n": 1})
        assert ws.recv_json()["echo"] == {"n": 1}


def test_customer_and_anonymous_principals(daphne_gateway):
    served = daphne_gateway
    signer = EdgeVerifier(GATEWAY_SECRET)
    uid = user_id(served.tokens["customer"])
    path = "/ws/chat/lobby/"
    with connect(served, path, [("x-wsauth-principal", signer.sign(principal(uid, False), "chat", path))]) as ws:
        kind, hello = harness.outcome(ws)
        assert kind == "OPEN" and hello["username"] == "customer" and hello["staff"] is False
    with connect(served, path, [("x-wsauth-principal", signer.sign(None, "chat", path))]) as ws:
        kind, hello = harness.outcome(ws)
        assert kind == "OPEN" and hello["authenticated"] is False and hello["pk"] is None
        assert hello["principal"] is None


@pytest.mark.parametrize("who", ["deleted", "inactive"])
def test_a_user_the_orm_no_longer_accepts_is_anonymous(daphne_gateway, who):
    """The principal was signed for a user Django no longer has, or has
    deactivated since (``ModelBackend.user_can_authenticate``): the
    consumer sees ``AnonymousUser``."""
    served = daphne_gateway
    uid = "987654" if who == "deleted" else str(served.extra["inactive_id"])
    value = EdgeVerifier(GATEWAY_SECRET).sign(principal(uid, True), "admin_chat", ADMIN_PATH)
    with connect(served, ADMIN_PATH, [("x-wsauth-principal", value)]) as ws:
        kind, hello = harness.outcome(ws)
        assert kind == "OPEN" and hello["authenticated"] is False and hello["pk"] is None
        assert hello["principal"]["id"] == uid


def _staff_value(served: Served, path: str = ADMIN_PATH, **kw: Any) -> str:
    return EdgeVerifier(kw.pop("secret", GATEWAY_SECRET)).sign(
        principal(user_id(served.tokens["staff"]), True), "admin_chat", path, **kw
    )


@pytest.mark.parametrize(
    "case,kind",
    [
        ("missing", "missing"),
        ("forged", "bad_signature"),
        ("stale", "stale"),
        ("future", "from_the_future"),
        ("other path", "wrong_path"),
        ("two headers", "repeated"),
        ("one good, one forged", "repeated"),
        ("garbage", "bad_signature"),
        ("tampered", "bad_signature"),
    ],
)
def test_straight_to_daphne_refused_with_4401(daphne_gateway, case, kind):
    served = daphne_gateway
    name = "x-wsauth-principal"
    good = _staff_value(served)
    headers = {
        "missing": [],
        "forged": [(name, _staff_value(served, secret="not-the-upstream-secret"))],
        "stale": [(name, _staff_value(served, now=time.time() - 3600))],
        "future": [(name, _staff_value(served, now=time.time() + 3600))],
        "other path": [(name, _staff_value(served, path="/ws/logs/"))],
        "two headers": [(name, good), (name, good)],
        "one good, one forged": [(name, good), ("X-WsAuth-Principal", "v1.1.e30.AAAA")],
        "garbage": [(name, "v1.1.e30.AAAA")],
        "tampered": [(name, good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1])],
    }[case]
    before = reached(served)
    with connect(served, ADMIN_PATH, headers) as ws:
        assert harness.outcome(ws) == REFUSED, case
        # Daphne 4.2 sends the code without the reason; nothing of the header either way.
        assert ws.closed is not None and ws.closed[2] in ("", edge_refusal()[1])
    assert reached(served) == before + 1  # it did reach the app, which refused it
    # The same request verified by the core says why (never in the close reason).
    scope = {"path": ADMIN_PATH, "headers": [(n.lower().encode(), v.encode()) for n, v in headers]}
    got = EdgeVerifier(GATEWAY_SECRET).verify_scope(scope)
    assert got["valid"] is False and got["error"]["kind"] == kind, got


def test_replay_on_another_path_is_refused(daphne_gateway):
    """A header lifted from a staff connection on /ws/logs/ does not open
    /ws/admin/chat/, though both need the same requirement."""
    served = daphne_gateway
    value = _staff_value(served, path="/ws/logs/")
    with connect(served, "/ws/logs/", [("x-wsauth-principal", value)]) as ws:
        assert harness.outcome(ws)[0] == "OPEN"
    with connect(served, ADMIN_PATH, [("x-wsauth-principal", value)]) as ws:
        assert harness.outcome(ws) == REFUSED


def test_secret_setting_is_required(settings):
    from django.core.exceptions import ImproperlyConfigured

    from wsauth.channels import GatewayPrincipalMiddleware, GatewayPrincipalMiddlewareStack

    async def app(scope, receive, send):  # never called
        raise AssertionError

    if hasattr(settings, "WSAUTH_GATEWAY_SECRET"):
        del settings.WSAUTH_GATEWAY_SECRET
    with pytest.raises(ImproperlyConfigured):
        GatewayPrincipalMiddleware(app)
    with pytest.raises(ImproperlyConfigured):
        GatewayPrincipalMiddlewareStack(app)
    settings.WSAUTH_GATEWAY_SECRET = GATEWAY_SECRET
    settings.WSAUTH_GATEWAY_MAX_AGE_MS = "soon"
    with pytest.raises(ImproperlyConfigured):
        GatewayPrincipalMiddleware(app)
    del settings.WSAUTH_GATEWAY_MAX_AGE_MS
    mw = GatewayPrincipalMiddleware(app)
    assert GATEWAY_SECRET not in repr(mw.verifier)


def test_verifier_round_trip_through_the_binding():
    v = EdgeVerifier(GATEWAY_SECRET)
    p = principal("1", True, exp=1750000300)
    value = v.sign(p, "admin_chat", ADMIN_PATH, now=1750000000)
    got = v.verify(value.encode(), ADMIN_PATH, now=1750000001)
    assert got == {"valid": True, "user": p, "route": "admin_chat", "path": ADMIN_PATH, "issued_at_ms": 1750000000000}
    assert v.verify(value.encode(), ADMIN_PATH, now=1750000000 + 3600)["error"]["kind"] == "stale"
    assert v.verify(value, ADMIN_PATH, now=1750000001) == got
    assert v.verify(None, ADMIN_PATH)["error"]["kind"] == "missing"
    scope = {"type": "websocket", "path": ADMIN_PATH, "headers": [(b"origin", b"o"), (b"x-wsauth-principal", value.encode())]}
    assert v.verify_scope(scope, now=1750000001) == got
    assert v.verify_scope(scope, header="X-WsAuth-Principal", now=1750000001) == got
    assert v.verify_scope(scope, header=b"x-wsauth-principal", now=1750000001) == got
    assert v.verify_scope(scope, header="x-other", now=1750000001)["error"]["kind"] == "missing"
    assert v.verify_scope({"path": ADMIN_PATH}, now=1750000001)["error"]["kind"] == "missing"
    with pytest.raises(Exception):
        v.sign({"id": "1"}, "r", "/")
    with pytest.raises(Exception):
        EdgeVerifier("")


async def _scope_of(app, path: str, headers) -> Any:
    """Runs ``app`` under Channels' WebsocketCommunicator; returns what it
    saw: ``("OPEN", scope)`` or ``("CLOSE", code)``."""
    from channels.testing import WebsocketCommunicator

    seen: Dict[str, Any] = {}

    async def inner(scope, receive, send):
        seen["scope"] = scope
        await receive()
        await send({"type": "websocket.accept"})

    comm = WebsocketCommunicator(app(inner), path, headers=headers)
    connected, code = await comm.connect()
    if connected and "scope" in seen:
        await comm.disconnect()
        return ("OPEN", seen["scope"])
    out = await comm.receive_output()
    await comm.disconnect()
    return ("CLOSE", out.get("code"))


@pytest.mark.django_db
async def test_header_and_max_age_settings_and_scope_wsauth(settings):
    """``WSAUTH_GATEWAY_HEADER`` / ``WSAUTH_GATEWAY_MAX_AGE_MS`` are read;
    ``scope["wsauth"]`` is the core's own answer for the header."""
    from wsauth.channels import GatewayPrincipalMiddleware

    settings.WSAUTH_GATEWAY_SECRET = GATEWAY_SECRET
    settings.WSAUTH_GATEWAY_HEADER = "X-Edge-Principal"
    settings.WSAUTH_GATEWAY_MAX_AGE_MS = 60_000
    signer = EdgeVerifier(GATEWAY_SECRET)
    path = "/ws/chat/lobby/"
    issued = time.time() - 30  # older than the default age, within the configured one
    value = signer.sign(None, "chat", path, now=issued).encode()
    kind, scope = await _scope_of(GatewayPrincipalMiddleware, path, [(b"x-edge-principal", value)])
    assert kind == "OPEN"
    assert scope["wsauth"] == signer.verify(value, path, max_age_ms=60_000)
    assert not scope["user"].is_authenticated
    # The default header name is not read any more.
    assert await _scope_of(GatewayPrincipalMiddleware, path, [(b"x-wsauth-principal", value)]) == REFUSED
    settings.WSAUTH_GATEWAY_MAX_AGE_MS = 1_000
    assert await _scope_of(GatewayPrincipalMiddleware, path, [(b"x-edge-principal", value)]) == REFUSED


@pytest.mark.parametrize(
    "path",
    [
        "/ws/chat/lobby/\udcff",  # what surrogateescape makes of a 0xff byte
        "/ws/chat/lobby/\ud800",  # a lone surrogate surrogateescape cannot encode
        "/ws/chat/\udc80lobby/",
    ],
)
@pytest.mark.django_db
async def test_a_path_that_is_not_text_is_refused_by_the_core(settings, path):
    """A ``scope["path"]`` holding surrogates matches no signed path: the
    core answers ``wrong_path`` (never an exception in the middleware) and
    the connection is refused with 4401."""
    from wsauth.channels import GatewayPrincipalMiddleware

    settings.WSAUTH_GATEWAY_SECRET = GATEWAY_SECRET
    signer = EdgeVerifier(GATEWAY_SECRET)
    value = signer.sign(None, "chat", "/ws/chat/lobby/").encode()
    headers = [(b"x-wsauth-principal", value)]
    got = signer.verify_scope({"path": path, "headers": headers})
    assert got["valid"] is False and got["error"]["kind"] == "wrong_path", got
    assert await _scope_of(GatewayPrincipalMiddleware, path, headers) == REFUSED
    # The same header on its own path opens.
    assert (await _scope_of(GatewayPrincipalMiddleware, "/ws/chat/lobby/", headers))[0] == "OPEN"


@pytest.mark.django_db
async def test_the_core_picks_the_header_out_of_the_scope(settings):
    """Names are compared ASCII case-insensitively; a second copy, whatever
    its value or case, is ``repeated`` and refused with 4401."""
    from wsauth.channels import GatewayPrincipalMiddleware

    settings.WSAUTH_GATEWAY_SECRET = GATEWAY_SECRET
    signer = EdgeVerifier(GATEWAY_SECRET)
    path = "/ws/chat/lobby/"
    value = signer.sign(None, "chat", path).encode()
    kind, scope = await _scope_of(GatewayPrincipalMiddleware, path, [(b"origin", b"o"), (b"X-WsAuth-Principal", value)])
    assert kind == "OPEN" and scope["wsauth"]["valid"] is True and scope["wsauth"]["route"] == "chat"
    for headers in (
        [(b"x-wsauth-principal", value), (b"x-wsauth-principal", value)],
        [(b"x-wsauth-principal", value), (b"host", b"app"), (b"X-WSAUTH-PRINCIPAL", b"x")],
        [(b"x-wsauth-principal", b"x" * 5000), (b"x-wsauth-principal", value)],
    ):
        assert signer.verify_scope({"path": path, "headers": headers})["error"]["kind"] == "repeated"
        assert await _scope_of(GatewayPrincipalMiddleware, path, headers) == REFUSED
    too_large = {"path": path, "headers": [(b"x-wsauth-principal", b"x" * 5000)]}
    assert signer.verify_scope(too_large)["error"]["kind"] == "too_large"
