//! How Django's ORM coerces a user id claim for `User.objects.get(pk=…)`.
//!
//! `JWTAuthentication.get_user` runs `User.objects.get(**{USER_ID_FIELD: claim})`
//! with whatever JSON value the claim holds. The field's `get_prep_value`
//! decides what that matches:
//!
//! - integer primary keys (`AutoField`, `BigAutoField`, `IntegerField`):
//!   `None` → `IS NULL` (no row); otherwise Python `int(value)` — `"01"`,
//!   `" 2 "`, `"1_0"`, `2.0`, `1.9` (→ 1) and `true` (→ 1) all work, while
//!   `"1.0"`, `"abc"`, lists and objects raise (`TypeError` / `ValueError`,
//!   HTTP 500 in Django; [`UserIdError::NotANumber`] here). Values outside the
//!   database's integer range match nothing (Django's `IntegerFieldOverflow`).
//! - `UUIDField`: `None` → no row; an `int` (or `bool`) → `uuid.UUID(int=v)`;
//!   anything else → `uuid.UUID(hex=v)`, which removes `urn:` and `uuid:`,
//!   strips `{`/`}` from both ends, removes hyphens and then needs exactly 32
//!   characters that `int(…, 16)` accepts. Failures raise `ValidationError`
//!   ([`UserIdError::NotAUuid`]).
//! - text fields (`username`): `str(value)` — `"True"` for `true`, `"2.0"`
//!   for `2.0`; `None` matches nothing.
//!
//! Known differences: for a text field, a list or object claim (Python would
//! look up its `repr()`) and a string longer than [`InlineStr::CAPACITY`]
//! give [`UserKey::NoMatch`].

use crate::jwt::{ClaimValue, InlineStr};
use crate::py::json::{self, JsonValue, StackBuf};
use crate::py::pyint::{self, PyInt};
use core::fmt;

/// The type of the user model's primary key (`USER_ID_FIELD`'s field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PkKind {
    /// `AutoField` / `BigAutoField` / `IntegerField`: `int(value)`.
    #[default]
    Int,
    /// `UUIDField`: `uuid.UUID(hex=…)` or `UUID(int=…)`.
    Uuid,
    /// A text field such as `username`: `str(value)`.
    Str,
}

/// The canonical key the host looks a user up by (`str(pk)` of the match).
// Text keys are stored inline on purpose: no heap on the verification path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKey {
    /// An integer pk.
    Int(i64),
    /// A UUID pk (16 bytes, big-endian).
    Uuid([u8; 16]),
    /// A text key.
    Str(InlineStr),
    /// The lookup cannot match any row (e.g. `null` → `IS NULL`).
    NoMatch,
}

impl fmt::Display for UserKey {
    /// Python's `str()` of the key: `1`, `6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f`,
    /// `alice`; empty for [`UserKey::NoMatch`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserKey::Int(i) => write!(f, "{i}"),
            UserKey::Uuid(b) => {
                for (n, byte) in b.iter().enumerate() {
                    if matches!(n, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            UserKey::Str(s) => f.write_str(s.as_str()),
            UserKey::NoMatch => Ok(()),
        }
    }
}

impl UserKey {
    /// Coerces a text value as Django's field lookup does: a session's
    /// `_auth_user_id` for `_default_manager.get(pk=pk.to_python(…))`, or a
    /// stored `str(pk)`. Integer pks read it as Python's `int()`, UUID pks as
    /// `uuid.UUID(hex=…)`, text pks as is.
    pub fn from_text(text: &str, pk: PkKind) -> Result<UserKey, UserIdError> {
        str_key(text.chars().map(u32::from), pk)
    }
}

/// The claim could not be coerced; Django raises (HTTP 500) here, wsauth rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserIdError {
    /// `ValueError: Field 'id' expected a number but got …`.
    NotANumber,
    /// `ValidationError: … is not a valid UUID`.
    NotAUuid,
}

impl fmt::Display for UserIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserIdError::NotANumber => f.write_str("user id claim is not a number"),
            UserIdError::NotAUuid => f.write_str("user id claim is not a valid UUID"),
        }
    }
}

impl core::error::Error for UserIdError {}

impl ClaimValue {
    /// Coerces the claim as Django's field lookup would. Exact for every
    /// variant but [`ClaimValue::BigInt`] and [`ClaimValue::Other`], which do
    /// not keep their value: for those prefer
    /// [`VerifiedToken::user_key`](crate::VerifiedToken::user_key).
    pub fn to_user_key(&self, pk: PkKind) -> Result<UserKey, UserIdError> {
        match (self, pk) {
            (ClaimValue::Null, _) => Ok(UserKey::NoMatch),
            (ClaimValue::Str(s), _) => str_key(s.as_str().chars().map(u32::from), pk),
            (ClaimValue::Bool(b), _) => int_like_key(i64::from(*b), pk, Some(*b)),
            (ClaimValue::Int(i), _) => int_like_key(*i, pk, None),
            (ClaimValue::Float(f), PkKind::Int) => int_key(pyint::int_of_float(*f)),
            (ClaimValue::Float(_), PkKind::Uuid) => Err(UserIdError::NotAUuid),
            (ClaimValue::Float(f), PkKind::Str) => float_str_key(*f),
            // Beyond i64: outside every database integer range.
            (ClaimValue::BigInt(_), PkKind::Int) => Ok(UserKey::NoMatch),
            (ClaimValue::BigInt(_), PkKind::Uuid) => Err(UserIdError::NotAUuid),
            (ClaimValue::BigInt(_), PkKind::Str) => Ok(UserKey::NoMatch),
            (ClaimValue::Other, PkKind::Int) => Err(UserIdError::NotANumber),
            (ClaimValue::Other, PkKind::Uuid) => Err(UserIdError::NotAUuid),
            (ClaimValue::Other, PkKind::Str) => Ok(UserKey::NoMatch),
        }
    }
}

/// [`ClaimValue::to_user_key`] for the full JSON value (exact for long strings and big integers).
pub(crate) fn user_key_from_json(v: &JsonValue<'_>, pk: PkKind) -> Result<UserKey, UserIdError> {
    match (v, pk) {
        (JsonValue::Null, _) => Ok(UserKey::NoMatch),
        (JsonValue::Str(s), _) => str_key(s.chars(), pk),
        (JsonValue::Bool(b), _) => int_like_key(i64::from(*b), pk, Some(*b)),
        (JsonValue::Int(i), _) => int_like_key(*i, pk, None),
        (JsonValue::BigInt(_), PkKind::Int) => int_key(pyint::int_of_json(v)),
        (JsonValue::BigInt(b), PkKind::Uuid) => {
            if b.negative() {
                return Err(UserIdError::NotAUuid);
            }
            let mut acc: u128 = 0;
            for &d in b.digits() {
                acc = acc
                    .checked_mul(10)
                    .and_then(|a| a.checked_add(u128::from(d.wrapping_sub(b'0'))))
                    .ok_or(UserIdError::NotAUuid)?;
            }
            Ok(UserKey::Uuid(acc.to_be_bytes()))
        }
        (JsonValue::BigInt(b), PkKind::Str) => {
            let mut buf = StackBuf::<{ InlineStr::CAPACITY }>::new();
            let text = if b.negative() { Some("-") } else { Some("") };
            let ok = text.is_some_and(|t| fmt::Write::write_str(&mut buf, t).is_ok())
                && core::str::from_utf8(b.digits())
                    .ok()
                    .is_some_and(|d| fmt::Write::write_str(&mut buf, d).is_ok());
            Ok(inline_from(ok, &buf))
        }
        (JsonValue::Float(f), PkKind::Int) => int_key(pyint::int_of_float(*f)),
        (JsonValue::Float(_), PkKind::Uuid) => Err(UserIdError::NotAUuid),
        (JsonValue::Float(f), PkKind::Str) => float_str_key(*f),
        (JsonValue::Array(_) | JsonValue::Object(_), PkKind::Int) => Err(UserIdError::NotANumber),
        (JsonValue::Array(_) | JsonValue::Object(_), PkKind::Uuid) => Err(UserIdError::NotAUuid),
        (JsonValue::Array(_) | JsonValue::Object(_), PkKind::Str) => Ok(UserKey::NoMatch),
    }
}

fn inline_from<const N: usize>(ok: bool, buf: &StackBuf<N>) -> UserKey {
    if !ok {
        return UserKey::NoMatch;
    }
    core::str::from_utf8(buf.as_bytes())
        .ok()
        .and_then(InlineStr::new)
        .map_or(UserKey::NoMatch, UserKey::Str)
}

fn int_key(v: Result<PyInt, pyint::PyIntError>) -> Result<UserKey, UserIdError> {
    match v {
        Ok(p) => Ok(p.to_i64().map_or(UserKey::NoMatch, UserKey::Int)),
        Err(_) => Err(UserIdError::NotANumber),
    }
}

/// An `int` (or `bool`, which is an `int` in Python) claim.
fn int_like_key(i: i64, pk: PkKind, as_bool: Option<bool>) -> Result<UserKey, UserIdError> {
    match pk {
        PkKind::Int => Ok(UserKey::Int(i)),
        PkKind::Uuid => {
            let v = u128::try_from(i).map_err(|_| UserIdError::NotAUuid)?;
            Ok(UserKey::Uuid(v.to_be_bytes()))
        }
        PkKind::Str => {
            let mut buf = StackBuf::<24>::new();
            let ok = match as_bool {
                Some(true) => fmt::Write::write_str(&mut buf, "True").is_ok(),
                Some(false) => fmt::Write::write_str(&mut buf, "False").is_ok(),
                None => fmt::Write::write_fmt(&mut buf, format_args!("{i}")).is_ok(),
            };
            Ok(inline_from(ok, &buf))
        }
    }
}

fn float_str_key(f: f64) -> Result<UserKey, UserIdError> {
    let mut buf = StackBuf::<40>::new();
    let ok = json::write_py_float(&mut buf, f).is_ok();
    // str(float) spells the non-finite values `nan`, `inf`, `-inf`.
    let mut out = StackBuf::<40>::new();
    let text: &[u8] = match buf.as_bytes() {
        b"NaN" => b"nan",
        b"Infinity" => b"inf",
        b"-Infinity" => b"-inf",
        other => other,
    };
    let ok =
        ok && core::str::from_utf8(text).is_ok_and(|t| fmt::Write::write_str(&mut out, t).is_ok());
    Ok(inline_from(ok, &out))
}

/// A string claim.
fn str_key<I>(chars: I, pk: PkKind) -> Result<UserKey, UserIdError>
where
    I: Iterator<Item = u32> + Clone,
{
    match pk {
        PkKind::Int => int_key(pyint::int_of_str(chars, 10)),
        PkKind::Uuid => uuid_from_hex(chars).map(UserKey::Uuid),
        PkKind::Str => {
            let mut buf = [0u8; InlineStr::CAPACITY];
            let mut len = 0usize;
            for c in chars {
                // A lone surrogate can never equal a stored (valid) username.
                let Some(ch) = char::from_u32(c) else {
                    return Ok(UserKey::NoMatch);
                };
                let Some(dst) = buf.get_mut(len..) else {
                    return Ok(UserKey::NoMatch);
                };
                if dst.len() < ch.len_utf8() {
                    return Ok(UserKey::NoMatch);
                }
                // Stays within `buf`: the bytes were just written into it.
                len = len.saturating_add(ch.encode_utf8(dst).len());
            }
            Ok(buf
                .get(..len)
                .and_then(|b| core::str::from_utf8(b).ok())
                .and_then(InlineStr::new)
                .map_or(UserKey::NoMatch, UserKey::Str))
        }
    }
}

/// Removes every non-overlapping occurrence of `pat`, left to right (`str.replace(pat, "")`).
#[derive(Clone)]
struct RemoveAll<I: Iterator<Item = u32> + Clone> {
    inner: I,
    pat: &'static [u8],
    pending: [u32; 8],
    len: usize,
}

impl<I: Iterator<Item = u32> + Clone> RemoveAll<I> {
    fn new(inner: I, pat: &'static [u8]) -> Self {
        RemoveAll {
            inner,
            pat,
            pending: [0; 8],
            len: 0,
        }
    }
}

impl<I: Iterator<Item = u32> + Clone> Iterator for RemoveAll<I> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        loop {
            while self.len < self.pat.len() {
                match self.inner.next() {
                    Some(c) => {
                        *self.pending.get_mut(self.len)? = c;
                        // `len` indexed `pending`, so it stays within its 8 slots.
                        self.len = self.len.saturating_add(1);
                    }
                    None => break,
                }
            }
            let window = self.pending.get(..self.len)?;
            let is_match = self.len == self.pat.len()
                && window
                    .iter()
                    .zip(self.pat.iter())
                    .all(|(&c, &p)| c == u32::from(p));
            if is_match {
                self.len = 0;
                continue;
            }
            if self.len == 0 {
                return None;
            }
            let first = *self.pending.first()?;
            self.pending.copy_within(1..self.len, 0);
            // Not zero: checked just above.
            self.len = self.len.saturating_sub(1);
            return Some(first);
        }
    }
}

/// `uuid.UUID(hex=s)` (CPython 3.11).
fn uuid_from_hex<I>(chars: I) -> Result<[u8; 16], UserIdError>
where
    I: Iterator<Item = u32> + Clone,
{
    let is_brace = |c: &u32| *c == u32::from(b'{') || *c == u32::from(b'}');
    // hex.replace('urn:', '').replace('uuid:', '')
    let replaced = RemoveAll::new(RemoveAll::new(chars, b"urn:"), b"uuid:");
    // .strip('{}')
    let total = replaced.clone().count();
    let leading = replaced.clone().take_while(is_brace).count();
    let mut trailing = 0usize;
    for c in replaced.clone() {
        if is_brace(&c) {
            trailing = trailing.saturating_add(1);
        } else {
            trailing = 0;
        }
    }
    let kept = total.saturating_sub(leading).saturating_sub(trailing);
    // .replace('-', '')
    let hex = replaced
        .skip(leading)
        .take(kept)
        .filter(|&c| c != u32::from(b'-'));
    if hex.clone().count() != 32 {
        return Err(UserIdError::NotAUuid);
    }
    let parsed = pyint::parse_int(hex, 16).map_err(|_| UserIdError::NotAUuid)?;
    match parsed.magnitude {
        Some(m) if !parsed.negative || m == 0 => Ok(m.to_be_bytes()),
        _ => Err(UserIdError::NotAUuid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py::json::{parse, Encoding};
    use alloc::string::ToString;

    fn key(json_text: &str, pk: PkKind) -> Result<alloc::string::String, UserIdError> {
        let v = parse(json_text.as_bytes(), Encoding::Utf8).unwrap();
        let exact = user_key_from_json(&v, pk);
        // The ClaimValue path agrees wherever it keeps the value.
        let cv = ClaimValue::from_json(&v);
        if !matches!(cv, ClaimValue::Other | ClaimValue::BigInt(_)) {
            assert_eq!(cv.to_user_key(pk), exact, "{json_text}");
        }
        exact.map(|k| match k {
            UserKey::NoMatch => "<none>".to_string(),
            k => k.to_string(),
        })
    }

    #[test]
    fn int_pk_table() {
        // Expected results follow Django 5.2 `IntegerField.get_prep_value` (Python `int()`).
        let rows: &[(&str, Result<&str, UserIdError>)] = &[
            ("1", Ok("1")),
            ("\"1\"", Ok("1")),
            ("\"01\"", Ok("1")),
            ("\" 2 \"", Ok("2")),
            ("\"1_0\"", Ok("10")),
            ("2.0", Ok("2")),
            ("1.9", Ok("1")),
            ("-1.9", Ok("-1")),
            ("true", Ok("1")),
            ("false", Ok("0")),
            ("-5", Ok("-5")),
            ("null", Ok("<none>")),
            ("\"1.0\"", Err(UserIdError::NotANumber)),
            ("\"abc\"", Err(UserIdError::NotANumber)),
            ("\"\"", Err(UserIdError::NotANumber)),
            ("[1]", Err(UserIdError::NotANumber)),
            ("{}", Err(UserIdError::NotANumber)),
            ("NaN", Err(UserIdError::NotANumber)),
            ("Infinity", Err(UserIdError::NotANumber)),
            ("1e300", Ok("<none>")),
            ("99999999999999999999", Ok("<none>")),
            ("\"99999999999999999999\"", Ok("<none>")),
        ];
        for (input, want) in rows {
            assert_eq!(
                key(input, PkKind::Int).as_deref().map_err(|e| *e),
                *want,
                "{input}"
            );
        }
        // Long strings are exact through the JSON path.
        let long = alloc::format!("\"{}7\"", "0".repeat(400));
        assert_eq!(key(&long, PkKind::Int).as_deref(), Ok("7"));
    }

    #[test]
    fn uuid_pk_table() {
        let id = "6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f";
        let rows: &[(&str, Result<&str, UserIdError>)] = &[
            ("\"6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f\"", Ok(id)),
            ("\"6f1c2b9e3d4a4c5b8e7f0a1b2c3d4e5f\"", Ok(id)),
            ("\"6F1C2B9E-3D4A-4C5B-8E7F-0A1B2C3D4E5F\"", Ok(id)),
            ("\"{6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f}\"", Ok(id)),
            ("\"{{6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f}\"", Ok(id)),
            ("\"urn:uuid:6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f\"", Ok(id)),
            ("\"6f1c2b9e-urn:3d4a-4c5b-8e7f-0a1b2c3d4e5f\"", Ok(id)),
            ("\"uurn:uid:6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f\"", Ok(id)),
            ("\"6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f----\"", Ok(id)),
            ("\"0x1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f\"", Ok("001c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f")),
            ("\"+f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f\"", Ok("0f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f")),
            // Hyphens are removed before the length check, signs survive it.
            ("\"-0000000000000000000000000000000\"", Err(UserIdError::NotAUuid)),
            ("\" 0000000000000000000000000000001\"", Ok("00000000-0000-0000-0000-000000000001")),
            ("\"000000000000000000000000000000_1\"", Ok("00000000-0000-0000-0000-000000000001")),
            ("\"0x_000000000000000000000000000001\"", Err(UserIdError::NotAUuid)),
            (
                "\"\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\\u0661\"",
                Ok("11111111-1111-1111-1111-111111111111"),
            ),
            ("\"URN:UUID:6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f\"", Err(UserIdError::NotAUuid)),
            ("\"6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5\"", Err(UserIdError::NotAUuid)),
            ("\"6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5g\"", Err(UserIdError::NotAUuid)),
            ("\"not-a-uuid\"", Err(UserIdError::NotAUuid)),
            ("1", Ok("00000000-0000-0000-0000-000000000001")),
            ("true", Ok("00000000-0000-0000-0000-000000000001")),
            ("-1", Err(UserIdError::NotAUuid)),
            ("340282366920938463463374607431768211455", Ok("ffffffff-ffff-ffff-ffff-ffffffffffff")),
            ("340282366920938463463374607431768211456", Err(UserIdError::NotAUuid)),
            ("1.0", Err(UserIdError::NotAUuid)),
            ("[]", Err(UserIdError::NotAUuid)),
            ("null", Ok("<none>")),
        ];
        for (input, want) in rows {
            assert_eq!(
                key(input, PkKind::Uuid).as_deref().map_err(|e| *e),
                *want,
                "{input}"
            );
        }
    }

    #[test]
    fn str_pk_table() {
        let rows: &[(&str, &str)] = &[
            ("\"alice\"", "alice"),
            ("\"Zo\\u00eb\"", "Zo\u{eb}"),
            ("1", "1"),
            ("-7", "-7"),
            ("true", "True"),
            ("false", "False"),
            ("2.0", "2.0"),
            ("1e16", "1e+16"),
            ("NaN", "nan"),
            ("-Infinity", "-inf"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            ("null", "<none>"),
            ("\"\\ud800\"", "<none>"),
        ];
        for (input, want) in rows {
            assert_eq!(key(input, PkKind::Str).as_deref(), Ok(*want), "{input}");
        }
    }

    #[test]
    fn remove_all_is_left_to_right() {
        let run = |s: &str, pat: &'static [u8]| -> alloc::string::String {
            RemoveAll::new(s.chars().map(u32::from), pat)
                .filter_map(char::from_u32)
                .collect()
        };
        assert_eq!(run("urn:urn:x", b"urn:"), "x");
        assert_eq!(run("uurn:rn:x", b"urn:"), "urn:x");
        assert_eq!(run("ur", b"urn:"), "ur");
        assert_eq!(run("", b"urn:"), "");
    }
}
