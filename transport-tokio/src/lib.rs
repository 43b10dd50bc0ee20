//! wsauth on tokio (being built).
