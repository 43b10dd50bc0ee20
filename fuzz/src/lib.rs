//! What the wsauth fuzz targets share: the fixed clock, the key, and the
//! verifier profiles (the vectors' SimpleJWT profiles), so that seeds made
//! from `vectors.json` mean the same thing in every target.

use std::sync::OnceLock;
use wsauth_core::{Algorithm, JwtSettings, SecretKey, TokenVerifier};

/// The token fixtures and the `jsonwebtoken` reference of the benchmarks
/// (`wsauth-benches`' library), shared by source so the fuzz build does not
/// pull in that package's load-test dependencies.
#[path = "../../benches/src/lib.rs"]
pub mod fixtures;

pub use fixtures::{sign_token, OTHER_SECRET, SECRET};

/// The vectors' `now`.
pub const NOW: i64 = 1_750_000_000;

/// The vectors' `SECRET_KEY_FALLBACKS` entry.
pub const OLD_SECRET: &str = "vectors-OLD-secret-key-9876543210-zyxwvutsrqponmlkjihgfedcba-ZYXWV";

/// The SimpleJWT profiles of `vectors.json`, in this order (a seed's first
/// byte selects one modulo [`PROFILES`]): `jwt_default`, `jwt_leeway`,
/// `jwt_aud_iss`, `jwt_custom_claims`, `jwt_hs512`.
pub const PROFILES: usize = 5;

/// The settings of profile `i % PROFILES`.
pub fn profile_settings(i: usize) -> JwtSettings {
    let mut s = JwtSettings::default();
    match i % PROFILES {
        1 => s.leeway = 60,
        2 => {
            s.audience = Some("vectors-audience".into());
            s.issuer = Some("https://issuer.vectors.example".into());
        }
        3 => {
            s.user_id_claim = "uid".into();
            s.token_type_claim = "kind".into();
            s.jti_claim = "tid".into();
        }
        4 => s.algorithm = Algorithm::Hs512,
        _ => {}
    }
    s
}

/// The verifier of profile `i % PROFILES`, built once.
pub fn verifier(i: usize) -> &'static TokenVerifier {
    static CELLS: [OnceLock<TokenVerifier>; PROFILES] = [const { OnceLock::new() }; PROFILES];
    let i = i % PROFILES;
    CELLS[i].get_or_init(|| {
        TokenVerifier::new(profile_settings(i), SecretKey::from(SECRET))
            .expect("the fuzz key is a valid HMAC key")
    })
}

/// Splits `data` at the first NUL byte (the whole input and nothing when there is none).
pub fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

// ------------------------------------------------------------------ pipeline

use arbitrary::Arbitrary;
use wsauth_core::{django::signing::dumps, django::session::session_auth_hash, Answer, AuthSettings, Authenticator, Carrier, ClaimValue, Close, Decision, Handshake, InlineStr, MintRequest, pipeline::origin::OriginPolicy, Request, Requirement, Route, Routes, SessionRow, django::session::SessionSettings, SessionVerifier, Step, UserRecord, UserSource, MAX_REASON_BYTES, django::session::SESSION_STORE_SALT};

/// The stored password hash of every fuzz user.
pub const PASSWORD: &str =
    "pbkdf2_sha256$1000000$vectorsaltalice$D1FQNXKZVYteqDphLcprZrFNtxUZA8Kh/pkuudd4JKU=";

/// A session key that passes Django's `_validate_session_key`.
pub const SESSION_KEY: &str = "b21d42df2d34637a267713f078513ebd";

/// Paths that hit each route, then some that hit none.
pub const PATHS: &[&str] = &[
    "/ws/public/",
    "/ws/chat/lobby/",
    "/ws/admin/chat/",
    "/ws/superuser/",
    "/ws/docs/42/",
    "/ws/teams/7/",
    "/ws/chat/%C3%A9t%C3%A9/",
    "/ws/nowhere/",
    "/",
];

/// The routes every fuzzed authenticator serves (one of each requirement).
pub fn routes() -> Routes {
    let r = |name, pattern, req| Route::new(name, pattern, req).expect("valid route");
    Routes::new(vec![
        r("public", "/ws/public/", Requirement::Anonymous).auth_message(Some(true)),
        r("chat", "/ws/chat/<room>/", Requirement::Authenticated).auth_message(Some(true)),
        r("admin", "/ws/admin/chat/", Requirement::Staff),
        r("superuser", "/ws/superuser/", Requirement::Superuser),
        r(
            "docs",
            "/ws/docs/<int:doc>/",
            Requirement::Owner("doc".into()),
        ),
        r(
            "teams",
            "/ws/teams/<team>/",
            Requirement::Member("team".into()),
        )
        .auth_message(Some(true)),
    ])
}

/// Authenticator configurations, selected by `i % AUTH_CONFIGS`:
/// 0 claims only, defaults; 1 user directory + db sessions + revocation and
/// password-claim checks; 2 claims only, strict origin allowlist, message auth everywhere.
pub const AUTH_CONFIGS: usize = 3;

/// The authenticator of configuration `i % AUTH_CONFIGS`, built once.
pub fn authenticator(i: usize) -> &'static Authenticator {
    static CELLS: [OnceLock<Authenticator>; AUTH_CONFIGS] =
        [const { OnceLock::new() }; AUTH_CONFIGS];
    let i = i % AUTH_CONFIGS;
    CELLS[i].get_or_init(|| {
        let tokens =
            TokenVerifier::new(JwtSettings::default(), SecretKey::from(SECRET)).expect("key");
        let auth = Authenticator::new(tokens, routes());
        match i {
            1 => {
                let sessions = SessionVerifier::new(
                    SessionSettings::default(),
                    SecretKey::from(SECRET),
                    vec![],
                )
                .expect("key");
                let settings = AuthSettings {
                    users: UserSource::Directory,
                    check_revoked_jti: true,
                    check_password_claim: true,
                    ..AuthSettings::default()
                };
                auth.with_sessions(sessions).with_settings(settings)
            }
            2 => {
                let mut settings = AuthSettings::default();
                settings.credentials.carriers.push(Carrier::Message);
                let origins =
                    OriginPolicy::allowlist(&["https://app.example.com"], true).expect("pattern");
                auth.with_settings(settings).with_origins(origins)
            }
            _ => auth,
        }
    })
}

/// A token for user `user_id` minted at `now` with `lifetime`, carrying the flags.
pub fn token(user_id: ClaimValue, staff: bool, superuser: bool, now: i64, lifetime: i64) -> String {
    let extra = [
        ("is_staff", ClaimValue::Bool(staff)),
        ("is_superuser", ClaimValue::Bool(superuser)),
    ];
    let req = MintRequest {
        user_id,
        lifetime,
        jti: "5deaf7cb90ae4aa19d99bbc485d1d10b",
        extra: &extra,
    };
    verifier(0).mint(&req, now)
}

/// `ClaimValue::Str` of `s` (cut to fit).
pub fn str_claim(s: &str) -> ClaimValue {
    ClaimValue::Str(InlineStr::new(s).unwrap_or_else(|| InlineStr::new("").expect("empty fits")))
}

/// The user primary keys the fuzz hosts know.
pub const PKS: [&str; 5] = ["0", "1", "2", "3", "4"];

/// [`session_data`] at [`NOW`] for each of [`PKS`], built once.
pub fn session_rows() -> &'static [String] {
    static ROWS: OnceLock<Vec<String>> = OnceLock::new();
    ROWS.get_or_init(|| PKS.iter().map(|pk| session_data(pk, NOW)).collect())
}

/// The `session_data` of a session logged in at `now - 3600` for user `pk`
/// (db format, compressed as `SessionBase.encode` writes it).
pub fn session_data(pk: &str, now: i64) -> String {
    let json = format!(
        r#"{{"_auth_user_id":"{pk}","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":"{}"}}"#,
        session_auth_hash(PASSWORD, &SecretKey::from(SECRET))
    );
    dumps(
        json.as_bytes(),
        &SecretKey::from(SECRET),
        SESSION_STORE_SALT,
        true,
        now - 3600,
    )
}

/// What every decision must satisfy, whatever the input: a close reason fits
/// a close frame and never carries a secret, and an accepted principal meets
/// its route's requirement.
pub fn check_decision(auth: &Authenticator, d: &Decision, secrets: &[&str], now: i64) {
    if let Decision::Close(c) = d {
        check_close(&c.close, secrets);
    }
    if let Decision::Accept(a) = d {
        let route = auth
            .routes()
            .get(a.route.index())
            .expect("accepted on a known route");
        let user = a.principal.user();
        match route.requirement() {
            Requirement::Anonymous => {}
            Requirement::Staff => assert!(
                user.is_some_and(|u| u.is_staff),
                "non-staff on a staff route"
            ),
            Requirement::Superuser => {
                assert!(
                    user.is_some_and(|u| u.is_superuser),
                    "non-superuser on a superuser route"
                )
            }
            _ => assert!(user.is_some(), "anonymous on an authenticated route"),
        }
        if let Some(u) = user {
            assert!(u.is_active, "inactive user accepted");
            if let Some(exp) = u.expires_at {
                assert!(exp > now, "expired credential accepted");
            }
        }
        if let Some(p) = &a.subprotocol {
            for s in secrets {
                assert!(
                    s.len() < 8 || !p.as_str().contains(s),
                    "secret echoed as subprotocol"
                );
            }
        }
    }
}

/// A close reason fits a close frame and never carries a secret.
pub fn check_close(c: &Close, secrets: &[&str]) {
    let reason = c.reason.as_str();
    assert!(
        reason.len() <= MAX_REASON_BYTES,
        "close reason of {} bytes",
        reason.len()
    );
    for s in secrets {
        assert!(
            s.len() < 8 || !reason.contains(s),
            "secret in a close reason"
        );
    }
}

/// A host's answer to whatever the handshake asks next.
#[derive(Arbitrary, Debug)]
pub enum Reply {
    /// No session row.
    SessionNone,
    /// A session row: a valid one for user `PKS[user]`, or junk; expiring in `expires_in` s.
    Session {
        /// Valid data or junk.
        valid: bool,
        /// Whose session.
        user: u8,
        /// `expire_date - now`.
        expires_in: i32,
    },
    /// No such user.
    UserNone,
    /// A user row.
    User {
        /// Index into [`PKS`].
        pk: u8,
        /// `is_active`.
        active: bool,
        /// `is_staff`.
        staff: bool,
        /// `is_superuser`.
        superuser: bool,
        /// The password the sessions and tokens were made with, or another.
        same_password: bool,
    },
    /// Revoked? / allowed? (whichever is asked).
    Bool(bool),
    /// The lookup failed.
    Failed,
}

/// Drives `hs` to its decision, answering each lookup with the next reply
/// (`Failed` once they run out). A handshake must finish within 8 polls.
pub fn drive<'r>(
    hs: &mut Handshake,
    replies: &mut impl Iterator<Item = &'r Reply>,
    now: i64,
) -> Decision {
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps <= 8, "the handshake did not finish");
        // Which yes/no question is pending, if one is.
        let revocation = match hs.poll() {
            Step::Done(d) => return d,
            Step::Lookup(Request::JtiRevoked { .. }) => true,
            Step::Lookup(_) => false,
        };
        let answer = match replies.next() {
            None | Some(Reply::Failed) => Answer::Failed,
            Some(Reply::SessionNone) => Answer::Session(None),
            Some(Reply::Session {
                valid,
                user,
                expires_in,
            }) => Answer::Session(Some(SessionRow {
                session_key: SESSION_KEY,
                session_data: if *valid {
                    &session_rows()[usize::from(*user) % PKS.len()]
                } else {
                    "e30:1uQo0O:x"
                },
                expire_date: now + i64::from(*expires_in),
            })),
            Some(Reply::UserNone) => Answer::User(None),
            Some(Reply::User {
                pk,
                active,
                staff,
                superuser,
                same_password,
            }) => Answer::User(Some(UserRecord {
                pk: PKS[usize::from(*pk) % PKS.len()],
                password: if *same_password {
                    PASSWORD
                } else {
                    "pbkdf2_sha256$1$x$y="
                },
                is_active: *active,
                is_staff: *staff,
                is_superuser: *superuser,
            })),
            Some(Reply::Bool(b)) if revocation => Answer::Revoked(*b),
            Some(Reply::Bool(b)) => Answer::Access(*b),
        };
        hs.answer(answer);
    }
}
