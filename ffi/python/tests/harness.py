"""Process and browser helpers for the end-to-end tests: free ports, child
processes that are always terminated, and headless Chromium driven over the
DevTools protocol (a small synchronous WebSocket client, no extra packages).

Every wait is bounded; nothing listens beyond 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

HOST = "127.0.0.1"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: Optional[subprocess.Popen] = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError):
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout} s")


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminates one child process (then kills it if it lingers)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


@contextlib.contextmanager
def child(args: Sequence[str], **kwargs: Any) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(list(args), **kwargs)
    try:
        yield proc
    finally:
        stop(proc)


def http_status(port: int, request: bytes, timeout: float = 5.0) -> int:
    """Sends one raw HTTP request and returns the response's status code."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise AssertionError(f"not an HTTP response: {line!r}")
    return int(parts[1])


def upgrade_request(port: int, path: str, headers: Sequence[tuple] = ()) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# ---------------------------------------------------------------------------
# A minimal WebSocket client for the end-to-end tests: any request headers
# and subprotocols, and the close code and reason as the server sent them.


class WsClient:
    """One client connection to ``url`` (``ws://host:port/path?query``).
    ``status`` is the handshake's HTTP status (101 when upgraded) and
    ``subprotocol`` the server's ``Sec-WebSocket-Protocol`` answer."""

    def __init__(
        self,
        url: str,
        headers: Sequence[tuple] = (),
        subprotocols: Sequence[str] = (),
        timeout: float = 10.0,
    ) -> None:
        assert url.startswith("ws://"), url
        hostport, _, target = url[len("ws://") :].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET /{target} HTTP/1.1",
            f"Host: {hostport}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if subprotocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
        lines += [f"{k}: {v}" for k, v in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        head, _, self.buf = head.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split()
        self.status = int(parts[1]) if len(parts) > 1 and parts[0].startswith("HTTP/") else 0
        self.headers: Dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.subprotocol: Optional[str] = self.headers.get("sec-websocket-protocol")
        self.closed: Optional[tuple] = None

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed without a close frame")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode("utf-8"))

    def send_json(self, value: Any) -> None:
        self.send_text(json.dumps(value))

    def recv(self) -> tuple:
        """``("text", str)``, or ``("close", code, reason)`` once the server
        closed (answered with a close frame)."""
        parts: List[bytes] = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                self.closed = ("close", code, data[2:].decode("utf-8", "replace"))
                with contextlib.suppress(OSError):
                    self._send_frame(0x8, data[:2])
                return self.closed
            if opcode == 0x9:
                self._send_frame(0xA, data)
                continue
            if opcode == 0xA:
                continue
            parts.append(data)
            if b0 & 0x80:
                return ("text", b"".join(parts).decode("utf-8"))

    def recv_json(self) -> Any:
        got = self.recv()
        assert got[0] == "text", f"expected a message, got {got}"
        return json.loads(got[1])

    def close(self, code: int = 1000) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            if self.closed is None:
                self._send_frame(0x8, struct.pack("!H", code))
                while self.recv()[0] != "close":
                    pass
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> "WsClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def outcome(client: WsClient) -> Any:
    """``("OPEN", first_message)`` when the server accepted and spoke first;
    ``("CLOSE", code)`` when it accepted and closed; ``("HTTP", status)``
    when it refused the upgrade."""
    if client.status != 101:
        return ("HTTP", client.status)
    got = client.recv()
    if got[0] == "close":
        return ("CLOSE", got[1])
    return ("OPEN", json.loads(got[1]))


# ---------------------------------------------------------------------------
# A minimal WebSocket client for the DevTools endpoint.


class _DevToolsSocket:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        assert url.startswith("ws://"), url
        hostport, _, path = url[len("ws://") :].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the handshake")
            head += chunk
        head, _, self.buf = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"DevTools refused the upgrade: {head[:80]!r}")

    def send_text(self, text: str) -> None:
        payload = text.encode("utf-8")
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("DevTools connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_text(self) -> str:
        parts: List[bytes] = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the socket")
            if opcode in (0x9, 0xA):
                continue
            parts.append(data)
            if b0 & 0x80:
                return b"".join(parts).decode("utf-8")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, executable: str = "", timeout: float = 30.0) -> None:
        exe = executable or os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
        self.profile = tempfile.mkdtemp(prefix="wsauth-chromium-")
        args = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "about:blank"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws: Optional[_DevToolsSocket] = None
        self._id = 0
        try:
            port = self._devtools_port(timeout)
            self.ws = _DevToolsSocket(self._page_url(port, timeout))
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, timeout: float) -> int:
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(marker.read_text().splitlines()[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    @staticmethod
    def _page_url(port: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(f"http://{HOST}:{port}/json/list", timeout=2) as r:
                    for target in json.load(r):
                        if target.get("type") == "page" and target.get("webSocketDebuggerUrl"):
                            return target["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise TimeoutError("chromium has no page target")

    def call(self, method: str, params: Optional[Dict[str, Any]] = None, timeout: float = 20.0) -> Dict[str, Any]:
        assert self.ws is not None
        self._id += 1
        mid = self._id
        self.ws.sock.settimeout(timeout)
        self.ws.send_text(json.dumps({"id": mid, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv_text())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def evaluate(self, expression: str, timeout: float = 20.0) -> Any:
        res = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout=timeout,
        )
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def open(self, url: str, timeout: float = 20.0) -> None:
        """Loads the probe page at ``url`` and waits until its script is ready."""
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate("window.location.href + '|' + (window.probeReady === true)") == url + "|true":
                return
            time.sleep(0.05)
        raise TimeoutError(f"the probe page did not load from {url}")

    def probe(self, url: str, protocols: Optional[List[str]] = None) -> Dict[str, Any]:
        """What the browser sees for ``new WebSocket(url, protocols)``."""
        return self.evaluate(f"probe({json.dumps(url)}, {json.dumps(protocols)})")

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        stop(self.proc)
        shutil.rmtree(self.profile, ignore_errors=True)
