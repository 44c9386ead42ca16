//! The HTTP service: routes by resource, JSON errors, metrics, graceful shutdown.

mod auth;
mod compress;
mod cursor;
mod dispatch;
mod error;
mod limits;
pub mod listen;
mod metrics;
pub mod openapi;
mod params;
mod process;
mod routes;
mod tile_cache;
mod timeout;
mod track;

pub use dispatch::App;
pub use error::{ApiError, ApiResult};
pub use metrics::{Metrics, RouteId};
pub use params::{DEFAULT_LIMIT, MAX_RESULTS};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::MethodRouter;
use axum::Router;

use crate::index::Index;
use crate::replication::follower::{FollowStatus, Host};

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
    /// Bearer token required by write routes, if set.
    pub write_token: Option<String>,
    /// Bearer token required by the replication endpoints, if set.
    pub replication_token: Option<String>,
    /// The primary this server follows (a read-only replica), if any.
    pub follow: Option<String>,
    /// A base map tile URL template for the map page (off by default: the page needs no
    /// internet).
    pub basemap_url: Option<String>,
    /// Attribution shown with the base map.
    pub basemap_attribution: Option<String>,
    /// Attribution of the data served (shown on the map page), e.g. GeoNames' CC-BY.
    pub data_attribution: Option<String>,
    /// The browser origin allowed to call the API (`*` for any); no CORS headers when unset.
    pub cors_origin: Option<String>,
    /// Connection limits: head timeout, open connections, head size.
    pub conn_limits: listen::ConnLimits,
    /// Heatmap tiles rendered at once (0: one less than the query threads, at least one), so
    /// costly tiles leave threads to queries.
    pub tile_renders: usize,
    /// Bytes of rendered tiles kept in memory.
    pub tile_cache_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            read_only: false,
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 16 * 1024 * 1024,
            query_threads: 0,
            write_token: None,
            replication_token: None,
            follow: None,
            basemap_url: None,
            basemap_attribution: None,
            data_attribution: None,
            cors_origin: None,
            conn_limits: listen::ConnLimits::default(),
            tile_renders: 0,
            tile_cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What every handler can reach: one `Arc`, so the clone each request and layer takes is one
/// counter, not a dozen.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    /// The index served; a follower swaps in a new one when it re-snapshots. The mutex is held
    /// only to clone or swap the `Arc`, so async handlers may take it.
    index: Arc<Mutex<Arc<Index>>>,
    /// Request and query counters.
    pub metrics: Arc<Metrics>,
    /// The server's settings.
    pub config: Arc<ServerConfig>,
    /// Where index work runs.
    pub pool: Arc<rayon::ThreadPool>,
    /// The latest committed sequence, for long-polling followers.
    pub sequence: Arc<tokio::sync::watch::Sender<u64>>,
    /// Followers of this server: name to (last sequence asked after, when).
    pub followers: Arc<Mutex<BTreeMap<String, (u64, Instant)>>>,
    /// The follower's state, when this server is a replica.
    pub follow: Option<Arc<Mutex<FollowStatus>>>,
    /// Set when the server starts shutting down, so long-polls end instead of holding it up.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// Heatmap renders allowed at once, and how many requests wait for one.
    pub tiles: Arc<TileGate>,
    /// Rendered tiles of the current index state.
    pub tile_cache: Arc<tile_cache::TileCache>,
    /// Set while a replica serves a placeholder until its first snapshot is in: `/v1` routes
    /// answer 503 meanwhile.
    loading: Arc<std::sync::atomic::AtomicBool>,
    /// Set while a `POST /v1/verify` walks the index.
    pub verifying: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// State for serving `index`.
    ///
    /// # Errors
    /// [`crate::Error::Io`] if the operating system refuses to start the query threads.
    pub fn new(index: Arc<Index>, config: ServerConfig) -> crate::Result<AppState> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.query_threads)
            .thread_name(|i| format!("kdsled-query-{i}"))
            .build()
            .map_err(|e| {
                crate::Error::Io(std::io::Error::other(format!(
                    "starting the query threads: {e}"
                )))
            })?;
        let metrics = Metrics::new(routes().iter().map(|(path, _)| *path));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        metrics.set_start(now);
        let (sequence, _) = tokio::sync::watch::channel(index.meta().sequence);
        Ok(AppState(Arc::new(Shared {
            sequence: Arc::new(sequence),
            followers: Arc::default(),
            follow: None,
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
            loading: Arc::default(),
            verifying: Arc::default(),
            tile_cache: Arc::new(tile_cache::TileCache::new(config.tile_cache_bytes)),
            tiles: Arc::new(TileGate::new(match config.tile_renders {
                0 => pool.current_num_threads().saturating_sub(1).max(1),
                n => n,
            })),
            index: Arc::new(Mutex::new(index)),
            metrics: Arc::new(metrics),
            config: Arc::new(config),
            pool: Arc::new(pool),
        })))
    }

    /// This state as a replica's, following the primary whose state `status` tracks. Call it
    /// before the state is shared.
    pub fn following(mut self, status: Arc<Mutex<FollowStatus>>) -> AppState {
        Arc::make_mut(&mut self.0).follow = Some(status);
        self
    }
}

impl AppState {
    /// The index being served now.
    pub fn index(&self) -> Arc<Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Serves `index` from now on; requests already running finish on the old one.
    pub fn replace_index(&self, index: Arc<Index>) {
        let seq = index.meta().sequence;
        *self.index.lock().unwrap_or_else(|p| p.into_inner()) = index;
        self.loading
            .store(false, std::sync::atomic::Ordering::Release);
        self.sequence.send_replace(seq);
    }

    /// Marks the index served as a placeholder until [`AppState::replace_index`] brings the
    /// real one.
    pub fn set_loading(&self, loading: bool) {
        self.loading
            .store(loading, std::sync::atomic::Ordering::Release);
    }

    /// Whether the server is waiting for its first index (a replica's first snapshot).
    pub fn is_loading(&self) -> bool {
        self.loading.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Wakes long-polls after a commit.
    pub fn committed(&self, seq: u64) {
        self.sequence.send_replace(seq);
    }
}

impl Host for AppState {
    fn index(&self) -> Arc<Index> {
        AppState::index(self)
    }
    fn replace(&self, index: Arc<Index>) {
        self.replace_index(index);
    }
    fn applied(&self, seq: u64) {
        self.committed(seq);
    }
}

pub(crate) use crate::point::fnv1a;

/// Bounds the heatmap renders running at once: a tile at the largest radius costs ~100x a small
/// one, and tiles are unauthenticated.
pub struct TileGate {
    permits: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
}

/// Requests that may wait for a render slot before new ones are refused with 503.
const MAX_TILE_WAITERS: usize = 64;

impl TileGate {
    fn new(n: usize) -> TileGate {
        TileGate {
            permits: tokio::sync::Semaphore::new(n),
            waiting: Default::default(),
        }
    }

    /// A render slot, waiting at most `wait`; 503 when too many wait or the wait runs out.
    pub async fn enter(&self, wait: Duration) -> ApiResult<tokio::sync::SemaphorePermit<'_>> {
        use std::sync::atomic::Ordering;
        let busy = || {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "too many heatmap tiles are being rendered: retry shortly",
            )
        };
        if let Ok(p) = self.permits.try_acquire() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_TILE_WAITERS {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        let r = tokio::time::timeout(wait, self.permits.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match r {
            Ok(Ok(p)) => Ok(p),
            _ => Err(busy()),
        }
    }
}

/// Every route the server serves, as (path, methods): the router is built from this list, and the
/// OpenAPI test checks the description against it.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    use axum::routing::{get, post};
    vec![
        ("/", get(routes::map::page)),
        ("/assets/leaflet.js", get(routes::map::leaflet_js)),
        ("/assets/leaflet.css", get(routes::map::leaflet_css)),
        (
            "/assets/LICENSE-leaflet.txt",
            get(routes::map::leaflet_license),
        ),
        ("/assets/countries-50m.json", get(routes::map::countries)),
        (
            "/assets/topojson-client.min.js",
            get(routes::map::topojson_js),
        ),
        (
            "/assets/LICENSE-basemap.txt",
            get(routes::map::basemap_license),
        ),
        ("/docs", get(routes::docs::page)),
        ("/assets/redoc.standalone.js", get(routes::docs::redoc_js)),
        (
            "/assets/LICENSE-redoc.txt",
            get(routes::docs::redoc_license),
        ),
        ("/healthz", get(routes::health::healthz)),
        ("/metrics", get(routes::health::metrics)),
        ("/v1/info", get(routes::inspect::info)),
        ("/v1/verify", post(routes::inspect::verify)),
        ("/openapi.json", get(openapi::serve)),
        ("/v1/near", get(routes::query::near)),
        ("/v1/nearest", get(routes::query::nearest)),
        ("/v1/within", get(routes::query::within)),
        ("/v1/stats", get(routes::query::stats)),
        ("/readyz", get(routes::health::readyz)),
        ("/v1/replication/changes", get(routes::replication::changes)),
        (
            "/v1/replication/snapshot",
            get(routes::replication::snapshot),
        ),
        ("/v1/tiles/heatmap/{z}/{x}/{y}", get(routes::tiles::heatmap)),
        ("/v1/tiles/heatmap.json", get(routes::tiles::tilejson)),
        ("/v1/points", post(routes::write::post_points)),
        (
            "/v1/points/{id}",
            get(routes::points::get_point)
                .put(routes::write::put_point)
                .delete(routes::write::delete_point),
        ),
    ]
}

/// The application for `state`: the router of every route, and the query routes' direct lanes
/// ([`dispatch`]).
pub fn app(state: AppState) -> App {
    App::new(&state, router(state.clone()))
}

/// The router of every route with all its layers.
///
/// Axum wraps every route in each layer separately and boxes each wrapping, so every layer costs
/// each request an allocation, a clone of the boxed service and a virtual call: the stack is kept
/// to what each request needs ([`track`] is one service for counting, the deadline, the body
/// limit and JSON errors), and compression and tracking are handed to axum as one layer so they
/// are boxed once.
fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for (path, route) in routes() {
        r = r.route(path, route);
    }
    let cors = cors(state.config.cors_origin.as_deref());
    let r = r
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(
            // Outermost first: `track` sits inside compression so it reads error bodies as
            // written.
            tower::ServiceBuilder::new()
                .layer(compress::CompressLayer)
                .layer(track::TrackLayer::new(state.clone())),
        );
    match cors {
        Some(cors) => r.layer(cors),
        None => r,
    }
    .with_state(state)
}

/// CORS for browser pages on another origin: preflights are answered here, before routing.
/// Without a configured origin (or with an invalid one) there is no layer.
fn cors(origin: Option<&str>) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origin = origin?;
    let allow = if origin == "*" {
        AllowOrigin::any()
    } else {
        match HeaderValue::from_str(origin) {
            Ok(v) => AllowOrigin::exact(v),
            Err(_) => {
                tracing::warn!(
                    origin,
                    "the CORS origin is not a valid header value: CORS off"
                );
                return None;
            }
        }
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::PUT, Method::POST, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::IF_NONE_MATCH,
                header::ACCEPT,
            ])
            .expose_headers([header::ETAG])
            .max_age(Duration::from_secs(3600)),
    )
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
        Ok(Err(_)) | Err(_) => Err(panicked()),
    }
}

/// The answer to a query that panicked (logged).
pub(crate) fn panicked() -> ApiError {
    tracing::error!("a query panicked");
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "the query failed unexpectedly",
    )
}

/// Visits a query run on the async runtime may make before it gives way to the query pool: about
/// 50 µs of walking over cached nodes.
pub const INLINE_VISITS: u64 = 2048;

/// Runs a read query: first right here on the async runtime's thread, answering from caches
/// alone (`f(true)`: no storage read, at most [`INLINE_VISITS`] visits), and when that gives way,
/// on the query pool where it may wait on storage (`f(false)`).
///
/// Most small queries over a warm index finish inline in a few microseconds; the hop to the
/// pool (a channel, a wake-up of another thread, and the pool's idle spinning on 2 cores) cost
/// more than the walk itself. Nothing inline can block: storage is not touched.
pub async fn query<T, F>(pool: Arc<rayon::ThreadPool>, f: F) -> ApiResult<T>
where
    F: Fn(bool) -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(true))) {
        Ok(Err(e)) if e.gave_way => {}
        Ok(r) => return r,
        Err(_) => return Err(panicked()),
    }
    // Boxed so the rare hop does not size every query's future: a handler's future is moved
    // into axum's box whole, and this one (the pool, `f` again, the channel) would double it.
    Box::pin(blocking(pool, move || f(false))).await
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
    let served = state.clone();
    let stopping = state.stopping.clone();
    let limits = state.config.conn_limits;
    listen::serve_with_limits(listener, app(state), limits, async move {
        shutdown_signal().await;
        stopping.send_replace(true);
    })
    .await?;
    tracing::info!("shutting down: flushing the index");
    if let Err(e) = served.index().flush() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_renders_beyond_the_bound_wait_then_get_503() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let gate = TileGate::new(1);
            let held = gate.enter(Duration::from_millis(10)).await.expect("first");
            let busy = gate.enter(Duration::from_millis(50)).await.unwrap_err();
            assert_eq!(busy.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
            drop(held);
            let _again = gate
                .enter(Duration::from_millis(10))
                .await
                .expect("free again");
        });
    }
}
