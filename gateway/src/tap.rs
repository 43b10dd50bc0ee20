//! A read tap that follows a peer's WebSocket frames and keeps its first
//! close frame as it was on the wire.
//!
//! tungstenite replaces a received close code outside its own table (1014,
//! "bad gateway", among them) with 1002 before a caller sees it. Where the
//! code matters — the probe's report, the edge relay passing an app's close
//! on — it is read here instead. Only frame headers are looked at: payload
//! bytes are skipped a chunk at a time, except a close frame's (at most 125
//! bytes, kept until the frame ends).

use futures::io::{AsyncRead, AsyncWrite};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;
/// Longest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;

pub(crate) struct CloseTap<S> {
    inner: S,
    /// Bytes of an HTTP response head still to skip, matched so far against
    /// `\r\n\r\n` (`None` once past it, or when there is none).
    head: Option<usize>,
    /// The frame header being read.
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// Payload bytes left in the current frame.
    left: u64,
    /// The current frame is a close (its payload so far).
    close: Option<Vec<u8>>,
    /// The current frame's mask key, when the peer masks.
    mask: Option<[u8; 4]>,
    /// The first close frame: its code (1005 when it had none) and reason.
    seen: Option<(u16, String)>,
}

impl<S> CloseTap<S> {
    /// A tap on a client socket: the server's response head comes first.
    pub(crate) fn after_head(inner: S) -> Self {
        CloseTap {
            head: Some(0),
            ..Self::frames(inner)
        }
    }

    /// A tap on a socket whose next bytes are frames.
    pub(crate) fn frames(inner: S) -> Self {
        CloseTap {
            inner,
            head: None,
            header: [0; MAX_HEADER],
            header_len: 0,
            left: 0,
            close: None,
            mask: None,
            seen: None,
        }
    }

    /// The first close frame the peer sent: (code, reason).
    pub(crate) fn seen(&self) -> Option<(u16, &str)> {
        self.seen.as_ref().map(|(c, r)| (*c, r.as_str()))
    }

    /// Follows `bytes`, the next bytes read from the peer.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if let Some(matched) = self.head {
                let Some((&b, rest)) = bytes.split_first() else {
                    break;
                };
                bytes = rest;
                let want = b"\r\n\r\n".get(matched).copied();
                let matched = match (Some(b) == want, b == b'\r') {
                    (true, _) => matched + 1,
                    (false, true) => 1,
                    _ => 0,
                };
                self.head = (matched < 4).then_some(matched);
                continue;
            }
            if self.left > 0 {
                let n = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let (chunk, rest) = bytes.split_at(n);
                if let Some(c) = self.close.as_mut() {
                    let room = MAX_CONTROL.saturating_sub(c.len());
                    c.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                }
                self.left -= n as u64;
                bytes = rest;
                if self.left == 0 {
                    self.finish_frame();
                }
                continue;
            }
            // A frame header, byte by byte (it may be split across reads).
            let Some((&b, rest)) = bytes.split_first() else {
                break;
            };
            bytes = rest;
            if let Some(slot) = self.header.get_mut(self.header_len) {
                *slot = b;
            }
            self.header_len += 1;
            let h = &self.header;
            let Some(&second) = h.get(1).filter(|_| self.header_len >= 2) else {
                continue;
            };
            let masked = second & 0x80 != 0;
            let mask_len = if masked { 4 } else { 0 };
            let len_len = match second & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let need = 2 + len_len + mask_len;
            if self.header_len < need {
                continue;
            }
            let len = match len_len {
                2 => u64::from(u16::from_be_bytes([h[2], h[3]])),
                8 => h[2..10].iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)),
                _ => u64::from(second & 0x7f),
            };
            self.mask = masked.then(|| {
                let at = 2 + len_len;
                [h[at], h[at + 1], h[at + 2], h[at + 3]]
            });
            self.close = (h[0] & 0x0f == 0x8).then(Vec::new);
            self.header_len = 0;
            self.left = len;
            if len == 0 {
                self.finish_frame();
            }
        }
    }

    fn finish_frame(&mut self) {
        let Some(mut p) = self.close.take() else {
            return;
        };
        if let Some(mask) = self.mask {
            for (i, b) in p.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        if self.seen.is_none() {
            self.seen = Some(match p.get(..2) {
                Some(&[hi, lo]) => (
                    u16::from_be_bytes([hi, lo]),
                    String::from_utf8_lossy(p.get(2..).unwrap_or_default()).into_owned(),
                ),
                _ => (1005, String::new()),
            });
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CloseTap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.feed(buf.get(..*n).unwrap_or_default());
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CloseTap<S> {
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
    use async_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
    use async_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};

    /// Frames as tungstenite writes them, masked (a client's) or not.
    fn wire(masked: bool) -> Vec<u8> {
        let frames = vec![
            Frame::message(vec![b'x'; 130], OpCode::Data(Data::Text), true),
            Frame::message(vec![b'y'; 70_000], OpCode::Data(Data::Binary), true),
            Frame::ping(vec![1, 2, 3]),
            Frame::close(Some(CloseFrame {
                code: CloseCode::from(1014),
                reason: "bad gateway".into(),
            })),
            Frame::close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "second".into(),
            })),
        ];
        let mut out = Vec::new();
        for mut f in frames {
            if masked {
                f.header_mut().mask = Some([0x9e, 0x01, 0x7c, 0xd3]);
            }
            f.format(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn keeps_the_first_close_frame_as_sent() {
        for masked in [false, true] {
            let frames = wire(masked);
            let mut with_head =
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
            with_head.extend_from_slice(&frames);
            // Every split of two reads, around the frame headers.
            for (bytes, head) in [(&frames, false), (&with_head, true)] {
                for cut in (0..bytes.len()).filter(|&c| c < 200 || c + 200 > bytes.len()) {
                    let mut tap = if head {
                        CloseTap::after_head(())
                    } else {
                        CloseTap::frames(())
                    };
                    tap.feed(&bytes[..cut]);
                    tap.feed(&bytes[cut..]);
                    assert_eq!(
                        tap.seen(),
                        Some((1014, "bad gateway")),
                        "cut {cut} masked {masked}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_close_without_a_code_is_1005() {
        let mut out = Vec::new();
        Frame::close(None).format(&mut out).unwrap();
        let mut tap = CloseTap::frames(());
        tap.feed(&out);
        assert_eq!(tap.seen(), Some((1005, "")));
        let mut tap = CloseTap::frames(());
        tap.feed(&wire(false)[..10]);
        assert_eq!(tap.seen(), None);
    }
}
