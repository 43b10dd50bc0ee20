//! A zero-allocation JSON scanner with Python `json.loads` semantics.
//!
//! # Crate API
//!
//! ```text
//! parse(doc, Encoding::Utf8)          -> Result<JsonValue<'_>, JsonError>   // whole document validated first
//! parse_object(doc, enc)              -> Result<JsonObject<'_>, JsonError>  // NotAnObject unless `{…}`
//! for_each_member(doc, enc, |k, v| …) -> Result<(), E>  where E: From<JsonError>
//!
//! JsonValue<'a>  = Null | Bool(bool) | Int(i64) | BigInt(JsonBigInt) | Float(f64)
//!                | Str(JsonStr) | Array(JsonArray) | Object(JsonObject)
//! JsonObject<'a> : members() -> iterator of (JsonStr, JsonValue) in document order
//!                  get(key) -> Option<JsonValue>    (last duplicate wins, like a dict)
//!                  contains_key(key), raw()
//! JsonArray<'a>  : iter() -> iterator of JsonValue, is_empty(), raw()
//! JsonStr<'a>    : eq_str(&str) (escape-decoded, no allocation), chars() (code points,
//!                  lone surrogates included), to_inline() -> Option<InlineStr>,
//!                  to_string() -> Option<String> (None when it holds a lone surrogate),
//!                  to_string_lossy(), is_empty(), raw()
//! JsonBigInt<'a> : negative(), digits() (ASCII, no sign) for integers beyond i64
//! ```
//!
//! Nothing is allocated while scanning: values borrow the document; containers
//! are raw validated slices that are scanned again when iterated.
//!
//! # Semantics (CPython 3.11 `json.loads`, `strict=True`)
//!
//! - Whitespace is `' '`, `'\t'`, `'\n'`, `'\r'` only.
//! - `NaN`, `Infinity` and `-Infinity` are accepted as floats.
//! - Integers are exact: beyond `i64` they are reported as [`JsonValue::BigInt`].
//!   An integer literal with more than 4300 digits is an error, as CPython's
//!   `int_max_str_digits` limit makes it.
//! - Numbers with a fraction or an exponent are floats (`1e400` is infinity).
//! - Duplicate keys: every member is reported in order; [`JsonObject::get`]
//!   returns the last one, as a `dict` keeps it.
//! - Strings: control characters (`< 0x20`) are rejected, escapes are the
//!   JSON set, `\uXXXX` escapes of a surrogate pair are joined, and lone
//!   surrogates (escaped, or raw UTF-8-encoded ones, which CPython lets through
//!   with `surrogatepass`) are kept as lone code points.
//! - [`Encoding::Utf8`] is `json.loads(bytes)`: a leading UTF-8 BOM is
//!   skipped, invalid UTF-8 is an error. [`Encoding::Latin1`] is
//!   `json.loads(bytes.decode("latin-1"))` as Django's session serializer does:
//!   every byte is one character.
//! - Nesting deeper than [`MAX_DEPTH`] is rejected (CPython raises
//!   `RecursionError` somewhere below 1000, depending on the caller's stack).
//!
//! Known difference: CPython autodetects UTF-16 and UTF-32 for `bytes` input;
//! such documents are rejected here as malformed (their NUL bytes or BOM are
//! never valid in UTF-8 JSON, so the result is a rejection, never a different
//! value).

// Parts of this API serve the session module only.
#![allow(dead_code)]

use crate::text::InlineStr;
use alloc::string::String;
use core::fmt;

/// Deepest accepted nesting of arrays and objects.
pub(crate) const MAX_DEPTH: usize = 900;

/// CPython's default `sys.get_int_max_str_digits()`.
pub(crate) const MAX_INT_DIGITS: usize = 4300;

/// How the document's bytes map to characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// `json.loads(bytes)` for UTF-8 input (BOM skipped, surrogates passed).
    Utf8,
    /// `json.loads(bytes.decode("latin-1"))`.
    Latin1,
}

/// Why a document was refused (all of them are `ValueError` in Python).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON as Python reads it.
    Syntax,
    /// Invalid UTF-8 (or a UTF-16/32 document).
    Encoding,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An integer literal longer than 4300 digits.
    IntTooLong,
    /// Valid JSON, but the top-level value is not an object.
    NotAnObject,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonError::Syntax => "invalid JSON",
            JsonError::Encoding => "invalid UTF-8 in JSON",
            JsonError::TooDeep => "JSON nested too deeply",
            JsonError::IntTooLong => "JSON integer has too many digits",
            JsonError::NotAnObject => "JSON value is not an object",
        })
    }
}

/// A JSON value borrowed from a validated document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum JsonValue<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer in `i64` range.
    Int(i64),
    /// An integer outside `i64` range.
    BigInt(JsonBigInt<'a>),
    /// A float (also `NaN`, `Infinity`, `-Infinity`).
    Float(f64),
    /// A string.
    Str(JsonStr<'a>),
    /// An array.
    Array(JsonArray<'a>),
    /// An object.
    Object(JsonObject<'a>),
}

/// An integer beyond `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonBigInt<'a> {
    negative: bool,
    digits: &'a [u8],
}

impl<'a> JsonBigInt<'a> {
    /// True below zero.
    pub(crate) fn negative(&self) -> bool {
        self.negative
    }
    /// The ASCII decimal digits, without sign (never a leading zero).
    pub(crate) fn digits(&self) -> &'a [u8] {
        self.digits
    }
}

/// A string value or key: the raw text between the quotes, escapes undecoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonStr<'a> {
    raw: &'a [u8],
    enc: Encoding,
    escaped: bool,
}

/// An object: the validated raw text `{…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonObject<'a> {
    raw: &'a [u8],
    enc: Encoding,
}

/// An array: the validated raw text `[…]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonArray<'a> {
    raw: &'a [u8],
    enc: Encoding,
}

// ------------------------------------------------------------ entry points

/// Whether integer literals are limited to [`MAX_INT_DIGITS`] digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntDigits {
    /// CPython's default for `json.loads`.
    Limited,
    /// `json.loads(..., parse_int=...)` with a custom `parse_int`, which never
    /// converts the digits (PyJWT's key check does this).
    Unlimited,
}

/// Validates `doc` completely and returns its top-level value.
pub(crate) fn parse(doc: &[u8], enc: Encoding) -> Result<JsonValue<'_>, JsonError> {
    parse_with(doc, enc, IntDigits::Limited)
}

/// [`parse`] with a choice of integer digit limit.
pub(crate) fn parse_with(
    doc: &[u8],
    enc: Encoding,
    digits: IntDigits,
) -> Result<JsonValue<'_>, JsonError> {
    let body = match enc {
        Encoding::Utf8 => doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc),
        Encoding::Latin1 => doc,
    };
    validate(body, enc, digits)?;
    let start = skip_ws(body, 0);
    match read_value(body, start, enc) {
        Some((v, _)) => Ok(v),
        None => Err(JsonError::Syntax),
    }
}

/// [`parse`], requiring an object.
pub(crate) fn parse_object(doc: &[u8], enc: Encoding) -> Result<JsonObject<'_>, JsonError> {
    match parse(doc, enc)? {
        JsonValue::Object(o) => Ok(o),
        _ => Err(JsonError::NotAnObject),
    }
}

/// Validates `doc` (an object), then calls `f` for every member in document
/// order (duplicates included: let the last one win). `f` is never called for
/// an invalid document.
pub(crate) fn for_each_member<'a, E: From<JsonError>>(
    doc: &'a [u8],
    enc: Encoding,
    mut f: impl FnMut(JsonStr<'a>, JsonValue<'a>) -> Result<(), E>,
) -> Result<(), E> {
    let obj = parse_object(doc, enc)?;
    for (k, v) in obj.members() {
        f(k, v)?;
    }
    Ok(())
}

// ------------------------------------------------------------ objects / arrays

impl<'a> JsonObject<'a> {
    /// Members in document order.
    pub(crate) fn members(&self) -> Members<'a> {
        Members {
            s: self.raw,
            pos: 1,
            enc: self.enc,
        }
    }

    /// The value of the last member named `key` (a `dict`'s view).
    pub(crate) fn get(&self, key: &str) -> Option<JsonValue<'a>> {
        let mut found = None;
        for (k, v) in self.members() {
            if k.eq_str(key) {
                found = Some(v);
            }
        }
        found
    }

    /// True when a member named `key` exists.
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.members().any(|(k, _)| k.eq_str(key))
    }

    /// True for `{}`.
    pub(crate) fn is_empty(&self) -> bool {
        self.members().next().is_none()
    }

    /// The raw validated text, braces included.
    pub(crate) fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

impl<'a> JsonArray<'a> {
    /// Elements in order.
    pub(crate) fn iter(&self) -> Elements<'a> {
        Elements {
            s: self.raw,
            pos: 1,
            enc: self.enc,
        }
    }

    /// True for `[]`.
    pub(crate) fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The raw validated text, brackets included.
    pub(crate) fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

/// Iterator over an object's members.
#[derive(Debug, Clone)]
pub(crate) struct Members<'a> {
    s: &'a [u8],
    pos: usize,
    enc: Encoding,
}

impl<'a> Iterator for Members<'a> {
    type Item = (JsonStr<'a>, JsonValue<'a>);
    // Index steps stay within the text (see `at`).
    #[allow(clippy::arithmetic_side_effects)]
    fn next(&mut self) -> Option<Self::Item> {
        let mut i = skip_ws(self.s, self.pos);
        if at(self.s, i) == Some(b',') {
            i = skip_ws(self.s, i + 1);
        }
        if at(self.s, i) != Some(b'"') {
            self.pos = self.s.len();
            return None;
        }
        let (key, after) = read_str(self.s, i, self.enc)?;
        i = skip_ws(self.s, after);
        if at(self.s, i) != Some(b':') {
            self.pos = self.s.len();
            return None;
        }
        i = skip_ws(self.s, i + 1);
        let (v, end) = read_value(self.s, i, self.enc)?;
        self.pos = end;
        Some((key, v))
    }
}

/// Iterator over an array's elements.
#[derive(Debug, Clone)]
pub(crate) struct Elements<'a> {
    s: &'a [u8],
    pos: usize,
    enc: Encoding,
}

impl<'a> Iterator for Elements<'a> {
    type Item = JsonValue<'a>;
    // Index steps stay within the text (see `at`).
    #[allow(clippy::arithmetic_side_effects)]
    fn next(&mut self) -> Option<Self::Item> {
        let mut i = skip_ws(self.s, self.pos);
        if at(self.s, i) == Some(b',') {
            i = skip_ws(self.s, i + 1);
        }
        match at(self.s, i) {
            None | Some(b']') => {
                self.pos = self.s.len();
                None
            }
            Some(_) => {
                let (v, end) = read_value(self.s, i, self.enc)?;
                self.pos = end;
                Some(v)
            }
        }
    }
}

// ------------------------------------------------------------ strings

impl<'a> JsonStr<'a> {
    /// The raw bytes between the quotes (escapes not decoded).
    pub(crate) fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// True for `""`.
    pub(crate) fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The decoded code points (Python `str` characters, lone surrogates included).
    pub(crate) fn chars(&self) -> StrChars<'a> {
        StrChars {
            raw: self.raw,
            pos: 0,
            enc: self.enc,
        }
    }

    /// The raw bytes when they are the string's UTF-8 text (no escapes, and
    /// UTF-8 or ASCII): `k == s` is then `plain_bytes() == s.as_bytes()`.
    #[inline]
    pub(crate) fn plain_bytes(&self) -> Option<&'a [u8]> {
        if !self.escaped && (self.enc == Encoding::Utf8 || self.raw.is_ascii()) {
            Some(self.raw)
        } else {
            None
        }
    }

    /// Python `==` against `s`, without allocating.
    #[inline]
    pub(crate) fn eq_str(&self, s: &str) -> bool {
        if !self.escaped && (self.enc == Encoding::Utf8 || self.raw.is_ascii()) {
            return crate::text::bytes_eq(self.raw, s.as_bytes());
        }
        let mut a = self.chars();
        let mut b = s.chars();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x == u32::from(y) => {}
                _ => return false,
            }
        }
    }

    /// True when the string holds a lone surrogate (not representable in Rust).
    pub(crate) fn has_lone_surrogate(&self) -> bool {
        self.chars().any(|c| (0xD800..0xE000).contains(&c))
    }

    /// Number of Python characters.
    pub(crate) fn char_count(&self) -> usize {
        self.chars().count()
    }

    /// Copies the string into an [`InlineStr`]; `None` when it is longer than
    /// the capacity or holds a lone surrogate.
    pub(crate) fn to_inline(self) -> Option<InlineStr> {
        if !self.escaped && self.enc == Encoding::Utf8 {
            // Validated UTF-8 (surrogates passed): it is a `str` unless it
            // holds a raw-encoded lone surrogate, which an `InlineStr` cannot hold.
            return core::str::from_utf8(self.raw).ok().and_then(InlineStr::new);
        }
        let mut buf = [0u8; InlineStr::CAPACITY];
        let mut len = 0usize;
        for c in self.chars() {
            let ch = char::from_u32(c)?;
            let dst = buf.get_mut(len..)?;
            if dst.len() < ch.len_utf8() {
                return None;
            }
            // Stays within `buf`: the bytes were just written into it.
            len = len.saturating_add(ch.encode_utf8(dst).len());
        }
        let s = core::str::from_utf8(buf.get(..len)?).ok()?;
        InlineStr::new(s)
    }

    /// Writes the string into `dst` (which must be empty) as
    /// [`to_inline`](Self::to_inline) would make it; `false` when that is `None`.
    #[inline]
    pub(crate) fn write_inline(self, dst: &mut InlineStr) -> bool {
        if !self.escaped && self.enc == Encoding::Utf8 {
            // See `to_inline`.
            // ASCII first: a claim's value usually is (measured).
            return (self.raw.is_ascii() || core::str::from_utf8(self.raw).is_ok())
                && dst.set_bytes(self.raw);
        }
        match self.to_inline() {
            Some(s) => {
                *dst = s;
                true
            }
            None => false,
        }
    }

    /// The decoded string; `None` when it holds a lone surrogate.
    pub(crate) fn to_string(self) -> Option<String> {
        let mut out = String::with_capacity(self.raw.len());
        for c in self.chars() {
            out.push(char::from_u32(c)?);
        }
        Some(out)
    }

    /// The decoded string, lone surrogates replaced by U+FFFD.
    pub(crate) fn to_string_lossy(self) -> String {
        let mut out = String::with_capacity(self.raw.len());
        for c in self.chars() {
            out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
        }
        out
    }
}

/// Iterator over a [`JsonStr`]'s code points.
#[derive(Debug, Clone)]
pub(crate) struct StrChars<'a> {
    raw: &'a [u8],
    pos: usize,
    enc: Encoding,
}

impl Iterator for StrChars<'_> {
    type Item = u32;
    // `pos` steps past bytes that exist (escapes are 2 or 6 bytes long);
    // surrogate halves are range-checked before they are combined.
    #[allow(clippy::arithmetic_side_effects)]
    fn next(&mut self) -> Option<u32> {
        let b = at(self.raw, self.pos)?;
        if b == b'\\' {
            let e = at(self.raw, self.pos + 1)?;
            let c = match e {
                b'"' => 0x22,
                b'\\' => 0x5C,
                b'/' => 0x2F,
                b'b' => 0x08,
                b'f' => 0x0C,
                b'n' => 0x0A,
                b'r' => 0x0D,
                b't' => 0x09,
                b'u' => {
                    let hi = hex4(self.raw, self.pos + 2)?;
                    self.pos += 6;
                    if (0xD800..0xDC00).contains(&hi)
                        && at(self.raw, self.pos) == Some(b'\\')
                        && at(self.raw, self.pos + 1) == Some(b'u')
                    {
                        if let Some(lo) = hex4(self.raw, self.pos + 2) {
                            if (0xDC00..0xE000).contains(&lo) {
                                self.pos += 6;
                                return Some(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
                            }
                        }
                    }
                    return Some(hi);
                }
                _ => {
                    self.pos = self.raw.len();
                    return None;
                }
            };
            self.pos += 2;
            return Some(c);
        }
        if b < 0x80 || self.enc == Encoding::Latin1 {
            self.pos += 1;
            return Some(u32::from(b));
        }
        match utf8_seq(self.raw, self.pos) {
            Some((c, n)) => {
                self.pos += n;
                Some(c)
            }
            None => {
                self.pos = self.raw.len();
                None
            }
        }
    }
}

// ------------------------------------------------------------ writers (json.dumps)

/// Writes `chars` as `json.dumps` does with `ensure_ascii=True` (quotes included).
// Only code points at or above 0x10000 subtract 0x10000.
#[allow(clippy::arithmetic_side_effects)]
pub(crate) fn write_py_str(out: &mut String, chars: impl Iterator<Item = u32>) {
    out.push('"');
    for c in chars {
        match c {
            0x22 => out.push_str("\\\""),
            0x5C => out.push_str("\\\\"),
            0x0A => out.push_str("\\n"),
            0x0D => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0C => out.push_str("\\f"),
            0x20..=0x7E => out.push(char::from(c as u8)),
            0x10000.. => {
                let v = c - 0x10000;
                push_u_escape(out, 0xD800 | (v >> 10));
                push_u_escape(out, 0xDC00 | (v & 0x3FF));
            }
            _ => push_u_escape(out, c),
        }
    }
    out.push('"');
}

fn push_u_escape(out: &mut String, c: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12u32, 8, 4, 0] {
        let d = ((c >> shift) & 0xF) as usize;
        out.push(char::from(HEX.get(d).copied().unwrap_or(b'0')));
    }
}

/// Writes `f` as Python's `float.__repr__` / `json.dumps` (`NaN`, `Infinity`).
// `exp` is an f64's decimal exponent (-324..=308); `nd` counts at most 24 digits.
#[allow(clippy::arithmetic_side_effects)]
pub(crate) fn write_py_float(out: &mut impl fmt::Write, f: f64) -> fmt::Result {
    if f.is_nan() {
        return out.write_str("NaN");
    }
    if f.is_infinite() {
        return out.write_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    }
    // Shortest round-trip digits, then Python's layout rules (repr style 'r').
    let mut buf = StackBuf::<40>::new();
    write!(buf, "{:e}", f)?;
    let text = buf.as_bytes();
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let epos = text.iter().position(|&b| b == b'e').ok_or(fmt::Error)?;
    let (mantissa, exp_part) = text.split_at(epos);
    let exp: i32 = core::str::from_utf8(exp_part.get(1..).ok_or(fmt::Error)?)
        .map_err(|_| fmt::Error)?
        .parse()
        .map_err(|_| fmt::Error)?;
    let mut digits = [0u8; 24];
    let mut nd = 0usize;
    for &b in mantissa {
        if b.is_ascii_digit() {
            *digits.get_mut(nd).ok_or(fmt::Error)? = b;
            nd += 1;
        }
    }
    let digits = digits.get(..nd).ok_or(fmt::Error)?;
    let digits = core::str::from_utf8(digits).map_err(|_| fmt::Error)?;
    if negative {
        out.write_char('-')?;
    }
    if (-4..16).contains(&exp) {
        let decpt = exp + 1;
        if decpt <= 0 {
            out.write_str("0.")?;
            for _ in 0..(-decpt) {
                out.write_char('0')?;
            }
            out.write_str(digits)?;
        } else {
            let decpt = decpt as usize;
            if decpt >= nd {
                out.write_str(digits)?;
                for _ in nd..decpt {
                    out.write_char('0')?;
                }
                out.write_str(".0")?;
            } else {
                let (a, b) = digits.split_at(decpt);
                out.write_str(a)?;
                out.write_char('.')?;
                out.write_str(b)?;
            }
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.write_str(first)?;
        if !rest.is_empty() {
            out.write_char('.')?;
            out.write_str(rest)?;
        }
        let sign = if exp < 0 { '-' } else { '+' };
        write!(out, "e{}{:02}", sign, exp.unsigned_abs())?;
    }
    Ok(())
}

/// A fixed-size `fmt::Write` sink on the stack.
pub(crate) struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    pub(crate) fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
        }
    }
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl<const N: usize> fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

use core::fmt::Write as _;

// ------------------------------------------------------------ validation

/// The byte at `i`, if any.
///
/// Index arithmetic in this module: an index only steps past bytes that were
/// just read at or beyond it (or, on validated text, past a complete escape
/// or literal), so it never exceeds the text's length plus a literal's length
/// (at most 9); a slice is at most `isize::MAX` bytes long, so `index + small
/// constant` cannot overflow `usize`.
#[inline]
fn at(s: &[u8], i: usize) -> Option<u8> {
    s.get(i).copied()
}

// Index steps stay within the text plus a literal's length (see `at`).
#[allow(clippy::arithmetic_side_effects)]
#[inline]
fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = at(s, i) {
        i += 1;
    }
    i
}

// Each arm subtracts its own range's first byte: the results are 0..16.
#[allow(clippy::arithmetic_side_effects)]
fn hex_val(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'a'..=b'f' => Some(u32::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u32::from(b - b'A' + 10)),
        _ => None,
    }
}

// `i` indexes `s` and `k < 4` (see `at`); four hex digits stay below 0x10000.
#[allow(clippy::arithmetic_side_effects)]
fn hex4(s: &[u8], i: usize) -> Option<u32> {
    let mut v = 0u32;
    for k in 0..4 {
        v = (v << 4) | hex_val(at(s, i + k)?)?;
    }
    Some(v)
}

/// Decodes one UTF-8 sequence at `i` (surrogates allowed, as `surrogatepass`).
// `i` indexes `s` and `k < 4` (see `at`).
#[allow(clippy::arithmetic_side_effects)]
fn utf8_seq(s: &[u8], i: usize) -> Option<(u32, usize)> {
    let b0 = at(s, i)?;
    let cont = |k: usize| -> Option<u32> {
        let b = at(s, i + k)?;
        if b & 0xC0 == 0x80 {
            Some(u32::from(b & 0x3F))
        } else {
            None
        }
    };
    match b0 {
        0x00..=0x7F => Some((u32::from(b0), 1)),
        0xC2..=0xDF => Some(((u32::from(b0 & 0x1F) << 6) | cont(1)?, 2)),
        0xE0..=0xEF => {
            let b1 = at(s, i + 1)?;
            if b0 == 0xE0 && b1 < 0xA0 {
                return None;
            }
            let c = (u32::from(b0 & 0x0F) << 12) | (cont(1)? << 6) | cont(2)?;
            Some((c, 3))
        }
        0xF0..=0xF4 => {
            let b1 = at(s, i + 1)?;
            if (b0 == 0xF0 && b1 < 0x90) || (b0 == 0xF4 && b1 > 0x8F) {
                return None;
            }
            let c = (u32::from(b0 & 0x07) << 18) | (cont(1)? << 12) | (cont(2)? << 6) | cont(3)?;
            Some((c, 4))
        }
        _ => None,
    }
}

/// Non-zero for the bytes that end a run of plain string characters: `"`,
/// `\\`, control characters and non-ASCII bytes.
static STRING_STOP: [u8; 256] = {
    let mut t = [1u8; 256];
    let mut b = 0x20;
    while b < 0x80 {
        if b != b'"' as usize && b != b'\\' as usize {
            // `b < 0x80`: the index exists.
            #[allow(clippy::indexing_slicing)]
            {
                t[b] = 0;
            }
        }
        b += 1;
    }
    t
};

/// Validates a string whose opening quote is at `i`; returns the index after
/// the closing quote and whether it contains escapes.
// Index steps stay within the text plus a literal's length (see `at`).
#[allow(clippy::arithmetic_side_effects)]
fn scan_string(s: &[u8], i: usize, enc: Encoding) -> Result<(usize, bool), JsonError> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        // Skip a run of printable ASCII other than `"` and `\` at once.
        if let Some(rest) = s.get(j..) {
            j += rest
                .iter()
                .position(|&b| STRING_STOP.get(usize::from(b)) != Some(&0))
                .unwrap_or(rest.len());
        }
        let b = at(s, j).ok_or(JsonError::Syntax)?;
        match b {
            b'"' => return Ok((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                match at(s, j + 1).ok_or(JsonError::Syntax)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => j += 2,
                    b'u' => {
                        hex4(s, j + 2).ok_or(JsonError::Syntax)?;
                        j += 6;
                    }
                    _ => return Err(JsonError::Syntax),
                }
            }
            0x00..=0x1F => return Err(JsonError::Syntax),
            0x20..=0x7F => j += 1,
            _ => match enc {
                Encoding::Latin1 => j += 1,
                Encoding::Utf8 => {
                    let (_, n) = utf8_seq(s, j).ok_or(JsonError::Encoding)?;
                    j += n;
                }
            },
        }
    }
}

/// Validates a number at `i`; returns (end, is_float).
// Index steps stay within the text plus a literal's length (see `at`).
// `j >= int_start` when the digits are counted.
#[allow(clippy::arithmetic_side_effects)]
fn scan_number(s: &[u8], i: usize, digits: IntDigits) -> Result<(usize, bool), JsonError> {
    let mut j = i;
    if at(s, j) == Some(b'-') {
        j += 1;
    }
    let int_start = j;
    match at(s, j) {
        Some(b'0') => j += 1,
        Some(b'1'..=b'9') => {
            while let Some(b'0'..=b'9') = at(s, j) {
                j += 1;
            }
        }
        _ => return Err(JsonError::Syntax),
    }
    let int_digits = j - int_start;
    let mut is_float = false;
    if at(s, j) == Some(b'.') {
        if !matches!(at(s, j + 1), Some(b'0'..=b'9')) {
            return Err(JsonError::Syntax);
        }
        j += 1;
        while let Some(b'0'..=b'9') = at(s, j) {
            j += 1;
        }
        is_float = true;
    }
    if let Some(b'e' | b'E') = at(s, j) {
        let mut k = j + 1;
        if let Some(b'+' | b'-') = at(s, k) {
            k += 1;
        }
        if !matches!(at(s, k), Some(b'0'..=b'9')) {
            return Err(JsonError::Syntax);
        }
        while let Some(b'0'..=b'9') = at(s, k) {
            k += 1;
        }
        j = k;
        is_float = true;
    }
    if !is_float && digits == IntDigits::Limited && int_digits > MAX_INT_DIGITS {
        return Err(JsonError::IntTooLong);
    }
    Ok((j, is_float))
}

/// A fixed stack of container kinds (1 bit each: object or array).
struct KindStack {
    bits: [u64; MAX_DEPTH.div_ceil(64)],
    depth: usize,
}

impl KindStack {
    // `depth` is below MAX_DEPTH before the increment.
    #[allow(clippy::arithmetic_side_effects)]
    fn push(&mut self, object: bool) -> Result<(), JsonError> {
        if self.depth >= MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        let word = self
            .bits
            .get_mut(self.depth / 64)
            .ok_or(JsonError::TooDeep)?;
        let mask = 1u64 << (self.depth % 64);
        if object {
            *word |= mask;
        } else {
            *word &= !mask;
        }
        self.depth += 1;
        Ok(())
    }
    fn top_is_object(&self) -> Option<bool> {
        let d = self.depth.checked_sub(1)?;
        let word = self.bits.get(d / 64)?;
        Some(word & (1u64 << (d % 64)) != 0)
    }
}

/// Expects `"key" ws : ws` at `i`; returns the index of the value.
// Index steps stay within the text plus a literal's length (see `at`).
#[allow(clippy::arithmetic_side_effects)]
fn expect_key(s: &[u8], i: usize, enc: Encoding) -> Result<usize, JsonError> {
    if at(s, i) != Some(b'"') {
        return Err(JsonError::Syntax);
    }
    let (end, _) = scan_string(s, i, enc)?;
    let j = skip_ws(s, end);
    if at(s, j) != Some(b':') {
        return Err(JsonError::Syntax);
    }
    Ok(skip_ws(s, j + 1))
}

fn validate(s: &[u8], enc: Encoding, digits: IntDigits) -> Result<(), JsonError> {
    let end = validate_value(s, skip_ws(s, 0), enc, digits, 0)?;
    if skip_ws(s, end) == s.len() {
        Ok(())
    } else {
        Err(JsonError::Syntax)
    }
}

/// Validates the value at `i`, itself nested `outer` levels deep; returns
/// the index after it.
// Index steps stay within the text plus a literal's length (see `at`).
// `depth` is only decremented right after a container was pushed or matched.
#[allow(clippy::arithmetic_side_effects)]
fn validate_value(
    s: &[u8],
    mut i: usize,
    enc: Encoding,
    digits: IntDigits,
    outer: usize,
) -> Result<usize, JsonError> {
    let mut stack = KindStack {
        bits: [0; MAX_DEPTH.div_ceil(64)],
        depth: outer,
    };
    loop {
        // A value starts at `i`.
        let b = at(s, i).ok_or(JsonError::Syntax)?;
        match b {
            b'{' => {
                stack.push(true)?;
                i = skip_ws(s, i + 1);
                if at(s, i) == Some(b'}') {
                    i += 1;
                    stack.depth -= 1;
                } else {
                    i = expect_key(s, i, enc)?;
                    continue;
                }
            }
            b'[' => {
                stack.push(false)?;
                i = skip_ws(s, i + 1);
                if at(s, i) == Some(b']') {
                    i += 1;
                    stack.depth -= 1;
                } else {
                    continue;
                }
            }
            b'"' => i = scan_string(s, i, enc)?.0,
            b'n' => i = literal(s, i, b"null")?,
            b't' => i = literal(s, i, b"true")?,
            b'f' => i = literal(s, i, b"false")?,
            b'N' => i = literal(s, i, b"NaN")?,
            b'I' => i = literal(s, i, b"Infinity")?,
            b'-' if at(s, i + 1) == Some(b'I') => i = literal(s, i, b"-Infinity")?,
            b'-' | b'0'..=b'9' => i = scan_number(s, i, digits)?.0,
            _ => return Err(JsonError::Syntax),
        }
        // After a complete value: close containers or move to the next value.
        loop {
            if stack.depth <= outer {
                return Ok(i);
            }
            i = skip_ws(s, i);
            let Some(object) = stack.top_is_object() else {
                return Err(JsonError::Syntax);
            };
            match (at(s, i), object) {
                (Some(b','), true) => {
                    i = expect_key(s, skip_ws(s, i + 1), enc)?;
                    break;
                }
                (Some(b','), false) => {
                    i = skip_ws(s, i + 1);
                    break;
                }
                (Some(b'}'), true) | (Some(b']'), false) => {
                    i += 1;
                    stack.depth -= 1;
                }
                _ => return Err(JsonError::Syntax),
            }
        }
    }
}

fn literal(s: &[u8], i: usize, word: &[u8]) -> Result<usize, JsonError> {
    let end = i.checked_add(word.len()).ok_or(JsonError::Syntax)?;
    if s.get(i..end) == Some(word) {
        Ok(end)
    } else {
        Err(JsonError::Syntax)
    }
}

// ------------------------------------------------------------ reading validated text

/// Reads a string at `i` (validated text): (value, index after the quote).
// Index steps stay within the text plus a literal's length (see `at`).
#[allow(clippy::arithmetic_side_effects)]
fn read_str(s: &[u8], i: usize, enc: Encoding) -> Option<(JsonStr<'_>, usize)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        match at(s, j)? {
            b'"' => {
                let raw = s.get(i + 1..j)?;
                return Some((JsonStr { raw, enc, escaped }, j + 1));
            }
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
}

/// The index after the container starting at `i` (validated text).
// Index steps stay within the text plus a literal's length (see `at`).
#[allow(clippy::arithmetic_side_effects)]
fn skip_container(s: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    loop {
        match at(s, j)? {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            b'"' => {
                j += 1;
                loop {
                    match at(s, j)? {
                        b'"' => break,
                        b'\\' => j += 2,
                        _ => j += 1,
                    }
                }
            }
            _ => {}
        }
        j += 1;
    }
}

/// Reads the value at `i` of validated text: (value, end index).
// Index steps stay within the text plus a literal's length (see `at`).
// Integer digits were validated as ASCII digits.
#[allow(clippy::arithmetic_side_effects)]
fn read_value(s: &[u8], i: usize, enc: Encoding) -> Option<(JsonValue<'_>, usize)> {
    match at(s, i)? {
        b'"' => {
            let (st, end) = read_str(s, i, enc)?;
            Some((JsonValue::Str(st), end))
        }
        b'{' => {
            let end = skip_container(s, i)?;
            Some((
                JsonValue::Object(JsonObject {
                    raw: s.get(i..end)?,
                    enc,
                }),
                end,
            ))
        }
        b'[' => {
            let end = skip_container(s, i)?;
            Some((
                JsonValue::Array(JsonArray {
                    raw: s.get(i..end)?,
                    enc,
                }),
                end,
            ))
        }
        b'n' => Some((JsonValue::Null, i + 4)),
        b't' => Some((JsonValue::Bool(true), i + 4)),
        b'f' => Some((JsonValue::Bool(false), i + 5)),
        b'N' => Some((JsonValue::Float(f64::NAN), i + 3)),
        b'I' => Some((JsonValue::Float(f64::INFINITY), i + 8)),
        b'-' if at(s, i + 1) == Some(b'I') => Some((JsonValue::Float(f64::NEG_INFINITY), i + 9)),
        _ => {
            let (end, is_float) = scan_number(s, i, IntDigits::Unlimited).ok()?;
            Some((number_value(s.get(i..end)?, is_float)?, end))
        }
    }
}

/// The value of a validated number literal.
// Integer digits were validated as ASCII digits.
#[allow(clippy::arithmetic_side_effects)]
#[inline]
fn number_value(text: &[u8], is_float: bool) -> Option<JsonValue<'_>> {
    if is_float {
        let f: f64 = core::str::from_utf8(text).ok()?.parse().ok()?;
        return Some(JsonValue::Float(f));
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let mut v: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        let next = v.checked_mul(10).and_then(|x| {
            if negative {
                x.checked_sub(d)
            } else {
                x.checked_add(d)
            }
        });
        match next {
            Some(n) => v = n,
            None => return Some(JsonValue::BigInt(JsonBigInt { negative, digits })),
        }
    }
    Some(JsonValue::Int(v))
}

// ------------------------------------------------------------ one-pass object scan

/// Validates `doc` exactly as [`parse_object`] does, in one pass, calling `f`
/// for every top-level member in document order (duplicates included: let
/// the last one win). `f` may be called before an error further on is
/// found: discard what it gathered when this returns an error.
pub(crate) fn scan_object<'a>(
    doc: &'a [u8],
    enc: Encoding,
    mut f: impl FnMut(JsonStr<'a>, JsonValue<'a>),
) -> Result<(), JsonError> {
    let s = match enc {
        Encoding::Utf8 => doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc),
        Encoding::Latin1 => doc,
    };
    let mut i = skip_ws(s, 0);
    if at(s, i) != Some(b'{') {
        validate(s, enc, IntDigits::Limited)?;
        return Err(JsonError::NotAnObject);
    }
    i = skip_ws(s, i.saturating_add(1));
    if at(s, i) == Some(b'}') {
        i = i.saturating_add(1);
    } else {
        loop {
            if at(s, i) != Some(b'"') {
                return Err(JsonError::Syntax);
            }
            let (key_end, escaped) = scan_string(s, i, enc)?;
            let raw = s
                .get(i.saturating_add(1)..key_end.saturating_sub(1))
                .ok_or(JsonError::Syntax)?;
            let key = JsonStr { raw, enc, escaped };
            i = skip_ws(s, key_end);
            if at(s, i) != Some(b':') {
                return Err(JsonError::Syntax);
            }
            i = skip_ws(s, i.saturating_add(1));
            let (value, end) = scan_value(s, i, enc)?;
            f(key, value);
            i = skip_ws(s, end);
            match at(s, i) {
                Some(b',') => i = skip_ws(s, i.saturating_add(1)),
                Some(b'}') => {
                    i = i.saturating_add(1);
                    break;
                }
                _ => return Err(JsonError::Syntax),
            }
        }
    }
    if skip_ws(s, i) == s.len() {
        Ok(())
    } else {
        Err(JsonError::Syntax)
    }
}

/// The value of eight ASCII digits loaded little-endian into `x` (the
/// first digit in the lowest byte), or `None` when any byte is not a digit.
/// The SWAR digit test and the three multiply steps are the well-known ones
/// (as in simdjson's `parse_eight_digits_unrolled`).
#[inline(always)]
fn eight_digits(x: u64) -> Option<u64> {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    // Every byte is 0x30..=0x39: its high nibble is 3, and adding 6 keeps it 3.
    let all_digits = ((x & HIGH_NIBBLES)
        | ((x.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) >> 4))
        == 0x3333_3333_3333_3333;
    if !all_digits {
        return None;
    }
    let x = x & 0x0F0F_0F0F_0F0F_0F0F;
    // Pairs, then quads, then the eight: each step multiplies the lower
    // lane by the power of ten and adds the higher one; no step carries out
    // of its lane (every lane stays below 10^8 < 2^32).
    let x = x.wrapping_mul(10 * 256 + 1) >> 8;
    let x = (x & 0x00FF_00FF_00FF_00FF).wrapping_mul(100 * 65_536 + 1) >> 16;
    Some((x & 0x0000_FFFF_0000_FFFF).wrapping_mul(10_000 * (1 << 32) + 1) >> 32)
}

/// Length of the leading run of `s` of printable ASCII other than `"` and
/// `\` (the bytes a string takes as they are).
///
/// Hot path of [`scan_flat_object`]: eight bytes are tested at a time in a
/// `u64` (the classic has-less-than / has-zero-byte tests); a flag can be
/// wrong only in a byte after a truly flagged one (borrows and carries run
/// upwards, toward later bytes in little-endian order), so the lowest flag
/// is exact.
#[inline(always)]
fn plain_run(s: &[u8]) -> usize {
    let mut n = 0usize;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(c) else {
            break;
        };
        let stop = stop_bytes(u64::from_le_bytes(bytes));
        if stop != 0 {
            return n.saturating_add((stop.trailing_zeros() / 8) as usize);
        }
        n = n.saturating_add(8);
    }
    let tail = chunks.remainder();
    let more = tail
        .iter()
        .position(|&b| !(0x20..0x7F).contains(&b) || b == b'"' || b == b'\\')
        .unwrap_or(tail.len());
    n.saturating_add(more)
}

/// `raw` (at most 16 bytes) as two little-endian words, zero past its end.
pub(crate) fn short_words(raw: &[u8]) -> [u64; 2] {
    let mut b = [0u8; 16];
    for (dst, src) in b.iter_mut().zip(raw) {
        *dst = *src;
    }
    let (lo, hi) = b.split_at(8);
    let word = |h: &[u8]| <[u8; 8]>::try_from(h).map_or(0, u64::from_le_bytes);
    [word(lo), word(hi)]
}

/// The high bit of each byte of `x` (little-endian) that stops a plain
/// string: a control byte, `"`, `\\`, 0x7F and above. Exact for the lowest
/// flagged byte (the borrows of the subtractions run upwards).
#[inline(always)]
fn stop_bytes(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
    // Below 0x20; 0x7F and above (the high bit, or 0x7F + 1 = 0x80).
    let control = x.wrapping_sub(ONES.wrapping_mul(0x20)) & !x & HIGH;
    let high = (x | x.wrapping_add(ONES)) & HIGH;
    let quote = zero_in(x ^ ONES.wrapping_mul(u64::from(b'"')));
    let backslash = zero_in(x ^ ONES.wrapping_mul(u64::from(b'\\')));
    control | high | quote | backslash
}

/// The first member SimpleJWT writes, taken whole by [`scan_flat_object`].
const HEAD: &[u8; 23] = b"{\"token_type\":\"access\",";
const TOKEN_TYPE_WORDS: [u64; 2] = [
    u64::from_le_bytes(*b"token_ty"),
    u64::from_le_bytes(*b"pe\0\0\0\0\0\0"),
];
/// Where `jti` starts when `exp` and `iat` (17 bytes each) were read.
const JTI_AT: usize = HEAD.len() + 2 * 17;
const EXP_WORDS: [u64; 2] = [u64::from_le_bytes(*b"exp\0\0\0\0\0"), 0];
const IAT_WORDS: [u64; 2] = [u64::from_le_bytes(*b"iat\0\0\0\0\0"), 0];
const JTI_WORDS: [u64; 2] = [u64::from_le_bytes(*b"jti\0\0\0\0\0"), 0];

/// [`scan_object`] for the common shape of a token payload, in a tighter
/// loop (measured: the payload scan is the largest part of verifying a token
/// after the HMAC). `Some(())` when `doc` (UTF-8, no BOM) is an object
/// written without whitespace whose keys and string values are printable
/// ASCII without escapes and whose other values are integers of at most 18
/// digits, `true`, `false` or `null`: then `f` saw exactly the members
/// [`scan_object`] reports, and the document is valid. `None` for anything
/// else, whether valid or not, after `f` may have seen some members:
/// discard what it gathered and call [`scan_object`].
#[inline(always)]
pub(crate) fn scan_flat_object<'a>(
    doc: &'a [u8],
    mut f: impl FnMut(JsonStr<'a>, [u64; 2], JsonValue<'a>),
) -> Option<()> {
    /// The plain key whose opening quote is at `i`: its text, its bytes
    /// as two little-endian words when it has at most 16 (zero past its
    /// end, as [`short_words`] makes them; unspecified for a longer
    /// key), and the index after its closing quote. The words are the ones
    /// the search for the closing quote loaded.
    #[inline(always)]
    fn plain_key(s: &[u8], i: usize) -> Option<(&[u8], [u64; 2], usize)> {
        let start = i.checked_add(1)?;
        let rest = s.get(start..)?;
        let word = |at: usize| {
            rest.get(at..at.checked_add(8)?)
                .and_then(|c| <[u8; 8]>::try_from(c).ok())
                .map(u64::from_le_bytes)
        };
        // The bytes below the first stop byte (`n` < 8 of them).
        let low = |x: u64, stop: u64| {
            let n = stop.trailing_zeros() / 8;
            (
                n as usize,
                x & 1u64.wrapping_shl(n.wrapping_mul(8)).wrapping_sub(1),
            )
        };
        let (len, words) = match (word(0), word(8)) {
            (Some(x0), second) => {
                let stop0 = stop_bytes(x0);
                if stop0 != 0 {
                    let (n, w0) = low(x0, stop0);
                    (n, [w0, 0])
                } else {
                    match second {
                        Some(x1) if stop_bytes(x1) != 0 => {
                            let (n, w1) = low(x1, stop_bytes(x1));
                            (n.saturating_add(8), [x0, w1])
                        }
                        Some(x1) => {
                            let n = rest.get(16..).map_or(0, plain_run).saturating_add(16);
                            (n, [x0, x1])
                        }
                        None => {
                            let n = plain_run(rest);
                            (n, short_words(rest.get(..n)?))
                        }
                    }
                }
            }
            (None, _) => {
                let n = plain_run(rest);
                (n, short_words(rest.get(..n)?))
            }
        };
        let raw = rest.get(..len)?;
        let end = start.checked_add(len)?;
        (s.get(end) == Some(&b'"')).then_some((raw, words, end.checked_add(1)?))
    }
    /// End of the plain string whose opening quote is at `i`: the index
    /// after its closing quote.
    #[inline(always)]
    fn plain_str(s: &[u8], i: usize) -> Option<(&[u8], usize)> {
        let start = i.checked_add(1)?;
        let rest = s.get(start..)?;
        let len = plain_run(rest);
        let raw = rest.get(..len)?;
        let end = start.checked_add(len)?;
        (s.get(end) == Some(&b'"')).then_some((raw, end.checked_add(1)?))
    }
    let s = doc;
    if s.first() != Some(&b'{') {
        return None;
    }
    if s == b"{}" {
        return Some(());
    }
    let plain = |raw| JsonStr {
        raw,
        enc: Encoding::Utf8,
        escaped: false,
    };
    let mut i = 1usize;
    // The members SimpleJWT writes first, `"token_type":"access"`, then
    // `exp` and `iat` (ten-digit times) and `jti` (32 characters), read at
    // fixed places (a member per compare of its key; measured: the loop
    // below costs several times as much per member). Each is reported as the
    // loop would report it, and the first that is shaped otherwise is left
    // to the loop, from its opening quote.
    if let (Some(HEAD), Some(key), Some(value)) =
        (s.first_chunk::<23>(), s.get(2..12), s.get(15..21))
    {
        f(plain(key), TOKEN_TYPE_WORDS, JsonValue::Str(plain(value)));
        i = HEAD.len();
        // `"exp":` and `"iat":` then ten digits and a comma.
        for (name, words) in [(b"\"exp\":", EXP_WORDS), (b"\"iat\":", IAT_WORDS)] {
            let Some(m) = s.get(i..i.saturating_add(17)) else {
                break;
            };
            let (Some((k, rest)), Some(&b',')) = (m.split_first_chunk::<6>(), m.get(16)) else {
                break;
            };
            let eight = rest.first_chunk::<8>().map(|c| u64::from_le_bytes(*c));
            let (Some(high), Some(&[d8, d9])) = (eight.and_then(eight_digits), rest.get(8..10))
            else {
                break;
            };
            let (d8, d9) = (d8.wrapping_sub(b'0'), d9.wrapping_sub(b'0'));
            // A leading zero is not JSON (the loop refuses the document).
            if k != name || d8 > 9 || d9 > 9 || rest.first() == Some(&b'0') {
                break;
            }
            // Ten digits are below 10^10.
            let v = high
                .wrapping_mul(100)
                .wrapping_add(u64::from(d8).wrapping_mul(10))
                .wrapping_add(u64::from(d9));
            f(
                plain(m.get(1..4)?),
                words,
                JsonValue::Int(i64::try_from(v).ok()?),
            );
            i = i.saturating_add(17);
        }
        // `"jti":"` then 32 plain characters, a quote and a comma.
        if i == JTI_AT {
            if let Some(m) = s.get(i..i.saturating_add(41)) {
                // The id's four words hold no byte that stops a plain string.
                let stop = |at: usize| {
                    m.get(at..at.saturating_add(8))
                        .and_then(|c| <[u8; 8]>::try_from(c).ok())
                        .map_or(u64::MAX, |c| stop_bytes(u64::from_le_bytes(c)))
                };
                let plain_id = stop(7) | stop(15) | stop(23) | stop(31) == 0;
                if m.get(..7) == Some(b"\"jti\":\"") && m.get(39..41) == Some(b"\",") && plain_id {
                    f(
                        plain(m.get(1..4)?),
                        JTI_WORDS,
                        JsonValue::Str(plain(m.get(7..39)?)),
                    );
                    i = i.saturating_add(41);
                }
            }
        }
    }
    loop {
        let (key, words, value, end) = {
            if s.get(i) != Some(&b'"') {
                return None;
            }
            let (key, words, after_key) = plain_key(s, i)?;
            if s.get(after_key) != Some(&b':') {
                return None;
            }
            i = after_key.checked_add(1)?;
            let (value, end) = match s.get(i)? {
                b'"' => {
                    let (raw, end) = plain_str(s, i)?;
                    (JsonValue::Str(plain(raw)), end)
                }
                b'-' | b'0'..=b'9' => {
                    let negative = s.get(i) == Some(&b'-');
                    let start = if negative { i.checked_add(1)? } else { i };
                    let rest = s.get(start..)?;
                    let mut v = 0i64;
                    let mut n = 0usize;
                    // Eight digits at a time (timestamps have ten), at most
                    // twice: the digit-by-digit loop is one long chain of
                    // multiply-adds (measured on the verify path).
                    while n < 16 {
                        let Some(x) = rest
                            .get(n..n.saturating_add(8))
                            .and_then(|c| <[u8; 8]>::try_from(c).ok())
                            .map(u64::from_le_bytes)
                        else {
                            break;
                        };
                        let Some(eight) = eight_digits(x) else {
                            break;
                        };
                        // Below 10^16 after two rounds.
                        v = v.wrapping_mul(100_000_000).wrapping_add(eight as i64);
                        n = n.wrapping_add(8);
                    }
                    for &b in rest.iter().skip(n).take(19usize.saturating_sub(n)) {
                        let d = b.wrapping_sub(b'0');
                        if d > 9 {
                            break;
                        }
                        // At most 19 digits are read, the 19th only to refuse
                        // the number: up to 18 digits stay below 10^18 < i64::MAX,
                        // and a value that wrapped at the 19th is discarded.
                        v = v.wrapping_mul(10).wrapping_add(i64::from(d));
                        n = n.wrapping_add(1);
                    }
                    // A leading zero (invalid JSON), a fraction or an exponent,
                    // or more digits than an i64 surely holds: the full scan.
                    if n == 0 || n > 18 || (n > 1 && rest.first() == Some(&b'0')) {
                        return None;
                    }
                    let v = if negative { v.checked_neg()? } else { v };
                    (JsonValue::Int(v), start.checked_add(n)?)
                }
                b't' if s.get(i..i.checked_add(4)?) == Some(b"true") => {
                    (JsonValue::Bool(true), i.checked_add(4)?)
                }
                b'f' if s.get(i..i.checked_add(5)?) == Some(b"false") => {
                    (JsonValue::Bool(false), i.checked_add(5)?)
                }
                b'n' if s.get(i..i.checked_add(4)?) == Some(b"null") => {
                    (JsonValue::Null, i.checked_add(4)?)
                }
                _ => return None,
            };
            (key, words, value, end)
        };
        f(plain(key), words, value);
        match s.get(end)? {
            b',' => i = end.checked_add(1)?,
            b'}' if end.checked_add(1)? == s.len() => return Some(()),
            _ => return None,
        }
    }
}

/// Validates and reads the value at `i`, a member of a top-level object:
/// (value, end index).
#[inline]
fn scan_value(s: &[u8], i: usize, enc: Encoding) -> Result<(JsonValue<'_>, usize), JsonError> {
    let b = at(s, i).ok_or(JsonError::Syntax)?;
    let (end, f) = match b {
        b'"' => {
            let (end, escaped) = scan_string(s, i, enc)?;
            let raw = s
                .get(i.saturating_add(1)..end.saturating_sub(1))
                .ok_or(JsonError::Syntax)?;
            return Ok((JsonValue::Str(JsonStr { raw, enc, escaped }), end));
        }
        b'-' | b'0'..=b'9' if at(s, i.saturating_add(1)) != Some(b'I') => {
            let (end, is_float) = scan_number(s, i, IntDigits::Limited)?;
            let v = s
                .get(i..end)
                .and_then(|t| number_value(t, is_float))
                .ok_or(JsonError::Syntax)?;
            return Ok((v, end));
        }
        b'{' | b'[' => {
            // Inside the top-level object: one level of nesting is used.
            let end = validate_value(s, i, enc, IntDigits::Limited, 1)?;
            let raw = s.get(i..end).ok_or(JsonError::Syntax)?;
            let v = if b == b'{' {
                JsonValue::Object(JsonObject { raw, enc })
            } else {
                JsonValue::Array(JsonArray { raw, enc })
            };
            return Ok((v, end));
        }
        b'n' => return literal(s, i, b"null").map(|e| (JsonValue::Null, e)),
        b't' => return literal(s, i, b"true").map(|e| (JsonValue::Bool(true), e)),
        b'f' => return literal(s, i, b"false").map(|e| (JsonValue::Bool(false), e)),
        b'N' => (literal(s, i, b"NaN")?, f64::NAN),
        b'I' => (literal(s, i, b"Infinity")?, f64::INFINITY),
        b'-' => (literal(s, i, b"-Infinity")?, f64::NEG_INFINITY),
        _ => return Err(JsonError::Syntax),
    };
    Ok((JsonValue::Float(f), end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    proptest::proptest! {
        /// Eight bytes are digits exactly when Rust's own parser reads them
        /// as a number without a sign, and then with its value.
        #[test]
        fn eight_digits_reads_as_str_parse(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::strategy::Strategy::prop_map(proptest::prelude::any::<u8>(), |b| b'0' + b % 10),
                    1 => proptest::prelude::any::<u8>(),
                ],
                8,
            ),
        ) {
            use proptest::prelude::*;
            let x = u64::from_le_bytes(<[u8; 8]>::try_from(bytes.as_slice()).unwrap());
            let want = core::str::from_utf8(&bytes)
                .ok()
                .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok());
            prop_assert_eq!(eight_digits(x), want);
        }
    }

    /// Where the flat scan answers, the full scan accepts `doc` and reports
    /// the same members in the same order, and every key's words are its
    /// bytes.
    fn flat_agrees_with_full(doc: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut flat = Vec::new();
        let mut words_ok = true;
        let answered = scan_flat_object(doc.as_bytes(), |k, w, v| {
            words_ok &= words_agree(k, w);
            flat.push((k, v))
        });
        if answered.is_some() {
            let mut full = Vec::new();
            let r = scan_object(doc.as_bytes(), Encoding::Utf8, |k, v| full.push((k, v)));
            proptest::prop_assert_eq!(r, Ok(()), "{}", doc);
            proptest::prop_assert_eq!(flat, full, "{}", doc);
            proptest::prop_assert!(words_ok, "{}", doc);
        }
        Ok(())
    }

    /// The flat scan's words of a key are the key's bytes as
    /// [`short_words`] writes them, for every key of at most 16 bytes
    /// (the claim-name table finds a key by them).
    fn words_agree(k: JsonStr<'_>, words: [u64; 2]) -> bool {
        match k.plain_bytes() {
            Some(raw) if raw.len() <= 16 => {
                // The oracle: byte by byte, little-endian.
                let mut want = [0u64; 2];
                for (i, b) in raw.iter().enumerate() {
                    want[i / 8] |= u64::from(*b) << (8 * (i % 8));
                }
                words == want
            }
            _ => true,
        }
    }

    /// Members of a token payload, each as JSON text: most of the shapes
    /// [`scan_flat_object`] takes, and the ones it leaves to the full scan.
    fn member() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop_oneof![
            prop::sample::select(alloc::vec![
                "exp",
                "iat",
                "nbf",
                "jti",
                "user_id",
                "token_type",
                "is_staff",
                "",
                "a b",
                "\\u0065xp",
                "\\\"",
                "é",
                "k\\n",
                "\u{7f}",
                "is_superuser",
                "eight_by",
                "nine_byte",
                "fifteen_bytes_k",
                "sixteen_bytes_ke",
                "seventeen_bytes_k",
                "hash_password",
            ])
            .prop_map(String::from),
            "[ -~]{0,6}".prop_map(String::from),
            "[a-z_]{7,18}".prop_map(String::from),
        ];
        let value = prop_oneof![
            prop::sample::select(alloc::vec![
                "\"access\"",
                "\"\"",
                "\"1\"",
                "\"a\\\"b\"",
                "\"\\u00e9\"",
                "\"é\"",
                "true",
                "false",
                "null",
                "tru",
                "nulll",
                "0",
                "-0",
                "00",
                "01",
                "-",
                "1.5",
                "1e3",
                "-12",
                "999999999999999999",
                "1000000000000000000",
                "-999999999999999999",
                "99999999999999999999",
                "NaN",
                "-Infinity",
                "[]",
                "{}",
                "[1,{\"a\":2}]",
                "{\"exp\":1}",
                "\"\u{1}\"",
                "\"\u{7f}\"",
                "1750000000",
            ])
            .prop_map(String::from),
            any::<i64>().prop_map(|i| alloc::format!("{i}")),
            "\"[ -~]{0,8}\"".prop_map(String::from),
        ];
        let sep = prop::sample::select(alloc::vec!["", "", "", " ", "\n"]);
        (key, sep.clone(), value, sep)
            .prop_map(|(k, s1, v, s2)| alloc::format!("\"{k}\"{s1}:{s2}{v}"))
    }

    proptest::proptest! {
        /// The eight-at-a-time run agrees with a byte-by-byte search.
        #[test]
        fn plain_run_agrees_with_a_byte_search(
            s in proptest::collection::vec(
                proptest::prop_oneof![
                    20 => 0x20u8..0x7F,
                    1 => proptest::prelude::any::<u8>(),
                    1 => proptest::sample::select(alloc::vec![b'"', b'\\', 0x7F, 0x1F, 0x80, 0xFF, 0]),
                ],
                0..40,
            )
        ) {
            let want = s
                .iter()
                .position(|&b| !(0x20..0x7F).contains(&b) || b == b'"' || b == b'\\')
                .unwrap_or(s.len());
            proptest::prop_assert_eq!(plain_run(&s), want);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 8192,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The same, for documents opening with the member SimpleJWT
        /// writes first (the flat scan takes it whole).
        #[test]
        fn flat_scan_of_the_simplejwt_head_reports_what_the_full_scan_reports(
            members in proptest::collection::vec(member(), 0..5),
            head in proptest::sample::select(alloc::vec![
                "{\"token_type\":\"access\",",
                "{\"token_type\":\"access\",,",
                "{\"token_type\":\"access\", ",
                "{\"token_type\":\"access\"",
            ]),
            close in proptest::sample::select(alloc::vec!["}", "}", "} ", "]", ""]),
        ) {
            let doc = alloc::format!("{head}{}{close}", members.join(","));
            flat_agrees_with_full(&doc)?;
        }

        /// Where the flat scan answers, the full scan accepts the document
        /// and reports the same members in the same order.
        #[test]
        fn flat_scan_reports_what_the_full_scan_reports(
            members in proptest::collection::vec(member(), 0..7),
            comma in proptest::sample::select(alloc::vec![",", ",", ",", " ,", ",,"]),
            open in proptest::sample::select(alloc::vec!["{", "{", "{", "\u{feff}{", " {", "["]),
            close in proptest::sample::select(alloc::vec!["}", "}", "}", "} ", "}}", "]", ""]),
        ) {
            let doc = alloc::format!("{open}{}{close}", members.join(comma));
            flat_agrees_with_full(&doc)?;
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 8192,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The same, for documents shaped as SimpleJWT writes them (`exp`,
        /// `iat` and `jti` at their places) or nearly: the members read at
        /// fixed places and the ones left to the loop.
        #[test]
        fn flat_scan_of_simplejwt_shapes_reports_what_the_full_scan_reports(
            exp in proptest::sample::select(alloc::vec![
                "\"exp\":1750000300,", "\"exp\":1750000300,", "\"exp\":1750000300,",
                "\"exp\":1750000300,", "\"exp\":175000030,", "\"exp\":17500003000,",
                "\"exp\":0750000300,", "\"exp\":-750000300,", "\"exp\":1750000300}",
                "\"exp\":1750000300 ,", "\"exq\":1750000300,", "\"exp\":17500003e0,",
                "\"exp\":9999999999,", "\"exp\":1000000000,", "\"exp\":\"1750000300\",",
                "\"exp\":175000030a,", "\"exp\":1750000300", "",
            ]),
            iat in proptest::sample::select(alloc::vec![
                "\"iat\":1750000000,", "\"iat\":1750000000,", "\"iat\":1750000000,",
                "\"iat\":1750000000}", "\"iat\":0000000000,",
                "\"iat\":17500000001,", "\"nbf\":1750000000,", "\"iat\":1.75000000,", "",
            ]),
            jti in proptest::sample::select(alloc::vec![
                "\"jti\":\"5deaf7cb90ae4aa19d99bbc485d1d10b\",",
                "\"jti\":\"5deaf7cb90ae4aa19d99bbc485d1d10b\",",
                "\"jti\":\"5deaf7cb90ae4aa19d99bbc485d1d10b\",",
                "\"jti\":\"5deaf7cb90ae4aa19d99bbc485d1d10b\",",
                "\"jti\":\"5deaf7cb90ae4aa19d99bbc485d1d10b\"}",
                "\"jti\":\"5deaf7cb90ae4aa19d99bbc485d1d10\",",
                "\"jti\":\"5deaf7cb90ae4aa19d99bbc485d1d10bb\",",
                "\"jti\":\"5deaf7cb90ae4aa19d99bbc485d1d1\\n\",",
                "\"jti\":\"5deaf7cb90ae4aa1\u{1}d99bbc485d1d10b\",",
                "\"jti\":\"5deaf7cb90ae4aa1\u{e9}99bbc485d1d10b\",",
                "\"jti\":\"5deaf7cb90ae4aa19d99bbc\"85d1d10b\",",
                "\"jti\":5,",
                "\"jtj\":\"5deaf7cb90ae4aa19d99bbc485d1d10b\",",
                "",
            ]),
            members in proptest::collection::vec(member(), 0..3),
            close in proptest::sample::select(alloc::vec!["}", "}", "}", "}", "} ", "]", ""]),
        ) {
            let doc = alloc::format!(
                "{{\"token_type\":\"access\",{exp}{iat}{jti}{}{close}",
                members.join(",")
            );
            flat_agrees_with_full(&doc)?;
        }
    }

    #[test]
    fn flat_scan_takes_a_simplejwt_payload() {
        let doc = br#"{"token_type":"access","exp":1750000300,"iat":1750000000,"jti":"5deaf7cb90ae4aa19d99bbc485d1d10b","user_id":"1","is_staff":true,"n":null,"neg":-5}"#;
        let mut n = 0;
        assert_eq!(scan_flat_object(doc, |_, _, _| n += 1), Some(()));
        assert_eq!(n, 8);
        assert_eq!(scan_flat_object(b"{}", |_, _, _| n += 1), Some(()));
        for other in [
            &b"{ }"[..],
            b"{\"a\":1.0}",
            b"{\"a\":\"\\n\"}",
            b"[]",
            b"{\"a\":1} ",
        ] {
            assert_eq!(scan_flat_object(other, |_, _, _| {}), None, "{other:?}");
        }
    }

    fn p(s: &str) -> Result<JsonValue<'_>, JsonError> {
        parse(s.as_bytes(), Encoding::Utf8)
    }

    /// `scan_object` accepts exactly what `parse_object` accepts and reports
    /// the same members.
    fn same_as_parse_object(doc: &str) {
        let whole = parse_object(doc.as_bytes(), Encoding::Utf8);
        let mut seen = Vec::new();
        let scanned = scan_object(doc.as_bytes(), Encoding::Utf8, |k, v| seen.push((k, v)));
        match whole {
            Ok(obj) => {
                assert_eq!(scanned, Ok(()), "{doc:?}");
                // Compared as text: NaN is not equal to itself.
                let members: Vec<_> = obj.members().collect();
                assert_eq!(
                    alloc::format!("{members:?}"),
                    alloc::format!("{seen:?}"),
                    "{doc:?}"
                );
            }
            Err(e) => assert!(scanned.is_err(), "{doc:?}: {e:?}"),
        }
    }

    #[test]
    fn scan_object_matches_parse_object() {
        let docs = [
            "{}",
            " { } ",
            "{\"a\":1}",
            "\u{feff}{\"a\":1}",
            "{\"a\" : [1, {\"b\": []}], \"a\": -Infinity, \"c\": NaN, \"d\": 1e400}",
            "{\"k\\u0065y\": \"v\\n\", \"x\": -0, \"y\": 123456789012345678901234567890}",
            "{\"t\": true, \"f\": false, \"n\": null, \"s\": \"\u{e9}\"}",
            "[1]",
            "1",
            "{\"a\":1,}",
            "{\"a\":01}",
            "{\"a\":1I}",
            "{\"a\":-}",
            "{\"a\":[1,]}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":1} x",
            "{\"a\" 1}",
            "{1:1}",
            "{\"a\":tru}",
            "{\"a\":{\"b\":1}",
        ];
        for d in docs {
            same_as_parse_object(d);
        }
        let deep_ok = alloc::format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        same_as_parse_object(&deep_ok);
        assert!(scan_object(deep_ok.as_bytes(), Encoding::Utf8, |_, _| {}).is_ok());
        let too_deep = alloc::format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        same_as_parse_object(&too_deep);
        assert!(scan_object(too_deep.as_bytes(), Encoding::Utf8, |_, _| {}).is_err());
        let long = alloc::format!("{{\"a\":{}}}", "9".repeat(MAX_INT_DIGITS + 1));
        same_as_parse_object(&long);
        assert!(scan_object(long.as_bytes(), Encoding::Utf8, |_, _| {}).is_err());
    }

    #[test]
    fn accepts_what_python_accepts() {
        let ok = [
            "{}",
            " {\"a\" : 1 } ",
            "[]",
            "[1, 2.5, -3e2, \"x\", null, true, false, NaN, Infinity, -Infinity]",
            "\"\\ud800\"",
            "0",
            "-0",
            "1E+5",
            "{\"a\":{\"b\":[{}]}}",
            "\u{feff}{}",
            "\"\x7f\"",
        ];
        for s in ok {
            assert!(p(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn rejects_what_python_rejects() {
        let bad = [
            "",
            " ",
            "{",
            "}",
            "{,}",
            "{\"a\":1,}",
            "[1,]",
            "[,1]",
            "01",
            "1.",
            ".5",
            "1e",
            "+1",
            "-",
            "nul",
            "nan",
            "-NaN",
            "infinity",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\t\"",
            "{1:2}",
            "{\"a\" 1}",
            "[1 2]",
            "1 2",
            "\x0b{}",
            "{}\x0c",
            "\u{feff}\u{feff}{}",
            "'a'",
            "[1]]",
        ];
        for s in bad {
            assert!(p(s).is_err(), "{s:?}");
        }
        // Invalid UTF-8, overlong, beyond U+10FFFF.
        for raw in [
            &b"\"\xff\""[..],
            b"\"\xc0\x80\"",
            b"\"\xf4\x90\x80\x80\"",
            b"\"\xe0\x80\x80\"",
        ] {
            assert!(parse(raw, Encoding::Utf8).is_err());
        }
        // UTF-16 documents are refused.
        assert!(parse(b"\xff\xfe{\x00}\x00", Encoding::Utf8).is_err());
        assert!(parse(b"\x00{\x00}", Encoding::Utf8).is_err());
    }

    #[test]
    fn raw_surrogates_pass_like_surrogatepass() {
        let v = parse(b"\"\xed\xa0\x80\"", Encoding::Utf8).unwrap();
        let JsonValue::Str(s) = v else { panic!() };
        assert_eq!(s.chars().collect::<Vec<_>>(), [0xD800]);
        assert!(s.to_inline().is_none());
        assert!(s.has_lone_surrogate());
        // Raw-encoded surrogate halves are NOT joined (escaped ones are).
        let v = parse(b"\"\xed\xa0\xbd\xed\xb8\x80\"", Encoding::Utf8).unwrap();
        let JsonValue::Str(s) = v else { panic!() };
        assert_eq!(s.chars().collect::<Vec<_>>(), [0xD83D, 0xDE00]);
        let v = p("\"\\ud83d\\ude00\"").unwrap();
        let JsonValue::Str(s) = v else { panic!() };
        assert_eq!(s.chars().collect::<Vec<_>>(), [0x1F600]);
        assert!(s.eq_str("\u{1F600}"));
        // A high surrogate followed by a non-low escape stays lone.
        let v = p("\"\\ud83d\\u0041\"").unwrap();
        let JsonValue::Str(s) = v else { panic!() };
        assert_eq!(s.chars().collect::<Vec<_>>(), [0xD83D, 0x41]);
    }

    #[test]
    fn depth_limit() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(p(&ok).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(p(&deep), Err(JsonError::TooDeep));
        let mixed = "{\"a\":".repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
        assert_eq!(p(&mixed), Err(JsonError::TooDeep));
    }

    #[test]
    fn int_digit_limit() {
        let ok = "9".repeat(MAX_INT_DIGITS);
        assert!(matches!(p(&ok), Ok(JsonValue::BigInt(_))));
        let too_long = "9".repeat(MAX_INT_DIGITS + 1);
        assert_eq!(p(&too_long), Err(JsonError::IntTooLong));
        let float_ok = "9".repeat(MAX_INT_DIGITS + 1) + ".0";
        assert!(matches!(p(&float_ok), Ok(JsonValue::Float(_))));
    }

    #[test]
    fn numbers() {
        assert_eq!(p("9223372036854775807"), Ok(JsonValue::Int(i64::MAX)));
        assert_eq!(p("-9223372036854775808"), Ok(JsonValue::Int(i64::MIN)));
        let Ok(JsonValue::BigInt(b)) = p("-9223372036854775809") else {
            panic!()
        };
        assert!(b.negative());
        assert_eq!(b.digits(), b"9223372036854775809");
        assert_eq!(p("-0"), Ok(JsonValue::Int(0)));
        assert_eq!(p("1e400"), Ok(JsonValue::Float(f64::INFINITY)));
        assert_eq!(p("2.5"), Ok(JsonValue::Float(2.5)));
        assert!(matches!(p("NaN"), Ok(JsonValue::Float(f)) if f.is_nan()));
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let o = parse_object(b"{\"a\":1,\"b\":2,\"a\":3}", Encoding::Utf8).unwrap();
        assert_eq!(o.get("a"), Some(JsonValue::Int(3)));
        assert_eq!(o.members().count(), 3);
        assert!(o.contains_key("b"));
        assert!(!o.contains_key("c"));
    }

    #[test]
    fn escaped_keys_compare_decoded() {
        let o = parse_object(b"{\"\\u0061lg\":\"HS\\u0032\\u00356\"}", Encoding::Utf8).unwrap();
        let Some(JsonValue::Str(s)) = o.get("alg") else {
            panic!()
        };
        assert!(s.eq_str("HS256"));
        assert!(!s.eq_str("HS25"));
        assert_eq!(s.to_string().as_deref(), Some("HS256"));
    }

    #[test]
    fn latin1_mode() {
        let o = parse_object(b"{\"k\":\"caf\xe9\"}", Encoding::Latin1).unwrap();
        let Some(JsonValue::Str(s)) = o.get("k") else {
            panic!()
        };
        assert!(s.eq_str("caf\u{e9}"));
        assert!(parse_object(b"{\"k\":\"caf\xe9\"}", Encoding::Utf8).is_err());
        // No BOM stripping in Latin-1 mode.
        assert!(parse(b"\xef\xbb\xbf{}", Encoding::Latin1).is_err());
    }

    #[test]
    fn nested_iteration() {
        let o = parse_object(b"{\"a\":[1,{\"b\":\"]}\"},[]],\"c\":{}}", Encoding::Utf8).unwrap();
        let Some(JsonValue::Array(a)) = o.get("a") else {
            panic!()
        };
        let items: Vec<_> = a.iter().collect();
        assert_eq!(items.len(), 3);
        let JsonValue::Object(inner) = items[1] else {
            panic!()
        };
        let Some(JsonValue::Str(s)) = inner.get("b") else {
            panic!()
        };
        assert!(s.eq_str("]}"));
        assert!(matches!(o.get("c"), Some(JsonValue::Object(c)) if c.is_empty()));
    }

    #[test]
    fn for_each_member_reports_all() {
        let mut seen = Vec::new();
        let r: Result<(), JsonError> = for_each_member(
            b"{\"_auth_user_id\":\"1\",\"x\":2}",
            Encoding::Utf8,
            |k, _| {
                seen.push(k.to_string().unwrap());
                Ok(())
            },
        );
        assert!(r.is_ok());
        assert_eq!(seen, ["_auth_user_id", "x"]);
        let r: Result<(), JsonError> = for_each_member(b"[1]", Encoding::Utf8, |_, _| Ok(()));
        assert_eq!(r, Err(JsonError::NotAnObject));
    }

    #[test]
    fn python_float_repr() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (1750000000.5, "1750000000.5"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for &(f, want) in cases {
            let mut s = String::new();
            write_py_float(&mut s, f).unwrap();
            assert_eq!(s, want, "{f:?}");
        }
    }

    #[test]
    fn python_string_dumps() {
        let mut s = String::new();
        write_py_str(
            &mut s,
            "a\"\\\n\u{7f}\u{e9}\u{1F600}\u{1}".chars().map(u32::from),
        );
        assert_eq!(s, "\"a\\\"\\\\\\n\\u007f\\u00e9\\ud83d\\ude00\\u0001\"");
    }
}
