"""Token verification from Python: wsauth (Rust core through libwsauth) vs
PyJWT's ``jwt.decode`` vs SimpleJWT's ``AccessToken(token)``, on
SimpleJWT-shaped tokens.

Two workloads, each timed per call:

- repeated: the same token again and again;
- distinct: a pool of distinct valid tokens (``--pool``, 10,000 by default),
  each checked once per pass, as when every connection brings its own token
  (no per-token memo can help).

Every row is one pass over a list of tokens; the rows are timed interleaved
(row after row, ``--repeat`` rounds) and each keeps its fastest pass, so
that load from other processes shifts all of them alike. Each wsauth row is
compared with PyJWT on the same workload. ``--check`` exits 1 when a goal
(project issue 13: ``check()`` at least 20x PyJWT on both workloads) is
missed.
"""

import argparse
import datetime
import os
import platform
import sys
import time
import uuid

import django
from django.conf import settings

SECRET = "bench-secret-key-" + "k" * 48
GOAL = 20.0

settings.configure(
    SECRET_KEY=SECRET,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "rest_framework_simplejwt"],
    DATABASES={},
    USE_TZ=True,
    SIMPLE_JWT={"ACCESS_TOKEN_LIFETIME": datetime.timedelta(hours=1)},
)
django.setup()

import jwt  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

import wsauth  # noqa: E402
import wsauth._core  # noqa: E402


def token(jti: str, user_id: str = "1") -> str:
    now = int(time.time())
    payload = {"token_type": "access", "exp": now + 3600, "iat": now, "jti": jti, "user_id": user_id}
    return jwt.encode(payload, SECRET, algorithm="HS256")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"{cpu_model()}, {os.cpu_count()} cores ({usable} usable), load average {load}"


def one_pass(fn, tokens) -> float:
    """Seconds per call for one pass of ``fn`` over ``tokens``."""
    start = time.perf_counter()
    for t in tokens:
        fn(t)
    return (time.perf_counter() - start) / len(tokens)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=int, default=int(os.environ.get("BENCH_POOL", "10000")), help="distinct tokens (default 10000)")
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "7")), help="interleaved rounds (default 7)")
    ap.add_argument("--check", action="store_true", help=f"exit 1 unless check() is at least {GOAL:g}x PyJWT on both workloads")
    args = ap.parse_args()

    verifier = wsauth.TokenVerifier(SECRET)
    same = token(uuid.uuid4().hex)
    pool = [token(uuid.uuid4().hex, str(i % 1000 + 1)) for i in range(args.pool)]
    assert len(set(pool)) == len(pool)
    repeated = [same] * args.pool

    # The same decision from all three before timing anything.
    ref = jwt.decode(same, SECRET, algorithms=["HS256"])
    assert AccessToken(same).payload == ref
    assert verifier.check(same) == {"valid": True, "user_id": "1", "claims": ref}
    for t in pool[:100]:
        assert verifier.check(t) == {"valid": True, "user_id": jwt.decode(t, SECRET, algorithms=["HS256"])["user_id"], "claims": jwt.decode(t, SECRET, algorithms=["HS256"])}
    bad = same[:-2] + ("AA" if not same.endswith("AA") else "BB")
    assert verifier.check(bad)["valid"] is False

    def decode(t):
        return jwt.decode(t, SECRET, algorithms=["HS256"])

    check = verifier.check

    def check_and_read(t):
        return check(t)["claims"]["jti"]

    rows = [
        # (name, workload, function, goal)
        ("PyJWT jwt.decode", "repeated", decode, None),
        ("SimpleJWT AccessToken(token)", "repeated", AccessToken, None),
        ("wsauth check()", "repeated", check, GOAL),
        ("wsauth is_valid() (decision only)", "repeated", verifier.is_valid, None),
        ("PyJWT jwt.decode", "distinct", decode, None),
        ("wsauth check()", "distinct", check, GOAL),
        ("wsauth check() + read a claim", "distinct", check_and_read, None),
    ]
    lists = {"repeated": repeated, "distinct": pool}
    best = [float("inf")] * len(rows)
    for _ in range(args.repeat):
        for i, (_, workload, fn, _) in enumerate(rows):
            best[i] = min(best[i], one_pass(fn, lists[workload]))
    base = {workload: best[i] for i, (name, workload, _, _) in enumerate(rows) if name == "PyJWT jwt.decode"}

    mode = "cffi API mode (compiled)" if getattr(wsauth._core, "COMPILED", False) else "cffi ABI mode (libffi)"
    print(f"machine: {machine()}")
    print(f"python {sys.version.split()[0]}, libwsauth {wsauth.library_version()}, {mode}")
    print(f"{args.pool} tokens per pass, {args.repeat} interleaved rounds, fastest pass of each row")
    print(f"{'workload':9s} {'implementation':36s} {'us/call':>9s} {'x PyJWT':>8s}  goal")
    missed = []
    for (name, workload, _, goal), t in zip(rows, best):
        ratio = base[workload] / t
        verdict = ""
        if goal is not None:
            ok = ratio >= goal
            verdict = f">= {goal:g}x: {'met' if ok else 'MISSED'}"
            if not ok:
                missed.append(f"{name}, {workload} tokens: {ratio:.1f}x < {goal:g}x")
        print(f"{workload:9s} {name:36s} {t * 1e6:9.2f} {ratio:8.1f}  {verdict}")
        if goal is not None and os.environ.get("BENCH_GOALS_OUT"):
            with open(os.environ["BENCH_GOALS_OUT"], "a") as f:
                row = f"Python {name} vs PyJWT, {workload} tokens"
                f.write(f"{row}\t{ratio:.1f}× ({t * 1e6:.2f} µs)\t≥ {goal:g}×\t{'met' if ratio >= goal else 'MISSED'}\n")
    if missed:
        print("goal missed: " + "; ".join(missed))
    else:
        print("goals met")
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
