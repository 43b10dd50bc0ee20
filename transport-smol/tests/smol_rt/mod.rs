//! The smol side of the load and stalled-handshake tests: a multi-threaded
//! executor for the clients and `wsauth_smol::Server` for the server.

use futures::channel::oneshot;
use futures::future::BoxFuture;
use futures::FutureExt;
use smol::Executor;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use wsauth_smol::{Gateway, SmolRuntime};
use wsauth_test_support::load::{LoadRt, Running, Socket};

/// An executor run by several threads; stops them when dropped.
pub(crate) struct Pool {
    ex: Arc<Executor<'static>>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// `threads` threads run the executor besides the one calling `block_on`.
    pub(crate) fn new(threads: usize) -> Pool {
        let ex = Arc::new(Executor::new());
        let mut stops = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads {
            let (tx, rx) = oneshot::channel::<()>();
            stops.push(tx);
            let ex = ex.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("load-client-{i}"))
                    .spawn(move || {
                        let _ = smol::block_on(ex.run(rx));
                    })
                    .expect("executor thread"),
            );
        }
        Pool {
            ex,
            stops,
            threads: handles,
        }
    }

    pub(crate) fn handle(&self) -> Smol {
        Smol(self.ex.clone())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The clients' executor (tasks) and smol's global executor (the server).
#[derive(Clone)]
pub(crate) struct Smol(Arc<Executor<'static>>);

impl LoadRt for Smol {
    type Rt = SmolRuntime;

    fn rt(&self) -> SmolRuntime {
        SmolRuntime
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        smol::block_on(self.0.run(f))
    }

    fn spawn<T: Send + 'static>(
        &self,
        f: BoxFuture<'static, T>,
    ) -> BoxFuture<'static, Result<T, String>> {
        self.0.spawn(f).map(Ok).boxed()
    }

    fn start(&self, gateway: Gateway) -> BoxFuture<'static, Running> {
        wsauth_test_support::start(SmolRuntime, gateway)
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<Socket>> {
        async move {
            let s = smol::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as Socket)
        }
        .boxed()
    }
}
