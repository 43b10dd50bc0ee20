"""The reference app as it runs behind the wsauth gateway (edge mode): the
gateway decides every handshake and forwards accepted ones with a signed
principal header, which ``GatewayPrincipalMiddlewareStack`` verifies
(``WSAUTH_GATEWAY_SECRET``). Served by Daphne
(``daphne refapp.asgi_gateway:application``).

``GET /ws-count/`` answers how many WebSocket connections reached this app
(any outcome), so tests can see that refused handshakes never do."""

import json

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()  # sets Django up before the consumers import models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from wsauth.channels import GatewayPrincipalMiddlewareStack  # noqa: E402

from . import consumers  # noqa: E402

websocket_urlpatterns = [
    path("ws/chat/<str:room>/", consumers.BehindGateway.as_asgi()),
    path("ws/admin/chat/", consumers.BehindGateway.as_asgi()),
    path("ws/logs/", consumers.BehindGateway.as_asgi()),
    path("ws/receipts/<int:receipt_id>/", consumers.BehindGateway.as_asgi()),
    path("ws/conversations/<int:conversation_id>/", consumers.BehindGateway.as_asgi()),
]

_reached = {"websocket": 0}


def counted(app):
    """Counts the WebSocket connections that reach ``app``."""

    async def wrapper(scope, receive, send):
        if scope["type"] == "websocket":
            _reached["websocket"] += 1
        return await app(scope, receive, send)

    return wrapper


async def http(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/ws-count/":
        body = json.dumps(_reached).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return None
    return await django_asgi_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": counted(GatewayPrincipalMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
