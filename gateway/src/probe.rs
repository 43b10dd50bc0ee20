//! A WebSocket client that reports what a server decided: the upgrade was
//! refused (`HTTP <status>`), the socket was accepted and then closed
//! (`CLOSED <code> <reason>`), or it stayed open (`OPEN`).
//!
//! Runtime-agnostic: it runs over any `futures-io` stream; the caller
//! connects the socket (`wsauth probe` uses smol).

use crate::runtime::Runtime;
use crate::tap::CloseTap;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::{self, HeaderValue};
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures::io::{AsyncRead, AsyncWrite};
use futures::StreamExt;
use std::fmt;
use std::time::Duration;

/// Where the probe puts the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeCarrier {
    /// `?token=T`.
    Query,
    /// `?access=T`.
    QueryAccess,
    /// `Authorization: Bearer T`.
    Header,
    /// `Sec-WebSocket-Protocol: bearer, T` (the server must echo `bearer`).
    Subprotocol,
    /// `Cookie: <cookie_name>=T`.
    Cookie,
    /// A first in-band message `{"type":"auth","token":T}` after the upgrade.
    Message,
}

/// What to probe.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    /// `ws://host:port/path?query`.
    pub url: String,
    /// The credential to present (never printed).
    pub token: Option<String>,
    /// How to present it.
    pub carrier: ProbeCarrier,
    /// Cookie name for [`ProbeCarrier::Cookie`].
    pub cookie_name: String,
    /// `Origin` header to send.
    pub origin: Option<String>,
    /// How long to wait for a close after the upgrade before reporting `OPEN`.
    pub wait: Duration,
}

impl ProbeRequest {
    /// A probe of `url` without a credential, waiting 500 ms.
    pub fn new(url: impl Into<String>) -> Self {
        ProbeRequest {
            url: url.into(),
            token: None,
            carrier: ProbeCarrier::Query,
            cookie_name: "access_token".into(),
            origin: None,
            wait: Duration::from_millis(500),
        }
    }
}

/// What the server did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// Upgraded and still open after the wait.
    Open {
        /// The subprotocol the server chose, if any.
        subprotocol: Option<String>,
        /// The gateway's mode, when it says (`edge`: the connection was
        /// forwarded to the app behind it).
        mode: Option<String>,
    },
    /// Upgraded, then closed by the server.
    Closed {
        /// Close code (1005 when the frame had none).
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// The upgrade was refused with this HTTP status.
    Http {
        /// The status code.
        status: u16,
    },
}

impl ProbeOutcome {
    /// `OPEN`, `CLOSED <code> <reason>` or `HTTP <status>`.
    pub fn line(&self) -> String {
        match self {
            ProbeOutcome::Open { .. } => "OPEN".into(),
            ProbeOutcome::Closed { code, reason } if reason.is_empty() => format!("CLOSED {code}"),
            ProbeOutcome::Closed { code, reason } => format!("CLOSED {code} {reason}"),
            ProbeOutcome::Http { status } => format!("HTTP {status}"),
        }
    }

    /// One JSON object: `{"outcome":"open"|"closed"|"http", …}`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ProbeOutcome::Open { subprotocol, mode } => {
                let mut v = serde_json::json!({ "outcome": "open", "subprotocol": subprotocol });
                if let Some(m) = mode {
                    v["mode"] = serde_json::Value::String(m.clone());
                }
                v
            }
            ProbeOutcome::Closed { code, reason } => {
                serde_json::json!({ "outcome": "closed", "code": code, "reason": reason })
            }
            ProbeOutcome::Http { status } => {
                serde_json::json!({ "outcome": "http", "status": status })
            }
        }
    }
}

/// Why a probe could not report an outcome.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProbeError {
    /// The URL is not a usable `ws://` URL, or the token cannot go in a header.
    BadRequest(String),
    /// The connection failed (refused, reset, protocol error).
    Connect(String),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::BadRequest(m) => write!(f, "bad request: {m}"),
            ProbeError::Connect(m) => write!(f, "connection failed: {m}"),
        }
    }
}

impl std::error::Error for ProbeError {}

/// Host and port of a `ws://` URL (for connecting the socket).
pub fn ws_authority(url: &str) -> Result<(String, u16), ProbeError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| ProbeError::BadRequest("not a URL".into()))?;
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => {
            return Err(ProbeError::BadRequest(
                "wss:// is not supported; use ws://".into(),
            ))
        }
        _ => {
            return Err(ProbeError::BadRequest(
                "the URL must start with ws://".into(),
            ))
        }
    }
    let host = uri
        .host()
        .ok_or_else(|| ProbeError::BadRequest("the URL has no host".into()))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, uri.port_u16().unwrap_or(80)))
}

/// The client request for `req` (credential placed by the carrier).
pub fn build_request(req: &ProbeRequest) -> Result<http::Request<()>, ProbeError> {
    let bad = |m: &str| ProbeError::BadRequest(m.to_string());
    ws_authority(&req.url)?;
    let mut url = req.url.clone();
    let token = req.token.as_deref();
    if let (Some(t), ProbeCarrier::Query | ProbeCarrier::QueryAccess) = (token, req.carrier) {
        let name = if req.carrier == ProbeCarrier::Query {
            "token"
        } else {
            "access"
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        url = format!("{url}{sep}{name}={}", percent_encode(t));
    }
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|_| bad("not a usable ws:// URL"))?;
    let headers = request.headers_mut();
    let header = |v: String| {
        HeaderValue::from_str(&v).map_err(|_| bad("the token cannot be sent in a header"))
    };
    if let Some(t) = token {
        match req.carrier {
            ProbeCarrier::Header => {
                headers.insert(http::header::AUTHORIZATION, header(format!("Bearer {t}"))?);
            }
            ProbeCarrier::Subprotocol => {
                headers.insert(
                    http::header::SEC_WEBSOCKET_PROTOCOL,
                    header(format!("bearer, {t}"))?,
                );
            }
            ProbeCarrier::Cookie => {
                headers.insert(
                    http::header::COOKIE,
                    header(format!("{}={t}", req.cookie_name))?,
                );
            }
            ProbeCarrier::Query | ProbeCarrier::QueryAccess | ProbeCarrier::Message => {}
        }
    }
    if let Some(o) = &req.origin {
        headers.insert(
            http::header::ORIGIN,
            HeaderValue::from_str(o).map_err(|_| bad("bad --origin"))?,
        );
    }
    Ok(request)
}

/// The first-message auth frame for `token`.
pub fn auth_message(token: &str) -> String {
    serde_json::json!({ "type": "auth", "token": token }).to_string()
}

/// Runs the probe over a connected `stream`.
pub async fn probe<S, R>(rt: &R, stream: S, req: &ProbeRequest) -> Result<ProbeOutcome, ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    R: Runtime,
{
    let request = build_request(req)?;
    let tap = CloseTap::after_head(stream);
    let (mut ws, response) = match async_tungstenite::client_async(request, tap).await {
        Ok(ok) => ok,
        Err(WsError::Http(resp)) => {
            return Ok(ProbeOutcome::Http {
                status: resp.status().as_u16(),
            })
        }
        Err(e) => return Err(ProbeError::Connect(e.to_string())),
    };
    let subprotocol = response
        .headers()
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mode = response
        .headers()
        .get(wsauth_core::edge::MODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let (ProbeCarrier::Message, Some(t)) = (req.carrier, req.token.as_deref()) {
        // A send may fail if the server already closed; the close frame tells why.
        let _ = ws.send(Message::text(auth_message(t))).await;
    }
    let mut wait = rt.sleep(req.wait);
    loop {
        let next = futures::future::select(ws.next(), wait).await;
        match next {
            futures::future::Either::Left((msg, w)) => {
                wait = w;
                match msg {
                    Some(Ok(Message::Close(frame))) => {
                        // tungstenite reports a code it does not know (1014,
                        // edge mode's "upstream unavailable") as 1002: the
                        // frame as the server sent it is reported instead.
                        return Ok(match ws.get_ref().seen() {
                            Some((code, reason)) => ProbeOutcome::Closed {
                                code,
                                reason: reason.to_string(),
                            },
                            None => closed(frame),
                        });
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) | None => {
                        return Ok(ProbeOutcome::Closed {
                            code: 1006,
                            reason: String::new(),
                        })
                    }
                    Some(Err(e)) => return Err(ProbeError::Connect(e.to_string())),
                }
            }
            futures::future::Either::Right(((), _)) => {
                let _ = ws.close(None).await;
                return Ok(ProbeOutcome::Open { subprotocol, mode });
            }
        }
    }
}

fn closed(frame: Option<CloseFrame>) -> ProbeOutcome {
    match frame {
        Some(f) => ProbeOutcome::Closed {
            code: u16::from(f.code),
            reason: f.reason.to_string(),
        },
        None => ProbeOutcome::Closed {
            code: 1005,
            reason: String::new(),
        },
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriers_place_the_token() {
        let mut req = ProbeRequest::new("ws://127.0.0.1:9/ws/chat/a/");
        req.token = Some("a.b+c".into());
        let r = build_request(&req).unwrap();
        assert_eq!(r.uri().query(), Some("token=a.b%2Bc"));
        req.carrier = ProbeCarrier::QueryAccess;
        req.url = "ws://127.0.0.1:9/x/?k=v".into();
        assert_eq!(
            build_request(&req).unwrap().uri().query(),
            Some("k=v&access=a.b%2Bc")
        );
        req.carrier = ProbeCarrier::Header;
        assert_eq!(
            build_request(&req).unwrap().headers()["authorization"],
            "Bearer a.b+c"
        );
        req.carrier = ProbeCarrier::Subprotocol;
        assert_eq!(
            build_request(&req).unwrap().headers()["sec-websocket-protocol"],
            "bearer, a.b+c"
        );
        req.carrier = ProbeCarrier::Cookie;
        req.origin = Some("http://localhost:3000".into());
        let r = build_request(&req).unwrap();
        assert_eq!(r.headers()["cookie"], "access_token=a.b+c");
        assert_eq!(r.headers()["origin"], "http://localhost:3000");
        req.carrier = ProbeCarrier::Message;
        let r = build_request(&req).unwrap();
        assert!(r.headers().get("cookie").is_none() && r.uri().query() == Some("k=v"));
    }

    #[test]
    fn urls_must_be_ws() {
        assert_eq!(
            ws_authority("ws://localhost:8001/a/").unwrap(),
            ("localhost".into(), 8001)
        );
        assert_eq!(ws_authority("ws://[::1]/a/").unwrap(), ("::1".into(), 80));
        assert!(ws_authority("wss://localhost/").is_err());
        assert!(ws_authority("http://localhost/").is_err());
        assert!(ws_authority("not a url").is_err());
    }

    #[test]
    fn outcome_lines() {
        assert_eq!(
            ProbeOutcome::Open {
                subprotocol: None,
                mode: None
            }
            .line(),
            "OPEN"
        );
        let c = ProbeOutcome::Closed {
            code: 4403,
            reason: "staff only".into(),
        };
        assert_eq!(c.line(), "CLOSED 4403 staff only");
        assert_eq!(c.to_json()["code"], 4403);
        assert_eq!(ProbeOutcome::Http { status: 403 }.line(), "HTTP 403");
    }
}
