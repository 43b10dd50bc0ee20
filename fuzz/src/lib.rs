//! What the wsauth fuzz targets share: the fixed clock, the key, and the
//! verifier profiles (the vectors' SimpleJWT profiles), so that seeds made
//! from `vectors.json` mean the same thing in every target.

use std::sync::OnceLock;
use wsauth_core::{Algorithm, JwtSettings, SecretKey, TokenVerifier};

pub use wsauth_benches::{sign_token, OTHER_SECRET, SECRET};

/// The vectors' `now`.
pub const NOW: i64 = 1_750_000_000;

/// The vectors' `SECRET_KEY_FALLBACKS` entry.
pub const OLD_SECRET: &str = "vectors-OLD-secret-key-9876543210-zyxwvutsrqponmlkjihgfedcba-ZYXWV";

/// The SimpleJWT profiles of `vectors.json`, in this order (a seed's first
/// byte selects one modulo [`PROFILES`]): `jwt_default`, `jwt_leeway`,
/// `jwt_aud_iss`, `jwt_custom_claims`, `jwt_hs512`.
pub const PROFILES: usize = 5;

/// The settings of profile `i % PROFILES`.
pub fn profile_settings(i: usize) -> JwtSettings {
    let mut s = JwtSettings::default();
    match i % PROFILES {
        1 => s.leeway = 60,
        2 => {
            s.audience = Some("vectors-audience".into());
            s.issuer = Some("https://issuer.vectors.example".into());
        }
        3 => {
            s.user_id_claim = "uid".into();
            s.token_type_claim = "kind".into();
            s.jti_claim = "tid".into();
        }
        4 => s.algorithm = Algorithm::Hs512,
        _ => {}
    }
    s
}

/// The verifier of profile `i % PROFILES`, built once.
pub fn verifier(i: usize) -> &'static TokenVerifier {
    static CELLS: [OnceLock<TokenVerifier>; PROFILES] = [const { OnceLock::new() }; PROFILES];
    let i = i % PROFILES;
    CELLS[i].get_or_init(|| {
        TokenVerifier::new(profile_settings(i), SecretKey::from(SECRET))
            .expect("the fuzz key is a valid HMAC key")
    })
}

/// Splits `data` at the first NUL byte (the whole input and nothing when there is none).
pub fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
