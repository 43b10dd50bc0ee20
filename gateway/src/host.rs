//! Steps the host answers: the application's user directory, session store,
//! revocation list and resource access, behind one trait.
//!
//! The core asks (sans-IO); the transport calls the matching [`Host`] method
//! and hands the answer back. A lookup that fails ([`LookupError`]) closes the
//! connection with 1013 (try again later) — never 4401.

use futures::future::{self, BoxFuture};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use wsauth_core::{RateState, Relation, UserKey};

/// A lookup could not be answered (database or cache down, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    message: String,
}

impl LookupError {
    /// A failure with a message for the logs (never a credential).
    pub fn new(message: impl Into<String>) -> Self {
        LookupError {
            message: message.into(),
        }
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lookup failed: {}", self.message)
    }
}

impl std::error::Error for LookupError {}

/// A row of Django's `auth_user` table: what the core needs of a user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    /// `str(pk)`.
    pub pk: String,
    /// `username` (for logs and demos; the core does not read it).
    pub username: String,
    /// The stored password hash (`pbkdf2_sha256$…`), for the session auth hash
    /// and SimpleJWT's revoke claim.
    pub password: String,
    /// `is_active`.
    pub is_active: bool,
    /// `is_staff`.
    pub is_staff: bool,
    /// `is_superuser`.
    pub is_superuser: bool,
}

impl fmt::Debug for UserRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRow")
            .field("pk", &self.pk)
            .field("username", &self.username)
            .field("is_active", &self.is_active)
            .field("is_staff", &self.is_staff)
            .field("is_superuser", &self.is_superuser)
            .finish_non_exhaustive()
    }
}

/// A row of Django's `django_session` table.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// `session_key`.
    pub session_key: String,
    /// `session_data` (signed, as stored).
    pub session_data: String,
    /// `expire_date`, Unix seconds.
    pub expire_date: i64,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("expire_date", &self.expire_date)
            .finish_non_exhaustive()
    }
}

/// "May user U access resource R?" as the core asks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessQuery<'a> {
    /// `str(pk)` / the user id.
    pub user: &'a str,
    /// Owner or member.
    pub relation: Relation,
    /// The route's name (`receipts`).
    pub route: &'a str,
    /// The route parameter naming the resource (`id`).
    pub param: &'a str,
    /// Its value, percent-decoded (`100`).
    pub value: &'a str,
    /// Every path parameter of the route, `(name, percent-decoded value)`.
    pub params: &'a [(String, String)],
}

/// The application's side of the decision. Implement it over your database
/// and cache; [`MemoryHost`] is an in-memory implementation.
///
/// Each method is asked only when the configuration needs it: `user` in
/// directory mode and for sessions, `session` for the `db` session engine,
/// `jti_revoked` with `check_revoked_jti`, `access` on owner / member routes.
pub trait Host: Send + Sync + 'static {
    /// Whether this host keeps a user store ([`Host::user`] answers from
    /// it). A gateway refuses a configuration that would never ask it
    /// (`users.source = "claims"`). Hosts that only answer sessions,
    /// revocation or access for claims-only users return `false`.
    fn has_users(&self) -> bool {
        true
    }

    /// The user whose primary key is `key` (`pk` is `str(pk)`), or `None`.
    fn user<'a>(
        &'a self,
        key: &'a UserKey,
        pk: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRow>, LookupError>>;

    /// The session row for `session_key`, or `None`. The default has no store.
    fn session<'a>(
        &'a self,
        session_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, LookupError>> {
        let _ = session_key;
        Box::pin(future::ready(Ok(None)))
    }

    /// Whether the token id `jti` is revoked. The default revokes nothing.
    fn jti_revoked<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, LookupError>> {
        let _ = jti;
        Box::pin(future::ready(Ok(false)))
    }

    /// Whether the access `query` describes is allowed. The default allows nothing.
    fn access<'a>(
        &'a self,
        query: &'a AccessQuery<'a>,
    ) -> BoxFuture<'a, Result<bool, LookupError>> {
        let _ = query;
        Box::pin(future::ready(Ok(false)))
    }

    /// Whether the token id `jti` or the user `user` (`str(pk)`) is revoked.
    /// The default asks [`Host::jti_revoked`].
    fn revoked<'a>(
        &'a self,
        jti: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<bool, LookupError>> {
        let _ = user;
        self.jti_revoked(jti)
    }

    /// The raw cache value stored under `key` (`cache` / `cached_db`
    /// session engines), or `None`. The default has no cache: a failed lookup.
    fn cached_session<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, LookupError>> {
        let _ = key;
        Box::pin(future::ready(Err(LookupError::new("no session cache"))))
    }
}

/// An in-memory [`Host`]: users, sessions, revoked token ids and access
/// grants, changeable while the server runs.
#[derive(Debug, Default)]
pub struct MemoryHost {
    users: RwLock<HashMap<String, UserRow>>,
    sessions: RwLock<HashMap<String, SessionRecord>>,
    revoked: RwLock<HashSet<String>>,
    grants: RwLock<HashSet<Grant>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Grant {
    owner: bool,
    route: String,
    value: String,
    user: String,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl MemoryHost {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user.
    pub fn add_user(&self, user: UserRow) {
        write(&self.users).insert(user.pk.clone(), user);
    }

    /// Builder form of [`add_user`](Self::add_user).
    pub fn with_user(self, user: UserRow) -> Self {
        self.add_user(user);
        self
    }

    /// A copy of the user with primary key `pk`.
    pub fn get_user(&self, pk: &str) -> Option<UserRow> {
        read(&self.users).get(pk).cloned()
    }

    /// Stores a session row.
    pub fn add_session(&self, row: SessionRecord) {
        write(&self.sessions).insert(row.session_key.clone(), row);
    }

    /// Marks a token id as revoked.
    pub fn revoke_jti(&self, jti: &str) {
        write(&self.revoked).insert(jti.to_string());
    }

    /// Lets `user` access the resource `value` of `route` as owner or member.
    pub fn grant(&self, relation: Relation, route: &str, value: &str, user: &str) {
        write(&self.grants).insert(Grant {
            owner: relation == Relation::Owner,
            route: route.into(),
            value: value.into(),
            user: user.into(),
        });
    }

    /// Builder form of [`grant`](Self::grant).
    pub fn with_grant(self, relation: Relation, route: &str, value: &str, user: &str) -> Self {
        self.grant(relation, route, value, user);
        self
    }

    /// Users granted `relation` to `value` of `route`.
    pub fn granted(&self, relation: Relation, route: &str, value: &str) -> Vec<String> {
        let owner = relation == Relation::Owner;
        let mut out: Vec<String> = read(&self.grants)
            .iter()
            .filter(|g| g.owner == owner && g.route == route && g.value == value)
            .map(|g| g.user.clone())
            .collect();
        out.sort();
        out
    }
}

impl Host for MemoryHost {
    fn has_users(&self) -> bool {
        self.users.read().map(|u| !u.is_empty()).unwrap_or(true)
    }

    fn user<'a>(
        &'a self,
        _key: &'a UserKey,
        pk: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRow>, LookupError>> {
        Box::pin(future::ready(Ok(self.get_user(pk))))
    }

    fn session<'a>(
        &'a self,
        session_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, LookupError>> {
        Box::pin(future::ready(Ok(read(&self.sessions)
            .get(session_key)
            .cloned())))
    }

    fn jti_revoked<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, LookupError>> {
        Box::pin(future::ready(Ok(read(&self.revoked).contains(jti))))
    }

    fn access<'a>(&'a self, q: &'a AccessQuery<'a>) -> BoxFuture<'a, Result<bool, LookupError>> {
        let g = Grant {
            owner: q.relation == Relation::Owner,
            route: q.route.into(),
            value: q.value.into(),
            user: q.user.into(),
        };
        Box::pin(future::ready(Ok(read(&self.grants).contains(&g))))
    }
}

impl<H: Host + ?Sized> Host for std::sync::Arc<H> {
    fn has_users(&self) -> bool {
        (**self).has_users()
    }

    fn user<'a>(
        &'a self,
        key: &'a UserKey,
        pk: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRow>, LookupError>> {
        (**self).user(key, pk)
    }
    fn session<'a>(
        &'a self,
        session_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, LookupError>> {
        (**self).session(session_key)
    }
    fn jti_revoked<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, LookupError>> {
        (**self).jti_revoked(jti)
    }
    fn revoked<'a>(
        &'a self,
        jti: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<bool, LookupError>> {
        (**self).revoked(jti, user)
    }
    fn cached_session<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, LookupError>> {
        (**self).cached_session(key)
    }
    fn access<'a>(
        &'a self,
        query: &'a AccessQuery<'a>,
    ) -> BoxFuture<'a, Result<bool, LookupError>> {
        (**self).access(query)
    }
}

/// Where the per-peer rate-limit state lives (the core decides; this only
/// stores). A compare-and-set store: the memory one here, Redis for many
/// gateways sharing one limit.
pub trait RateStore: Send + Sync + 'static {
    /// The stored state of `peer` (`RateState::default()` when none).
    fn get(&self, peer: IpAddr) -> BoxFuture<'_, Result<RateState, LookupError>>;
    /// Stores `new` if the state is still `expected`: `Ok(None)` when stored,
    /// `Ok(Some(current))` when another attempt changed it first.
    /// `idle_at_ms` is when the new state becomes idle and may be forgotten.
    fn commit(
        &self,
        peer: IpAddr,
        expected: RateState,
        new: RateState,
        idle_at_ms: i64,
    ) -> BoxFuture<'_, Result<Option<RateState>, LookupError>>;
}

/// The rate-limit state in this process, bounded in entries: when full,
/// idle peers are forgotten first, then (every peer active) an arbitrary one.
#[derive(Debug)]
pub struct MemoryRateStore {
    max_entries: usize,
    states: Mutex<HashMap<IpAddr, RateState>>,
}

impl MemoryRateStore {
    /// A store tracking at most `max_entries` peers.
    pub fn new(max_entries: usize) -> Self {
        MemoryRateStore {
            max_entries: max_entries.max(1),
            states: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, RateState>> {
        match self.states.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Peers tracked now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RateStore for MemoryRateStore {
    fn get(&self, peer: IpAddr) -> BoxFuture<'_, Result<RateState, LookupError>> {
        let state = self.lock().get(&peer).copied().unwrap_or_default();
        Box::pin(future::ready(Ok(state)))
    }

    fn commit(
        &self,
        peer: IpAddr,
        expected: RateState,
        new: RateState,
        _idle_at_ms: i64,
    ) -> BoxFuture<'_, Result<Option<RateState>, LookupError>> {
        let mut states = self.lock();
        let current = states.get(&peer).copied().unwrap_or_default();
        let out = if current != expected {
            Some(current)
        } else {
            if states.len() >= self.max_entries && !states.contains_key(&peer) {
                let now_ms = crate::gateway::unix_ms();
                states.retain(|_, s| !s.is_idle(now_ms));
                if states.len() >= self.max_entries {
                    if let Some(k) = states.keys().next().copied() {
                        states.remove(&k);
                    }
                }
            }
            states.insert(peer, new);
            None
        };
        Box::pin(future::ready(Ok(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pk: &str, staff: bool) -> UserRow {
        UserRow {
            pk: pk.into(),
            username: format!("u{pk}"),
            password: "pbkdf2_sha256$1$salt$hash".into(),
            is_active: true,
            is_staff: staff,
            is_superuser: false,
        }
    }

    #[test]
    fn memory_host_answers() {
        let h = MemoryHost::new().with_user(row("1", true)).with_grant(
            Relation::Owner,
            "receipts",
            "100",
            "2",
        );
        h.revoke_jti("abc");
        use futures::executor::block_on as run;
        let key = UserKey::Int(1);
        assert!(run(h.user(&key, "1")).unwrap().unwrap().is_staff);
        assert_eq!(run(h.user(&key, "9")).unwrap(), None);
        assert!(run(h.jti_revoked("abc")).unwrap());
        assert!(!run(h.jti_revoked("abd")).unwrap());
        let q = |user| AccessQuery {
            user,
            relation: Relation::Owner,
            route: "receipts",
            param: "id",
            value: "100",
            params: &[],
        };
        assert!(run(h.access(&q("2"))).unwrap());
        assert!(!run(h.access(&q("1"))).unwrap());
        let member = AccessQuery {
            relation: Relation::Member,
            ..q("2")
        };
        assert!(!run(h.access(&member)).unwrap());
        assert_eq!(
            h.granted(Relation::Owner, "receipts", "100"),
            vec!["2".to_string()]
        );
    }

    #[test]
    fn debug_hides_password_and_session_data() {
        let shown = format!("{:?}", row("1", false));
        assert!(!shown.contains("pbkdf2"));
        let s = SessionRecord {
            session_key: "k".into(),
            session_data: "secretdata".into(),
            expire_date: 1,
        };
        assert!(!format!("{s:?}").contains("secretdata"));
    }
}
