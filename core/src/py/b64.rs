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

/// Marks a byte outside the alphabet in [`DECODE`].
const INVALID: u8 = 0xFF;

/// Byte → sextet, [`INVALID`] outside the URL-safe alphabet.
static DECODE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        // `i < 64` and every alphabet byte is below 256: both indexes exist.
        #[allow(clippy::indexing_slicing)]
        {
            t[ALPHABET[i] as usize] = i as u8;
        }
        i += 1;
    }
    t
};

#[inline(always)]
fn sextet(b: u8) -> u8 {
    // 256 entries: every `u8` indexes the table.
    DECODE.get(usize::from(b)).copied().unwrap_or(INVALID)
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
    if pad > 0 && !seg.len().is_multiple_of(4) {
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

/// Sextets of a 2- or 3-character tail, as (bits, or-ed sextets).
// Shifts of values below 64 into a u32.
#[allow(clippy::arithmetic_side_effects)]
#[inline(always)]
fn tail_bits(rem: &[u8]) -> (u32, u8) {
    let mut v = 0u32;
    let mut seen = 0u8;
    for &b in rem {
        let x = sextet(b);
        seen |= x;
        v = (v << 6) | u32::from(x & 63);
    }
    (v, seen)
}

/// The canonical-tail rule: 2 characters leave 4 unused bits, 3 leave 2.
#[inline(always)]
fn tail_ok(len: usize, v: u32) -> Result<(), B64Error> {
    match len {
        0 => Ok(()),
        2 if v & 0xF == 0 => Ok(()),
        3 if v & 0x3 == 0 => Ok(()),
        2 | 3 => Err(B64Error::NonCanonical),
        _ => Err(B64Error::Length),
    }
}

/// Whether `b` is in the URL-safe alphabet, without a table.
#[inline(always)]
fn in_alphabet(b: u8) -> bool {
    // `b | 0x20` folds `A–Z` onto `a–z` and maps no other byte there.
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter | digit | (b == b'-') | (b == b'_')
}

/// Whether every byte of `text` is in the URL-safe alphabet.
///
/// Hot path: a token whose signature does not match is rejected after its
/// payload is only checked, not decoded (`TokenVerifier::verify`). Branch-free
/// range tests over fixed 32-byte chunks let the compiler vectorize the loop
/// (a table lookup per byte cannot be).
fn all_in_alphabet(text: &[u8]) -> bool {
    let mut chunks = text.chunks_exact(32);
    let mut bad = 0u8;
    for c in &mut chunks {
        let mut chunk_bad = 0u8;
        for &b in c {
            chunk_bad |= u8::from(!in_alphabet(b));
        }
        bad |= chunk_bad;
    }
    for &b in chunks.remainder() {
        bad |= u8::from(!in_alphabet(b));
    }
    bad == 0
}

// Output counts are bounded by `n`, itself below `text.len()`; shifts of sextets into a u32.
#[allow(clippy::arithmetic_side_effects)]
fn decode_inner(seg: &[u8], out: Option<&mut [u8]>) -> Result<usize, B64Error> {
    let text = strip(seg)?;
    let n = decoded_len_stripped(text.len());
    match out {
        Some(o) => {
            // Invalid bytes map to 0xFF: one test after the loop finds any of them.
            let mut seen = 0u8;
            let o = o.get_mut(..n).ok_or(B64Error::BufferTooSmall)?;
            // Eight characters (48 bits) at a time, then at most one group
            // of four, then the 2- or 3-character tail.
            let mut wide = text.chunks_exact(8);
            let mut wide_out = o.chunks_exact_mut(6);
            for (c, dst) in (&mut wide).zip(&mut wide_out) {
                let [c0, c1, c2, c3, c4, c5, c6, c7] = *c else {
                    continue;
                };
                let x = [
                    sextet(c0),
                    sextet(c1),
                    sextet(c2),
                    sextet(c3),
                    sextet(c4),
                    sextet(c5),
                    sextet(c6),
                    sextet(c7),
                ];
                seen |= x[0] | x[1] | x[2] | x[3] | x[4] | x[5] | x[6] | x[7];
                let v = x.iter().fold(0u64, |v, &s| (v << 6) | u64::from(s));
                let bytes = (v << 16).to_be_bytes();
                if let (Some(src), 6) = (bytes.get(..6), dst.len()) {
                    dst.copy_from_slice(src);
                }
            }
            let mut chunks = wide.remainder().chunks_exact(4);
            let mut outs = wide_out.into_remainder().chunks_exact_mut(3);
            for (c, dst) in (&mut chunks).zip(&mut outs) {
                let (a, b, cc, d) = match *c {
                    [a, b, cc, d] => (sextet(a), sextet(b), sextet(cc), sextet(d)),
                    _ => (INVALID, INVALID, INVALID, INVALID),
                };
                seen |= a | b | cc | d;
                let v = (u32::from(a) << 18)
                    | (u32::from(b) << 12)
                    | (u32::from(cc) << 6)
                    | u32::from(d);
                if let [x, y, z] = dst {
                    *x = (v >> 16) as u8;
                    *y = (v >> 8) as u8;
                    *z = v as u8;
                }
            }
            let rem = chunks.remainder();
            let (v, tail_seen) = tail_bits(rem);
            if (seen | tail_seen) & 0xC0 != 0 {
                return Err(B64Error::Alphabet);
            }
            tail_ok(rem.len(), v)?;
            match (rem.len(), outs.into_remainder()) {
                (2, [x]) => *x = (v >> 4) as u8,
                (3, [x, y]) => {
                    *x = (v >> 10) as u8;
                    *y = (v >> 2) as u8;
                }
                _ => {}
            }
        }
        None => {
            let body = text.get(..text.len() - text.len() % 4).unwrap_or(&[]);
            let rem = text.get(body.len()..).unwrap_or(&[]);
            let (v, tail_seen) = tail_bits(rem);
            if !all_in_alphabet(body) || tail_seen & 0xC0 != 0 {
                return Err(B64Error::Alphabet);
            }
            tail_ok(rem.len(), v)?;
        }
    }
    Ok(n)
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
