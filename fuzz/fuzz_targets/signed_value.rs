#![no_main]
//! `django.core.signing` and sessions on arbitrary input: `loads`,
//! `Signer` / `TimestampSigner` `unsign`, signed cookies, and session data
//! from a signed cookie or a db row. Nothing panics, and what verifies has
//! the shape Django would have produced.
//!
//! Input: byte 0 = `mode << 7 | entry`.
//! - mode 0: the rest is the signed text itself (lossy UTF-8);
//! - mode 1: the rest is an arbitrary payload that gets signed correctly
//!   (`"." + b64(bytes)` claims to be zlib-compressed, so the inflater and
//!   the JSON reader see attacker-shaped bytes behind a valid signature).

use libfuzzer_sys::fuzz_target;
use wsauth_core::{django::signing::b64_encode, django::signing::get_signed_cookie, django::signing::loads, django::signing::HashAlg, SecretKey, SessionRow, django::session::SessionSettings, SessionVerifier, django::signing::Signer, django::signing::TimestampSigner, django::session::SESSION_STORE_SALT, django::session::SIGNED_COOKIES_SALT};
use wsauth_fuzz::{NOW, OLD_SECRET, SECRET};

const SALT: &str = "django.core.signing";

fn key() -> SecretKey {
    SecretKey::from(SECRET)
}

fn timestamp_signer(salt: &str) -> TimestampSigner {
    TimestampSigner::new(
        key(),
        vec![SecretKey::from(OLD_SECRET)],
        Some(salt),
        ':',
        HashAlg::Sha256,
    )
}

fn sessions(engine_signed: bool) -> SessionVerifier {
    let mut settings = SessionSettings::default();
    if engine_signed {
        settings.engine = wsauth_core::SessionEngine::SignedCookies;
    }
    SessionVerifier::new(settings, key(), vec![SecretKey::from(OLD_SECRET)]).expect("valid key")
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let entry = ctl & 0x7f;
    let text = if ctl & 0x80 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        // A validly signed value around arbitrary payload bytes.
        let compressed = rest.first().is_some_and(|b| b & 1 == 1);
        let body = rest.get(1..).unwrap_or(&[]);
        let value = if compressed {
            format!(".{}", b64_encode(body))
        } else {
            b64_encode(body)
        };
        let salt = match entry % 3 {
            0 => SALT,
            1 => SIGNED_COOKIES_SALT,
            _ => SESSION_STORE_SALT,
        };
        timestamp_signer(salt).sign(&value, NOW - 10)
    };
    match entry % 7 {
        0 => {
            if let Ok(json) = loads(
                &text,
                &key(),
                &[SecretKey::from(OLD_SECRET)],
                SALT,
                Some(3600),
                NOW,
            ) {
                let _ = json.len();
            }
        }
        1 => {
            let s = sessions(true);
            let _ = s.load_signed_cookie(&text, NOW);
        }
        2 => {
            let s = sessions(false);
            let row = SessionRow {
                session_key: "abcdefgh12345678",
                session_data: &text,
                expire_date: NOW + 60,
            };
            let _ = s.load_db_row(&row, NOW);
        }
        3 => {
            let signer = Signer::new(key(), vec![], None, ':', HashAlg::Sha256);
            if let Ok(v) = signer.unsign(&text) {
                // The value is a prefix of the input, cut before a separator.
                assert!(text.starts_with(v));
                assert_eq!(text.as_bytes().get(v.len()), Some(&b':'));
            }
        }
        4 => {
            let signer = TimestampSigner::new(key(), vec![], None, ':', HashAlg::Sha256);
            if let Ok(v) = signer.unsign(&text, Some(60), NOW) {
                assert!(text.starts_with(v));
            }
        }
        5 => {
            let _ = get_signed_cookie(&text, "prefs", "ui", &key(), &[], Some(3600), NOW);
        }
        _ => {
            // Round trip: what `sign` produces, `unsign` returns unchanged.
            let signer = timestamp_signer(SALT);
            let signed = signer.sign(&text, NOW);
            assert_eq!(
                signer.unsign(&signed, Some(0), NOW).ok(),
                Some(text.as_str())
            );
        }
    }
});
