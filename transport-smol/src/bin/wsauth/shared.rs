//! Gateways sharing one Redis: wiring `[redis]` into `wsauth serve`, and
//! `wsauth revoke`.

use super::output::{print_json, print_line};
use super::{EXIT_OK, EXIT_USAGE};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use wsauth_core::{config::EngineConfig, Config, RateStoreKind, RedisConfig, Revoked, SecretRef};
use wsauth_gateway::shared_redis::{RedisHost, RedisRateStore, RedisShared};
use wsauth_gateway::{resolve_secret_ref, Host, RateStore};

/// What `[redis]` and the cache session engines add to a gateway.
pub(crate) struct Wiring {
    pub(crate) host: Arc<dyn Host>,
    pub(crate) rates: Option<Arc<dyn RateStore>>,
    /// Listens for revocations.
    pub(crate) listener: Option<Arc<RedisShared>>,
}

fn url(r: &SecretRef, field: &str) -> Result<String, String> {
    resolve_secret_ref(r).ok_or_else(|| format!("{field}: cannot be resolved"))
}

fn open(config: &Config) -> Result<Option<Arc<RedisShared>>, String> {
    match &config.redis {
        None => Ok(None),
        Some(r) => RedisShared::new(&url(&r.url, "redis.url")?, r.clone())
            .map(Some)
            .map_err(|e| format!("redis.url: {e}")),
    }
}

/// The host, rate store and revocation listener `config` asks for.
pub(crate) fn wire(config: &Config, host: Arc<dyn Host>) -> Result<Wiring, String> {
    let redis = open(config)?;
    let cache = match &config.session {
        Some(s) if matches!(s.engine, EngineConfig::Cache | EngineConfig::CachedDb) => {
            match (&s.cache_url, &redis) {
                (Some(u), _) => Some(
                    RedisShared::new(
                        &url(u, "session.cache_url")?,
                        config.redis.clone().unwrap_or_default(),
                    )
                    .map_err(|e| format!("session.cache_url: {e}"))?,
                ),
                (None, Some(r)) => Some(r.clone()),
                (None, None) => {
                    return Err(
                        "session.engine cache / cached_db needs session.cache_url or [redis]"
                            .into(),
                    )
                }
            }
        }
        _ => None,
    };
    let rates: Option<Arc<dyn RateStore>> = match (config.limits.rate_limit, &redis) {
        (Some(rl), Some(r)) if rl.store == RateStoreKind::Redis => {
            Some(Arc::new(RedisRateStore::new(r.clone(), rl.fail_open)))
        }
        (Some(rl), None) if rl.store == RateStoreKind::Redis => {
            return Err("limits.rate_limit.store = \"redis\" needs [redis]".into())
        }
        _ => None,
    };
    let host: Arc<dyn Host> = if redis.is_some() || cache.is_some() {
        Arc::new(RedisHost::new(host, redis.clone(), cache))
    } else {
        host
    };
    Ok(Wiring {
        host,
        rates,
        listener: redis,
    })
}

/// `wsauth revoke`: store a revocation in Redis and publish it; every
/// gateway closes the open sockets it names (4401) and refuses it after.
#[derive(Debug, Subcommand)]
pub(crate) enum RevokeCommand {
    /// One token id, until the token would have expired (`--exp`) or for
    /// `[redis] jti_revocation_secs`.
    Jti(RevokeJtiArgs),
    /// Every credential of a user, for `[redis] user_revocation_secs`.
    User(RevokeUserArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// The config file with the `[redis]` table.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Unix time to use as now.
    #[arg(long, value_name = "UNIX")]
    now: Option<i64>,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeJtiArgs {
    /// The token's `jti`.
    jti: String,
    /// The token's `exp` (Unix seconds).
    #[arg(long, value_name = "UNIX")]
    exp: Option<i64>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeUserArgs {
    /// `str(user.pk)`.
    pk: String,
    #[command(flatten)]
    common: CommonArgs,
}

fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn run(cmd: RevokeCommand) -> i32 {
    let (what, exp, common) = match &cmd {
        RevokeCommand::Jti(a) => (Revoked::Jti(&a.jti), a.exp, &a.common),
        RevokeCommand::User(a) => (Revoked::User(&a.pk), None, &a.common),
    };
    let fail = |code: i32, kind: &str, message: String| {
        eprintln!("wsauth revoke: {message}");
        if common.json {
            print_json(&serde_json::json!({ "error": { "kind": kind, "message": message } }));
        }
        code
    };
    let config = match super::serve::load_config(&common.config) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_USAGE, "config", e),
    };
    let redis_config: RedisConfig = match &config.redis {
        Some(r) => r.clone(),
        None => {
            return fail(
                EXIT_USAGE,
                "config",
                "the config has no [redis] table".into(),
            )
        }
    };
    let redis = match open(&config) {
        Ok(Some(r)) => r,
        Ok(None) => return fail(EXIT_USAGE, "config", "no [redis]".into()),
        Err(e) => return fail(EXIT_USAGE, "config", e),
    };
    let now = common.now.unwrap_or_else(unix_secs);
    if let Err(e) = redis_config.revoke(what, exp, now) {
        return fail(EXIT_USAGE, "usage", e.to_string());
    }
    match smol::block_on(redis.revoke(what, exp, now)) {
        Ok(heard) => {
            if common.json {
                print_json(&serde_json::json!({ "revoked": true, "subscribers": heard }));
            } else {
                print_line(&format!("revoked (heard by {heard} gateways)"));
            }
            EXIT_OK
        }
        Err(e) => fail(1, "redis", e.to_string()),
    }
}
