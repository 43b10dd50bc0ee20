//! C ABI for wsauth (being built).
