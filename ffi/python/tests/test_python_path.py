"""The Channels path's host flow (DESIGN §3): one core decision per
connection, the bearer subprotocol echoed on an accept that only closes,
a refused Origin as HTTP 403 from real Daphne, and 4429 once a configured
rate limit is exceeded."""

from __future__ import annotations

from collections import Counter

import pytest
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework_simplejwt.tokens import AccessToken

import harness
import wsauth._core
from refapp.asgi import application
from refapp.models import Receipt

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def make_users():
    User = get_user_model()
    staff = User.objects.create_user("staffer", password="pw-staffer", is_staff=True)
    alice = User.objects.create_user("alice", password="pw-alice")
    bob = User.objects.create_user("bob", password="pw-bob")
    receipt = Receipt.objects.create(owner=alice, total=12)
    return staff, alice, bob, receipt


@database_sync_to_async
def session_cookie(user):
    client = Client()
    assert client.login(username=user.username, password="pw-" + user.username)
    return client.cookies["sessionid"].value


class CoreCalls:
    """Counts the core's entry points: decisions started and driven."""

    def __init__(self, monkeypatch):
        self.calls = Counter()
        for cls, name in ((wsauth._core.Authenticator, "start"), (wsauth._core.Handshake, "run")):
            original = getattr(cls, name)

            def counted(*args, _original=original, _name=f"{cls.__name__}.{name}", **kwargs):
                self.calls[_name] += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(cls, name, counted)

    def take(self):
        out, self.calls = dict(self.calls), Counter()
        return out


class DbThreadQueries:
    """CaptureQueriesContext in the thread Channels runs ORM calls in
    (database_sync_to_async), where the middleware and the mixin query."""

    async def __aenter__(self):
        self.ctx = CaptureQueriesContext(connection)
        await database_sync_to_async(self.ctx.__enter__)()
        return self

    async def __aexit__(self, *exc):
        def leave():
            self.ctx.__exit__(None, None, None)
            return [q["sql"] for q in self.ctx.captured_queries]

        self.sql = await database_sync_to_async(leave)()

    def tables(self):
        out = Counter()
        for sql in self.sql:
            for table in ("django_session", "auth_user", "refapp_receipt"):
                if f'FROM "{table}"' in sql:
                    out[table] += 1
        return dict(out)


async def outcome(path, **kwargs):
    """("open", subprotocol) or ("closed", code, subprotocol) as the client sees it."""
    comm = WebsocketCommunicator(application, path, **kwargs)
    connected, subprotocol = await comm.connect()
    if not connected:
        return ("refused", subprotocol)
    out = await comm.receive_output(timeout=3)
    if out["type"] == "websocket.close":
        await comm.wait()
        return ("closed", out["code"], subprotocol)
    await comm.disconnect()
    return ("open", subprotocol)


async def test_one_core_decision_and_one_lookup_each_per_connection(monkeypatch):
    staff, alice, bob, receipt = await make_users()
    calls = CoreCalls(monkeypatch)
    staff_cookie = [(b"cookie", f"sessionid={await session_cookie(staff)}".encode())]
    alice_cookie = [(b"cookie", f"sessionid={await session_cookie(alice)}".encode())]
    bob_cookie = [(b"cookie", f"sessionid={await session_cookie(bob)}".encode())]
    # (path, kwargs, expected outcome, expected ORM reads by table); the
    # expected outcomes follow the users' flags and the receipt's owner as
    # the ORM stores them.
    cases = [
        ("/ws/admin/chat/", {"headers": staff_cookie}, ("open", None), {"django_session": 1, "auth_user": 1}),
        ("/ws/admin/chat/", {"headers": alice_cookie}, ("closed", 4403, None), {"django_session": 1, "auth_user": 1}),
        (f"/ws/admin/chat/?token={AccessToken.for_user(staff)}", {}, ("open", None), {"auth_user": 1}),
        (f"/ws/admin/chat/?token={AccessToken.for_user(alice)}", {}, ("closed", 4403, None), {"auth_user": 1}),
        ("/ws/admin/chat/?token=not.a.token", {}, ("closed", 4401, None), {}),
        (
            f"/ws/receipts/{receipt.pk}/",
            {"headers": alice_cookie},
            ("open", None),
            {"django_session": 1, "auth_user": 1, "refapp_receipt": 1},
        ),
        (
            f"/ws/receipts/{receipt.pk}/",
            {"headers": bob_cookie},
            ("closed", 4403, None),
            {"django_session": 1, "auth_user": 1, "refapp_receipt": 1},
        ),
        (
            f"/ws/receipts/{receipt.pk}/",
            {"subprotocols": ["bearer", str(AccessToken.for_user(alice))]},
            ("open", "bearer"),
            {"auth_user": 1, "refapp_receipt": 1},
        ),
    ]
    for path, kwargs, expected, reads in cases:
        calls.take()
        async with DbThreadQueries() as q:
            got = await outcome(path, **kwargs)
        assert got == expected, (path, got)
        assert calls.take() == {"Authenticator.start": 1, "Handshake.run": 1}, path
        assert q.tables() == reads, (path, q.sql)


async def test_bearer_subprotocol_is_echoed_on_an_accept_that_closes():
    staff, alice, *_ = await make_users()
    assert await outcome("/ws/admin/chat/", subprotocols=["bearer", "garbage"]) == ("closed", 4401, "bearer")
    bearer_alice = ["bearer", str(AccessToken.for_user(alice))]
    assert await outcome("/ws/admin/chat/", subprotocols=bearer_alice) == ("closed", 4403, "bearer")
    assert await outcome("/ws/admin/chat/?token=not.a.token") == ("closed", 4401, None)


def channels_allows(origin: str, allowed) -> bool:
    """Channels' own OriginValidator decision for one Origin header (the oracle)."""
    import asyncio

    async def inner(scope, receive, send):
        await send({"type": "websocket.accept"})

    async def run():
        comm = WebsocketCommunicator(OriginValidator(inner, allowed), "/", headers=[(b"origin", origin.encode())])
        ok, _ = await comm.connect()
        await comm.disconnect()
        return ok

    return asyncio.run(run())


@pytest.mark.django_db(transaction=False)
def test_refused_origin_is_http_403_from_daphne(daphne_server):
    port = daphne_server.port
    allowed = ["127.0.0.1", "localhost"]  # REFAPP_ORIGINS of the served app
    origins = [
        "http://evil.example",
        f"http://127.0.0.1:{port}",
        f"https://localhost:{port}",
        "http://127.0.0.1.evil.example",
        "null",
    ]
    for origin in origins:
        expect = 101 if channels_allows(origin, allowed) else 403
        for path in ("/ws/chat/lobby/", "/ws/whoami/", "/ws/admin/chat/"):
            req = harness.upgrade_request(port, path, [("Origin", origin)])
            assert harness.http_status(port, req) == expect, (origin, path)
    # Refused before accept even when the client offers the bearer carrier.
    req = harness.upgrade_request(
        port, "/ws/admin/chat/", [("Origin", "http://evil.example"), ("Sec-WebSocket-Protocol", "bearer, x")]
    )
    assert harness.http_status(port, req) == 403


@pytest.mark.xfail(
    strict=True,
    reason="libwsauth has no rate step yet: wsauth_authenticator_check_rate is missing from the C ABI",
)
async def test_rate_limit_closes_with_4429_once_exceeded():
    await make_users()
    limits = {"limits": {"rate_limit": {"requests": 1, "period_secs": 60, "burst": 2}}}
    with override_settings(WSAUTH=limits):
        seen = []
        for _ in range(4):
            comm = WebsocketCommunicator(application, "/ws/chat/lobby/")
            comm.scope["client"] = ("127.0.0.1", 50000)
            connected, _ = await comm.connect()
            assert connected
            out = await comm.receive_output(timeout=3)
            if out["type"] == "websocket.close":
                seen.append(out["code"])
                await comm.wait()
            else:
                seen.append("open")
                await comm.disconnect()
    assert seen[:2] == ["open", "open"]
    assert seen[2:] == [4429, 4429]

