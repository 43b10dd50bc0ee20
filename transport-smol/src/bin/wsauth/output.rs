//! Output conventions shared by the subcommands: one JSON object on stdout
//! with `--json`, short text otherwise; usage and config errors on stderr
//! (and as `{"error":{"kind":"usage"|"config","message":…}}` with `--json`).

use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};
use serde_json::Value;
use std::fmt;
use std::io::Write;

/// A usage or configuration error: the command could not decide anything (exit 2).
/// Messages name flags, files and variables, never their secret contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    kind: FailureKind,
    message: String,
}

/// What went wrong before a decision could be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Flags are missing, conflicting or malformed.
    Usage,
    /// A file or variable could not be read or does not have the expected shape.
    Config,
}

impl FailureKind {
    fn as_str(self) -> &'static str {
        match self {
            FailureKind::Usage => "usage",
            FailureKind::Config => "config",
        }
    }
}

impl Failure {
    /// A usage error.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Usage,
            message: message.into(),
        }
    }

    /// A configuration / input-file error.
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Config,
            message: message.into(),
        }
    }

    /// The kind.
    #[cfg(test)]
    pub(crate) fn kind(&self) -> FailureKind {
        self.kind
    }

    /// Reports the failure (stderr, plus the JSON object with `--json`) and returns exit code 2.
    pub(crate) fn report(&self, json: bool) -> i32 {
        eprintln!("wsauth: {} error: {}", self.kind.as_str(), self.message);
        if json {
            Object::new()
                .object(
                    "error",
                    Object::new()
                        .field("kind", &Value::from(self.kind.as_str()))
                        .field("message", &Value::from(self.message.as_str())),
                )
                .print();
        }
        EXIT_USAGE
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.kind.as_str(), self.message)
    }
}

/// Prints one JSON value on one line of stdout.
pub(crate) fn print_json(value: &Value) {
    print_line(&value.to_string());
}

/// A JSON object whose keys keep the order they are added in (the contract's
/// examples lead with `"valid"`), rendered as compact JSON text.
#[derive(Debug, Default)]
pub(crate) struct Object {
    text: String,
}

impl Object {
    /// An empty object.
    pub(crate) fn new() -> Self {
        Object::default()
    }

    /// Adds `key: value`.
    pub(crate) fn field(self, key: &str, value: &Value) -> Self {
        self.raw(key, &value.to_string())
    }

    /// Adds `key: <nested object>`.
    pub(crate) fn object(self, key: &str, value: Object) -> Self {
        let nested = value.render();
        self.raw(key, &nested)
    }

    /// Adds `key: <JSON text>`; `json_text` must be one compact JSON value.
    pub(crate) fn raw_field(self, key: &str, json_text: &str) -> Self {
        self.raw(key, json_text)
    }

    fn raw(mut self, key: &str, json_text: &str) -> Self {
        self.text.push(if self.text.is_empty() { '{' } else { ',' });
        self.text.push_str(&Value::from(key).to_string());
        self.text.push(':');
        self.text.push_str(json_text);
        self
    }

    /// The JSON text.
    pub(crate) fn render(self) -> String {
        if self.text.is_empty() {
            "{}".to_owned()
        } else {
            self.text + "}"
        }
    }

    /// Prints the object on one line of stdout.
    pub(crate) fn print(self) {
        print_line(&self.render());
    }
}

/// Prints a line on stdout; a closed stdout (e.g. `| head`) is not an error worth a panic.
pub(crate) fn print_line(line: &str) {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = writeln!(lock, "{line}");
    let _ = lock.flush();
}

/// `{"valid":false,"error":{"kind":…,"message":…}}`.
pub(crate) fn invalid_json(kind: &str, message: &str) -> Object {
    Object::new().field("valid", &Value::Bool(false)).object(
        "error",
        Object::new()
            .field("kind", &Value::from(kind))
            .field("message", &Value::from(message)),
    )
}

/// Exit code of a decision.
pub(crate) fn exit_code(valid: bool) -> i32 {
    if valid {
        EXIT_OK
    } else {
        EXIT_INVALID
    }
}

/// Runs a subcommand body and turns its [`Failure`] into exit code 2.
pub(crate) fn finish(json: bool, result: Result<i32, Failure>) -> i32 {
    match result {
        Ok(code) => code,
        Err(failure) => failure.report(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_insertion_order_and_escape() {
        let o = Object::new()
            .field("valid", &Value::Bool(false))
            .object("error", Object::new().field("kind", &Value::from("a\"b")));
        assert_eq!(o.render(), r#"{"valid":false,"error":{"kind":"a\"b"}}"#);
        assert_eq!(Object::new().render(), "{}");
        let parsed: Value =
            serde_json::from_str(&invalid_json("expired", "Token is expired").render()).unwrap();
        assert_eq!(parsed["error"]["kind"], "expired");
        assert_eq!(parsed["valid"], false);
    }
}
