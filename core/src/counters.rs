//! Per-thread counts of expensive operations (feature `counters`), so tests
//! can prove that work was skipped — e.g. that a rate-limited attempt never
//! reaches the HMAC. Not for production builds.

use core::cell::Cell;

std::thread_local! {
    static TOKEN_MACS: Cell<u64> = const { Cell::new(0) };
}

pub(crate) fn count_token_mac() {
    TOKEN_MACS.with(|c| c.set(c.get().saturating_add(1)));
}

/// Token signatures (HMACs) computed on this thread so far.
pub fn token_macs() -> u64 {
    TOKEN_MACS.with(Cell::get)
}
