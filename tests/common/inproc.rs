//! kdsled's HTTP service in the test (or benchmark) process, on an ephemeral loopback port.
#![allow(dead_code)]

use std::sync::Arc;

use kdsled::server::{app, AppState, ServerConfig};
use kdsled::Index;

/// A running in-process server; stops when dropped.
pub struct InProc {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _rt: tokio::runtime::Runtime,
}

/// Serves `index` with `config`.
pub fn serve(index: Arc<Index>, config: ServerConfig) -> InProc {
    serve_state(AppState::new(index, config).expect("server state"))
}

/// Serves an existing application state (the caller keeps a clone to act on the server).
pub fn serve_state(state: AppState) -> InProc {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let limits = state.config.conn_limits;
    let app = app(state);
    // The server's own accept loop (head timeout, connection cap), not axum's.
    rt.spawn(kdsled::server::listen::serve_with_limits(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    InProc { base, _rt: rt }
}
