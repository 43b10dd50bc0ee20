from django.conf import settings
from django.db import models


class Receipt(models.Model):
    """`/ws/receipts/<id>/`: only the owner may follow it."""

    title = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)


class Conversation(models.Model):
    """`/ws/conversations/<id>/`: members only."""

    title = models.CharField(max_length=200)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="conversations")
