//! Python's `int()` applied to a decoded JSON value, as PyJWT applies it to
//! `iat`, `nbf` and `exp`, and as Django's `IntegerField` / `UUIDField`
//! lookups apply it to a user id claim.
//!
//! CPython 3.11 rules reproduced here:
//! - `bool` → 0 / 1; `int` → itself (exact, arbitrarily large);
//! - `float` → truncated toward zero; `NaN` is a `ValueError`, `±inf` an
//!   `OverflowError`;
//! - `str` → `int(s, base)`: every Unicode decimal digit (category `Nd`) counts
//!   as its ASCII digit and every Unicode whitespace as a space
//!   (`_PyUnicode_TransformDecimalAndSpaceToASCII`); then surrounding
//!   `" \t\n\v\f\r"`, one optional sign, for base 16 an optional `0x` prefix
//!   (one `_` may follow it), digits with single `_` separators between
//!   them, and, for base 10, at most 4300 digits (`int_max_str_digits`);
//! - anything else (`None`, lists, dicts) is a `TypeError`.

use crate::py::json::JsonValue;
use core::cmp::Ordering;

/// An exact Python integer, kept as `i128` when it fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PyInt {
    /// The value.
    Int(i128),
    /// Beyond `i128`; only the sign is kept (enough for every comparison made here).
    Huge {
        /// True below zero.
        negative: bool,
    },
}

impl PyInt {
    /// Exact comparison with `x`.
    #[inline]
    pub(crate) fn cmp_i128(&self, x: i128) -> Ordering {
        match *self {
            PyInt::Int(v) => v.cmp(&x),
            PyInt::Huge { negative: true } => Ordering::Less,
            PyInt::Huge { negative: false } => Ordering::Greater,
        }
    }

    /// The value when it fits in `i64`.
    #[inline]
    pub(crate) fn to_i64(self) -> Option<i64> {
        match self {
            PyInt::Int(v) => i64::try_from(v).ok(),
            PyInt::Huge { .. } => None,
        }
    }
}

/// The Python exception `int()` raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PyIntError {
    /// `TypeError` (`None`, list, dict).
    Type,
    /// `ValueError` (bad literal, `NaN`, too many digits).
    Value,
    /// `OverflowError` (`±inf`).
    Overflow,
}

/// `int(value)` for a decoded JSON value.
#[inline(always)]
pub(crate) fn int_of_json(v: &JsonValue<'_>) -> Result<PyInt, PyIntError> {
    // The common case inline (claims are read several times per token).
    match v {
        JsonValue::Int(i) => Ok(PyInt::Int(i128::from(*i))),
        _ => int_of_json_other(v),
    }
}

fn int_of_json_other(v: &JsonValue<'_>) -> Result<PyInt, PyIntError> {
    match v {
        JsonValue::Bool(b) => Ok(PyInt::Int(i128::from(*b))),
        JsonValue::Int(i) => Ok(PyInt::Int(i128::from(*i))),
        JsonValue::BigInt(b) => {
            let mut acc: Option<i128> = Some(0);
            for &d in b.digits() {
                let d = i128::from(d.wrapping_sub(b'0'));
                acc = acc.and_then(|a| a.checked_mul(10)).and_then(|a| {
                    if b.negative() {
                        a.checked_sub(d)
                    } else {
                        a.checked_add(d)
                    }
                });
            }
            Ok(match acc {
                Some(v) => PyInt::Int(v),
                None => PyInt::Huge {
                    negative: b.negative(),
                },
            })
        }
        JsonValue::Float(f) => int_of_float(*f),
        JsonValue::Str(s) => int_of_str(s.chars(), 10),
        JsonValue::Null | JsonValue::Array(_) | JsonValue::Object(_) => Err(PyIntError::Type),
    }
}

/// `int(f)` for a float.
pub(crate) fn int_of_float(f: f64) -> Result<PyInt, PyIntError> {
    if f.is_nan() {
        return Err(PyIntError::Value);
    }
    if f.is_infinite() {
        return Err(PyIntError::Overflow);
    }
    // 2^127: every float strictly inside (-2^127, 2^127) truncates into i128
    // (`as` truncates toward zero, like Python's `int()`).
    const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f > -LIMIT && f < LIMIT {
        Ok(PyInt::Int(f as i128))
    } else {
        Ok(PyInt::Huge { negative: f < 0.0 })
    }
}

/// `int(s)` (base 10) for a string's code points.
pub(crate) fn int_of_str<I>(chars: I, base: u32) -> Result<PyInt, PyIntError>
where
    I: Iterator<Item = u32> + Clone,
{
    let parsed = parse_int(chars, base)?;
    Ok(
        match parsed.magnitude.and_then(|m| i128::try_from(m).ok()) {
            // `m` is in 0..=i128::MAX, so its negation is exact.
            Some(m) if parsed.negative => PyInt::Int(m.saturating_neg()),
            Some(m) => PyInt::Int(m),
            None => PyInt::Huge {
                negative: parsed.negative,
            },
        },
    )
}

/// The sign and magnitude `int(s, base)` produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedInt {
    /// A `-` sign was given (the magnitude may still be zero).
    pub(crate) negative: bool,
    /// `None` when it exceeds `u128`.
    pub(crate) magnitude: Option<u128>,
}

/// Unicode decimal digit zeros (Unicode 14.0, CPython 3.11): each starts a run of 0–9.
const ND_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

/// `str.isspace()` for code points at or above 127.
fn is_unicode_space(c: u32) -> bool {
    matches!(
        c,
        0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000
    )
}

/// The decimal value of a Unicode `Nd` character.
pub(crate) fn unicode_decimal(c: u32) -> Option<u8> {
    // ND_ZEROS is sorted: find the last zero <= c.
    let idx = ND_ZEROS.partition_point(|&z| z <= c).checked_sub(1)?;
    let zero = *ND_ZEROS.get(idx)?;
    let d = c.checked_sub(zero)?;
    if d < 10 {
        Some(d as u8)
    } else {
        None
    }
}

/// `_PyUnicode_TransformDecimalAndSpaceToASCII` for one code point;
/// `0` stands for "invalid here" (CPython writes `?` and stops).
pub(crate) fn to_ascii_digit_or_space(c: u32) -> u8 {
    if c < 127 {
        return c as u8;
    }
    if is_unicode_space(c) {
        return b' ';
    }
    match unicode_decimal(c) {
        // `d` is a decimal digit (0-9).
        Some(d) => b'0'.saturating_add(d),
        None => 0,
    }
}

/// C `isspace` as `Py_ISSPACE` applies it.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

// Each arm subtracts its own range's first byte: the results are 0..36.
#[allow(clippy::arithmetic_side_effects)]
fn digit_value(b: u8, base: u32) -> Option<u32> {
    let v = match b {
        b'0'..=b'9' => u32::from(b - b'0'),
        b'a'..=b'z' => u32::from(b - b'a') + 10,
        b'A'..=b'Z' => u32::from(b - b'A') + 10,
        _ => return None,
    };
    (v < base).then_some(v)
}

/// `int(s, base)` (base 10 or 16) for a string's code points.
pub(crate) fn parse_int<I>(chars: I, base: u32) -> Result<ParsedInt, PyIntError>
where
    I: Iterator<Item = u32> + Clone,
{
    let mut it = chars.map(to_ascii_digit_or_space).peekable();
    while it.next_if(|&b| is_c_space(b)).is_some() {}
    let mut negative = false;
    if let Some(sign) = it.next_if(|&b| b == b'+' || b == b'-') {
        negative = sign == b'-';
    }
    if base == 16 {
        let mut la = it.clone();
        if la.next() == Some(b'0') && matches!(la.next(), Some(b'x' | b'X')) {
            it = la;
            // One underscore may follow the prefix.
            let _ = it.next_if_eq(&b'_');
        }
    }
    if it.peek() == Some(&b'_') {
        return Err(PyIntError::Value);
    }
    let mut magnitude: Option<u128> = Some(0);
    let mut digits = 0usize;
    let mut prev_underscore = false;
    while let Some(&b) = it.peek() {
        if b == b'_' {
            if prev_underscore {
                return Err(PyIntError::Value);
            }
            prev_underscore = true;
        } else if let Some(d) = digit_value(b, base) {
            digits = digits.saturating_add(1);
            prev_underscore = false;
            magnitude = magnitude
                .and_then(|m| m.checked_mul(u128::from(base)))
                .and_then(|m| m.checked_add(u128::from(d)));
        } else {
            break;
        }
        it.next();
    }
    if prev_underscore || digits == 0 {
        return Err(PyIntError::Value);
    }
    for b in it {
        if !is_c_space(b) {
            return Err(PyIntError::Value);
        }
    }
    if base == 10 && digits > crate::py::json::MAX_INT_DIGITS {
        return Err(PyIntError::Value);
    }
    Ok(ParsedInt {
        negative,
        magnitude,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py::json::{parse, Encoding};

    fn int_str(s: &str) -> Result<PyInt, PyIntError> {
        int_of_str(s.chars().map(u32::from), 10)
    }

    #[test]
    fn int_of_str_table() {
        // Expected values were checked against CPython 3.11 `int(s)`.
        let rows: &[(&str, Result<i128, PyIntError>)] = &[
            ("12", Ok(12)),
            (" \t12\n", Ok(12)),
            ("\u{b}1\u{c}", Ok(1)),
            ("+1", Ok(1)),
            ("-0", Ok(0)),
            ("-17", Ok(-17)),
            ("00012", Ok(12)),
            ("1_0", Ok(10)),
            ("\u{661}\u{662}", Ok(12)),
            ("\u{ff11}\u{ff12}", Ok(12)),
            ("\u{661}_\u{662}", Ok(12)),
            ("\u{85}1", Ok(1)),
            ("\u{a0}1 ", Ok(1)),
            ("1\u{2028}", Ok(1)),
            ("1__0", Err(PyIntError::Value)),
            ("_1", Err(PyIntError::Value)),
            ("1_", Err(PyIntError::Value)),
            ("0x10", Err(PyIntError::Value)),
            ("\u{1c}1", Err(PyIntError::Value)),
            ("1\u{1f}", Err(PyIntError::Value)),
            ("", Err(PyIntError::Value)),
            ("-", Err(PyIntError::Value)),
            ("+-1", Err(PyIntError::Value)),
            ("1\u{0}", Err(PyIntError::Value)),
            ("1 2", Err(PyIntError::Value)),
            ("\u{7f}1", Err(PyIntError::Value)),
            ("1.0", Err(PyIntError::Value)),
            ("abc", Err(PyIntError::Value)),
            ("\u{ff21}", Err(PyIntError::Value)),
        ];
        for (s, want) in rows {
            let got = int_str(s).map(|v| match v {
                PyInt::Int(i) => i,
                PyInt::Huge { .. } => i128::MAX,
            });
            assert_eq!(got, *want, "{s:?}");
        }
    }

    #[test]
    fn digit_limit_and_huge() {
        let ok = "1".repeat(4300);
        assert_eq!(int_str(&ok), Ok(PyInt::Huge { negative: false }));
        assert_eq!(
            int_str(&(alloc::format!("-{ok}"))),
            Ok(PyInt::Huge { negative: true })
        );
        assert_eq!(int_str(&"1".repeat(4301)), Err(PyIntError::Value));
        // Underscores and whitespace do not count; leading zeros do.
        let sep = "1_".repeat(2200) + "1";
        assert!(int_str(&sep).is_ok());
        let zeros = "0".repeat(4300) + "1";
        assert_eq!(int_str(&zeros), Err(PyIntError::Value));
    }

    #[test]
    fn hex_table() {
        let rows: &[(&str, Option<(bool, u128)>)] = &[
            ("0x10", Some((false, 16))),
            ("0x_1f", Some((false, 31))),
            ("0X1F", Some((false, 31))),
            ("+ff", Some((false, 255))),
            ("-0", Some((true, 0))),
            ("  ff  ", Some((false, 255))),
            ("f_f", Some((false, 255))),
            ("0x", None),
            ("_1f", None),
            ("0_x1", None),
            ("0x__1", None),
            ("ffffffffffffffffffffffffffffffff", Some((false, u128::MAX))),
        ];
        for (s, want) in rows {
            let got = parse_int(s.chars().map(u32::from), 16)
                .ok()
                .map(|p| (p.negative, p.magnitude.unwrap()));
            assert_eq!(got, *want, "{s:?}");
        }
    }

    #[test]
    fn floats_and_json_values() {
        let f = |x: f64| int_of_float(x);
        assert_eq!(f(1.9), Ok(PyInt::Int(1)));
        assert_eq!(f(-1.9), Ok(PyInt::Int(-1)));
        assert_eq!(f(-0.5), Ok(PyInt::Int(0)));
        assert_eq!(f(f64::NAN), Err(PyIntError::Value));
        assert_eq!(f(f64::INFINITY), Err(PyIntError::Overflow));
        assert_eq!(f(-f64::INFINITY), Err(PyIntError::Overflow));
        assert_eq!(f(1e300), Ok(PyInt::Huge { negative: false }));
        assert_eq!(f(-1e300), Ok(PyInt::Huge { negative: true }));
        assert_eq!(f(1e20), Ok(PyInt::Int(100_000_000_000_000_000_000)));

        let j = |s: &'static str| int_of_json(&parse(s.as_bytes(), Encoding::Utf8).unwrap());
        assert_eq!(j("true"), Ok(PyInt::Int(1)));
        assert_eq!(j("false"), Ok(PyInt::Int(0)));
        assert_eq!(j("null"), Err(PyIntError::Type));
        assert_eq!(j("[1]"), Err(PyIntError::Type));
        assert_eq!(j("{}"), Err(PyIntError::Type));
        assert_eq!(j("\" 12 \""), Ok(PyInt::Int(12)));
        assert_eq!(j("\"\\u0031\\u0032\""), Ok(PyInt::Int(12)));
        assert_eq!(j("1e400"), Err(PyIntError::Overflow));
        assert_eq!(j("NaN"), Err(PyIntError::Value));
        assert_eq!(
            j("100000000000000000000"),
            Ok(PyInt::Int(100_000_000_000_000_000_000))
        );
        assert_eq!(
            j("-100000000000000000000"),
            Ok(PyInt::Int(-100_000_000_000_000_000_000))
        );
        let huge = "9".repeat(60);
        let v = parse(huge.as_bytes(), Encoding::Utf8).unwrap();
        assert_eq!(int_of_json(&v), Ok(PyInt::Huge { negative: false }));
    }

    #[test]
    fn comparisons() {
        assert_eq!(PyInt::Int(5).cmp_i128(4), Ordering::Greater);
        assert_eq!(
            PyInt::Huge { negative: false }.cmp_i128(i128::from(i64::MAX) + 10),
            Ordering::Greater
        );
        assert_eq!(
            PyInt::Huge { negative: true }.cmp_i128(i128::from(i64::MIN) - 10),
            Ordering::Less
        );
        assert_eq!(PyInt::Int(i128::from(i64::MAX) + 1).to_i64(), None);
        assert_eq!(PyInt::Int(-3).to_i64(), Some(-3));
    }
}
