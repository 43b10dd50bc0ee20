//! Routes: path patterns in Django's `path()` syntax and what each route requires.
//!
//! A pattern is a sequence of `/`-separated segments; a segment is either
//! literal text or one parameter `<name>` / `<conv:name>` with the converters
//! `str` (default, `[^/]+`), `int` (`[0-9]+`), `slug` (`[-a-zA-Z0-9_]+`) and
//! `uuid` (lowercase hyphenated). Segments of the request path are compared
//! after percent-decoding (as the ASGI `path` Channels routes on is decoded).
//! Matching never allocates unless the path contains `%`.

use crate::py::percent::{unquote, unquoted_eq};
use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Largest number of parameters one route pattern may have.
pub const MAX_PARAMS: usize = 4;

/// What a route requires of the principal.
///
/// In TOML / JSON: `"anonymous"`, `"authenticated"`, `"staff"`, `"superuser"`,
/// `{ owner = "id" }`, `{ member = "id" }` (the value names a route parameter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Requirement {
    /// Anyone. An invalid credential still connects as anonymous unless the route is `strict`.
    Anonymous,
    /// Any authenticated user.
    Authenticated,
    /// A user with `is_staff`.
    Staff,
    /// A user with `is_superuser`.
    Superuser,
    /// A user the host says owns the resource named by this route parameter.
    Owner(String),
    /// A user the host says is a member of the resource named by this route parameter.
    Member(String),
}

impl Requirement {
    /// True for [`Requirement::Anonymous`].
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Requirement::Anonymous)
    }
}

/// How a route parameter's value must look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Converter {
    /// `str`: any non-empty text without `/`.
    Str,
    /// `int`: ASCII digits.
    Int,
    /// `slug`: ASCII letters, digits, `-`, `_`.
    Slug,
    /// `uuid`: lowercase hyphenated UUID.
    Uuid,
}

impl Converter {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "str" => Some(Converter::Str),
            "int" => Some(Converter::Int),
            "slug" => Some(Converter::Slug),
            "uuid" => Some(Converter::Uuid),
            _ => None,
        }
    }

    fn accepts(self, value: &str) -> bool {
        if value.is_empty() || value.contains('/') {
            return false;
        }
        match self {
            Converter::Str => true,
            Converter::Int => value.bytes().all(|b| b.is_ascii_digit()),
            Converter::Slug => value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            Converter::Uuid => {
                let b = value.as_bytes();
                b.len() == 36
                    && b.iter().enumerate().all(|(i, c)| {
                        if matches!(i, 8 | 13 | 18 | 23) {
                            *c == b'-'
                        } else {
                            c.is_ascii_digit() || (b'a'..=b'f').contains(c)
                        }
                    })
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param { name: String, conv: Converter },
}

/// Why a route pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern does not start with `/`.
    NoLeadingSlash,
    /// A `<` without a matching `>` or a parameter mixed with literal text in one segment.
    BadParameter,
    /// An unknown converter (`<foo:name>`).
    UnknownConverter,
    /// Two parameters share a name.
    DuplicateParameter,
    /// More than [`MAX_PARAMS`] parameters.
    TooManyParameters,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatternError::NoLeadingSlash => "a route pattern must start with '/'",
            PatternError::BadParameter => {
                "a parameter must fill a whole segment, written <name> or <converter:name>"
            }
            PatternError::UnknownConverter => "unknown converter (use str, int, slug or uuid)",
            PatternError::DuplicateParameter => "two parameters share a name",
            PatternError::TooManyParameters => "a route may have at most 4 parameters",
        })
    }
}

impl core::error::Error for PatternError {}

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Parses `/ws/chat/<room>/`-style patterns.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(PatternError::NoLeadingSlash);
        };
        let mut segments = Vec::new();
        let mut nparams = 0usize;
        for seg in rest.split('/') {
            if seg.contains('<') || seg.contains('>') {
                let inner = seg
                    .strip_prefix('<')
                    .and_then(|s| s.strip_suffix('>'))
                    .ok_or(PatternError::BadParameter)?;
                if inner.contains('<') || inner.contains('>') {
                    return Err(PatternError::BadParameter);
                }
                let (conv, name) = match inner.split_once(':') {
                    Some((c, n)) => (
                        Converter::from_name(c).ok_or(PatternError::UnknownConverter)?,
                        n,
                    ),
                    None => (Converter::Str, inner),
                };
                let ident_ok = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !name.as_bytes().first().is_some_and(|b| b.is_ascii_digit());
                if !ident_ok {
                    return Err(PatternError::BadParameter);
                }
                if segments
                    .iter()
                    .any(|s| matches!(s, Segment::Param { name: n, .. } if n == name))
                {
                    return Err(PatternError::DuplicateParameter);
                }
                nparams = nparams.saturating_add(1);
                if nparams > MAX_PARAMS {
                    return Err(PatternError::TooManyParameters);
                }
                segments.push(Segment::Param {
                    name: name.into(),
                    conv,
                });
            } else {
                segments.push(Segment::Literal(seg.into()));
            }
        }
        Ok(PathPattern { segments })
    }

    /// Index of the parameter called `name`.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.param_names().position(|n| n == name)
    }

    /// Parameter names, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param { name, .. } => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Matches a raw (percent-encoded) request path; returns the parameter spans.
    fn matches(&self, path: &str) -> Option<Spans> {
        let rest = path.strip_prefix('/')?;
        let mut spans = Spans::default();
        let mut parts = rest.split('/');
        let mut offset = 1usize;
        for seg in &self.segments {
            let part = parts.next()?;
            match seg {
                Segment::Literal(lit) => {
                    if !unquoted_eq(part, lit) {
                        return None;
                    }
                }
                Segment::Param { conv, .. } => {
                    if !conv.accepts(&unquote(part)) {
                        return None;
                    }
                    spans.push(offset, part.len())?;
                }
            }
            offset = offset.checked_add(part.len())?.checked_add(1)?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some(spans)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Spans {
    n: u8,
    spans: [(u32, u32); MAX_PARAMS],
}

impl Spans {
    fn push(&mut self, start: usize, len: usize) -> Option<()> {
        let slot = self.spans.get_mut(usize::from(self.n))?;
        *slot = (u32::try_from(start).ok()?, u32::try_from(len).ok()?);
        // `n` indexed a slot, so it is below MAX_PARAMS.
        self.n = self.n.saturating_add(1);
        Some(())
    }
}

/// One configured route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    name: String,
    pattern: PathPattern,
    requirement: Requirement,
    /// For Owner / Member: the index of the parameter that names the resource.
    resource_param: Option<usize>,
    strict: bool,
    auth_message: Option<bool>,
}

/// Why a route was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The path pattern is invalid.
    Pattern(PatternError),
    /// An Owner / Member requirement names a parameter the pattern does not have.
    UnknownParameter,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Pattern(e) => fmt::Display::fmt(e, f),
            RouteError::UnknownParameter => {
                f.write_str("the requirement names a parameter the path pattern does not have")
            }
        }
    }
}

impl core::error::Error for RouteError {}

impl Route {
    /// A route named `name` for `pattern` with `requirement`.
    pub fn new(name: &str, pattern: &str, requirement: Requirement) -> Result<Self, RouteError> {
        let pattern = PathPattern::parse(pattern).map_err(RouteError::Pattern)?;
        let resource_param = match &requirement {
            Requirement::Owner(p) | Requirement::Member(p) => {
                Some(pattern.param_index(p).ok_or(RouteError::UnknownParameter)?)
            }
            _ => None,
        };
        Ok(Route {
            name: name.into(),
            pattern,
            requirement,
            resource_param,
            strict: false,
            auth_message: None,
        })
    }

    /// Strict: an invalid credential on an anonymous route closes with 4401
    /// instead of connecting as anonymous.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Whether a client without a credential may authenticate with its first
    /// message (`None`: as the carriers list says).
    pub fn auth_message(mut self, allowed: Option<bool>) -> Self {
        self.auth_message = allowed;
        self
    }

    /// The route's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The route's requirement.
    pub fn requirement(&self) -> &Requirement {
        &self.requirement
    }
    /// Whether the route is strict.
    pub fn is_strict(&self) -> bool {
        self.strict
    }
    /// The per-route first-message setting.
    pub fn auth_message_setting(&self) -> Option<bool> {
        self.auth_message
    }
    /// The parsed pattern.
    pub fn pattern(&self) -> &PathPattern {
        &self.pattern
    }
    pub(crate) fn resource_param(&self) -> Option<usize> {
        self.resource_param
    }
}

/// The configured routes, tried in order; the first match wins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// Routes, tried in the given order.
    pub fn new(routes: Vec<Route>) -> Self {
        Routes { routes }
    }

    /// The route at `index`.
    pub fn get(&self, index: usize) -> Option<&Route> {
        self.routes.get(index)
    }

    /// All routes.
    pub fn iter(&self) -> core::slice::Iter<'_, Route> {
        self.routes.iter()
    }

    /// The first route whose pattern matches the raw request path.
    pub fn find(&self, path: &str) -> Option<RouteMatch> {
        self.routes.iter().enumerate().find_map(|(i, r)| {
            let spans = r.pattern.matches(path)?;
            Some(RouteMatch {
                index: u16::try_from(i).ok()?,
                spans,
            })
        })
    }
}

/// Which route matched and where its parameters are in the request path.
/// Holds byte spans into the raw path (no allocation); read values with
/// [`RouteMatch::raw_param`] / [`RouteMatch::param`] and the same path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch {
    index: u16,
    spans: Spans,
}

impl RouteMatch {
    /// Index of the route in the configuration (`routes[i]`).
    pub fn index(&self) -> usize {
        usize::from(self.index)
    }

    /// Number of parameters captured.
    pub fn param_count(&self) -> usize {
        usize::from(self.spans.n)
    }

    /// The `i`-th parameter as it appears in `path` (still percent-encoded).
    /// `path` must be the path the match was made on.
    pub fn raw_param<'p>(&self, path: &'p str, i: usize) -> Option<&'p str> {
        if i >= self.param_count() {
            return None;
        }
        let (start, len) = *self.spans.spans.get(i)?;
        let start = usize::try_from(start).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        path.get(start..end)
    }

    /// The `i`-th parameter, percent-decoded.
    pub fn param<'p>(&self, path: &'p str, i: usize) -> Option<Cow<'p, str>> {
        self.raw_param(path, i).map(unquote)
    }

    /// The parameter called `name` of `route` (the route this match names), decoded.
    pub fn param_by_name<'p>(
        &self,
        route: &Route,
        path: &'p str,
        name: &str,
    ) -> Option<Cow<'p, str>> {
        self.param(path, route.pattern.param_index(name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn routes() -> Routes {
        Routes::new(vec![
            Route::new("chat", "/ws/chat/<room>/", Requirement::Anonymous).unwrap(),
            Route::new("admin", "/ws/admin/chat/", Requirement::Staff).unwrap(),
            Route::new(
                "receipt",
                "/ws/receipts/<int:id>/",
                Requirement::Owner("id".into()),
            )
            .unwrap(),
            Route::new("u", "/ws/u/<uuid:id>/<slug:s>", Requirement::Authenticated).unwrap(),
        ])
    }

    #[test]
    fn matching_table() {
        let r = routes();
        type Row<'a> = (&'a str, Option<(usize, &'a [&'a str])>);
        let rows: &[Row<'_>] = &[
            ("/ws/chat/lobby/", Some((0, &["lobby"]))),
            ("/ws/chat/a%20b/", Some((0, &["a b"]))),
            ("/ws/chat/a%2Fb/", None),
            ("/ws/chat//", None),
            ("/ws/chat/lobby", None),
            ("/ws/chat/lobby/x/", None),
            ("/ws/admin/chat/", Some((1, &[]))),
            ("/ws/%61dmin/chat/", Some((1, &[]))),
            ("/ws/admin/chat", None),
            ("/ws/receipts/42/", Some((2, &["42"]))),
            ("/ws/receipts/4x/", None),
            (
                "/ws/u/123e4567-e89b-12d3-a456-426614174000/my-slug",
                Some((3, &["123e4567-e89b-12d3-a456-426614174000", "my-slug"])),
            ),
            ("/ws/u/123E4567-e89b-12d3-a456-426614174000/my-slug", None),
            ("", None),
            ("ws/chat/x/", None),
        ];
        for (path, want) in rows {
            let got = r.find(path);
            match want {
                None => assert!(got.is_none(), "{path}"),
                Some((idx, params)) => {
                    let m = got.unwrap_or_else(|| panic!("{path} should match"));
                    assert_eq!(m.index(), *idx, "{path}");
                    assert_eq!(m.param_count(), params.len());
                    for (i, p) in params.iter().enumerate() {
                        assert_eq!(m.param(path, i).as_deref(), Some(*p));
                    }
                }
            }
        }
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(PathPattern::parse("ws/"), Err(PatternError::NoLeadingSlash));
        assert_eq!(
            PathPattern::parse("/a<b>/"),
            Err(PatternError::BadParameter)
        );
        assert_eq!(
            PathPattern::parse("/<x:b>/"),
            Err(PatternError::UnknownConverter)
        );
        assert_eq!(
            PathPattern::parse("/<a>/<a>/"),
            Err(PatternError::DuplicateParameter)
        );
        assert_eq!(
            PathPattern::parse("/<a>/<b>/<c>/<d>/<e>/"),
            Err(PatternError::TooManyParameters)
        );
        assert_eq!(
            Route::new("x", "/a/<id>/", Requirement::Owner("room".into())),
            Err(RouteError::UnknownParameter)
        );
    }
}
