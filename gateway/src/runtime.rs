//! The little an async runtime must provide to the glue: spawning a task and
//! sleeping ([`Runtime`]); for a server, a TCP listener and the shutdown
//! signals ([`TcpRuntime`]). Everything else (WebSocket framing, the
//! handshake, open connections) is runtime-agnostic `futures-io` code, so
//! smol and tokio share one code path.

use futures::channel::oneshot;
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::io::{AsyncRead, AsyncWrite};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Spawn and sleep, as a runtime provides them.
///
/// `wsauth-smol` implements it for smol (`SmolRuntime`), `wsauth-tokio`
/// for tokio (`TokioRuntime`). The glue never blocks and never reads a clock other than
/// [`std::time::Instant`] / [`std::time::SystemTime`].
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Runs `task` in the background; the task is detached.
    fn spawn(&self, task: BoxFuture<'static, ()>);
    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
    /// Completes at `deadline` (at once when it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }
    /// Opens a TCP connection to `addr` (`host:port`, with `TCP_NODELAY`
    /// set): how an edge gateway reaches its upstream. A runtime without
    /// outbound sockets answers `Unsupported` (the client is then closed
    /// with 1014).
    fn connect(&self, addr: String) -> BoxFuture<'static, io::Result<OutboundStream>> {
        let _ = addr;
        Box::pin(async { Err(io::ErrorKind::Unsupported.into()) })
    }
}

/// A byte stream both ways, as [`Runtime::connect`] opens it.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> ByteStream for T {}

/// An outbound connection ([`Runtime::connect`]).
pub type OutboundStream = Box<dyn ByteStream>;

/// A runtime's TCP sockets and process signals: what [`Server`](crate::Server)
/// needs on top of [`Runtime`].
pub trait TcpRuntime: Runtime {
    /// A bound TCP listener.
    type Listener: std::fmt::Debug + Send + Sync + 'static;
    /// An accepted connection, as a `futures-io` stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Binds `addr` (`host:port`; port 0 picks a free port).
    fn bind(&self, addr: String) -> BoxFuture<'static, io::Result<Self::Listener>>;
    /// The address `listener` is bound to.
    fn local_addr(&self, listener: &Self::Listener) -> io::Result<SocketAddr>;
    /// The next connection on `listener` (with `TCP_NODELAY` set) and its peer.
    fn accept<'a>(
        &'a self,
        listener: &'a Self::Listener,
    ) -> BoxFuture<'a, io::Result<(Self::Stream, SocketAddr)>>;
    /// Completes on Ctrl-C (and SIGTERM where there is one); never completes
    /// when no handler can be installed.
    fn shutdown_signal(&self) -> BoxFuture<'static, ()>;
}

/// Stops a server: no new connections are accepted, open ones are closed with
/// 1001 (going away), and the serving future completes once they are gone or
/// the grace period has passed. Cloning gives another handle to the same server.
#[derive(Clone)]
pub struct ShutdownHandle {
    inner: Arc<ShutdownInner>,
}

struct ShutdownInner {
    trigger: Mutex<Option<oneshot::Sender<()>>>,
    signal: Shared<oneshot::Receiver<()>>,
    active: AtomicUsize,
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("triggered", &self.is_triggered())
            .field("active_connections", &self.active_connections())
            .finish()
    }
}

impl Default for ShutdownHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownHandle {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        let (tx, rx) = oneshot::channel();
        ShutdownHandle {
            inner: Arc::new(ShutdownInner {
                trigger: Mutex::new(Some(tx)),
                signal: rx.shared(),
                active: AtomicUsize::new(0),
            }),
        }
    }

    /// Starts the shutdown. Calling it again does nothing.
    pub fn shutdown(&self) {
        let sender = match self.inner.trigger.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(tx) = sender {
            let _ = tx.send(());
        }
    }

    /// True once [`shutdown`](Self::shutdown) was called.
    pub fn is_triggered(&self) -> bool {
        self.inner.signal.peek().is_some()
    }

    /// Completes when the shutdown starts.
    pub fn triggered(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let signal = self.inner.signal.clone();
        async move {
            let _ = signal.await;
        }
    }

    /// Connections currently being served.
    pub fn active_connections(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Counts a connection until the guard drops.
    pub(crate) fn track(&self) -> ActiveGuard {
        self.inner.active.fetch_add(1, Ordering::AcqRel);
        ActiveGuard {
            handle: self.clone(),
        }
    }

    /// Waits until no connection is served, or `grace` has passed.
    pub(crate) async fn drained<R: Runtime>(&self, rt: &R, grace: Duration) {
        let deadline = Instant::now() + grace;
        while self.active_connections() > 0 && Instant::now() < deadline {
            rt.sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Decrements the active-connection count on drop.
pub(crate) struct ActiveGuard {
    handle: ShutdownHandle,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.handle.inner.active.fetch_sub(1, Ordering::AcqRel);
    }
}
