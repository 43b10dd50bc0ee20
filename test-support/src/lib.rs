//! The test scenarios `wsauth-smol` and `wsauth-tokio` share (a
//! dev-dependency of both, never published): each transport supplies its
//! runtime through a small trait and runs the same checks against a real
//! server on loopback.
//!
//! - [`transport`]: the scenario table and robustness checks ([`transport::Harness`]).
//! - [`edge`]: edge mode against a real upstream WebSocket server.
//! - [`load`]: thousands of held connections and stalled handshakes ([`load::LoadRt`]).
//! - [`raw`]: blocking raw WebSocket clients bound to chosen loopback addresses
//!   (several peers from one machine), for the abuse checks.

pub mod edge;
pub mod load;
pub mod raw;
pub mod transport;

use futures::channel::oneshot;
use futures::future::BoxFuture;
use futures::io::{AsyncRead, AsyncWrite};
use std::net::SocketAddr;
use wsauth_gateway::{Gateway, Server, ShutdownHandle, TcpRuntime};

/// A client or server socket.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
/// A boxed socket.
pub type Socket = Box<dyn Io>;

/// A server running in this process.
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: ShutdownHandle,
    /// Completes when `Server::run` returned.
    pub done: oneshot::Receiver<()>,
}

/// Binds `127.0.0.1:0` with [`Server`] on `rt` and runs it as a task of `rt`.
pub fn start<R: TcpRuntime>(rt: R, gateway: Gateway) -> BoxFuture<'static, Running> {
    Box::pin(async move {
        let server = Server::bind_on(rt.clone(), "127.0.0.1:0", gateway)
            .await
            .expect("bind loopback");
        let addr = server.local_addr().expect("bound address");
        let shutdown = server.shutdown_handle();
        let (tx, done) = oneshot::channel();
        rt.spawn(Box::pin(async move {
            server.run().await;
            let _ = tx.send(());
        }));
        Running {
            addr,
            shutdown,
            done,
        }
    })
}
