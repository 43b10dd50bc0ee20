//! # wsauth-gateway
//!
//! `wsauth-core` embedded in a real WebSocket server: async-tungstenite over
//! any `futures-io` stream, generic over the async runtime. `wsauth-smol` and
//! `wsauth-tokio` supply a runtime ([`Runtime`], [`TcpRuntime`]) and re-export
//! this crate; nothing here depends on either.
//!
//! The gateway makes no decision of its own: it builds the core's
//! [`HandshakeView`](wsauth_core::HandshakeView) from the upgrade request,
//! answers the core's host steps with a [`Host`], carries out the
//! [`Decision`](wsauth_core::Decision) (accept, close after accept with a
//! code, refuse with HTTP 403, await a first auth message) and drives each
//! open connection's state machine (expiry → 4401, in-band refresh).
//!
//! The host ([`Host`]: user directory, session store, revocation, resource
//! access) and the application behind the gateway ([`App`]) are yours;
//! [`MemoryHost`] and the [`reference`] app are shipped. [`Server`] binds a
//! listener on a [`TcpRuntime`] and serves a [`Gateway`] until it is shut down.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wsauth_gateway::reference::{default_config, demo_host};
//! use wsauth_gateway::wsauth_core::SecretRef;
//! use wsauth_gateway::{Gateway, NullApp, Server, TcpRuntime};
//!
//! /// The reference routes on any runtime, until Ctrl-C / SIGTERM.
//! async fn run<R: TcpRuntime>(rt: R) -> Result<(), Box<dyn std::error::Error>> {
//!     let config = default_config(SecretRef::Env("DJANGO_SECRET_KEY".into()));
//!     let gateway = Gateway::from_config(&config, Arc::new(demo_host()), Arc::new(NullApp))?;
//!     let server = Server::bind_on(rt, "127.0.0.1:8001", gateway).await?;
//!     server.run_until_signal().await;
//!     Ok(())
//! }
//! ```

mod admission;
mod app;
mod deadlines;
mod gateway;
mod head;
mod host;
mod live;
mod lograte;
pub mod probe;
pub mod reference;
mod runtime;
mod server;
#[cfg(any(feature = "redis-smol", feature = "redis-tokio"))]
pub mod shared_redis;
#[cfg(feature = "sql")]
pub mod sql;
mod tap;
mod upstream;

pub use app::{
    App, AppMessage, AuthEvent, ConnInfo, EchoApp, Handler, Ignore, NullApp, Outbox, Outcome,
    SharedText, Stage,
};
/// What a [`Host`] needs to implement its lookups, re-exported so an
/// embedding needs no other crate for them.
pub use futures::future::BoxFuture;
pub use gateway::{resolve_secret_ref, Gateway, Limits};
pub use host::{
    AccessQuery, Host, LookupError, MemoryHost, MemoryRateStore, RateStore, SessionRecord, UserRow,
};
pub use live::LiveConnections;
pub use runtime::{ByteStream, OutboundStream, Runtime, ShutdownHandle, TcpRuntime};
pub use server::{serve, ListenAddr, Server};
pub use wsauth_core;
pub use wsauth_core::{Principal, Relation, UserKey};
