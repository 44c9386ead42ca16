//! The read queries: near, nearest, within and stats.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{bytes_response, json_response, GEOJSON, JSON};
use crate::geometry::BBox;
use crate::index::Snapshot;
use crate::output::{stats_json, AnswerView, Shape};
use crate::query::Answer;
use crate::server::error::{ApiError, ApiResult};
use crate::server::params::{parse_list, Params, MAX_RESULTS};
use crate::server::{blocking, AppState};

fn render(
    s: &AppState,
    snap: &Snapshot<'_>,
    a: &Answer,
    geojson: bool,
    with_distance: bool,
) -> ApiResult<Response> {
    s.metrics.nodes_read(a.nodes_read);
    let (shape, content_type) = if geojson {
        (Shape::GeoJson, GEOJSON)
    } else {
        (Shape::Json, JSON)
    };
    let body = AnswerView::load(snap, a, with_distance, shape)?.to_bytes();
    Ok(bytes_response(body, content_type))
}

/// Points within a radius, nearest first.
#[utoipa::path(
    get, path = "/v1/near", tag = "query",
    params(crate::server::openapi::NearQuery),
    responses(
        (status = 200, description = "Points within the radius, nearest first", body = crate::server::openapi::AnswerDoc),
        (status = 400, description = "A bad parameter", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn near(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    p.only(&["lon", "lat", "point", "radius", "limit", "format"])?;
    let meta = s.index().meta();
    let center = p.location(&meta)?;
    let radius = required(p.distance("radius", &meta, true)?, "radius")?;
    let limit = p.limit()?;
    let geojson = wants_geojson(&p, &headers, &meta)?;
    blocking(s.pool.clone(), move || {
        let index = s.index();
        let snap = index.snapshot();
        let a = snap.radius(&center, radius, limit)?;
        render(&s, &snap, &a, geojson, true)
    })
    .await
}

/// The k nearest points.
#[utoipa::path(
    get, path = "/v1/nearest", tag = "query",
    params(crate::server::openapi::NearestQuery),
    responses(
        (status = 200, description = "The k nearest points, nearest first", body = crate::server::openapi::AnswerDoc),
        (status = 400, description = "A bad parameter", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn nearest(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    p.only(&["lon", "lat", "point", "k", "max_distance", "format"])?;
    let meta = s.index().meta();
    let center = p.location(&meta)?;
    let k = required(p.count("k", 1, MAX_RESULTS)?, "k")?;
    let max = p.distance("max_distance", &meta, false)?;
    let geojson = wants_geojson(&p, &headers, &meta)?;
    blocking(s.pool.clone(), move || {
        let index = s.index();
        let snap = index.snapshot();
        let a = snap.nearest(&center, k, max)?;
        render(&s, &snap, &a, geojson, true)
    })
    .await
}

/// Points inside a bounding box.
#[utoipa::path(
    get, path = "/v1/within", tag = "query",
    params(crate::server::openapi::WithinQuery),
    responses(
        (status = 200, description = "Points inside the box", body = crate::server::openapi::AnswerDoc),
        (status = 400, description = "A bad parameter", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn within(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    p.only(&["bbox", "limit", "format"])?;
    let meta = s.index().meta();
    let dims = meta.dims as usize;
    let raw = p.required_str("bbox")?;
    let v = parse_list("bbox", raw)?;
    if v.len() != 2 * dims {
        return Err(ApiError::bad_param(
            "bbox",
            format!(
                "takes {} numbers (minimum corner, then maximum), got {}",
                2 * dims,
                v.len()
            ),
        ));
    }
    let bbox = BBox::new(meta.metric, &v[..dims], &v[dims..])?;
    let limit = p.limit()?;
    let geojson = wants_geojson(&p, &headers, &meta)?;
    blocking(s.pool.clone(), move || {
        let index = s.index();
        let snap = index.snapshot();
        let a = snap.within(&bbox, limit)?;
        render(&s, &snap, &a, geojson, false)
    })
    .await
}

/// Per-value counts (and sums) of an attribute within a radius.
#[utoipa::path(
    get, path = "/v1/stats", tag = "query",
    params(crate::server::openapi::StatsQuery),
    responses(
        (status = 200, description = "Counts per value, largest first", body = crate::server::openapi::StatsDoc),
        (status = 400, description = "A bad parameter", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn stats(State(s): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    p.only(&["lon", "lat", "point", "radius", "group_by", "sum"])?;
    let meta = s.index().meta();
    let center = p.location(&meta)?;
    let radius = required(p.distance("radius", &meta, true)?, "radius")?;
    let group_by = p.required_str("group_by")?.to_string();
    let sum = p.str("sum").filter(|x| !x.is_empty()).map(str::to_string);
    blocking(s.pool.clone(), move || {
        let a = s
            .index()
            .stats(&center, radius, &group_by, sum.as_deref())?;
        s.metrics.nodes_read(a.nodes_read);
        json_response(&stats_json(&a, &group_by, sum.as_deref()), JSON)
    })
    .await
}

/// GeoJSON when `format=geojson` or the client's `Accept` prefers `application/geo+json` (an
/// explicit `format=json` wins). RFC 7946 positions are lon/lat, so a euclidean index refuses.
fn wants_geojson(
    p: &Params,
    headers: &HeaderMap,
    meta: &crate::store::format::Meta,
) -> ApiResult<bool> {
    let asked = match p.str("format") {
        Some(_) => p.geojson()?,
        None => headers
            .get_all(axum::http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/geo+json")),
    };
    if asked && meta.metric != crate::geometry::Metric::Haversine {
        return Err(ApiError::bad_param(
            "format",
            format!(
                "GeoJSON (RFC 7946) positions are longitude and latitude; this index is \
                 euclidean in {} dimensions: ask for JSON",
                meta.dims
            ),
        ));
    }
    Ok(asked)
}

fn required<T>(v: Option<T>, name: &str) -> ApiResult<T> {
    v.ok_or_else(|| ApiError::bad_param(name, "is required"))
}
