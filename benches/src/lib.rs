//! Shared fixtures for the wsauth benchmarks (being built).
