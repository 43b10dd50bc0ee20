//! Base64url as PyJWT 2.15 reads and writes JWT segments.
//!
//! Reading follows `PyJWS._decode_base64url_segment`:
//! 1. strip trailing `=`; more than two is an error, and when any was
//!    present the original length must be a multiple of 4;
//! 2. after stripping, a length `% 4 == 1` is an error, and so is any byte
//!    outside `A–Z a–z 0–9 - _`;
//! 3. the text must be canonical: re-encoding the decoded bytes gives the
//!    stripped text back, i.e. the unused low bits of the last character are 0.
//!
//! Writing is `base64.urlsafe_b64encode(...).replace(b"=", b"")`.

use alloc::string::String;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Why a segment is not strict base64url (PyJWT: `Invalid <name> padding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum B64Error {
    /// Too many `=`, or `=` on a length that is not a multiple of 4.
    Padding,
    /// Stripped length `% 4 == 1`.
    Length,
    /// A byte outside the URL-safe alphabet.
    Alphabet,
    /// The unused bits of the last character are not zero.
    NonCanonical,
    /// The output buffer is too small.
    BufferTooSmall,
}

#[inline]
// Each arm subtracts its own range's first byte: the results are 0..64.
#[allow(clippy::arithmetic_side_effects)]
fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Checks the padding rules and returns the segment without its `=`.
fn strip(seg: &[u8]) -> Result<&[u8], B64Error> {
    let mut stripped = seg;
    let mut pad = 0usize;
    while let Some((b'=', rest)) = stripped.split_last() {
        stripped = rest;
        pad = pad.saturating_add(1);
        if pad > 2 {
            return Err(B64Error::Padding);
        }
    }
    if pad > 0 && seg.len() % 4 != 0 {
        return Err(B64Error::Padding);
    }
    if stripped.len() % 4 == 1 {
        return Err(B64Error::Length);
    }
    Ok(stripped)
}

/// Number of bytes a stripped text of `n` characters decodes to.
#[inline]
fn decoded_len_stripped(n: usize) -> usize {
    (n / 4)
        .saturating_mul(3)
        .saturating_add((n % 4).saturating_sub(1))
}

/// Decoded length of `seg`, after the padding and length checks (alphabet not checked).
pub(crate) fn decoded_len(seg: &[u8]) -> Result<usize, B64Error> {
    Ok(decoded_len_stripped(strip(seg)?.len()))
}

/// Decodes `seg` strictly into `out`, returning the number of bytes written.
pub(crate) fn decode_strict(seg: &[u8], out: &mut [u8]) -> Result<usize, B64Error> {
    decode_inner(seg, Some(out))
}

/// Checks `seg` strictly without storing the bytes; returns the decoded length.
pub(crate) fn validate_strict(seg: &[u8]) -> Result<usize, B64Error> {
    decode_inner(seg, None)
}

// `written` counts output bytes: at most `n`, itself below `text.len()`.
#[allow(clippy::arithmetic_side_effects)]
fn decode_inner(seg: &[u8], mut out: Option<&mut [u8]>) -> Result<usize, B64Error> {
    let text = strip(seg)?;
    let n = decoded_len_stripped(text.len());
    if let Some(o) = out.as_deref() {
        if o.len() < n {
            return Err(B64Error::BufferTooSmall);
        }
    }
    let mut written = 0usize;
    let mut put = |byte: u8, out: &mut Option<&mut [u8]>| {
        if let Some(o) = out.as_deref_mut() {
            if let Some(slot) = o.get_mut(written) {
                *slot = byte;
            }
        }
        written += 1;
    };
    let mut chunks = text.chunks_exact(4);
    for c in &mut chunks {
        let mut v = 0u32;
        for &b in c {
            v = (v << 6) | u32::from(sextet(b).ok_or(B64Error::Alphabet)?);
        }
        put((v >> 16) as u8, &mut out);
        put((v >> 8) as u8, &mut out);
        put(v as u8, &mut out);
    }
    let rem = chunks.remainder();
    let mut v = 0u32;
    for &b in rem {
        v = (v << 6) | u32::from(sextet(b).ok_or(B64Error::Alphabet)?);
    }
    match rem.len() {
        0 => {}
        2 => {
            // 12 bits: 8 used, 4 must be zero.
            if v & 0xF != 0 {
                return Err(B64Error::NonCanonical);
            }
            put((v >> 4) as u8, &mut out);
        }
        3 => {
            // 18 bits: 16 used, 2 must be zero.
            if v & 0x3 != 0 {
                return Err(B64Error::NonCanonical);
            }
            put((v >> 10) as u8, &mut out);
            put((v >> 2) as u8, &mut out);
        }
        _ => return Err(B64Error::Length),
    }
    Ok(written)
}

/// Length of the unpadded base64url encoding of `n` bytes.
pub(crate) const fn encoded_len(n: usize) -> usize {
    let tail = match n % 3 {
        0 => 0,
        1 => 2,
        _ => 3,
    };
    (n / 3).saturating_mul(4).saturating_add(tail)
}

/// Appends the unpadded base64url encoding of `input` to `out`.
pub(crate) fn encode_into(input: &[u8], out: &mut String) {
    out.reserve(encoded_len(input.len()));
    let ch = |i: u32| char::from(ALPHABET.get((i & 63) as usize).copied().unwrap_or(b'A'));
    let mut chunks = input.chunks_exact(3);
    for c in &mut chunks {
        let v = c.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        out.push(ch(v >> 18));
        out.push(ch(v >> 12));
        out.push(ch(v >> 6));
        out.push(ch(v));
    }
    match *chunks.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            out.push(ch(v >> 18));
            out.push(ch(v >> 12));
        }
        [a, b] => {
            let v = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.push(ch(v >> 18));
            out.push(ch(v >> 12));
            out.push(ch(v >> 6));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn dec(s: &str) -> Result<Vec<u8>, B64Error> {
        let mut buf = [0u8; 64];
        let n = decode_strict(s.as_bytes(), &mut buf)?;
        assert_eq!(validate_strict(s.as_bytes()), Ok(n));
        assert_eq!(decoded_len(s.as_bytes()), Ok(n));
        Ok(buf[..n].to_vec())
    }

    #[test]
    fn table() {
        // (input, expected) — rows follow PyJWT's `_decode_base64url_segment`.
        let rows: &[(&str, Result<&[u8], B64Error>)] = &[
            ("", Ok(b"")),
            ("QQ", Ok(b"A")),
            ("QUI", Ok(b"AB")),
            ("QUJD", Ok(b"ABC")),
            ("QQ==", Ok(b"A")),
            ("QUI=", Ok(b"AB")),
            ("QUJD=", Err(B64Error::Padding)),
            ("QQ=", Err(B64Error::Padding)),
            ("QQ===", Err(B64Error::Padding)),
            ("QUJD====", Err(B64Error::Padding)),
            ("====", Err(B64Error::Padding)),
            ("==", Err(B64Error::Padding)),
            ("=", Err(B64Error::Padding)),
            // "A===" is stripped to "A", length 1.
            ("Q", Err(B64Error::Length)),
            ("QUJDR", Err(B64Error::Length)),
            ("QR", Err(B64Error::NonCanonical)),
            ("QUJ", Err(B64Error::NonCanonical)),
            ("QUJ=", Err(B64Error::NonCanonical)),
            ("Q+I", Err(B64Error::Alphabet)),
            ("Q/I", Err(B64Error::Alphabet)),
            ("Q I", Err(B64Error::Alphabet)),
            ("QUI\n", Err(B64Error::Alphabet)),
            ("QU=I", Err(B64Error::Alphabet)),
            ("-_-_", Ok(&[0xfb, 0xff, 0xbf])),
        ];
        for (input, want) in rows {
            let got = dec(input);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{input:?}");
        }
    }

    #[test]
    fn buffer_too_small() {
        let mut buf = [0u8; 2];
        assert_eq!(
            decode_strict(b"QUJD", &mut buf),
            Err(B64Error::BufferTooSmall)
        );
    }

    #[test]
    fn encode_roundtrip() {
        for n in 0..40usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let mut s = String::new();
            encode_into(&data, &mut s);
            assert_eq!(s.len(), encoded_len(n));
            assert!(!s.contains('='));
            assert_eq!(dec(&s).unwrap(), data);
        }
        let mut s = String::new();
        encode_into(br#"{"alg":"HS256","typ":"JWT"}"#, &mut s);
        assert_eq!(s, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
    }
}
