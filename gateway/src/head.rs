//! Reading the HTTP upgrade request head before the WebSocket handshake.
//!
//! The decision may need host lookups (async), while tungstenite's handshake
//! callback is synchronous. So the head is read here first — bounded in size —
//! parsed into an [`http::Request`], decided, and then replayed to
//! async-tungstenite, whose callback answers with the decision (the echoed
//! subprotocol, or an HTTP error).

use async_tungstenite::tungstenite::handshake::server::Request;
use async_tungstenite::tungstenite::http;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

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

/// A request head and the bytes that followed it.
pub(crate) struct Head {
    pub(crate) request: Request,
    /// Everything read from the socket (head and any bytes after it), replayed
    /// to the WebSocket handshake.
    pub(crate) raw: Vec<u8>,
    /// Length of the head within `raw`: bytes after it are the client's first
    /// frames, sent in the same packet as the request (pipelined).
    pub(crate) head_len: usize,
}

/// Reads one request head of at most `max_bytes`.
pub(crate) async fn read_head<S>(stream: &mut S, max_bytes: usize) -> Result<Head, HeadError>
where
    S: AsyncRead + Unpin,
{
    let mut raw: Vec<u8> = Vec::with_capacity(1024.min(max_bytes.max(1)));
    let mut chunk = [0u8; 2048];
    loop {
        let room = max_bytes.saturating_sub(raw.len());
        if room == 0 {
            return Err(HeadError::TooLarge);
        }
        let want = room.min(chunk.len());
        let Some(buf) = chunk.get_mut(..want) else {
            return Err(HeadError::TooLarge);
        };
        let n = stream.read(buf).await.map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        raw.extend_from_slice(buf.get(..n).unwrap_or_default());
        if let Some((request, head_len)) = parse(&raw)? {
            return Ok(Head {
                request,
                raw,
                head_len,
            });
        }
    }
}

/// `Some((request, head length))` once `raw` holds a complete head.
fn parse(raw: &[u8]) -> Result<Option<(Request, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(raw) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) => {
            let mut builder = http::Request::builder()
                .method(req.method.unwrap_or("GET"))
                .uri(req.path.unwrap_or("/"))
                .version(match req.version {
                    Some(0) => http::Version::HTTP_10,
                    _ => http::Version::HTTP_11,
                });
            for h in req.headers.iter() {
                builder = builder.header(h.name, h.value);
            }
            builder
                .body(())
                .map(|r| Some((r, len)))
                .map_err(|_| HeadError::Malformed)
        }
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// Writes a short plain HTTP error response (before any upgrade).
pub(crate) async fn write_http_error<S>(stream: &mut S, status: u16, reason: &str)
where
    S: AsyncWrite + Unpin,
{
    use futures::io::AsyncWriteExt;
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{reason}",
        reason.len()
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.flush().await;
    let _ = stream.close().await;
}

/// A stream that first yields already-read bytes, then reads from the socket.
///
/// No read crosses `boundary` (the end of the request head): the WebSocket
/// handshake reads exactly the head — tungstenite refuses a handshake read
/// that carries bytes after the head — and the bytes a pipelining client sent
/// after it (its first frames) are read by the open WebSocket.
pub(crate) struct Replay<S> {
    prefix: Vec<u8>,
    pos: usize,
    boundary: usize,
    inner: S,
}

impl<S> Replay<S> {
    /// Replays `prefix`, never returning bytes on both sides of `boundary`
    /// in one read.
    pub(crate) fn new(prefix: Vec<u8>, boundary: usize, inner: S) -> Self {
        Replay {
            prefix,
            pos: 0,
            boundary,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let rest = this.prefix.get(this.pos..).unwrap_or_default();
        if !rest.is_empty() {
            let mut n = rest.len().min(buf.len());
            if this.pos < this.boundary {
                n = n.min(this.boundary - this.pos);
            }
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            this.pos += n;
            if this.pos >= this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn parses_a_complete_head_and_keeps_trailing_bytes() {
        let bytes = b"GET /ws/chat/a/?token=x HTTP/1.1\r\nHost: h\r\nOrigin: http://localhost:3000\r\n\r\nEXTRA".to_vec();
        let mut src = futures::io::Cursor::new(bytes.clone());
        let head = run(read_head(&mut src, 4096))
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        assert_eq!(head.request.uri().path(), "/ws/chat/a/");
        assert_eq!(head.request.uri().query(), Some("token=x"));
        assert_eq!(head.request.headers()["origin"], "http://localhost:3000");
        assert_eq!(head.raw, bytes);
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

    #[test]
    fn replay_yields_prefix_then_inner() {
        let inner = futures::io::Cursor::new(b"world".to_vec());
        let mut r = Replay::new(b"hello ".to_vec(), 0, inner);
        let mut out = String::new();
        run(r.read_to_string(&mut out)).unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn replay_never_crosses_the_head_boundary() {
        let inner = futures::io::Cursor::new(b"!".to_vec());
        let mut r = Replay::new(b"HEADframes".to_vec(), 4, inner);
        let mut buf = [0u8; 64];
        let n = run(r.read(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"HEAD");
        let n = run(r.read(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"frames");
        let n = run(r.read(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"!");
    }

    #[test]
    fn head_length_excludes_pipelined_bytes() {
        let head = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(b"\x81\x02hi");
        let mut src = futures::io::Cursor::new(bytes);
        let got = run(read_head(&mut src, 4096))
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        assert_eq!(got.head_len, head.len());
    }
}
