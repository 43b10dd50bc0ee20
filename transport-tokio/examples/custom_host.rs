//! A tokio server with its own user store and its own application, the
//! configuration built in code.
//!
//! ```sh
//! DJANGO_SECRET_KEY=dev-secret cargo run -p wsauth-tokio --example custom_host
//! ```
//!
//! - `UserStore` is the host: it answers the core's user and access steps
//!   from the application's own data (here a map; a database in real life).
//! - `Whoami` is the application: every accepted connection is told who it
//!   is, then its messages are echoed.
//! - The configuration takes user flags from the host (`UserSource::Directory`):
//!   with the default (`claims`) the gateway would refuse this host, whose users
//!   would never be asked.
//!
//! `cargo test -p wsauth-tokio --example custom_host` runs it against a real
//! WebSocket client.

use std::collections::HashMap;
use std::sync::Arc;
use wsauth_tokio::wsauth_core::config::RouteConfig;
use wsauth_tokio::wsauth_core::{Config, Requirement, SecretRef, UserSource};
use wsauth_tokio::{
    AccessQuery, App, AppMessage, BoxFuture, ConnInfo, Gateway, Handler, Host, LookupError, Outbox,
    Relation, Server, UserKey, UserRow,
};

/// The application's users and who owns which document.
struct UserStore {
    users: HashMap<String, UserRow>,
    owners: HashMap<String, String>,
}

impl UserStore {
    fn demo() -> Self {
        let row = |pk: &str, staff: bool| UserRow {
            pk: pk.into(),
            username: format!("user{pk}"),
            password: format!("pbkdf2_sha256$600000$salt{pk}$hash"),
            is_active: true,
            is_staff: staff,
            is_superuser: false,
        };
        UserStore {
            users: HashMap::from([("1".into(), row("1", true)), ("2".into(), row("2", false))]),
            owners: HashMap::from([("42".into(), "2".into())]),
        }
    }
}

impl Host for UserStore {
    fn user<'a>(
        &'a self,
        _key: &'a UserKey,
        pk: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRow>, LookupError>> {
        let row = self.users.get(pk).cloned();
        Box::pin(async move { Ok(row) })
    }

    fn access<'a>(&'a self, q: &'a AccessQuery<'a>) -> BoxFuture<'a, Result<bool, LookupError>> {
        let allowed = q.relation == Relation::Owner
            && self.owners.get(q.value).map(String::as_str) == Some(q.user);
        Box::pin(async move { Ok(allowed) })
    }
}

/// Tells each connection who it is, then echoes.
struct Whoami;

struct Echo(Outbox);

impl Handler for Echo {
    fn message(&mut self, msg: AppMessage) {
        if let AppMessage::Text(t) = msg {
            self.0.send_text(t);
        }
    }
}

impl App for Whoami {
    fn open(&self, conn: &ConnInfo, outbox: Outbox) -> Box<dyn Handler> {
        let who = conn.user_id().unwrap_or("anonymous").to_string();
        outbox.send_text(format!("hello {who} on {}", conn.route));
        Box::new(Echo(outbox))
    }
}

/// The configuration, in code.
fn config(secret: SecretRef) -> Config {
    Config::new(secret)
        .users_from(UserSource::Directory)
        .route(RouteConfig::new(
            "lobby",
            "/ws/lobby/",
            Requirement::Anonymous,
        ))
        .route(RouteConfig::new("admin", "/ws/admin/", Requirement::Staff))
        .route(RouteConfig::new(
            "documents",
            "/ws/documents/<id>/",
            Requirement::Owner("id".into()),
        ))
}

fn gateway(secret: SecretRef) -> Result<Gateway, Box<dyn std::error::Error>> {
    let config = config(secret);
    if let Some(problem) = config.check().into_iter().next() {
        return Err(problem.to_string().into());
    }
    Ok(Gateway::from_config(
        &config,
        Arc::new(UserStore::demo()),
        Arc::new(Whoami),
    )?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gateway = gateway(SecretRef::Env("DJANGO_SECRET_KEY".into()))?;
    let server = Server::bind("127.0.0.1:8002", gateway).await?;
    println!("listening on ws://{}", server.local_addr()?);
    server.run_until_signal().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tungstenite::tokio::connect_async;
    use async_tungstenite::tungstenite::Message;
    use futures::StreamExt;
    use std::time::Duration;
    use wsauth_tokio::wsauth_core::{ClaimValue, InlineStr, MintRequest, SecretKey, TokenVerifier};

    const SECRET: &str = "example-secret-0123456789abcdef";

    fn token(user: &str) -> String {
        let v = TokenVerifier::new(Default::default(), SecretKey::from(SECRET)).expect("verifier");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        v.mint(
            &MintRequest {
                user_id: ClaimValue::Str(InlineStr::new(user).expect("short")),
                lifetime: 300,
                jti: "0123456789abcdef0123456789abcdef",
                extra: &[],
            },
            now,
        )
    }

    /// What the client sees: the first text message, or the close code.
    async fn first(url: &str) -> String {
        let (mut ws, _) = connect_async(url).await.expect("upgrade");
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        match next.expect("an answer in time") {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Close(Some(f)))) => format!("closed {}", u16::from(f.code)),
            other => format!("{other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_custom_host_answers_and_the_app_sees_who() {
        let gateway = gateway(SecretRef::Value(SECRET.into())).expect("config");
        let server = Server::bind("127.0.0.1:0", gateway).await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let stop = server.shutdown_handle();
        let task = tokio::spawn(async move { server.run().await });
        let url = |path: &str, user: &str| format!("ws://{addr}{path}?token={}", token(user));

        // Flags from the host's store, not from the token (which claims nothing).
        assert_eq!(first(&url("/ws/admin/", "1")).await, "hello 1 on admin");
        assert_eq!(first(&url("/ws/admin/", "2")).await, "closed 4403");
        // Unknown to the store: refused, as JWTAuthentication refuses it.
        assert_eq!(first(&url("/ws/admin/", "9")).await, "closed 4401");
        // Ownership from the host's access answer.
        assert_eq!(
            first(&url("/ws/documents/42/", "2")).await,
            "hello 2 on documents"
        );
        assert_eq!(first(&url("/ws/documents/42/", "1")).await, "closed 4403");
        assert_eq!(
            first(&format!("ws://{addr}/ws/lobby/")).await,
            "hello anonymous on lobby"
        );
        stop.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }

    #[test]
    fn a_claims_config_would_never_ask_this_host() {
        let c = config(SecretRef::Value(SECRET.into())).users_from(UserSource::Claims);
        let err = Gateway::from_config(&c, Arc::new(UserStore::demo()), Arc::new(Whoami))
            .expect_err("refused");
        assert!(err.to_string().contains("users.source"), "{err}");
    }
}
