//! The one code path both runtimes share: read the upgrade request, let the
//! core decide (answering its host steps), answer the upgrade with the
//! decision (`head.rs`), then drive the open connection's
//! state machine (timeouts, in-band auth and refresh) next to the application.
//!
//! Everything here is generic over `futures-io` streams and a [`Runtime`];
//! no decision is made here — every accept, close and refusal comes from
//! `wsauth-core`.

use crate::admission::{Admission, Refused, Slot};
use crate::app::{
    method_name, App, AppMessage, AuthEvent, ConnInfo, Handler, Outbox, Outcome, Outgoing,
    SendBudget, Stage,
};
use crate::head::{read_head, write_all, write_http_error, HeadError, NotUpgrade, Upgrade};
use crate::host::{
    AccessQuery, Host, LookupError, MemoryRateStore, RateStore, SessionRecord, UserRow,
};
use crate::lograte::{LogRate, LOG_INTERVAL};
use crate::runtime::{Runtime, ShutdownHandle};
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use futures::future::{self, BoxFuture, Either, FutureExt};
use futures::io::{AsyncRead, AsyncWrite};
use futures::{Stream, StreamExt};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{debug, info, warn};
use wsauth_core::{
    admission::client_addr, admission::handshake_timeout_secs, admission::idle_close,
    admission::AdmissionConfig, Answer, Authenticator, Close, Config, ConfigError, ConnState,
    Connection, Decision, Handshake, HandshakeView, HeadProblem, MessageAction, Principal, Request,
    SessionRow, Step, TransportEnd, UnixTime, UserRecord,
};

/// Connections refused by the admission caps, logged once per interval.
static REFUSED: LogRate = LogRate::new(LOG_INTERVAL);
/// Accept errors, logged once per interval.
static ACCEPT_ERRORS: LogRate = LogRate::new(LOG_INTERVAL);
/// First pause after an accept error; it doubles up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Time a connection refused by the admission caps gets to answer its close.
const REFUSED_CLOSE_WAIT: Duration = Duration::from_millis(50);
/// Longest pause after repeated accept errors.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// tungstenite's per-connection read buffer (see [`Limits::ws_config`]):
/// the size of one read. Control and chat frames fit in one; a 64 KiB
/// message takes 32 reads.
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// Transport limits (the core's own limits — token, cookie and control
/// message sizes, the auth-message deadline — live in its [`Config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Time a client has to send its complete upgrade request.
    pub handshake_timeout: Duration,
    /// Largest request head (request line and headers), bytes: larger → HTTP 431.
    pub max_head_bytes: usize,
    /// Largest WebSocket message, bytes (tungstenite `max_message_size`).
    pub max_message_bytes: usize,
    /// Largest WebSocket frame, bytes (tungstenite `max_frame_size`).
    pub max_frame_bytes: usize,
    /// Messages queued for one connection before it counts as not reading
    /// and is closed (1008); its byte budgets are in [`Limits::admission`].
    pub outbox_capacity: usize,
    /// Time one write may take before the connection is dropped.
    pub write_timeout: Duration,
    /// Time to wait for the client's close reply after sending a close.
    pub close_timeout: Duration,
    /// Time one host lookup may take before it counts as failed (1013).
    pub lookup_timeout: Duration,
    /// Time open connections get to close on shutdown.
    pub shutdown_grace: Duration,
    /// Peers tracked for the rate limit (idle ones are forgotten first).
    pub max_rate_entries: usize,
    /// The core's admission rules: connection caps, the authenticated
    /// reserve, idle timeout, outbox byte budgets, trusted proxies.
    pub admission: AdmissionConfig,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            max_head_bytes: 32 * 1024,
            max_message_bytes: 64 * 1024,
            max_frame_bytes: 64 * 1024,
            outbox_capacity: 1024,
            write_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            lookup_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            max_rate_entries: 100_000,
            admission: AdmissionConfig::default(),
        }
    }
}

impl Limits {
    /// Limits that fit `config`: the handshake timeout from
    /// `limits.handshake_timeout_secs`, a head large enough for the largest
    /// token plus the largest session cookie, messages at least as large as
    /// the largest control message.
    pub fn from_config(config: &Config) -> Self {
        let d = Limits::default();
        let l = &config.limits;
        let head = l
            .max_token_bytes
            .saturating_add(l.max_cookie_bytes)
            .saturating_add(16 * 1024);
        Limits {
            handshake_timeout: Duration::from_secs(u64::from(l.handshake_timeout_secs.max(1))),
            max_head_bytes: d.max_head_bytes.max(head),
            max_message_bytes: d.max_message_bytes.max(l.max_message_bytes),
            max_frame_bytes: d.max_frame_bytes.max(l.max_message_bytes),
            lookup_timeout: config.database.as_ref().map_or(d.lookup_timeout, |db| {
                Duration::from_millis(db.lookup_timeout_ms.max(1))
            }),
            admission: l.admission.clone(),
            ..d
        }
    }

    /// Sets the admission rules (caps, reserve, idle timeout, outbox budgets).
    pub fn with_admission(mut self, a: AdmissionConfig) -> Self {
        self.admission = a;
        self
    }

    /// Sets the handshake timeout.
    pub fn with_handshake_timeout(mut self, t: Duration) -> Self {
        self.handshake_timeout = t;
        self
    }

    /// Sets the largest request head.
    pub fn with_max_head_bytes(mut self, n: usize) -> Self {
        self.max_head_bytes = n;
        self
    }

    /// Sets the largest WebSocket message and frame.
    pub fn with_max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self.max_frame_bytes = n;
        self
    }

    /// Sets the per-connection outbox capacity.
    pub fn with_outbox_capacity(mut self, n: usize) -> Self {
        self.outbox_capacity = n.max(1);
        self
    }

    /// Sets the host-lookup timeout.
    pub fn with_lookup_timeout(mut self, t: Duration) -> Self {
        self.lookup_timeout = t;
        self
    }

    /// Sets the shutdown grace period.
    pub fn with_shutdown_grace(mut self, t: Duration) -> Self {
        self.shutdown_grace = t;
        self
    }

    fn ws_config(&self) -> WebSocketConfig {
        // tungstenite zero-fills its read buffer up to this size on the first
        // read, so it stays resident for every idle connection; larger frames
        // still arrive whole (the buffer grows to the frame's length, bounded
        // by `max_frame_size`), only in reads of this size.
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(0)
            .max_write_buffer_size(self.max_message_bytes.saturating_mul(4).max(64 * 1024))
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_frame_bytes))
    }
}

/// The authenticator, the host, the application and the limits: everything
/// a server needs to handle connections. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    auth: Authenticator,
    host: Arc<dyn Host>,
    app: Arc<dyn App>,
    limits: Limits,
    next_id: AtomicU64,
    rates: Arc<dyn RateStore>,
    admission: Arc<Admission>,
    budget: Arc<SendBudget>,
    live: crate::live::LiveConnections,
    /// The open connections' deadlines, on one timer.
    deadlines: Arc<crate::deadlines::Deadlines>,
    /// Edge mode (`[upstream]`): accepted connections go to this app.
    edge: Option<wsauth_core::edge::Edge>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field(
                "routes",
                &self
                    .inner
                    .auth
                    .routes()
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>(),
            )
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway deciding with `auth`, answering steps with `host` and
    /// handing accepted connections to `app`.
    pub fn new(
        auth: Authenticator,
        host: Arc<dyn Host>,
        app: Arc<dyn App>,
        limits: Limits,
    ) -> Self {
        if auth.users_from_claims() && host.has_users() {
            warn!(
                "user flags come from token claims (users.source = \"claims\"): the host's user store is never asked"
            );
        }
        let limits_max_rate = limits.max_rate_entries;
        let admission = Admission::new(limits.admission.clone());
        let budget = SendBudget::new(admission.config.clone());
        Gateway {
            inner: Arc::new(Inner {
                auth,
                host,
                app,
                limits,
                next_id: AtomicU64::new(1),
                rates: Arc::new(MemoryRateStore::new(limits_max_rate)),
                admission,
                budget,
                live: crate::live::LiveConnections::default(),
                deadlines: Arc::default(),
                edge: None,
            }),
        }
    }

    /// A gateway for a configuration whose secrets are resolved from
    /// literal values, environment variables and files. Refuses a
    /// configuration that would never ask the host's user store
    /// ([`Host::has_users`] with `users.source = "claims"`).
    pub fn from_config(
        config: &Config,
        host: Arc<dyn Host>,
        app: Arc<dyn App>,
    ) -> Result<Self, ConfigError> {
        if let Some(e) = config.check_for_host(host.has_users()).into_iter().next() {
            return Err(e);
        }
        let secrets = config.resolve_secrets(resolve_secret_ref)?;
        let auth = Authenticator::from_config(config, &secrets)?;
        let edge = config.edge(&secrets, &auth)?;
        let gw = Gateway::new(auth, host, app, Limits::from_config(config));
        Ok(match edge {
            Some(edge) => gw.with_edge(edge),
            None => gw,
        })
    }

    /// Edge mode: every accepted connection is forwarded to `edge`'s
    /// upstream instead of the [`App`]. Call before the gateway is cloned
    /// or served.
    pub fn with_edge(mut self, edge: wsauth_core::edge::Edge) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.edge = Some(edge),
            None => warn!("edge mode set on a gateway already in use: ignored"),
        }
        self
    }

    /// The upstream this gateway forwards to, in edge mode.
    pub fn edge(&self) -> Option<&wsauth_core::edge::Edge> {
        self.inner.edge.as_ref()
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// The transport limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Connections held now (every phase, from accept to close).
    pub fn open_connections(&self) -> u64 {
        self.inner.admission.open()
    }

    /// Bytes queued for all connections now (the send budget in use).
    pub fn queued_bytes(&self) -> usize {
        self.inner.budget.used()
    }

    /// The host.
    pub fn host(&self) -> &Arc<dyn Host> {
        &self.inner.host
    }

    /// The open connections, for closing revoked ones from outside.
    pub fn live_connections(&self) -> &crate::live::LiveConnections {
        &self.inner.live
    }

    /// Keeps the per-peer rate-limit state in `store` (default: this
    /// process's memory, bounded by [`Limits::max_rate_entries`]).
    /// Call before the gateway is cloned or served.
    pub fn with_rate_store(mut self, store: Arc<dyn RateStore>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.rates = store,
            None => warn!("rate store set on a gateway already in use: ignored"),
        }
        self
    }

    /// Serves connections from `incoming` until `shutdown` is triggered, then
    /// closes open connections (1001) and waits for them (bounded by the
    /// grace period). Accept errors (e.g. too many open files) are logged
    /// (once per interval, with a count) and retried after a pause that
    /// doubles with each error in a row, up to a second.
    pub async fn serve_incoming<R, S, I>(&self, rt: R, incoming: I, shutdown: ShutdownHandle)
    where
        R: Runtime,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        I: Stream<Item = io::Result<(S, Option<SocketAddr>)>> + Send,
    {
        let mut incoming = Box::pin(incoming);
        let mut stop = pin!(shutdown.triggered());
        let mut backoff = ACCEPT_BACKOFF_MIN;
        loop {
            let next = match future::select(incoming.next(), stop.as_mut()).await {
                Either::Left((next, _)) => next,
                Either::Right(((), _)) => break,
            };
            match next {
                None => break,
                Some(Ok((stream, peer))) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    let gw = self.clone();
                    let rt2 = rt.clone();
                    let sd = shutdown.clone();
                    // Counted from here, so a shutdown right now still waits for it.
                    let active = shutdown.track();
                    rt.spawn(
                        async move {
                            gw.handle_untracked(&rt2, stream, peer, &sd).await;
                            drop(active);
                        }
                        .boxed(),
                    );
                }
                Some(Err(e)) => {
                    if let Some(n) = ACCEPT_ERRORS.note() {
                        warn!(error = %e, errors = n, pause_ms = backoff.as_millis() as u64, "accept failed");
                    }
                    let pause = rt.sleep(backoff);
                    if let Either::Right(((), _)) = future::select(pause, stop.as_mut()).await {
                        break;
                    }
                    backoff = backoff.saturating_mul(2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
        // Stop listening before waiting for the open connections.
        drop(incoming);
        info!(open = shutdown.active_connections(), "shutting down");
        shutdown
            .drained(&rt, self.inner.limits.shutdown_grace)
            .await;
    }

    /// Handles one connection to the end: upgrade, decision, and — when
    /// accepted — the open connection until either side closes it.
    pub async fn handle<R, S>(
        &self,
        rt: &R,
        stream: S,
        peer: Option<SocketAddr>,
        shutdown: &ShutdownHandle,
    ) where
        R: Runtime,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let _active = shutdown.track();
        self.handle_untracked(rt, stream, peer, shutdown).await;
    }

    async fn handle_untracked<R, S>(
        &self,
        rt: &R,
        stream: S,
        peer: Option<SocketAddr>,
        shutdown: &ShutdownHandle,
    ) where
        R: Runtime,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let slot = match self.inner.admission.accept(peer.map(|p| p.ip())) {
            Ok(slot) => slot,
            Err(why) => {
                // Dropped unanswered: answering costs what the cap protects.
                if let Some(n) = REFUSED.note() {
                    warn!(
                        refused = n,
                        reason = match why {
                            Refused::Full => "connection cap reached",
                            Refused::Peer => "per-peer connection cap reached",
                        },
                        open = self.inner.admission.open(),
                        "connections refused"
                    );
                }
                return;
            }
        };
        // The upgrade runs in its own allocation, freed once it is done: the
        // request head, its parse and the decision's state are not kept for
        // the connection's lifetime, only what the open phase needs.
        let upgraded = self.upgrade(rt, stream, peer, slot).boxed().await;
        if let Some(open) = upgraded {
            self.run_open(rt, open, shutdown).await;
        }
    }

    /// Reads the upgrade request, decides and answers it. `Some` when the
    /// connection is open (or awaiting its first auth message).
    async fn upgrade<R, S>(
        &self,
        rt: &R,
        mut stream: S,
        peer: Option<SocketAddr>,
        mut slot: Slot,
    ) -> Option<Box<Open<S>>>
    where
        R: Runtime,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let limits = &self.inner.limits;
        // Shorter once the unauthenticated share is full (the core's rule).
        let (open, cap) = slot.open_at_accept;
        let configured = u32::try_from(limits.handshake_timeout.as_secs())
            .unwrap_or(u32::MAX)
            .max(1);
        let secs = handshake_timeout_secs(&self.inner.admission.config, configured, open, cap);
        let handshake_timeout = if secs < configured {
            limits
                .handshake_timeout
                .min(Duration::from_secs(u64::from(secs)))
        } else {
            limits.handshake_timeout
        };
        let handshake_deadline = std::time::Instant::now() + handshake_timeout;

        let head = match timeout(
            rt,
            handshake_timeout,
            read_head(&mut stream, limits.max_head_bytes),
        )
        .await
        {
            None => {
                debug!(conn = id, peer = ?peer, "handshake timeout: request head incomplete");
                return None;
            }
            Some(Err(HeadError::TooLarge)) => {
                debug!(conn = id, peer = ?peer, "request head too large");
                write_http_error(&mut stream, head_refusal(HeadProblem::TooLarge)).await;
                return None;
            }
            Some(Err(HeadError::Malformed)) => {
                debug!(conn = id, peer = ?peer, "malformed request head");
                write_http_error(&mut stream, head_refusal(HeadProblem::Malformed)).await;
                return None;
            }
            Some(Err(HeadError::Io(e))) => {
                debug!(conn = id, peer = ?peer, error = %e, "connection ended before the upgrade");
                return None;
            }
            Some(Ok(head)) => head,
        };
        let request = match Upgrade::parse(head.bytes()) {
            Ok(request) => request,
            Err(why) => {
                debug!(
                    conn = id,
                    peer = ?peer,
                    "{}",
                    match why {
                        NotUpgrade::Malformed => "malformed request head",
                        NotUpgrade::NotWebSocket => "not a WebSocket upgrade request",
                    }
                );
                let problem = match why {
                    NotUpgrade::Malformed => HeadProblem::Malformed,
                    NotUpgrade::NotWebSocket => HeadProblem::NotWebSocket,
                };
                write_http_error(&mut stream, head_refusal(problem)).await;
                return None;
            }
        };
        let path = request.uri.path();
        let query = request.uri.query().unwrap_or("");
        let mut view =
            HandshakeView::new(path, query, &request.headers).with_method(request.method);
        // The address this attempt counts against: the socket's peer, or the
        // client a trusted proxy forwards for (the core's rule).
        let client = peer.map(|p| client_addr(&view, p.ip(), self.inner.admission.proxies()));
        if let Some(ip) = client {
            view = view.with_peer(ip);
        }

        let mut hs = self.inner.auth.start(&view, now());
        let mut jti = None;
        let decision = self.drive(rt, &mut hs, &mut jti).await;
        // Connection caps, once it is known who connects (the core's verdict).
        let refused: Option<Close> = match (&decision, client) {
            (Decision::Accept(_) | Decision::AwaitFirstMessage(_), Some(ip)) => {
                let unauthenticated = decision.principal().and_then(|p| p.user()).is_none();
                slot.admit(ip, unauthenticated)
            }
            _ => None,
        };
        if let Some(c) = &refused {
            if let Some(n) = REFUSED.note() {
                warn!(
                    refused = n,
                    code = c.code_u16(),
                    reason = c.reason.as_str(),
                    "connections refused"
                );
            }
        }
        let auth = &self.inner.auth;
        // Every accepting decision carries it, a close included: a browser
        // that offered a subprotocol fails an accept without one (1006).
        let subprotocol: Option<String> = decision.subprotocol().map(str::to_string);
        let route_name = route_of(auth, &decision)
            .or_else(|| {
                auth.routes()
                    .find(path)
                    .and_then(|m| auth.routes().get(m.index()))
                    .map(|r| r.name())
            })
            .map(str::to_string);
        let event = AuthEvent {
            time_ms: unix_ms(),
            conn: id,
            peer,
            path: path.to_string(),
            route: route_name,
            stage: Stage::Upgrade,
            outcome: match decision {
                Decision::Accept(_) => Outcome::Accept,
                Decision::AwaitFirstMessage(_) => Outcome::AwaitAuth,
                Decision::Close(_) => Outcome::Close,
                Decision::Deny { .. } => Outcome::Deny,
            },
            code: match &decision {
                Decision::Close(c) => Some(c.close.code_u16()),
                Decision::Deny { status } => Some(*status),
                _ => None,
            },
            reason: decision.close().map(|c| c.reason.as_str().to_string()),
            user: decision
                .principal()
                .and_then(|p| p.user())
                .map(|u| u.id.as_str().to_string()),
            method: decision
                .principal()
                .and_then(|p| p.user())
                .map(|u| method_name(u.method)),
        };
        self.audit(&event);
        if let Decision::Close(c) = &decision {
            if let Some(secs) = c.close.retry_after {
                debug!(conn = id, retry_after_secs = secs, "rate limited");
            }
        }
        let deny = decision.denied_status();

        // ---- edge mode (upstream.rs): connect before answering the client.
        let mut subprotocol = subprotocol;
        let mut link = None;
        if let (Some(edge), None) = (&self.inner.edge, &refused) {
            let route = event.route.as_deref().unwrap_or_default();
            let (l, answer) =
                crate::upstream::on_decision(rt, edge, &view, &decision, route, limits.ws_config())
                    // Boxed: a WebSocket client handshake is large, and only edge
                    // mode awaits it.
                    .boxed()
                    .await;
            link = l;
            if let Some(answer) = answer {
                subprotocol = answer;
            }
        }
        // ---- end edge mode

        // The answer: an HTTP refusal, or the 101 with the subprotocol.
        let answer = match deny {
            Some(status) => Err(crate::head::http_error(status)),
            None => Ok(request.accept_response(self.inner.edge.is_some(), subprotocol.as_deref())),
        };
        drop(request);
        let rest = head.into_rest();
        let left = handshake_deadline.saturating_duration_since(std::time::Instant::now());
        let written = match &answer {
            Ok(bytes) | Err(bytes) => {
                timeout(
                    rt,
                    left.max(Duration::from_millis(100)),
                    write_all(&mut stream, bytes),
                )
                .await
            }
        };
        match written {
            None => {
                debug!(conn = id, "handshake timeout while answering the upgrade");
                return None;
            }
            Some(Err(e)) => {
                debug!(conn = id, error = %e, "upgrade failed");
                return None;
            }
            Some(Ok(())) => {}
        }
        if answer.is_err() {
            debug!(conn = id, status = deny, "upgrade refused");
            let _ = futures::io::AsyncWriteExt::close(&mut stream).await;
            return None;
        }
        drop(answer);
        let config = Some(limits.ws_config());
        let mut ws = if rest.is_empty() {
            WebSocketStream::from_raw_socket(stream, Role::Server, config).await
        } else {
            WebSocketStream::from_partially_read(stream, rest, Role::Server, config).await
        };

        if let Some(c) = refused {
            // The slot is given back before the close is sent: refusals
            // still closing never count against the caps they enforce.
            let wait = if slot.closing() {
                REFUSED_CLOSE_WAIT
            } else {
                Duration::ZERO
            };
            close_ws(rt, &mut ws, c.code_u16(), c.reason.as_str(), wait).await;
            return None;
        }
        if let Some(crate::upstream::Link::Unreachable) = link {
            let c = wsauth_core::edge::Edge::unreachable();
            self.audit(&AuthEvent {
                outcome: Outcome::Close,
                code: Some(c.code_u16()),
                reason: Some(c.reason.as_str().to_string()),
                ..event.clone()
            });
            close_ws(
                rt,
                &mut ws,
                c.code_u16(),
                c.reason.as_str(),
                limits.close_timeout,
            )
            .await;
            return None;
        }
        let conn = match hs.connection() {
            Some(conn) => conn,
            None => {
                if let Decision::Close(c) = decision {
                    close_ws(
                        rt,
                        &mut ws,
                        c.close.code_u16(),
                        c.close.reason.as_str(),
                        limits.close_timeout,
                    )
                    .await;
                }
                return None;
            }
        };
        drop(hs);
        let ctx = ConnCtx {
            id,
            peer,
            path: event.path,
            route: event.route.unwrap_or_default(),
            jti,
        };
        Some(Box::new(Open {
            ws,
            conn,
            ctx,
            slot,
            link,
        }))
    }

    /// Runs a handshake's host steps to its decision: every request the
    /// core makes is answered by the host (or the rate store), bounded by the
    /// lookup timeout; a failed or slow lookup answers `Failed` (1013).
    async fn drive<R: Runtime>(
        &self,
        rt: &R,
        hs: &mut Handshake,
        seen_jti: &mut Option<String>,
    ) -> Decision {
        loop {
            let req = match hs.poll() {
                Step::Done(d) => return d,
                Step::Lookup(req) => req,
            };
            let host = &self.inner.host;
            match req {
                Request::Rate { peer } => match self.timed(rt, self.inner.rates.get(peer)).await {
                    Ok(state) => hs.answer(Answer::Rate(state)),
                    Err(e) => self.failed(hs, "rate", &e),
                },
                Request::RateCommit {
                    peer,
                    expected,
                    new,
                    idle_at_ms,
                } => {
                    let commit = self.inner.rates.commit(peer, expected, new, idle_at_ms);
                    match self.timed(rt, commit).await {
                        Ok(None) => hs.answer(Answer::Stored),
                        Ok(Some(current)) => hs.answer(Answer::Rate(current)),
                        Err(e) => self.failed(hs, "rate", &e),
                    }
                }
                Request::User { key, pk } => match self.timed(rt, host.user(&key, &pk)).await {
                    Ok(Some(row)) => hs.answer(Answer::User(Some(user_record(&row)))),
                    Ok(None) => hs.answer(Answer::User(None)),
                    Err(e) => self.failed(hs, "user", &e),
                },
                Request::Session { key } => match self.timed(rt, host.session(&key)).await {
                    Ok(Some(rec)) => hs.answer(Answer::Session(Some(session_row(&rec)))),
                    Ok(None) => hs.answer(Answer::Session(None)),
                    Err(e) => self.failed(hs, "session", &e),
                },
                Request::CachedSession { key } => {
                    match self.timed(rt, host.cached_session(&key)).await {
                        Ok(v) => hs.answer(Answer::Cached(v.as_deref())),
                        Err(e) => self.failed(hs, "session cache", &e),
                    }
                }
                Request::JtiRevoked { jti, user } => {
                    *seen_jti = Some(jti.as_str().to_string());
                    match self.timed(rt, host.revoked(&jti, &user)).await {
                        Ok(revoked) => hs.answer(Answer::Revoked(revoked)),
                        Err(e) => self.failed(hs, "jti", &e),
                    }
                }
                Request::Access {
                    user,
                    relation,
                    route,
                    param,
                    value,
                    params,
                } => {
                    let q = AccessQuery {
                        user: &user,
                        relation,
                        route: &route,
                        param: &param,
                        value: &value,
                        params: &params,
                    };
                    match self.timed(rt, host.access(&q)).await {
                        Ok(allowed) => hs.answer(Answer::Access(allowed)),
                        Err(e) => self.failed(hs, "access", &e),
                    }
                }
                _ => hs.answer(Answer::Failed),
            }
        }
    }

    /// An in-band auth or refresh message's host steps, then the core's
    /// verdict on the connection.
    async fn in_band<R: Runtime>(
        &self,
        rt: &R,
        conn: &mut Connection,
        mut hs: Box<Handshake>,
        live: &crate::live::LiveGuard,
    ) -> MessageAction {
        let mut seen = None;
        let d = self.drive(rt, &mut hs, &mut seen).await;
        if seen.is_some() {
            live.set_jti(seen);
        }
        drop(hs);
        conn.finish(&d, now())
    }

    fn failed(&self, hs: &mut Handshake, what: &str, e: &LookupError) {
        warn!(lookup = what, error = %e, "host lookup failed");
        hs.answer(Answer::Failed);
    }

    async fn timed<R: Runtime, T>(
        &self,
        rt: &R,
        fut: BoxFuture<'_, Result<T, LookupError>>,
    ) -> Result<T, LookupError> {
        match timeout(rt, self.inner.limits.lookup_timeout, fut).await {
            Some(r) => r,
            None => Err(LookupError::new("timed out")),
        }
    }

    fn audit(&self, event: &AuthEvent) {
        info!(
            conn = event.conn,
            peer = %event.peer.map(|p| p.to_string()).unwrap_or_default(),
            path = %event.path,
            route = event.route.as_deref().unwrap_or("-"),
            stage = event.stage.as_str(),
            outcome = event.outcome.as_str(),
            code = event.code,
            reason = event.reason.as_deref().unwrap_or(""),
            user = event.user.as_deref().unwrap_or("-"),
            method = event.method.as_deref().unwrap_or("-"),
            "auth decision"
        );
        self.inner.app.audit(event);
    }

    fn conn_info(&self, ctx: &ConnCtx, conn: &Connection) -> ConnInfo {
        let auth = &self.inner.auth;
        let m = conn.route();
        let params = auth
            .routes()
            .get(m.index())
            .map(|r| {
                r.pattern()
                    .param_names()
                    .enumerate()
                    .filter_map(|(i, n)| Some((n.to_string(), m.param(&ctx.path, i)?.into_owned())))
                    .collect()
            })
            .unwrap_or_default();
        ConnInfo {
            id: ctx.id,
            peer: ctx.peer,
            path: ctx.path.clone(),
            route: ctx.route.clone(),
            params,
            principal: *conn.principal(),
        }
    }

    fn event(
        &self,
        ctx: &ConnCtx,
        stage: Stage,
        outcome: Outcome,
        close: Option<&Close>,
        principal: &Principal,
    ) -> AuthEvent {
        AuthEvent {
            time_ms: unix_ms(),
            conn: ctx.id,
            peer: ctx.peer,
            path: ctx.path.clone(),
            route: Some(ctx.route.clone()),
            stage,
            outcome,
            code: close.map(Close::code_u16),
            reason: close.map(|c| c.reason.as_str().to_string()),
            user: principal.user().map(|u| u.id.as_str().to_string()),
            method: principal.user().map(|u| method_name(u.method)),
        }
    }

    /// Drives an accepted connection: the core's deadlines, control messages,
    /// the application's messages both ways, shutdown.
    ///
    /// The connection's state stays in `open`'s allocation: the future holds
    /// references to it, not a second copy (every idle connection holds this
    /// future).
    async fn run_open<R, S>(&self, rt: &R, mut open: Box<Open<S>>, shutdown: &ShutdownHandle)
    where
        R: Runtime,
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let Open {
            ws,
            conn,
            ctx,
            slot,
            link,
        } = &mut *open;
        // ---- edge mode: the upstream socket, or the forward to connect
        // once the client authenticated; no application handler.
        let link = link.take();
        let edge_mode = link.is_some();
        let (mut up, mut pending) = match link {
            Some(crate::upstream::Link::Up(u)) => (Some(u), None),
            Some(crate::upstream::Link::Pending(f)) => (None, Some(f)),
            _ => (None, None),
        };
        // The upstream's socket ended (no close to send it).
        let mut up_done = false;
        // The client's close frame, passed on to the upstream.
        let mut client_close: Option<(u16, String)> = None;
        // A frame being relayed each way, and its write deadline. While one
        // is being written, its source is not read (a slow side slows the
        // other side's sender, nothing is buffered), but the other direction
        // goes on: a peer that reads only after its own write completed is
        // not stalled by a write towards it.
        let mut to_client: Option<Relay> = None;
        let mut to_up: Option<Relay> = None;
        // ---- end edge mode
        let limits = &self.inner.limits;
        let (outbox, mut rx) =
            Outbox::channel(ctx.id, limits.outbox_capacity, self.inner.budget.clone());
        // Idle check: a tick each idle timeout; a tick with nothing received
        // since the last one sends a ping, the next such tick closes.
        let idle = match self.inner.admission.config.idle_timeout_secs {
            0 => None,
            s => Some(Duration::from_secs(u64::from(s))),
        };
        let mut idle_tick: Option<BoxFuture<'static, ()>> = idle.map(|d| rt.sleep(d));
        let mut received = false;
        let mut pinged = false;
        let mut handler: Option<Box<dyn Handler>> = None;
        if conn.state() == ConnState::Open && !edge_mode {
            handler = Some(
                self.inner
                    .app
                    .open(&self.conn_info(ctx, conn), outbox.clone()),
            );
        }
        let mut stop = shutdown.triggered().boxed();
        // The core's next deadline, on the gateway's shared timer.
        let mut timer: Option<crate::deadlines::Deadline> = None;
        let user = match conn.principal() {
            wsauth_core::Principal::User(u) => Some(u.id.as_str().to_string()),
            _ => None,
        };
        let (live, mut revoked) = self.inner.live.register(ctx.id, ctx.jti.clone(), user);

        let mut busy: u32 = 0;
        let end: Option<(u16, String)> = loop {
            // A client that always has a frame ready never lets this task
            // wait: it gives its thread back every few events, so one fast
            // sender cannot starve the other connections (smol has no
            // budget of its own).
            busy += 1;
            if busy >= EVENTS_BEFORE_YIELD {
                busy = 0;
                yield_now().await;
            }
            let want = conn.poll_timeout();
            if timer.as_ref().map(|t| t.at()) != want {
                timer = want.map(|d| self.inner.deadlines.at(d));
            }
            let event = future::poll_fn(|cx| {
                if stop.poll_unpin(cx).is_ready() {
                    return Poll::Ready(Event::Shutdown);
                }
                if let Poll::Ready(Ok(())) = revoked.poll_unpin(cx) {
                    return Poll::Ready(Event::Revoked);
                }
                if let Some(t) = timer.as_mut() {
                    if t.poll(rt, cx).is_ready() {
                        return Poll::Ready(Event::Timer);
                    }
                }
                if let Some(t) = idle_tick.as_mut() {
                    if t.poll_unpin(cx).is_ready() {
                        return Poll::Ready(Event::IdleTick);
                    }
                }
                if let Poll::Ready(m) = rx.poll_next(cx) {
                    return Poll::Ready(Event::Out(m));
                }
                if let Some(r) = to_client.as_mut() {
                    if let Poll::Ready(done) = r.poll_write(ws, cx) {
                        return Poll::Ready(Event::Relayed { to_up: false, done });
                    }
                }
                if let (Some(r), Some(u)) = (to_up.as_mut(), up.as_mut()) {
                    if let Poll::Ready(done) = r.poll_write(u, cx) {
                        return Poll::Ready(Event::Relayed { to_up: true, done });
                    }
                }
                if let (Some(u), None) = (up.as_mut(), &to_client) {
                    if let Poll::Ready(m) = u.poll_next_unpin(cx) {
                        return Poll::Ready(Event::Up(m));
                    }
                }
                if to_up.is_none() {
                    if let Poll::Ready(m) = ws.poll_next_unpin(cx) {
                        return Poll::Ready(Event::In(m));
                    }
                }
                Poll::Pending
            })
            .await;
            if let Event::In(_) = event {
                // Any frame (a pong included) shows the client is there.
                received = true;
            }
            match event {
                Event::Shutdown => break Some(transport_close(TransportEnd::Shutdown)),
                Event::Revoked => {
                    let c = conn.close(wsauth_core::revoked_close());
                    let ev = self.event(
                        ctx,
                        Stage::Timeout,
                        Outcome::Close,
                        Some(&c),
                        conn.principal(),
                    );
                    self.audit(&ev);
                    break Some((c.code_u16(), c.reason.as_str().to_string()));
                }
                Event::Timer => {
                    timer = None;
                    let before = conn.state();
                    if let Some(c) = conn.handle_timeout(now()) {
                        let stage = if before == ConnState::AwaitingAuth {
                            Stage::AuthMessage
                        } else {
                            Stage::Timeout
                        };
                        let ev = self.event(ctx, stage, Outcome::Close, Some(&c), conn.principal());
                        self.audit(&AuthEvent {
                            stage: Stage::Timeout,
                            ..ev
                        });
                        break Some((c.code_u16(), c.reason.as_str().to_string()));
                    }
                }
                // The client closed and has not taken the close reply for
                // an idle interval: it is gone.
                Event::IdleTick if client_close.is_some() => break None,
                Event::IdleTick => {
                    idle_tick = idle.map(|d| rt.sleep(d));
                    if std::mem::take(&mut received) {
                        pinged = false;
                        continue;
                    }
                    if pinged {
                        let c = idle_close();
                        debug!(conn = ctx.id, "idle timeout");
                        break Some((c.code_u16(), c.reason.as_str().to_string()));
                    }
                    pinged = true;
                    let ping = Message::Ping(Vec::new().into());
                    if !matches!(
                        timeout(rt, limits.write_timeout, ws.send(ping)).await,
                        Some(Ok(()))
                    ) {
                        break None;
                    }
                }
                Event::Out(Outgoing::Overflow(c)) => {
                    break Some((c.code_u16(), c.reason.as_str().to_string()));
                }
                // The application's messages to a client that closed are
                // dropped (see the close frame's arm below).
                Event::Out(Outgoing::Message(_)) if client_close.is_some() => {}
                Event::Out(Outgoing::Message(msg)) => {
                    match timeout(rt, limits.write_timeout, ws.send(msg)).await {
                        Some(Ok(())) => {}
                        Some(Err(e)) => {
                            debug!(conn = ctx.id, error = %e, "write failed");
                            break None;
                        }
                        None => {
                            debug!(conn = ctx.id, "write timed out");
                            break None;
                        }
                    }
                }
                // ---- edge mode: the upstream's frames go to the client as
                // they are; its close is passed on. An established upstream
                // that ends without a close frame closes the client with
                // 1011 (`UPSTREAM_LOST_CODE`): 1014 is kept for connect and
                // handshake failures.
                Event::Up(Some(Ok(Message::Text(_) | Message::Binary(_))))
                    if client_close.is_some() => {}
                Event::Up(Some(Ok(msg @ (Message::Text(_) | Message::Binary(_))))) => {
                    to_client = Some(Relay::new(rt, msg, limits.write_timeout));
                }
                Event::Relayed { to_up: false, done } => {
                    to_client = None;
                    if let Err(why) = done {
                        debug!(conn = ctx.id, why, "write to the client failed");
                        break None;
                    }
                }
                Event::Relayed { to_up: true, done } => {
                    to_up = None;
                    if done.is_err() {
                        up_done = true;
                        break Some((
                            wsauth_core::edge::UPSTREAM_LOST_CODE,
                            wsauth_core::edge::UPSTREAM_LOST_REASON.into(),
                        ));
                    }
                }
                Event::Up(Some(Ok(Message::Close(frame)))) => {
                    up_done = true;
                    // The close as the upstream sent it: tungstenite reports
                    // a code outside its table as 1002.
                    let wire = up.as_ref().and_then(|u| u.get_ref().seen());
                    let (code, reason) = match (wire, frame) {
                        (Some((code, reason)), _) => (code, reason.to_string()),
                        (None, Some(f)) => (u16::from(f.code), f.reason.as_str().to_string()),
                        (None, None) => (1005, String::new()),
                    };
                    break Some((wsauth_core::edge::relay_close_code(code), reason));
                }
                Event::Up(Some(Ok(_))) => {}
                Event::Up(Some(Err(_)) | None) => {
                    up_done = true;
                    debug!(conn = ctx.id, "upstream connection lost");
                    break Some((
                        wsauth_core::edge::UPSTREAM_LOST_CODE,
                        wsauth_core::edge::UPSTREAM_LOST_REASON.into(),
                    ));
                }
                // ---- end edge mode
                Event::In(None) => break None,
                Event::In(Some(Err(e))) => match e {
                    WsError::Capacity(_) => break Some(transport_close(TransportEnd::MessageTooBig)),
                    // RFC 6455 §8.1: a text frame that is not UTF-8 fails with 1007.
                    WsError::Utf8(_) => break Some(transport_close(TransportEnd::InvalidUtf8)),
                    // The client's TCP connection ended without a close
                    // frame: it is gone (in edge mode the upstream gets 1001).
                    WsError::Protocol(
                        async_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    ) => break None,
                    WsError::Protocol(_) => break Some(transport_close(TransportEnd::ProtocolError)),
                    _ => {
                        debug!(conn = ctx.id, error = %e, "read ended");
                        break None;
                    }
                },
                Event::In(Some(Ok(msg))) => {
                    let (bytes, text) = match &msg {
                        Message::Text(t) => (t.as_bytes(), true),
                        Message::Binary(b) => (&b[..], false),
                        Message::Close(f) => {
                            client_close = Some(f.as_ref().map_or((1005, String::new()), |f| {
                                (u16::from(f.code), f.reason.as_str().to_string())
                            }));
                            // Nothing more is written to a client that
                            // closed: tungstenite sends the close reply as
                            // the socket is read to its end. A data frame
                            // written now would fail, and the connection
                            // would end without the reply.
                            to_client = None;
                            continue;
                        }
                        // tungstenite answers pings itself; closes are answered by it too.
                        _ => continue,
                    };
                    let before = conn.state();
                    let mut control = true;
                    let mut relay: Option<Message> = None;
                    // The core's handshake state is large and rare here (an
                    // auth or refresh message): it goes to the heap and its
                    // host steps run in their own allocation, so no value of
                    // its size is part of the open phase's future, which
                    // every idle connection holds.
                    let action = match Act::from(conn.handle_message(bytes, now())) {
                        Act::Steps(hs) => {
                            Act::from(self.in_band(rt, conn, hs, &live).boxed().await)
                        }
                        other => other,
                    };
                    let close = match action {
                        Act::Deliver => {
                            control = false;
                            if up.is_some() {
                                relay = Some(msg.clone());
                            } else if let Some(h) = handler.as_mut() {
                                h.message(app_message(bytes, text));
                            }
                            None
                        }
                        Act::Close(c) => Some(c),
                        Act::Authenticated(principal) => {
                            slot.authenticated();
                            // An anonymous connection that logged in: the
                            // application sees the new principal from now on.
                            if let wsauth_core::Principal::User(u) = &*principal {
                                live.set_user(Some(u.id.as_str().to_string()));
                            }
                            if let Some(h) = handler.as_mut() {
                                h.authenticated(&principal);
                            }
                            None
                        }
                        _ => None,
                    };
                    // ---- edge mode: a delivered frame goes upstream; the
                    // client is not read until the upstream took it.
                    if let (Some(m), true) = (relay, up.is_some()) {
                        to_up = Some(Relay::new(rt, m, limits.write_timeout));
                    }
                    // ---- end edge mode
                    let stage = if before == ConnState::AwaitingAuth {
                        Stage::AuthMessage
                    } else {
                        Stage::Refresh
                    };
                    if let Some(c) = close {
                        self.audit(&self.event(
                            ctx,
                            stage,
                            Outcome::Close,
                            Some(&c),
                            conn.principal(),
                        ));
                        break Some((c.code_u16(), c.reason.as_str().to_string()));
                    }
                    if control && conn.state() == ConnState::Open {
                        self.audit(&self.event(
                            ctx,
                            stage,
                            Outcome::Accept,
                            None,
                            conn.principal(),
                        ));
                        if before == ConnState::AwaitingAuth {
                            if conn.principal().user().is_some() {
                                slot.authenticated();
                            }
                            // ---- edge mode: connect with the principal now known.
                            if let (Some(mut fwd), Some(edge)) = (pending.take(), &self.inner.edge)
                            {
                                edge.sign_into(&mut fwd, conn.principal(), &ctx.route, now());
                                match crate::upstream::connect(rt, edge, &fwd, limits.ws_config())
                                    .boxed()
                                    .await
                                {
                                    Ok((u, _)) => up = Some(Box::new(u)),
                                    Err(e) => {
                                        warn!(upstream = edge.url(), error = %e, "upstream unavailable");
                                        let c = wsauth_core::edge::Edge::unreachable();
                                        break Some((c.code_u16(), c.reason.as_str().to_string()));
                                    }
                                }
                                continue;
                            }
                            // ---- end edge mode
                            handler = Some(
                                self.inner
                                    .app
                                    .open(&self.conn_info(ctx, conn), outbox.clone()),
                            );
                        }
                    }
                }
            }
        };
        if let Some(mut h) = handler.take() {
            h.closed();
        }
        drop(rx);
        let closing_client = async {
            if let Some((code, reason)) = &end {
                close_ws(rt, &mut *ws, *code, reason, limits.close_timeout).await;
            }
        };
        match up.as_mut() {
            // ---- edge mode: the upstream is closed alongside (upstream.rs).
            Some(u) => {
                let closing_up = crate::upstream::close(
                    rt,
                    u,
                    up_done,
                    end.as_ref(),
                    client_close.as_ref(),
                    limits.close_timeout,
                )
                .boxed();
                future::join(closing_up, closing_client.boxed()).await;
            }
            None => closing_client.await,
        }
    }
}

/// What the open phase does with a data frame: the core's
/// [`MessageAction`] without the handshake's value (boxed, so the open
/// phase's future holds no handshake-sized value across its waits).
enum Act {
    Deliver,
    /// Boxed: rare, and large next to the other variants.
    Authenticated(Box<Principal>),
    Close(Close),
    Steps(Box<Handshake>),
    /// Extended or ignored: nothing to do here.
    Other,
}

impl From<MessageAction> for Act {
    fn from(a: MessageAction) -> Act {
        match a {
            MessageAction::Deliver => Act::Deliver,
            MessageAction::Authenticated { principal } => Act::Authenticated(Box::new(principal)),
            MessageAction::Close(c) => Act::Close(c),
            MessageAction::Steps(hs) => Act::Steps(Box::new(hs)),
            _ => Act::Other,
        }
    }
}

/// Events one connection handles in a row before yielding its thread.
const EVENTS_BEFORE_YIELD: u32 = 16;

/// Returns `Pending` once (waking itself), so other tasks run first.
async fn yield_now() {
    let mut yielded = false;
    future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// The core's HTTP status for a request head the gateway could not read.
fn head_refusal(problem: HeadProblem) -> u16 {
    Decision::unreadable_head(problem)
        .denied_status()
        .unwrap_or(400)
}

/// The core's close for what the transport saw, as the loop's `(code, reason)`.
fn transport_close(end: TransportEnd) -> (u16, String) {
    let c = Close::transport(end);
    (c.code_u16(), c.reason.as_str().to_string())
}

/// The application's view of a data frame.
fn app_message(bytes: &[u8], text: bool) -> AppMessage {
    if text {
        AppMessage::Text(String::from_utf8_lossy(bytes).into_owned())
    } else {
        AppMessage::Binary(bytes.to_vec())
    }
}

enum Event {
    Shutdown,
    Revoked,
    Timer,
    IdleTick,
    Out(Outgoing),
    In(Option<Result<Message, WsError>>),
    /// Edge mode: a frame (or the end) from the upstream.
    Up(Option<Result<Message, WsError>>),
    /// Edge mode: a relayed frame was written (to the upstream, or to the
    /// client), or could not be (why).
    Relayed {
        to_up: bool,
        done: Result<(), &'static str>,
    },
}

/// Edge mode: one frame being written to a socket, within a deadline.
struct Relay {
    /// The frame, until the socket took it; then it is flushed.
    msg: Option<Message>,
    deadline: BoxFuture<'static, ()>,
}

impl Relay {
    fn new<R: Runtime>(rt: &R, msg: Message, within: Duration) -> Relay {
        Relay {
            msg: Some(msg),
            deadline: rt.sleep(within),
        }
    }

    /// Writes and flushes the frame into `sink`: ready when it is written,
    /// when the sink failed, or when the deadline passed.
    fn poll_write<K>(
        &mut self,
        sink: &mut K,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<(), &'static str>>
    where
        K: futures::Sink<Message, Error = WsError> + Unpin,
    {
        use futures::SinkExt;
        if let Some(msg) = self.msg.take() {
            match sink.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    if sink.start_send_unpin(msg).is_err() {
                        return Poll::Ready(Err("write failed"));
                    }
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Err("write failed")),
                Poll::Pending => self.msg = Some(msg),
            }
        }
        if self.msg.is_none() {
            match sink.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) => return Poll::Ready(Err("write failed")),
                Poll::Pending => {}
            }
        }
        match self.deadline.poll_unpin(cx) {
            Poll::Ready(()) => Poll::Ready(Err("write timed out")),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// What the open phase keeps of a completed upgrade.
struct Open<S> {
    ws: WebSocketStream<S>,
    conn: Connection,
    ctx: ConnCtx,
    /// This connection's place in the admission counts.
    slot: Slot,
    /// Edge mode: the upstream (connected, or to connect after auth).
    link: Option<crate::upstream::Link>,
}

struct ConnCtx {
    id: u64,
    peer: Option<SocketAddr>,
    path: String,
    route: String,
    /// The token id the revocation check was asked about.
    jti: Option<String>,
}

fn user_record(row: &UserRow) -> UserRecord<'_> {
    UserRecord {
        pk: &row.pk,
        password: &row.password,
        is_active: row.is_active,
        is_staff: row.is_staff,
        is_superuser: row.is_superuser,
    }
}

fn session_row(rec: &SessionRecord) -> SessionRow<'_> {
    SessionRow {
        session_key: &rec.session_key,
        session_data: &rec.session_data,
        expire_date: rec.expire_date,
    }
}

fn route_of<'a>(auth: &'a Authenticator, d: &Decision) -> Option<&'a str> {
    let m = match d {
        Decision::Accept(a) => a.route,
        Decision::AwaitFirstMessage(w) => w.route,
        _ => return None,
    };
    auth.routes().get(m.index()).map(|r| r.name())
}

/// Sends a close frame and waits (bounded) for the client's reply.
pub(crate) async fn close_ws<R, S>(
    rt: &R,
    ws: &mut WebSocketStream<S>,
    code: u16,
    reason: &str,
    wait: Duration,
) where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let frame = CloseFrame {
        code: WsCloseCode::from(code),
        reason: wsauth_core::truncate_reason(reason).into(),
    };
    let finish = async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(_)) = ws.next().await {}
    };
    let _ = timeout(rt, wait, finish).await;
}

/// `fut`'s output, or `None` after `dur`.
///
/// The timer is armed only once `fut` is pending: most lookups, reads and
/// writes complete on their first poll, and a runtime timer costs a
/// registration (on smol, a wake-up of the reactor thread).
pub(crate) async fn timeout<R: Runtime, F: Future>(
    rt: &R,
    dur: Duration,
    fut: F,
) -> Option<F::Output> {
    let deadline = std::time::Instant::now().checked_add(dur);
    let mut fut = pin!(fut);
    let mut timer: Option<BoxFuture<'static, ()>> = None;
    future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        let t = timer.get_or_insert_with(|| match deadline {
            Some(d) => rt.sleep_until(d),
            None => rt.sleep(dur),
        });
        match t.poll_unpin(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// The core's clock, read here once per event.
pub(crate) fn now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(UnixTime::from_unix_duration)
        .unwrap_or(UnixTime::EPOCH)
}

/// Unix time in milliseconds.
pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Resolves `{ env = … }` and `{ file = … }` secret references.
pub fn resolve_secret_ref(r: &wsauth_core::SecretRef) -> Option<String> {
    r.resolve(
        |name| std::env::var(name).ok(),
        |path| std::fs::read(path).ok(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A runtime whose timers never fire on their own and are counted.
    #[derive(Clone, Default)]
    struct CountingRuntime {
        armed: Arc<AtomicUsize>,
    }

    impl Runtime for CountingRuntime {
        fn spawn(&self, task: BoxFuture<'static, ()>) {
            drop(task);
        }
        fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
            self.armed.fetch_add(1, Ordering::SeqCst);
            if duration.is_zero() {
                future::ready(()).boxed()
            } else {
                future::pending().boxed()
            }
        }
    }

    /// The core's codes that RFC 6455 defines are the numbers tungstenite's
    /// table (an independent transcription of the RFC) gives them, and the
    /// transport's ends close with them.
    #[test]
    fn rfc_6455_codes_match_tungstenites_table() {
        use wsauth_core::CloseCode;
        for (core, rfc) in [
            (CloseCode::GoingAway, WsCloseCode::Away),
            (CloseCode::ProtocolError, WsCloseCode::Protocol),
            (CloseCode::InvalidPayload, WsCloseCode::Invalid),
            (CloseCode::PolicyViolation, WsCloseCode::Policy),
            (CloseCode::MessageTooBig, WsCloseCode::Size),
            (CloseCode::TryAgainLater, WsCloseCode::Again),
        ] {
            assert_eq!(core.as_u16(), u16::from(rfc), "{core:?}");
        }
        for (end, rfc) in [
            (TransportEnd::Shutdown, WsCloseCode::Away),
            (TransportEnd::MessageTooBig, WsCloseCode::Size),
            (TransportEnd::InvalidUtf8, WsCloseCode::Invalid),
            (TransportEnd::ProtocolError, WsCloseCode::Protocol),
        ] {
            let (code, reason) = transport_close(end);
            assert_eq!(code, u16::from(rfc), "{end:?}");
            assert!(!reason.is_empty() && reason.len() <= wsauth_core::MAX_REASON_BYTES);
        }
    }

    /// The refusals for unreadable heads are the statuses the `http` crate
    /// names for them (RFC 6585 §5, RFC 9110 §15.5.1).
    #[test]
    fn unreadable_heads_are_refused_with_the_named_statuses() {
        use async_tungstenite::tungstenite::http::StatusCode;
        assert_eq!(
            head_refusal(HeadProblem::TooLarge),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE.as_u16()
        );
        for p in [HeadProblem::Malformed, HeadProblem::NotWebSocket] {
            assert_eq!(head_refusal(p), StatusCode::BAD_REQUEST.as_u16());
        }
    }

    #[test]
    fn timeout_arms_no_timer_for_a_ready_future() {
        let rt = CountingRuntime::default();
        let out = futures::executor::block_on(timeout(&rt, Duration::from_secs(5), async { 7 }));
        assert_eq!(out, Some(7));
        assert_eq!(rt.armed.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn timeout_arms_one_timer_for_a_pending_future_and_fires() {
        let rt = CountingRuntime::default();
        let out =
            futures::executor::block_on(timeout(&rt, Duration::ZERO, future::pending::<u8>()));
        assert_eq!(out, None);
        assert_eq!(rt.armed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_pending_future_completing_later_wins_over_its_timer() {
        let rt = CountingRuntime::default();
        let (tx, rx) = futures::channel::oneshot::channel::<u8>();
        let fut = timeout(&rt, Duration::from_secs(5), rx);
        let mut fut = pin!(fut);
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(rt.armed.load(Ordering::SeqCst), 1);
        tx.send(3).ok();
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Some(Ok(3))));
        assert_eq!(rt.armed.load(Ordering::SeqCst), 1);
    }

    /// A runtime whose timers complete at once and are recorded.
    #[derive(Clone, Default)]
    struct RecordingRuntime {
        sleeps: Arc<std::sync::Mutex<Vec<Duration>>>,
    }

    impl Runtime for RecordingRuntime {
        fn spawn(&self, task: BoxFuture<'static, ()>) {
            drop(task);
        }
        fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
            self.sleeps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(duration);
            future::ready(()).boxed()
        }
    }

    #[test]
    fn accept_errors_back_off_exponentially_up_to_a_cap() {
        let config =
            crate::reference::default_config(wsauth_core::SecretRef::Value("k".repeat(50)));
        let secrets = config.resolve_secrets(|_| None).unwrap();
        let auth = Authenticator::from_config(&config, &secrets).unwrap();
        let gw = Gateway::new(
            auth,
            Arc::new(crate::host::MemoryHost::new()),
            Arc::new(crate::app::NullApp),
            Limits::default(),
        );
        let rt = RecordingRuntime::default();
        let errors = (0..12).map(|_| {
            Err::<(futures::io::Cursor<Vec<u8>>, Option<SocketAddr>), _>(io::Error::from(
                io::ErrorKind::Other,
            ))
        });
        let incoming = futures::stream::iter(errors);
        futures::executor::block_on(gw.serve_incoming(rt.clone(), incoming, ShutdownHandle::new()));
        let sleeps = rt.sleeps.lock().unwrap().clone();
        let ms: Vec<u128> = sleeps.iter().take(12).map(Duration::as_millis).collect();
        assert_eq!(
            ms,
            vec![5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000]
        );
    }

    /// A runtime whose timers never fire.
    #[derive(Clone)]
    struct IdleRuntime;

    impl Runtime for IdleRuntime {
        fn spawn(&self, task: BoxFuture<'static, ()>) {
            drop(task);
        }
        fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
            future::pending().boxed()
        }
    }

    /// Every idle connection holds its task's future: the open phase keeps
    /// the connection's state in one allocation and no handshake-sized
    /// value (the core's `Handshake` is ~2 KiB) across its waits.
    #[test]
    fn an_open_connection_holds_a_small_future() {
        type S = futures::io::Cursor<Vec<u8>>;
        let config =
            crate::reference::default_config(wsauth_core::SecretRef::Value("k".repeat(50)));
        let secrets = config.resolve_secrets(|_| None).unwrap();
        let auth = Authenticator::from_config(&config, &secrets).unwrap();
        let gw = Gateway::new(
            auth,
            Arc::new(crate::host::MemoryHost::new()),
            Arc::new(crate::app::NullApp),
            Limits::default(),
        );
        let sd = ShutdownHandle::new();
        let whole = gw.handle_untracked(&IdleRuntime, S::default(), None, &sd);
        assert!(
            std::mem::size_of_val(&whole) <= 2048,
            "{} bytes",
            std::mem::size_of_val(&whole)
        );
        assert!(std::mem::size_of::<Handshake>() > 1024);
    }

    #[test]
    fn the_read_buffer_is_small_and_message_limits_stay() {
        let limits = Limits::default().with_max_message_bytes(100_000);
        let c = limits.ws_config();
        assert!(c.read_buffer_size <= 2 * 1024);
        assert_eq!(c.max_message_size, Some(100_000));
        assert_eq!(c.max_frame_size, Some(100_000));
    }
}
