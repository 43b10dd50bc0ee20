#!/usr/bin/env python3
"""Generates jwt_differential.json: randomized access tokens decided by the
real `rest_framework_simplejwt.tokens.AccessToken(token)` (SimpleJWT 5.5.1 on
PyJWT 2.15.1, Django 5.2), with both clocks pinned.

Usage (in a venv with ../../../../shared/vectors/versions.txt installed):
    python3 jwt_differential.py > jwt_differential.json

Each case: {"token", "now", "audience", "issuer", "expect"} where expect is
{"valid": true, "dumps": json.dumps(payload, separators=(",", ":"))} or
{"valid": false, "kind": <wsauth error kind>, "message": <SimpleJWT message or "crash">}.
"""
import base64
import hashlib
import hmac
import json
import random
import sys
from datetime import datetime, timezone

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="differential-secret-0123456789-abcdefghijklmnop",
    USE_TZ=True,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework_simplejwt"],
    SIMPLE_JWT={"ALGORITHM": "HS256"},
)
django.setup()

import jwt  # noqa: E402
from jwt import api_jwt  # noqa: E402
from rest_framework_simplejwt import tokens  # noqa: E402
from rest_framework_simplejwt.backends import TokenBackend  # noqa: E402
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError  # noqa: E402

KEY = "differential-secret-0123456789-abcdefghijklmnop"
NOW = 1750000000


class FixedDatetime(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.fromtimestamp(FixedDatetime.fixed, tz=tz)


api_jwt.datetime = FixedDatetime


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign(header: bytes, payload: bytes, key=KEY) -> str:
    si = b64(header) + "." + b64(payload)
    return si + "." + b64(hmac.new(key.encode(), si.encode(), hashlib.sha256).digest())


KIND_OF = {
    "InvalidSignatureError": "bad_signature",
    "InvalidAlgorithmError": "bad_algorithm",
    "ImmatureSignatureError": "not_yet_valid",
    "ExpiredSignatureError": "expired",
    "InvalidAudienceError": "bad_audience",
    "InvalidIssuerError": "bad_issuer",
}


def decide(token, now, audience, issuer):
    FixedDatetime.fixed = now
    tokens.aware_utcnow = lambda: datetime.fromtimestamp(now, tz=timezone.utc)
    tokens.AccessToken._token_backend = TokenBackend("HS256", KEY, audience=audience, issuer=issuer, leeway=0)
    try:
        payload = tokens.AccessToken(token).payload
    except ExpiredTokenError as e:
        return {"valid": False, "kind": "expired", "message": str(e.args[0])}
    except TokenError as e:
        message = str(e.args[0])
        cause = e.__cause__.__cause__ if e.__cause__ is not None else None
        if cause is None:
            kind = {"Token has wrong type": "wrong_token_type"}.get(message, "missing_claim")
        elif isinstance(cause, jwt.MissingRequiredClaimError):
            kind = {"aud": "bad_audience", "iss": "bad_issuer"}[cause.claim]
        else:
            kind = KIND_OF.get(type(cause).__name__, "malformed")
        return {"valid": False, "kind": kind, "message": message}
    except Exception:
        # Escapes SimpleJWT (HTTP 500 in Django): wsauth rejects it as malformed.
        return {"valid": False, "kind": "malformed", "message": "crash"}
    return {"valid": True, "dumps": json.dumps(payload, separators=(",", ":"))}


R = random.Random(20250615)

SCALARS = [
    "null", "true", "false", "NaN", "Infinity", "-Infinity", "0", "-0", "1", "-1", "1.5", "-0.0", "1e5", "1E+5",
    "2.5e-7", "1e400", "-1e400", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "123456789012345678901234567890", "0.1", "100000000000000000000.0", "1e16", "1e15", "123.456e2",
    '""', '"a"', '"\\u00e9"', '"\\ud83d\\ude00"', '"\\ud83d"', '"\\ude00\\ud83d"', '"\\ud83d\\u0041"',
    '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\x7f"', '"caf\xc3\xa9"', '"\xed\xa0\x80"', '"\xf0\x9f\x98\x80"',
]
BROKEN = [
    "01", "1.", ".5", "+1", "-", "nul", "nan", "-NaN", "infinity", "'a'", '"\\x"', '"\\u12"', '"\t"', "[1,]",
    '{"a":1,}', "[,]", "{1:2}", '"\xff"', '"\xc0\x80"', "1e", "--1", "0x10", "[1 2]", '{"a" 1}', "tru",
]


def rand_value(depth=0):
    r = R.random()
    if depth > 3 or r < 0.5:
        return R.choice(SCALARS)
    if r < 0.75:
        return "[" + ",".join(rand_value(depth + 1) for _ in range(R.randrange(4))) + "]"
    keys = ['"a"', '"b"', '"a"', '"\\u0061"', '""', '"k\\u00e9"']
    return "{" + ",".join(R.choice(keys) + ":" + rand_value(depth + 1) for _ in range(R.randrange(4))) + "}"


def ws():
    return R.choice(["", "", " ", "\n", "\t", "\r", " \n "])


def mutate(text: str) -> str:
    ops = R.randrange(4)
    if ops == 0:
        return R.choice(BROKEN)
    pos = R.randrange(len(text) + 1)
    if ops == 1:
        return text[:pos] + R.choice([",", "]", "}", ":", '"', "\\", "\x00", "\x0b", "\ufeff"]) + text[pos:]
    if ops == 2:
        return text[:pos] + text[pos + 1 :]
    return text[:pos] + R.choice(BROKEN) + text[pos:]


INT_LIKE = [
    "1750000000", "1749999999", "1750000001", "1750000000.5", "1750000000.9999", "1750000001.0", '"1750000000"',
    '" 1749999999 "', '"1_749_999_999"', '"1__7"', '"\\u0661\\u0662"', '"\\uff11\\uff17\\uff15\\uff10"', '"1.0"',
    '"abc"', '""', "true", "false", "null", "[]", "{}", "NaN", "Infinity", "-Infinity", "1e400",
    "253402300799", "253402300800", "253402300799.5", "-62135596800", "-62135596801", "100000000000000000000",
    "-100000000000000000000", '"9999999999"', '"+1750000100"', '"\\u00a01750000100"', '"\\u001c1750000100"',
    "1e300", "-1e300", "1750000300", "1750000300.0", '"1750000300"',
]


def case_payload():
    kind = R.randrange(6)
    base = {
        "token_type": '"access"',
        "exp": str(NOW + 300),
        "iat": str(NOW),
        "jti": '"0123456789abcdef0123456789abcdef"',
        "user_id": '"1"',
    }
    audience = issuer = None
    if kind == 0:
        base["x"] = rand_value()
    elif kind == 1:
        base["x"] = mutate(rand_value())
    elif kind == 2:
        for claim in R.sample(["iat", "nbf", "exp"], R.randrange(1, 3)):
            base[claim] = R.choice(INT_LIKE)
    elif kind == 3:
        for claim in R.sample(["token_type", "jti", "exp", "sub"], R.randrange(1, 3)):
            if R.random() < 0.5:
                base.pop(claim, None)
            else:
                base[claim] = R.choice(SCALARS + ['"access"', '"refresh"', '"ACCESS"'])
    elif kind == 4:
        audience = R.choice([None, "aud-1"])
        issuer = R.choice([None, "iss-1"])
        for claim in ("aud", "iss"):
            if R.random() < 0.7:
                base[claim] = R.choice(SCALARS + ['"aud-1"', '"iss-1"', '["x","aud-1"]', '["aud-1",1]', "[]", '["x"]'])
    else:
        # duplicate keys: the last one wins
        dup = R.choice(list(base))
        text = "{" + ",".join(ws() + json.dumps(k) + ws() + ":" + ws() + v for k, v in base.items())
        text += ',"' + dup + '":' + R.choice(SCALARS) + "}"
        return text.encode("utf-8", "surrogatepass"), audience, issuer
    text = "{" + ",".join(ws() + json.dumps(k) + ws() + ":" + ws() + v + ws() for k, v in base.items()) + "}"
    if R.random() < 0.05:
        text = "\ufeff" + text
    return text.encode("utf-8", "surrogatepass"), audience, issuer


HEADERS = [
    b'{"alg":"HS256","typ":"JWT"}',
    b'{"typ":"JWT","alg":"HS256"}',
    b'{"alg":"HS256"}',
    b'{"alg":"HS\\u0032\\u00356"}',
    b'{"alg":"hs256"}',
    b'{"alg":"HS512"}',
    b'{"alg":"none"}',
    b'{"alg":null}',
    b'{"alg":""}',
    b'{"typ":"JWT"}',
    b'{"alg":"HS256","alg":"none"}',
    b'{"alg":"none","alg":"HS256"}',
    b'{"alg":"HS256","kid":"k"}',
    b'{"alg":"HS256","kid":1}',
    b'{"alg":"HS256","kid":null}',
    b'{"alg":"HS256","crit":["b64"],"b64":true}',
    b'{"alg":"HS256","crit":["b64"]}',
    b'{"alg":"HS256","crit":[]}',
    b'{"alg":"HS256","crit":"b64","b64":true}',
    b'{"alg":"HS256","crit":["exp"]}',
    b'{"alg":"HS256","b64":false}',
    b'{"alg":"HS256","b64":0}',
    b'{"alg":"HS256","typ":5}',
    b'[]',
    b'"x"',
    b'{"alg":"HS256",}',
    b'\xef\xbb\xbf{"alg":"HS256"}',
    b'{"alg":"HS256"}\n',
    b'{"alg":"HS256","x":NaN}',
]


def mutate_token(tok: str) -> str:
    h, p, s = tok.split(".")
    op = R.randrange(8)
    if op == 0:
        return tok + "="
    if op == 1:
        return tok + "=="
    if op == 2:
        return h + "=." + p + "." + s
    if op == 3:
        return h + "." + p + "=." + s
    if op == 4:
        # flip unused low bits of the last signature character
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        i = alphabet.index(s[-1])
        return h + "." + p + "." + s[:-1] + alphabet[i ^ 1]
    if op == 5:
        return tok + ".x"
    if op == 6:
        i = R.randrange(len(tok))
        return tok[:i] + R.choice("+/ =.A_-") + tok[i + 1 :]
    return h + "." + s


def main():
    cases = []
    for n in range(900):
        payload, audience, issuer = case_payload()
        header = R.choice(HEADERS) if R.random() < 0.25 else HEADERS[0]
        token = sign(header, payload)
        if R.random() < 0.1:
            token = mutate_token(token)
        now = NOW if R.random() < 0.9 else R.choice([NOW + 400, NOW - 1, 0, 253402300799])
        cases.append(
            {"token": token, "now": now, "audience": audience, "issuer": issuer, "expect": decide(token, now, audience, issuer)}
        )
    json.dump({"key": KEY, "generator": "jwt_differential.py: SimpleJWT AccessToken on PyJWT " + jwt.__version__, "cases": cases}, sys.stdout, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
