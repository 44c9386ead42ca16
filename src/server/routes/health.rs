//! Liveness and metrics.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{json_response, JSON};
use crate::server::error::ApiResult;
use crate::server::AppState;

/// Liveness, with the point count and format version.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The server is up", body = crate::server::openapi::HealthDoc))
)]
pub async fn healthz(State(s): State<AppState>) -> ApiResult<Response> {
    let m = s.index.meta();
    json_response(
        &json!({
            "status": "ok",
            "points": m.count,
            "format_version": m.format,
            "metric": m.metric.name(),
            "dims": m.dims,
            "generation": m.generation,
            "read_only": s.config.read_only,
        }),
        JSON,
    )
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
pub async fn metrics(State(s): State<AppState>) -> Response {
    let m = s.index.meta();
    let (hits, misses) = s
        .index
        .node_cache()
        .map(|c| (c.hits(), c.misses()))
        .unwrap_or((0, 0));
    let text = s.metrics.render(&[
        ("kdsled_points", "Points in the index.", m.count as f64),
        (
            "kdsled_nodes_read_total",
            "Tree nodes read from storage by all queries.",
            s.index.nodes_read_total() as f64,
        ),
        (
            "kdsled_node_cache_hits_total",
            "Node visits answered by the cache of decoded top-level nodes.",
            hits as f64,
        ),
        (
            "kdsled_node_cache_misses_total",
            "Node visits the node cache could have answered but did not hold.",
            misses as f64,
        ),
    ]);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}
