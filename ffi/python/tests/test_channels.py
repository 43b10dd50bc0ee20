"""The reference app through WsAuthMiddlewareStack with Channels'
WebsocketCommunicator: scope["user"] as Channels would set it, and the
consumers' requirements closing with 4401 / 4403 after accept."""

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from refapp.asgi import application, channels_application
from refapp.models import Conversation, Receipt

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def make_users():
    User = get_user_model()
    staff = User.objects.create_user("staffer", password="pw-staffer", is_staff=True)
    alice = User.objects.create_user("alice", password="pw-alice")
    bob = User.objects.create_user("bob", password="pw-bob")
    receipt = Receipt.objects.create(owner=alice, total=12)
    convo = Conversation.objects.create()
    convo.members.add(alice)
    return staff, alice, bob, receipt, convo


@database_sync_to_async
def session_cookie(user, engine="django.contrib.sessions.backends.db"):
    with override_settings(SESSION_ENGINE=engine):
        client = Client()
        assert client.login(username=user.username, password="pw-" + user.username)
        return client.cookies[settings.SESSION_COOKIE_NAME].value


def token_for(user) -> str:
    return str(AccessToken.for_user(user))


def expired_token_for(user) -> str:
    t = AccessToken.for_user(user)
    t.set_exp(from_time=datetime.now(timezone.utc) - timedelta(minutes=10))
    return str(t)


async def connect(path, app=application, **kwargs):
    comm = WebsocketCommunicator(app, path, **kwargs)
    connected, subprotocol = await comm.connect()
    return comm, connected, subprotocol


async def expect_open(path, **kwargs):
    comm, connected, subprotocol = await connect(path, **kwargs)
    assert connected
    hello = await comm.receive_json_from()
    return comm, hello, subprotocol


async def expect_closed(path, code, **kwargs):
    """Accepted first (so a browser can read the code), then closed with `code`."""
    comm, connected, _ = await connect(path, **kwargs)
    assert connected, "the consumer must accept before closing"
    out = await comm.receive_output()
    assert out["type"] == "websocket.close"
    assert out["code"] == code
    await comm.wait()
    return out


async def test_admin_chat_staff_ok_non_staff_4403_no_token_4401_expired_4401():
    staff, alice, *_ = await make_users()
    comm, hello, _ = await expect_open(f"/ws/admin/chat/?token={token_for(staff)}")
    assert hello == {"authenticated": True, "username": "staffer", "staff": True}
    await comm.send_json_to({"msg": "hi"})
    assert (await comm.receive_json_from())["echo"] == {"msg": "hi"}
    await comm.disconnect()

    out = await expect_closed(f"/ws/admin/chat/?token={token_for(alice)}", 4403)
    assert "staff" in out["reason"]
    await expect_closed("/ws/admin/chat/", 4401)
    out = await expect_closed(f"/ws/admin/chat/?token={expired_token_for(staff)}", 4401)
    assert "expired" in out["reason"]
    await expect_closed("/ws/admin/chat/?token=not.a.token", 4401)
    refresh = str(RefreshToken.for_user(staff))
    await expect_closed(f"/ws/admin/chat/?access={refresh}", 4401)


async def test_customer_chat_is_open_to_anonymous_users():
    _, alice, *_ = await make_users()
    comm, hello, _ = await expect_open("/ws/chat/lobby/")
    assert hello == {"authenticated": False, "username": None, "staff": False}
    await comm.disconnect()
    # A bad token on an anonymous route still connects, anonymously.
    comm, hello, _ = await expect_open(f"/ws/chat/lobby/?token={expired_token_for(alice)}")
    assert hello["authenticated"] is False
    await comm.disconnect()
    comm, hello, _ = await expect_open(f"/ws/chat/lobby/?access={token_for(alice)}")
    assert hello == {"authenticated": True, "username": "alice", "staff": False}
    await comm.disconnect()


async def test_log_stream_staff_only_through_header_and_subprotocol():
    staff, alice, *_ = await make_users()
    tok = token_for(staff)
    comm, hello, subprotocol = await expect_open("/ws/logs/", headers=[(b"authorization", f"Bearer {tok}".encode())])
    assert hello["staff"] is True and subprotocol is None
    await comm.disconnect()
    comm, hello, subprotocol = await expect_open("/ws/logs/", subprotocols=["bearer", tok])
    assert hello["username"] == "staffer"
    assert subprotocol == "bearer"  # never the token
    await comm.disconnect()
    await expect_closed("/ws/logs/", 4403, subprotocols=["bearer", token_for(alice)])
    # A lowercase auth type is not SimpleJWT's "Bearer": no credential at all.
    await expect_closed("/ws/logs/", 4401, headers=[(b"authorization", f"bearer {tok}".encode())])


async def test_receipt_ownership_and_conversation_membership():
    staff, alice, bob, receipt, convo = await make_users()
    comm, hello, _ = await expect_open(f"/ws/receipts/{receipt.pk}/?token={token_for(alice)}")
    assert hello["username"] == "alice"
    await comm.disconnect()
    out = await expect_closed(f"/ws/receipts/{receipt.pk}/?token={token_for(bob)}", 4403)
    assert "owner" in out["reason"]
    await expect_closed(f"/ws/receipts/{receipt.pk}/", 4401)
    await expect_closed(f"/ws/receipts/{receipt.pk + 1000}/?token={token_for(alice)}", 4403)
    comm, _, _ = await expect_open(f"/ws/conversations/{convo.pk}/?token={token_for(alice)}")
    await comm.disconnect()
    await expect_closed(f"/ws/conversations/{convo.pk}/?token={token_for(bob)}", 4403)


async def test_session_persists_across_two_connections():
    staff, alice, *_ = await make_users()
    cookie = await session_cookie(staff)
    headers = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]
    for _ in range(2):
        comm, hello, _ = await expect_open("/ws/admin/chat/", headers=headers)
        assert hello == {"authenticated": True, "username": "staffer", "staff": True}
        await comm.disconnect()
    cookie = await session_cookie(alice)
    await expect_closed("/ws/admin/chat/", 4403, headers=[(b"cookie", f"sessionid={cookie}".encode())])


async def test_signed_cookie_sessions():
    staff, *_ = await make_users()
    engine = "django.contrib.sessions.backends.signed_cookies"
    cookie = await session_cookie(staff, engine)
    with override_settings(SESSION_ENGINE=engine):
        comm, hello, _ = await expect_open("/ws/logs/", headers=[(b"cookie", f"sessionid={cookie}".encode())])
        assert hello["username"] == "staffer"
        await comm.disconnect()


async def test_scope_user_matches_channels_auth_middleware_stack():
    staff, alice, bob, *_ = await make_users()
    cookies = [await session_cookie(u) for u in (staff, alice)]
    cases = [[(b"cookie", f"sessionid={c}".encode())] for c in cookies]
    cases += [[(b"cookie", b"sessionid=not-a-real-session-key")], []]
    for headers in cases:
        seen = []
        for app in (application, channels_application):
            comm, hello, _ = await expect_open("/ws/whoami/", app=app, headers=headers)
            seen.append(hello)
            await comm.disconnect()
        assert seen[0] == seen[1]
    # The middleware also records why a credential was refused.
    comm, hello, _ = await expect_open(f"/ws/whoami/?token={expired_token_for(bob)}")
    assert hello["authenticated"] is False
    await comm.disconnect()


async def test_token_expiry_on_open_socket_and_refresh():
    staff, alice, *_ = await make_users()
    soon = AccessToken.for_user(alice)
    soon.set_exp(lifetime=timedelta(seconds=2))
    comm, hello, _ = await expect_open(f"/ws/inbox/?token={soon}")
    assert hello["username"] == "alice"
    # A refresh for the same user extends the deadline; it is not delivered to the app.
    await comm.send_json_to({"type": "refresh", "token": token_for(alice)})
    await asyncio.sleep(3)
    await comm.send_json_to({"msg": "still here"})
    assert (await comm.receive_json_from(timeout=2))["echo"] == {"msg": "still here"}
    # A refresh naming another user closes with 4401.
    await comm.send_json_to({"type": "refresh", "token": token_for(staff)})
    out = await comm.receive_output(timeout=2)
    assert out["type"] == "websocket.close" and out["code"] == 4401
    await comm.wait()

    soon = AccessToken.for_user(alice)
    soon.set_exp(lifetime=timedelta(seconds=1))
    comm, _, _ = await expect_open(f"/ws/inbox/?token={soon}")
    started = time.time()
    out = await comm.receive_output(timeout=4)
    assert out["type"] == "websocket.close" and out["code"] == 4401 and "expired" in out["reason"]
    assert time.time() - started < 3.5
    await comm.wait()


def test_django_config_follows_settings():
    from django.core.exceptions import ImproperlyConfigured

    from wsauth.channels import django_config

    cfg = django_config()
    assert cfg["credentials"]["carriers"] == ["subprotocol", "header", "query", "session"]
    assert cfg["credentials"]["query_params"] == ["token", "access"]
    assert cfg["session"]["engine"] == "db" and cfg["users"]["pk"] == "int"
    with override_settings(SIMPLE_JWT={"AUTH_HEADER_TYPES": ("JWT",), "AUTH_HEADER_NAME": "HTTP_X_AUTH_TOKEN"}):
        creds = django_config()["credentials"]
        assert (creds["header_types"], creds["header_name"]) == (["JWT"], "X-Auth-Token")
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.cache"):
        with pytest.raises(ImproperlyConfigured, match="SESSION_ENGINE"):
            django_config()
        with override_settings(WSAUTH={"credentials": {"carriers": ["query"]}}):
            assert django_config()["credentials"]["carriers"] == ["query"]
    with override_settings(SIMPLE_JWT={"USER_ID_FIELD": "username"}):
        with pytest.raises(ImproperlyConfigured, match="USER_ID_FIELD"):
            django_config()


async def test_custom_auth_header_type_through_the_middleware():
    staff, *_ = await make_users()
    with override_settings(SIMPLE_JWT={"AUTH_HEADER_TYPES": ("JWT",)}):
        tok = token_for(staff)
        comm, hello, _ = await expect_open("/ws/logs/", headers=[(b"authorization", f"JWT {tok}".encode())])
        assert hello["username"] == "staffer"
        await comm.disconnect()
        await expect_closed("/ws/logs/", 4401, headers=[(b"authorization", f"Bearer {tok}".encode())])
