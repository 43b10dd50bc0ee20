//! Percent-decoding as Python's `urllib.parse.unquote` (UTF-8, `errors="replace"`)
//! and the query-string rules of `parse_qs` / `parse_qsl`.
//!
//! Nothing is allocated when the input has nothing to decode.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

// Each arm subtracts its own range's first byte: the results are 0..16.
#[allow(clippy::arithmetic_side_effects)]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `urllib.parse.unquote(s)`: `%XX` (two hex digits) becomes a byte, any
/// other `%` stays literal; each run of ASCII characters is decoded as UTF-8
/// with invalid sequences replaced by U+FFFD, non-ASCII characters pass through.
pub(crate) fn unquote(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(unquote_owned(s, false))
}

/// `unquote(s.replace("+", " "))`, as `parse_qsl` decodes names and values.
pub(crate) fn unquote_plus(s: &str) -> Cow<'_, str> {
    if !s.contains('%') && !s.contains('+') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(unquote_owned(s, true))
}

// `i` indexes `bytes` and only steps past bytes that exist (`i + 2` was
// read before `i += 3`); `h * 16 + l` is at most 255.
#[allow(clippy::arithmetic_side_effects)]
fn unquote_owned(s: &str, plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run: Vec<u8> = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        if b >= 0x80 {
            // Flush the ASCII run, then copy the non-ASCII character as is.
            flush_run(&mut run, &mut out);
            let start = i;
            i += 1;
            while bytes.get(i).is_some_and(|c| (0x80..0xC0).contains(c)) {
                i += 1;
            }
            if let Some(ch) = s.get(start..i) {
                out.push_str(ch);
            }
            continue;
        }
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_val);
            let lo = bytes.get(i + 2).copied().and_then(hex_val);
            if let (Some(h), Some(l)) = (hi, lo) {
                run.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        run.push(if plus && b == b'+' { b' ' } else { b });
        i += 1;
    }
    flush_run(&mut run, &mut out);
    out
}

fn flush_run(run: &mut Vec<u8>, out: &mut String) {
    if !run.is_empty() {
        out.push_str(&String::from_utf8_lossy(run));
        run.clear();
    }
}

/// Compares `raw` percent-decoded (as [`unquote`]) with `expected` without allocating
/// when `raw` has no `%`.
pub(crate) fn unquoted_eq(raw: &str, expected: &str) -> bool {
    match unquote(raw) {
        Cow::Borrowed(b) => b == expected,
        Cow::Owned(o) => o == expected,
    }
}

/// The first value of `name` in a query string, as
/// `parse_qs(query).get(name, [None])[0]` returns it: pairs split on `&`,
/// a pair without `=` or with an empty value is skipped (`keep_blank_values=False`),
/// names and values are decoded with `+` as space.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    for pair in query.split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        let key_matches = match unquote_plus(k) {
            Cow::Borrowed(b) => b == name,
            Cow::Owned(o) => o == name,
        };
        if key_matches {
            return Some(unquote_plus(v));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_matches_python() {
        // Expected values computed with Python 3.11 urllib.parse.unquote.
        let rows: &[(&str, &str)] = &[
            ("abc", "abc"),
            ("a%20b", "a b"),
            ("%zz", "%zz"),
            ("%4", "%4"),
            ("%41%42", "AB"),
            ("%C3%A9", "é"),
            ("%C3", "\u{fffd}"),
            ("%C3é%A9", "\u{fffd}é\u{fffd}"),
            ("a+b", "a+b"),
            ("%", "%"),
        ];
        for (raw, want) in rows {
            assert_eq!(unquote(raw), *want, "{raw}");
        }
        assert!(matches!(unquote("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn query_param_like_parse_qs() {
        let rows: &[(&str, &str, Option<&str>)] = &[
            ("token=abc", "token", Some("abc")),
            ("a=1&token=x.y.z", "token", Some("x.y.z")),
            ("token=&token=second", "token", Some("second")),
            ("token", "token", None),
            ("token=a+b", "token", Some("a b")),
            ("tok%65n=v", "token", Some("v")),
            ("token=a%2Eb", "token", Some("a.b")),
            ("token=1;token=2", "token", Some("1;token=2")),
            ("x=1", "token", None),
            ("token=first&token=second", "token", Some("first")),
        ];
        for (q, name, want) in rows {
            assert_eq!(query_param(q, name).as_deref(), *want, "{q}");
        }
        assert!(matches!(
            query_param("token=abc", "token"),
            Some(Cow::Borrowed(_))
        ));
    }
}
