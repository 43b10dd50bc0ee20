//! `wsauth serve` end to end: the binary on an ephemeral loopback port, its
//! printed tokens, and `wsauth probe` against it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_wsauth");

/// A `wsauth serve` child process, stopped when dropped.
struct Served {
    child: Child,
    base: String,
    staff: String,
    customer: String,
    /// The banner's `forwarding to …` line, in edge mode.
    forwarding: Option<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(extra: &[&str], env: &[(&str, &str)]) -> Served {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd.env_remove("WSAUTH_SECRET").env_remove("SMOL_THREADS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start wsauth serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut served = Served {
        child,
        base: String::new(),
        staff: String::new(),
        customer: String::new(),
        forwarding: None,
    };
    while served.base.is_empty() || served.staff.is_empty() || served.customer.is_empty() {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("serve printed its address and tokens");
        if let Some(v) = line.strip_prefix("listening: ") {
            served.base = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("staff_token: ") {
            served.staff = v.trim().to_string();
        } else if line.starts_with("forwarding to ") {
            served.forwarding = Some(line);
        } else if let Some(v) = line.strip_prefix("customer_token: ") {
            served.customer = v.trim().to_string();
        }
    }
    assert!(
        served.base.starts_with("ws://127.0.0.1:"),
        "{}",
        served.base
    );
    assert!(
        !served.base.ends_with(":0"),
        "the bound port is printed, not 0"
    );
    served
}

/// Runs `wsauth probe`; returns (stdout, exit code).
fn probe(args: &[&str]) -> (String, i32) {
    let out = Command::new(BIN)
        .arg("probe")
        .args(args)
        .args(["--wait-ms", "300", "--connect-timeout-ms", "5000"])
        .output()
        .expect("run wsauth probe");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        out.status.code().unwrap_or(-1),
    )
}

fn check_reference_app(s: &Served) {
    let url = |p: &str| format!("{}{p}", s.base);
    let rows: Vec<(Vec<String>, &str, i32)> = vec![
        (vec![url("/ws/chat/lobby/")], "OPEN", 0),
        (
            vec![url("/ws/admin/chat/"), "--token".into(), s.staff.clone()],
            "OPEN",
            0,
        ),
        (
            vec![url("/ws/admin/chat/"), "--token".into(), s.customer.clone()],
            "CLOSED 4403 staff only",
            1,
        ),
        (
            vec![url("/ws/logs/")],
            "CLOSED 4401 authentication required",
            1,
        ),
        (
            vec![
                url("/ws/logs/"),
                "--token".into(),
                s.staff.clone(),
                "--carrier".into(),
                "header".into(),
            ],
            "OPEN",
            0,
        ),
        (
            vec![
                url("/ws/receipts/100/"),
                "--token".into(),
                s.customer.clone(),
                "--carrier".into(),
                "subprotocol".into(),
            ],
            "OPEN",
            0,
        ),
        (
            vec![
                url("/ws/receipts/100/"),
                "--token".into(),
                s.staff.clone(),
                "--carrier".into(),
                "cookie".into(),
            ],
            "CLOSED 4403 not the owner",
            1,
        ),
        (
            vec![
                url("/ws/conversations/1/"),
                "--token".into(),
                s.customer.clone(),
                "--carrier".into(),
                "message".into(),
            ],
            "OPEN",
            0,
        ),
        (
            vec![url("/ws/admin/chat/"), "--token".into(), "garbage".into()],
            "CLOSED 4401 token invalid",
            1,
        ),
        (
            vec![
                url("/ws/chat/lobby/"),
                "--origin".into(),
                "https://evil.example".into(),
            ],
            "HTTP 403",
            1,
        ),
        (vec![url("/ws/nowhere/")], "CLOSED 4404 no route", 1),
    ];
    for (args, want, code) in rows {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, rc) = probe(&args);
        assert_eq!((out.as_str(), rc), (want, code), "probe {:?}", &args[..1]);
    }
    // --json: one object, and the token never appears in it.
    let (out, rc) = probe(&[
        &url("/ws/receipts/100/"),
        "--token",
        &s.customer,
        "--carrier",
        "subprotocol",
        "--json",
    ]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["outcome"], "open");
    assert_eq!(v["subprotocol"], "bearer");
    // The built-in app serves: no edge mode to report.
    assert!(v.get("mode").is_none(), "{out}");
    assert!(!out.contains(&s.customer));
    let (out, rc) = probe(&[&url("/ws/admin/chat/"), "--token", &s.customer, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(
        (v["outcome"].as_str(), v["code"].as_u64(), rc),
        (Some("closed"), Some(4403), 1)
    );
}

#[test]
fn serve_default_config_and_probe() {
    let s = serve(&[], &[]);
    check_reference_app(&s);
}

/// Threads of process `pid` whose name starts with `prefix`.
fn threads_named(pid: u32, prefix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the process's threads")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// Connections run on one worker thread per CPU (smol's own default is a
/// single one), or on as many as `SMOL_THREADS` says.
#[test]
fn serve_runs_connections_on_every_cpu() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (env, want) in [(None, cpus), (Some("3"), 3)] {
        let env: Vec<(&str, &str)> = env.map(|v| ("SMOL_THREADS", v)).into_iter().collect();
        let s = serve(&[], &env);
        // The executor starts its threads with its first task: a connection.
        let (out, code) = probe(&[&format!("{}/ws/chat/lobby/", s.base)]);
        assert_eq!((out.as_str(), code), ("OPEN", 0));
        assert_eq!(threads_named(s.child.id(), "smol-"), want, "{env:?}");
    }
}

#[test]
fn serve_example_config_with_secret_from_env() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/reference-app.toml");
    let example = example.to_str().expect("utf-8 path");
    let s = serve(
        &["--config", example],
        &[(
            "WSAUTH_SECRET",
            "example-secret-for-the-smoke-test-0123456789",
        )],
    );
    check_reference_app(&s);
}

#[test]
fn serve_claims_only_example() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/claims-only.toml");
    let example = example.to_str().expect("utf-8 path");
    let s = serve(
        &["--config", example],
        &[(
            "WSAUTH_SECRET",
            "claims-only-secret-for-the-smoke-test-9876543210",
        )],
    );
    let url = |p: &str| format!("{}{p}", s.base);
    let rows: Vec<(Vec<String>, &str, i32)> = vec![
        // The printed staff token carries `is_staff` in claims mode.
        (
            vec![url("/ws/admin/chat/"), "--token".into(), s.staff.clone()],
            "OPEN",
            0,
        ),
        (
            vec![
                url("/ws/admin/chat/"),
                "--token".into(),
                s.customer.clone(),
                "--carrier".into(),
                "subprotocol".into(),
            ],
            "CLOSED 4403 staff only",
            1,
        ),
        (
            vec![
                url("/ws/admin/chat/"),
                "--token".into(),
                s.staff.clone(),
                "--carrier".into(),
                "message".into(),
            ],
            "OPEN",
            0,
        ),
        (
            vec![
                url("/ws/admin/chat/"),
                "--token".into(),
                s.customer.clone(),
                "--carrier".into(),
                "message".into(),
            ],
            "CLOSED 4403 staff only",
            1,
        ),
        (
            vec![
                url("/ws/receipts/100/"),
                "--token".into(),
                s.customer.clone(),
                "--carrier".into(),
                "header".into(),
            ],
            "OPEN",
            0,
        ),
        (
            vec![
                url("/ws/receipts/abc/"),
                "--token".into(),
                s.customer.clone(),
            ],
            "CLOSED 4404 no route",
            1,
        ),
        (
            vec![
                url("/ws/chat/lobby/"),
                "--origin".into(),
                "https://app.example.com".into(),
            ],
            "OPEN",
            0,
        ),
    ];
    for (args, want, code) in rows {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, rc) = probe(&args);
        assert_eq!((out.as_str(), rc), (want, code), "probe {:?}", &args[..1]);
    }
}

#[test]
fn probe_usage_and_connect_errors_exit_2() {
    let (_, rc) = probe(&["http://127.0.0.1:1/"]);
    assert_eq!(rc, 2, "not a ws:// URL");
    // Port 1 on loopback: nothing listens there.
    let (_, rc) = probe(&["ws://127.0.0.1:1/ws/chat/lobby/"]);
    assert_eq!(rc, 2, "connection refused");
}

#[test]
fn serve_refuses_a_bad_config() {
    let dir = std::env::temp_dir().join(format!("wsauth-serve-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[jwt]\nalgorithm = \"RS256\"\n").expect("write");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .expect("run wsauth serve");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("jwt.algorithm") && err.contains("jwt.secret"),
        "{err}"
    );
}

#[test]
fn example_config_matches_the_embedded_default() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/reference-app.toml");
    let text = std::fs::read_to_string(example).expect("example config");
    let parsed: wsauth_core::Config = toml::from_str(&text).expect("valid TOML config");
    assert_eq!(parsed.check(), Vec::new());
    let default =
        wsauth_smol::reference::default_config(wsauth_core::SecretRef::Env("WSAUTH_SECRET".into()));
    assert_eq!(parsed.jwt, default.jwt);
    assert_eq!(parsed.users, default.users);
    assert_eq!(parsed.session, default.session);
    assert_eq!(parsed.origins, default.origins);
    assert_eq!(parsed.routes, default.routes);
    assert_eq!(parsed.limits, default.limits);
    assert_eq!(parsed.effective_carriers(), default.effective_carriers());
    assert_eq!(
        parsed.credentials.jwt_cookie,
        default.credentials.jwt_cookie
    );
}

#[test]
fn django_db_example_is_clean() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/django-db.toml");
    let text = std::fs::read_to_string(example).expect("example config");
    let parsed: wsauth_core::Config = toml::from_str(&text).expect("valid TOML config");
    assert_eq!(parsed.check(), Vec::new());
    let db = parsed.database.expect("[database]");
    assert_eq!(db.url, wsauth_core::SecretRef::Env("DATABASE_URL".into()));
    assert_eq!(parsed.users.source, wsauth_core::UserSource::Directory);
    let sql = parsed.routes[2]
        .bound_sql(wsauth_core::sql::Placeholders::Dollar)
        .expect("sql")
        .expect("binds");
    assert_eq!(
        sql.text,
        "SELECT 1 FROM shop_receipt WHERE id = $1 AND owner_id = $2"
    );
}

/// Edge mode through the binary: `examples/edge.toml` pointed at a real
/// upstream WebSocket server. The banner names the upstream; accepted
/// connections reach it, refused ones do not.
#[test]
fn serve_edge_example_forwards_to_the_upstream() {
    use wsauth_test_support::edge::{Upstream, UPSTREAM_SECRET};
    let up = Upstream::start("127.0.0.1:0".parse().unwrap()).expect("upstream");
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/edge.toml");
    let text = std::fs::read_to_string(&example).expect("example");
    let upstream_url = format!("ws://{}", up.addr);
    let text = text.replace("ws://127.0.0.1:8000", &upstream_url);
    let dir = std::env::temp_dir().join(format!("wsauth-edge-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("edge.toml");
    std::fs::write(&config, text).unwrap();
    let s = serve(
        &["--config", config.to_str().unwrap()],
        &[
            (
                "WSAUTH_SECRET",
                "example-secret-for-the-smoke-test-0123456789",
            ),
            ("WSAUTH_UPSTREAM_SECRET", UPSTREAM_SECRET),
        ],
    );
    assert!(
        s.forwarding
            .as_deref()
            .is_some_and(|l| l.contains(&upstream_url)),
        "{:?}",
        s.forwarding
    );
    let url = |p: &str| format!("{}{p}", s.base);
    let (out, rc) = probe(&[&url("/ws/admin/chat/"), "--token", &s.customer]);
    assert_eq!((out.as_str(), rc), ("CLOSED 4403 staff only", 1));
    let (out, rc) = probe(&[&url("/ws/logs/")]);
    assert_eq!(
        (out.as_str(), rc),
        ("CLOSED 4401 authentication required", 1)
    );
    assert_eq!(
        up.connections(),
        0,
        "a refused handshake reached the upstream"
    );
    let (out, rc) = probe(&[&url("/ws/admin/chat/"), "--token", &s.staff]);
    assert_eq!((out.as_str(), rc), ("OPEN", 0));
    // The probe learns the mode from the gateway's answer.
    let (out, rc) = probe(&[&url("/ws/admin/chat/"), "--token", &s.staff, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("probe JSON");
    assert_eq!(
        (v["outcome"].as_str(), v["mode"].as_str(), rc),
        (Some("open"), Some("edge"), 0)
    );
    assert_eq!(up.requests().len(), 2);
    let seen = &up.requests()[0];
    assert_eq!(seen.target, "/ws/admin/chat/");
    assert_eq!(seen.values("x-wsauth-principal").len(), 1);
    // The upstream gone: accepted, then closed 1014 (as sent, not tungstenite's 1002).
    drop(up);
    let (out, rc) = probe(&[&url("/ws/admin/chat/"), "--token", &s.staff]);
    assert_eq!((out.as_str(), rc), ("CLOSED 1014 upstream unavailable", 1));
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}
