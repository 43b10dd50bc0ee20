//! The reference application `wsauth serve` runs without a config file, and
//! its demo data.
//!
//! Routes (from [`Config::reference_routes`]):
//! * `/ws/chat/<room>/` — anonymous customer chat: a message goes to everyone
//!   in the room and to staff on the admin route;
//! * `/ws/admin/chat/` — staff: sees every room; sends `{"room":…,"text":…}`;
//! * `/ws/logs/` — staff: the gateway's own auth decisions, one JSON object
//!   per message (never a credential);
//! * `/ws/receipts/<id>/` — the owner: progress events for the receipt;
//! * `/ws/conversations/<id>/` — members: messages go to the other members.
//!
//! Demo users: id 1 `admin` (staff), id 2 `customer`; receipt 100 belongs to
//! user 2; conversation 1 has both users as members, conversation 2 only the admin.

use crate::app::{App, AppMessage, AuthEvent, ConnInfo, Handler, Outbox, SharedText};
use crate::host::{MemoryHost, UserRow};
use crate::runtime::Runtime;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use wsauth_core::config::DatabaseConfig;
use wsauth_core::Principal;
use wsauth_core::{
    config::EngineConfig, config::JwtConfig, config::RateLimitConfig, config::SessionConfig,
    config::UsersConfig, Config, Relation, SecretRef, UserSource,
};

/// The demo staff user's id.
pub const STAFF_USER_ID: &str = "1";
/// The demo customer's id.
pub const CUSTOMER_USER_ID: &str = "2";
/// The receipt the customer owns.
pub const CUSTOMER_RECEIPT: &str = "100";
/// Cookie name the reference config reads a JWT from.
pub const JWT_COOKIE: &str = "access_token";

/// The demo users: `admin` (staff) and `customer`.
pub fn demo_users() -> Vec<UserRow> {
    vec![
        UserRow {
            pk: STAFF_USER_ID.into(),
            username: "admin".into(),
            password:
                "pbkdf2_sha256$870000$wsauthdemoadmin$bm90LWEtcmVhbC1wYXNzd29yZC1oYXNoLWFkbWlu"
                    .into(),
            is_active: true,
            is_staff: true,
            is_superuser: true,
        },
        UserRow {
            pk: CUSTOMER_USER_ID.into(),
            username: "customer".into(),
            password:
                "pbkdf2_sha256$870000$wsauthdemocust$bm90LWEtcmVhbC1wYXNzd29yZC1oYXNoLWN1c3Q="
                    .into(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
        },
    ]
}

/// The demo directory: [`demo_users`], receipt 100 owned by user 2,
/// conversation 1 with users 1 and 2, conversation 2 with user 1.
pub fn demo_host() -> MemoryHost {
    let host = demo_grants();
    for u in demo_users() {
        host.add_user(u);
    }
    host
}

/// The demo host a configuration asks: with users when it looks users up
/// (directory or sessions), the resource grants only when flags come from
/// token claims.
pub fn demo_host_for(config: &Config) -> MemoryHost {
    if config.asks_for_users() {
        demo_host()
    } else {
        demo_grants()
    }
}

/// The reference app's receipts and conversation memberships, no users.
pub fn demo_grants() -> MemoryHost {
    let host = MemoryHost::new();
    host.grant(
        Relation::Owner,
        "receipts",
        CUSTOMER_RECEIPT,
        CUSTOMER_USER_ID,
    );
    host.grant(Relation::Member, "conversations", "1", STAFF_USER_ID);
    host.grant(Relation::Member, "conversations", "1", CUSTOMER_USER_ID);
    host.grant(Relation::Member, "conversations", "2", STAFF_USER_ID);
    host
}

/// The embedded default configuration: the reference routes, users from the
/// directory, SimpleJWT defaults, signed-cookie Django sessions, a JWT also
/// accepted from the `access_token` cookie, first-message auth on
/// `/ws/conversations/<id>/`, origins `http://localhost:*` and `http://127.0.0.1:*`.
pub fn default_config(secret: SecretRef) -> Config {
    let mut routes = Config::reference_routes();
    for r in &mut routes {
        if r.name == "conversations" {
            r.auth_message = Some(true);
        }
    }
    let mut config = Config {
        jwt: JwtConfig {
            secret: Some(secret),
            ..JwtConfig::default()
        },
        users: UsersConfig {
            source: UserSource::Directory,
            ..UsersConfig::default()
        },
        session: Some(SessionConfig {
            engine: EngineConfig::SignedCookies,
            ..SessionConfig::default()
        }),
        routes,
        ..Config::default()
    };
    config.credentials.jwt_cookie = Some(JWT_COOKIE.into());
    // On by default, with numbers a real user never meets: 10 attempts a
    // second sustained per address, 200 at once.
    config.limits.rate_limit = Some(RateLimitConfig {
        requests: 600,
        period_secs: 60,
        burst: 200,
        store: Default::default(),
        fail_open: false,
    });
    config
}

/// The receipts route's access query (Django app `shop`, model `Receipt`).
pub const RECEIPTS_SQL: &str = "SELECT 1 FROM shop_receipt WHERE id = :id AND owner_id = :user";
/// The conversations route's access query (`Conversation.members`).
pub const CONVERSATIONS_SQL: &str =
    "SELECT 1 FROM shop_conversation_members WHERE conversation_id = :id AND user_id = :user";

/// [`default_config`] reading users, sessions and access from the Django
/// database at `url` (`[database]`, `users.source = "database"`, the
/// routes' [`RECEIPTS_SQL`] / [`CONVERSATIONS_SQL`]) with Django's
/// database session engine.
pub fn database_config(secret: SecretRef, url: SecretRef) -> Config {
    let mut config = default_config(secret);
    config.database = Some(DatabaseConfig::new(url));
    if let Some(s) = config.session.as_mut() {
        s.engine = EngineConfig::Db;
    }
    for r in &mut config.routes {
        match r.name.as_str() {
            "receipts" => r.sql = Some(RECEIPTS_SQL.into()),
            "conversations" => r.sql = Some(CONVERSATIONS_SQL.into()),
            _ => {}
        }
    }
    config
}

/// How the reference app schedules work (progress streams).
type Spawn = Arc<dyn Fn(BoxFuture<'static, ()>) + Send + Sync>;
type Sleep = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// The reference application.
pub struct ReferenceApp {
    hub: Arc<Mutex<Hub>>,
    spawn: Spawn,
    sleep: Sleep,
    progress_interval: Duration,
    progress_steps: u32,
}

impl std::fmt::Debug for ReferenceApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceApp")
            .field("progress_interval", &self.progress_interval)
            .field("progress_steps", &self.progress_steps)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Hub {
    /// `chat:<room>` / `conversations:<id>` → members.
    groups: HashMap<String, HashMap<u64, Member>>,
    /// Staff on the admin route.
    admins: HashMap<u64, Outbox>,
    /// Subscribers of the decision stream.
    logs: HashMap<u64, Outbox>,
}

#[derive(Clone)]
struct Member {
    outbox: Outbox,
}

fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|p| p.into_inner())
}

impl ReferenceApp {
    /// The app, scheduling its progress streams on `rt`.
    pub fn new<R: Runtime>(rt: R) -> Self {
        let rt2 = rt.clone();
        ReferenceApp {
            hub: Arc::new(Mutex::new(Hub::default())),
            spawn: Arc::new(move |f| rt.spawn(f)),
            sleep: Arc::new(move |d| rt2.sleep(d)),
            progress_interval: Duration::from_millis(500),
            progress_steps: 5,
        }
    }

    /// Receipt progress: `steps` events, `interval` apart.
    pub fn with_progress(mut self, interval: Duration, steps: u32) -> Self {
        self.progress_interval = interval;
        self.progress_steps = steps.max(1);
        self
    }

    fn sender(conn: &ConnInfo) -> Value {
        match conn.principal.user() {
            Some(u) => json!({ "user": u.id.as_str(), "staff": u.is_staff }),
            None => json!({ "user": null, "staff": false }),
        }
    }
}

/// The text of a client message: the `text` member of a JSON object, or the whole text.
fn text_of(msg: &AppMessage) -> Option<(Option<Value>, String)> {
    let AppMessage::Text(t) = msg else {
        return None;
    };
    match serde_json::from_str::<Value>(t) {
        Ok(Value::Object(o)) => {
            let text = o.get("text").and_then(Value::as_str).map(str::to_string)?;
            Some((Some(Value::Object(o)), text))
        }
        _ => Some((None, t.clone())),
    }
}

struct Group {
    hub: Arc<Mutex<Hub>>,
    key: String,
    conn: ConnInfo,
    outbox: Outbox,
    /// Chat rooms are mirrored to the admin route.
    mirror_to_admins: bool,
}

impl Handler for Group {
    fn authenticated(&mut self, principal: &Principal) {
        self.conn.principal = *principal;
    }

    fn message(&mut self, msg: AppMessage) {
        let Some((_, text)) = text_of(&msg) else {
            self.outbox
                .send_json(&json!({ "type": "error", "message": "text messages only" }));
            return;
        };
        let (kind, name) = self.key.split_once(':').unwrap_or(("chat", ""));
        let event = json!({
            "type": "message",
            "group": kind,
            "id": name,
            "from": ReferenceApp::sender(&self.conn),
            "text": text,
        });
        // Serialized once, shared by every receiver's queue.
        let event = SharedText::json(&event);
        let hub = lock(&self.hub);
        if let Some(members) = hub.groups.get(&self.key) {
            for m in members.values() {
                m.outbox.send_shared(&event);
            }
        }
        if self.mirror_to_admins {
            for o in hub.admins.values() {
                o.send_shared(&event);
            }
        }
    }

    fn closed(&mut self) {
        let mut hub = lock(&self.hub);
        if let Some(members) = hub.groups.get_mut(&self.key) {
            members.remove(&self.conn.id);
            if members.is_empty() {
                hub.groups.remove(&self.key);
            }
        }
    }
}

struct Admin {
    hub: Arc<Mutex<Hub>>,
    conn: ConnInfo,
    outbox: Outbox,
}

impl Handler for Admin {
    fn message(&mut self, msg: AppMessage) {
        let parsed = text_of(&msg);
        let room = parsed
            .as_ref()
            .and_then(|(obj, _)| obj.as_ref())
            .and_then(|o| o.get("room"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let (Some(room), Some((_, text))) = (room, parsed) else {
            self.outbox.send_json(&json!({
                "type": "error",
                "message": "send {\"room\": \"<room>\", \"text\": \"…\"}",
            }));
            return;
        };
        let event = json!({
            "type": "message",
            "group": "chat",
            "id": room,
            "from": ReferenceApp::sender(&self.conn),
            "text": text,
        });
        let event = SharedText::json(&event);
        let hub = lock(&self.hub);
        if let Some(members) = hub.groups.get(&format!("chat:{room}")) {
            for m in members.values() {
                m.outbox.send_shared(&event);
            }
        }
        for o in hub.admins.values() {
            o.send_shared(&event);
        }
    }

    fn closed(&mut self) {
        lock(&self.hub).admins.remove(&self.conn.id);
    }
}

struct Logs {
    hub: Arc<Mutex<Hub>>,
    id: u64,
}

impl Handler for Logs {
    fn message(&mut self, _msg: AppMessage) {}
    fn closed(&mut self) {
        lock(&self.hub).logs.remove(&self.id);
    }
}

struct Echo(Outbox);

impl Handler for Echo {
    fn message(&mut self, msg: AppMessage) {
        match msg {
            AppMessage::Text(t) => self.0.send_text(t),
            AppMessage::Binary(b) => self.0.send_binary(b),
        };
    }
}

impl App for ReferenceApp {
    fn open(&self, conn: &ConnInfo, outbox: Outbox) -> Box<dyn Handler> {
        match conn.route.as_str() {
            "chat" | "conversations" => {
                let id = conn
                    .param("room")
                    .or_else(|| conn.param("id"))
                    .unwrap_or("");
                let key = format!("{}:{id}", conn.route);
                lock(&self.hub)
                    .groups
                    .entry(key.clone())
                    .or_default()
                    .insert(
                        conn.id,
                        Member {
                            outbox: outbox.clone(),
                        },
                    );
                Box::new(Group {
                    hub: self.hub.clone(),
                    key,
                    conn: conn.clone(),
                    outbox,
                    mirror_to_admins: conn.route == "chat",
                })
            }
            "admin_chat" => {
                lock(&self.hub).admins.insert(conn.id, outbox.clone());
                Box::new(Admin {
                    hub: self.hub.clone(),
                    conn: conn.clone(),
                    outbox,
                })
            }
            "logs" => {
                lock(&self.hub).logs.insert(conn.id, outbox);
                Box::new(Logs {
                    hub: self.hub.clone(),
                    id: conn.id,
                })
            }
            "receipts" => {
                let receipt = conn.param("id").unwrap_or("").to_string();
                let sleep = self.sleep.clone();
                let interval = self.progress_interval;
                let steps = self.progress_steps;
                let out = outbox.clone();
                (self.spawn)(Box::pin(async move {
                    for step in 1..=steps {
                        if out.is_closed() {
                            return;
                        }
                        let done = step == steps;
                        out.send_json(&json!({
                            "type": "progress",
                            "receipt": receipt,
                            "step": step,
                            "of": steps,
                            "status": if done { "done" } else { "processing" },
                        }));
                        if !done {
                            sleep(interval).await;
                        }
                    }
                }));
                Box::new(crate::app::Ignore)
            }
            _ => Box::new(Echo(outbox)),
        }
    }

    fn audit(&self, event: &AuthEvent) {
        let hub = lock(&self.hub);
        if hub.logs.is_empty() {
            return;
        }
        let line = event.to_json();
        for o in hub.logs.values() {
            o.send_json(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        let c = default_config(SecretRef::Value("x".repeat(50)));
        assert_eq!(c.check(), Vec::new());
        assert!(c
            .routes
            .iter()
            .any(|r| r.name == "conversations" && r.auth_message == Some(true)));
    }

    #[test]
    fn database_config_is_valid() {
        let c = database_config(
            SecretRef::Value("x".repeat(50)),
            SecretRef::Value("sqlite:///tmp/x.sqlite3".into()),
        );
        assert_eq!(c.check(), Vec::new());
    }

    #[test]
    fn demo_host_has_the_demo_data() {
        let h = demo_host();
        assert!(h.get_user(STAFF_USER_ID).is_some_and(|u| u.is_staff));
        assert!(h.get_user(CUSTOMER_USER_ID).is_some_and(|u| !u.is_staff));
        assert_eq!(
            h.granted(Relation::Owner, "receipts", CUSTOMER_RECEIPT),
            vec![CUSTOMER_USER_ID.to_string()]
        );
    }

    #[test]
    fn text_of_reads_json_or_plain() {
        assert_eq!(
            text_of(&AppMessage::Text("hi".into())).map(|t| t.1),
            Some("hi".into())
        );
        assert_eq!(
            text_of(&AppMessage::Text(r#"{"text":"yo"}"#.into())).map(|t| t.1),
            Some("yo".into())
        );
        assert!(text_of(&AppMessage::Text(r#"{"x":1}"#.into())).is_none());
        assert!(text_of(&AppMessage::Binary(vec![1])).is_none());
    }
}
