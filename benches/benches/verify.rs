//! Token verification: wsauth against `jsonwebtoken` and against the physical
//! floor (one HMAC-SHA256 over the same signing input), plus the two reject
//! paths. Group and function names are a contract (`scripts/bench-ratios`
//! reads them): `verify/{wsauth,jsonwebtoken,hmac_floor}`,
//! `reject/{bad_signature,garbage,rate_limited}`. `reject/rate_limited` is a
//! whole handshake from a peer over its rate limit, carrying a forged token:
//! the core answers 4429 before any credential is verified, so it costs no
//! HMAC (compare it with `reject/bad_signature`).

use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::hint::black_box;
use wsauth_benches::{
    b64url_decode, jsonwebtoken_validation, simplejwt_token, tamper_signature, unix_now, Algorithm,
    SimpleJwtClaims, SECRET,
};
use wsauth_core::{
    Answer, Authenticator, HandshakeView, JwtSettings, RateLimit, RateState, Request, Requirement,
    Route, Routes, SecretKey, TokenVerifier, UnixTime,
};

/// Long enough that the token outlives any benchmark run.
const LIFETIME: i64 = 24 * 3600;

fn verifier() -> TokenVerifier {
    TokenVerifier::new(JwtSettings::default(), SecretKey::from(SECRET))
        .expect("the bench key is a valid HMAC key")
}

fn verify(c: &mut Criterion) {
    let now = unix_now();
    let token = simplejwt_token(SECRET.as_bytes(), now, LIFETIME);
    let mut group = c.benchmark_group("verify");

    let wsauth = verifier();
    assert!(
        wsauth.verify(&token, now).is_ok(),
        "wsauth must accept the bench token"
    );
    group.bench_function("wsauth", |b| {
        b.iter(|| wsauth.verify(black_box(&token), black_box(now)).is_ok())
    });

    let key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes());
    let validation = jsonwebtoken_validation(Algorithm::Hs256, 0);
    assert!(
        jsonwebtoken::decode::<SimpleJwtClaims>(&token, &key, &validation).is_ok(),
        "jsonwebtoken must accept the bench token"
    );
    group.bench_function("jsonwebtoken", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<SimpleJwtClaims>(black_box(&token), &key, &validation).is_ok()
        })
    });

    // The floor: the keyed HMAC state is computed once (as a verifier that
    // caches its key would), cloned per token, fed the signing input, and
    // compared in constant time with the already-decoded signature.
    let (signing_input, sig_b64) = token.rsplit_once('.').expect("three segments");
    let sig = b64url_decode(sig_b64).expect("canonical signature");
    let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
        .expect("HMAC takes keys of any length");
    let floor = |input: &[u8], sig: &[u8]| {
        let mut mac = keyed.clone();
        mac.update(input);
        mac.verify_slice(sig).is_ok()
    };
    assert!(floor(signing_input.as_bytes(), &sig));
    group.bench_function("hmac_floor", |b| {
        b.iter(|| floor(black_box(signing_input.as_bytes()), black_box(&sig)))
    });
    group.finish();
}

fn reject(c: &mut Criterion) {
    let now = unix_now();
    let token = simplejwt_token(SECRET.as_bytes(), now, LIFETIME);
    let bad = tamper_signature(&token);
    let wsauth = verifier();
    assert!(
        wsauth.verify(&bad, now).is_err(),
        "wsauth must reject a bad signature"
    );
    let garbage = "not-a-token";
    assert!(wsauth.verify(garbage, now).is_err());

    let mut group = c.benchmark_group("reject");
    group.bench_function("bad_signature", |b| {
        b.iter(|| wsauth.verify(black_box(&bad), black_box(now)).is_err())
    });
    group.bench_function("garbage", |b| {
        b.iter(|| wsauth.verify(black_box(garbage), black_box(now)).is_err())
    });

    // A peer over its limit: the host's stored state says so.
    let routes = Routes::new(vec![Route::new(
        "admin",
        "/ws/admin/chat/",
        Requirement::Staff,
    )
    .expect("route")]);
    let auth =
        Authenticator::new(wsauth.clone(), routes).with_rate_limit(RateLimit::new(1, 60_000, 1));
    let query = format!("token={bad}");
    let view = HandshakeView::new("/ws/admin/chat/", &query, &[]).with_peer([10, 0, 0, 1].into());
    let t = UnixTime::from_secs(now);
    let limited = RateState {
        tat_ms: t.millis().saturating_add(3_600_000),
    };
    let answer = |req: &Request| match req {
        Request::Rate { .. } => Answer::Rate(limited),
        _ => Answer::Stored,
    };
    let d = auth.start(&view, t).drive(answer);
    assert_eq!(d.close().map(|c| c.code_u16()), Some(4429), "{d:?}");
    group.bench_function("rate_limited", |b| {
        b.iter(|| auth.start(black_box(&view), black_box(t)).drive(answer))
    });
    group.finish();
}

criterion_group!(benches, verify, reject);
criterion_main!(benches);
