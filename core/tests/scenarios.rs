//! The reference app, end to end through the public API: one row per case,
//! the expected outcome in the row.
//!
//! Routes: `/ws/chat/<room>/` anonymous, `/ws/admin/chat/` staff, `/ws/logs/`
//! staff (first-message auth allowed), `/ws/receipts/<id>/` owner,
//! `/ws/conversations/<id>/` member, plus `/ws/strict/` (anonymous, strict).
//! Tokens are minted with real signatures; sessions are built with Django's
//! signing helpers.

use std::cell::{Cell, RefCell};
use wsauth_core::UnixTime;
use wsauth_core::{
    config::CredentialsConfig, config::EngineConfig, config::JwtConfig, config::LimitsConfig,
    config::OriginsConfig, config::RateLimitConfig, config::RouteConfig, config::SessionConfig,
    config::UsersConfig, django::session::session_auth_hash, django::session::SESSION_STORE_SALT,
    django::session::SIGNED_COOKIES_SALT, django::signing::dumps, Answer, AuthMethod,
    Authenticator, Carrier, ClaimValue, Close, CloseCode, Config, ConnState, Connection, Decision,
    HandshakeView, InlineStr, MessageAction, MintRequest, Principal, RateState, Relation, Request,
    Requirement, SecretKey, SecretRef, SessionRow, Step, TokenVerifier, UserKey, UserRecord,
    UserSource,
};

const NOW: i64 = 1_750_000_000;
const SECRET: &str = "reference-app-secret-key-0123456789abcdef";
const OTHER_SECRET: &str = "some-other-key-never-configured-xxxxxxxx";
const BACKEND: &str = "django.contrib.auth.backends.ModelBackend";
const JTI_OK: &str = "0123456789abcdef0123456789abcdef";
const JTI_REVOKED: &str = "deadbeefdeadbeefdeadbeefdeadbeef";

// ---------------------------------------------------------------- the host

struct UserRow {
    pk: &'static str,
    password: &'static str,
    active: bool,
    staff: bool,
    superuser: bool,
}

const USERS: &[UserRow] = &[
    UserRow {
        pk: "1",
        password: "pbkdf2_sha256$600000$salt$alicehash",
        active: true,
        staff: true,
        superuser: false,
    },
    UserRow {
        pk: "2",
        password: "pbkdf2_sha256$600000$salt$bobhash",
        active: true,
        staff: false,
        superuser: false,
    },
    UserRow {
        pk: "3",
        password: "pbkdf2_sha256$600000$salt$carolhash",
        active: false,
        staff: true,
        superuser: false,
    },
];

/// Which lookup the host fails (database down).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fail {
    Nothing,
    User,
    Jti,
    Session,
    Access,
}

struct Host {
    fail: Fail,
    /// (session_key, session_data, expire_date)
    sessions: Vec<(String, String, i64)>,
    asked: RefCell<Vec<String>>,
}

impl Host {
    fn new(fail: Fail) -> Self {
        Host {
            fail,
            sessions: Vec::new(),
            asked: RefCell::new(Vec::new()),
        }
    }

    fn answer(&self, req: &Request) -> Answer<'_> {
        match req {
            Request::User { key, pk } => {
                self.asked.borrow_mut().push(format!("user {pk}"));
                assert!(
                    matches!(key, UserKey::Int(_)),
                    "integer pk expected, got {key:?}"
                );
                if self.fail == Fail::User {
                    return Answer::Failed;
                }
                Answer::User(USERS.iter().find(|u| *pk == u.pk).map(|u| UserRecord {
                    pk: u.pk,
                    password: u.password,
                    is_active: u.active,
                    is_staff: u.staff,
                    is_superuser: u.superuser,
                }))
            }
            Request::JtiRevoked { jti, .. } => {
                self.asked.borrow_mut().push(format!("jti {jti}"));
                if self.fail == Fail::Jti {
                    return Answer::Failed;
                }
                Answer::Revoked(*jti == JTI_REVOKED)
            }
            Request::Session { key } => {
                self.asked.borrow_mut().push(format!("session {key}"));
                if self.fail == Fail::Session {
                    return Answer::Failed;
                }
                Answer::Session(
                    self.sessions
                        .iter()
                        .find(|(k, _, _)| k == key)
                        .map(|(k, d, e)| SessionRow {
                            session_key: k,
                            session_data: d,
                            expire_date: *e,
                        }),
                )
            }
            Request::Access {
                user,
                relation,
                route,
                param,
                value,
                ..
            } => {
                self.asked.borrow_mut().push(format!(
                    "access {user} {relation:?} {route} {param}={value}"
                ));
                if self.fail == Fail::Access {
                    return Answer::Failed;
                }
                let allowed = match relation {
                    // receipts: 10 belongs to user 2, 11 to user 1.
                    Relation::Owner => {
                        matches!((value.as_str(), user.as_str()), ("10", "2") | ("11", "1"))
                    }
                    // conversations: 20 has members 1 and 2; 21 only 1.
                    Relation::Member => matches!(
                        (value.as_str(), user.as_str()),
                        ("20", "1" | "2") | ("21", "1")
                    ),
                };
                Answer::Access(allowed)
            }
            other => panic!("unexpected request {other:?}"),
        }
    }
}

fn drive(auth: &Authenticator, host: &Host, view: &HandshakeView<'_>, now: i64) -> Decision {
    let mut hs = auth.start(view, UnixTime::from_secs(now));
    for _ in 0..16 {
        let answer = match hs.poll() {
            Step::Done(d) => return d,
            Step::Lookup(req) => host.answer(&req),
        };
        hs.answer(answer);
    }
    panic!("handshake did not finish");
}

// ---------------------------------------------------------------- configuration

fn routes() -> Vec<RouteConfig> {
    let mut r = Config::reference_routes();
    for route in &mut r {
        if route.path == "/ws/logs/" {
            route.auth_message = Some(true);
        }
    }
    r.push(RouteConfig {
        name: "strict".into(),
        path: "/ws/strict/".into(),
        requirement: Requirement::Anonymous,
        strict: true,
        auth_message: None,
        sql: None,
    });
    r
}

fn base_config(source: UserSource) -> Config {
    Config {
        jwt: JwtConfig {
            secret: Some(SecretRef::Env("WSAUTH_SECRET".into())),
            ..JwtConfig::default()
        },
        users: UsersConfig {
            source,
            ..UsersConfig::default()
        },
        credentials: CredentialsConfig {
            carriers: Some(vec![
                Carrier::Subprotocol,
                Carrier::Header,
                Carrier::Query,
                Carrier::Cookie,
            ]),
            jwt_cookie: Some("access_token".into()),
            ..CredentialsConfig::default()
        },
        origins: OriginsConfig {
            allowed: vec![
                "https://app.example.com".into(),
                "http://localhost:*".into(),
            ],
            ..OriginsConfig::default()
        },
        routes: routes(),
        ..Config::default()
    }
}

fn claims_config() -> Config {
    base_config(UserSource::Claims)
}

fn directory_config(engine: EngineConfig) -> Config {
    let mut c = base_config(UserSource::Directory);
    c.users.check_revoked_jti = true;
    c.session = Some(SessionConfig {
        engine,
        ..SessionConfig::default()
    });
    c.credentials.carriers = Some(vec![
        Carrier::Subprotocol,
        Carrier::Header,
        Carrier::Query,
        Carrier::Cookie,
        Carrier::Session,
    ]);
    c
}

fn build(config: &Config) -> Authenticator {
    assert_eq!(config.check(), vec![], "config problems");
    let secrets = config
        .resolve_secrets(|r| {
            matches!(r, SecretRef::Env(n) if n == "WSAUTH_SECRET").then(|| SECRET.to_string())
        })
        .expect("secrets resolve");
    Authenticator::from_config(config, &secrets).expect("config builds")
}

// ---------------------------------------------------------------- credentials

#[derive(Clone, Copy, Debug)]
enum Tok {
    /// user "1", `is_staff` claim true.
    Staff,
    /// user "2", no flags.
    Plain,
    /// user 2 with an `is_staff` claim the directory contradicts.
    PlainClaimingStaff,
    /// user "3" (inactive in the directory).
    Inactive,
    /// user "99" (not in the directory).
    Unknown,
    /// user "1" with a revoked jti.
    RevokedJti,
    /// user "1", expired.
    Expired,
    /// user "1", signed with a key that is not configured.
    BadSignature,
    /// numeric user id claim 7.
    Numeric,
    /// not a JWT.
    Garbage,
}

fn verifier(secret: &str) -> TokenVerifier {
    TokenVerifier::new(Default::default(), SecretKey::from(secret)).expect("verifier")
}

fn mint(tok: Tok) -> String {
    let s = |v: &str| ClaimValue::Str(InlineStr::new(v).expect("short"));
    let staff = [("is_staff", ClaimValue::Bool(true))];
    let (secret, user, jti, extra, issued, lifetime): (
        &str,
        ClaimValue,
        &str,
        &[(&str, ClaimValue)],
        i64,
        i64,
    ) = match tok {
        Tok::Staff => (SECRET, s("1"), JTI_OK, &staff, NOW - 10, 300),
        Tok::Plain => (SECRET, s("2"), JTI_OK, &[], NOW - 10, 300),
        Tok::PlainClaimingStaff => (SECRET, s("2"), JTI_OK, &staff, NOW - 10, 300),
        Tok::Inactive => (SECRET, s("3"), JTI_OK, &[], NOW - 10, 300),
        Tok::Unknown => (SECRET, s("99"), JTI_OK, &[], NOW - 10, 300),
        Tok::RevokedJti => (SECRET, s("1"), JTI_REVOKED, &staff, NOW - 10, 300),
        Tok::Expired => (SECRET, s("1"), JTI_OK, &staff, NOW - 400, 300),
        Tok::BadSignature => (OTHER_SECRET, s("1"), JTI_OK, &staff, NOW - 10, 300),
        Tok::Numeric => (SECRET, ClaimValue::Int(7), JTI_OK, &[], NOW - 10, 300),
        Tok::Garbage => return "not-a-jwt".into(),
    };
    let token = verifier(secret).mint(
        &MintRequest {
            user_id: user,
            lifetime,
            jti,
            extra,
        },
        issued,
    );
    assert!(token.split('.').count() == 3, "minting produced {token:?}");
    token
}

fn session_json(pk: &str, password: &str) -> String {
    format!(
        r#"{{"_auth_user_id":"{pk}","_auth_user_backend":"{BACKEND}","_auth_user_hash":"{}"}}"#,
        session_auth_hash(password, &SecretKey::from(SECRET))
    )
}

/// A db-backend session for `pk` (row stored in the host), returning the cookie value.
fn db_session(host: &mut Host, key: &str, pk: &str, password: &str, expire: i64) -> String {
    let data = dumps(
        session_json(pk, password).as_bytes(),
        &SecretKey::from(SECRET),
        SESSION_STORE_SALT,
        true,
        NOW - 100,
    );
    host.sessions.push((key.into(), data, expire));
    key.into()
}

fn signed_session(pk: &str, password: &str, signed_at: i64) -> String {
    dumps(
        session_json(pk, password).as_bytes(),
        &SecretKey::from(SECRET),
        SIGNED_COOKIES_SALT,
        true,
        signed_at,
    )
}

// ---------------------------------------------------------------- expectations

#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// Accept as this user id (`None`: anonymous), staff flag, echoed subprotocol.
    Accept {
        user: Option<&'static str>,
        staff: bool,
        subprotocol: Option<&'static str>,
    },
    Close(u16),
    Deny(u16),
    Await,
}

fn user(id: &'static str, staff: bool) -> Want {
    Want::Accept {
        user: Some(id),
        staff,
        subprotocol: None,
    }
}
fn anon() -> Want {
    Want::Accept {
        user: None,
        staff: false,
        subprotocol: None,
    }
}

fn check(name: &str, d: &Decision, want: &Want, secrets_in_request: &[&str]) {
    match (d, want) {
        (
            Decision::Accept(a),
            Want::Accept {
                user,
                staff,
                subprotocol,
            },
        ) => {
            match (&a.principal, user) {
                (Principal::Anonymous, None) => {}
                (Principal::User(u), Some(id)) => {
                    assert_eq!(u.id.as_str(), *id, "{name}: user id");
                    assert_eq!(u.is_staff, *staff, "{name}: staff flag");
                }
                (p, w) => panic!("{name}: principal {p:?}, want {w:?}"),
            }
            assert_eq!(
                a.subprotocol.as_ref().map(|s| s.as_str()),
                *subprotocol,
                "{name}: subprotocol"
            );
        }
        (Decision::Close(c), Want::Close(code)) => {
            assert_eq!(
                c.close.code.as_u16(),
                *code,
                "{name}: close code (reason {:?})",
                c.close.reason
            );
            check_reason(name, &c.close, secrets_in_request);
        }
        (Decision::Deny { status }, Want::Deny(s)) => assert_eq!(status, s, "{name}"),
        (Decision::AwaitFirstMessage(_), Want::Await) => {}
        (d, w) => panic!("{name}: got {d:?}, want {w:?}"),
    }
}

fn check_reason(name: &str, c: &Close, secrets: &[&str]) {
    let r = c.reason.as_str();
    assert!(!r.is_empty() && r.len() <= 123, "{name}: reason {r:?}");
    for s in secrets {
        if s.len() >= 8 {
            assert!(!r.contains(s), "{name}: reason leaks a credential");
        }
    }
}

struct Row {
    name: &'static str,
    path: &'static str,
    query: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    want: Want,
    /// Host lookups expected, in order (prefixes).
    asked: &'static [&'static str],
}

fn row(name: &'static str, path: &'static str, want: Want) -> Row {
    Row {
        name,
        path,
        query: String::new(),
        headers: Vec::new(),
        want,
        asked: &[],
    }
}

impl Row {
    fn query(mut self, q: String) -> Self {
        self.query = q;
        self
    }
    fn token(self, t: Tok) -> Self {
        let tok = mint(t);
        self.query(format!("token={tok}"))
    }
    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn asked(mut self, a: &'static [&'static str]) -> Self {
        self.asked = a;
        self
    }
}

fn run_rows(auth: &Authenticator, mut host: Host, rows: Vec<Row>, setup: impl Fn(&mut Host)) {
    setup(&mut host);
    for r in rows {
        host.asked.borrow_mut().clear();
        let headers: Vec<(&str, &[u8])> =
            r.headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let view = HandshakeView::new(r.path, &r.query, &headers);
        let d = drive(auth, &host, &view, NOW);
        let mut secrets: Vec<&str> = vec![r.query.as_str()];
        if let Some(t) = r.query.split('=').nth(1) {
            secrets.push(t);
        }
        let header_texts: Vec<String> = r
            .headers
            .iter()
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect();
        secrets.extend(header_texts.iter().map(String::as_str));
        check(r.name, &d, &r.want, &secrets);
        let asked = host.asked.borrow();
        assert_eq!(asked.len(), r.asked.len(), "{}: lookups {asked:?}", r.name);
        for (got, want) in asked.iter().zip(r.asked) {
            assert!(
                got.starts_with(want),
                "{}: asked {got:?}, want {want:?}",
                r.name
            );
        }
    }
}

// ---------------------------------------------------------------- claims-only tables

#[test]
fn claims_only_reference_app() {
    let auth = build(&claims_config());
    let staff = mint(Tok::Staff);
    let plain = mint(Tok::Plain);
    let rows = vec![
        row("staff token on admin", "/ws/admin/chat/", user("1", true)).token(Tok::Staff),
        row("staff token on logs", "/ws/logs/", user("1", true)).token(Tok::Staff),
        row("non-staff on admin", "/ws/admin/chat/", Want::Close(4403)).token(Tok::Plain),
        row("no token on admin", "/ws/admin/chat/", Want::Close(4401)),
        row(
            "invalid token on admin",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .token(Tok::Garbage),
        row(
            "bad signature on admin",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .token(Tok::BadSignature),
        row("expired on admin", "/ws/admin/chat/", Want::Close(4401)).token(Tok::Expired),
        row(
            "no token on logs awaits the first message",
            "/ws/logs/",
            Want::Await,
        ),
        row("anonymous chat", "/ws/chat/lobby/", anon()),
        row("anonymous chat with a bad token", "/ws/chat/lobby/", anon()).token(Tok::Garbage),
        row(
            "anonymous chat with an expired token",
            "/ws/chat/lobby/",
            anon(),
        )
        .token(Tok::Expired),
        row(
            "chat with a valid token",
            "/ws/chat/lobby/",
            user("2", false),
        )
        .token(Tok::Plain),
        row("strict route, bad token", "/ws/strict/", Want::Close(4401)).token(Tok::Garbage),
        row("strict route, no token", "/ws/strict/", anon()),
        row("receipt owner", "/ws/receipts/10/", user("2", false))
            .token(Tok::Plain)
            .asked(&["access 2 Owner receipts id=10"]),
        row(
            "receipt of another user",
            "/ws/receipts/11/",
            Want::Close(4403),
        )
        .token(Tok::Plain)
        .asked(&["access 2 Owner receipts id=11"]),
        row(
            "receipt without token",
            "/ws/receipts/10/",
            Want::Close(4401),
        ),
        row(
            "conversation member",
            "/ws/conversations/20/",
            user("2", false),
        )
        .token(Tok::Plain)
        .asked(&["access 2 Member conversations id=20"]),
        row(
            "conversation non-member",
            "/ws/conversations/21/",
            Want::Close(4403),
        )
        .token(Tok::Plain)
        .asked(&["access 2 Member conversations id=21"]),
        row(
            "percent-encoded resource id",
            "/ws/conversations/%32%30/",
            user("1", true),
        )
        .token(Tok::Staff)
        .asked(&["access 1 Member conversations id=20"]),
        row("numeric user id claim", "/ws/chat/x/", user("7", false)).token(Tok::Numeric),
        row("no route", "/ws/nowhere/", Want::Close(4404)).token(Tok::Staff),
        // carriers
        row("authorization header", "/ws/admin/chat/", user("1", true))
            .header("Authorization", format!("Bearer {staff}")),
        row(
            "authorization header, two values",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .header("Authorization", format!("Bearer {staff} extra")),
        row(
            "authorization header, other type",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .header("Authorization", format!("JWT {staff}")),
        row(
            "subprotocol",
            "/ws/admin/chat/",
            Want::Accept {
                user: Some("1"),
                staff: true,
                subprotocol: Some("bearer"),
            },
        )
        .header("Sec-WebSocket-Protocol", format!("bearer, {staff}")),
        row(
            "subprotocol bearer without token",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .header("Sec-WebSocket-Protocol", "bearer"),
        row("query access=", "/ws/admin/chat/", user("1", true)).query(format!("access={staff}")),
        row(
            "query with other params",
            "/ws/admin/chat/",
            user("1", true),
        )
        .query(format!("x=1&token={staff}&y=2")),
        row("jwt cookie", "/ws/admin/chat/", user("1", true))
            .header("Cookie", format!("theme=dark; access_token={staff}")),
        row(
            "subprotocol wins over query",
            "/ws/admin/chat/",
            Want::Close(4403),
        )
        .header("Sec-WebSocket-Protocol", format!("bearer, {plain}"))
        .query(format!("token={staff}")),
        row("oversized token", "/ws/admin/chat/", Want::Close(4401))
            .query(format!("token={}", "a".repeat(9000))),
        // origins
        row("allowed origin", "/ws/admin/chat/", user("1", true))
            .token(Tok::Staff)
            .header("Origin", "https://app.example.com"),
        row("localhost any port", "/ws/admin/chat/", user("1", true))
            .token(Tok::Staff)
            .header("Origin", "http://localhost:5173"),
        row("bad origin", "/ws/admin/chat/", Want::Deny(403))
            .token(Tok::Staff)
            .header("Origin", "https://evil.example"),
        row(
            "bad origin on an unknown path",
            "/ws/nowhere/",
            Want::Deny(403),
        )
        .header("Origin", "https://evil.example"),
    ];
    run_rows(&auth, Host::new(Fail::Nothing), rows, |_| {});
}

#[test]
fn claims_only_access_lookup_failure_is_1013() {
    let auth = build(&claims_config());
    let rows = vec![
        row("owner lookup fails", "/ws/receipts/10/", Want::Close(1013))
            .token(Tok::Plain)
            .asked(&["access 2"]),
    ];
    run_rows(&auth, Host::new(Fail::Access), rows, |_| {});
}

#[test]
fn claims_only_principal_details() {
    let auth = build(&claims_config());
    let tok = mint(Tok::Staff);
    let query = format!("token={tok}");
    let view = HandshakeView::new("/ws/admin/chat/", &query, &[]);
    let Some(Decision::Accept(a)) = auth.decide(&view, UnixTime::from_secs(NOW)) else {
        panic!("expected accept")
    };
    let Principal::User(u) = a.principal else {
        panic!("expected a user")
    };
    assert_eq!(u.method, AuthMethod::Jwt(Carrier::Query));
    assert!(u.is_active && !u.is_superuser && !u.id.is_numeric());
    assert_eq!(u.expires_at, Some(NOW - 10 + 300));
    assert_eq!(a.deadline, Some(NOW - 10 + 300));

    let num = mint(Tok::Numeric);
    let query = format!("token={num}");
    let view = HandshakeView::new("/ws/chat/r/", &query, &[]);
    let Some(Decision::Accept(a)) = auth.decide(&view, UnixTime::from_secs(NOW)) else {
        panic!("expected accept")
    };
    assert!(a
        .principal
        .user()
        .is_some_and(|u| u.id.is_numeric() && u.id.as_str() == "7"));
    assert_eq!(a.route.index(), 0);
    assert_eq!(a.route.param("/ws/chat/r/", 0).as_deref(), Some("r"));
}

#[test]
fn subprotocol_is_echoed_even_when_closing() {
    let auth = build(&claims_config());
    let plain = mint(Tok::Plain);
    let offered = format!("bearer, {plain}");
    let headers = [("Sec-WebSocket-Protocol", offered.as_bytes())];
    let view = HandshakeView::new("/ws/admin/chat/", "", &headers);
    let hs = auth.start(&view, UnixTime::from_secs(NOW));
    assert_eq!(hs.subprotocol(), Some("bearer"));
    let d = auth.decide(&view, UnixTime::from_secs(NOW));
    assert!(
        matches!(d, Some(Decision::Close(c)) if c.close.code == CloseCode::Forbidden),
        "{d:?}"
    );
    // The close itself carries the subprotocol to echo.
    assert_eq!(d.as_ref().and_then(Decision::subprotocol), Some("bearer"));
    // So do a 4401 (garbage token) and a 4404 (no route).
    let garbage = [("Sec-WebSocket-Protocol", &b"bearer, x.y.z"[..])];
    for (path, code) in [("/ws/admin/chat/", 4401), ("/nowhere/", 4404)] {
        let d = auth
            .decide(
                &HandshakeView::new(path, "", &garbage),
                UnixTime::from_secs(NOW),
            )
            .expect("no lookups");
        assert_eq!(d.close().map(Close::code_u16), Some(code), "{path}");
        assert_eq!(d.subprotocol(), Some("bearer"), "{path}");
    }
    let none = HandshakeView::new("/ws/admin/chat/", "", &[]);
    let d = auth
        .decide(&none, UnixTime::from_secs(NOW))
        .expect("no lookups");
    assert_eq!(d.subprotocol(), None);
    // A refused origin is an HTTP refusal: nothing to echo.
    let hostile = [
        ("Origin", &b"http://evil.example"[..]),
        ("Sec-WebSocket-Protocol", offered.as_bytes()),
    ];
    let d = auth
        .decide(
            &HandshakeView::new("/ws/admin/chat/", "", &hostile),
            UnixTime::from_secs(NOW),
        )
        .expect("no lookups");
    assert_eq!((d.denied_status(), d.subprotocol()), (Some(403), None));
}

#[test]
fn leeway_extends_the_deadline() {
    let mut c = claims_config();
    c.jwt.leeway = 30;
    let auth = build(&c);
    let query = format!("token={}", mint(Tok::Staff));
    let view = HandshakeView::new("/ws/admin/chat/", &query, &[]);
    let Some(Decision::Accept(a)) = auth.decide(&view, UnixTime::from_secs(NOW)) else {
        panic!("expected accept")
    };
    assert_eq!(a.deadline, Some(NOW - 10 + 300 + 30));
}

// ---------------------------------------------------------------- directory + sessions tables

#[test]
fn directory_and_db_sessions() {
    let auth = build(&directory_config(EngineConfig::Db));
    let alice_pw = USERS[0].password;
    let bob_pw = USERS[1].password;
    let mut host = Host::new(Fail::Nothing);
    let alice = db_session(
        &mut host,
        "aliceaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "1",
        alice_pw,
        NOW + 1000,
    );
    let bob = db_session(
        &mut host,
        "bobbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "2",
        bob_pw,
        NOW + 1000,
    );
    let stale = db_session(
        &mut host,
        "staleeeeeeeeeeeeeeeeeeeeeeeeeeee",
        "1",
        "pbkdf2_sha256$old-password",
        NOW + 1000,
    );
    let expired = db_session(
        &mut host,
        "expiredddddddddddddddddddddddddd",
        "1",
        alice_pw,
        NOW,
    );
    let rows = vec![
        row(
            "staff from the directory",
            "/ws/admin/chat/",
            user("1", true),
        )
        .token(Tok::Staff)
        .asked(&["jti ", "user 1"]),
        row(
            "staff claim ignored in directory mode",
            "/ws/admin/chat/",
            Want::Close(4403),
        )
        .token(Tok::PlainClaimingStaff)
        .asked(&["jti ", "user 2"]),
        row("revoked jti", "/ws/admin/chat/", Want::Close(4401))
            .token(Tok::RevokedJti)
            .asked(&["jti "]),
        row("inactive user", "/ws/admin/chat/", Want::Close(4401))
            .token(Tok::Inactive)
            .asked(&["jti ", "user 3"]),
        row("unknown user", "/ws/admin/chat/", Want::Close(4401))
            .token(Tok::Unknown)
            .asked(&["jti ", "user 99"]),
        row(
            "unknown user on anonymous chat connects anonymously",
            "/ws/chat/a/",
            anon(),
        )
        .token(Tok::Unknown)
        .asked(&["jti ", "user 99"]),
        row(
            "expired token asks nothing",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .token(Tok::Expired),
        row("session cookie, staff", "/ws/admin/chat/", user("1", true))
            .header("Cookie", format!("sessionid={alice}"))
            .asked(&["session alice", "user 1"]),
        row(
            "session cookie, not staff",
            "/ws/admin/chat/",
            Want::Close(4403),
        )
        .header("Cookie", format!("sessionid={bob}"))
        .asked(&["session bob", "user 2"]),
        row(
            "session cookie, owner",
            "/ws/receipts/10/",
            user("2", false),
        )
        .header("Cookie", format!("csrftoken=x; sessionid={bob}"))
        .asked(&["session bob", "user 2", "access 2 Owner receipts id=10"]),
        row(
            "session hash from an old password",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .header("Cookie", format!("sessionid={stale}"))
        .asked(&["session stale", "user 1"]),
        row("expired session row", "/ws/admin/chat/", Want::Close(4401))
            .header("Cookie", format!("sessionid={expired}"))
            .asked(&["session expired"]),
        row("unknown session key", "/ws/admin/chat/", Want::Close(4401))
            .header("Cookie", "sessionid=nosuchsessionkeynosuchsessionkey")
            .asked(&["session nosuch"]),
        row(
            "unknown session key on chat is anonymous",
            "/ws/chat/a/",
            anon(),
        )
        .header("Cookie", "sessionid=nosuchsessionkeynosuchsessionkey")
        .asked(&["session nosuch"]),
        row(
            "short session key is no session",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .header("Cookie", "sessionid=short"),
        row(
            "session only in the second Cookie header",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .header("Cookie", "theme=dark")
        .header("Cookie", format!("sessionid={alice}")),
        row(
            "token carrier wins over the session",
            "/ws/admin/chat/",
            Want::Close(4403),
        )
        .token(Tok::Plain)
        .header("Cookie", format!("sessionid={alice}"))
        .asked(&["jti ", "user 2"]),
    ];
    run_rows(&auth, host, rows, |_| {});
}

#[test]
fn directory_session_principal_has_no_deadline() {
    let auth = build(&directory_config(EngineConfig::Db));
    let mut host = Host::new(Fail::Nothing);
    let key = db_session(
        &mut host,
        "aliceaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "1",
        USERS[0].password,
        NOW + 1000,
    );
    let cookie = format!("sessionid={key}");
    let headers = [("cookie", cookie.as_bytes())];
    let view = HandshakeView::new("/ws/logs/", "", &headers);
    let Decision::Accept(a) = drive(&auth, &host, &view, NOW) else {
        panic!("expected accept")
    };
    let u = a.principal.user().expect("user");
    assert_eq!(u.method, AuthMethod::Session);
    assert_eq!(u.expires_at, None);
    assert_eq!(a.deadline, None);
    assert!(u.id.is_numeric());
}

#[test]
fn lookup_failures_close_with_1013() {
    let auth = build(&directory_config(EngineConfig::Db));
    for (fail, path, asked) in [
        (Fail::Jti, "/ws/admin/chat/", &["jti "][..]),
        (Fail::User, "/ws/admin/chat/", &["jti ", "user 1"][..]),
        (
            Fail::User,
            "/ws/chat/anonymous-route-too/",
            &["jti ", "user 1"][..],
        ),
    ] {
        let rows = vec![row("lookup failure", path, Want::Close(1013))
            .token(Tok::Staff)
            .asked(asked)];
        run_rows(&auth, Host::new(fail), rows, |_| {});
    }
    let mut host = Host::new(Fail::Session);
    let key = db_session(
        &mut host,
        "aliceaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "1",
        USERS[0].password,
        NOW + 1000,
    );
    let rows = vec![row(
        "session lookup failure",
        "/ws/admin/chat/",
        Want::Close(1013),
    )
    .header("Cookie", format!("sessionid={key}"))
    .asked(&["session "])];
    run_rows(&auth, host, rows, |_| {});
}

#[test]
fn password_claim_revocation() {
    let mut c = directory_config(EngineConfig::Db);
    c.users.check_revoked_jti = false;
    c.users.check_password_claim = true;
    let auth = build(&c);
    // md5("pbkdf2_sha256$600000$salt$alicehash").hexdigest().upper(), computed with Python's hashlib.
    let current = "15F37C359F084FB15F8560C94C39127B";
    let mint_with = |hash: &str| {
        let extra = [(
            "hash_password",
            ClaimValue::Str(InlineStr::new(hash).expect("short")),
        )];
        verifier(SECRET).mint(
            &MintRequest {
                user_id: ClaimValue::Str(InlineStr::new("1").expect("short")),
                lifetime: 300,
                jti: JTI_OK,
                extra: &extra,
            },
            NOW - 10,
        )
    };
    let rows = vec![
        row("current password hash", "/ws/admin/chat/", user("1", true))
            .query(format!("token={}", mint_with(current)))
            .asked(&["user 1"]),
        row("password changed", "/ws/admin/chat/", Want::Close(4401))
            .query(format!(
                "token={}",
                mint_with("00000000000000000000000000000000")
            ))
            .asked(&["user 1"]),
        row("no revoke claim", "/ws/admin/chat/", Want::Close(4401))
            .token(Tok::Staff)
            .asked(&["user 1"]),
    ];
    run_rows(&auth, Host::new(Fail::Nothing), rows, |_| {});
}

#[test]
fn signed_cookie_sessions() {
    let auth = build(&directory_config(EngineConfig::SignedCookies));
    let good = signed_session("1", USERS[0].password, NOW - 60);
    let old = signed_session("1", USERS[0].password, NOW - 1_209_601);
    let mut tampered = signed_session("2", USERS[1].password, NOW - 60);
    tampered.push('x');
    let rows = vec![
        row("signed cookie, staff", "/ws/admin/chat/", user("1", true))
            .header("Cookie", format!("sessionid={good}"))
            .asked(&["user 1"]),
        row(
            "signed cookie older than SESSION_COOKIE_AGE",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .header("Cookie", format!("sessionid={old}")),
        row(
            "tampered signed cookie",
            "/ws/admin/chat/",
            Want::Close(4401),
        )
        .header("Cookie", format!("sessionid={tampered}")),
        row("tampered signed cookie on chat", "/ws/chat/x/", anon())
            .header("Cookie", format!("sessionid={tampered}")),
    ];
    run_rows(&auth, Host::new(Fail::Nothing), rows, |_| {});
}

// ---------------------------------------------------------------- open connections

fn msg(kind: &str, token: &str) -> Vec<u8> {
    format!(r#"{{"type":"{kind}","token":"{token}"}}"#).into_bytes()
}

fn open(auth: &Authenticator, path: &str, query: &str) -> (Connection, Decision) {
    let view = HandshakeView::new(path, query, &[]);
    let d = auth
        .decide(&view, UnixTime::from_secs(NOW))
        .expect("no lookups in claims mode");
    (
        Connection::new(auth.clone(), &d, path).expect("accepting decision"),
        d,
    )
}

fn expect_close(a: MessageAction, code: CloseCode, token: &str) {
    match a {
        MessageAction::Close(c) => {
            assert_eq!(c.code, code, "reason {:?}", c.reason);
            assert!(!c.reason.as_str().contains(token));
            assert!(c.reason.len() <= 123);
        }
        other => panic!("expected close {code:?}, got {other:?}"),
    }
}

#[test]
fn first_message_auth() {
    let auth = build(&claims_config());
    let (mut conn, d) = open(&auth, "/ws/logs/", "");
    assert!(matches!(d, Decision::AwaitFirstMessage(w) if w.deadline == NOW + 10));
    assert_eq!(conn.state(), ConnState::AwaitingAuth);
    assert_eq!(conn.poll_timeout(), Some(NOW + 10));
    assert!(conn.principal().is_anonymous());
    let staff = mint(Tok::Staff);
    let m = msg("auth", &staff);
    let a = conn.handle_message(&m, UnixTime::from_secs(NOW + 1));
    assert!(
        matches!(a, MessageAction::Authenticated { principal: Principal::User(ref u) } if u.id.as_str() == "1"),
        "{a:?}"
    );
    assert_eq!(conn.state(), ConnState::Open);
    assert_eq!(conn.principal().user().map(|u| u.id.as_str()), Some("1"));
    assert_eq!(
        conn.principal().user().map(|u| u.method),
        Some(AuthMethod::Jwt(Carrier::Message))
    );
    assert_eq!(conn.poll_timeout(), Some(NOW - 10 + 300));
    // Application messages pass through afterwards.
    assert!(matches!(
        conn.handle_message(
            br#"{"type":"chat","text":"hi"}"#,
            UnixTime::from_secs(NOW + 2)
        ),
        MessageAction::Deliver
    ));
}

#[test]
fn first_message_deadline_is_4408() {
    let auth = build(&claims_config());
    let (mut conn, _) = open(&auth, "/ws/logs/", "");
    assert_eq!(conn.handle_timeout(UnixTime::from_secs(NOW + 9)), None);
    let c = conn
        .handle_timeout(UnixTime::from_secs(NOW + 10))
        .expect("deadline reached");
    assert_eq!(c.code, CloseCode::AuthTimeout);
    assert_eq!(conn.state(), ConnState::Closed);
    assert_eq!(conn.poll_timeout(), None);
    // A late auth message changes nothing.
    let staff = mint(Tok::Staff);
    assert!(matches!(
        conn.handle_message(&msg("auth", &staff), UnixTime::from_secs(NOW + 11)),
        MessageAction::Ignored
    ));
    assert_eq!(conn.state(), ConnState::Closed);
}

#[test]
fn first_message_rows() {
    let auth = build(&claims_config());
    let staff = mint(Tok::Staff);
    let plain = mint(Tok::Plain);
    let expired = mint(Tok::Expired);
    let rows: Vec<(&str, Vec<u8>, CloseCode)> = vec![
        (
            "application message first",
            b"hello".to_vec(),
            CloseCode::BadMessage,
        ),
        (
            "auth without token",
            br#"{"type":"auth"}"#.to_vec(),
            CloseCode::BadMessage,
        ),
        (
            "broken auth JSON",
            format!(r#"{{"type":"auth","token":"{staff}""#).into_bytes(),
            CloseCode::BadMessage,
        ),
        (
            "refresh before auth",
            msg("refresh", &staff),
            CloseCode::BadMessage,
        ),
        ("not staff", msg("auth", &plain), CloseCode::Forbidden),
        (
            "expired token",
            msg("auth", &expired),
            CloseCode::Unauthorized,
        ),
        (
            "garbage token",
            msg("auth", "garbage"),
            CloseCode::Unauthorized,
        ),
    ];
    for (name, m, code) in rows {
        let (mut conn, _) = open(&auth, "/ws/logs/", "");
        let a = conn.handle_message(&m, UnixTime::from_secs(NOW + 1));
        expect_close(a, code, &staff);
        assert_eq!(conn.state(), ConnState::Closed, "{name}");
    }
}

#[test]
fn expiry_and_refresh() {
    let auth = build(&claims_config());
    let first = mint(Tok::Staff);
    let (mut conn, _) = open(&auth, "/ws/admin/chat/", &format!("token={first}"));
    let exp = NOW - 10 + 300;
    assert_eq!(conn.poll_timeout(), Some(exp));
    assert_eq!(conn.handle_timeout(UnixTime::from_secs(exp - 1)), None);

    // A fresh token for the same user extends the deadline.
    let later = verifier(SECRET).mint(
        &MintRequest {
            user_id: ClaimValue::Str(InlineStr::new("1").expect("short")),
            lifetime: 300,
            jti: "11111111111111111111111111111111",
            extra: &[("is_staff", ClaimValue::Bool(true))],
        },
        NOW + 200,
    );
    let m = msg("refresh", &later);
    let a = conn.handle_message(&m, UnixTime::from_secs(NOW + 200));
    assert!(
        matches!(a, MessageAction::Extended { deadline: Some(d) } if d == NOW + 500),
        "{a:?}"
    );
    assert_eq!(conn.poll_timeout(), Some(NOW + 500));
    assert_eq!(conn.handle_timeout(UnixTime::from_secs(exp)), None);

    // Expiry closes with 4401 "token expired".
    let c = conn
        .handle_timeout(UnixTime::from_secs(NOW + 500))
        .expect("expired");
    assert_eq!(c.code, CloseCode::Unauthorized);
    assert_eq!(c.reason.as_str(), "token expired");
}

#[test]
fn refresh_rows() {
    let auth = build(&claims_config());
    let staff = mint(Tok::Staff);
    let plain = mint(Tok::Plain);
    let rows: Vec<(&str, Vec<u8>, Option<CloseCode>)> = vec![
        (
            "refresh as another user",
            msg("refresh", &plain),
            Some(CloseCode::Unauthorized),
        ),
        (
            "refresh with garbage",
            msg("refresh", "garbage"),
            Some(CloseCode::Unauthorized),
        ),
        (
            "refresh with an expired token",
            msg("refresh", &mint(Tok::Expired)),
            Some(CloseCode::Unauthorized),
        ),
        (
            "refresh with a foreign signature",
            msg("refresh", &mint(Tok::BadSignature)),
            Some(CloseCode::Unauthorized),
        ),
        (
            "refresh without token",
            br#"{"type":"refresh"}"#.to_vec(),
            Some(CloseCode::BadMessage),
        ),
        (
            "refresh with a numeric token",
            br#"{"type":"refresh","token":1}"#.to_vec(),
            Some(CloseCode::BadMessage),
        ),
        ("refresh, same user", msg("refresh", &staff), None),
        (
            "chat message",
            br#"{"type":"chat","text":"refresh"}"#.to_vec(),
            None,
        ),
        ("plain text", b"hello".to_vec(), None),
    ];
    for (name, m, want) in rows {
        let (mut conn, _) = open(&auth, "/ws/admin/chat/", &format!("token={staff}"));
        let a = conn.handle_message(&m, UnixTime::from_secs(NOW + 1));
        match (a, want) {
            (MessageAction::Close(c), Some(code)) => {
                assert_eq!(c.code, code, "{name}: {:?}", c.reason);
                assert!(!c.reason.as_str().contains(&staff) && !c.reason.as_str().contains(&plain));
            }
            (MessageAction::Extended { .. } | MessageAction::Deliver, None) => {}
            (a, w) => panic!("{name}: got {a:?}, want {w:?}"),
        }
    }
}

#[test]
fn refresh_with_host_steps() {
    let auth = build(&directory_config(EngineConfig::Db));
    let host = Host::new(Fail::Nothing);
    let staff = mint(Tok::Staff);
    let query = format!("token={staff}");
    let view = HandshakeView::new("/ws/admin/chat/", &query, &[]);
    let d = drive(&auth, &host, &view, NOW);
    let mut conn = Connection::new(auth.clone(), &d, "/ws/admin/chat/").expect("accepted");

    for (tok, want) in [
        (Tok::Staff, None),
        (Tok::Plain, Some(CloseCode::Unauthorized)),
    ] {
        let m = msg("refresh", &mint(tok));
        let mut c2 = conn.clone();
        let target = if want.is_none() { &mut conn } else { &mut c2 };
        let decision = match target.handle_message(&m, UnixTime::from_secs(NOW + 5)) {
            MessageAction::Steps(mut hs) => hs.drive(|req| host.answer(req)),
            other => panic!("expected host steps, got {other:?}"),
        };
        let closed = match target.finish(&decision, UnixTime::from_secs(NOW + 5)) {
            MessageAction::Close(c) => Some(c.code),
            MessageAction::Extended { .. } => None,
            other => panic!("{other:?}"),
        };
        assert_eq!(closed, want, "{tok:?}");
    }
    assert_eq!(conn.state(), ConnState::Open);
}

#[test]
fn owner_route_rechecked_on_first_message() {
    let mut c = claims_config();
    for r in &mut c.routes {
        if r.name == "receipts" {
            r.auth_message = Some(true);
        }
    }
    let auth = build(&c);
    let host = Host::new(Fail::Nothing);
    for (tok, want) in [(Tok::Plain, None), (Tok::Staff, Some(CloseCode::Forbidden))] {
        let (mut conn, _) = open(&auth, "/ws/receipts/10/", "");
        let m = msg("auth", &mint(tok));
        let decision = match conn.handle_message(&m, UnixTime::from_secs(NOW + 1)) {
            MessageAction::Steps(mut hs) => loop {
                let answer = match hs.poll() {
                    Step::Done(d) => break d,
                    Step::Lookup(req) => {
                        assert!(
                            matches!(req, Request::Access { ref value, .. } if value == "10"),
                            "{req:?}"
                        );
                        host.answer(&req)
                    }
                };
                hs.answer(answer);
            },
            other => panic!("expected an access step, got {other:?}"),
        };
        let got = match conn.finish(&decision, UnixTime::from_secs(NOW + 1)) {
            MessageAction::Close(c) => Some(c.code),
            MessageAction::Authenticated { .. } => None,
            other => panic!("{other:?}"),
        };
        assert_eq!(got, want, "{tok:?}");
    }
}

// ---------------------------------------------------------------- rate limiting

/// A shared rate store answering the core's rate steps as a host would
/// (compare-and-set on a map); counts how often each step was asked.
#[derive(Default)]
struct RateStore {
    states: RefCell<std::collections::HashMap<std::net::IpAddr, RateState>>,
    reads: Cell<usize>,
    commits: Cell<usize>,
}

impl RateStore {
    fn answer(&self, req: &Request) -> Answer<'static> {
        match req {
            Request::Rate { peer } => {
                self.reads.set(self.reads.get() + 1);
                Answer::Rate(self.states.borrow().get(peer).copied().unwrap_or_default())
            }
            Request::RateCommit {
                peer,
                expected,
                new,
                ..
            } => {
                self.commits.set(self.commits.get() + 1);
                let mut states = self.states.borrow_mut();
                let current = states.get(peer).copied().unwrap_or_default();
                if current == *expected {
                    states.insert(*peer, *new);
                    Answer::Stored
                } else {
                    Answer::Rate(current)
                }
            }
            other => panic!("unexpected request {other:?}"),
        }
    }
}

fn attempt(
    auth: &Authenticator,
    store: &RateStore,
    peer: [u8; 4],
    query: &str,
    ms: i64,
) -> Decision {
    let view = HandshakeView::new("/ws/admin/chat/", query, &[]).with_peer(peer.into());
    auth.start(&view, UnixTime::from_millis(ms))
        .drive(|req| store.answer(req))
}

#[test]
fn rate_limit_is_4429() {
    let mut c = claims_config();
    c.limits = LimitsConfig {
        rate_limit: Some(RateLimitConfig {
            requests: 1,
            period_secs: 60,
            burst: 2,
            ..RateLimitConfig::default()
        }),
        ..LimitsConfig::default()
    };
    let auth = build(&c);
    let store = RateStore::default();
    let staff = format!("token={}", mint(Tok::Staff));
    let t = NOW * 1000;
    let code = |d: &Decision| d.close().map(Close::code_u16);
    assert!(matches!(
        attempt(&auth, &store, [10, 0, 0, 1], &staff, t),
        Decision::Accept(_)
    ));
    assert!(matches!(
        attempt(&auth, &store, [10, 0, 0, 1], &staff, t + 1),
        Decision::Accept(_)
    ));
    let limited = attempt(&auth, &store, [10, 0, 0, 1], &staff, t + 2);
    let Decision::Close(close) = limited else {
        panic!("expected 4429, got {limited:?}")
    };
    assert_eq!(close.close.code.as_u16(), 4429);
    assert_eq!(close.close.retry_after, Some(60));
    // Another peer is not affected.
    assert!(matches!(
        attempt(&auth, &store, [10, 0, 0, 2], &staff, t + 3),
        Decision::Accept(_)
    ));
    // A minute later one more attempt is allowed.
    assert!(matches!(
        attempt(&auth, &store, [10, 0, 0, 1], &staff, t + 60_000),
        Decision::Accept(_)
    ));
    assert_eq!(
        code(&attempt(&auth, &store, [10, 0, 0, 1], &staff, t + 60_001)),
        Some(4429)
    );
    // Without a peer address the host has nothing to key on: no rate step.
    let view = HandshakeView::new("/ws/admin/chat/", &staff, &[]);
    assert!(matches!(
        auth.decide(&view, UnixTime::from_millis(t + 2)),
        Some(Decision::Accept(_))
    ));
    // Without a configured limit nothing is asked and nothing is limited.
    let unlimited = build(&claims_config());
    let quiet = RateStore::default();
    assert!((0..100).all(|i| matches!(
        attempt(&unlimited, &quiet, [10, 0, 0, 1], &staff, t + i),
        Decision::Accept(_)
    )));
    assert_eq!(quiet.reads.get() + quiet.commits.get(), 0);
}

#[test]
fn rate_commit_conflicts_are_retried_then_limited() {
    let mut c = claims_config();
    c.limits.rate_limit = Some(RateLimitConfig {
        requests: 100,
        period_secs: 1,
        burst: 100,
        ..RateLimitConfig::default()
    });
    let auth = build(&c);
    let staff = format!("token={}", mint(Tok::Staff));
    let view = HandshakeView::new("/ws/admin/chat/", &staff, &[]).with_peer([10, 0, 0, 9].into());
    // Another gateway's attempt lands between our read and our commit, once:
    // the core re-decides on the state found and commits again.
    let mut raced = false;
    let mut seen = Vec::new();
    let d = auth.start(&view, UnixTime::from_secs(NOW)).drive(|req| {
        seen.push(format!("{req:?}"));
        match req {
            Request::Rate { .. } => Answer::Rate(RateState::default()),
            Request::RateCommit { .. } if !raced => {
                raced = true;
                Answer::Rate(RateState {
                    tat_ms: NOW * 1000 + 10,
                })
            }
            Request::RateCommit { expected, .. } => {
                assert_eq!(
                    expected.tat_ms,
                    NOW * 1000 + 10,
                    "re-decided on the state found"
                );
                Answer::Stored
            }
            other => panic!("{other:?}"),
        }
    });
    assert!(matches!(d, Decision::Accept(_)), "{d:?} after {seen:?}");
    // A state that changes under every commit is a burst from this peer: 4429, never a hang.
    let d = auth
        .start(&view, UnixTime::from_secs(NOW))
        .drive(|req| match req {
            Request::Rate { .. } => Answer::Rate(RateState::default()),
            Request::RateCommit { expected, .. } => Answer::Rate(RateState {
                tat_ms: expected.tat_ms + 1,
            }),
            other => panic!("{other:?}"),
        });
    assert_eq!(d.close().map(Close::code_u16), Some(4429));
}

#[test]
fn a_limited_flood_costs_no_hmac() {
    let mut c = claims_config();
    c.limits.rate_limit = Some(RateLimitConfig {
        requests: 1,
        period_secs: 60,
        burst: 3,
        ..RateLimitConfig::default()
    });
    let auth = build(&c);
    let store = RateStore::default();
    let mut forged = mint(Tok::Staff);
    forged.pop();
    forged.push('A');
    let query = format!("token={forged}");
    let t = NOW * 1000;
    let before = wsauth_core::counters::token_macs();
    let mut codes = Vec::new();
    for i in 0..1000 {
        codes.push(
            attempt(&auth, &store, [10, 1, 1, 1], &query, t + i)
                .close()
                .map(Close::code_u16),
        );
    }
    let macs = wsauth_core::counters::token_macs() - before;
    // The burst is verified (and refused: bad signature); the rest of the flood never reaches the HMAC.
    assert_eq!(codes.iter().filter(|c| **c == Some(4401)).count(), 3);
    assert_eq!(codes.iter().filter(|c| **c == Some(4429)).count(), 997);
    assert!(
        macs <= 3,
        "{macs} HMACs for a flood of 1000 over a burst of 3"
    );
    assert!(macs >= 1, "the counter counts");
}

#[test]
fn authorize_applies_another_route_without_verifying_again() {
    let auth = build(&directory_config(EngineConfig::Db));
    let host = Host::new(Fail::Nothing);
    // Decided once on an anonymous route (the user is looked up once)...
    let rows: [(Tok, &str, Option<u16>); 6] = [
        (Tok::Staff, "/ws/admin/chat/", None),
        (Tok::Plain, "/ws/admin/chat/", Some(4403)),
        // receipts: 10 belongs to user 2, 11 to user 1.
        (Tok::Plain, "/ws/receipts/10/", None),
        (Tok::Plain, "/ws/receipts/11/", Some(4403)),
        (Tok::Staff, "/nowhere/", Some(4404)),
        (Tok::Expired, "/ws/admin/chat/", Some(4401)),
    ];
    for (tok, path, want) in rows {
        let query = format!("token={}", mint(tok));
        let view = HandshakeView::new("/ws/chat/lobby/", &query, &[]);
        let mut first = auth.start(&view, UnixTime::from_secs(NOW));
        let before = host.asked.borrow().len();
        first.drive(|req| host.answer(req));
        let users_asked = host.asked.borrow()[before..]
            .iter()
            .filter(|a| a.starts_with("user"))
            .count();
        // ...then each endpoint's own requirement, with no second user lookup
        // and no HMAC (an access lookup only where the route asks one).
        let macs = wsauth_core::counters::token_macs();
        let mut again = first.authorize(path, UnixTime::from_secs(NOW));
        let mid = host.asked.borrow().len();
        let d = again.drive(|req| host.answer(req));
        assert_eq!(wsauth_core::counters::token_macs(), macs, "{tok:?} {path}");
        assert!(
            host.asked.borrow()[mid..]
                .iter()
                .all(|a| a.starts_with("access")),
            "{tok:?} {path}: {:?}",
            &host.asked.borrow()[mid..]
        );
        assert!(users_asked <= 1);
        assert_eq!(
            d.close().map(Close::code_u16),
            want,
            "{tok:?} {path}: {d:?}"
        );
    }
    // A refused credential is anonymous again on an anonymous route.
    let query = format!("token={}", mint(Tok::Expired));
    let view = HandshakeView::new("/ws/admin/chat/", &query, &[]);
    let mut refused = auth.start(&view, UnixTime::from_secs(NOW));
    refused.drive(|req| host.answer(req));
    let d = refused
        .authorize("/ws/chat/lobby/", UnixTime::from_secs(NOW))
        .drive(|req| host.answer(req));
    assert!(
        matches!(d, Decision::Accept(a) if a.principal.is_anonymous()),
        "{d:?}"
    );
}
