//! Origin checks.
//!
//! Two modes:
//!
//! * [`OriginPolicy::allowlist`] — DESIGN §3: a request *with* an `Origin`
//!   header must match the allowlist (exact scheme + host + port, or a
//!   pattern: `http://localhost:*` for any port, `https://*.example.com` for
//!   subdomains, `*` for anything, `null` for the literal `null` origin);
//!   a request with *no* `Origin` header is allowed unless `require_origin`.
//!   Several `Origin` headers are refused.
//! * [`OriginPolicy::channels`] — Channels' `OriginValidator(app, allowed_origins)`
//!   reproduced exactly, including Python `urlparse` quirks: the last `Origin`
//!   header wins, a missing header is refused unless `"*"` is listed, host-only
//!   patterns ignore scheme and port, `.example.com` matches subdomains,
//!   `*.example.com` is literal, and inputs that make Python raise
//!   (`http://h:abc` against a scheme pattern, malformed IPv6 literals) give
//!   [`OriginVerdict::Error`] (Daphne answers those with HTTP 500).
//!
//! Header values are bytes decoded as Latin-1, as Channels decodes them.
//! Checking never allocates unless a header contains tab, CR or LF.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The outcome of an origin check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginVerdict {
    /// The origin is allowed.
    Allowed,
    /// The origin is not allowed: refuse the upgrade with HTTP 403.
    Rejected,
    /// Channels mode only: Channels would have raised (`ValueError` from
    /// `urlparse`), which Daphne answers with HTTP 500. wsauth refuses the
    /// upgrade with HTTP 403.
    Error,
}

impl OriginVerdict {
    /// True for [`OriginVerdict::Allowed`].
    pub fn is_allowed(self) -> bool {
        matches!(self, OriginVerdict::Allowed)
    }
}

/// Why an origin pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginPatternError {
    /// Allowlist mode: not `scheme://host[:port]`, `scheme://host:*`, `*` or `null`.
    BadPattern,
    /// Allowlist mode: the port is not a number in 0–65535 or `*`.
    BadPort,
    /// Channels mode: the pattern makes Python's `urlparse` raise.
    PythonWouldRaise,
    /// Channels mode: the pattern is not Latin-1 text.
    NotLatin1,
}

impl fmt::Display for OriginPatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OriginPatternError::BadPattern => {
                "expected scheme://host[:port], scheme://host:*, scheme://*.domain, * or null"
            }
            OriginPatternError::BadPort => "the port must be a number from 0 to 65535, or *",
            OriginPatternError::PythonWouldRaise => {
                "Python's urlparse raises ValueError for this pattern"
            }
            OriginPatternError::NotLatin1 => "Channels origin patterns must be Latin-1 text",
        })
    }
}

impl core::error::Error for OriginPatternError {}

/// Which rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OriginMode {
    /// DESIGN §3 allowlist.
    #[default]
    Allowlist,
    /// Channels' `OriginValidator`.
    Channels,
}

/// Configured origin rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    kind: PolicyKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PolicyKind {
    Allowlist {
        patterns: Vec<NativePattern>,
        require_origin: bool,
    },
    Channels {
        patterns: Vec<ChannelsPattern>,
        has_star: bool,
    },
}

impl Default for OriginPolicy {
    /// The embedded default: `http://localhost:*` and `http://127.0.0.1:*`,
    /// requests without `Origin` allowed.
    fn default() -> Self {
        let patterns = ["http://localhost:*", "http://127.0.0.1:*"]
            .iter()
            .filter_map(|p| NativePattern::parse(p).ok())
            .collect();
        OriginPolicy {
            kind: PolicyKind::Allowlist {
                patterns,
                require_origin: false,
            },
        }
    }
}

impl OriginPolicy {
    /// DESIGN §3 allowlist.
    pub fn allowlist<S: AsRef<str>>(
        patterns: &[S],
        require_origin: bool,
    ) -> Result<Self, (usize, OriginPatternError)> {
        let mut out = Vec::with_capacity(patterns.len());
        for (i, p) in patterns.iter().enumerate() {
            out.push(NativePattern::parse(p.as_ref()).map_err(|e| (i, e))?);
        }
        Ok(OriginPolicy {
            kind: PolicyKind::Allowlist {
                patterns: out,
                require_origin,
            },
        })
    }

    /// Channels' `OriginValidator(app, allowed_origins)`.
    pub fn channels<S: AsRef<str>>(allowed: &[S]) -> Result<Self, (usize, OriginPatternError)> {
        let mut out = Vec::with_capacity(allowed.len());
        let mut has_star = false;
        for (i, p) in allowed.iter().enumerate() {
            let pat = ChannelsPattern::parse(p.as_ref()).map_err(|e| (i, e))?;
            has_star |= matches!(pat, ChannelsPattern::Star);
            out.push(pat);
        }
        Ok(OriginPolicy {
            kind: PolicyKind::Channels {
                patterns: out,
                has_star,
            },
        })
    }

    /// Channels' `AllowedHostsOriginValidator`: `ALLOWED_HOSTS`, or
    /// `["localhost", "127.0.0.1", "[::1]"]` when `DEBUG` and the list is empty.
    pub fn channels_allowed_hosts<S: AsRef<str>>(
        allowed_hosts: &[S],
        debug: bool,
    ) -> Result<Self, (usize, OriginPatternError)> {
        if debug && allowed_hosts.is_empty() {
            return Self::channels(&["localhost", "127.0.0.1", "[::1]"]);
        }
        Self::channels(allowed_hosts)
    }

    /// The mode.
    pub fn mode(&self) -> OriginMode {
        match self.kind {
            PolicyKind::Allowlist { .. } => OriginMode::Allowlist,
            PolicyKind::Channels { .. } => OriginMode::Channels,
        }
    }

    /// Decides for the values of every `Origin` header of a request, in order.
    pub fn check<'h, I>(&self, origin_headers: I) -> OriginVerdict
    where
        I: IntoIterator<Item = &'h [u8]>,
    {
        match &self.kind {
            PolicyKind::Allowlist {
                patterns,
                require_origin,
            } => {
                let mut it = origin_headers.into_iter();
                let Some(first) = it.next() else {
                    return if *require_origin {
                        OriginVerdict::Rejected
                    } else {
                        OriginVerdict::Allowed
                    };
                };
                if it.next().is_some() {
                    return OriginVerdict::Rejected;
                }
                if patterns.iter().any(|p| matches!(p, NativePattern::Any)) {
                    return OriginVerdict::Allowed;
                }
                let Some(origin) = NativeOrigin::parse(first) else {
                    return OriginVerdict::Rejected;
                };
                if patterns.iter().any(|p| p.matches(&origin)) {
                    OriginVerdict::Allowed
                } else {
                    OriginVerdict::Rejected
                }
            }
            PolicyKind::Channels { patterns, has_star } => {
                channels_check(patterns, *has_star, origin_headers)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Allowlist mode.

fn default_port(scheme: &[u8]) -> Option<u16> {
    match scheme {
        b"http" | b"ws" => Some(80),
        b"https" | b"wss" => Some(443),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPat {
    Any,
    Exact(Option<u16>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NativePattern {
    Any,
    Null,
    Origin {
        scheme: String,
        /// Lowercase host; for `*.example.com` this is `.example.com` with `wildcard`.
        host: String,
        wildcard: bool,
        port: PortPat,
    },
}

fn valid_scheme(s: &[u8]) -> bool {
    s.first().is_some_and(|b| b.is_ascii_alphabetic())
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn valid_host(h: &[u8]) -> bool {
    if let Some(inner) = h.strip_prefix(b"[").and_then(|r| r.strip_suffix(b"]")) {
        return !inner.is_empty()
            && inner
                .iter()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
    }
    !h.is_empty()
        && h.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// Splits `host[:port]` where the host may be a bracketed IPv6 literal.
fn split_host_port(s: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    if s.first() == Some(&b'[') {
        let close = s.iter().position(|&b| b == b']')?;
        let (host, rest) = s.split_at_checked(close.saturating_add(1))?;
        if rest.is_empty() {
            return Some((host, None));
        }
        let port = rest.strip_prefix(b":")?;
        return Some((host, Some(port)));
    }
    match s.iter().rposition(|&b| b == b':') {
        Some(i) => {
            let (host, rest) = s.split_at_checked(i)?;
            Some((host, Some(rest.get(1..)?)))
        }
        None => Some((s, None)),
    }
}

// At most 5 ASCII digits (checked first): `v` stays below 10^5.
#[allow(clippy::arithmetic_side_effects)]
fn parse_port(p: &[u8]) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u32 = 0;
    for d in p {
        v = v * 10 + u32::from(d - b'0');
    }
    u16::try_from(v).ok()
}

impl NativePattern {
    fn parse(p: &str) -> Result<Self, OriginPatternError> {
        let p = p.trim();
        if p == "*" {
            return Ok(NativePattern::Any);
        }
        if p == "null" {
            return Ok(NativePattern::Null);
        }
        let lower = p.to_ascii_lowercase();
        let lower = lower.strip_suffix('/').unwrap_or(&lower);
        let (scheme, rest) = lower
            .split_once("://")
            .ok_or(OriginPatternError::BadPattern)?;
        if !valid_scheme(scheme.as_bytes()) {
            return Err(OriginPatternError::BadPattern);
        }
        let (host, port) =
            split_host_port(rest.as_bytes()).ok_or(OriginPatternError::BadPattern)?;
        let port = match port {
            None => PortPat::Exact(default_port(scheme.as_bytes())),
            Some(b"*") => PortPat::Any,
            Some(digits) => {
                PortPat::Exact(Some(parse_port(digits).ok_or(OriginPatternError::BadPort)?))
            }
        };
        let (wildcard, host) = match host.strip_prefix(b"*") {
            Some(suffix) if suffix.first() == Some(&b'.') => (true, suffix),
            Some(_) => return Err(OriginPatternError::BadPattern),
            None => (false, host),
        };
        let host_ok = if wildcard {
            valid_host(host.get(1..).unwrap_or(&[]))
        } else {
            valid_host(host)
        };
        if !host_ok {
            return Err(OriginPatternError::BadPattern);
        }
        let host = core::str::from_utf8(host).map_err(|_| OriginPatternError::BadPattern)?;
        Ok(NativePattern::Origin {
            scheme: scheme.into(),
            host: host.into(),
            wildcard,
            port,
        })
    }

    fn matches(&self, o: &NativeOrigin<'_>) -> bool {
        match (self, o) {
            (NativePattern::Any, _) => true,
            (NativePattern::Null, NativeOrigin::Null) => true,
            (
                NativePattern::Origin {
                    scheme,
                    host,
                    wildcard,
                    port,
                },
                NativeOrigin::Url {
                    scheme: os,
                    host: oh,
                    port: op,
                },
            ) => {
                if !os.eq_ignore_ascii_case(scheme.as_bytes()) {
                    return false;
                }
                let port_ok = match port {
                    PortPat::Any => true,
                    PortPat::Exact(p) => *p == *op,
                };
                if !port_ok {
                    return false;
                }
                if *wildcard {
                    // `.example.com`: the origin host must end with it and have a label before.
                    oh.len() > host.len()
                        && oh
                            .get(oh.len().saturating_sub(host.len())..)
                            .is_some_and(|suffix| suffix.eq_ignore_ascii_case(host.as_bytes()))
                } else {
                    oh.eq_ignore_ascii_case(host.as_bytes())
                }
            }
            _ => false,
        }
    }
}

enum NativeOrigin<'a> {
    Null,
    Url {
        scheme: &'a [u8],
        host: &'a [u8],
        port: Option<u16>,
    },
}

impl<'a> NativeOrigin<'a> {
    /// The ASCII serialization of an origin (RFC 6454): `scheme://host[:port]` or `null`.
    fn parse(v: &'a [u8]) -> Option<Self> {
        let v = v.trim_ascii();
        if v == b"null" {
            return Some(NativeOrigin::Null);
        }
        let sep = v.windows(3).position(|w| w == b"://")?;
        let (scheme, rest) = v.split_at_checked(sep)?;
        let rest = rest.get(3..)?;
        if !valid_scheme(scheme) {
            return None;
        }
        let (host, port) = split_host_port(rest)?;
        if !valid_host(host) {
            return None;
        }
        let lower_scheme_default = {
            let mut buf = [0u8; 8];
            if scheme.len() <= buf.len() {
                for (d, s) in buf.iter_mut().zip(scheme) {
                    *d = s.to_ascii_lowercase();
                }
                default_port(buf.get(..scheme.len()).unwrap_or(&[]))
            } else {
                None
            }
        };
        let port = match port {
            None => lower_scheme_default,
            Some(p) => Some(parse_port(p)?),
        };
        Some(NativeOrigin::Url { scheme, host, port })
    }
}

// ---------------------------------------------------------------------------
// Channels mode: Python `urllib.parse.urlsplit` (3.11) on Latin-1 text.

#[derive(Debug, Clone, PartialEq, Eq)]
enum ChannelsPattern {
    Star,
    /// No scheme: compare hostnames only (`is_same_domain`). `None`: the host is not Latin-1.
    HostOnly {
        host: Vec<u8>,
    },
    /// Scheme, hostname (`None`: urlparse found none), port (explicit or default).
    Full {
        scheme: Vec<u8>,
        host: Option<Vec<u8>>,
        port: Option<u16>,
    },
}

fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Python `str.lower()` on one Latin-1 character.
// Only `A`-`Z` and `À`-`Þ` move up by 32, staying below 0xFF.
#[allow(clippy::arithmetic_side_effects)]
fn latin1_lower(b: u8) -> u8 {
    match b {
        b'A'..=b'Z' => b + 32,
        0xC0..=0xDE if b != 0xD7 => b + 32,
        _ => b,
    }
}

struct Split<'a> {
    scheme: &'a [u8],
    netloc: &'a [u8],
}

/// `url.lstrip(C0 controls and space)` and removal of tab / CR / LF.
fn clean_url(raw: &[u8]) -> Cow<'_, [u8]> {
    let start = raw.iter().position(|&b| b > 0x20).unwrap_or(raw.len());
    let s = raw.get(start..).unwrap_or(&[]);
    if s.iter().any(|&b| matches!(b, b'\t' | b'\r' | b'\n')) {
        Cow::Owned(
            s.iter()
                .copied()
                .filter(|b| !matches!(b, b'\t' | b'\r' | b'\n'))
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

fn is_scheme_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// `urlsplit` on a cleaned URL: scheme (not yet lowercased) and netloc,
/// or `Err` where Python raises `ValueError`.
fn py_urlsplit(url: &[u8]) -> Result<Split<'_>, ()> {
    let mut scheme: &[u8] = &[];
    let mut rest = url;
    if let Some(i) = url.iter().position(|&b| b == b':') {
        if i > 0 && url.first().is_some_and(|b| b.is_ascii_alphabetic()) {
            let (s, r) = url.split_at_checked(i).ok_or(())?;
            if s.iter().all(|&b| is_scheme_char(b)) {
                scheme = s;
                rest = r.get(1..).unwrap_or(&[]);
            }
        }
    }
    let mut netloc: &[u8] = &[];
    if let Some(after) = rest.strip_prefix(b"//") {
        let end = after
            .iter()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(after.len());
        netloc = after.get(..end).unwrap_or(&[]);
        let open = netloc.contains(&b'[');
        let close = netloc.contains(&b']');
        if open != close {
            return Err(());
        }
        if open {
            let after_open = partition(netloc, b'[').1;
            let bracketed = partition(after_open, b']').0;
            if !py_bracketed_host_ok(bracketed) {
                return Err(());
            }
        }
    }
    // `_checknetloc`: NFKC of Latin-1 never yields one of "/?#@:", so it cannot raise here.
    Ok(Split { scheme, netloc })
}

/// `s.partition(sep)[0]`, `[2]`.
fn partition(s: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == sep) {
        Some(i) => (
            s.get(..i).unwrap_or(&[]),
            s.get(i.saturating_add(1)..).unwrap_or(&[]),
        ),
        None => (s, &[]),
    }
}

/// `_hostinfo`: (hostname, port) with empty parts as `None`.
fn py_hostinfo(netloc: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
    let hostinfo = match netloc.iter().rposition(|&b| b == b'@') {
        Some(i) => netloc.get(i.saturating_add(1)..).unwrap_or(&[]),
        None => netloc,
    };
    let (host, port) = match hostinfo.iter().position(|&b| b == b'[') {
        Some(i) => {
            let bracketed = hostinfo.get(i.saturating_add(1)..).unwrap_or(&[]);
            let (h, after) = partition(bracketed, b']');
            (h, partition(after, b':').1)
        }
        None => partition(hostinfo, b':'),
    };
    (
        (!host.is_empty()).then_some(host),
        (!port.is_empty()).then_some(port),
    )
}

/// `_check_bracketed_host`: `v<hex>+.<any>+`, or a valid IPv6 address (IPv4 is refused).
fn py_bracketed_host_ok(h: &[u8]) -> bool {
    if let Some(rest) = h.strip_prefix(b"v") {
        let hex = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        return hex > 0 && rest.get(hex) == Some(&b'.') && rest.len() > hex.saturating_add(1);
    }
    py_ipv6_ok(h)
}

/// `ipaddress.IPv4Address(s)` succeeds.
// Octets have at most 3 ASCII digits (checked first), so each value is
// below 1000; `n` counts the parts of `s`.
#[allow(clippy::arithmetic_side_effects)]
fn py_ipv4_ok(s: &[u8]) -> bool {
    let mut n = 0;
    for octet in s.split(|&b| b == b'.') {
        n += 1;
        if octet.is_empty()
            || octet.len() > 3
            || !octet.iter().all(u8::is_ascii_digit)
            || (octet.len() > 1 && octet.first() == Some(&b'0'))
        {
            return false;
        }
        let v = octet
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        if v > 255 {
            return false;
        }
    }
    n == 4
}

/// `ipaddress.IPv6Address(s)` succeeds (Python 3.11 rules, scope id allowed).
// Bounds: `raw_count` is 3..=9 past its checks (`total <= 9`), so `take >= 2`
// and `n` ends in 2..=9; a skip `k` lies in 1..n-1, so `n - k - 1 >= 1`,
// `hi = k >= 1` and `lo < n`; `hi + lo <= 18`.
#[allow(clippy::arithmetic_side_effects)]
fn py_ipv6_ok(s: &[u8]) -> bool {
    if s.contains(&b'/') {
        return false;
    }
    let addr = match s.iter().position(|&b| b == b'%') {
        Some(i) => {
            let scope = s.get(i.saturating_add(1)..).unwrap_or(&[]);
            if scope.is_empty() || scope.contains(&b'%') {
                return false;
            }
            s.get(..i).unwrap_or(&[])
        }
        None => s,
    };
    if addr.is_empty() {
        return false;
    }
    // Parts: `Some(text)` for a hextet still to check, `None` for one already
    // known valid (from an IPv4 suffix).
    let mut parts: [Option<&[u8]>; 9] = [None; 9];
    let mut n = 0usize;
    let raw_count = addr.iter().filter(|&&b| b == b':').count() + 1;
    if raw_count < 3 {
        return false;
    }
    let mut split = addr.split(|&b| b == b':');
    let last = addr
        .iter()
        .rposition(|&b| b == b':')
        .and_then(|i| addr.get(i + 1..))
        .unwrap_or(&[]);
    let ipv4_tail = last.contains(&b'.');
    let total = if ipv4_tail { raw_count + 1 } else { raw_count };
    if total > 9 {
        return false;
    }
    let take = if ipv4_tail { raw_count - 1 } else { raw_count };
    for _ in 0..take {
        let Some(p) = split.next() else { return false };
        if let Some(slot) = parts.get_mut(n) {
            *slot = Some(p);
        }
        n += 1;
    }
    let mut known_valid = [false; 9];
    if ipv4_tail {
        if !py_ipv4_ok(last) {
            return false;
        }
        for _ in 0..2 {
            if let Some(slot) = known_valid.get_mut(n) {
                *slot = true;
            }
            if let Some(slot) = parts.get_mut(n) {
                *slot = Some(b"0");
            }
            n += 1;
        }
    }
    let part = |i: usize| parts.get(i).copied().flatten().unwrap_or(&[]);
    let is_empty = |i: usize| part(i).is_empty() && !known_valid.get(i).copied().unwrap_or(false);
    let mut skip: Option<usize> = None;
    for i in 1..n.saturating_sub(1) {
        if is_empty(i) {
            if skip.is_some() {
                return false;
            }
            skip = Some(i);
        }
    }
    let (hi, lo) = match skip {
        Some(k) => {
            let mut hi = k;
            let mut lo = n - k - 1;
            if is_empty(0) {
                hi -= 1;
                if hi != 0 {
                    return false;
                }
            }
            if is_empty(n - 1) {
                lo -= 1;
                if lo != 0 {
                    return false;
                }
            }
            if hi + lo >= 8 {
                return false;
            }
            (hi, lo)
        }
        None => {
            if n != 8 || is_empty(0) || is_empty(n - 1) {
                return false;
            }
            (n, 0)
        }
    };
    let hextet_ok = |i: usize| {
        known_valid.get(i).copied().unwrap_or(false) || {
            let p = part(i);
            !p.is_empty() && p.len() <= 4 && p.iter().all(u8::is_ascii_hexdigit)
        }
    };
    (0..hi).all(hextet_ok) && (n - lo..n).all(hextet_ok)
}

/// `urlparse(x).port`: `Ok(None)` without a port, `Err` where Python raises.
fn py_port(port: Option<&[u8]>) -> Result<Option<u16>, ()> {
    let Some(p) = port else { return Ok(None) };
    if !p.iter().all(u8::is_ascii_digit) {
        return Err(());
    }
    let mut v: u32 = 0;
    for d in p {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(d.wrapping_sub(b'0'))))
            .ok_or(())?;
        if v > 65535 {
            return Err(());
        }
    }
    u16::try_from(v).map(Some).map_err(|_| ())
}

/// `get_origin_port`.
fn py_origin_port(scheme: &[u8], port: Option<&[u8]>) -> Result<Option<u16>, ()> {
    Ok(match py_port(port)? {
        Some(p) => Some(p),
        None => default_port(scheme),
    })
}

/// `urlparse(x).hostname` as Latin-1 bytes: lowercased up to the first `%`.
fn py_hostname_lower(host: &[u8]) -> Vec<u8> {
    let mut seen_pct = false;
    host.iter()
        .map(|&b| {
            if b == b'%' {
                seen_pct = true;
            }
            if seen_pct {
                b
            } else {
                latin1_lower(b)
            }
        })
        .collect()
}

impl ChannelsPattern {
    fn parse(pattern: &str) -> Result<Self, OriginPatternError> {
        if pattern == "*" {
            return Ok(ChannelsPattern::Star);
        }
        let original = latin1_bytes(pattern).ok_or(OriginPatternError::NotLatin1)?;
        let lowered: Vec<u8> = original.iter().map(|&b| latin1_lower(b)).collect();
        let cleaned = clean_url(&lowered);
        let split = py_urlsplit(&cleaned).map_err(|_| OriginPatternError::PythonWouldRaise)?;
        if split.scheme.is_empty() {
            // `urlparse("//" + pattern).hostname or pattern`, then lowercased by is_same_domain.
            let mut with_slashes = Vec::with_capacity(original.len().saturating_add(2));
            with_slashes.extend_from_slice(b"//");
            with_slashes.extend_from_slice(&original);
            let cleaned2 = clean_url(&with_slashes);
            let split2 =
                py_urlsplit(&cleaned2).map_err(|_| OriginPatternError::PythonWouldRaise)?;
            let host = match py_hostinfo(split2.netloc).0 {
                Some(h) => h.to_vec(),
                None => original.clone(),
            };
            let host = host.iter().map(|&b| latin1_lower(b)).collect();
            return Ok(ChannelsPattern::HostOnly { host });
        }
        let scheme: Vec<u8> = split.scheme.iter().map(u8::to_ascii_lowercase).collect();
        let (host, port) = py_hostinfo(split.netloc);
        let port =
            py_origin_port(&scheme, port).map_err(|_| OriginPatternError::PythonWouldRaise)?;
        Ok(ChannelsPattern::Full {
            scheme,
            host: host.map(<[u8]>::to_vec),
            port,
        })
    }
}

/// `is_same_domain(host, pattern)` with `host` as `urlparse().hostname` returns
/// it (raw bytes, lowercased up to `%` on the fly) and `pat` already lowercased.
fn is_same_domain(host: &[u8], pat: &[u8]) -> bool {
    if pat.is_empty() {
        return false;
    }
    let lower_at = |i: usize| -> Option<u8> {
        let b = *host.get(i)?;
        let before_pct = !host.get(..i).unwrap_or(&[]).contains(&b'%') && b != b'%';
        Some(if before_pct { latin1_lower(b) } else { b })
    };
    let eq_from = |start: usize, p: &[u8]| -> bool {
        host.len() == start.saturating_add(p.len())
            && p.iter()
                .enumerate()
                .all(|(j, &c)| lower_at(start.saturating_add(j)) == Some(c))
    };
    if pat.first() == Some(&b'.') {
        if host.len() >= pat.len() && eq_from(host.len().saturating_sub(pat.len()), pat) {
            return true;
        }
        if eq_from(0, pat.get(1..).unwrap_or(&[])) {
            return true;
        }
    }
    eq_from(0, pat)
}

struct ChannelsOrigin<'a> {
    scheme: &'a [u8],
    host: Option<&'a [u8]>,
    port: Option<&'a [u8]>,
}

fn channels_check<'h, I>(patterns: &[ChannelsPattern], has_star: bool, headers: I) -> OriginVerdict
where
    I: IntoIterator<Item = &'h [u8]>,
{
    // Every Origin header is parsed (so every one may raise); the last one wins.
    let mut last: Option<Cow<'h, [u8]>> = None;
    for h in headers {
        let cleaned = clean_url(h);
        if py_urlsplit(&cleaned).is_err() {
            return OriginVerdict::Error;
        }
        last = Some(cleaned);
    }
    let Some(buf) = last else {
        return if has_star {
            OriginVerdict::Allowed
        } else {
            OriginVerdict::Rejected
        };
    };
    let Ok(split) = py_urlsplit(&buf) else {
        return OriginVerdict::Error;
    };
    let mut scheme_buf = [0u8; 16];
    let scheme_lower: &[u8] = if split.scheme.len() <= scheme_buf.len() {
        for (d, s) in scheme_buf.iter_mut().zip(split.scheme) {
            *d = s.to_ascii_lowercase();
        }
        scheme_buf.get(..split.scheme.len()).unwrap_or(&[])
    } else {
        // Longer schemes never equal a pattern scheme we could store inline;
        // compare case-insensitively below instead.
        split.scheme
    };
    let (host, port) = py_hostinfo(split.netloc);
    let origin = ChannelsOrigin {
        scheme: scheme_lower,
        host,
        port,
    };
    for pat in patterns {
        match pat {
            ChannelsPattern::Star => return OriginVerdict::Allowed,
            ChannelsPattern::HostOnly { host: ph } => {
                if let Some(oh) = origin.host {
                    if is_same_domain(oh, ph) {
                        return OriginVerdict::Allowed;
                    }
                }
            }
            ChannelsPattern::Full {
                scheme,
                host: ph,
                port: pport,
            } => {
                let Some(oh) = origin.host else { continue };
                let oport = match py_origin_port(origin.scheme, origin.port) {
                    Ok(p) => p,
                    Err(()) => return OriginVerdict::Error,
                };
                let scheme_eq = origin.scheme.eq_ignore_ascii_case(scheme)
                    && origin.scheme.len() == scheme.len();
                if scheme_eq
                    && oport == *pport
                    && ph.as_deref().is_some_and(|ph| is_same_domain(oh, ph))
                {
                    return OriginVerdict::Allowed;
                }
            }
        }
    }
    OriginVerdict::Rejected
}

/// The hostname Python's `urlparse(origin).hostname` gives (lowercased), for
/// diagnostics; `None` where Python gives `None` or raises.
pub fn channels_hostname(origin: &[u8]) -> Option<Vec<u8>> {
    let cleaned = clean_url(origin);
    let split = py_urlsplit(&cleaned).ok()?;
    py_hostinfo(split.netloc).0.map(py_hostname_lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(patterns: &[&str], require: bool, headers: &[&str]) -> OriginVerdict {
        let p = OriginPolicy::allowlist(patterns, require).unwrap();
        p.check(headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn allowlist_table() {
        use OriginVerdict::*;
        let rows: &[(&[&str], bool, &[&str], OriginVerdict)] = &[
            (
                &["https://app.example.com"],
                false,
                &["https://app.example.com"],
                Allowed,
            ),
            (
                &["https://app.example.com"],
                false,
                &["https://APP.example.com"],
                Allowed,
            ),
            (
                &["https://app.example.com"],
                false,
                &["https://app.example.com:443"],
                Allowed,
            ),
            (
                &["https://app.example.com"],
                false,
                &["https://app.example.com:8443"],
                Rejected,
            ),
            (
                &["https://app.example.com"],
                false,
                &["http://app.example.com"],
                Rejected,
            ),
            (
                &["https://app.example.com"],
                false,
                &["https://evil.com"],
                Rejected,
            ),
            (&["https://app.example.com"], false, &[], Allowed),
            (&["https://app.example.com"], true, &[], Rejected),
            (&["https://app.example.com"], false, &["null"], Rejected),
            (&["null"], false, &["null"], Allowed),
            (
                &["http://localhost:*"],
                false,
                &["http://localhost:5173"],
                Allowed,
            ),
            (
                &["http://localhost:*"],
                false,
                &["http://localhost"],
                Allowed,
            ),
            (
                &["http://localhost:*"],
                false,
                &["http://localhost.evil.com:80"],
                Rejected,
            ),
            (
                &["https://*.example.com"],
                false,
                &["https://a.b.example.com"],
                Allowed,
            ),
            (
                &["https://*.example.com"],
                false,
                &["https://example.com"],
                Rejected,
            ),
            (
                &["https://*.example.com"],
                false,
                &["https://badexample.com"],
                Rejected,
            ),
            (&["*"], true, &["anything"], Allowed),
            (&["http://[::1]:*"], false, &["http://[::1]:8000"], Allowed),
            (
                &["https://app.example.com"],
                false,
                &["https://app.example.com/"],
                Rejected,
            ),
            (
                &["https://app.example.com"],
                false,
                &["https://app.example.com", "https://app.example.com"],
                Rejected,
            ),
        ];
        for (pats, req, hdrs, want) in rows {
            assert_eq!(native(pats, *req, hdrs), *want, "{pats:?} {req} {hdrs:?}");
        }
    }

    #[test]
    fn default_policy_allows_localhost() {
        let p = OriginPolicy::default();
        assert!(p.check([&b"http://localhost:3000"[..]]).is_allowed());
        assert!(p.check([&b"http://127.0.0.1:8000"[..]]).is_allowed());
        assert!(!p.check([&b"https://localhost:3000"[..]]).is_allowed());
        assert!(p.check(core::iter::empty()).is_allowed());
    }

    #[test]
    fn bad_native_patterns() {
        for p in [
            "example.com",
            "http://",
            "http://a:99999",
            "http://a:x",
            "http://*x.com",
            "http://a/b",
        ] {
            assert!(OriginPolicy::allowlist(&[p], false).is_err(), "{p}");
        }
    }

    #[test]
    fn ipv6_rules() {
        for ok in [
            "::1",
            "::",
            "1::",
            "fe80::1%eth0",
            "1:2:3:4:5:6:7:8",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:1.2.3.4",
        ] {
            assert!(py_ipv6_ok(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "1",
            ":1",
            "1:2",
            "1:::2",
            "1::2::3",
            "12345::",
            "::1%",
            "1.2.3.4",
            "::01.2.3.4",
            "1:2:3:4:5:6:7:8:9",
            "g::",
        ] {
            assert!(!py_ipv6_ok(bad.as_bytes()), "{bad}");
        }
    }
}
