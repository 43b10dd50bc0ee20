"""Consumers shaped like the reference app's routes.

The staff route accepts, then closes with 4401 (no valid credential) or 4403
(not staff) so that browsers can read the code; staff stay connected. The
chat route is anonymous. Neither joins a channel-layer group (the reference
app's chat fan-out is left out), which keeps this side as cheap as Channels
gets.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

from .counter import bump


class AdminChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope["user"]
        await self.accept()
        if not user.is_authenticated:
            bump("refused")
            await self.close(code=4401)
        elif not user.is_staff:
            bump("refused")
            await self.close(code=4403)
        else:
            bump("accepted")

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)
