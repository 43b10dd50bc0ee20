//! # wsauth-smol
//!
//! `wsauth-core` embedded in a real WebSocket server on smol (feature
//! `smol-runtime`, on by default). The server itself is `wsauth-gateway`
//! (async-tungstenite over any `futures-io` stream, re-exported here); this
//! crate supplies the runtime — smol's executor, timers and TCP types, and
//! SIGINT / SIGTERM through async-signal. `wsauth-tokio` does the same on
//! tokio with the same public shape. The `wsauth` command-line tool is this
//! package's binary (feature `cli`).
//!
//! The host ([`Host`]: user directory, session store, revocation, resource
//! access) and the application behind the gateway ([`App`]) are yours;
//! [`MemoryHost`] and the [`reference`] app are shipped.
//!
//! ```no_run
//! # #[cfg(feature = "smol-runtime")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use wsauth_smol::reference::{default_config, demo_host, ReferenceApp};
//! use wsauth_smol::wsauth_core::SecretRef;
//! use wsauth_smol::{Gateway, Server, SmolRuntime};
//!
//! let config = default_config(SecretRef::Env("DJANGO_SECRET_KEY".into()));
//! let app = Arc::new(ReferenceApp::new(SmolRuntime));
//! let gateway = Gateway::from_config(&config, Arc::new(demo_host()), app)?;
//! smol::block_on(async {
//!     let server = Server::bind("127.0.0.1:8001", gateway).await?;
//!     server.run_until_signal().await;
//!     Ok(())
//! })
//! # }
//! # #[cfg(not(feature = "smol-runtime"))]
//! # fn main() {}
//! ```

#[cfg(feature = "smol-runtime")]
mod smol_rt;

#[cfg(feature = "smol-runtime")]
pub use smol_rt::{accept, serve, Server, SmolRuntime};
#[cfg(feature = "sql")]
pub use wsauth_gateway::sql;
pub use wsauth_gateway::{
    probe, reference, resolve_secret_ref, wsauth_core, AccessQuery, App, AppMessage, AuthEvent,
    BoxFuture, ConnInfo, EchoApp, Gateway, Handler, Host, Ignore, Limits, ListenAddr, LookupError,
    MemoryHost, MemoryRateStore, NullApp, Outbox, Outcome, Principal, RateStore, Relation, Runtime,
    SessionRecord, ShutdownHandle, Stage, TcpRuntime, UserKey, UserRow,
};
