//! Properties of the decision half: arbitrary handshakes, host answers and
//! messages never panic; close reasons are valid UTF-8, at most 123 bytes,
//! and never contain the token; the claims-only hot path does not allocate.

use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use wsauth_core::UnixTime;
use wsauth_core::{
    config::CredentialsConfig, config::EngineConfig, config::JwtConfig, config::SessionConfig,
    config::UsersConfig, pipeline::origin::OriginPolicy, truncate_reason, Answer, Authenticator,
    Carrier, ClaimValue, Close, CloseReason, Config, Decision, HandshakeView, InlineStr,
    MessageAction, MintRequest, SecretKey, SecretRef, SessionRow, Step, TokenVerifier, UserRecord,
    UserSource, MAX_REASON_BYTES,
};

// ---------------------------------------------------------------- allocation counting

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNTING.try_with(|c| {
            if c.get() {
                let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
            }
        });
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count_allocs<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOCS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, ALLOCS.with(Cell::get))
}

// ---------------------------------------------------------------- fixtures

const NOW: i64 = 1_750_000_000;
const SECRET: &str = "property-secret-key-0123456789abcdef";

fn config(source: UserSource) -> Config {
    let mut c = Config {
        jwt: JwtConfig {
            secret: Some(SecretRef::Value(SECRET.into())),
            ..JwtConfig::default()
        },
        users: UsersConfig {
            source,
            check_revoked_jti: source == UserSource::Directory,
            ..UsersConfig::default()
        },
        credentials: CredentialsConfig {
            carriers: Some(vec![
                Carrier::Subprotocol,
                Carrier::Header,
                Carrier::Query,
                Carrier::Cookie,
                Carrier::Message,
            ]),
            jwt_cookie: Some("jwt".into()),
            ..CredentialsConfig::default()
        },
        routes: Config::reference_routes(),
        ..Config::default()
    };
    if source == UserSource::Directory {
        c.session = Some(SessionConfig {
            engine: EngineConfig::Db,
            ..SessionConfig::default()
        });
        if let Some(list) = &mut c.credentials.carriers {
            list.push(Carrier::Session);
        }
    }
    c
}

fn build(c: &Config) -> Authenticator {
    let secrets = c.resolve_secrets(|_| None).expect("literal secret");
    Authenticator::from_config(c, &secrets).expect("valid config")
}

fn mint(user: &str, staff: bool, issued: i64) -> String {
    let v = TokenVerifier::new(Default::default(), SecretKey::from(SECRET)).expect("verifier");
    let staff_claim = [("is_staff", ClaimValue::Bool(staff))];
    v.mint(
        &MintRequest {
            user_id: ClaimValue::Str(InlineStr::new(user).expect("short")),
            lifetime: 300,
            jti: "0123456789abcdef0123456789abcdef",
            extra: &staff_claim,
        },
        issued,
    )
}

fn check_close(c: &Close, secrets: &[&str]) {
    let r = c.reason.as_str();
    assert!(r.len() <= MAX_REASON_BYTES);
    assert!(std::str::from_utf8(r.as_bytes()).is_ok());
    for s in secrets {
        if s.len() >= 8 {
            assert!(!r.contains(s), "reason {r:?} contains a credential");
        }
    }
}

fn check_decision(d: &Decision, secrets: &[&str]) {
    match d {
        Decision::Close(c) => check_close(&c.close, secrets),
        Decision::Deny { status } => assert_eq!(*status, 403),
        Decision::Accept(a) => {
            if let Some(s) = &a.subprotocol {
                for t in secrets {
                    if t.len() >= 8 {
                        assert!(
                            !s.as_str().contains(t),
                            "the token is echoed as subprotocol"
                        );
                    }
                }
            }
        }
        Decision::AwaitFirstMessage(_) => {}
    }
}

/// Answers chosen by the test: index into a fixed menu, so any request may get any answer.
fn answer_from(choice: u8, password: &str) -> Answer<'_> {
    match choice % 9 {
        0 => Answer::Failed,
        1 => Answer::Revoked(true),
        2 => Answer::Revoked(false),
        3 => Answer::Access(true),
        4 => Answer::Access(false),
        5 => Answer::User(None),
        6 => Answer::User(Some(UserRecord {
            pk: "1",
            password,
            is_active: choice.is_multiple_of(2),
            is_staff: choice.is_multiple_of(3),
            is_superuser: false,
        })),
        7 => Answer::Session(None),
        _ => Answer::Session(Some(SessionRow {
            session_key: "k",
            session_data: password,
            expire_date: NOW + 10,
        })),
    }
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Authorization".to_string()),
        Just("Sec-WebSocket-Protocol".to_string()),
        Just("Cookie".to_string()),
        Just("Origin".to_string()),
        Just("origin".to_string()),
        "[a-zA-Z-]{1,12}",
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "(Bearer|bearer|JWT)?[ \t]{0,2}[a-zA-Z0-9._=;, -]{0,80}".prop_map(String::into_bytes),
        Just(b"http://localhost:3000".to_vec()),
        Just(b"bearer, ".to_vec()),
        "sessionid=[a-z0-9]{0,40}(; jwt=[a-zA-Z0-9._-]{0,40})?".prop_map(String::into_bytes),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/ws/chat/lobby/".to_string()),
        Just("/ws/admin/chat/".to_string()),
        Just("/ws/logs/".to_string()),
        "/ws/receipts/[0-9%a-z]{0,6}/",
        "/ws/conversations/[0-9%A-F]{0,6}/",
        "[/a-z%0-9<>]{0,24}",
        ".{0,24}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z=&%+0-9.]{0,40}",
        "(token|access)=[A-Za-z0-9._%+-]{0,120}",
        ".{0,40}"
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_handshakes_never_panic(
        directory in any::<bool>(),
        path in path(),
        query in query(),
        headers in proptest::collection::vec((header_name(), header_value()), 0..6),
        answers in proptest::collection::vec(any::<u8>(), 0..8),
        now in prop_oneof![Just(NOW), any::<i64>()],
    ) {
        let auth = build(&config(if directory { UserSource::Directory } else { UserSource::Claims }));
        let hdrs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let view = HandshakeView::new(&path, &query, &hdrs);
        let mut hs = auth.start(&view, UnixTime::from_secs(now));
        let mut answers = answers.into_iter();
        let decision = loop {
            let choice = match hs.poll() {
                Step::Done(d) => break d,
                Step::Lookup(_) => answers.next(),
            };
            match choice {
                Some(c) => hs.answer(answer_from(c, "pbkdf2_sha256$x")),
                None => break match hs.poll() { Step::Done(d) => d, Step::Lookup(_) => return Ok(()) },
            }
        };
        let mut secrets: Vec<&str> = vec![query.as_str()];
        let texts: Vec<String> = headers.iter().map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect();
        secrets.extend(texts.iter().map(String::as_str));
        check_decision(&decision, &secrets);
    }

    #[test]
    fn the_token_never_appears_in_a_reason(
        user in "[0-9]{1,4}",
        staff in any::<bool>(),
        issued in prop_oneof![Just(NOW - 10), Just(NOW - 1000), Just(NOW + 1000)],
        tamper in any::<bool>(),
        carrier in 0u8..4,
        path in prop_oneof![Just("/ws/admin/chat/"), Just("/ws/logs/"), Just("/ws/receipts/1/"), Just("/ws/nope/")],
    ) {
        let auth = build(&config(UserSource::Claims));
        let mut token = mint(&user, staff, issued);
        if tamper {
            token.push('A');
        }
        let query = if carrier == 0 { format!("token={token}") } else { String::new() };
        let header: Vec<u8> = match carrier {
            1 => format!("Bearer {token}").into_bytes(),
            2 => format!("bearer, {token}").into_bytes(),
            _ => format!("jwt={token}").into_bytes(),
        };
        let name = match carrier { 1 => "Authorization", 2 => "Sec-WebSocket-Protocol", _ => "Cookie" };
        let hdrs = [(name, header.as_slice())];
        let view = HandshakeView::new(path, &query, &hdrs);
        let mut hs = auth.start(&view, UnixTime::from_secs(NOW));
        let d = loop {
            match hs.poll() {
                Step::Done(d) => break d,
                Step::Lookup(_) => hs.answer(Answer::Access(false)),
            }
        };
        check_decision(&d, &[&token, token.split('.').nth(2).unwrap_or("")]);
        // The same token as an in-band message.
        if let Some(mut conn) = hs.connection() {
            let m = format!(r#"{{"type":"refresh","token":"{token}"}}"#);
            match conn.handle_message(m.as_bytes(), UnixTime::from_secs(NOW + 1)) {
                MessageAction::Close(c) => check_close(&c, &[&token]),
                MessageAction::Steps(mut hs) => loop {
                    match hs.poll() {
                        Step::Done(d) => {
                            if let MessageAction::Close(c) = conn.finish(&d, UnixTime::from_secs(NOW + 1)) {
                                check_close(&c, &[&token]);
                            }
                            break;
                        }
                        Step::Lookup(_) => hs.answer(Answer::Failed),
                    }
                },
                _ => {}
            }
        }
    }

    #[test]
    fn arbitrary_messages_never_panic(
        msgs in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                r#"\{"type":"(auth|refresh|chat)"(,"token":("[A-Za-z0-9._\\/u-]{0,60}"|[0-9]+|null|\{\}))?\}"#.prop_map(String::into_bytes),
                r#"[\{\}\[\]":,a-z0-9\\ ]{0,80}"#.prop_map(String::into_bytes),
            ],
            1..6,
        ),
        start in prop_oneof![Just("/ws/logs/"), Just("/ws/admin/chat/"), Just("/ws/chat/x/")],
        times in proptest::collection::vec(-100i64..1000, 1..6),
    ) {
        let auth = build(&config(UserSource::Claims));
        let token = mint("1", true, NOW - 10);
        let query = if start == "/ws/logs/" { String::new() } else { format!("token={token}") };
        let view = HandshakeView::new(start, &query, &[]);
        let hs = auth.start(&view, UnixTime::from_secs(NOW));
        let Some(mut conn) = hs.connection() else { return Ok(()) };
        for (m, dt) in msgs.iter().zip(times.iter().cycle()) {
            let now = NOW + dt;
            if let Some(c) = conn.handle_timeout(UnixTime::from_secs(now)) {
                check_close(&c, &[&token]);
            }
            match conn.handle_message(m, UnixTime::from_secs(now)) {
                MessageAction::Close(c) => check_close(&c, &[&token]),
                MessageAction::Steps(mut hs) => {
                    let d = hs.drive(|_| Answer::Access(true));
                    if let MessageAction::Close(c) = conn.finish(&d, UnixTime::from_secs(now)) {
                        check_close(&c, &[&token]);
                    }
                }
                _ => {}
            }
            let _ = conn.poll_timeout();
        }
    }

    #[test]
    fn reasons_are_cut_on_char_boundaries(text in ".{0,200}") {
        let r = CloseReason::new(&text);
        prop_assert!(r.len() <= MAX_REASON_BYTES);
        prop_assert!(text.starts_with(r.as_str()));
        prop_assert_eq!(r.as_str(), truncate_reason(&text));
        if text.len() <= MAX_REASON_BYTES {
            prop_assert_eq!(r.as_str(), text.as_str());
        } else {
            // The cut is the longest char-boundary prefix that fits.
            let next = text[r.len()..].chars().next().map_or(0, char::len_utf8);
            prop_assert!(r.len() + next > MAX_REASON_BYTES);
        }
    }

    #[test]
    fn origin_policies_never_panic(
        patterns in proptest::collection::vec("[a-z:/.*\\[\\]%0-9@-]{0,20}", 0..4),
        headers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..3),
        require in any::<bool>(),
    ) {
        if let Ok(p) = OriginPolicy::channels(&patterns) {
            let _ = p.check(headers.iter().map(Vec::as_slice));
        }
        if let Ok(p) = OriginPolicy::allowlist(&patterns, require) {
            let v = p.check(headers.iter().map(Vec::as_slice));
            if headers.is_empty() {
                prop_assert_eq!(v.is_allowed(), !require);
            }
        }
    }
}

#[test]
fn claims_only_query_token_decides_without_allocating() {
    let auth = build(&config(UserSource::Claims));
    let token = mint("1", true, NOW - 10);
    let query = format!("token={token}");
    let headers: [(&str, &[u8]); 2] = [
        ("Origin", b"http://localhost:3000"),
        ("User-Agent", b"test"),
    ];
    for path in ["/ws/admin/chat/", "/ws/chat/lobby/"] {
        let view = HandshakeView::new(path, &query, &headers);
        // Warm up (lazy statics, first-use initialisation).
        let _ = auth.decide(&view, UnixTime::from_secs(NOW));
        let (d, allocs) = count_allocs(|| auth.decide(&view, UnixTime::from_secs(NOW)));
        assert!(matches!(d, Some(Decision::Accept(_))), "{d:?}");
        assert_eq!(allocs, 0, "{path}: the claims-only hot path allocated");
    }
    // The counter does see allocations.
    let ((), n) = count_allocs(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert!(n >= 1);
}
