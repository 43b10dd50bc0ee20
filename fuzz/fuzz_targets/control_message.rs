#![no_main]
//! The open-connection state machine: a connection accepted with a token
//! (or waiting for its auth message) receives arbitrary messages and clock
//! ticks. Nothing panics; a close is final (no later delivery, no timeout);
//! a message is delivered only on an open connection; a refresh never
//! changes the user; an open connection's deadline is in the future; close
//! reasons fit a close frame and never carry a token.

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsauth_core::{ConnState, HandshakeView, MessageAction, Principal, UnixTime};
use wsauth_fuzz::{
    authenticator, check_close, check_decision, drive, str_claim, token, Reply, NOW, PATHS,
};

#[derive(Arbitrary, Debug)]
struct TokenSpec {
    valid: bool,
    same_user: bool,
    staff: bool,
    superuser: bool,
    lifetime: u16,
}

#[derive(Arbitrary, Debug)]
enum Msg {
    Raw(Vec<u8>),
    Auth(TokenSpec),
    Refresh(TokenSpec),
    /// `{"type": <kind>, "token": <token>}` with arbitrary text.
    Json(String, String),
}

#[derive(Arbitrary, Debug)]
enum Event {
    Message(Msg),
    Wait(u16),
    Timeout,
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: u8,
    path: u8,
    /// Connect with a token (else without a credential, to authenticate by message).
    connect_with: Option<TokenSpec>,
    replies: Vec<Reply>,
    events: Vec<Event>,
}

fn mint(spec: &TokenSpec, now: i64, secrets: &mut Vec<String>) -> String {
    let user = str_claim(if spec.same_user { "1" } else { "2" });
    let lifetime = i64::from(spec.lifetime % 900) + 1;
    let issued = if spec.valid { now } else { now - lifetime - 1 };
    let t = token(user, spec.staff, spec.superuser, issued, lifetime);
    secrets.push(t.clone());
    t
}

fuzz_target!(|input: Input| {
    let auth = authenticator(usize::from(input.config));
    let path = PATHS[usize::from(input.path) % PATHS.len()];
    let mut now = NOW;
    let mut secrets = Vec::new();
    let query = match &input.connect_with {
        Some(spec) => format!("token={}", mint(spec, now, &mut secrets)),
        None => String::new(),
    };
    let headers: [(&str, &[u8]); 1] = [("origin", b"https://app.example.com")];
    let view = HandshakeView::new(path, &query, &headers);
    let mut replies = input.replies.iter();
    let mut hs = auth.start(&view, UnixTime::from_secs(now));
    let decision = drive(&mut hs, &mut replies, now);
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    check_decision(auth, &decision, &refs, now);
    let Some(mut conn) = hs.connection() else {
        return;
    };

    for event in input.events.iter().take(16) {
        let before = conn.state();
        let user_before = conn.principal().user().map(|u| u.id.as_str().to_owned());
        let deadline_before = conn.poll_timeout();
        match event {
            Event::Wait(s) => now += i64::from(*s),
            Event::Timeout => {
                let closed = conn.handle_timeout(UnixTime::from_secs(now));
                if let Some(c) = &closed {
                    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
                    check_close(c, &refs);
                    assert!(
                        deadline_before.is_some_and(|d| now >= d),
                        "closed before the deadline"
                    );
                } else {
                    assert!(
                        deadline_before.is_none_or(|d| now < d),
                        "deadline passed without a close"
                    );
                }
            }
            Event::Message(m) => {
                let bytes = match m {
                    Msg::Raw(b) => b.clone(),
                    Msg::Auth(spec) => format!(
                        r#"{{"type":"auth","token":"{}"}}"#,
                        mint(spec, now, &mut secrets)
                    )
                    .into_bytes(),
                    Msg::Refresh(spec) => format!(
                        r#"{{"type":"refresh","token":"{}"}}"#,
                        mint(spec, now, &mut secrets)
                    )
                    .into_bytes(),
                    Msg::Json(kind, tok) => serde_json::json!({ "type": kind, "token": tok })
                        .to_string()
                        .into_bytes(),
                };
                let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
                let action = conn.handle_message(&bytes, UnixTime::from_secs(now));
                match action {
                    MessageAction::Deliver => {
                        assert_eq!(
                            before,
                            ConnState::Open,
                            "delivered on a connection that is not open"
                        );
                    }
                    MessageAction::Authenticated { .. }
                    | MessageAction::Extended { .. }
                    | MessageAction::Ignored => {}
                    MessageAction::Close(c) => check_close(&c, &refs),
                    MessageAction::Steps(mut hs) => {
                        let d = drive(&mut hs, &mut replies, now);
                        if let MessageAction::Close(c) = conn.finish(&d, UnixTime::from_secs(now)) {
                            check_close(&c, &refs);
                        }
                    }
                    _ => {}
                }
            }
        }
        match conn.state() {
            ConnState::Closed => {
                assert_eq!(
                    conn.poll_timeout(),
                    None,
                    "a closed connection has no timeout"
                );
            }
            ConnState::Open => {
                assert_ne!(before, ConnState::Closed, "a closed connection reopened");
                if let Some(d) = conn.poll_timeout() {
                    assert!(
                        d > now || matches!(event, Event::Wait(_)),
                        "open past its deadline"
                    );
                }
                if before == ConnState::Open {
                    let user_after = conn.principal().user().map(|u| u.id.as_str().to_owned());
                    if user_before.is_some() {
                        assert_eq!(
                            user_before, user_after,
                            "the user changed on an open connection"
                        );
                    }
                }
            }
            ConnState::AwaitingAuth => {
                assert_eq!(before, ConnState::AwaitingAuth);
                assert!(matches!(conn.principal(), Principal::Anonymous));
            }
        }
    }
});
