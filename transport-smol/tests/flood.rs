//! `wsauth serve` (the embedded default) under a fan-out flood: 300 anonymous
//! chat sockets that never read, from three addresses in 127.0.0.0/8, and one
//! client sending 400 messages of 60 KB to their room. The server's resident
//! memory stays under the documented bound during and after the flood, the
//! never-reading sockets are closed (1008, or 1013 once the send budget is
//! spent) instead of buffered, stderr stays small (repeated events are
//! aggregated), and the server keeps serving.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use wsauth_test_support::raw;

const BIN: &str = env!("CARGO_BIN_EXE_wsauth");

/// The documented bound on the server's resident memory under this flood
/// (README, "Memory under load"): the 64 MiB send budget plus the process
/// itself (about 10 MiB) and per-connection state, with allocator slack.
const RSS_BOUND: u64 = 96 * 1024 * 1024;
/// stderr the whole flood may produce at the default log level.
const STDERR_BOUND: u64 = 16 * 1024;

const READERS_PER_ADDRESS: usize = 100;
const MESSAGES: usize = 400;
const MESSAGE_BYTES: usize = 60 * 1000;

struct Served {
    child: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn fan_out_flood_keeps_memory_and_logs_bounded() {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("WSAUTH_SECRET")
        .env_remove("WSAUTH_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsauth serve");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let served = Served { child };
    let stderr_bytes = Arc::new(AtomicU64::new(0));
    {
        let n = stderr_bytes.clone();
        std::thread::spawn(move || {
            let mut r = stderr;
            let mut buf = [0u8; 4096];
            while let Ok(k) = r.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n.fetch_add(k as u64, Ordering::Relaxed);
            }
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr: SocketAddr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("serve printed its address");
        if let Some(v) = line.strip_prefix("listening: ") {
            break v
                .trim()
                .trim_start_matches("ws://")
                .parse()
                .expect("address");
        }
    };
    let baseline = raw::rss_bytes(pid).expect("rss");

    // Peak RSS, sampled every 20 ms while the flood runs and after it.
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Some(r) = raw::rss_bytes(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // 300 anonymous sockets in one room, from three addresses, never reading.
    let mut readers: Vec<TcpStream> = Vec::new();
    for a in 2..=4u8 {
        for _ in 0..READERS_PER_ADDRESS {
            let mut s = raw::connect_from(raw::loopback(a), addr).expect("connect");
            let status = raw::upgrade(&mut s, "/ws/chat/flood/", &[], Duration::from_secs(10))
                .expect("upgrade");
            assert_eq!(status, Some(101), "reader from 127.0.0.{a}");
            readers.push(s);
        }
    }

    // The sender, in the same room, reading (and discarding) what it gets.
    let mut sender = raw::connect_from(raw::loopback(5), addr).expect("connect");
    assert_eq!(
        raw::upgrade(&mut sender, "/ws/chat/flood/", &[], Duration::from_secs(10))
            .expect("upgrade"),
        Some(101)
    );
    let mut drain = sender.try_clone().expect("clone");
    let drainer = std::thread::spawn(move || {
        let _ = std::io::copy(&mut drain, &mut std::io::sink());
    });
    let body = "x".repeat(MESSAGE_BYTES);
    let frame = raw::masked_frame(0x1, body.as_bytes());
    let mut sent = 0;
    for _ in 0..MESSAGES {
        if sender.write_all(&frame).is_err() {
            break;
        }
        sent += 1;
    }
    let during = peak.load(Ordering::Relaxed);

    // Every never-reading socket is closed by the server: 1008 (it does not
    // read) or 1013 (the send budget was spent), found after what it was
    // sent before the close.
    let mut codes = std::collections::BTreeMap::new();
    for s in readers.iter_mut().step_by(30) {
        let code = raw::close_code(s, Duration::from_secs(20));
        *codes.entry(code).or_insert(0) += 1;
        assert!(
            matches!(code, Some(1008) | Some(1013)),
            "a never-reading socket is closed with 1008 or 1013, got {code:?}"
        );
    }
    drop(readers);
    let _ = sender.write_all(&raw::masked_frame(0x8, &1000u16.to_be_bytes()));
    drop(sender);
    let _ = drainer.join();

    // After: the server still serves, and its memory stays under the bound.
    std::thread::sleep(Duration::from_secs(2));
    let mut probe = raw::connect_from(raw::loopback(6), addr).expect("connect");
    assert_eq!(
        raw::upgrade(&mut probe, "/ws/chat/after/", &[], Duration::from_secs(10)).expect("upgrade"),
        Some(101),
        "the server serves after the flood"
    );
    drop(probe);
    std::thread::sleep(Duration::from_millis(500));
    let after = raw::rss_bytes(pid).expect("rss");
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    let peak = peak.load(Ordering::Relaxed);
    let err_bytes = stderr_bytes.load(Ordering::Relaxed);
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "flood: sent {sent}/{MESSAGES} messages of {MESSAGE_BYTES} B to {} readers; RSS baseline {:.1} MiB, \
         peak during {:.1} MiB, peak overall {:.1} MiB, after {:.1} MiB (bound {:.0} MiB); \
         close codes {codes:?}; stderr {err_bytes} B (bound {STDERR_BOUND} B); {:.1} s",
        3 * READERS_PER_ADDRESS,
        mb(baseline),
        mb(during),
        mb(peak),
        mb(after),
        mb(RSS_BOUND),
        started.elapsed().as_secs_f64()
    );
    assert!(peak < RSS_BOUND, "peak RSS {:.1} MiB", mb(peak));
    assert!(after < RSS_BOUND, "RSS after {:.1} MiB", mb(after));
    assert!(err_bytes < STDERR_BOUND, "stderr {err_bytes} B");
    drop(served);
}
