"""Token verification from Python, on the same SimpleJWT-shaped token:
wsauth (Rust core through libwsauth) vs PyJWT's ``jwt.decode`` vs SimpleJWT's
``AccessToken(token)``. Prints per-call times and ratios to PyJWT."""

import os
import sys
import time
import timeit
import uuid

import django
from django.conf import settings

SECRET = "bench-secret-key-" + "k" * 48

settings.configure(
    SECRET_KEY=SECRET,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "rest_framework_simplejwt"],
    DATABASES={},
    USE_TZ=True,
    SIMPLE_JWT={"ACCESS_TOKEN_LIFETIME": __import__("datetime").timedelta(hours=1)},
)
django.setup()

import jwt  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

import wsauth  # noqa: E402


def token(jti: str) -> str:
    now = int(time.time())
    payload = {"token_type": "access", "exp": now + 3600, "iat": now, "jti": jti, "user_id": "1"}
    return jwt.encode(payload, SECRET, algorithm="HS256")


def per_call(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number


def main() -> int:
    number = int(os.environ.get("BENCH_NUMBER", "5000"))
    tok = token(uuid.uuid4().hex)
    verifier = wsauth.TokenVerifier(SECRET)
    many = [token(uuid.uuid4().hex) for _ in range(4096)]

    # Same decision from all three before timing anything.
    ref = jwt.decode(tok, SECRET, algorithms=["HS256"])
    assert AccessToken(tok).payload == ref
    assert verifier.check(tok) == {"valid": True, "user_id": "1", "claims": ref}
    bad = tok[:-2] + ("AA" if not tok.endswith("AA") else "BB")
    assert verifier.check(bad)["valid"] is False

    cycle = iter(many * (number * 8 // len(many) + 2))
    rows = [
        ("PyJWT jwt.decode", lambda: jwt.decode(tok, SECRET, algorithms=["HS256"])),
        ("SimpleJWT AccessToken(token)", lambda: AccessToken(tok)),
        ("wsauth check(), same token", lambda: verifier.check(tok)),
        ("wsauth check(), distinct tokens", lambda: verifier.check(next(cycle))),
        ("wsauth is_valid() (decision only)", lambda: verifier.is_valid(tok)),
    ]
    times = {name: per_call(fn, number) for name, fn in rows}
    base = times["PyJWT jwt.decode"]
    print(f"python {sys.version.split()[0]}, libwsauth {wsauth.library_version()}, {number} calls x 7 repeats (min)")
    print(f"{'implementation':36s} {'us/call':>9s} {'x PyJWT':>8s}")
    for name, _ in rows:
        t = times[name]
        print(f"{name:36s} {t * 1e6:9.2f} {base / t:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
