//! The handshake view (what the transport saw) and credential extraction.
//!
//! A [`HandshakeView`] borrows the request: method, path, raw query, headers
//! (names compared case-insensitively, repeated headers kept in order),
//! offered subprotocols and the peer address. [`extract_credential`] finds
//! the credential in the configured carrier order; the first carrier that
//! holds *something* wins, even when that something is unusable.
//!
//! Nothing is allocated unless a value is percent-encoded (query), or the
//! Cookie header is read (Django's cookie parsing produces owned values).

use crate::django::cookie::cookie_value;
use crate::error::ErrorKind;
use crate::jwt::bearer_from_authorization;
use crate::py::percent::query_param;
use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;
use serde::{Deserialize, Serialize};

/// A borrowed view of a WebSocket upgrade request.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeView<'a> {
    /// The HTTP method (`GET`).
    pub method: &'a str,
    /// The request path, still percent-encoded, without the query (`/ws/chat/lobby/`).
    pub path: &'a str,
    /// The raw query string without the `?` (`token=…&x=1`), empty when absent.
    pub query: &'a str,
    /// Every header as `(name, value)`, in request order; names are compared
    /// case-insensitively and repeated headers are kept.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// Offered subprotocols, when the transport parsed them already (the ASGI
    /// `scope["subprotocols"]`). `None`: parsed from `Sec-WebSocket-Protocol` headers.
    pub subprotocols: Option<&'a [&'a str]>,
    /// The peer's address, when known (for rate limiting by the host).
    pub peer: Option<IpAddr>,
}

impl<'a> HandshakeView<'a> {
    /// A `GET` request for `path` with `query` and `headers`.
    pub fn new(path: &'a str, query: &'a str, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        HandshakeView {
            method: "GET",
            path,
            query,
            headers,
            subprotocols: None,
            peer: None,
        }
    }

    /// Sets the method.
    pub fn with_method(mut self, method: &'a str) -> Self {
        self.method = method;
        self
    }

    /// Sets the offered subprotocols (instead of parsing the headers).
    pub fn with_subprotocols(mut self, subprotocols: &'a [&'a str]) -> Self {
        self.subprotocols = Some(subprotocols);
        self
    }

    /// Sets the peer address.
    pub fn with_peer(mut self, peer: IpAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    /// Values of every header called `name` (case-insensitive), in order.
    pub fn header_values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The first header called `name` (case-insensitive).
    pub fn first_header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The offered subprotocols, in order.
    pub fn offered_subprotocols(&self) -> Subprotocols<'a> {
        match self.subprotocols {
            Some(list) => Subprotocols {
                inner: SubInner::List(list.iter()),
            },
            None => Subprotocols {
                inner: SubInner::Headers {
                    headers: self.headers.iter(),
                    current: None,
                },
            },
        }
    }
}

/// Iterator over offered subprotocols (see [`HandshakeView::offered_subprotocols`]).
#[derive(Debug, Clone)]
pub struct Subprotocols<'a> {
    inner: SubInner<'a>,
}

#[derive(Debug, Clone)]
enum SubInner<'a> {
    List(core::slice::Iter<'a, &'a str>),
    Headers {
        headers: core::slice::Iter<'a, (&'a str, &'a [u8])>,
        current: Option<core::str::Split<'a, char>>,
    },
}

impl<'a> Iterator for Subprotocols<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        match &mut self.inner {
            SubInner::List(it) => it.next().copied(),
            SubInner::Headers { headers, current } => loop {
                if let Some(parts) = current {
                    for p in parts.by_ref() {
                        let p = p.trim_matches(|c| c == ' ' || c == '\t');
                        if !p.is_empty() {
                            return Some(p);
                        }
                    }
                }
                let (name, value) = headers.next()?;
                if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                    *current = core::str::from_utf8(value).ok().map(|s| s.split(','));
                } else {
                    *current = None;
                }
            },
        }
    }
}

/// Where a credential can travel.
///
/// Config names: `subprotocol`, `header`, `query`, `cookie`, `session`, `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Carrier {
    /// `Sec-WebSocket-Protocol: bearer, <token>`; the server echoes `bearer`.
    Subprotocol,
    /// `Authorization: Bearer <token>` (SimpleJWT's header rules).
    Header,
    /// Query parameter (`token`, `access`).
    Query,
    /// A cookie holding a JWT.
    Cookie,
    /// The Django session cookie (`sessionid`).
    Session,
    /// The first WebSocket message, `{"type":"auth","token":…}`.
    Message,
}

impl Carrier {
    /// The config / CLI name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Carrier::Subprotocol => "subprotocol",
            Carrier::Header => "header",
            Carrier::Query => "query",
            Carrier::Cookie => "cookie",
            Carrier::Session => "session",
            Carrier::Message => "message",
        }
    }
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How credentials are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSettings {
    /// Carriers, tried in order. `Message` only enables first-message auth.
    pub carriers: Vec<Carrier>,
    /// The subprotocol that announces a token (`bearer`); echoed, never the token.
    pub subprotocol: String,
    /// SimpleJWT's `AUTH_HEADER_TYPES` (exact, case-sensitive).
    pub header_types: Vec<String>,
    /// The header read for the `header` carrier (`Authorization`).
    pub header_name: String,
    /// Query parameter names, tried in order.
    pub query_params: Vec<String>,
    /// Name of the cookie holding a JWT (`None`: the `cookie` carrier finds nothing).
    pub jwt_cookie: Option<String>,
    /// `SESSION_COOKIE_NAME`.
    pub session_cookie: String,
    /// Largest token, bytes (larger → `too_large`).
    pub max_token_bytes: usize,
    /// Largest session cookie value, bytes (larger → `too_large`).
    pub max_cookie_bytes: usize,
}

impl Default for CredentialSettings {
    fn default() -> Self {
        CredentialSettings {
            carriers: vec![
                Carrier::Subprotocol,
                Carrier::Header,
                Carrier::Query,
                Carrier::Cookie,
                Carrier::Session,
            ],
            subprotocol: "bearer".into(),
            header_types: vec!["Bearer".into()],
            header_name: "authorization".into(),
            query_params: vec!["token".into(), "access".into()],
            jwt_cookie: None,
            session_cookie: "sessionid".into(),
            max_token_bytes: crate::jwt::DEFAULT_MAX_TOKEN_BYTES,
            max_cookie_bytes: 8 * 1024,
        }
    }
}

impl CredentialSettings {
    /// True when `carrier` is enabled.
    pub fn has(&self, carrier: Carrier) -> bool {
        self.carriers.contains(&carrier)
    }
}

/// The credential a request carries.
///
/// `Debug` never shows the token or cookie value.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential<'a> {
    /// No carrier held anything.
    None,
    /// A JWT found in `carrier`.
    Token {
        /// The token text (borrowed from the request unless it had to be decoded).
        token: Cow<'a, str>,
        /// Where it was found.
        carrier: Carrier,
    },
    /// A Django session cookie value.
    Session {
        /// The cookie value.
        value: Cow<'a, str>,
    },
    /// A carrier held something unusable (two-part rule broken, too large, not UTF-8).
    Invalid {
        /// Where.
        carrier: Carrier,
        /// Why (`malformed`, `too_large`).
        kind: ErrorKind,
    },
}

impl fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::None => f.write_str("None"),
            Credential::Token { token, carrier } => f
                .debug_struct("Token")
                .field("carrier", carrier)
                .field("len", &token.len())
                .finish_non_exhaustive(),
            Credential::Session { value } => f
                .debug_struct("Session")
                .field("len", &value.len())
                .finish_non_exhaustive(),
            Credential::Invalid { carrier, kind } => f
                .debug_struct("Invalid")
                .field("carrier", carrier)
                .field("kind", kind)
                .finish(),
        }
    }
}

impl Credential<'_> {
    /// The carrier the credential came from (`None` for [`Credential::None`]).
    pub fn carrier(&self) -> Option<Carrier> {
        match self {
            Credential::None => None,
            Credential::Token { carrier, .. } | Credential::Invalid { carrier, .. } => {
                Some(*carrier)
            }
            Credential::Session { .. } => Some(Carrier::Session),
        }
    }
}

fn token_from_bytes<'a>(carrier: Carrier, raw: &'a [u8], max: usize) -> Credential<'a> {
    if raw.len() > max {
        return Credential::Invalid {
            carrier,
            kind: ErrorKind::TooLarge,
        };
    }
    match core::str::from_utf8(raw) {
        Ok(t) => Credential::Token {
            token: Cow::Borrowed(t),
            carrier,
        },
        Err(_) => Credential::Invalid {
            carrier,
            kind: ErrorKind::Malformed,
        },
    }
}

fn token_from_cow(carrier: Carrier, token: Cow<'_, str>, max: usize) -> Credential<'_> {
    if token.len() > max {
        return Credential::Invalid {
            carrier,
            kind: ErrorKind::TooLarge,
        };
    }
    Credential::Token { token, carrier }
}

/// `Authorization` under SimpleJWT's `get_raw_token`: `None` when the header is
/// absent or its first part is not one of the types; `Invalid` when it does
/// not have exactly two parts.
fn from_header<'a>(view: &HandshakeView<'a>, s: &CredentialSettings) -> Option<Credential<'a>> {
    let value = view.first_header(&s.header_name)?;
    for t in &s.header_types {
        match bearer_from_authorization(value, &[t.as_str()]) {
            Ok(None) => continue,
            Ok(Some(token)) => {
                return Some(token_from_bytes(Carrier::Header, token, s.max_token_bytes))
            }
            Err(_) => {
                return Some(Credential::Invalid {
                    carrier: Carrier::Header,
                    kind: ErrorKind::Malformed,
                })
            }
        }
    }
    None
}

/// `bearer` followed by the token as the next offered subprotocol.
fn from_subprotocol<'a>(
    view: &HandshakeView<'a>,
    s: &CredentialSettings,
) -> Option<Credential<'a>> {
    let mut it = view.offered_subprotocols();
    it.by_ref().find(|p| *p == s.subprotocol)?;
    Some(match it.next() {
        Some(token) => token_from_bytes(Carrier::Subprotocol, token.as_bytes(), s.max_token_bytes),
        None => Credential::Invalid {
            carrier: Carrier::Subprotocol,
            kind: ErrorKind::Malformed,
        },
    })
}

fn from_query<'a>(view: &HandshakeView<'a>, s: &CredentialSettings) -> Option<Credential<'a>> {
    if view.query.is_empty() {
        return None;
    }
    s.query_params.iter().find_map(|name| {
        query_param(view.query, name).map(|t| token_from_cow(Carrier::Query, t, s.max_token_bytes))
    })
}

/// The first Cookie header as text: Latin-1, as Channels decodes it.
fn first_cookie_header<'a>(view: &HandshakeView<'a>) -> Option<Cow<'a, str>> {
    let raw = view.first_header("cookie")?;
    if raw.is_ascii() {
        return core::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    Some(Cow::Owned(raw.iter().map(|&b| char::from(b)).collect()))
}

fn from_cookie<'a>(
    header: &str,
    name: &str,
    carrier: Carrier,
    max: usize,
) -> Option<Credential<'a>> {
    let value = cookie_value(header, name)?;
    if value.is_empty() {
        return None;
    }
    if value.len() > max {
        return Some(Credential::Invalid {
            carrier,
            kind: ErrorKind::TooLarge,
        });
    }
    let value: Cow<'a, str> = Cow::Owned(value.into_owned());
    Some(match carrier {
        Carrier::Session => Credential::Session { value },
        _ => Credential::Token {
            token: value,
            carrier,
        },
    })
}

/// Finds the credential, trying the carriers in `settings.carriers` order.
pub fn extract_credential<'a>(
    view: &HandshakeView<'a>,
    settings: &CredentialSettings,
) -> Credential<'a> {
    let mut cookie_header: Option<Option<Cow<'a, str>>> = None;
    for carrier in &settings.carriers {
        let found = match carrier {
            Carrier::Subprotocol => from_subprotocol(view, settings),
            Carrier::Header => from_header(view, settings),
            Carrier::Query => from_query(view, settings),
            Carrier::Cookie | Carrier::Session => {
                let name = match carrier {
                    Carrier::Cookie => settings.jwt_cookie.as_deref(),
                    _ => Some(settings.session_cookie.as_str()),
                };
                match name {
                    Some(name) => {
                        let header = cookie_header.get_or_insert_with(|| first_cookie_header(view));
                        let max = if *carrier == Carrier::Session {
                            settings.max_cookie_bytes
                        } else {
                            settings.max_token_bytes
                        };
                        header
                            .as_deref()
                            .and_then(|h| from_cookie(h, name, *carrier, max))
                    }
                    None => None,
                }
            }
            Carrier::Message => None,
        };
        if let Some(c) = found {
            return c;
        }
    }
    Credential::None
}

/// True when the client offered the bearer subprotocol (so the server echoes it).
pub fn offers_bearer(view: &HandshakeView<'_>, settings: &CredentialSettings) -> bool {
    settings.has(Carrier::Subprotocol)
        && view
            .offered_subprotocols()
            .any(|p| p == settings.subprotocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok<'c>(c: &'c Credential<'_>) -> Option<(&'c str, Carrier)> {
        match c {
            Credential::Token { token, carrier } => Some((token.as_ref(), *carrier)),
            _ => None,
        }
    }

    #[test]
    fn header_rules_like_simplejwt() {
        let s = CredentialSettings::default();
        let rows: &[(&[u8], Option<&str>, bool)] = &[
            (b"Bearer abc", Some("abc"), false),
            (b"  Bearer \t abc  ", Some("abc"), false),
            (b"Bearer\x0babc", Some("abc"), false),
            (b"bearer abc", None, false),
            (b"Token abc", None, false),
            (b"Bearer", None, true),
            (b"Bearer a b", None, true),
            (b"", None, false),
        ];
        for (value, want, invalid) in rows {
            let headers = [("Authorization", *value)];
            let view = HandshakeView::new("/", "", &headers);
            let c = extract_credential(&view, &s);
            assert_eq!(tok(&c).map(|t| t.0), *want, "{value:?}");
            assert_eq!(
                matches!(c, Credential::Invalid { .. }),
                *invalid,
                "{value:?}"
            );
        }
    }

    #[test]
    fn subprotocol_bearer_then_token() {
        let s = CredentialSettings::default();
        let headers = [("Sec-WebSocket-Protocol", &b"chat, bearer, a.b.c"[..])];
        let view = HandshakeView::new("/", "", &headers);
        assert_eq!(
            tok(&extract_credential(&view, &s)),
            Some(("a.b.c", Carrier::Subprotocol))
        );
        assert!(offers_bearer(&view, &s));

        let headers = [("sec-websocket-protocol", &b"bearer"[..])];
        let view = HandshakeView::new("/", "", &headers);
        assert!(matches!(
            extract_credential(&view, &s),
            Credential::Invalid {
                carrier: Carrier::Subprotocol,
                kind: ErrorKind::Malformed
            }
        ));

        let list = ["bearer", "x.y.z"];
        let view = HandshakeView::new("/", "", &[]).with_subprotocols(&list);
        assert_eq!(
            tok(&extract_credential(&view, &s)),
            Some(("x.y.z", Carrier::Subprotocol))
        );
    }

    #[test]
    fn carrier_order_and_query() {
        let mut s = CredentialSettings::default();
        let headers = [("authorization", &b"Bearer from-header"[..])];
        let view = HandshakeView::new("/", "token=from-query", &headers);
        assert_eq!(
            tok(&extract_credential(&view, &s)),
            Some(("from-header", Carrier::Header))
        );
        s.carriers = vec![Carrier::Query, Carrier::Header];
        assert_eq!(
            tok(&extract_credential(&view, &s)),
            Some(("from-query", Carrier::Query))
        );
        let view = HandshakeView::new("/", "access=a%2Eb", &[]);
        assert_eq!(
            tok(&extract_credential(&view, &s)),
            Some(("a.b", Carrier::Query))
        );
        let view = HandshakeView::new("/", "other=1", &[]);
        assert_eq!(extract_credential(&view, &s), Credential::None);
    }

    #[test]
    fn too_large_tokens() {
        let s = CredentialSettings {
            max_token_bytes: 4,
            ..CredentialSettings::default()
        };
        let view = HandshakeView::new("/", "token=12345", &[]);
        assert!(matches!(
            extract_credential(&view, &s),
            Credential::Invalid {
                kind: ErrorKind::TooLarge,
                ..
            }
        ));
    }

    #[test]
    fn debug_hides_token() {
        let c = Credential::Token {
            token: Cow::Borrowed("secret.token.value"),
            carrier: Carrier::Query,
        };
        let shown = alloc::format!("{c:?}");
        assert!(!shown.contains("secret"));
    }
}
