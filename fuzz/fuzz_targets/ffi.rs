#![no_main]
//! The C ABI of `libwsauth` (crate `wsauth-ffi`), called as C would call it,
//! with arbitrary settings, tokens, requests, host answers and messages.
//!
//! Checked on every call (ffi/README.md's rules): no call panics (never
//! `WSAUTH_RESULT_PANIC`), results are `wsauth_result` values, outputs are
//! written only on success (the buffer stays untouched otherwise, and the
//! length too, except that a too-small buffer gets the needed length),
//! written JSON parses, close reasons are NUL-terminated UTF-8 of
//! at most 123 bytes, and `wsauth_last_error` never repeats a token or a
//! secret. A token check through the ABI decides as the core does.
//!
//! Settings and configurations from the input never name `env` or `file`
//! secrets (the ABI would read the environment or the file system).

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::ffi::c_char;
use std::ptr;
use wsauth::*;
use wsauth_core::{JwtSettings, SecretKey, TokenVerifier};
use wsauth_fuzz::{str_claim, token, NOW, PASSWORD, SECRET, SESSION_KEY};

type R = wsauth_result;

#[derive(Arbitrary, Debug)]
enum Text {
    /// A token for `(user, staff, valid)`.
    Token(u8, bool, bool),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Answer {
    None,
    Bool(bool),
    Failed,
    User {
        pk: u8,
        active: bool,
        staff: bool,
        superuser: bool,
    },
    Session(Vec<u8>),
    /// A session row with `expire_date` as text (ISO 8601 or not).
    SessionIso(Vec<u8>, String),
    /// The rate step: the stored state (`tat_ms` offset from now, ms).
    Rate(i32),
    /// The rate commit was stored.
    Stored,
}

#[derive(Arbitrary, Debug)]
enum Op {
    TokenCheck {
        settings: Option<String>,
        token: Text,
        cap: u16,
    },
    Mint {
        request: String,
        cap: u16,
    },
    Session {
        settings: Option<String>,
        request: String,
        cap: u16,
    },
    Handshake {
        config: Result<bool, String>,
        request_json: Option<String>,
        path: String,
        query: Vec<Text>,
        headers: Vec<(String, Text)>,
        answers: Vec<Answer>,
        messages: Vec<Text>,
        /// The peer (with a rate limit configured, the rate step comes first).
        peer: Option<[u8; 4]>,
        cap: u16,
    },
}

const TOKEN_SETTINGS: &str =
    r#"{"secret":"vectors-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ"}"#;
const SESSION_SETTINGS: &str = r#"{"secret":"vectors-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ","engine":"db"}"#;

fn config(directory: bool) -> String {
    format!(
        r#"{{"jwt":{{"secret":"{SECRET}"}},"users":{{"source":"{}"}},"session":{{"engine":"db","secret":"{SECRET}"}},"credentials":{{"carriers":["subprotocol","header","query","session","message"]}},"limits":{{"rate_limit":{{"requests":5,"period_secs":10,"burst":2}}}},"routes":[{{"name":"chat","path":"/ws/chat/<room>/","requirement":"authenticated","auth_message":true}},{{"name":"admin","path":"/ws/admin/","requirement":"staff"}},{{"name":"docs","path":"/ws/docs/<id>/","requirement":{{"owner":"id"}}}},{{"name":"public","path":"/ws/public/","requirement":"anonymous"}}]}}"#,
        if directory { "directory" } else { "claims" }
    )
}

/// Input documents must not make the ABI read the environment or files.
fn harmless(doc: &str) -> bool {
    !(doc.contains("env") || doc.contains("file") || doc.contains('\\'))
}

fn ok_or_expected(rc: R) {
    assert_ne!(rc, R::WSAUTH_RESULT_PANIC, "the library panicked");
}

struct Secrets(Vec<Vec<u8>>);

impl Secrets {
    fn render(&mut self, t: &Text) -> Vec<u8> {
        match t {
            Text::Raw(b) => b.clone(),
            Text::Token(user, staff, valid) => {
                let issued = if *valid { NOW - 10 } else { NOW - 1000 };
                let uid = str_claim(&(user % 4).to_string());
                let t = token(uid, *staff, false, issued, 300).into_bytes();
                self.0.push(t.clone());
                t
            }
        }
    }

    /// `wsauth_last_error` never repeats a token or a secret.
    fn check_last_error(&self) {
        let mut buf = vec![0u8; 4096];
        let mut len = 0usize;
        // SAFETY: buf is writable for its length; len is a valid usize.
        let rc = unsafe { wsauth_last_error(buf.as_mut_ptr().cast(), buf.len(), &mut len) };
        if rc != R::WSAUTH_RESULT_OK {
            return;
        }
        let msg = &buf[..len];
        let contains = |s: &[u8]| s.len() >= 8 && msg.windows(s.len()).any(|w| w == s);
        assert!(
            !contains(SECRET.as_bytes()),
            "last_error repeats the secret"
        );
        for s in &self.0 {
            assert!(!contains(s), "last_error repeats a token");
        }
    }
}

/// Calls an output-buffer function with capacity `cap` and checks the
/// written-only-on-success rule; returns the output on success.
fn with_out(
    cap: usize,
    f: impl FnOnce(*mut c_char, usize, *mut usize) -> R,
) -> (R, Option<Vec<u8>>) {
    const SENTINEL: u8 = 0xA5;
    let mut buf = vec![SENTINEL; cap];
    let mut len = usize::MAX;
    let rc = f(buf.as_mut_ptr().cast(), cap, &mut len);
    ok_or_expected(rc);
    if rc == R::WSAUTH_RESULT_OK {
        assert!(len <= cap, "wrote {len} bytes into {cap}");
        buf.truncate(len);
        (rc, Some(buf))
    } else if rc == R::WSAUTH_RESULT_BUFFER_TOO_SMALL {
        assert!(
            len > cap && len != usize::MAX,
            "needed length {len} for {cap}"
        );
        assert!(
            buf.iter().all(|&b| b == SENTINEL),
            "buffer written on failure ({rc:?})"
        );
        (rc, None)
    } else {
        assert_eq!(len, usize::MAX, "out_len written on failure ({rc:?})");
        assert!(
            buf.iter().all(|&b| b == SENTINEL),
            "buffer written on failure ({rc:?})"
        );
        (rc, None)
    }
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("output is not JSON ({e})"))
}

fn check_close(c: &wsauth_close) {
    let len = c.reason_len as usize;
    assert!(len <= 123, "reason of {len} bytes");
    let bytes: Vec<u8> = c.reason.iter().map(|&b| b as u8).collect();
    assert_eq!(bytes[len], 0, "reason not NUL-terminated");
    assert!(
        std::str::from_utf8(&bytes[..len]).is_ok(),
        "reason not UTF-8"
    );
}

fn token_check(settings: &Option<String>, text: &Text, cap: usize, s: &mut Secrets) {
    let settings = settings.as_deref().unwrap_or(TOKEN_SETTINGS);
    if !harmless(settings) {
        return;
    }
    let tok = s.render(text);
    let mut v: *mut wsauth_token_verifier = ptr::null_mut();
    // SAFETY: pointer/length pairs describe live buffers; out pointer is writable.
    let rc = unsafe { wsauth_token_verifier_new(settings.as_ptr().cast(), settings.len(), &mut v) };
    ok_or_expected(rc);
    if rc != R::WSAUTH_RESULT_OK {
        assert!(v.is_null(), "handle written on failure");
        s.check_last_error();
        return;
    }
    let mut kind = u32::MAX;
    // SAFETY: v is live; tok is readable; kind is writable.
    let rc =
        unsafe { wsauth_token_verifier_check(v, tok.as_ptr().cast(), tok.len(), NOW, &mut kind) };
    ok_or_expected(rc);
    let (rc_json, out) = with_out(cap, |o, c, l| {
        // SAFETY: v is live; tok is readable; o/c/l describe a writable buffer.
        unsafe { wsauth_token_verifier_check_json(v, tok.as_ptr().cast(), tok.len(), NOW, o, c, l) }
    });
    if rc == R::WSAUTH_RESULT_OK {
        if let Some(out) = out {
            let valid = json(&out)["valid"].as_bool();
            assert_eq!(
                valid,
                Some(kind == WSAUTH_KIND_NONE),
                "check and check_json disagree"
            );
        }
        if settings == TOKEN_SETTINGS {
            // The ABI only translates: it decides as the core does.
            let core =
                TokenVerifier::new(JwtSettings::default(), SecretKey::from(SECRET)).expect("key");
            let text = std::str::from_utf8(&tok).expect("OK implies UTF-8");
            assert_eq!(
                core.verify(text, NOW).is_ok(),
                kind == WSAUTH_KIND_NONE,
                "ABI and core disagree"
            );
        }
    } else {
        assert_eq!(kind, u32::MAX, "kind written on failure");
        assert_ne!(rc_json, R::WSAUTH_RESULT_OK);
        s.check_last_error();
    }
    check_result_payload(v, &tok, cap, rc, kind, settings == TOKEN_SETTINGS);
    // A too-small buffer: nothing written.
    let _ = with_out(cap.min(8), |o, c, l| {
        // SAFETY: as above.
        unsafe { wsauth_token_verifier_check_json(v, tok.as_ptr().cast(), tok.len(), NOW, o, c, l) }
    });
    // SAFETY: v is live and freed once; freeing NULL is a no-op.
    unsafe {
        wsauth_token_verifier_free(v);
        wsauth_token_verifier_free(ptr::null_mut());
    }
}

/// `wsauth_token_verifier_check_result_payload` with a payload buffer of
/// `cap` bytes: the decision of `wsauth_token_verifier_check` (`rc`,
/// `kind`); a valid token's payload length always given and the payload
/// written only when it fits (with the default settings, the core's
/// decoded payload); a rejected token's length 0; nothing written on
/// failure.
fn check_result_payload(
    v: *const wsauth_token_verifier,
    tok: &[u8],
    cap: usize,
    rc: R,
    kind: u32,
    default_settings: bool,
) {
    const SENTINEL: u8 = 0xA5;
    let untouched = wsauth_token_check {
        kind: u32::MAX,
        user_id_type: u32::MAX,
        user_id_int: -1,
        exp: -1,
    };
    let mut res = untouched;
    let mut text = vec![0u8; 1024];
    let mut text_len = usize::MAX;
    let mut payload = vec![SENTINEL; cap];
    let mut payload_len = usize::MAX;
    // SAFETY: v is live; tok is readable; every output is writable with its capacity.
    let rc_p = unsafe {
        wsauth_token_verifier_check_result_payload(
            v,
            tok.as_ptr().cast(),
            tok.len(),
            NOW,
            &mut res,
            text.as_mut_ptr().cast(),
            text.len(),
            &mut text_len,
            payload.as_mut_ptr().cast(),
            cap,
            &mut payload_len,
        )
    };
    ok_or_expected(rc_p);
    let untouched_payload = payload.iter().all(|&b| b == SENTINEL);
    if rc_p != R::WSAUTH_RESULT_OK {
        assert_ne!(rc_p, R::WSAUTH_RESULT_PANIC);
        assert_eq!(payload_len, usize::MAX, "payload_len written on failure");
        assert!(untouched_payload, "payload written on failure");
        assert!(res == untouched, "result written on failure");
        return;
    }
    assert_eq!(
        rc,
        R::WSAUTH_RESULT_OK,
        "check failed where check_result_payload did not"
    );
    assert_eq!(res.kind, kind, "check and check_result_payload disagree");
    if kind != WSAUTH_KIND_NONE {
        assert_eq!(payload_len, 0, "a rejected token's payload");
        assert!(untouched_payload, "a rejected token's payload written");
        return;
    }
    assert!(
        payload_len >= 2,
        "a valid token's payload of {payload_len} bytes"
    );
    if payload_len > cap {
        assert!(untouched_payload, "a payload written past its buffer");
        return;
    }
    if default_settings {
        let core =
            TokenVerifier::new(JwtSettings::default(), SecretKey::from(SECRET)).expect("key");
        let text = std::str::from_utf8(tok).expect("OK implies UTF-8");
        let verified = core.verify(text, NOW).expect("valid for the core too");
        assert_eq!(
            verified.with_payload_bytes(|p| p == &payload[..payload_len]),
            Some(true),
            "the payload is not the core's"
        );
    }
}

fn mint(request: &str, cap: usize, s: &mut Secrets) {
    let mut v: *mut wsauth_token_verifier = ptr::null_mut();
    // SAFETY: as in token_check.
    let rc = unsafe {
        wsauth_token_verifier_new(TOKEN_SETTINGS.as_ptr().cast(), TOKEN_SETTINGS.len(), &mut v)
    };
    assert_eq!(rc, R::WSAUTH_RESULT_OK);
    let (rc, out) = with_out(cap, |o, c, l| {
        // SAFETY: v is live; request readable; o/c/l writable.
        unsafe {
            wsauth_token_verifier_mint(v, request.as_ptr().cast(), request.len(), NOW, o, c, l)
        }
    });
    if let Some(out) = out {
        assert!(
            std::str::from_utf8(&out).is_ok(),
            "minted token is not text"
        );
    } else if rc != R::WSAUTH_RESULT_BUFFER_TOO_SMALL {
        s.check_last_error();
    }
    // SAFETY: v is live and freed once.
    unsafe { wsauth_token_verifier_free(v) };
}

fn session(settings: &Option<String>, request: &str, cap: usize, s: &mut Secrets) {
    let settings = settings.as_deref().unwrap_or(SESSION_SETTINGS);
    if !harmless(settings) {
        return;
    }
    let mut v: *mut wsauth_session_verifier = ptr::null_mut();
    // SAFETY: as in token_check.
    let rc =
        unsafe { wsauth_session_verifier_new(settings.as_ptr().cast(), settings.len(), &mut v) };
    ok_or_expected(rc);
    if rc != R::WSAUTH_RESULT_OK {
        s.check_last_error();
        return;
    }
    let (_, out) = with_out(cap, |o, c, l| {
        // SAFETY: v is live; request readable; o/c/l writable.
        unsafe {
            wsauth_session_verifier_step_json(
                v,
                request.as_ptr().cast(),
                request.len(),
                NOW,
                o,
                c,
                l,
            )
        }
    });
    if let Some(out) = out {
        let _ = json(&out);
    }
    // SAFETY: v is live and freed once.
    unsafe { wsauth_session_verifier_free(v) };
}

/// Answers the handshake's lookups until it decides (at most 8 polls).
fn drive(hs: *mut wsauth_handshake, answers: &mut std::slice::Iter<'_, Answer>) {
    for _ in 0..8 {
        let mut step = u32::MAX;
        // SAFETY: hs is live; step is writable.
        let rc = unsafe { wsauth_handshake_poll(hs, &mut step) };
        ok_or_expected(rc);
        if rc != R::WSAUTH_RESULT_OK || step == WSAUTH_STEP_DONE {
            return;
        }
        if step == WSAUTH_STEP_RATE_COMMIT {
            let (mut e, mut n, mut i) = (0i64, 0i64, 0i64);
            // SAFETY: hs is live; the outs are writable.
            let rc = unsafe { wsauth_handshake_request_rate_commit(hs, &mut e, &mut n, &mut i) };
            assert_eq!(rc, R::WSAUTH_RESULT_OK, "rate commit inputs");
        }
        let (_, key) = with_out(512, |o, c, l| {
            // SAFETY: hs is live; o/c/l writable.
            unsafe { wsauth_handshake_request_field(hs, WSAUTH_FIELD_KEY, o, c, l) }
        });
        // SAFETY (every arm): hs is live; the slices are readable for their lengths.
        let rc = unsafe {
            match answers.next() {
                None | Some(Answer::Failed) => wsauth_handshake_answer_failed(hs),
                Some(Answer::None) => wsauth_handshake_answer_none(hs),
                Some(Answer::Bool(b)) => wsauth_handshake_answer_bool(hs, *b),
                Some(Answer::User {
                    pk,
                    active,
                    staff,
                    superuser,
                }) => {
                    let pk = match (&key, pk % 2) {
                        (Some(k), 0) => k.clone(),
                        _ => (pk % 4).to_string().into_bytes(),
                    };
                    wsauth_handshake_answer_user(
                        hs,
                        pk.as_ptr().cast(),
                        pk.len(),
                        PASSWORD.as_ptr().cast(),
                        PASSWORD.len(),
                        *active,
                        *staff,
                        *superuser,
                    )
                }
                Some(Answer::Rate(offset)) => {
                    wsauth_handshake_answer_rate(hs, NOW * 1000 + i64::from(*offset))
                }
                Some(Answer::Stored) => wsauth_handshake_answer_stored(hs),
                Some(Answer::Session(data)) => wsauth_handshake_answer_session(
                    hs,
                    SESSION_KEY.as_ptr().cast(),
                    SESSION_KEY.len(),
                    data.as_ptr().cast(),
                    data.len(),
                    NOW + 60,
                ),
                Some(Answer::SessionIso(data, expire)) => wsauth_handshake_answer_session_iso(
                    hs,
                    SESSION_KEY.as_ptr().cast(),
                    SESSION_KEY.len(),
                    data.as_ptr().cast(),
                    data.len(),
                    expire.as_ptr().cast(),
                    expire.len(),
                ),
            }
        };
        ok_or_expected(rc);
    }
}

/// Another route's policy for the handshake `hs`: refused while `hs` has
/// lookups pending; otherwise a handshake that never asks for the
/// credential again (no session, user, revocation or rate step).
fn authorize(
    hs: *const wsauth_handshake,
    path: &str,
    answers: &mut std::slice::Iter<'_, Answer>,
    cap: usize,
) {
    let mut out: *mut wsauth_handshake = ptr::null_mut();
    // SAFETY: hs live; path readable; out writable.
    let rc = unsafe { authorize_call(hs, path, &mut out) };
    if rc != R::WSAUTH_RESULT_OK {
        assert!(out.is_null(), "no handshake written on failure");
        return;
    }
    let mut step = u32::MAX;
    // SAFETY: out live; step writable.
    let rc = unsafe { wsauth_handshake_poll(out, &mut step) };
    assert_eq!(rc, R::WSAUTH_RESULT_OK, "poll of an authorized handshake");
    assert!(
        matches!(
            step,
            WSAUTH_STEP_DONE | WSAUTH_STEP_OWNER | WSAUTH_STEP_MEMBER
        ),
        "an authorized handshake asked step {step}: the credential again"
    );
    drive(out, answers);
    let mut action = u32::MAX;
    let mut close = wsauth_close {
        code: 7,
        reason_len: 0,
        reason: [0; 124],
    };
    // SAFETY: out live; outs writable.
    let rc = unsafe { wsauth_handshake_decision(out, &mut action, &mut close) };
    ok_or_expected(rc);
    if rc == R::WSAUTH_RESULT_OK {
        check_close(&close);
    }
    let (_, json_out) = with_out(cap, |o, c, l| {
        // SAFETY: out live; o/c/l writable.
        unsafe { wsauth_handshake_decision_json(out, o, c, l) }
    });
    if let Some(j) = json_out {
        let _ = json(&j);
    }
    // SAFETY: out live, freed once.
    unsafe { wsauth_handshake_free(out) };
}

/// `wsauth_handshake_authorize` at `NOW`, checking the pending case.
///
/// # Safety
/// `hs` must be live; `out` writable.
unsafe fn authorize_call(
    hs: *const wsauth_handshake,
    path: &str,
    out: *mut *mut wsauth_handshake,
) -> R {
    let mut step = u32::MAX;
    // SAFETY: per the caller; the ABI takes a mutable handle for poll only.
    let polled = unsafe { wsauth_handshake_poll(hs.cast_mut(), &mut step) };
    // SAFETY: per the caller; path readable.
    let rc = unsafe { wsauth_handshake_authorize(hs, path.as_ptr().cast(), path.len(), NOW, out) };
    ok_or_expected(rc);
    if polled == R::WSAUTH_RESULT_OK && step != WSAUTH_STEP_DONE {
        assert_eq!(
            rc,
            R::WSAUTH_RESULT_INVALID_STATE,
            "authorize while lookups are pending"
        );
    }
    rc
}

#[allow(clippy::too_many_arguments)]
fn handshake(
    cfg: &Result<bool, String>,
    request_json: &Option<String>,
    path: &str,
    query: &[Text],
    headers: &[(String, Text)],
    answers: &[Answer],
    messages: &[Text],
    peer: Option<[u8; 4]>,
    cap: usize,
    s: &mut Secrets,
) {
    let peer = peer
        .map(|p| std::net::Ipv4Addr::from(p).to_string())
        .unwrap_or_default();
    let cfg = match cfg {
        Ok(directory) => config(*directory),
        Err(c) if harmless(c) => c.clone(),
        Err(_) => return,
    };
    let mut a: *mut wsauth_authenticator = ptr::null_mut();
    // SAFETY: cfg readable; a writable.
    let rc = unsafe { wsauth_authenticator_new(cfg.as_ptr().cast(), cfg.len(), &mut a) };
    ok_or_expected(rc);
    if rc != R::WSAUTH_RESULT_OK {
        s.check_last_error();
        return;
    }
    let query: Vec<u8> = query.iter().take(4).flat_map(|t| s.render(t)).collect();
    let values: Vec<(String, Vec<u8>)> = headers
        .iter()
        .take(8)
        .map(|(n, v)| (n.clone(), s.render(v)))
        .collect();
    let hdrs: Vec<wsauth_header> = values
        .iter()
        .map(|(n, v)| wsauth_header {
            name: n.as_ptr().cast(),
            name_len: n.len(),
            value: v.as_ptr().cast(),
            value_len: v.len(),
        })
        .collect();
    let mut hs: *mut wsauth_handshake = ptr::null_mut();
    // SAFETY: a is live; every pointer/length pair is readable; hs writable.
    let rc = unsafe {
        match request_json {
            Some(r) => wsauth_authenticator_start_json(a, r.as_ptr().cast(), r.len(), NOW, &mut hs),
            None => wsauth_authenticator_start(
                a,
                path.as_ptr().cast(),
                path.len(),
                query.as_ptr().cast(),
                query.len(),
                hdrs.as_ptr(),
                hdrs.len(),
                peer.as_ptr().cast(),
                peer.len(),
                NOW,
                &mut hs,
            ),
        }
    };
    ok_or_expected(rc);
    // The authenticator may go before its handshakes (they keep it alive).
    // SAFETY: a is live and freed once.
    unsafe { wsauth_authenticator_free(a) };
    if rc != R::WSAUTH_RESULT_OK {
        s.check_last_error();
        return;
    }
    let mut answers = answers.iter();
    drive(hs, &mut answers);
    let mut action = u32::MAX;
    let mut close = wsauth_close {
        code: 7,
        reason_len: 0,
        reason: [0; 124],
    };
    // SAFETY: hs live; outs writable.
    let rc = unsafe { wsauth_handshake_decision(hs, &mut action, &mut close) };
    ok_or_expected(rc);
    if rc == R::WSAUTH_RESULT_OK {
        check_close(&close);
        let (_, sub) = with_out(cap, |o, c, l| {
            // SAFETY: hs live; o/c/l writable.
            unsafe { wsauth_handshake_decision_subprotocol(hs, o, c, l) }
        });
        if let Some(sub) = sub {
            assert!(
                sub.is_empty() || sub == b"bearer",
                "subprotocol echoes only the protocol name"
            );
            assert!(
                action != WSAUTH_ACTION_DENY || sub.is_empty(),
                "a denial has no subprotocol"
            );
        }
        let mut p = std::mem::MaybeUninit::<wsauth_principal>::uninit();
        // SAFETY: hs live; p writable.
        let rc = unsafe { wsauth_handshake_decision_principal(hs, p.as_mut_ptr()) };
        assert_eq!(rc, R::WSAUTH_RESULT_OK, "principal of a decided handshake");
        // SAFETY: written on success.
        let p = unsafe { p.assume_init() };
        let len = p.user_id_len as usize;
        assert!(len <= 256 && p.user_id[len] == 0, "user id NUL-terminated");
        assert!(p.authenticated || len == 0);
    }
    let (_, out) = with_out(cap, |o, c, l| {
        // SAFETY: hs live; o/c/l writable.
        unsafe { wsauth_handshake_decision_json(hs, o, c, l) }
    });
    if let Some(out) = out {
        let _ = json(&out);
    }
    for other in [
        path,
        "/ws/admin/",
        "/ws/public/",
        "/ws/docs/7/",
        "/ws/chat/x/",
    ] {
        authorize(hs, other, &mut answers, cap);
    }
    let mut conn: *mut wsauth_connection = ptr::null_mut();
    // SAFETY: hs live; conn writable.
    let rc = unsafe { wsauth_connection_new(hs, &mut conn) };
    ok_or_expected(rc);
    if rc == R::WSAUTH_RESULT_OK {
        let mut now = NOW;
        for m in messages.iter().take(8) {
            now += 30;
            let msg = s.render(m);
            let mut action = u32::MAX;
            let mut close = wsauth_close {
                code: 7,
                reason_len: 0,
                reason: [0; 124],
            };
            let mut steps: *mut wsauth_handshake = ptr::null_mut();
            // SAFETY: conn live; msg readable; outs writable.
            let rc = unsafe {
                wsauth_connection_handle_message(
                    conn,
                    msg.as_ptr().cast(),
                    msg.len(),
                    now,
                    &mut action,
                    &mut close,
                    &mut steps,
                )
            };
            ok_or_expected(rc);
            if rc == R::WSAUTH_RESULT_OK {
                check_close(&close);
            }
            if !steps.is_null() {
                drive(steps, &mut answers);
                let mut close = wsauth_close {
                    code: 7,
                    reason_len: 0,
                    reason: [0; 124],
                };
                // SAFETY: conn and steps live; close writable.
                let rc = unsafe { wsauth_connection_finish(conn, steps, now, &mut close) };
                ok_or_expected(rc);
                // SAFETY: steps live, freed once.
                unsafe { wsauth_handshake_free(steps) };
            }
        }
        let mut close = wsauth_close {
            code: 7,
            reason_len: 0,
            reason: [0; 124],
        };
        // SAFETY: conn live; close writable.
        let rc = unsafe { wsauth_connection_handle_timeout(conn, now + 3600, &mut close) };
        ok_or_expected(rc);
        let (_, out) = with_out(cap, |o, c, l| {
            // SAFETY: conn live; o/c/l writable.
            unsafe { wsauth_connection_json(conn, o, c, l) }
        });
        if let Some(out) = out {
            let _ = json(&out);
        }
        // SAFETY: conn live, freed once.
        unsafe { wsauth_connection_free(conn) };
    }
    // SAFETY: hs live, freed once.
    unsafe { wsauth_handshake_free(hs) };
}

fuzz_target!(|op: Op| {
    let mut s = Secrets(Vec::new());
    match &op {
        Op::TokenCheck {
            settings,
            token,
            cap,
        } => token_check(settings, token, usize::from(*cap), &mut s),
        Op::Mint { request, cap } => mint(request, usize::from(*cap), &mut s),
        Op::Session {
            settings,
            request,
            cap,
        } => session(settings, request, usize::from(*cap), &mut s),
        Op::Handshake {
            config,
            request_json,
            path,
            query,
            headers,
            answers,
            messages,
            peer,
            cap,
        } => handshake(
            config,
            request_json,
            path,
            query,
            headers,
            answers,
            messages,
            *peer,
            usize::from(*cap),
            &mut s,
        ),
    }
});
