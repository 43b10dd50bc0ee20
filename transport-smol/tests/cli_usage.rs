//! The `wsauth` binary's exit codes, input handling and output shapes:
//! usage errors exit 2, invalid credentials exit 1, valid ones 0; tokens come
//! from an argument or stdin; oversized and non-UTF-8 input is answered with a
//! typed error; secrets and tokens never appear in the output.

use serde_json::Value;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_wsauth");
const SECRET: &str = "cli-usage-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
const NOW: i64 = 1_750_000_000;

fn wsauth(args: &[&str]) -> Output {
    wsauth_os(
        &args.iter().map(OsString::from).collect::<Vec<_>>(),
        None,
        &[],
    )
}

fn wsauth_os(args: &[OsString], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("WSAUTH_SECRET")
        .env_remove("WSAUTH_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the wsauth binary runs");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // The tool may stop reading early (size limit): a broken pipe is fine.
        let _ = pipe.write_all(input);
    }
    child.wait_with_output().expect("wsauth finishes")
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn json_of(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one JSON object on stdout, got {text:?}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("stdout is JSON ({e}): {text:?}"))
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A valid access token with its settings, taken from the shared vectors.
struct VectorToken {
    token: String,
    secret: String,
    now: i64,
    user_id: Value,
}

fn vector_token() -> VectorToken {
    let path = std::env::var_os("WSAUTH_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/vectors/vectors.json"
            ))
        });
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file")).expect("JSON");
    let v = doc["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| {
            let sj = &v["settings"]["SIMPLE_JWT"];
            v["kind"] == "simplejwt_access_token"
                && v["expected"]["access_token"]["valid"] == Value::Bool(true)
                && sj["ALGORITHM"] == "HS256"
                && sj["LEEWAY"] == 0
                && sj["AUDIENCE"].is_null()
                && sj["ISSUER"].is_null()
                && sj["USER_ID_CLAIM"] == "user_id"
                && sj["TOKEN_TYPE_CLAIM"] == "token_type"
                && sj["JTI_CLAIM"] == "jti"
                && v["expected"]["access_token"]["payload"]
                    .get("user_id")
                    .is_some()
        })
        .expect("a valid default-settings token vector");
    VectorToken {
        token: v["inputs"]["token"].as_str().expect("token").to_owned(),
        secret: v["settings"]["SIMPLE_JWT"]["SIGNING_KEY"]
            .as_str()
            .expect("key")
            .to_owned(),
        now: v["now"].as_i64().expect("now"),
        user_id: v["expected"]["access_token"]["payload"]["user_id"].clone(),
    }
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["nonsense"],
        &["token"],
        &["token", "check"],
        &[
            "token",
            "check",
            "x.y.z",
            "--secret",
            SECRET,
            "--no-such-flag",
        ],
        &[
            "token",
            "check",
            "x.y.z",
            "--secret",
            SECRET,
            "--algorithm",
            "RS256",
        ],
        &[
            "token", "check", "x.y.z", "--secret", SECRET, "--leeway", "-1",
        ],
        &[
            "token", "check", "x.y.z", "--secret", SECRET, "--now", "soon",
        ],
        &["token", "mint", "--secret", SECRET],
        &[
            "session",
            "check",
            "--backend",
            "file-system",
            "--secret",
            SECRET,
        ],
        &[
            "session",
            "check",
            "abcdefgh",
            "--cookie-header",
            "sessionid=abcdefgh",
            "--secret",
            SECRET,
        ],
        &["config", "check"],
    ];
    for args in cases {
        let out = wsauth(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", all_output(&out));
        assert!(
            !out.stderr.is_empty(),
            "{args:?}: a usage error explains itself on stderr"
        );
    }
}

#[test]
fn help_and_version_exit_0() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["token", "check", "--help"],
        &["session", "check", "--help"],
    ] {
        let out = wsauth(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", all_output(&out));
        assert!(!out.stdout.is_empty(), "{args:?} prints to stdout");
    }
    let help = String::from_utf8_lossy(&wsauth(&["token", "check", "--help"]).stdout).into_owned();
    for flag in [
        "--secret",
        "--algorithm",
        "--leeway",
        "--audience",
        "--issuer",
        "--user-id-claim",
        "--token-type-claim",
        "--jti-claim",
        "--now",
        "--json",
    ] {
        assert!(help.contains(flag), "token check --help lists {flag}");
    }
}

#[test]
fn a_missing_secret_is_a_usage_error_with_json() {
    let out = wsauth(&["token", "check", "x.y.z", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let got = json_of(&out);
    assert_eq!(got["error"]["kind"], "usage");
    assert!(got["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("WSAUTH_SECRET"));

    let out = wsauth(&[
        "token",
        "check",
        "x.y.z",
        "--secret-env",
        "WSAUTH_TEST_NOT_SET",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(json_of(&out)["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("WSAUTH_TEST_NOT_SET"));
}

#[test]
fn a_missing_session_cookie_is_invalid_not_a_usage_error() {
    let cases: &[&[&str]] = &[
        &["session", "check", "--secret", SECRET, "--json"],
        &[
            "session",
            "check",
            "--secret",
            SECRET,
            "--json",
            "--cookie-header",
            "csrftoken=abc; theme=dark",
        ],
        &[
            "session",
            "check",
            "--secret",
            SECRET,
            "--json",
            "--backend",
            "signed_cookies",
            "--cookie-header",
            "",
        ],
        &[
            "session",
            "check",
            "--secret",
            SECRET,
            "--json",
            "--channels",
            "--cookie-header",
            "a=b",
            "--cookie-header",
            "sessionid=abcdefghijkl",
        ],
        &[
            "session",
            "check",
            "--secret",
            SECRET,
            "--json",
            "--cookie-name",
            "other",
            "--cookie-header",
            "sessionid=abcdefghijkl",
        ],
    ];
    for args in cases {
        let out = wsauth(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", all_output(&out));
        let got = json_of(&out);
        assert_eq!(got["valid"], false, "{args:?}");
        assert_eq!(got["error"]["kind"], "bad_session", "{args:?}");
    }
    // Text mode says so too.
    let out = wsauth(&["session", "check", "--secret", SECRET]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("invalid:"));
}

#[test]
fn session_inputs_that_cannot_be_read_are_config_errors() {
    let dir = std::env::temp_dir();
    let missing = dir.join(format!(
        "wsauth-cli-usage-missing-{}.json",
        std::process::id()
    ));
    let broken = dir.join(format!(
        "wsauth-cli-usage-broken-{}.json",
        std::process::id()
    ));
    std::fs::write(&broken, "[{\"pk\": 1,").expect("temp file");
    let key = "abcdefghijklmnopqrstuvwxyz012345";
    for (flag, file) in [("--session-row", &missing), ("--session-row", &broken)] {
        let out = wsauth(&[
            "session",
            "check",
            key,
            "--secret",
            SECRET,
            flag,
            &file.display().to_string(),
            "--json",
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {}: {}",
            file.display(),
            all_output(&out)
        );
        let got = json_of(&out);
        assert_eq!(got["error"]["kind"], "config");
        assert!(got["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(flag));
        assert!(!all_output(&out).contains(SECRET) && !all_output(&out).contains(key));
    }
    // A session key with no row is an invalid session (exit 1), never a
    // usage error: without --session-row / --database there is no row.
    let out = wsauth(&["session", "check", key, "--secret", SECRET, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert_eq!(json_of(&out)["error"]["kind"], "bad_session");
    let _ = std::fs::remove_file(&broken);
}

#[test]
fn token_from_stdin() {
    let v = vector_token();
    let now = v.now.to_string();
    let args = os(&[
        "token", "check", "-", "--secret", &v.secret, "--now", &now, "--json",
    ]);
    let out = wsauth_os(&args, Some(format!("{}\n", v.token).as_bytes()), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let got = json_of(&out);
    assert_eq!(got["valid"], true);
    assert_eq!(got["user_id"], v.user_id);
    assert!(got["claims"].is_object());

    // The secret from $WSAUTH_SECRET, and from a named variable.
    let args = os(&["token", "check", "-", "--now", &now, "--json"]);
    let out = wsauth_os(
        &args,
        Some(v.token.as_bytes()),
        &[("WSAUTH_SECRET", &v.secret)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let args = os(&[
        "token",
        "check",
        "-",
        "--secret-env",
        "MY_JWT_KEY",
        "--now",
        &now,
        "--json",
    ]);
    let out = wsauth_os(
        &args,
        Some(v.token.as_bytes()),
        &[("MY_JWT_KEY", &v.secret)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));

    // Empty stdin is an invalid token, not a crash.
    let args = os(&[
        "token", "check", "-", "--secret", &v.secret, "--now", &now, "--json",
    ]);
    let out = wsauth_os(&args, Some(b""), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert_eq!(json_of(&out)["valid"], false);
}

#[test]
fn fallback_secrets_are_accepted_only_when_given() {
    let v = vector_token();
    let now = v.now.to_string();
    let out = wsauth(&[
        "token",
        "check",
        &v.token,
        "--secret",
        "some-other-key",
        "--now",
        &now,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert_eq!(json_of(&out)["error"]["kind"], "bad_signature");
    let out = wsauth(&[
        "token",
        "check",
        &v.token,
        "--secret",
        "some-other-key",
        "--secret",
        &v.secret,
        "--now",
        &now,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
}

#[test]
fn text_output_without_json() {
    let v = vector_token();
    let now = v.now.to_string();
    let out = wsauth(&[
        "token", "check", &v.token, "--secret", &v.secret, "--now", &now,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("valid:"), "{text}");
    assert!(!text.contains(&v.token), "the token is not echoed");

    let later = (v.now + 365 * 86_400).to_string();
    let out = wsauth(&[
        "token", "check", &v.token, "--secret", &v.secret, "--now", &later,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("invalid: Token is expired (expired)"),
        "{text}"
    );
}

#[test]
fn oversized_tokens_are_too_large() {
    let big = format!("eyJ{}.eyJ{}.sig", "A".repeat(9000), "B".repeat(10));
    // As an argument (default limit 8 KiB), from stdin, and under a lower explicit limit.
    let out = wsauth(&["token", "check", &big, "--secret", SECRET, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert_eq!(json_of(&out)["error"]["kind"], "too_large");

    let huge = vec![b'A'; 4 << 20];
    let out = wsauth_os(
        &os(&["token", "check", "-", "--secret", SECRET, "--json"]),
        Some(&huge),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert_eq!(json_of(&out)["error"]["kind"], "too_large");

    let out = wsauth(&[
        "token",
        "check",
        "a.b.cdefghijklmnop",
        "--max-token-bytes",
        "8",
        "--secret",
        SECRET,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["error"]["kind"], "too_large");
    assert!(!all_output(&out).contains("cdefghijklmnop"));
}

#[cfg(unix)]
#[test]
fn invalid_utf8_arguments_are_handled() {
    use std::os::unix::ffi::OsStringExt;
    let bad_token = OsString::from_vec(b"eyJ\xff\xfe.eyJ.sig".to_vec());
    let mut args = os(&["token", "check"]);
    args.push(bad_token);
    args.extend(os(&["--secret", SECRET, "--json"]));
    let out = wsauth_os(&args, None, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let got = json_of(&out);
    assert_eq!(got["valid"], false);
    assert_eq!(got["error"]["kind"], "malformed");

    // From stdin too.
    let out = wsauth_os(
        &os(&["token", "check", "-", "--secret", SECRET, "--json"]),
        Some(b"\xc3\x28.a.b"),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert_eq!(json_of(&out)["error"]["kind"], "malformed");

    // A session cookie that is not UTF-8.
    let mut args = os(&["session", "check"]);
    args.push(OsString::from_vec(b"abcdefgh\xff".to_vec()));
    args.extend(os(&["--secret", SECRET, "--json"]));
    let out = wsauth_os(&args, None, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert_eq!(json_of(&out)["valid"], false);

    // A non-UTF-8 setting is a usage error.
    let mut args = os(&["token", "check", "a.b.c", "--secret", SECRET, "--audience"]);
    args.push(OsString::from_vec(b"aud\xff".to_vec()));
    let out = wsauth_os(&args, None, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
}

#[test]
fn secrets_and_tokens_never_appear_in_output_or_logs() {
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2VjcmV0LXNpZ25hdHVyZS1ub3QtdmFsaWQ";
    for verbosity in ["-v", "-vvv"] {
        let out = wsauth(&[
            "token",
            "check",
            token,
            "--secret",
            SECRET,
            "--secret",
            "fallback-key-9876",
            verbosity,
        ]);
        assert_eq!(out.status.code(), Some(1));
        let all = all_output(&out);
        for needle in [
            SECRET,
            "fallback-key-9876",
            token,
            "c2VjcmV0LXNpZ25hdHVyZS1ub3QtdmFsaWQ",
        ] {
            assert!(
                !all.contains(needle),
                "{verbosity}: output contains {needle:?}: {all}"
            );
        }
    }
    let cookie = "sessionid=zyxwvutsrqponmlk-cookie-value";
    let out = wsauth(&[
        "session",
        "check",
        "--cookie-header",
        cookie,
        "--secret",
        SECRET,
        "-vvv",
        "--json",
        "--backend",
        "signed_cookies",
        "--users",
        "/nonexistent/users.json",
    ]);
    let all = all_output(&out);
    assert!(
        !all.contains("zyxwvutsrqponmlk") && !all.contains(SECRET),
        "{all}"
    );
}

#[test]
fn minted_tokens_check_valid() {
    let now = NOW.to_string();
    let out = wsauth(&[
        "token",
        "mint",
        "--user-id",
        "42",
        "--secret",
        SECRET,
        "--now",
        &now,
        "--claim",
        "is_staff=true",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let minted = json_of(&out);
    let token = minted["token"].as_str().expect("a token").to_owned();
    let jti = minted["jti"].as_str().expect("a jti");
    assert_eq!(jti.len(), 32);
    assert!(jti
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

    let out = wsauth(&[
        "token", "check", &token, "--secret", SECRET, "--now", &now, "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let got = json_of(&out);
    assert_eq!(got["user_id"], "42");
    assert_eq!(got["claims"]["token_type"], "access");
    assert_eq!(got["claims"]["jti"], jti);
    assert_eq!(got["claims"]["is_staff"], true);
    assert_eq!(got["claims"]["exp"], NOW + 300);

    // --int-id puts a JSON integer; the default lifetime can be changed; text mode prints the token alone.
    let out = wsauth(&[
        "token",
        "mint",
        "--user-id",
        "7",
        "--int-id",
        "--lifetime",
        "60",
        "--secret",
        SECRET,
        "--now",
        &now,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let out = wsauth(&[
        "token", "check", &token, "--secret", SECRET, "--now", &now, "--json",
    ]);
    let got = json_of(&out);
    assert_eq!(got["user_id"], 7);
    assert_eq!(got["claims"]["exp"], NOW + 60);
    let expired = (NOW + 60).to_string();
    let out = wsauth(&[
        "token", "check", &token, "--secret", SECRET, "--now", &expired, "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["error"]["message"], "Token is expired");
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("wsauth-cli-usage-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("temp file");
    path
}

#[test]
fn config_check_reports_every_problem_with_its_line() {
    let good = temp_file(
        "good.toml",
        "[jwt]\nsecret = \"a-signing-secret-for-tests\"\n\n[[routes]]\nname = \"chat\"\npath = \"/ws/chat/<room>/\"\nrequirement = \"anonymous\"\n",
    );
    let out = wsauth(&["config", "check", &good.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let out = wsauth(&["config", "check", &good.display().to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let got = json_of(&out);
    assert_eq!(got["ok"], true);
    assert_eq!(got["problems"], Value::Array(vec![]));

    let bad = temp_file(
        "bad.toml",
        "[jwt]\nsecret = \"a-signing-secret-for-tests\"\nalgorithm = \"RS256\"\nleeway = -5\n\n[[routes]]\nname = \"chat\"\npath = \"/ws/chat/<room\"\nrequirement = \"anonymous\"\n\n[typo]\nx = 1\n",
    );
    let out = wsauth(&["config", "check", &bad.display().to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let got = json_of(&out);
    assert_eq!(got["ok"], false);
    let problems = got["problems"].as_array().expect("problems");
    let at: Vec<(i64, &str)> = problems
        .iter()
        .map(|p| {
            (
                p["line"].as_i64().unwrap_or(0),
                p["path"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for want in [
        (3, "jwt.algorithm"),
        (4, "jwt.leeway"),
        (8, "routes[0].path"),
        (11, "typo"),
    ] {
        assert!(at.contains(&want), "missing {want:?} in {at:?}");
    }
    assert!(problems
        .iter()
        .all(|p| !p["message"].as_str().unwrap_or("").is_empty()));
    // Text mode: one `file:line: path: message` per problem, the secret never shown.
    let out = wsauth(&["config", "check", &bad.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(text.lines().count(), problems.len(), "{text}");
    assert!(
        text.lines()
            .all(|l| l.starts_with(&format!("{}:", bad.display()))),
        "{text}"
    );
    assert!(!all_output(&out).contains("a-signing-secret-for-tests"));

    let syntax = temp_file("syntax.toml", "[jwt]\nsecret = \"x\"\nleeway = \n");
    let out = wsauth(&["config", "check", &syntax.display().to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert_eq!(json_of(&out)["problems"][0]["line"], 3);

    let missing = std::env::temp_dir().join("wsauth-cli-usage-no-such-config.toml");
    let out = wsauth(&["config", "check", &missing.display().to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_of(&out)["error"]["kind"], "config");
    for p in [good, bad, syntax] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn the_example_configs_check_ok() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no example configs in {}", dir.display());
    for f in &files {
        let out = wsauth(&["config", "check", &f.display().to_string(), "--json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            f.display(),
            all_output(&out)
        );
        let got = json_of(&out);
        assert_eq!(got["ok"], true, "{}", f.display());
        assert_eq!(got["problems"], Value::Array(vec![]), "{}", f.display());
    }
}

/// A `--secret` value is never echoed: not one that looks like a flag, not
/// in a usage error about another argument.
#[test]
fn secret_values_are_never_echoed() {
    let secret = "--Zq9xK7mW2pL4vB8nR3tY6hJ1cF5dG0sA";
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2ln";
    let rows: &[&[&str]] = &[
        &["token", "check", token, "--secret", secret],
        &["token", "check", token, "--secret", secret, "--json"],
        &["token", "check", token, "--secret", secret, "--bogus-flag"],
        &[
            "token",
            "check",
            token,
            &format!("--secret={secret}"),
            "--leeway",
            "x",
        ],
        &["token", "mint", "--secret", secret, "--user-id"],
        &[
            "session",
            "check",
            "v",
            "--secret",
            secret,
            "--backend",
            "nope",
        ],
    ];
    for args in rows {
        let out = wsauth(args);
        let text = all_output(&out);
        let chars: Vec<char> = secret.trim_start_matches('-').chars().collect();
        for w in chars.windows(6) {
            let part: String = w.iter().collect();
            assert!(
                !text.contains(&part),
                "{args:?} printed part of the secret ({part:?}): {text}"
            );
        }
        assert_ne!(out.status.code(), Some(0), "{args:?}");
    }
}

/// Secrets come from a file (the config's file rule) or stdin, as from `--secret`.
#[test]
fn secrets_are_read_from_a_file_and_from_stdin() {
    let v = vector_token();
    let now = v.now.to_string();
    let path = std::env::temp_dir().join(format!("wsauth-cli-secret-{}", std::process::id()));
    std::fs::write(&path, format!("{}\n", v.secret)).expect("write the secret file");
    let out = wsauth(&[
        "token",
        "check",
        &v.token,
        "--secret-file",
        path.to_str().expect("utf-8 path"),
        "--now",
        &now,
        "--json",
    ]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(json_of(&out)["valid"], true);

    let out = wsauth_os(
        &os(&[
            "token", "check", &v.token, "--secret", "-", "--now", &now, "--json",
        ]),
        Some(format!("{}\n", v.secret).as_bytes()),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(json_of(&out)["valid"], true);
    assert!(!all_output(&out).contains(&v.secret));

    // The token and the secret cannot both come from stdin.
    let out = wsauth_os(
        &os(&["token", "check", "-", "--secret", "-", "--json"]),
        Some(b"x"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}
