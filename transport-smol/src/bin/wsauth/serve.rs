//! `wsauth serve`: the WebSocket gateway.
//!
//! Without `--config`, an embedded default serves the reference app
//! ([`wsauth_smol::reference`]) with a signing secret from `WSAUTH_SECRET` (else
//! generated from the OS RNG and printed), and prints a staff token, a
//! customer token and `wsauth probe` commands to try. Its users, sessions,
//! receipts and conversations live in a SQLite database created at start
//! (laid out as Django's migrations lay it out, in a temporary directory or
//! `--data-dir`) and are read through the same [`SqlHost`] a production
//! deployment uses. With `--config FILE` (TOML, the same `Config` that
//! `wsauth config check` validates) everything comes from the file: with a
//! `[database]` table the host is the app's database; without one, users,
//! receipts and conversations come from the in-memory demo directory.

use super::output::{print_json, print_line};
use super::{EXIT_OK, EXIT_USAGE};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wsauth_core::{
    ClaimValue, Config, InlineStr, MintRequest, SecretRef, TokenVerifier, UserSource,
};
use wsauth_smol::reference::{
    self, ReferenceApp, CUSTOMER_RECEIPT, CUSTOMER_USER_ID, STAFF_USER_ID,
};
use wsauth_smol::sql::{create_reference_sqlite, SqlHost};
use wsauth_smol::{Gateway, Host, Server, SmolRuntime};

/// Environment variable holding the default configuration's signing secret.
pub const SECRET_ENV: &str = "WSAUTH_SECRET";

/// Lifetime of the tokens printed at start, seconds.
const DEMO_TOKEN_LIFETIME: i64 = 3600;

/// Arguments of `wsauth serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Config file (TOML). Without it, an embedded default with the reference app's routes.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8001")]
    pub listen: String,
    /// Print one JSON object on stdout (address, demo tokens) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Without --config: where the demo SQLite database is created
    /// (default: a new directory under the system's temporary directory,
    /// removed at exit).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Runs `wsauth serve`; returns the process exit code.
pub fn run(args: ServeArgs) -> i32 {
    worker_threads();
    match prepare(&args) {
        Ok(prepared) => smol::block_on(serve(args, prepared)),
        Err(message) => {
            eprintln!("wsauth serve: config error: {message}");
            if args.json {
                print_json(
                    &serde_json::json!({ "error": { "kind": "config", "message": message } }),
                );
            }
            EXIT_USAGE
        }
    }
}

/// Connections run on smol's global executor, which starts `SMOL_THREADS`
/// threads at its first task, and one when that is unset: left alone, every
/// connection of the gateway would share one core. Unless the variable is
/// set, it is set here to one thread per CPU, before anything runs a task
/// (the process has no other thread yet).
fn worker_threads() {
    if std::env::var_os("SMOL_THREADS").is_none() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("SMOL_THREADS", cpus.to_string());
    }
}

struct Prepared {
    config: Config,
    /// The generated secret, when one was generated (printed once, for minting more tokens).
    generated_secret: Option<String>,
    /// The demo database this process created (removed at exit when it made the directory).
    demo_db: Option<DemoDb>,
}

struct DemoDb {
    file: PathBuf,
    /// The directory to remove at exit (a temporary one this process made).
    remove_dir: Option<PathBuf>,
}

fn prepare(args: &ServeArgs) -> Result<Prepared, String> {
    match &args.config {
        Some(path) => Ok(Prepared {
            config: load_config(path)?,
            generated_secret: None,
            demo_db: None,
        }),
        None => {
            let (secret, generated_secret) = match std::env::var(SECRET_ENV) {
                Ok(s) if !s.is_empty() => (SecretRef::Env(SECRET_ENV.into()), None),
                _ => {
                    let secret = generate_secret()?;
                    (SecretRef::Value(secret.clone()), Some(secret))
                }
            };
            let (dir, remove_dir) = match &args.data_dir {
                Some(d) => (d.clone(), None),
                None => {
                    let d = std::env::temp_dir().join(format!(
                        "wsauth-serve-{}-{}",
                        std::process::id(),
                        random_jti()
                    ));
                    (d.clone(), Some(d))
                }
            };
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let file = dir.join("db.sqlite3");
            smol::block_on(create_reference_sqlite(&file))
                .map_err(|e| format!("cannot create the demo database {}: {e}", file.display()))?;
            let url = format!("sqlite://{}", file.display());
            Ok(Prepared {
                config: reference::database_config(secret, SecretRef::Value(url)),
                generated_secret,
                demo_db: Some(DemoDb { file, remove_dir }),
            })
        }
    }
}

/// The host: the `[database]` when the config has one, else the demo directory.
fn make_host(config: &Config) -> Result<Arc<dyn Host>, String> {
    let Some(db) = &config.database else {
        return Ok(Arc::new(reference::demo_host_for(config)));
    };
    let url = db
        .url
        .resolve(
            |name| std::env::var(name).ok(),
            |path| std::fs::read(path).ok(),
        )
        .ok_or_else(|| {
            "database.url: the secret could not be resolved (variable unset or file unreadable)"
                .to_string()
        })?;
    let host = SqlHost::new(config, &url).map_err(|e| e.to_string())?;
    // Prepare every statement once: a wrong table or column is reported now
    // (the lookups using it will close 1013). An unreachable database is
    // only a warning: the gateway serves and recovers when it comes up.
    let checked = smol::block_on(async {
        use futures::FutureExt;
        let deadline = smol::Timer::after(std::time::Duration::from_secs(5)).fuse();
        let found = host.check().fuse();
        futures::pin_mut!(deadline, found);
        futures::select! {
            f = found => Some(f),
            _ = deadline => None,
        }
    });
    match checked {
        Some(problems) => {
            for p in problems {
                eprintln!("wsauth serve: warning: {p}");
            }
        }
        None => eprintln!("wsauth serve: warning: the database did not answer within 5 s"),
    }
    Ok(Arc::new(host))
}

/// Reads and checks a TOML config file; every problem is listed.
pub(crate) fn load_config(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let config: Config =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    let problems = config.check();
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        return Err(format!("{}: {}", path.display(), list.join("; ")));
    }
    Ok(config)
}

/// 50 characters from the OS RNG (like Django's `get_random_secret_key`).
fn generate_secret() -> Result<String, String> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789!@#%^&*(-_=+)";
    let mut bytes = [0u8; 50];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot read the OS random generator: {e}"))?;
    Ok(bytes
        .iter()
        .map(|b| {
            char::from(
                CHARS
                    .get(usize::from(*b) % CHARS.len())
                    .copied()
                    .unwrap_or(b'x'),
            )
        })
        .collect())
}

/// `uuid4().hex`-shaped token id.
fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = t.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mint(tokens: &TokenVerifier, user: &str, staff_claim: bool, now: i64) -> String {
    let jti = random_jti();
    let id = InlineStr::new(user)
        .map(ClaimValue::Str)
        .unwrap_or(ClaimValue::Null);
    let extra_staff = [("is_staff", ClaimValue::Bool(true))];
    let extra: &[(&str, ClaimValue)] = if staff_claim { &extra_staff } else { &[] };
    tokens.mint(
        &MintRequest {
            user_id: id,
            lifetime: DEMO_TOKEN_LIFETIME,
            jti: &jti,
            extra,
        },
        now,
    )
}

async fn serve(args: ServeArgs, prepared: Prepared) -> i32 {
    let Prepared {
        config,
        generated_secret,
        demo_db,
    } = prepared;
    let base = match make_host(&config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("wsauth serve: config error: {e}");
            return EXIT_USAGE;
        }
    };
    let wiring = match super::shared::wire(&config, base) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("wsauth serve: config error: {e}");
            return EXIT_USAGE;
        }
    };
    let app = Arc::new(ReferenceApp::new(SmolRuntime));
    let mut gateway = match Gateway::from_config(&config, wiring.host, app) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("wsauth serve: config error: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(rates) = wiring.rates {
        gateway = gateway.with_rate_store(rates);
    }
    if let Some(redis) = wiring.listener {
        let live = gateway.live_connections().clone();
        smol::spawn(redis.listen(SmolRuntime, live)).detach();
    }
    let server = match Server::bind(args.listen.as_str(), gateway.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wsauth serve: cannot listen on {}: {e}", args.listen);
            return EXIT_USAGE;
        }
    };
    let addr = match server.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wsauth serve: {e}");
            return EXIT_USAGE;
        }
    };
    let base = format!("ws://{addr}");
    let now = unix_secs();
    let tokens = gateway.authenticator().tokens();
    // In claims mode the staff flag travels in the token; with a directory it comes from the user.
    let claims_mode = config.users.source == UserSource::Claims;
    let staff = mint(tokens, STAFF_USER_ID, claims_mode, now);
    let customer = mint(tokens, CUSTOMER_USER_ID, false, now);
    let routes: Vec<String> = config.routes.iter().map(|r| r.path.clone()).collect();
    // Edge mode: every accepted connection goes to the upstream app.
    let upstream = gateway.edge().map(|e| e.url().to_string());

    if args.json {
        print_json(&serde_json::json!({
            "listen": base,
            "mode": if upstream.is_some() { "edge" } else { "reference" },
            "upstream": upstream,
            "routes": routes,
            "staff_token": staff,
            "customer_token": customer,
            "token_lifetime_secs": DEMO_TOKEN_LIFETIME,
            "generated_secret": generated_secret,
            "database": demo_db.as_ref().map(|d| d.file.display().to_string()),
        }));
    } else {
        print_line(&format!("listening: {base}"));
        match &upstream {
            Some(url) => print_line(&format!(
                "forwarding to {url} (edge mode: accepted connections go to the upstream app, with the signed principal header)"
            )),
            None => print_line("serving the built-in reference app (no [upstream] configured)"),
        }
        print_line(&format!("routes: {}", routes.join(" ")));
        match &generated_secret {
            Some(s) => print_line(&format!(
                "secret: {s}  (generated; set {SECRET_ENV} to choose one, e.g. for `wsauth token mint`)"
            )),
            None if args.config.is_none() => print_line(&format!("secret: from {SECRET_ENV}")),
            None => {}
        }
        if let Some(d) = &demo_db {
            print_line(&format!(
                "database: {} (SQLite, Django's tables: auth_user, django_session, shop_receipt, shop_conversation_members)",
                d.file.display()
            ));
        }
        print_line(&format!("staff_token: {staff}"));
        print_line(&format!("customer_token: {customer}"));
        print_line(&format!("(tokens: user 1 admin is staff, user 2 customer owns receipt {CUSTOMER_RECEIPT}; valid {DEMO_TOKEN_LIFETIME} s)"));
        print_line("try:");
        for (cmd, expect) in [
            (format!("wsauth probe {base}/ws/chat/lobby/"), "OPEN (anonymous chat)"),
            (format!("wsauth probe {base}/ws/admin/chat/ --token {staff}"), "OPEN"),
            (format!("wsauth probe {base}/ws/admin/chat/ --token {customer}"), "CLOSED 4403 staff only"),
            (format!("wsauth probe {base}/ws/logs/"), "CLOSED 4401 authentication required"),
            (
                format!("wsauth probe {base}/ws/receipts/{CUSTOMER_RECEIPT}/ --token {customer} --carrier subprotocol"),
                "OPEN",
            ),
            (format!("wsauth probe {base}/ws/receipts/{CUSTOMER_RECEIPT}/ --token {staff}"), "CLOSED 4403 not the owner"),
            (format!("wsauth probe {base}/ws/conversations/1/ --token {customer} --carrier message"), "OPEN"),
            (format!("wsauth probe {base}/ws/chat/lobby/ --origin https://evil.example"), "HTTP 403"),
        ] {
            print_line(&format!("  {cmd}\n      # → {expect}"));
        }
    }
    tracing::info!(listen = %addr, "serving");
    server.run_until_signal().await;
    if let Some(dir) = demo_db.and_then(|d| d.remove_dir) {
        let _ = std::fs::remove_dir_all(dir);
    }
    EXIT_OK
}

/// Unix time in whole seconds (the core's clock).
fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
