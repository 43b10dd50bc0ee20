#![no_main]
//! Arbitrary input into `TokenVerifier::verify`: it never panics, and a token
//! it accepts satisfies the checks it promises (size, `exp`, `nbf`/`iat`
//! are PyJWT's, checked here only for the bounds that hold for any profile).
//!
//! Input: byte 0 = `mode << 7 | profile` (see `wsauth_fuzz::PROFILES`).
//! - mode 0: the rest is the token text (lossy UTF-8);
//! - mode 1: the rest is `header bytes NUL payload bytes`, base64url-encoded
//!   and signed with the profile's key and algorithm, so inputs get past the
//!   signature and reach the JSON and claim checks.

use libfuzzer_sys::fuzz_target;
use wsauth_fuzz::{profile_settings, sign_token, split_nul, verifier, NOW, SECRET};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let profile = usize::from(ctl & 0x7f);
    let settings = profile_settings(profile);
    let token = if ctl & 0x80 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let (header, payload) = split_nul(rest);
        sign_token(settings.algorithm, SECRET.as_bytes(), header, payload)
    };
    if let Ok(t) = verifier(profile).verify(&token, NOW) {
        assert!(
            token.len() <= settings.max_token_bytes,
            "accepted an oversized token"
        );
        assert_eq!(t.token(), token);
        assert!(
            t.exp() > NOW - i64::from(settings.leeway),
            "accepted an expired token (exp {})",
            t.exp()
        );
        if let Some(iat) = t.iat() {
            assert!(
                iat <= NOW + i64::from(settings.leeway),
                "accepted a future iat {iat}"
            );
        }
        let _ = (
            t.user_id(),
            t.jti(),
            t.is_staff(),
            t.is_superuser(),
            t.revoke_claim(),
        );
    }
});
