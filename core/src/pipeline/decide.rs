//! The decision: handshake view → credential → principal → route policy → decision.
//!
//! [`Authenticator::start`] begins an owned [`Handshake`] (it borrows neither
//! the request nor the authenticator); the host drives it:
//!
//! ```ignore
//! let mut hs = authenticator.start(&view, now);
//! let decision = loop {
//!     match hs.poll() {
//!         Step::Done(decision) => break decision,
//!         Step::Lookup(request) => hs.answer(host.lookup(&request).await),
//!     }
//! };
//! ```
//!
//! The steps come in a fixed order: origin (HTTP 403, nothing asked) → rate
//! limit ([`Request::Rate`], before any credential is verified) → route →
//! credential → principal ([`Request::JtiRevoked`], [`Request::Session`],
//! [`Request::User`]) → route policy ([`Request::Access`]) → decision. Every
//! accepting decision — including an accept that only closes with a code —
//! carries the subprotocol to echo.
//!
//! A claims-only configuration without a rate limit (user flags from token
//! claims, no revocation checks, no owner / member routes) never asks for a
//! lookup, and with a query / header / subprotocol token it decides without
//! heap allocation.

use crate::close::{reasons, Close, CloseCode};
use crate::django::session::{
    SessionAuth, SessionEngine, SessionError, SessionRow, SessionVerifier, UserRecord,
};
use crate::error::ErrorKind;
use crate::jwt::userid::{PkKind, UserKey};
use crate::jwt::{ClaimValue, InlineStr, TokenVerifier};
use crate::pipeline::origin::OriginPolicy;
use crate::pipeline::ratelimit::{RateLimit, RateState};
use crate::pipeline::route::{Requirement, RouteMatch, Routes};
use crate::pipeline::view::{
    extract_credential, offers_bearer, Carrier, Credential, CredentialSettings, HandshakeView,
};
use crate::time::UnixTime;
use alloc::borrow::Cow;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use core::net::IpAddr;
use serde::{Deserialize, Serialize};

/// Where a user's flags (`is_staff`, `is_superuser`, `is_active`) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserSource {
    /// Token claims only, as SimpleJWT's `JWTStatelessUserAuthentication`
    /// (`TokenUser`): no lookups, `is_active` always true.
    #[default]
    Claims,
    /// The host's user directory (`User.objects.get(pk=…)`): one lookup per
    /// handshake. `"database"` in a config is this source, read from `[database]`.
    #[serde(alias = "database")]
    Directory,
}

/// Policy settings of an [`Authenticator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Where user flags come from.
    pub users: UserSource,
    /// The type of the user model's primary key.
    pub pk_kind: PkKind,
    /// Ask the host whether a token's `jti` is revoked.
    pub check_revoked_jti: bool,
    /// SimpleJWT's `CHECK_REVOKE_TOKEN`: the revoke claim must equal
    /// `md5(user.password).hexdigest().upper()` (directory only).
    pub check_password_claim: bool,
    /// SimpleJWT's `CHECK_USER_IS_ACTIVE` (directory only).
    pub check_user_is_active: bool,
    /// Seconds a client without a credential has to send its auth message.
    pub auth_message_timeout: i64,
    /// Largest control message (auth / refresh), bytes.
    pub max_message_bytes: usize,
    /// How credentials are looked for.
    pub credentials: CredentialSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            users: UserSource::Claims,
            pk_kind: PkKind::Int,
            check_revoked_jti: false,
            check_password_claim: false,
            check_user_is_active: true,
            auth_message_timeout: 10,
            max_message_bytes: 16 * 1024,
            credentials: CredentialSettings::default(),
        }
    }
}

/// A user id as text plus whether it was numeric.
///
/// For token principals in claims mode this is the user id claim as the token
/// carries it (`"1"` string → not numeric, `1` number → numeric); for
/// directory and session principals it is `str(pk)` and numeric for integer pks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UserId {
    text: InlineStr,
    numeric: bool,
}

impl UserId {
    /// A user id from text.
    pub fn new(text: &str, numeric: bool) -> Option<Self> {
        Some(UserId {
            text: InlineStr::new(text)?,
            numeric,
        })
    }

    /// A numeric user id (`None` only if formatting failed, which cannot happen for `i64`).
    pub fn from_int(v: i64) -> Option<Self> {
        let mut buf = FmtBuf::new();
        write!(buf, "{v}").ok()?;
        Some(UserId {
            text: InlineStr::new(buf.as_str())?,
            numeric: true,
        })
    }

    /// The canonical text (`str(pk)` / the claim's string).
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    /// True when the id was a number.
    pub fn is_numeric(&self) -> bool {
        self.numeric
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.numeric {
            f.write_str(self.as_str())
        } else {
            fmt::Debug::fmt(self.as_str(), f)
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a user authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A JWT, from this carrier.
    Jwt(Carrier),
    /// A Django session cookie.
    Session,
}

/// An authenticated user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// `is_staff`.
    pub is_staff: bool,
    /// `is_superuser`.
    pub is_superuser: bool,
    /// `is_active` (always true for claims-only principals, as `TokenUser`).
    pub is_active: bool,
    /// How the user authenticated.
    pub method: AuthMethod,
    /// The credential's expiry (JWT `exp`), `None` for sessions.
    pub expires_at: Option<i64>,
}

/// Who is connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Decisions are plain values (no heap): a user id and a subprotocol are stored inline.
#[allow(clippy::large_enum_variant)]
pub enum Principal {
    /// Not authenticated.
    Anonymous,
    /// An authenticated user.
    User(User),
}

impl Principal {
    /// The user, if authenticated.
    pub fn user(&self) -> Option<&User> {
        match self {
            Principal::Anonymous => None,
            Principal::User(u) => Some(u),
        }
    }

    /// True for [`Principal::Anonymous`].
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Principal::Anonymous)
    }
}

/// The subprotocol to echo in the `101` response (the bearer protocol name,
/// never the token).
pub type Subprotocol = InlineStr;

/// Accept the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Who connected.
    pub principal: Principal,
    /// `Sec-WebSocket-Protocol` to answer with, if any.
    pub subprotocol: Option<Subprotocol>,
    /// When the connection must close unless refreshed (JWT `exp` + leeway);
    /// `None` for sessions and anonymous principals.
    pub deadline: Option<i64>,
    /// The matched route and its parameters.
    pub route: RouteMatch,
}

/// Accept the connection and wait for an auth message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwaitAuth {
    /// Close with 4408 when no auth message arrived by then.
    pub deadline: i64,
    /// The matched route.
    pub route: RouteMatch,
    /// `Sec-WebSocket-Protocol` to answer with, if any.
    pub subprotocol: Option<Subprotocol>,
}

/// Accept the upgrade, then close at once with a code the browser can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    /// The code and reason.
    pub close: Close,
    /// `Sec-WebSocket-Protocol` to answer with: a browser that offered a
    /// subprotocol fails an accept without one (1006) and never sees the code.
    pub subprotocol: Option<Subprotocol>,
}

/// What to do with the upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Decisions are plain values (no heap): a user id and a subprotocol are stored inline.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    /// Accept.
    Accept(Accepted),
    /// Accept, then close at once with this code and reason (so browsers can read the code).
    Close(Closing),
    /// Refuse the upgrade itself with this HTTP status: nothing is accepted
    /// (origin not allowed: 403).
    Deny {
        /// The HTTP status.
        status: u16,
    },
    /// Accept, then wait for `{"type":"auth","token":…}` as the first message.
    AwaitFirstMessage(AwaitAuth),
}

/// Why a host could not turn a request head into a [`HandshakeView`]: the
/// head never reaches the pipeline, and [`Decision::unreadable_head`] says
/// how the upgrade is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeadProblem {
    /// Larger than the host reads, or too many headers.
    TooLarge,
    /// Not an HTTP/1.1 request.
    Malformed,
    /// An HTTP request, but not a WebSocket upgrade (RFC 6455 §4.2.1).
    NotWebSocket,
}

impl Decision {
    /// The refusal for a request head the host could not read: 431 (RFC 6585)
    /// for one too large, 400 otherwise.
    pub fn unreadable_head(problem: HeadProblem) -> Decision {
        let status = match problem {
            HeadProblem::TooLarge => 431,
            HeadProblem::Malformed | HeadProblem::NotWebSocket => 400,
        };
        Decision::Deny { status }
    }

    /// The close this decision carries, if any.
    pub fn close(&self) -> Option<&Close> {
        match self {
            Decision::Close(c) => Some(&c.close),
            _ => None,
        }
    }

    /// The accepted principal, if any.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Decision::Accept(a) => Some(&a.principal),
            _ => None,
        }
    }

    /// The subprotocol to answer the upgrade with, on every accepting
    /// decision (accept, await, and accept-to-close); `None` for a denial.
    pub fn subprotocol(&self) -> Option<&str> {
        let s = match self {
            Decision::Accept(a) => a.subprotocol.as_ref(),
            Decision::AwaitFirstMessage(w) => w.subprotocol.as_ref(),
            Decision::Close(c) => c.subprotocol.as_ref(),
            Decision::Deny { .. } => None,
        };
        s.map(InlineStr::as_str)
    }

    /// The HTTP status when the upgrade itself is refused.
    pub fn denied_status(&self) -> Option<u16> {
        match self {
            Decision::Deny { status } => Some(*status),
            _ => None,
        }
    }
}

/// Owner or member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The user owns the resource.
    Owner,
    /// The user is a member of the resource.
    Member,
}

/// A question the host answers (sans-IO step). Owned: the host may keep it
/// while it builds the answer. `Debug` hides the session key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// The stored rate-limit state of this peer (answer [`Answer::Rate`],
    /// [`RateState::default`] for a peer with none). Asked before any
    /// credential is verified.
    Rate {
        /// The peer the attempt is counted against.
        peer: IpAddr,
    },
    /// Store `new` for this peer if its state is still `expected` (a
    /// compare-and-set): answer [`Answer::Stored`], or [`Answer::Rate`] with
    /// the state found instead.
    RateCommit {
        /// The peer.
        peer: IpAddr,
        /// The state the decision was made on.
        expected: RateState,
        /// The state to store.
        new: RateState,
        /// When `new` becomes idle (Unix ms): the host may forget it then.
        idle_at_ms: i64,
    },
    /// The `django_session` row for this key (answer [`Answer::Session`]).
    Session {
        /// `session_key`.
        key: String,
    },
    /// The user with this primary key (answer [`Answer::User`]).
    User {
        /// The key as Django's lookup coerced it.
        key: UserKey,
        /// `str(pk)`: the canonical text form of `key`.
        pk: InlineStr,
    },
    /// The cache entry of a `cache` / `cached_db` session (answer
    /// [`Answer::Cached`]): the raw value stored under `key`, Django's full
    /// cache key (`KEY_PREFIX:VERSION:django.contrib.sessions.cache<key>`).
    CachedSession {
        /// The cache key, as the cache stores it.
        key: String,
    },
    /// Whether a token id is revoked (answer [`Answer::Revoked`]).
    JtiRevoked {
        /// The token's `jti`.
        jti: InlineStr,
        /// The token's user id as text (`str(pk)` / the claim).
        user: InlineStr,
    },
    /// Whether a user may access a resource (answer [`Answer::Access`]).
    Access {
        /// `str(pk)` / the user id.
        user: InlineStr,
        /// Owner or member.
        relation: Relation,
        /// The route's name.
        route: String,
        /// The route parameter naming the resource.
        param: String,
        /// Its value, percent-decoded.
        value: String,
        /// Every path parameter of the route, `(name, percent-decoded value)`, in order.
        params: Vec<(String, String)>,
    },
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Rate { peer } => f.debug_struct("Rate").field("peer", peer).finish(),
            Request::RateCommit {
                peer,
                expected,
                new,
                idle_at_ms,
            } => f
                .debug_struct("RateCommit")
                .field("peer", peer)
                .field("expected", expected)
                .field("new", new)
                .field("idle_at_ms", idle_at_ms)
                .finish(),
            Request::Session { key } => f
                .debug_struct("Session")
                .field("key_len", &key.len())
                .finish_non_exhaustive(),
            Request::CachedSession { key } => f
                .debug_struct("CachedSession")
                .field("key_len", &key.len())
                .finish_non_exhaustive(),
            Request::User { key, pk } => f
                .debug_struct("User")
                .field("key", key)
                .field("pk", pk)
                .finish(),
            Request::JtiRevoked { jti, user } => f
                .debug_struct("JtiRevoked")
                .field("jti", jti)
                .field("user", user)
                .finish(),
            Request::Access {
                user,
                relation,
                route,
                param,
                value,
                ..
            } => f
                .debug_struct("Access")
                .field("user", user)
                .field("relation", relation)
                .field("route", route)
                .field("param", param)
                .field("value", value)
                .finish_non_exhaustive(),
        }
    }
}

/// The host's answer to a [`Request`]. What each must hold:
///
/// | request | answer |
/// |---|---|
/// | [`Request::Rate`] | [`Answer::Rate`]: the stored state, `RateState::default()` if none |
/// | [`Request::RateCommit`] | [`Answer::Stored`], or [`Answer::Rate`] with the state found when it was not `expected` |
/// | [`Request::Session`] | [`Answer::Session`]: the row as stored (`expire_date` via [`parse_iso8601_utc`](crate::parse_iso8601_utc)), `None` when there is no row |
/// | [`Request::CachedSession`] | [`Answer::Cached`]: the bytes stored under the key, `None` when there is no entry |
/// | [`Request::User`] | [`Answer::User`]: `pk` = `str(pk)`, the stored password hash, the three flags; `None` when there is no such user |
/// | [`Request::JtiRevoked`] | [`Answer::Revoked`] |
/// | [`Request::Access`] | [`Answer::Access`]: `true` when the user owns / is a member of the resource |
/// | any | [`Answer::Failed`] when the lookup could not be made (down, timed out): 1013, never 4401 |
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Answer<'a> {
    /// The peer's stored rate-limit state.
    Rate(RateState),
    /// The new rate-limit state was stored.
    Stored,
    /// The session row, or `None` when there is none.
    Session(Option<SessionRow<'a>>),
    /// The raw cache value of a session, or `None` when there is none.
    Cached(Option<&'a [u8]>),
    /// The user, or `None` when there is none.
    User(Option<UserRecord<'a>>),
    /// Whether the jti (or its user) is revoked.
    Revoked(bool),
    /// Whether access is allowed.
    Access(bool),
    /// The lookup failed (database or cache down): the connection closes with 1013.
    Failed,
}

/// One step of a [`Handshake`].
#[derive(Debug, Clone, PartialEq, Eq)]
// Decisions are plain values (no heap): a user id and a subprotocol are stored inline.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// The host must answer this, then poll again.
    Lookup(Request),
    /// Finished.
    Done(Decision),
}

/// Decides WebSocket upgrades and in-band auth messages. Cheap to clone
/// (one shared, immutable configuration); every [`Handshake`] and
/// [`Connection`] holds its own clone.
#[derive(Debug, Clone)]
pub struct Authenticator {
    inner: Arc<AuthInner>,
}

#[derive(Debug, Clone)]
struct AuthInner {
    tokens: TokenVerifier,
    sessions: Option<SessionVerifier>,
    routes: Routes,
    origins: OriginPolicy,
    settings: AuthSettings,
    rate_limit: Option<RateLimit>,
}

/// How often a rate-limit compare-and-set may find the state changed before
/// the attempt counts as over the limit (only a burst of concurrent attempts
/// from the same peer gets there).
const MAX_RATE_RETRIES: u8 = 4;

/// Lookups one handshake may ask before it gives up with 1013 (a host that
/// answers out of turn forever cannot keep a driver looping).
const MAX_STEPS: usize = 32;

impl Authenticator {
    /// An authenticator with default settings (claims only, default origins).
    pub fn new(tokens: TokenVerifier, routes: Routes) -> Self {
        Authenticator {
            inner: Arc::new(AuthInner {
                tokens,
                sessions: None,
                routes,
                origins: OriginPolicy::default(),
                settings: AuthSettings::default(),
                rate_limit: None,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut AuthInner {
        Arc::make_mut(&mut self.inner)
    }

    /// Also accept Django session cookies.
    pub fn with_sessions(mut self, sessions: SessionVerifier) -> Self {
        let inner = self.inner_mut();
        inner.settings.credentials.session_cookie = sessions.settings().cookie_name.clone();
        inner.sessions = Some(sessions);
        self
    }

    /// Origin rules.
    pub fn with_origins(mut self, origins: OriginPolicy) -> Self {
        self.inner_mut().origins = origins;
        self
    }

    /// Policy settings.
    pub fn with_settings(mut self, settings: AuthSettings) -> Self {
        let inner = self.inner_mut();
        inner.settings = settings;
        if let Some(s) = &inner.sessions {
            inner.settings.credentials.session_cookie = s.settings().cookie_name.clone();
        }
        self
    }

    /// Connection-attempt rate limit per peer: a handshake step
    /// ([`Request::Rate`]) answered before any credential is verified.
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.inner_mut().rate_limit = limit;
        self
    }

    /// The token verifier.
    pub fn tokens(&self) -> &TokenVerifier {
        &self.inner.tokens
    }
    /// The session verifier, if sessions are enabled.
    pub fn sessions(&self) -> Option<&SessionVerifier> {
        self.inner.sessions.as_ref()
    }
    /// The routes.
    pub fn routes(&self) -> &Routes {
        &self.inner.routes
    }
    /// The origin rules.
    pub fn origins(&self) -> &OriginPolicy {
        &self.inner.origins
    }
    /// The settings.
    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }
    /// The rate limit, if any.
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        self.inner.rate_limit.as_ref()
    }

    /// True when a handshake needs no lookup beyond what the request holds
    /// (claims-only users, no revocation check) — hosts may skip wiring a
    /// user store then. Owner / member routes and sessions still ask.
    pub fn users_from_claims(&self) -> bool {
        self.inner.settings.users == UserSource::Claims
    }

    /// Starts deciding an upgrade request at `now`, in the order
    /// origin → rate limit → route → credential → principal → policy.
    /// The handshake owns everything it needs: `view` may be dropped at once.
    pub fn start(&self, view: &HandshakeView<'_>, now: UnixTime) -> Handshake {
        let inner = &*self.inner;
        let mut hs = Handshake::blank(self.clone(), now, Mode::Upgrade);
        if !inner
            .origins
            .check(view.header_values("origin"))
            .is_allowed()
        {
            hs.stage = Stage::Done(Decision::Deny { status: 403 });
            return hs;
        }
        if offers_bearer(view, &inner.settings.credentials) {
            hs.subprotocol = InlineStr::new(&inner.settings.credentials.subprotocol);
        }
        hs.route = inner.routes.find(view.path);
        if let Some(m) = hs.route {
            hs.resource = resource_of(inner, &m, view.path);
        }
        let cred = extract_credential(view, &inner.settings.credentials);
        match (inner.rate_limit.is_some(), view.peer) {
            (true, Some(peer)) => {
                hs.stage = Stage::Rate {
                    peer,
                    pending: Pending::from_credential(&cred),
                    retries: 0,
                };
            }
            _ => hs.proceed(cred),
        }
        hs
    }

    /// Decides in one call when no host step is needed; `None` when the
    /// handshake asks for a lookup (use [`Authenticator::start`] then).
    pub fn decide(&self, view: &HandshakeView<'_>, now: UnixTime) -> Option<Decision> {
        match self.start(view, now).poll() {
            Step::Done(d) => Some(d),
            Step::Lookup(_) => None,
        }
    }

    /// A handshake for an in-band token (auth or refresh message) on `route`.
    pub(crate) fn start_message(
        &self,
        route: RouteMatch,
        resource: Option<Resource>,
        token: &str,
        now: UnixTime,
        refresh_of: Option<UserId>,
    ) -> Handshake {
        let mode = if refresh_of.is_some() {
            Mode::Refresh
        } else {
            Mode::AuthMessage
        };
        let mut hs = Handshake::blank(self.clone(), now, mode);
        hs.expect_user = refresh_of;
        hs.route = Some(route);
        hs.resource = resource;
        let cred = if token.len() > self.inner.settings.credentials.max_token_bytes {
            Credential::Invalid {
                carrier: Carrier::Message,
                kind: ErrorKind::TooLarge,
            }
        } else {
            Credential::Token {
                token: Cow::Borrowed(token),
                carrier: Carrier::Message,
            }
        };
        hs.proceed(cred);
        hs
    }

    pub(crate) fn resource_of(&self, m: &RouteMatch, path: &str) -> Option<Resource> {
        resource_of(&self.inner, m, path)
    }

    /// Whether a client without a credential may authenticate by message on this route.
    pub(crate) fn auth_message_allowed(&self, route: &RouteMatch) -> bool {
        let default = self.inner.settings.credentials.has(Carrier::Message);
        self.inner
            .routes
            .get(route.index())
            .map(|r| r.auth_message_setting().unwrap_or(default))
            .unwrap_or(false)
    }
}

/// The resource an owner / member route names: its parameter, decoded, and
/// every path parameter (for hosts whose access query binds them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resource {
    pub(crate) value: String,
    pub(crate) params: Vec<(String, String)>,
}

/// Only owner / member routes keep anything of the path (no allocation otherwise).
fn resource_of(inner: &AuthInner, m: &RouteMatch, path: &str) -> Option<Resource> {
    let route = inner.routes.get(m.index())?;
    let idx = route.resource_param()?;
    let value = m.param(path, idx)?.into_owned();
    let params = route
        .pattern()
        .param_names()
        .enumerate()
        .filter_map(|(i, name)| Some((String::from(name), m.param(path, i)?.into_owned())))
        .collect();
    Some(Resource { value, params })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Upgrade,
    AuthMessage,
    Refresh,
}

/// A credential held, unverified, while the rate-limit step is answered.
#[derive(Clone)]
enum Pending {
    None,
    Invalid { carrier: Carrier, kind: ErrorKind },
    Token { token: String, carrier: Carrier },
    Session { value: String },
}

impl Pending {
    fn from_credential(cred: &Credential<'_>) -> Self {
        match cred {
            Credential::Token { token, carrier } => Pending::Token {
                token: String::from(token.as_ref()),
                carrier: *carrier,
            },
            Credential::Session { value } => Pending::Session {
                value: String::from(value.as_ref()),
            },
            Credential::Invalid { carrier, kind } => Pending::Invalid {
                carrier: *carrier,
                kind: *kind,
            },
            _ => Pending::None,
        }
    }

    fn credential(&self) -> Credential<'_> {
        match self {
            Pending::None => Credential::None,
            Pending::Invalid { carrier, kind } => Credential::Invalid {
                carrier: *carrier,
                kind: *kind,
            },
            Pending::Token { token, carrier } => Credential::Token {
                token: Cow::Borrowed(token),
                carrier: *carrier,
            },
            Pending::Session { value } => Credential::Session {
                value: Cow::Borrowed(value),
            },
        }
    }
}

/// How the user being looked up authenticated.
#[derive(Debug, Clone)]
// Stages are plain values inside the owned handshake: boxing would allocate per lookup.
#[allow(clippy::large_enum_variant)]
enum Via {
    Token(TokenFacts),
    Session(SessionAuth),
}

/// Where a handshake stands; each stage carries what its question needs.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum Stage {
    /// Ask for the peer's rate-limit state; the credential waits, unverified.
    Rate {
        peer: IpAddr,
        pending: Pending,
        retries: u8,
    },
    /// Store the advanced rate-limit state (compare-and-set).
    RateCommit {
        peer: IpAddr,
        expected: RateState,
        new: RateState,
        idle_at_ms: i64,
        pending: Pending,
        retries: u8,
    },
    /// Ask whether the jti is revoked.
    Revocation { token: TokenFacts, jti: InlineStr },
    /// Ask for the session row.
    SessionRow { key: String },
    /// Ask for the session's cache entry (`cached_db`: then the row).
    SessionCache {
        cache_key: String,
        key: String,
        fallback_db: bool,
    },
    /// Ask for the user.
    User {
        key: UserKey,
        pk: InlineStr,
        via: Via,
    },
    /// Ask for owner / member access.
    Access { user: User, relation: Relation },
    /// Decided.
    Done(Decision),
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Stage::Rate { .. } => "Rate",
            Stage::RateCommit { .. } => "RateCommit",
            Stage::Revocation { .. } => "Revocation",
            Stage::SessionRow { .. } => "SessionRow",
            Stage::SessionCache { .. } => "SessionCache",
            Stage::User { .. } => "User",
            Stage::Access { .. } => "Access",
            Stage::Done(d) => return f.debug_tuple("Done").field(d).finish(),
        };
        f.write_str(name)
    }
}

/// Facts copied out of a verified token (the token text is not kept).
#[derive(Debug, Clone, Copy)]
struct TokenFacts {
    carrier: Carrier,
    exp: i64,
    user_id: ClaimValue,
    is_staff: bool,
    is_superuser: bool,
    revoke: Option<InlineStr>,
    /// Directory mode: the user id claim coerced for the pk lookup.
    user_key: Option<Result<UserKey, crate::jwt::userid::UserIdError>>,
}

/// One upgrade (or in-band auth) being decided: an owned state machine that
/// borrows nothing, so a host can keep it across lookups of any duration.
///
/// ```ignore
/// let mut hs = authenticator.start(&view, now);
/// let decision = loop {
///     match hs.poll() {
///         Step::Done(decision) => break decision,
///         Step::Lookup(request) => hs.answer(host.lookup(&request)),
///     }
/// };
/// ```
/// or, with a synchronous host, [`Handshake::drive`].
#[derive(Clone)]
pub struct Handshake {
    pub(crate) auth: Authenticator,
    now: UnixTime,
    mode: Mode,
    route: Option<RouteMatch>,
    /// Owner / Member: the resource value (decoded route parameter).
    pub(crate) resource: Option<Resource>,
    subprotocol: Option<Subprotocol>,
    /// The credential came from a session cookie (failures are anonymous).
    via_session: bool,
    /// Refresh: the user the connection belongs to.
    expect_user: Option<UserId>,
    steps: usize,
    stage: Stage,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("stage", &self.stage)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

fn reason_for(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Expired => reasons::TOKEN_EXPIRED,
        ErrorKind::NotYetValid => reasons::TOKEN_NOT_YET_VALID,
        ErrorKind::WrongTokenType => reasons::TOKEN_WRONG_TYPE,
        ErrorKind::TooLarge => reasons::TOO_LARGE,
        ErrorKind::Revoked => reasons::TOKEN_REVOKED,
        ErrorKind::BadSession => reasons::SESSION_INVALID,
        ErrorKind::SessionExpired => reasons::SESSION_EXPIRED,
        ErrorKind::SessionHashMismatch => reasons::SESSION_HASH,
        ErrorKind::UserNotFound => reasons::USER_NOT_FOUND,
        ErrorKind::UserInactive => reasons::USER_INACTIVE,
        _ => reasons::TOKEN_INVALID,
    }
}

/// Fixed-size formatting buffer (no allocation).
struct FmtBuf {
    buf: [u8; 64],
    len: usize,
}

impl FmtBuf {
    fn new() -> Self {
        FmtBuf {
            buf: [0; 64],
            len: 0,
        }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl fmt::Write for FmtBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `str(pk)` for a user key.
fn pk_text(key: &UserKey) -> Option<InlineStr> {
    let mut buf = FmtBuf::new();
    match key {
        UserKey::Int(v) => write!(buf, "{v}").ok()?,
        UserKey::Uuid(b) => {
            for (i, byte) in b.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    buf.write_str("-").ok()?;
                }
                write!(buf, "{byte:02x}").ok()?;
            }
        }
        UserKey::Str(s) => return Some(*s),
        UserKey::NoMatch => return None,
    }
    InlineStr::new(buf.as_str())
}

/// `md5(password).hexdigest().upper()` compared with the token's revoke claim.
fn password_claim_matches(claim: Option<&str>, password: &str) -> bool {
    use md5::Digest as _;
    let Some(claim) = claim else { return false };
    let digest = md5::Md5::digest(password.as_bytes());
    let mut hex = FmtBuf::new();
    for b in digest.iter() {
        if write!(hex, "{b:02X}").is_err() {
            return false;
        }
    }
    hex.as_str() == claim
}

fn claim_user_id(t: &TokenFacts) -> Option<UserId> {
    match t.user_id {
        ClaimValue::Int(v) => UserId::from_int(v),
        ClaimValue::Str(s) => Some(UserId {
            text: s,
            numeric: false,
        }),
        _ => None,
    }
}

impl Handshake {
    fn blank(auth: Authenticator, now: UnixTime, mode: Mode) -> Self {
        Handshake {
            auth,
            now,
            mode,
            route: None,
            resource: None,
            subprotocol: None,
            via_session: false,
            expect_user: None,
            steps: 0,
            stage: Stage::Done(Decision::Close(Closing {
                close: Close::new(CloseCode::TryAgainLater, reasons::UNEXPECTED_ANSWER),
                subprotocol: None,
            })),
        }
    }

    /// The next step: a lookup for the host, or the decision. Polling does
    /// not change the handshake; the request is owned by the caller.
    pub fn poll(&self) -> Step {
        match &self.stage {
            Stage::Done(d) => Step::Done(*d),
            Stage::Rate { peer, .. } => Step::Lookup(Request::Rate { peer: *peer }),
            Stage::RateCommit {
                peer,
                expected,
                new,
                idle_at_ms,
                ..
            } => Step::Lookup(Request::RateCommit {
                peer: *peer,
                expected: *expected,
                new: *new,
                idle_at_ms: *idle_at_ms,
            }),
            Stage::Revocation { token, jti } => Step::Lookup(Request::JtiRevoked {
                jti: *jti,
                user: claim_user_id(token)
                    .map(|u| u.text)
                    .or_else(|| InlineStr::new(""))
                    .unwrap_or(*jti),
            }),
            Stage::SessionRow { key } => Step::Lookup(Request::Session { key: key.clone() }),
            Stage::SessionCache { cache_key, .. } => Step::Lookup(Request::CachedSession {
                key: cache_key.clone(),
            }),
            Stage::User { key, pk, .. } => Step::Lookup(Request::User { key: *key, pk: *pk }),
            Stage::Access { user, relation } => {
                let route = self
                    .route
                    .as_ref()
                    .and_then(|m| self.auth.inner.routes.get(m.index()));
                match (route, &self.resource) {
                    (Some(route), Some(res)) => {
                        let param = match route.requirement() {
                            Requirement::Owner(p) | Requirement::Member(p) => p.clone(),
                            _ => String::new(),
                        };
                        Step::Lookup(Request::Access {
                            user: user.id.text,
                            relation: *relation,
                            route: String::from(route.name()),
                            param,
                            value: res.value.clone(),
                            params: res.params.clone(),
                        })
                    }
                    _ => Step::Done(Decision::Close(Closing {
                        close: Close::new(CloseCode::Forbidden, reasons::NOT_OWNER),
                        subprotocol: self.subprotocol,
                    })),
                }
            }
        }
    }

    /// Runs the handshake to its decision with a synchronous host: `lookup`
    /// answers each request. The one step loop for hosts without async.
    pub fn drive<'h, F>(&mut self, mut lookup: F) -> Decision
    where
        F: FnMut(&Request) -> Answer<'h>,
    {
        loop {
            match self.poll() {
                Step::Done(d) => return d,
                Step::Lookup(request) => {
                    let answer = lookup(&request);
                    self.answer(answer);
                }
            }
        }
    }

    /// The subprotocol to answer with (the bearer protocol name when the
    /// client offered it; never the token).
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_ref().map(InlineStr::as_str)
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<&Decision> {
        match &self.stage {
            Stage::Done(d) => Some(d),
            _ => None,
        }
    }

    /// The matched route, if any.
    pub fn route(&self) -> Option<&RouteMatch> {
        self.route.as_ref()
    }

    /// The authenticator deciding this handshake.
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// The same caller's decision for another route, without verifying the
    /// credential again: the route policy of `path` applied to the principal
    /// this (finished) handshake decided. For hosts that decide once per
    /// connection and check each endpoint's own requirement afterwards (a
    /// Channels consumer). Owner / member routes ask [`Request::Access`].
    ///
    /// A credential this handshake refused (4401) is anonymous on a
    /// non-strict anonymous route and refused again on any other; a lookup
    /// failure, a rate limit or a denial stays what it was.
    pub fn authorize(&self, path: &str, now: UnixTime) -> Handshake {
        let inner = &*self.auth.inner;
        let mut hs = Handshake::blank(self.auth.clone(), now, Mode::Upgrade);
        hs.subprotocol = self.subprotocol;
        hs.route = inner.routes.find(path);
        if let Some(m) = hs.route {
            hs.resource = resource_of(inner, &m, path);
        }
        match self.decision() {
            None => hs.close(CloseCode::TryAgainLater, reasons::UNEXPECTED_ANSWER),
            Some(_) if hs.route.is_none() => hs.close(CloseCode::NotFound, reasons::NO_ROUTE),
            Some(Decision::Accept(a)) => hs.apply_policy(a.principal),
            Some(Decision::Close(c))
                if c.close.code == CloseCode::Unauthorized
                    && hs.route_is_anonymous()
                    && !hs.route_is_strict() =>
            {
                hs.accept_anonymous()
            }
            Some(Decision::AwaitFirstMessage(_)) => hs.no_credential(reasons::AUTH_REQUIRED),
            Some(d) => hs.finish(*d),
        }
        hs
    }

    /// Answers the pending request. An answer of the wrong kind, or one given
    /// when nothing is pending, closes with 1013.
    pub fn answer(&mut self, answer: Answer<'_>) {
        if matches!(self.stage, Stage::Done(_)) {
            return;
        }
        self.steps = self.steps.saturating_add(1);
        if matches!(answer, Answer::Failed) {
            self.close(CloseCode::TryAgainLater, reasons::LOOKUP_FAILED);
            return;
        }
        if self.steps > MAX_STEPS {
            self.close(CloseCode::TryAgainLater, reasons::UNEXPECTED_ANSWER);
            return;
        }
        let placeholder = Stage::Done(self.internal_error());
        let stage = core::mem::replace(&mut self.stage, placeholder);
        match (stage, answer) {
            (
                Stage::Rate {
                    peer,
                    pending,
                    retries,
                },
                Answer::Rate(state),
            )
            | (
                Stage::RateCommit {
                    peer,
                    pending,
                    retries,
                    ..
                },
                Answer::Rate(state),
            ) => self.rate_checked(peer, pending, retries, state),
            (Stage::RateCommit { pending, .. }, Answer::Stored) => {
                let cred = pending.credential();
                self.proceed(cred);
            }
            (Stage::Revocation { token, .. }, Answer::Revoked(revoked)) => {
                if revoked {
                    self.fail(ErrorKind::Revoked);
                } else {
                    self.after_revocation(token);
                }
            }
            (
                Stage::SessionCache {
                    key, fallback_db, ..
                },
                Answer::Cached(value),
            ) => match (value, fallback_db) {
                (None, true) => self.stage = Stage::SessionRow { key },
                (None, false) => self.fail(ErrorKind::BadSession),
                (Some(bytes), _) => {
                    let loaded = match &self.auth.inner.sessions {
                        Some(s) => s.load_cached(bytes),
                        None => Err(SessionError::new(
                            ErrorKind::BadSession,
                            "sessions disabled",
                        )),
                    };
                    match loaded {
                        Ok(sa) => self.session_loaded(sa),
                        Err(e) => self.fail(e.kind()),
                    }
                }
            },
            (Stage::SessionRow { .. }, Answer::Session(row)) => match row {
                None => self.fail(ErrorKind::BadSession),
                Some(row) => {
                    let loaded = match &self.auth.inner.sessions {
                        Some(s) => s.load_db_row(&row, self.now.secs()),
                        None => Err(SessionError::new(
                            ErrorKind::BadSession,
                            "sessions disabled",
                        )),
                    };
                    match loaded {
                        Ok(sa) => self.session_loaded(sa),
                        Err(e) => self.fail(e.kind()),
                    }
                }
            },
            (Stage::User { pk, via, .. }, Answer::User(user)) => match user {
                None => self.fail(ErrorKind::UserNotFound),
                Some(rec) => self.user_loaded(&rec, pk, via),
            },
            (Stage::Access { user, relation }, Answer::Access(allowed)) => {
                if allowed {
                    self.accept(Principal::User(user));
                } else {
                    let reason = match relation {
                        Relation::Member => reasons::NOT_MEMBER,
                        Relation::Owner => reasons::NOT_OWNER,
                    };
                    self.close(CloseCode::Forbidden, reason);
                }
            }
            _ => self.close(CloseCode::TryAgainLater, reasons::UNEXPECTED_ANSWER),
        }
    }

    // --- internal flow -----------------------------------------------------

    fn internal_error(&self) -> Decision {
        Decision::Close(Closing {
            close: Close::new(CloseCode::TryAgainLater, reasons::UNEXPECTED_ANSWER),
            subprotocol: self.subprotocol,
        })
    }

    fn finish(&mut self, d: Decision) {
        self.stage = Stage::Done(d);
    }

    fn close(&mut self, code: CloseCode, reason: &str) {
        self.close_with(Close::new(code, reason));
    }

    fn close_with(&mut self, close: Close) {
        self.finish(Decision::Close(Closing {
            close,
            subprotocol: self.subprotocol,
        }));
    }

    fn rate_checked(&mut self, peer: IpAddr, pending: Pending, retries: u8, state: RateState) {
        let Some(limit) = self.auth.inner.rate_limit else {
            let cred = pending.credential();
            self.proceed(cred);
            return;
        };
        if retries >= MAX_RATE_RETRIES {
            // The peer's state keeps changing under us: a burst of concurrent
            // attempts from this peer alone. Count this one as over the limit.
            self.close_with(Close::rate_limited(1));
            return;
        }
        let mut new = state;
        match limit.check(&mut new, self.now.millis()) {
            Err(retry) => self.close_with(Close::rate_limited(retry.secs())),
            Ok(()) => {
                self.stage = Stage::RateCommit {
                    peer,
                    expected: state,
                    new,
                    idle_at_ms: new.tat_ms,
                    pending,
                    retries: retries.saturating_add(1),
                }
            }
        }
    }

    fn route_requirement(&self) -> Option<&Requirement> {
        self.route
            .as_ref()
            .and_then(|m| self.auth.inner.routes.get(m.index()))
            .map(|r| r.requirement())
    }

    fn route_is_anonymous(&self) -> bool {
        self.route_requirement()
            .is_some_and(Requirement::is_anonymous)
    }

    fn route_is_strict(&self) -> bool {
        self.route
            .as_ref()
            .and_then(|m| self.auth.inner.routes.get(m.index()))
            .is_some_and(|r| r.is_strict())
    }

    /// After origin and rate limit: the route, then the credential.
    fn proceed(&mut self, cred: Credential<'_>) {
        if self.route.is_none() {
            self.close(CloseCode::NotFound, reasons::NO_ROUTE);
            return;
        }
        self.begin(cred);
    }

    fn accept_anonymous(&mut self) {
        self.accept(Principal::Anonymous);
    }

    /// No credential at all.
    fn no_credential(&mut self, reason: &str) {
        let Some(route) = self.route else {
            self.close(CloseCode::NotFound, reasons::NO_ROUTE);
            return;
        };
        if self.mode != Mode::Upgrade {
            self.close(CloseCode::Unauthorized, reason);
            return;
        }
        if self.route_is_anonymous() {
            self.accept_anonymous();
        } else if self.auth.auth_message_allowed(&route) {
            // Exact when it fits; a deadline past the end of the i64 clock is
            // reached at i64::MAX (never "never", never wrapped into the past).
            let deadline = self
                .now
                .secs()
                .saturating_add(self.auth.inner.settings.auth_message_timeout);
            self.finish(Decision::AwaitFirstMessage(AwaitAuth {
                deadline,
                route,
                subprotocol: self.subprotocol,
            }));
        } else {
            self.close(CloseCode::Unauthorized, reason);
        }
    }

    /// The credential failed.
    fn fail(&mut self, kind: ErrorKind) {
        if self.via_session {
            // Django / Channels treat an unusable session as anonymous.
            self.no_credential(reason_for(kind));
            return;
        }
        if self.mode == Mode::Upgrade && self.route_is_anonymous() && !self.route_is_strict() {
            self.accept_anonymous();
            return;
        }
        self.close(CloseCode::Unauthorized, reason_for(kind));
    }

    fn begin(&mut self, cred: Credential<'_>) {
        match cred {
            Credential::None => self.no_credential(reasons::AUTH_REQUIRED),
            Credential::Invalid { kind, .. } => self.fail(kind),
            Credential::Token { token, carrier } => {
                let auth = self.auth.clone();
                let inner = &*auth.inner;
                match inner.tokens.verify(&token, self.now.secs()) {
                    Err(e) => self.fail(e.kind()),
                    Ok(v) => {
                        let Some(user_id) = v.user_id().copied() else {
                            self.fail(ErrorKind::MissingClaim);
                            return;
                        };
                        let facts = TokenFacts {
                            carrier,
                            exp: v.exp(),
                            user_id,
                            is_staff: v.is_staff(),
                            is_superuser: v.is_superuser(),
                            revoke: v.revoke_claim().and_then(InlineStr::new),
                            user_key: (inner.settings.users == UserSource::Directory)
                                .then(|| v.user_key(inner.settings.pk_kind)),
                        };
                        if inner.settings.check_revoked_jti {
                            match v.jti().and_then(InlineStr::new) {
                                Some(jti) => {
                                    self.stage = Stage::Revocation { token: facts, jti };
                                }
                                None => self.fail(ErrorKind::Revoked),
                            }
                        } else {
                            self.after_revocation(facts);
                        }
                    }
                }
            }
            Credential::Session { value } => {
                let auth = self.auth.clone();
                let Some(sessions) = auth.inner.sessions.as_ref() else {
                    self.no_credential(reasons::AUTH_REQUIRED);
                    return;
                };
                self.via_session = true;
                match sessions.settings().engine {
                    SessionEngine::Cache | SessionEngine::CachedDb => {
                        match sessions
                            .session_key(&value)
                            .and_then(|k| Some((k, sessions.cache_key(k)?)))
                        {
                            Some((key, cache_key)) => {
                                self.stage = Stage::SessionCache {
                                    cache_key,
                                    key: String::from(key),
                                    fallback_db: sessions.settings().engine
                                        == SessionEngine::CachedDb,
                                }
                            }
                            None => self.fail(ErrorKind::BadSession),
                        }
                    }
                    SessionEngine::Db => match sessions.session_key(&value) {
                        Some(key) => {
                            self.stage = Stage::SessionRow {
                                key: String::from(key),
                            }
                        }
                        None => self.fail(ErrorKind::BadSession),
                    },
                    SessionEngine::SignedCookies => {
                        match sessions.load_signed_cookie(&value, self.now.secs()) {
                            Ok(sa) => self.session_loaded(sa),
                            Err(e) => self.fail(e.kind()),
                        }
                    }
                }
            }
        }
    }

    fn after_revocation(&mut self, t: TokenFacts) {
        match self.auth.inner.settings.users {
            UserSource::Claims => {
                let Some(id) = claim_user_id(&t) else {
                    self.fail(ErrorKind::Malformed);
                    return;
                };
                self.apply_policy(Principal::User(User {
                    id,
                    is_staff: t.is_staff,
                    is_superuser: t.is_superuser,
                    is_active: true,
                    method: AuthMethod::Jwt(t.carrier),
                    expires_at: Some(t.exp),
                }));
            }
            UserSource::Directory => {
                let key = t
                    .user_key
                    .unwrap_or_else(|| t.user_id.to_user_key(self.auth.inner.settings.pk_kind));
                match key {
                    Err(_) => self.fail(ErrorKind::Malformed),
                    Ok(key) => self.ask_user(key, Via::Token(t)),
                }
            }
        }
    }

    fn ask_user(&mut self, key: UserKey, via: Via) {
        match pk_text(&key) {
            None => self.fail(ErrorKind::UserNotFound),
            Some(pk) => self.stage = Stage::User { key, pk, via },
        }
    }

    fn session_loaded(&mut self, sa: SessionAuth) {
        let key = InlineStr::new(&sa.user_id)
            .map(ClaimValue::Str)
            .and_then(|c| c.to_user_key(self.auth.inner.settings.pk_kind).ok());
        match key {
            Some(key) => self.ask_user(key, Via::Session(sa)),
            None => self.fail(ErrorKind::BadSession),
        }
    }

    fn user_loaded(&mut self, rec: &UserRecord<'_>, pk: InlineStr, via: Via) {
        let auth = self.auth.clone();
        let inner = &*auth.inner;
        let numeric = inner.settings.pk_kind == PkKind::Int;
        let id = UserId::new(rec.pk, numeric).unwrap_or(UserId { text: pk, numeric });
        match via {
            Via::Session(sa) => {
                let checked = match &inner.sessions {
                    Some(s) => s.check_user(&sa, rec),
                    None => Err(SessionError::new(
                        ErrorKind::BadSession,
                        "sessions disabled",
                    )),
                };
                if let Err(e) = checked {
                    self.fail(e.kind());
                    return;
                }
                self.apply_policy(Principal::User(User {
                    id,
                    is_staff: rec.is_staff,
                    is_superuser: rec.is_superuser,
                    is_active: rec.is_active,
                    method: AuthMethod::Session,
                    expires_at: None,
                }));
            }
            Via::Token(t) => {
                let s = &inner.settings;
                if s.check_user_is_active && !rec.is_active {
                    self.fail(ErrorKind::UserInactive);
                    return;
                }
                if s.check_password_claim
                    && !password_claim_matches(t.revoke.as_ref().map(|r| r.as_str()), rec.password)
                {
                    self.fail(ErrorKind::Revoked);
                    return;
                }
                self.apply_policy(Principal::User(User {
                    id,
                    is_staff: rec.is_staff,
                    is_superuser: rec.is_superuser,
                    is_active: rec.is_active,
                    method: AuthMethod::Jwt(t.carrier),
                    expires_at: Some(t.exp),
                }));
            }
        }
    }

    fn apply_policy(&mut self, principal: Principal) {
        let Some(req) = self.route_requirement().cloned() else {
            self.close(CloseCode::NotFound, reasons::NO_ROUTE);
            return;
        };
        if let (Some(expected), Principal::User(u)) = (&self.expect_user, &principal) {
            if expected.as_str() != u.id.as_str() {
                self.close(CloseCode::Unauthorized, reasons::REFRESH_OTHER_USER);
                return;
            }
        }
        let Principal::User(user) = principal else {
            if req.is_anonymous() {
                self.accept(principal);
            } else {
                self.close(CloseCode::Unauthorized, reasons::AUTH_REQUIRED);
            }
            return;
        };
        match req {
            Requirement::Anonymous | Requirement::Authenticated => self.accept(principal),
            Requirement::Staff => {
                if user.is_staff {
                    self.accept(principal);
                } else {
                    self.close(CloseCode::Forbidden, reasons::STAFF_ONLY);
                }
            }
            Requirement::Superuser => {
                if user.is_superuser {
                    self.accept(principal);
                } else {
                    self.close(CloseCode::Forbidden, reasons::SUPERUSER_ONLY);
                }
            }
            Requirement::Owner(_) | Requirement::Member(_) => {
                let relation = if matches!(req, Requirement::Member(_)) {
                    Relation::Member
                } else {
                    Relation::Owner
                };
                if self.resource.is_some() {
                    self.stage = Stage::Access { user, relation };
                } else {
                    let reason = match relation {
                        Relation::Member => reasons::NOT_MEMBER,
                        Relation::Owner => reasons::NOT_OWNER,
                    };
                    self.close(CloseCode::Forbidden, reason);
                }
            }
        }
    }

    fn accept(&mut self, principal: Principal) {
        let leeway = i64::from(self.auth.inner.tokens.settings().leeway);
        // Exact: a verified exp lies within years 1-9999, far from i64::MAX.
        let deadline = principal
            .user()
            .and_then(|u| u.expires_at)
            .map(|exp| exp.saturating_add(leeway));
        let Some(route) = self.route else {
            self.close(CloseCode::NotFound, reasons::NO_ROUTE);
            return;
        };
        self.finish(Decision::Accept(Accepted {
            principal,
            subprotocol: self.subprotocol,
            deadline,
            route,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pk_text_is_str_of_pk() {
        let uuid = [
            0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17,
            0x40, 0x00,
        ];
        let rows: [(UserKey, Option<&str>); 4] = [
            (UserKey::Int(-42), Some("-42")),
            (
                UserKey::Uuid(uuid),
                Some("123e4567-e89b-12d3-a456-426614174000"),
            ),
            (
                UserKey::Str(InlineStr::new("alice").unwrap()),
                Some("alice"),
            ),
            (UserKey::NoMatch, None),
        ];
        for (key, want) in rows {
            assert_eq!(
                pk_text(&key).as_ref().map(InlineStr::as_str),
                want,
                "{key:?}"
            );
        }
    }

    #[test]
    fn password_claim_is_upper_md5_hex() {
        // md5(b"password") is the well-known 5f4dcc3b5aa765d61d8327deb882cf99.
        assert!(password_claim_matches(
            Some("5F4DCC3B5AA765D61D8327DEB882CF99"),
            "password"
        ));
        assert!(!password_claim_matches(
            Some("5f4dcc3b5aa765d61d8327deb882cf99"),
            "password"
        ));
        assert!(!password_claim_matches(None, "password"));
        assert!(!password_claim_matches(
            Some("5F4DCC3B5AA765D61D8327DEB882CF99"),
            "other"
        ));
    }

    #[test]
    fn every_error_kind_has_a_short_fixed_reason() {
        for kind in ErrorKind::ALL {
            let r = reason_for(kind);
            assert!(
                !r.is_empty() && r.len() <= crate::close::MAX_REASON_BYTES,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn request_debug_hides_the_session_key() {
        let shown = alloc::format!(
            "{:?}",
            Request::Session {
                key: String::from("abcdefgh12345678")
            }
        );
        assert!(!shown.contains("abcdefgh"));
    }

    #[test]
    fn user_ids() {
        let id = UserId::from_int(i64::MIN).unwrap();
        assert_eq!(id.as_str(), "-9223372036854775808");
        assert!(id.is_numeric());
        assert!(UserId::new(&"x".repeat(300), false).is_none());
    }
}
