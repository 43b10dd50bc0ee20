//! # wsauth-core
//!
//! Sans-IO WebSocket authentication that decides exactly as Django, SimpleJWT
//! and Channels decide. No clock, no sockets, no async: time is an argument,
//! and anything that needs a lookup (a session row, a user's flags and
//! password hash, a revoked `jti`, resource ownership) is a *step the host
//! answers*.
//!
//! Read the pipeline top-down as one sentence:
//! **handshake view → credential → principal → route policy → decision**,
//! then, for an open connection, **timeouts and in-band messages → close or
//! extend**.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The core never panics on any input: no unwrap/expect/panic, no unchecked
// indexing, no arithmetic that can overflow (a panic with overflow checks, a
// wrong answer without). Arithmetic is checked / saturating / exact in a
// wider type; the few provably bounded sites say why where they are allowed.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod b64;
mod cookie;
mod deflate;
mod error;
mod json;
mod jwt;
mod key;
mod pyint;
mod session;
mod signing;
mod userid;

mod auth;
mod close;
mod config;
mod conn;
#[cfg(feature = "counters")]
pub mod counters;
mod handshake;
mod origin;
mod percent;
mod pickle;
mod ratelimit;
mod route;
mod shared;
mod time;

pub use cookie::{cookie_value, latin1_decode, parse_cookie_pairs, unquote_cookie, CookiePairs};
pub use error::ErrorKind;
pub use jwt::{bearer_from_authorization, invalid_json, AuthHeaderError, MintError};
pub use jwt::{
    ClaimValue, InlineStr, JwtSettings, MintRequest, TokenError, TokenVerifier, VerifiedToken,
    DEFAULT_MAX_TOKEN_BYTES,
};
pub use key::{Algorithm, KeyError, SecretKey};
pub use session::{
    parse_iso8601_utc, session_auth_hash, SessionAuth, SessionEngine, SessionError, SessionRow,
    SessionSettings, SessionVerifier, UserRecord, CACHED_DB_SESSION_PREFIX, CACHE_SESSION_PREFIX,
    SESSION_AUTH_HASH_SALT, SESSION_STORE_SALT, SIGNED_COOKIES_SALT,
};
pub use session::{SessionCheck, SessionCredential, SessionStep};
pub use signing::{
    b62_decode, b62_encode, b64_decode, b64_encode, dumps, get_signed_cookie, loads, salted_hmac,
    CookieSigner, HashAlg, Signer, SigningError, TimestampSigner, MAX_DECOMPRESSED_BYTES,
};
pub use userid::{PkKind, UserIdError, UserKey};

// The decision half: handshake → credential → principal → route policy → decision.
pub use auth::{
    Accepted, Answer, AuthMethod, AuthSettings, Authenticator, AwaitAuth, Closing, Decision,
    Handshake, Principal, Relation, Request, Step, Subprotocol, User, UserId, UserSource,
};
pub use close::{reasons, truncate_reason, Close, CloseCode, CloseReason, MAX_REASON_BYTES};
pub use config::{
    secret_from_file, Config, ConfigError, ConfigErrorKind, CredentialsConfig, EngineConfig,
    JwtConfig, LimitsConfig, OriginModeConfig, OriginsConfig, PkConfig, RateLimitConfig,
    RouteConfig, SecretRef, Secrets, SessionConfig, UsersConfig,
};
pub use conn::{ConnState, Connection, MessageAction};
pub use handshake::{
    extract_credential, offers_bearer, Carrier, Credential, CredentialSettings, HandshakeView,
    Subprotocols,
};
pub use origin::{channels_hostname, OriginMode, OriginPatternError, OriginPolicy, OriginVerdict};
pub use percent::query_param;
pub use pickle::{
    unpickle, PickleError, PickleValue, MAX_DEPTH as MAX_PICKLE_DEPTH, MAX_PICKLE_BYTES,
    MAX_VALUES as MAX_PICKLE_VALUES,
};
pub use ratelimit::{RateLimit, RateState, RetryAfter};
pub use route::{
    Converter, PathPattern, PatternError, Requirement, Route, RouteError, RouteMatch, Routes,
    MAX_PARAMS,
};
pub use shared::{
    parse_message as parse_revocation_message, revoked_close, RateStoreKind, RedisConfig,
    Revocation, RevocationError, Revoked, MAX_REVOKED_ID_BYTES,
};
pub use time::UnixTime;

/// The README's Rust example, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
