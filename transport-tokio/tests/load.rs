//! Load on tokio: thousands of authenticated connections held open at once
//! against a server in its own process (`WSAUTH_LOAD_N`, default 2,000), with
//! 4401 and 4403 rejections interleaved; every connection checked and closed.

mod load_tokio;

use wsauth_test_support::load;

#[test]
fn thousands_of_authenticated_connections_held_then_closed() {
    let rt = load_tokio::runtime(4);
    load::load_test(
        &load_tokio::Tokio(rt.handle().clone()),
        "load_server_process",
    );
}

/// The server side of the load test; runs only as the process that test starts.
#[test]
#[ignore = "the server process of the load test (started by it)"]
fn load_server_process() {
    let rt = load_tokio::runtime(2);
    if !load::serve_as_child(&load_tokio::Tokio(rt.handle().clone()), 30_000) {
        eprintln!("load_server_process only runs as the load test's server process");
    }
}
