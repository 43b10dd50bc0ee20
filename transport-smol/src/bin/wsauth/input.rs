//! Reading the inputs of a decision: secrets, the clock, credentials (from an
//! argument or stdin) and JSON files. Nothing here logs or echoes a value.

use super::output::Failure;
use clap::Args;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::Path;
use wsauth_core::SecretKey;

/// The environment variable read when no `--secret` / `--secret-env` is given.
pub(crate) const SECRET_ENV_DEFAULT: &str = "WSAUTH_SECRET";

/// Largest JSON input file accepted (users, session rows).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Secret keys: `--secret-env VAR` first (when given), then each `--secret`,
/// else `$WSAUTH_SECRET`. The first key signs; the rest are accepted fallbacks.
#[derive(Debug, Clone, Args)]
pub(crate) struct SecretArgs {
    /// Secret key (repeatable): the first signs, the rest are accepted fallbacks.
    /// Arguments are visible to other local users: prefer --secret-env or $WSAUTH_SECRET.
    #[arg(long = "secret", value_name = "S")]
    secret: Vec<OsString>,
    /// Read the signing secret from environment variable VAR (it comes before any --secret,
    /// which then become fallbacks). Without --secret and --secret-env, $WSAUTH_SECRET is used.
    #[arg(long, value_name = "VAR")]
    secret_env: Option<OsString>,
}

impl SecretArgs {
    /// The key ring, signing key first.
    pub(crate) fn resolve(&self) -> Result<(SecretKey, Vec<SecretKey>), Failure> {
        let mut keys: Vec<SecretKey> = Vec::new();
        if let Some(var) = &self.secret_env {
            let name = var.to_string_lossy();
            match std::env::var_os(var) {
                Some(v) if !v.is_empty() => keys.push(SecretKey::new(v.into_encoded_bytes())),
                Some(_) => {
                    return Err(Failure::usage(format!(
                        "environment variable {name} (from --secret-env) is empty"
                    )))
                }
                None => {
                    return Err(Failure::usage(format!(
                        "environment variable {name} (from --secret-env) is not set"
                    )))
                }
            }
        }
        for s in &self.secret {
            keys.push(SecretKey::new(s.clone().into_encoded_bytes()));
        }
        if keys.is_empty() {
            if let Some(v) = std::env::var_os(SECRET_ENV_DEFAULT) {
                keys.push(SecretKey::new(v.into_encoded_bytes()));
            }
        }
        let mut it = keys.into_iter();
        let Some(first) = it.next() else {
            return Err(Failure::usage(format!(
                "no secret key: pass --secret S, --secret-env VAR or set {SECRET_ENV_DEFAULT}"
            )));
        };
        let rest: Vec<SecretKey> = it.collect();
        if first.is_empty() || rest.iter().any(SecretKey::is_empty) {
            return Err(Failure::usage("a secret key is empty"));
        }
        Ok((first, rest))
    }
}

/// `--now` or the system clock, as Unix seconds.
pub(crate) fn now(flag: Option<i64>) -> Result<i64, Failure> {
    if let Some(n) = flag {
        return Ok(n);
    }
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Failure::config("the system clock is before 1970; pass --now UNIX"))?;
    i64::try_from(elapsed.as_secs())
        .map_err(|_| Failure::config("the system clock is out of range; pass --now UNIX"))
}

/// A credential read from an argument or stdin, before any parsing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// UTF-8 text within the size limit.
    Text(String),
    /// Longer than the limit (the bytes are dropped unread past it).
    TooLarge,
    /// Not valid UTF-8.
    NotUtf8,
}

/// Reads a credential: the argument itself, or stdin when it is `-` (so the
/// credential stays out of shell history). Surrounding whitespace of stdin
/// input (e.g. the trailing newline of `echo`) is removed; an argument is
/// taken as it is. At most `max` bytes are accepted.
pub(crate) fn read_credential(arg: &OsStr, max: usize, what: &str) -> Result<Credential, Failure> {
    if arg == "-" {
        read_credential_from(std::io::stdin().lock(), max, what)
    } else {
        let bytes = arg.as_encoded_bytes();
        if bytes.len() > max {
            return Ok(Credential::TooLarge);
        }
        Ok(match std::str::from_utf8(bytes) {
            Ok(s) => Credential::Text(s.to_owned()),
            Err(_) => Credential::NotUtf8,
        })
    }
}

/// [`read_credential`] from any reader (stdin in the tool).
pub(crate) fn read_credential_from(
    reader: impl Read,
    max: usize,
    what: &str,
) -> Result<Credential, Failure> {
    // Room for surrounding whitespace (a trailing "\r\n", indentation) before the limit counts.
    const SLACK: usize = 64;
    let cap = max.saturating_add(SLACK).saturating_add(1);
    let mut buf = Vec::new();
    reader
        .take(u64::try_from(cap).unwrap_or(u64::MAX))
        .read_to_end(&mut buf)
        .map_err(|e| Failure::config(format!("cannot read the {what} from stdin: {e}")))?;
    let trimmed = trim_ascii_whitespace(&buf);
    if trimmed.len() > max || buf.len() >= cap {
        return Ok(Credential::TooLarge);
    }
    Ok(match std::str::from_utf8(trimmed) {
        Ok(s) => Credential::Text(s.to_owned()),
        Err(_) => Credential::NotUtf8,
    })
}

fn trim_ascii_whitespace(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Reads and parses a JSON file (`what` names it in errors, e.g. `--users`).
pub(crate) fn read_json_file(path: &Path, what: &str) -> Result<serde_json::Value, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::config(format!("{what} {}: cannot open: {e}", path.display())))?;
    let mut text = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| Failure::config(format!("{what} {}: cannot read: {e}", path.display())))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(Failure::config(format!(
            "{what} {}: larger than {MAX_FILE_BYTES} bytes",
            path.display()
        )));
    }
    serde_json::from_slice(&text).map_err(|e| {
        // serde_json's messages carry line/column and the expected token, never the data.
        Failure::config(format!("{what} {}: not valid JSON: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_credentials_are_trimmed_and_bounded() {
        let rows: &[(&[u8], usize, Credential)] = &[
            (b"abc\n", 8, Credential::Text("abc".into())),
            (b"  abc \r\n", 3, Credential::Text("abc".into())),
            (b"abcd", 3, Credential::TooLarge),
            (b"\xff\xfe", 8, Credential::NotUtf8),
            (b"", 8, Credential::Text(String::new())),
        ];
        for (input, max, want) in rows {
            let got = read_credential_from(*input, *max, "token").unwrap();
            assert_eq!(&got, want, "input {input:?} max {max}");
        }
        // Far more than the limit: stops reading and reports too large.
        let big = vec![b'a'; 1 << 20];
        assert_eq!(
            read_credential_from(&big[..], 100, "token").unwrap(),
            Credential::TooLarge
        );
        // Whitespace-only padding beyond the slack is too large as well.
        let padded = [b"abc".as_slice(), &[b' '; 200]].concat();
        assert_eq!(
            read_credential_from(&padded[..], 8, "token").unwrap(),
            Credential::TooLarge
        );
    }

    #[test]
    fn argument_credentials_are_taken_as_is() {
        assert_eq!(
            read_credential(OsStr::new(" a.b.c "), 16, "token").unwrap(),
            Credential::Text(" a.b.c ".into())
        );
        assert_eq!(
            read_credential(OsStr::new("abcdef"), 5, "token").unwrap(),
            Credential::TooLarge
        );
    }

    #[test]
    fn missing_secret_is_a_usage_error() {
        let args = SecretArgs {
            secret: vec![],
            secret_env: Some("WSAUTH_TEST_UNSET_VARIABLE".into()),
        };
        let err = args.resolve().unwrap_err();
        assert_eq!(err.kind(), super::super::output::FailureKind::Usage);
        assert!(err.to_string().contains("WSAUTH_TEST_UNSET_VARIABLE"));
        let empty = SecretArgs {
            secret: vec![OsString::from("")],
            secret_env: None,
        };
        assert!(empty.resolve().is_err());
        let ok = SecretArgs {
            secret: vec!["a".into(), "b".into()],
            secret_env: None,
        };
        let (first, rest) = ok.resolve().unwrap();
        assert_eq!(first.expose(), b"a");
        assert_eq!(rest.len(), 1);
    }
}
