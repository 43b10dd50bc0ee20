//! wsauth on smol (being built).
