//! HMAC-SHA256 (RFC 2104) for the verify path, run in steps on `sha2`'s
//! block function.
//!
//! Hand-rolled because the verify path needs to step it: with SHA extensions
//! the rounds of a block form one long dependency chain, so the CPU is mostly
//! waiting on latency, and work that depends only on the token (decoding the
//! signature and the payload) runs in that chain's shadow when it is issued
//! between two steps (as far as the out-of-order window reaches: on a core
//! whose sibling thread is busy, little of it does). The `hmac` crate hashes a whole message at once, and
//! its buffering and finalization cost more than the padding written here
//! (both measured: `benches/verify.rs`, `verify/hmac_floor` against
//! `reject/bad_signature`). The `hmac` crate stays the oracle: the tests
//! compare every length around the block boundaries and random keys with it.

use sha2::block_api::compress256;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// FIPS 180-4 §5.3.3: the initial hash value of SHA-256.
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

const BLOCK: usize = 64;

/// A key's HMAC-SHA256 state after its inner and outer pad blocks, so that
/// a message costs only its own blocks and one outer block. Zeroed on drop.
#[derive(Clone)]
pub(crate) struct Hs256Key {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl core::fmt::Debug for Hs256Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Hs256Key(<redacted>)")
    }
}

impl Drop for Hs256Key {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl Hs256Key {
    /// The pad states of `key` (any length; longer than a block is hashed
    /// first, as RFC 2104 says).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            let d = Sha256::digest(key);
            for (dst, src) in k.iter_mut().zip(d.iter()) {
                *dst = *src;
            }
        } else {
            for (dst, src) in k.iter_mut().zip(key) {
                *dst = *src;
            }
        }
        let mut pad = k.map(|b| b ^ 0x36);
        let mut inner = IV;
        compress256(&mut inner, core::slice::from_ref(&pad));
        pad = k.map(|b| b ^ 0x5c);
        let mut outer = IV;
        compress256(&mut outer, core::slice::from_ref(&pad));
        k.zeroize();
        pad.zeroize();
        Hs256Key { inner, outer }
    }

    /// A run over `msg`, hashed by [`Hs256Run::step`] and [`Hs256Run::finish`].
    #[inline(always)]
    pub(crate) fn start<'k, 'm>(&'k self, msg: &'m [u8]) -> Hs256Run<'k, 'm> {
        let (full, rest) = msg.as_chunks::<BLOCK>();
        Hs256Run {
            key: self,
            state: self.inner,
            full,
            rest,
            // A slice's length fits in u64 and is far below 2^61 bytes.
            bits: (msg.len() as u64)
                .wrapping_add(BLOCK as u64)
                .wrapping_mul(8),
            pad_blocks_left: if rest.len() < 56 { 1 } else { 2 },
            marked: false,
            done: false,
        }
    }

    /// The tag of `msg`.
    #[cfg(test)]
    pub(crate) fn tag(&self, msg: &[u8]) -> [u8; 32] {
        self.start(msg).finish()
    }
}

/// One message being hashed (see [`Hs256Key::start`]), in steps.
pub(crate) struct Hs256Run<'k, 'm> {
    key: &'k Hs256Key,
    state: [u32; 8],
    /// The message's whole blocks not hashed yet.
    full: &'m [[u8; BLOCK]],
    /// The message's bytes after its whole blocks (under a block).
    rest: &'m [u8],
    /// The bit length of the inner message (pad block plus message).
    bits: u64,
    /// Padding blocks not hashed yet (one, or two when fewer than 9 bytes
    /// are left after the rest).
    pad_blocks_left: u8,
    /// Whether the 0x80 after the message has been hashed.
    marked: bool,
    /// Whether the outer block has been hashed (`state` is then the tag's).
    done: bool,
}

impl Hs256Run<'_, '_> {
    /// Hashes the next part: the message's whole blocks (in one call), then
    /// each padding block (the rest, 0x80, zeros, the bit length in the last
    /// 8 bytes: one block, or two when fewer than 9 bytes follow the rest),
    /// then the outer block; nothing once all are done.
    #[inline(always)]
    pub(crate) fn step(&mut self) {
        if !self.full.is_empty() {
            compress256(&mut self.state, self.full);
            self.full = &[];
        } else if self.pad_blocks_left > 0 {
            // The first padding block holds the rest; the second, if any,
            // only zeros and the length.
            let mut block = [0u8; BLOCK];
            if !self.marked {
                if let Some(dst) = block.get_mut(..self.rest.len()) {
                    dst.copy_from_slice(self.rest);
                }
                if let Some(b) = block.get_mut(self.rest.len()) {
                    *b = 0x80;
                }
                self.marked = true;
            }
            if self.pad_blocks_left == 1 {
                if let Some(dst) = block.get_mut(56..) {
                    dst.copy_from_slice(&self.bits.to_be_bytes());
                }
            }
            compress256(&mut self.state, core::slice::from_ref(&block));
            self.pad_blocks_left = self.pad_blocks_left.saturating_sub(1);
        } else if !self.done {
            self.outer();
        }
    }

    /// The outer hash: the pad state and one block holding the inner digest.
    #[inline(always)]
    fn outer(&mut self) {
        let mut block = [0u8; BLOCK];
        for (dst, w) in block.chunks_exact_mut(4).zip(self.state) {
            dst.copy_from_slice(&w.to_be_bytes());
        }
        // 0x80 after the 32-byte inner digest, then the bit length of the
        // outer message (pad block plus digest): 96 bytes.
        if let Some(b) = block.get_mut(32) {
            *b = 0x80;
        }
        if let Some(dst) = block.get_mut(56..) {
            dst.copy_from_slice(&768u64.to_be_bytes());
        }
        self.state = self.key.outer;
        compress256(&mut self.state, core::slice::from_ref(&block));
        self.done = true;
    }

    /// Hashes whatever is left and compares the tag with `sig` in constant
    /// time (`hmac.compare_digest`), word by word: the tag is not written
    /// out as bytes first (that and a byte-wise fold were measured on the
    /// verify path).
    #[inline(always)]
    pub(crate) fn finish_matches(mut self, sig: &[u8; 32]) -> bool {
        while !self.done {
            self.step();
        }
        let mut diff = 0u32;
        for (w, b) in self.state.iter().zip(sig.as_chunks::<4>().0) {
            diff |= w ^ u32::from_be_bytes(*b);
        }
        core::hint::black_box(diff) == 0
    }

    /// Hashes whatever is left and returns the tag.
    #[cfg(test)]
    pub(crate) fn finish(mut self) -> [u8; 32] {
        while !self.done {
            self.step();
        }
        let mut tag = [0u8; 32];
        for (dst, w) in tag.chunks_exact_mut(4).zip(self.state) {
            dst.copy_from_slice(&w.to_be_bytes());
        }
        tag
    }
}

impl Drop for Hs256Run<'_, '_> {
    fn drop(&mut self) {
        self.state.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};

    fn oracle(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    #[test]
    fn every_length_around_the_block_boundaries() {
        let msg: alloc::vec::Vec<u8> = (0..=300u16).map(|i| (i * 7 + 3) as u8).collect();
        for key_len in [1usize, 32, 63, 64, 65, 200] {
            let key: alloc::vec::Vec<u8> = (0..key_len).map(|i| i as u8 ^ 0xA5).collect();
            let k = Hs256Key::new(&key);
            for n in 0..msg.len() {
                assert_eq!(
                    k.tag(&msg[..n]),
                    oracle(&key, &msg[..n]),
                    "key {key_len}, msg {n}"
                );
            }
        }
    }

    #[test]
    fn stepping_any_number_of_times_gives_the_same_tag() {
        let k = Hs256Key::new(b"secret");
        let msg = [b'x'; 190];
        for steps in 0..6 {
            let mut run = k.start(&msg);
            for _ in 0..steps {
                run.step();
            }
            assert_eq!(run.finish(), oracle(b"secret", &msg));
        }
    }

    proptest::proptest! {
        #[test]
        fn random_keys_and_messages_match_the_hmac_crate(
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..160),
            msg in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let k = Hs256Key::new(&key);
            let want = oracle(&key, &msg);
            proptest::prop_assert_eq!(k.tag(&msg), want);
            proptest::prop_assert!(k.start(&msg).finish_matches(&want));
            for i in [0, 13, 31] {
                let mut other = want;
                other[i] ^= 1 << (i % 8);
                proptest::prop_assert!(!k.start(&msg).finish_matches(&other));
            }
        }
    }
}
