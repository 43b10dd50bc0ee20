//! The decision: handshake view → credential → principal → route policy → decision.
//!
//! [`Authenticator::start`] begins a [`Handshake`]; the host drives it:
//!
//! ```ignore
//! let mut hs = authenticator.start(&view, now);
//! let decision = loop {
//!     match hs.poll() {
//!         Step::Done(decision) => break decision,
//!         Step::Lookup(request) => {
//!             let answer = host.lookup(&request); // db, cache, …
//!             hs.answer(answer);
//!         }
//!     }
//! };
//! ```
//!
//! A claims-only configuration (user flags from token claims, no revocation
//! checks, no owner / member routes) never asks for a lookup, and with a
//! query / header / subprotocol token it decides without heap allocation.

use crate::close::{reasons, Close, CloseCode};
use crate::error::ErrorKind;
use crate::handshake::{
    extract_credential, offers_bearer, Carrier, Credential, CredentialSettings, HandshakeView,
};
use crate::jwt::{ClaimValue, InlineStr, TokenVerifier};
use crate::origin::OriginPolicy;
use crate::ratelimit::{RateLimit, RateState};
use crate::route::{Requirement, RouteMatch, Routes};
use crate::session::{
    SessionAuth, SessionEngine, SessionError, SessionRow, SessionVerifier, UserRecord,
};
use crate::userid::{PkKind, UserKey};
use alloc::borrow::Cow;
use core::fmt::{self, Write as _};
use serde::{Deserialize, Serialize};

/// Where a user's flags (`is_staff`, `is_superuser`, `is_active`) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserSource {
    /// Token claims only, as SimpleJWT's `JWTStatelessUserAuthentication`
    /// (`TokenUser`): no lookups, `is_active` always true.
    #[default]
    Claims,
    /// The host's user directory (`User.objects.get(pk=…)`): one lookup per handshake.
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

/// What to do with the upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Decisions are plain values (no heap): a user id and a subprotocol are stored inline.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    /// Accept.
    Accept(Accepted),
    /// Accept, then close at once with this code and reason (so browsers can read the code).
    Close(Close),
    /// Refuse the upgrade with this HTTP status (origin not allowed: 403).
    Deny {
        /// The HTTP status.
        status: u16,
    },
    /// Accept, then wait for `{"type":"auth","token":…}` as the first message.
    AwaitFirstMessage(AwaitAuth),
}

impl Decision {
    /// 4429 with the retry-after hint.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Decision::Close(Close::rate_limited(retry_after_secs))
    }

    /// The close this decision carries, if any.
    pub fn close(&self) -> Option<&Close> {
        match self {
            Decision::Close(c) => Some(c),
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
}

/// Owner or member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The user owns the resource.
    Owner,
    /// The user is a member of the resource.
    Member,
}

/// A question the host answers (sans-IO step). `Debug` hides the session key.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request<'s> {
    /// The `django_session` row for this key (answer [`Answer::Session`]).
    Session {
        /// `session_key`.
        key: &'s str,
    },
    /// The user with this primary key (answer [`Answer::User`]).
    User {
        /// The key as Django's lookup coerced it.
        key: &'s UserKey,
        /// `str(pk)`: the canonical text form of `key`.
        pk: &'s str,
    },
    /// Whether a token id is revoked (answer [`Answer::Revoked`]).
    JtiRevoked {
        /// The token's `jti`.
        jti: &'s str,
    },
    /// Whether a user may access a resource (answer [`Answer::Access`]).
    Access {
        /// `str(pk)` / the user id.
        user: &'s str,
        /// Owner or member.
        relation: Relation,
        /// The route's name.
        route: &'s str,
        /// The route parameter naming the resource.
        param: &'s str,
        /// Its value, percent-decoded.
        value: &'s str,
    },
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Session { key } => f
                .debug_struct("Session")
                .field("key_len", &key.len())
                .finish_non_exhaustive(),
            Request::User { key, pk } => f
                .debug_struct("User")
                .field("key", key)
                .field("pk", pk)
                .finish(),
            Request::JtiRevoked { jti } => f.debug_struct("JtiRevoked").field("jti", jti).finish(),
            Request::Access {
                user,
                relation,
                route,
                param,
                value,
            } => f
                .debug_struct("Access")
                .field("user", user)
                .field("relation", relation)
                .field("route", route)
                .field("param", param)
                .field("value", value)
                .finish(),
        }
    }
}

/// The host's answer to a [`Request`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Answer<'a> {
    /// The session row, or `None` when there is none.
    Session(Option<SessionRow<'a>>),
    /// The user, or `None` when there is none.
    User(Option<UserRecord<'a>>),
    /// Whether the jti is revoked.
    Revoked(bool),
    /// Whether access is allowed.
    Access(bool),
    /// The lookup failed (database or cache down): the connection closes with 1013.
    Failed,
}

/// One step of a [`Handshake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Decisions are plain values (no heap): a user id and a subprotocol are stored inline.
#[allow(clippy::large_enum_variant)]
pub enum Step<'s> {
    /// The host must answer this, then poll again.
    Lookup(Request<'s>),
    /// Finished.
    Done(Decision),
}

/// Decides WebSocket upgrades and in-band auth messages.
#[derive(Debug, Clone)]
pub struct Authenticator {
    tokens: TokenVerifier,
    sessions: Option<SessionVerifier>,
    routes: Routes,
    origins: OriginPolicy,
    settings: AuthSettings,
    rate_limit: Option<RateLimit>,
}

impl Authenticator {
    /// An authenticator with default settings (claims only, default origins).
    pub fn new(tokens: TokenVerifier, routes: Routes) -> Self {
        Authenticator {
            tokens,
            sessions: None,
            routes,
            origins: OriginPolicy::default(),
            settings: AuthSettings::default(),
            rate_limit: None,
        }
    }

    /// Also accept Django session cookies.
    pub fn with_sessions(mut self, sessions: SessionVerifier) -> Self {
        self.settings.credentials.session_cookie = sessions.settings().cookie_name.clone();
        self.sessions = Some(sessions);
        self
    }

    /// Origin rules.
    pub fn with_origins(mut self, origins: OriginPolicy) -> Self {
        self.origins = origins;
        self
    }

    /// Policy settings.
    pub fn with_settings(mut self, settings: AuthSettings) -> Self {
        self.settings = settings;
        if let Some(s) = &self.sessions {
            self.settings.credentials.session_cookie = s.settings().cookie_name.clone();
        }
        self
    }

    /// Connection-attempt rate limit (checked by the host with [`Authenticator::check_rate`]).
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// The token verifier.
    pub fn tokens(&self) -> &TokenVerifier {
        &self.tokens
    }
    /// The session verifier, if sessions are enabled.
    pub fn sessions(&self) -> Option<&SessionVerifier> {
        self.sessions.as_ref()
    }
    /// The routes.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }
    /// The origin rules.
    pub fn origins(&self) -> &OriginPolicy {
        &self.origins
    }
    /// The settings.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }
    /// The rate limit, if any.
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        self.rate_limit.as_ref()
    }

    /// GCRA check of one connection attempt against host-stored state (e.g. per
    /// peer IP): `Some(4429 decision)` when over the limit. `now_ms` is Unix
    /// time in milliseconds. Without a configured limit this always allows.
    pub fn check_rate(&self, state: &mut RateState, now_ms: i64) -> Option<Decision> {
        let limit = self.rate_limit.as_ref()?;
        limit
            .check(state, now_ms)
            .err()
            .map(|retry| Decision::rate_limited(retry.secs()))
    }

    /// Starts deciding an upgrade request at `now` (Unix seconds).
    pub fn start<'a>(&'a self, view: &HandshakeView<'a>, now: i64) -> Handshake<'a> {
        let mut hs = Handshake::blank(self, now, Mode::Upgrade, view.path);
        if !self
            .origins
            .check(view.header_values("origin"))
            .is_allowed()
        {
            hs.finish(Decision::Deny { status: 403 });
            return hs;
        }
        let Some(route) = self.routes.find(view.path) else {
            hs.finish(Decision::Close(Close::new(
                CloseCode::NotFound,
                reasons::NO_ROUTE,
            )));
            return hs;
        };
        hs.route = Some(route);
        if offers_bearer(view, &self.settings.credentials) {
            hs.subprotocol = InlineStr::new(&self.settings.credentials.subprotocol);
        }
        let cred = extract_credential(view, &self.settings.credentials);
        hs.begin(cred);
        hs
    }

    /// The subprotocol to answer with for this request, whatever the decision:
    /// the bearer protocol name when the client offered it (never the token).
    /// Browsers fail a handshake that offered subprotocols and got none back,
    /// so echo it also when accepting only to close with a code.
    pub fn subprotocol_for(&self, view: &HandshakeView<'_>) -> Option<&str> {
        offers_bearer(view, &self.settings.credentials)
            .then_some(self.settings.credentials.subprotocol.as_str())
    }

    /// Decides in one call when no host step is needed; `None` when the
    /// handshake asks for a lookup (use [`Authenticator::start`] then).
    pub fn decide(&self, view: &HandshakeView<'_>, now: i64) -> Option<Decision> {
        let mut hs = self.start(view, now);
        match hs.poll() {
            Step::Done(d) => Some(d),
            Step::Lookup(_) => None,
        }
    }

    /// A handshake for an in-band token (auth or refresh message) on `route`,
    /// whose resource parameter (Owner / Member routes) is `resource`.
    pub(crate) fn start_message<'a>(
        &'a self,
        route: RouteMatch,
        resource: Option<Cow<'a, str>>,
        token: Cow<'a, str>,
        now: i64,
        refresh_of: Option<UserId>,
    ) -> Handshake<'a> {
        let mode = if refresh_of.is_some() {
            Mode::Refresh
        } else {
            Mode::AuthMessage
        };
        let mut hs = Handshake::blank(self, now, mode, "");
        hs.expect_user = refresh_of;
        hs.route = Some(route);
        hs.resource = resource;
        let cred = if token.len() > self.settings.credentials.max_token_bytes {
            Credential::Invalid {
                carrier: Carrier::Message,
                kind: ErrorKind::TooLarge,
            }
        } else {
            Credential::Token {
                token,
                carrier: Carrier::Message,
            }
        };
        hs.begin(cred);
        hs
    }

    /// Whether a client without a credential may authenticate by message on this route.
    pub(crate) fn auth_message_allowed(&self, route: &RouteMatch) -> bool {
        let default = self.settings.credentials.has(Carrier::Message);
        self.routes
            .get(route.index())
            .map(|r| r.auth_message_setting().unwrap_or(default))
            .unwrap_or(false)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Upgrade,
    AuthMessage,
    Refresh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Ask whether the jti is revoked.
    Revocation,
    /// Ask for the session row.
    SessionRow,
    /// Ask for the user.
    User,
    /// Ask for owner / member access.
    Access,
    /// Decided.
    Done,
}

/// Facts copied out of a verified token (the token text is not kept).
#[derive(Debug, Clone, Copy)]
struct TokenFacts {
    carrier: Carrier,
    exp: i64,
    user_id: ClaimValue,
    jti: Option<InlineStr>,
    is_staff: bool,
    is_superuser: bool,
    revoke: Option<InlineStr>,
    /// Directory mode: the user id claim coerced for the pk lookup.
    user_key: Option<Result<UserKey, crate::userid::UserIdError>>,
}

/// One upgrade (or in-band auth) being decided; see the module docs.
pub struct Handshake<'a> {
    auth: &'a Authenticator,
    now: i64,
    mode: Mode,
    path: &'a str,
    route: Option<RouteMatch>,
    /// Owner / Member: the resource value (decoded route parameter).
    resource: Option<Cow<'a, str>>,
    subprotocol: Option<Subprotocol>,
    stage: Stage,
    token: Option<TokenFacts>,
    session_value: Option<Cow<'a, str>>,
    session: Option<SessionAuth>,
    user_key: Option<UserKey>,
    pk_text: Option<InlineStr>,
    principal: Principal,
    /// Refresh: the user the connection belongs to.
    expect_user: Option<UserId>,
    decision: Option<Decision>,
}

impl fmt::Debug for Handshake<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("stage", &self.stage)
            .field("route", &self.route)
            .field("principal", &self.principal)
            .field("decision", &self.decision)
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

impl<'a> Handshake<'a> {
    fn blank(auth: &'a Authenticator, now: i64, mode: Mode, path: &'a str) -> Self {
        Handshake {
            auth,
            now,
            mode,
            path,
            route: None,
            resource: None,
            subprotocol: None,
            stage: Stage::Done,
            token: None,
            session_value: None,
            session: None,
            user_key: None,
            pk_text: None,
            principal: Principal::Anonymous,
            expect_user: None,
            decision: None,
        }
    }

    /// The next step: a lookup for the host, or the decision.
    pub fn poll(&mut self) -> Step<'_> {
        self.settle();
        if let Some(d) = self.decision {
            return Step::Done(d);
        }
        match self.request() {
            Some(r) => Step::Lookup(r),
            None => Step::Done(Decision::Close(Close::new(
                CloseCode::TryAgainLater,
                reasons::UNEXPECTED_ANSWER,
            ))),
        }
    }

    /// Turns a pending stage whose question cannot be asked into a decision.
    fn settle(&mut self) {
        if self.decision.is_some() {
            return;
        }
        if self.request().is_some() {
            return;
        }
        match self.stage {
            Stage::Revocation => self.fail(ErrorKind::Revoked),
            Stage::SessionRow => self.fail(ErrorKind::BadSession),
            Stage::User => self.fail(ErrorKind::UserNotFound),
            Stage::Access => self.close(CloseCode::Forbidden, reasons::NOT_OWNER),
            Stage::Done => self.close(CloseCode::TryAgainLater, reasons::UNEXPECTED_ANSWER),
        }
    }

    /// The question of the current stage.
    fn request(&self) -> Option<Request<'_>> {
        match self.stage {
            Stage::Revocation => {
                let jti = self.token.as_ref()?.jti.as_ref()?;
                Some(Request::JtiRevoked { jti: jti.as_str() })
            }
            Stage::SessionRow => {
                let value = self.session_value.as_deref()?;
                let key = self.auth.sessions.as_ref()?.session_key(value)?;
                Some(Request::Session { key })
            }
            Stage::User => {
                let key = self.user_key.as_ref()?;
                let pk = self.pk_text.as_ref()?;
                Some(Request::User {
                    key,
                    pk: pk.as_str(),
                })
            }
            Stage::Access => {
                let route = self.auth.routes.get(self.route.as_ref()?.index())?;
                let Principal::User(user) = &self.principal else {
                    return None;
                };
                let value = self.resource.as_deref()?;
                let (relation, param) = match route.requirement() {
                    Requirement::Owner(p) => (Relation::Owner, p.as_str()),
                    Requirement::Member(p) => (Relation::Member, p.as_str()),
                    _ => return None,
                };
                Some(Request::Access {
                    user: user.id.text.as_str(),
                    relation,
                    route: route.name(),
                    param,
                    value,
                })
            }
            Stage::Done => None,
        }
    }

    /// The subprotocol to answer with (see [`Authenticator::subprotocol_for`]).
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_ref().map(InlineStr::as_str)
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    /// Answers the pending request. An answer of the wrong kind, or one given
    /// when nothing is pending, closes with 1013.
    pub fn answer(&mut self, answer: Answer<'_>) {
        if self.decision.is_some() {
            return;
        }
        if matches!(answer, Answer::Failed) {
            self.finish(Decision::Close(Close::new(
                CloseCode::TryAgainLater,
                reasons::LOOKUP_FAILED,
            )));
            return;
        }
        match (self.stage, answer) {
            (Stage::Revocation, Answer::Revoked(revoked)) => {
                if revoked {
                    self.fail(ErrorKind::Revoked);
                } else {
                    self.after_revocation();
                }
            }
            (Stage::SessionRow, Answer::Session(row)) => match row {
                None => self.fail(ErrorKind::BadSession),
                Some(row) => {
                    let loaded = match &self.auth.sessions {
                        Some(s) => s.load_db_row(&row, self.now),
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
            (Stage::User, Answer::User(user)) => match user {
                None => self.fail(ErrorKind::UserNotFound),
                Some(rec) => self.user_loaded(&rec),
            },
            (Stage::Access, Answer::Access(allowed)) => {
                if allowed {
                    self.accept();
                } else {
                    let reason = match self.route_requirement() {
                        Some(Requirement::Member(_)) => reasons::NOT_MEMBER,
                        _ => reasons::NOT_OWNER,
                    };
                    self.close(CloseCode::Forbidden, reason);
                }
            }
            _ => self.finish(Decision::Close(Close::new(
                CloseCode::TryAgainLater,
                reasons::UNEXPECTED_ANSWER,
            ))),
        }
    }

    // --- internal flow -----------------------------------------------------

    fn finish(&mut self, d: Decision) {
        self.decision = Some(d);
        self.stage = Stage::Done;
    }

    fn close(&mut self, code: CloseCode, reason: &str) {
        self.finish(Decision::Close(Close::new(code, reason)));
    }

    fn route_requirement(&self) -> Option<&'a Requirement> {
        let auth: &'a Authenticator = self.auth;
        self.route
            .as_ref()
            .and_then(|m| auth.routes.get(m.index()))
            .map(|r| r.requirement())
    }

    fn route_is_anonymous(&self) -> bool {
        self.route_requirement()
            .is_some_and(Requirement::is_anonymous)
    }

    fn route_is_strict(&self) -> bool {
        self.route
            .as_ref()
            .and_then(|m| self.auth.routes.get(m.index()))
            .is_some_and(|r| r.is_strict())
    }

    fn accept_anonymous(&mut self) {
        self.principal = Principal::Anonymous;
        self.token = None;
        self.accept_with_deadline(None);
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
                .saturating_add(self.auth.settings.auth_message_timeout);
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
        let session = self.session_value.is_some();
        if session {
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

    fn begin(&mut self, cred: Credential<'a>) {
        match cred {
            Credential::None => self.no_credential(reasons::AUTH_REQUIRED),
            Credential::Invalid { kind, .. } => self.fail(kind),
            Credential::Token { token, carrier } => {
                let auth: &'a Authenticator = self.auth;
                match auth.tokens.verify(&token, self.now) {
                    Err(e) => self.fail(e.kind()),
                    Ok(v) => {
                        let Some(user_id) = v.user_id().copied() else {
                            self.fail(ErrorKind::MissingClaim);
                            return;
                        };
                        self.token = Some(TokenFacts {
                            carrier,
                            exp: v.exp(),
                            user_id,
                            jti: v.jti().and_then(InlineStr::new),
                            is_staff: v.is_staff(),
                            is_superuser: v.is_superuser(),
                            revoke: v.revoke_claim().and_then(InlineStr::new),
                            user_key: (auth.settings.users == UserSource::Directory)
                                .then(|| v.user_key(auth.settings.pk_kind)),
                        });
                        if auth.settings.check_revoked_jti {
                            self.stage = Stage::Revocation;
                        } else {
                            self.after_revocation();
                        }
                    }
                }
            }
            Credential::Session { value } => {
                let auth: &'a Authenticator = self.auth;
                let Some(sessions) = auth.sessions.as_ref() else {
                    self.no_credential(reasons::AUTH_REQUIRED);
                    return;
                };
                self.session_value = Some(value);
                match sessions.settings().engine {
                    SessionEngine::Db => self.stage = Stage::SessionRow,
                    SessionEngine::SignedCookies => {
                        let loaded = self
                            .session_value
                            .as_deref()
                            .map(|v| sessions.load_signed_cookie(v, self.now));
                        match loaded {
                            Some(Ok(sa)) => self.session_loaded(sa),
                            Some(Err(e)) => self.fail(e.kind()),
                            None => self.fail(ErrorKind::BadSession),
                        }
                    }
                }
            }
        }
    }

    fn after_revocation(&mut self) {
        let Some(t) = self.token else {
            self.fail(ErrorKind::Malformed);
            return;
        };
        match self.auth.settings.users {
            UserSource::Claims => {
                let id = match t.user_id {
                    ClaimValue::Int(v) => UserId::from_int(v),
                    ClaimValue::Str(s) => Some(UserId {
                        text: s,
                        numeric: false,
                    }),
                    _ => None,
                };
                let Some(id) = id else {
                    self.fail(ErrorKind::Malformed);
                    return;
                };
                self.principal = Principal::User(User {
                    id,
                    is_staff: t.is_staff,
                    is_superuser: t.is_superuser,
                    is_active: true,
                    method: AuthMethod::Jwt(t.carrier),
                    expires_at: Some(t.exp),
                });
                self.apply_policy();
            }
            UserSource::Directory => {
                let key = t
                    .user_key
                    .unwrap_or_else(|| t.user_id.to_user_key(self.auth.settings.pk_kind));
                match key {
                    Err(_) => self.fail(ErrorKind::Malformed),
                    Ok(key) => self.ask_user(key),
                }
            }
        }
    }

    fn ask_user(&mut self, key: UserKey) {
        match pk_text(&key) {
            None => self.fail(ErrorKind::UserNotFound),
            Some(text) => {
                self.pk_text = Some(text);
                self.user_key = Some(key);
                self.stage = Stage::User;
            }
        }
    }

    fn session_loaded(&mut self, sa: SessionAuth) {
        let key = InlineStr::new(&sa.user_id)
            .map(ClaimValue::Str)
            .and_then(|c| c.to_user_key(self.auth.settings.pk_kind).ok());
        self.session = Some(sa);
        match key {
            Some(key) => self.ask_user(key),
            None => self.fail(ErrorKind::BadSession),
        }
    }

    fn user_loaded(&mut self, rec: &UserRecord<'_>) {
        let numeric = self.auth.settings.pk_kind == PkKind::Int;
        let Some(id) = UserId::new(rec.pk, numeric)
            .or_else(|| self.pk_text.map(|text| UserId { text, numeric }))
        else {
            self.fail(ErrorKind::UserNotFound);
            return;
        };
        if let Some(sa) = &self.session {
            let checked = match &self.auth.sessions {
                Some(s) => s.check_user(sa, rec),
                None => Err(SessionError::new(
                    ErrorKind::BadSession,
                    "sessions disabled",
                )),
            };
            if let Err(e) = checked {
                self.fail(e.kind());
                return;
            }
            self.principal = Principal::User(User {
                id,
                is_staff: rec.is_staff,
                is_superuser: rec.is_superuser,
                is_active: rec.is_active,
                method: AuthMethod::Session,
                expires_at: None,
            });
            self.apply_policy();
            return;
        }
        let Some(t) = self.token else {
            self.fail(ErrorKind::Malformed);
            return;
        };
        let s = &self.auth.settings;
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
        self.principal = Principal::User(User {
            id,
            is_staff: rec.is_staff,
            is_superuser: rec.is_superuser,
            is_active: rec.is_active,
            method: AuthMethod::Jwt(t.carrier),
            expires_at: Some(t.exp),
        });
        self.apply_policy();
    }

    fn apply_policy(&mut self) {
        let Some(req) = self.route_requirement() else {
            self.close(CloseCode::NotFound, reasons::NO_ROUTE);
            return;
        };
        if let (Some(expected), Principal::User(u)) = (&self.expect_user, &self.principal) {
            if expected.as_str() != u.id.as_str() {
                self.close(CloseCode::Unauthorized, reasons::REFRESH_OTHER_USER);
                return;
            }
        }
        let Principal::User(user) = self.principal else {
            if req.is_anonymous() {
                self.accept();
            } else {
                self.close(CloseCode::Unauthorized, reasons::AUTH_REQUIRED);
            }
            return;
        };
        match req {
            Requirement::Anonymous | Requirement::Authenticated => self.accept(),
            Requirement::Staff => {
                if user.is_staff {
                    self.accept();
                } else {
                    self.close(CloseCode::Forbidden, reasons::STAFF_ONLY);
                }
            }
            Requirement::Superuser => {
                if user.is_superuser {
                    self.accept();
                } else {
                    self.close(CloseCode::Forbidden, reasons::SUPERUSER_ONLY);
                }
            }
            Requirement::Owner(_) | Requirement::Member(_) => {
                if self.resource.is_none() {
                    let resource = self.route.and_then(|m| {
                        let route = self.auth.routes.get(m.index())?;
                        m.param(self.path, route.resource_param()?)
                    });
                    self.resource = resource;
                }
                if self.resource.is_some() {
                    self.stage = Stage::Access;
                } else {
                    let reason = if matches!(req, Requirement::Member(_)) {
                        reasons::NOT_MEMBER
                    } else {
                        reasons::NOT_OWNER
                    };
                    self.close(CloseCode::Forbidden, reason);
                }
            }
        }
    }

    fn accept(&mut self) {
        let leeway = i64::from(self.auth.tokens.settings().leeway);
        let deadline = match (&self.principal, &self.token) {
            // Exact: a verified exp lies within years 1-9999, far from i64::MAX.
            (Principal::User(_), Some(t)) => Some(t.exp.saturating_add(leeway)),
            _ => None,
        };
        self.accept_with_deadline(deadline);
    }

    fn accept_with_deadline(&mut self, deadline: Option<i64>) {
        let Some(route) = self.route else {
            self.close(CloseCode::NotFound, reasons::NO_ROUTE);
            return;
        };
        self.finish(Decision::Accept(Accepted {
            principal: self.principal,
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
                key: "abcdefgh12345678"
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
