"""``TokenVerifier.check()`` (the decision through
``wsauth_token_verifier_check_result_payload``, claims parsed on first use
from the decoded payload it hands out) decides exactly as the core's whole
JSON answer (``wsauth_token_verifier_check_json``) and gives, for a valid
token, the claims and user id real PyJWT gives (``jwt.decode``, which
SimpleJWT's ``AccessToken`` calls), for every token of the shared vector
set and for hand-made tokens with every kind of user id and claim — without
verifying the token a second time when the claims are read."""

import base64
import copy
import hashlib
import hmac
import json
import os
import pickle
import sys
import threading
from pathlib import Path

import jwt as pyjwt
import pytest

import wsauth
import wsauth._core as core

KEY = "lazy-claims-test-key-0123456789abcdef0123456789"
NOW = 1_750_000_000


def vectors_path() -> Path:
    env = os.environ.get("WSAUTH_VECTORS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "vectors.json"


def token_vectors() -> list:
    doc = json.loads(vectors_path().read_text(encoding="utf-8"))
    out = []
    for v in doc["vectors"]:
        token = (v.get("inputs") or {}).get("token")
        if v["kind"] in ("simplejwt_access_token", "simplejwt_refresh_token") and isinstance(token, str):
            out.append(v)
    return out


def verifier_for(settings: dict) -> wsauth.TokenVerifier:
    sj = settings["SIMPLE_JWT"]
    return wsauth.TokenVerifier(
        sj.get("SIGNING_KEY") or settings["SECRET_KEY"],
        algorithm=sj.get("ALGORITHM", "HS256"),
        leeway=sj.get("LEEWAY", 0),
        audience=sj.get("AUDIENCE"),
        issuer=sj.get("ISSUER"),
        user_id_claim=sj.get("USER_ID_CLAIM", "user_id"),
        token_type_claim=sj.get("TOKEN_TYPE_CLAIM", "token_type"),
        jti_claim=sj.get("JTI_CLAIM", "jti"),
    )


def seg(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge_payload(payload_json: str, key: str = KEY) -> str:
    """An HS256 token whose payload is exactly ``payload_json`` (duplicate
    keys, NaN and lone surrogates included)."""
    signing_input = seg(b'{"alg":"HS256","typ":"JWT"}') + "." + seg(payload_json.encode("utf-8", "surrogatepass"))
    sig = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + seg(sig)


def claims_with(user_id_json) -> str:
    base = '"token_type":"access","exp":%d,"iat":%d,"jti":"0123456789abcdef0123456789abcdef"' % (NOW + 300, NOW)
    return "{" + base + ("" if user_id_json is None else ',"user_id":' + user_id_json) + "}"


USER_IDS = {
    "decimal": '"42"',
    "decimal_negative": '"-7"',
    "zero": '"0"',
    "leading_zero": '"042"',
    "minus_zero": '"-0"',
    "plus": '"+1"',
    "beyond_i64_text": '"9223372036854775808"',
    "i64_max_text": '"9223372036854775807"',
    "uuid": '"6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f"',
    "escaped": '"Zo\\u00eb \\"quoted\\" \\\\ back"',
    "utf8": '"Zoë ☃ 𝄞"',
    "empty": '""',
    "long": '"' + "x" * 600 + '"',
    "lone_surrogate": '"\\ud800"',
    "int": "42",
    "int_negative": "-5",
    "int_zero": "0",
    "int_minus_zero": "-0",
    "big_int": str(2**70),
    "float": "1.5",
    "float_integral": "2.0",
    "exponent": "1e3",
    "nan": "NaN",
    "infinity": "Infinity",
    "true": "true",
    "false": "false",
    "null": "null",
    "list": '[1,"a"]',
    "object": '{"pk":1}',
    "absent": None,
}


def edge_tokens() -> dict:
    tokens = {name: forge_payload(claims_with(uid)) for name, uid in USER_IDS.items()}
    tokens["duplicate_user_id"] = forge_payload(claims_with('"1","user_id":"2"'))
    tokens["duplicate_user_id_types"] = forge_payload(claims_with('7,"user_id":"x"'))
    tokens["nested_claims"] = forge_payload(claims_with('"1","roles":["a","b"],"meta":{"x":[1,2.5,null]}'))
    tokens["nan_claim"] = forge_payload(claims_with('"1","score":NaN'))
    tokens["surrogate_claim"] = forge_payload(claims_with('"1","nick":"\\udfff"'))
    tokens["expired"] = forge_payload(claims_with('"1"').replace('"exp":%d' % (NOW + 300), '"exp":%d' % NOW))
    tokens["no_exp"] = forge_payload(claims_with('"1"').replace('"exp":%d,' % (NOW + 300), ""))
    tokens["exp_not_number"] = forge_payload(claims_with('"1"').replace('"exp":%d' % (NOW + 300), '"exp":"soon"'))
    tokens["wrong_type"] = forge_payload(claims_with('"1"').replace('"access"', '"refresh"'))
    tokens["wrong_key"] = forge_payload(claims_with('"1"'), key="some-other-key-0123456789abcdef0123456789")
    tokens["garbage"] = "not-a-token"
    tokens["empty"] = ""
    tokens["too_large"] = forge_payload(claims_with('"' + "y" * 9000 + '"'))
    return tokens


def pyjwt_payload(token) -> dict:
    """The payload real PyJWT decodes (``json.loads`` of the decoded
    payload segment): what SimpleJWT's ``AccessToken(token).payload`` is."""
    data = token.encode() if isinstance(token, str) else bytes(token)
    return pyjwt.api_jwt.decode_complete(data, options={"verify_signature": False})["payload"]


def expected(verifier: wsauth.TokenVerifier, token, now: int) -> dict:
    """The oracle: the core's decision (``check_json``, itself decided as
    SimpleJWT decides: test_tokens.py) and, for a valid token, PyJWT's
    payload as the claims and its user id claim as the user id."""
    data = token.encode() if isinstance(token, str) else bytes(token)
    want = verifier._check_json(data, now)
    if not want["valid"]:
        return want
    payload = pyjwt_payload(data)
    out: dict = {"valid": True}
    if verifier.user_id_claim in payload:
        out["user_id"] = payload[verifier.user_id_claim]
    out["claims"] = payload
    assert ("user_id" in out) == ("user_id" in want)
    return out


def has_nan(value) -> bool:
    if isinstance(value, float):
        return value != value
    if isinstance(value, dict):
        return any(has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(has_nan(v) for v in value)
    return False


def same(got, want) -> bool:
    """``got == want``; with a NaN in ``want`` (equal to no other NaN
    object), the same ``repr`` (types, order and values) instead."""
    if got == want:
        return True
    return has_nan(want) and repr(got) == repr(want)


def assert_same(verifier: wsauth.TokenVerifier, token, now: int, label: str) -> None:
    want = expected(verifier, token, now)
    # Each check() result is used once, fresh: reading it fills its claims.
    assert same(verifier.check(token, now), want), label
    assert same(verifier.check(token, now), want), label
    assert repr(verifier.check(token, now)) == repr(want), label
    assert json.dumps(verifier.check(token, now)) == json.dumps(want), label
    assert json.dumps(verifier.check(token, now), indent=1, sort_keys=True) == json.dumps(want, indent=1, sort_keys=True), label
    unpickled = pickle.loads(pickle.dumps(verifier.check(token, now)))
    assert same(unpickled, want), label
    assert same(copy.deepcopy(verifier.check(token, now)), want), label
    if want["valid"]:
        assert type(unpickled["claims"]) is dict, label
        got = verifier.check(token, now)
        assert isinstance(got["claims"], dict)
        assert same(list(got["claims"].items()), list(want["claims"].items())), label
        assert len(verifier.check(token, now)["claims"]) == len(want["claims"]), label
        assert same(dict(verifier.check(token, now)["claims"]), want["claims"]), label
        assert same({**verifier.check(token, now)["claims"]}, want["claims"]), label
        assert list(verifier.check(token, now)["claims"]) == list(want["claims"]), label
        assert type(pickle.loads(pickle.dumps(verifier.check(token, now)["claims"]))) is dict
        assert same(copy.copy(verifier.check(token, now)["claims"]), want["claims"]), label
        assert ("user_id" in got) == ("user_id" in want), label
        if "user_id" in want:
            assert type(got["user_id"]) is type(want["user_id"]), label
    else:
        assert set(want) == {"valid", "error"}, label
    # Two unread results compare by their claims too.
    assert same(verifier.check(token, now), verifier.check(token, now)), label


@pytest.fixture(params=["c_path", "python_path"])
def path(request, monkeypatch):
    """check() through the compiled ``check_token`` (its common case), and
    with it switched off (the Python path, which handles every case)."""
    if request.param == "python_path":
        monkeypatch.setattr(core, "_check_token", None)
    return request.param


def test_the_package_calls_the_compiled_module():
    assert core.COMPILED, "pip install ./ffi/python builds cffi's API-mode module into the library"
    assert core._check_token is not None


def test_every_vector_token_lazy_equals_the_whole_answer(path):
    vectors = token_vectors()
    assert len(vectors) > 100
    verifiers: dict = {}
    decided_valid = 0
    for v in vectors:
        settings = v["settings"]
        key = json.dumps(settings["SIMPLE_JWT"], sort_keys=True, default=str) + settings.get("SECRET_KEY", "")
        verifier = verifiers.get(key)
        if verifier is None:
            verifier = verifiers[key] = verifier_for(settings)
        now = int(v["now"])
        assert_same(verifier, v["inputs"]["token"], now, v["id"])
        decided_valid += verifier.check(v["inputs"]["token"], now)["valid"]
    assert decided_valid > 10


@pytest.mark.parametrize("name", sorted(edge_tokens()))
def test_every_kind_of_user_id_and_claim_lazy_equals_the_whole_answer(name, path):
    verifier = wsauth.TokenVerifier(KEY)
    token = edge_tokens()[name]
    assert_same(verifier, token, NOW + 1, name)
    assert_same(verifier, token.encode(), NOW + 1, name)
    assert_same(verifier, bytearray(token.encode()), NOW + 1, name)


def test_user_ids_are_typed_as_the_token_carries_them(path):
    verifier = wsauth.TokenVerifier(KEY)
    tokens = edge_tokens()
    assert verifier.check(tokens["decimal"], NOW)["user_id"] == "42"
    assert verifier.check(tokens["leading_zero"], NOW)["user_id"] == "042"
    assert verifier.check(tokens["minus_zero"], NOW)["user_id"] == "-0"
    assert verifier.check(tokens["int"], NOW)["user_id"] == 42
    assert verifier.check(tokens["big_int"], NOW)["user_id"] == 2**70
    assert verifier.check(tokens["float"], NOW)["user_id"] == 1.5
    assert verifier.check(tokens["true"], NOW)["user_id"] is True
    assert verifier.check(tokens["duplicate_user_id"], NOW)["user_id"] == "2"
    assert "user_id" not in verifier.check(tokens["absent"], NOW)
    assert verifier.check(tokens["expired"], NOW)["error"] == {"kind": "expired", "message": "Token is expired"}


def test_tokens_the_python_path_answers_alone(path):
    verifier = wsauth.TokenVerifier(KEY)
    # Not UTF-8 encodable, not bytes: malformed, as before.
    assert verifier.check("\ud800.a.b", NOW) == {"valid": False, "error": {"kind": "malformed", "message": "Token is invalid"}}
    assert verifier.check(b"\xff.a.b", NOW) == {"valid": False, "error": {"kind": "malformed", "message": "Token is invalid"}}
    assert verifier.check(None, NOW)["error"]["kind"] == "malformed"  # type: ignore[arg-type]
    # A message or user id larger than any fixed buffer.
    long_uid = forge_payload(claims_with('"' + "é" * 3000 + '"'))
    assert verifier.check(long_uid, NOW + 1)["error"]["kind"] == "too_large"
    big = wsauth.TokenVerifier(KEY, max_token_bytes=64 * 1024)
    r = big.check(long_uid, NOW + 1)
    assert r["user_id"] == "é" * 3000 and r == big._check_json(long_uid.encode(), NOW + 1)


def test_the_clock_is_read_when_no_time_is_given(path):
    import time

    verifier = wsauth.TokenVerifier(KEY)
    now = int(time.time())
    live = forge_payload(claims_with('"5"').replace('"exp":%d' % (NOW + 300), '"exp":%d' % (now + 3600)))
    assert verifier.check(live) == verifier._check_json(live.encode(), now)
    assert verifier.check(live)["user_id"] == "5"
    assert verifier.check(edge_tokens()["decimal"])["error"] == {"kind": "expired", "message": "Token is expired"}


def test_claims_are_read_once_and_then_a_plain_dict(path):
    verifier = wsauth.TokenVerifier(KEY)
    token = edge_tokens()["nested_claims"]
    first = verifier.check(token, NOW)
    second = verifier.check(token, NOW)
    assert type(first["claims"]) is core.LazyClaims
    first["claims"]["roles"].append("c")
    first["claims"]["user_id"] = "tampered"
    assert type(first["claims"]) is core.Claims
    assert second["claims"]["roles"] == ["a", "b"]
    assert second["claims"]["user_id"] == "1"
    assert verifier.check(token, NOW)["claims"]["user_id"] == "1"
    third = verifier.check(token, NOW)["claims"]
    assert third.pop("meta") == {"x": [1, 2.5, None]}
    assert "meta" not in third


def test_claims_read_from_many_threads_at_once_are_whole(path):
    verifier = wsauth.TokenVerifier(KEY)
    token = edge_tokens()["nested_claims"]
    want = verifier._check_json(token.encode(), NOW)["claims"]
    for _ in range(20):
        shared = verifier.check(token, NOW)["claims"]
        seen = []
        barrier = threading.Barrier(4)

        def read():
            barrier.wait()
            seen.append((len(shared), dict(shared), list(shared.items())))

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(s == (len(want), want, list(want.items())) for s in seen)


def corner_tokens() -> dict:
    """Valid tokens whose payloads PyJWT reads in its own way: the claims
    must be its dict, value for value, type for type, key order included."""
    payloads = {
        "nan": claims_with('"1","score":NaN'),
        "infinities": claims_with('"1","hi":Infinity,"lo":-Infinity,"over":1e400'),
        "nan_user_id": claims_with("NaN"),
        "infinity_user_id": claims_with("-Infinity"),
        # json.loads keeps a duplicate key where it first came, with the last value.
        "duplicate_keys": claims_with('"1","a":1,"b":2,"a":[3],"b":null'),
        "duplicate_user_id_kinds": claims_with('{"pk":1},"user_id":2.5,"user_id":"9"'),
        "big_ints": claims_with('"1","n":%d,"m":-%d,"z":-0' % (2**100, 2**70)),
        "floats": claims_with('"1","f":1.0,"g":-0.0,"h":0.1,"i":1E-7,"j":123456789012345678901234567890.5'),
        "unicode": claims_with('"Zoë ☃ 𝄞","k\\u00e9y":"\\ud83d\\ude00","raw":"ünï"'),
        "lone_surrogates": claims_with('"\\ud800","nick":"\\udfff","pair_split":"\\ud83d x"'),
        "escapes": claims_with('"1","s":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f"'),
        "nested": claims_with('"1","roles":["a",{"b":[null,true,false]}],"meta":{},"empty":[]'),
        "key_order": claims_with('"1","z":1,"a":2,"m":3'),
        "whitespace": ' \t{ "token_type" : "access" ,\n"exp" : %d , "jti" : "0123456789abcdef0123456789abcdef" , "user_id" : [ 1 , 2 ] }\r\n' % (NOW + 300),
        "long_user_id": claims_with('"' + "é" * 1500 + '"'),
        # json.loads(bytes) drops a UTF-8 BOM (json.loads(str) would refuse it).
        "utf8_bom": "\ufeff" + claims_with('"1","b":"\u00e9"'),
    }
    return {name: forge_payload(p) for name, p in payloads.items()}


@pytest.mark.parametrize("name", sorted(corner_tokens()))
def test_claims_are_pyjwt_s_dict_for_every_corner_case(name, path):
    verifier = wsauth.TokenVerifier(KEY)
    token = corner_tokens()[name]
    want = pyjwt_payload(token)
    for given in (token, token.encode(), bytearray(token.encode())):
        r = verifier.check(given, NOW + 1)
        assert r["valid"] is True, name
        assert repr(r["claims"]) == repr(want), name
        assert [type(v) for v in r["claims"].values()] == [type(v) for v in want.values()], name
        assert json.dumps(r["claims"]) == json.dumps(want), name
        # The user id is the claims' own value, as SimpleJWT's token["user_id"].
        assert repr(r["user_id"]) == repr(want["user_id"]), name
        assert r["user_id"] is r["claims"]["user_id"] or not isinstance(r["user_id"], (list, dict)), name
    assert_same(verifier, token, NOW + 1, name)


def every_valid_token() -> list:
    """(verifier, token, now) for every valid token of the vectors and of the
    hand-made sets, each a distinct token."""
    out = []
    verifiers: dict = {}
    for v in token_vectors():
        settings = v["settings"]
        key = json.dumps(settings["SIMPLE_JWT"], sort_keys=True, default=str) + settings.get("SECRET_KEY", "")
        verifier = verifiers.get(key)
        if verifier is None:
            verifier = verifiers[key] = verifier_for(settings)
        if verifier._check_json(v["inputs"]["token"].encode(), int(v["now"]))["valid"]:
            out.append((verifier, v["inputs"]["token"], int(v["now"])))
    plain = wsauth.TokenVerifier(KEY)
    for token in list(edge_tokens().values()) + list(corner_tokens().values()):
        if plain._check_json(token.encode(), NOW + 1)["valid"]:
            out.append((plain, token, NOW + 1))
    return out


def test_reading_the_claims_never_verifies_the_token_again(path, monkeypatch):
    """check() decides each token once; reading its claims afterwards goes
    through no entry point that verifies a token (each made to fail here),
    and still gives PyJWT's dict."""
    tokens = every_valid_token()
    assert len(tokens) > 40
    results = [(verifier.check(token, now), token) for verifier, token, now in tokens]
    assert all(r["valid"] for r, _ in results)
    # (A user id given as JSON is read from the claims at once.)
    assert sum(type(r["claims"]) is core.LazyClaims for r, _ in results) > 40

    calls = []

    def verifies(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the token was verified again")

    for name in ("_check_token", "_check_result", "_check_fast", "_check_json", "_claims_json"):
        monkeypatch.setattr(core, name, verifies)
    monkeypatch.setattr(core.TokenVerifier, "_claims_of", verifies)
    monkeypatch.setattr(core, "_payload_claims", {})  # every payload parsed here, none remembered before
    for r, token in results:
        want = pyjwt_payload(token)
        assert repr(dict(r["claims"])) == repr(want), token
        assert type(r["claims"]) is core.Claims
    assert calls == []


def test_unread_claims_keep_nothing_to_verify_with(path):
    """Unread claims hold no reference to the verifier (nor to the token):
    only the payload check() decoded, so reading them cannot verify."""
    verifier = wsauth.TokenVerifier(KEY)
    tokens = [edge_tokens()[name] for name in ("decimal", "uuid", "int", "absent", "nested_claims")]
    before = sys.getrefcount(verifier), [sys.getrefcount(t) for t in tokens]
    kept = [verifier.check(t, NOW + 1) for t in tokens for _ in range(50)]
    assert all(type(r["claims"]) is core.LazyClaims for r in kept)
    assert (sys.getrefcount(verifier), [sys.getrefcount(t) for t in tokens]) == before
    assert [dict(r["claims"]) for r in kept[::50]] == [pyjwt_payload(t) for t in tokens]


def test_a_payload_larger_than_the_compiled_buffer_is_read_from_the_core(path, monkeypatch):
    """A verifier for tokens above 8 KiB: check()'s buffer (6 KiB, 3/4 of
    the default limit) cannot take every payload; such claims are the
    core's (``claims_json``: one call, when they are first read)."""
    verifier = wsauth.TokenVerifier(KEY, max_token_bytes=64 * 1024)
    token = forge_payload(claims_with('"1","pad":"%s","roles":["a"]' % ("p" * 9000)))
    assert len(token) > 8 * 1024 and len(pyjwt_payload(token)["pad"]) > 6 * 1024
    calls = []
    real = core._claims_json

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(core, "_claims_json", counted)
    r = verifier.check(token, NOW + 1)
    assert r["valid"] and r["user_id"] == "1"
    assert dict(r["claims"]) == pyjwt_payload(token)
    assert calls == [1]
    assert_same(verifier, token, NOW + 1, "large")
