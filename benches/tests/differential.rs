//! Where SimpleJWT / PyJWT (and so wsauth) and the `jsonwebtoken` crate decide
//! the same HS256 token differently. Each row demonstrates one difference:
//! wsauth must decide as SimpleJWT 5.5 + PyJWT 2.x do (the expected outcome
//! in the row; confirmed against the real libraries, several rows are also
//! vectors in `vectors.json`), and `jsonwebtoken` must still decide the other
//! way (so the row keeps documenting a real difference).
//!
//! The differential fuzz target (`fuzz/fuzz_targets/differential_jsonwebtoken.rs`)
//! lists the same differences and generates only inputs where none can arise.

use serde_json::Value;
use wsauth_benches::{
    b64url, jsonwebtoken_validation, sign_segments, sign_token, with_stable_clock, Algorithm,
    HS256_HEADER, SECRET,
};
use wsauth_core::{ErrorKind, JwtSettings, KeyError, SecretKey, TokenVerifier};

/// What wsauth must decide.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Accept,
    /// Rejected; the kind where SimpleJWT's exception pins it down.
    Reject(Option<ErrorKind>),
}

/// Which `jsonwebtoken` configuration the row runs against.
#[derive(Debug, Clone, Copy)]
enum JwtConfig {
    /// [`jsonwebtoken_validation`]: configured to check what PyJWT checks.
    Normalised,
    /// `Validation::new(HS256)` untouched: shows a default that had to be normalised.
    Default,
}

struct Row {
    name: &'static str,
    /// The token, built for the current second `now`.
    token: fn(i64) -> String,
    /// SimpleJWT's `LEEWAY` (and the normalised `jsonwebtoken` leeway).
    leeway: u32,
    config: JwtConfig,
    wsauth: Want,
    jsonwebtoken_accepts: bool,
}

const JTI: &str = "0123456789abcdef0123456789abcdef";

/// SimpleJWT's payload with `exp` given as JSON text and `extra` members
/// (`,"k":v…`) appended.
fn payload_with(now: i64, exp: &str, extra: &str) -> String {
    format!(
        r#"{{"token_type":"access","exp":{exp},"iat":{now},"jti":"{JTI}","user_id":"1"{extra}}}"#
    )
}

/// A valid SimpleJWT payload (five minutes left) plus `extra` members.
fn payload(now: i64, extra: &str) -> String {
    payload_with(now, &(now + 300).to_string(), extra)
}

fn hs256(header: &str, payload: &[u8]) -> String {
    sign_token(
        Algorithm::Hs256,
        SECRET.as_bytes(),
        header.as_bytes(),
        payload,
    )
}

fn valid(now: i64, extra: &str) -> String {
    hs256(HS256_HEADER, payload(now, extra).as_bytes())
}

fn rows() -> Vec<Row> {
    use JwtConfig::{Default, Normalised};
    use Want::{Accept, Reject};
    let row = |name, token, wsauth, jsonwebtoken_accepts| Row {
        name,
        token,
        leeway: 0,
        config: Normalised,
        wsauth,
        jsonwebtoken_accepts,
    };
    vec![
        // 1. The `exp` boundary. PyJWT: expired when `exp <= now - leeway`;
        //    jsonwebtoken: when `exp < now - leeway`.
        row(
            "exp_equal_to_now_is_expired",
            |now| {
                hs256(
                    HS256_HEADER,
                    payload_with(now, &now.to_string(), "").as_bytes(),
                )
            },
            Reject(Some(ErrorKind::Expired)),
            true,
        ),
        Row {
            leeway: 60,
            ..row(
                "exp_equal_to_now_minus_leeway_is_expired",
                |now| {
                    hs256(
                        HS256_HEADER,
                        payload_with(now, &(now - 60).to_string(), "").as_bytes(),
                    )
                },
                Reject(Some(ErrorKind::Expired)),
                true,
            )
        },
        // 2. Fractional `exp` / `nbf`: Python's `int()` truncates, jsonwebtoken rounds.
        row(
            "fractional_exp_truncates",
            |now| {
                hs256(
                    HS256_HEADER,
                    payload_with(now, &format!("{now}.5"), "").as_bytes(),
                )
            },
            Reject(Some(ErrorKind::Expired)),
            true,
        ),
        row(
            "fractional_nbf_truncates",
            |now| valid(now, &format!(r#","nbf":{now}.5"#)),
            Accept,
            false,
        ),
        // 3. Padding: PyJWT strips up to two `=` when the padded segment length
        //    is a multiple of 4; jsonwebtoken refuses any `=`.
        row(
            "signature_with_one_padding_char",
            |now| format!("{}=", valid(now, "")),
            Accept,
            false,
        ),
        row(
            "payload_segment_padded",
            |now| {
                // 125-byte payload: 167 base64 characters, padded to 168. The
                // signature covers the padded text, as PyJWT computes it.
                let p = payload(now, r#","pad":"xxxxxxx""#);
                assert_eq!(p.len() % 3, 2, "payload length chosen to need one `=`");
                let input = format!(
                    "{}.{}=",
                    b64url(HS256_HEADER.as_bytes()),
                    b64url(p.as_bytes())
                );
                sign_segments(Algorithm::Hs256, SECRET.as_bytes(), &input)
            },
            Accept,
            false,
        ),
        // 4. `iat`: PyJWT requires `int(iat)` to work and `iat <= now + leeway`;
        //    jsonwebtoken never looks at `iat`.
        row(
            "iat_in_the_future",
            |now| {
                let p = format!(
                    r#"{{"token_type":"access","exp":{},"iat":{},"jti":"{JTI}","user_id":"1"}}"#,
                    now + 7200,
                    now + 3600
                );
                hs256(HS256_HEADER, p.as_bytes())
            },
            Reject(Some(ErrorKind::NotYetValid)),
            true,
        ),
        row(
            "iat_not_a_number",
            |now| {
                let p = format!(
                    r#"{{"token_type":"access","exp":{},"iat":"abc","jti":"{JTI}","user_id":"1"}}"#,
                    now + 300
                );
                hs256(HS256_HEADER, p.as_bytes())
            },
            Reject(None),
            true,
        ),
        row(
            "iat_numeric_string_in_the_future",
            |now| {
                let p = format!(
                    r#"{{"token_type":"access","exp":{},"iat":" {} ","jti":"{JTI}","user_id":"1"}}"#,
                    now + 7200,
                    now + 3600
                );
                hs256(HS256_HEADER, p.as_bytes())
            },
            Reject(Some(ErrorKind::NotYetValid)),
            true,
        ),
        // 5. Non-finite numbers: Python's `json` reads `NaN`, `Infinity` and
        //    overflowing literals (as inf); serde_json refuses them.
        row(
            "nan_in_another_claim",
            |now| valid(now, r#","note":NaN"#),
            Accept,
            false,
        ),
        row(
            "infinity_in_another_claim",
            |now| valid(now, r#","note":-Infinity"#),
            Accept,
            false,
        ),
        row(
            "overflowing_float_in_another_claim",
            |now| valid(now, r#","note":1e400"#),
            Accept,
            false,
        ),
        // 6. Duplicate keys: Python keeps the last; jsonwebtoken refuses a
        //    duplicated registered claim.
        row(
            "duplicate_exp_last_wins",
            |now| {
                let p = payload(now, &format!(r#","exp":{}"#, now + 600));
                let p = p.replacen(
                    &format!(r#""exp":{}"#, now + 300),
                    &format!(r#""exp":{}"#, now - 100),
                    1,
                );
                hs256(HS256_HEADER, p.as_bytes())
            },
            Accept,
            false,
        ),
        // 7. SimpleJWT's own requirements: a jti, and `token_type == "access"`.
        row(
            "missing_jti",
            |now| {
                let p = format!(
                    r#"{{"token_type":"access","exp":{},"iat":{now},"user_id":"1"}}"#,
                    now + 300
                );
                hs256(HS256_HEADER, p.as_bytes())
            },
            Reject(Some(ErrorKind::MissingClaim)),
            true,
        ),
        row(
            "refresh_token_presented",
            |now| {
                let p = payload(now, "").replacen(
                    r#""token_type":"access""#,
                    r#""token_type":"refresh""#,
                    1,
                );
                hs256(HS256_HEADER, p.as_bytes())
            },
            Reject(Some(ErrorKind::WrongTokenType)),
            true,
        ),
        row(
            "missing_token_type",
            |now| {
                let p = format!(
                    r#"{{"exp":{},"iat":{now},"jti":"{JTI}","user_id":"1"}}"#,
                    now + 300
                );
                hs256(HS256_HEADER, p.as_bytes())
            },
            Reject(None),
            true,
        ),
        // 8. PyJWT requires `jti` and `sub` to be strings.
        row(
            "jti_integer",
            |now| {
                let p = format!(
                    r#"{{"token_type":"access","exp":{},"iat":{now},"jti":12345,"user_id":"1"}}"#,
                    now + 300
                );
                hs256(HS256_HEADER, p.as_bytes())
            },
            Reject(None),
            true,
        ),
        row(
            "sub_integer",
            |now| valid(now, r#","sub":42"#),
            Reject(None),
            true,
        ),
        // 9. `aud` with no AUDIENCE configured: SimpleJWT passes
        //    `verify_aud=False`; jsonwebtoken's default refuses any `aud`.
        Row {
            config: Default,
            ..row(
                "aud_present_not_configured",
                |now| valid(now, r#","aud":"someone""#),
                Accept,
                false,
            )
        },
        // 10. `nbf`: PyJWT checks it whenever present; jsonwebtoken only when
        //     asked, and reads only unsigned integers (a negative `nbf` fails to parse).
        Row {
            config: Default,
            ..row(
                "nbf_in_the_future_default_config",
                |now| valid(now, &format!(r#","nbf":{}"#, now + 3600)),
                Reject(Some(ErrorKind::NotYetValid)),
                true,
            )
        },
        row(
            "nbf_negative",
            |now| valid(now, r#","nbf":-5"#),
            Accept,
            false,
        ),
        // 11. Leeway: jsonwebtoken defaults to 60 s, SimpleJWT to 0.
        Row {
            config: Default,
            ..row(
                "default_leeway",
                |now| {
                    hs256(
                        HS256_HEADER,
                        payload_with(now, &(now - 30).to_string(), "").as_bytes(),
                    )
                },
                Reject(Some(ErrorKind::Expired)),
                true,
            )
        },
        // 12. Header member types: PyJWT ignores `typ` and unknown members;
        //     jsonwebtoken types its registered members (`typ`, `jwk`, `cty`…).
        row(
            "typ_not_a_string",
            |now| hs256(r#"{"alg":"HS256","typ":1}"#, payload(now, "").as_bytes()),
            Accept,
            false,
        ),
        row(
            "jwk_not_an_object",
            |now| hs256(r#"{"alg":"HS256","jwk":1}"#, payload(now, "").as_bytes()),
            Accept,
            false,
        ),
        // 13. `crit` / `b64`: PyJWT enforces them; jsonwebtoken ignores them.
        row(
            "crit_unknown_extension",
            |now| {
                hs256(
                    r#"{"alg":"HS256","crit":["exp"],"exp":1,"typ":"JWT"}"#,
                    payload(now, "").as_bytes(),
                )
            },
            Reject(None),
            true,
        ),
        row(
            "b64_false",
            |now| {
                hs256(
                    r#"{"alg":"HS256","b64":false,"typ":"JWT"}"#,
                    payload(now, "").as_bytes(),
                )
            },
            Reject(None),
            true,
        ),
        // 14. `exp` in year 10000 or later: SimpleJWT crashes in
        //     `datetime.fromtimestamp` (wsauth: a typed rejection); jsonwebtoken accepts.
        row(
            "exp_year_10000",
            |now| {
                hs256(
                    HS256_HEADER,
                    payload_with(now, "253402300800", "").as_bytes(),
                )
            },
            Reject(None),
            true,
        ),
        // 15. Size: wsauth refuses tokens above `max_token_bytes` (8 KiB).
        row(
            "token_above_size_limit",
            |now| valid(now, &format!(r#","note":"{}""#, "x".repeat(9000))),
            Reject(Some(ErrorKind::TooLarge)),
            true,
        ),
        // 16. Text encoding: `json.loads(bytes)` skips a UTF-8 BOM and lets
        //     surrogates through (`surrogatepass`, `\ud800` escapes); serde_json
        //     reads strict UTF-8 only. (UTF-16/32 documents: see the test below.)
        row(
            "payload_utf8_bom",
            |now| {
                hs256(
                    HS256_HEADER,
                    &[b"\xef\xbb\xbf".as_slice(), payload(now, "").as_bytes()].concat(),
                )
            },
            Accept,
            false,
        ),
        row(
            "lone_surrogate_escape",
            |now| valid(now, r#","note":"\ud800""#),
            Accept,
            false,
        ),
        row(
            "raw_utf8_surrogate",
            |now| {
                // U+D800 written as UTF-8 (ED A0 80), which strict UTF-8 forbids.
                let p = payload(now, r#","note":"@""#).into_bytes();
                let at = p.iter().position(|&b| b == b'@').unwrap_or(0);
                let raw = [&p[..at], b"\xed\xa0\x80".as_slice(), &p[at + 1..]].concat();
                hs256(HS256_HEADER, &raw)
            },
            Accept,
            false,
        ),
    ]
}

fn wsauth_decides(token: &str, now: i64, leeway: u32) -> Result<(), ErrorKind> {
    let settings = JwtSettings {
        leeway,
        ..JwtSettings::default()
    };
    let verifier = TokenVerifier::new(settings, SecretKey::from(SECRET)).expect("valid key");
    verifier
        .verify(token, now)
        .map(|_| ())
        .map_err(|e| e.kind())
}

fn jsonwebtoken_accepts(token: &str, config: JwtConfig, leeway: u32) -> bool {
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes());
    let validation = match config {
        JwtConfig::Normalised => jsonwebtoken_validation(Algorithm::Hs256, leeway),
        JwtConfig::Default => jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
    };
    jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
}

#[test]
fn each_documented_difference_holds() {
    let mut failures = Vec::new();
    for row in rows() {
        let (token, ours, theirs) = with_stable_clock(|now| {
            let token = (row.token)(now);
            let ours = wsauth_decides(&token, now, row.leeway);
            let theirs = jsonwebtoken_accepts(&token, row.config, row.leeway);
            (token, ours, theirs)
        });
        let ours_ok = match (row.wsauth, ours) {
            (Want::Accept, Ok(())) => true,
            (Want::Reject(None), Err(_)) => true,
            (Want::Reject(Some(want)), Err(got)) => want == got,
            _ => false,
        };
        if !ours_ok {
            failures.push(format!(
                "{}: wsauth decided {ours:?}, SimpleJWT decides {:?}",
                row.name, row.wsauth
            ));
        }
        if theirs != row.jsonwebtoken_accepts {
            failures.push(format!(
                "{}: jsonwebtoken accepts = {theirs}, the documented difference says {} (token length {})",
                row.name,
                row.jsonwebtoken_accepts,
                token.len()
            ));
        }
        // A difference means the two disagree on accepting.
        assert_ne!(
            matches!(row.wsauth, Want::Accept),
            row.jsonwebtoken_accepts,
            "{}: a row must describe a disagreement",
            row.name
        );
    }
    assert!(
        failures.is_empty(),
        "differences not as documented:\n{}",
        failures.join("\n")
    );
}

/// Difference 17, keys: PyJWT's `HMACAlgorithm.prepare_key` refuses an empty key and keys
/// that look like PEM / SSH public keys or certificates (algorithm confusion);
/// jsonwebtoken takes any bytes as an HMAC secret.
#[test]
fn keys_pyjwt_refuses_but_jsonwebtoken_takes() {
    let rows: [(&str, KeyError); 3] = [
        ("", KeyError::Empty),
        ("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n", KeyError::AsymmetricLooking),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC", KeyError::AsymmetricLooking),
    ];
    for (key, want) in rows {
        let got = TokenVerifier::new(JwtSettings::default(), SecretKey::from(key)).map(|_| ());
        assert_eq!(got, Err(want), "wsauth must refuse key {key:?}");
        let accepted = with_stable_clock(|now| {
            let token = sign_token(
                Algorithm::Hs256,
                key.as_bytes(),
                HS256_HEADER.as_bytes(),
                payload(now, "").as_bytes(),
            );
            let dk = jsonwebtoken::DecodingKey::from_secret(key.as_bytes());
            jsonwebtoken::decode::<Value>(
                &token,
                &dk,
                &jsonwebtoken_validation(Algorithm::Hs256, 0),
            )
            .is_ok()
        });
        assert!(accepted, "jsonwebtoken takes {key:?} as an HMAC secret");
    }
}

/// Not a difference between wsauth and jsonwebtoken, but one from PyJWT, so
/// recorded here: `json.loads(bytes)` also autodetects UTF-16 and UTF-32
/// payloads, which PyJWT then accepts. wsauth refuses them (a known
/// difference documented in `core/src/jwt.rs`), as jsonwebtoken does.
#[test]
fn utf16_and_utf32_payloads_are_refused_by_both() {
    type Encode = fn(&str) -> Vec<u8>;
    let encodings: [(&str, Encode); 2] = [
        ("utf-16-le", |p| {
            p.encode_utf16().flat_map(u16::to_le_bytes).collect()
        }),
        ("utf-32-be", |p| {
            p.chars().flat_map(|c| u32::from(c).to_be_bytes()).collect()
        }),
    ];
    for (name, encode) in encodings {
        let (ours, theirs) = with_stable_clock(|now| {
            let utf8 = payload(now, "");
            let token = hs256(HS256_HEADER, &encode(&utf8));
            let plain = hs256(HS256_HEADER, utf8.as_bytes());
            assert_eq!(
                wsauth_decides(&plain, now, 0),
                Ok(()),
                "control: the UTF-8 token is valid"
            );
            (
                wsauth_decides(&token, now, 0),
                jsonwebtoken_accepts(&token, JwtConfig::Normalised, 0),
            )
        });
        assert_eq!(
            ours,
            Err(ErrorKind::Malformed),
            "wsauth on a {name} payload"
        );
        assert!(!theirs, "jsonwebtoken on a {name} payload");
    }
}
