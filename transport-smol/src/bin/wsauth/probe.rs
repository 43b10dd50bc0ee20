//! `wsauth probe`: connect to a WebSocket URL and report the outcome.
//!
//! Prints `OPEN`, `CLOSED <code> <reason>` or `HTTP <status>` (one JSON object
//! with `--json`); exits 0 for OPEN, 1 for CLOSED / HTTP, 2 for usage and
//! connection errors. The token is never printed.

use super::output::{print_json, print_line};
use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};
use clap::{Args, ValueEnum};
use std::time::Duration;
use wsauth_smol::probe::{probe, ws_authority, ProbeCarrier, ProbeOutcome, ProbeRequest};
use wsauth_smol::SmolRuntime;

/// Where `wsauth probe` puts the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Carrier {
    /// `?token=` query parameter.
    Query,
    /// `?access=` query parameter.
    QueryAccess,
    /// `Authorization: Bearer` header.
    Header,
    /// `Sec-WebSocket-Protocol: bearer, <token>`.
    Subprotocol,
    /// A cookie (see `--cookie-name`).
    Cookie,
    /// A first in-band auth message `{"type":"auth","token":…}`.
    Message,
}

impl From<Carrier> for ProbeCarrier {
    fn from(c: Carrier) -> Self {
        match c {
            Carrier::Query => ProbeCarrier::Query,
            Carrier::QueryAccess => ProbeCarrier::QueryAccess,
            Carrier::Header => ProbeCarrier::Header,
            Carrier::Subprotocol => ProbeCarrier::Subprotocol,
            Carrier::Cookie => ProbeCarrier::Cookie,
            Carrier::Message => ProbeCarrier::Message,
        }
    }
}

/// Arguments of `wsauth probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The WebSocket URL (`ws://`).
    pub url: String,
    /// The token to present.
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// How to present the token.
    #[arg(long, value_enum, default_value_t = Carrier::Query)]
    pub carrier: Carrier,
    /// Cookie name for `--carrier cookie`.
    #[arg(long, value_name = "NAME", default_value = "access_token")]
    pub cookie_name: String,
    /// `Origin` header to send.
    #[arg(long, value_name = "O")]
    pub origin: Option<String>,
    /// Milliseconds to wait for a close after the upgrade before reporting OPEN.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub wait_ms: u64,
    /// Connection timeout, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub connect_timeout_ms: u64,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `wsauth probe`; returns the process exit code.
pub fn run(args: ProbeArgs) -> i32 {
    let req = ProbeRequest {
        url: args.url.clone(),
        token: args.token.clone(),
        carrier: args.carrier.into(),
        cookie_name: args.cookie_name.clone(),
        origin: args.origin.clone(),
        wait: Duration::from_millis(args.wait_ms),
    };
    let timeout = Duration::from_millis(args.connect_timeout_ms);
    match smol::block_on(run_probe(&req, timeout)) {
        Ok(outcome) => {
            if args.json {
                print_json(&outcome.to_json());
            } else {
                print_line(&outcome.line());
                if let ProbeOutcome::Open { mode: Some(m), .. } = &outcome {
                    // The contract's line stays on stdout; the mode is a note.
                    eprintln!("wsauth probe: gateway mode {m} (forwarded to the app behind it)");
                }
            }
            match outcome {
                ProbeOutcome::Open { .. } => EXIT_OK,
                _ => EXIT_INVALID,
            }
        }
        Err((kind, message)) => {
            eprintln!("wsauth probe: {message}");
            if args.json {
                print_json(&serde_json::json!({ "error": { "kind": kind, "message": message } }));
            }
            EXIT_USAGE
        }
    }
}

async fn run_probe(
    req: &ProbeRequest,
    timeout: Duration,
) -> Result<ProbeOutcome, (&'static str, String)> {
    use futures::FutureExt;
    let (host, port) = ws_authority(&req.url).map_err(|e| ("usage", e.to_string()))?;
    wsauth_smol::probe::build_request(req).map_err(|e| ("usage", e.to_string()))?;
    let connect = smol::net::TcpStream::connect((host.as_str(), port)).fuse();
    let deadline = smol::Timer::after(timeout).fuse();
    futures::pin_mut!(connect, deadline);
    let stream = futures::select! {
        s = connect => s.map_err(|e| ("connect", format!("cannot connect to {host}:{port}: {e}")))?,
        _ = deadline => return Err(("connect", format!("timed out connecting to {host}:{port}"))),
    };
    let outcome = probe(&SmolRuntime, stream, req).fuse();
    let deadline = smol::Timer::after(timeout + req.wait).fuse();
    futures::pin_mut!(outcome, deadline);
    futures::select! {
        o = outcome => o.map_err(|e| ("connect", e.to_string())),
        _ = deadline => Err(("connect", "timed out waiting for the handshake".into())),
    }
}
