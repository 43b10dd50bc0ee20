//! Many gateways, one truth: three real `wsauth serve` processes sharing one
//! real `redis-server` (started here on a free loopback port, no
//! persistence, its own temp dir), real WebSocket clients.
//!
//! Needs `redis-server` on PATH (`scripts/test-all` installs the Debian
//! package); without it the tests fail with a message saying so.
//!
//! The only time bound asserted is the contract's: a revocation closes live
//! sockets on every gateway "within one second". It is measured from the
//! moment `wsauth revoke` returns and allowed 1 s plus nothing else.

use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wsauth_gateway::probe::{build_request, ProbeCarrier, ProbeRequest};

const BIN: &str = env!("CARGO_BIN_EXE_wsauth");
const SECRET: &str = "redis-gateways-test-secret-0123456789";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "wsauth-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A `redis-server` child on 127.0.0.1, killed and its dir removed on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start(port: u16, dir: &Path) -> Redis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server on PATH (apt-get install -y redis-server; scripts/test-all does)",
            );
        let r = Redis {
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `wsauth serve` child, stopped when dropped.
struct Gateway {
    child: Child,
    base: String,
    staff: String,
    customer: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path) -> Gateway {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--json", "--config"])
        .arg(config)
        .env_remove("WSAUTH_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wsauth serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("serve printed its address");
    let v: serde_json::Value = serde_json::from_str(&line).expect("serve --json line");
    Gateway {
        child,
        base: v["listen"].as_str().expect("listen").to_string(),
        staff: v["staff_token"].as_str().expect("staff").to_string(),
        customer: v["customer_token"].as_str().expect("customer").to_string(),
    }
}

fn write_config(dir: &Path, name: &str, redis: &str, extra: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        r#"
[jwt]
secret = "{SECRET}"

[users]
source = "claims"
check_revoked_jti = true

[[routes]]
name = "chat"
path = "/ws/chat/<slug:room>/"
requirement = "authenticated"

[redis]
url = "{redis}"
key_prefix = "t:"
timeout_ms = 300
user_revocation_secs = 120
{extra}
"#
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// The token's `jti` (the payload is base64url JSON).
fn jti_of(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON claims");
    v["jti"].as_str().expect("jti").to_string()
}

/// One handshake with `wsauth probe`: "OPEN", "CLOSED <code> <reason>" or "HTTP <status>".
fn probe(url: &str, token: &str) -> String {
    let out = Command::new(BIN)
        .args(["probe", url, "--token", token, "--carrier", "header"])
        .args(["--wait-ms", "300", "--connect-timeout-ms", "5000"])
        .output()
        .expect("run wsauth probe");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A live socket: open (it answered a message), then waiting for its close.
struct Live {
    closed: mpsc::Receiver<(u16, Instant)>,
}

fn open_live(url: &str, token: &str) -> Live {
    let mut req = ProbeRequest::new(url);
    req.token = Some(token.to_string());
    req.carrier = ProbeCarrier::Header;
    let request = build_request(&req).expect("request");
    let (addr_tx, opened) = mpsc::channel();
    let (tx, closed) = mpsc::channel();
    let authority = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("authority")
        .to_string();
    std::thread::spawn(move || {
        smol::block_on(async move {
            let stream = smol::net::TcpStream::connect(authority)
                .await
                .expect("connect");
            let (mut ws, _) = async_tungstenite::client_async(request, stream)
                .await
                .expect("upgrade");
            // The reference app answers a binary message with an error: open.
            let _ = ws.send(Message::binary(vec![1u8])).await;
            let mut told = false;
            while let Some(msg) = ws.next().await {
                match msg {
                    Ok(Message::Close(frame)) => {
                        let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                        let _ = tx.send((code, Instant::now()));
                        return;
                    }
                    Ok(_) if !told => {
                        told = true;
                        let _ = addr_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send((1006, Instant::now()));
        })
    });
    opened
        .recv_timeout(Duration::from_secs(10))
        .expect("the socket opened and answered");
    Live { closed }
}

impl Live {
    fn closed_within(&self, since: Instant, bound: Duration) -> u16 {
        let (code, at) = self
            .closed
            .recv_timeout(bound + Duration::from_secs(5))
            .expect("the socket closed");
        assert!(
            at.duration_since(since) <= bound,
            "closed {:?} after the revocation (bound {bound:?})",
            at.duration_since(since)
        );
        code
    }

    fn still_open(&self) -> bool {
        self.closed.try_recv().is_err()
    }
}

fn revoke(config: &Path, args: &[&str]) {
    let out = Command::new(BIN)
        .arg("revoke")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run wsauth revoke");
    assert!(
        out.status.success(),
        "revoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const ONE_SECOND: Duration = Duration::from_secs(1);

/// `wsauth revoke … --json`: how many subscribers heard the publication.
fn revoke_heard(config: &Path, args: &[&str]) -> u64 {
    let out = Command::new(BIN)
        .arg("revoke")
        .args(args)
        .args(["--json", "--config"])
        .arg(config)
        .output()
        .expect("run wsauth revoke");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("revoke --json");
    v["subscribers"].as_u64().expect("subscribers")
}

/// Drops every pub/sub connection on the server (`CLIENT KILL TYPE pubsub`).
fn kill_subscriptions(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect redis");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"CLIENT KILL TYPE pubsub\r\n").unwrap();
    let mut buf = [0u8; 16];
    let _ = s.read(&mut buf);
}

#[test]
fn a_gateway_that_missed_a_publication_catches_up() {
    let dir = temp_dir("redis-catchup");
    let redis = Redis::start(free_port(), &dir);
    let config = write_config(&dir, "gw.toml", &redis.url(), "");
    let gws: Vec<Gateway> = (0..3).map(|_| serve(&config)).collect();
    let url = |g: &Gateway| format!("{}/ws/chat/lobby/", g.base);
    let token = gws[0].customer.clone();
    let lives: Vec<Live> = gws.iter().map(|g| open_live(&url(g), &token)).collect();
    // Every gateway's subscription is cut; the revocation is published while
    // none listens (0 heard it), so only the stored key can reach them.
    kill_subscriptions(redis.port);
    let heard = revoke_heard(&config, &["jti", &jti_of(&token)]);
    assert_eq!(heard, 0, "published while no gateway was subscribed");
    let at = Instant::now();
    for l in &lives {
        // Resubscription waits 200 ms, then the open sockets are checked.
        assert_eq!(l.closed_within(at, ONE_SECOND), 4401);
    }
    for g in &gws {
        assert_eq!(probe(&url(g), &token), "CLOSED 4401 token revoked");
    }
}

#[test]
fn revocations_reach_every_gateway() {
    let dir = temp_dir("redis-rev");
    let mut redis = Redis::start(free_port(), &dir);
    let config = write_config(&dir, "gw.toml", &redis.url(), "");
    let gws: Vec<Gateway> = (0..3).map(|_| serve(&config)).collect();
    let url = |g: &Gateway| format!("{}/ws/chat/lobby/", g.base);
    // Every gateway's tokens verify everywhere (one secret).
    let t_a = gws[0].customer.clone(); // user 2
    let t_b = gws[1].customer.clone(); // user 2, another jti
    let staff = gws[2].staff.clone(); // user 1
    for g in &gws {
        assert_eq!(probe(&url(g), &t_a), "OPEN");
    }

    // jti: live sockets with it close 4401 on all three; the same user's
    // other token stays open; new handshakes with it are refused everywhere.
    let with_a: Vec<Live> = gws.iter().map(|g| open_live(&url(g), &t_a)).collect();
    let with_b: Vec<Live> = gws.iter().map(|g| open_live(&url(g), &t_b)).collect();
    revoke(&config, &["jti", &jti_of(&t_a)]);
    let at = Instant::now();
    for l in &with_a {
        assert_eq!(l.closed_within(at, ONE_SECOND), 4401);
    }
    for l in &with_b {
        assert!(l.still_open());
    }
    for g in &gws {
        assert_eq!(probe(&url(g), &t_a), "CLOSED 4401 token revoked");
        assert_eq!(probe(&url(g), &t_b), "OPEN");
    }

    // A user: every socket of user 1 closes, new ones are refused.
    let staff_live: Vec<Live> = gws.iter().map(|g| open_live(&url(g), &staff)).collect();
    revoke(&config, &["user", "1"]);
    let at = Instant::now();
    for l in &staff_live {
        assert_eq!(l.closed_within(at, ONE_SECOND), 4401);
    }
    for g in &gws {
        assert_eq!(probe(&url(g), &staff), "CLOSED 4401 token revoked");
        assert_eq!(probe(&url(g), &t_b), "OPEN");
    }
    for l in &with_b {
        assert!(l.still_open());
    }

    // A gateway started after the revocations enforces them.
    let late = serve(&config);
    assert_eq!(probe(&url(&late), &t_a), "CLOSED 4401 token revoked");
    assert_eq!(probe(&url(&late), &staff), "CLOSED 4401 token revoked");
    assert_eq!(probe(&url(&late), &t_b), "OPEN");
    drop(late);

    // Redis down: a route that needs the revocation check closes 1013.
    let port = redis.port;
    redis.kill();
    for g in &gws {
        assert!(
            probe(&url(g), &t_b).starts_with("CLOSED 1013"),
            "redis down"
        );
    }
    // Back (empty: no persistence): the gateways reconnect and resubscribe
    // by themselves; a revocation made now reaches live sockets again.
    let _redis = Redis::start(port, &dir);
    let deadline = Instant::now() + Duration::from_secs(15);
    for g in &gws {
        while probe(&url(g), &t_b) != "OPEN" {
            assert!(Instant::now() < deadline, "gateway recovered");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // The subscriber may reconnect a little after the command connection.
    std::thread::sleep(Duration::from_millis(600));
    revoke(&config, &["jti", &jti_of(&t_b)]);
    let at = Instant::now();
    for l in &with_b {
        assert_eq!(l.closed_within(at, ONE_SECOND), 4401);
    }
    for g in &gws {
        assert_eq!(probe(&url(g), &t_b), "CLOSED 4401 token revoked");
    }
}

/// One handshake without a credential on an authenticated route from
/// `source` (a loopback address): `true` when the rate limiter let it
/// through (it then closes 4401 for the missing credential), `false` when
/// it was refused 4429.
fn attempt(base: &str, source: std::net::Ipv4Addr) -> bool {
    use socket2::{Domain, Socket, Type};
    let authority = base.trim_start_matches("ws://").to_string();
    let addr: std::net::SocketAddr = authority.parse().expect("ip:port");
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    sock.bind(&std::net::SocketAddr::new(source.into(), 0).into())
        .expect("bind the source address");
    sock.connect(&addr.into()).expect("connect");
    let stream: std::net::TcpStream = sock.into();
    let request =
        build_request(&ProbeRequest::new(format!("{base}/ws/chat/lobby/"))).expect("request");
    smol::block_on(async move {
        let stream = smol::Async::new(stream).expect("async stream");
        let (mut ws, _) = async_tungstenite::client_async(request, stream)
            .await
            .expect("upgrade");
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(f)))) => {
                    let code = u16::from(f.code);
                    assert!(code == 4401 || code == 4429, "unexpected close {code}");
                    return code == 4401;
                }
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
}

#[test]
fn one_rate_limit_for_all_gateways() {
    let dir = temp_dir("redis-rate");
    let redis = Redis::start(free_port(), &dir);
    // 2 per second sustained, burst 5: over any window of W seconds at most
    // 5 + 2·W attempts (+1 for the boundary) pass, whichever gateway gets them.
    let config = write_config(
        &dir,
        "gw.toml",
        &redis.url(),
        "\n[limits.rate_limit]\nrequests = 2\nperiod_secs = 1\nburst = 5\nstore = \"redis\"\n",
    );
    let gws: Vec<Gateway> = (0..3).map(|_| serve(&config)).collect();
    let one: std::net::Ipv4Addr = "127.0.0.1".parse().unwrap();
    let two: std::net::Ipv4Addr = "127.0.0.2".parse().unwrap();
    let start = Instant::now();
    let mut admitted = 0u64;
    let mut tries = 0;
    while tries < 60 {
        if attempt(&gws[tries % 3].base, one) {
            admitted += 1;
        }
        tries += 1;
    }
    let window = start.elapsed().as_secs_f64();
    let bound = 5.0 + 2.0 * window.ceil() + 1.0;
    assert!(
        (admitted as f64) <= bound,
        "{admitted} of {tries} admitted over {window:.2} s; bound {bound}"
    );
    // The limit is shared: three per-process limiters would admit 3 × 5 at once.
    assert!(admitted >= 5, "the burst is admitted ({admitted})");
    // Another peer has its own allowance, on every gateway.
    for g in &gws {
        assert!(attempt(&g.base, two), "a second peer is not limited");
    }
}

/// Handshakes per second through one gateway, `n` handshakes from
/// `threads` clients (each a full upgrade and the server's decision). Each
/// client is its own peer (127.0.0.10, .11, …): concurrent attempts of one
/// peer race on its rate state, which the core counts against the peer.
fn handshake_rate(base: &str, token: &str, n: usize, threads: usize) -> f64 {
    let start = Instant::now();
    let per = n / threads;
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let url = format!("{base}/ws/chat/lobby/");
            let token = token.to_string();
            let source = std::net::Ipv4Addr::new(127, 0, 0, 10 + i as u8);
            std::thread::spawn(move || {
                use socket2::{Domain, Socket, Type};
                let addr: std::net::SocketAddr = url
                    .trim_start_matches("ws://")
                    .split('/')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                smol::block_on(async move {
                    for _ in 0..per {
                        let mut req = ProbeRequest::new(url.as_str());
                        req.token = Some(token.clone());
                        req.carrier = ProbeCarrier::Header;
                        let request = build_request(&req).unwrap();
                        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
                        sock.bind(&std::net::SocketAddr::new(source.into(), 0).into())
                            .unwrap();
                        sock.connect(&addr.into()).unwrap();
                        let stream = smol::Async::new(std::net::TcpStream::from(sock)).unwrap();
                        let (mut ws, _) = async_tungstenite::client_async(request, stream)
                            .await
                            .unwrap();
                        // The reference app answers a binary message: the decision was "open".
                        ws.send(Message::binary(vec![1u8])).await.unwrap();
                        match ws.next().await {
                            Some(Ok(Message::Close(f))) => panic!("refused: {f:?}"),
                            Some(Ok(_)) => {}
                            other => panic!("no answer: {other:?}"),
                        }
                        let _ = ws.close(None).await;
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    (per * threads) as f64 / start.elapsed().as_secs_f64()
}

/// A Redis subscriber on the revocation channel (RESP over a plain socket);
/// each message read is reported with its arrival time.
fn simulated_subscriber(port: u16, channel: &str, tx: mpsc::Sender<Instant>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect redis");
    let cmd = format!(
        "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
        channel.len()
    );
    s.write_all(cmd.as_bytes()).expect("subscribe");
    std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        let mut line = String::new();
        let mut seen_subscribe = false;
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            // Each push ends with the payload; "message" pushes follow the confirmation.
            if line.trim() == "message" {
                if seen_subscribe {
                    let _ = tx.send(Instant::now());
                }
            } else if line.trim() == "subscribe" {
                seen_subscribe = true;
            }
        }
    });
}

/// `scripts/bench-redis`: handshakes/s with the Redis revocation check and
/// rate limit on vs off, and the revocation fan-out latency to three real
/// gateways' live sockets plus 50 simulated subscribers. One run, printed.
#[test]
#[ignore = "benchmark: scripts/bench-redis"]
fn bench_redis_checks_and_fan_out() {
    let dir = temp_dir("redis-bench");
    let redis = Redis::start(free_port(), &dir);
    let on = write_config(
        &dir,
        "on.toml",
        &redis.url(),
        "\n[limits.rate_limit]\nrequests = 1000\nperiod_secs = 1\nburst = 100000\nstore = \"redis\"\n",
    );
    let off_path = dir.join("off.toml");
    std::fs::write(
        &off_path,
        format!(
            "[jwt]\nsecret = \"{SECRET}\"\n[users]\nsource = \"claims\"\n[[routes]]\nname = \"chat\"\npath = \"/ws/chat/<slug:room>/\"\nrequirement = \"authenticated\"\n"
        ),
    )
    .unwrap();
    let n = 2000;
    let threads = 8;
    let g_off = serve(&off_path);
    let off = handshake_rate(&g_off.base, &g_off.customer, n, threads);
    drop(g_off);
    let g_on = serve(&on);
    let on_rate = handshake_rate(&g_on.base, &g_on.customer, n, threads);
    drop(g_on);
    println!("handshakes/s ({n} handshakes, {threads} clients, one gateway):");
    println!("  redis checks off: {off:>8.0}");
    println!("  redis checks on:  {on_rate:>8.0}   (revocation EXISTS + rate GET + CAS script)");

    // Fan-out: 3 gateways × 20 live sockets + 50 simulated subscribers.
    let gws: Vec<Gateway> = (0..3).map(|_| serve(&on)).collect();
    let (sub_tx, sub_rx) = mpsc::channel();
    for _ in 0..50 {
        simulated_subscriber(redis.port, "t:revocations", sub_tx.clone());
    }
    let mut worst_socket = Vec::new();
    let mut worst_sub = Vec::new();
    for round in 0..5 {
        // A fresh jti each round: customer tokens, then staff tokens.
        let g = &gws[round % 3];
        let token = if round < 3 {
            g.customer.clone()
        } else {
            g.staff.clone()
        };
        let lives: Vec<Live> = gws
            .iter()
            .flat_map(|g| (0..20).map(move |_| g))
            .map(|g| open_live(&format!("{}/ws/chat/lobby/", g.base), &token))
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let at = Instant::now();
        revoke(&on, &["jti", &jti_of(&token)]);
        let mut last = Duration::ZERO;
        for l in &lives {
            let (code, t) = l
                .closed
                .recv_timeout(Duration::from_secs(10))
                .expect("closed");
            assert_eq!(code, 4401);
            last = last.max(t.duration_since(at));
        }
        let mut last_sub = Duration::ZERO;
        for _ in 0..50 {
            let t = sub_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("subscriber heard");
            last_sub = last_sub.max(t.saturating_duration_since(at));
        }
        worst_socket.push(last);
        worst_sub.push(last_sub);
    }
    worst_socket.sort();
    worst_sub.sort();
    println!(
        "revocation fan-out (5 rounds, from `wsauth revoke` start; includes its process start):"
    );
    println!(
        "  last of 60 live sockets closed (3 gateways): median {:?}, max {:?}",
        worst_socket[2], worst_socket[4]
    );
    println!(
        "  last of 50 simulated subscribers heard it:   median {:?}, max {:?}",
        worst_sub[2], worst_sub[4]
    );
}
