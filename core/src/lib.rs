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
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod b64;
mod cookie;
mod error;
mod json;
mod jwt;
mod key;
mod pyint;
mod session;
mod signing;
mod userid;

pub use cookie::{cookie_value, parse_cookie_pairs, CookiePairs};
pub use error::ErrorKind;
pub use jwt::{
    ClaimValue, InlineStr, JwtSettings, MintRequest, TokenError, TokenVerifier, VerifiedToken,
    DEFAULT_MAX_TOKEN_BYTES,
};
pub use key::{Algorithm, KeyError, SecretKey};
pub use session::{
    SessionAuth, SessionEngine, SessionError, SessionRow, SessionSettings, SessionVerifier,
    UserRecord,
};
pub use signing::{
    b62_decode, b62_encode, dumps, loads, salted_hmac, HashAlg, Signer, SigningError,
    TimestampSigner,
};
pub use userid::{PkKind, UserIdError, UserKey};
