//! The load and stalled-handshake tests of `wsauth-smol` and `wsauth-tokio`:
//! the server setup, a WebSocket client, the connection mix, the server child
//! process and the two test bodies. Each crate supplies a [`LoadRt`] (its
//! runtime, its `Server`).

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::{self, HeaderValue};
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use futures::channel::{mpsc, oneshot};
use futures::future::{self, BoxFuture, Either, FutureExt};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::pin::pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wsauth_core::{Authenticator, ClaimValue, Config, InlineStr, MintRequest, SecretRef};
use wsauth_gateway::reference;
use wsauth_gateway::{EchoApp, Gateway, Limits, Runtime};

// ---------------------------------------------------------------------------
// What each runtime supplies.

pub use crate::{Io, Running, Socket};

/// A multi-threaded runtime and the crate's `Server` on it.
pub trait LoadRt: Sync {
    type Rt: Runtime;
    /// The transport's runtime handle (timers).
    fn rt(&self) -> Self::Rt;
    /// Runs `f` on the runtime (several worker threads) to completion.
    fn block_on<F: Future>(&self, f: F) -> F::Output;
    /// Runs `f` as its own task; the returned future is its output.
    fn spawn<T: Send + 'static>(
        &self,
        f: BoxFuture<'static, T>,
    ) -> BoxFuture<'static, Result<T, String>>;
    /// Binds `127.0.0.1:0` with the crate's `Server` and runs it in the background.
    fn start(&self, gateway: Gateway) -> BoxFuture<'static, Running>;
    /// Opens a TCP connection.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Socket>>;
}

// ---------------------------------------------------------------------------
// Server setup and tokens.

pub const SECRET: &str = "wsauth-load-tests-secret-0d7a3c91e5b24f68a1c0e9d47b3f2a85";
const OTHER_SECRET: &str = "wsauth-load-tests-other-secret-a8e1f07c3d9b46e2b5f1c7d03e9a4b61";

/// The reference app's configuration with the test secret, and the load
/// tests' own limits: thousands of connections from one address, no attempt
/// rate limit, no per-peer cap, no idle timeout.
pub fn config() -> Config {
    load_limits(reference::default_config(SecretRef::Value(SECRET.into())))
}

/// `config` with the load tests' limits (see [`config`]).
pub fn load_limits(mut config: Config) -> Config {
    config.limits.rate_limit = None;
    let a = &mut config.limits.admission;
    a.max_connections_per_peer = 0;
    a.reserve_authenticated = 0;
    a.idle_timeout_secs = 0;
    config
}

fn authenticator(secret: &str) -> Authenticator {
    let config = load_limits(reference::default_config(SecretRef::Value(secret.into())));
    let secrets = config.resolve_secrets(|_| None).expect("secrets");
    Authenticator::from_config(&config, &secrets).expect("valid config")
}

/// The reference routes and demo directory, every accepted connection echoing.
pub fn gateway(limits: impl FnOnce(Limits) -> Limits) -> Gateway {
    let config = config();
    let secrets = config.resolve_secrets(|_| None).expect("secrets");
    let auth = Authenticator::from_config(&config, &secrets).expect("valid config");
    Gateway::new(
        auth,
        Arc::new(reference::demo_host()),
        Arc::new(EchoApp),
        limits(Limits::from_config(&config)),
    )
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Mints SimpleJWT-shaped access tokens, each with its own `jti`.
pub struct Minter {
    good: Authenticator,
    other: Authenticator,
    next: AtomicU64,
}

impl Minter {
    pub fn new() -> Self {
        Minter {
            good: authenticator(SECRET),
            other: authenticator(OTHER_SECRET),
            next: AtomicU64::new(1),
        }
    }

    fn mint(&self, with: &Authenticator, user: &str, iat: i64, lifetime: i64) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let jti = format!("{:016x}{:016x}", iat as u64, n);
        let token = with.tokens().mint(
            &MintRequest {
                user_id: ClaimValue::Str(InlineStr::new(user).expect("short id")),
                lifetime,
                jti: &jti,
                extra: &[],
            },
            iat,
        );
        assert!(!token.is_empty(), "minting a token");
        token
    }

    /// A valid token for `user`, good for an hour.
    pub fn valid(&self, user: &str) -> String {
        self.mint(&self.good, user, unix_now(), 3600)
    }

    /// A token for `user` signed with another key.
    pub fn bad_signature(&self, user: &str) -> String {
        self.mint(&self.other, user, unix_now(), 3600)
    }

    /// A token for `user` that expired a minute ago.
    pub fn expired(&self, user: &str) -> String {
        self.mint(&self.good, user, unix_now() - 3600, 3540)
    }
}

impl Default for Minter {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------
// The connection mix.

/// How a connection authenticates and what the server must do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Staff token in `?token=` on the staff route.
    StaffQuery,
    /// Staff token in `Authorization: Bearer` on the logs route (staff).
    StaffHeader,
    /// Staff token as the `bearer` subprotocol on the staff route.
    StaffSubprotocol,
    /// Customer token in the JWT cookie on their own receipt (owner lookup).
    OwnerCookie,
    /// Customer token in `?access=` on their own receipt.
    OwnerQueryAccess,
    /// A token signed with another key, on the staff route.
    BadSignature,
    /// An expired staff token, on the logs route.
    Expired,
    /// Not a JWT at all, on the staff route.
    Garbage,
    /// No credential on the logs route.
    NoToken,
    /// A valid customer token on the staff route.
    CustomerOnStaff,
    /// A valid staff token on the customer's receipt.
    StaffNotOwner,
}

/// What the server must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Accepted and kept open.
    Open,
    /// Accepted, then closed with this code.
    Close(u16),
}

pub const OPEN_KINDS: [Kind; 5] = [
    Kind::StaffQuery,
    Kind::StaffHeader,
    Kind::StaffSubprotocol,
    Kind::OwnerCookie,
    Kind::OwnerQueryAccess,
];
pub const UNAUTHENTICATED_KINDS: [Kind; 4] = [
    Kind::BadSignature,
    Kind::Expired,
    Kind::Garbage,
    Kind::NoToken,
];
pub const FORBIDDEN_KINDS: [Kind; 2] = [Kind::CustomerOnStaff, Kind::StaffNotOwner];

impl Kind {
    pub fn expect(self) -> Expect {
        match self {
            Kind::StaffQuery
            | Kind::StaffHeader
            | Kind::StaffSubprotocol
            | Kind::OwnerCookie
            | Kind::OwnerQueryAccess => Expect::Open,
            Kind::BadSignature | Kind::Expired | Kind::Garbage | Kind::NoToken => {
                Expect::Close(4401)
            }
            Kind::CustomerOnStaff | Kind::StaffNotOwner => Expect::Close(4403),
        }
    }

    /// The upgrade request for this kind.
    pub fn request(self, addr: SocketAddr, m: &Minter) -> http::Request<()> {
        let staff = reference::STAFF_USER_ID;
        let customer = reference::CUSTOMER_USER_ID;
        let receipt = format!("/ws/receipts/{}/", reference::CUSTOMER_RECEIPT);
        let (path, query, header, subprotocol, cookie): (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = match self {
            Kind::StaffQuery => (
                "/ws/admin/chat/".into(),
                Some(format!("token={}", m.valid(staff))),
                None,
                None,
                None,
            ),
            Kind::StaffHeader => ("/ws/logs/".into(), None, Some(m.valid(staff)), None, None),
            Kind::StaffSubprotocol => (
                "/ws/admin/chat/".into(),
                None,
                None,
                Some(m.valid(staff)),
                None,
            ),
            Kind::OwnerCookie => (receipt, None, None, None, Some(m.valid(customer))),
            Kind::OwnerQueryAccess => (
                receipt,
                Some(format!("access={}", m.valid(customer))),
                None,
                None,
                None,
            ),
            Kind::BadSignature => (
                "/ws/admin/chat/".into(),
                Some(format!("token={}", m.bad_signature(staff))),
                None,
                None,
                None,
            ),
            Kind::Expired => ("/ws/logs/".into(), None, Some(m.expired(staff)), None, None),
            Kind::Garbage => (
                "/ws/admin/chat/".into(),
                Some("token=not.a.jwt".into()),
                None,
                None,
                None,
            ),
            Kind::NoToken => ("/ws/logs/".into(), None, None, None, None),
            Kind::CustomerOnStaff => (
                "/ws/admin/chat/".into(),
                Some(format!("token={}", m.valid(customer))),
                None,
                None,
                None,
            ),
            Kind::StaffNotOwner => (
                receipt,
                Some(format!("token={}", m.valid(staff))),
                None,
                None,
                None,
            ),
        };
        let mut url = format!("ws://{addr}{path}");
        if let Some(q) = query {
            url.push('?');
            url.push_str(&q);
        }
        let mut req = url.into_client_request().expect("client request");
        let hv = |s: String| HeaderValue::from_str(&s).expect("header value");
        let h = req.headers_mut();
        if let Some(t) = header {
            h.insert(http::header::AUTHORIZATION, hv(format!("Bearer {t}")));
        }
        if let Some(t) = subprotocol {
            h.insert(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                hv(format!("bearer, {t}")),
            );
        }
        if let Some(t) = cookie {
            h.insert(
                http::header::COOKIE,
                hv(format!("theme=dark; {}={t}", reference::JWT_COOKIE)),
            );
        }
        req
    }
}

/// `open` kept-open connections plus `unauthenticated` (4401) and
/// `forbidden` (4403) ones, interleaved in a fixed pseudo-random order.
pub fn plan(open: usize, unauthenticated: usize, forbidden: usize) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = Vec::with_capacity(open + unauthenticated + forbidden);
    kinds.extend((0..open).map(|i| OPEN_KINDS[i % OPEN_KINDS.len()]));
    kinds.extend(
        (0..unauthenticated).map(|i| UNAUTHENTICATED_KINDS[i % UNAUTHENTICATED_KINDS.len()]),
    );
    kinds.extend((0..forbidden).map(|i| FORBIDDEN_KINDS[i % FORBIDDEN_KINDS.len()]));
    // Fisher-Yates with a fixed LCG: the same order on every run.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for i in (1..kinds.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = ((state >> 33) as usize) % (i + 1);
        kinds.swap(i, j);
    }
    kinds
}

// ---------------------------------------------------------------------------
// The client.

/// The client's WebSocket settings: small buffers (many connections per process).
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
}

/// `fut`'s output, or `None` after `limit`.
pub async fn within<R: Runtime, F: Future>(rt: &R, limit: Duration, fut: F) -> Option<F::Output> {
    let fut = pin!(fut);
    match future::select(fut, rt.sleep(limit)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// Time one client step (connect, upgrade, one read) may take.
const STEP: Duration = Duration::from_secs(20);

/// The next data or close message (pings and pongs skipped), or why there is none.
pub async fn next_message<R: Runtime>(
    rt: &R,
    ws: &mut WebSocketStream<Socket>,
) -> Result<Message, String> {
    loop {
        match within(rt, STEP, ws.next()).await {
            None => return Err("no message within the time limit".into()),
            Some(None) => return Err("connection ended without a close frame".into()),
            Some(Some(Err(e))) => return Err(format!("read failed: {e}")),
            Some(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Some(Some(Ok(m))) => return Ok(m),
        }
    }
}

/// Reads until the server ends the connection (bounded).
pub async fn drain<R: Runtime>(rt: &R, ws: &mut WebSocketStream<Socket>) {
    let _ = within(rt, Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Opens a connection of `kind`. `Ok(Some(ws))` when it was accepted and
/// must stay open; `Ok(None)` when it was closed with the expected code.
pub async fn open_one<L: LoadRt>(
    l: &L,
    addr: SocketAddr,
    kind: Kind,
    minter: &Minter,
) -> Result<Option<WebSocketStream<Socket>>, String> {
    let rt = l.rt();
    let sock = match within(&rt, STEP, l.connect(addr)).await {
        None => return Err("tcp connect timed out".into()),
        Some(Err(e)) => return Err(format!("tcp connect failed: {e}")),
        Some(Ok(s)) => s,
    };
    let req = kind.request(addr, minter);
    let (mut ws, resp) = match within(
        &rt,
        STEP,
        async_tungstenite::client_async_with_config(req, sock, Some(client_config())),
    )
    .await
    {
        None => return Err("upgrade timed out".into()),
        Some(Err(WsError::Http(r))) => return Err(format!("upgrade refused: HTTP {}", r.status())),
        Some(Err(e)) => return Err(format!("upgrade failed: {e}")),
        Some(Ok(x)) => x,
    };
    let echoed = resp
        .headers()
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let offered = kind == Kind::StaffSubprotocol;
    if offered && echoed.as_deref() != Some("bearer") {
        return Err(format!("subprotocol echoed: {echoed:?}"));
    }
    if !offered && echoed.is_some() {
        return Err(format!("unexpected subprotocol: {echoed:?}"));
    }
    match kind.expect() {
        Expect::Open => Ok(Some(ws)),
        Expect::Close(code) => {
            let got = next_message(&rt, &mut ws).await?;
            drain(&rt, &mut ws).await;
            match got {
                Message::Close(Some(f)) if u16::from(f.code) == code => Ok(None),
                Message::Close(Some(f)) => Err(format!(
                    "closed with {} instead of {code}",
                    u16::from(f.code)
                )),
                other => Err(format!("expected close {code}, got {other:?}")),
            }
        }
    }
}

/// Checks an open connection with an echo round trip, then closes it (1000).
pub async fn echo_and_close<R: Runtime>(
    rt: &R,
    ws: &mut WebSocketStream<Socket>,
    payload: String,
) -> Result<(), String> {
    match within(rt, STEP, ws.send(Message::text(payload.clone()))).await {
        None => return Err("echo send timed out".into()),
        Some(Err(e)) => return Err(format!("echo send failed: {e}")),
        Some(Ok(())) => {}
    }
    match next_message(rt, ws).await? {
        Message::Text(t) if t.as_str() == payload => {}
        Message::Close(Some(f)) => {
            return Err(format!("closed with {} before the echo", u16::from(f.code)))
        }
        other => return Err(format!("echo mismatch: {other:?}")),
    }
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    };
    match within(rt, STEP, ws.close(Some(frame))).await {
        None => return Err("close send timed out".into()),
        Some(Err(e)) => return Err(format!("close send failed: {e}")),
        Some(Ok(())) => {}
    }
    // The server answers the close with a close of its own, then ends the stream.
    let mut replied = false;
    let ended = within(rt, STEP, async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(Some(f))) if f.code == CloseCode::Normal => replied = true,
                Ok(Message::Close(f)) => return Err(format!("close answered with {f:?}")),
                Ok(_) => {}
                Err(WsError::ConnectionClosed) => break,
                Err(e) => return Err(format!("closing failed: {e}")),
            }
        }
        Ok(())
    })
    .await;
    match ended {
        None => Err("the server did not end the connection after the close".into()),
        Some(Err(e)) => Err(e),
        Some(Ok(())) if !replied => Err("no close reply".into()),
        Some(Ok(())) => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Limits of the test process.

/// Raises the soft open-file limit to at least `want` (up to the hard limit);
/// returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
    if soft >= want {
        return soft;
    }
    let target = want.min(hard);
    rlimit::setrlimit(rlimit::Resource::NOFILE, target, hard).expect("setrlimit");
    target
}

/// Resident set size of process `pid`, KiB (Linux `/proc`; `None` elsewhere).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Number of kept-open connections: `WSAUTH_LOAD_N`, else 2,000.
pub fn load_n() -> usize {
    match std::env::var("WSAUTH_LOAD_N") {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .unwrap_or_else(|| panic!("WSAUTH_LOAD_N must be a positive integer, got {v:?}")),
        Err(_) => 2_000,
    }
}

// ---------------------------------------------------------------------------
// The server in its own process.
//
// The load test runs the server in a child process (this same test binary,
// running the ignored `load_server_process` test with `WSAUTH_LOAD_CHILD` set),
// so that client and server each need only one descriptor per connection and
// the server's memory can be read on its own. The child prints
// `WSAUTH-LOAD addr=…`, answers `count` with `WSAUTH-LOAD active=…`, and
// shuts down on `quit` or when its stdin closes.

pub const CHILD_ENV: &str = "WSAUTH_LOAD_CHILD";
const MARK: &str = "WSAUTH-LOAD ";

/// The child's side: serve until told to stop. Returns false when not started as a child.
pub fn serve_as_child<L: LoadRt>(l: &L, max_connections: u64) -> bool {
    if std::env::var_os(CHILD_ENV).is_none() {
        return false;
    }
    raise_nofile(max_connections + 256);
    l.block_on(async {
        let running = l.start(gateway(|lim| lim)).await;
        println!("{MARK}addr={}", running.addr);
        let _ = io::stdout().flush();
        let shutdown = running.shutdown.clone();
        std::thread::spawn(move || {
            let stdin = io::stdin();
            for line in stdin.lock().lines() {
                match line.as_deref().map(str::trim) {
                    Ok("count") => {
                        println!("{MARK}active={}", shutdown.active_connections());
                        let _ = io::stdout().flush();
                    }
                    Ok("quit") | Err(_) => break,
                    Ok(_) => {}
                }
            }
            shutdown.shutdown();
        });
        let _ = running.done.await;
    });
    true
}

/// The parent's handle on the server child process; kills it when dropped.
pub struct ServerChild {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    pub addr: SocketAddr,
}

impl ServerChild {
    /// Starts the child (`test_name` is the ignored role test) and waits for its address.
    pub fn start(test_name: &str, env: &[(&str, &str)]) -> ServerChild {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = Command::new(exe);
        cmd.args([
            test_name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, "1")
        .env_remove("WSAUTH_LOAD_N")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the server process");
        let stdout = child.stdout.take().expect("child stdout");
        let stdin = child.stdin.take();
        let (tx, mut lines) = mpsc::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may have printed `test name ... ` on the same line.
                if let Some(at) = line.find(MARK) {
                    let rest = &line[at + MARK.len()..];
                    if tx.unbounded_send(rest.to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        let started = Instant::now();
        let addr = loop {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server process printed no address within 30 s"
            );
            match lines.try_recv() {
                Ok(l) => {
                    if let Some(a) = l.strip_prefix("addr=") {
                        break a.parse().expect("server address");
                    }
                }
                Err(mpsc::TryRecvError::Closed) => {
                    panic!("the server process ended before printing its address")
                }
                Err(mpsc::TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        ServerChild {
            child,
            stdin,
            lines,
            addr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's count of connections being served.
    pub async fn active<R: Runtime>(&mut self, rt: &R) -> usize {
        let stdin = self.stdin.as_mut().expect("child stdin");
        stdin
            .write_all(b"count\n")
            .and_then(|()| stdin.flush())
            .expect("ask the server process");
        loop {
            match within(rt, Duration::from_secs(10), self.lines.next()).await {
                Some(Some(l)) => {
                    if let Some(n) = l.strip_prefix("active=") {
                        return n.parse().expect("active count");
                    }
                }
                Some(None) => panic!("the server process ended"),
                None => panic!("the server process did not answer within 10 s"),
            }
        }
    }

    /// Polls until the server serves exactly `want` connections (bounded by
    /// `limit`); returns the last count seen.
    pub async fn settle<R: Runtime>(&mut self, rt: &R, want: usize, limit: Duration) -> usize {
        let started = Instant::now();
        loop {
            let n = self.active(rt).await;
            if n == want || started.elapsed() >= limit {
                return n;
            }
            rt.sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks the server to shut down and waits for it to exit (bounded).
    pub fn quit(mut self) -> bool {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"quit\n");
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The load test.

/// Failures by category, with the first few connection indices.
#[derive(Default)]
struct Failures {
    by: BTreeMap<String, (usize, Vec<usize>)>,
}

impl Failures {
    fn add(&mut self, what: String, index: usize) {
        let e = self.by.entry(what).or_default();
        e.0 += 1;
        if e.1.len() < 5 {
            e.1.push(index);
        }
    }

    fn merge(&mut self, other: Failures) {
        for (k, (n, idx)) in other.by {
            let e = self.by.entry(k).or_default();
            e.0 += n;
            e.1.extend(idx.into_iter().take(5usize.saturating_sub(e.1.len())));
        }
    }

    fn total(&self) -> usize {
        self.by.values().map(|v| v.0).sum()
    }

    fn report(&self) -> String {
        self.by
            .iter()
            .map(|(k, (n, idx))| format!("  {n} × {k} (e.g. connections {idx:?})"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What one client task did.
#[derive(Default)]
struct TaskReport {
    opened: usize,
    closed_as_expected: BTreeMap<u16, usize>,
    echoed: usize,
    failures: Failures,
}

/// `n` authenticated connections held open at once (plus a tenth as many
/// rejected with 4401 and with 4403, interleaved), each then checked with an
/// echo and closed; nothing lost or misclassified. `role` is the name of the
/// crate's ignored server-process test.
pub fn load_test<L: LoadRt + Send + Sync + Clone + 'static>(l: &L, role: &str) {
    let n = load_n();
    let unauthenticated = (n / 10).max(40);
    let forbidden = (n / 10).max(20);
    let total = n + unauthenticated + forbidden;
    let tasks = 16usize;
    let soft = raise_nofile(total as u64 + 256);
    assert!(
        soft >= n as u64 + 64,
        "the open-file limit ({soft}) is too low for {n} connections"
    );
    let budget = Duration::from_secs(60).max(Duration::from_millis(n as u64 * 8));
    let started = Instant::now();

    let mut server = ServerChild::start(role, &[("SMOL_THREADS", "2")]);
    let addr = server.addr;
    let rss_before = rss_kib(server.pid());
    let minter = Arc::new(Minter::new());
    let kinds = Arc::new(plan(n, unauthenticated, forbidden));
    let rt = l.rt();

    let outcome = l.block_on(within(&rt, budget, async {
        // Phase 1: every task opens its share and holds the accepted ones.
        let (opened_tx, mut opened_rx) = mpsc::unbounded::<usize>();
        let mut go = Vec::new();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let (go_tx, go_rx) = oneshot::channel::<()>();
            go.push(go_tx);
            let l2 = l.clone();
            let kinds = kinds.clone();
            let minter = minter.clone();
            let opened_tx = opened_tx.clone();
            handles.push(
                l.spawn(
                    async move {
                        let rt = l2.rt();
                        let mut report = TaskReport::default();
                        let mut held = Vec::new();
                        for i in (t..kinds.len()).step_by(tasks) {
                            let kind = kinds[i];
                            match open_one(&l2, addr, kind, &minter).await {
                                Ok(Some(ws)) => {
                                    report.opened += 1;
                                    held.push((i, kind, ws));
                                }
                                Ok(None) => {
                                    if let Expect::Close(c) = kind.expect() {
                                        *report.closed_as_expected.entry(c).or_default() += 1;
                                    }
                                }
                                Err(e) => report.failures.add(format!("{kind:?}: {e}"), i),
                            }
                        }
                        let _ = opened_tx.unbounded_send(held.len());
                        // Phase 2, once everyone holds their connections.
                        let _ = go_rx.await;
                        for (i, kind, mut ws) in held {
                            let payload = format!("load {i} {kind:?}");
                            match echo_and_close(&rt, &mut ws, payload).await {
                                Ok(()) => report.echoed += 1,
                                Err(e) => report.failures.add(format!("{kind:?} (held): {e}"), i),
                            }
                        }
                        report
                    }
                    .boxed(),
                ),
            );
        }
        drop(opened_tx);
        let mut held_total = 0usize;
        for _ in 0..tasks {
            held_total += opened_rx.next().await.expect("every task reports");
        }
        let opening = started.elapsed();
        // Rejected connections are gone; the accepted ones are all still served.
        let active_held = server
            .settle(&rt, held_total, Duration::from_secs(10))
            .await;
        let rss_held = rss_kib(server.pid());
        for g in go {
            let _ = g.send(());
        }
        let mut report = TaskReport::default();
        for h in handles {
            match h.await {
                Ok(r) => {
                    report.opened += r.opened;
                    report.echoed += r.echoed;
                    for (c, k) in r.closed_as_expected {
                        *report.closed_as_expected.entry(c).or_default() += k;
                    }
                    report.failures.merge(r.failures);
                }
                Err(e) => report.failures.add(format!("client task failed: {e}"), 0),
            }
        }
        let active_after = server.settle(&rt, 0, Duration::from_secs(10)).await;
        (
            report,
            held_total,
            active_held,
            active_after,
            opening,
            rss_held,
        )
    }));
    let Some((report, held_total, active_held, active_after, opening, rss_held)) = outcome else {
        panic!("the load test did not finish within {budget:?}");
    };
    let elapsed = started.elapsed();
    let per_conn = match (rss_before, rss_held) {
        (Some(a), Some(b)) if held_total > 0 => {
            Some(b.saturating_sub(a) as f64 * 1024.0 / held_total as f64)
        }
        _ => None,
    };
    eprintln!(
        "load: {n} held open + {unauthenticated} unauthenticated + {forbidden} forbidden; \
         opened in {opening:.2?}, total {elapsed:.2?}; server RSS {rss_before:?} → {rss_held:?} KiB \
         ({} bytes per held connection)",
        per_conn.map_or("n/a".to_string(), |b| format!("{b:.0}"))
    );
    assert!(
        report.failures.total() == 0,
        "{} of {total} connections failed:\n{}",
        report.failures.total(),
        report.failures.report()
    );
    assert_eq!(report.opened, n, "connections accepted and held");
    assert_eq!(held_total, n, "connections held at once");
    assert_eq!(
        active_held, n,
        "the server serves every held connection at once"
    );
    assert_eq!(
        report.echoed, n,
        "held connections that echoed and closed cleanly"
    );
    assert_eq!(
        report.closed_as_expected.get(&4401).copied().unwrap_or(0),
        unauthenticated,
        "connections closed with 4401"
    );
    assert_eq!(
        report.closed_as_expected.get(&4403).copied().unwrap_or(0),
        forbidden,
        "connections closed with 4403"
    );
    assert_eq!(active_after, 0, "the server let go of every connection");
    if let Some(b) = per_conn {
        assert!(
            b < 256.0 * 1024.0,
            "server memory per held connection: {b:.0} bytes"
        );
    }
    assert!(server.quit(), "the server process shuts down cleanly");
}

// ---------------------------------------------------------------------------
// The stalled-handshake test.

/// How a stalled client misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// Connects and sends nothing.
    Silent,
    /// Sends half a request head, then nothing.
    HalfHead,
    /// Sends a request head one byte at a time, never finishing it.
    Trickle,
}

/// Waits until the server drops `sock` (EOF or reset); returns when, or `Err`
/// if the server answered with something else. `trickle` keeps writing one
/// byte every 50 ms meanwhile.
async fn until_dropped<R: Runtime>(
    rt: &R,
    sock: Socket,
    trickle: bool,
    limit: Duration,
) -> Result<Instant, String> {
    let (mut rd, mut wr) = sock.split();
    let reader = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => break,
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(_) => break,
            }
        }
        (Instant::now(), got)
    };
    let writer = async {
        if !trickle {
            return future::pending::<()>().await;
        }
        let filler = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        for b in filler.iter().cycle().take(10_000) {
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
            rt.sleep(Duration::from_millis(50)).await;
        }
        future::pending::<()>().await
    };
    let reader = pin!(reader);
    let writer = pin!(writer);
    match within(rt, limit, future::select(reader, writer)).await {
        None => Err(format!("still connected after {limit:?}")),
        Some(Either::Right(_)) => unreachable!("the writer never completes"),
        Some(Either::Left(((at, got), _))) => {
            // An HTTP 408 before closing would also be acceptable; anything else is not.
            if got.is_empty() || got.starts_with(b"HTTP/1.1 408") {
                Ok(at)
            } else {
                Err(format!(
                    "the server answered a stalled client: {:?}",
                    String::from_utf8_lossy(&got[..got.len().min(80)])
                ))
            }
        }
    }
}

/// Clients that open TCP and stall (nothing, half a head, a head one byte at a
/// time) are dropped once the handshake timeout passes — not before — while
/// the server keeps completing other clients' handshakes at normal speed.
pub fn stalled_test<L: LoadRt + Send + Sync + Clone + 'static>(l: &L) {
    let timeout = Duration::from_millis(2500);
    let per_kind = 50usize;
    let good = 120usize;
    raise_nofile(((3 * per_kind + good) * 2 + 256) as u64);
    let rt = l.rt();
    let outcome = l.block_on(within(&rt, Duration::from_secs(45), async {
        let running = l
            .start(gateway(|lim| lim.with_handshake_timeout(timeout)))
            .await;
        let addr = running.addr;
        let minter = Arc::new(Minter::new());

        // The stalled clients.
        let mut stalled = Vec::new();
        for i in 0..3 * per_kind {
            let stall = [Stall::Silent, Stall::HalfHead, Stall::Trickle][i % 3];
            let mut sock = l.connect(addr).await.expect("tcp connect");
            let opened = Instant::now();
            match stall {
                Stall::Silent => {}
                Stall::HalfHead => sock
                    .write_all(
                        b"GET /ws/admin/chat/?token=abc HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: we",
                    )
                    .await
                    .expect("half a request head"),
                Stall::Trickle => sock
                    .write_all(b"GET /ws/chat/lobby/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    .await
                    .expect("a request line"),
            }
            let l2 = l.clone();
            stalled.push((
                stall,
                opened,
                l.spawn(
                    async move {
                        let rt = l2.rt();
                        until_dropped(&rt, sock, stall == Stall::Trickle, Duration::from_secs(15))
                            .await
                    }
                    .boxed(),
                ),
            ));
        }
        let stalled_at = Instant::now();
        // Give the server a moment to accept them all.
        let mut active = 0;
        for _ in 0..100 {
            active = running.shutdown.active_connections();
            if active >= 3 * per_kind {
                break;
            }
            rt.sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            active,
            3 * per_kind,
            "the server holds every stalled client"
        );

        // Meanwhile, other clients complete authenticated handshakes and echoes.
        let mut workers = Vec::new();
        let per_worker = good / 4;
        for w in 0..4 {
            let l2 = l.clone();
            let minter = minter.clone();
            workers.push(
                l.spawn(
                    async move {
                        let rt = l2.rt();
                        let mut slowest = Duration::ZERO;
                        for i in 0..per_worker {
                            let kind = OPEN_KINDS[(w + i) % OPEN_KINDS.len()];
                            let t0 = Instant::now();
                            let mut ws = open_one(&l2, addr, kind, &minter)
                                .await?
                                .ok_or_else(|| "closed instead of held".to_string())?;
                            echo_and_close(&rt, &mut ws, format!("stalled-test {w} {i}")).await?;
                            slowest = slowest.max(t0.elapsed());
                        }
                        Ok::<_, String>(slowest)
                    }
                    .boxed(),
                ),
            );
        }
        let mut slowest = Duration::ZERO;
        for w in workers {
            let s = w
                .await
                .expect("worker task")
                .expect("a good client was served");
            slowest = slowest.max(s);
        }
        let served_in = stalled_at.elapsed();

        let mut dropped = Vec::new();
        for (stall, opened, h) in stalled {
            let at = h.await.expect("stalled client task");
            dropped.push((stall, at.map(|at| at.duration_since(opened))));
        }
        // Dropped sockets finish their cleanup in their own tasks: give a
        // loaded machine a moment before counting what the server still holds.
        let settle = std::time::Instant::now() + Duration::from_secs(3);
        let after = loop {
            let n = running.shutdown.active_connections();
            if n == 0 || std::time::Instant::now() >= settle {
                break n;
            }
            rt.sleep(Duration::from_millis(20)).await;
        };
        running.shutdown.shutdown();
        (served_in, slowest, dropped, after)
    }));
    let Some((served_in, slowest, dropped, after)) = outcome else {
        panic!("the stalled-handshake test did not finish within 45 s");
    };
    eprintln!(
        "stalled: {good} good clients served in {served_in:.2?} (slowest {slowest:.2?}) \
         with {} stalled clients held",
        3 * per_kind
    );
    assert!(
        served_in < timeout,
        "the good clients were served before any stalled one was dropped ({served_in:?})"
    );
    for (stall, d) in &dropped {
        let d = d
            .as_ref()
            .unwrap_or_else(|e| panic!("{stall:?} client: {e}"));
        assert!(
            *d >= timeout - Duration::from_millis(50),
            "{stall:?} client dropped after {d:?}, before the {timeout:?} timeout"
        );
        assert!(
            *d < timeout + Duration::from_secs(5),
            "{stall:?} client dropped only after {d:?}"
        );
    }
    assert_eq!(after, 0, "the server holds no connection afterwards");
}
