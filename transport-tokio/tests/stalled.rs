//! Stalled handshakes on tokio: clients that connect and never finish their
//! upgrade request are dropped at the handshake timeout while others are served.

mod load_tokio;

use wsauth_test_support::load;

#[test]
fn stalled_handshakes_are_dropped_while_others_are_served() {
    let rt = load_tokio::runtime(4);
    load::stalled_test(&load_tokio::Tokio(rt.handle().clone()));
}
