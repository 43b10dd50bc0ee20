from django.conf import settings
from django.db import models


class Receipt(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    total = models.IntegerField(default=0)


class Conversation(models.Model):
    members = models.ManyToManyField(settings.AUTH_USER_MODEL)
