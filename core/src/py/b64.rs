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

/// Set in a [`SHIFTED`] entry for a byte outside the alphabet.
const BAD: u32 = 1 << 24;

/// [`DECODE`] with each sextet already shifted to its place in a group of
/// four characters (24 bits), [`BAD`] outside the alphabet.
///
/// Hot path (the payload of every accepted token is decoded): a group is
/// four loads and three ORs, with no shift per character.
static SHIFTED: [[u32; 256]; 4] = {
    let mut t = [[BAD; 256]; 4];
    let mut pos = 0;
    while pos < 4 {
        let mut i = 0;
        while i < ALPHABET.len() {
            // `pos < 4`, `i < 64`, every alphabet byte below 256; the
            // shift is at most 18 on a value below 64.
            #[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
            {
                t[pos][ALPHABET[i] as usize] = (i as u32) << (18 - 6 * pos);
            }
            i += 1;
        }
        pos += 1;
    }
    t
};

/// Four characters as 24 bits, with [`BAD`] set if any is outside the alphabet.
#[inline(always)]
fn group(c0: u8, c1: u8, c2: u8, c3: u8) -> u32 {
    let [t0, t1, t2, t3] = &SHIFTED;
    // 256 entries: every `u8` indexes each table.
    let at = |t: &[u32; 256], b: u8| t.get(usize::from(b)).copied().unwrap_or(BAD);
    at(t0, c0) | at(t1, c1) | at(t2, c2) | at(t3, c3)
}

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

/// The strict decode on the `base64` crate's SIMD engine where the build
/// has `std` and the CPU has AVX2 or NEON, else [`decode_strict`].
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    simd: base64::engine::simd::Simd,
}

impl Decoder {
    pub(crate) fn new() -> Self {
        Decoder {
            #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
            simd: base64::engine::simd::Simd::url_safe(
                base64::engine::GeneralPurposeConfig::new()
                    .with_encode_padding(false)
                    .with_decode_allow_trailing_bits(false)
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
            ),
        }
    }

    /// [`decode_strict`]: the same result and the same bytes in `out`.
    #[inline]
    pub(crate) fn decode_strict(&self, seg: &[u8], out: &mut [u8]) -> Result<usize, B64Error> {
        let text = strip(seg)?;
        let n = decoded_len_stripped(text.len());
        #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
        if text.len() >= 64 {
            // Shorter texts gain nothing from the engine's vector loop.
            use base64::Engine as _;
            return self
                .simd
                .decode_slice(text, out)
                .map_err(|_| B64Error::Alphabet);
        }
        decode_into(text, n, out)
    }
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
    let chunk_bad = |c: &[u8; 32]| {
        let mut bad = 0u8;
        for &b in c {
            bad |= u8::from(!in_alphabet(b));
        }
        bad
    };
    let mut chunks = text.chunks_exact(32);
    let mut bad = 0u8;
    for c in &mut chunks {
        if let Ok(c) = <&[u8; 32]>::try_from(c) {
            bad |= chunk_bad(c);
        }
    }
    // The rest as the last 32 bytes (read again in part) when there are
    // that many: a byte at a time cost more than the chunks (measured).
    match text.last_chunk::<32>() {
        Some(last) if !chunks.remainder().is_empty() => bad |= chunk_bad(last),
        _ => {
            for &b in chunks.remainder() {
                bad |= u8::from(!in_alphabet(b));
            }
        }
    }
    bad == 0
}

// Output counts are bounded by `n`, itself below `text.len()`; shifts of sextets into a u32.
#[allow(clippy::arithmetic_side_effects)]
fn decode_inner(seg: &[u8], out: Option<&mut [u8]>) -> Result<usize, B64Error> {
    let text = strip(seg)?;
    let n = decoded_len_stripped(text.len());
    match out {
        Some(o) => return decode_into(text, n, o),
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

/// Decodes the stripped `text` (`n` bytes) into `out`.
// Output counts are bounded by `n`, itself below `text.len()`; shifts of sextets into a u32.
#[allow(clippy::arithmetic_side_effects)]
#[inline(always)]
fn decode_into(text: &[u8], n: usize, o: &mut [u8]) -> Result<usize, B64Error> {
    // Invalid bytes set `BAD`: one test after the loops finds any of them.
    let mut seen = 0u32;
    let o = o.get_mut(..n).ok_or(B64Error::BufferTooSmall)?;
    // Eight characters (48 bits) at a time, then at most one group of four,
    // then the 2- or 3-character tail.
    let wide_len = text.len() / 8 * 8;
    let (wide_text, rest_text) = text.split_at_checked(wide_len).unwrap_or((&[], text));
    let (wide_o, rest_o) = o
        .split_at_mut_checked(wide_len / 8 * 6)
        .unwrap_or((&mut [], &mut []));
    for (c, dst) in wide_text.chunks_exact(8).zip(wide_o.chunks_exact_mut(6)) {
        let [c0, c1, c2, c3, c4, c5, c6, c7] = *c else {
            continue;
        };
        let (a, b) = (group(c0, c1, c2, c3), group(c4, c5, c6, c7));
        seen |= a | b;
        let v = (u64::from(a & 0xFF_FFFF) << 24) | u64::from(b & 0xFF_FFFF);
        let bytes = v.to_be_bytes();
        if let (Some(src), 6) = (bytes.get(2..), dst.len()) {
            dst.copy_from_slice(src);
        }
    }
    let mut chunks = rest_text.chunks_exact(4);
    let mut outs = rest_o.chunks_exact_mut(3);
    for (c, dst) in (&mut chunks).zip(&mut outs) {
        let v = match *c {
            [a, b, cc, d] => group(a, b, cc, d),
            _ => BAD,
        };
        seen |= v;
        if let [x, y, z] = dst {
            *x = (v >> 16) as u8;
            *y = (v >> 8) as u8;
            *z = v as u8;
        }
    }
    let rem = chunks.remainder();
    let (v, tail_seen) = tail_bits(rem);
    if seen & BAD != 0 || tail_seen & 0xC0 != 0 {
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 4096,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The vector decoder accepts exactly what the strict decoder
        /// accepts, with the same bytes: texts of every length around the
        /// vector loop's 32-character steps, with a byte outside the
        /// alphabet, padding or a non-canonical last character now and then.
        #[test]
        fn the_vector_decoder_decodes_as_the_strict_decoder(
            body in proptest::collection::vec(proptest::sample::select(ALPHABET.to_vec()), 0..300),
            damage in proptest::option::of((
                proptest::prelude::any::<proptest::sample::Index>(),
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::sample::select(alloc::vec![b'=', b'+', b'/', b'.', 0x80, b' ']),
                ],
            )),
            last in proptest::sample::select(ALPHABET.to_vec()),
            pad in 0usize..3,
            with_last in proptest::prelude::any::<bool>(),
        ) {
            let mut seg = body;
            if let (Some((at, b)), false) = (damage, seg.is_empty()) {
                let i = at.index(seg.len());
                seg[i] = b;
            }
            if with_last {
                seg.push(last);
            }
            seg.extend(core::iter::repeat_n(b'=', pad));
            let need = decoded_len(&seg).unwrap_or(0);
            let mut want = alloc::vec![0u8; need];
            let mut got = alloc::vec![0u8; need];
            let w = decode_strict(&seg, &mut want).map(|n| want[..n].to_vec());
            let g = Decoder::new().decode_strict(&seg, &mut got).map(|n| got[..n].to_vec());
            proptest::prop_assert_eq!(w.is_ok(), g.is_ok(), "{:?}", seg);
            if let (Ok(w), Ok(g)) = (w, g) {
                proptest::prop_assert_eq!(w, g);
            }
        }
    }

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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 4096,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The table-driven decoder and the vectorized validator agree with
        /// an independent strict decoder (the `base64` crate: no padding,
        /// canonical trailing bits) on text mostly from the alphabet.
        #[test]
        fn decode_agrees_with_the_base64_crate(
            text in proptest::collection::vec(
                proptest::prop_oneof![
                    30 => proptest::sample::select(ALPHABET.to_vec()),
                    1 => proptest::prelude::any::<u8>(),
                ],
                0..120,
            )
        ) {
            use base64::Engine as _;
            proptest::prop_assume!(!text.contains(&b'='));
            let want = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&text).ok();
            let mut buf = [0u8; 96];
            let got = decode_strict(&text, &mut buf).ok().map(|n| buf[..n].to_vec());
            proptest::prop_assert_eq!(&got, &want);
            proptest::prop_assert_eq!(validate_strict(&text).ok(), want.map(|w| w.len()));
        }

        /// Every byte string survives encoding and strict decoding.
        #[test]
        fn roundtrip(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=64)) {
            let mut s = String::new();
            encode_into(&data, &mut s);
            proptest::prop_assert_eq!(dec(&s).unwrap(), data);
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
