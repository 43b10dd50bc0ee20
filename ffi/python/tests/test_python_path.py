"""The Channels path's host flow (DESIGN §3): one core decision per
connection (each consumer's requirement authorized from it, never verified
again), the bearer subprotocol echoed on an accept that only closes, a
refused Origin as HTTP 403 from real Daphne, and 4429 once a configured
rate limit is exceeded (the core's rate step, a millisecond clock, a
bounded per-process store)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

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
import wsauth
import wsauth._core
from refapp import consumers
from refapp.asgi import application
from refapp.models import Receipt
from wsauth.channels import _Lookups, _PATHS, get_authenticator, owner

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


#: The core's entry points counted: a decision started (the one credential
#: verification), a decided handshake authorized for a route (a policy
#: check), and the lookups answered.
COUNTED = (
    (wsauth._core.Authenticator, "start"),
    (wsauth._core.Handshake, "authorize"),
    (wsauth._core.Handshake, "answer_session"),
    (wsauth._core.Handshake, "answer_user"),
    (wsauth._core.Handshake, "answer_bool"),
)


class CoreCalls:
    """Counts the core's entry points (``COUNTED``)."""

    def __init__(self, monkeypatch):
        self.calls = Counter()
        for cls, name in COUNTED:
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
        # One decision started (the only credential verification), its
        # session row and user answered once each; then two policy checks
        # of that decision: the middleware's (may any route take it?) and
        # the consumer's requirement (with its one access answer), neither
        # asking for the session or the user again.
        want = {"Authenticator.start": 1, "Handshake.authorize": 2}
        if "django_session" in reads:
            want["Handshake.answer_session"] = 1
        if "auth_user" in reads:
            want["Handshake.answer_user"] = 1
        if "refapp_receipt" in reads:
            want["Handshake.answer_bool"] = 1
        assert calls.take() == want, path
        assert q.tables() == reads, (path, q.sql)


async def test_bearer_subprotocol_is_echoed_on_an_accept_that_closes():
    staff, alice, *_ = await make_users()
    assert await outcome("/ws/admin/chat/", subprotocols=["bearer", "garbage"]) == ("closed", 4401, "bearer")
    bearer_alice = ["bearer", str(AccessToken.for_user(alice))]
    assert await outcome("/ws/admin/chat/", subprotocols=bearer_alice) == ("closed", 4403, "bearer")
    assert await outcome("/ws/admin/chat/?token=not.a.token") == ("closed", 4401, None)


async def closed_with(path, **kwargs):
    """(code, reason, subprotocol) of an accept that only closes; None when it stays open."""
    comm = WebsocketCommunicator(application, path, **kwargs)
    connected, subprotocol = await comm.connect()
    assert connected
    out = await comm.receive_output(timeout=3)
    if out["type"] != "websocket.close":
        await comm.disconnect()
        return None
    await comm.wait()
    return out["code"], out["reason"], subprotocol


@database_sync_to_async
def core_decision(query, protocols, route):
    """The core's own decision, straight from libwsauth: the credential
    decided once on the identify route, then authorized for ``route``."""
    headers = [(b"sec-websocket-protocol", protocols.encode())] if protocols else []
    lookups = _Lookups()
    decided = get_authenticator().start("/", query=query, headers=headers)
    decided.run(fetch_session=lookups.session, fetch_user=lookups.fetch_user)
    d = decided.authorize(route).decision()
    if d["action"] == "accept":
        return None
    return d["close"]["code"], d["close"]["reason"], d["subprotocol"]


async def test_requirement_closes_carry_the_core_decision():
    """What a consumer's requirement closes with — code, reason and
    subprotocol — is the core's decision for that route, not a copy."""
    staff, alice, bob, receipt = await make_users()
    User = get_user_model()
    root = await database_sync_to_async(User.objects.create_superuser)("root", password="pw-root")
    tokens = {u.username: str(AccessToken.for_user(u)) for u in (staff, alice, root)}
    consumers_by_requirement = {"/ws/admin/chat/": "staff", "/ws/inbox/": "authenticated", "/ws/chat/lobby/": "anonymous"}
    credentials = [
        ("", None),
        ("token=not.a.token", None),
        (f"token={tokens['alice']}", None),
        (f"token={tokens['staffer']}", None),
        (f"token={tokens['root']}", None),
        ("", f"bearer, {tokens['alice']}"),
        ("", "bearer, garbage"),
    ]
    seen = set()
    for path, requirement in consumers_by_requirement.items():
        for query, protocols in credentials:
            url = f"{path}?{query}" if query else path
            kwargs = {"subprotocols": [p.strip() for p in protocols.split(",")]} if protocols else {}
            got = await closed_with(url, **kwargs)
            assert got == await core_decision(query, protocols, _PATHS[requirement]), (url, protocols)
            seen.add(got and got[:2])
    assert {(4401, "authentication required"), (4401, "token invalid"), (4403, "staff only")} <= seen


async def test_owner_check_that_fails_is_1013_and_refresh_asks_access_again(monkeypatch):
    staff, alice, bob, receipt = await make_users()
    asked = []

    def check(user, rid):
        asked.append((user.username, rid))
        if rid == "999":
            raise RuntimeError("database down")
        return Receipt.objects.filter(pk=rid, owner=user).exists()

    monkeypatch.setattr(consumers.ReceiptConsumer, "requirement", owner(check, kwarg="receipt_id"))
    code, reason, _ = await closed_with(f"/ws/receipts/999/?token={AccessToken.for_user(alice)}")
    assert (code, reason) == (1013, "lookup failed, try again later")

    soon = AccessToken.for_user(alice)
    soon.set_exp(lifetime=timedelta(seconds=30))
    comm = WebsocketCommunicator(application, f"/ws/receipts/{receipt.pk}/?token={soon}")
    connected, _ = await comm.connect()
    assert connected and (await comm.receive_json_from())["username"] == "alice"
    asked.clear()
    await comm.send_json_to({"type": "refresh", "token": str(AccessToken.for_user(alice))})
    await asyncio.sleep(0.5)
    await comm.send_json_to({"msg": "after refresh"})
    assert (await comm.receive_json_from(timeout=3))["echo"] == {"msg": "after refresh"}
    assert asked == [("alice", str(receipt.pk))]
    await comm.disconnect()


async def test_secret_file_is_read_by_the_core(tmp_path):
    """A signing key kept in a file is named in the configuration
    (``{"file": path}``) and read by libwsauth with the core's rule: one
    trailing line ending removed, nothing else."""
    staff, *_ = await make_users()
    key = "file-kept-signing-key-0123456789abcdef0123456789abcdef"
    token = wsauth.TokenVerifier(key).mint(staff.pk)
    one, two = tmp_path / "one-newline.key", tmp_path / "two-newlines.key"
    one.write_bytes(key.encode() + b"\n")
    two.write_bytes(key.encode() + b"\n\n")
    with override_settings(WSAUTH={"jwt": {"secret": {"file": str(one)}}}):
        assert await outcome(f"/ws/admin/chat/?token={token}") == ("open", None)
    with override_settings(WSAUTH={"jwt": {"secret": {"file": str(two)}}}):
        assert await outcome(f"/ws/admin/chat/?token={token}") == ("closed", 4401, None)


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


async def attempt(path, peer, **kwargs):
    """One connection attempt from ``peer``: as :func:`outcome`."""
    comm = WebsocketCommunicator(application, path, **kwargs)
    comm.scope["client"] = (peer, 50000)
    connected, subprotocol = await comm.connect()
    assert connected
    out = await comm.receive_output(timeout=3)
    if out["type"] == "websocket.close":
        await comm.wait()
        return ("closed", out["code"], subprotocol)
    await comm.disconnect()
    return ("open", subprotocol)


async def test_rate_limit_closes_with_4429_once_exceeded():
    staff, alice, *_ = await make_users()
    limits = {"limits": {"rate_limit": {"requests": 1, "period_secs": 60, "burst": 2}}}
    bearer_staff = ["bearer", str(AccessToken.for_user(staff))]
    with override_settings(WSAUTH=limits):
        seen = [await attempt("/ws/chat/lobby/", "192.0.2.10") for _ in range(4)]
        assert seen == [("open", None), ("open", None), ("closed", 4429, None), ("closed", 4429, None)]
        # Limited before any credential is verified (no user read), on any
        # consumer (Whoami has no requirement mixin), and the bearer
        # subprotocol is still answered so a browser sees the code.
        async with DbThreadQueries() as q:
            assert await attempt("/ws/admin/chat/", "192.0.2.10", subprotocols=bearer_staff) == (
                "closed",
                4429,
                "bearer",
            )
            assert await attempt("/ws/whoami/", "192.0.2.10") == ("closed", 4429, None)
        assert q.tables() == {}
        # Per peer: another address is not limited.
        assert await attempt("/ws/admin/chat/", "192.0.2.11", subprotocols=bearer_staff) == ("open", "bearer")
    # Without the setting, the same peer is not limited.
    assert await attempt("/ws/chat/lobby/", "192.0.2.10") == ("open", None)


def test_rate_limit_counts_milliseconds():
    """Ten attempts a second, one at once: the limit is exact to the
    millisecond (a seconds clock would see 1000.05 and 1000.1 as the same
    instant)."""
    auth = wsauth._core.Authenticator(
        {
            "jwt": {"secret": "rate-test-signing-key-0123456789abcdef0123456789"},
            "limits": {"rate_limit": {"requests": 10, "period_secs": 1, "burst": 1}},
            "routes": [{"name": "open", "path": "/", "requirement": "anonymous", "auth_message": False}],
        }
    )
    store = wsauth._core.MemoryRateStore()

    def at(now):
        hs = auth.start("/", peer="198.51.100.1", now=now)
        return hs.run(rate_store=store)["action"]

    assert at(1000.0) == "accept"
    assert at(1000.05) == "close"
    assert at(1000.099) == "close"
    assert at(1000.1) == "accept"
    assert at(1000.15) == "close"
    assert at(1000.2) == "accept"


def test_memory_rate_store_is_bounded():
    store = wsauth._core.MemoryRateStore(max_peers=64)
    far = 2**62
    for i in range(1000):
        assert store.compare_and_set(f"10.0.{i // 256}.{i % 256}", 0, 5, far) is None
        assert len(store) <= 64
    # The most recently stored peers are kept; the oldest were forgotten.
    assert store.get("10.0.3.231") == 5
    assert store.get("10.0.0.0") == 0
    # States the core said may be forgotten go first.
    store = wsauth._core.MemoryRateStore(max_peers=4)
    store.compare_and_set("a", 0, 1, far)
    for peer in "bcd":
        store.compare_and_set(peer, 0, 1, 0)
    store.compare_and_set("e", 0, 1, far)
    assert store.get("a") == 1 and store.get("e") == 1 and len(store) == 2
    # A conflicting compare-and-set stores nothing and reports the state found.
    assert store.compare_and_set("a", 0, 9, far) == 1 and store.get("a") == 1
