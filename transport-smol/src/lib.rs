//! # wsauth-smol
//!
//! `wsauth-core` embedded in a real WebSocket server: async-tungstenite over
//! any `futures-io` stream, with smol as the runtime (feature `smol-runtime`,
//! on by default). `wsauth-tokio` shares this code path and swaps the runtime.
//!
//! The transport makes no decision of its own: it builds the core's
//! [`HandshakeView`](wsauth_core::HandshakeView) from the upgrade request,
//! answers the core's host steps with a [`Host`], carries out the
//! [`Decision`](wsauth_core::Decision) (accept, close after accept with a
//! code, refuse with HTTP 403, await a first auth message) and drives each
//! open connection's state machine (expiry → 4401, in-band refresh).
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

#[cfg(feature = "cli")]
pub mod cli;

mod app;
mod gateway;
mod head;
mod host;
pub mod probe;
pub mod reference;
mod runtime;
#[cfg(feature = "smol-runtime")]
mod smol_rt;

pub use app::{
    App, AppMessage, AuthEvent, ConnInfo, EchoApp, Handler, Ignore, NullApp, Outbox, Outcome, Stage,
};
pub use gateway::{resolve_secret_ref, Gateway, Limits};
pub use host::{AccessQuery, Host, LookupError, MemoryHost, SessionRecord, UserRow};
pub use runtime::{Runtime, ShutdownHandle};
#[cfg(feature = "smol-runtime")]
pub use smol_rt::{accept, serve, Server, SmolRuntime};
pub use wsauth_core;
