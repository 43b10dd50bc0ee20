"""wsauth.TokenVerifier decides every token exactly as SimpleJWT's
``AccessToken(token)`` does: the same tokens go through both, side by side."""

import time
from datetime import datetime, timedelta, timezone

import jwt as pyjwt
import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework_simplejwt import state as _simplejwt_state  # noqa: F401  (import before any override)
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

import wsauth

OTHER_KEY = "a-key-this-project-never-configured-0123456789abcdef"


def simplejwt_outcome(token: str) -> dict:
    """What SimpleJWT decides, in wsauth's result shape (message only for rejections)."""
    try:
        t = AccessToken(token)
    except TokenError as e:
        return {"valid": False, "message": str(e.args[0])}
    return {"valid": True, "claims": dict(t.payload)}


def wsauth_outcome(verifier: wsauth.TokenVerifier, token: str) -> dict:
    r = verifier.check(token)
    if r["valid"]:
        return {"valid": True, "claims": r["claims"]}
    return {"valid": False, "message": r["error"]["message"]}


@pytest.fixture
def users(db):
    User = get_user_model()
    return {
        "staff": User.objects.create_user("staffer", password="pw-staff", is_staff=True),
        "alice": User.objects.create_user("alice", password="pw-alice"),
    }


def forge(payload: dict, key: str, algorithm: str = "HS256", headers=None) -> str:
    return pyjwt.encode(payload, key, algorithm=algorithm, headers=headers)


def forge_raw(header: dict, payload: dict, key: str) -> str:
    """A token PyJWT refuses to write (e.g. a non-string kid), signed HS256."""
    import base64
    import hashlib
    import hmac
    import json

    def seg(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    signing_input = seg(json.dumps(header).encode()) + "." + seg(json.dumps(payload).encode())
    sig = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + seg(sig)


def token_cases(users) -> dict:
    """Tokens made by the real libraries (plus hand-built variants)."""
    from django.conf import settings

    key = api_settings.SIGNING_KEY
    alice = users["alice"]
    now = datetime.now(timezone.utc)
    access = AccessToken.for_user(alice)
    from_refresh = RefreshToken.for_user(users["staff"]).access_token
    refresh = RefreshToken.for_user(alice)
    expired = AccessToken.for_user(alice)
    expired.set_exp(from_time=now - timedelta(hours=1))
    payload = dict(AccessToken.for_user(alice).payload)
    return {
        "access_for_user": str(access),
        "access_of_refresh": str(from_refresh),
        "refresh_as_access": str(refresh),
        "expired": str(expired),
        "wrong_key": forge(payload, OTHER_KEY),
        "secret_key_fallback_style": forge(payload, settings.SECRET_KEY + "-rotated"),
        "hs512_under_hs256": forge(payload, key, "HS512"),
        "alg_none": pyjwt.encode(payload, None, algorithm="none"),
        "no_jti": forge({k: v for k, v in payload.items() if k != "jti"}, key),
        "no_type": forge({k: v for k, v in payload.items() if k != "token_type"}, key),
        "no_exp": forge({k: v for k, v in payload.items() if k != "exp"}, key),
        "int_user_id": forge(dict(payload, user_id=alice.pk), key),
        "not_yet_valid": forge(dict(payload, nbf=int(time.time()) + 3600), key),
        "future_iat": forge(dict(payload, iat=int(time.time()) + 3600), key),
        "aud_present_not_configured": forge(dict(payload, aud="elsewhere"), key),
        "kid_not_string": forge_raw({"alg": "HS256", "typ": "JWT", "kid": 5}, payload, key),
        "kid_string": forge_raw({"alg": "HS256", "typ": "JWT", "kid": "k1"}, payload, key),
        "tampered": str(access)[:-2] + ("AA" if not str(access).endswith("AA") else "BB"),
        "garbage": "not-a-token",
        "two_segments": "abc.def",
        "empty": "",
    }


@pytest.mark.django_db
def test_every_case_decided_as_simplejwt_decides(users):
    verifier = wsauth.TokenVerifier.from_django_settings()
    cases = token_cases(users)
    valid = set()
    for name, token in cases.items():
        want = simplejwt_outcome(token)
        got = wsauth_outcome(verifier, token)
        assert got == want, name
        if want["valid"]:
            valid.add(name)
    # Both sides accept exactly these and reject the rest.
    assert valid == {"access_for_user", "access_of_refresh", "int_user_id", "aud_present_not_configured", "kid_string"}


@pytest.mark.django_db
def test_shape_and_user_id_as_the_token_carries_it(users):
    verifier = wsauth.TokenVerifier.from_django_settings()
    alice = users["alice"]
    r = verifier.check(str(AccessToken.for_user(alice)))
    assert r["valid"] is True
    assert r["user_id"] == str(alice.pk)
    assert r["claims"]["token_type"] == "access"
    key = api_settings.SIGNING_KEY
    payload = dict(AccessToken.for_user(alice).payload, user_id=alice.pk)
    assert verifier.check(forge(payload, key))["user_id"] == alice.pk
    bad = verifier.check("x.y.z")
    assert bad["valid"] is False and set(bad["error"]) == {"kind", "message"}
    expired = AccessToken.for_user(alice)
    expired.set_exp(from_time=datetime.now(timezone.utc) - timedelta(minutes=10))
    assert verifier.check(str(expired))["error"] == {"kind": "expired", "message": "Token is expired"}
    refresh = verifier.check(str(RefreshToken.for_user(alice)))
    assert refresh["error"]["kind"] == "wrong_token_type"


@pytest.mark.django_db
def test_repeated_checks_stay_decided_by_the_clock(users):
    """Deciding the same token again re-checks expiry (the parsed-claims memo never decides)."""
    verifier = wsauth.TokenVerifier.from_django_settings()
    token = str(AccessToken.for_user(users["alice"]))
    exp = AccessToken(token)["exp"]
    first = verifier.check(token, now=exp - 10)
    again = verifier.check(token, now=exp - 10)
    assert first == again and first["valid"]
    assert first["claims"] is not again["claims"]
    again["claims"]["user_id"] = "tampered"
    assert verifier.check(token, now=exp - 5)["claims"]["user_id"] == str(users["alice"].pk)
    assert verifier.check(token, now=exp)["error"]["kind"] == "expired"
    assert verifier.is_valid(token, now=exp - 1) is True
    assert verifier.is_valid(token, now=exp) is False


CUSTOM = {
    "USER_ID_CLAIM": "uid",
    "TOKEN_TYPE_CLAIM": "kind",
    "JTI_CLAIM": "tid",
    "LEEWAY": 30,
    "AUDIENCE": "chat-api",
    "ISSUER": "https://auth.example",
    "ALGORITHM": "HS384",
    "SIGNING_KEY": "custom-signing-key-for-simplejwt-0123456789abcdefghij",
}


def rebuild_simplejwt_backend(monkeypatch):
    """SimpleJWT reads its settings at import (`from .settings import api_settings`,
    and a TokenBackend built once); point it at the overridden settings, as a
    project started with them would be."""
    from rest_framework_simplejwt import authentication, backends, state, tokens
    from rest_framework_simplejwt import settings as sj_settings
    from rest_framework_simplejwt.backends import TokenBackend

    api_settings = sj_settings.api_settings
    for module in (tokens, authentication, backends, state):
        if hasattr(module, "api_settings"):
            monkeypatch.setattr(module, "api_settings", api_settings)
    monkeypatch.setattr(
        state,
        "token_backend",
        TokenBackend(
            api_settings.ALGORITHM,
            api_settings.SIGNING_KEY,
            api_settings.VERIFYING_KEY,
            api_settings.AUDIENCE,
            api_settings.ISSUER,
            api_settings.JWK_URL,
            api_settings.LEEWAY,
            api_settings.JSON_ENCODER,
        ),
    )


@pytest.mark.django_db
def test_custom_simple_jwt_settings_are_read(users, monkeypatch):
    with override_settings(SIMPLE_JWT=CUSTOM):
        rebuild_simplejwt_backend(monkeypatch)
        verifier = wsauth.TokenVerifier.from_django_settings()
        assert (verifier.algorithm, verifier.leeway, verifier.audience, verifier.issuer) == (
            "HS384",
            30,
            "chat-api",
            "https://auth.example",
        )
        alice = users["alice"]
        good = AccessToken.for_user(alice)
        # TokenBackend.encode appends aud and iss; forged variants start from the same claims.
        payload = dict(good.payload, aud=CUSTOM["AUDIENCE"], iss=CUSTOM["ISSUER"])
        key = CUSTOM["SIGNING_KEY"]
        cases = {
            "custom": str(good),
            "forged_same_claims": forge(payload, key, "HS384"),
            "wrong_audience": forge(dict(payload, aud="other"), key, "HS384"),
            "missing_issuer": forge({k: v for k, v in payload.items() if k != "iss"}, key, "HS384"),
            "default_type_claim": forge(
                {("token_type" if k == "kind" else k): v for k, v in payload.items()}, key, "HS384"
            ),
            "hs256_under_hs384": forge(payload, key, "HS256"),
            "within_leeway": forge(dict(payload, exp=int(time.time()) - 10), key, "HS384"),
            "beyond_leeway": forge(dict(payload, exp=int(time.time()) - 40), key, "HS384"),
        }
        outcomes = {}
        for name, token in cases.items():
            want = simplejwt_outcome(token)
            assert wsauth_outcome(verifier, token) == want, name
            outcomes[name] = want["valid"]
        assert outcomes == {
            "custom": True,
            "forged_same_claims": True,
            "wrong_audience": False,
            "missing_issuer": False,
            "default_type_claim": False,
            "hs256_under_hs384": False,
            "within_leeway": True,
            "beyond_leeway": False,
        }


def test_settings_errors_are_readable():
    with pytest.raises(wsauth.SettingsError, match="key"):
        wsauth.TokenVerifier("")
    with pytest.raises(wsauth.SettingsError, match="RS256"):
        wsauth.TokenVerifier("k", algorithm="RS256")
    with pytest.raises(wsauth.SettingsError, match="leeway"):
        wsauth.TokenVerifier("k", leeway=1.5)
    with pytest.raises(wsauth.SettingsError, match="audience"):
        wsauth.TokenVerifier("k", audience=["a", "b"])
    # A secret never appears in an error message.
    try:
        wsauth.TokenVerifier("hunter2-is-the-secret", fallbacks=[""])
    except wsauth.SettingsError as e:
        assert "hunter2" not in str(e)
    else:  # pragma: no cover
        pytest.fail("an empty fallback key must be refused")


def test_mint_round_trip_and_library_version():
    v = wsauth.TokenVerifier("mint-key-0123456789abcdef0123456789abcdef")
    tok = v.mint("42", lifetime=60, extra={"is_staff": True}, now=1_750_000_000)
    r = v.check(tok, now=1_750_000_001)
    assert r["valid"] and r["user_id"] == "42" and r["claims"]["is_staff"] is True
    assert r["claims"]["exp"] == 1_750_000_060
    decoded = pyjwt.decode(tok, "mint-key-0123456789abcdef0123456789abcdef", algorithms=["HS256"], options={"verify_exp": False})
    assert decoded == r["claims"]
    assert wsauth.library_version() == wsauth.__version__
