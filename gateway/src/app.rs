//! What happens on a connection once the core has let it in.
//!
//! The transport owns the socket and the core's connection state machine
//! (expiry, in-band refresh); the application only sees accepted connections
//! ([`App::open`]), their non-control messages ([`Handler::message`]) and a
//! bounded [`Outbox`] to write to. [`App::audit`] receives every auth decision
//! (for audit streams), without credentials.

use async_tungstenite::tungstenite::Message;
use futures::channel::mpsc;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use wsauth_core::{AuthMethod, Principal};

/// An accepted connection, as the application sees it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// A process-unique connection number (also in the logs).
    pub id: u64,
    /// The peer's address.
    pub peer: Option<SocketAddr>,
    /// The request path (without the query string, which may hold a token).
    pub path: String,
    /// The matched route's name.
    pub route: String,
    /// The route's parameters, percent-decoded, in pattern order.
    pub params: Vec<(String, String)>,
    /// Who is connected.
    pub principal: Principal,
}

impl ConnInfo {
    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The user id, or `None` for anonymous.
    pub fn user_id(&self) -> Option<&str> {
        self.principal.user().map(|u| u.id.as_str())
    }
}

/// A message from the client that is not a control (auth / refresh) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppMessage {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
}

/// Sends messages to one connection. Bounded: when the client does not keep
/// up, [`Outbox::send_text`] returns false and the message is dropped (the
/// connection's reader and the other connections are never blocked).
#[derive(Debug, Clone)]
pub struct Outbox {
    id: u64,
    tx: Arc<Mutex<mpsc::Sender<Message>>>,
}

impl Outbox {
    pub(crate) fn channel(id: u64, capacity: usize) -> (Self, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Outbox {
                id,
                tx: Arc::new(Mutex::new(tx)),
            },
            rx,
        )
    }

    /// The connection's id.
    pub fn conn_id(&self) -> u64 {
        self.id
    }

    /// Queues a text message; false when the queue is full or the connection is gone.
    pub fn send_text(&self, text: impl Into<String>) -> bool {
        self.send(Message::text(text.into()))
    }

    /// Queues a JSON value as a text message.
    pub fn send_json(&self, value: &Value) -> bool {
        self.send_text(value.to_string())
    }

    /// Queues a binary message.
    pub fn send_binary(&self, data: impl Into<Vec<u8>>) -> bool {
        self.send(Message::binary(data.into()))
    }

    fn send(&self, msg: Message) -> bool {
        let mut tx = match self.tx.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match tx.try_send(msg) {
            Ok(()) => true,
            Err(e) => {
                if e.is_full() {
                    tracing::warn!(conn = self.id, "outbox full, message dropped");
                }
                false
            }
        }
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        match self.tx.lock() {
            Ok(g) => g.is_closed(),
            Err(p) => p.into_inner().is_closed(),
        }
    }
}

/// The application's per-connection handler.
pub trait Handler: Send {
    /// A message from the client.
    fn message(&mut self, msg: AppMessage);
    /// An anonymous connection logged in with an in-band `auth` message (an
    /// anonymous route): from now on it acts as `principal`.
    fn authenticated(&mut self, principal: &Principal) {
        let _ = principal;
    }
    /// The connection ended (any reason). Called once.
    fn closed(&mut self) {}
}

/// A handler that ignores messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ignore;

impl Handler for Ignore {
    fn message(&mut self, _msg: AppMessage) {}
}

/// The application behind the gateway.
pub trait App: Send + Sync + 'static {
    /// A connection was accepted (after its auth message, when it needed one).
    fn open(&self, conn: &ConnInfo, outbox: Outbox) -> Box<dyn Handler>;
    /// An auth decision was made (upgrade, auth message, refresh, expiry).
    fn audit(&self, event: &AuthEvent) {
        let _ = event;
    }
}

/// An application that accepts every connection and ignores its messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullApp;

impl App for NullApp {
    fn open(&self, _conn: &ConnInfo, _outbox: Outbox) -> Box<dyn Handler> {
        Box::new(Ignore)
    }
}

/// An application that echoes every message back.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoApp;

struct Echo(Outbox);

impl Handler for Echo {
    fn message(&mut self, msg: AppMessage) {
        match msg {
            AppMessage::Text(t) => self.0.send_text(t),
            AppMessage::Binary(b) => self.0.send_binary(b),
        };
    }
}

impl App for EchoApp {
    fn open(&self, _conn: &ConnInfo, outbox: Outbox) -> Box<dyn Handler> {
        Box::new(Echo(outbox))
    }
}

/// Which part of the connection's life a decision belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// The HTTP upgrade.
    Upgrade,
    /// The first-message auth.
    AuthMessage,
    /// An in-band refresh.
    Refresh,
    /// A deadline passed (token expiry, auth-message timeout).
    Timeout,
}

impl Stage {
    /// `upgrade`, `auth_message`, `refresh`, `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Upgrade => "upgrade",
            Stage::AuthMessage => "auth_message",
            Stage::Refresh => "refresh",
            Stage::Timeout => "timeout",
        }
    }
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Accepted (or extended, for a refresh).
    Accept,
    /// Accepted, waiting for the auth message.
    AwaitAuth,
    /// Closed after accept.
    Close,
    /// Upgrade refused with an HTTP status.
    Deny,
}

impl Outcome {
    /// `accept`, `await_auth`, `close`, `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accept => "accept",
            Outcome::AwaitAuth => "await_auth",
            Outcome::Close => "close",
            Outcome::Deny => "deny",
        }
    }
}

/// One auth decision, for logs and audit streams. Holds no credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEvent {
    /// Unix time, milliseconds.
    pub time_ms: i64,
    /// The connection's id.
    pub conn: u64,
    /// The peer's address.
    pub peer: Option<SocketAddr>,
    /// The request path (no query string).
    pub path: String,
    /// The matched route, when one matched.
    pub route: Option<String>,
    /// When in the connection's life.
    pub stage: Stage,
    /// What was decided.
    pub outcome: Outcome,
    /// The close code or HTTP status.
    pub code: Option<u16>,
    /// The close reason (a fixed text).
    pub reason: Option<String>,
    /// The user id, when authenticated.
    pub user: Option<String>,
    /// How the user authenticated (`jwt:query`, `session`, …).
    pub method: Option<String>,
}

impl AuthEvent {
    /// The event as one JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "time_ms": self.time_ms,
            "conn": self.conn,
            "peer": self.peer.map(|p| p.to_string()),
            "path": self.path,
            "route": self.route,
            "stage": self.stage.as_str(),
            "outcome": self.outcome.as_str(),
            "code": self.code,
            "reason": self.reason,
            "user": self.user,
            "method": self.method,
        })
    }
}

/// `jwt:<carrier>` or `session`.
pub(crate) fn method_name(m: AuthMethod) -> String {
    match m {
        AuthMethod::Jwt(c) => format!("jwt:{}", c.as_str()),
        AuthMethod::Session => "session".into(),
        #[allow(unreachable_patterns)]
        _ => "other".into(),
    }
}
