//! What happens on a connection once the core has let it in.
//!
//! The transport owns the socket and the core's connection state machine
//! (expiry, in-band refresh); the application only sees accepted connections
//! ([`App::open`]), their non-control messages ([`Handler::message`]) and a
//! bounded [`Outbox`] to write to. [`App::audit`] receives every auth decision
//! (for audit streams), without credentials.

use crate::lograte::{LogRate, LOG_INTERVAL};
use async_tungstenite::tungstenite::{Message, Utf8Bytes};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use wsauth_core::{
    admission::outbox_verdict, admission::AdmissionConfig, admission::OutboxQueue,
    admission::OutboxVerdict, AuthMethod, Close, Principal,
};

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

/// Sends messages to one connection. Bounded in bytes and in messages:
/// a message larger than a connection may ever queue is dropped; a
/// connection whose queue is full does not read what it is sent and is
/// closed (1008), and when all connections together hold the server's send
/// budget the receiver of the next message is closed (1013) — the
/// thresholds and codes are the core's ([`wsauth_core::admission::outbox_verdict`]).
/// Sending never blocks the sender, the connection's reader or any other
/// connection.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<OutboxShared>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("conn", &self.shared.id)
            .finish_non_exhaustive()
    }
}

/// A text payload built once and sent to many connections without a copy
/// per receiver ([`Outbox::send_shared`]).
#[derive(Debug, Clone)]
pub struct SharedText(Utf8Bytes);

impl SharedText {
    /// The text to share.
    pub fn new(text: impl Into<String>) -> Self {
        SharedText(Utf8Bytes::from(text.into()))
    }

    /// A JSON value as shared text.
    pub fn json(value: &Value) -> Self {
        SharedText::new(value.to_string())
    }
}

/// The bytes queued for all connections of one gateway, against the core's
/// budget (`limits.admission.outbox_bytes_total`).
#[derive(Debug)]
pub(crate) struct SendBudget {
    used: AtomicUsize,
    config: Arc<AdmissionConfig>,
}

impl SendBudget {
    pub(crate) fn new(config: Arc<AdmissionConfig>) -> Arc<Self> {
        Arc::new(SendBudget {
            used: AtomicUsize::new(0),
            config,
        })
    }

    /// Bytes queued now, all connections together.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

struct OutboxShared {
    id: u64,
    budget: Arc<SendBudget>,
    max_messages: usize,
    queue: Mutex<OutQueue>,
}

#[derive(Default)]
struct OutQueue {
    messages: VecDeque<(Message, usize)>,
    bytes: usize,
    /// The receiver is gone.
    closed: bool,
    /// The connection is to be closed with this (it stopped reading).
    overflow: Option<Close>,
    waker: Option<Waker>,
}

impl OutQueue {
    /// Empties the queue, giving its bytes back to the budget.
    fn clear(&mut self, budget: &SendBudget) {
        self.messages.clear();
        budget.release(std::mem::take(&mut self.bytes));
    }
}

/// What the open connection takes from its outbox.
pub(crate) enum Outgoing {
    /// A message to write.
    Message(Message),
    /// Close the connection: it does not read what it is sent.
    Overflow(Close),
}

/// The connection's end of its [`Outbox`]; dropping it closes the outbox.
pub(crate) struct OutboxRx {
    shared: Arc<OutboxShared>,
}

impl OutboxRx {
    /// The next message, or the overflow close, or `None` once every
    /// [`Outbox`] is dropped (never: the application may keep one).
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Outgoing> {
        let mut q = lock(&self.shared.queue);
        if let Some(c) = q.overflow.take() {
            q.clear(&self.shared.budget);
            q.closed = true;
            return Poll::Ready(Outgoing::Overflow(c));
        }
        match q.messages.pop_front() {
            Some((m, n)) => {
                q.bytes = q.bytes.saturating_sub(n);
                self.shared.budget.release(n);
                Poll::Ready(Outgoing::Message(m))
            }
            None => {
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for OutboxRx {
    fn drop(&mut self) {
        let mut q = lock(&self.shared.queue);
        q.closed = true;
        q.clear(&self.shared.budget);
        q.waker = None;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Messages dropped as larger than any queue, logged once per interval.
static DROPPED: LogRate = LogRate::new(LOG_INTERVAL);
/// Connections closed for not reading, logged once per interval.
static SLOW: LogRate = LogRate::new(LOG_INTERVAL);

impl Outbox {
    pub(crate) fn channel(
        id: u64,
        max_messages: usize,
        budget: Arc<SendBudget>,
    ) -> (Self, OutboxRx) {
        let shared = Arc::new(OutboxShared {
            id,
            budget,
            max_messages,
            queue: Mutex::new(OutQueue::default()),
        });
        (
            Outbox {
                shared: shared.clone(),
            },
            OutboxRx { shared },
        )
    }

    /// The connection's id.
    pub fn conn_id(&self) -> u64 {
        self.shared.id
    }

    /// Queues a text message; false when it was not queued (the connection
    /// is gone, or closing because it does not read).
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

    /// Queues a text built once for many connections (no copy per receiver;
    /// each queue still counts its full length).
    pub fn send_shared(&self, text: &SharedText) -> bool {
        self.send(Message::Text(text.0.clone()))
    }

    fn send(&self, msg: Message) -> bool {
        let len = msg.len();
        let sh = &self.shared;
        let mut q = lock(&sh.queue);
        if q.closed || q.overflow.is_some() {
            return false;
        }
        let queue = OutboxQueue {
            bytes: q.bytes,
            messages: q.messages.len(),
            max_messages: sh.max_messages,
        };
        let verdict = outbox_verdict(&sh.budget.config, queue, sh.budget.used(), len);
        match verdict {
            OutboxVerdict::Queue => {
                sh.budget.used.fetch_add(len, Ordering::Relaxed);
                q.bytes = q.bytes.saturating_add(len);
                q.messages.push_back((msg, len));
                if let Some(w) = q.waker.take() {
                    w.wake();
                }
                true
            }
            OutboxVerdict::Close(c) => {
                if let Some(n) = SLOW.note() {
                    tracing::warn!(
                        closed = n,
                        code = c.code_u16(),
                        reason = c.reason.as_str(),
                        "connections closed for not reading their messages"
                    );
                }
                q.clear(&sh.budget);
                q.overflow = Some(c);
                if let Some(w) = q.waker.take() {
                    w.wake();
                }
                false
            }
            _ => {
                if let Some(n) = DROPPED.note() {
                    tracing::warn!(
                        dropped = n,
                        bytes = len,
                        "messages larger than a connection's send queue dropped"
                    );
                }
                false
            }
        }
    }

    /// True once the connection has ended (or is closing for not reading).
    pub fn is_closed(&self) -> bool {
        let q = lock(&self.shared.queue);
        q.closed || q.overflow.is_some()
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
