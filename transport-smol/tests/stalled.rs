//! Stalled handshakes on smol: clients that connect and never finish their
//! upgrade request are dropped at the handshake timeout while others are served.

mod load_common;
#[path = "load_common/smol.rs"]
mod smol_rt;

#[test]
fn stalled_handshakes_are_dropped_while_others_are_served() {
    let pool = smol_rt::Pool::new(3);
    load_common::stalled_test(&pool.handle());
}
