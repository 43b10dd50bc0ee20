//! The error-kind contract shared by the CLI, the FFI and the transports.

use core::fmt;

/// Why a credential was rejected. The string forms (see [`ErrorKind::as_str`])
/// are a contract: the CLI's JSON, the FFI and the Python package use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The credential could not be parsed (segments, base64, JSON, claim types).
    Malformed,
    /// The signature does not verify under any accepted key.
    BadSignature,
    /// The header's `alg` is missing, or not the configured algorithm.
    BadAlgorithm,
    /// `exp` has passed (PyJWT: `exp <= now - leeway`).
    Expired,
    /// `nbf` or `iat` lies in the future (beyond the leeway).
    NotYetValid,
    /// The token-type claim is not the expected one (e.g. a refresh token).
    WrongTokenType,
    /// A claim SimpleJWT requires (`exp`, the jti claim, the type claim, the user id claim) is missing.
    MissingClaim,
    /// `aud` is missing, malformed or does not contain the configured audience.
    BadAudience,
    /// `iss` is missing, not a string or not the configured issuer.
    BadIssuer,
    /// The credential exceeds the configured size limit.
    TooLarge,
    /// The host reported the token's `jti` (or its password-hash claim) as revoked.
    Revoked,
    /// The session cookie or session data is unusable (bad signature, corrupt, anonymous).
    BadSession,
    /// The session has expired (`expire_date` passed or cookie older than `SESSION_COOKIE_AGE`).
    SessionExpired,
    /// The session's `_auth_user_hash` does not match the user's current password hash.
    SessionHashMismatch,
    /// The user the credential names does not exist.
    UserNotFound,
    /// The user the credential names is not active.
    UserInactive,
}

impl ErrorKind {
    /// The contract string: `malformed`, `bad_signature`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "malformed",
            ErrorKind::BadSignature => "bad_signature",
            ErrorKind::BadAlgorithm => "bad_algorithm",
            ErrorKind::Expired => "expired",
            ErrorKind::NotYetValid => "not_yet_valid",
            ErrorKind::WrongTokenType => "wrong_token_type",
            ErrorKind::MissingClaim => "missing_claim",
            ErrorKind::BadAudience => "bad_audience",
            ErrorKind::BadIssuer => "bad_issuer",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Revoked => "revoked",
            ErrorKind::BadSession => "bad_session",
            ErrorKind::SessionExpired => "session_expired",
            ErrorKind::SessionHashMismatch => "session_hash_mismatch",
            ErrorKind::UserNotFound => "user_not_found",
            ErrorKind::UserInactive => "user_inactive",
        }
    }

    /// Every kind, in declaration order (for tables and bindings).
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::Malformed,
        ErrorKind::BadSignature,
        ErrorKind::BadAlgorithm,
        ErrorKind::Expired,
        ErrorKind::NotYetValid,
        ErrorKind::WrongTokenType,
        ErrorKind::MissingClaim,
        ErrorKind::BadAudience,
        ErrorKind::BadIssuer,
        ErrorKind::TooLarge,
        ErrorKind::Revoked,
        ErrorKind::BadSession,
        ErrorKind::SessionExpired,
        ErrorKind::SessionHashMismatch,
        ErrorKind::UserNotFound,
        ErrorKind::UserInactive,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
