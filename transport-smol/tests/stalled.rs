//! Stalled handshakes on smol: clients that connect and never finish their
//! upgrade request are dropped at the handshake timeout while others are served.

mod smol_rt;

use wsauth_test_support::load;

#[test]
fn stalled_handshakes_are_dropped_while_others_are_served() {
    let pool = smol_rt::Pool::new(3);
    load::stalled_test(&pool.handle());
}
