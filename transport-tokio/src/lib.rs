//! # wsauth-tokio
//!
//! `wsauth-core` embedded in a real WebSocket server on tokio. The server
//! itself is `wsauth-gateway` (async-tungstenite over `futures-io`,
//! re-exported here); this crate only supplies the runtime — tokio's TCP
//! types behind async-tungstenite's [`TokioAdapter`], tokio's timers, spawner
//! and signals. An application switches runtime by switching crate:
//! [`Server`], [`serve`] and [`accept`] have the same shape as in `wsauth-smol`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wsauth_tokio::reference::{default_config, demo_host};
//! use wsauth_tokio::wsauth_core::SecretRef;
//! use wsauth_tokio::{Gateway, NullApp, Server};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = default_config(SecretRef::Env("DJANGO_SECRET_KEY".into()));
//! let gateway = Gateway::from_config(&config, Arc::new(demo_host()), Arc::new(NullApp))?;
//! let server = Server::bind("127.0.0.1:8001", gateway).await?;
//! server.run_until_signal().await;
//! # Ok(())
//! # }
//! ```

use async_tungstenite::tokio::TokioAdapter;
use futures::FutureExt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

#[cfg(feature = "sql")]
pub use wsauth_gateway::sql;
pub use wsauth_gateway::{
    probe, reference, resolve_secret_ref, wsauth_core, AccessQuery, App, AppMessage, AuthEvent,
    BoxFuture, ConnInfo, EchoApp, Gateway, Handler, Host, Ignore, Limits, ListenAddr, LookupError,
    MemoryHost, MemoryRateStore, NullApp, OutboundStream, Outbox, Outcome, Principal, RateStore,
    Relation, Runtime, SessionRecord, ShutdownHandle, Stage, TcpRuntime, UserKey, UserRow,
};

/// tokio's spawner, timers, TCP sockets and signals (the current runtime's).
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

    fn connect(&self, addr: String) -> BoxFuture<'static, io::Result<OutboundStream>> {
        async move {
            let s = TcpStream::connect(addr).await?;
            let _ = s.set_nodelay(true);
            Ok(Box::new(TokioAdapter::new(s)) as OutboundStream)
        }
        .boxed()
    }
}

impl TcpRuntime for TokioRuntime {
    type Listener = TcpListener;
    type Stream = TokioAdapter<TcpStream>;

    fn bind(&self, addr: String) -> BoxFuture<'static, io::Result<TcpListener>> {
        async move { TcpListener::bind(addr).await }.boxed()
    }

    fn local_addr(&self, listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn accept<'a>(
        &'a self,
        listener: &'a TcpListener,
    ) -> BoxFuture<'a, io::Result<(Self::Stream, SocketAddr)>> {
        async move {
            let (s, peer) = listener.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((TokioAdapter::new(s), peer))
        }
        .boxed()
    }

    /// Ctrl-C, or SIGTERM on Unix.
    fn shutdown_signal(&self) -> BoxFuture<'static, ()> {
        wait_for_signal().boxed()
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

/// A bound WebSocket server on tokio.
pub type Server = wsauth_gateway::Server<TokioRuntime>;

/// Serves connections from `listener` until `shutdown` is triggered.
pub async fn serve(listener: TcpListener, gateway: Gateway, shutdown: ShutdownHandle) {
    wsauth_gateway::serve(TokioRuntime, listener, gateway, shutdown).await;
}

/// Handles one accepted connection to its end.
pub async fn accept(stream: TcpStream, gateway: &Gateway, shutdown: &ShutdownHandle) {
    let peer = stream.peer_addr().ok();
    gateway
        .handle(&TokioRuntime, TokioAdapter::new(stream), peer, shutdown)
        .await;
}
