#![no_main]
//! The whole upgrade decision on arbitrary requests: path, query, headers
//! (Origin, Authorization, Cookie, Sec-WebSocket-Protocol, …), offered
//! subprotocols and the host's answers to the lookups the core asks for.
//!
//! Invariants (`wsauth_fuzz::check_decision`): the handshake finishes within
//! a few steps, nothing panics, close reasons fit a close frame and never
//! carry a credential, the bearer token is never echoed as the subprotocol,
//! and an accepted principal meets its route's requirement.

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsauth_core::{ClaimValue, HandshakeView, UnixTime};
use wsauth_fuzz::{
    authenticator, check_decision, drive, str_claim, token, Reply, NOW, PATHS, PKS, SESSION_KEY,
};

#[derive(Arbitrary, Debug)]
enum Text {
    /// A token: `(valid, user, staff, superuser)`; invalid ones are expired.
    Token(bool, u8, bool, bool),
    /// The session cookie's key.
    SessionKey,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Part {
    Text(Text),
    Lit(String),
}

#[derive(Arbitrary, Debug)]
enum HeaderName {
    Origin,
    Authorization,
    Cookie,
    SecWebSocketProtocol,
    Host,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: u8,
    path: Result<u8, String>,
    query: Vec<Part>,
    headers: Vec<(HeaderName, Vec<Part>)>,
    subprotocols: Option<Vec<Part>>,
    replies: Vec<Reply>,
    now_offset: i16,
}

struct Secrets(Vec<String>);

impl Secrets {
    fn render(&mut self, parts: &[Part], now: i64) -> String {
        let mut out = String::new();
        for p in parts.iter().take(8) {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Text(Text::Raw(s)) => out.push_str(s),
                Part::Text(Text::SessionKey) => out.push_str(SESSION_KEY),
                Part::Text(Text::Token(valid, user, staff, superuser)) => {
                    let uid = if user % 2 == 0 {
                        ClaimValue::Int(i64::from(user % 5))
                    } else {
                        str_claim(PKS[usize::from(*user) % PKS.len()])
                    };
                    let t = if *valid {
                        token(uid, *staff, *superuser, now - 60, 300)
                    } else {
                        token(uid, *staff, *superuser, now - 600, 300)
                    };
                    out.push_str(&t);
                    self.0.push(t);
                }
            }
        }
        out
    }
}

fuzz_target!(|input: Input| {
    let auth = authenticator(usize::from(input.config));
    let now = NOW + i64::from(input.now_offset) % 30;
    let mut secrets = Secrets(vec![SESSION_KEY.to_owned()]);
    let path = match &input.path {
        Ok(i) => PATHS[usize::from(*i) % PATHS.len()].to_owned(),
        Err(s) => s.clone(),
    };
    let query = secrets.render(&input.query, now);
    let mut owned_headers = Vec::new();
    for (name, value) in input.headers.iter().take(12) {
        let name = match name {
            HeaderName::Origin => "origin".to_owned(),
            HeaderName::Authorization => "Authorization".to_owned(),
            HeaderName::Cookie => "cookie".to_owned(),
            HeaderName::SecWebSocketProtocol => "sec-websocket-protocol".to_owned(),
            HeaderName::Host => "host".to_owned(),
            HeaderName::Other(s) => s.clone(),
        };
        owned_headers.push((name, secrets.render(value, now).into_bytes()));
    }
    let headers: Vec<(&str, &[u8])> = owned_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let subs: Option<Vec<String>> = input.subprotocols.as_ref().map(|list| {
        list.iter()
            .take(6)
            .map(|p| secrets.render(std::slice::from_ref(p), now))
            .collect()
    });
    let sub_refs: Option<Vec<&str>> = subs
        .as_ref()
        .map(|l| l.iter().map(String::as_str).collect());
    let mut view = HandshakeView::new(&path, &query, &headers);
    if let Some(list) = &sub_refs {
        view = view.with_subprotocols(list);
    }

    let mut hs = auth.start(&view, UnixTime::from_secs(now));
    let decision = drive(&mut hs, &mut input.replies.iter(), now);
    let secret_refs: Vec<&str> = secrets.0.iter().map(String::as_str).collect();
    check_decision(auth, &decision, &secret_refs, now);
    if let Some(p) = hs.subprotocol() {
        assert_eq!(p, "bearer", "only the bearer protocol name is ever echoed");
    }
    if let Some(p) = decision.subprotocol() {
        assert_eq!(Some(p), hs.subprotocol(), "the decision echoes the handshake's subprotocol");
    }
});
