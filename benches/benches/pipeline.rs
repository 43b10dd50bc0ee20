//! The rest of the pipeline: Django session decoding (`signed_cookies` and a
//! db row, each followed by the `get_user` checks), one whole handshake
//! decision, and the open-connection state machine.
//!
//! Groups: `session/{signed_cookie,db_row}`, `handshake/query_token_staff`,
//! `connection/{refresh,timeout_pending,timeout_expired}`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;
use wsauth_benches::{sign_token, simplejwt_payload, Algorithm, HS256_HEADER, JTI, SECRET};
use wsauth_core::UnixTime;
use wsauth_core::{
    django::session::session_auth_hash, django::session::SessionSettings,
    django::session::SESSION_STORE_SALT, django::session::SIGNED_COOKIES_SALT,
    django::signing::dumps, Authenticator, Connection, Decision, HandshakeView, JwtSettings,
    MessageAction, Requirement, Route, Routes, SecretKey, SessionEngine, SessionRow,
    SessionVerifier, TokenVerifier, UserRecord,
};

/// The vectors' clock: these benches need no wall clock.
const NOW: i64 = 1_750_000_000;

/// alice's stored password hash (from the vectors).
const PASSWORD: &str =
    "pbkdf2_sha256$1000000$vectorsaltalice$D1FQNXKZVYteqDphLcprZrFNtxUZA8Kh/pkuudd4JKU=";

const STAFF_PATH: &str = "/ws/admin/chat/";

fn key() -> SecretKey {
    SecretKey::from(SECRET)
}

/// The session `django.contrib.auth.login()` stores, as `json.dumps` writes it.
fn session_json() -> String {
    format!(
        r#"{{"_auth_user_id":"1","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":"{}"}}"#,
        session_auth_hash(PASSWORD, &key())
    )
}

fn user() -> UserRecord<'static> {
    UserRecord {
        pk: "1",
        password: PASSWORD,
        is_active: true,
        is_staff: true,
        is_superuser: true,
    }
}

fn session(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");
    let user = user();

    let signed = SessionVerifier::new(
        SessionSettings {
            engine: SessionEngine::SignedCookies,
            ..SessionSettings::default()
        },
        key(),
        vec![],
    )
    .expect("valid key");
    // Logged in an hour ago; `SessionBase.encode` compresses.
    let cookie = dumps(
        session_json().as_bytes(),
        &key(),
        SIGNED_COOKIES_SALT,
        true,
        NOW - 3600,
    );
    let get_user = |cookie: &str| {
        let auth = signed.load_signed_cookie(cookie, NOW).ok()?;
        signed.check_user(&auth, &user).ok()
    };
    assert!(
        get_user(&cookie).is_some(),
        "the signed_cookies session must authenticate"
    );
    group.bench_function("signed_cookie", |b| b.iter(|| get_user(black_box(&cookie))));

    let db = SessionVerifier::new(SessionSettings::default(), key(), vec![]).expect("valid key");
    let data = dumps(
        session_json().as_bytes(),
        &key(),
        SESSION_STORE_SALT,
        true,
        NOW - 3600,
    );
    let row = SessionRow {
        session_key: "b21d42df2d34637a267713f078513ebd",
        session_data: &data,
        expire_date: NOW + 14 * 86_400,
    };
    let get_user = |row: &SessionRow<'_>| {
        let auth = db.load_db_row(row, NOW).ok()?;
        db.check_user(&auth, &user).ok()
    };
    assert!(get_user(&row).is_some(), "the db session must authenticate");
    group.bench_function("db_row", |b| b.iter(|| get_user(black_box(&row))));
    group.finish();
}

/// A SimpleJWT-shaped access token for user "1" carrying `"is_staff":true`
/// (claims-only configurations read flags from claims, as `TokenUser`).
fn staff_token(now: i64) -> String {
    let payload = simplejwt_payload(now, 300, JTI, r#""1""#);
    let payload = format!("{},\"is_staff\":true}}", payload.trim_end_matches('}'));
    sign_token(
        Algorithm::Hs256,
        SECRET.as_bytes(),
        HS256_HEADER.as_bytes(),
        payload.as_bytes(),
    )
}

fn authenticator() -> Authenticator {
    let tokens = TokenVerifier::new(JwtSettings::default(), key()).expect("valid key");
    let routes = Routes::new(vec![
        Route::new("chat", "/ws/chat/<room>/", Requirement::Authenticated).expect("route"),
        Route::new("admin", STAFF_PATH, Requirement::Staff).expect("route"),
    ]);
    Authenticator::new(tokens, routes)
}

fn handshake(c: &mut Criterion) {
    let auth = authenticator();
    let query = format!("token={}", staff_token(NOW));
    // What a browser sends with `new WebSocket(url)`.
    let headers: [(&str, &[u8]); 6] = [
        ("host", b"localhost:8000"),
        ("upgrade", b"websocket"),
        ("connection", b"Upgrade"),
        ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", b"13"),
        ("origin", b"http://localhost:8000"),
    ];
    let view = HandshakeView::new(STAFF_PATH, &query, &headers);
    let decision = auth.decide(&view, UnixTime::from_secs(NOW));
    assert!(
        matches!(decision, Some(Decision::Accept(_))),
        "the staff token must be accepted without lookups: {decision:?}"
    );
    let mut group = c.benchmark_group("handshake");
    group.bench_function("query_token_staff", |b| {
        b.iter(|| auth.decide(black_box(&view), black_box(UnixTime::from_secs(NOW))))
    });
    group.finish();
}

fn connection(c: &mut Criterion) {
    let auth = authenticator();
    let query = format!("token={}", staff_token(NOW));
    let view = HandshakeView::new(STAFF_PATH, &query, &[]);
    let decision = auth
        .decide(&view, UnixTime::from_secs(NOW))
        .expect("no lookups");
    let conn = Connection::new(auth.clone(), &decision, STAFF_PATH).expect("accepted");
    let deadline = conn
        .poll_timeout()
        .expect("a token connection has a deadline");

    // A refresh with a newer token for the same user, a minute later.
    let refresh = format!(
        r#"{{"type":"refresh","token":"{}"}}"#,
        staff_token(NOW + 60)
    );
    let later = UnixTime::from_secs(NOW + 60);
    let mut open = conn.clone();
    assert!(matches!(
        open.handle_message(refresh.as_bytes(), later),
        MessageAction::Extended { .. }
    ));
    assert!(
        open.poll_timeout() > Some(deadline),
        "the refresh must extend the deadline"
    );

    let mut group = c.benchmark_group("connection");
    group.bench_function("refresh", |b| {
        b.iter(|| {
            matches!(
                open.handle_message(black_box(refresh.as_bytes()), later),
                MessageAction::Extended { .. }
            )
        })
    });
    let mut pending = conn.clone();
    group.bench_function("timeout_pending", |b| {
        b.iter(|| pending.handle_timeout(UnixTime::from_secs(black_box(NOW + 1))))
    });
    assert!(
        conn.clone()
            .handle_timeout(UnixTime::from_secs(deadline))
            .is_some(),
        "expiry must close"
    );
    group.bench_function("timeout_expired", |b| {
        b.iter_batched(
            || conn.clone(),
            |mut c| c.handle_timeout(UnixTime::from_secs(black_box(deadline))),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, session, handshake, connection);
criterion_main!(benches);
