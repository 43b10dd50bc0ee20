//! `wsload`: a WebSocket load generator for comparing wsauth with other
//! servers on the same machine, and a server to point it at.
//!
//! * `wsload serve --runtime smol|tokio` — the reference app's gateway (the
//!   routes, demo directory and application of `wsauth serve`) on the chosen
//!   runtime; prints one JSON line with its address, pid and a staff and a
//!   customer token.
//! * `wsload bare` — the ceiling: a bare tokio-tungstenite server that
//!   accepts every WebSocket upgrade (any path) and does nothing else but
//!   answer the client's close; prints one JSON line with its address and pid.
//! * `wsload run --url URL --expect open|CODE` — many concurrent clients, each
//!   repeating connect → upgrade → close for a fixed time; prints one JSON line
//!   with the completed cycles per second. `--expect open`: the client closes
//!   (1000) and the server must answer 1000; `--expect 4403`: the server must
//!   close with that code. Anything else counts as a failure, by kind.
//!   With `--mix-url URL --mix-expect CODE` (repeatable, paired) each client
//!   takes the targets in turn, one per cycle, so every target gets the same
//!   share of attempts; the JSON line then also counts cycles per target.
//! * `wsload echo --url URL --connections C --messages N` — opens C
//!   connections (the server must accept and echo), sends N text messages on
//!   each, one at a time, and prints one JSON line with the per-message
//!   round-trip percentiles.
//! * `wsload hold --url URL --count N` — opens N connections and keeps them
//!   open until `--release-file` appears, then closes each (1000); prints a
//!   JSON line when they are open and another when they are closed.
//!
//! Targets must be on this machine (a loopback address). Every loop is bounded
//! in time: each network step has a time limit and each command a deadline.

use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::{self, HeaderName, HeaderValue};
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};
use futures::StreamExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use wsauth_core::{ClaimValue, InlineStr, MintRequest, SecretRef, TokenVerifier};
use wsauth_smol::reference::{self, ReferenceApp};
use wsauth_smol::Gateway;

/// Time one network step (connect, upgrade, one read, one write) may take.
const STEP: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "wsload",
    version,
    about = "WebSocket load generator (loopback targets only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the reference app's gateway on smol or tokio.
    Serve(ServeArgs),
    /// A bare tokio-tungstenite server: accepts every upgrade, nothing else.
    Bare(BareArgs),
    /// Repeat connect → upgrade → close from many clients for a fixed time.
    Run(RunArgs),
    /// Open many connections and hold them until released.
    Hold(HoldArgs),
    /// Message round trips on open connections to an echoing server.
    Echo(EchoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RuntimeKind {
    Smol,
    Tokio,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The async runtime.
    #[arg(long, value_enum)]
    runtime: RuntimeKind,
    /// Address to listen on (loopback; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Worker threads (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 3600)]
    max_secs: u64,
}

#[derive(Debug, Args)]
struct BareArgs {
    /// Address to listen on (loopback; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Worker threads (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 3600)]
    max_secs: u64,
}

#[derive(Debug, Clone, Args)]
struct Target {
    /// ws:// URL on this machine, query string included.
    #[arg(long)]
    url: String,
    /// Extra request header `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Origin header to send.
    #[arg(long)]
    origin: Option<String>,
    /// Subprotocol to offer (repeatable, in order).
    #[arg(long = "subprotocol")]
    subprotocols: Vec<String>,
    /// Client worker threads (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// `open` (accepted; the client closes with 1000) or the close code the server must send.
    #[arg(long, default_value = "open")]
    expect: String,
    /// Also report this process's CPU time per measured cycle (Linux `/proc`).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Another target taken in turn with `--url` (repeatable; same headers).
    #[arg(long = "mix-url")]
    mix_urls: Vec<String>,
    /// What each `--mix-url` must see, in the same order: `open` or a close code.
    #[arg(long = "mix-expect")]
    mix_expects: Vec<String>,
}

#[derive(Debug, Args)]
struct EchoArgs {
    #[command(flatten)]
    target: Target,
    /// Connections, all open at once.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Messages sent on each connection, one at a time.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Bytes per message (text).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Round trips per connection left out of the figures (warm-up).
    #[arg(long, default_value_t = 10)]
    skip: usize,
}

#[derive(Debug, Args)]
struct HoldArgs {
    #[command(flatten)]
    target: Target,
    /// Connections to open and hold.
    #[arg(long)]
    count: usize,
    /// Connections opened at a time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Created once every connection is open.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Close the connections once this file exists.
    #[arg(long)]
    release_file: Option<PathBuf>,
    /// Close the connections after this many seconds in any case.
    #[arg(long, default_value_t = 600)]
    max_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve(a),
        Command::Bare(a) => bare(a),
        Command::Run(a) => run(a),
        Command::Hold(a) => hold(a),
        Command::Echo(a) => echo(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsload: {e}");
            ExitCode::from(2)
        }
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Raises the soft open-file limit to the hard limit.
fn raise_nofile() {
    if let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        if soft < hard {
            let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard);
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// serve

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| format!("random generator: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn mint(tokens: &TokenVerifier, user: &str) -> Result<String, String> {
    let jti = random_hex(16)?;
    let id = InlineStr::new(user).ok_or("user id too long")?;
    let token = tokens.mint(
        &MintRequest {
            user_id: ClaimValue::Str(id),
            lifetime: 6 * 3600,
            jti: &jti,
            extra: &[],
        },
        unix_now(),
    );
    if token.is_empty() {
        return Err("cannot mint a token".into());
    }
    Ok(token)
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    if !listen.ip().is_loopback() {
        return Err(format!("--listen {listen}: only loopback addresses"));
    }
    raise_nofile();
    let threads = args.threads.unwrap_or_else(cpus).max(1);
    let secret = match std::env::var("WSAUTH_SECRET") {
        Ok(s) if !s.is_empty() => s,
        _ => random_hex(32)?,
    };
    // The load generator sets its own limits: every connection comes from
    // one address, far beyond the default per-peer cap and attempt rate.
    let mut config = reference::default_config(SecretRef::Value(secret));
    config.limits.rate_limit = None;
    config.limits.admission.max_connections_per_peer = 0;
    config.limits.admission.reserve_authenticated = 0;
    config.limits.admission.idle_timeout_secs = 0;
    let host = Arc::new(reference::demo_host());
    let max = Duration::from_secs(args.max_secs);
    let announce = move |gateway: &Gateway, addr: SocketAddr| -> Result<(), String> {
        let tokens = gateway.authenticator().tokens();
        let line = json!({
            "listen": format!("ws://{addr}"),
            "pid": std::process::id(),
            "runtime": match args.runtime { RuntimeKind::Smol => "smol", RuntimeKind::Tokio => "tokio" },
            "threads": threads,
            "staff_token": mint(tokens, reference::STAFF_USER_ID)?,
            "customer_token": mint(tokens, reference::CUSTOMER_USER_ID)?,
        });
        println!("{line}");
        Ok(())
    };
    match args.runtime {
        RuntimeKind::Smol => {
            // smol's global executor reads its thread count once, on first use.
            std::env::set_var("SMOL_THREADS", threads.to_string());
            smol::block_on(async move {
                let app = Arc::new(ReferenceApp::new(wsauth_smol::SmolRuntime));
                let gateway =
                    Gateway::from_config(&config, host, app).map_err(|e| format!("config: {e}"))?;
                let server = wsauth_smol::Server::bind(listen, gateway.clone())
                    .await
                    .map_err(|e| format!("listen on {listen}: {e}"))?;
                let addr = server.local_addr().map_err(|e| e.to_string())?;
                announce(&gateway, addr)?;
                let stop = server.shutdown_handle();
                smol::spawn(async move {
                    smol::Timer::after(max).await;
                    stop.shutdown();
                })
                .detach();
                server.run_until_signal().await;
                Ok(())
            })
        }
        RuntimeKind::Tokio => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?;
            rt.block_on(async move {
                let app = Arc::new(ReferenceApp::new(wsauth_tokio::TokioRuntime));
                let gateway =
                    Gateway::from_config(&config, host, app).map_err(|e| format!("config: {e}"))?;
                let server = wsauth_tokio::Server::bind(listen, gateway.clone())
                    .await
                    .map_err(|e| format!("listen on {listen}: {e}"))?;
                let addr = server.local_addr().map_err(|e| e.to_string())?;
                announce(&gateway, addr)?;
                let stop = server.shutdown_handle();
                tokio::spawn(async move {
                    tokio::time::sleep(max).await;
                    stop.shutdown();
                });
                server.run_until_signal().await;
                Ok(())
            })
        }
    }
}

// ---------------------------------------------------------------------------
// bare

/// The ceiling the gateway is measured against: tokio-tungstenite's own
/// accept on a multi-threaded tokio runtime (the accept loop a task on a
/// worker, as the gateway's), with what the gateway sets
/// below the WebSocket (`TCP_NODELAY`, a 4 KiB read buffer, no write
/// buffering: tungstenite's defaults zero-fill 128 KiB per connection, which
/// would make the ceiling lower). No limit, no check, no routing: every
/// upgrade is accepted, every frame read and dropped, the client's close
/// answered (by tungstenite).
fn bare_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

fn bare(args: BareArgs) -> Result<(), String> {
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    if !listen.ip().is_loopback() {
        return Err(format!("--listen {listen}: only loopback addresses"));
    }
    raise_nofile();
    let threads = args.threads.unwrap_or_else(cpus).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let max = Duration::from_secs(args.max_secs);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let line = json!({
            "listen": format!("ws://{addr}"),
            "pid": std::process::id(),
            "runtime": "tokio",
            "threads": threads,
        });
        println!("{line}");
        // The accept loop is a task on a worker, as the gateway's is
        // (`Server::run`): connections are spawned next to the workers that
        // serve them, not from the thread blocked in `block_on`.
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    // Out of descriptors or a reset before accept: try again shortly.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(async move {
                    if let Ok(mut ws) =
                        tokio_tungstenite::accept_async_with_config(tcp, Some(bare_config())).await
                    {
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                });
            }
        });
        tokio::time::sleep(max).await;
        accepting.abort();
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// The client.

/// A target resolved once: address, URL and headers.
struct Prepared {
    addr: SocketAddr,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Prepared {
    fn new(t: &Target) -> Result<Prepared, String> {
        let req = t
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("--url: {e}"))?;
        let uri = req.uri();
        let host = uri.host().ok_or("--url has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("--url host {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("--url host {host} has no address"))?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "--url {host}: only targets on this machine (loopback)"
            ));
        }
        let mut headers = Vec::new();
        for h in &t.headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("--header {h:?}: expected `Name: value`"))?;
            headers.push((
                HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|e| format!("--header {name}: {e}"))?,
                HeaderValue::from_str(value.trim()).map_err(|e| format!("--header {name}: {e}"))?,
            ));
        }
        if let Some(o) = &t.origin {
            headers.push((
                http::header::ORIGIN,
                HeaderValue::from_str(o).map_err(|e| format!("--origin: {e}"))?,
            ));
        }
        if !t.subprotocols.is_empty() {
            headers.push((
                http::header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_str(&t.subprotocols.join(", "))
                    .map_err(|e| format!("--subprotocol: {e}"))?,
            ));
        }
        Ok(Prepared {
            addr,
            url: t.url.clone(),
            headers,
        })
    }

    fn request(&self) -> Result<http::Request<()>, Fail> {
        let mut req = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|_| Fail::new("request"))?;
        let h = req.headers_mut();
        for (n, v) in &self.headers {
            h.insert(n.clone(), v.clone());
        }
        Ok(req)
    }
}

type Ws = WebSocketStream<TokioAdapter<TcpStream>>;

/// Why a cycle failed (a short, fixed description).
#[derive(Debug)]
struct Fail(String);

impl Fail {
    fn new(s: impl Into<String>) -> Fail {
        Fail(s.into())
    }
}

async fn step<F: Future>(what: &str, f: F) -> Result<F::Output, Fail> {
    tokio::time::timeout(STEP, f)
        .await
        .map_err(|_| Fail::new(format!("{what}: timed out")))
}

fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
}

/// Connects and upgrades.
async fn open(p: &Prepared) -> Result<Ws, Fail> {
    let tcp = step("connect", TcpStream::connect(p.addr))
        .await?
        .map_err(|e| Fail::new(format!("connect: {}", e.kind())))?;
    let _ = tcp.set_nodelay(true);
    let req = p.request()?;
    match step(
        "upgrade",
        async_tungstenite::client_async_with_config(
            req,
            TokioAdapter::new(tcp),
            Some(client_config()),
        ),
    )
    .await?
    {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(r)) => Err(Fail::new(format!(
            "upgrade refused: HTTP {}",
            r.status().as_u16()
        ))),
        Err(e) => Err(Fail::new(format!("upgrade: {}", error_kind(&e)))),
    }
}

fn error_kind(e: &WsError) -> String {
    match e {
        WsError::Io(io) => format!("io {}", io.kind()),
        WsError::Protocol(p) => format!("protocol {p}"),
        other => other.to_string(),
    }
}

/// Closes with 1000 and waits for the server's 1000 and the end of the stream.
async fn close_clean(ws: &mut Ws) -> Result<(), Fail> {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    step("close", ws.close(Some(frame)))
        .await?
        .map_err(|e| Fail::new(format!("close: {}", error_kind(&e))))?;
    let mut answered = false;
    step("close reply", async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(Some(f))) if f.code == CloseCode::Normal => answered = true,
                Ok(Message::Close(Some(f))) => {
                    return Err(Fail::new(format!("closed {}", u16::from(f.code))))
                }
                Ok(Message::Close(None)) => return Err(Fail::new("closed without a code")),
                Ok(_) => {}
                Err(WsError::ConnectionClosed) => break,
                Err(e) => return Err(Fail::new(format!("closing: {}", error_kind(&e)))),
            }
        }
        Ok(())
    })
    .await??;
    if answered {
        Ok(())
    } else {
        Err(Fail::new("no close reply"))
    }
}

/// Waits for the server's close with `code`, then the end of the stream.
async fn closed_with(ws: &mut Ws, code: u16) -> Result<(), Fail> {
    let first = step("read", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => return other,
            }
        }
    })
    .await?;
    match first {
        Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) == code => {}
        Some(Ok(Message::Close(Some(f)))) => {
            return Err(Fail::new(format!("closed {}", u16::from(f.code))))
        }
        Some(Ok(Message::Close(None))) => return Err(Fail::new("closed without a code")),
        Some(Ok(_)) => return Err(Fail::new("a message instead of the close")),
        Some(Err(e)) => return Err(Fail::new(format!("read: {}", error_kind(&e)))),
        None => return Err(Fail::new("ended without a close")),
    }
    let _ = step("end", async { while let Some(Ok(_)) = ws.next().await {} }).await;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    Open,
    Code(u16),
}

fn parse_expect(s: &str) -> Result<Expect, String> {
    if s == "open" {
        return Ok(Expect::Open);
    }
    s.parse()
        .map(Expect::Code)
        .map_err(|_| format!("--expect {s:?}: `open` or a close code"))
}

async fn cycle(p: &Prepared, expect: Expect) -> Result<(), Fail> {
    let mut ws = open(p).await?;
    match expect {
        Expect::Open => close_clean(&mut ws).await,
        Expect::Code(c) => closed_with(&mut ws, c).await,
    }
}

fn client_runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.unwrap_or_else(cpus).max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

// ---------------------------------------------------------------------------
// run

/// `USER_HZ`, the unit of `/proc/<pid>/stat` CPU times (100 on every Linux ABI in use).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU time of process `pid` (all threads), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[derive(Default)]
struct Tally {
    cycles: u64,
    /// Completed cycles by target (`--url` first, then each `--mix-url`).
    per_target: Vec<u64>,
    /// The same, warm-up and cycles across the window's edges included.
    all_per_target: Vec<u64>,
    latencies_us: Vec<u32>,
    failures: BTreeMap<String, u64>,
}

fn run(args: RunArgs) -> Result<(), String> {
    if args.mix_urls.len() != args.mix_expects.len() {
        return Err("--mix-url and --mix-expect must come in pairs".into());
    }
    let mut targets = vec![(
        Prepared::new(&args.target)?,
        parse_expect(&args.expect)?,
        args.expect.clone(),
    )];
    for (url, e) in args.mix_urls.iter().zip(&args.mix_expects) {
        let t = Target {
            url: url.clone(),
            ..args.target.clone()
        };
        targets.push((Prepared::new(&t)?, parse_expect(e)?, e.clone()));
    }
    let targets = Arc::new(targets);
    let n_targets = targets.len();
    let duration_ok = args.duration > 0.0 && args.duration <= 3600.0;
    if !duration_ok || !(0.0..=600.0).contains(&args.warmup) {
        return Err("--duration must be in (0, 3600] and --warmup in [0, 600]".into());
    }
    let concurrency = args.concurrency.clamp(1, 10_000);
    raise_nofile();
    let rt = client_runtime(args.target.threads)?;
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let server_pid = args.server_pid;
    let shared = targets.clone();
    let (tally, cpu_ticks) = rt.block_on(async move {
        let start = Instant::now();
        let measure_from = start + warmup;
        let end = measure_from + duration;
        let cpu = tokio::spawn(async move {
            let pid = server_pid?;
            tokio::time::sleep_until(measure_from.into()).await;
            let a = cpu_ticks(pid)?;
            tokio::time::sleep_until(end.into()).await;
            let b = cpu_ticks(pid)?;
            Some(b.saturating_sub(a))
        });
        let mut tasks = Vec::new();
        for client in 0..concurrency {
            let targets = shared.clone();
            tasks.push(tokio::spawn(async move {
                let mut t = Tally {
                    per_target: vec![0; n_targets],
                    all_per_target: vec![0; n_targets],
                    ..Tally::default()
                };
                let mut k = client;
                while Instant::now() < end {
                    let i = k % n_targets;
                    k += 1;
                    let (p, expect, _) = &targets[i];
                    let t0 = Instant::now();
                    let r = cycle(p, *expect).await;
                    let t1 = Instant::now();
                    let counted = t0 >= measure_from && t1 <= end;
                    if r.is_ok() {
                        t.all_per_target[i] += 1;
                    }
                    match r {
                        Ok(()) if counted => {
                            t.cycles += 1;
                            t.per_target[i] += 1;
                            t.latencies_us
                                .push(u32::try_from((t1 - t0).as_micros()).unwrap_or(u32::MAX));
                        }
                        Ok(()) => {}
                        Err(f) => {
                            if counted {
                                *t.failures.entry(f.0).or_default() += 1;
                            }
                            // Do not spin on a failing target.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                t
            }));
        }
        let mut all = Tally {
            per_target: vec![0; n_targets],
            all_per_target: vec![0; n_targets],
            ..Tally::default()
        };
        let deadline = end + 3 * STEP;
        for task in tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, task).await {
                Ok(Ok(t)) => {
                    all.cycles += t.cycles;
                    for (a, b) in all.per_target.iter_mut().zip(&t.per_target) {
                        *a += b;
                    }
                    for (a, b) in all.all_per_target.iter_mut().zip(&t.all_per_target) {
                        *a += b;
                    }
                    all.latencies_us.extend(t.latencies_us);
                    for (k, v) in t.failures {
                        *all.failures.entry(k).or_default() += v;
                    }
                }
                Ok(Err(e)) => *all.failures.entry(format!("client task: {e}")).or_default() += 1,
                Err(_) => {
                    *all.failures
                        .entry("client task: did not stop".into())
                        .or_default() += 1
                }
            }
        }
        (all, cpu.await.ok().flatten())
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    let mut lat = tally.latencies_us;
    lat.sort_unstable();
    let pct = |q: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() - 1) as f64 * q).round() as usize;
        f64::from(lat[i.min(lat.len() - 1)]) / 1000.0
    };
    let failed: u64 = tally.failures.values().sum();
    // Cycles by what the target expects: `open` (accepted) or the close code.
    let mut by_expect: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (((_, _, e), n), all) in targets
        .iter()
        .zip(&tally.per_target)
        .zip(&tally.all_per_target)
    {
        let entry = by_expect.entry(e.as_str()).or_default();
        entry.0 += n;
        entry.1 += all;
    }
    let accepted = by_expect.get("open").map_or(0, |e| e.0);
    let by_expect_json: serde_json::Map<String, serde_json::Value> = by_expect
        .iter()
        .map(|(e, (n, all))| {
            (
                (*e).to_string(),
                json!({
                    "cycles": n,
                    "per_sec": *n as f64 / args.duration,
                    "all_cycles": all,
                }),
            )
        })
        .collect();
    println!(
        "{}",
        json!({
            "url_path": args.target.url.split('?').next().unwrap_or(""),
            "expect": args.expect,
            "concurrency": concurrency,
            "seconds": args.duration,
            "cycles": tally.cycles,
            "per_sec": tally.cycles as f64 / args.duration,
            "failed": failed,
            "failures": tally.failures,
            "latency_ms": { "p50": pct(0.5), "p99": pct(0.99) },
            "server_cpu_us_per_cycle": cpu_ticks.filter(|_| tally.cycles > 0).map(|t| {
                t as f64 * 1e6 / CLOCK_TICKS_PER_SEC / tally.cycles as f64
            }),
            "by_expect": by_expect_json,
            "server_cpu_secs": cpu_ticks.map(|t| t as f64 / CLOCK_TICKS_PER_SEC),
            "server_cpu_us_per_accepted": cpu_ticks.filter(|_| accepted > 0).map(|t| {
                t as f64 * 1e6 / CLOCK_TICKS_PER_SEC / accepted as f64
            }),
        })
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// hold

/// Keeps one connection open — reading, so pings are answered — until
/// `release` fires, then closes it with 1000.
async fn keep(mut ws: Ws, mut release: Shared<oneshot::Receiver<()>>) -> Result<(), Fail> {
    loop {
        tokio::select! {
            _ = &mut release => return close_clean(&mut ws).await,
            m = ws.next() => match m {
                Some(Ok(Message::Close(f))) => {
                    let code = f.map_or(0, |f| u16::from(f.code));
                    return Err(Fail::new(format!("closed by the server ({code})")));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(Fail::new(format!("read: {}", error_kind(&e)))),
                None => return Err(Fail::new("ended by the server")),
            },
        }
    }
}

fn add_failures(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

fn hold(args: HoldArgs) -> Result<(), String> {
    let p = Arc::new(Prepared::new(&args.target)?);
    let count = args.count;
    if count == 0 || count > 100_000 {
        return Err("--count must be in 1..=100000".into());
    }
    let concurrency = args.concurrency.clamp(1, count);
    raise_nofile();
    let rt = client_runtime(args.target.threads)?;
    let max = Duration::from_secs(args.max_secs);
    rt.block_on(async move {
        let started = Instant::now();
        let (release_tx, release) = oneshot::channel::<()>();
        let release = release.shared();
        let mut openers = Vec::new();
        for t in 0..concurrency {
            let p = p.clone();
            let release = release.clone();
            openers.push(tokio::spawn(async move {
                let mut keepers = Vec::new();
                let mut failures: BTreeMap<String, u64> = BTreeMap::new();
                for _ in (t..count).step_by(concurrency) {
                    if started.elapsed() >= max {
                        *failures.entry("not opened in time".into()).or_default() += 1;
                        continue;
                    }
                    match open(&p).await {
                        Ok(ws) => keepers.push(tokio::spawn(keep(ws, release.clone()))),
                        Err(f) => *failures.entry(f.0).or_default() += 1,
                    }
                }
                (keepers, failures)
            }));
        }
        let mut keepers = Vec::new();
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        for o in openers {
            match o.await {
                Ok((k, f)) => {
                    keepers.extend(k);
                    add_failures(&mut failures, f);
                }
                Err(e) => *failures.entry(format!("client task: {e}")).or_default() += 1,
            }
        }
        let held = keepers.iter().filter(|k| !k.is_finished()).count();
        let open_secs = started.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({
                "held": held,
                "opened": keepers.len(),
                "requested": count,
                "open_secs": open_secs,
                "failures": failures,
            })
        );
        if let Some(f) = &args.ready_file {
            if let Err(e) = std::fs::write(f, format!("{held}\n")) {
                eprintln!("wsload: --ready-file {}: {e}", f.display());
            }
        }
        while started.elapsed() < max {
            if args.release_file.as_ref().is_some_and(|f| f.exists()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = release_tx.send(());
        let mut clean = 0usize;
        let mut close_failures: BTreeMap<String, u64> = BTreeMap::new();
        let deadline = Instant::now() + 3 * STEP;
        for k in keepers {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, k).await {
                Ok(Ok(Ok(()))) => clean += 1,
                Ok(Ok(Err(f))) => *close_failures.entry(f.0).or_default() += 1,
                Ok(Err(e)) => {
                    *close_failures
                        .entry(format!("client task: {e}"))
                        .or_default() += 1
                }
                Err(_) => *close_failures.entry("close: timed out".into()).or_default() += 1,
            }
        }
        println!(
            "{}",
            json!({ "closed_clean": clean, "held": held, "failures": close_failures })
        );
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

// ---------------------------------------------------------------------------
// echo

/// Opens one connection, sends `messages` text messages one at a time and
/// returns each round trip (µs) after the first `skip`, then closes (1000).
async fn echo_one(
    p: &Prepared,
    messages: usize,
    skip: usize,
    payload: &str,
) -> Result<Vec<u32>, Fail> {
    let mut ws = open(p).await?;
    let mut rtts = Vec::with_capacity(messages.saturating_sub(skip));
    for i in 0..messages {
        let t0 = Instant::now();
        step("send", ws.send(Message::text(payload)))
            .await?
            .map_err(|e| Fail::new(format!("send: {}", error_kind(&e))))?;
        loop {
            match step("echo", ws.next()).await? {
                Some(Ok(Message::Text(t))) if t.as_str() == payload => break,
                Some(Ok(Message::Text(_))) => return Err(Fail::new("echo differs")),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(f))) => {
                    let code = f.map_or(0, |f| u16::from(f.code));
                    return Err(Fail::new(format!("closed by the server ({code})")));
                }
                Some(Ok(_)) => return Err(Fail::new("unexpected message")),
                Some(Err(e)) => return Err(Fail::new(format!("read: {}", error_kind(&e)))),
                None => return Err(Fail::new("ended by the server")),
            }
        }
        if i >= skip {
            rtts.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
        }
    }
    close_clean(&mut ws).await?;
    Ok(rtts)
}

fn echo(args: EchoArgs) -> Result<(), String> {
    let p = Arc::new(Prepared::new(&args.target)?);
    let connections = args.connections.clamp(1, 10_000);
    let messages = args.messages.clamp(1, 1_000_000);
    let skip = args.skip.min(messages - 1);
    if args.size > 1 << 20 {
        return Err("--size must be at most 1 MiB".into());
    }
    let payload: Arc<str> = "x".repeat(args.size).into();
    raise_nofile();
    let rt = client_runtime(args.target.threads)?;
    let (mut rtts, failures) = rt.block_on(async move {
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let p = p.clone();
            let payload = payload.clone();
            tasks.push(tokio::spawn(async move {
                echo_one(&p, messages, skip, &payload).await
            }));
        }
        let mut rtts = Vec::new();
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        for t in tasks {
            match t.await {
                Ok(Ok(r)) => rtts.extend(r),
                Ok(Err(f)) => *failures.entry(f.0).or_default() += 1,
                Err(e) => *failures.entry(format!("client task: {e}")).or_default() += 1,
            }
        }
        (rtts, failures)
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    rtts.sort_unstable();
    let pct = |q: f64| -> f64 {
        if rtts.is_empty() {
            return 0.0;
        }
        let i = ((rtts.len() - 1) as f64 * q).round() as usize;
        f64::from(rtts[i.min(rtts.len() - 1)])
    };
    let mean = if rtts.is_empty() {
        0.0
    } else {
        rtts.iter().map(|&x| f64::from(x)).sum::<f64>() / rtts.len() as f64
    };
    let failed: u64 = failures.values().sum();
    println!(
        "{}",
        json!({
            "url_path": args.target.url.split('?').next().unwrap_or(""),
            "connections": connections,
            "messages_per_connection": messages,
            "size": args.size,
            "round_trips": rtts.len(),
            "failed": failed,
            "failures": failures,
            "rtt_us": { "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "mean": mean },
        })
    );
    Ok(())
}
