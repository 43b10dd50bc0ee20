"""Edge mode end to end: a real client → `wsauth serve` with `[upstream]`
(examples/edge.toml) → real Daphne serving the reference app behind
``GatewayPrincipalMiddlewareStack`` (refapp.asgi_gateway).

The gateway decides every handshake: the reference table gives the same
codes as without an upstream, refused handshakes never reach Daphne (its
connection counter does not move), and accepted ones reach the consumer with
``scope["user"]`` the user Django's own SimpleJWT names for the token. The
tokens are the seeded app's own (``AccessToken.for_user``); the gateway
shares Django's ``SECRET_KEY`` as its JWT secret, and its demo directory has
the same users (1 admin, staff; 2 customer, owner of receipt 100)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest
from django.conf import settings as django_settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

import harness
from conftest import GATEWAY_SECRET, REPO, Served, _daphne, _log_tail, _wsauth_binary
from test_gateway import principal, reached
from wsauth import EdgeVerifier

OPEN = "OPEN"
GARBAGE = "garbage"
RECEIPT = "100"  # the gateway's demo directory: receipt 100 belongs to the customer


def edge_toml(upstream_port: int) -> str:
    """examples/edge.toml (the reference routes, `[upstream]`), pointed at
    ``upstream_port``."""
    text = (REPO / "examples" / "edge.toml").read_text()
    shipped = 'url = "ws://127.0.0.1:8000"'
    assert shipped in text
    return text.replace(shipped, f'url = "ws://{harness.HOST}:{upstream_port}"')


@contextlib.contextmanager
def edge_gateway(upstream_port: int) -> Iterator[Dict[str, Any]]:
    """`wsauth serve --config` in edge mode in front of ``upstream_port``.
    Skips (saying why) only when the binary has no edge mode: `serve` says
    it serves its built-in app instead of forwarding (its banner has no
    ``"mode": "edge"``), or refuses the `[upstream]` table."""
    exe = _wsauth_binary()
    env = dict(
        os.environ,
        WSAUTH_SECRET=django_settings.SECRET_KEY,
        WSAUTH_UPSTREAM_SECRET=GATEWAY_SECRET,
    )
    with tempfile.TemporaryDirectory(prefix="wsauth-edge-") as tmp:
        config = Path(tmp) / "edge.toml"
        config.write_text(edge_toml(upstream_port))
        log = Path(tmp) / "serve.log"
        with open(log, "wb") as err, harness.child(
            [exe, "serve", "--json", "--listen", f"{harness.HOST}:0", "--config", str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
        ) as proc:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, f"wsauth serve printed nothing\n{_log_tail(log)}"
            info = json.loads(line)
            refused = (info.get("error") or {}).get("message", "")
            if "upstream" in refused and "unknown" in refused:
                pytest.skip(f"this wsauth binary has no edge mode: serve refuses the [upstream] table ({refused})")
            assert "error" not in info, info
            if info.get("mode") != "edge":
                pytest.skip(
                    "this wsauth binary accepts [upstream] but does not forward to it "
                    f"(its serve banner says mode={info.get('mode')!r}, not 'edge'): "
                    "the gateway side of edge mode is not in this build"
                )
            # The file serve runs is one `wsauth config check` accepts.
            checked = subprocess.run([exe, "config", "check", str(config)], env=env, capture_output=True, text=True)
            assert checked.returncode == 0, checked.stdout + checked.stderr
            port = int(info["listen"].rsplit(":", 1)[1])
            harness.wait_for_port(port, proc, timeout=30)
            yield {"ws_base": info["listen"], "proc": proc, "log": log}


@pytest.fixture(scope="module")
def upstream(daphne_gateway: Served) -> Served:
    return daphne_gateway


@pytest.fixture(scope="module")
def gateway(upstream: Served) -> Iterator[Dict[str, Any]]:
    with edge_gateway(upstream.port) as gw:
        yield gw


def token_for(upstream: Served, who: Optional[str]) -> Optional[str]:
    if who is None:
        return None
    if who == GARBAGE:
        return GARBAGE
    return upstream.tokens[who]


def django_user_id(token: Optional[str]) -> Optional[str]:
    """Who Django's SimpleJWT says the token is (``None``: no valid token)."""
    if token is None:
        return None
    try:
        return str(AccessToken(token)["user_id"])
    except TokenError:
        return None


def short_token(user_id: int, lifetime: timedelta) -> str:
    """A SimpleJWT access token for ``user_id`` with its own lifetime."""
    token = AccessToken()
    token["user_id"] = user_id
    token.set_exp(lifetime=lifetime)
    return str(token)


def open_via(
    gw: Dict[str, Any], path: str, carrier: Optional[str] = None, token: Optional[str] = None
) -> harness.WsClient:
    url = gw["ws_base"] + path
    protocols: Tuple[str, ...] = ()
    if carrier == "query" and token is not None:
        url += f"?token={token}"
    elif carrier == "subprotocol" and token is not None:
        protocols = ("bearer", token)
    return harness.WsClient(url, subprotocols=protocols, timeout=20)


# (case, path, carrier, who, expected, subprotocol answered)
TABLE = [
    ("staff token, admin chat", "/ws/admin/chat/", "query", "staff", OPEN, None),
    ("customer token, admin chat", "/ws/admin/chat/", "query", "customer", 4403, None),
    ("no token, admin chat", "/ws/admin/chat/", None, None, 4401, None),
    ("garbage token, admin chat", "/ws/admin/chat/", "query", GARBAGE, 4401, None),
    ("anonymous, customer chat", "/ws/chat/lobby/", None, None, OPEN, None),
    ("bearer staff, admin chat", "/ws/admin/chat/", "subprotocol", "staff", OPEN, "bearer"),
    ("bearer garbage, admin chat", "/ws/admin/chat/", "subprotocol", GARBAGE, 4401, "bearer"),
    ("bearer customer, log stream", "/ws/logs/", "subprotocol", "customer", 4403, "bearer"),
    ("customer token, own receipt", f"/ws/receipts/{RECEIPT}/", "query", "customer", OPEN, None),
    ("staff token, customer's receipt", f"/ws/receipts/{RECEIPT}/", "query", "staff", 4403, None),
]


@pytest.mark.parametrize("case,path,carrier,who,expected,subprotocol", TABLE, ids=[r[0] for r in TABLE])
def test_reference_table_through_the_gateway(gateway, upstream, case, path, carrier, who, expected, subprotocol):
    token = token_for(upstream, who)
    before = reached(upstream)
    with open_via(gateway, path, carrier, token) as ws:
        kind, detail = harness.outcome(ws)
        assert ws.subprotocol == subprotocol, case
        if expected == OPEN:
            assert kind == OPEN, f"{case}: {detail}"
            # The consumer's scope["user"] is who Django's SimpleJWT says the token is.
            want = django_user_id(token)
            assert (None if detail["pk"] is None else str(detail["pk"])) == want, case
            assert detail["authenticated"] is (want is not None)
            if who == "staff":
                assert detail["username"] == "admin" and detail["staff"] is True
            if who == "customer":
                assert detail["username"] == "customer" and detail["staff"] is False
            # Messages both ways, through the gateway.
            ws.send_json({"hello": case})
            echoed = ws.recv_json()
            assert echoed["echo"] == {"hello": case} and echoed["pk"] == detail["pk"]
        else:
            assert (kind, detail) == ("CLOSE", expected), case
            if who == GARBAGE:
                assert django_user_id(token) is None  # Django refuses it too
        if token and len(token) > 16:
            assert token not in json.dumps(detail)
    after = reached(upstream)
    # Accepted handshakes reach Daphne once; refused ones never do.
    assert after == before + (1 if expected == OPEN else 0), case


def test_expired_token_never_reaches_daphne(gateway, upstream):
    token = short_token(1, timedelta(seconds=-30))
    assert django_user_id(token) is None  # SimpleJWT: expired
    before = reached(upstream)
    with open_via(gateway, "/ws/admin/chat/", "query", token) as ws:
        assert harness.outcome(ws) == ("CLOSE", 4401)
    assert reached(upstream) == before


def test_credentials_never_reach_daphne(gateway, upstream):
    """The consumer sees the principal, not the token: nothing it reports
    (the verified principal header included) holds the token."""
    token = upstream.tokens["staff"]
    with open_via(gateway, "/ws/admin/chat/", "subprotocol", token) as ws:
        kind, hello = harness.outcome(ws)
        assert kind == OPEN
        assert hello["principal"]["id"] == django_user_id(token)
        assert hello["principal"]["carrier"] == "subprotocol" and hello["route"] == "admin_chat"
        ws.send_json({"type": "ping"})
        assert token not in json.dumps(ws.recv_json())


def test_a_client_cannot_send_its_own_principal_header(gateway, upstream):
    """A principal header from the client (even a validly signed one) never
    reaches Daphne: the gateway forwards only its own."""
    staff = principal(django_user_id(upstream.tokens["staff"]), True)
    path = "/ws/chat/lobby/"
    lifted = EdgeVerifier(GATEWAY_SECRET).sign(staff, "chat", path)
    ws = harness.WsClient(gateway["ws_base"] + path, headers=[("X-WsAuth-Principal", lifted)], timeout=20)
    with ws:
        kind, hello = harness.outcome(ws)
        assert kind == OPEN
        assert hello["authenticated"] is False and hello["principal"] is None


def test_expiry_on_the_forwarded_socket_closes_4401(gateway, upstream):
    token = short_token(1, timedelta(seconds=2))
    with open_via(gateway, "/ws/admin/chat/", "query", token) as ws:
        kind, hello = harness.outcome(ws)
        assert kind == OPEN and hello["username"] == "admin"
        # No more messages from the client: the gateway closes when the token expires.
        while True:
            got = ws.recv()
            if got[0] == "close":
                break
        assert got[1] == 4401


def test_refresh_in_band_keeps_the_forwarded_socket_open(gateway, upstream):
    token = short_token(1, timedelta(seconds=2))
    with open_via(gateway, "/ws/admin/chat/", "query", token) as ws:
        kind, _ = harness.outcome(ws)
        assert kind == OPEN
        ws.send_json({"type": "refresh", "token": upstream.tokens["staff"]})
        # Past the first token's expiry, the socket still carries messages.
        time.sleep(3)
        ws.send_json({"after": "refresh"})
        while True:
            got = ws.recv()
            assert got[0] == "text", f"closed after a refresh: {got}"
            msg = json.loads(got[1])
            if msg.get("echo") == {"after": "refresh"}:
                break
        assert msg["username"] == "admin"


def test_daphne_down_is_1014_and_served_again_when_back():
    port = harness.free_port()
    daphne = _daphne(app="refapp.asgi_gateway:application", port=port, REFAPP_GATEWAY_SECRET=GATEWAY_SECRET)
    served = daphne.__enter__()
    try:
        with edge_gateway(port) as gw:
            with open_via(gw, "/ws/chat/lobby/") as ws:
                assert harness.outcome(ws)[0] == OPEN
            daphne.__exit__(None, None, None)
            daphne = None
            with open_via(gw, "/ws/chat/lobby/") as ws:
                assert harness.outcome(ws) == ("CLOSE", 1014)
            with open_via(gw, "/ws/admin/chat/", "query", served.tokens["staff"]) as ws:
                assert harness.outcome(ws) == ("CLOSE", 1014)
            with _daphne(app="refapp.asgi_gateway:application", port=port, REFAPP_GATEWAY_SECRET=GATEWAY_SECRET) as back:
                with open_via(gw, "/ws/admin/chat/", "query", back.tokens["staff"]) as ws:
                    kind, hello = harness.outcome(ws)
                    assert kind == OPEN and hello["username"] == "admin"
    finally:
        if daphne is not None:
            daphne.__exit__(None, None, None)
