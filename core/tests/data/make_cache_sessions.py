"""Makes cache_sessions.json: session dicts as Django's cache / cached_db
session engines leave them in Redis (RedisCache's RedisSerializer), after a
real django.contrib.auth.login, with the plain values a view may add.

Run with the pinned Django (ffi/python/tests/requirements.txt):
    python make_cache_sessions.py > cache_sessions.json
"""
import base64
import json
import sys

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="cache-session-vectors",
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    SESSION_ENGINE="django.contrib.sessions.backends.cache",
    USE_TZ=True,
)
django.setup()

from django.contrib.auth import get_user_model, login  # noqa: E402
from django.contrib.sessions.backends.cache import KEY_PREFIX as CACHE_PREFIX  # noqa: E402
from django.contrib.sessions.backends.cached_db import KEY_PREFIX as CDB_PREFIX  # noqa: E402
from django.core.cache.backends.base import default_key_func  # noqa: E402
from django.core.cache.backends.redis import RedisSerializer  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from importlib import import_module  # noqa: E402

call_command("migrate", verbosity=0)
User = get_user_model()
user = User.objects.create_user("alice", password="pw-1")


def logged_in(extra):
    request = RequestFactory().get("/")
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    for k, v in extra.items():
        request.session[k] = v
    return dict(request.session.items())


def plain(v):
    """The value as JSON, tuples and big ints tagged."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**63 else {"bigint": str(v)}
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, tuple):
        return {"tuple": [plain(x) for x in v]}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {"dict": [[plain(k), plain(x)] for k, x in v.items()]}
    raise TypeError(type(v))


shared = ["shared", 1]
cases = [
    ("login", {}),
    ("expiry", {"_session_expiry": 300}),
    ("values", {"cart": [1, -2, 70000, 2**40, -(2**63), 2**70, True, False, None, 1.5, -0.0],
                "t": (1, "x", (2, None)), "nested": {"a": {"b": ["c"]}}, "h\u00e9llo": "w\u00f6rld \U0001f600"}),
    ("shared_refs", {"x": shared, "y": shared, "z": (shared, shared)}),
    ("long_strings", {"s300": "a" * 300, "s70k": "b" * 70000}),
    ("many_keys", {f"k{i}": i for i in range(1200)}),
]
out = {
    "django": django.get_version(),
    "python": sys.version.split()[0],
    "cache_key": default_key_func(CACHE_PREFIX + "k" * 32, "", 1),
    "cached_db_key": default_key_func(CDB_PREFIX + "k" * 32, "", 1),
    "cache_key_prefixed": default_key_func(CACHE_PREFIX + "k" * 32, "site1", 7),
    "sessions": [],
}
for name, extra in cases:
    d = logged_in(extra)
    out["sessions"].append({
        "name": name,
        "redis_value_b64": base64.b64encode(RedisSerializer().dumps(d)).decode(),
        "value": plain(d),
        "auth": {"user_id": d["_auth_user_id"], "backend": d["_auth_user_backend"], "hash": d["_auth_user_hash"]},
    })
anon = {"foo": "bar"}
out["sessions"].append({"name": "anonymous", "redis_value_b64": base64.b64encode(RedisSerializer().dumps(anon)).decode(),
                        "value": plain(anon), "auth": None})
json.dump(out, sys.stdout, indent=1)
sys.stdout.write("\n")
