//! The transport scenarios on tokio: the same table and robustness checks as
//! `wsauth-smol` (`wsauth-test-support`) against a real server on loopback.

use async_tungstenite::tokio::TokioAdapter;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::future::Future;
use std::net::SocketAddr;
use wsauth_test_support::transport::{self as support, Harness, Running, Socket};
use wsauth_tokio::{Gateway, TokioRuntime};

struct Tokio(tokio::runtime::Runtime);

fn harness() -> Tokio {
    Tokio(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime"),
    )
}

impl Harness for Tokio {
    type Rt = TokioRuntime;

    fn rt(&self) -> TokioRuntime {
        TokioRuntime
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }

    fn start(&self, gateway: Gateway) -> BoxFuture<'static, Running> {
        wsauth_test_support::start(TokioRuntime, gateway)
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<Socket>> {
        async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            Ok(Box::new(TokioAdapter::new(s)) as Socket)
        }
        .boxed()
    }
}

#[test]
fn scenario_table() {
    support::run_table(&harness());
}

#[test]
fn handshake_timeout_drops_silent_clients() {
    support::handshake_timeout_drops_silent_clients(&harness());
}

#[test]
fn oversized_and_plain_requests_are_refused() {
    support::oversized_and_plain_requests_are_refused(&harness());
}

#[test]
fn oversized_tokens_are_refused() {
    support::oversized_tokens_are_refused(&harness());
}

#[test]
fn oversized_messages_close_1009() {
    support::oversized_messages_close_1009(&harness());
}

#[test]
fn graceful_shutdown_closes_1001() {
    support::graceful_shutdown_closes_1001(&harness());
}

#[test]
fn chat_reaches_room_and_staff() {
    support::chat_reaches_room_and_staff(&harness());
}

#[test]
fn logs_stream_decisions_without_tokens() {
    support::logs_stream_decisions_without_tokens(&harness());
}

#[test]
fn receipts_stream_progress() {
    support::receipts_stream_progress(&harness());
}

#[test]
fn ping_is_answered() {
    support::ping_is_answered(&harness());
}

#[test]
fn malformed_control_messages_close_4400() {
    support::malformed_control_messages_close_4400(&harness());
}

#[test]
fn in_band_login_on_an_anonymous_route() {
    support::in_band_login_on_an_anonymous_route(&harness());
}

#[test]
fn oversized_refresh_closes_4400() {
    support::oversized_refresh_closes_4400(&harness());
}

#[test]
fn pipelined_first_frame_is_kept() {
    support::pipelined_first_frame_is_kept(&harness());
}

#[test]
fn invalid_utf8_closes_1007() {
    support::invalid_utf8_closes_1007(&harness());
}

#[test]
fn staff_served_while_attackers_hold_the_per_peer_maximum() {
    support::staff_served_while_attackers_hold_the_per_peer_maximum(&harness());
}

#[test]
fn trusted_proxies_forward_the_client_address() {
    support::trusted_proxies_forward_the_client_address(&harness());
}

#[test]
fn idle_sockets_are_pinged_then_closed() {
    support::idle_sockets_are_pinged_then_closed(&harness());
}

#[test]
fn silent_sockets_above_the_share_are_dropped_fast() {
    support::silent_sockets_above_the_share_are_dropped_fast(&harness());
}

// Edge mode: a real upstream WebSocket server behind the gateway.

#[test]
fn edge_staff_is_forwarded_without_credentials() {
    wsauth_test_support::edge::staff_is_forwarded_without_credentials(&harness());
}

#[test]
fn edge_refusals_are_not_forwarded() {
    wsauth_test_support::edge::refusals_are_not_forwarded(&harness());
}

#[test]
fn edge_open_phase_rules_hold_on_forwarded_sockets() {
    wsauth_test_support::edge::open_phase_rules_hold_on_forwarded_sockets(&harness());
}

#[test]
fn edge_message_auth_connects_after_login() {
    wsauth_test_support::edge::message_auth_connects_after_login(&harness());
}

#[test]
fn edge_unreachable_upstream_closes_1014() {
    wsauth_test_support::edge::unreachable_upstream_closes_1014(&harness());
}

#[test]
fn edge_the_apps_close_code_reaches_the_client() {
    wsauth_test_support::edge::the_apps_close_code_reaches_the_client(&harness());
}

#[test]
fn edge_upstream_subprotocol_reaches_the_client() {
    wsauth_test_support::edge::upstream_subprotocol_reaches_the_client(&harness());
}

#[test]
fn edge_revocation_closes_both_sides() {
    wsauth_test_support::edge::revocation_closes_both_sides(&harness());
}

#[test]
fn edge_oversized_messages_are_not_relayed() {
    wsauth_test_support::edge::oversized_messages_are_not_relayed(&harness());
}

#[test]
fn edge_silent_upstream_times_out_1014() {
    wsauth_test_support::edge::silent_upstream_times_out_1014(&harness());
}

#[test]
fn edge_client_closes_reach_the_upstream() {
    wsauth_test_support::edge::client_closes_reach_the_upstream(&harness());
}

#[test]
fn edge_both_directions_flow_while_each_peer_writes() {
    wsauth_test_support::edge::both_directions_flow_while_each_peer_writes(&harness());
}

#[test]
fn a_close_while_the_app_sends_gets_its_reply() {
    wsauth_test_support::transport::a_close_while_the_app_sends_gets_its_reply(&harness());
}
