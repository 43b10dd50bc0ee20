"""Connection counters for scripts/bench-edge, off unless BENCH_COUNT_FILE is set.

`counting(app)` counts the WebSocket connections that reach the ASGI
application; the consumers count what they decided. On SIGUSR1 the process
writes the counts as one JSON line to BENCH_COUNT_FILE (the script reads
them before and after a run), so counting costs an integer increment.
"""

import json
import os
import signal

COUNT_FILE = os.environ.get("BENCH_COUNT_FILE")

counts = {"reached": 0, "accepted": 0, "refused": 0}


def bump(name):
    if COUNT_FILE:
        counts[name] += 1


def _dump(_signum, _frame):
    tmp = COUNT_FILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(counts) + "\n")
    os.replace(tmp, COUNT_FILE)


def counting(app):
    """`app`, counting the WebSocket scopes it receives (when counting is on)."""
    if not COUNT_FILE:
        return app
    # Imported by Daphne in its main thread, where signal handlers are set.
    signal.signal(signal.SIGUSR1, _dump)

    async def counted(scope, receive, send):
        if scope.get("type") == "websocket":
            counts["reached"] += 1
        return await app(scope, receive, send)

    return counted
