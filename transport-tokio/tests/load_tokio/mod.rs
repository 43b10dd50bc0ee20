//! The tokio side of the load and stalled-handshake tests: a multi-threaded
//! tokio runtime for the clients and `wsauth_tokio::Server` for the server.

use async_tungstenite::tokio::TokioAdapter;
use futures::channel::oneshot;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::future::Future;
use std::net::SocketAddr;
use wsauth_test_support::load::{LoadRt, Running, Socket};
use wsauth_tokio::{Gateway, Server, TokioRuntime};

/// A multi-threaded tokio runtime with `workers` worker threads.
pub(crate) fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A handle on the runtime (the test owns the runtime itself).
#[derive(Clone)]
pub(crate) struct Tokio(pub(crate) tokio::runtime::Handle);

impl LoadRt for Tokio {
    type Rt = TokioRuntime;

    fn rt(&self) -> TokioRuntime {
        TokioRuntime
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }

    fn spawn<T: Send + 'static>(
        &self,
        f: BoxFuture<'static, T>,
    ) -> BoxFuture<'static, Result<T, String>> {
        self.0
            .spawn(f)
            .map(|r| r.map_err(|e| e.to_string()))
            .boxed()
    }

    fn start(&self, gateway: Gateway) -> BoxFuture<'static, Running> {
        let handle = self.0.clone();
        async move {
            let server = Server::bind("127.0.0.1:0", gateway)
                .await
                .expect("bind loopback");
            let addr = server.local_addr().expect("bound address");
            let shutdown = server.shutdown_handle();
            let (tx, done) = oneshot::channel();
            handle.spawn(async move {
                server.run().await;
                let _ = tx.send(());
            });
            Running {
                addr,
                shutdown,
                done,
            }
        }
        .boxed()
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<Socket>> {
        async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(TokioAdapter::new(s)) as Socket)
        }
        .boxed()
    }
}
