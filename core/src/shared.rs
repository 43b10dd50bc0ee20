//! State shared by many gateways (on Redis): what the keys are, what a
//! revocation means and for how long, what a revocation message says. The
//! host only moves these bytes.
//!
//! * A revoked `jti` is refused until its token would have expired (its
//!   `exp`), or for [`RedisConfig::jti_revocation_secs`] when the revoker
//!   does not know `exp`.
//! * A revoked user is refused for [`RedisConfig::user_revocation_secs`].
//! * Every revocation is stored (so a gateway that was away catches up by
//!   reading it) and published on one channel (so live sockets close).

use crate::config::SecretRef;
use alloc::format;
use alloc::string::String;
use serde::{Deserialize, Serialize};

/// `[redis]`: the Redis every gateway shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db` (also `{ env = … }` / `{ file = … }`).
    pub url: SecretRef,
    /// Prefix of every key and channel this project writes.
    pub key_prefix: String,
    /// Each Redis command's time limit, ms.
    pub timeout_ms: u32,
    /// How long a revoked user stays refused, seconds.
    pub user_revocation_secs: u32,
    /// How long a revoked `jti` stays refused when its `exp` is not given.
    pub jti_revocation_secs: u32,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: SecretRef::Value("redis://127.0.0.1:6379/0".into()),
            key_prefix: "wsauth:".into(),
            timeout_ms: 200,
            user_revocation_secs: 86_400,
            jti_revocation_secs: 86_400,
        }
    }
}

/// `[limits.rate_limit] store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateStoreKind {
    /// Each gateway counts on its own.
    #[default]
    Memory,
    /// One count for all gateways, in Redis (`[redis]`).
    Redis,
}

/// What is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked<'a> {
    /// One token id.
    Jti(&'a str),
    /// Every credential of one user (`str(pk)`).
    User(&'a str),
}

/// The largest `jti` or user id a revocation names, bytes.
pub const MAX_REVOKED_ID_BYTES: usize = 255;

/// Why a revocation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationError {
    /// Empty, longer than [`MAX_REVOKED_ID_BYTES`], or holding a control character.
    BadId,
    /// `exp` is not after now: there is nothing left to refuse.
    AlreadyExpired,
}

impl core::fmt::Display for RevocationError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RevocationError::BadId => "the id is empty, too long or holds a control character",
            RevocationError::AlreadyExpired => "the token has already expired",
        })
    }
}

impl core::error::Error for RevocationError {}

/// A revocation to store and publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The key to set.
    pub key: String,
    /// Its time to live, seconds (at least 1).
    pub ttl_secs: u64,
    /// The channel to publish on.
    pub channel: String,
    /// The message ([`parse_message`] reads it back).
    pub message: String,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_REVOKED_ID_BYTES && !id.chars().any(char::is_control)
}

impl RedisConfig {
    /// The key that marks `what` revoked.
    pub fn revoked_key(&self, what: Revoked<'_>) -> String {
        match what {
            Revoked::Jti(j) => format!("{}revoked:jti:{j}", self.key_prefix),
            Revoked::User(u) => format!("{}revoked:user:{u}", self.key_prefix),
        }
    }

    /// The channel revocations are published on.
    pub fn revocation_channel(&self) -> String {
        format!("{}revocations", self.key_prefix)
    }

    /// The key of one peer's rate-limit state.
    pub fn rate_key(&self, peer: &str) -> String {
        format!("{}rate:{peer}", self.key_prefix)
    }

    /// What to store and publish to revoke `what` at `now` (Unix seconds).
    /// `exp` is the token's expiry when known (jti only).
    pub fn revoke(
        &self,
        what: Revoked<'_>,
        exp: Option<i64>,
        now: i64,
    ) -> Result<Revocation, RevocationError> {
        let (id, ttl) = match what {
            Revoked::Jti(j) => {
                let ttl = match exp {
                    Some(exp) if exp <= now => return Err(RevocationError::AlreadyExpired),
                    Some(exp) => u64::try_from(exp.saturating_sub(now)).unwrap_or(1),
                    None => u64::from(self.jti_revocation_secs),
                };
                (j, ttl)
            }
            Revoked::User(u) => (u, u64::from(self.user_revocation_secs)),
        };
        if !valid_id(id) {
            return Err(RevocationError::BadId);
        }
        let message = match what {
            Revoked::Jti(j) => format!("jti:{j}"),
            Revoked::User(u) => format!("user:{u}"),
        };
        Ok(Revocation {
            key: self.revoked_key(what),
            ttl_secs: ttl.max(1),
            channel: self.revocation_channel(),
            message,
        })
    }
}

/// How an open connection whose credential was revoked closes: 4401.
pub fn revoked_close() -> crate::close::Close {
    crate::close::Close::new(
        crate::close::CloseCode::Unauthorized,
        crate::close::reasons::TOKEN_REVOKED,
    )
}

/// Reads a revocation message; `None` for anything else (ignored).
pub fn parse_message(message: &[u8]) -> Option<Revoked<'_>> {
    let text = core::str::from_utf8(message).ok()?;
    let what = if let Some(j) = text.strip_prefix("jti:") {
        Revoked::Jti(j)
    } else {
        Revoked::User(text.strip_prefix("user:")?)
    };
    match what {
        Revoked::Jti(id) | Revoked::User(id) if valid_id(id) => Some(what),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_keys_ttls_and_messages() {
        let c = RedisConfig::default();
        let r = c.revoke(Revoked::Jti("abc"), Some(1_100), 1_000).unwrap();
        assert_eq!(r.key, "wsauth:revoked:jti:abc");
        assert_eq!(r.ttl_secs, 100);
        assert_eq!(r.channel, "wsauth:revocations");
        assert_eq!(
            parse_message(r.message.as_bytes()),
            Some(Revoked::Jti("abc"))
        );
        assert_eq!(
            c.revoke(Revoked::Jti("abc"), Some(1_000), 1_000),
            Err(RevocationError::AlreadyExpired)
        );
        assert_eq!(
            c.revoke(Revoked::Jti("abc"), None, 0).unwrap().ttl_secs,
            86_400
        );
        let u = c.revoke(Revoked::User("42"), None, 0).unwrap();
        assert_eq!(u.key, "wsauth:revoked:user:42");
        assert_eq!(
            parse_message(u.message.as_bytes()),
            Some(Revoked::User("42"))
        );
        assert_eq!(
            c.revoke(Revoked::User(""), None, 0),
            Err(RevocationError::BadId)
        );
        assert_eq!(
            c.revoke(Revoked::User("a\nb"), None, 0),
            Err(RevocationError::BadId)
        );
        assert_eq!(parse_message(b"other"), None);
        assert_eq!(parse_message(b"jti:"), None);
        assert_eq!(parse_message(b"\xff"), None);
    }
}
