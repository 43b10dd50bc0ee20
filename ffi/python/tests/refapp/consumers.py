"""The reference app's consumers: customer chat (anyone), admin chat and log
stream (staff), receipts (owner), conversations (member), and a plain
consumer that only reports scope["user"] as the middleware set it."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from wsauth.channels import RequireAuthMixin, member, owner

from .models import Conversation, Receipt


def who(user) -> dict:
    return {
        "authenticated": bool(user.is_authenticated),
        "username": user.get_username() if user.is_authenticated else None,
        "staff": bool(getattr(user, "is_staff", False)),
    }


class _Hello(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.send_json(who(self.scope["user"]))

    async def receive_json(self, content, **kwargs):
        await self.send_json({"echo": content, **who(self.scope["user"])})


class Whoami(_Hello):
    pass


class CustomerChat(RequireAuthMixin, _Hello):
    requirement = "anonymous"


class AdminChat(RequireAuthMixin, _Hello):
    requirement = "staff"


class LogStream(RequireAuthMixin, _Hello):
    requirement = "staff"


class ReceiptConsumer(RequireAuthMixin, _Hello):
    requirement = owner(lambda user, rid: Receipt.objects.filter(pk=rid, owner=user).exists(), kwarg="receipt_id")


class ConversationConsumer(RequireAuthMixin, _Hello):
    requirement = member(
        lambda user, cid: Conversation.objects.filter(pk=cid, members=user).exists(), kwarg="conversation_id"
    )


class Inbox(RequireAuthMixin, _Hello):
    requirement = "authenticated"


class BehindGateway(AsyncJsonWebsocketConsumer):
    """A consumer of the app behind the wsauth gateway (refapp.asgi_gateway):
    the gateway enforced the route's requirement; this reports who
    ``scope["user"]`` is and what the verified principal header said, and
    echoes messages."""

    def report(self) -> dict:
        user = self.scope["user"]
        principal = self.scope["wsauth"]
        return {
            **who(user),
            "pk": user.pk if user.is_authenticated else None,
            "route": principal["route"],
            "principal": principal["user"],
        }

    async def connect(self):
        await self.accept()
        await self.send_json(self.report())

    async def receive_json(self, content, **kwargs):
        await self.send_json({"echo": content, **self.report()})
