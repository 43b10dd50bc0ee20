from django.urls import re_path

from . import consumers

websocket_urlpatterns = [
    re_path(r"^ws/admin/chat/$", consumers.AdminChatConsumer.as_asgi()),
    re_path(r"^ws/chat/(?P<room>[^/]+)/$", consumers.ChatConsumer.as_asgi()),
]
