//! Liveness and metrics.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{json_response, JSON};
use crate::server::error::ApiResult;
use crate::server::metrics::{self, LabelledGauges, Metrics, Reading};
use crate::server::AppState;

/// Liveness, with the point count and format version.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The server is up", body = crate::server::openapi::HealthDoc))
)]
pub async fn healthz(State(s): State<AppState>) -> ApiResult<Response> {
    let m = s.index().meta();
    let mut v = json!({
        "status": "ok",
        "points": m.count,
        "format_version": m.format,
        "metric": m.metric.name(),
        "dims": m.dims,
        "generation": m.generation,
        "sequence": m.sequence,
        "read_only": s.config.read_only || s.follow.is_some(),
    });
    if let Some(f) = &s.follow {
        let f = f.lock().unwrap_or_else(|p| p.into_inner()).clone();
        v["replication"] = json!({
            "primary": f.primary,
            "ready": f.ready,
            "applied_sequence": m.sequence,
            "primary_sequence": f.primary_sequence.max(m.sequence),
            "lag_sequences": f.primary_sequence.saturating_sub(m.sequence),
            "lag_seconds": f.lag_seconds(),
            "last_error": f.last_error,
        });
    }
    json_response(&v, &JSON)
}

/// Readiness: 200 once a replica has caught up with its primary (at once for a primary).
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve"),
        (status = 503, description = "A replica that has not caught up yet", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn readyz(State(s): State<AppState>) -> ApiResult<Response> {
    if let Some(f) = &s.follow {
        let f = f.lock().unwrap_or_else(|p| p.into_inner());
        if !f.ready {
            return Err(crate::server::error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "catching up with the primary {} (applied {}, primary at {})",
                    f.primary, f.applied_sequence, f.primary_sequence
                ),
            ));
        }
    }
    json_response(&json!({"status": "ready"}), &JSON)
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "application/openmetrics-text"))
)]
pub async fn metrics(State(s): State<AppState>) -> Response {
    let index = s.index();
    let m = index.meta();
    let (hits, misses) = index
        .node_cache()
        .map(|c| (c.hits(), c.misses()))
        .unwrap_or((0, 0));
    let reading = |name, help, value: f64| Reading { name, help, value };
    let mut readings = vec![
        reading("kdsled_points", "Points in the index.", m.count as f64),
        reading(
            "kdsled_nodes_read_total",
            "Tree nodes read from storage by all queries.",
            index.nodes_read_total() as f64,
        ),
        reading(
            "kdsled_node_cache_hits_total",
            "Node visits answered by the cache of decoded top-level nodes.",
            hits as f64,
        ),
        reading(
            "kdsled_node_cache_misses_total",
            "Node visits the node cache could have answered but did not hold.",
            misses as f64,
        ),
        reading(
            "kdsled_sequence",
            "The last committed sequence.",
            m.sequence as f64,
        ),
        reading(
            "kdsled_durable_sequence",
            "The last sequence known to be on disk (what replicas are served up to).",
            index.durable_sequence() as f64,
        ),
    ];
    readings.extend(crate::server::process::gauges());
    if let Some(f) = &s.follow {
        let f = f.lock().unwrap_or_else(|p| p.into_inner()).clone();
        readings.extend([
            reading(
                "kdsled_replication_lag_sequences",
                "Committed writes on the primary not yet applied here.",
                f.primary_sequence.saturating_sub(m.sequence) as f64,
            ),
            reading(
                "kdsled_replication_lag_seconds",
                "How long the oldest unapplied change has been known.",
                f.lag_seconds(),
            ),
            reading(
                "kdsled_replication_applied_sequence",
                "The last applied sequence.",
                m.sequence as f64,
            ),
            reading(
                "kdsled_replication_changes_applied_total",
                "Changes applied since start.",
                f.applied_changes as f64,
            ),
            reading(
                "kdsled_replication_snapshots_total",
                "Snapshots loaded since start.",
                f.snapshots as f64,
            ),
        ]);
    }
    let mut registry = s.metrics.registry(readings);
    let followers = s
        .followers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if !followers.is_empty() {
        // Follower names are checked to be label-safe where they are recorded.
        registry.register(
            "kdsled_replication_follower_sequence",
            "The sequence each follower last asked changes after",
            LabelledGauges::new(
                "follower",
                followers
                    .into_iter()
                    .map(|(name, (seq, _))| (name, seq as f64))
                    .collect(),
            ),
        );
    }
    (
        [(CONTENT_TYPE, metrics::CONTENT_TYPE)],
        Metrics::encode(&registry),
    )
        .into_response()
}
