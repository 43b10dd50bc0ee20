//! The three token ratios of `benches/verify.rs` (`verify/wsauth`,
//! `reject/bad_signature`, each ÷ `verify/hmac_floor`) measured the other
//! way: the three paths take turns, many short batches each, and each path's
//! time is its fastest batch. On a machine shared with other work (other
//! tenants on the sibling hardware thread, a busy neighbour) criterion's mean
//! follows the interference, which falls unevenly on the three; the fastest
//! of many interleaved batches is what each path costs when it runs
//! undisturbed. `scripts/bench-ratios` prints both.
//!
//! ```text
//! cargo run --release -p wsauth-benches --example verify_min [rounds]
//! ```
//!
//! Output: one line, `verify <ratio> bad_signature <ratio> floor_ns <ns>`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::hint::black_box;
use std::time::Instant;
use wsauth_benches::{b64url_decode, simplejwt_token, tamper_signature, unix_now, SECRET};
use wsauth_core::{JwtSettings, SecretKey, TokenVerifier};

/// Calls per batch and batches per turn.
const BATCH: u32 = 1000;
const BATCHES: u32 = 20;

/// The fastest batch of this turn, in ns per call.
fn turn(f: &mut impl FnMut() -> bool) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..BATCHES {
        let t = Instant::now();
        for _ in 0..BATCH {
            black_box(f());
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(BATCH));
    }
    best
}

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let now = unix_now();
    let token = simplejwt_token(SECRET.as_bytes(), now, 24 * 3600);
    let bad = tamper_signature(&token);
    let verifier = TokenVerifier::new(JwtSettings::default(), SecretKey::from(SECRET))
        .expect("the bench key is a valid HMAC key");
    assert!(verifier.verify(&token, now).is_ok());
    assert!(verifier.verify(&bad, now).is_err());
    // The floor exactly as `benches/verify.rs` has it.
    let (signing_input, sig_b64) = token.rsplit_once('.').expect("three segments");
    let sig = b64url_decode(sig_b64).expect("canonical signature");
    let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
        .expect("HMAC takes keys of any length");
    let mut floor = || {
        let mut mac = keyed.clone();
        mac.update(black_box(signing_input.as_bytes()));
        mac.verify_slice(black_box(&sig)).is_ok()
    };
    let mut ok = || verifier.verify(black_box(&token), black_box(now)).is_ok();
    let mut forged = || verifier.verify(black_box(&bad), black_box(now)).is_err();
    let (mut f, mut v, mut b) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..rounds {
        f = f.min(turn(&mut floor));
        v = v.min(turn(&mut ok));
        b = b.min(turn(&mut forged));
    }
    println!(
        "verify {:.3} bad_signature {:.3} floor_ns {:.1}",
        v / f,
        b / f,
        f
    );
}
