//! Runs the `wsauth` binary over every SimpleJWT access-token vector and every
//! Django session vector of the shared vector file, with flags derived from
//! each vector's settings, and checks each outcome against what the real
//! libraries decided. Nothing here is specific to a vector id, so a fresh
//! vector set passes unchanged.
//!
//! The vector file: `$WSAUTH_VECTORS`, else `../../shared/vectors/vectors.json`
//! from this crate.

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_wsauth");

/// Error kinds a rejected session may carry.
const SESSION_KINDS: &[&str] = &[
    "bad_session",
    "session_expired",
    "session_hash_mismatch",
    "user_not_found",
    "user_inactive",
];

/// Every kind of the contract (DESIGN §4).
const TOKEN_KINDS: &[&str] = &[
    "malformed",
    "bad_signature",
    "bad_algorithm",
    "expired",
    "not_yet_valid",
    "wrong_token_type",
    "missing_claim",
    "bad_audience",
    "bad_issuer",
    "too_large",
    "revoked",
];

fn vectors() -> Value {
    let path = std::env::var_os("WSAUTH_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/vectors/vectors.json"
            ))
        });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the vector file {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the vector file is JSON")
}

fn of_kind<'a>(doc: &'a Value, kinds: &[&str]) -> Vec<&'a Value> {
    doc["vectors"]
        .as_array()
        .expect("vectors is a list")
        .iter()
        .filter(|v| kinds.contains(&v["kind"].as_str().unwrap_or("")))
        .collect()
}

fn run(args: &[String]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("WSAUTH_SECRET")
        .env_remove("WSAUTH_LOG")
        .output()
        .expect("the wsauth binary runs")
}

/// The one JSON object on stdout.
fn stdout_json(out: &Output) -> Result<Value, String> {
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return Err(format!("expected exactly one line on stdout, got {text:?}"));
    };
    serde_json::from_str(line).map_err(|e| format!("stdout is not JSON ({e}): {line:?}"))
}

/// The raw JSON text of `key` in a JSON object's text (numbers stay exact).
fn raw_member(object_text: &str, key: &str) -> Option<String> {
    let map: BTreeMap<String, Box<RawValue>> = serde_json::from_str(object_text).ok()?;
    map.get(key).map(|v| v.get().trim().to_owned())
}

fn string_setting<'a>(sj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    match sj.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => panic!("SIMPLE_JWT[{name:?}] = {other}: the CLI takes a string here"),
    }
}

/// The vector file writes a non-finite float as `{"$float": repr}`; the CLI's
/// strict JSON writes it as `null`.
fn strict_json(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 && m.get("$float").is_some_and(Value::is_string) => {
            Value::Null
        }
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), strict_json(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(strict_json).collect()),
        other => other.clone(),
    }
}

/// `wsauth token check` flags for a vector's SIMPLE_JWT settings.
fn token_args(v: &Value) -> Vec<String> {
    let settings = &v["settings"];
    let sj = settings["SIMPLE_JWT"]
        .as_object()
        .expect("SIMPLE_JWT settings");
    let verifying = string_setting(sj, "VERIFYING_KEY").unwrap_or("");
    assert!(
        verifying.is_empty(),
        "{}: VERIFYING_KEY is not supported (HMAC only)",
        v["id"]
    );
    // SimpleJWT signs and verifies with SIGNING_KEY only; SECRET_KEY_FALLBACKS play no part.
    let key = string_setting(sj, "SIGNING_KEY")
        .or_else(|| settings["SECRET_KEY"].as_str())
        .expect("a signing key");
    let mut args: Vec<String> = vec!["token".into(), "check".into(), "--json".into()];
    args.extend(["--secret".into(), key.to_owned()]);
    if let Some(alg) = string_setting(sj, "ALGORITHM") {
        args.extend(["--algorithm".into(), alg.to_owned()]);
    }
    match sj.get("LEEWAY") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => {
            let secs = n.as_u64().expect("LEEWAY is whole non-negative seconds");
            args.extend(["--leeway".into(), secs.to_string()]);
        }
        Some(other) => panic!("{}: LEEWAY {other} is not whole seconds", v["id"]),
    }
    for (flag, name) in [
        ("--audience", "AUDIENCE"),
        ("--issuer", "ISSUER"),
        ("--user-id-claim", "USER_ID_CLAIM"),
        ("--token-type-claim", "TOKEN_TYPE_CLAIM"),
        ("--jti-claim", "JTI_CLAIM"),
    ] {
        if let Some(value) = string_setting(sj, name) {
            args.extend([flag.to_owned(), value.to_owned()]);
        }
    }
    let now = v["now"].as_i64().expect("now is an integer");
    args.extend(["--now".into(), now.to_string()]);
    args.push("--".into());
    args.push(
        v["inputs"]["token"]
            .as_str()
            .expect("token is a string")
            .to_owned(),
    );
    args
}

/// The contract kind PyJWT's exception class maps to (`cause_chain` of the vector).
fn kind_for_pyjwt_cause(expected: &Value) -> Option<&'static str> {
    let chain = expected["cause_chain"].as_array()?;
    let cause = chain
        .iter()
        .find(|c| c["exception_module"] == "jwt.exceptions")?;
    let message = cause["message"].as_str().unwrap_or("");
    Some(match cause["exception"].as_str()? {
        "InvalidSignatureError" => "bad_signature",
        "InvalidAlgorithmError" => "bad_algorithm",
        "ExpiredSignatureError" => "expired",
        "ImmatureSignatureError" => "not_yet_valid",
        "InvalidAudienceError" => "bad_audience",
        "InvalidIssuerError" => "bad_issuer",
        "MissingRequiredClaimError" if message.contains("\"aud\"") => "bad_audience",
        "MissingRequiredClaimError" if message.contains("\"iss\"") => "bad_issuer",
        "DecodeError"
        | "InvalidTokenError"
        | "InvalidJTIError"
        | "InvalidSubjectError"
        | "InvalidIssuedAtError" => "malformed",
        _ => return None,
    })
}

/// The contract kind of a SimpleJWT-level message.
fn kind_for_simplejwt_message(message: &str) -> Option<&'static str> {
    Some(match message {
        "Token is expired" => "expired",
        "Token has wrong type" => "wrong_token_type",
        "Token has no type" | "Token has no id" | "Token has no 'exp' claim" => "missing_claim",
        _ => return None,
    })
}

fn check_token_vector(v: &Value) -> Result<(), String> {
    let out = run(&token_args(v));
    let got = stdout_json(&out)?;
    let code = out.status.code();
    let want = &v["expected"]["access_token"];
    let valid = want["valid"]
        .as_bool()
        .ok_or("expected.access_token.valid")?;
    if got["valid"] != Value::Bool(valid) {
        return Err(format!("valid: got {got}, want {want}"));
    }
    if valid {
        if code != Some(0) {
            return Err(format!("exit code {code:?}, want 0"));
        }
        let payload = &strict_json(&want["payload"]);
        if got["claims"] != *payload {
            return Err(format!("claims: got {}, want {payload}", got["claims"]));
        }
        let claim = v["settings"]["SIMPLE_JWT"]["USER_ID_CLAIM"]
            .as_str()
            .unwrap_or("user_id");
        match payload.get(claim) {
            None => {
                if got.get("user_id").is_some() {
                    return Err(format!(
                        "user_id present but the token has no {claim:?}: {got}"
                    ));
                }
            }
            Some(want_uid) => {
                let got_uid = got
                    .get("user_id")
                    .ok_or_else(|| format!("no user_id in {got}"))?;
                // Same value and the same JSON type (a string stays a string, 1 is not 1.0).
                if got_uid != want_uid {
                    return Err(format!("user_id: got {got_uid}, want {want_uid}"));
                }
                // Integers beyond 64 bits must keep every digit.
                let want_raw = v["inputs"]["unverified"]["payload_json"]
                    .as_str()
                    .and_then(|p| raw_member(p, claim));
                let got_raw = raw_member(String::from_utf8_lossy(&out.stdout).trim(), "user_id");
                if let (Some(w), Some(g)) = (&want_raw, &got_raw) {
                    let is_int = |s: &str| {
                        let d = s.strip_prefix('-').unwrap_or(s);
                        !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
                    };
                    if is_int(w) && w != g {
                        return Err(format!("user_id digits: got {g}, want {w}"));
                    }
                }
            }
        }
        return Ok(());
    }
    if code != Some(1) {
        return Err(format!("exit code {code:?}, want 1"));
    }
    let kind = got["error"]["kind"]
        .as_str()
        .ok_or_else(|| format!("no error.kind in {got}"))?;
    let message = got["error"]["message"]
        .as_str()
        .ok_or_else(|| format!("no error.message in {got}"))?;
    if !TOKEN_KINDS.contains(&kind) {
        return Err(format!("error.kind {kind:?} is not a contract kind"));
    }
    let exception = want["exception"].as_str().unwrap_or("");
    if matches!(exception, "TokenError" | "ExpiredTokenError") {
        // SimpleJWT raised its own TokenError: same message, and a kind that fits it.
        let want_message = want["message"].as_str().unwrap_or("");
        if message != want_message {
            return Err(format!("message: got {message:?}, want {want_message:?}"));
        }
        let want_kind =
            kind_for_simplejwt_message(want_message).or_else(|| kind_for_pyjwt_cause(want));
        if let Some(k) = want_kind {
            if kind != k {
                return Err(format!("kind: got {kind:?}, want {k:?} (from {want})"));
            }
        }
    } else if kind != "malformed" || message.is_empty() {
        // Django itself crashes here (HTTP 500); wsauth rejects the token as
        // malformed with a readable message.
        return Err(format!(
            "a crash case is rejected as malformed with a message: {got}"
        ));
    }
    Ok(())
}

#[test]
fn every_simplejwt_access_token_vector_through_token_check() {
    let doc = vectors();
    let list = of_kind(&doc, &["simplejwt_access_token"]);
    assert!(!list.is_empty(), "no simplejwt_access_token vectors");
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut valid = 0;
    for v in &list {
        checked += 1;
        if v["expected"]["access_token"]["valid"] == Value::Bool(true) {
            valid += 1;
        }
        if let Err(e) = check_token_vector(v) {
            failures.push(format!("{}: {e}", v["id"]));
        }
    }
    assert_eq!(checked, list.len());
    assert!(
        valid > 0 && valid < checked,
        "the set has both valid and invalid tokens"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} token vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A JSON file removed on drop.
struct TempJson(PathBuf);

impl TempJson {
    fn new(value: &Value) -> Self {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "wsauth-cli-vectors-{}-{n}.json",
            std::process::id()
        ));
        std::fs::write(&path, value.to_string()).expect("write a temp file");
        TempJson(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempJson {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn session_args(v: &Value, users: &Path, rows: Option<&Path>) -> Vec<String> {
    let s = &v["settings"];
    let engine = s["SESSION_ENGINE"].as_str().expect("SESSION_ENGINE");
    let backend = match engine.rsplit('.').next() {
        Some("signed_cookies") => "signed_cookies",
        Some("db" | "cached_db" | "cache" | "file") => "db",
        _ => panic!("{}: unknown SESSION_ENGINE {engine}", v["id"]),
    };
    let mut args: Vec<String> = vec!["session".into(), "check".into(), "--json".into()];
    args.extend(["--backend".into(), backend.into()]);
    args.extend([
        "--secret".into(),
        s["SECRET_KEY"].as_str().expect("SECRET_KEY").to_owned(),
    ]);
    for fb in s["SECRET_KEY_FALLBACKS"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        args.extend([
            "--secret".into(),
            fb.as_str().expect("a fallback key").to_owned(),
        ]);
    }
    if let Some(age) = s["SESSION_COOKIE_AGE"].as_i64() {
        args.extend(["--cookie-age".into(), age.to_string()]);
    }
    if let Some(name) = s["SESSION_COOKIE_NAME"].as_str() {
        args.extend(["--cookie-name".into(), name.to_owned()]);
    }
    for b in s["AUTHENTICATION_BACKENDS"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        args.extend([
            "--auth-backend".into(),
            b.as_str().expect("a backend path").to_owned(),
        ]);
    }
    args.extend(["--users".into(), users.display().to_string()]);
    if let Some(rows) = rows {
        args.extend(["--session-row".into(), rows.display().to_string()]);
    }
    for h in v["inputs"]["cookie_headers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        args.extend([
            "--cookie-header".into(),
            h.as_str().expect("a header").to_owned(),
        ]);
    }
    args.extend(["--now".into(), v["now"].as_i64().expect("now").to_string()]);
    args
}

fn check_session_outcome(out: &Output, want: &Value) -> Result<(), String> {
    let got = stdout_json(out)?;
    let code = out.status.code();
    let authenticated = want["is_authenticated"]
        .as_bool()
        .ok_or("expected is_authenticated")?;
    if got["valid"] != Value::Bool(authenticated) {
        return Err(format!("valid: got {got}, want {want}"));
    }
    if authenticated {
        if code != Some(0) {
            return Err(format!("exit code {code:?}, want 0"));
        }
        let user = &got["user"];
        for field in ["pk", "username", "is_staff", "is_superuser"] {
            if let Some(w) = want.get(field) {
                if user[field] != *w {
                    return Err(format!("user.{field}: got {}, want {w}", user[field]));
                }
            }
        }
        let want_id = match &want["pk"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if got["user_id"] != Value::String(want_id.clone()) {
            return Err(format!("user_id: got {}, want {want_id:?}", got["user_id"]));
        }
    } else {
        if code != Some(1) {
            return Err(format!("exit code {code:?}, want 1"));
        }
        let kind = got["error"]["kind"].as_str().unwrap_or("");
        if !SESSION_KINDS.contains(&kind) {
            return Err(format!("error.kind {kind:?} is not a session kind: {got}"));
        }
        if got["error"]["message"].as_str().unwrap_or("").is_empty() {
            return Err(format!("no error.message: {got}"));
        }
    }
    Ok(())
}

#[test]
fn every_django_session_vector_through_session_check() {
    let doc = vectors();
    let list = of_kind(&doc, &["django_session_db", "django_session_signed_cookie"]);
    assert!(!list.is_empty(), "no session vectors");
    let mut failures = Vec::new();
    let mut runs = 0;
    for v in &list {
        let inputs = &v["inputs"];
        let users = TempJson::new(&Value::Array(
            inputs.get("user_row_now").into_iter().cloned().collect(),
        ));
        let rows = (v["kind"] == "django_session_db").then(|| {
            TempJson::new(&Value::Array(
                inputs
                    .get("django_session_row")
                    .into_iter()
                    .cloned()
                    .collect(),
            ))
        });
        let base = session_args(v, users.path(), rows.as_ref().map(TempJson::path));
        let django = &v["expected"]["django_http_get_user"];
        let channels = &v["expected"]["channels_scope_user"];
        for (mode, extra, want) in [
            ("django get_user", None, django),
            ("channels", Some("--channels"), channels),
        ] {
            let mut args = base.clone();
            args.extend(extra.map(str::to_owned));
            runs += 1;
            if let Err(e) = check_session_outcome(&run(&args), want) {
                failures.push(format!("{} [{mode}]: {e}", v["id"]));
            }
        }
    }
    assert_eq!(runs, 2 * list.len());
    assert!(
        failures.is_empty(),
        "{} of {runs} session runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
