//! The server side of the WebSocket opening handshake (RFC 6455 §4.2).
//!
//! The decision may need host lookups (async), so the request head is read
//! here first — bounded in size — checked the way tungstenite's server
//! handshake checks it, decided, and answered here: the `101` with the echoed
//! subprotocol, or an HTTP error. The open connection then starts from the
//! socket and the bytes a pipelining client sent after the head.
//!
//! tungstenite's own server handshake is not used: it would parse the head a
//! second time and build a header map for the request and another for the
//! response, per connection, which measured as a visible share of a
//! handshake's CPU against a bare server. Its checks are kept byte for byte
//! (`create_parts` in tungstenite 0.30), and a test compares the two on
//! generated heads.

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::http;
use base64::Engine as _;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use std::io;

/// Most headers accepted in a request head (tungstenite's own limit).
pub(crate) const MAX_HEADERS: usize = 124;

/// Why a request head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The peer closed the connection or the socket failed.
    Io(io::Error),
    /// Larger than the configured limit (or too many headers): answer 431.
    TooLarge,
    /// Not parseable as an HTTP/1.1 request: answer 400.
    Malformed,
}

/// A complete request head and the bytes that followed it.
pub(crate) struct Head {
    /// Everything read from the socket: the head, then any bytes after it.
    raw: Vec<u8>,
    /// Length of the head within `raw`: bytes after it are the client's first
    /// frames, sent in the same packet as the request (pipelined).
    head_len: usize,
}

impl Head {
    /// The head's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.raw.get(..self.head_len).unwrap_or_default()
    }

    /// The bytes the client sent after the head (its first frames).
    pub(crate) fn into_rest(mut self) -> Vec<u8> {
        if self.head_len >= self.raw.len() {
            return Vec::new();
        }
        self.raw.split_off(self.head_len)
    }
}

/// Reads one request head of at most `max_bytes`.
pub(crate) async fn read_head<S>(stream: &mut S, max_bytes: usize) -> Result<Head, HeadError>
where
    S: AsyncRead + Unpin,
{
    let mut raw: Vec<u8> = Vec::with_capacity(1024.min(max_bytes.max(1)));
    loop {
        let room = max_bytes.saturating_sub(raw.len());
        if room == 0 {
            return Err(HeadError::TooLarge);
        }
        // Read straight into the spare capacity (grown by at most 1 KiB
        // at a time, never past the limit).
        let have = raw.len();
        let want = room.min((raw.capacity() - have).max(1024));
        raw.resize(have + want, 0);
        let n = match stream.read(raw.get_mut(have..).unwrap_or_default()).await {
            Ok(n) => n,
            Err(e) => return Err(HeadError::Io(e)),
        };
        raw.truncate(have + n);
        if n == 0 {
            return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        if let Some(head_len) = complete(&raw)? {
            return Ok(Head { raw, head_len });
        }
    }
}

/// `Some(head length)` once `raw` holds a complete head.
fn complete(raw: &[u8]) -> Result<Option<usize>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(raw) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// Why a complete head is not a WebSocket upgrade this server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotUpgrade {
    /// Not a parseable HTTP request (or its target is not a URI).
    Malformed,
    /// An HTTP request, but not a valid WebSocket upgrade (wrong method or
    /// version, a missing or wrong `Connection`, `Upgrade`,
    /// `Sec-WebSocket-Version` or `Sec-WebSocket-Key`).
    NotWebSocket,
}

/// A WebSocket upgrade request, borrowed from its head.
pub(crate) struct Upgrade<'a> {
    /// The request method (`GET`).
    pub(crate) method: &'a str,
    /// The request target, parsed (for its path and query).
    pub(crate) uri: http::Uri,
    /// Every header, in request order, names as sent.
    pub(crate) headers: Vec<(&'a str, &'a [u8])>,
    /// `Sec-WebSocket-Key`, checked: 24 characters of padded base64 for 16 bytes.
    key: &'a [u8],
}

impl<'a> Upgrade<'a> {
    /// Parses and checks a complete head.
    pub(crate) fn parse(head: &'a [u8]) -> Result<Self, NotUpgrade> {
        let mut buf = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut buf);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Err(NotUpgrade::Malformed),
        }
        let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version)
        else {
            return Err(NotUpgrade::Malformed);
        };
        let uri: http::Uri = target.parse().map_err(|_| NotUpgrade::Malformed)?;
        let headers: Vec<(&'a str, &'a [u8])> =
            req.headers.iter().map(|h| (h.name, h.value)).collect();
        let first = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        // tungstenite's `create_parts`, check by check and in its order.
        if method != "GET" || version < 1 {
            return Err(NotUpgrade::NotWebSocket);
        }
        let connection_upgrade = first("connection").and_then(visible_str).is_some_and(|v| {
            v.split([' ', ','])
                .any(|p| p.eq_ignore_ascii_case("Upgrade"))
        });
        let upgrade_websocket = first("upgrade")
            .and_then(visible_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let version_13 = first("sec-websocket-version") == Some(b"13".as_slice());
        let key = first("sec-websocket-key")
            .filter(|k| k.len() == 24)
            .filter(|k| {
                base64::engine::general_purpose::STANDARD
                    .decode(k)
                    .is_ok_and(|d| d.len() == 16)
            });
        match key {
            Some(key) if connection_upgrade && upgrade_websocket && version_13 => Ok(Upgrade {
                method,
                uri,
                headers,
                key,
            }),
            _ => Err(NotUpgrade::NotWebSocket),
        }
    }

    /// The `101 Switching Protocols` answer, with the edge-mode header when
    /// `edge` and the subprotocol when `Some` (skipped if it could not be a
    /// header value).
    pub(crate) fn accept_response(&self, edge: bool, subprotocol: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(192);
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: ");
        out.extend_from_slice(derive_accept_key(self.key).as_bytes());
        out.extend_from_slice(b"\r\n");
        if edge {
            header_line(
                &mut out,
                wsauth_core::edge::MODE_HEADER,
                wsauth_core::edge::MODE_EDGE,
            );
        }
        if let Some(p) = subprotocol.filter(|p| visible_str(p.as_bytes()).is_some()) {
            header_line(&mut out, "sec-websocket-protocol", p);
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

fn header_line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The value as text when every byte is visible ASCII, a space or a tab
/// (`HeaderValue::to_str`'s rule).
fn visible_str(v: &[u8]) -> Option<&str> {
    if v.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// A plain HTTP error response with `status`'s reason as its body.
pub(crate) fn http_error(status: u16) -> Vec<u8> {
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::FORBIDDEN);
    let reason = status.canonical_reason().unwrap_or("Error");
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{reason}\n",
        status.as_u16(),
        reason.len() + 1
    )
    .into_bytes()
}

/// Writes `bytes` (an HTTP response before any upgrade) and flushes.
pub(crate) async fn write_all<S>(stream: &mut S, bytes: &[u8]) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    use futures::io::AsyncWriteExt;
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Writes a plain HTTP error response and closes the stream.
pub(crate) async fn write_http_error<S>(stream: &mut S, status: u16)
where
    S: AsyncWrite + Unpin,
{
    use futures::io::AsyncWriteExt;
    let _ = write_all(stream, &http_error(status)).await;
    let _ = stream.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tungstenite::tungstenite::handshake::server::create_response;
    use proptest::prelude::*;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    /// The head read from `bytes` (which must hold one).
    fn read_ok(bytes: &[u8], max_bytes: usize) -> Head {
        let mut src = futures::io::Cursor::new(bytes.to_vec());
        run(read_head(&mut src, max_bytes))
            .map_err(|e| format!("{e:?}"))
            .unwrap()
    }

    const UPGRADE: &str = "GET /ws/chat/a/?token=x HTTP/1.1\r\nHost: h\r\nOrigin: http://localhost:3000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[test]
    fn reads_a_complete_head_and_keeps_trailing_bytes() {
        let mut bytes = UPGRADE.as_bytes().to_vec();
        bytes.extend_from_slice(b"\x81\x02hi");
        let head = read_ok(&bytes, 4096);
        assert_eq!(head.bytes(), UPGRADE.as_bytes());
        let up = Upgrade::parse(head.bytes()).unwrap();
        assert_eq!(up.uri.path(), "/ws/chat/a/");
        assert_eq!(up.uri.query(), Some("token=x"));
        assert_eq!(
            up.headers[1],
            ("Origin", b"http://localhost:3000".as_slice())
        );
        assert_eq!(head.into_rest(), b"\x81\x02hi");
    }

    #[test]
    fn reads_a_head_that_arrives_in_pieces() {
        // A head longer than one read, then nothing after it.
        let mut bytes = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        bytes.extend(std::iter::repeat_n(b'a', 3000));
        bytes.extend_from_slice(b"\r\n\r\n");
        let head = read_ok(&bytes, 8192);
        assert_eq!(head.bytes(), bytes.as_slice());
        assert!(head.into_rest().is_empty());
    }

    #[test]
    fn refuses_a_head_over_the_limit() {
        let mut bytes = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        bytes.extend(std::iter::repeat_n(b'a', 5000));
        bytes.extend_from_slice(b"\r\n\r\n");
        let mut src = futures::io::Cursor::new(bytes);
        assert!(matches!(
            run(read_head(&mut src, 1024)),
            Err(HeadError::TooLarge)
        ));
    }

    #[test]
    fn refuses_garbage_and_reports_eof() {
        let mut src = futures::io::Cursor::new(b"\x16\x03\x01 not http\r\n\r\n".to_vec());
        assert!(matches!(
            run(read_head(&mut src, 1024)),
            Err(HeadError::Malformed)
        ));
        let mut src = futures::io::Cursor::new(b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec());
        assert!(matches!(
            run(read_head(&mut src, 1024)),
            Err(HeadError::Io(_))
        ));
    }

    /// tungstenite's verdict on `head`: `Ok` with its `101` response as
    /// `(name, value)` pairs, `Err` when it would refuse the upgrade, the
    /// way its server handshake builds the request (`from_httparse`).
    fn tungstenite_verdict(head: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ()> {
        let mut buf = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut buf);
        let Ok(httparse::Status::Complete(_)) = req.parse(head) else {
            return Err(());
        };
        let mut b = http::Request::builder()
            .method(req.method.ok_or(())?)
            .uri(req.path.ok_or(())?)
            .version(match req.version {
                Some(0) => http::Version::HTTP_10,
                _ => http::Version::HTTP_11,
            });
        for h in req.headers.iter() {
            b = b.header(h.name, h.value);
        }
        let request = b.body(()).map_err(|_| ())?;
        let resp = create_response(&request).map_err(|_| ())?;
        Ok(resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect())
    }

    /// Our `101` as `(lowercased name, value)` pairs.
    fn our_response(up: &Upgrade<'_>) -> Vec<(String, Vec<u8>)> {
        let bytes = up.accept_response(false, None);
        let mut buf = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut buf);
        assert!(
            matches!(resp.parse(&bytes), Ok(httparse::Status::Complete(n)) if n == bytes.len())
        );
        assert_eq!(resp.code, Some(101));
        resp.headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
            .collect()
    }

    fn header_value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"Upgrade".to_vec()),
            Just(b"keep-alive, Upgrade".to_vec()),
            Just(b"keep-alive,upgrade".to_vec()),
            Just(b"keep-alive, close".to_vec()),
            Just(b"UPGRADE".to_vec()),
            Just(b"Upgraded".to_vec()),
            Just(b"websocket".to_vec()),
            Just(b"WebSocket".to_vec()),
            Just(b"websocket2".to_vec()),
            Just(b"13".to_vec()),
            Just(b"13 ".to_vec()),
            Just(b"8".to_vec()),
            Just(b"dGhlIHNhbXBsZSBub25jZQ==".to_vec()),
            Just(b"dGhlIHNhbXBsZSBub25jZR==".to_vec()),
            Just(b"dGhlIHNhbXBsZSBub25jZQ=".to_vec()),
            Just(b"dGhlIHNhbXBsZSBub25jZQ=A".to_vec()),
            Just(b"AAAAAAAAAAAAAAAAAAAAAAAA".to_vec()),
            Just(b"x\xe9 Upgrade".to_vec()),
            // Valid UTF-8, but not visible ASCII: not a `&str` to tungstenite.
            Just(b"\xc3\xa9, Upgrade".to_vec()),
            proptest::collection::vec(b' '..=b'~', 0..30),
            "[A-Za-z0-9+/]{22}==".prop_map(String::into_bytes),
        ]
    }

    fn header_name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("Connection".to_string()),
            Just("connection".to_string()),
            Just("Upgrade".to_string()),
            Just("UPGRADE".to_string()),
            Just("Sec-WebSocket-Version".to_string()),
            Just("sec-websocket-version".to_string()),
            Just("Sec-WebSocket-Key".to_string()),
            Just("Host".to_string()),
            "[A-Za-z-]{1,12}",
        ]
    }

    fn head() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![Just("GET"), Just("GET"), Just("POST"), Just("get")],
            prop_oneof![
                Just("/ws/chat/a/?token=x".to_string()),
                Just("/".to_string()),
                Just("*".to_string()),
                Just("http://h/ws/?a=b".to_string()),
                "/[a-z?=&%{}|^`\"<>0-9]{0,20}",
            ],
            prop_oneof![Just("1.1"), Just("1.1"), Just("1.0")],
            proptest::collection::vec((header_name(), header_value()), 0..9),
            0..3u8,
        )
            .prop_map(|(method, target, version, mut headers, valid)| {
                // A valid upgrade's headers before the generated ones (which
                // then only repeat names), after them (a generated value is
                // the one read), or not at all.
                let upgrade = [
                    ("Connection", "Upgrade"),
                    ("Upgrade", "websocket"),
                    ("Sec-WebSocket-Version", "13"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ]
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()));
                match valid {
                    0 => headers.splice(0..0, upgrade).for_each(drop),
                    1 => headers.extend(upgrade),
                    _ => {}
                }
                let mut out = format!("{method} {target} HTTP/{version}\r\n").into_bytes();
                for (n, v) in headers {
                    out.extend_from_slice(n.as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(&v);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"\r\n");
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Accepted exactly when tungstenite's server handshake accepts, with
        /// the same `101` headers (the same `Sec-WebSocket-Accept`), and the
        /// same path and query as the `http` crate's URI.
        #[test]
        fn checks_the_upgrade_as_tungstenite_does(head in head()) {
            let ours = Upgrade::parse(&head);
            match tungstenite_verdict(&head) {
                Ok(theirs) => {
                    let up = ours.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                    prop_assert_eq!(our_response(&up), theirs);
                    let mut buf = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut req = httparse::Request::new(&mut buf);
                    let _ = req.parse(&head);
                    let uri: http::Uri = req.path.unwrap_or_default().parse().unwrap();
                    prop_assert_eq!(up.uri.path(), uri.path());
                    prop_assert_eq!(up.uri.query(), uri.query());
                    prop_assert_eq!(up.headers.len(), req.headers.len());
                }
                Err(()) => prop_assert!(ours.is_err()),
            }
        }
    }

    #[test]
    fn the_generated_heads_include_accepted_ones() {
        // The property above is only as strong as its accepted cases.
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let accepted = (0..2000)
            .filter(|_| {
                let h = head().new_tree(&mut runner).unwrap().current();
                tungstenite_verdict(&h).is_ok()
            })
            .count();
        assert!(accepted > 200, "only {accepted} of 2000 accepted");
    }

    #[test]
    fn answers_with_the_subprotocol_and_the_edge_mode() {
        let up = Upgrade::parse(UPGRADE.as_bytes()).unwrap();
        let bytes = up.accept_response(true, Some("access_token"));
        let text = String::from_utf8(bytes).unwrap();
        // RFC 6455's own example key and answer.
        assert!(text.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("sec-websocket-protocol: access_token\r\n"));
        assert!(text.contains(&format!(
            "{}: {}\r\n",
            wsauth_core::edge::MODE_HEADER,
            wsauth_core::edge::MODE_EDGE
        )));
        assert!(text.ends_with("\r\n\r\n"));
        // A value that cannot be a header is left out, never written.
        let bytes = up.accept_response(false, Some("a\r\nx-injected: 1"));
        assert!(!String::from_utf8(bytes).unwrap().contains("x-injected"));
    }

    #[test]
    fn an_error_response_is_complete_http() {
        let bytes = http_error(403);
        let mut buf = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut buf);
        let Ok(httparse::Status::Complete(n)) = resp.parse(&bytes) else {
            panic!("incomplete response");
        };
        assert_eq!(resp.code, Some(403));
        assert_eq!(&bytes[n..], b"Forbidden\n");
        let len = resp
            .headers
            .iter()
            .find(|h| h.name == "content-length")
            .unwrap();
        assert_eq!(len.value, b"10");
    }
}
