//! Gateways sharing one Redis: revocations, rate-limit state and Django's
//! cache sessions. Only I/O lives here: the keys, TTLs, message format,
//! the rate-limit math and the pickle reading are the core's
//! ([`wsauth_core::RedisConfig`], [`wsauth_core::RateLimit`],
//! [`wsauth_core::SessionVerifier::load_cached`]).
//!
//! Failure policy: a command that fails or times out is a failed lookup
//! (the handshake closes 1013), except that a rate store built with
//! `fail_open` admits attempts while Redis is unreachable. The client
//! reconnects by itself; the revocation subscriber resubscribes and, each
//! time it does, checks the open connections against the stored
//! revocations it may have missed.

use crate::host::{AccessQuery, Host, LookupError, RateStore, SessionRecord, UserRow};
use crate::live::LiveConnections;
use crate::runtime::Runtime;
use futures::future::BoxFuture;
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, info, warn};
use wsauth_core::{parse_revocation_message, RateState, RedisConfig, Revoked, UserKey};

fn lookup_error(e: &redis::RedisError) -> LookupError {
    // The error's text names the failure kind, never a key's value.
    LookupError::new(format!("redis: {:?}", e.kind()))
}

/// One Redis: a lazily made, self-reconnecting connection.
pub struct RedisShared {
    config: RedisConfig,
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    timeout: Duration,
}

impl std::fmt::Debug for RedisShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisShared")
            .field("key_prefix", &self.config.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisShared {
    /// A Redis at `url` (already resolved) with `config`'s keys and time limit.
    pub fn new(url: &str, config: RedisConfig) -> Result<Arc<Self>, LookupError> {
        let client = redis::Client::open(url).map_err(|e| lookup_error(&e))?;
        let timeout = Duration::from_millis(u64::from(config.timeout_ms.max(1)));
        Ok(Arc::new(RedisShared {
            config,
            client,
            conn: Mutex::new(None),
            timeout,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    async fn conn(&self) -> Result<ConnectionManager, LookupError> {
        let existing = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(c) = existing {
            return Ok(c);
        }
        let cfg = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.timeout))
            .set_connection_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let c = self
            .client
            .get_connection_manager_with_config(cfg)
            .await
            .map_err(|e| lookup_error(&e))?;
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// `GET key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, LookupError> {
        let mut c = self.conn().await?;
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut c)
            .await
            .map_err(|e| lookup_error(&e))
    }

    /// Whether the token id or the user is revoked (one `EXISTS`).
    pub async fn is_revoked(
        &self,
        jti: Option<&str>,
        user: Option<&str>,
    ) -> Result<bool, LookupError> {
        let mut keys = Vec::new();
        if let Some(j) = jti.filter(|j| !j.is_empty()) {
            keys.push(self.config.revoked_key(Revoked::Jti(j)));
        }
        if let Some(u) = user.filter(|u| !u.is_empty()) {
            keys.push(self.config.revoked_key(Revoked::User(u)));
        }
        if keys.is_empty() {
            return Ok(false);
        }
        let mut c = self.conn().await?;
        let n: u64 = redis::cmd("EXISTS")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .map_err(|e| lookup_error(&e))?;
        Ok(n > 0)
    }

    /// Stores and publishes a revocation (`exp`: the token's expiry, jti only;
    /// `now`: Unix seconds). Returns how many subscribers heard it.
    pub async fn revoke(
        &self,
        what: Revoked<'_>,
        exp: Option<i64>,
        now: i64,
    ) -> Result<u64, LookupError> {
        let r = self
            .config
            .revoke(what, exp, now)
            .map_err(|e| LookupError::new(e.to_string()))?;
        let mut c = self.conn().await?;
        let (_, heard): ((), u64) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&r.key)
            .arg(1)
            .arg("EX")
            .arg(r.ttl_secs)
            .cmd("PUBLISH")
            .arg(&r.channel)
            .arg(&r.message)
            .query_async(&mut c)
            .await
            .map_err(|e| lookup_error(&e))?;
        Ok(heard)
    }

    /// Listens for revocations until the process ends: each one closes the
    /// matching open connections. After every (re)subscription the open
    /// connections are checked against the stored revocations.
    pub async fn listen<R: Runtime>(self: Arc<Self>, rt: R, live: LiveConnections) {
        let channel = self.config.revocation_channel();
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut ps) => match ps.subscribe(&channel).await {
                    Ok(()) => {
                        info!("revocations: subscribed");
                        self.catch_up(&live).await;
                        let mut messages = ps.on_message();
                        while let Some(msg) = messages.next().await {
                            if let Some(what) = parse_revocation_message(msg.get_payload_bytes()) {
                                let n = live.revoke(what);
                                debug!(closed = n, "revocation received");
                            }
                        }
                        warn!("revocations: subscription lost");
                    }
                    Err(e) => warn!(error = ?e.kind(), "revocations: subscribe failed"),
                },
                Err(e) => debug!(error = ?e.kind(), "revocations: connect failed"),
            }
            rt.sleep(Duration::from_millis(200)).await;
        }
    }

    async fn catch_up(&self, live: &LiveConnections) {
        for (jti, user) in live.snapshot() {
            if let Ok(true) = self.is_revoked(jti.as_deref(), user.as_deref()).await {
                if let Some(j) = jti.as_deref() {
                    live.revoke(Revoked::Jti(j));
                }
                if let Some(u) = user.as_deref() {
                    if let Ok(true) = self.is_revoked(None, Some(u)).await {
                        live.revoke(Revoked::User(u));
                    }
                }
            }
        }
    }
}

/// The core's rate-limit state in Redis: one atomic compare-and-set script
/// per attempt, so every gateway counts against one limit.
#[derive(Debug)]
pub struct RedisRateStore {
    redis: Arc<RedisShared>,
    fail_open: bool,
    script: redis::Script,
}

// KEYS[1]: the peer's key; ARGV: expected, new (decimal Unix ms, "" = none),
// the new state's time to live (ms). Stored: {1}; else {0, current}.
const CAS: &str = r#"
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1, ''}
"#;

fn encode(s: RateState) -> String {
    if s == RateState::default() {
        String::new()
    } else {
        s.tat_ms.to_string()
    }
}

fn decode(v: &[u8]) -> RateState {
    std::str::from_utf8(v)
        .ok()
        .and_then(|t| t.parse().ok())
        .map(|tat_ms| RateState { tat_ms })
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl RedisRateStore {
    /// A store on `redis`; `fail_open` admits attempts while Redis is down.
    pub fn new(redis: Arc<RedisShared>, fail_open: bool) -> Self {
        RedisRateStore {
            redis,
            fail_open,
            script: redis::Script::new(CAS),
        }
    }

    fn key(&self, peer: IpAddr) -> String {
        self.redis.config.rate_key(&peer.to_string())
    }
}

impl RateStore for RedisRateStore {
    fn get(&self, peer: IpAddr) -> BoxFuture<'_, Result<RateState, LookupError>> {
        Box::pin(async move {
            match self.redis.get(&self.key(peer)).await {
                Ok(v) => Ok(v.as_deref().map(decode).unwrap_or_default()),
                Err(_) if self.fail_open => Ok(RateState::default()),
                Err(e) => Err(e),
            }
        })
    }

    fn commit(
        &self,
        peer: IpAddr,
        expected: RateState,
        new: RateState,
        idle_at_ms: i64,
    ) -> BoxFuture<'_, Result<Option<RateState>, LookupError>> {
        Box::pin(async move {
            let ttl = idle_at_ms.saturating_sub(now_ms()).max(1);
            let run = async {
                let mut c = self.redis.conn().await?;
                let (stored, cur): (i64, Vec<u8>) = self
                    .script
                    .key(self.key(peer))
                    .arg(encode(expected))
                    .arg(encode(new))
                    .arg(ttl)
                    .invoke_async(&mut c)
                    .await
                    .map_err(|e| lookup_error(&e))?;
                Ok(if stored == 1 {
                    None
                } else {
                    Some(decode(&cur))
                })
            };
            match run.await {
                Ok(r) => Ok(r),
                Err(_) if self.fail_open => Ok(None),
                Err(e) => Err(e),
            }
        })
    }
}

/// A [`Host`] that answers revocation checks from Redis (token id and user)
/// and cache-session lookups from Django's cache, and everything else from
/// the host it wraps.
pub struct RedisHost {
    inner: Arc<dyn Host>,
    revocations: Option<Arc<RedisShared>>,
    cache: Option<Arc<RedisShared>>,
}

impl std::fmt::Debug for RedisHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHost").finish_non_exhaustive()
    }
}

impl RedisHost {
    /// Wraps `inner`; `revocations` answers revocation checks (with the
    /// inner host's own list also asked), `cache` session lookups.
    pub fn new(
        inner: Arc<dyn Host>,
        revocations: Option<Arc<RedisShared>>,
        cache: Option<Arc<RedisShared>>,
    ) -> Self {
        RedisHost {
            inner,
            revocations,
            cache,
        }
    }
}

impl Host for RedisHost {
    fn has_users(&self) -> bool {
        self.inner.has_users()
    }

    fn user<'a>(
        &'a self,
        key: &'a UserKey,
        pk: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRow>, LookupError>> {
        self.inner.user(key, pk)
    }

    fn session<'a>(
        &'a self,
        session_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, LookupError>> {
        self.inner.session(session_key)
    }

    fn jti_revoked<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, LookupError>> {
        self.revoked(jti, "")
    }

    fn access<'a>(
        &'a self,
        query: &'a AccessQuery<'a>,
    ) -> BoxFuture<'a, Result<bool, LookupError>> {
        self.inner.access(query)
    }

    fn revoked<'a>(
        &'a self,
        jti: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<bool, LookupError>> {
        Box::pin(async move {
            if self.inner.revoked(jti, user).await? {
                return Ok(true);
            }
            match &self.revocations {
                Some(r) => r.is_revoked(Some(jti), Some(user)).await,
                None => Ok(false),
            }
        })
    }

    fn cached_session<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, LookupError>> {
        Box::pin(async move {
            match &self.cache {
                Some(c) => c.get(key).await,
                None => self.inner.cached_session(key).await,
            }
        })
    }
}
