//! Edge mode: the handshake a gateway forwards to the application behind it.
//!
//! With `[upstream]` configured, the gateway decides every handshake itself
//! and forwards the accepted ones to the app it fronts (Daphne, Uvicorn). The
//! forwarded handshake ([`Edge::forward`]) carries
//!
//! * the client's path and query, every credential removed: the token query
//!   parameters, the `Authorization` header, the bearer subprotocol and the
//!   token after it, the JWT cookie and (unless `keep_session_cookie`) the
//!   session cookie;
//! * the client's other headers, without hop-by-hop and handshake headers
//!   (the WebSocket client writes its own), without any incoming copy of the
//!   principal header, and with `X-Forwarded-For` set to the peer;
//! * one principal header ([`Edge::sign_into`]): who connected, on which
//!   route, signed with the upstream secret, timestamped and bound to the
//!   path, so a header lifted from one connection is refused on another path
//!   and after [`DEFAULT_MAX_AGE_MS`].
//!
//! The app verifies it with [`PrincipalSigner::verify_headers`], from the
//! request's headers and path as it received them (in Python:
//! `wsauth.channels.GatewayPrincipalMiddleware`), so it stays safe when
//! someone reaches it without the gateway.
//!
//! # The principal header
//!
//! `v1.<issued_at_ms>.<payload>.<mac>`, where `payload` is the URL-safe
//! base64 (no padding) of a JSON object
//!
//! ```json
//! {"path":"/ws/admin/chat/","route":"admin_chat",
//!  "user":{"id":"1","numeric":true,"is_staff":true,"is_superuser":false,
//!          "is_active":true,"auth":"jwt","carrier":"query","exp":1700000000}}
//! ```
//!
//! (`"user":null` for an anonymous principal; `"auth":"session"` without
//! `carrier` and with `"exp":null` for a session), and `mac` is the URL-safe
//! base64 of HMAC-SHA256 over `v1.<issued_at_ms>.<payload>`, keyed with
//! SHA-256 of `wsauth.edge.principal` followed by the upstream secret (a key
//! of its own even when the secret is reused elsewhere). The MAC is checked
//! before anything in the payload is read.

use crate::close::{Close, CloseCode};
use crate::django::cookie::parse_cookie_pairs;
use crate::jwt::key::SecretKey;
use crate::pipeline::decide::{AuthMethod, Principal, Subprotocol, User, UserId};
use crate::pipeline::view::{Carrier, CredentialSettings, HandshakeView};
use crate::py::compare::compare_digest;
use crate::py::json::{self, Encoding, JsonValue};
use crate::py::percent::{unquote, unquote_plus};
use crate::time::UnixTime;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use base64::Engine as _;
use core::fmt;
use core::fmt::Write as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The principal header's default name.
pub const DEFAULT_HEADER: &str = "x-wsauth-principal";
/// How long a principal header is accepted after it was issued, by default.
/// It is only read when the app accepts the forwarded handshake, which
/// follows the signing within a connect timeout.
pub const DEFAULT_MAX_AGE_MS: u64 = 10_000;
/// How far in the future an issue time may lie (clocks of two hosts).
pub const MAX_CLOCK_SKEW_MS: u64 = 2_000;
/// The longest principal header accepted (a real one is a few hundred bytes).
pub const MAX_HEADER_BYTES: usize = 2048;
/// A response header every upgrade answered by a gateway in edge mode
/// carries (value [`MODE_EDGE`]), so a client (`wsauth probe`) can tell the
/// connection goes on to the app behind it. It names no upstream.
pub const MODE_HEADER: &str = "x-wsauth-mode";
/// [`MODE_HEADER`]'s value.
pub const MODE_EDGE: &str = "edge";
/// The default connect timeout for the upstream, milliseconds.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;

const VERSION: &str = "v1";
const KEY_DOMAIN: &[u8] = b"wsauth.edge.principal";

// ------------------------------------------------------------ config

/// Why an `[upstream]` setting is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamError {
    /// `url` is not `ws://host[:port]`.
    BadUrl,
    /// `url` is `wss://`: the gateway speaks plain WebSocket to an app on
    /// its own network.
    TlsUrl,
    /// `url` has a path or query: the client's path is forwarded as is.
    UrlWithPath,
    /// `header` is not a lowercase HTTP token, or names a header the
    /// forwarded handshake needs for itself.
    BadHeader,
    /// `connect_timeout_ms` is 0 or above a minute.
    BadTimeout,
    /// `secret` is missing.
    MissingSecret,
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpstreamError::BadUrl => "upstream url must be ws://host[:port]",
            UpstreamError::TlsUrl => {
                "wss:// upstreams are not supported: the gateway speaks ws:// to the app on its own network"
            }
            UpstreamError::UrlWithPath => {
                "upstream url must not have a path or query: the client's path and query are forwarded"
            }
            UpstreamError::BadHeader => {
                "upstream header must be a lowercase header name other than the handshake's own headers"
            }
            UpstreamError::BadTimeout => "upstream connect_timeout_ms must be 1..=60000",
            UpstreamError::MissingSecret => {
                "upstream secret is required (the app verifies the principal header with it)"
            }
        })
    }
}

impl core::error::Error for UpstreamError {}

/// An upstream address: `host` and `port` of a `ws://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAddr {
    /// The host (an IPv6 literal without brackets).
    pub host: String,
    /// The port (80 when the URL has none).
    pub port: u16,
}

impl UpstreamAddr {
    /// Parses `ws://host[:port][/]`.
    pub fn parse(url: &str) -> Result<Self, UpstreamError> {
        if url.len() > 7
            && url
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("wss://"))
        {
            return Err(UpstreamError::TlsUrl);
        }
        let rest = match url.get(..5) {
            Some(s) if s.eq_ignore_ascii_case("ws://") => url.get(5..).unwrap_or(""),
            _ => return Err(UpstreamError::BadUrl),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(UpstreamError::UrlWithPath);
        }
        if rest.contains('@') || rest.is_empty() {
            return Err(UpstreamError::BadUrl);
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(UpstreamError::BadUrl)?;
            if h.parse::<core::net::Ipv6Addr>().is_err() {
                return Err(UpstreamError::BadUrl);
            }
            match after {
                "" => (h, None),
                p => (h, Some(p.strip_prefix(':').ok_or(UpstreamError::BadUrl)?)),
            }
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let host_ok = !host.is_empty()
            && (host.contains(':')
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'));
        if !host_ok {
            return Err(UpstreamError::BadUrl);
        }
        let port = match port {
            None => 80,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u16>().map_err(|_| UpstreamError::BadUrl)?
            }
            Some(_) => return Err(UpstreamError::BadUrl),
        };
        if port == 0 {
            return Err(UpstreamError::BadUrl);
        }
        Ok(UpstreamAddr {
            host: host.into(),
            port,
        })
    }

    /// `host:port` (IPv6 in brackets), as a `Host` header and socket address.
    pub fn authority(&self) -> String {
        let mut s = String::new();
        if self.host.contains(':') {
            let _ = write!(s, "[{}]:{}", self.host, self.port);
        } else {
            let _ = write!(s, "{}:{}", self.host, self.port);
        }
        s
    }
}

/// Headers the forwarded handshake writes itself or that describe only the
/// client's hop: never copied from the client.
const HOP_HEADERS: &[&str] = &[
    "host",
    "connection",
    "upgrade",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "content-length",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "sec-websocket-accept",
    "x-forwarded-for",
];

fn is_token_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `name` can be the principal header: a lowercase HTTP token that
/// is none of the headers the forwarded handshake writes or strips.
pub fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(is_token_char)
        && !HOP_HEADERS.contains(&name)
        && !matches!(name, "authorization" | "cookie" | "origin")
}

/// The settings of an edge gateway, as `[upstream]` names them (the secret
/// resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSettings<'a> {
    /// `ws://host:port` of the app.
    pub url: &'a str,
    /// The principal header's name.
    pub header: &'a str,
    /// Connect timeout, milliseconds (1..=60000).
    pub connect_timeout_ms: u64,
    /// Forward the session cookie.
    pub keep_session_cookie: bool,
}

// ------------------------------------------------------------ signing

/// Signs and verifies principal headers with one upstream secret.
#[derive(Clone)]
pub struct PrincipalSigner {
    /// HMAC-SHA256 with the derived key already absorbed.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for PrincipalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrincipalSigner(<redacted>)")
    }
}

/// Why a principal header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EdgeError {
    /// No principal header: the connection did not come through the gateway.
    Missing,
    /// More than [`MAX_HEADER_BYTES`] bytes.
    TooLarge,
    /// More than one principal header: a gateway writes exactly one (and
    /// drops any copy a client sent).
    Repeated,
    /// Not `v1.<ms>.<payload>.<mac>`, or a payload the gateway never writes.
    Malformed,
    /// The MAC does not match: forged, or another secret.
    BadSignature,
    /// Issued longer ago than the accepted age.
    Stale,
    /// Issued later than now plus [`MAX_CLOCK_SKEW_MS`].
    FromTheFuture,
    /// Signed for another path.
    WrongPath,
}

impl EdgeError {
    /// The contract name (`missing`, `too_large`, `repeated`, `malformed`,
    /// `bad_signature`, `stale`, `from_the_future`, `wrong_path`).
    pub const fn kind(self) -> &'static str {
        match self {
            EdgeError::Missing => "missing",
            EdgeError::TooLarge => "too_large",
            EdgeError::Repeated => "repeated",
            EdgeError::Malformed => "malformed",
            EdgeError::BadSignature => "bad_signature",
            EdgeError::Stale => "stale",
            EdgeError::FromTheFuture => "from_the_future",
            EdgeError::WrongPath => "wrong_path",
        }
    }

    /// The close that refuses the connection at the app: 4401 (the app
    /// cannot know who this is), never a detail of the header.
    pub fn close(self) -> Close {
        Close::new(CloseCode::Unauthorized, "gateway principal invalid")
    }
}

impl fmt::Display for EdgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EdgeError::Missing => "no gateway principal header",
            EdgeError::TooLarge => "gateway principal header too large",
            EdgeError::Repeated => "gateway principal header repeated",
            EdgeError::Malformed => "gateway principal header malformed",
            EdgeError::BadSignature => "gateway principal header signature mismatch",
            EdgeError::Stale => "gateway principal header expired",
            EdgeError::FromTheFuture => "gateway principal header issued in the future",
            EdgeError::WrongPath => "gateway principal header signed for another path",
        })
    }
}

impl core::error::Error for EdgeError {}

/// A verified principal header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedPrincipal {
    /// Who connected (as the gateway decided).
    pub principal: Principal,
    /// The gateway's route name.
    pub route: String,
    /// The path it was signed for (as forwarded, still percent-encoded).
    pub path: String,
    /// When the gateway signed it.
    pub issued_at: UnixTime,
}

impl PrincipalSigner {
    /// A signer for `secret` (must not be empty).
    pub fn new(secret: &SecretKey) -> Option<Self> {
        if secret.is_empty() {
            return None;
        }
        let mut h = Sha256::new();
        h.update(KEY_DOMAIN);
        h.update(secret.expose());
        let key = h.finalize();
        Some(PrincipalSigner {
            mac: Hmac::<Sha256>::new_from_slice(&key).ok()?,
        })
    }

    fn tag(&self, signed: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(signed);
        m.finalize().into_bytes().into()
    }

    /// The header value for `principal` on `route`, bound to `path` (the
    /// path as forwarded, percent-encoded, without the query), issued `now`.
    pub fn sign(&self, principal: &Principal, route: &str, path: &str, now: UnixTime) -> String {
        let mut payload = String::with_capacity(160);
        payload.push_str("{\"path\":");
        json::write_py_str(&mut payload, path.chars().map(u32::from));
        payload.push_str(",\"route\":");
        json::write_py_str(&mut payload, route.chars().map(u32::from));
        payload.push_str(",\"user\":");
        match principal {
            Principal::Anonymous => payload.push_str("null"),
            Principal::User(u) => write_user(&mut payload, u),
        }
        payload.push('}');
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut out = String::with_capacity(payload.len().saturating_mul(2).saturating_add(64));
        let _ = write!(out, "{VERSION}.{}.", now.millis().max(0));
        b64.encode_string(payload.as_bytes(), &mut out);
        let tag = self.tag(out.as_bytes());
        out.push('.');
        b64.encode_string(tag, &mut out);
        out
    }

    /// Verifies a header value for a connection on `path` (the path as the
    /// app sees it, percent-decoded — ASGI's `scope["path"]`), issued at most
    /// `max_age_ms` before `now`.
    pub fn verify(
        &self,
        value: &[u8],
        path: &str,
        now: UnixTime,
        max_age_ms: u64,
    ) -> Result<ForwardedPrincipal, EdgeError> {
        if value.len() > MAX_HEADER_BYTES {
            return Err(EdgeError::TooLarge);
        }
        let text = core::str::from_utf8(value).map_err(|_| EdgeError::Malformed)?;
        let (signed, mac) = text.rsplit_once('.').ok_or(EdgeError::Malformed)?;
        let mut parts = signed.splitn(3, '.');
        let (Some(version), Some(issued), Some(payload)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(EdgeError::Malformed);
        };
        if version != VERSION
            || issued.is_empty()
            || issued.len() > 15
            || !issued.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(EdgeError::Malformed);
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut tag = [0u8; 32];
        match b64.decode_slice(mac, &mut tag) {
            Ok(32) => {}
            _ => return Err(EdgeError::BadSignature),
        }
        if !compare_digest(&self.tag(signed.as_bytes()), &tag) {
            return Err(EdgeError::BadSignature);
        }
        let issued: i64 = issued.parse().map_err(|_| EdgeError::Malformed)?;
        let now_ms = now.millis();
        // Both operands fit in i64, so their difference fits in i128.
        let age = i128::from(now_ms).saturating_sub(i128::from(issued));
        if age > i128::from(max_age_ms) {
            return Err(EdgeError::Stale);
        }
        if age.saturating_neg() > i128::from(MAX_CLOCK_SKEW_MS) {
            return Err(EdgeError::FromTheFuture);
        }
        let doc = b64.decode(payload).map_err(|_| EdgeError::Malformed)?;
        let out = parse_payload(&doc, UnixTime::from_millis(issued))?;
        if unquote(&out.path) != path {
            return Err(EdgeError::WrongPath);
        }
        Ok(out)
    }

    /// Verifies the principal header of a request as the app received it:
    /// `headers` are its headers in order, `(name, value)` bytes as the
    /// server gives them (ASGI's `scope["headers"]`), the ones named
    /// `header` (compared ASCII case-insensitively) read; `path` is the path
    /// the app sees, percent-decoded (ASGI's `scope["path"]`), as bytes.
    ///
    /// No such header is [`EdgeError::Missing`], more than one
    /// [`EdgeError::Repeated`] (a gateway writes exactly one); a path that is
    /// not UTF-8 is [`EdgeError::WrongPath`] (a signed path always is, so it
    /// matches none). Otherwise the one value is [`PrincipalSigner::verify`]'s.
    pub fn verify_headers<'h, I>(
        &self,
        header: &[u8],
        headers: I,
        path: &[u8],
        now: UnixTime,
        max_age_ms: u64,
    ) -> Result<ForwardedPrincipal, EdgeError>
    where
        I: IntoIterator<Item = (&'h [u8], &'h [u8])>,
    {
        let mut found = None;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(header) {
                if found.is_some() {
                    return Err(EdgeError::Repeated);
                }
                found = Some(value);
            }
        }
        let value = found.ok_or(EdgeError::Missing)?;
        let path = core::str::from_utf8(path).map_err(|_| EdgeError::WrongPath)?;
        self.verify(value, path, now, max_age_ms)
    }

    /// The answer of [`verify_json`](Self::verify_json) for a header known
    /// only by its length, when the length decides it (too large): a host
    /// need not read, or copy, a value that is refused unread. `None`: read
    /// the value and call `verify_json`.
    pub fn refuse_by_length_json(&self, len: usize) -> Option<String> {
        (len > MAX_HEADER_BYTES).then(|| answer_json(Err(EdgeError::TooLarge)))
    }

    /// [`PrincipalSigner::verify`] as one JSON object (the FFI and Python
    /// answer): `{"valid":true,"user":{…}|null,"route":…,"path":…,
    /// "issued_at_ms":…}` or `{"valid":false,"error":{"kind":…,"message":…}}`.
    pub fn verify_json(
        &self,
        value: Option<&[u8]>,
        path: &str,
        now: UnixTime,
        max_age_ms: u64,
    ) -> String {
        answer_json(match value {
            None => Err(EdgeError::Missing),
            Some(v) => self.verify(v, path, now, max_age_ms),
        })
    }

    /// [`PrincipalSigner::verify_headers`] as one JSON object, the shape of
    /// [`PrincipalSigner::verify_json`].
    pub fn verify_headers_json<'h, I>(
        &self,
        header: &[u8],
        headers: I,
        path: &[u8],
        now: UnixTime,
        max_age_ms: u64,
    ) -> String
    where
        I: IntoIterator<Item = (&'h [u8], &'h [u8])>,
    {
        answer_json(self.verify_headers(header, headers, path, now, max_age_ms))
    }
}

/// The JSON answer for a verification (see [`PrincipalSigner::verify_json`]).
fn answer_json(r: Result<ForwardedPrincipal, EdgeError>) -> String {
    let mut out = String::with_capacity(256);
    match r {
        Ok(p) => {
            out.push_str("{\"valid\":true,\"user\":");
            match &p.principal {
                Principal::Anonymous => out.push_str("null"),
                Principal::User(u) => write_user(&mut out, u),
            }
            out.push_str(",\"route\":");
            json::write_py_str(&mut out, p.route.chars().map(u32::from));
            out.push_str(",\"path\":");
            json::write_py_str(&mut out, p.path.chars().map(u32::from));
            let _ = write!(out, ",\"issued_at_ms\":{}}}", p.issued_at.millis());
        }
        Err(e) => {
            let _ = write!(
                out,
                "{{\"valid\":false,\"error\":{{\"kind\":\"{}\",\"message\":\"{}\"}}}}",
                e.kind(),
                e
            );
        }
    }
    out
}

fn write_bool(out: &mut String, name: &str, v: bool) {
    let _ = write!(out, ",\"{name}\":{v}");
}

fn write_user(out: &mut String, u: &User) {
    out.push_str("{\"id\":");
    json::write_py_str(out, u.id.as_str().chars().map(u32::from));
    write_bool(out, "numeric", u.id.is_numeric());
    write_bool(out, "is_staff", u.is_staff);
    write_bool(out, "is_superuser", u.is_superuser);
    write_bool(out, "is_active", u.is_active);
    match u.method {
        AuthMethod::Jwt(c) => {
            let _ = write!(out, ",\"auth\":\"jwt\",\"carrier\":\"{}\"", c.as_str());
        }
        AuthMethod::Session => out.push_str(",\"auth\":\"session\""),
    }
    match u.expires_at {
        Some(e) => {
            let _ = write!(out, ",\"exp\":{e}");
        }
        None => out.push_str(",\"exp\":null"),
    }
    out.push('}');
}

fn carrier_from_name(name: &str) -> Option<Carrier> {
    [
        Carrier::Subprotocol,
        Carrier::Header,
        Carrier::Query,
        Carrier::Cookie,
        Carrier::Session,
        Carrier::Message,
    ]
    .into_iter()
    .find(|c| c.as_str() == name)
}

fn json_string(v: Option<JsonValue<'_>>) -> Result<String, EdgeError> {
    match v {
        Some(JsonValue::Str(s)) => s.to_string().ok_or(EdgeError::Malformed),
        _ => Err(EdgeError::Malformed),
    }
}

fn json_bool(v: Option<JsonValue<'_>>) -> Result<bool, EdgeError> {
    match v {
        Some(JsonValue::Bool(b)) => Ok(b),
        _ => Err(EdgeError::Malformed),
    }
}

/// Reads a payload the gateway wrote (only its shape is accepted).
fn parse_payload(doc: &[u8], issued_at: UnixTime) -> Result<ForwardedPrincipal, EdgeError> {
    let obj = json::parse_object(doc, Encoding::Utf8).map_err(|_| EdgeError::Malformed)?;
    let path = json_string(obj.get("path"))?;
    let route = json_string(obj.get("route"))?;
    let principal = match obj.get("user") {
        Some(JsonValue::Null) => Principal::Anonymous,
        Some(JsonValue::Object(u)) => {
            let id = json_string(u.get("id"))?;
            let numeric = json_bool(u.get("numeric"))?;
            let method = match json_string(u.get("auth"))?.as_str() {
                "jwt" => AuthMethod::Jwt(
                    carrier_from_name(&json_string(u.get("carrier"))?)
                        .ok_or(EdgeError::Malformed)?,
                ),
                "session" => AuthMethod::Session,
                _ => return Err(EdgeError::Malformed),
            };
            let expires_at = match u.get("exp") {
                Some(JsonValue::Null) => None,
                Some(JsonValue::Int(e)) => Some(e),
                _ => return Err(EdgeError::Malformed),
            };
            Principal::User(User {
                id: UserId::new(&id, numeric).ok_or(EdgeError::Malformed)?,
                is_staff: json_bool(u.get("is_staff"))?,
                is_superuser: json_bool(u.get("is_superuser"))?,
                is_active: json_bool(u.get("is_active"))?,
                method,
                expires_at,
            })
        }
        _ => return Err(EdgeError::Malformed),
    };
    Ok(ForwardedPrincipal {
        principal,
        route,
        path,
        issued_at,
    })
}

// ------------------------------------------------------------ forwarding

/// What a gateway in edge mode needs: where the app is, how to strip a
/// handshake, how to sign the principal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Edge {
    inner: Arc<EdgeInner>,
}

#[derive(Debug)]
struct EdgeInner {
    url: String,
    addr: UpstreamAddr,
    header: String,
    connect_timeout_ms: u64,
    keep_session_cookie: bool,
    signer: PrincipalSigner,
    credentials: CredentialSettings,
}

/// The handshake to send upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The request target: the client's path and query, credential
    /// parameters removed (`/ws/chat/lobby/?x=1`).
    pub target: String,
    /// The path alone, as forwarded (the principal header is bound to it).
    pub path: String,
    /// Headers to send besides the ones the WebSocket client writes
    /// (`Host`, `Connection`, `Upgrade`, `Sec-WebSocket-Key`/`-Version`).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Subprotocols to offer upstream (the client's, bearer and token removed).
    pub subprotocols: Vec<String>,
    /// The subprotocol the gateway's decision answers the client with.
    decided: Option<Subprotocol>,
}

/// The upstream chose a subprotocol the gateway never offered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnofferedSubprotocol;

impl Forward {
    /// The subprotocol to answer the client with, once the upstream
    /// answered `upstream`: the decision's (`bearer`) when it has one, else
    /// the upstream's choice, which must be one the client offered.
    pub fn client_subprotocol<'a>(
        &'a self,
        upstream: Option<&'a str>,
    ) -> Result<Option<&'a str>, UnofferedSubprotocol> {
        if let Some(up) = upstream {
            if !self.subprotocols.iter().any(|s| s == up) {
                return Err(UnofferedSubprotocol);
            }
        }
        Ok(match &self.decided {
            Some(s) => Some(s.as_str()),
            None => upstream,
        })
    }
}

impl Edge {
    /// Edge settings, the resolved upstream secret, and the credential
    /// settings the handshake was decided with.
    pub fn new(
        config: &EdgeSettings<'_>,
        secret: &SecretKey,
        credentials: CredentialSettings,
    ) -> Result<Self, UpstreamError> {
        let addr = UpstreamAddr::parse(config.url)?;
        if !valid_header_name(config.header) {
            return Err(UpstreamError::BadHeader);
        }
        if config.connect_timeout_ms == 0 || config.connect_timeout_ms > 60_000 {
            return Err(UpstreamError::BadTimeout);
        }
        let signer = PrincipalSigner::new(secret).ok_or(UpstreamError::MissingSecret)?;
        Ok(Edge {
            inner: Arc::new(EdgeInner {
                url: config.url.into(),
                addr,
                header: config.header.into(),
                connect_timeout_ms: config.connect_timeout_ms,
                keep_session_cookie: config.keep_session_cookie,
                signer,
                credentials,
            }),
        })
    }

    /// The configured URL (for banners; it holds no secret).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Where to connect.
    pub fn addr(&self) -> &UpstreamAddr {
        &self.inner.addr
    }

    /// The principal header's name.
    pub fn header_name(&self) -> &str {
        &self.inner.header
    }

    /// How long connecting to the upstream may take, milliseconds.
    pub fn connect_timeout_ms(&self) -> u64 {
        self.inner.connect_timeout_ms
    }

    /// The signer (the app side verifies with the same secret).
    pub fn signer(&self) -> &PrincipalSigner {
        &self.inner.signer
    }

    /// The close a client gets when the upstream cannot be reached or
    /// refuses the forwarded handshake (after accept: 1014, never 4401).
    pub fn unreachable() -> Close {
        Close::new(CloseCode::BadGateway, "upstream unavailable")
    }

    /// The handshake to forward for `view`, accepted with the decision's
    /// subprotocol `decided`: every credential removed. Add the principal
    /// with [`Edge::sign_into`] once it is known.
    pub fn forward(&self, view: &HandshakeView<'_>, decided: Option<Subprotocol>) -> Forward {
        let c = &self.inner.credentials;
        let target = {
            let mut t = String::with_capacity(
                view.path
                    .len()
                    .saturating_add(view.query.len())
                    .saturating_add(1),
            );
            t.push_str(view.path);
            let mut first = true;
            for pair in view.query.split('&') {
                if pair.is_empty() {
                    continue;
                }
                let name = pair.split_once('=').map_or(pair, |(k, _)| k);
                let name = unquote_plus(name);
                if c.query_params.iter().any(|p| *p == *name) {
                    continue;
                }
                t.push(if first { '?' } else { '&' });
                first = false;
                t.push_str(pair);
            }
            t
        };

        // Headers a `Connection` header declares hop-by-hop.
        let declared: Vec<String> = view
            .header_values("connection")
            .filter_map(|v| core::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        let mut headers: Vec<(String, Vec<u8>)> =
            Vec::with_capacity(view.headers.len().saturating_add(2));
        for (name, value) in view.headers {
            let lower = name.to_ascii_lowercase();
            if HOP_HEADERS.contains(&lower.as_str())
                || lower == self.inner.header
                || lower.eq_ignore_ascii_case(&c.header_name)
                || declared.contains(&lower)
            {
                continue;
            }
            if lower == "cookie" {
                if let Some(kept) = self.strip_cookies(value) {
                    headers.push((lower, kept));
                }
                continue;
            }
            headers.push((lower, value.to_vec()));
        }
        if let Some(peer) = view.peer {
            headers.push(("x-forwarded-for".into(), peer.to_string().into_bytes()));
        }

        let mut subprotocols = Vec::new();
        let mut it = view.offered_subprotocols();
        while let Some(p) = it.next() {
            if p == c.subprotocol {
                // The marker and the token after it never leave the gateway.
                it.next();
                continue;
            }
            subprotocols.push(p.to_string());
        }
        let path = String::from(view.path);
        Forward {
            target,
            path,
            headers,
            subprotocols,
            decided,
        }
    }

    /// The Cookie header without the JWT cookie and (unless kept) the
    /// session cookie; `None` when nothing is left.
    fn strip_cookies(&self, value: &[u8]) -> Option<Vec<u8>> {
        let c = &self.inner.credentials;
        let mut out: Vec<u8> = Vec::with_capacity(value.len());
        for chunk in value.split(|&b| b == b';') {
            // Names as Channels reads them: the header decoded as Latin-1.
            let text: String = chunk.iter().map(|&b| char::from(b)).collect();
            let name = parse_cookie_pairs(&text).next().map(|(n, _)| n);
            let drop = match name {
                Some(n) => {
                    c.jwt_cookie.as_deref() == Some(n)
                        || (!self.inner.keep_session_cookie && n == c.session_cookie)
                }
                None => true,
            };
            if drop {
                continue;
            }
            if !out.is_empty() {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(chunk.trim_ascii());
        }
        (!out.is_empty()).then_some(out)
    }

    /// Adds the signed principal header to `forward`.
    pub fn sign_into(
        &self,
        forward: &mut Forward,
        principal: &Principal,
        route: &str,
        now: UnixTime,
    ) {
        let value = self.inner.signer.sign(principal, route, &forward.path, now);
        forward
            .headers
            .push((self.inner.header.clone(), value.into_bytes()));
    }
}

// ------------------------------------------------------------ principals from JSON

/// The principal a user object of the principal header's payload names
/// (`{"id":"1","numeric":true,"is_staff":…,"is_superuser":…,"is_active":…,
/// "auth":"jwt","carrier":"query","exp":N}`, the shape
/// [`PrincipalSigner::verify_json`] answers with), or `null` for an anonymous
/// one: for signing outside a gateway (tests, gateways in other languages).
/// Read by the payload's own parser, so only what a gateway writes is
/// accepted.
pub fn principal_from_json(user: &[u8]) -> Result<Principal, EdgeError> {
    if user.len() > MAX_HEADER_BYTES {
        return Err(EdgeError::TooLarge);
    }
    // One JSON value and nothing else, before it is placed in a document.
    json::parse(user, Encoding::Utf8).map_err(|_| EdgeError::Malformed)?;
    let mut doc: Vec<u8> = Vec::with_capacity(user.len().saturating_add(32));
    doc.extend_from_slice(b"{\"path\":\"\",\"route\":\"\",\"user\":");
    doc.extend_from_slice(user);
    doc.push(b'}');
    parse_payload(&doc, UnixTime::from_millis(0)).map(|p| p.principal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn user(id: &str, staff: bool) -> Principal {
        Principal::User(User {
            id: UserId::new(id, true).unwrap(),
            is_staff: staff,
            is_superuser: false,
            is_active: true,
            method: AuthMethod::Jwt(Carrier::Query),
            expires_at: Some(1_700_000_300),
        })
    }

    fn signer(s: &str) -> PrincipalSigner {
        PrincipalSigner::new(&SecretKey::new(s.as_bytes().to_vec())).unwrap()
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = signer("k");
        let now = UnixTime::from_millis(1_700_000_000_000);
        let p = user("7", true);
        let h = s.sign(&p, "admin_chat", "/ws/admin/chat/", now);
        let ok = s
            .verify(h.as_bytes(), "/ws/admin/chat/", now, 10_000)
            .unwrap();
        assert_eq!(ok.principal, p);
        assert_eq!(ok.route, "admin_chat");
        assert_eq!(ok.issued_at, now);
        let later = UnixTime::from_millis(1_700_000_010_001);
        let rows: Vec<(&[u8], &str, UnixTime, EdgeError)> = vec![
            (h.as_bytes(), "/ws/logs/", now, EdgeError::WrongPath),
            (h.as_bytes(), "/ws/admin/chat/", later, EdgeError::Stale),
            (
                h.as_bytes(),
                "/ws/admin/chat/",
                UnixTime::from_millis(1_699_999_997_999),
                EdgeError::FromTheFuture,
            ),
            (b"v1.1.e30.AAAA", "/", now, EdgeError::BadSignature),
            (b"garbage", "/", now, EdgeError::Malformed),
            (b"\xff", "/", now, EdgeError::Malformed),
        ];
        for (v, path, at, want) in rows {
            assert_eq!(s.verify(v, path, at, 10_000), Err(want), "{path}");
        }
        // Another secret's header is a forgery.
        assert_eq!(
            signer("other").verify(h.as_bytes(), "/ws/admin/chat/", now, 10_000),
            Err(EdgeError::BadSignature)
        );
        // Any flipped byte is refused.
        for i in 0..h.len() {
            let mut b = h.clone().into_bytes();
            b[i] ^= 1;
            assert!(
                s.verify(&b, "/ws/admin/chat/", now, 10_000).is_err(),
                "byte {i}"
            );
        }
        let big = vec![b'a'; MAX_HEADER_BYTES + 1];
        assert_eq!(s.verify(&big, "/", now, 10_000), Err(EdgeError::TooLarge));
        // Refused by its length alone, with the answer of the whole value.
        assert_eq!(
            s.refuse_by_length_json(big.len()),
            Some(s.verify_json(Some(&big), "/", now, 10_000))
        );
        assert_eq!(s.refuse_by_length_json(MAX_HEADER_BYTES), None);
    }

    #[test]
    fn principals_from_json() {
        let p = user("7", true);
        let s = signer("k");
        let now = UnixTime::from_millis(9_000);
        let h = s.sign(&p, "r", "/p/", now);
        let json = s.verify_json(Some(h.as_bytes()), "/p/", now, 1);
        let obj = json::parse_object(json.as_bytes(), Encoding::Utf8).unwrap();
        let Some(JsonValue::Object(u)) = obj.get("user") else {
            panic!("{json}")
        };
        assert_eq!(principal_from_json(u.raw()), Ok(p));
        assert_eq!(principal_from_json(b"null"), Ok(Principal::Anonymous));
        for bad in [
            &b""[..],
            b"{}",
            b"1",
            b"null,\"x\":1",
            b"{\"id\":\"1\"}",
            b"\xff",
        ] {
            assert_eq!(principal_from_json(bad), Err(EdgeError::Malformed));
        }
    }

    #[test]
    fn path_is_compared_decoded() {
        let s = signer("k");
        let now = UnixTime::from_millis(5_000);
        let h = s.sign(&Principal::Anonymous, "chat", "/ws/chat/caf%C3%A9/", now);
        let ok = s.verify(h.as_bytes(), "/ws/chat/café/", now, 1000).unwrap();
        assert_eq!(ok.principal, Principal::Anonymous);
        assert_eq!(ok.path, "/ws/chat/caf%C3%A9/");
    }

    #[test]
    fn headers_missing_repeated_and_non_utf8_paths() {
        let s = signer("k");
        let now = UnixTime::from_millis(1_700_000_000_000);
        let path = "/ws/admin/chat/";
        let h = s.sign(&user("7", true), "admin_chat", path, now);
        let good = h.as_bytes();
        let name = DEFAULT_HEADER.as_bytes();
        let run = |header: &[u8], headers: &[(&[u8], &[u8])], path: &[u8]| {
            s.verify_headers(header, headers.iter().copied(), path, now, 10_000)
        };
        let big = vec![b'v'; MAX_HEADER_BYTES + 1];
        type Headers<'a> = Vec<(&'a [u8], &'a [u8])>;
        let rows: Vec<(Headers<'_>, &[u8], EdgeError)> = vec![
            (vec![], path.as_bytes(), EdgeError::Missing),
            (
                vec![
                    (b"x-wsauth-principal-2", good),
                    (b"x-wsauth-principa", good),
                ],
                path.as_bytes(),
                EdgeError::Missing,
            ),
            (
                vec![(b"x-wsauth-principal", good), (b"x-wsauth-principal", good)],
                path.as_bytes(),
                EdgeError::Repeated,
            ),
            (
                vec![
                    (b"x-wsauth-principal", b"garbage"),
                    (b"host", b"app"),
                    (b"X-WsAuth-Principal", good),
                ],
                path.as_bytes(),
                EdgeError::Repeated,
            ),
            (
                vec![(b"x-wsauth-principal", &big), (b"x-wsauth-principal", &big)],
                path.as_bytes(),
                EdgeError::Repeated,
            ),
            (
                vec![(b"x-wsauth-principal", good), (b"x-wsauth-principal", good)],
                b"/ws/\xff/",
                EdgeError::Repeated,
            ),
            (vec![], b"/ws/\xff/", EdgeError::Missing),
            (
                vec![(b"x-wsauth-principal", good)],
                b"/ws/admin/chat/\xff",
                EdgeError::WrongPath,
            ),
            // A lone surrogate as `surrogatepass` writes it.
            (
                vec![(b"x-wsauth-principal", good)],
                b"/ws/\xed\xa0\x80/",
                EdgeError::WrongPath,
            ),
            (
                vec![(b"x-wsauth-principal", b"garbage")],
                b"/\xc3",
                EdgeError::WrongPath,
            ),
            (
                vec![(b"x-wsauth-principal", &big)],
                path.as_bytes(),
                EdgeError::TooLarge,
            ),
            (
                vec![(b"x-wsauth-principal", good)],
                b"/ws/logs/",
                EdgeError::WrongPath,
            ),
        ];
        for (i, (headers, p, want)) in rows.into_iter().enumerate() {
            assert_eq!(run(name, &headers, p), Err(want), "row {i}");
        }
        // Names compared ASCII case-insensitively, either way round.
        for (header, sent) in [
            (&b"x-wsauth-principal"[..], &b"X-WSAUTH-PRINCIPAL"[..]),
            (b"X-WsAuth-Principal", b"x-wsauth-principal"),
        ] {
            let got = run(header, &[(b"origin", b"o"), (sent, good)], path.as_bytes()).unwrap();
            assert_eq!(got.route, "admin_chat");
            assert_eq!(got.principal, user("7", true));
        }
        // Only the configured name is read.
        assert_eq!(
            run(b"x-edge", &[(name, good)], path.as_bytes()),
            Err(EdgeError::Missing)
        );
        assert!(run(b"x-edge", &[(b"X-Edge", good)], path.as_bytes()).is_ok());
        // The path is compared percent-decoded, as `verify` does.
        let h = s.sign(&Principal::Anonymous, "chat", "/ws/chat/caf%C3%A9/", now);
        let got = run(name, &[(name, h.as_bytes())], "/ws/chat/café/".as_bytes()).unwrap();
        assert_eq!(got.path, "/ws/chat/caf%C3%A9/");
        assert_eq!(
            run(name, &[(name, h.as_bytes())], b"/ws/chat/caf\xe9/"),
            Err(EdgeError::WrongPath)
        );
    }

    #[test]
    fn repeated_is_refused_like_every_kind() {
        assert_eq!(EdgeError::Repeated.kind(), "repeated");
        assert_eq!(
            EdgeError::Repeated.to_string(),
            "gateway principal header repeated"
        );
        let c = EdgeError::Repeated.close();
        assert_eq!(c.code_u16(), 4401);
        assert_eq!(c.reason.as_str(), "gateway principal invalid");
        for e in [
            EdgeError::Missing,
            EdgeError::TooLarge,
            EdgeError::Malformed,
            EdgeError::BadSignature,
            EdgeError::Stale,
            EdgeError::FromTheFuture,
            EdgeError::WrongPath,
        ] {
            assert_eq!(e.close(), c, "{e:?}");
            assert_ne!(e.kind(), "repeated");
        }
        // The JSON twin answers with the same kinds.
        let s = signer("k");
        let now = UnixTime::from_millis(9_000);
        let h = s.sign(&Principal::Anonymous, "r", "/p/", now);
        let hs: [(&[u8], &[u8]); 2] = [(b"x-p", h.as_bytes()), (b"x-p", h.as_bytes())];
        let j = s.verify_headers_json(b"x-p", hs, b"/p/", now, 1);
        assert_eq!(
            j,
            "{\"valid\":false,\"error\":{\"kind\":\"repeated\",\"message\":\"gateway principal header repeated\"}}"
        );
        let j = s.verify_headers_json(b"x-p", hs.into_iter().take(1), b"/p/", now, 1);
        assert_eq!(j, s.verify_json(Some(h.as_bytes()), "/p/", now, 1));
        assert!(j.starts_with("{\"valid\":true,\"user\":null,"), "{j}");
        let j = s.verify_headers_json(b"x-p", hs.into_iter().take(0), b"/p/", now, 1);
        assert_eq!(j, s.verify_json(None, "/p/", now, 1));
        assert!(j.contains("\"kind\":\"missing\""), "{j}");
        let j = s.verify_headers_json(b"x-p", hs.into_iter().take(1), b"/p/\xff", now, 1);
        assert!(j.contains("\"kind\":\"wrong_path\""), "{j}");
    }

    proptest::proptest! {
        /// With exactly one principal header among any others, the answer is
        /// `verify`'s for its value and the path.
        #[test]
        fn one_header_is_verify(
            others in proptest::collection::vec(
                ("[a-zA-Z-]{0,20}", proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                0..6,
            ),
            at in 0usize..6,
            upper in proptest::collection::vec(proptest::bool::ANY, 18),
            signed in proptest::bool::ANY,
            garbage in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            path in "/[a-zé%0-9/]{0,12}",
            age in 0i64..20_000,
        ) {
            let s = signer("k");
            let issued = UnixTime::from_millis(1_700_000_000_000);
            let now = UnixTime::from_millis(1_700_000_000_000 + age);
            let value = if signed {
                s.sign(&user("3", false), "r", &path, issued).into_bytes()
            } else {
                garbage
            };
            let name: Vec<u8> = DEFAULT_HEADER
                .bytes()
                .zip(&upper)
                .map(|(b, &u)| if u { b.to_ascii_uppercase() } else { b })
                .collect();
            let mut headers: Vec<(&[u8], &[u8])> = others
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case(DEFAULT_HEADER))
                .map(|(n, v)| (n.as_bytes(), v.as_slice()))
                .collect();
            headers.insert(at.min(headers.len()), (&name, &value));
            let decoded = unquote(&path);
            let want = s.verify(&value, &decoded, now, 10_000);
            let got = s.verify_headers(
                DEFAULT_HEADER.as_bytes(),
                headers.iter().copied(),
                decoded.as_bytes(),
                now,
                10_000,
            );
            proptest::prop_assert_eq!(&got, &want);
            if signed && age <= 10_000 {
                proptest::prop_assert!(got.is_ok());
            }
            // A second copy anywhere is refused whatever the values.
            headers.insert(0, (b"x-wsauth-principal", b"x"));
            proptest::prop_assert_eq!(
                s.verify_headers(
                    DEFAULT_HEADER.as_bytes(),
                    headers.iter().copied(),
                    decoded.as_bytes(),
                    now,
                    10_000,
                ),
                Err(EdgeError::Repeated)
            );
        }
    }

    #[test]
    fn upstream_urls() {
        let ok = |u: &str, h: &str, p: u16| {
            let a = UpstreamAddr::parse(u).unwrap();
            assert_eq!((a.host.as_str(), a.port), (h, p), "{u}");
        };
        ok("ws://127.0.0.1:8000", "127.0.0.1", 8000);
        ok("ws://app/", "app", 80);
        ok("WS://[::1]:9000", "::1", 9000);
        let bad = |u: &str, e: UpstreamError| assert_eq!(UpstreamAddr::parse(u), Err(e), "{u}");
        bad("wss://app:443", UpstreamError::TlsUrl);
        bad("http://app", UpstreamError::BadUrl);
        bad("ws://app:8000/prefix", UpstreamError::UrlWithPath);
        bad("ws://app:0", UpstreamError::BadUrl);
        bad("ws://app:99999", UpstreamError::BadUrl);
        bad("ws://u@app", UpstreamError::BadUrl);
        bad("ws://", UpstreamError::BadUrl);
        bad("ws://[zz]:1", UpstreamError::BadUrl);
    }

    #[test]
    fn forward_strips_every_credential() {
        let cfg = EdgeSettings {
            url: "ws://127.0.0.1:8000",
            header: DEFAULT_HEADER,
            connect_timeout_ms: 2000,
            keep_session_cookie: false,
        };
        let creds = CredentialSettings {
            jwt_cookie: Some("jwt".into()),
            ..CredentialSettings::default()
        };
        let edge = Edge::new(&cfg, &SecretKey::new(b"k".to_vec()), creds).unwrap();
        let headers: &[(&str, &[u8])] = &[
            ("Host", b"gw"),
            ("Authorization", b"Bearer T"),
            ("Cookie", b"jwt=T; theme=dark; sessionid=S; csrftoken=c"),
            ("X-WsAuth-Principal", b"forged"),
            ("Sec-WebSocket-Protocol", b"bearer, T, chat"),
            ("Origin", b"http://localhost:3000"),
            ("Connection", b"Upgrade, X-Hop"),
            ("X-Hop", b"1"),
            ("X-Forwarded-For", b"6.6.6.6"),
            ("User-Agent", b"ua"),
        ];
        let view = HandshakeView::new("/ws/admin/chat/", "a=1&token=T&%61ccess=T&b=%20", headers)
            .with_peer("10.0.0.9".parse().unwrap());
        let mut f = edge.forward(&view, Subprotocol::new("bearer"));
        assert_eq!(f.target, "/ws/admin/chat/?a=1&b=%20");
        assert_eq!(f.subprotocols, vec![String::from("chat")]);
        let names: Vec<&str> = f.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec!["cookie", "origin", "user-agent", "x-forwarded-for"]
        );
        assert_eq!(f.headers[0].1, b"theme=dark; csrftoken=c".to_vec());
        assert_eq!(f.headers[3].1, b"10.0.0.9".to_vec());
        assert_eq!(f.client_subprotocol(Some("chat")), Ok(Some("bearer")));
        assert_eq!(
            f.client_subprotocol(Some("bearer")),
            Err(UnofferedSubprotocol)
        );
        let now = UnixTime::from_millis(1_000);
        edge.sign_into(&mut f, &user("1", true), "admin_chat", now);
        let (n, v) = f.headers.last().unwrap();
        assert_eq!(n, "x-wsauth-principal");
        let got = edge.signer().verify(v, "/ws/admin/chat/", now, 1).unwrap();
        assert_eq!(got.route, "admin_chat");
    }
}

// ------------------------------------------------------------ relaying

/// The close code a client gets when an established upstream connection
/// ends without a close frame (dropped, reset, protocol error): 1011, the
/// server side failed. 1014 is kept for an upstream that could not be
/// reached or refused the handshake ([`Edge::unreachable`]).
pub const UPSTREAM_LOST_CODE: u16 = 1011;
/// The reason sent with [`UPSTREAM_LOST_CODE`].
pub const UPSTREAM_LOST_REASON: &str = "upstream connection lost";
/// The close code the upstream gets when the client went away without a
/// close frame: 1001 (going away).
pub const CLIENT_GONE_CODE: u16 = 1001;
/// The reason sent with [`CLIENT_GONE_CODE`].
pub const CLIENT_GONE_REASON: &str = "client went away";

/// The code to pass on to the other side for a close frame received with
/// `code`: codes an endpoint may not send on the wire (RFC 6455 §7.4.1) are
/// replaced — 1005 (no status) by 1000, 1006 (abnormal) and 1015 (TLS) by
/// 1011 — and so is any code outside the sendable ranges
/// (1000–1003, 1007–1014, 3000–4999).
pub const fn relay_close_code(code: u16) -> u16 {
    match code {
        1005 => 1000,
        1000..=1003 | 1007..=1014 | 3000..=4999 => code,
        _ => 1011,
    }
}

#[cfg(test)]
mod relay_tests {
    use super::*;

    #[test]
    fn reserved_codes_are_replaced() {
        assert_eq!(relay_close_code(1000), 1000);
        assert_eq!(relay_close_code(4401), 4401);
        assert_eq!(relay_close_code(4000), 4000);
        assert_eq!(relay_close_code(1005), 1000);
        assert_eq!(relay_close_code(1006), 1011);
        assert_eq!(relay_close_code(1015), 1011);
        assert_eq!(relay_close_code(1004), 1011);
        assert_eq!(relay_close_code(999), 1011);
        assert_eq!(relay_close_code(5000), 1011);
        assert_eq!(relay_close_code(1014), 1014);
    }
}
