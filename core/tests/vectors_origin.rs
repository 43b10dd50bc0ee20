//! Every `channels_origin_validator` vector: Channels' `OriginValidator` /
//! `AllowedHostsOriginValidator` decisions, reproduced by `OriginPolicy::channels`.

use serde_json::Value;
use wsauth_core::{pipeline::origin::OriginPolicy, pipeline::origin::OriginVerdict};

fn vectors() -> Value {
    let path = std::env::var("WSAUTH_VECTORS").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/vectors/vectors.json"
        )
        .to_string()
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).expect("vectors.json is JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// The outcome Channels produced: allowed, rejected, or an exception (`None`).
fn expected(exp: &Value) -> Option<bool> {
    if exp.get("exception").is_some() {
        return None;
    }
    if let Some(a) = exp.get("allowed").and_then(Value::as_bool) {
        return Some(a);
    }
    let connect = exp
        .get("WebsocketCommunicator.connect()")
        .expect("connect() outcome");
    Some(connect[0].as_bool().expect("bool"))
}

#[test]
fn channels_origin_validator_vectors() {
    let doc = vectors();
    let mut checked = 0;
    let mut failures = Vec::new();
    for v in doc["vectors"].as_array().expect("vectors") {
        if v["kind"] != "channels_origin_validator" {
            continue;
        }
        let id = v["id"].as_str().unwrap_or("?");
        let inputs = &v["inputs"];
        let headers = strings(&inputs["origin_headers"]);
        // Channels decodes header bytes as Latin-1; the vector stores the decoded text.
        let header_bytes: Vec<Vec<u8>> = headers
            .iter()
            .map(|h| {
                h.chars()
                    .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
                    .collect()
            })
            .collect();
        let policy = match inputs.get("allowed_origins") {
            Some(list) => OriginPolicy::channels(&strings(list)),
            None => {
                let effective = strings(&v["expected"]["effective_allowed_origins"]);
                OriginPolicy::channels(&effective)
            }
        }
        .unwrap_or_else(|e| panic!("{id}: pattern refused: {e:?}"));
        let verdict = policy.check(header_bytes.iter().map(Vec::as_slice));
        let want = expected(&v["expected"]);
        let ok = matches!(
            (want, verdict),
            (Some(true), OriginVerdict::Allowed)
                | (Some(false), OriginVerdict::Rejected)
                | (None, OriginVerdict::Error)
        );
        if !ok {
            failures.push(format!("{id}: want {want:?}, got {verdict:?}"));
        }
        checked += 1;
    }
    assert!(checked >= 32, "only {checked} origin vectors found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn allowed_hosts_validator_defaults() {
    // DEBUG=True with an empty ALLOWED_HOSTS uses localhost, 127.0.0.1, [::1].
    let debug = OriginPolicy::channels_allowed_hosts::<&str>(&[], true).unwrap();
    assert!(debug.check([&b"http://localhost:3000"[..]]).is_allowed());
    assert!(debug.check([&b"http://[::1]:8000"[..]]).is_allowed());
    assert!(!debug.check([&b"http://example.com"[..]]).is_allowed());
    // DEBUG=False with an empty list refuses everything.
    let strict = OriginPolicy::channels_allowed_hosts::<&str>(&[], false).unwrap();
    assert!(!strict.check([&b"http://localhost:3000"[..]]).is_allowed());
}

/// Inputs beyond the vectors, with outcomes computed by Python 3.11.7's
/// `urlparse` and Channels 4.3.2's `OriginValidator.valid_origin`.
#[test]
fn python_urlparse_quirks() {
    use OriginVerdict::*;
    let rows: &[(&[&str], &[&str], OriginVerdict)] = &[
        (&["example.com"], &["http://user@example.com"], Allowed),
        (&["example.com"], &["http://example.com@evil.com"], Rejected),
        (&["example.com"], &["  http://example.com"], Allowed),
        (&["example.com"], &["ht\ttp://exa\nmple.com"], Allowed),
        (&["example.com"], &["http://[::1"], Error),
        (&["*"], &["http://[::1"], Error),
        (&["example.com"], &["http://[1.2.3.4]"], Error),
        (&["example.com"], &["http://[v1.x]"], Rejected),
        (&["example.com"], &["http://[::1]x"], Rejected),
        (&["http://example.com"], &["http://example.com:"], Allowed),
        (
            &["http://example.com"],
            &["http://example.com:99999"],
            Error,
        ),
        (&["example.com"], &["http://example.com:abc"], Allowed),
        (
            &["example.com", "http://example.com"],
            &["http://evil.com:abc"],
            Error,
        ),
        (&["http://example.com"], &["HTTP://EXAMPLE.COM"], Allowed),
        (
            &["http://example.com"],
            &["http://example.com/path?q#f"],
            Allowed,
        ),
        (&["[fe80::1%eth0]"], &["http://[fe80::1%eth0]:80"], Allowed),
        (&["[fe80::1%eth0]"], &["http://[FE80::1%ETH0]:80"], Rejected),
        (&[".example.com"], &["http://EXAMPLE.com"], Allowed),
        (
            &["http://localhost:8000"],
            &["http://localhost:8000", "null"],
            Rejected,
        ),
        (&["example.com"], &["http://evil.com", "http://[::1"], Error),
    ];
    for (allowed, headers, want) in rows {
        let policy = OriginPolicy::channels(allowed).unwrap();
        let got = policy.check(headers.iter().map(|h| h.as_bytes()));
        assert_eq!(got, *want, "{allowed:?} {headers:?}");
    }
}
