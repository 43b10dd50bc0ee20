//! Session dicts as Django's `cache` / `cached_db` engines leave them in
//! Redis (made by the real Django after a real `login`, see
//! `data/make_cache_sessions.py`), read back by the core's unpickler and
//! session verifier; the cache key rule against Django's `default_key_func`.

use base64::Engine as _;
use serde_json::Value;
use wsauth_core::{
    django::session::SessionSettings, unpickle, PickleError, PickleValue, SecretKey, SessionEngine,
    SessionVerifier,
};

fn data() -> Value {
    serde_json::from_str(include_str!("data/cache_sessions.json")).unwrap()
}

fn expected(v: &Value) -> PickleValue {
    match v {
        Value::Null => PickleValue::None,
        Value::Bool(b) => PickleValue::Bool(*b),
        Value::Number(n) => PickleValue::Int(n.as_i64().unwrap()),
        Value::String(s) => PickleValue::Str(s.clone()),
        Value::Array(a) => PickleValue::List(a.iter().map(expected).collect()),
        Value::Object(o) => {
            if let Some(f) = o.get("float") {
                PickleValue::Float(f.as_str().unwrap().parse().unwrap())
            } else if let Some(t) = o.get("tuple") {
                PickleValue::Tuple(t.as_array().unwrap().iter().map(expected).collect())
            } else if let Some(b) = o.get("bigint") {
                let n: i128 = b.as_str().unwrap().parse().unwrap();
                // Python's LONG1: minimal little-endian two's complement.
                let mut bytes = n.to_le_bytes().to_vec();
                while bytes.len() > 1 {
                    let last = bytes[bytes.len() - 1];
                    let prev = bytes[bytes.len() - 2];
                    if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
                        bytes.pop();
                    } else {
                        break;
                    }
                }
                PickleValue::BigInt(bytes)
            } else {
                let items = o["dict"].as_array().unwrap();
                PickleValue::Dict(
                    items
                        .iter()
                        .map(|kv| (expected(&kv[0]), expected(&kv[1])))
                        .collect(),
                )
            }
        }
    }
}

fn verifier(engine: SessionEngine) -> SessionVerifier {
    let settings = SessionSettings {
        engine,
        ..SessionSettings::default()
    };
    SessionVerifier::new(settings, SecretKey::from("cache-session-vectors"), vec![]).unwrap()
}

#[test]
fn django_pickled_sessions_read_back_exactly() {
    let d = data();
    let v = verifier(SessionEngine::Cache);
    for case in d["sessions"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(case["redis_value_b64"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            unpickle(&bytes).unwrap(),
            expected(&case["value"]),
            "{name}"
        );
        let auth = v.load_cached(&bytes);
        match &case["auth"] {
            Value::Null => assert!(auth.is_err(), "{name}"),
            a => {
                let auth = auth.unwrap();
                assert_eq!(auth.user_id, a["user_id"].as_str().unwrap(), "{name}");
                assert_eq!(auth.backend, a["backend"].as_str().unwrap(), "{name}");
                assert_eq!(auth.hash.as_deref(), a["hash"].as_str(), "{name}");
            }
        }
        // Every strict prefix is truncated, never a panic or a value.
        for cut in [0, 1, 2, bytes.len() / 2, bytes.len() - 1] {
            assert!(unpickle(&bytes[..cut]).is_err(), "{name} cut at {cut}");
        }
    }
}

#[test]
fn cache_keys_are_djangos() {
    let d = data();
    let k = "k".repeat(32);
    assert_eq!(
        verifier(SessionEngine::Cache).cache_key(&k).unwrap(),
        d["cache_key"].as_str().unwrap()
    );
    assert_eq!(
        verifier(SessionEngine::CachedDb).cache_key(&k).unwrap(),
        d["cached_db_key"].as_str().unwrap()
    );
    assert_eq!(
        verifier(SessionEngine::Cache)
            .with_cache_key("site1", 7)
            .cache_key(&k)
            .unwrap(),
        d["cache_key_prefixed"].as_str().unwrap()
    );
    assert_eq!(verifier(SessionEngine::Db).cache_key(&k), None);
}

#[test]
fn crafted_pickles_are_typed_rejections() {
    let v = verifier(SessionEngine::Cache);
    // pickle.dumps(os.system) style payloads, protocol 5 and 0.
    let reduce = b"\x80\x05\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";
    assert_eq!(unpickle(reduce), Err(PickleError::Forbidden(0x93)));
    assert_eq!(
        unpickle(b"cposix\nsystem\n(S'id'\ntR."),
        Err(PickleError::Forbidden(b'c'))
    );
    // A dict whose value is built by REDUCE.
    let nested = b"\x80\x05}\x94\x8c\x01a\x94(\x8c\x01b\x8c\x01cR.";
    assert_eq!(unpickle(nested), Err(PickleError::Forbidden(b'R')));
    for op in [b'i', b'o', b'b', 0x81, 0x92] {
        assert_eq!(
            unpickle(&[0x80, 5, b'}', op, b'.']),
            Err(PickleError::Forbidden(op))
        );
    }
    assert!(v.load_cached(reduce).is_err());
    // Huge declared lengths are refused before any allocation.
    assert_eq!(
        unpickle(b"\x80\x05\x8d\x00\x00\x00\x00\x00\x00\x00\x40"),
        Err(PickleError::Truncated)
    );
    assert_eq!(
        unpickle(b"\x80\x05\x8b\xff\xff\xff\x7f"),
        Err(PickleError::Truncated)
    );
    // Over the input bound.
    let big = vec![b'N'; wsauth_core::MAX_PICKLE_BYTES + 1];
    assert_eq!(unpickle(&big), Err(PickleError::TooLarge));
    // Not a dict, a bare int (RedisSerializer writes ints as digits).
    assert!(v.load_cached(b"\x80\x05K\x01.").is_err());
    assert!(v.load_cached(b"12").is_err());
}
