//! Edge mode: a real gateway forwarding to a real upstream WebSocket server
//! over loopback, with a real client. The upstream is a small blocking
//! tungstenite echo server (a thread per connection, independent of the
//! runtime under test) that records every request head it accepted, every
//! message it received and every close it saw: the tests judge the
//! gateway by what the upstream recorded and by the core's verifier.

use crate::transport::{access, connect, outcome, test_config, Carrier, Cred, Harness, Seen};
use async_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request as HttpRequest, Response as HttpResponse,
};
use async_tungstenite::tungstenite::http::{self, HeaderValue};
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{self, Message};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wsauth_core::config::UpstreamConfig;
use wsauth_core::edge::{Edge, DEFAULT_HEADER};
use wsauth_core::{SecretRef, UnixTime};
use wsauth_gateway::reference;
use wsauth_gateway::{Gateway, NullApp};

/// The upstream's shared secret in these tests.
pub const UPSTREAM_SECRET: &str = "edge-tests-upstream-secret-7d3f0a9c";

/// A request head the upstream accepted.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// Path and query, as requested.
    pub target: String,
    /// Every header, lowercase names.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl SeenRequest {
    /// The values of header `name`.
    pub fn values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// What the upstream recorded.
#[derive(Default)]
pub struct Record {
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    /// Handshakes completed, in order.
    pub requests: Mutex<Vec<SeenRequest>>,
    /// Data messages received (text; binary as lossy text).
    pub messages: Mutex<Vec<String>>,
    /// Close codes received from the gateway.
    pub closes: Mutex<Vec<u16>>,
    /// Refuse every handshake with HTTP 403.
    pub refuse: AtomicBool,
    /// When set, each connection sends this many [`stream_frame`]s from a
    /// thread of its own as soon as it is open, while it reads (and only
    /// counts what it reads: nothing is echoed).
    pub stream: AtomicUsize,
    /// Data messages and their bytes read in stream mode.
    pub streamed_in: AtomicUsize,
    pub streamed_in_bytes: AtomicUsize,
}

/// Size of a [`stream_frame`] (under the gateway's 64 KiB message limit).
pub const STREAM_FRAME_BYTES: usize = 60 * 1024;

/// Frame `i` of a stream: its index (4 bytes, big-endian), then its low
/// byte repeated.
pub fn stream_frame(i: usize) -> Vec<u8> {
    let mut f = vec![i as u8; STREAM_FRAME_BYTES];
    f[..4].copy_from_slice(&(i as u32).to_be_bytes());
    f
}

/// The upstream echo server. Text `close:<code>` makes it close with that
/// code; `drop` makes it drop the TCP connection; anything else is echoed.
/// It picks the subprotocol `chat` when offered.
pub struct Upstream {
    pub addr: SocketAddr,
    pub record: Arc<Record>,
    stop: Arc<AtomicBool>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag and lets the port go.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

impl Upstream {
    /// Binds `addr` (port 0: any) and serves until dropped.
    pub fn start(addr: SocketAddr) -> std::io::Result<Upstream> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let record = Arc::new(Record::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (record.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                r.connections.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || serve_one(stream, &r));
            }
        });
        Ok(Upstream { addr, record, stop })
    }

    pub fn connections(&self) -> usize {
        self.record.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.record.requests.lock().unwrap().clone()
    }

    pub fn messages(&self) -> Vec<String> {
        self.record.messages.lock().unwrap().clone()
    }

    pub fn closes(&self) -> Vec<u16> {
        self.record.closes.lock().unwrap().clone()
    }

    /// Waits (bounded) until `pred` holds on the record.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Upstream) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pred(self) {
            assert!(Instant::now() < deadline, "upstream never saw {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve_one(stream: std::net::TcpStream, record: &Record) {
    let refuse = record.refuse.load(Ordering::SeqCst);
    #[allow(clippy::result_large_err)]
    let callback =
        |req: &HttpRequest, mut resp: HttpResponse| -> Result<HttpResponse, ErrorResponse> {
            if refuse {
                let mut e = http::Response::new(Some("refused".to_string()));
                *e.status_mut() = http::StatusCode::FORBIDDEN;
                return Err(e);
            }
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let headers = req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_ascii_lowercase(), v.as_bytes().to_vec()))
                .collect();
            let offers_chat = req
                .headers()
                .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|p| p.trim() == "chat");
            if offers_chat {
                resp.headers_mut().insert(
                    http::header::SEC_WEBSOCKET_PROTOCOL,
                    HeaderValue::from_static("chat"),
                );
            }
            record
                .requests
                .lock()
                .unwrap()
                .push(SeenRequest { target, headers });
            Ok(resp)
        };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, callback) else {
        return;
    };
    let push = record.stream.load(Ordering::SeqCst);
    if push > 0 {
        stream_both_ways(ws, push, record);
        return;
    }
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let t = t.to_string();
                record.messages.lock().unwrap().push(t.clone());
                if let Some(code) = t.strip_prefix("close:") {
                    let code: u16 = code.parse().unwrap_or(1000);
                    let _ = ws.close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: "upstream closes".into(),
                    }));
                    // Until the gateway's reply.
                    while ws.read().is_ok() {}
                    return;
                }
                if t == "drop" {
                    return;
                }
                if ws.send(Message::text(t)).is_err() {
                    return;
                }
            }
            Ok(Message::Binary(b)) => {
                record
                    .messages
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&b).into_owned());
                if ws.send(Message::Binary(b)).is_err() {
                    return;
                }
            }
            Ok(Message::Close(f)) => {
                let code = f.map_or(1005, |f| u16::from(f.code));
                record.closes.lock().unwrap().push(code);
                // tungstenite queues the reply; flushing sends it.
                let _ = ws.flush();
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Stream mode: a writer thread sends `push` frames while this thread
/// reads, so the upstream reads and writes at once (the writer has its own
/// handle on the socket; the reader never writes until the writer is done).
fn stream_both_ways(
    mut ws: tungstenite::WebSocket<std::net::TcpStream>,
    push: usize,
    record: &Record,
) {
    let Ok(socket) = ws.get_ref().try_clone() else {
        return;
    };
    let writer = std::thread::spawn(move || {
        let mut w = tungstenite::WebSocket::from_raw_socket(
            socket,
            tungstenite::protocol::Role::Server,
            None,
        );
        for i in 0..push {
            if w.send(Message::Binary(stream_frame(i).into())).is_err() {
                return;
            }
        }
    });
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) => {
                record.streamed_in.fetch_add(1, Ordering::SeqCst);
                record
                    .streamed_in_bytes
                    .fetch_add(b.len(), Ordering::SeqCst);
            }
            Ok(Message::Close(f)) => {
                record
                    .closes
                    .lock()
                    .unwrap()
                    .push(f.map_or(1005, |f| u16::from(f.code)));
                let _ = writer.join();
                let _ = ws.flush();
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// The reference configuration forwarding to `upstream`.
pub fn edge_config(upstream: SocketAddr) -> wsauth_core::Config {
    let mut c = test_config();
    c.upstream = Some(UpstreamConfig {
        url: format!("ws://{upstream}"),
        secret: Some(SecretRef::Value(UPSTREAM_SECRET.into())),
        connect_timeout_ms: 2000,
        ..UpstreamConfig::default()
    });
    c
}

/// A gateway in edge mode (built as `wsauth serve` builds it), and its edge.
pub fn edge_gateway(upstream: SocketAddr) -> (Gateway, Edge) {
    let config = edge_config(upstream);
    let gw = Gateway::from_config(&config, Arc::new(reference::demo_host()), Arc::new(NullApp))
        .expect("edge config");
    let edge = gw.edge().expect("edge mode").clone();
    (gw, edge)
}

fn verify_principal(
    edge: &Edge,
    req: &SeenRequest,
    path: &str,
) -> wsauth_core::edge::ForwardedPrincipal {
    let values = req.values(DEFAULT_HEADER);
    assert_eq!(values.len(), 1, "exactly one principal header");
    let now = UnixTime::from_unix_duration(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap(),
    );
    edge.signer()
        .verify(values[0], path, now, 60_000)
        .expect("the principal header verifies")
}

/// Staff token in every carrier → OPEN, echo both ways, the upstream saw no
/// credential and no forged principal header, and one signed principal it
/// can verify for the path.
pub fn staff_is_forwarded_without_credentials<H: Harness>(h: &H) {
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (gw, edge) = edge_gateway(up.addr);
    h.block_on(async {
        let running = h.start(gw).await;
        for carrier in [
            Carrier::Query,
            Carrier::Header,
            Carrier::Cookie,
            Carrier::Subprotocol,
        ] {
            let token = access(crate::transport::STAFF, 300);
            let cred = Cred::Token(token.clone(), carrier);
            let before = up.requests().len();
            // A forged principal header and a cookie the app may keep.
            let mut req = crate::transport::request(
                running.addr,
                "/ws/admin/chat/?room=1",
                &cred,
                Some("http://localhost:3000"),
            );
            req.headers_mut().insert(
                DEFAULT_HEADER,
                HeaderValue::from_static("v1.1.forged.forged"),
            );
            if carrier != Carrier::Cookie {
                req.headers_mut()
                    .insert(http::header::COOKIE, HeaderValue::from_static("theme=dark"));
            }
            let sock = h.connect(running.addr).await.unwrap();
            let (mut ws, resp) = async_tungstenite::client_async(req, sock)
                .await
                .unwrap_or_else(|e| panic!("{carrier:?}: upgrade failed: {e}"));
            let sub = resp
                .headers()
                .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                .map(|v| v.to_str().unwrap().to_string());
            if carrier == Carrier::Subprotocol {
                assert_eq!(
                    sub.as_deref(),
                    Some("bearer"),
                    "bearer echoed to the client"
                );
            } else {
                assert_eq!(sub, None);
            }
            use futures::StreamExt;
            ws.send(Message::text(format!("hello {carrier:?}")))
                .await
                .unwrap();
            let echoed = ws.next().await.unwrap().unwrap();
            assert_eq!(echoed, Message::text(format!("hello {carrier:?}")));
            ws.send(Message::Binary(vec![1u8, 2, 3].into()))
                .await
                .unwrap();
            let echoed = ws.next().await.unwrap().unwrap();
            assert_eq!(echoed, Message::Binary(vec![1u8, 2, 3].into()));

            let reqs = up.requests();
            assert_eq!(
                reqs.len(),
                before + 1,
                "{carrier:?}: one forwarded handshake"
            );
            let seen = reqs.last().unwrap();
            assert_eq!(
                seen.target, "/ws/admin/chat/?room=1",
                "{carrier:?}: query kept, token gone"
            );
            let all: Vec<u8> = seen
                .headers
                .iter()
                .flat_map(|(n, v)| n.bytes().chain(v.iter().copied()))
                .collect();
            let text = String::from_utf8_lossy(&all);
            assert!(
                !text.contains(&token),
                "{carrier:?}: the token reached the upstream"
            );
            assert!(
                !text.contains("forged"),
                "{carrier:?}: the forged principal reached the upstream"
            );
            assert!(seen.values("authorization").is_empty());
            assert!(
                !text.contains("bearer"),
                "{carrier:?}: the bearer subprotocol was forwarded"
            );
            assert_eq!(
                seen.values("cookie"),
                vec![&b"theme=dark"[..]],
                "{carrier:?}"
            );
            assert_eq!(seen.values("origin"), vec![&b"http://localhost:3000"[..]]);
            assert_eq!(seen.values("x-forwarded-for"), vec![&b"127.0.0.1"[..]]);
            let p = verify_principal(&edge, seen, "/ws/admin/chat/");
            assert_eq!(p.route, "admin_chat");
            let u = p.principal.user().expect("a user");
            assert_eq!(u.id.as_str(), crate::transport::STAFF);
            assert!(u.is_staff);
            // Another path refuses the same header.
            assert!(edge
                .signer()
                .verify(
                    seen.values(DEFAULT_HEADER)[0],
                    "/ws/logs/",
                    UnixTime::from_millis(p.issued_at.millis()),
                    60_000
                )
                .is_err());

            ws.close(None).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        }
        up.wait_for("the clients' closes", |u| u.closes().len() == 4);
        assert!(up.closes().iter().all(|&c| c == 1000), "{:?}", up.closes());
        running.shutdown.shutdown();
    });
}

/// Refused handshakes never reach the upstream: 4403, 4401 (none, garbage,
/// expired), origin 403. Anonymous chat is forwarded with a null user.
pub fn refusals_are_not_forwarded<H: Harness>(h: &H) {
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (gw, edge) = edge_gateway(up.addr);
    h.block_on(async {
        let running = h.start(gw).await;
        let a = running.addr;
        let staff = crate::transport::STAFF;
        let customer = crate::transport::CUSTOMER;
        let expired = crate::transport::mint_with(
            "access",
            crate::transport::SECRET,
            staff,
            60,
            crate::transport::now() - 3600,
        );
        let rows: Vec<(&str, Cred, Option<&str>, Seen)> = vec![
            (
                "/ws/admin/chat/",
                Cred::Token(access(customer, 300), Carrier::Query),
                None,
                Seen::Closed(4403, String::new()),
            ),
            (
                "/ws/admin/chat/",
                Cred::None,
                None,
                Seen::Closed(4401, String::new()),
            ),
            (
                "/ws/logs/",
                Cred::Token("garbage".into(), Carrier::Header),
                None,
                Seen::Closed(4401, String::new()),
            ),
            (
                "/ws/admin/chat/",
                Cred::Token(expired, Carrier::Query),
                None,
                Seen::Closed(4401, String::new()),
            ),
            (
                "/ws/chat/lobby/",
                Cred::None,
                Some("https://evil.example"),
                Seen::Http(403),
            ),
        ];
        for (path, cred, origin, want) in rows {
            let (seen, _) = outcome(h, a, path, &cred, origin).await;
            match (&seen, &want) {
                (Seen::Closed(c, _), Seen::Closed(w, _)) => assert_eq!(c, w, "{path}"),
                _ => assert_eq!(seen, want, "{path}"),
            }
            assert_eq!(
                up.connections(),
                0,
                "{path}: a refused handshake reached the upstream"
            );
        }
        let (seen, client) = outcome(h, a, "/ws/chat/lobby/", &Cred::None, None).await;
        assert_eq!(seen, Seen::Open(None));
        assert_eq!(up.connections(), 1);
        let p = verify_principal(&edge, &up.requests()[0], "/ws/chat/lobby/");
        assert!(p.principal.user().is_none());
        drop(client);
        running.shutdown.shutdown();
    });
}

/// Expiry on a forwarded socket closes the client 4401 and the upstream
/// sees the close; an in-band refresh keeps it open and is not forwarded;
/// the upstream's own close reaches the client with its code; an upstream
/// that drops its connection closes the client 1011.
pub fn open_phase_rules_hold_on_forwarded_sockets<H: Harness>(h: &H) {
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (gw, _edge) = edge_gateway(up.addr);
    h.block_on(async {
        let running = h.start(gw).await;
        let a = running.addr;
        let staff = crate::transport::STAFF;

        // Expiry.
        let short = access(staff, 2);
        let mut cl = connect(
            h,
            a,
            "/ws/admin/chat/",
            &Cred::Token(short, Carrier::Query),
            None,
        )
        .await
        .expect("open");
        let closed = cl.closed_within(h, Duration::from_secs(6)).await;
        assert_eq!(
            closed.map(|c| c.0),
            Some(4401),
            "expiry closes the client 4401"
        );
        up.wait_for("the expiry close", |u| u.closes().contains(&4401));

        // Refresh: kept open past the first token's expiry, not forwarded.
        let short = access(staff, 2);
        let mut cl = connect(
            h,
            a,
            "/ws/admin/chat/",
            &Cred::Token(short, Carrier::Query),
            None,
        )
        .await
        .expect("open");
        let fresh = access(staff, 300);
        cl.send_text(&serde_json::json!({"type": "refresh", "token": fresh}).to_string())
            .await;
        assert_eq!(cl.closed_within(h, Duration::from_millis(4500)).await, None);
        cl.send_text("after refresh").await;
        match cl.next_within(h, Duration::from_secs(3)).await {
            Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), "after refresh"),
            other => panic!("no echo after refresh: {other:?}"),
        }
        let msgs = up.messages();
        assert!(
            msgs.iter()
                .all(|m| !m.contains("refresh\"") && !m.contains(&fresh)),
            "{msgs:?}"
        );

        // The upstream's close is passed on with its code.
        cl.send_text("close:4000").await;
        assert_eq!(
            cl.closed_within(h, Duration::from_secs(5))
                .await
                .map(|c| c.0),
            Some(4000)
        );

        // A dropped upstream: 1011.
        let mut cl = connect(h, a, "/ws/chat/lobby/", &Cred::None, None)
            .await
            .expect("open");
        cl.send_text("drop").await;
        assert_eq!(
            cl.closed_within(h, Duration::from_secs(5))
                .await
                .map(|c| c.0),
            Some(1011)
        );
        running.shutdown.shutdown();
    });
}

/// First-message auth: the upstream is connected only once the client
/// authenticated, with that principal; the auth message is not forwarded.
pub fn message_auth_connects_after_login<H: Harness>(h: &H) {
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (gw, edge) = edge_gateway(up.addr);
    h.block_on(async {
        let running = h.start(gw).await;
        let customer = crate::transport::CUSTOMER;
        let token = access(customer, 300);
        let path = "/ws/conversations/1/";
        let mut cl = connect(
            h,
            running.addr,
            path,
            &Cred::Token(token.clone(), Carrier::Message),
            None,
        )
        .await
        .expect("open");
        cl.send_text("after login").await;
        match cl.next_within(h, Duration::from_secs(5)).await {
            Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), "after login"),
            other => panic!("no echo after login: {other:?}"),
        }
        assert_eq!(up.connections(), 1);
        let p = verify_principal(&edge, &up.requests()[0], path);
        assert_eq!(
            p.principal
                .user()
                .map(|u| u.id.as_str().to_string())
                .as_deref(),
            Some(customer)
        );
        assert_eq!(up.messages(), vec!["after login".to_string()]);
        running.shutdown.shutdown();
    });
}

/// The close code a raw client sees after an accepted upgrade with a staff
/// token (tungstenite's client refuses to read 1014, so frames are read raw).
fn raw_close_code(gateway: SocketAddr, token: &str) -> (Option<u16>, Option<u16>) {
    let mut s = crate::raw::connect_from(crate::raw::loopback(1), gateway).expect("connect");
    let path = format!("/ws/admin/chat/?token={token}");
    let status = crate::raw::upgrade(&mut s, &path, &[], Duration::from_secs(10)).expect("upgrade");
    (
        status,
        crate::raw::close_code(&mut s, Duration::from_secs(10)),
    )
}

/// The app's own close reaches the client with the app's code and reason,
/// codes tungstenite does not know (1014, "bad gateway") included. Frames
/// are read raw: tungstenite's client reports 1014 as 1002 too.
pub fn the_apps_close_code_reaches_the_client<H: Harness>(h: &H) {
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (gw, _edge) = edge_gateway(up.addr);
    h.block_on(async {
        let running = h.start(gw).await;
        let token = access(crate::transport::STAFF, 300);
        for code in [1014u16, 1012, 3000, 4003] {
            let mut s =
                crate::raw::connect_from(crate::raw::loopback(1), running.addr).expect("connect");
            let path = format!("/ws/admin/chat/?token={token}");
            let status = crate::raw::upgrade(&mut s, &path, &[], Duration::from_secs(10));
            assert_eq!(status.ok().flatten(), Some(101));
            std::io::Write::write_all(
                &mut s,
                &crate::raw::masked_frame(0x1, format!("close:{code}").as_bytes()),
            )
            .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let close = loop {
                match crate::raw::read_frame(&mut s) {
                    Ok((0x8, p)) => break p,
                    Ok(_) => continue,
                    Err(e) => panic!("no close frame for {code}: {e}"),
                }
            };
            assert!(close.len() >= 2, "close without a code for {code}");
            assert_eq!(u16::from_be_bytes([close[0], close[1]]), code);
            assert_eq!(&close[2..], b"upstream closes");
        }
        running.shutdown.shutdown();
    });
}

/// Upstream down → 1014; upstream back → served again; upstream refusing
/// the handshake (HTTP 403) → 1014.
pub fn unreachable_upstream_closes_1014<H: Harness>(h: &H) {
    // A port that was free a moment ago.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (gw, _edge) = edge_gateway(addr);
    h.block_on(async {
        let running = h.start(gw).await;
        let a = running.addr;
        let staff = crate::transport::STAFF;
        let cred = Cred::Token(access(staff, 300), Carrier::Query);
        let token = access(staff, 300);
        assert_eq!(raw_close_code(a, &token), (Some(101), Some(1014)), "down");

        let up = Upstream::start(addr).expect("rebind the upstream port");
        let (seen, cl) = outcome(h, a, "/ws/admin/chat/", &cred, None).await;
        assert_eq!(seen, Seen::Open(None), "back up");
        drop(cl);
        assert_eq!(up.requests().len(), 1);

        up.record.refuse.store(true, Ordering::SeqCst);
        assert_eq!(
            raw_close_code(a, &token),
            (Some(101), Some(1014)),
            "refused"
        );
        assert_eq!(up.requests().len(), 1);
        running.shutdown.shutdown();
    });
}

/// The client's subprotocols (bearer and token removed) are offered
/// upstream; the upstream's choice is what the client is answered.
pub fn upstream_subprotocol_reaches_the_client<H: Harness>(h: &H) {
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (gw, _edge) = edge_gateway(up.addr);
    h.block_on(async {
        let running = h.start(gw).await;
        let mut req = crate::transport::request(running.addr, "/ws/chat/lobby/", &Cred::None, None);
        req.headers_mut().insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("other, chat"),
        );
        let sock = h.connect(running.addr).await.unwrap();
        let (_ws, resp) = async_tungstenite::client_async(req, sock)
            .await
            .expect("open");
        assert_eq!(
            resp.headers()
                .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                .map(|v| v.to_str().unwrap()),
            Some("chat")
        );
        assert_eq!(
            up.requests()[0].values("sec-websocket-protocol"),
            vec![&b"other, chat"[..]]
        );
        running.shutdown.shutdown();
    });
}

/// A revocation (the live registry, as the Redis listener drives it) closes
/// a forwarded socket on both sides: the client with the core's close, the
/// upstream with the same code.
pub fn revocation_closes_both_sides<H: Harness>(h: &H) {
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (gw, _edge) = edge_gateway(up.addr);
    let live = gw.live_connections().clone();
    h.block_on(async {
        let running = h.start(gw).await;
        let staff = crate::transport::STAFF;
        let cred = Cred::Token(access(staff, 300), Carrier::Query);
        let (seen, cl) = outcome(h, running.addr, "/ws/admin/chat/", &cred, None).await;
        assert_eq!(seen, Seen::Open(None));
        let mut cl = cl.expect("open");
        assert_eq!(live.revoke(wsauth_core::Revoked::User(staff)), 1);
        let want = wsauth_core::revoked_close();
        let closed = cl.closed_within(h, Duration::from_secs(5)).await;
        assert_eq!(
            closed,
            Some((want.code_u16(), want.reason.as_str().to_string()))
        );
        up.wait_for("the revocation close", |u| {
            u.closes().contains(&want.code_u16())
        });
        running.shutdown.shutdown();
    });
}

/// A message above `max_message_bytes` is never relayed: the client is
/// closed 1009 and the upstream is closed with the same code.
pub fn oversized_messages_are_not_relayed<H: Harness>(h: &H) {
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (gw, _edge) = edge_gateway(up.addr);
    let max = gw.limits().max_message_bytes;
    h.block_on(async {
        let running = h.start(gw).await;
        let mut cl = connect(h, running.addr, "/ws/chat/lobby/", &Cred::None, None)
            .await
            .expect("open");
        cl.send_text(&"x".repeat(max + 1)).await;
        assert_eq!(
            cl.closed_within(h, Duration::from_secs(5))
                .await
                .map(|c| c.0),
            Some(1009)
        );
        up.wait_for("the 1009 close", |u| u.closes().contains(&1009));
        assert!(up.messages().is_empty());
        running.shutdown.shutdown();
    });
}

/// An upstream that accepts TCP but never answers the handshake: the client
/// is accepted and closed 1014 once `connect_timeout_ms` has passed; a
/// first-message auth route connects after the login and closes 1014 the
/// same way when the upstream is down.
pub fn silent_upstream_times_out_1014<H: Harness>(h: &H) {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for s in silent.incoming().flatten() {
            // Held open, never answered.
            keep.lock().unwrap().push(s);
        }
    });
    let (gw, _edge) = edge_gateway(silent_addr);
    let down = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (gw_down, _) = edge_gateway(down);
    h.block_on(async {
        let running = h.start(gw).await;
        let token = access(crate::transport::STAFF, 300);
        assert_eq!(
            raw_close_code(running.addr, &token),
            (Some(101), Some(1014)),
            "silent upstream"
        );
        assert_eq!(held.lock().unwrap().len(), 1, "the upstream was reached");
        running.shutdown.shutdown();

        let running = h.start(gw_down).await;
        let mut s = crate::raw::connect_from(crate::raw::loopback(1), running.addr).unwrap();
        let status =
            crate::raw::upgrade(&mut s, "/ws/conversations/1/", &[], Duration::from_secs(10))
                .unwrap();
        assert_eq!(status, Some(101));
        let auth =
            serde_json::json!({"type": "auth", "token": access(crate::transport::CUSTOMER, 300)});
        use std::io::Write as _;
        s.write_all(&crate::raw::masked_frame(0x1, auth.to_string().as_bytes()))
            .unwrap();
        assert_eq!(
            crate::raw::close_code(&mut s, Duration::from_secs(10)),
            Some(1014),
            "upstream down after login"
        );
        running.shutdown.shutdown();
    });
}

/// An anonymous client in the customer chat (forwarded upstream).
async fn lobby<H: Harness>(h: &H, addr: SocketAddr) -> crate::transport::Client {
    connect(h, addr, "/ws/chat/lobby/", &Cred::None, None)
        .await
        .expect("open")
}

/// A client that closes with a code passes it on; one that vanishes
/// without a close frame closes the upstream 1001.
pub fn client_closes_reach_the_upstream<H: Harness>(h: &H) {
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (gw, _edge) = edge_gateway(up.addr);
    h.block_on(async {
        let running = h.start(gw).await;
        let mut cl = lobby(h, running.addr).await;
        cl.ws
            .close(Some(CloseFrame {
                code: CloseCode::from(4321),
                reason: "bye".into(),
            }))
            .await
            .unwrap();
        up.wait_for("the client's 4321", |u| u.closes() == vec![4321]);

        let mut s = crate::raw::connect_from(crate::raw::loopback(1), running.addr).unwrap();
        let status =
            crate::raw::upgrade(&mut s, "/ws/chat/lobby/", &[], Duration::from_secs(10)).unwrap();
        assert_eq!(status, Some(101));
        up.wait_for("the second connection", |u| u.requests().len() == 2);
        drop(s);
        up.wait_for("1001 for a vanished client", |u| {
            u.closes() == vec![4321, 1001]
        });
        running.shutdown.shutdown();
    });
}

/// Both directions flow while each peer is busy writing: the upstream
/// streams frames from the moment it is open, and the client sends a burst
/// of its own before it reads anything. Each way carries more than the
/// socket buffers between the peers hold, so a gateway that stopped reading
/// one side while a write to it waited would stall both until its write
/// timeout and close the client.
pub fn both_directions_flow_while_each_peer_writes<H: Harness>(h: &H) {
    use futures::StreamExt;
    const FRAMES: usize = 300;
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).unwrap();
    up.record.stream.store(FRAMES, Ordering::SeqCst);
    let (gw, _edge) = edge_gateway(up.addr);
    h.block_on(async {
        let running = h.start(gw).await;
        let mut cl = lobby(h, running.addr).await;
        for i in 0..FRAMES {
            let mut f = stream_frame(i);
            f[4] = b'c';
            cl.ws
                .send(Message::Binary(f.into()))
                .await
                .unwrap_or_else(|e| panic!("the client's frame {i} was not taken: {e}"));
        }
        for i in 0..FRAMES {
            let m = cl.ws.next().await;
            match m {
                Some(Ok(Message::Binary(b))) => assert_eq!(
                    &b[..],
                    &stream_frame(i)[..],
                    "the upstream's frame {i} arrived whole and in order"
                ),
                other => panic!("the upstream's frame {i}: {other:?}"),
            }
        }
        up.wait_for("every frame of the client", |u| {
            u.record.streamed_in.load(Ordering::SeqCst) == FRAMES
        });
        assert_eq!(
            up.record.streamed_in_bytes.load(Ordering::SeqCst),
            FRAMES * STREAM_FRAME_BYTES
        );
        cl.ws.close(None).await.unwrap();
        up.wait_for("the client's close", |u| u.closes() == vec![1000]);
        running.shutdown.shutdown();
    });
}
