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

// Grouped by stage; each group only uses the groups listed before it:
// text, error, time → py → jwt → django → pipeline → connection → edge → sql → config.
pub mod admission;
pub mod close;
pub mod config;
pub mod connection;
#[cfg(feature = "counters")]
pub mod counters;
pub mod django;
pub mod edge;
pub mod error;
pub mod jwt;
pub mod pipeline;
pub mod py;
pub mod shared;
pub mod sql;
pub mod text;
pub mod time;

// The surface a host needs most, at the crate root; everything else is in
// its module (`wsauth_core::django::signing::dumps`, …).
pub use close::{
    reasons, truncate_reason, Close, CloseCode, CloseReason, TransportEnd, MAX_REASON_BYTES,
};
pub use config::{secret_from_file, Config, ConfigError, SecretRef};
pub use connection::{ConnState, Connection, MessageAction};
pub use django::session::{
    parse_iso8601_utc, SessionEngine, SessionRow, SessionVerifier, UserRecord,
};
pub use error::ErrorKind;
pub use jwt::key::{Algorithm, KeyError, SecretKey};
pub use jwt::userid::{PkKind, UserKey};
pub use jwt::{
    invalid_json, ClaimValue, JwtSettings, MintRequest, TokenError, TokenVerifier, VerifiedToken,
};
pub use pipeline::decide::{
    Accepted, Answer, AuthMethod, AuthSettings, Authenticator, AwaitAuth, Closing, Decision,
    Handshake, HeadProblem, Principal, Relation, Request, Step, Subprotocol, User, UserId,
    UserSource,
};
pub use pipeline::ratelimit::{RateLimit, RateState};
pub use pipeline::route::{Requirement, Route, RouteMatch, Routes};
pub use pipeline::view::{Carrier, HandshakeView};
pub use py::pickle::{
    unpickle, PickleError, PickleValue, MAX_DEPTH as MAX_PICKLE_DEPTH, MAX_PICKLE_BYTES,
    MAX_VALUES as MAX_PICKLE_VALUES,
};
pub use shared::{
    parse_message as parse_revocation_message, revoked_close, RateStoreKind, RedisConfig,
    Revocation, RevocationError, Revoked, MAX_REVOKED_ID_BYTES,
};
pub use text::InlineStr;
pub use time::UnixTime;

/// The README's Rust example, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
