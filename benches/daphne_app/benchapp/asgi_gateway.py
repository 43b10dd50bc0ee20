"""ASGI entry point behind the wsauth gateway (edge mode):
`daphne benchapp.asgi_gateway:application`.

The same consumers as `benchapp.asgi`, with `scope["user"]` from the
gateway's signed principal header (`wsauth.channels.GatewayPrincipalMiddlewareStack`,
secret: the WSAUTH_GATEWAY_SECRET setting) instead of a token in the query
string. Origins were checked at the gateway, which forwards only accepted
handshakes.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchapp.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from wsauth.channels import GatewayPrincipalMiddlewareStack  # noqa: E402

from .counter import counting  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402

application = counting(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": GatewayPrincipalMiddlewareStack(URLRouter(websocket_urlpatterns)),
        }
    )
)
