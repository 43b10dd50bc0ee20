//! Extreme integers at every public entry point.
//!
//! Tests build with overflow checks on, so any arithmetic that overflows
//! panics here. Each test drives one entry point with values at the edges of
//! their types (`i64::MIN` / `i64::MAX` and their neighbours, `u32::MAX`
//! leeway, `u64::MAX` intervals, huge base-62 and decimal texts, large
//! buffers). Where Python / Django defines the answer, the decision must be
//! the exact one: Python compares big integers exactly, so an `exp` of
//! `i64::MAX` with a large leeway is still in the future, never wrapped into
//! "expired".

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use wsauth_core::UnixTime;
use wsauth_core::{
    django::session::SessionSettings, django::session::SESSION_STORE_SALT,
    django::session::SIGNED_COOKIES_SALT, django::signing::b62_decode, django::signing::b62_encode,
    django::signing::dumps, django::signing::get_signed_cookie, django::signing::loads,
    django::signing::CookieSigner, django::signing::HashAlg, django::signing::Signer,
    django::signing::SigningError, django::signing::TimestampSigner,
    django::signing::MAX_DECOMPRESSED_BYTES, jwt::MintError, parse_iso8601_utc,
    pipeline::ratelimit::RetryAfter, py::percent::query_param, truncate_reason, Accepted,
    AuthSettings, Authenticator, Close, CloseCode, ConnState, Connection, Decision, ErrorKind,
    HandshakeView, JwtSettings, MessageAction, MintRequest, Principal, RateLimit, RateState,
    Requirement, Route, Routes, SecretKey, SessionEngine, SessionRow, SessionVerifier, Step,
    TokenVerifier, UserId, MAX_REASON_BYTES,
};

const KEY: &str = "extremes-test-secret-key-0123456789";
const NOW: i64 = 1_750_000_000;
/// `datetime(1, 1, 1, tzinfo=utc).timestamp()`.
const YEAR_1: i64 = -62_135_596_800;
/// `datetime(10000, 1, 1, tzinfo=utc).timestamp()` (out of range for Python).
const YEAR_10000: i64 = 253_402_300_800;

/// Instants every time-taking entry point is driven with.
const TIMES: [i64; 16] = [
    i64::MIN,
    i64::MIN + 1,
    YEAR_1 - 1,
    YEAR_1,
    -1,
    0,
    1,
    NOW - 1,
    NOW,
    NOW + 1,
    YEAR_10000 - 1,
    YEAR_10000,
    i64::MAX - u32::MAX as i64,
    i64::MAX - 2,
    i64::MAX - 1,
    i64::MAX,
];

const LEEWAYS: [u32; 4] = [0, 1, 86_400, u32::MAX];

// ------------------------------------------------------------------ JWT

/// A claim value as Python's `int()` sees it, beyond `i64` included.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i128),
    /// ±10^40: beyond `i128`.
    Huge {
        negative: bool,
    },
}

impl Num {
    fn json(self) -> String {
        match self {
            Num::Int(v) => v.to_string(),
            Num::Huge { negative } => {
                format!("{}1{}", if negative { "-" } else { "" }, "0".repeat(40))
            }
        }
    }
    /// Python's exact comparison `self > x`.
    fn gt(self, x: i128) -> bool {
        match self {
            Num::Int(v) => v > x,
            Num::Huge { negative } => !negative,
        }
    }
}

fn claim_values() -> Vec<Num> {
    let mut v: Vec<Num> = TIMES.iter().map(|&t| Num::Int(i128::from(t))).collect();
    v.extend([
        Num::Int(i128::from(i64::MIN) - 1),
        Num::Int(i128::from(i64::MAX) + 1),
        Num::Int(-(10i128.pow(30))),
        Num::Int(10i128.pow(30)),
        Num::Int(i128::MIN),
        Num::Int(i128::MAX),
        Num::Huge { negative: true },
        Num::Huge { negative: false },
    ]);
    v
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A SimpleJWT-shaped access token with these time claims, signed with `KEY`.
fn token(iat: Option<Num>, nbf: Option<Num>, exp: Option<Num>) -> String {
    let mut payload = String::from(r#"{"token_type":"access","jti":"0123","user_id":"1""#);
    for (name, v) in [("iat", iat), ("nbf", nbf), ("exp", exp)] {
        if let Some(v) = v {
            payload.push_str(&format!(r#","{name}":{}"#, v.json()));
        }
    }
    payload.push('}');
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(payload.as_bytes())
    );
    let mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(KEY.as_bytes()).expect("any key");
    let sig = mac.chain_update(input.as_bytes()).finalize().into_bytes();
    format!("{input}.{}", b64(&sig))
}

fn verifier(leeway: u32) -> TokenVerifier {
    let settings = JwtSettings {
        leeway,
        ..JwtSettings::default()
    };
    TokenVerifier::new(settings, SecretKey::from(KEY)).expect("key accepted")
}

/// PyJWT then SimpleJWT, with Python's unbounded integers: `iat` / `nbf`
/// after `now + leeway` is not yet valid, `exp <= now - leeway` expired, then
/// `datetime.fromtimestamp(exp)` must stay within years 1–9999.
fn expected(
    iat: Option<Num>,
    nbf: Option<Num>,
    exp: Option<Num>,
    now: i64,
    leeway: u32,
) -> Result<i64, ErrorKind> {
    let (now, leeway) = (i128::from(now), i128::from(leeway));
    for v in [iat, nbf].into_iter().flatten() {
        if v.gt(now + leeway) {
            return Err(ErrorKind::NotYetValid);
        }
    }
    let Some(exp) = exp else {
        return Err(ErrorKind::MissingClaim);
    };
    if !exp.gt(now - leeway) {
        return Err(ErrorKind::Expired);
    }
    match exp {
        Num::Int(e) if (i128::from(YEAR_1)..i128::from(YEAR_10000)).contains(&e) => {
            Ok(i64::try_from(e).expect("inside years 1-9999"))
        }
        _ => Err(ErrorKind::Malformed),
    }
}

fn check_verify(v: &TokenVerifier, iat: Option<Num>, nbf: Option<Num>, exp: Option<Num>, now: i64) {
    let leeway = v.settings().leeway;
    let t = token(iat, nbf, exp);
    let got = v.verify(&t, now);
    let want = expected(iat, nbf, exp, now, leeway);
    match (&got, want) {
        (Ok(tok), Ok(e)) => {
            assert_eq!(tok.exp(), e, "exp read back");
            let want_iat = match iat {
                Some(Num::Int(i)) => i64::try_from(i).ok(),
                _ => None,
            };
            assert_eq!(tok.iat(), want_iat);
        }
        (Err(err), Err(kind)) => assert_eq!(err.kind(), kind),
        _ => panic!(
            "iat {iat:?} nbf {nbf:?} exp {exp:?} now {now} leeway {leeway}: got {got:?}, want {want:?}"
        ),
    }
}

#[test]
fn verify_exp_iat_nbf_at_the_edges_of_i64() {
    let values = claim_values();
    for leeway in LEEWAYS {
        let v = verifier(leeway);
        for &now in &TIMES {
            for &a in &values {
                check_verify(&v, None, None, Some(a), now);
                // iat and nbf against a far-future (valid) exp.
                let far = Some(Num::Int(i128::from(YEAR_10000 - 1)));
                check_verify(&v, Some(a), None, far, now);
                check_verify(&v, None, Some(a), far, now);
            }
            check_verify(&v, None, None, None, now);
        }
    }
}

#[test]
fn python_exact_comparisons_at_the_boundaries() {
    // The answer Python gives, row by row.
    let max = i128::from(i64::MAX);
    let min = i128::from(i64::MIN);
    /// (iat, exp, now, leeway, expected)
    type Row = (Option<i128>, i128, i64, u32, Result<(), ErrorKind>);
    let rows: &[Row] = &[
        // now - leeway below i64::MIN must not wrap to a large positive number.
        (None, i128::from(YEAR_1), i64::MIN, u32::MAX, Ok(())),
        (None, i128::from(YEAR_10000 - 1), i64::MIN, 1, Ok(())),
        // now + leeway above i64::MAX must not wrap to a negative number.
        (
            Some(max),
            i128::from(YEAR_10000 - 1),
            i64::MAX,
            u32::MAX,
            Err(ErrorKind::Expired),
        ),
        (
            Some(max),
            i128::from(YEAR_10000 - 1),
            i64::MAX - 1,
            1,
            Err(ErrorKind::Expired),
        ),
        (
            Some(max + 1),
            i128::from(YEAR_10000 - 1),
            i64::MAX,
            0,
            Err(ErrorKind::NotYetValid),
        ),
        (
            Some(max + 1),
            i128::from(YEAR_10000 - 1),
            i64::MAX,
            1,
            Err(ErrorKind::Expired),
        ),
        (Some(min), i128::from(YEAR_10000 - 1), i64::MIN, 0, Ok(())),
        (
            Some(min + 1),
            i128::from(YEAR_10000 - 1),
            i64::MIN,
            0,
            Err(ErrorKind::NotYetValid),
        ),
        (
            Some(min + 1),
            i128::from(YEAR_10000 - 1),
            i64::MIN,
            1,
            Ok(()),
        ),
        // exp == now - leeway is expired, one more second is not.
        (
            None,
            i128::from(NOW) - i128::from(u32::MAX),
            NOW,
            u32::MAX,
            Err(ErrorKind::Expired),
        ),
        (
            None,
            i128::from(NOW) - i128::from(u32::MAX) + 1,
            NOW,
            u32::MAX,
            Ok(()),
        ),
        // exp beyond year 9999 is rejected even though it is in the future.
        (None, max, NOW, 0, Err(ErrorKind::Malformed)),
        (None, max, i64::MAX - 1, 0, Err(ErrorKind::Malformed)),
        (None, max, i64::MAX, 0, Err(ErrorKind::Expired)),
    ];
    for &(iat, exp, now, leeway, want) in rows {
        let t = token(iat.map(Num::Int), None, Some(Num::Int(exp)));
        let got = verifier(leeway)
            .verify(&t, now)
            .map(|_| ())
            .map_err(|e| e.kind());
        assert_eq!(got, want, "iat {iat:?} exp {exp} now {now} leeway {leeway}");
    }
}

fn edgy_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        prop::sample::select(TIMES.to_vec()),
        (-5i64..=5).prop_map(|d| i64::MAX - 5 + d.abs()),
        (-5i64..=5).prop_map(|d| i64::MIN + 5 - d.abs()),
        (YEAR_1 - 3..YEAR_1 + 3),
        (YEAR_10000 - 3..YEAR_10000 + 3),
    ]
}

fn edgy_num() -> impl Strategy<Value = Num> {
    prop_oneof![
        4 => edgy_i64().prop_map(|v| Num::Int(i128::from(v))),
        1 => any::<i128>().prop_map(Num::Int),
        1 => any::<bool>().prop_map(|negative| Num::Huge { negative }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn verify_matches_python_for_any_integers(
        iat in proptest::option::of(edgy_num()),
        nbf in proptest::option::of(edgy_num()),
        exp in proptest::option::of(edgy_num()),
        now in edgy_i64(),
        leeway in prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
    ) {
        check_verify(&verifier(leeway), iat, nbf, exp, now);
    }
}

#[test]
fn mint_refuses_an_exp_beyond_i64() {
    let v = verifier(0);
    let lifetimes = [i64::MIN, -300, 0, 300, i64::MAX];
    for &now in &TIMES {
        for lifetime in lifetimes {
            let req = MintRequest {
                user_id: wsauth_core::ClaimValue::Int(1),
                lifetime,
                jti: "0123456789abcdef0123456789abcdef",
                extra: &[],
            };
            let exact = i128::from(now) + i128::from(lifetime);
            match (v.try_mint(&req, now), i64::try_from(exact)) {
                (Ok(t), Ok(exp)) => {
                    // The token carries exactly that exp: verify it where it is still valid.
                    let want = expected(
                        Some(Num::Int(i128::from(now))),
                        None,
                        Some(Num::Int(exact)),
                        now,
                        0,
                    );
                    let got = v.verify(&t, now).map(|tok| tok.exp()).map_err(|e| e.kind());
                    assert_eq!(got, want, "now {now} lifetime {lifetime}");
                    if want.is_ok() {
                        assert_eq!(got, Ok(exp));
                    }
                    assert_eq!(v.mint(&req, now), t);
                }
                (Err(MintError::ExpOverflow), Err(_)) => assert_eq!(v.mint(&req, now), ""),
                (got, _) => panic!("now {now} lifetime {lifetime}: {got:?}"),
            }
        }
    }
}

#[test]
fn size_limits_at_the_extremes() {
    // A 1 MiB claim with no size limit: decoded on the heap, verified.
    let settings = JwtSettings {
        max_token_bytes: usize::MAX,
        ..JwtSettings::default()
    };
    let v = TokenVerifier::new(settings, SecretKey::from(KEY)).expect("key");
    let big = "x".repeat(1 << 20);
    let payload = format!(
        r#"{{"token_type":"access","jti":"j","user_id":"1","exp":{},"pad":"{big}"}}"#,
        NOW + 60
    );
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(payload.as_bytes())
    );
    let mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(KEY.as_bytes()).expect("any key");
    let t = format!(
        "{input}.{}",
        b64(&mac.chain_update(input.as_bytes()).finalize().into_bytes())
    );
    let ok = v.verify(&t, NOW).expect("valid");
    assert_eq!(ok.exp(), NOW + 60);
    assert!(ok.payload_json(true).len() > 1 << 20);
    assert!(v.verify_bytes(t.as_bytes(), NOW).is_ok());
    // The same token with a zero limit is too large.
    let tiny = TokenVerifier::new(
        JwtSettings {
            max_token_bytes: 0,
            ..JwtSettings::default()
        },
        SecretKey::from(KEY),
    )
    .expect("key");
    assert_eq!(
        tiny.verify(&t, NOW).map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::TooLarge)
    );
    assert_eq!(
        tiny.verify("", NOW).map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::Malformed)
    );
}

// ------------------------------------------------------------------ signing

/// Python's `time.time() - timestamp > max_age`: both operands become floats,
/// and the float age is compared with the integer `max_age` exactly.
fn python_expired(now: i64, ts: i128, max_age: i64) -> bool {
    let age = now as f64 - ts as f64;
    // Integer-valued (difference of two integer-valued floats), |age| <= 2^127.
    (age as i128) > i128::from(max_age)
}

const MAX_AGES: [i64; 8] = [
    i64::MIN,
    i64::MIN + 1,
    -1,
    0,
    1,
    1_209_600,
    i64::MAX - 1,
    i64::MAX,
];

fn ts_signer() -> TimestampSigner {
    TimestampSigner::new(SecretKey::from(KEY), Vec::new(), None, ':', HashAlg::Sha256)
}

#[test]
fn timestamp_signer_ages_at_the_extremes() {
    let s = ts_signer();
    for &ts in &TIMES {
        let signed = s.sign("value", ts);
        assert_eq!(s.unsign(&signed, None, i64::MIN), Ok("value"));
        for &now in &TIMES {
            for max_age in MAX_AGES {
                let got = s.unsign(&signed, Some(max_age), now);
                if python_expired(now, i128::from(ts), max_age) {
                    let Err(SigningError::Expired { age, max_age: m }) = got else {
                        panic!("ts {ts} now {now} max_age {max_age}: {got:?}");
                    };
                    assert_eq!(m, max_age);
                    assert!(i128::from(age) > i128::from(max_age) || age == i64::MAX);
                } else {
                    assert_eq!(got, Ok("value"), "ts {ts} now {now} max_age {max_age}");
                }
            }
        }
    }
}

#[test]
fn timestamp_signer_rows_that_wrapping_would_get_wrong() {
    let s = ts_signer();
    let p53 = 1i64 << 53;
    // (signed at, now, max_age, expired)
    let rows: &[(i64, i64, i64, bool)] = &[
        // age 2^64: wrapping i64 arithmetic would make it -1.
        (i64::MIN, i64::MAX, i64::MAX, true),
        // age -2^64: wrapping would make it 1 > i64::MIN.
        (i64::MAX, i64::MIN, i64::MIN, false),
        (i64::MAX, i64::MIN, i64::MIN + 1, false),
        // A signature from the future is accepted.
        (i64::MAX, 0, 0, false),
        // Float rounding: float(2^53 + 1) == 2^53, so the age is 2^53, not more.
        (0, p53 + 1, p53, false),
        (0, p53 + 2, p53, true),
        // Equal age is accepted, one more second is not.
        (NOW - 10, NOW, 10, false),
        (NOW - 11, NOW, 10, true),
    ];
    for &(ts, now, max_age, expired) in rows {
        let signed = s.sign("v", ts);
        let got = s.unsign(&signed, Some(max_age), now);
        assert_eq!(
            matches!(got, Err(SigningError::Expired { .. })),
            expired,
            "ts {ts} now {now} max_age {max_age}: {got:?}"
        );
        if !expired {
            assert_eq!(got, Ok("v"));
        }
    }
}

/// Base-62 text of any `i128` (Django's `b62_encode`).
fn b62(v: i128) -> String {
    if v == 0 {
        return "0".into();
    }
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut m = v.unsigned_abs();
    let mut out = Vec::new();
    while m > 0 {
        out.push(A[(m % 62) as usize]);
        m /= 62;
    }
    if v < 0 {
        out.push(b'-');
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

#[test]
fn b62_round_trips_and_refuses_huge_texts() {
    for &t in &TIMES {
        assert_eq!(b62_encode(t), b62(i128::from(t)));
        assert_eq!(b62_decode(&b62_encode(t)), Some(t));
    }
    for v in [
        i128::from(i64::MAX) + 1,
        i128::from(i64::MIN) - 1,
        i128::MAX,
        i128::MIN + 1,
    ] {
        assert_eq!(b62_decode(&b62(v)), None, "{v} does not fit i64");
    }
    let rows: &[(String, Option<i64>)] = &[
        ("z".repeat(100_000), None),
        (format!("-{}", "z".repeat(100_000)), None),
        (format!("{}1", "0".repeat(100_000)), Some(1)),
        (format!("-{}", "0".repeat(100_000)), Some(0)),
        ("-".into(), Some(0)),
        (String::new(), None),
        ("--1".into(), None),
        (format!("{}!", "z".repeat(1000)), None),
    ];
    for (text, want) in rows {
        assert_eq!(b62_decode(text), *want, "{} chars", text.len());
    }
}

#[test]
fn huge_base62_timestamps() {
    let s = ts_signer();
    // Signs `value:<ts>` under the TimestampSigner salt, whatever the timestamp text.
    let raw = Signer::new(
        SecretKey::from(KEY),
        Vec::new(),
        Some("django.core.signing.TimestampSigner"),
        ':',
        HashAlg::Sha256,
    );
    let finite_pos = "z".repeat(30); // ~6e53: beyond i128, a finite float
    let finite_neg = format!("-{finite_pos}");
    let inf_pos = "z".repeat(200); // ~1e358: float() raises OverflowError
    let inf_neg = format!("-{inf_pos}");
    let wide_pos = b62(1i128 << 100);
    let wide_neg = b62(-(1i128 << 100));
    for &now in &TIMES {
        for max_age in MAX_AGES {
            let unsign = |ts: &str| {
                let signed = raw.sign(&format!("value:{ts}"));
                s.unsign(&signed, Some(max_age), now).map(String::from)
            };
            // Far future: a negative age, never expired.
            assert_eq!(unsign(&finite_pos).as_deref(), Ok("value"));
            assert_eq!(unsign(&wide_pos).as_deref(), Ok("value"));
            // Far past: expired whatever max_age is; the reported age saturates.
            assert_eq!(
                unsign(&finite_neg),
                Err(SigningError::Expired {
                    age: i64::MAX,
                    max_age
                })
            );
            assert_eq!(
                unsign(&wide_neg),
                Err(SigningError::Expired {
                    age: i64::MAX,
                    max_age
                })
            );
            // Python's float() overflows: a ValueError-like refusal, either sign.
            assert_eq!(unsign(&inf_pos), Err(SigningError::BadTimestamp));
            assert_eq!(unsign(&inf_neg), Err(SigningError::BadTimestamp));
        }
        // Without max_age the timestamp is decoded but never converted to float.
        for ts in [&finite_pos, &finite_neg, &inf_pos, &inf_neg] {
            assert_eq!(
                s.unsign(&raw.sign(&format!("value:{ts}")), None, now),
                Ok("value")
            );
        }
    }
}

#[test]
fn loads_dumps_and_signed_cookies_at_the_extremes() {
    let key = SecretKey::from(KEY);
    let json = br#"{"a":1}"#;
    for &ts in &[i64::MIN, -1, 0, NOW, i64::MAX] {
        for compress in [false, true] {
            let signed = dumps(json, &key, "salt", compress, ts);
            for &now in &TIMES {
                for max_age in [None, Some(i64::MIN), Some(0), Some(i64::MAX)] {
                    let got = loads(&signed, &key, &[], "salt", max_age, now);
                    let expired = max_age.is_some_and(|m| python_expired(now, i128::from(ts), m));
                    if expired {
                        assert!(matches!(got, Err(SigningError::Expired { .. })), "{got:?}");
                    } else {
                        assert_eq!(got.as_deref(), Ok(r#"{"a":1}"#));
                    }
                }
            }
        }
        let cookies = CookieSigner::new(&key, &[]);
        let value = cookies.sign("v", "name", "salt", ts);
        for &now in &TIMES {
            for max_age in MAX_AGES {
                let got = get_signed_cookie(&value, "name", "salt", &key, &[], Some(max_age), now);
                if python_expired(now, i128::from(ts), max_age) {
                    assert!(matches!(got, Err(SigningError::Expired { .. })), "{got:?}");
                } else {
                    assert_eq!(got, Ok("v"));
                }
            }
        }
    }
}

#[test]
fn compressed_payloads_large_and_at_the_inflate_limit() {
    let key = SecretKey::from(KEY);
    // Repetitive (long matches, window slides) and noisy (stored / literal blocks) JSON.
    let mut noisy = String::from("[");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..40_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if i > 0 {
            noisy.push(',');
        }
        noisy.push_str(&(x % 1_000_000_007).to_string());
    }
    noisy.push(']');
    let repetitive = format!("[{}0]", "1234567890,".repeat(60_000));
    for json in [&noisy, &repetitive] {
        let signed = dumps(json.as_bytes(), &key, "s", true, NOW);
        assert_eq!(
            loads(&signed, &key, &[], "s", None, NOW).as_deref(),
            Ok(json.as_str())
        );
    }
    // Exactly the limit inflates; one byte more is refused.
    let at_limit = format!("\"{}\"", "a".repeat(MAX_DECOMPRESSED_BYTES - 2));
    let over = format!("\"{}\"", "a".repeat(MAX_DECOMPRESSED_BYTES - 1));
    assert_eq!(at_limit.len(), MAX_DECOMPRESSED_BYTES);
    let signed = dumps(at_limit.as_bytes(), &key, "s", true, NOW);
    assert!(signed.starts_with('.'), "compressed");
    assert_eq!(
        loads(&signed, &key, &[], "s", None, NOW).map(|s| s.len()),
        Ok(at_limit.len())
    );
    let signed = dumps(over.as_bytes(), &key, "s", true, NOW);
    assert!(signed.starts_with('.'), "compressed");
    assert_eq!(
        loads(&signed, &key, &[], "s", None, NOW),
        Err(SigningError::BadPayload)
    );
}

/// Text shaped to exercise the compressor: long runs, repeats at every
/// distance up to the window, and incompressible stretches.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        (prop::char::range('a', 'e'), 1usize..3000).prop_map(|(c, n)| c.to_string().repeat(n)),
        ("[a-z0-9 ]{1,40}", 1usize..400).prop_map(|(p, n)| p.repeat(n)),
        "[ -~&&[^\"\\\\]]{0,300}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn compression_round_trips_large_inputs(parts in proptest::collection::vec(segment(), 1..120)) {
        let key = SecretKey::from(KEY);
        let json = format!("\"{}\"", parts.concat());
        let signed = dumps(json.as_bytes(), &key, "s", true, NOW);
        prop_assert_eq!(loads(&signed, &key, &[], "s", None, NOW), Ok(json));
    }
}

// ------------------------------------------------------------------ sessions

const BACKEND: &str = "django.contrib.auth.backends.ModelBackend";

fn session_json() -> String {
    format!(r#"{{"_auth_user_id":"1","_auth_user_backend":"{BACKEND}","_auth_user_hash":"h"}}"#)
}

fn sessions(engine: SessionEngine, cookie_age: i64) -> SessionVerifier {
    let settings = SessionSettings {
        engine,
        cookie_age,
        ..SessionSettings::default()
    };
    SessionVerifier::new(settings, SecretKey::from(KEY), Vec::new()).expect("key")
}

#[test]
fn signed_cookie_sessions_with_extreme_ages() {
    let key = SecretKey::from(KEY);
    for cookie_age in MAX_AGES {
        let v = sessions(SessionEngine::SignedCookies, cookie_age);
        for &signed_at in &TIMES {
            let cookie = dumps(
                session_json().as_bytes(),
                &key,
                SIGNED_COOKIES_SALT,
                true,
                signed_at,
            );
            for &now in &TIMES {
                let got = v.load_signed_cookie(&cookie, now);
                if python_expired(now, i128::from(signed_at), cookie_age) {
                    assert_eq!(got.map_err(|e| e.kind()), Err(ErrorKind::SessionExpired));
                } else {
                    assert_eq!(got.map(|a| a.user_id), Ok("1".to_string()));
                }
            }
        }
    }
}

#[test]
fn db_sessions_with_extreme_expire_dates() {
    let v = sessions(SessionEngine::Db, 0);
    let data = dumps(
        session_json().as_bytes(),
        &SecretKey::from(KEY),
        SESSION_STORE_SALT,
        true,
        NOW,
    );
    for &expire_date in &TIMES {
        for &now in &TIMES {
            let row = SessionRow {
                session_key: "abcdefgh12345678",
                session_data: &data,
                expire_date,
            };
            let got = v
                .load_db_row(&row, now)
                .map(|a| a.user_id)
                .map_err(|e| e.kind());
            if expire_date > now {
                assert_eq!(got, Ok("1".to_string()));
            } else {
                assert_eq!(
                    got,
                    Err(ErrorKind::SessionExpired),
                    "expire {expire_date} now {now}"
                );
            }
        }
    }
}

#[test]
fn iso8601_expire_dates_at_the_edges_of_the_calendar() {
    let rows: &[(&str, Option<i64>)] = &[
        ("0001-01-01", Some(YEAR_1)),
        ("0001-01-01T00:00:00Z", Some(YEAR_1)),
        ("0001-01-01 00:00:00+00:00", Some(YEAR_1)),
        ("9999-12-31T23:59:59", Some(YEAR_10000 - 1)),
        ("9999-12-31T23:59:59.000001", Some(YEAR_10000)),
        ("9999-12-31T23:59:59.999999999999", Some(YEAR_10000)),
        ("9999-12-31T00:00:00-23:59:59", Some(YEAR_10000 - 1)),
        ("0001-01-01T23:59:59+23:59:59", Some(YEAR_1)),
        ("1970-01-01T00:00:00Z", Some(0)),
        ("0000-12-31", None),
        ("9999-12-32", None),
        ("9999-13-01", None),
        ("2024-02-30", None),
        ("99999-01-01", None),
        ("9999-12-31T24:00:00", None),
        ("9999-12-31T23:59:59+24:00", None),
        ("", None),
    ];
    for (text, want) in rows {
        assert_eq!(parse_iso8601_utc(text), *want, "{text}");
    }
    let long_fraction = format!("2025-01-01T00:00:00.{}", "9".repeat(100_000));
    assert_eq!(
        parse_iso8601_utc(&long_fraction),
        parse_iso8601_utc("2025-01-01T00:00:01")
    );
    assert_eq!(parse_iso8601_utc(&"9".repeat(100_000)), None);
}

proptest! {
    #[test]
    fn iso8601_never_panics(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,12})?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2}(:[0-9]{2})?)?)?)?") {
        if let Some(t) = parse_iso8601_utc(&text) {
            // Years 1-9999 plus at most a day of offset either way.
            prop_assert!((YEAR_1 - 86_400..YEAR_10000 + 86_400).contains(&t));
        }
    }
}

// ------------------------------------------------------------------ decisions and connections

fn routes() -> Routes {
    Routes::new(vec![
        Route::new("private", "/ws/private/", Requirement::Authenticated).expect("route"),
        Route::new("inbox", "/ws/inbox/", Requirement::Authenticated)
            .expect("route")
            .auth_message(Some(true)),
    ])
}

fn authenticator(leeway: u32, auth_message_timeout: i64) -> Authenticator {
    Authenticator::new(verifier(leeway), routes()).with_settings(AuthSettings {
        auth_message_timeout,
        ..AuthSettings::default()
    })
}

fn decide(auth: &Authenticator, path: &str, query: &str, now: i64) -> Decision {
    let view = HandshakeView::new(path, query, &[]);
    let hs = auth.start(&view, UnixTime::from_secs(now));
    match hs.poll() {
        Step::Done(d) => d,
        Step::Lookup(r) => panic!("claims-only handshake asked the host: {r:?}"),
    }
}

fn close_code(d: &Decision) -> Option<u16> {
    d.close().map(Close::code_u16)
}

#[test]
fn handshake_deadlines_are_exp_plus_leeway() {
    let exps = [
        YEAR_1,
        -1,
        0,
        NOW - 1,
        NOW,
        NOW + 1,
        YEAR_10000 - 1,
        YEAR_10000,
        i64::MAX,
    ];
    for leeway in LEEWAYS {
        let auth = authenticator(leeway, 10);
        for &now in &TIMES {
            for exp in exps {
                let exp_n = Some(Num::Int(i128::from(exp)));
                let t = token(None, None, exp_n);
                let d = decide(&auth, "/ws/private/", &format!("token={t}"), now);
                match expected(None, None, exp_n, now, leeway) {
                    Ok(e) => {
                        let Decision::Accept(a) = &d else {
                            panic!("exp {exp} now {now} leeway {leeway}: {d:?}")
                        };
                        let deadline = i128::from(e) + i128::from(leeway);
                        assert_eq!(a.deadline.map(i128::from), Some(deadline));
                        assert_eq!(a.principal.user().and_then(|u| u.expires_at), Some(e));
                        let deadline = a.deadline.expect("deadline");
                        let mut conn =
                            Connection::new(auth.clone(), &d, "/ws/private/").expect("open");
                        assert_eq!(conn.poll_timeout(), Some(deadline));
                        // Valid now, so `now < deadline` and `deadline - 1` cannot underflow.
                        assert!(now < deadline);
                        assert_eq!(conn.handle_timeout(UnixTime::from_secs(now)), None);
                        assert_eq!(conn.handle_timeout(UnixTime::from_secs(deadline - 1)), None);
                        let c = conn
                            .handle_timeout(UnixTime::from_secs(deadline))
                            .expect("expired");
                        assert_eq!(c.code, CloseCode::Unauthorized);
                        assert_eq!(conn.state(), ConnState::Closed);
                        assert_eq!(conn.poll_timeout(), None);
                        assert_eq!(conn.handle_timeout(UnixTime::from_secs(i64::MAX)), None);
                    }
                    Err(_) => assert_eq!(close_code(&d), Some(4401), "exp {exp} now {now}: {d:?}"),
                }
            }
        }
    }
}

#[test]
fn auth_message_deadlines_with_extreme_timeouts() {
    let timeouts = [i64::MIN, -1, 0, 1, 10, i64::MAX];
    for timeout in timeouts {
        let auth = authenticator(0, timeout);
        for &now in &TIMES {
            let d = decide(&auth, "/ws/inbox/", "", now);
            let Decision::AwaitFirstMessage(w) = &d else {
                panic!("timeout {timeout} now {now}: {d:?}")
            };
            // Exact when it fits; else the last instant an i64 clock can show.
            let exact = i128::from(now) + i128::from(timeout);
            let want = exact.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
            assert_eq!(i128::from(w.deadline), want, "timeout {timeout} now {now}");
            let mut conn = Connection::new(auth.clone(), &d, "/ws/inbox/").expect("open");
            assert_eq!(conn.state(), ConnState::AwaitingAuth);
            assert_eq!(conn.poll_timeout(), Some(w.deadline));
            let closed = conn.handle_timeout(UnixTime::from_secs(now));
            assert_eq!(closed.is_some(), now >= w.deadline);
            if let Some(c) = closed {
                assert_eq!(c.code, CloseCode::AuthTimeout);
            } else {
                assert_eq!(
                    conn.handle_timeout(UnixTime::from_secs(i64::MAX))
                        .map(|c| c.code),
                    Some(CloseCode::AuthTimeout)
                );
            }
        }
    }
}

#[test]
fn messages_and_refreshes_at_extreme_times() {
    for leeway in [0, u32::MAX] {
        let auth = authenticator(leeway, 10);
        let issued = Num::Int(i128::from(NOW));
        let exp = NOW + 300;
        let t = token(Some(issued), None, Some(Num::Int(i128::from(exp))));
        let deadline = exp + i64::from(leeway);
        for &now in &TIMES {
            let d = decide(&auth, "/ws/private/", &format!("token={t}"), NOW);
            let mut conn = Connection::new(auth.clone(), &d, "/ws/private/").expect("open");
            let refresh = format!(r#"{{"type":"refresh","token":"{t}"}}"#);
            let action = conn.handle_message(refresh.as_bytes(), UnixTime::from_secs(now));
            let want = expected(
                Some(issued),
                None,
                Some(Num::Int(i128::from(exp))),
                now,
                leeway,
            );
            match action {
                MessageAction::Close(c) => {
                    assert!(c.reason.len() <= MAX_REASON_BYTES);
                    assert_eq!(c.code, CloseCode::Unauthorized);
                    // Past the deadline, or the refresh token is not valid at `now`.
                    assert!(now >= deadline || want.is_err(), "now {now}: {c:?}");
                }
                MessageAction::Extended { .. } => {
                    assert!(now < deadline && want.is_ok(), "now {now}");
                    assert_eq!(conn.poll_timeout(), Some(deadline));
                }
                other => panic!("now {now}: {other:?}"),
            }
            // Plain application messages at any time.
            let mut conn = Connection::new(auth.clone(), &d, "/ws/private/").expect("open");
            let action = conn.handle_message(b"hello", UnixTime::from_secs(now));
            if now >= deadline {
                assert!(
                    matches!(action, MessageAction::Close(ref c) if c.code == CloseCode::Unauthorized)
                );
            } else {
                assert!(matches!(action, MessageAction::Deliver), "{action:?}");
            }
        }
        // First-message auth on a connection whose deadline sits at the ends of time.
        for (open_at, timeout) in [(i64::MIN, 10), (i64::MAX - 5, 10), (i64::MAX, i64::MAX)] {
            let auth = authenticator(leeway, timeout);
            let d = decide(&auth, "/ws/inbox/", "", open_at);
            let mut conn = Connection::new(auth.clone(), &d, "/ws/inbox/").expect("open");
            let msg = format!(r#"{{"type":"auth","token":"{t}"}}"#);
            for &now in &TIMES {
                let _ = conn
                    .clone()
                    .handle_message(msg.as_bytes(), UnixTime::from_secs(now));
            }
            let a = conn.handle_message(msg.as_bytes(), UnixTime::from_secs(open_at));
            assert!(
                matches!(
                    a,
                    MessageAction::Close(_) | MessageAction::Authenticated { .. }
                ),
                "{a:?}"
            );
        }
    }
}

#[test]
fn finish_with_extreme_deadlines() {
    let auth = authenticator(0, 10);
    let t = token(None, None, Some(Num::Int(i128::from(NOW + 60))));
    let d = decide(&auth, "/ws/private/", &format!("token={t}"), NOW);
    let Decision::Accept(a) = d else {
        panic!("{d:?}")
    };
    let user = a.principal;
    assert!(matches!(user, Principal::User(_)));
    for deadline in [
        None,
        Some(i64::MIN),
        Some(-1),
        Some(0),
        Some(i64::MAX - 1),
        Some(i64::MAX),
    ] {
        for &now in &TIMES {
            let mut conn = Connection::new(auth.clone(), &d, "/ws/private/").expect("open");
            let refreshed = Decision::Accept(Accepted { deadline, ..a });
            let got = match conn.finish(&refreshed, UnixTime::from_secs(now)) {
                MessageAction::Close(c) => Some(c.code),
                MessageAction::Extended { deadline: d } => {
                    assert_eq!(d, deadline);
                    None
                }
                other => panic!("{other:?}"),
            };
            let past = deadline.is_some_and(|dl| now >= dl);
            assert_eq!(got, past.then_some(CloseCode::Unauthorized));
            assert_eq!(conn.poll_timeout(), if past { None } else { deadline });
        }
    }
    // Another user's token closes whatever the deadline.
    let mut other = a;
    if let Principal::User(u) = &mut other.principal {
        u.id = UserId::new("2", false).expect("id");
    }
    let mut conn = Connection::new(auth.clone(), &d, "/ws/private/").expect("open");
    let c = conn.finish(
        &Decision::Accept(Accepted {
            deadline: Some(i64::MAX),
            ..other
        }),
        UnixTime::from_secs(i64::MIN),
    );
    assert!(
        matches!(c, MessageAction::Close(ref c) if c.code == CloseCode::Unauthorized),
        "{c:?}"
    );
}

// ------------------------------------------------------------------ rate limiting

/// GCRA with unbounded integers: `Ok(new tat)` or `Err(wait)`.
fn gcra(limit: &RateLimit, tat: i64, now: i64) -> Result<i128, i128> {
    let t = i128::from(limit.interval_ms.clamp(1, i64::MAX as u64));
    let tat = i128::from(tat.max(now));
    let new_tat = tat + t;
    let allow_at = new_tat - t * i128::from(limit.burst.max(1));
    let now = i128::from(now);
    if now < allow_at {
        Err(allow_at - now)
    } else {
        Ok(new_tat)
    }
}

const INTERVALS: [u64; 6] = [
    1,
    1000,
    4_294_967_295_000,
    i64::MAX as u64,
    i64::MAX as u64 + 1,
    u64::MAX,
];
const BURSTS: [u32; 5] = [1, 2, 3, 1000, u32::MAX];
const MS_TIMES: [i64; 10] = [
    i64::MIN,
    i64::MIN + 1,
    -1,
    0,
    1_750_000_000_000,
    i64::MAX - 1_000_000,
    i64::MAX - 1000,
    i64::MAX - 2,
    i64::MAX - 1,
    i64::MAX,
];

/// One check against the exact GCRA: a denial the exact algorithm makes is
/// made with its exact wait; an admission is made (and recorded exactly)
/// when the new state fits an `i64`, and refused when it cannot be recorded.
fn check_rate_step(limit: &RateLimit, state: &mut RateState, now: i64) -> bool {
    let before = *state;
    let got = limit.check(state, now);
    match gcra(limit, before.tat_ms, now) {
        Err(wait) => {
            let want = u64::try_from(wait).unwrap_or(u64::MAX);
            assert_eq!(
                got,
                Err(RetryAfter { ms: want }),
                "{limit:?} {before:?} now {now}"
            );
            assert_eq!(*state, before);
            false
        }
        Ok(new_tat) => match i64::try_from(new_tat) {
            Ok(t) => {
                assert_eq!(got, Ok(()), "{limit:?} {before:?} now {now}");
                assert_eq!(state.tat_ms, t);
                true
            }
            Err(_) => {
                assert!(
                    got.is_err(),
                    "{limit:?} {before:?} now {now}: admitted unrecorded"
                );
                assert_eq!(*state, before);
                false
            }
        },
    }
}

#[test]
fn rate_limit_with_extreme_state_and_time() {
    for interval_ms in INTERVALS {
        for burst in BURSTS {
            let limit = RateLimit { interval_ms, burst };
            for tat_ms in MS_TIMES {
                for now in MS_TIMES {
                    let mut state = RateState { tat_ms };
                    check_rate_step(&limit, &mut state, now);
                    assert_eq!(state.is_idle(now), state.tat_ms <= now);
                }
            }
        }
    }
}

#[test]
fn a_burst_is_never_exceeded_at_the_ends_of_time() {
    for interval_ms in INTERVALS {
        for burst in [1u32, 2, 3, 7] {
            let limit = RateLimit { interval_ms, burst };
            for now in MS_TIMES {
                let mut state = RateState::default();
                let admitted = (0..burst + 5)
                    .filter(|_| check_rate_step(&limit, &mut state, now))
                    .count();
                assert!(
                    admitted <= burst as usize,
                    "{limit:?} at {now}: {admitted} attempts admitted"
                );
            }
        }
    }
}

proptest! {
    #[test]
    fn rate_limit_matches_exact_gcra(
        interval_ms in prop_oneof![1u64..10_000, Just(u64::MAX), any::<u64>()],
        burst in prop_oneof![1u32..10, Just(u32::MAX), any::<u32>()],
        tat_ms in prop_oneof![Just(0i64), any::<i64>(), prop::sample::select(MS_TIMES.to_vec())],
        steps in proptest::collection::vec(prop_oneof![any::<i64>(), prop::sample::select(MS_TIMES.to_vec())], 1..8),
    ) {
        let limit = RateLimit { interval_ms, burst };
        let mut state = RateState { tat_ms };
        for now in steps {
            check_rate_step(&limit, &mut state, now);
        }
    }
}

#[test]
fn rate_limited_closes_with_extreme_waits() {
    for ms in [0, 1, 999, 1000, 1001, u64::MAX - 1, u64::MAX] {
        let r = RetryAfter { ms };
        let secs = r.secs();
        assert!(secs >= 1);
        assert_eq!(u128::from(secs), u128::from(ms).div_ceil(1000).max(1));
        let c = Close::rate_limited(secs);
        assert_eq!(c.code_u16(), 4429);
        assert_eq!(c.retry_after, Some(secs));
        assert!(c.reason.len() <= MAX_REASON_BYTES);
        assert!(
            c.reason.as_str().contains(&secs.to_string()),
            "{:?}",
            c.reason
        );
    }
    let auth = authenticator(0, 10).with_rate_limit(Some(RateLimit {
        interval_ms: u64::MAX,
        burst: 1,
    }));
    // The rate step at the far ends of the clock and of the stored state.
    let view = HandshakeView::new("/ws/private/", "", &[])
        .with_peer(std::net::IpAddr::from([127, 0, 0, 1]));
    let mut hs = auth.start(&view, UnixTime::from_millis(i64::MIN));
    let d = hs.drive(|req| match req {
        wsauth_core::Request::Rate { .. } => {
            wsauth_core::Answer::Rate(RateState { tat_ms: i64::MAX })
        }
        other => panic!("a limited attempt asked {other:?}"),
    });
    assert_eq!(close_code(&d), Some(4429));
    assert!(d
        .close()
        .and_then(|c| c.retry_after)
        .is_some_and(|s| s >= 1));
}

// ------------------------------------------------------------------ texts and sizes

#[test]
fn huge_texts_through_the_text_helpers() {
    let n = 200_000;
    let q = format!("a=1&token={}&b=2", "%41".repeat(n));
    assert_eq!(query_param(&q, "token").map(|v| v.len()), Some(n));
    let q = format!("token={}", "%E2%82%AC".repeat(n));
    assert_eq!(query_param(&q, "token").map(|v| v.chars().count()), Some(n));
    let q = format!("token={}%", "%".repeat(n));
    assert_eq!(query_param(&q, "token").map(|v| v.len()), Some(n + 1));
    let text = "€".repeat(n);
    let cut = truncate_reason(&text);
    assert!(cut.len() <= MAX_REASON_BYTES && text.starts_with(cut));
    assert_eq!(cut.len(), MAX_REASON_BYTES / 3 * 3);
    assert_eq!(truncate_reason(""), "");
}
