//! `zlib.compress(data)` as CPython produces it (zlib 1.2.x, level 6,
//! `windowBits = 15`, `memLevel = 8`, default strategy), byte for byte.
//!
//! Django's `signing.dumps(..., compress=True)` keeps the compressed form only
//! when it is shorter than the JSON minus one byte, and the signature covers
//! the exact bytes; reproducing zlib's output (not just *a* valid zlib stream)
//! makes `dumps` byte-exact. This is zlib's `deflate_slow` with its lazy
//! matching, hash chains, window sliding and block splitting, and the Huffman
//! tree construction of `trees.c`, re-implemented without `unsafe` and without
//! unchecked indexing. Decompression is not here (see `miniz_oxide`).

// The arithmetic is zlib's, on quantities its invariants bound: window
// positions stay below 2 * W_SIZE + MAX_MATCH, heap indices below HEAP_SIZE,
// code lengths at most 15, frequencies at most one block's symbol count
// (about LIT_BUFSIZE), Adler-32 sums below 2^32 by zlib's NMAX = 5552
// chunking, and every decrement follows the guard zlib has for it; bit
// totals (`opt_len`, `static_len`) wrap as zlib's `ulg` does. The CPython
// vectors below and the large-input properties in `tests/extremes.rs`
// exercise these paths with overflow checks on.
#![allow(clippy::arithmetic_side_effects)]

use alloc::vec;
use alloc::vec::Vec;

const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
const W_SIZE: usize = 1 << 15;
const W_MASK: usize = W_SIZE - 1;
const WINDOW_SIZE: usize = 2 * W_SIZE;
const HASH_BITS: usize = 8 + 7;
const HASH_SIZE: usize = 1 << HASH_BITS;
const HASH_MASK: usize = HASH_SIZE - 1;
const HASH_SHIFT: usize = HASH_BITS.div_ceil(MIN_MATCH);
const MIN_LOOKAHEAD: usize = MAX_MATCH + MIN_MATCH + 1;
const MAX_DIST: usize = W_SIZE - MIN_LOOKAHEAD;
const TOO_FAR: usize = 4096;
const LIT_BUFSIZE: usize = 1 << (8 + 6);

// Level 6 of zlib's configuration table.
const GOOD_MATCH: usize = 8;
const MAX_LAZY: usize = 16;
const NICE_MATCH: usize = 128;
const MAX_CHAIN: usize = 128;

const LENGTH_CODES: usize = 29;
const LITERALS: usize = 256;
const L_CODES: usize = LITERALS + 1 + LENGTH_CODES;
const D_CODES: usize = 30;
const BL_CODES: usize = 19;
const HEAP_SIZE: usize = 2 * L_CODES + 1;
const MAX_BITS: usize = 15;
const MAX_BL_BITS: usize = 7;
const END_BLOCK: usize = 256;
const REP_3_6: usize = 16;
const REPZ_3_10: usize = 17;
const REPZ_11_138: usize = 18;

const EXTRA_LBITS: [u8; LENGTH_CODES] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const EXTRA_DBITS: [u8; D_CODES] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
const EXTRA_BLBITS: [u8; BL_CODES] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7];
const BL_ORDER: [u8; BL_CODES] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Reads `s[i]`, or the default where `i` is out of range (never, by the
/// algorithm's invariants; this keeps the code free of panics).
#[inline]
fn at<T: Copy + Default>(s: &[T], i: usize) -> T {
    s.get(i).copied().unwrap_or_default()
}

#[inline]
fn put<T>(s: &mut [T], i: usize, v: T) {
    if let Some(x) = s.get_mut(i) {
        *x = v;
    }
}

/// A Huffman tree node (zlib's `ct_data`, with its unions split).
#[derive(Debug, Clone, Copy, Default)]
struct Ct {
    freq: u32,
    code: u16,
    dad: u16,
    len: u16,
}

fn bi_reverse(mut code: u32, len: usize) -> u16 {
    let mut res = 0u32;
    for _ in 0..len {
        res = (res << 1) | (code & 1);
        code >>= 1;
    }
    res as u16
}

/// Canonical codes from the bit lengths (`gen_codes`).
fn gen_codes(tree: &mut [Ct], max_code: usize, bl_count: &[u16; MAX_BITS + 1]) {
    let mut next_code = [0u32; MAX_BITS + 1];
    let mut code = 0u32;
    for bits in 1..=MAX_BITS {
        code = (code + u32::from(at(bl_count, bits - 1))) << 1;
        put(&mut next_code, bits, code);
    }
    for n in 0..=max_code {
        let len = usize::from(at(tree, n).len);
        if len == 0 {
            continue;
        }
        let c = at(&next_code, len);
        put(&mut next_code, len, c + 1);
        if let Some(t) = tree.get_mut(n) {
            t.code = bi_reverse(c, len);
        }
    }
}

/// The fixed tables of `trees.c` (`tr_static_init`).
struct Tables {
    static_ltree: [Ct; L_CODES + 2],
    static_dtree: [Ct; D_CODES],
    dist_code: [u8; 512],
    length_code: [u8; MAX_MATCH - MIN_MATCH + 1],
    base_length: [u16; LENGTH_CODES],
    base_dist: [u16; D_CODES],
}

impl Tables {
    fn new() -> Self {
        let mut t = Tables {
            static_ltree: [Ct::default(); L_CODES + 2],
            static_dtree: [Ct::default(); D_CODES],
            dist_code: [0; 512],
            length_code: [0; MAX_MATCH - MIN_MATCH + 1],
            base_length: [0; LENGTH_CODES],
            base_dist: [0; D_CODES],
        };
        let mut length = 0usize;
        for code in 0..LENGTH_CODES - 1 {
            put(&mut t.base_length, code, length as u16);
            for _ in 0..(1usize << at(&EXTRA_LBITS, code)) {
                put(&mut t.length_code, length, code as u8);
                length += 1;
            }
        }
        // Length 258 (index 255) uses code 285 rather than 284 + 5 bits.
        put(&mut t.length_code, 255, (LENGTH_CODES - 1) as u8);
        let mut dist = 0usize;
        for code in 0..16 {
            put(&mut t.base_dist, code, dist as u16);
            for _ in 0..(1usize << at(&EXTRA_DBITS, code)) {
                put(&mut t.dist_code, dist, code as u8);
                dist += 1;
            }
        }
        dist >>= 7;
        for code in 16..D_CODES {
            put(&mut t.base_dist, code, (dist << 7) as u16);
            for _ in 0..(1usize << (at(&EXTRA_DBITS, code) - 7)) {
                put(&mut t.dist_code, 256 + dist, code as u8);
                dist += 1;
            }
        }
        let mut bl_count = [0u16; MAX_BITS + 1];
        for (n, node) in t.static_ltree.iter_mut().enumerate() {
            let len = match n {
                0..=143 => 8,
                144..=255 => 9,
                256..=279 => 7,
                _ => 8,
            };
            node.len = len;
            if let Some(c) = bl_count.get_mut(usize::from(len)) {
                *c += 1;
            }
        }
        gen_codes(&mut t.static_ltree, L_CODES + 1, &bl_count);
        for (n, node) in t.static_dtree.iter_mut().enumerate() {
            node.len = 5;
            node.code = bi_reverse(n as u32, 5);
        }
        t
    }

    fn d_code(&self, dist: usize) -> usize {
        if dist < 256 {
            usize::from(at(&self.dist_code, dist))
        } else {
            usize::from(at(&self.dist_code, 256 + (dist >> 7)))
        }
    }
}

/// Which tree a [`TreeDesc`] describes.
#[derive(Clone, Copy)]
struct StaticDesc {
    has_static: bool,
    extra_bits: &'static [u8],
    extra_base: usize,
    elems: usize,
    max_length: usize,
}

const STATIC_L_DESC: StaticDesc = StaticDesc {
    has_static: true,
    extra_bits: &EXTRA_LBITS,
    extra_base: LITERALS + 1,
    elems: L_CODES,
    max_length: MAX_BITS,
};
const STATIC_D_DESC: StaticDesc = StaticDesc {
    has_static: true,
    extra_bits: &EXTRA_DBITS,
    extra_base: 0,
    elems: D_CODES,
    max_length: MAX_BITS,
};
const STATIC_BL_DESC: StaticDesc = StaticDesc {
    has_static: false,
    extra_bits: &EXTRA_BLBITS,
    extra_base: 0,
    elems: BL_CODES,
    max_length: MAX_BL_BITS,
};

/// LSB-first bit output (zlib's `send_bits` / `bi_windup`).
struct BitWriter {
    out: Vec<u8>,
    buf: u64,
    n: u32,
}

impl BitWriter {
    fn send(&mut self, value: u32, len: usize) {
        self.buf |= u64::from(value) << self.n;
        self.n += len as u32;
        while self.n >= 8 {
            self.out.push(self.buf as u8);
            self.buf >>= 8;
            self.n -= 8;
        }
    }

    fn send_code(&mut self, c: usize, tree: &[Ct]) {
        let node = at(tree, c);
        self.send(u32::from(node.code), usize::from(node.len));
    }

    fn windup(&mut self) {
        if self.n > 0 {
            self.out.push(self.buf as u8);
        }
        self.buf = 0;
        self.n = 0;
    }
}

/// Heap, depths and counts shared by the tree builds of one block.
struct TreeState {
    heap: [usize; HEAP_SIZE],
    heap_len: usize,
    heap_max: usize,
    depth: [u8; HEAP_SIZE],
    bl_count: [u16; MAX_BITS + 1],
    opt_len: u64,
    static_len: u64,
}

impl TreeState {
    fn smaller(&self, tree: &[Ct], n: usize, m: usize) -> bool {
        let (fnn, fm) = (at(tree, n).freq, at(tree, m).freq);
        fnn < fm || (fnn == fm && at(&self.depth, n) <= at(&self.depth, m))
    }

    fn pqdownheap(&mut self, tree: &[Ct], mut k: usize) {
        let v = at(&self.heap, k);
        let mut j = k << 1;
        while j <= self.heap_len {
            if j < self.heap_len && self.smaller(tree, at(&self.heap, j + 1), at(&self.heap, j)) {
                j += 1;
            }
            if self.smaller(tree, v, at(&self.heap, j)) {
                break;
            }
            let hj = at(&self.heap, j);
            put(&mut self.heap, k, hj);
            k = j;
            j <<= 1;
        }
        put(&mut self.heap, k, v);
    }

    fn gen_bitlen(&mut self, tree: &mut [Ct], max_code: usize, desc: StaticDesc, stree: &[Ct]) {
        self.bl_count = [0; MAX_BITS + 1];
        let mut overflow = 0i32;
        let root = at(&self.heap, self.heap_max);
        if let Some(t) = tree.get_mut(root) {
            t.len = 0;
        }
        let mut h = self.heap_max + 1;
        while h < HEAP_SIZE {
            let n = at(&self.heap, h);
            h += 1;
            let dad = usize::from(at(tree, n).dad);
            let mut bits = usize::from(at(tree, dad).len) + 1;
            if bits > desc.max_length {
                bits = desc.max_length;
                overflow += 1;
            }
            if let Some(t) = tree.get_mut(n) {
                t.len = bits as u16;
            }
            if n > max_code {
                continue;
            }
            if let Some(c) = self.bl_count.get_mut(bits) {
                *c += 1;
            }
            let xbits = if n >= desc.extra_base {
                usize::from(at(desc.extra_bits, n - desc.extra_base))
            } else {
                0
            };
            let f = u64::from(at(tree, n).freq);
            self.opt_len = self.opt_len.wrapping_add(f * (bits + xbits) as u64);
            if desc.has_static {
                let slen = usize::from(at(stree, n).len);
                self.static_len = self.static_len.wrapping_add(f * (slen + xbits) as u64);
            }
        }
        if overflow == 0 {
            return;
        }
        loop {
            let mut bits = desc.max_length - 1;
            while bits > 0 && at(&self.bl_count, bits) == 0 {
                bits -= 1;
            }
            if let Some(c) = self.bl_count.get_mut(bits) {
                *c = c.wrapping_sub(1);
            }
            if let Some(c) = self.bl_count.get_mut(bits + 1) {
                *c = c.wrapping_add(2);
            }
            if let Some(c) = self.bl_count.get_mut(desc.max_length) {
                *c = c.wrapping_sub(1);
            }
            overflow -= 2;
            if overflow <= 0 {
                break;
            }
        }
        let mut h = HEAP_SIZE;
        for bits in (1..=desc.max_length).rev() {
            let mut n = at(&self.bl_count, bits);
            while n != 0 {
                if h == 0 {
                    return;
                }
                h -= 1;
                let m = at(&self.heap, h);
                if m > max_code {
                    continue;
                }
                let node = at(tree, m);
                if usize::from(node.len) != bits {
                    let delta = (bits as u64)
                        .wrapping_sub(u64::from(node.len))
                        .wrapping_mul(u64::from(node.freq));
                    self.opt_len = self.opt_len.wrapping_add(delta);
                    if let Some(t) = tree.get_mut(m) {
                        t.len = bits as u16;
                    }
                }
                n -= 1;
            }
        }
    }

    /// `build_tree`: returns `max_code`.
    fn build_tree(&mut self, tree: &mut [Ct], desc: StaticDesc, stree: &[Ct]) -> usize {
        let elems = desc.elems;
        let mut max_code: isize = -1;
        self.heap_len = 0;
        self.heap_max = HEAP_SIZE;
        for n in 0..elems {
            if at(tree, n).freq != 0 {
                self.heap_len += 1;
                put(&mut self.heap, self.heap_len, n);
                max_code = n as isize;
                put(&mut self.depth, n, 0);
            } else if let Some(t) = tree.get_mut(n) {
                t.len = 0;
            }
        }
        while self.heap_len < 2 {
            let node = if max_code < 2 {
                max_code += 1;
                max_code as usize
            } else {
                0
            };
            self.heap_len += 1;
            put(&mut self.heap, self.heap_len, node);
            if let Some(t) = tree.get_mut(node) {
                t.freq = 1;
            }
            put(&mut self.depth, node, 0);
            self.opt_len = self.opt_len.wrapping_sub(1);
            if desc.has_static {
                self.static_len = self.static_len.wrapping_sub(u64::from(at(stree, node).len));
            }
        }
        let max_code = max_code.max(0) as usize;
        for n in (1..=self.heap_len / 2).rev() {
            self.pqdownheap(tree, n);
        }
        let mut node = elems;
        loop {
            // pqremove
            let n = at(&self.heap, 1);
            let last = at(&self.heap, self.heap_len);
            put(&mut self.heap, 1, last);
            self.heap_len -= 1;
            self.pqdownheap(tree, 1);
            let m = at(&self.heap, 1);
            self.heap_max -= 1;
            put(&mut self.heap, self.heap_max, n);
            self.heap_max -= 1;
            put(&mut self.heap, self.heap_max, m);
            let freq = at(tree, n).freq + at(tree, m).freq;
            let depth = at(&self.depth, n).max(at(&self.depth, m)).wrapping_add(1);
            if let Some(t) = tree.get_mut(node) {
                t.freq = freq;
            }
            put(&mut self.depth, node, depth);
            if let Some(t) = tree.get_mut(n) {
                t.dad = node as u16;
            }
            if let Some(t) = tree.get_mut(m) {
                t.dad = node as u16;
            }
            put(&mut self.heap, 1, node);
            node += 1;
            self.pqdownheap(tree, 1);
            if self.heap_len < 2 {
                break;
            }
        }
        self.heap_max -= 1;
        let top = at(&self.heap, 1);
        put(&mut self.heap, self.heap_max, top);
        self.gen_bitlen(tree, max_code, desc, stree);
        let bl_count = self.bl_count;
        gen_codes(tree, max_code, &bl_count);
        max_code
    }
}

/// How `scan_tree` / `send_tree` code a run of `count` equal lengths.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// `count` plain codes of `len`.
    Plain { len: usize, count: usize },
    /// One plain code of `len` if it differs from the previous length, then
    /// REP_3_6 for the rest.
    Rep {
        len: usize,
        count: usize,
        differs: bool,
    },
    /// REPZ_3_10.
    Zeros10 { count: usize },
    /// REPZ_11_138.
    Zeros138 { count: usize },
}

/// The runs of a literal or distance tree's code lengths, as `scan_tree`
/// groups them; also writes the `0xffff` guard after `max_code`, as
/// `scan_tree` does.
fn runs(tree: &mut [Ct], max_code: usize) -> Vec<Run> {
    let mut out = Vec::new();
    let mut prevlen: Option<usize> = None;
    let mut nextlen = usize::from(at(tree, 0).len);
    let mut count = 0usize;
    let (mut max_count, mut min_count) = if nextlen == 0 { (138, 3) } else { (7, 4) };
    if let Some(t) = tree.get_mut(max_code + 1) {
        t.len = 0xffff;
    }
    for n in 0..=max_code {
        let curlen = nextlen;
        nextlen = usize::from(at(tree, n + 1).len);
        count += 1;
        if count < max_count && curlen == nextlen {
            continue;
        }
        out.push(if count < min_count {
            Run::Plain { len: curlen, count }
        } else if curlen != 0 {
            Run::Rep {
                len: curlen,
                count,
                differs: prevlen != Some(curlen),
            }
        } else if count <= 10 {
            Run::Zeros10 { count }
        } else {
            Run::Zeros138 { count }
        });
        count = 0;
        prevlen = Some(curlen);
        (max_count, min_count) = if nextlen == 0 {
            (138, 3)
        } else if curlen == nextlen {
            (6, 3)
        } else {
            (7, 4)
        };
    }
    out
}

/// The whole compressor state for one `zlib.compress` call.
struct Deflate<'a> {
    input: &'a [u8],
    in_pos: usize,
    window: Vec<u8>,
    prev: Vec<u16>,
    head: Vec<u16>,
    ins_h: usize,
    strstart: usize,
    block_start: isize,
    lookahead: usize,
    insert: usize,
    match_length: usize,
    prev_length: usize,
    match_available: bool,
    match_start: usize,
    prev_match: usize,
    syms: Vec<(u16, u8)>,
    dyn_ltree: [Ct; HEAP_SIZE],
    dyn_dtree: [Ct; 2 * D_CODES + 1],
    bl_tree: [Ct; 2 * BL_CODES + 1],
    ts: TreeState,
    tables: Tables,
    bits: BitWriter,
}

impl<'a> Deflate<'a> {
    fn new(input: &'a [u8]) -> Self {
        let mut d = Deflate {
            input,
            in_pos: 0,
            window: vec![0; WINDOW_SIZE],
            prev: vec![0; W_SIZE],
            head: vec![0; HASH_SIZE],
            ins_h: 0,
            strstart: 0,
            block_start: 0,
            lookahead: 0,
            insert: 0,
            match_length: MIN_MATCH - 1,
            prev_length: MIN_MATCH - 1,
            match_available: false,
            match_start: 0,
            prev_match: 0,
            syms: Vec::with_capacity(LIT_BUFSIZE.min(input.len() + 1)),
            dyn_ltree: [Ct::default(); HEAP_SIZE],
            dyn_dtree: [Ct::default(); 2 * D_CODES + 1],
            bl_tree: [Ct::default(); 2 * BL_CODES + 1],
            ts: TreeState {
                heap: [0; HEAP_SIZE],
                heap_len: 0,
                heap_max: 0,
                depth: [0; HEAP_SIZE],
                bl_count: [0; MAX_BITS + 1],
                opt_len: 0,
                static_len: 0,
            },
            tables: Tables::new(),
            bits: BitWriter {
                out: Vec::with_capacity(input.len() / 2 + 16),
                buf: 0,
                n: 0,
            },
        };
        d.init_block();
        d
    }

    fn init_block(&mut self) {
        for t in self.dyn_ltree.iter_mut().take(L_CODES) {
            t.freq = 0;
        }
        for t in self.dyn_dtree.iter_mut().take(D_CODES) {
            t.freq = 0;
        }
        for t in self.bl_tree.iter_mut().take(BL_CODES) {
            t.freq = 0;
        }
        if let Some(t) = self.dyn_ltree.get_mut(END_BLOCK) {
            t.freq = 1;
        }
        self.ts.opt_len = 0;
        self.ts.static_len = 0;
        self.syms.clear();
    }

    #[inline]
    fn w(&self, i: usize) -> u8 {
        at(&self.window, i)
    }

    #[inline]
    fn update_hash(&mut self, c: u8) {
        self.ins_h = ((self.ins_h << HASH_SHIFT) ^ usize::from(c)) & HASH_MASK;
    }

    /// `INSERT_STRING`: returns the previous head of the chain.
    fn insert_string(&mut self, s: usize) -> usize {
        self.update_hash(self.w(s + MIN_MATCH - 1));
        let head = at(&self.head, self.ins_h);
        put(&mut self.prev, s & W_MASK, head);
        put(&mut self.head, self.ins_h, s as u16);
        usize::from(head)
    }

    fn slide_hash(&mut self) {
        for p in self.head.iter_mut().chain(self.prev.iter_mut()) {
            *p = if usize::from(*p) >= W_SIZE {
                *p - W_SIZE as u16
            } else {
                0
            };
        }
    }

    fn fill_window(&mut self) {
        loop {
            let mut more = WINDOW_SIZE
                .saturating_sub(self.lookahead)
                .saturating_sub(self.strstart);
            if self.strstart >= W_SIZE + MAX_DIST {
                let keep = W_SIZE.saturating_sub(more);
                self.window.copy_within(W_SIZE..W_SIZE + keep, 0);
                self.match_start = self.match_start.wrapping_sub(W_SIZE);
                self.strstart -= W_SIZE;
                self.block_start -= W_SIZE as isize;
                if self.insert > self.strstart {
                    self.insert = self.strstart;
                }
                self.slide_hash();
                more += W_SIZE;
            }
            let rest = self.input.get(self.in_pos..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            let n = more.min(rest.len());
            let dst = self.strstart + self.lookahead;
            if let (Some(d), Some(s)) = (self.window.get_mut(dst..dst + n), rest.get(..n)) {
                d.copy_from_slice(s);
            }
            self.in_pos += n;
            self.lookahead += n;
            if self.lookahead + self.insert >= MIN_MATCH {
                let mut s = self.strstart.saturating_sub(self.insert);
                self.ins_h = usize::from(self.w(s));
                self.update_hash(self.w(s + 1));
                while self.insert > 0 {
                    self.update_hash(self.w(s + MIN_MATCH - 1));
                    let head = at(&self.head, self.ins_h);
                    put(&mut self.prev, s & W_MASK, head);
                    put(&mut self.head, self.ins_h, s as u16);
                    s += 1;
                    self.insert -= 1;
                    if self.lookahead + self.insert < MIN_MATCH {
                        break;
                    }
                }
            }
            if !(self.lookahead < MIN_LOOKAHEAD && self.in_pos < self.input.len()) {
                break;
            }
        }
    }

    fn longest_match(&mut self, mut cur_match: usize) -> usize {
        let mut chain_length = MAX_CHAIN;
        let scan = self.strstart;
        let mut best_len = self.prev_length;
        let mut nice_match = NICE_MATCH;
        let limit = self.strstart.saturating_sub(MAX_DIST);
        let strend = self.strstart + MAX_MATCH;
        let mut scan_end1 = self.w((scan + best_len).wrapping_sub(1));
        let mut scan_end = self.w(scan + best_len);
        if self.prev_length >= GOOD_MATCH {
            chain_length >>= 2;
        }
        if nice_match > self.lookahead {
            nice_match = self.lookahead;
        }
        loop {
            let m = cur_match;
            if self.w(m + best_len) == scan_end
                && self.w(m + best_len - 1) == scan_end1
                && self.w(m) == self.w(scan)
                && self.w(m + 1) == self.w(scan + 1)
            {
                let mut s = scan + 2;
                let mut mm = m + 2;
                'outer: loop {
                    for _ in 0..8 {
                        s += 1;
                        mm += 1;
                        if self.w(s) != self.w(mm) {
                            break 'outer;
                        }
                    }
                    if s >= strend {
                        break;
                    }
                }
                let len = MAX_MATCH.saturating_sub(strend.saturating_sub(s));
                if len > best_len {
                    self.match_start = cur_match;
                    best_len = len;
                    if len >= nice_match {
                        break;
                    }
                    scan_end1 = self.w(scan + best_len - 1);
                    scan_end = self.w(scan + best_len);
                }
            }
            cur_match = usize::from(at(&self.prev, cur_match & W_MASK));
            if cur_match <= limit {
                break;
            }
            chain_length -= 1;
            if chain_length == 0 {
                break;
            }
        }
        best_len.min(self.lookahead)
    }

    fn tally_lit(&mut self, c: u8) -> bool {
        self.syms.push((0, c));
        if let Some(t) = self.dyn_ltree.get_mut(usize::from(c)) {
            t.freq += 1;
        }
        self.syms.len() == LIT_BUFSIZE - 1
    }

    fn tally_dist(&mut self, dist: usize, lc: usize) -> bool {
        self.syms.push((dist as u16, lc as u8));
        let lcode = usize::from(at(&self.tables.length_code, lc));
        if let Some(t) = self.dyn_ltree.get_mut(lcode + LITERALS + 1) {
            t.freq += 1;
        }
        let dcode = self.tables.d_code(dist.wrapping_sub(1));
        if let Some(t) = self.dyn_dtree.get_mut(dcode) {
            t.freq += 1;
        }
        self.syms.len() == LIT_BUFSIZE - 1
    }

    fn flush_block(&mut self, last: bool) {
        let stored_len = (self.strstart as isize - self.block_start).max(0) as usize;
        let buf_start = usize::try_from(self.block_start).ok();
        self.tr_flush_block(buf_start, stored_len, last);
        self.block_start = self.strstart as isize;
    }

    fn tr_flush_block(&mut self, buf_start: Option<usize>, stored_len: usize, last: bool) {
        let stree_l = self.tables.static_ltree;
        let stree_d = self.tables.static_dtree;
        let l_max = self
            .ts
            .build_tree(&mut self.dyn_ltree, STATIC_L_DESC, &stree_l);
        let d_max = self
            .ts
            .build_tree(&mut self.dyn_dtree, STATIC_D_DESC, &stree_d);
        let max_blindex = self.build_bl_tree(l_max, d_max);
        let mut opt_lenb = self.ts.opt_len.wrapping_add(3 + 7) >> 3;
        let static_lenb = self.ts.static_len.wrapping_add(3 + 7) >> 3;
        if static_lenb <= opt_lenb {
            opt_lenb = static_lenb;
        }
        let stored = buf_start.and_then(|s| self.window.get(s..s + stored_len));
        match stored {
            Some(data) if stored_len as u64 + 4 <= opt_lenb => {
                let data = data.to_vec();
                self.bits.send(u32::from(last), 3);
                self.bits.windup();
                let len = stored_len as u16;
                self.bits.out.extend_from_slice(&len.to_le_bytes());
                self.bits.out.extend_from_slice(&(!len).to_le_bytes());
                self.bits.out.extend_from_slice(&data);
            }
            _ if static_lenb == opt_lenb => {
                self.bits.send((1 << 1) + u32::from(last), 3);
                self.compress_block(&stree_l, &stree_d);
            }
            _ => {
                self.bits.send((2 << 1) + u32::from(last), 3);
                self.send_all_trees(l_max + 1, d_max + 1, max_blindex + 1);
                let (lt, dt) = (self.dyn_ltree, self.dyn_dtree);
                self.compress_block(&lt, &dt);
            }
        }
        self.init_block();
        if last {
            self.bits.windup();
        }
    }

    fn build_bl_tree(&mut self, l_max: usize, d_max: usize) -> usize {
        let mut all = runs(&mut self.dyn_ltree, l_max);
        all.extend(runs(&mut self.dyn_dtree, d_max));
        for run in all {
            match run {
                Run::Plain { len, count } => self.bl_freq_add(len, count as u32),
                Run::Rep { len, differs, .. } => {
                    if differs {
                        self.bl_freq_add(len, 1);
                    }
                    self.bl_freq_add(REP_3_6, 1);
                }
                Run::Zeros10 { .. } => self.bl_freq_add(REPZ_3_10, 1),
                Run::Zeros138 { .. } => self.bl_freq_add(REPZ_11_138, 1),
            }
        }
        let mut bl = self.bl_tree;
        self.ts.build_tree(&mut bl, STATIC_BL_DESC, &[]);
        self.bl_tree = bl;
        let mut max_blindex = BL_CODES - 1;
        while max_blindex >= 3 {
            let code = usize::from(at(&BL_ORDER, max_blindex));
            if at(&self.bl_tree, code).len != 0 {
                break;
            }
            max_blindex -= 1;
        }
        self.ts.opt_len = self
            .ts
            .opt_len
            .wrapping_add(3 * (max_blindex as u64 + 1) + 5 + 5 + 4);
        max_blindex
    }

    fn bl_freq_add(&mut self, code: usize, n: u32) {
        if let Some(t) = self.bl_tree.get_mut(code) {
            t.freq += n;
        }
    }

    fn send_tree(&mut self, is_l: bool, max_code: usize) {
        let all = if is_l {
            runs(&mut self.dyn_ltree, max_code)
        } else {
            runs(&mut self.dyn_dtree, max_code)
        };
        let bl = self.bl_tree;
        for run in all {
            match run {
                Run::Plain { len, count } => {
                    for _ in 0..count {
                        self.bits.send_code(len, &bl);
                    }
                }
                Run::Rep {
                    len,
                    mut count,
                    differs,
                } => {
                    if differs {
                        self.bits.send_code(len, &bl);
                        count -= 1;
                    }
                    self.bits.send_code(REP_3_6, &bl);
                    self.bits.send(count.saturating_sub(3) as u32, 2);
                }
                Run::Zeros10 { count } => {
                    self.bits.send_code(REPZ_3_10, &bl);
                    self.bits.send(count.saturating_sub(3) as u32, 3);
                }
                Run::Zeros138 { count } => {
                    self.bits.send_code(REPZ_11_138, &bl);
                    self.bits.send(count.saturating_sub(11) as u32, 7);
                }
            }
        }
    }

    fn send_all_trees(&mut self, lcodes: usize, dcodes: usize, blcodes: usize) {
        self.bits.send(lcodes.saturating_sub(257) as u32, 5);
        self.bits.send(dcodes.saturating_sub(1) as u32, 5);
        self.bits.send(blcodes.saturating_sub(4) as u32, 4);
        for rank in 0..blcodes {
            let code = usize::from(at(&BL_ORDER, rank));
            let len = at(&self.bl_tree, code).len;
            self.bits.send(u32::from(len), 3);
        }
        self.send_tree(true, lcodes.saturating_sub(1));
        self.send_tree(false, dcodes.saturating_sub(1));
    }

    fn compress_block(&mut self, ltree: &[Ct], dtree: &[Ct]) {
        let syms = core::mem::take(&mut self.syms);
        for &(dist, lc) in &syms {
            let (dist, lc) = (usize::from(dist), usize::from(lc));
            if dist == 0 {
                self.bits.send_code(lc, ltree);
            } else {
                let code = usize::from(at(&self.tables.length_code, lc));
                self.bits.send_code(code + LITERALS + 1, ltree);
                let extra = usize::from(at(&EXTRA_LBITS, code));
                if extra != 0 {
                    let base = usize::from(at(&self.tables.base_length, code));
                    self.bits.send(lc.wrapping_sub(base) as u32, extra);
                }
                let dist = dist - 1;
                let code = self.tables.d_code(dist);
                self.bits.send_code(code, dtree);
                let extra = usize::from(at(&EXTRA_DBITS, code));
                if extra != 0 {
                    let base = usize::from(at(&self.tables.base_dist, code));
                    self.bits.send(dist.wrapping_sub(base) as u32, extra);
                }
            }
        }
        self.syms = syms;
        self.bits.send_code(END_BLOCK, ltree);
    }

    /// `deflate_slow` with `flush = Z_FINISH`.
    fn deflate_slow(&mut self) {
        loop {
            if self.lookahead < MIN_LOOKAHEAD {
                self.fill_window();
                if self.lookahead == 0 {
                    break;
                }
            }
            let mut hash_head = 0;
            if self.lookahead >= MIN_MATCH {
                hash_head = self.insert_string(self.strstart);
            }
            self.prev_length = self.match_length;
            self.prev_match = self.match_start;
            self.match_length = MIN_MATCH - 1;
            if hash_head != 0
                && self.prev_length < MAX_LAZY
                && self.strstart.wrapping_sub(hash_head) <= MAX_DIST
            {
                self.match_length = self.longest_match(hash_head);
                if self.match_length == MIN_MATCH
                    && self.strstart.wrapping_sub(self.match_start) > TOO_FAR
                {
                    self.match_length = MIN_MATCH - 1;
                }
            }
            if self.prev_length >= MIN_MATCH && self.match_length <= self.prev_length {
                let max_insert = (self.strstart + self.lookahead).wrapping_sub(MIN_MATCH);
                let dist = self.strstart.wrapping_sub(1).wrapping_sub(self.prev_match);
                let bflush = self.tally_dist(dist, self.prev_length - MIN_MATCH);
                self.lookahead = self.lookahead.saturating_sub(self.prev_length - 1);
                self.prev_length -= 2;
                loop {
                    self.strstart += 1;
                    if self.strstart <= max_insert {
                        self.insert_string(self.strstart);
                    }
                    self.prev_length -= 1;
                    if self.prev_length == 0 {
                        break;
                    }
                }
                self.match_available = false;
                self.match_length = MIN_MATCH - 1;
                self.strstart += 1;
                if bflush {
                    self.flush_block(false);
                }
            } else if self.match_available {
                let bflush = self.tally_lit(self.w(self.strstart - 1));
                if bflush {
                    self.flush_block(false);
                }
                self.strstart += 1;
                self.lookahead -= 1;
            } else {
                self.match_available = true;
                self.strstart += 1;
                self.lookahead -= 1;
            }
        }
        if self.match_available {
            self.tally_lit(self.w(self.strstart - 1));
            self.match_available = false;
        }
        self.insert = self.strstart.min(MIN_MATCH - 1);
        self.flush_block(true);
    }
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// `zlib.compress(data)` (level 6), byte for byte as CPython's zlib writes it.
pub(crate) fn zlib_compress(data: &[u8]) -> Vec<u8> {
    let mut d = Deflate::new(data);
    d.bits.out.extend_from_slice(&[0x78, 0x9c]);
    d.deflate_slow();
    let mut out = d.bits.out;
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn hex(b: &[u8]) -> std::string::String {
        b.iter().map(|x| std::format!("{x:02x}")).collect()
    }

    /// The deterministic inputs described in `tests/data/signing_zlib.json`.
    fn gen(kind: &str, n: usize, a: u64, seed: u64) -> Vec<u8> {
        let mut x = seed;
        let mut r = move || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x >> 33
        };
        let mut out = Vec::new();
        match kind {
            "random" => {
                let base = if a <= 26 { 97 } else { 0 };
                for _ in 0..n {
                    out.push((base + r() % a) as u8);
                }
            }
            "runs" => {
                while out.len() < n {
                    let b = (97 + r() % a) as u8;
                    let times = 1 + r() % 300;
                    out.extend(core::iter::repeat_n(b, times as usize));
                }
                out.truncate(n);
            }
            "periodic" => {
                let period: Vec<u8> = (0..a).map(|_| (97 + r() % 26) as u8).collect();
                while out.len() < n {
                    out.extend_from_slice(&period);
                }
                out.truncate(n);
                for i in (0..n).step_by(97) {
                    let v = (r() % 256) as u8;
                    let idx = (i + (r() % 97) as usize) % n;
                    out[idx] = v;
                }
            }
            other => panic!("unknown kind {other}"),
        }
        out
    }

    #[test]
    fn matches_cpython_zlib() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/signing_zlib.json")).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        for c in cases {
            let n = c["len"].as_u64().unwrap() as usize;
            let data = gen(
                c["kind"].as_str().unwrap(),
                n,
                c["alphabet_or_period"].as_u64().unwrap(),
                c["seed"].as_u64().unwrap(),
            );
            assert_eq!(hex(&Sha256::digest(&data)), c["input_sha256"], "input {c}");
            let z = zlib_compress(&data);
            assert_eq!(z.len() as u64, c["zlib_len"].as_u64().unwrap(), "{c}");
            assert_eq!(hex(&Sha256::digest(&z)), c["zlib_sha256"], "{c}");
            let back = miniz_oxide::inflate::decompress_to_vec_zlib(&z).unwrap();
            assert_eq!(back, data, "{c}");
        }
        assert_eq!(cases.len(), 27);
    }

    #[test]
    fn empty_input_is_zlibs() {
        assert_eq!(
            zlib_compress(b""),
            [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]
        );
    }
}
