//! The HTTP service: routes by resource, JSON errors, metrics, graceful shutdown.

mod error;
mod metrics;
pub mod openapi;
mod params;
mod routes;

pub use error::{ApiError, ApiResult};
pub use metrics::Metrics;
pub use params::{DEFAULT_LIMIT, MAX_RESULTS};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::index::Index;

/// How a server behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Refuse every write route with 405.
    pub read_only: bool,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
    /// Threads that run index work (0: one per core).
    pub query_threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            read_only: false,
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 16 * 1024 * 1024,
            query_threads: 0,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The index served.
    pub index: Arc<Index>,
    /// Request and query counters.
    pub metrics: Arc<Metrics>,
    /// The server's settings.
    pub config: Arc<ServerConfig>,
    /// Where index work runs.
    pub pool: Arc<rayon::ThreadPool>,
}

impl AppState {
    /// State for serving `index`.
    ///
    /// # Panics
    /// If the operating system refuses to start the query threads.
    pub fn new(index: Arc<Index>, config: ServerConfig) -> AppState {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.query_threads)
            .thread_name(|i| format!("kdsled-query-{i}"))
            .build()
            .expect("starting the query threads");
        let metrics = Metrics::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        metrics.set_start(now);
        AppState {
            index,
            metrics: Arc::new(metrics),
            config: Arc::new(config),
            pool: Arc::new(pool),
        }
    }
}

/// Every route the server serves, as (path, methods): the router is built from this list, and the
/// OpenAPI test checks the description against it.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    use axum::routing::{get, post};
    vec![
        ("/healthz", get(routes::health::healthz)),
        ("/metrics", get(routes::health::metrics)),
        ("/openapi.json", get(openapi::serve)),
        ("/v1/near", get(routes::query::near)),
        ("/v1/nearest", get(routes::query::nearest)),
        ("/v1/within", get(routes::query::within)),
        ("/v1/stats", get(routes::query::stats)),
        ("/v1/points", post(routes::write::post_points)),
        (
            "/v1/points/{id}",
            get(routes::points::get_point)
                .put(routes::write::put_point)
                .delete(routes::write::delete_point),
        ),
    ]
}

/// The application with all its layers.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for (path, route) in routes() {
        r = r.route(path, route);
    }
    let timeout = state.config.request_timeout;
    let body = state.config.max_body_bytes;
    r.fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(body))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

/// Counts and logs every request.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    state.metrics.request(&route, status, elapsed);
    tracing::debug!(%method, %uri, status, micros = elapsed.as_micros() as u64, "request");
    resp
}

/// Runs a blocking index operation on the query pool, off the async reactor, so slow disk never
/// stalls it.
///
/// A fixed pool rather than tokio's `spawn_blocking`: with 16 connections `spawn_blocking` ran
/// 16 threads on 2 cores, and their context switches halved throughput on 25 km answers.
pub async fn blocking<T, F>(pool: Arc<rayon::ThreadPool>, f: F) -> ApiResult<T>
where
    F: FnOnce() -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool.spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) | Err(_) => {
            tracing::error!("a query panicked");
            Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "the query failed unexpectedly",
            ))
        }
    }
}

/// Serves `state` on `addr` until SIGINT or SIGTERM, then finishes in-flight requests and flushes
/// the index. `on_bound` learns the actual address (useful with port 0).
pub async fn serve(
    state: AppState,
    addr: SocketAddr,
    on_bound: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    on_bound(bound);
    let index = state.index.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("shutting down: flushing the index");
    if let Err(e) = index.flush() {
        tracing::error!(error = %e, "flush at shutdown failed");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("signal received: no new connections, finishing requests in flight");
}
