//! Runs one token path a given number of times, for instruction counts under
//! `valgrind --tool=callgrind` (deterministic, unlike wall-clock benches):
//!
//! ```text
//! cargo build --profile bench -p wsauth-benches --example verify_loop
//! valgrind --tool=callgrind --dump-instr=no target/release/examples/verify_loop wsauth 1
//! valgrind --tool=callgrind --dump-instr=no target/release/examples/verify_loop wsauth 10001
//! ```
//!
//! The difference of the two totals divided by 10 000 is the cost of one
//! call. Paths: `wsauth`, `jsonwebtoken`, `hmac_floor`, `bad_signature`,
//! `garbage` (the names of `benches/verify.rs`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::hint::black_box;
use wsauth_benches::{
    b64url_decode, jsonwebtoken_validation, simplejwt_token, tamper_signature, unix_now, Algorithm,
    SimpleJwtClaims, SECRET,
};
use wsauth_core::{JwtSettings, SecretKey, TokenVerifier};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "wsauth".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    // The current time, as the benches use it (jsonwebtoken reads the clock).
    let now = unix_now();
    let token = simplejwt_token(SECRET.as_bytes(), now, 24 * 3600);
    let bad = tamper_signature(&token);
    let verifier = TokenVerifier::new(JwtSettings::default(), SecretKey::from(SECRET))
        .expect("the bench key is a valid HMAC key");
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes());
    let validation = jsonwebtoken_validation(Algorithm::Hs256, 0);
    let (signing_input, sig_b64) = token.rsplit_once('.').expect("three segments");
    let sig = b64url_decode(sig_b64).expect("canonical signature");
    let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
        .expect("HMAC takes keys of any length");
    let mut ok = 0u64;
    for _ in 0..n {
        let r = match path.as_str() {
            "wsauth" => verifier.verify(black_box(&token), black_box(now)).is_ok(),
            "jsonwebtoken" => {
                jsonwebtoken::decode::<SimpleJwtClaims>(black_box(&token), &key, &validation)
                    .is_ok()
            }
            "hmac_floor" => {
                let mut mac = keyed.clone();
                mac.update(black_box(signing_input.as_bytes()));
                mac.verify_slice(black_box(&sig)).is_ok()
            }
            "bad_signature" => verifier.verify(black_box(&bad), black_box(now)).is_err(),
            "garbage" => verifier
                .verify(black_box("not-a-token"), black_box(now))
                .is_err(),
            other => panic!("unknown path {other}"),
        };
        ok += u64::from(r);
    }
    assert_eq!(ok, n, "every call must take the expected outcome");
}
