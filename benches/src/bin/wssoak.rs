//! `wssoak`: a mixed legitimate and abusive load against `wsauth serve` (the
//! embedded default) for a fixed time, run by `scripts/soak` (not in CI).
//!
//! Legitimate clients (staff on a conversation, the customer on its receipt,
//! from many addresses in 127.0.1.0/24) connect, prove the socket open with a
//! ping and close, over and over. At the same time, from other loopback addresses: holders keep as
//! many never-reading anonymous sockets in one room as the server lets them,
//! a flooder sends 60 KB messages to that room, silent clients connect and
//! send nothing, and a garbage client sends bad tokens and invalid frames.
//!
//! Prints the legitimate success rate, the p50 / p99 handshake latency
//! (connect to `101`), the server's peak resident memory and its stderr size,
//! as text and as one JSON line.

use clap::Parser;
use serde_json::json;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "wssoak",
    about = "mixed legitimate + abusive load against wsauth serve"
)]
struct Args {
    /// The `wsauth` binary.
    #[arg(long)]
    server: PathBuf,
    /// Minutes to run.
    #[arg(long, default_value_t = 5.0)]
    minutes: f64,
    /// Concurrent legitimate clients.
    #[arg(long, default_value_t = 8)]
    legit: usize,
}

fn ip(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

fn connect_from(local: IpAddr, server: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    sock.bind(&SockAddr::from(SocketAddr::new(local, 0)))?;
    sock.connect_timeout(&SockAddr::from(server), Duration::from_secs(5))?;
    let s: TcpStream = sock.into();
    s.set_nodelay(true)?;
    Ok(s)
}

/// Sends an upgrade and reads the response head; the status.
fn upgrade(s: &mut TcpStream, path: &str, extra: &[(&str, &str)]) -> Option<u16> {
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (n, v) in extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") && got.len() < 16 * 1024 {
        match s.read(&mut b) {
            Ok(1) => got.push(b[0]),
            _ => return None,
        }
    }
    String::from_utf8_lossy(&got)
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
}

fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads server frames until a pong (true) or anything ending the socket (false).
fn await_pong(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    loop {
        let mut h = [0u8; 2];
        if s.read_exact(&mut h).is_err() {
            return false;
        }
        let len = match h[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                if s.read_exact(&mut b).is_err() {
                    return false;
                }
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                if s.read_exact(&mut b).is_err() {
                    return false;
                }
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut p = vec![0u8; len as usize];
        if s.read_exact(&mut p).is_err() {
            return false;
        }
        match h[0] & 0x0f {
            0xA => return true,
            0x8 => return false,
            _ => {}
        }
    }
}

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Keeps as many never-reading sockets open from `from` as the server allows.
fn holder(from: IpAddr, addr: SocketAddr, stop: Arc<AtomicBool>, held: Arc<AtomicU64>) {
    let mut socks: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Forget the ones the server ended.
        socks.retain(|s| {
            s.set_nonblocking(true).ok();
            let mut b = [0u8; 1];
            let alive = match s.peek(&mut b) {
                Ok(n) => n > 0,
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            };
            s.set_nonblocking(false).ok();
            alive
        });
        let mut opened = 0;
        while socks.len() < 300 && opened < 50 && !stop.load(Ordering::Relaxed) {
            let Ok(mut s) = connect_from(from, addr) else {
                break;
            };
            if upgrade(&mut s, "/ws/chat/soak/", &[]) != Some(101) {
                break;
            }
            socks.push(s);
            opened += 1;
        }
        held.fetch_add(opened, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        if soft < hard {
            let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard);
        }
    }
    let mut child = match Command::new(&args.server)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("WSAUTH_SECRET")
        .env_remove("WSAUTH_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {}: {e}", args.server.display());
            return ExitCode::from(2);
        }
    };
    let pid = child.id();
    let stderr_bytes = Arc::new(AtomicU64::new(0));
    if let Some(mut err) = child.stderr.take() {
        let n = stderr_bytes.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(k) = err.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n.fetch_add(k as u64, Ordering::Relaxed);
            }
        });
    }
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut addr, mut staff, mut customer) = (None, String::new(), String::new());
    while addr.is_none() || staff.is_empty() || customer.is_empty() {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
            eprintln!("wsauth serve printed no address and tokens");
            let _ = child.kill();
            return ExitCode::from(2);
        };
        if let Some(v) = line.strip_prefix("listening: ") {
            addr = v
                .trim()
                .trim_start_matches("ws://")
                .parse::<SocketAddr>()
                .ok();
        } else if let Some(v) = line.strip_prefix("staff_token: ") {
            staff = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("customer_token: ") {
            customer = v.trim().to_string();
        }
    }
    let addr = addr.expect("address");
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    let peak = Arc::new(AtomicU64::new(rss(pid)));
    let mut threads = Vec::new();
    {
        let (peak, stop) = (peak.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }

    // Abuse.
    let held = Arc::new(AtomicU64::new(0));
    for b in 2..=5u8 {
        let (stop, held) = (stop.clone(), held.clone());
        threads.push(std::thread::spawn(move || {
            holder(ip(0, b), addr, stop, held)
        }));
    }
    let flooded = Arc::new(AtomicU64::new(0));
    {
        let (stop, flooded) = (stop.clone(), flooded.clone());
        threads.push(std::thread::spawn(move || {
            let msg = frame(0x1, "x".repeat(60_000).as_bytes());
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = connect_from(ip(0, 6), addr) else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                if upgrade(&mut s, "/ws/chat/soak/", &[]) != Some(101) {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                let Ok(mut d) = s.try_clone() else { continue };
                let drain = std::thread::spawn(move || {
                    let _ = io::copy(&mut d, &mut io::sink());
                });
                while !stop.load(Ordering::Relaxed) && s.write_all(&msg).is_ok() {
                    flooded.fetch_add(1, Ordering::Relaxed);
                }
                let _ = s.shutdown(std::net::Shutdown::Both);
                let _ = drain.join();
            }
        }));
    }
    for b in 7..=9u8 {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut socks: Vec<TcpStream> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if socks.len() >= 300 {
                    socks.drain(..100);
                }
                for _ in 0..20 {
                    if let Ok(s) = connect_from(ip(0, b), addr) {
                        socks.push(s);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }));
    }
    {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mut s) = connect_from(ip(0, 10), addr) {
                    let _ = upgrade(
                        &mut s,
                        "/ws/admin/chat/",
                        &[("Authorization", "Bearer a.b.c")],
                    );
                }
                if let Ok(mut s) = connect_from(ip(0, 10), addr) {
                    if upgrade(&mut s, "/ws/chat/x/", &[]) == Some(101) {
                        let _ = s.write_all(&frame(0x1, b"\xff\xfe"));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }

    // Legitimate clients.
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let kinds = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let mut legit = Vec::new();
    for i in 0..args.legit {
        let (lat, ok, failed) = (latencies.clone(), ok.clone(), failed.clone());
        let kinds = kinds.clone();
        let (staff, customer) = (staff.clone(), customer.clone());
        legit.push(std::thread::spawn(move || {
            let mut n: usize = i;
            while Instant::now() < deadline {
                n = n.wrapping_add(args_step());
                let from = ip(1, (n % 250 + 1) as u8);
                // Staff on a conversation (the admin route mirrors every chat
                // room, the flooded one included: see the README).
                let (path, token) = if n.is_multiple_of(2) {
                    ("/ws/conversations/2/", &staff)
                } else {
                    ("/ws/receipts/100/", &customer)
                };
                let auth = format!("Bearer {token}");
                let t0 = Instant::now();
                let outcome: Result<(), String> = match connect_from(from, addr) {
                    Ok(mut s) => {
                        let st = upgrade(&mut s, path, &[("Authorization", &auth)]);
                        let took = t0.elapsed().as_secs_f64() * 1000.0;
                        if st != Some(101) {
                            Err(format!("upgrade {st:?}"))
                        } else if s.write_all(&frame(0x9, b"soak")).is_err() {
                            Err("write".into())
                        } else if !await_pong(&mut s) {
                            Err("no pong".into())
                        } else {
                            lat.lock().unwrap_or_else(|p| p.into_inner()).push(took);
                            let _ = s.write_all(&frame(0x8, &1000u16.to_be_bytes()));
                            Ok(())
                        }
                    }
                    Err(e) => Err(format!("connect: {}", e.kind())),
                };
                match outcome {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(kind) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        *kinds
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(kind)
                            .or_insert(0u64) += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    for t in legit {
        let _ = t.join();
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let _ = child.kill();
    let _ = child.wait();

    let mut lat = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[i.min(lat.len() - 1)]
    };
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let rate = if ok + failed == 0 {
        0.0
    } else {
        ok as f64 / (ok + failed) as f64
    };
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "legitimate: {ok} served, {failed} failed, success rate {:.3} %\n\
         handshake latency: p50 {:.2} ms, p99 {:.2} ms\n\
         server peak RSS: {:.1} MiB; stderr {} B\n\
         abuse: {} never-reading sockets opened, {} flood messages of 60 KB sent\n\
         legitimate failures by kind: {:?}",
        rate * 100.0,
        pct(0.5),
        pct(0.99),
        peak as f64 / 1048576.0,
        stderr_bytes.load(Ordering::Relaxed),
        held.load(Ordering::Relaxed),
        flooded.load(Ordering::Relaxed),
        kinds.lock().unwrap_or_else(|p| p.into_inner()),
    );
    println!(
        "{}",
        json!({
            "minutes": args.minutes,
            "legit_ok": ok,
            "legit_failed": failed,
            "success_rate": rate,
            "p50_handshake_ms": pct(0.5),
            "p99_handshake_ms": pct(0.99),
            "peak_rss_bytes": peak,
            "stderr_bytes": stderr_bytes.load(Ordering::Relaxed),
        })
    );
    ExitCode::SUCCESS
}

/// Step between the addresses one legitimate client uses.
fn args_step() -> usize {
    7
}
