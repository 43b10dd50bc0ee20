//! The smol runtime: [`SmolRuntime`], and [`serve`] and [`accept`] on smol's TCP types.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use smol::net::{TcpListener, TcpStream};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use wsauth_gateway::{Gateway, OutboundStream, Runtime, ShutdownHandle, TcpRuntime};

/// smol's global executor, timers and TCP sockets.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        smol::spawn(task).detach();
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        async move {
            smol::Timer::after(duration).await;
        }
        .boxed()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        async move {
            smol::Timer::at(deadline).await;
        }
        .boxed()
    }

    fn connect(&self, addr: String) -> BoxFuture<'static, io::Result<OutboundStream>> {
        async move {
            let s = TcpStream::connect(addr).await?;
            let _ = s.set_nodelay(true);
            Ok(Box::new(s) as OutboundStream)
        }
        .boxed()
    }
}

impl TcpRuntime for SmolRuntime {
    type Listener = TcpListener;
    type Stream = TcpStream;

    fn bind(&self, addr: String) -> BoxFuture<'static, io::Result<TcpListener>> {
        TcpListener::bind(addr).boxed()
    }

    fn local_addr(&self, listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn accept<'a>(
        &'a self,
        listener: &'a TcpListener,
    ) -> BoxFuture<'a, io::Result<(TcpStream, SocketAddr)>> {
        async move {
            let (s, peer) = listener.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((s, peer))
        }
        .boxed()
    }

    /// SIGINT or SIGTERM; the handlers are installed at once.
    fn shutdown_signal(&self) -> BoxFuture<'static, ()> {
        use async_signal::{Signal, Signals};
        match Signals::new([Signal::Int, Signal::Term]) {
            Ok(mut signals) => async move {
                if signals.next().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            .boxed(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot install signal handlers");
                std::future::pending().boxed()
            }
        }
    }
}

/// A bound WebSocket server on smol.
pub type Server = wsauth_gateway::Server<SmolRuntime>;

/// Serves connections from `listener` until `shutdown` is triggered.
pub async fn serve(listener: TcpListener, gateway: Gateway, shutdown: ShutdownHandle) {
    wsauth_gateway::serve(SmolRuntime, listener, gateway, shutdown).await;
}

/// Handles one accepted connection to its end.
pub async fn accept(stream: TcpStream, gateway: &Gateway, shutdown: &ShutdownHandle) {
    let peer = stream.peer_addr().ok();
    gateway.handle(&SmolRuntime, stream, peer, shutdown).await;
}
