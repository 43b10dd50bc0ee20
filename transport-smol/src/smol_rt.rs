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
            let (s, peer) = accept_nonblocking(listener).await?;
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

/// Accepts one connection with `O_NONBLOCK` and `O_CLOEXEC` set by the
/// `accept4` call itself. `TcpListener::accept` accepts a blocking socket
/// and then switches it with a second system call (`ioctl(FIONBIO)`): one of
/// about a dozen per handshake.
#[cfg(target_os = "linux")]
async fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    use rustix::net::{acceptfrom_with, SocketFlags};
    let inner: std::sync::Arc<smol::Async<std::net::TcpListener>> = listener.clone().into();
    let (fd, peer) = inner
        .read_with(|l| {
            acceptfrom_with(l, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
                .map_err(io::Error::from)
        })
        .await?;
    let peer = peer
        .and_then(|a| SocketAddr::try_from(a).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "accepted a non-IP peer"))?;
    let stream = smol::Async::new_nonblocking(std::net::TcpStream::from(fd))?;
    Ok((TcpStream::from(stream), peer))
}

#[cfg(not(target_os = "linux"))]
async fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    listener.accept().await
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::AsyncReadExt;
    use std::io::Write;

    /// The flags the kernel reports for one of this process's descriptors.
    #[cfg(target_os = "linux")]
    fn fd_flags(fd: std::os::fd::BorrowedFd<'_>) -> u32 {
        use std::os::fd::AsRawFd;
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .expect("a flags line");
        u32::from_str_radix(flags.trim(), 8).unwrap()
    }

    #[test]
    fn accepted_sockets_are_nonblocking_and_know_their_peer() {
        smol::block_on(async {
            let rt = SmolRuntime;
            let listener = rt.bind("127.0.0.1:0".into()).await.unwrap();
            let addr = rt.local_addr(&listener).unwrap();
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            let (mut stream, peer) = rt.accept(&listener).await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            assert_eq!(stream.peer_addr().unwrap(), peer);
            assert!(stream.nodelay().unwrap());
            #[cfg(target_os = "linux")]
            {
                // O_NONBLOCK and O_CLOEXEC (asm-generic values, octal).
                let flags = fd_flags(std::os::fd::AsFd::as_fd(&stream));
                assert_eq!(flags & 0o4000, 0o4000, "O_NONBLOCK in {flags:o}");
                assert_eq!(flags & 0o2000000, 0o2000000, "O_CLOEXEC in {flags:o}");
            }
            client.write_all(b"ping").unwrap();
            let mut got = [0u8; 4];
            stream.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"ping");
        });
    }
}
