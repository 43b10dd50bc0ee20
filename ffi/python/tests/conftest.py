"""Servers and a browser for the end-to-end tests, each started once per
test session and always stopped: real Daphne serving the reference app,
`wsauth serve`, and headless Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator

import pytest

import harness

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parents[2]


@dataclass
class Served:
    """A running WebSocket server and the page the browser loads from."""

    name: str
    ws_base: str  # ws://127.0.0.1:PORT
    page_url: str  # http://…/ the probe page (same origin for Daphne)
    port: int
    tokens: Dict[str, str]
    receipt: str
    extra: Dict[str, object] = field(default_factory=dict)


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


@pytest.fixture(scope="session")
def browser() -> Iterator[harness.Browser]:
    b = harness.Browser()
    try:
        yield b
    finally:
        b.close()


@contextlib.contextmanager
def _daphne(app: str = "refapp.asgi:application", port: int = 0, **extra_env: str) -> Iterator[Served]:
    """Real Daphne serving ``app`` (refapp.asgi:application) with a seeded
    SQLite file and ``extra_env`` for refapp.settings, on ``port`` (0: a
    free one)."""
    with tempfile.TemporaryDirectory(prefix="wsauth-daphne-") as tmp:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="refapp.settings",
            PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            REFAPP_DATABASE=str(Path(tmp) / "db.sqlite3"),
            **extra_env,
        )
        seeded = subprocess.run(
            [sys.executable, "-m", "refapp.seed"], cwd=TESTS, env=env, capture_output=True, text=True, timeout=120
        )
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        seed = json.loads(seeded.stdout.strip().splitlines()[-1])
        port = port or harness.free_port()
        log = Path(tmp) / "daphne.log"
        with open(log, "wb") as out, harness.child(
            [sys.executable, "-m", "daphne", "-b", harness.HOST, "-p", str(port), app],
            cwd=TESTS,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        ) as proc:
            try:
                harness.wait_for_port(port, proc, timeout=60)
            except Exception as e:
                raise RuntimeError(f"daphne did not start: {e}\n{_log_tail(log)}") from None
            yield Served(
                name="daphne",
                ws_base=f"ws://{harness.HOST}:{port}",
                page_url=f"http://{harness.HOST}:{port}/",
                port=port,
                tokens={"staff": seed["staff_token"], "customer": seed["customer_token"]},
                receipt=str(seed["receipt"]),
                extra={
                    "log": log,
                    "proc": proc,
                    "conversation": str(seed["conversation"]),
                    "inactive_id": str(seed["inactive_id"]),
                },
            )


@pytest.fixture(scope="session")
def daphne_server() -> Iterator[Served]:
    """Real Daphne serving refapp.asgi:application (WsAuthMiddlewareStack +
    RequireAuthMixin consumers) with a seeded SQLite file; WebSocket origins
    limited to 127.0.0.1 / localhost (Channels host patterns)."""
    with _daphne(REFAPP_ORIGINS="127.0.0.1,localhost") as served:
        yield served


@pytest.fixture(scope="session")
def daphne_rate_limited() -> Iterator[Served]:
    """As ``daphne_server``, with ``WSAUTH["limits"]["rate_limit"]``: two
    connection attempts at once per client address, then one a minute."""
    with _daphne(REFAPP_ORIGINS="127.0.0.1,localhost", REFAPP_RATE_LIMIT="1/60/2") as served:
        yield served


GATEWAY_SECRET = "edge-upstream-secret-for-the-python-tests-0123456789"


@pytest.fixture(scope="session")
def daphne_gateway() -> Iterator[Served]:
    """Real Daphne serving refapp.asgi_gateway:application (the reference
    app behind ``GatewayPrincipalMiddlewareStack``, ``WSAUTH_GATEWAY_SECRET``
    = GATEWAY_SECRET)."""
    with _daphne(app="refapp.asgi_gateway:application", REFAPP_GATEWAY_SECRET=GATEWAY_SECRET) as served:
        yield served


def _wsauth_binary() -> str:
    """`wsauth` from WSAUTH_BIN, else built with cargo (the executable path
    comes from cargo's own build messages, wherever the crate lives)."""
    path = os.environ.get("WSAUTH_BIN")
    if path:
        return path
    built = subprocess.run(
        ["cargo", "build", "-p", "wsauth-smol", "--bin", "wsauth", "--message-format=json-render-diagnostics"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    for line in built.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "wsauth":
            return msg["executable"]
    raise AssertionError("cargo built no wsauth executable")


SERVE_SECRET = "wsauth-serve-browser-test-secret-0123456789"


@pytest.fixture(scope="session")
def wsauth_server() -> Iterator[Served]:
    """`wsauth serve` (embedded reference app, demo users: 1 admin is staff,
    2 customer owns receipt 100) and the probe page from a Python
    http.server on another 127.0.0.1 port (allowed by serve's default
    origins http://127.0.0.1:*)."""
    exe = _wsauth_binary()
    page_port = harness.free_port()
    env = dict(os.environ, WSAUTH_SECRET=SERVE_SECRET)
    with tempfile.TemporaryDirectory(prefix="wsauth-serve-") as tmp:
        log = Path(tmp) / "serve.log"
        with open(log, "wb") as err, harness.child(
            [exe, "serve", "--json", "--listen", f"{harness.HOST}:0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
        ) as proc, harness.child(
            [sys.executable, "-m", "http.server", "--bind", harness.HOST, "--directory", str(TESTS), str(page_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as pages:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, f"wsauth serve printed nothing\n{_log_tail(log)}"
            info = json.loads(line)
            base = info["listen"]
            port = int(base.rsplit(":", 1)[1])
            harness.wait_for_port(port, proc, timeout=30)
            harness.wait_for_port(page_port, pages, timeout=30)
            yield Served(
                name="wsauth-serve",
                ws_base=base,
                page_url=f"http://{harness.HOST}:{page_port}/probe.html",
                port=port,
                tokens={"staff": info["staff_token"], "customer": info["customer_token"]},
                receipt="100",
                extra={"exe": exe, "log": log},
            )
