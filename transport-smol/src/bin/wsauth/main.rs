//! The `wsauth` command-line tool: see `wsauth --help`.
//!
//! Every subcommand takes `--json` (one JSON object on stdout) and exits
//! [`EXIT_OK`] on success / valid, [`EXIT_INVALID`] on invalid / rejected and
//! [`EXIT_USAGE`] on usage or config errors. `--now UNIX` replaces the clock
//! wherever time matters. Logs go to stderr (`-v`, or `WSAUTH_LOG` with
//! `tracing-subscriber` filter syntax) and never contain a token, a cookie
//! value or a secret.

use clap::{ArgAction, Parser, Subcommand};
use std::ffi::OsString;

mod config_check;
mod input;
mod output;
pub mod probe;
pub mod serve;
mod session;
mod shared;
mod token;

/// Exit code: success, or the credential is valid.
pub const EXIT_OK: i32 = 0;
/// Exit code: the credential is invalid / rejected.
pub const EXIT_INVALID: i32 = 1;
/// Exit code: usage or configuration error.
pub const EXIT_USAGE: i32 = 2;

/// `wsauth`: authenticate WebSocket connections exactly as Django, SimpleJWT and Channels do.
#[derive(Debug, Parser)]
#[command(name = "wsauth", version, max_term_width = 100)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). `WSAUTH_LOG` overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the WebSocket gateway.
    Serve(serve::ServeArgs),
    /// Connect to a WebSocket URL and report OPEN, CLOSED <code> <reason> or HTTP <status>.
    Probe(probe::ProbeArgs),
    /// SimpleJWT access tokens: check or mint.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Django sessions: decide `get_user()` for a session cookie.
    #[command(subcommand)]
    Session(session::SessionCommand),
    /// Configuration files.
    #[command(subcommand)]
    Config(config_check::ConfigCommand),
    /// Revoke a token id or a user on every gateway sharing `[redis]`.
    #[command(subcommand)]
    Revoke(shared::RevokeCommand),
}

fn main() {
    std::process::exit(run(std::env::args_os()));
}

/// Runs the tool with `args` (the first one is the program name); returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            // --help / --version print to stdout and exit 0; usage errors exit 2.
            let secrets = secret_values(&args);
            if secrets.is_empty() {
                let _ = err.print();
            } else {
                // Plain text, so no escape sequence splits a secret apart.
                let text = redact(&err.render().to_string(), &secrets);
                if err.use_stderr() {
                    eprint!("{text}");
                } else {
                    print!("{text}");
                }
            }
            return err.exit_code();
        }
    };
    init_logging(cli.verbose);
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Token(cmd) => token::run(cmd),
        Command::Session(cmd) => session::run(cmd),
        Command::Config(cmd) => config_check::run(cmd),
        Command::Revoke(cmd) => shared::run(cmd),
    }
}

/// The values given to `--secret` (`--secret S`, `--secret=S`), to keep them
/// out of usage errors.
fn secret_values(args: &[OsString]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter().map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--secret" {
            if let Some(v) = it.next() {
                out.push(v.into_owned());
            }
        } else if let Some(v) = a.strip_prefix("--secret=") {
            out.push(v.to_string());
        }
    }
    out.retain(|s| !s.is_empty() && s != "-");
    out
}

/// Shortest run of a secret's characters treated as a leak of it.
const SECRET_LEAK_CHARS: usize = 4;

/// `text` without any secret: each line holding a secret, or any run of
/// [`SECRET_LEAK_CHARS`] characters of one, is replaced by a notice.
fn redact(text: &str, secrets: &[String]) -> String {
    let leaks = |line: &str| {
        secrets.iter().any(|s| {
            let chars: Vec<char> = s.chars().collect();
            if chars.len() < SECRET_LEAK_CHARS {
                return line.contains(s.as_str());
            }
            chars.windows(SECRET_LEAK_CHARS).any(|w| {
                let part: String = w.iter().collect();
                line.contains(&part)
            })
        })
    };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if leaks(line) {
            out.push_str("  (a line naming a --secret value was left out)\n");
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Logs to stderr. `WSAUTH_LOG` (filter syntax) wins over `-v`.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("WSAUTH_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // A second initialisation (several runs in one process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
