//! Django sessions and `get_user` against the vectors the real Django and
//! Channels produced: every `django_session_db`, `django_session_signed_cookie`
//! and `django_session_encode` vector.
//!
//! Each session vector is decided twice:
//! - as Channels' `AuthMiddlewareStack` does (`expected.channels_scope_user`):
//!   only the **first** `Cookie` header, session hash under `SECRET_KEY` only;
//! - as Django's HTTP `get_user` does (`expected.django_http_get_user`): the
//!   ASGI handler joins repeated `Cookie` headers with `","` before parsing,
//!   and a session hash made with a `SECRET_KEY_FALLBACKS` entry is accepted.
//!
//! The host's parts are modelled from the vector: the `django_session` row
//! (`inputs.django_session_row`, found only under its own key) and the user
//! lookup (`inputs.user_row_now`, found when `str(pk)` equals the session's
//! `_auth_user_id`).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use wsauth_core::{
    django::cookie::parse_cookie_pairs, django::session::SessionAuth,
    django::session::SessionSettings, django::session::SESSION_STORE_SALT,
    django::session::SIGNED_COOKIES_SALT, django::signing::dumps, django::signing::loads,
    parse_iso8601_utc, SecretKey, SessionEngine, SessionRow, SessionVerifier, UserRecord,
};

fn vectors_path() -> PathBuf {
    if let Some(p) = std::env::var_os("WSAUTH_VECTORS") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        root.join("vectors/vectors.json"),
        root.join("../shared/vectors/vectors.json"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("vectors.json not found: set WSAUTH_VECTORS")
}

fn vectors_text() -> String {
    let path = vectors_path();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// A JSON value that keeps object members in document order, so it can be
/// serialized again exactly as Python's `json.dumps` would.
#[derive(Debug, Clone)]
enum PyJson {
    Null,
    Bool(bool),
    Int(String),
    Str(String),
    Arr(Vec<PyJson>),
    Obj(Vec<(String, PyJson)>),
}

impl<'de> Deserialize<'de> for PyJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PyJson;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON without floats")
            }
            fn visit_unit<E>(self) -> Result<PyJson, E> {
                Ok(PyJson::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<PyJson, E> {
                Ok(PyJson::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<PyJson, E> {
                Ok(PyJson::Int(n.to_string()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<PyJson, E> {
                Ok(PyJson::Int(n.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<PyJson, E> {
                Ok(PyJson::Str(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<PyJson, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = a.next_element()? {
                    out.push(x);
                }
                Ok(PyJson::Arr(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<PyJson, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry()? {
                    out.push((k, v));
                }
                Ok(PyJson::Obj(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn py_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `json.dumps(value, separators=(",", ":"))` (ASCII-only, insertion order).
fn py_dumps(v: &PyJson, out: &mut String) {
    match v {
        PyJson::Null => out.push_str("null"),
        PyJson::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        PyJson::Int(n) => out.push_str(n),
        PyJson::Str(t) => py_str(out, t),
        PyJson::Arr(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                py_dumps(x, out);
            }
            out.push(']');
        }
        PyJson::Obj(members) => {
            out.push('{');
            for (i, (k, x)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                py_str(out, k);
                out.push(':');
                py_dumps(x, out);
            }
            out.push('}');
        }
    }
}

/// The vectors of the session kinds, with `inputs.session_dict` kept in order.
#[derive(serde::Deserialize)]
struct OrderedDoc {
    vectors: Vec<OrderedVector>,
}

#[derive(serde::Deserialize)]
struct OrderedVector {
    id: String,
    #[serde(default)]
    inputs: Option<OrderedInputs>,
}

#[derive(serde::Deserialize)]
struct OrderedInputs {
    #[serde(default)]
    session_dict: Option<PyJson>,
}

fn settings_of(v: &Value, accept_fallback_hash: bool) -> SessionSettings {
    let st = &v["settings"];
    let engine = match s(&st["SESSION_ENGINE"]) {
        "django.contrib.sessions.backends.signed_cookies" => SessionEngine::SignedCookies,
        "django.contrib.sessions.backends.db"
        | "django.contrib.sessions.backends.cached_db"
        | "django.contrib.sessions.backends.cache"
        | "django.contrib.sessions.backends.file" => SessionEngine::Db,
        other => panic!("unknown SESSION_ENGINE {other}"),
    };
    SessionSettings {
        engine,
        cookie_name: s(&st["SESSION_COOKIE_NAME"]).to_owned(),
        cookie_age: st["SESSION_COOKIE_AGE"]
            .as_i64()
            .expect("SESSION_COOKIE_AGE"),
        auth_backends: st["AUTHENTICATION_BACKENDS"]
            .as_array()
            .expect("AUTHENTICATION_BACKENDS")
            .iter()
            .map(|b| s(b).to_owned())
            .collect(),
        accept_fallback_hash,
    }
}

fn keys_of(v: &Value) -> (SecretKey, Vec<SecretKey>) {
    let st = &v["settings"];
    let fallbacks = st["SECRET_KEY_FALLBACKS"]
        .as_array()
        .expect("SECRET_KEY_FALLBACKS")
        .iter()
        .map(|k| SecretKey::from(s(k)))
        .collect();
    (SecretKey::from(s(&st["SECRET_KEY"])), fallbacks)
}

fn verifier(v: &Value, accept_fallback_hash: bool) -> SessionVerifier {
    let (secret, fallbacks) = keys_of(v);
    SessionVerifier::new(settings_of(v, accept_fallback_hash), secret, fallbacks).expect("verifier")
}

/// `str(pk)` of a user row.
fn pk_text(pk: &Value) -> String {
    match pk {
        Value::String(t) => t.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("unexpected pk {other}"),
    }
}

/// `parse_cookie(header)` folded into a dict.
fn cookie_dict(header: Option<&str>) -> BTreeMap<String, String> {
    header
        .map(|h| {
            parse_cookie_pairs(h)
                .map(|(k, v)| (k.to_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn expected_dict(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap_or_else(|| panic!("expected an object, got {v}"))
        .iter()
        .map(|(k, x)| (k.clone(), s(x).to_owned()))
        .collect()
}

/// The session's auth fields, as the backend loads them for this cookie.
fn load(v: &Value, verifier: &SessionVerifier, cookie: &str) -> Option<SessionAuth> {
    let now = v["now"].as_i64().expect("now");
    match verifier.settings().engine {
        SessionEngine::SignedCookies => verifier.load_signed_cookie(cookie, now).ok(),
        SessionEngine::Db | SessionEngine::Cache | SessionEngine::CachedDb => {
            let row = &v["inputs"]["django_session_row"];
            if row.is_null() || s(&row["session_key"]) != cookie {
                return None; // no row under this key
            }
            let row = SessionRow {
                session_key: s(&row["session_key"]),
                session_data: s(&row["session_data"]),
                expire_date: parse_iso8601_utc(s(&row["expire_date"])).expect("expire_date"),
            };
            verifier.load_db_row(&row, now).ok()
        }
    }
}

/// Whether the user is authenticated through a request carrying `header`.
fn authenticated(v: &Value, header: Option<&str>, accept_fallback_hash: bool) -> bool {
    let verifier = verifier(v, accept_fallback_hash);
    let Some(cookie) = header.and_then(|h| verifier.session_cookie(h)) else {
        return false;
    };
    let Some(auth) = load(v, &verifier, &cookie) else {
        return false;
    };
    if verifier.backend_allowed(&auth).is_err() {
        return false;
    }
    let user = &v["inputs"]["user_row_now"];
    if user.is_null() || pk_text(&user["pk"]) != auth.user_id {
        return false; // the host finds no user: user_not_found
    }
    let pk = pk_text(&user["pk"]);
    let record = UserRecord {
        pk: &pk,
        password: s(&user["password"]),
        is_active: user["is_active"] == true,
        is_staff: user["is_staff"] == true,
        is_superuser: user["is_superuser"] == true,
    };
    verifier.check_user(&auth, &record).is_ok()
}

/// `SessionStore(session_cookie_value).load()`: the whole dict, `{}` when the
/// store finds nothing usable.
fn store_load(v: &Value) -> Value {
    let cookie = s(&v["inputs"]["session_cookie_value"]);
    let now = v["now"].as_i64().expect("now");
    let (secret, fallbacks) = keys_of(v);
    let verifier = verifier(v, true);
    let text = match verifier.settings().engine {
        SessionEngine::SignedCookies => verifier.session_key(cookie).and_then(|key| {
            loads(
                key,
                &secret,
                &fallbacks,
                SIGNED_COOKIES_SALT,
                Some(verifier.settings().cookie_age),
                now,
            )
            .ok()
        }),
        SessionEngine::Db | SessionEngine::Cache | SessionEngine::CachedDb => {
            let row = &v["inputs"]["django_session_row"];
            let live = !row.is_null()
                && verifier.session_key(cookie).is_some()
                && s(&row["session_key"]) == cookie
                && parse_iso8601_utc(s(&row["expire_date"])).expect("expire_date") > now;
            live.then(|| row_decode(v, s(&row["session_data"])))
                .flatten()
        }
    };
    text.map_or_else(
        || Value::Object(Default::default()),
        |t| serde_json::from_str(&t).expect("loads returns JSON"),
    )
}

/// `SessionStore().decode(session_data)` as JSON text (`None` = `{}`).
fn row_decode(v: &Value, data: &str) -> Option<String> {
    let (secret, fallbacks) = keys_of(v);
    loads(data, &secret, &fallbacks, SESSION_STORE_SALT, None, 0).ok()
}

/// The auth fields of a decoded dict, as `SessionAuth` carries them.
fn auth_of_dict(d: &Value) -> Option<SessionAuth> {
    let user_id = match &d["_auth_user_id"] {
        Value::String(t) => t.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return None,
    };
    Some(SessionAuth {
        user_id,
        backend: d["_auth_user_backend"].as_str()?.to_owned(),
        hash: d["_auth_user_hash"]
            .as_str()
            .filter(|h| !h.is_empty())
            .map(str::to_owned),
    })
}

#[test]
fn session_vectors() {
    let doc: Value = serde_json::from_str(&vectors_text()).expect("vectors.json");
    let mut counts = BTreeMap::<&str, usize>::new();
    for v in doc["vectors"].as_array().expect("vectors") {
        let kind = s(&v["kind"]);
        if kind != "django_session_db" && kind != "django_session_signed_cookie" {
            continue;
        }
        let id = s(&v["id"]);
        let e = &v["expected"];
        let headers: Vec<&str> = v["inputs"]["cookie_headers"]
            .as_array()
            .expect("cookie_headers")
            .iter()
            .map(s)
            .collect();
        // Channels: the first Cookie header only. Django HTTP: joined with ",".
        let channels_header = headers.first().copied();
        let joined = headers.join(",");
        let django_header = (!headers.is_empty()).then_some(joined.as_str());

        assert_eq!(
            cookie_dict(channels_header),
            expected_dict(&e["channels_parsed_cookies"]),
            "{id}: channels cookies"
        );
        assert_eq!(
            cookie_dict(django_header),
            expected_dict(&e["django_http_parsed_cookies"]),
            "{id}: django cookies"
        );
        assert_eq!(
            authenticated(v, channels_header, false),
            e["channels_scope_user"]["is_authenticated"] == true,
            "{id}: channels scope user"
        );
        assert_eq!(
            authenticated(v, django_header, true),
            e["django_http_get_user"]["is_authenticated"] == true,
            "{id}: django get_user"
        );

        let decoded = &e["decoded_session"];
        if !decoded.is_null() {
            let want = &decoded["store_load"];
            assert_eq!(&store_load(v), want, "{id}: store_load");
            // What the verifier extracts agrees with the full dict.
            let verifier = verifier(v, true);
            if let Some(auth) = load(v, &verifier, s(&v["inputs"]["session_cookie_value"])) {
                assert_eq!(Some(auth), auth_of_dict(want), "{id}: auth fields");
            }
            let row = &v["inputs"]["django_session_row"];
            if !decoded["row_decode_ignoring_expiry"].is_null() {
                let text = row_decode(v, s(&row["session_data"]));
                let got: Value = text.map_or_else(
                    || Value::Object(Default::default()),
                    |t| serde_json::from_str(&t).expect("JSON"),
                );
                assert_eq!(
                    &got, &decoded["row_decode_ignoring_expiry"],
                    "{id}: row decode"
                );
            }
        }
        *counts.entry(kind).or_default() += 1;
    }
    assert_eq!(
        counts.get("django_session_db"),
        Some(&21),
        "db vectors checked"
    );
    assert_eq!(
        counts.get("django_session_signed_cookie"),
        Some(&10),
        "signed_cookie vectors checked"
    );
}

#[test]
fn session_encode_vectors() {
    let text = vectors_text();
    let doc: Value = serde_json::from_str(&text).expect("vectors.json");
    let ordered: OrderedDoc = serde_json::from_str(&text).expect("vectors.json");
    let mut n = 0;
    for (v, o) in doc["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .zip(&ordered.vectors)
    {
        if v["kind"] != "django_session_encode" {
            continue;
        }
        let id = s(&v["id"]);
        assert_eq!(o.id, id);
        let dict = o
            .inputs
            .as_ref()
            .and_then(|i| i.session_dict.as_ref())
            .expect("inputs.session_dict");
        let mut json = String::new();
        py_dumps(dict, &mut json);
        let e = &v["expected"];
        let (secret, fallbacks) = keys_of(v);
        let now = v["now"].as_i64().expect("now");
        for backend in ["db", "cached_db", "file"] {
            assert_eq!(
                s(&e["key_salt"][backend]),
                SESSION_STORE_SALT,
                "{id}: {backend}"
            );
            let encoded = dumps(json.as_bytes(), &secret, SESSION_STORE_SALT, true, now);
            assert_eq!(encoded, s(&e[backend]), "{id}: {backend} encode");
        }
        let back = loads(
            s(&e["db"]),
            &secret,
            &fallbacks,
            SESSION_STORE_SALT,
            None,
            now,
        )
        .expect("decode");
        let back: Value = serde_json::from_str(&back).expect("JSON");
        assert_eq!(back, e["roundtrip"], "{id}: roundtrip");
        let verifier = SessionVerifier::new(settings_of(v, true), secret, fallbacks).expect("v");
        assert_eq!(
            Some(verifier.decode(s(&e["db"])).expect("decode auth")),
            auth_of_dict(&e["roundtrip"]),
            "{id}: auth fields"
        );
        n += 1;
    }
    assert_eq!(n, 1, "django_session_encode vectors checked");
}
