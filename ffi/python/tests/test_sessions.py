"""wsauth.SessionVerifier decides Django session cookies as
``django.contrib.auth.get_user`` does (and, with ``accept_fallback_hash=False``,
as Channels' ``get_user``): real logins through Django's test client, both
engines, side by side."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from importlib import import_module
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user as django_get_user
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.test import Client, override_settings
from django.utils import timezone

import wsauth

ENGINES = ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.signed_cookies"]
NEW_SECRET = "rotated-secret-key-for-the-session-tests-0123456789abcdefgh"


def fetch_row(key):
    return Session.objects.filter(session_key=key).values("session_key", "session_data", "expire_date").first()


def fetch_user(pk):
    user = get_user_model().objects.filter(pk=pk).first()
    if user is None:
        return None
    return {
        "pk": user.pk,
        "password": user.password,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
    }


def wsauth_decision(cookie, *, accept_fallback_hash=True):
    verifier = wsauth.SessionVerifier.from_django_settings(accept_fallback_hash=accept_fallback_hash)
    r = verifier.check(cookie=cookie, fetch_row=fetch_row, fetch_user=fetch_user)
    return r["user_id"] if r["valid"] else None


def django_decision(cookie):
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(cookie)
    user = django_get_user(request)
    return str(user.pk) if user.is_authenticated else None


def channels_decision(cookie):
    from channels.auth import get_user as channels_get_user

    session = import_module(settings.SESSION_ENGINE).SessionStore(cookie)
    user = async_to_sync(channels_get_user)({"session": session})
    return str(user.pk) if user.is_authenticated else None


def login(user) -> str:
    client = Client()
    assert client.login(username=user.username, password="pw-" + user.username)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password="pw-alice", is_staff=True)


def same(cookie, expect_valid):
    """Both decide, wsauth first (Django may re-key the session when it accepts a fallback hash)."""
    ours = wsauth_decision(cookie)
    theirs = django_decision(cookie)
    assert ours == theirs
    assert (ours is not None) == expect_valid
    return ours


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("engine", ENGINES)
def test_fresh_login_and_tampering(engine, alice):
    with override_settings(SESSION_ENGINE=engine):
        cookie = login(alice)
        assert same(cookie, True) == str(alice.pk)
        # A second look decides the same (nothing was consumed).
        assert same(cookie, True) == str(alice.pk)
        tampered = cookie[:-1] + ("A" if cookie[-1] != "A" else "B")
        same(tampered, False)
        same("", False)
        same("short", False)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("engine", ENGINES)
def test_password_change_inactive_and_deleted(engine, alice):
    with override_settings(SESSION_ENGINE=engine):
        cookie = login(alice)
        alice.set_password("pw-changed")
        alice.save()
        same(cookie, False)

        alice.set_password("pw-alice")
        alice.save()
        cookie = login(alice)
        alice.is_active = False
        alice.save()
        same(cookie, False)

        alice.is_active = True
        alice.save()
        cookie = login(alice)
        get_user_model().objects.filter(pk=alice.pk).delete()
        same(cookie, False)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("engine", ENGINES)
def test_secret_key_rotation(engine, alice):
    with override_settings(SESSION_ENGINE=engine):
        cookie = login(alice)
        old = settings.SECRET_KEY
        with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[old]):
            # Channels' get_user has no fallback hash: anonymous; Django's accepts.
            assert wsauth_decision(cookie, accept_fallback_hash=False) is None
            same(cookie, True)
        cookie = login(alice)
        with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[]):
            same(cookie, False)


@pytest.mark.django_db(transaction=True)
def test_channels_get_user_matches_without_fallback_hash(alice):
    cookie = login(alice)
    old = settings.SECRET_KEY
    assert wsauth_decision(cookie, accept_fallback_hash=False) == channels_decision(cookie) == str(alice.pk)
    cookie = login(alice)
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[old]):
        ours = wsauth_decision(cookie, accept_fallback_hash=False)
        assert ours == channels_decision(cookie) is None  # Channels then flushes the session


@pytest.mark.django_db(transaction=True)
def test_db_row_expiry_logout_and_backends(alice):
    cookie = login(alice)
    Session.objects.filter(session_key=cookie).update(expire_date=timezone.now() - timedelta(seconds=1))
    same(cookie, False)

    client = Client()
    client.login(username="alice", password="pw-alice")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    same(cookie, True)
    client.logout()
    same(cookie, False)

    cookie = login(alice)
    with override_settings(AUTHENTICATION_BACKENDS=["refapp.backends.OtherBackend"]):
        same(cookie, False)


@pytest.mark.django_db(transaction=True)
def test_signed_cookie_age(alice):
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies", SESSION_COOKIE_AGE=5):
        cookie = login(alice)
        verifier = wsauth.SessionVerifier.from_django_settings()
        now = int(timezone.now().timestamp())
        ok = verifier.check(cookie=cookie, fetch_user=fetch_user, now=now + 4)
        late = verifier.check(cookie=cookie, fetch_user=fetch_user, now=now + 60)
        assert ok["valid"] and ok["user_id"] == str(alice.pk)
        assert late == {"valid": False, "error": {"kind": "session_expired", "message": late["error"]["message"]}}


@pytest.mark.django_db(transaction=True)
def test_cookie_header_parsed_as_channels_parses_it(alice):
    cookie = login(alice)
    verifier = wsauth.SessionVerifier.from_django_settings()
    header = f'csrftoken=x; {settings.SESSION_COOKIE_NAME}="{cookie}"; theme=dark'
    r = verifier.check(cookie_header=header, fetch_row=fetch_row, fetch_user=fetch_user)
    assert r["valid"] and r["user_id"] == str(alice.pk) and r["user"]["is_staff"] is True
    none = verifier.check(cookie_header="csrftoken=x", fetch_row=fetch_row, fetch_user=fetch_user)
    assert none["valid"] is False and none["error"]["kind"] == "bad_session"


@pytest.mark.django_db(transaction=True)
def test_expire_date_as_stored_is_converted_by_the_core(alice):
    """The row's expire_date goes to the core as Django read it (ISO 8601
    text, microseconds and offset kept); the core's one rule converts it:
    a fraction of a second counts as the next whole second."""
    cookie = login(alice)
    row = fetch_row(cookie)
    verifier = wsauth.SessionVerifier.from_django_settings()
    at = datetime(2030, 1, 1, 0, 0, 0, 500000, tzinfo=dt_timezone.utc)
    t = int(at.timestamp())  # 00:00:00

    def valid(expire_date, now):
        stored = {**row, "expire_date": expire_date}
        return verifier.check(cookie=cookie, fetch_row=lambda key: stored, fetch_user=fetch_user, now=now)["valid"]

    for stored in (at, at.isoformat(), at.astimezone(ZoneInfo("Asia/Tokyo")), at.replace(tzinfo=None)):
        assert valid(stored, t) and not valid(stored, t + 1), stored
    # USE_TZ = False: Django reads naive local time in TIME_ZONE.
    with override_settings(USE_TZ=False, TIME_ZONE="Europe/Paris"):
        assert valid(datetime(2030, 1, 1, 1, 0, 0, 500000), t)
        assert not valid(datetime(2030, 1, 1, 1, 0, 0, 500000), t + 1)
    # Whole Unix seconds pass as they are.
    assert valid(t + 1, t) and not valid(t + 1, t + 1)
    with pytest.raises(wsauth.WsauthError):
        valid("1 January 2030", t)
