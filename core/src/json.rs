//! Internal helpers (being filled in).
