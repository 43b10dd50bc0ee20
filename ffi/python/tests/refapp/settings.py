"""Settings of the reference app the Python tests run against (real Django,
DRF SimpleJWT and Channels).

Served by Daphne (test_browser.py), the app reads its database file from
REFAPP_DATABASE and its allowed WebSocket origins (comma-separated Channels
patterns, e.g. ``127.0.0.1,localhost``) from REFAPP_ORIGINS."""

import os

SECRET_KEY = "refapp-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
SECRET_KEY_FALLBACKS: list = []
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "rest_framework_simplejwt",
    "refapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "refapp.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("REFAPP_DATABASE", ":memory:")}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Fast hashing for tests; the session hash covers whatever the stored hash text is.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SIMPLE_JWT: dict = {}
ASGI_APPLICATION = "refapp.asgi.application"
WSAUTH: dict = {}
if os.environ.get("REFAPP_ORIGINS"):
    WSAUTH["origins"] = {"mode": "channels", "allowed": os.environ["REFAPP_ORIGINS"].split(",")}
if os.environ.get("REFAPP_RATE_LIMIT"):  # "requests/period_secs/burst"
    _requests, _period, _burst = (int(n) for n in os.environ["REFAPP_RATE_LIMIT"].split("/"))
    WSAUTH["limits"] = {"rate_limit": {"requests": _requests, "period_secs": _period, "burst": _burst}}
# Edge mode (refapp.asgi_gateway): the gateway's [upstream] secret.
if os.environ.get("REFAPP_GATEWAY_SECRET"):
    WSAUTH_GATEWAY_SECRET = os.environ["REFAPP_GATEWAY_SECRET"]
