"""Django sessions kept in Redis: a real Django (``RedisCache``, the
``cache`` and ``cached_db`` session engines) logs users in, out, changes a
password and lets a session expire; ``wsauth serve`` with
``[session] engine = "cache" / "cached_db"`` on the same real
``redis-server`` decides each session cookie as Django's own
``get_user()`` does. Crafted pickles written into the cache are refused and
the gateway keeps serving.

The gateway's users are ``wsauth serve``'s demo directory (user 2
``customer`` and its stored password hash); the Django users here are made
with the same pk and hash, so both sides see one user table.
"""

import os
import shutil
import subprocess
import tempfile
import time
from importlib import import_module
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user as django_get_user
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.test import Client, override_settings

import harness
import conftest

_BIN = []


def _wsauth_binary() -> str:
    if not _BIN:
        _BIN.append(conftest._wsauth_binary())  # noqa: SLF001 - built once
    return _BIN[0]

DEMO_CUSTOMER_HASH = "pbkdf2_sha256$870000$wsauthdemocust$bm90LWEtcmVhbC1wYXNzd29yZC1oYXNoLWN1c3Q="
ENGINES = {
    "cache": "django.contrib.sessions.backends.cache",
    "cached_db": "django.contrib.sessions.backends.cached_db",
}


@pytest.fixture(scope="module")
def redis_url():
    exe = shutil.which("redis-server")
    assert exe, "redis-server is missing (scripts/ensure-redis installs it)"
    port = harness.free_port()
    with tempfile.TemporaryDirectory(prefix="wsauth-redis-") as tmp, harness.child(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        harness.wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"


def _serve(tmp: Path, engine: str, redis_url: str):
    config = tmp / f"{engine}.toml"
    config.write_text(
        f"""
[jwt]
secret = "unused-jwt-secret-for-the-redis-session-tests"

[users]
source = "directory"

[session]
engine = "{engine}"
secret = "{settings.SECRET_KEY}"
cache_key_prefix = "site"
cache_version = 3

[[routes]]
name = "me"
path = "/ws/me/"
requirement = "authenticated"

[redis]
url = "{redis_url}"
key_prefix = "wsauth-test:"
timeout_ms = 500
"""
    )
    port = harness.free_port()
    return harness.child(
        [_wsauth_binary(), "serve", "--listen", f"127.0.0.1:{port}", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ), port


@pytest.fixture(scope="module")
def gateways(redis_url):
    with tempfile.TemporaryDirectory(prefix="wsauth-redis-gw-") as tmp:
        started = {}
        ctxs = []
        try:
            for engine in ENGINES:
                ctx, port = _serve(Path(tmp), engine, redis_url)
                proc = ctx.__enter__()
                ctxs.append(ctx)
                harness.wait_for_port(port, proc)
                started[engine] = port
            yield started
        finally:
            for ctx in reversed(ctxs):
                ctx.__exit__(None, None, None)


def gateway_decision(port: int, session_key: str) -> str:
    out = subprocess.run(
        [_wsauth_binary(), "probe", f"ws://127.0.0.1:{port}/ws/me/", "--carrier", "cookie",
         "--cookie-name", "sessionid", "--token", session_key, "--wait-ms", "300"],
        capture_output=True, text=True, timeout=30,
    )
    line = out.stdout.strip()
    if line == "OPEN":
        return "user"
    assert line.startswith("CLOSED 4401"), line
    return "anonymous"


def django_decision(engine_path: str, session_key: str) -> str:
    request = HttpRequest()
    request.session = import_module(engine_path).SessionStore(session_key)
    user = django_get_user(request)
    return "user" if user.is_authenticated else "anonymous"


def caches(redis_url):
    return {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis_url, "KEY_PREFIX": "site", "VERSION": 3,
    }}


@pytest.fixture
def customer(db):
    User = get_user_model()
    User.objects.filter(pk=2).delete()
    # A password the gateway's directory does not hold yet (changed below).
    return User.objects.create(pk=2, username="customer-redis", password="md5$x$old-password-hash")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("engine", list(ENGINES))
def test_cache_sessions_decided_as_django_get_user(engine, redis_url, gateways, customer):
    path = ENGINES[engine]
    port = gateways[engine]
    with override_settings(CACHES=caches(redis_url), SESSION_ENGINE=path):
        customer.password = DEMO_CUSTOMER_HASH
        customer.save()

        def both(key):
            # The gateway first: Django's get_user() flushes a session it refuses.
            got = gateway_decision(port, key)
            want = django_decision(path, key)
            assert got == want, (engine, want, got)
            return want

        # Logged in: the session dict is pickled in Redis under Django's key.
        client = Client()
        client.force_login(customer)
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert both(key) == "user"

        # Logout flushes the cache entry (and the row for cached_db).
        client.logout()
        assert both(key) == "anonymous"

        # Password change: a session made under the old hash is refused.
        customer.password = "md5$x$old-password-hash"
        customer.save()
        client = Client()
        client.force_login(customer)
        old = client.cookies[settings.SESSION_COOKIE_NAME].value
        customer.password = DEMO_CUSTOMER_HASH
        customer.save()
        assert both(old) == "anonymous"

        # Expiry: the cache entry lives as long as the session (Redis TTL).
        client = Client()
        client.force_login(customer)
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        store = import_module(path).SessionStore(key)
        store.set_expiry(3)
        store.save()
        assert both(key) == "user"
        time.sleep(4)
        # cached_db: the cache entry is gone and the row has expired too.
        assert both(key) == "anonymous"


@pytest.mark.django_db(transaction=True)
def test_crafted_pickles_are_refused(redis_url, gateways, customer):
    import redis

    r = redis.Redis.from_url(redis_url)
    key = "craftedsessionkey0123456789abcde"
    payloads = [
        # os.system('true') by REDUCE (what pickle.dumps of a malicious object gives).
        b"\x80\x05\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.",
        b"cposix\nsystem\n(S'true'\ntR.",
        b"\x80\x05\x8d\xff\xff\xff\xff\xff\xff\xff\x7f",  # huge length
        b"\x80\x05}\x94(\x8c\r_auth_user_id",  # truncated
    ]
    for payload in payloads:
        r.set(f"site:3:django.contrib.sessions.cache{key}", payload)
        assert gateway_decision(gateways["cache"], key) == "anonymous"
    # Still serving: a real session opens.
    with override_settings(CACHES=caches(redis_url), SESSION_ENGINE=ENGINES["cache"]):
        customer.password = DEMO_CUSTOMER_HASH
        customer.save()
        client = Client()
        client.force_login(customer)
        assert gateway_decision(gateways["cache"], client.cookies["sessionid"].value) == "user"


def _frames_until_close(sock: "harness._DevToolsSocket", timeout: float) -> int:
    """Reads frames until the server's close frame; returns its code."""
    import struct as _struct

    sock.sock.settimeout(timeout)
    while True:
        b0, b1 = sock._read(2)  # noqa: SLF001 - the harness's frame reader
        n = b1 & 0x7F
        if n == 126:
            (n,) = _struct.unpack("!H", sock._read(2))  # noqa: SLF001
        elif n == 127:
            (n,) = _struct.unpack("!Q", sock._read(8))  # noqa: SLF001
        data = sock._read(n)  # noqa: SLF001
        if b0 & 0x0F == 0x8:
            return _struct.unpack("!H", data[:2])[0]


def _claims(token: str) -> dict:
    import base64
    import json

    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_python_revocations_close_live_sockets(redis_url, tmp_path):
    """``wsauth.revoke_jti`` / ``wsauth.revoke_user`` (for Django logout and
    password-change signals) store and publish by the core's rule; a live
    socket on ``wsauth serve`` closes 4401 within one second (the contract's
    bound) and the token is refused after."""
    import json

    import wsauth

    config = tmp_path / "gw.toml"
    config.write_text(
        f"""
[jwt]
secret = "python-revocation-test-secret-0123456789"
[users]
source = "claims"
check_revoked_jti = true
[[routes]]
name = "chat"
path = "/ws/chat/<slug:room>/"
requirement = "authenticated"
[redis]
url = "{redis_url}"
key_prefix = "py:"
user_revocation_secs = 60
"""
    )
    redis_table = {"url": redis_url, "key_prefix": "py:", "user_revocation_secs": 60}
    with harness.child(
        [_wsauth_binary(), "serve", "--listen", "127.0.0.1:0", "--json", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        info = json.loads(proc.stdout.readline())
        base = info["listen"]
        for token, revoke in [
            (info["customer_token"], lambda c: wsauth.revoke_jti(c["jti"], exp=c["exp"], redis=redis_table)),
            (info["staff_token"], lambda c: wsauth.revoke_user(c["user_id"], redis=redis_table)),
        ]:
            sock = harness._DevToolsSocket(f"{base}/ws/chat/lobby/?token={token}")  # noqa: SLF001
            try:
                sock.send_text("hello")
                sock.recv_text()  # the group's echo: the socket is open
                # The subscriber may still be connecting right after start-up.
                deadline = time.monotonic() + 10
                while revoke(_claims(token)) < 1:
                    assert time.monotonic() < deadline, "the gateway subscribed"
                    time.sleep(0.1)
                started = time.monotonic()
                assert _frames_until_close(sock, timeout=5) == 4401
                assert time.monotonic() - started <= 1.0
            finally:
                sock.close()
            out = subprocess.run(
                [_wsauth_binary(), "probe", f"{base}/ws/chat/lobby/", "--token", token, "--wait-ms", "300"],
                capture_output=True, text=True, timeout=30,
            )
            assert out.stdout.strip() == "CLOSED 4401 token revoked"

    rule = wsauth.revocation(jti="abc", exp=2_000, now=1_000, redis={"key_prefix": "x:"})
    assert rule == {"key": "x:revoked:jti:abc", "ttl_secs": 1000, "channel": "x:revocations", "message": "jti:abc"}
    with pytest.raises(wsauth.WsauthError):
        wsauth.revocation(jti="abc", exp=1_000, now=1_000)
    with pytest.raises(wsauth.WsauthError):
        wsauth.revocation(user="")
