#!/usr/bin/env python3
"""The gateway on a real Django database, side by side with Django.

One run = one database and one user model:

    run.py --wsauth BIN                      # SQLite, auth_user (int pk)
    WSAUTH_TEST_USER_MODEL=uuid run.py ...   # accounts.Person: UUID pk, table "people"
    WSAUTH_TEST_DB=postgres WSAUTH_TEST_DB_NAME=... WSAUTH_TEST_DB_PORT=... run.py ...

It migrates the database with `manage.py migrate`, makes users, sessions
(`Client.login`), receipts and conversations through the ORM, starts
`wsauth serve --config` pointed at that database and connects with a real
WebSocket client (`wsauth probe`) for every (credential, route) pair. Each
outcome must equal what Django decides on the same input:
`JWTAuthentication` / `django.contrib.auth.get_user` for the user, then the
route's rule through the ORM (staff, owner, member).

With --failover-stop CMD / --failover-start CMD (PostgreSQL), the database is
stopped under the running gateway: lookups close 1013 within the lookup
timeout (never 4401), a route needing no lookup is still served, and once the
database is back the same gateway answers again. With --failover-lock
(SQLite), the same checks run while another connection holds the file's
exclusive lock (as a migration's write transaction does in Django's default
rollback-journal mode), then after it commits.

Prints one line per failed check and `db: N passed, M failed`; exits 1 on any
failure.
"""
import argparse
import collections
import concurrent.futures
import datetime
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproj.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user, get_user_model  # noqa: E402
from django.contrib.sessions.middleware import SessionMiddleware  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, RequestFactory  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework_simplejwt.authentication import JWTAuthentication  # noqa: E402
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from shop.models import Conversation, Receipt  # noqa: E402

LOOKUP_TIMEOUT_MS = 400

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", flush=True)


# ---------------------------------------------------------------- Django's side


def django_jwt_user(token):
    """SimpleJWT's JWTAuthentication on a raw access token: the user or None."""
    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(token.encode())
        return auth.get_user(validated)
    except (InvalidToken, AuthenticationFailed):
        return None


def django_session_user(session_key):
    """django.contrib.auth.get_user on a request carrying the session cookie."""
    request = RequestFactory().get("/")
    request.COOKIES[settings.SESSION_COOKIE_NAME] = session_key
    SessionMiddleware(lambda r: None).process_request(request)
    user = get_user(request)
    return user if user.is_authenticated else None


def django_outcome(user, route, arg):
    """What the route's rule decides for `user` (None: not authenticated)."""
    if route == "chat":
        return "OPEN"
    if user is None:
        return "CLOSED 4401"
    if route == "admin":
        return "OPEN" if user.is_staff else "CLOSED 4403"
    if route == "receipts":
        ok = arg.isdigit() and Receipt.objects.filter(pk=int(arg), owner=user).exists()
        return "OPEN" if ok else "CLOSED 4403"
    if route == "conversations":
        ok = arg.isdigit() and Conversation.objects.filter(pk=int(arg), members=user).exists()
        return "OPEN" if ok else "CLOSED 4403"
    raise ValueError(route)


# ---------------------------------------------------------------- the data


def make_user(name, **flags):
    User = get_user_model()
    if User.USERNAME_FIELD == "email":
        return User.objects.create_user(f"{name}@example.com", password=f"pw-{name}", **flags)
    return User.objects.create_user(name, password=f"pw-{name}", **flags)


def login(user, name):
    c = Client()
    field = get_user_model().USERNAME_FIELD
    assert c.login(**{field: getattr(user, field), "password": f"pw-{name}"}), name
    return c, c.cookies[settings.SESSION_COOKIE_NAME].value


def seed():
    users = {
        "admin": make_user("admin", is_staff=True, is_superuser=True),
        "customer": make_user("customer"),
        "other": make_user("other"),
        "inactive": make_user("inactive"),
        "deleted": make_user("deleted"),
        "pwchanged": make_user("pwchanged"),
        "loggedout": make_user("loggedout"),
        "expired": make_user("expired"),
    }
    creds = {}  # name -> (user name, carrier, credential)
    for name in ["admin", "customer", "other", "inactive", "deleted", "pwchanged"]:
        creds[f"jwt:{name}"] = (name, "query", str(AccessToken.for_user(users[name])))
    for name in ["admin", "customer", "inactive", "pwchanged", "loggedout", "expired"]:
        client, key = login(users[name], name)
        creds[f"session:{name}"] = (name, "session", key)
        if name == "loggedout":
            client.logout()  # the row is gone
        if name == "expired":
            Session.objects.filter(session_key=key).update(
                expire_date=timezone.now() - datetime.timedelta(seconds=5)
            )
    # Changed after the logins and token minting.
    users["inactive"].is_active = False
    users["inactive"].save()
    users["pwchanged"].set_password("a-new-password")
    users["pwchanged"].save()
    users["deleted"].delete()

    mine = Receipt.objects.create(title="customer's", owner=users["customer"])
    theirs = Receipt.objects.create(title="other's", owner=users["other"])
    both = Conversation.objects.create(title="admin and customer")
    both.members.add(users["admin"], users["customer"])
    admins = Conversation.objects.create(title="admins")
    admins.members.add(users["admin"])
    routes = [
        ("chat", "lobby", "/ws/chat/lobby/"),
        ("admin", "", "/ws/admin/chat/"),
        ("receipts", str(mine.pk), f"/ws/receipts/{mine.pk}/"),
        ("receipts", str(theirs.pk), f"/ws/receipts/{theirs.pk}/"),
        ("conversations", str(both.pk), f"/ws/conversations/{both.pk}/"),
        ("conversations", str(admins.pk), f"/ws/conversations/{admins.pk}/"),
        # SQL in a path parameter: bound, never pasted.
        (
            "receipts",
            f"{mine.pk}' OR '1'='1",
            f"/ws/receipts/{mine.pk}%27%20OR%20%271%27%3D%271/",
        ),
        (
            "receipts",
            f"{mine.pk}; DROP TABLE shop_receipt; --",
            f"/ws/receipts/{mine.pk}%3B%20DROP%20TABLE%20shop_receipt%3B%20--/",
        ),
    ]
    return users, creds, routes


# ---------------------------------------------------------------- the gateway


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_config(db_url):
    db = settings.DATABASES["default"]
    User = get_user_model()
    pk = "uuid" if User._meta.pk.get_internal_type() == "UUIDField" else "int"
    user_table = User._meta.db_table
    members = Conversation.members.through._meta
    member_user_col = members.get_field(User._meta.model_name).column
    return f"""
[jwt]
secret = {{ env = "WSAUTH_TEST_SECRET" }}

[users]
source = "database"
pk = "{pk}"

[session]
engine = "db"

[limits.admission]
# The load check holds 2,000 connections from one client address.
max_connections_per_peer = 0

[database]
url = {{ env = "WSAUTH_TEST_DATABASE_URL" }}
pool_size = {POOL_SIZE}
lookup_timeout_ms = {LOOKUP_TIMEOUT_MS}
user_table = "{user_table}"
session_table = "django_session"

[[routes]]
name = "chat"
path = "/ws/chat/<room>/"
requirement = "anonymous"

[[routes]]
name = "admin"
path = "/ws/admin/chat/"
requirement = "staff"

[[routes]]
name = "receipts"
path = "/ws/receipts/<id>/"
requirement = {{ owner = "id" }}
sql = "SELECT 1 FROM {Receipt._meta.db_table} WHERE id = :id AND owner_id = :user"

[[routes]]
name = "conversations"
path = "/ws/conversations/<id>/"
requirement = {{ member = "id" }}
sql = "SELECT 1 FROM {members.db_table} WHERE conversation_id = :id AND {member_user_col} = :user"
""", db["ENGINE"]


class Gateway:
    def __init__(self, wsauth, config_path, env):
        self.port = free_port()
        self.base = f"ws://127.0.0.1:{self.port}"
        self.wsauth = wsauth
        self.proc = subprocess.Popen(
            [wsauth, "serve", "--config", config_path, "--listen", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("wsauth serve exited: " + self.proc.stderr.read())
                time.sleep(0.05)
        raise RuntimeError("wsauth serve did not start")

    def probe(self, path, carrier=None, credential=None, wait_ms=250):
        cmd = [self.wsauth, "probe", self.base + path, "--wait-ms", str(wait_ms)]
        if credential is not None:
            if carrier == "session":
                cmd += ["--carrier", "cookie", "--cookie-name", settings.SESSION_COOKIE_NAME]
            else:
                cmd += ["--carrier", carrier]
            cmd += ["--token", credential]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        words = (out.stdout.strip() or out.stderr.strip()).split()
        return " ".join(words[:2])

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def side_by_side(gw, users, creds, routes):
    jobs = []
    for cname, (uname, carrier, cred) in creds.items():
        user = django_jwt_user(cred) if carrier == "query" else django_session_user(cred)
        for route, arg, path in routes:
            jobs.append((cname, path, carrier, cred, django_outcome(user, route, arg)))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda j: gw.probe(j[1], j[2], j[3]), jobs))
    for (cname, path, _, _, want), outcome in zip(jobs, got):
        check(outcome == want, f"{cname} {path}: gateway {outcome!r}, Django {want!r}")
    counts = collections.Counter(j[4] for j in jobs)
    # The cases must cover every outcome, or the comparison proves little.
    check(set(counts) == {"OPEN", "CLOSED 4401", "CLOSED 4403"}, f"outcomes covered: {counts}")
    print("Django decided: " + ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())), flush=True)
    return len(jobs)


def cli_checks(wsauth, db_url, creds):
    """`wsauth token check --database` / `wsauth session check --database` read
    the rows themselves and decide as JWTAuthentication / get_user."""
    User = get_user_model()
    pk = "uuid" if User._meta.pk.get_internal_type() == "UUIDField" else "int"
    common = ["--database", db_url, "--user-table", User._meta.db_table, "--pk", pk]
    env = dict(os.environ, WSAUTH_TEST_SECRET=settings.SECRET_KEY)
    for cname, (_, carrier, cred) in creds.items():
        if carrier == "query":
            want = django_jwt_user(cred) is not None
            cmd = [wsauth, "token", "check", cred, "--secret-env", "WSAUTH_TEST_SECRET"] + common
        else:
            want = django_session_user(cred) is not None
            cmd = [wsauth, "session", "check", "--secret-env", "WSAUTH_TEST_SECRET",
                   "--cookie-header", f"{settings.SESSION_COOKIE_NAME}={cred}"] + common
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)
        check(out.returncode == (0 if want else 1),
              f"cli {cname}: exit {out.returncode} ({out.stdout.strip()} {out.stderr.strip()}), Django {'valid' if want else 'invalid'}")
    # A key with no row is an invalid session (exit 1), with or without --database.
    for extra in (common, []):
        out = subprocess.run(
            [wsauth, "session", "check", "--secret-env", "WSAUTH_TEST_SECRET",
             "--cookie-header", f"{settings.SESSION_COOKIE_NAME}=nosuchkey0123456789abcdefghijkl"] + extra,
            capture_output=True, text=True, env=env, timeout=30)
        check(out.returncode == 1, f"cli: a key with no row → exit 1 ({extra and 'with' or 'without'} --database): {out.returncode} {out.stderr}")


def live_changes(gw, users, creds):
    """Changes made through the ORM are seen on the next handshake."""
    _, _, token = creds["jwt:customer"]
    customer = users["customer"]
    mine = Receipt.objects.filter(owner=customer).first()
    path = f"/ws/receipts/{mine.pk}/"
    check(gw.probe(path, "query", token) == "OPEN", "live: customer opens own receipt")
    customer.is_active = False
    customer.save()
    check(django_jwt_user(token) is None, "live: Django refuses the inactive customer")
    check(gw.probe(path, "query", token) == "CLOSED 4401", "live: deactivated → 4401 at once")
    customer.is_active = True
    customer.save()
    mine.owner = users["other"]
    mine.save()
    check(gw.probe(path, "query", token) == "CLOSED 4403", "live: ownership moved → 4403")
    mine.owner = customer
    mine.save()
    check(gw.probe(path, "query", token) == "OPEN", "live: ownership back → OPEN")
    # Nothing was dropped by the SQL in the path parameters.
    check(Receipt.objects.count() == 2, "the receipts table is intact")


POOL_SIZE = 4


def load(gw, wsload, creds, users, count):
    """`count` concurrent authenticated connections, each with a user and an
    owner lookup: every one opens and stays open (none lost or refused), and
    the gateway never holds more than pool_size server connections."""
    _, _, token = creds["jwt:customer"]
    mine = Receipt.objects.filter(owner=users["customer"]).first()
    url = f"{gw.base}/ws/receipts/{mine.pk}/?token={token}"
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "ready")
        release = os.path.join(tmp, "release")
        proc = subprocess.Popen(
            [wsload, "hold", "--url", url, "--count", str(count), "--concurrency", os.environ.get("WSAUTH_TEST_DB_LOAD_CONCURRENCY", "50"),
             "--ready-file", ready, "--release-file", release, "--max-secs", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        most = 0
        t0 = time.time()
        with connection.cursor() as cur:
            while not os.path.exists(ready) and proc.poll() is None and time.time() - t0 < 120:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wsauth'")
                most = max(most, cur.fetchone()[0])
                time.sleep(0.02)
        connection.close()
        opened = proc.stdout.readline()
        with open(release, "w"):
            pass
        closed = proc.stdout.readline()
        proc.wait(60)
    import json

    o = json.loads(opened or "{}")
    c = json.loads(closed or "{}")
    check(o.get("held") == count and not o.get("failures"),
          f"load: {count} connections held: {opened.strip()} {proc.stderr.read() if proc.stderr else ''}")
    check(c.get("closed_clean") == count, f"load: all closed cleanly: {closed.strip()}")
    check(0 < most <= POOL_SIZE, f"load: at most pool_size={POOL_SIZE} server connections (saw {most})")
    print(f"load: {o.get('held')} of {count} authenticated connections open in {o.get('open_secs', 0):.1f}s; "
          f"at most {most} PostgreSQL connections (pool_size {POOL_SIZE})", flush=True)


def bench(gw, wsload, wsauth, creds, users, seconds, env, tmp):
    """Handshakes/s through the database (user + owner lookups) and, same
    client and token, claims-only (no lookup at all), one after the other."""
    import json

    _, _, token = creds["jwt:customer"]
    mine = Receipt.objects.filter(owner=users["customer"]).first()
    connection.close()
    path = f"/ws/receipts/{mine.pk}/?token={token}"

    def rate(base):
        out = subprocess.run(
            [wsload, "run", "--url", base + path, "--concurrency", "32", "--duration", str(seconds),
             "--expect", "open"],
            capture_output=True, text=True, timeout=seconds + 120,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        check(r["failed"] == 0, f"bench: failures {r['failures']}")
        return r

    db = rate(gw.base)
    claims_cfg = os.path.join(tmp, "claims.toml")
    with open(claims_cfg, "w") as f:
        f.write(
            '[jwt]\nsecret = { env = "WSAUTH_TEST_SECRET" }\n[users]\nsource = "claims"\n'
            '[[routes]]\nname = "receipts"\npath = "/ws/receipts/<id>/"\nrequirement = "authenticated"\n'
        )
    claims_gw = Gateway(wsauth, claims_cfg, env)
    try:
        claims = rate(claims_gw.base)
    finally:
        claims_gw.stop()
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    for label, r in [(f"{engine} lookups", db), ("claims-only", claims)]:
        print(f"BENCH {label}: {r['per_sec']:.0f} handshakes/s "
              f"(p50 {r['latency_ms']['p50']:.2f} ms, p99 {r['latency_ms']['p99']:.2f} ms, concurrency 32, {seconds}s)",
              flush=True)


def sqlite_lock():
    """Holds the SQLite file's exclusive lock (a write transaction that has
    begun writing) until the returned function releases it."""
    import sqlite3

    path = settings.DATABASES["default"]["NAME"]
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    check(journal.lower() == "delete", f"failover: the test database is in {journal!r} mode, not Django's default")
    conn.execute("BEGIN EXCLUSIVE")

    def release():
        conn.execute("COMMIT")
        conn.close()

    return release


def failover(gw, creds, stop, start):
    """`stop()` makes the database unavailable, `start()` brings it back."""
    _, _, staff = creds["jwt:admin"]
    _, _, session = creds["session:admin"]
    check(gw.probe("/ws/admin/chat/", "query", staff) == "OPEN", "failover: before")
    stop()
    for path, carrier, cred, what in [
        ("/ws/admin/chat/", "query", staff, "token → user lookup"),
        ("/ws/admin/chat/", "session", session, "session → session lookup"),
        ("/ws/receipts/1/", "query", staff, "owner route"),
    ]:
        t0 = time.time()
        got = gw.probe(path, carrier, cred)
        took = time.time() - t0
        check(got == "CLOSED 1013", f"failover: database down, {what}: {got!r} (want CLOSED 1013)")
        # Probe process start-up and the close handshake included.
        check(took < LOOKUP_TIMEOUT_MS / 1000 + 2.0, f"failover: {what} took {took:.2f}s")
    check(gw.probe("/ws/chat/lobby/") == "OPEN", "failover: a route with no lookup is still served")
    start()
    recovered = None
    t0 = time.time()
    while time.time() - t0 < 20:
        got = gw.probe("/ws/admin/chat/", "query", staff)
        if got == "OPEN":
            recovered = time.time() - t0
            break
        check(got == "CLOSED 1013", f"failover: while recovering: {got!r}")
        time.sleep(0.2)
    check(recovered is not None, "failover: the gateway recovered without a restart")
    check(gw.probe("/ws/admin/chat/", "session", session) == "OPEN", "failover: sessions again")
    if recovered is not None:
        print(f"failover: recovered {recovered:.2f}s after the database came back")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wsauth", required=True)
    ap.add_argument("--database-url", required=True, help="the same database, as wsauth reads it")
    ap.add_argument("--failover-stop")
    ap.add_argument("--failover-start")
    ap.add_argument("--failover-lock", action="store_true", help="SQLite: lock the file under the gateway")
    ap.add_argument("--wsload", help="with --load: the wsload binary")
    ap.add_argument("--load", type=int, default=0, help="PostgreSQL: hold this many connections")
    ap.add_argument("--bench", type=float, default=0, help="with --wsload: measure handshakes/s for this many seconds")
    args = ap.parse_args()

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    model = get_user_model()._meta.label
    print(f"== {engine}, user model {model} ({get_user_model()._meta.db_table})", flush=True)
    call_command("migrate", verbosity=0)
    users, creds, routes = seed()
    config, _ = gateway_config(args.database_url)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "wsauth.toml")
        with open(path, "w") as f:
            f.write(config)
        check_out = subprocess.run([args.wsauth, "config", "check", path], capture_output=True, text=True)
        check(check_out.returncode == 0, f"config check: {check_out.stdout}{check_out.stderr}")
        env = dict(os.environ)
        env["WSAUTH_TEST_SECRET"] = settings.SECRET_KEY
        env["WSAUTH_TEST_DATABASE_URL"] = args.database_url
        env.setdefault("RUST_LOG", "warn")
        # Django's connection must not hold locks the gateway waits on.
        connection.close()
        gw = Gateway(args.wsauth, path, env)
        try:
            n = side_by_side(gw, users, creds, routes)
            print(f"side by side: {n} (credential, route) pairs", flush=True)
            cli_checks(args.wsauth, args.database_url, creds)
            live_changes(gw, users, creds)
            connection.close()
            if args.bench and args.wsload:
                bench(gw, args.wsload, args.wsauth, creds, users, args.bench, env, tmp)
            if args.load and args.wsload:
                load(gw, args.wsload, creds, users, args.load)
            if args.failover_stop and args.failover_start:

                def shell(cmd):
                    return lambda: subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)

                failover(gw, creds, shell(args.failover_stop), shell(args.failover_start))
            if args.failover_lock:
                held = []
                failover(gw, creds, lambda: held.append(sqlite_lock()), lambda: held.pop()())
        finally:
            gw.stop()
    print(f"db: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
