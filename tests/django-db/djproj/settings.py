"""A small Django project whose database the wsauth gateway reads.

The database comes from the environment:
  WSAUTH_TEST_DB=sqlite  WSAUTH_TEST_DB_NAME=/path/db.sqlite3
  WSAUTH_TEST_DB=postgres WSAUTH_TEST_DB_NAME=app WSAUTH_TEST_DB_HOST=127.0.0.1 WSAUTH_TEST_DB_PORT=5432 WSAUTH_TEST_DB_USER=postgres
WSAUTH_TEST_USER_MODEL=uuid swaps in accounts.Person (UUID pk, table "people").
"""
import os

SECRET_KEY = os.environ.get("WSAUTH_TEST_SECRET", "django-db-test-secret-key-0123456789-abcdefghijklmnop")
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
    "accounts",
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "djproj.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Fast hashing: the tests log in many times.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]

if os.environ.get("WSAUTH_TEST_USER_MODEL") == "uuid":
    AUTH_USER_MODEL = "accounts.Person"

_db = os.environ.get("WSAUTH_TEST_DB", "sqlite")
if _db == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["WSAUTH_TEST_DB_NAME"],
            "USER": os.environ.get("WSAUTH_TEST_DB_USER", "postgres"),
            "HOST": os.environ.get("WSAUTH_TEST_DB_HOST", "127.0.0.1"),
            "PORT": os.environ.get("WSAUTH_TEST_DB_PORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("WSAUTH_TEST_DB_NAME", "db.sqlite3"),
        }
    }
