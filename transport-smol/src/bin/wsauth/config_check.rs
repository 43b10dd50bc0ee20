//! `wsauth config check FILE`: every problem with its line, or `ok`.
//!
//! The file is TOML in the shape of [`wsauth_core::Config`]. Problems come in
//! three layers, each reported with its line:
//! 1. TOML syntax (every error the parser recovers from);
//! 2. shape: unknown keys and wrong types, per section and per route, so one
//!    bad section does not hide the others;
//! 3. meaning: [`Config::check`] (missing secret, bad algorithm, route
//!    patterns, carriers, origins, limits), then the keys themselves once the
//!    secret references resolve.
//!
//! Secret references that do not resolve *here* (an unset variable, an
//! unreadable file) are warnings: the file may be checked away from the
//! machine that serves it.

use super::output::{self, Failure};
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::Value;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;
use wsauth_core::{
    config::ConfigErrorKind, config::CredentialsConfig, config::DatabaseConfig, config::JwtConfig,
    config::LimitsConfig, config::OriginsConfig, config::RouteConfig, config::SessionConfig,
    config::UpstreamConfig, config::UsersConfig, Authenticator, Config, Requirement, SecretRef,
};

/// Largest config file accepted, bytes.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// The top-level tables of a config file.
const SECTIONS: &[&str] = &[
    "jwt",
    "users",
    "session",
    "credentials",
    "origins",
    "routes",
    "limits",
    "database",
    "upstream",
];

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a config file: every problem with its line, or `ok`.
    ///
    /// Exit 0: ok (warnings allowed); 1: the file has problems; 2: the file cannot be read.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The config file (TOML).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Print one JSON object on stdout:
    /// {"ok":bool,"problems":[{"line","path","message"}],"warnings":[…]}.
    #[arg(long)]
    json: bool,
    /// Also prepare every statement (user, session, each route's `sql`)
    /// against this database (`postgres://…`, `sqlite://…`) and report
    /// what fails (an unknown table or column), with its line.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

/// One finding in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// 1-based line, when known.
    pub(crate) line: Option<usize>,
    /// Dotted path of the setting (`routes[2].path`), when known.
    pub(crate) path: Option<String>,
    /// What is wrong. Never contains a secret value.
    pub(crate) message: String,
}

/// What checking a config text found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// The configuration, when its shape is right (it may still have problems).
    pub(crate) config: Option<Config>,
    /// Problems: the file must not be served as it is.
    pub(crate) problems: Vec<Problem>,
    /// Warnings: secret references that do not resolve here.
    pub(crate) warnings: Vec<Problem>,
}

pub(crate) fn run(cmd: ConfigCommand) -> i32 {
    match cmd {
        ConfigCommand::Check(args) => output::finish(args.json, check(&args)),
    }
}

fn check(args: &CheckArgs) -> Result<i32, Failure> {
    let text = read_text(&args.file)?;
    let mut report = check_text(&text, &mut resolve_from_host);
    if let Some(url) = &args.database {
        if report.problems.is_empty() {
            if let Some(config) = report.config.as_mut() {
                if config.database.is_none() {
                    config.database = Some(DatabaseConfig::new(SecretRef::Value(url.clone())));
                }
                let found = smol::block_on(prepare_all(config, url));
                let root = DeTable::parse(&text)
                    .map(|t| t.into_inner())
                    .unwrap_or_default();
                for (path, message) in found {
                    report.problems.push(Problem {
                        line: line_of_path(&text, &root, &path),
                        path: Some(path),
                        message,
                    });
                }
            }
        }
    }
    print_report(&args.file, &report, args.json);
    Ok(output::exit_code(report.problems.is_empty()))
}

/// Prepares every statement of `config` against the database at `url`:
/// `(config path, what failed)`.
async fn prepare_all(config: &Config, url: &str) -> Vec<(String, String)> {
    let host = match wsauth_smol::sql::SqlHost::new(config, url) {
        Ok(h) => h,
        Err(e) => return vec![(e.path, e.message)],
    };
    let timeout = std::time::Duration::from_secs(10);
    let checked = futures::FutureExt::fuse(host.check());
    let deadline = futures::FutureExt::fuse(smol::Timer::after(timeout));
    futures::pin_mut!(checked, deadline);
    let out = futures::select! {
        found = checked => found.into_iter().map(|e| (e.path, e.message)).collect(),
        _ = deadline => vec![("database.url".to_string(), format!("no answer from the database within {timeout:?}"))],
    };
    host.close().await;
    out
}

/// Reads a config file (UTF-8, at most [`MAX_CONFIG_BYTES`]).
pub(crate) fn read_text(path: &Path) -> Result<String, Failure> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::config(format!("{}: cannot open: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::config(format!("{}: cannot read: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Failure::config(format!(
            "{}: larger than {MAX_CONFIG_BYTES} bytes",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        Failure::config(format!(
            "{}: not UTF-8 text (at byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Resolves `{ env = … }` from the environment and `{ file = … }` from the
/// file system (one trailing newline removed).
pub(crate) fn resolve_from_host(r: &SecretRef) -> Option<String> {
    wsauth_smol::resolve_secret_ref(r)
}

/// Checks a config text; `resolve` answers `env` / `file` secret references.
pub(crate) fn check_text(
    text: &str,
    resolve: &mut dyn FnMut(&SecretRef) -> Option<String>,
) -> Report {
    let mut report = Report::default();
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        report.problems = syntax
            .iter()
            .map(|e| Problem {
                line: e.span().map(|s| line_of(text, s.start)),
                path: None,
                message: first_line(e.message()),
            })
            .collect();
        sort_by_line(&mut report.problems);
        return report;
    }
    let root = root.into_inner();
    let mut config = Config::default();
    // Paths whose own shape is wrong: their meaning is not checked again.
    let mut broken: Vec<String> = Vec::new();
    for (key, value) in &root {
        let name: &str = key.get_ref();
        let mut shapes = Shapes {
            text,
            key_start: key.span().start,
            broken: &mut broken,
            problems: &mut report.problems,
        };
        match name {
            "jwt" => {
                if let Some(v) = shapes.read::<JwtConfig>("jwt", value) {
                    config.jwt = v;
                }
            }
            "users" => {
                if let Some(v) = shapes.read::<UsersConfig>("users", value) {
                    config.users = v;
                }
            }
            "session" => {
                // Sessions are on, whatever else is wrong with the table.
                config.session = Some(
                    shapes
                        .read::<SessionConfig>("session", value)
                        .unwrap_or_default(),
                );
            }
            "credentials" => {
                if let Some(v) = shapes.read::<CredentialsConfig>("credentials", value) {
                    config.credentials = v;
                }
            }
            "origins" => {
                if let Some(v) = shapes.read::<OriginsConfig>("origins", value) {
                    config.origins = v;
                }
            }
            "limits" => {
                if let Some(v) = shapes.read::<LimitsConfig>("limits", value) {
                    config.limits = v;
                }
            }
            "database" => {
                // A database is configured, whatever else is wrong with the table.
                config.database = Some(
                    shapes
                        .read::<DatabaseConfig>("database", value)
                        .unwrap_or_else(|| {
                            DatabaseConfig::new(SecretRef::Value("sqlite::memory:".into()))
                        }),
                );
            }
            "upstream" => {
                // Edge mode is on, whatever else is wrong with the table.
                config.upstream = Some(
                    shapes
                        .read::<UpstreamConfig>("upstream", value)
                        .unwrap_or_default(),
                );
            }
            "routes" => match value.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let path = format!("routes[{i}]");
                        let route = shapes.read::<RouteConfig>(&path, item);
                        config
                            .routes
                            .push(route.unwrap_or_else(|| placeholder_route(i)));
                    }
                }
                other => {
                    broken.push("routes".into());
                    report.problems.push(Problem {
                        line: Some(line_of(text, key.span().start)),
                        path: Some("routes".into()),
                        message: format!(
                            "expected an array of tables ([[routes]]), found {}",
                            other.type_str()
                        ),
                    });
                }
            },
            other => {
                report.problems.push(Problem {
                    line: Some(line_of(text, key.span().start)),
                    path: Some(other.to_owned()),
                    message: format!(
                        "unknown section `{other}`, expected one of {}",
                        SECTIONS.join(", ")
                    ),
                });
            }
        }
    }
    let is_broken = |path: &str| {
        broken.iter().any(|b| {
            path == b
                || path
                    .strip_prefix(b.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    };
    for e in config.check() {
        if is_broken(&e.path) {
            continue;
        }
        report.problems.push(Problem {
            line: line_of_path(text, &root, &e.path),
            path: Some(e.path.clone()),
            message: e.kind.to_string(),
        });
    }
    if report.problems.is_empty() {
        check_secrets(text, &root, &config, resolve, &mut report);
    }
    report.config = Some(config);
    sort_by_line(&mut report.problems);
    report
}

/// In file order; problems without a line (a missing section) last.
fn sort_by_line(problems: &mut [Problem]) {
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
}

/// With no other problem: resolve the secret references and build the
/// authenticator, which checks the keys themselves.
fn check_secrets(
    text: &str,
    root: &DeTable<'_>,
    config: &Config,
    resolve: &mut dyn FnMut(&SecretRef) -> Option<String>,
    report: &mut Report,
) {
    let at = |path: &str, message: String| Problem {
        line: line_of_path(text, root, path),
        path: Some(path.to_owned()),
        message,
    };
    // Literal values are checked even when other references do not resolve here.
    let mut unresolved = false;
    let secrets = match config.resolve_secrets(|r| resolve(r)) {
        Ok(s) => s,
        Err(e) if e.kind == ConfigErrorKind::UnresolvedSecret => {
            unresolved = true;
            report
                .warnings
                .push(at(&e.path, format!("{} here", e.kind)));
            match config.resolve_secrets(|_| Some("placeholder-secret-for-checking".into())) {
                Ok(s) => s,
                Err(e) => {
                    report.problems.push(at(&e.path, e.kind.to_string()));
                    return;
                }
            }
        }
        Err(e) => {
            report.problems.push(at(&e.path, e.kind.to_string()));
            return;
        }
    };
    match Authenticator::from_config(config, &secrets) {
        Err(e) => {
            // A placeholder stands in for unresolved references: only literal keys are judged then.
            if !(unresolved && matches!(e.kind, ConfigErrorKind::Key(_))) {
                report.problems.push(at(&e.path, e.kind.to_string()));
            }
        }
        Ok(auth) => {
            // `[upstream]` as `wsauth serve` builds it (the secret resolved).
            if let Err(e) = config.edge(&secrets, &auth) {
                report.problems.push(at(&e.path, e.kind.to_string()));
            }
        }
    }
}

/// One finding of [`strip_shape_errors`]: byte offset, path of the error,
/// path of the key taken out (none: the whole section is unreadable), message.
type ShapeError = (Option<usize>, String, Option<String>, String);

/// Deserializes a section, taking out each key serde refuses and trying
/// again, so that every bad key is reported (serde stops at the first).
/// Returns what is left when it finally reads, and the errors.
fn strip_shape_errors<'i, T: for<'de> Deserialize<'de>>(
    value: &Spanned<DeValue<'i>>,
    path: &str,
) -> (Option<(T, Spanned<DeValue<'i>>)>, Vec<ShapeError>) {
    const MAX_ROUNDS: usize = 64;
    let mut current = value.clone();
    let mut errors = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let e = match T::deserialize(ValueDeserializer::from(current.clone())) {
            Ok(t) => return (Some((t, current)), errors),
            Err(e) => e,
        };
        let at = e.span().map(|s| s.start);
        let inner = at.map(|a| inner_path(&current, a)).unwrap_or_default();
        let key = inner
            .strip_prefix('.')
            .and_then(|r| r.split(['.', '[']).next())
            .map(str::to_owned);
        let message = first_line(e.message());
        let error_path = format!("{path}{inner}");
        let span = current.span();
        let removed = match (key, current.get_ref()) {
            (Some(key), DeValue::Table(t)) => {
                let kept: DeTable<'i> = t
                    .iter()
                    .filter(|(k, _)| k.get_ref() != key.as_str())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                current = Spanned::new(span, DeValue::Table(kept));
                Some(format!("{path}.{key}"))
            }
            _ => None,
        };
        let done = removed.is_none();
        errors.push((at, error_path, removed, message));
        if done {
            return (None, errors);
        }
    }
    (None, errors)
}

/// Records shape errors as problems, and the paths they make unreliable.
struct Shapes<'r> {
    text: &'r str,
    /// Where the section's key is (for errors without a span).
    key_start: usize,
    broken: &'r mut Vec<String>,
    problems: &'r mut Vec<Problem>,
}

impl Shapes<'_> {
    /// The section as `T`, with every key serde refuses reported and left out;
    /// `None` when it does not read even then.
    fn read<T: for<'de> Deserialize<'de>>(
        &mut self,
        path: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> Option<T> {
        let (rest, errors) = strip_shape_errors::<T>(value, path);
        for (at, error_path, removed, message) in errors {
            self.broken.push(removed.unwrap_or_else(|| path.to_owned()));
            self.problems.push(Problem {
                line: Some(line_of(self.text, at.unwrap_or(self.key_start))),
                path: Some(error_path),
                message,
            });
        }
        rest.map(|(t, _)| t)
    }
}

/// Stands in for a route whose table could not be read, so the others keep their indices.
fn placeholder_route(i: usize) -> RouteConfig {
    RouteConfig {
        name: format!("\u{0}unreadable-route-{i}"),
        path: "/".into(),
        requirement: Requirement::Anonymous,
        strict: false,
        auth_message: None,
        sql: None,
    }
}

/// The dotted path, below `value`, of the deepest key or item whose span holds byte `at`
/// (`.leeway`, `.allowed[1]`), or "" when none does.
fn inner_path(value: &Spanned<DeValue<'_>>, at: usize) -> String {
    let mut out = String::new();
    let mut current = value;
    loop {
        let next = match current.get_ref() {
            DeValue::Table(t) => t
                .iter()
                .find(|(k, v)| k.span().contains(&at) || v.span().contains(&at))
                .map(|(k, v)| {
                    out.push('.');
                    out.push_str(k.get_ref());
                    v
                }),
            DeValue::Array(a) => a
                .iter()
                .enumerate()
                .find(|(_, v)| v.span().contains(&at))
                .map(|(i, v)| {
                    out.push_str(&format!("[{i}]"));
                    v
                }),
            _ => None,
        };
        match next {
            Some(v) => current = v,
            None => return out,
        }
    }
}

/// The line of a dotted path (`routes[2].path`, `credentials.carriers[1]`):
/// the deepest part present in the file (a missing key reports its table).
fn line_of_path(text: &str, root: &DeTable<'_>, path: &str) -> Option<usize> {
    let mut span: Option<Range<usize>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root);
    for part in path.split('.') {
        let (name, indices) = match part.find('[') {
            Some(i) => (part.get(..i).unwrap_or(part), part.get(i..).unwrap_or("")),
            None => (part, ""),
        };
        let Some((k, v)) = table.and_then(|t| t.iter().find(|(k, _)| k.get_ref() == name)) else {
            break;
        };
        span = Some(k.span());
        let mut value = v;
        let mut ok = true;
        for idx in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            let item = idx
                .parse::<usize>()
                .ok()
                .and_then(|n| value.get_ref().as_array().and_then(|a| a.get(n)));
            match item {
                Some(item) => {
                    span = Some(item.span());
                    value = item;
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            break;
        }
        table = value.get_ref().as_table();
    }
    span.map(|s| line_of(text, s.start))
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    let upto = text.get(..at).unwrap_or(text);
    upto.bytes().filter(|&b| b == b'\n').count() + 1
}

fn first_line(message: &str) -> String {
    message.trim().lines().next().unwrap_or("").to_owned()
}

fn print_report(path: &Path, report: &Report, json: bool) {
    let ok = report.problems.is_empty();
    if json {
        let list = |ps: &[Problem]| {
            let items: Vec<String> = ps
                .iter()
                .map(|p| {
                    output::Object::new()
                        .field("line", &p.line.map_or(Value::Null, Value::from))
                        .field("path", &p.path.as_deref().map_or(Value::Null, Value::from))
                        .field("message", &Value::from(p.message.as_str()))
                        .render()
                })
                .collect();
            format!("[{}]", items.join(","))
        };
        output::Object::new()
            .field("ok", &Value::Bool(ok))
            .raw_field("problems", &list(&report.problems))
            .raw_field("warnings", &list(&report.warnings))
            .print();
        return;
    }
    let line = |p: &Problem, label: &str| {
        let mut s = path.display().to_string();
        if let Some(l) = p.line {
            s.push_str(&format!(":{l}"));
        }
        s.push_str(": ");
        s.push_str(label);
        if let Some(k) = &p.path {
            s.push_str(k);
            s.push_str(": ");
        }
        s.push_str(&p.message);
        s
    };
    for w in &report.warnings {
        output::print_line(&line(w, "warning: "));
    }
    for p in &report.problems {
        output::print_line(&line(p, ""));
    }
    if ok {
        output::print_line("ok");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[jwt]
secret = "a-long-enough-signing-secret"

[[routes]]
name = "chat"
path = "/ws/chat/<room>/"
requirement = "anonymous"
"#;

    fn check_str(text: &str) -> Report {
        check_text(text, &mut |_| None)
    }

    fn lines_and_paths(r: &Report) -> Vec<(Option<usize>, Option<String>)> {
        r.problems
            .iter()
            .map(|p| (p.line, p.path.clone()))
            .collect()
    }

    #[test]
    fn a_good_file_has_no_problem() {
        let r = check_str(GOOD);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(r.warnings.is_empty());
        assert_eq!(r.config.map(|c| c.routes.len()), Some(1));
    }

    #[test]
    fn every_syntax_error_carries_its_line() {
        let r = check_str("a = 1\nb = \n[t]\nc = \"x\"\nd = [1,\n");
        let lines: Vec<Option<usize>> = r.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines.first(), Some(&Some(2)), "{:?}", r.problems);
        assert!(lines.contains(&Some(5)), "{:?}", r.problems);
        assert!(r.config.is_none());
    }

    #[test]
    fn shape_errors_in_several_sections_are_all_reported() {
        let text = "\
[jwt]
secret = \"s3cret-s3cret\"
leeway = \"soon\"

[limits]
max_token_bytes = 8192
no_such_limit = 1

[[routes]]
name = \"chat\"
path = \"/ws/chat/<room>/\"
requirement = \"anonymous\"

[[routes]]
name = \"bad\"
pathh = \"/x/\"
requirement = \"staff\"

[extra]
x = 1
";
        let got = lines_and_paths(&check_str(text));
        assert!(
            got.contains(&(Some(3), Some("jwt.leeway".into()))),
            "{got:?}"
        );
        assert!(
            got.contains(&(Some(7), Some("limits.no_such_limit".into()))),
            "{got:?}"
        );
        assert!(
            got.iter().any(
                |(l, p)| p.as_deref().is_some_and(|p| p.starts_with("routes[1]"))
                    && l.is_some_and(|l| (14..=17).contains(&l))
            ),
            "{got:?}"
        );
        assert!(got.contains(&(Some(19), Some("extra".into()))), "{got:?}");
        // The broken sections are not reported again by the meaning checks.
        assert!(
            !got.iter().any(|(_, p)| p.as_deref() == Some("jwt.secret")),
            "{got:?}"
        );
    }

    #[test]
    fn meaning_problems_point_at_their_lines() {
        let text = "\
[jwt]
algorithm = \"RS256\"

[origins]
allowed = [\"http://localhost:*\", \"example.com\"]

[[routes]]
name = \"chat\"
path = \"/ws/chat/<room>/\"
requirement = \"anonymous\"

[[routes]]
name = \"chat\"
path = \"/ws/receipts/<id>/\"
requirement = { owner = \"nope\" }
";
        let got = lines_and_paths(&check_str(text));
        for want in [
            (Some(1), Some("jwt.secret".to_owned())),
            (Some(2), Some("jwt.algorithm".to_owned())),
            (Some(5), Some("origins.allowed[1]".to_owned())),
            (Some(13), Some("routes[1].name".to_owned())),
            (Some(15), Some("routes[1].requirement".to_owned())),
        ] {
            assert!(got.contains(&want), "missing {want:?} in {got:?}");
        }
    }

    #[test]
    fn missing_sections_have_no_line_but_a_path() {
        let got = lines_and_paths(&check_str("[jwt]\nsecret = \"s3cret-s3cret\"\n"));
        assert_eq!(got, vec![(None, Some("routes".to_owned()))]);
    }

    #[test]
    fn unresolved_secret_references_are_warnings() {
        let text = GOOD.replace(
            "\"a-long-enough-signing-secret\"",
            "{ env = \"WSAUTH_TEST_UNSET_VAR\" }",
        );
        let r = check_str(&text);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].path.as_deref(), Some("jwt.secret"));
        assert_eq!(r.warnings[0].line, Some(3));
        let resolved = check_text(&text, &mut |r| {
            matches!(r, SecretRef::Env(n) if n == "WSAUTH_TEST_UNSET_VAR").then(|| "value".into())
        });
        assert!(resolved.warnings.is_empty() && resolved.problems.is_empty());
    }

    #[test]
    fn an_empty_literal_secret_is_a_problem() {
        let r = check_str(&GOOD.replace("\"a-long-enough-signing-secret\"", "\"\""));
        assert_eq!(
            lines_and_paths(&r),
            vec![(Some(3), Some("jwt.secret".to_owned()))]
        );
        assert!(!r.problems[0].message.is_empty());
    }

    #[test]
    fn upstream_is_checked() {
        let example = include_str!("../../../../examples/edge.toml");
        let r = check_str(example);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let bad = example
            .replace("ws://127.0.0.1:8000", "wss://app:443")
            .replace("connect_timeout_ms = 2000", "connect_timeout_ms = 0")
            .replace("secret = { env = \"WSAUTH_UPSTREAM_SECRET\" }\n", "");
        let r = check_str(&bad);
        let mut paths: Vec<String> = r.problems.iter().filter_map(|p| p.path.clone()).collect();
        paths.sort();
        assert_eq!(
            paths,
            vec![
                "upstream.connect_timeout_ms".to_string(),
                "upstream.secret".into(),
                "upstream.url".into()
            ],
            "{:?}",
            r.problems
        );
        assert!(
            r.problems.iter().all(|p| p.line.is_some()),
            "{:?}",
            r.problems
        );
        let r = check_str(&example.replace("keep_session_cookie = false", "nope = 1"));
        assert!(
            r.problems
                .iter()
                .any(|p| p.path.as_deref().is_some_and(|x| x.starts_with("upstream"))),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn lines_are_one_based() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 99), 1);
    }
}
