#![no_main]
//! The cache-session unpickler: any bytes give a plain value or a typed
//! error, never a panic, never unbounded memory; a value that loads keeps
//! loading when bytes are appended after its `STOP` (as `pickle.loads`
//! ignores them); the session reader agrees with the unpickler on refusals.

use libfuzzer_sys::fuzz_target;
use wsauth_core::{unpickle, SecretKey, SessionEngine, django::session::SessionSettings, SessionVerifier};

fuzz_target!(|data: &[u8]| {
    let first = unpickle(data);
    let settings = SessionSettings {
        engine: SessionEngine::Cache,
        ..SessionSettings::default()
    };
    let v = SessionVerifier::new(settings, SecretKey::from("k"), Vec::new()).unwrap();
    let auth = v.load_cached(data);
    if first.is_err() {
        assert!(auth.is_err());
    }
    if let Ok(value) = first {
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"\x93R.");
        if longer.len() <= wsauth_core::MAX_PICKLE_BYTES {
            // Compared as text: a float may be NaN, which equals nothing.
            let again = unpickle(&longer).map(|v| format!("{v:?}"));
            assert_eq!(again, Ok(format!("{value:?}")));
        }
    }
});
