"""Settings of the comparison app: Django + Channels + SimpleJWT served by Daphne.

Production-like where it matters for speed: DEBUG off, no request logging,
SQLite with the users table, SimpleJWT's defaults except a longer access-token
lifetime (the bench runs for minutes).
"""

import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Bench-only default; set DJANGO_SECRET_KEY to choose one.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "bench-only-not-secret-3f9c1a7e5b2d48c6a0e4f8b1d7c3a9e5"
)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
]

MIDDLEWARE = []
ROOT_URLCONF = "benchapp.urls"
ASGI_APPLICATION = "benchapp.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

# Edge mode (benchapp.asgi_gateway): the gateway's [upstream] secret.
WSAUTH_GATEWAY_SECRET = os.environ.get("WSAUTH_GATEWAY_SECRET", "")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(hours=6),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
