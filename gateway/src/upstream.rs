//! Edge mode: the connection to the application the gateway fronts.
//!
//! With `[upstream]` configured, every handshake is decided here as usual;
//! an accepted one is forwarded to the app (`wsauth_core::edge`): the
//! upstream is connected *before* the client's 101 is written, so the app's
//! subprotocol choice reaches the client. A connection awaiting its first
//! auth message is connected once it has authenticated. An upstream that
//! cannot be reached, times out or refuses the handshake leaves the client
//! accepted and closed with [`Edge::unreachable`] (1014).
//!
//! The open phase (in `gateway.rs`) relays data frames both ways — only the
//! frames the core delivers; refresh and auth messages carry tokens and stay
//! here — with at most one frame in flight each way: while a frame waits to
//! be written, the side it came from is not read (a slow side slows its
//! sender instead of growing a buffer), and the other direction goes on.
//! Each write is bounded by the write timeout. Pings are answered on each
//! hop by tungstenite; a close from either side is passed on with its code
//! ([`relay_close_code`](wsauth_core::edge::relay_close_code)).
//!
//! Limits: the upstream socket has the client's limits
//! (`max_message_bytes`): a larger message from the app ends it, and the
//! client is closed 1011 like for any upstream that ends without a close.
//! tungstenite reports close codes outside its table (1014 among them) as
//! 1002; the upstream's close is read off the wire instead ([`CloseTap`]),
//! so the client gets the app's own code (the core's
//! [`relay_close_code`](wsauth_core::edge::relay_close_code) decides which).
//!
//! Nothing here logs the forwarded query or the principal header.

use crate::runtime::{OutboundStream, Runtime};
use crate::tap::CloseTap;
use async_tungstenite::tungstenite::handshake::client::generate_key;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::WebSocketStream;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use std::fmt;
use std::io;
use std::time::Duration;
use wsauth_core::edge::{relay_close_code, Edge, Forward, CLIENT_GONE_CODE, CLIENT_GONE_REASON};
use wsauth_core::{Decision, HandshakeView, Subprotocol};

/// Largest upstream response head accepted.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// An open WebSocket to the upstream.
/// An open WebSocket to the upstream, its frames followed by a
/// [`CloseTap`] so that its close code is passed on as it was sent.
pub(crate) type UpstreamWs = WebSocketStream<CloseTap<OutboundStream>>;

/// A connection's link to the upstream, as the upgrade leaves it.
pub(crate) enum Link {
    /// Connected: relay frames.
    Up(Box<UpstreamWs>),
    /// Awaiting the client's auth message: connect once it authenticated.
    Pending(Box<Forward>),
    /// Could not connect: accept the client and close it with 1014.
    Unreachable,
}

/// Why the upstream could not be used.
#[derive(Debug)]
pub(crate) enum Failure {
    /// TCP connect or I/O failed.
    Io(io::Error),
    /// Connect and handshake took longer than `connect_timeout_ms`.
    Timeout,
    /// The upstream answered the upgrade with this HTTP status.
    Refused(u16),
    /// The upstream's answer is not a valid WebSocket handshake.
    BadHandshake(&'static str),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Io(e) => write!(f, "i/o error: {e}"),
            Failure::Timeout => f.write_str("connect timed out"),
            Failure::Refused(s) => write!(f, "handshake refused with HTTP {s}"),
            Failure::BadHandshake(why) => write!(f, "bad handshake answer: {why}"),
        }
    }
}

/// The forwarded handshake for the client's request `view` (credentials
/// stripped), with the decision's subprotocol.
pub(crate) fn forward(edge: &Edge, view: &HandshakeView<'_>, decision: &Decision) -> Forward {
    edge.forward(view, decision.subprotocol().and_then(Subprotocol::new))
}

/// What the upgrade does in edge mode for `decision`: connects an accepted
/// connection (signed with its principal and `route`), keeps the forward of
/// one awaiting its auth message, nothing for a refusal. The second value
/// is the subprotocol to answer the client with, when connected.
pub(crate) async fn on_decision<R: Runtime>(
    rt: &R,
    edge: &Edge,
    view: &HandshakeView<'_>,
    decision: &Decision,
    route: &str,
    config: WebSocketConfig,
) -> (Option<Link>, Option<Option<String>>) {
    match decision {
        Decision::Accept(_) => {
            let mut fwd = forward(edge, view, decision);
            if let Some(p) = decision.principal() {
                edge.sign_into(&mut fwd, p, route, crate::gateway::now());
            }
            match connect(rt, edge, &fwd, config).await {
                Ok((ws, chosen)) => match fwd.client_subprotocol(chosen.as_deref()) {
                    Ok(answer) => {
                        let answer = answer.map(str::to_string);
                        (Some(Link::Up(Box::new(ws))), Some(answer))
                    }
                    Err(_) => {
                        tracing::warn!(
                            upstream = edge.url(),
                            "upstream chose a subprotocol it was not offered"
                        );
                        (Some(Link::Unreachable), None)
                    }
                },
                Err(e) => {
                    tracing::warn!(upstream = edge.url(), error = %e, "upstream unavailable");
                    (Some(Link::Unreachable), None)
                }
            }
        }
        Decision::AwaitFirstMessage(_) => {
            let fwd = forward(edge, view, decision);
            (Some(Link::Pending(Box::new(fwd))), None)
        }
        _ => (None, None),
    }
}

/// Connects to the upstream and performs the client handshake for `fwd`
/// within the edge's connect timeout: the upstream's socket and its chosen
/// subprotocol.
pub(crate) async fn connect<R: Runtime>(
    rt: &R,
    edge: &Edge,
    fwd: &Forward,
    config: WebSocketConfig,
) -> Result<(UpstreamWs, Option<String>), Failure> {
    let limit = Duration::from_millis(edge.connect_timeout_ms());
    match crate::gateway::timeout(rt, limit, connect_untimed(rt, edge, fwd, config)).await {
        Some(r) => r,
        None => Err(Failure::Timeout),
    }
}

async fn connect_untimed<R: Runtime>(
    rt: &R,
    edge: &Edge,
    fwd: &Forward,
    config: WebSocketConfig,
) -> Result<(UpstreamWs, Option<String>), Failure> {
    let authority = edge.addr().authority();
    let mut stream = rt.connect(authority.clone()).await.map_err(Failure::Io)?;
    let key = generate_key();
    let mut req: Vec<u8> = Vec::with_capacity(512);
    req.extend_from_slice(b"GET ");
    req.extend_from_slice(fwd.target.as_bytes());
    req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    req.extend_from_slice(authority.as_bytes());
    req.extend_from_slice(b"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ");
    req.extend_from_slice(key.as_bytes());
    req.extend_from_slice(b"\r\n");
    for (name, value) in &fwd.headers {
        // Values come from a parsed request head or from the signer: a line
        // break in one would be a bug, never forwarded.
        if value.iter().any(|&b| b == b'\r' || b == b'\n') {
            continue;
        }
        req.extend_from_slice(name.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
    }
    if !fwd.subprotocols.is_empty() {
        req.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        req.extend_from_slice(fwd.subprotocols.join(", ").as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    stream.write_all(&req).await.map_err(Failure::Io)?;
    stream.flush().await.map_err(Failure::Io)?;
    drop(req);

    let mut raw: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let (head_len, chosen) = loop {
        if raw.len() >= MAX_RESPONSE_HEAD {
            return Err(Failure::BadHandshake("response head too large"));
        }
        let n = stream.read(&mut chunk).await.map_err(Failure::Io)?;
        if n == 0 {
            return Err(Failure::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        raw.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut headers = [httparse::EMPTY_HEADER; crate::head::MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&raw) {
            Ok(httparse::Status::Partial) => continue,
            Err(_) => return Err(Failure::BadHandshake("malformed response")),
            Ok(httparse::Status::Complete(len)) => {
                let status = resp.code.unwrap_or(0);
                if status != 101 {
                    return Err(Failure::Refused(status));
                }
                let get = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| h.value)
                };
                let upgrade_ok = get("upgrade")
                    .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"websocket"));
                if !upgrade_ok {
                    return Err(Failure::BadHandshake("no websocket upgrade"));
                }
                let accept = derive_accept_key(key.as_bytes());
                if get("sec-websocket-accept").map(<[u8]>::trim_ascii) != Some(accept.as_bytes()) {
                    return Err(Failure::BadHandshake("wrong Sec-WebSocket-Accept"));
                }
                let chosen = match get("sec-websocket-protocol") {
                    None => None,
                    Some(v) => Some(
                        std::str::from_utf8(v)
                            .map_err(|_| Failure::BadHandshake("subprotocol not UTF-8"))?
                            .trim()
                            .to_string(),
                    ),
                };
                break (len, chosen);
            }
        }
    };
    // Frames the upstream sent right after its 101 are replayed first.
    let rest = raw.split_off(head_len);
    drop(raw);
    let mut tap = CloseTap::frames(stream);
    tap.feed(&rest);
    let ws = if rest.is_empty() {
        WebSocketStream::from_raw_socket(tap, Role::Client, Some(config)).await
    } else {
        WebSocketStream::from_partially_read(tap, rest, Role::Client, Some(config)).await
    };
    Ok((ws, chosen))
}

/// Closes the upstream when the client's side ended: with the same close
/// (`end`), else the client's own close relayed, else 1001 (the client
/// went away). An upstream that ended itself (`done`) only gets its close
/// reply flushed.
pub(crate) async fn close<R: Runtime>(
    rt: &R,
    up: &mut UpstreamWs,
    done: bool,
    end: Option<&(u16, String)>,
    client_close: Option<&(u16, String)>,
    wait: Duration,
) {
    use futures::StreamExt;
    if done {
        let _ = crate::gateway::timeout(rt, wait, async {
            while let Some(Ok(_)) = up.next().await {}
        })
        .await;
        return;
    }
    let (code, reason) = match (end, client_close) {
        (Some((c, r)), _) => (*c, r.as_str()),
        (None, Some((c, r))) => (relay_close_code(*c), r.as_str()),
        (None, None) => (CLIENT_GONE_CODE, CLIENT_GONE_REASON),
    };
    crate::gateway::close_ws(rt, up, code, reason, wait).await;
}
