//! The decision, in the order it is made: the handshake view and its
//! credential ([`view`]), origin ([`origin`]), rate limit ([`ratelimit`]),
//! route ([`route`]), then principal and policy ([`decide`]: the owned
//! [`Handshake`](decide::Handshake) state machine and the steps the host answers).

pub mod decide;
pub mod origin;
pub mod ratelimit;
pub mod route;
pub mod view;
