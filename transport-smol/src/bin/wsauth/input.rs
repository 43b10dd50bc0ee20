//! Reading the inputs of a decision: secrets, the clock, credentials (from an
//! argument or stdin) and JSON files. Nothing here logs or echoes a value.

use super::output::Failure;
use clap::Args;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::Path;
use wsauth_core::{SecretKey, SecretRef};

/// The environment variable read when no `--secret` / `--secret-env` is given.
pub(crate) const SECRET_ENV_DEFAULT: &str = "WSAUTH_SECRET";

/// Largest JSON input file accepted (users, session rows).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Largest secret read from stdin or a file, bytes.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Secret keys: `--secret-env VAR` first (when given), then `--secret-file
/// PATH`, then each `--secret` (`-` reads one from stdin), else
/// `$WSAUTH_SECRET`. The first key signs; the rest are accepted fallbacks.
/// A secret value is never printed, not even in a usage error.
#[derive(Debug, Clone, Args)]
pub(crate) struct SecretArgs {
    /// Secret key (repeatable): the first signs, the rest are accepted fallbacks.
    /// `-` reads it from stdin. Arguments are visible to other local users (`ps`):
    /// prefer --secret-env, --secret-file, `--secret -` or $WSAUTH_SECRET.
    #[arg(long = "secret", value_name = "S", allow_hyphen_values = true)]
    secret: Vec<OsString>,
    /// Read the signing secret from environment variable VAR (it comes before any --secret,
    /// which then become fallbacks). Without --secret and --secret-env, $WSAUTH_SECRET is used.
    #[arg(long, value_name = "VAR")]
    secret_env: Option<OsString>,
    /// Read a secret from file PATH: UTF-8, one trailing line ending removed (the
    /// config file's `{ file = … }` rule). It comes after --secret-env, before any --secret.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<OsString>,
}

impl SecretArgs {
    /// True when a secret is read from stdin (`--secret -`).
    pub(crate) fn reads_stdin(&self) -> bool {
        self.secret.iter().any(|s| s == "-")
    }

    /// The key ring, signing key first.
    pub(crate) fn resolve(&self) -> Result<(SecretKey, Vec<SecretKey>), Failure> {
        self.resolve_from(std::io::stdin().lock())
    }

    /// [`SecretArgs::resolve`], reading `--secret -` from `stdin`.
    pub(crate) fn resolve_from(
        &self,
        stdin: impl Read,
    ) -> Result<(SecretKey, Vec<SecretKey>), Failure> {
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
        if let Some(path) = &self.secret_file {
            keys.push(secret_from_file(Path::new(path))?);
        }
        if self.secret.iter().filter(|s| *s == "-").count() > 1 {
            return Err(Failure::usage("only one --secret may be read from stdin"));
        }
        let mut stdin = Some(stdin);
        for s in &self.secret {
            if s == "-" {
                let Some(r) = stdin.take() else {
                    return Err(Failure::usage("only one --secret may be read from stdin"));
                };
                keys.push(secret_from_reader(r)?);
            } else {
                keys.push(SecretKey::new(s.clone().into_encoded_bytes()));
            }
        }
        if keys.is_empty() {
            if let Some(v) = std::env::var_os(SECRET_ENV_DEFAULT) {
                keys.push(SecretKey::new(v.into_encoded_bytes()));
            }
        }
        let mut it = keys.into_iter();
        let Some(first) = it.next() else {
            return Err(Failure::usage(format!(
                "no secret key: pass --secret-env VAR, --secret-file PATH, --secret - (stdin) \
                 or --secret S, or set {SECRET_ENV_DEFAULT}"
            )));
        };
        let rest: Vec<SecretKey> = it.collect();
        if first.is_empty() || rest.iter().any(SecretKey::is_empty) {
            return Err(Failure::usage("a secret key is empty"));
        }
        Ok((first, rest))
    }
}

/// A secret file, read by the core's rule for `{ file = … }` secrets.
fn secret_from_file(path: &Path) -> Result<SecretKey, Failure> {
    let shown = path.display();
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::usage(format!("--secret-file {shown}: cannot open: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::usage(format!("--secret-file {shown}: cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(Failure::usage(format!(
            "--secret-file {shown}: larger than {MAX_SECRET_BYTES} bytes"
        )));
    }
    let path_text = path.to_string_lossy().into_owned();
    let secret = SecretRef::File(path_text)
        .resolve(|_| None, |_| Some(std::mem::take(&mut bytes)))
        .ok_or_else(|| Failure::usage(format!("--secret-file {shown}: not UTF-8 text")))?;
    Ok(SecretKey::new(secret.into_bytes()))
}

/// A secret from stdin: the file rule (UTF-8, one trailing line ending removed).
fn secret_from_reader(reader: impl Read) -> Result<SecretKey, Failure> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::usage(format!("cannot read the secret from stdin: {e}")))?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(Failure::usage(format!(
            "the secret on stdin is larger than {MAX_SECRET_BYTES} bytes"
        )));
    }
    let secret = wsauth_core::secret_from_file(&bytes)
        .ok_or_else(|| Failure::usage("the secret on stdin is not UTF-8 text"))?;
    Ok(SecretKey::new(secret.into_bytes()))
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
            secret_file: None,
        };
        let err = args.resolve().unwrap_err();
        assert_eq!(err.kind(), super::super::output::FailureKind::Usage);
        assert!(err.to_string().contains("WSAUTH_TEST_UNSET_VARIABLE"));
        let empty = SecretArgs {
            secret: vec![OsString::from("")],
            secret_env: None,
            secret_file: None,
        };
        assert!(empty.resolve().is_err());
        let ok = SecretArgs {
            secret: vec!["a".into(), "b".into()],
            secret_env: None,
            secret_file: None,
        };
        let (first, rest) = ok.resolve().unwrap();
        assert_eq!(first.expose(), b"a");
        assert_eq!(rest.len(), 1);
    }

    #[test]
    fn secrets_from_stdin_and_files_follow_the_file_rule() {
        let args = SecretArgs {
            secret: vec!["-".into(), "fallback".into()],
            secret_env: None,
            secret_file: None,
        };
        let (first, rest) = args.resolve_from(&b"from-stdin\n"[..]).unwrap();
        assert_eq!(first.expose(), b"from-stdin");
        assert_eq!(rest.len(), 1);
        let twice = SecretArgs {
            secret: vec!["-".into(), "-".into()],
            secret_env: None,
            secret_file: None,
        };
        assert!(twice.resolve_from(&b"x"[..]).is_err());

        let dir = std::env::temp_dir().join(format!("wsauth-secret-{}", std::process::id()));
        std::fs::write(&dir, b" spaced secret \r\n").unwrap();
        let file = SecretArgs {
            secret: vec!["fallback".into()],
            secret_env: None,
            secret_file: Some(dir.clone().into_os_string()),
        };
        let (first, rest) = file.resolve_from(&b""[..]).unwrap();
        assert_eq!(first.expose(), b" spaced secret ");
        assert_eq!(rest.len(), 1);
        std::fs::write(&dir, b"\xff\xfe").unwrap();
        let err = file.resolve_from(&b""[..]).unwrap_err();
        assert!(err.to_string().contains("UTF-8"));
        let _ = std::fs::remove_file(&dir);
    }
}
