//! [`Server`]: a TCP listener and a [`Gateway`], on any [`TcpRuntime`].

use crate::gateway::Gateway;
use crate::runtime::{ShutdownHandle, TcpRuntime};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// An address [`Server::bind`] takes: `"host:port"` or a socket address.
pub trait ListenAddr {
    /// The address as `host:port`, for the runtime to resolve and bind.
    fn to_listen_addr(&self) -> String;
}

impl ListenAddr for str {
    fn to_listen_addr(&self) -> String {
        self.to_owned()
    }
}

impl ListenAddr for String {
    fn to_listen_addr(&self) -> String {
        self.clone()
    }
}

impl ListenAddr for SocketAddr {
    fn to_listen_addr(&self) -> String {
        self.to_string()
    }
}

macro_rules! listen_addr_via_socket_addr {
    ($($t:ty),*) => {$(
        impl ListenAddr for $t {
            fn to_listen_addr(&self) -> String {
                SocketAddr::from(*self).to_string()
            }
        }
    )*};
}

listen_addr_via_socket_addr!(
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ListenAddr for (String, u16) {
    fn to_listen_addr(&self) -> String {
        (self.0.as_str(), self.1).to_listen_addr()
    }
}

impl ListenAddr for (&str, u16) {
    fn to_listen_addr(&self) -> String {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::from((ip, self.1)).to_string(),
            Err(_) => format!("{}:{}", self.0, self.1),
        }
    }
}

impl<A: ListenAddr + ?Sized> ListenAddr for &A {
    fn to_listen_addr(&self) -> String {
        (**self).to_listen_addr()
    }
}

/// A bound WebSocket server on the runtime `R`.
pub struct Server<R: TcpRuntime> {
    rt: R,
    listener: R::Listener,
    gateway: Gateway,
    shutdown: ShutdownHandle,
}

impl<R: TcpRuntime> std::fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("gateway", &self.gateway)
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

impl<R: TcpRuntime + Default> Server<R> {
    /// Binds `addr` (port 0 picks a free port; see [`Server::local_addr`]).
    pub async fn bind<A: ListenAddr>(addr: A, gateway: Gateway) -> io::Result<Server<R>> {
        Server::bind_on(R::default(), addr, gateway).await
    }
}

impl<R: TcpRuntime> Server<R> {
    /// Binds `addr` with the runtime `rt`.
    pub async fn bind_on<A: ListenAddr>(rt: R, addr: A, gateway: Gateway) -> io::Result<Server<R>> {
        let listener = rt.bind(addr.to_listen_addr()).await?;
        Ok(Server {
            rt,
            listener,
            gateway,
            shutdown: ShutdownHandle::new(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.rt.local_addr(&self.listener)
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
    ///
    /// The accept loop runs as a task of the runtime (stopped if this future
    /// is dropped), not on the thread awaiting this: connections are then
    /// spawned from a worker thread, next to the workers that serve them.
    pub async fn run(self) {
        let (done_tx, done) = futures::channel::oneshot::channel::<()>();
        let (serving, stop) = futures::future::abortable(serve(
            self.rt.clone(),
            self.listener,
            self.gateway,
            self.shutdown,
        ));
        self.rt.spawn(Box::pin(async move {
            let _ = serving.await;
            let _ = done_tx.send(());
        }));
        // Dropping this future stops the loop, as awaiting it in place would.
        struct AbortOnDrop(futures::future::AbortHandle);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _guard = AbortOnDrop(stop);
        let _ = done.await;
    }

    /// Like [`Server::run`], also stopping on Ctrl-C / SIGTERM.
    pub async fn run_until_signal(self) {
        let handle = self.shutdown.clone();
        let signal = self.rt.shutdown_signal();
        self.rt.spawn(Box::pin(async move {
            signal.await;
            tracing::info!("signal received, shutting down");
            handle.shutdown();
        }));
        self.run().await;
    }
}

/// Serves connections from `listener` until `shutdown` is triggered.
pub async fn serve<R: TcpRuntime>(
    rt: R,
    listener: R::Listener,
    gateway: Gateway,
    shutdown: ShutdownHandle,
) {
    let accepting = rt.clone();
    let incoming = futures::stream::unfold(listener, move |l| {
        let rt = accepting.clone();
        async move {
            let next = rt.accept(&l).await.map(|(s, peer)| (s, Some(peer)));
            Some((next, l))
        }
    });
    gateway.serve_incoming(rt, incoming, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::ListenAddr;
    use std::net::{Ipv6Addr, SocketAddr};

    #[test]
    fn listen_addrs_keep_host_and_port() {
        assert_eq!("127.0.0.1:0".to_listen_addr(), "127.0.0.1:0");
        assert_eq!(("localhost", 8001).to_listen_addr(), "localhost:8001");
        assert_eq!(("::1", 8001).to_listen_addr(), "[::1]:8001");
        assert_eq!((Ipv6Addr::LOCALHOST, 9).to_listen_addr(), "[::1]:9");
        let a: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        assert_eq!(a.to_listen_addr(), "127.0.0.1:8001");
        assert_eq!(String::from("0.0.0.0:1").to_listen_addr(), "0.0.0.0:1");
    }
}
