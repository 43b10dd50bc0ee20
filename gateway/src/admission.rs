//! Counting connections for the core's admission rules
//! ([`wsauth_core::admission`]): open connections in all and per peer, and
//! unauthenticated ones. The thresholds and close codes are the core's;
//! this only counts, and gives each count back when its connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use wsauth_core::{
    admission::admit, admission::admit_socket, admission::AdmissionConfig, admission::Occupancy,
    Close,
};

/// File descriptors kept free of connections (listener, logs, host
/// connections, files the application opens).
const FD_MARGIN: u64 = 64;
/// Refused connections that may wait for their close reply at once (half
/// the file margin; see [`Slot::closing`]).
const CLOSING_WAITERS: u64 = FD_MARGIN / 2;
/// How long the open-file limit read from the system is used before it is
/// read again: a limit changed at run time applies within this time, and
/// connections do not each pay for a system call.
const FD_LIMIT_TTL_MS: u64 = 1000;

/// The gateway's connection counts.
#[derive(Debug)]
pub(crate) struct Admission {
    pub(crate) config: Arc<AdmissionConfig>,
    proxies: Vec<IpAddr>,
    open: AtomicU64,
    unauthenticated: AtomicU64,
    /// Refused connections waiting for their close reply (see [`Slot::closing`]).
    closing: AtomicU64,
    peers: Mutex<HashMap<IpAddr, u32>>,
    /// The open-file limit last read, and when (ms since `created`; 0: never).
    fd_limit: AtomicU64,
    fd_read_at_ms: AtomicU64,
    created: Instant,
}

/// Why a raw connection was not taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The global cap (below the open-file limit) is reached.
    Full,
    /// This peer holds its maximum.
    Peer,
}

impl Admission {
    pub(crate) fn new(config: AdmissionConfig) -> Arc<Self> {
        let proxies = config.proxies();
        Arc::new(Admission {
            config: Arc::new(config),
            proxies,
            open: AtomicU64::new(0),
            unauthenticated: AtomicU64::new(0),
            closing: AtomicU64::new(0),
            peers: Mutex::new(HashMap::new()),
            fd_limit: AtomicU64::new(0),
            fd_read_at_ms: AtomicU64::new(0),
            created: Instant::now(),
        })
    }

    /// The configured trusted proxies.
    pub(crate) fn proxies(&self) -> &[IpAddr] {
        &self.proxies
    }

    /// The global cap now (the open-file limit may change at run time).
    pub(crate) fn cap(&self) -> u64 {
        self.config.connection_cap(self.fd_limit(), FD_MARGIN)
    }

    /// The soft open-file limit, read again once [`FD_LIMIT_TTL_MS`] passed.
    fn fd_limit(&self) -> u64 {
        // +1: a reading at 0 ms is told apart from "never read".
        let now = u64::try_from(self.created.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let at = self.fd_read_at_ms.load(Ordering::Acquire);
        if at != 0 && now.saturating_sub(at) < FD_LIMIT_TTL_MS {
            return self.fd_limit.load(Ordering::Acquire);
        }
        let limit = fd_limit();
        self.fd_limit.store(limit, Ordering::Release);
        self.fd_read_at_ms.store(now, Ordering::Release);
        limit
    }

    /// Open connections (all phases).
    pub(crate) fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes in a raw connection from `peer`: counted against the global cap
    /// and — unless it comes from a trusted proxy, whose clients are counted
    /// once their address is read — against its peer.
    pub(crate) fn accept(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<Slot, Refused> {
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        let cap = self.cap();
        let mut slot = Slot {
            adm: self.clone(),
            open_at_accept: (open, cap),
            peer: None,
            unauthenticated: false,
            released: false,
            closing: false,
        };
        if open >= cap {
            return Err(Refused::Full);
        }
        if let Some(ip) = peer.filter(|ip| !self.proxies.contains(ip)) {
            let mut peers = self.peers();
            let held = peers.entry(ip).or_insert(0);
            if !admit_socket(&self.config, *held) {
                if *held == 0 {
                    peers.remove(&ip);
                }
                return Err(Refused::Peer);
            }
            *held = held.saturating_add(1);
            slot.peer = Some(ip);
        }
        Ok(slot)
    }
}

/// One connection's place in the counts; dropping it gives them back.
#[derive(Debug)]
pub(crate) struct Slot {
    adm: Arc<Admission>,
    /// Connections held when this one was taken in, and the cap then.
    pub(crate) open_at_accept: (u64, u64),
    /// The peer this connection is counted against, once known.
    peer: Option<IpAddr>,
    unauthenticated: bool,
    /// Its counts were given back early (see [`Slot::closing`]).
    released: bool,
    /// It counts among the refused connections waiting for a close reply.
    closing: bool,
}

impl Slot {
    /// The core's verdict on a decided connection from `client` (the
    /// address it counts against): `Some(close)` refuses it.
    pub(crate) fn admit(&mut self, client: IpAddr, unauthenticated: bool) -> Option<Close> {
        let adm = self.adm.clone();
        let mut held = 0;
        if self.peer.is_none() {
            // From a trusted proxy: counted against the forwarded client now.
            let mut peers = adm.peers();
            let n = peers.entry(client).or_insert(0);
            held = *n;
            *n = n.saturating_add(1);
            self.peer = Some(client);
        }
        let n = if unauthenticated {
            self.unauthenticated = true;
            adm.unauthenticated.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        admit(
            &adm.config,
            Occupancy {
                peer: held,
                unauthenticated: n,
            },
            unauthenticated,
            adm.cap(),
        )
    }

    /// The connection authenticated in-band: it no longer counts as unauthenticated.
    pub(crate) fn authenticated(&mut self) {
        if std::mem::take(&mut self.unauthenticated) {
            self.adm.unauthenticated.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Slot {
    /// The connection was refused and only its close is left to send: every
    /// count it holds is given back now, so that refusals still closing
    /// never fill the connection cap (an attacker opening sockets faster
    /// than they close would otherwise lock authenticated users out).
    /// Returns whether it may wait for the client's close reply: at most
    /// [`CLOSING_WAITERS`] wait at once, each holding a file within the
    /// cap's margin; the others send their close and let go.
    pub(crate) fn closing(&mut self) -> bool {
        self.release();
        if self.closing {
            return true;
        }
        let waiting = self.adm.closing.fetch_add(1, Ordering::Relaxed);
        if waiting >= CLOSING_WAITERS {
            self.adm.closing.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        self.closing = true;
        true
    }

    /// Gives back the connection's counts (once).
    fn release(&mut self) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        self.authenticated();
        self.adm.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.peer.take() {
            let mut peers = self.adm.peers();
            if let Some(n) = peers.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    peers.remove(&ip);
                }
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
        if self.closing {
            self.adm.closing.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The soft open-file limit (unbounded where there is none).
fn fd_limit() -> u64 {
    #[cfg(unix)]
    {
        if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
            return soft;
        }
    }
    u64::MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn counts_are_given_back() {
        let adm = Admission::new(AdmissionConfig {
            max_connections_per_peer: 2,
            max_connections: 10,
            reserve_authenticated: 8,
            trusted_proxies: vec!["127.0.0.9".into()],
            ..AdmissionConfig::default()
        });
        let a = adm.accept(Some(ip("127.0.0.2"))).unwrap();
        let mut b = adm.accept(Some(ip("127.0.0.2"))).unwrap();
        assert_eq!(
            adm.accept(Some(ip("127.0.0.2"))).unwrap_err(),
            Refused::Peer
        );
        assert!(b.admit(ip("127.0.0.2"), true).is_none());
        // Two unauthenticated allowed under cap 10 with 8 reserved.
        let mut c = adm.accept(Some(ip("127.0.0.3"))).unwrap();
        assert!(c.admit(ip("127.0.0.3"), true).is_none());
        let mut d = adm.accept(Some(ip("127.0.0.4"))).unwrap();
        assert!(d.admit(ip("127.0.0.4"), true).is_some());
        // An authenticated one uses the reserve.
        let mut e = adm.accept(Some(ip("127.0.0.5"))).unwrap();
        assert!(e.admit(ip("127.0.0.5"), false).is_none());
        // Through the proxy: counted against the forwarded client.
        let mut p1 = adm.accept(Some(ip("127.0.0.9"))).unwrap();
        assert!(p1.admit(ip("192.0.2.1"), false).is_none());
        let mut p2 = adm.accept(Some(ip("127.0.0.9"))).unwrap();
        assert!(p2.admit(ip("192.0.2.1"), false).is_none());
        let mut p3 = adm.accept(Some(ip("127.0.0.9"))).unwrap();
        assert!(p3.admit(ip("192.0.2.1"), false).is_some());
        drop((a, b, c, d, e, p1, p2, p3));
        assert_eq!(adm.open(), 0);
        assert_eq!(adm.unauthenticated.load(Ordering::Relaxed), 0);
        assert!(adm.peers().is_empty());
    }

    #[test]
    fn refusals_still_closing_hold_no_slot() {
        let adm = Admission::new(AdmissionConfig {
            max_connections_per_peer: 0,
            max_connections: 10,
            reserve_authenticated: 8,
            ..AdmissionConfig::default()
        });
        // The unauthenticated share (2) is full; every further anonymous
        // connection is refused and closing, yet the cap stays free.
        let mut held = Vec::new();
        for i in 0..2 {
            let mut s = adm.accept(Some(ip("127.0.0.2"))).unwrap();
            assert!(s.admit(ip("127.0.0.2"), true).is_none(), "{i}");
            held.push(s);
        }
        let mut closing = Vec::new();
        let mut waiting = 0;
        for _ in 0..(CLOSING_WAITERS + 20) {
            let mut s = adm.accept(Some(ip("127.0.0.3"))).unwrap();
            assert!(s.admit(ip("127.0.0.3"), true).is_some());
            waiting += u64::from(s.closing());
            assert_eq!(adm.open(), 2, "a closing refusal holds no slot");
            closing.push(s);
        }
        assert_eq!(waiting, CLOSING_WAITERS, "only so many wait for a reply");
        assert_eq!(adm.unauthenticated.load(Ordering::Relaxed), 2);
        assert!(!adm.peers().contains_key(&ip("127.0.0.3")));
        // An authenticated user still gets in.
        let mut staff = adm.accept(Some(ip("127.0.0.1"))).unwrap();
        assert!(staff.admit(ip("127.0.0.1"), false).is_none());
        drop(closing);
        assert_eq!(adm.closing.load(Ordering::Relaxed), 0);
        drop((held, staff));
        assert_eq!(adm.open(), 0);
        assert!(adm.peers().is_empty());
    }
}
