//! The core on its own: a host that answers the handshake's steps from maps.
//!
//! ```sh
//! cargo run -p wsauth-core --example step_loop
//! ```
//!
//! The core asks; the host answers; nothing else. Every question the core
//! can ask in this configuration is answered here:
//! - `Rate` / `RateCommit`: this host's per-peer rate-limit state (a map
//!   with compare-and-set);
//! - `User`: the user row (`str(pk)`, password hash, flags);
//! - `Access`: whether the user owns the receipt named in the path.
//!
//! `cargo test -p wsauth-core --example step_loop` checks the decisions.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use wsauth_core::config::RouteConfig;
use wsauth_core::{
    Answer, Authenticator, ClaimValue, Config, Decision, HandshakeView, InlineStr, MintRequest,
    RateState, Request, Requirement, SecretRef, UnixTime, UserRecord, UserSource,
};

const SECRET: &str = "example-secret-0123456789abcdef";
const NOW: i64 = 1_750_000_000;

/// The host: users by `str(pk)`, receipt owners, rate state per peer.
struct MapHost {
    users: HashMap<&'static str, (bool, &'static str)>,
    receipts: HashMap<&'static str, &'static str>,
    rates: RefCell<HashMap<IpAddr, RateState>>,
}

impl MapHost {
    fn new() -> Self {
        MapHost {
            // pk → (is_staff, password hash)
            users: HashMap::from([
                ("1", (true, "pbkdf2_sha256$1$a$b")),
                ("2", (false, "pbkdf2_sha256$1$c$d")),
            ]),
            receipts: HashMap::from([("100", "2")]),
            rates: RefCell::new(HashMap::new()),
        }
    }

    /// The one function a host writes: answer what the core asks.
    fn answer(&self, req: &Request) -> Answer<'static> {
        match req {
            Request::Rate { peer } => {
                Answer::Rate(self.rates.borrow().get(peer).copied().unwrap_or_default())
            }
            Request::RateCommit {
                peer,
                expected,
                new,
                ..
            } => {
                let mut rates = self.rates.borrow_mut();
                let current = rates.get(peer).copied().unwrap_or_default();
                if current == *expected {
                    rates.insert(*peer, *new);
                    Answer::Stored
                } else {
                    Answer::Rate(current)
                }
            }
            Request::User { pk, .. } => Answer::User(self.users.get_key_value(pk.as_str()).map(
                |(pk, (staff, password))| UserRecord {
                    pk,
                    password,
                    is_active: true,
                    is_staff: *staff,
                    is_superuser: false,
                },
            )),
            Request::Access { user, value, .. } => {
                Answer::Access(self.receipts.get(value.as_str()) == Some(&user.as_str()))
            }
            // Not asked in this configuration (no revocation check, no sessions).
            _ => Answer::Failed,
        }
    }
}

fn authenticator() -> Authenticator {
    let config = Config::new(SecretRef::Value(SECRET.into()))
        .users_from(UserSource::Directory)
        .rate_limit(10, 60, 3)
        .route(RouteConfig::new("admin", "/ws/admin/", Requirement::Staff))
        .route(RouteConfig::new(
            "receipts",
            "/ws/receipts/<id>/",
            Requirement::Owner("id".into()),
        ));
    let secrets = config
        .resolve_secrets(|_| None)
        .expect("literal secrets only");
    Authenticator::from_config(&config, &secrets).expect("valid config")
}

fn token(auth: &Authenticator, user: &str) -> String {
    auth.tokens().mint(
        &MintRequest {
            user_id: ClaimValue::Str(InlineStr::new(user).expect("short")),
            lifetime: 300,
            jti: "0123456789abcdef0123456789abcdef",
            extra: &[],
        },
        NOW,
    )
}

/// One upgrade request, decided: the step loop.
fn decide(auth: &Authenticator, host: &MapHost, path: &str, user: &str, peer: [u8; 4]) -> Decision {
    let query = format!("token={}", token(auth, user));
    let view = HandshakeView::new(path, &query, &[]).with_peer(IpAddr::from(peer));
    let mut handshake = auth.start(&view, UnixTime::from_secs(NOW));
    handshake.drive(|request| host.answer(request))
}

fn describe(d: &Decision) -> String {
    match d {
        Decision::Accept(a) => format!(
            "accept {}",
            a.principal
                .user()
                .map(|u| u.id.as_str())
                .unwrap_or("anonymous")
        ),
        Decision::Close(c) => format!("close {} {}", c.close.code_u16(), c.close.reason),
        Decision::Deny { status } => format!("HTTP {status}"),
        Decision::AwaitFirstMessage(_) => "await auth message".into(),
    }
}

fn main() {
    let auth = authenticator();
    let host = MapHost::new();
    for (i, (path, user)) in [
        ("/ws/admin/", "1"),
        ("/ws/admin/", "2"),
        ("/ws/receipts/100/", "2"),
        ("/ws/receipts/100/", "1"),
    ]
    .into_iter()
    .enumerate()
    {
        let peer = [10, 0, 0, u8::try_from(i).unwrap_or(0)];
        let d = decide(&auth, &host, path, user, peer);
        println!("{path} as user {user}: {}", describe(&d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_from_the_maps() {
        let auth = authenticator();
        let host = MapHost::new();
        let rows = [
            ("/ws/admin/", "1", "accept 1"),
            ("/ws/admin/", "2", "close 4403 staff only"),
            ("/ws/admin/", "7", "close 4401 user not found"),
            ("/ws/receipts/100/", "2", "accept 2"),
            ("/ws/receipts/100/", "1", "close 4403 not the owner"),
        ];
        for (i, (path, user, want)) in rows.into_iter().enumerate() {
            // A fresh peer per row: the rate limit is not what this row tests.
            let peer = [10, 0, 1, u8::try_from(i).expect("small")];
            assert_eq!(
                describe(&decide(&auth, &host, path, user, peer)),
                want,
                "{path} {user}"
            );
        }
        // The host's rate state: a burst of 3 from one peer, then 4429.
        let got: Vec<String> = (0..5)
            .map(|_| describe(&decide(&auth, &host, "/ws/admin/", "1", [10, 0, 2, 1])))
            .collect();
        assert_eq!(&got[..3], &["accept 1", "accept 1", "accept 1"]);
        assert!(got[3].starts_with("close 4429"), "{got:?}");
    }
}
