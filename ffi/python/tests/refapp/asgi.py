"""The reference app's ASGI application, wired as ffi/python/README.md
documents it: Django for HTTP, wsauth's drop-in stack for WebSockets.
Daphne serves it (``daphne refapp.asgi:application``) and the in-process
tests drive the same object with Channels' WebsocketCommunicator."""

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()  # sets Django up before the consumers import models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from wsauth.channels import WsAuthMiddlewareStack  # noqa: E402

from . import consumers  # noqa: E402

websocket_urlpatterns = [
    path("ws/chat/<str:room>/", consumers.CustomerChat.as_asgi()),
    path("ws/admin/chat/", consumers.AdminChat.as_asgi()),
    path("ws/logs/", consumers.LogStream.as_asgi()),
    path("ws/receipts/<int:receipt_id>/", consumers.ReceiptConsumer.as_asgi()),
    path("ws/conversations/<int:conversation_id>/", consumers.ConversationConsumer.as_asgi()),
    path("ws/inbox/", consumers.Inbox.as_asgi()),
    path("ws/whoami/", consumers.Whoami.as_asgi()),
]

# The app under test: wsauth's drop-in stack.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WsAuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)

# Channels' own stack, for side-by-side comparisons of scope["user"].
channels_application = AuthMiddlewareStack(URLRouter([path("ws/whoami/", consumers.Whoami.as_asgi())]))
