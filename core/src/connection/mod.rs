//! The open-connection state machine: timeouts and in-band messages → close or extend.
//!
//! A [`Connection`] comes from an accepting handshake
//! ([`Handshake::connection`](crate::Handshake::connection)) and holds its
//! own authenticator, route and resource, so nothing else is passed per call:
//!
//! * [`Connection::poll_timeout`] — when the host must call
//!   [`Connection::handle_timeout`] next (token expiry or the auth-message deadline);
//! * [`Connection::handle_timeout`] — 4401 `token expired` / 4408 `auth message timeout`;
//! * [`Connection::handle_message`] — control messages
//!   `{"type":"auth","token":…}` and `{"type":"refresh","token":…}`, each
//!   answered with a [`MessageAction`] that says what happened.
//!
//! The rules for in-band messages:
//! - awaiting auth: the first message must be `auth` (anything else → 4400);
//!   an accepted one opens the connection ([`MessageAction::Authenticated`]);
//! - open as a user: `auth` or `refresh` with a valid token for the **same**
//!   user extends the deadline ([`MessageAction::Extended`]); another user or
//!   an invalid token closes with 4401;
//! - open anonymously (an anonymous route): `auth` with a valid token logs the
//!   connection in, and the host must hand the new principal to the application
//!   ([`MessageAction::Authenticated`]); an invalid token closes with 4401;
//!   `refresh` (nothing to refresh) closes with 4400;
//! - a control message that is not well-formed, or larger than
//!   `max_message_bytes`, closes with 4400; every other message is for the
//!   application ([`MessageAction::Deliver`]).
//!
//! When an auth or refresh message needs host lookups, `handle_message`
//! returns [`MessageAction::Steps`] with a [`Handshake`]; drive it like the
//! upgrade's and hand it to [`Connection::finish`].

use crate::close::{reasons, Close, CloseCode};
use crate::pipeline::decide::{Authenticator, Decision, Handshake, Principal, Resource, Step};
use crate::pipeline::route::RouteMatch;
use crate::py::json::{self, Encoding, JsonError, JsonValue};
use crate::time::UnixTime;
use alloc::borrow::Cow;
use alloc::string::String;

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Accepted without a credential; waiting for `{"type":"auth"}`.
    AwaitingAuth,
    /// Open.
    Open,
    /// Closed (a close was returned); nothing more happens.
    Closed,
}

/// What a message did.
#[derive(Debug)]
#[non_exhaustive]
// A handshake is a plain value; boxing it would allocate per message.
#[allow(clippy::large_enum_variant)]
pub enum MessageAction {
    /// Not a control message: deliver it to the application.
    Deliver,
    /// An `auth` message logged the connection in (from awaiting auth, or
    /// from anonymous on an anonymous route): the application now sees this principal.
    Authenticated {
        /// The new principal.
        principal: Principal,
    },
    /// A `refresh` (or repeated `auth`) for the same user: the connection
    /// now closes at `deadline` (`None`: never by expiry).
    Extended {
        /// The new deadline, Unix seconds.
        deadline: Option<i64>,
    },
    /// Nothing to do (the connection was already closed).
    Ignored,
    /// Close the connection with this code and reason.
    Close(Close),
    /// The auth / refresh message needs host lookups: drive this handshake,
    /// then call [`Connection::finish`] with it.
    Steps(Handshake),
}

/// One open WebSocket connection.
#[derive(Debug, Clone)]
pub struct Connection {
    auth: Authenticator,
    state: ConnState,
    principal: Principal,
    deadline: Option<i64>,
    route: RouteMatch,
    /// Owner / Member routes: the resource, for in-band re-checks.
    resource: Option<Resource>,
}

impl Handshake {
    /// The open connection for an accepting decision (`Accept` or
    /// `AwaitFirstMessage`); `None` before the decision and for `Close` / `Deny`.
    pub fn connection(&self) -> Option<Connection> {
        let d = self.decision()?;
        Connection::open(self.auth.clone(), d, self.resource.clone())
    }
}

impl Connection {
    /// A connection for an accepting decision (`Accept` or
    /// `AwaitFirstMessage`) that `auth` made on a request for `path`; `None`
    /// for `Close` / `Deny`. Prefer [`Handshake::connection`], which keeps
    /// what the handshake already decoded.
    pub fn new(auth: Authenticator, decision: &Decision, path: &str) -> Option<Self> {
        let route = match decision {
            Decision::Accept(a) => a.route,
            Decision::AwaitFirstMessage(w) => w.route,
            Decision::Close(_) | Decision::Deny { .. } => return None,
        };
        let resource = auth.resource_of(&route, path);
        Connection::open(auth, decision, resource)
    }

    pub(crate) fn open(
        auth: Authenticator,
        decision: &Decision,
        resource: Option<Resource>,
    ) -> Option<Self> {
        let (state, principal, deadline, route) = match decision {
            Decision::Accept(a) => (ConnState::Open, a.principal, a.deadline, a.route),
            Decision::AwaitFirstMessage(w) => (
                ConnState::AwaitingAuth,
                Principal::Anonymous,
                Some(w.deadline),
                w.route,
            ),
            Decision::Close(_) | Decision::Deny { .. } => return None,
        };
        Some(Connection {
            auth,
            state,
            principal,
            deadline,
            route,
            resource,
        })
    }

    /// The state.
    pub fn state(&self) -> ConnState {
        self.state
    }

    /// Who is connected (anonymous while awaiting auth).
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The matched route.
    pub fn route(&self) -> &RouteMatch {
        &self.route
    }

    /// The route's name.
    pub fn route_name(&self) -> &str {
        self.auth
            .routes()
            .get(self.route.index())
            .map(|r| r.name())
            .unwrap_or("")
    }

    /// When [`Connection::handle_timeout`] must be called next (Unix seconds).
    pub fn poll_timeout(&self) -> Option<i64> {
        match self.state {
            ConnState::Closed => None,
            _ => self.deadline,
        }
    }

    /// Time passed: the close to send, if a deadline was reached.
    pub fn handle_timeout(&mut self, now: UnixTime) -> Option<Close> {
        let deadline = self.poll_timeout()?;
        if now.secs() < deadline {
            return None;
        }
        let close = match self.state {
            ConnState::AwaitingAuth => Close::new(CloseCode::AuthTimeout, reasons::AUTH_TIMEOUT),
            _ => Close::new(CloseCode::Unauthorized, reasons::TOKEN_EXPIRED),
        };
        Some(self.closed(close))
    }

    /// Closes the connection from outside (revocation, shutdown): later
    /// messages are ignored and no timeout fires.
    pub fn close(&mut self, close: Close) -> Close {
        self.closed(close)
    }

    fn closed(&mut self, close: Close) -> Close {
        self.state = ConnState::Closed;
        self.deadline = None;
        close
    }

    fn bad(&mut self, reason: &str) -> MessageAction {
        MessageAction::Close(self.closed(Close::new(CloseCode::BadMessage, reason)))
    }

    /// A message arrived (text or binary payload) at `now`.
    pub fn handle_message(&mut self, msg: &[u8], now: UnixTime) -> MessageAction {
        if self.state == ConnState::Closed {
            return MessageAction::Ignored;
        }
        if let Some(c) = self.handle_timeout(now) {
            return MessageAction::Close(c);
        }
        let awaiting = self.state == ConnState::AwaitingAuth;
        let too_large = msg.len() > self.auth.settings().max_message_bytes;
        if too_large && awaiting {
            return self.bad(reasons::MESSAGE_TOO_LARGE);
        }
        let control = scan_control(msg);
        if too_large && !matches!(control, Control::Plain) {
            // An oversized control message is refused, never handed to the
            // application as an ordinary one.
            return self.bad(reasons::MESSAGE_TOO_LARGE);
        }
        let token = match control {
            Control::Plain if awaiting => return self.bad(reasons::AUTH_EXPECTED),
            Control::Plain => return MessageAction::Deliver,
            Control::Malformed => return self.bad(reasons::BAD_MESSAGE),
            Control::Refresh(_) if awaiting => return self.bad(reasons::AUTH_EXPECTED),
            Control::Refresh(_) if self.principal.is_anonymous() => {
                return self.bad(reasons::NOTHING_TO_REFRESH)
            }
            Control::Auth(t) | Control::Refresh(t) => t,
        };
        let refresh_of = self.principal.user().map(|u| u.id);
        let hs =
            self.auth
                .start_message(self.route, self.resource.clone(), &token, now, refresh_of);
        match hs.poll() {
            Step::Done(d) => self.finish(&d, now),
            Step::Lookup(_) => MessageAction::Steps(hs),
        }
    }

    /// Applies the decision of an auth / refresh handshake (one from
    /// [`MessageAction::Steps`], driven to its end).
    pub fn finish(&mut self, decision: &Decision, now: UnixTime) -> MessageAction {
        if self.state == ConnState::Closed {
            return MessageAction::Ignored;
        }
        let accepted = match decision {
            Decision::Accept(a) => *a,
            Decision::Close(c) => return MessageAction::Close(self.closed(c.close)),
            _ => {
                let c = Close::new(CloseCode::Unauthorized, reasons::REFRESH_REJECTED);
                return MessageAction::Close(self.closed(c));
            }
        };
        let Principal::User(new_user) = accepted.principal else {
            let c = Close::new(CloseCode::Unauthorized, reasons::AUTH_REQUIRED);
            return MessageAction::Close(self.closed(c));
        };
        // A token that is already past its deadline cannot keep the socket open.
        if accepted.deadline.is_some_and(|d| now.secs() >= d) {
            let c = Close::new(CloseCode::Unauthorized, reasons::TOKEN_EXPIRED);
            return MessageAction::Close(self.closed(c));
        }
        let action = match (&self.state, &self.principal) {
            (ConnState::Open, Principal::User(old)) => {
                if old.id.as_str() != new_user.id.as_str() {
                    let c = Close::new(CloseCode::Unauthorized, reasons::REFRESH_OTHER_USER);
                    return MessageAction::Close(self.closed(c));
                }
                MessageAction::Extended {
                    deadline: accepted.deadline,
                }
            }
            _ => MessageAction::Authenticated {
                principal: accepted.principal,
            },
        };
        self.state = ConnState::Open;
        self.principal = accepted.principal;
        self.deadline = accepted.deadline;
        action
    }
}

// ---------------------------------------------------------------------------
// Control messages. Well-formed documents go through `crate::py::json`; a small
// prefix scanner only classifies broken ones.

#[derive(Debug, PartialEq, Eq)]
enum Control<'m> {
    /// Not a control message (not a JSON object, or no control `type`).
    Plain,
    /// A control message that is not well-formed (bad JSON, missing or non-string token).
    Malformed,
    /// `{"type":"auth","token":…}`.
    Auth(Cow<'m, str>),
    /// `{"type":"refresh","token":…}`.
    Refresh(Cow<'m, str>),
}

const MAX_DEPTH: usize = 32;

struct Scanner<'m> {
    s: &'m [u8],
    i: usize,
}

#[derive(Clone, Copy)]
struct RawStr<'m> {
    raw: &'m str,
    escaped: bool,
}

// Surrogate halves were range-checked before the arithmetic: the code
// point is at most 0x10FFFF.
#[allow(clippy::arithmetic_side_effects)]
impl<'m> RawStr<'m> {
    fn decode(self) -> Option<Cow<'m, str>> {
        if !self.escaped {
            return Some(Cow::Borrowed(self.raw));
        }
        let mut out = String::with_capacity(self.raw.len());
        let mut chars = self.raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = chars.next()?;
            let decoded = match e {
                '"' => '"',
                '\\' => '\\',
                '/' => '/',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => {
                    let hi = hex4(&mut chars)?;
                    if (0xD800..0xDC00).contains(&hi) {
                        let mut look = chars.clone();
                        if look.next() == Some('\\') && look.next() == Some('u') {
                            if let Some(lo) = hex4(&mut look) {
                                if (0xDC00..0xE000).contains(&lo) {
                                    chars = look;
                                    let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                    out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                                    continue;
                                }
                            }
                        }
                    }
                    char::from_u32(hi).unwrap_or('\u{fffd}')
                }
                _ => return None,
            };
            out.push(decoded);
        }
        Some(Cow::Owned(out))
    }

    fn eq(&self, s: &str) -> bool {
        if self.escaped {
            self.decode().is_some_and(|d| d == s)
        } else {
            self.raw == s
        }
    }
}

// Four hex digits: `v` stays below 0x10000.
#[allow(clippy::arithmetic_side_effects)]
fn hex4(chars: &mut core::str::Chars<'_>) -> Option<u32> {
    let mut v = 0u32;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

// `i` indexes `s` and only steps past bytes that exist (each step follows a
// successful read at or beyond it), so `i <= s.len()` and `i + 6` cannot
// overflow; `depth` is capped at MAX_DEPTH.
#[allow(clippy::arithmetic_side_effects)]
impl<'m> Scanner<'m> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        if self.peek() == Some(b) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    fn string(&mut self) -> Option<RawStr<'m>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            let b = self.peek()?;
            match b {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    let e = self.s.get(self.i + 1).copied()?;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.s.get(self.i + 2..self.i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 6;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let raw = core::str::from_utf8(self.s.get(start..self.i)?).ok()?;
        self.i += 1;
        Some(RawStr { raw, escaped })
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        if self.s.get(self.i..end)? == word {
            self.i = end;
            Some(())
        } else {
            None
        }
    }

    fn number(&mut self) -> Option<()> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |sc: &mut Self| {
            let st = sc.i;
            while sc.peek().is_some_and(|b| b.is_ascii_digit()) {
                sc.i += 1;
            }
            sc.i > st
        };
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        (self.i > start).then_some(())
    }

    /// Skips one value; `Some(Some(str))` when it was a string.
    fn value(&mut self, depth: usize) -> Option<Option<RawStr<'m>>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => return self.string().map(Some),
            b'{' => {
                self.i += 1;
                if self.eat(b'}').is_none() {
                    loop {
                        self.string()?;
                        self.eat(b':')?;
                        self.value(depth + 1)?;
                        if self.eat(b',').is_some() {
                            continue;
                        }
                        self.eat(b'}')?;
                        break;
                    }
                }
            }
            b'[' => {
                self.i += 1;
                if self.eat(b']').is_none() {
                    loop {
                        self.value(depth + 1)?;
                        if self.eat(b',').is_some() {
                            continue;
                        }
                        self.eat(b']')?;
                        break;
                    }
                }
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            // Python's json also accepts these.
            b'N' => self.literal(b"NaN")?,
            b'I' => self.literal(b"Infinity")?,
            b'-' if self.s.get(self.i + 1) == Some(&b'I') => {
                self.i += 1;
                self.literal(b"Infinity")?
            }
            _ => self.number()?,
        }
        Some(None)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Other,
    Auth,
    Refresh,
}

/// Classifies a message. Well-formed JSON is read with the crate's Python
/// `json.loads` scanner (duplicate keys: the last wins); a document that is
/// not valid JSON counts as a (malformed) control message only when a control
/// `type` member was read before the error.
fn scan_control(msg: &[u8]) -> Control<'_> {
    let obj = match json::parse_object(msg, Encoding::Utf8) {
        Ok(obj) => obj,
        Err(JsonError::NotAnObject) => return Control::Plain,
        Err(_) => {
            return if broken_control_prefix(msg) {
                Control::Malformed
            } else {
                Control::Plain
            };
        }
    };
    let kind = match obj.get("type") {
        Some(JsonValue::Str(t)) if t.eq_str("auth") => Kind::Auth,
        Some(JsonValue::Str(t)) if t.eq_str("refresh") => Kind::Refresh,
        _ => return Control::Plain,
    };
    let Some(JsonValue::Str(raw)) = obj.get("token") else {
        return Control::Malformed;
    };
    let token: Cow<'_, str> = if raw.raw().contains(&b'\\') {
        match raw.to_string() {
            Some(t) => Cow::Owned(t),
            None => return Control::Malformed,
        }
    } else {
        match core::str::from_utf8(raw.raw()) {
            Ok(t) => Cow::Borrowed(t),
            Err(_) => return Control::Malformed,
        }
    };
    if token.is_empty() {
        return Control::Malformed;
    }
    match kind {
        Kind::Auth => Control::Auth(token),
        _ => Control::Refresh(token),
    }
}

/// For a document that is not valid JSON: whether `"type":"auth"` or
/// `"type":"refresh"` was read at the top level before the error.
fn broken_control_prefix(msg: &[u8]) -> bool {
    let mut sc = Scanner { s: msg, i: 0 };
    if sc.eat(b'{').is_none() {
        return false;
    }
    let mut kind = Kind::Other;
    let _ = (|| -> Option<()> {
        loop {
            let key = sc.string()?;
            sc.eat(b':')?;
            let v = sc.value(1)?;
            if key.eq("type") {
                kind = match v {
                    Some(s) if s.eq("auth") => Kind::Auth,
                    Some(s) if s.eq("refresh") => Kind::Refresh,
                    _ => Kind::Other,
                };
            }
            sc.eat(b',')?;
        }
    })();
    kind != Kind::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_scan_table() {
        let rows: &[(&str, &str)] = &[
            (r#"{"type":"auth","token":"a.b.c"}"#, "auth:a.b.c"),
            (r#" { "token" : "x" , "type" : "refresh" } "#, "refresh:x"),
            (r#"{"type":"refresh","token":"a\/b"}"#, "refresh:a/b"),
            (r#"{"type":"refresh"}"#, "malformed"),
            (r#"{"type":"refresh","token":5}"#, "malformed"),
            (r#"{"type":"refresh","token":""}"#, "malformed"),
            (r#"{"type":"refresh","token":"x""#, "malformed"),
            (r#"{"type":"refresh","token":"x"} trailing"#, "malformed"),
            (r#"{"type":"chat","text":"hi"}"#, "not"),
            (r#"{"type":"refresh","type":"chat","token":"x"}"#, "not"),
            (
                r#"{"type":"auth","extra":{"a":[1,2.5e3,true,null,"s"]},"token":"t"}"#,
                "auth:t",
            ),
            ("hello", "not"),
            ("", "not"),
            ("[1,2]", "not"),
            (r#"{"text":"x""#, "not"),
        ];
        for (msg, want) in rows {
            let got = match scan_control(msg.as_bytes()) {
                Control::Plain => String::from("not"),
                Control::Malformed => String::from("malformed"),
                Control::Auth(t) => alloc::format!("auth:{t}"),
                Control::Refresh(t) => alloc::format!("refresh:{t}"),
            };
            assert_eq!(got, *want, "{msg}");
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut s = String::from(r#"{"type":"auth","x":"#);
        for _ in 0..10_000 {
            s.push('[');
        }
        assert_eq!(scan_control(s.as_bytes()), Control::Malformed);
    }
}
