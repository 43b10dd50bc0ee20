//! Close codes (DESIGN §3, a contract) and close reasons.
//!
//! Codes are sent **after** the upgrade is accepted, so browsers can read
//! them. Reasons are UTF-8, at most [`MAX_REASON_BYTES`] bytes, cut on a
//! character boundary, and never carry a credential: the core only ever uses
//! the fixed texts below.

use core::fmt;

/// Largest close reason a WebSocket close frame can carry (125 − 2 code bytes).
pub const MAX_REASON_BYTES: usize = 123;

/// A close code from the contract table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 4401: no / invalid / expired credential on a protected route; expired
    /// on an open socket; refresh rejected; inactive or unknown user.
    Unauthorized,
    /// 4403: authenticated but not allowed (not staff, not owner, not a member).
    Forbidden,
    /// 4404: no route for this path.
    NotFound,
    /// 4400: malformed auth / refresh message.
    BadMessage,
    /// 4408: no auth message before the deadline.
    AuthTimeout,
    /// 4429: too many connection attempts.
    RateLimited,
    /// 1013: a host lookup failed (database, cache down). Never reported as 4401.
    TryAgainLater,
    /// 1014: edge mode — the upstream application is unreachable or refused.
    BadGateway,
    /// 1007: a text frame that is not UTF-8 (RFC 6455).
    InvalidPayload,
    /// 1008: a policy was violated (a peer that does not read what it is sent).
    PolicyViolation,
    /// 1001: the server is going away (shutting down) (RFC 6455).
    GoingAway,
    /// 1002: the peer broke the WebSocket protocol (RFC 6455).
    ProtocolError,
    /// 1009: a message larger than the server takes (RFC 6455).
    MessageTooBig,
}

impl CloseCode {
    /// The numeric code sent in the close frame.
    pub const fn as_u16(self) -> u16 {
        match self {
            CloseCode::Unauthorized => 4401,
            CloseCode::Forbidden => 4403,
            CloseCode::NotFound => 4404,
            CloseCode::BadMessage => 4400,
            CloseCode::AuthTimeout => 4408,
            CloseCode::RateLimited => 4429,
            CloseCode::TryAgainLater => 1013,
            CloseCode::BadGateway => 1014,
            CloseCode::InvalidPayload => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::MessageTooBig => 1009,
        }
    }

    /// The code for a number, if it is one of the contract's codes.
    pub const fn from_u16(code: u16) -> Option<Self> {
        match code {
            4401 => Some(CloseCode::Unauthorized),
            4403 => Some(CloseCode::Forbidden),
            4404 => Some(CloseCode::NotFound),
            4400 => Some(CloseCode::BadMessage),
            4408 => Some(CloseCode::AuthTimeout),
            4429 => Some(CloseCode::RateLimited),
            1013 => Some(CloseCode::TryAgainLater),
            1014 => Some(CloseCode::BadGateway),
            1007 => Some(CloseCode::InvalidPayload),
            1008 => Some(CloseCode::PolicyViolation),
            1001 => Some(CloseCode::GoingAway),
            1002 => Some(CloseCode::ProtocolError),
            1009 => Some(CloseCode::MessageTooBig),
            _ => None,
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// A close reason: UTF-8, at most [`MAX_REASON_BYTES`] bytes, stored inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    len: u8,
    buf: [u8; MAX_REASON_BYTES],
}

impl CloseReason {
    /// The empty reason.
    pub const EMPTY: CloseReason = CloseReason {
        len: 0,
        buf: [0; MAX_REASON_BYTES],
    };

    /// A reason from `text`, cut to [`MAX_REASON_BYTES`] bytes on a character boundary.
    pub fn new(text: &str) -> Self {
        let cut = truncate_reason(text);
        let mut buf = [0u8; MAX_REASON_BYTES];
        let bytes = cut.as_bytes();
        for (dst, src) in buf.iter_mut().zip(bytes) {
            *dst = *src;
        }
        CloseReason {
            len: u8::try_from(bytes.len()).unwrap_or(0),
            buf,
        }
    }

    /// The reason text.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_str().len()
    }

    /// True for the empty reason.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats into a reason buffer; refuses (instead of cutting) what does not fit.
struct ReasonWriter {
    buf: [u8; MAX_REASON_BYTES],
    len: u8,
}

impl fmt::Write for ReasonWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let start = usize::from(self.len);
        let end = start.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(start..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = u8::try_from(end).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

/// `text` cut to at most [`MAX_REASON_BYTES`] bytes, on a character boundary.
pub fn truncate_reason(text: &str) -> &str {
    if text.len() <= MAX_REASON_BYTES {
        return text;
    }
    let end = (0..=MAX_REASON_BYTES)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text.get(..end).unwrap_or("")
}

/// Close the connection (after accepting it) with this code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// The code.
    pub code: CloseCode,
    /// The reason (a fixed text; never a credential).
    pub reason: CloseReason,
    /// For [`CloseCode::RateLimited`]: seconds until a new attempt may succeed.
    pub retry_after: Option<u64>,
}

impl Close {
    /// A close with a fixed reason text.
    pub fn new(code: CloseCode, reason: &str) -> Self {
        Close {
            code,
            reason: CloseReason::new(reason),
            retry_after: None,
        }
    }

    /// 4429 with the retry-after hint (whole seconds), also written into the
    /// reason: `too many connection attempts, retry in 30 s`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut w = ReasonWriter {
            buf: [0; MAX_REASON_BYTES],
            len: 0,
        };
        let reason = match fmt::write(
            &mut w,
            format_args!("{}, retry in {} s", reasons::RATE_LIMITED, retry_after_secs),
        ) {
            Ok(()) => CloseReason {
                len: w.len,
                buf: w.buf,
            },
            Err(_) => CloseReason::new(reasons::RATE_LIMITED),
        };
        Close {
            code: CloseCode::RateLimited,
            reason,
            retry_after: Some(retry_after_secs),
        }
    }

    /// The numeric code.
    pub fn code_u16(&self) -> u16 {
        self.code.as_u16()
    }

    /// How an open connection closes when its transport ends it: the host
    /// reports what it saw, the core names the code and the reason.
    pub fn transport(end: TransportEnd) -> Self {
        match end {
            TransportEnd::Shutdown => Close::new(CloseCode::GoingAway, reasons::SHUTTING_DOWN),
            TransportEnd::MessageTooBig => {
                Close::new(CloseCode::MessageTooBig, reasons::MESSAGE_TOO_BIG)
            }
            TransportEnd::InvalidUtf8 => Close::new(CloseCode::InvalidPayload, reasons::NOT_UTF8),
            TransportEnd::ProtocolError => {
                Close::new(CloseCode::ProtocolError, reasons::PROTOCOL_ERROR)
            }
        }
    }
}

/// What a host's transport saw that ends an open connection; [`Close::transport`]
/// says how the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportEnd {
    /// The server is shutting down.
    Shutdown,
    /// The client sent a message over the size limit.
    MessageTooBig,
    /// The client sent a text frame that is not UTF-8 (RFC 6455 §8.1).
    InvalidUtf8,
    /// The client broke the WebSocket framing.
    ProtocolError,
}

/// The fixed reason texts the core uses. None of them is longer than
/// [`MAX_REASON_BYTES`] and none carries request data.
pub mod reasons {
    /// No credential on a protected route.
    pub const AUTH_REQUIRED: &str = "authentication required";
    /// The token's `exp` has passed (at the handshake or on an open socket).
    pub const TOKEN_EXPIRED: &str = "token expired";
    /// The token is not valid yet (`nbf` / `iat` in the future).
    pub const TOKEN_NOT_YET_VALID: &str = "token not yet valid";
    /// The token failed a check (signature, algorithm, claims, format).
    pub const TOKEN_INVALID: &str = "token invalid";
    /// The token has the wrong type (e.g. a refresh token).
    pub const TOKEN_WRONG_TYPE: &str = "token has wrong type";
    /// The credential exceeds the size limit.
    pub const TOO_LARGE: &str = "credential too large";
    /// The token was revoked (jti or password change).
    pub const TOKEN_REVOKED: &str = "token revoked";
    /// The token's user id claim is missing or unusable.
    pub const BAD_USER_ID: &str = "token has no usable user id";
    /// The session is invalid (bad signature, corrupt, anonymous).
    pub const SESSION_INVALID: &str = "session invalid";
    /// The session has expired.
    pub const SESSION_EXPIRED: &str = "session expired";
    /// The session hash no longer matches (password changed).
    pub const SESSION_HASH: &str = "session no longer valid";
    /// The user named by the credential does not exist.
    pub const USER_NOT_FOUND: &str = "user not found";
    /// The user is inactive.
    pub const USER_INACTIVE: &str = "user inactive";
    /// The route needs `is_staff`.
    pub const STAFF_ONLY: &str = "staff only";
    /// The route needs `is_superuser`.
    pub const SUPERUSER_ONLY: &str = "superuser only";
    /// The user does not own the resource.
    pub const NOT_OWNER: &str = "not the owner";
    /// The user is not a member of the resource.
    pub const NOT_MEMBER: &str = "not a member";
    /// No route for the path.
    pub const NO_ROUTE: &str = "no route";
    /// A control message could not be parsed.
    pub const BAD_MESSAGE: &str = "malformed control message";
    /// A control message is larger than allowed.
    pub const MESSAGE_TOO_LARGE: &str = "control message too large";
    /// The first message was not an auth message.
    pub const AUTH_EXPECTED: &str = "auth message expected";
    /// No auth message before the deadline.
    pub const AUTH_TIMEOUT: &str = "auth message timeout";
    /// A refresh named another user, or a refresh token failed.
    pub const REFRESH_REJECTED: &str = "refresh rejected";
    /// `refresh` on a connection that never authenticated.
    pub const NOTHING_TO_REFRESH: &str = "refresh without authentication";
    /// A refresh named another user.
    pub const REFRESH_OTHER_USER: &str = "refresh for another user";
    /// Too many connection attempts.
    pub const RATE_LIMITED: &str = "too many connection attempts";
    /// A host lookup failed.
    pub const LOOKUP_FAILED: &str = "lookup failed, try again later";
    /// The host answered a different question than the one asked.
    pub const UNEXPECTED_ANSWER: &str = "internal lookup error, try again later";
    /// The server is shutting down.
    pub const SHUTTING_DOWN: &str = "server shutting down";
    /// A WebSocket message over the size limit.
    pub const MESSAGE_TOO_BIG: &str = "message too big";
    /// A text frame that is not UTF-8.
    pub const NOT_UTF8: &str = "invalid UTF-8 in a text frame";
    /// A frame that breaks the WebSocket protocol.
    pub const PROTOCOL_ERROR: &str = "protocol error";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(100); // 200 bytes
        let cut = truncate_reason(&s);
        assert!(cut.len() <= MAX_REASON_BYTES);
        assert_eq!(cut.len(), 122);
        assert_eq!(CloseReason::new(&s).as_str(), cut);
    }

    #[test]
    fn every_code_round_trips_through_its_number() {
        let mut parsed = 0;
        for n in 0..=u16::MAX {
            if let Some(c) = CloseCode::from_u16(n) {
                assert_eq!(c.as_u16(), n);
                parsed += 1;
            }
        }
        // The contract's nine codes, and 1001 / 1002 / 1008 / 1009 of RFC 6455.
        assert_eq!(parsed, 13);
    }

    #[test]
    fn rate_limited_reason_names_the_wait() {
        let c = Close::rate_limited(30);
        assert_eq!(c.code.as_u16(), 4429);
        assert_eq!(c.retry_after, Some(30));
        assert_eq!(
            c.reason.as_str(),
            "too many connection attempts, retry in 30 s"
        );
        assert!(Close::rate_limited(u64::MAX).reason.len() <= MAX_REASON_BYTES);
    }

    #[test]
    fn codes_round_trip() {
        for code in [
            CloseCode::Unauthorized,
            CloseCode::Forbidden,
            CloseCode::NotFound,
            CloseCode::BadMessage,
            CloseCode::AuthTimeout,
            CloseCode::RateLimited,
            CloseCode::TryAgainLater,
        ] {
            assert_eq!(CloseCode::from_u16(code.as_u16()), Some(code));
        }
        assert_eq!(CloseCode::from_u16(1000), None);
    }
}
