//! A short string stored inline (no heap): claim values, user ids and
//! subprotocols copied out of a request so decisions stay plain values.

use core::fmt;

/// A short string stored inline (no heap), for claim values copied out of a
/// token's payload. Holds up to [`InlineStr::CAPACITY`] bytes.
#[derive(Clone, Copy)]
pub struct InlineStr(Repr);

/// Strings up to [`SHORT`] bytes (every user id, `jti` and password hash
/// SimpleJWT writes) take the short form, which is built without writing
/// the long form's whole buffer: copying a full buffer for every claim of
/// every accepted token was measured on the verify path.
#[derive(Clone, Copy)]
enum Repr {
    Short {
        len: u8,
        buf: [u8; SHORT],
    },
    Long {
        len: u16,
        buf: [u8; InlineStr::CAPACITY],
    },
}

/// The short form's capacity: the form is 64 bytes with its tag and length.
const SHORT: usize = 62;

impl InlineStr {
    /// Capacity in bytes.
    pub const CAPACITY: usize = 256;

    /// `bytes` (valid UTF-8) if they fit.
    #[inline(always)]
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if let Ok(len @ 0..=62) = u8::try_from(bytes.len()) {
            let mut buf = [0u8; SHORT];
            buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
            return Some(InlineStr(Repr::Short { len, buf }));
        }
        let mut buf = [0u8; Self::CAPACITY];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(InlineStr(Repr::Long {
            len: u16::try_from(bytes.len()).ok()?,
            buf,
        }))
    }

    /// The empty string, built in place (a large constant is copied whole).
    #[inline(always)]
    pub(crate) fn empty() -> InlineStr {
        InlineStr(Repr::Short {
            len: 0,
            buf: [0; SHORT],
        })
    }

    /// Replaces the contents with `bytes` (valid UTF-8) if they fit; on
    /// `false` the contents are unspecified. Written in place when both
    /// are short.
    #[inline]
    pub(crate) fn set_bytes(&mut self, bytes: &[u8]) -> bool {
        if let Repr::Short { len, buf } = &mut self.0 {
            if let (Some(dst), Ok(n @ 0..=62)) =
                (buf.get_mut(..bytes.len()), u8::try_from(bytes.len()))
            {
                dst.copy_from_slice(bytes);
                *len = n;
                return true;
            }
        }
        match Self::from_bytes(bytes) {
            Some(s) => {
                *self = s;
                true
            }
            None => false,
        }
    }

    /// Copies `s` if it fits.
    pub fn new(s: &str) -> Option<Self> {
        Self::from_bytes(s.as_bytes())
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        let bytes = match &self.0 {
            Repr::Short { len, buf } => buf.get(..usize::from(*len)),
            Repr::Long { len, buf } => buf.get(..usize::from(*len)),
        };
        bytes
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_str().len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
}

impl PartialEq for InlineStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for InlineStr {}

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

/// `a == b`, without a call to `memcmp` when they have at most 64 bytes:
/// two overlapping fixed-size chunks (the first and the last) are compared
/// inline. Hot path: the token type and the header of every accepted token,
/// where the call was measured.
#[inline(always)]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    #[inline(always)]
    fn ends_eq<const N: usize>(a: &[u8], b: &[u8]) -> bool {
        a.first_chunk::<N>() == b.first_chunk::<N>() && a.last_chunk::<N>() == b.last_chunk::<N>()
    }
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => ends_eq::<4>(a, b),
        8..16 => ends_eq::<8>(a, b),
        16..32 => ends_eq::<16>(a, b),
        32..=64 => ends_eq::<32>(a, b),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    proptest::proptest! {
        /// The inline compare agrees with `==` at every length around its
        /// chunk sizes.
        #[test]
        fn short_compare_agrees_with_slice_equality(
            a in proptest::collection::vec(0u8..4, 0..80),
            flip in proptest::prelude::any::<proptest::sample::Index>(),
            other_len in 0usize..80,
        ) {
            let mut b = a.clone();
            proptest::prop_assert!(bytes_eq(&a, &b));
            if !b.is_empty() {
                let i = flip.index(b.len());
                b[i] ^= 0x40;
                proptest::prop_assert!(!bytes_eq(&a, &b));
            }
            let c: Vec<u8> = a.iter().copied().chain(core::iter::repeat(0)).take(other_len).collect();
            proptest::prop_assert_eq!(bytes_eq(&a, &c), a == c);
        }
    }
}
