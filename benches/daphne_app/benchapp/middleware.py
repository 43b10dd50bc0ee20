"""JWT-from-the-query-string middleware, as Channels projects typically write it.

Neither Channels nor SimpleJWT reads a JWT from a WebSocket handshake, so
projects add a middleware like this one: take `?token=`, let SimpleJWT's
`AccessToken(raw)` verify it, then load the user the way
`JWTAuthentication.get_user` does, through `database_sync_to_async`.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken


@database_sync_to_async
def get_user(user_id):
    User = get_user_model()
    try:
        user = User.objects.get(**{api_settings.USER_ID_FIELD: user_id})
    except (User.DoesNotExist, ValueError):
        return AnonymousUser()
    if not user.is_active:
        return AnonymousUser()
    return user


class JWTAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        scope["user"] = AnonymousUser()
        query = parse_qs(scope.get("query_string", b"").decode("latin1"))
        raw = (query.get("token") or [None])[0]
        if raw:
            try:
                token = AccessToken(raw)
            except TokenError:
                pass
            else:
                user_id = token.get(api_settings.USER_ID_CLAIM)
                if user_id is not None:
                    scope["user"] = await get_user(user_id)
        return await super().__call__(scope, receive, send)
