"""ASGI entry point: `daphne benchapp.asgi:application`."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchapp.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from .counter import counting  # noqa: E402
from .middleware import JWTAuthMiddleware  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402

application = counting(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(
                JWTAuthMiddleware(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)
