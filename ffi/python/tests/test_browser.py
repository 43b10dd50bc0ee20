"""What a real browser sees: headless Chromium loads a page and opens
WebSockets to (a) real Daphne serving the reference app through
WsAuthMiddlewareStack + RequireAuthMixin, (b) `wsauth serve` and (c)
`wsauth serve` in edge mode in front of Daphne serving the reference app
behind GatewayPrincipalMiddlewareStack. The page
records the browser's own observations — the `open` event, `ws.protocol`
and the close event's code — and every server must give the same table
(DESIGN §3: codes after accept; `bearer` echoed on every accept, including
one that only closes with 4401 / 4403 / 4429, or the browser reports 1006)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import harness

TESTS = Path(__file__).resolve().parent

OPEN = "OPEN"

# (case, path, carrier, token, expected outcome, expected ws.protocol)
# carrier: "query" (?token=), "subprotocol" (["bearer", token]) or None.
TABLE: List[Tuple[str, str, Optional[str], Optional[str], Any, str]] = [
    ("staff token, admin chat", "/ws/admin/chat/", "query", "staff", OPEN, ""),
    ("customer token, admin chat", "/ws/admin/chat/", "query", "customer", 4403, ""),
    ("no token, admin chat", "/ws/admin/chat/", None, None, 4401, ""),
    ("garbage token, admin chat", "/ws/admin/chat/", "query", "garbage", 4401, ""),
    ("anonymous, customer chat", "/ws/chat/lobby/", None, None, OPEN, ""),
    ("bearer staff, admin chat", "/ws/admin/chat/", "subprotocol", "staff", OPEN, "bearer"),
    ("bearer garbage, admin chat", "/ws/admin/chat/", "subprotocol", "garbage", 4401, "bearer"),
    ("bearer customer, admin chat", "/ws/admin/chat/", "subprotocol", "customer", 4403, "bearer"),
    ("bearer customer, log stream", "/ws/logs/", "subprotocol", "customer", 4403, "bearer"),
    ("customer token, own receipt", "/ws/receipts/{receipt}/", "query", "customer", OPEN, ""),
    ("staff token, customer's receipt", "/ws/receipts/{receipt}/", "query", "staff", 4403, ""),
]

GARBAGE = "garbage"


def observed(result: Dict[str, Any]) -> Any:
    """OPEN when the socket opened and stayed open until the page closed it;
    else the close code the browser reported."""
    if result.get("open") and result.get("closedByPage") and result.get("code") == 1000:
        return OPEN
    return result.get("code")


@pytest.fixture(scope="module")
def edge_server(daphne_gateway):
    """`wsauth serve` in edge mode (examples/edge.toml) in front of Daphne
    serving the reference app behind GatewayPrincipalMiddlewareStack; the
    probe page from a Python http.server on another 127.0.0.1 port."""
    from conftest import Served
    from test_gateway_serve import RECEIPT, edge_gateway

    page_port = harness.free_port()
    with edge_gateway(daphne_gateway.port) as gw, harness.child(
        [sys.executable, "-m", "http.server", "--bind", harness.HOST, "--directory", str(TESTS), str(page_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as pages:
        harness.wait_for_port(page_port, pages, timeout=30)
        yield Served(
            name="edge",
            ws_base=gw["ws_base"],
            page_url=f"http://{harness.HOST}:{page_port}/probe.html",
            port=int(gw["ws_base"].rsplit(":", 1)[1]),
            tokens=daphne_gateway.tokens,
            receipt=RECEIPT,
        )


@pytest.fixture(scope="module", params=["daphne", "wsauth-serve", "edge"])
def served(request):
    """Daphne alone; `wsauth serve` alone; `wsauth serve` in front of Daphne."""
    name = {"daphne": "daphne_server", "wsauth-serve": "wsauth_server", "edge": "edge_server"}[request.param]
    return request.getfixturevalue(name)


@pytest.mark.parametrize("case,path,carrier,who,expected,protocol", TABLE, ids=[row[0] for row in TABLE])
def test_browser_observes_the_contract(browser, served, case, path, carrier, who, expected, protocol):
    if browser.evaluate("window.location.href") != served.page_url:
        browser.open(served.page_url)
    token = None if who is None else (GARBAGE if who == GARBAGE else served.tokens[who])
    url = served.ws_base + path.format(receipt=served.receipt)
    protocols = None
    if carrier == "query":
        url += f"?token={token}"
    elif carrier == "subprotocol":
        protocols = ["bearer", token]
    result = browser.probe(url, protocols)
    assert observed(result) == expected, f"{served.name}: {case}: browser saw {result}"
    assert result["open"], f"{served.name}: {case}: the server must accept before closing: {result}"
    assert result["protocol"] == protocol, f"{served.name}: {case}: ws.protocol {result['protocol']!r}"
    if token and len(token) > 16:
        assert token not in (result.get("reason") or "")


def test_browser_sees_4429_over_the_rate_limit(browser, daphne_rate_limited):
    """Daphne with ``limits.rate_limit`` (two attempts at once, then one a
    minute, per address): the third attempt is accepted, answers ``bearer``
    and closes with 4429 — a code the browser can read."""
    served = daphne_rate_limited
    browser.open(served.page_url)
    url = served.ws_base + "/ws/admin/chat/"
    seen = [browser.probe(url, ["bearer", served.tokens["staff"]]) for _ in range(3)]
    assert [observed(r) for r in seen] == [OPEN, OPEN, 4429], seen
    assert all(r["open"] and r["protocol"] == "bearer" for r in seen), seen
