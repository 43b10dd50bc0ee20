//! Properties of signing, cookie parsing and session loading: no input makes
//! them panic, what is signed unsigns, and any one-character change to a
//! signed value is refused.

use proptest::prelude::*;
use wsauth_core::{
    django::cookie::cookie_value, django::cookie::parse_cookie_pairs,
    django::session::SessionSettings, django::session::SESSION_STORE_SALT,
    django::session::SIGNED_COOKIES_SALT, django::signing::b62_decode, django::signing::b62_encode,
    django::signing::b64_decode, django::signing::b64_encode, django::signing::dumps,
    django::signing::get_signed_cookie, django::signing::loads, django::signing::HashAlg,
    django::signing::Signer, django::signing::SigningError, django::signing::TimestampSigner,
    parse_iso8601_utc, SecretKey, SessionRow, SessionVerifier,
};

const NOW: i64 = 1_750_000_000;

fn key() -> SecretKey {
    SecretKey::from("property-test-secret-key")
}

fn old_key() -> SecretKey {
    SecretKey::from("property-test-old-secret")
}

fn verifier() -> SessionVerifier {
    SessionVerifier::new(SessionSettings::default(), key(), vec![old_key()]).expect("verifier")
}

/// Text mixing the characters signed values, cookies and JSON are made of.
fn texty() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-zA-Z0-9:._=\\-\"\\\\;, {}\\[\\]é\u{1c}\u{85}\n]{0,80}")
        .expect("regex")
}

/// Any text, including everything `texty` rarely produces.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![texty(), any::<String>()]
}

/// A JSON string literal as Python's `json.dumps` writes it (ASCII only).
fn py_json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
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
    out
}

/// A JSON object text `{"k":"v",…,"n":int}` in Python's compact form.
fn json_object() -> impl Strategy<Value = String> {
    prop::collection::vec((any::<String>(), any::<String>(), any::<i64>()), 0..6).prop_map(
        |members| {
            let parts: Vec<String> = members
                .iter()
                .flat_map(|(k, v, n)| {
                    [
                        format!("{}:{}", py_json_str(k), py_json_str(v)),
                        format!("{}:{n}", py_json_str(&format!("{k}#"))),
                    ]
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        },
    )
}

fn safe_sep() -> impl Strategy<Value = char> {
    prop::sample::select(vec![':', '/', '.', '~', '!', '|', '$', 'é'])
}

fn alg() -> impl Strategy<Value = HashAlg> {
    prop::sample::select(vec![HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512])
}

/// Replaces the character at char index `i` (mod length) with `c`, if that
/// changes the text.
fn change_one_char(s: &str, i: usize, c: char) -> Option<String> {
    let n = s.chars().count();
    if n == 0 {
        return None;
    }
    let i = i % n;
    let original = s.chars().nth(i)?;
    if original == c {
        return None;
    }
    Some(
        s.chars()
            .enumerate()
            .map(|(j, x)| if j == i { c } else { x })
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(s in any_text(), max_age in prop::option::of(any::<i64>()), now in any::<i64>()) {
        let k = key();
        let _ = Signer::new(k.clone(), vec![old_key()], None, ':', HashAlg::Sha256).unsign(&s);
        let _ = TimestampSigner::new(k.clone(), vec![], Some("x"), ':', HashAlg::Sha256).unsign(&s, max_age, now);
        let _ = loads(&s, &k, &[old_key()], "django.core.signing", max_age, now);
        let _ = get_signed_cookie(&s, "prefs", "ui", &k, &[], max_age, now);
        let _ = b62_decode(&s);
        let _ = b64_decode(s.as_bytes());
        let _ = parse_cookie_pairs(&s).count();
        let _ = cookie_value(&s, "sessionid");
        let _ = parse_iso8601_utc(&s);
        let v = verifier();
        let _ = v.session_cookie(&s);
        let _ = v.load_signed_cookie(&s, now);
        let _ = v.decode(&s);
        let _ = v.load_db_row(&SessionRow { session_key: &s, session_data: &s, expire_date: now.wrapping_add(1) }, now);
    }

    #[test]
    fn signed_garbage_payloads_never_panic(payload in any_text(), bytes in prop::collection::vec(any::<u8>(), 0..200), compress in any::<bool>()) {
        // Correctly signed, but the payload is anything at all.
        let v = verifier();
        let signer = TimestampSigner::new(key(), vec![], Some(SESSION_STORE_SALT), ':', HashAlg::Sha256);
        let _ = v.decode(&signer.sign(&payload, NOW));
        let _ = v.decode(&dumps(&bytes, &key(), SESSION_STORE_SALT, compress, NOW));
        let _ = v.load_signed_cookie(&dumps(&bytes, &key(), SIGNED_COOKIES_SALT, compress, NOW), NOW);
        let _ = loads(&dumps(&bytes, &key(), "s", compress, NOW), &key(), &[], "s", None, NOW);
    }

    #[test]
    fn dumps_loads_round_trip(json in json_object(), compress in any::<bool>(), salt in "[a-z.]{0,20}", age in 0i64..1_000_000) {
        let signed = dumps(json.as_bytes(), &key(), &salt, compress, NOW);
        let back = loads(&signed, &key(), &[], &salt, Some(age), NOW + age);
        prop_assert_eq!(back, Ok(json.clone()));
        // Signed under a key that is now a fallback.
        let old = dumps(json.as_bytes(), &old_key(), &salt, compress, NOW);
        prop_assert_eq!(loads(&old, &key(), &[old_key()], &salt, None, NOW), Ok(json.clone()));
        prop_assert_eq!(loads(&old, &key(), &[], &salt, None, NOW), Err(SigningError::BadSignature));
        // One second past max_age is expired.
        let expired = loads(&signed, &key(), &[], &salt, Some(age), NOW + age + 1);
        prop_assert!(matches!(expired, Err(SigningError::Expired { .. })), "{:?}", expired);
    }

    #[test]
    fn sign_unsign_round_trip(value in any_text(), salt in prop::option::of("[a-z.-]{0,16}"), sep in safe_sep(), alg in alg(), signed_at in any::<i32>(), age in 0i64..100_000) {
        let s = Signer::try_new(key(), vec![old_key()], salt.as_deref(), sep, alg).expect("safe");
        let signed = s.sign(&value);
        prop_assert_eq!(s.unsign(&signed), Ok(value.as_str()));
        let t = TimestampSigner::try_new(key(), vec![old_key()], salt.as_deref(), sep, alg).expect("safe");
        let signed_at = i64::from(signed_at);
        let signed = t.sign(&value, signed_at);
        prop_assert_eq!(t.unsign(&signed, Some(age), signed_at + age), Ok(value.as_str()));
        prop_assert_eq!(t.unsign(&signed, None, i64::MAX), Ok(value.as_str()));
        // A value from the future (negative age) is accepted.
        prop_assert_eq!(t.unsign(&signed, Some(0), signed_at - age), Ok(value.as_str()));
    }

    #[test]
    fn any_single_char_change_is_refused(value in any_text(), i in any::<usize>(), c in any::<char>(), sep in safe_sep(), alg in alg()) {
        let s = Signer::try_new(key(), vec![old_key()], None, sep, alg).expect("safe");
        if let Some(changed) = change_one_char(&s.sign(&value), i, c) {
            prop_assert!(s.unsign(&changed).is_err(), "{:?} accepted", changed);
        }
        let t = TimestampSigner::try_new(key(), vec![old_key()], None, sep, alg).expect("safe");
        if let Some(changed) = change_one_char(&t.sign(&value, NOW), i, c) {
            prop_assert!(t.unsign(&changed, None, NOW).is_err(), "{:?} accepted", changed);
        }
        let dumped = dumps(py_json_str(&value).as_bytes(), &key(), "s", true, NOW);
        if let Some(changed) = change_one_char(&dumped, i, c) {
            prop_assert!(loads(&changed, &key(), &[old_key()], "s", None, NOW).is_err(), "{:?} accepted", changed);
        }
    }

    #[test]
    fn session_cookie_round_trip(user_id in "[0-9]{1,12}", password in "[ -~]{1,60}", age in 0i64..1_209_600) {
        let v = verifier();
        let hash = v.session_auth_hash(&password);
        let json = format!(
            "{{\"_auth_user_id\":{},\"_auth_user_backend\":\"django.contrib.auth.backends.ModelBackend\",\"_auth_user_hash\":\"{hash}\"}}",
            py_json_str(&user_id)
        );
        let cookie = dumps(json.as_bytes(), &key(), SIGNED_COOKIES_SALT, true, NOW);
        let auth = v.load_signed_cookie(&cookie, NOW + age).expect("loads");
        prop_assert_eq!(&auth.user_id, &user_id);
        let user = wsauth_core::UserRecord { pk: &user_id, password: &password, is_active: true, is_staff: false, is_superuser: false };
        prop_assert_eq!(v.check_user(&auth, &user), Ok(()));
        let header = format!("a=b; sessionid=\"{cookie}\"; c=d");
        let found = v.session_cookie(&header);
        prop_assert_eq!(found.as_deref(), Some(cookie.as_str()));
    }

    #[test]
    fn b62_and_b64_round_trip(n in any::<i64>(), bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        prop_assert_eq!(b62_decode(&b62_encode(n)), Some(n));
        prop_assert_eq!(b64_decode(b64_encode(&bytes).as_bytes()), Some(bytes));
    }
}

proptest! {
    // Each case compresses kilobytes; fewer cases keep the suite quick.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn compressed_payload_inflates_to_the_json(bytes in prop::collection::vec(any::<u8>(), 0..3000), period in 1usize..40) {
        // Repetitive data compresses; the '.' form must inflate to the input.
        let data: Vec<u8> = bytes.iter().cycle().take(bytes.len() * 3).copied()
            .chain(bytes.chunks(period).flat_map(|c| c.iter().chain(c)).copied())
            .collect();
        let signed = dumps(&data, &key(), "z", true, NOW);
        let value = Signer::new(key(), vec![], Some("z"), ':', HashAlg::Sha256).unsign(&signed).expect("signed");
        let (payload, _ts) = value.rsplit_once(':').expect("timestamp");
        if let Some(b64) = payload.strip_prefix('.') {
            let z = b64_decode(b64.as_bytes()).expect("base64");
            prop_assert!(z.len() < data.len().saturating_sub(1));
            prop_assert_eq!(miniz_oxide::inflate::decompress_to_vec_zlib(&z).expect("zlib"), data);
        } else {
            prop_assert_eq!(b64_decode(payload.as_bytes()).expect("base64"), data);
        }
    }
}
