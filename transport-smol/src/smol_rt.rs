//! The smol runtime: [`Server`], [`serve`] and [`accept`] on smol's TCP types.

use crate::gateway::Gateway;
use crate::runtime::{Runtime, ShutdownHandle};
use futures::future::BoxFuture;
use futures::FutureExt;
use smol::net::{AsyncToSocketAddrs, TcpListener, TcpStream};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// smol's global executor and timers.
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
    pub async fn bind<A: AsyncToSocketAddrs>(addr: A, gateway: Gateway) -> io::Result<Server> {
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

    /// Like [`Server::run`], also stopping on Ctrl-C / SIGTERM.
    pub async fn run_until_signal(self) {
        let handle = self.shutdown.clone();
        match async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term]) {
            Ok(mut signals) => {
                smol::spawn(async move {
                    use futures::StreamExt;
                    if signals.next().await.is_some() {
                        tracing::info!("signal received, shutting down");
                        handle.shutdown();
                    }
                })
                .detach();
            }
            Err(e) => tracing::warn!(error = %e, "cannot install signal handlers"),
        }
        self.run().await;
    }
}

/// Serves connections from `listener` until `shutdown` is triggered.
pub async fn serve(listener: TcpListener, gateway: Gateway, shutdown: ShutdownHandle) {
    let incoming = futures::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(s, peer)| {
            let _ = s.set_nodelay(true);
            (s, Some(peer))
        });
        Some((next, l))
    });
    gateway
        .serve_incoming(SmolRuntime, incoming, shutdown)
        .await;
}

/// Handles one accepted connection to its end.
pub async fn accept(stream: TcpStream, gateway: &Gateway, shutdown: &ShutdownHandle) {
    let peer = stream.peer_addr().ok();
    gateway.handle(&SmolRuntime, stream, peer, shutdown).await;
}
