//! Admission and back-pressure rules the host consults (`[limits.admission]`):
//! which peer a connection counts against (the trusted-proxy rule for
//! `Forwarded` / `X-Forwarded-For`), how many connections a peer and the
//! whole server may hold, the share kept for authenticated users, and what
//! happens to a client that does not read what it is sent.
//!
//! The host only counts and moves bytes; every threshold and every close code
//! comes from here.

use crate::close::{Close, CloseCode};
use crate::pipeline::view::HandshakeView;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// Close reason: the client did not read what it was sent (1008).
pub const REASON_SLOW_READER: &str = "client does not read its messages";
/// Close reason: the server's send budget is spent (1013).
pub const REASON_SERVER_BUSY: &str = "server busy, try again later";
/// Close reason: the share of connections for unauthenticated clients is full (1013).
pub const REASON_ANONYMOUS_FULL: &str = "too many unauthenticated connections, try again later";
/// Close reason: this peer holds its maximum of open connections (4429).
pub const REASON_PEER_FULL: &str = "too many connections from this address";
/// Close reason: nothing was received within the idle timeout (1008).
pub const REASON_IDLE: &str = "idle timeout";

/// `[limits.admission]`: connection caps, the authenticated reserve, idle
/// timeout, outbox budgets and trusted proxies. Every field has a default a
/// real user never meets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionConfig {
    /// Open connections one peer may hold at once (0: no cap).
    pub max_connections_per_peer: u32,
    /// Open connections in all (0: derived by the host from its open-file
    /// limit). The host always stays below its open-file limit.
    pub max_connections: u32,
    /// Connections kept for authenticated users: unauthenticated ones
    /// (anonymous routes, awaiting an auth message) are refused once
    /// `max_connections - reserve_authenticated` are open.
    pub reserve_authenticated: u32,
    /// Seconds between idle checks on an open socket: a check that finds
    /// nothing received since the one before pings the client, and the next
    /// such check closes the socket (1008) — a silent client is closed after
    /// two to three intervals. 0: off.
    pub idle_timeout_secs: u32,
    /// Bytes queued for one connection before it counts as not reading and
    /// is closed (1008).
    pub outbox_bytes_per_connection: usize,
    /// Bytes queued for all connections together; a send beyond it closes
    /// its receiver (1013).
    pub outbox_bytes_total: usize,
    /// Proxy addresses whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: Vec<String>,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_connections_per_peer: 256,
            max_connections: 0,
            reserve_authenticated: 128,
            idle_timeout_secs: 60,
            outbox_bytes_per_connection: 256 * 1024,
            outbox_bytes_total: 64 * 1024 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

impl AdmissionConfig {
    /// The trusted proxies that parse as IP addresses (`config check`
    /// reports the others through [`AdmissionConfig::invalid_proxies`]).
    pub fn proxies(&self) -> Vec<IpAddr> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| IpAddr::from_str(p.trim()).ok())
            .collect()
    }

    /// Entries of `trusted_proxies` that are not IP addresses.
    pub fn invalid_proxies(&self) -> impl Iterator<Item = &str> {
        self.trusted_proxies
            .iter()
            .map(String::as_str)
            .filter(|p| IpAddr::from_str(p.trim()).is_err())
    }

    /// The global connection cap for a host whose open-file limit is
    /// `fd_limit`: the configured cap, never above the file limit less
    /// `fd_margin` (listener, logs, host connections). At least 1.
    pub fn connection_cap(&self, fd_limit: u64, fd_margin: u64) -> u64 {
        let ceiling = fd_limit.saturating_sub(fd_margin).max(1);
        match self.max_connections {
            0 => ceiling,
            n => u64::from(n).min(ceiling),
        }
    }

    /// The most unauthenticated connections open at once under `cap`.
    pub fn unauthenticated_cap(&self, cap: u64) -> u64 {
        cap.saturating_sub(u64::from(self.reserve_authenticated))
            .max(1)
    }
}

/// The connection counts the host keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Occupancy {
    /// Connections open from this peer, the new one not included.
    pub peer: u32,
    /// Unauthenticated connections open, the new one not included.
    pub unauthenticated: u64,
}

/// Whether a connection just decided may stay open: `Some` holds the close
/// to send (after accept, so a browser reads it), `None` admits it.
///
/// `unauthenticated` is true for an anonymous principal or a connection
/// still awaiting its auth message; `cap` is the host's global connection
/// cap ([`AdmissionConfig::connection_cap`]).
pub fn admit(
    config: &AdmissionConfig,
    occupancy: Occupancy,
    unauthenticated: bool,
    cap: u64,
) -> Option<Close> {
    if config.max_connections_per_peer != 0 && occupancy.peer >= config.max_connections_per_peer {
        return Some(Close::new(CloseCode::RateLimited, REASON_PEER_FULL));
    }
    if unauthenticated && occupancy.unauthenticated >= config.unauthenticated_cap(cap) {
        return Some(Close::new(CloseCode::TryAgainLater, REASON_ANONYMOUS_FULL));
    }
    None
}

/// Seconds a connection has for its upgrade request when it was taken in with
/// `open` connections already held under `cap`: the configured handshake
/// timeout, or 1 s once the unauthenticated share is full (clients that
/// connect and send nothing then hold a slot only briefly, so the reserve
/// for authenticated users keeps turning over).
pub fn handshake_timeout_secs(
    config: &AdmissionConfig,
    configured_secs: u32,
    open: u64,
    cap: u64,
) -> u32 {
    if open >= config.unauthenticated_cap(cap) {
        configured_secs.min(1)
    } else {
        configured_secs
    }
}

/// Whether a raw connection from a peer holding `held` connections may be
/// taken in at all (before anything is read): `false` drops it unanswered.
pub fn admit_socket(config: &AdmissionConfig, held: u32) -> bool {
    config.max_connections_per_peer == 0 || held < config.max_connections_per_peer
}

/// What to do with a message the application queues for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxVerdict {
    /// Queue it.
    Queue,
    /// Drop it and keep the connection (larger than a connection may ever queue).
    Drop,
    /// Drop it and close the connection with this close.
    Close(Close),
}

/// What waits in one connection's outgoing queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxQueue {
    /// Bytes waiting.
    pub bytes: usize,
    /// Messages waiting.
    pub messages: usize,
    /// The most messages that may wait (the host's queue capacity; 0 counts as 1).
    pub max_messages: usize,
}

/// The verdict for a message of `len` bytes, with `queue` waiting for this
/// connection and `queued_total` bytes for all of them. A queue already
/// holding its most messages closes the connection as a reader that is not
/// reading, whatever the message.
pub fn outbox_verdict(
    config: &AdmissionConfig,
    queue: OutboxQueue,
    queued_total: usize,
    len: usize,
) -> OutboxVerdict {
    let queued = queue.bytes;
    if queue.messages >= queue.max_messages.max(1) {
        return OutboxVerdict::Close(Close::new(CloseCode::PolicyViolation, REASON_SLOW_READER));
    }
    if len > config.outbox_bytes_per_connection {
        return OutboxVerdict::Drop;
    }
    if queued.saturating_add(len) > config.outbox_bytes_per_connection {
        return OutboxVerdict::Close(Close::new(CloseCode::PolicyViolation, REASON_SLOW_READER));
    }
    if queued_total.saturating_add(len) > config.outbox_bytes_total {
        return OutboxVerdict::Close(Close::new(CloseCode::TryAgainLater, REASON_SERVER_BUSY));
    }
    OutboxVerdict::Queue
}

/// The close for a socket that sent nothing for two idle timeouts.
pub fn idle_close() -> Close {
    Close::new(CloseCode::PolicyViolation, REASON_IDLE)
}

/// The address a connection counts against (rate limit, per-peer cap):
/// the socket's peer, or — only when that peer is one of `trusted` — the
/// client its forwarding headers name. The chain (`Forwarded`, RFC 7239, or
/// else `X-Forwarded-For`) is read from the nearest hop backwards; trusted
/// proxies in it are skipped; the first other address is the client. An
/// obfuscated or unknown hop (`for=unknown`, `for=_hidden`) or an unparsable
/// header stops the walk at the last trusted address seen.
pub fn client_addr(view: &HandshakeView<'_>, peer: IpAddr, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    let mut forwarded = false;
    for value in view.header_values("forwarded") {
        forwarded = true;
        let Ok(text) = core::str::from_utf8(value) else {
            return peer;
        };
        for element in text.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
            });
            hops.push(node.and_then(parse_node));
        }
    }
    if !forwarded {
        for value in view.header_values("x-forwarded-for") {
            let Ok(text) = core::str::from_utf8(value) else {
                return peer;
            };
            for item in text.split(',') {
                hops.push(parse_node(item.trim()));
            }
        }
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                client = *ip;
                if !trusted.contains(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// An RFC 7239 node (`192.0.2.43`, `"[2001:db8:cafe::17]:4711"`,
/// `"192.0.2.43:47011"`) as an address; `None` for `unknown`, `_hidden` and
/// anything else.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = IpAddr::from_str(node) {
        return Some(ip);
    }
    if let Ok(sa) = SocketAddr::from_str(node) {
        return Some(sa.ip());
    }
    let inner = node.strip_prefix('[')?.split_once(']')?.0;
    IpAddr::from_str(inner).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn ip(s: &str) -> IpAddr {
        IpAddr::from_str(s).unwrap()
    }

    #[test]
    fn forwarded_chains_follow_rfc_7239() {
        let proxy = "203.0.113.43";
        // (headers, socket peer, trusted, expected client)
        type Row<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a [&'a str], &'a str);
        let rows: &[Row<'_>] = &[
            // RFC 7239 §4 examples.
            (&[("Forwarded", "for=\"_gazonk\"")], proxy, &[proxy], proxy),
            (
                &[("Forwarded", "For=\"[2001:db8:cafe::17]:4711\"")],
                proxy,
                &[proxy],
                "2001:db8:cafe::17",
            ),
            (
                &[("Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43")],
                proxy,
                &[proxy],
                "192.0.2.60",
            ),
            (
                &[("Forwarded", "for=192.0.2.43, for=198.51.100.17")],
                proxy,
                &[proxy],
                "198.51.100.17",
            ),
            // The nearest hop is trusted too: one more step back.
            (
                &[("Forwarded", "for=192.0.2.43, for=198.51.100.17")],
                proxy,
                &[proxy, "198.51.100.17"],
                "192.0.2.43",
            ),
            // Two header lines are one list.
            (
                &[
                    ("Forwarded", "for=192.0.2.43"),
                    ("Forwarded", "for=198.51.100.17;by=x"),
                ],
                proxy,
                &[proxy],
                "198.51.100.17",
            ),
            (
                &[("Forwarded", "for=\"192.0.2.43:47011\"")],
                proxy,
                &[proxy],
                "192.0.2.43",
            ),
            (&[("Forwarded", "for=unknown")], proxy, &[proxy], proxy),
            // A peer that is not trusted is the client, whatever it claims.
            (
                &[("Forwarded", "for=192.0.2.60")],
                "198.51.100.9",
                &[proxy],
                "198.51.100.9",
            ),
            (
                &[("X-Forwarded-For", "192.0.2.60")],
                "198.51.100.9",
                &[proxy],
                "198.51.100.9",
            ),
            // X-Forwarded-For when there is no Forwarded header.
            (
                &[("X-Forwarded-For", "192.0.2.60, 198.51.100.17")],
                proxy,
                &[proxy],
                "198.51.100.17",
            ),
            (
                &[("X-Forwarded-For", "192.0.2.60, 198.51.100.17")],
                proxy,
                &[proxy, "198.51.100.17"],
                "192.0.2.60",
            ),
            // Forwarded wins over X-Forwarded-For.
            (
                &[
                    ("X-Forwarded-For", "192.0.2.1"),
                    ("Forwarded", "for=192.0.2.2"),
                ],
                proxy,
                &[proxy],
                "192.0.2.2",
            ),
            (&[("X-Forwarded-For", "garbage")], proxy, &[proxy], proxy),
            (&[], proxy, &[proxy], proxy),
        ];
        for (headers, peer, trusted, want) in rows {
            let hv: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
            let view = HandshakeView::new("/", "", &hv);
            let trusted: Vec<IpAddr> = trusted.iter().map(|t| ip(t)).collect();
            assert_eq!(
                client_addr(&view, ip(peer), &trusted),
                ip(want),
                "{headers:?} from {peer}"
            );
        }
    }

    #[test]
    fn caps_and_the_authenticated_reserve() {
        let c = AdmissionConfig {
            max_connections_per_peer: 2,
            reserve_authenticated: 10,
            ..AdmissionConfig::default()
        };
        let occ = |peer, unauthenticated| Occupancy {
            peer,
            unauthenticated,
        };
        assert!(admit(&c, occ(1, 0), true, 100).is_none());
        let full = admit(&c, occ(2, 0), false, 100).unwrap();
        assert_eq!(full.code, CloseCode::RateLimited);
        assert!(admit(&c, occ(0, 89), true, 100).is_none());
        let busy = admit(&c, occ(0, 90), true, 100).unwrap();
        assert_eq!(busy.code, CloseCode::TryAgainLater);
        // The reserve is for authenticated users.
        assert!(admit(&c, occ(0, 95), false, 100).is_none());
        assert!(admit_socket(&c, 1));
        assert!(!admit_socket(&c, 2));
        assert_eq!(c.connection_cap(1024, 64), 960);
        let capped = AdmissionConfig {
            max_connections: 500,
            ..c.clone()
        };
        assert_eq!(capped.connection_cap(1024, 64), 500);
        assert_eq!(capped.connection_cap(100, 64), 36);
        assert_eq!(c.unauthenticated_cap(5), 1);
        assert_eq!(handshake_timeout_secs(&c, 10, 89, 100), 10);
        assert_eq!(handshake_timeout_secs(&c, 10, 90, 100), 1);
    }

    #[test]
    fn outbox_budgets() {
        let c = AdmissionConfig {
            outbox_bytes_per_connection: 100,
            outbox_bytes_total: 1000,
            ..AdmissionConfig::default()
        };
        let q = |bytes, messages| OutboxQueue {
            bytes,
            messages,
            max_messages: 4,
        };
        assert_eq!(outbox_verdict(&c, q(0, 0), 0, 100), OutboxVerdict::Queue);
        assert_eq!(outbox_verdict(&c, q(0, 0), 0, 101), OutboxVerdict::Drop);
        match outbox_verdict(&c, q(50, 1), 50, 60) {
            OutboxVerdict::Close(cl) => assert_eq!(cl.code, CloseCode::PolicyViolation),
            other => panic!("{other:?}"),
        }
        match outbox_verdict(&c, q(0, 0), 950, 60) {
            OutboxVerdict::Close(cl) => assert_eq!(cl.code, CloseCode::TryAgainLater),
            other => panic!("{other:?}"),
        }
        // A full queue closes the slow reader, even for a message it would drop.
        assert_eq!(outbox_verdict(&c, q(3, 3), 3, 1), OutboxVerdict::Queue);
        for len in [1, 101] {
            match outbox_verdict(&c, q(4, 4), 4, len) {
                OutboxVerdict::Close(cl) => {
                    assert_eq!(cl.code, CloseCode::PolicyViolation);
                    assert_eq!(cl.reason.as_str(), REASON_SLOW_READER);
                }
                other => panic!("{other:?}"),
            }
        }
        // A capacity of 0 holds one message, as the host's queue does.
        let zero = OutboxQueue {
            max_messages: 0,
            ..q(0, 0)
        };
        assert_eq!(outbox_verdict(&c, zero, 0, 1), OutboxVerdict::Queue);
        assert_eq!(idle_close().code, CloseCode::PolicyViolation);
        let bad = AdmissionConfig {
            trusted_proxies: vec!["10.0.0.1".into(), "nope".into()],
            ..AdmissionConfig::default()
        };
        assert_eq!(bad.proxies(), vec![ip("10.0.0.1")]);
        assert_eq!(bad.invalid_proxies().collect::<Vec<_>>(), vec!["nope"]);
    }
}
