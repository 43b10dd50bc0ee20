//! The claims a decision reads, gathered in one pass over the payload.
//!
//! The names are settings (`USER_ID_CLAIM`, `JTI_CLAIM`, …) beside PyJWT's
//! fixed ones, so they are looked up in a table built with the verifier: a
//! key of at most 16 bytes is found by its length and its bytes as two
//! words, in one probe of an open-addressed table (comparing each member's
//! key with thirteen names was the largest part of reading a payload after
//! its signature matched, measured on the verify path).

use super::JwtSettings;
use crate::py::json::{self, short_words as words_of, Encoding, JsonStr, JsonValue};
use alloc::string::String;
use alloc::vec::Vec;

/// What a claim is read for; a name can serve several (a `jti` that is also
/// the jti claim and the revocation claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Slot {
    Iat,
    Nbf,
    Exp,
    Iss,
    Aud,
    Sub,
    Jti,
    IsStaff,
    IsSuperuser,
    /// `JTI_CLAIM`.
    JtiClaim,
    /// `TOKEN_TYPE_CLAIM`.
    TokenType,
    /// `USER_ID_CLAIM`.
    UserId,
    /// The revocation claim (`revoke_token_claim`).
    Revoke,
}

const SLOTS: usize = 13;

/// PyJWT's and SimpleJWT's fixed names.
const FIXED: [(&str, Slot); 9] = [
    ("iat", Slot::Iat),
    ("nbf", Slot::Nbf),
    ("exp", Slot::Exp),
    ("iss", Slot::Iss),
    ("aud", Slot::Aud),
    ("sub", Slot::Sub),
    ("jti", Slot::Jti),
    ("is_staff", Slot::IsStaff),
    ("is_superuser", Slot::IsSuperuser),
];

/// Slots of the table: a power of two, over twice the most names (13).
const TABLE: usize = 32;

/// A name of at most 16 bytes: its bytes as two little-endian words, zero
/// past its end, and the slots it fills (`0` marks an empty entry).
#[derive(Debug, Clone, Copy)]
struct Entry {
    words: [u64; 2],
    len: u8,
    slots: u16,
}

const EMPTY: Entry = Entry {
    words: [0, 0],
    len: 0,
    slots: 0,
};

/// The names a decision reads, each with its slots.
#[derive(Debug, Clone)]
pub(super) struct ClaimNames {
    table: [Entry; TABLE],
    /// Names over 16 bytes (only settings can be that long).
    long: Vec<(String, u16)>,
    /// Every name, for keys written with escapes.
    all: Vec<(String, u16)>,
}

#[inline(always)]
fn hash(words: [u64; 2], len: usize) -> usize {
    let [lo, hi] = words;
    let x = lo
        .wrapping_add(hi.rotate_left(31))
        .wrapping_add(len as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 59) as usize
}

impl ClaimNames {
    pub(super) fn new(s: &JwtSettings) -> Self {
        let mut all: Vec<(String, u16)> = Vec::new();
        let mut add = |name: &str, slot: Slot| {
            let bit = 1u16 << (slot as u8);
            match all.iter_mut().find(|(n, _)| n == name) {
                Some((_, slots)) => *slots |= bit,
                None => all.push((String::from(name), bit)),
            }
        };
        for (name, slot) in FIXED {
            add(name, slot);
        }
        add(&s.jti_claim, Slot::JtiClaim);
        add(&s.token_type_claim, Slot::TokenType);
        add(&s.user_id_claim, Slot::UserId);
        add(&s.revoke_token_claim, Slot::Revoke);
        let mut table = [EMPTY; TABLE];
        let mut long = Vec::new();
        for (name, slots) in &all {
            let raw = name.as_bytes();
            if raw.len() > 16 {
                long.push((name.clone(), *slots));
                continue;
            }
            let words = words_of(raw);
            let mut h = hash(words, raw.len());
            // At most 13 names in 32 entries: an empty one is always found.
            while table.get(h).is_some_and(|e| e.slots != 0) {
                h = h.wrapping_add(1) & (TABLE - 1);
            }
            if let Some(e) = table.get_mut(h) {
                *e = Entry {
                    words,
                    len: raw.len() as u8,
                    slots: *slots,
                };
            }
        }
        ClaimNames { table, long, all }
    }

    /// The slots of a key of at most 16 bytes, given as [`words_of`] gives it.
    #[inline(always)]
    fn short(&self, words: [u64; 2], len: usize) -> u16 {
        let mut h = hash(words, len);
        for _ in 0..TABLE {
            let Some(e) = self.table.get(h) else {
                return 0;
            };
            if e.slots == 0 {
                return 0;
            }
            if e.words == words && usize::from(e.len) == len {
                return e.slots;
            }
            h = h.wrapping_add(1) & (TABLE - 1);
        }
        0
    }

    /// The slots of a key whose raw bytes are its text (no escapes).
    #[inline(always)]
    fn plain(&self, raw: &[u8], words: [u64; 2]) -> u16 {
        if raw.len() <= 16 {
            return self.short(words, raw.len());
        }
        self.long(raw)
    }

    /// The slots of a key over 16 bytes (kept out of line: the flat scan's
    /// callback stays small enough to be inlined, measured).
    #[cold]
    #[inline(never)]
    fn long(&self, raw: &[u8]) -> u16 {
        self.long
            .iter()
            .find(|(n, _)| n.as_bytes() == raw)
            .map_or(0, |(_, slots)| *slots)
    }

    /// The slots of any key.
    #[inline(never)]
    fn key(&self, k: JsonStr<'_>) -> u16 {
        match k.plain_bytes() {
            Some(raw) if raw.len() <= 16 => self.short(words_of(raw), raw.len()),
            Some(raw) => self.plain(raw, [0, 0]),
            None => self
                .all
                .iter()
                .filter(|(n, _)| k.eq_str(n))
                .fold(0, |acc, (_, slots)| acc | *slots),
        }
    }
}

/// The claims a decision reads, each the last duplicate in the payload.
pub(super) struct Claims<'a> {
    values: [Option<JsonValue<'a>>; SLOTS],
}

impl<'a> Claims<'a> {
    /// No claim.
    #[inline(always)]
    pub(super) fn none() -> Self {
        Claims {
            values: [None; SLOTS],
        }
    }

    #[inline(always)]
    pub(super) fn get(&self, slot: Slot) -> Option<&JsonValue<'a>> {
        self.values.get(slot as usize).and_then(Option::as_ref)
    }

    /// Validates the payload (Python's `json.loads`, an object) and keeps
    /// the claims a decision reads, in one pass. `self` starts as
    /// [`Claims::none`] (written in place: moving the claims was measured
    /// on the verify path).
    #[inline(always)]
    pub(super) fn collect(
        &mut self,
        payload: &'a [u8],
        names: &ClaimNames,
    ) -> Result<(), json::JsonError> {
        // Inlined into the scan: passing each member through memory to a
        // call was measured on the verify path.
        let flat = json::scan_flat_object(
            payload,
            #[inline(always)]
            |k, words, v| {
                // The flat scan's keys are plain: always `Some`.
                let slots = match k.plain_bytes() {
                    Some(raw) => names.plain(raw, words),
                    None => names.key(k),
                };
                self.put(slots, v);
            },
        );
        if flat.is_none() {
            *self = Claims::none();
            json::scan_object(payload, Encoding::Utf8, |k, v| self.put(names.key(k), v))?;
        }
        Ok(())
    }

    /// Keeps `v` in each of `slots` (a later duplicate replaces it).
    #[inline(always)]
    fn put(&mut self, mut slots: u16, v: JsonValue<'a>) {
        while slots != 0 {
            if let Some(dst) = self.values.get_mut(slots.trailing_zeros() as usize) {
                *dst = Some(v);
            }
            slots &= slots.wrapping_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &JwtSettings) -> Vec<(String, u16)> {
        let t = ClaimNames::new(s);
        t.all.clone()
    }

    /// Every name is found, by its bytes and with escapes, with exactly its
    /// slots, and no other key of the same length or a prefix is.
    #[test]
    fn every_name_is_found_and_nothing_else() {
        let odd = JwtSettings {
            user_id_claim: "a-user-id-claim-longer-than-16".into(),
            jti_claim: "exp".into(),
            token_type_claim: "t\u{e9}".into(),
            revoke_token_claim: "".into(),
            ..JwtSettings::default()
        };
        for s in [JwtSettings::default(), odd] {
            let t = ClaimNames::new(&s);
            for (name, slots) in names(&s) {
                let raw = name.as_bytes();
                let words = if raw.len() <= 16 {
                    words_of(raw)
                } else {
                    [0, 0]
                };
                assert_eq!(t.plain(raw, words), slots, "{name:?}");
                let doc = alloc::format!("{{\"{}\":1}}", name);
                let mut seen = 0;
                json::scan_object(doc.as_bytes(), Encoding::Utf8, |k, _| seen |= t.key(k)).unwrap();
                assert_eq!(seen, slots, "{name:?}");
                // The same name written with an escape.
                if let Some(first) = name.chars().next() {
                    let escaped = alloc::format!(
                        "{{\"\\u{:04x}{}\":1}}",
                        u32::from(first),
                        &name[first.len_utf8()..]
                    );
                    let mut seen = 0;
                    json::scan_object(escaped.as_bytes(), Encoding::Utf8, |k, _| seen |= t.key(k))
                        .unwrap();
                    assert_eq!(seen, slots, "{escaped:?}");
                }
                for other in [
                    alloc::format!("{name}x"),
                    alloc::format!("x{name}"),
                    name.chars().rev().collect::<String>() + "_",
                ] {
                    let raw = other.as_bytes();
                    let words = if raw.len() <= 16 {
                        words_of(raw)
                    } else {
                        [0, 0]
                    };
                    if !names(&s).iter().any(|(n, _)| *n == other) {
                        assert_eq!(t.plain(raw, words), 0, "{other:?}");
                    }
                }
            }
        }
    }
}
