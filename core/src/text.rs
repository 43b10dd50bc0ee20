//! A short string stored inline (no heap): claim values, user ids and
//! subprotocols copied out of a request so decisions stay plain values.

use core::fmt;

/// A short string stored inline (no heap), for claim values copied out of a
/// token's payload. Holds up to [`InlineStr::CAPACITY`] bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineStr {
    len: u16,
    buf: [u8; InlineStr::CAPACITY],
}

impl InlineStr {
    /// Capacity in bytes.
    pub const CAPACITY: usize = 256;

    /// The empty string.
    pub(crate) const EMPTY: InlineStr = InlineStr {
        len: 0,
        buf: [0; InlineStr::CAPACITY],
    };

    /// Replaces the contents with `bytes` (valid UTF-8) if they fit; on
    /// `false` the contents are unspecified.
    #[inline]
    pub(crate) fn set_bytes(&mut self, bytes: &[u8]) -> bool {
        let (Some(dst), Ok(len)) = (self.buf.get_mut(..bytes.len()), u16::try_from(bytes.len()))
        else {
            return false;
        };
        dst.copy_from_slice(bytes);
        self.len = len;
        true
    }

    /// Copies `s` if it fits.
    pub fn new(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        let mut buf = [0u8; Self::CAPACITY];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(InlineStr {
            len: u16::try_from(bytes.len()).ok()?,
            buf,
        })
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        let len = usize::from(self.len).min(Self::CAPACITY);
        self.buf
            .get(..len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_str().len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl core::ops::Deref for InlineStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for InlineStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for InlineStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for InlineStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for InlineStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for InlineStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
