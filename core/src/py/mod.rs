//! Python-exact primitives the Django checks are built on: `json.loads` /
//! `json.dumps`, `int()`, `base64.urlsafe_b64decode`, zlib level 6,
//! `hmac.compare_digest` and `urllib.parse.unquote`. Nothing here knows about tokens or sessions.

pub(crate) mod b64;
pub(crate) mod compare;
pub(crate) mod deflate;
pub(crate) mod json;
pub mod percent;
pub mod pickle;
pub(crate) mod pyint;
