//! `django.http.parse_cookie`, as Channels' `CookieMiddleware` applies it.
//!
//! STUB: public surface fixed; bodies are being filled in.

/// Iterator over `(name, value)` pairs of one `Cookie` header, in order,
/// with Django's splitting, stripping and unquoting rules. Values that need
/// unescaping are yielded with the escapes still present (see [`cookie_value`]).
#[derive(Debug, Clone)]
pub struct CookiePairs<'a> {
    rest: &'a str,
}

impl<'a> Iterator for CookiePairs<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        let _ = self.rest;
        None
    }
}

/// Pairs of one Cookie header value.
pub fn parse_cookie_pairs(header: &str) -> CookiePairs<'_> {
    CookiePairs { rest: header }
}

/// The value of cookie `name` in one Cookie header (the last occurrence wins,
/// surrounding quotes removed, backslash escapes decoded).
pub fn cookie_value(header: &str, name: &str) -> Option<alloc::borrow::Cow<'static, str>> {
    let _ = (header, name);
    None
}
