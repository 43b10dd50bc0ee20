from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.urls import path

from wsauth.channels import WsAuthMiddlewareStack

from . import consumers

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
application = WsAuthMiddlewareStack(URLRouter(websocket_urlpatterns))

# Channels' own stack, for side-by-side comparisons of scope["user"].
channels_application = AuthMiddlewareStack(URLRouter([path("ws/whoami/", consumers.Whoami.as_asgi())]))
