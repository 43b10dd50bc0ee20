//! # wsauth-tokio
//!
//! `wsauth-core` embedded in a real WebSocket server on tokio. The glue is
//! the same code path as `wsauth-smol` (async-tungstenite over `futures-io`,
//! re-exported here); this crate only supplies the runtime — tokio's TCP
//! types behind async-tungstenite's [`TokioAdapter`], tokio's timers and
//! spawner. An application switches runtime by switching crate: [`Server`],
//! [`serve`] and [`accept`] have the same shape in both.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wsauth_tokio::{Gateway, MemoryHost, NullApp, Server};
//! # fn config() -> wsauth_tokio::wsauth_core::Config { unimplemented!() }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let gateway = Gateway::from_config(&config(), Arc::new(MemoryHost::new()), Arc::new(NullApp))
//!     .expect("valid config");
//! let server = Server::bind("127.0.0.1:8001", gateway).await?;
//! server.run_until_signal().await;
//! # Ok(())
//! # }
//! ```

use async_tungstenite::tokio::TokioAdapter;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

pub use wsauth_smol::{
    probe, reference, resolve_secret_ref, wsauth_core, AccessQuery, App, AppMessage, AuthEvent,
    ConnInfo, EchoApp, Gateway, Handler, Host, Ignore, Limits, LookupError, MemoryHost, NullApp,
    Outbox, Outcome, Runtime, SessionRecord, ShutdownHandle, Stage, UserRow,
};

/// tokio's spawner and timers (the current runtime's).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        drop(tokio::spawn(task));
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        tokio::time::sleep(duration).boxed()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        tokio::time::sleep_until(deadline.into()).boxed()
    }
}

/// A bound WebSocket server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    gateway: Gateway,
    shutdown: ShutdownHandle,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port; see [`Server::local_addr`]).
    pub async fn bind<A: ToSocketAddrs>(addr: A, gateway: Gateway) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server {
            listener,
            gateway,
            shutdown: ShutdownHandle::new(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops [`Server::run`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// The gateway.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Serves until the shutdown handle is triggered, then closes open
    /// connections (1001) and returns once they are gone or the grace period ends.
    pub async fn run(self) {
        serve(self.listener, self.gateway, self.shutdown).await;
    }

    /// Like [`Server::run`], also stopping on Ctrl-C (and SIGTERM on Unix).
    pub async fn run_until_signal(self) {
        let handle = self.shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received, shutting down");
            handle.shutdown();
        });
        self.run().await;
    }
}

/// Ctrl-C, or SIGTERM on Unix. Never completes when no handler can be installed.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                r = tokio::signal::ctrl_c() => {
                    if r.is_err() {
                        term.recv().await;
                    }
                }
                _ = term.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Serves connections from `listener` until `shutdown` is triggered.
pub async fn serve(listener: TcpListener, gateway: Gateway, shutdown: ShutdownHandle) {
    let incoming = futures::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(s, peer)| {
            let _ = s.set_nodelay(true);
            (TokioAdapter::new(s), Some(peer))
        });
        Some((next, l))
    });
    gateway
        .serve_incoming(TokioRuntime, incoming, shutdown)
        .await;
}

/// Handles one accepted connection to its end.
pub async fn accept(stream: TcpStream, gateway: &Gateway, shutdown: &ShutdownHandle) {
    let peer = stream.peer_addr().ok();
    gateway
        .handle(&TokioRuntime, TokioAdapter::new(stream), peer, shutdown)
        .await;
}
