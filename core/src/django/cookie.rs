//! `django.http.parse_cookie`, as Channels' `CookieMiddleware` applies it.
//!
//! Channels parses only the **first** `Cookie` header of a request, decoded
//! as Latin-1 ([`latin1_decode`]); which header that is, is the caller's
//! business. Django's own ASGI HTTP handler instead joins repeated headers
//! with `","` before parsing, which folds the later headers into the value of
//! the last cookie of the first one.
//!
//! The rules, per `;`-separated chunk: split at the first `=` (no `=`: the
//! name is `""`), strip both sides of Python whitespace (`str.strip()`), skip
//! the chunk when both are empty, and unquote the value with
//! `http.cookies._unquote`. For a repeated name the last one wins.

use alloc::borrow::Cow;
use alloc::string::String;

/// Python's `str.isspace()`.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// `bytes.decode("latin1")`: each byte is one character (U+0000–U+00FF).
/// Borrows when the bytes are ASCII.
pub fn latin1_decode(bytes: &[u8]) -> Cow<'_, str> {
    match core::str::from_utf8(bytes) {
        Ok(s) if s.is_ascii() => Cow::Borrowed(s),
        _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// `http.cookies._unquote`: a value of at least two characters that starts
/// and ends with `"` loses the quotes, and inside it `\ooo` (first digit
/// 0–3, then two octal digits) becomes that character and `\x` becomes `x`
/// (for any `x` but a newline). Anything else is returned unchanged.
pub fn unquote_cookie(value: &str) -> Cow<'_, str> {
    let Some(inner) = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return Cow::Borrowed(value);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(pos) = rest.find('\\') {
        let (before, from_backslash) = rest.split_at(pos);
        out.push_str(before);
        let after = from_backslash.get(1..).unwrap_or_default();
        let b = after.as_bytes();
        let octal = match (b.first(), b.get(1), b.get(2)) {
            (Some(b'0'..=b'3'), Some(b'0'..=b'7'), Some(b'0'..=b'7')) => b
                .get(..3)
                .and_then(|d| core::str::from_utf8(d).ok())
                .and_then(|d| u32::from_str_radix(d, 8).ok()),
            _ => None,
        };
        if let Some(code) = octal {
            out.extend(char::from_u32(code));
            rest = after.get(3..).unwrap_or_default();
            continue;
        }
        match after.chars().next() {
            Some(c) if c != '\n' => {
                out.push(c);
                rest = after.get(c.len_utf8()..).unwrap_or_default();
            }
            _ => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Chunks of one header as `(name, raw value)`: split, stripped, empty pairs
/// skipped, the value not yet unquoted.
#[derive(Debug, Clone)]
struct RawPairs<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for RawPairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.rest?;
            let chunk = match rest.split_once(';') {
                Some((chunk, tail)) => {
                    self.rest = Some(tail);
                    chunk
                }
                None => {
                    self.rest = None;
                    rest
                }
            };
            let (name, value) = chunk.split_once('=').unwrap_or(("", chunk));
            let (name, value) = (py_strip(name), py_strip(value));
            if !name.is_empty() || !value.is_empty() {
                return Some((name, value));
            }
        }
    }
}

/// Iterator over `(name, value)` pairs of one `Cookie` header, in order,
/// with Django's splitting, stripping and unquoting rules. Repeated names
/// are all yielded; Django keeps the last one.
#[derive(Debug, Clone)]
pub struct CookiePairs<'a> {
    raw: RawPairs<'a>,
}

impl<'a> Iterator for CookiePairs<'a> {
    type Item = (&'a str, Cow<'a, str>);
    fn next(&mut self) -> Option<Self::Item> {
        self.raw
            .next()
            .map(|(name, value)| (name, unquote_cookie(value)))
    }
}

/// Pairs of one Cookie header value.
pub fn parse_cookie_pairs(header: &str) -> CookiePairs<'_> {
    CookiePairs {
        raw: RawPairs { rest: Some(header) },
    }
}

/// The value of cookie `name` in one Cookie header (the last occurrence wins,
/// surrounding quotes removed, backslash escapes decoded), as
/// `parse_cookie(header).get(name)`.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<Cow<'a, str>> {
    RawPairs { rest: Some(header) }
        .filter(|&(n, _)| n == name)
        .last()
        .map(|(_, value)| unquote_cookie(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn parse(h: &str) -> Vec<(String, String)> {
        parse_cookie_pairs(h)
            .map(|(k, v)| (k.into(), v.into_owned()))
            .collect()
    }

    #[test]
    fn parse_cookie_table() {
        // (header, pairs as Django's parse_cookie yields them, before dict folding)
        let rows: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("a=b", &[("a", "b")]),
            (" a = b ; c=d", &[("a", "b"), ("c", "d")]),
            ("a=b=c", &[("a", "b=c")]),
            ("novalue", &[("", "novalue")]),
            (";;  ; =", &[]),
            ("=x", &[("", "x")]),
            ("k=", &[("k", "")]),
            ("a=\"q\"", &[("a", "q")]),
            ("a=\"", &[("a", "\"")]),
            ("a=\"\"", &[("a", "")]),
            ("a=\"x\\\"y\"", &[("a", "x\"y")]),
            ("a=\"\\101\\42\"", &[("a", "A42")]),
            ("a=\"\\400\"", &[("a", "400")]),
            ("a=x\\101", &[("a", "x\\101")]),
            ("a=\"\\\"", &[("a", "\\")]),
            ("a=\"x\\\ny\"", &[("a", "x\\\ny")]),
            ("a=\"\\377\"", &[("a", "\u{ff}")]),
            ("\u{1c}a\u{a0}=\u{85}b\u{3000}", &[("a", "b")]),
            ("a=b,c=d", &[("a", "b,c=d")]),
        ];
        for (header, want) in rows {
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect();
            assert_eq!(parse(header), want, "{header:?}");
        }
    }

    #[test]
    fn last_duplicate_wins() {
        assert_eq!(
            cookie_value("sessionid=a; x=1; sessionid=\"b\"", "sessionid").as_deref(),
            Some("b")
        );
        assert_eq!(cookie_value("x=1", "sessionid"), None);
        assert_eq!(cookie_value("abc", "").as_deref(), Some("abc"));
    }

    #[test]
    fn latin1() {
        assert_eq!(latin1_decode(b"a=b"), "a=b");
        assert_eq!(latin1_decode(b"a=\xe9\xa0"), "a=\u{e9}\u{a0}");
    }
}
