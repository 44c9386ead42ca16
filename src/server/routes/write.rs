//! Writes: upsert one point, write a batch, delete one point.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value as Json};

use super::{json_response, JSON};
use crate::geometry::Metric;
use crate::index::{NewPoint, WriteOp};
use crate::point::{PointId, Value};
use crate::server::error::{ApiError, ApiResult};
use crate::server::AppState;
use crate::store::format::Meta;

/// Refuses writes on a read-only server or a replica, and without the write token.
fn writable(s: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    if let Some(primary) = &s.config.follow {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("this server is a read-only replica: send writes to the primary at {primary}"),
        ));
    }
    crate::server::auth::require(headers, s.config.write_token.as_deref(), "writes")?;
    if s.config.read_only {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "this server is read-only: writes are refused",
        ));
    }
    Ok(())
}

/// Runs a write off the reactor. Writes wait for a flush, so they use tokio's blocking threads
/// and leave the query pool to reads.
async fn run_write(s: AppState, ops: Vec<WriteOp>) -> ApiResult<crate::index::WriteOutcome> {
    let st = s.clone();
    let out = tokio::task::spawn_blocking(move || st.index().write(&ops).map_err(ApiError::from))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "write task failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the write failed unexpectedly",
            )
        })??;
    // Wakes followers long-polling for changes.
    s.committed(out.sequence);
    Ok(out)
}

/// A GeoJSON Feature with a Point geometry as the plain point object it stands for
/// (`id`, `lon`, `lat`, `properties`); anything else is returned as it is.
fn from_feature(v: &Json) -> Result<std::borrow::Cow<'_, Json>, String> {
    if v.get("type").and_then(Json::as_str) != Some("Feature") {
        return Ok(std::borrow::Cow::Borrowed(v));
    }
    let g = v.get("geometry").ok_or("a Feature needs a geometry")?;
    if g.get("type").and_then(Json::as_str) != Some("Point") {
        return Err("a Feature's geometry must be a Point".into());
    }
    let c = g
        .get("coordinates")
        .and_then(Json::as_array)
        .filter(|c| c.len() == 2 || c.len() == 3)
        .ok_or("a Point's coordinates must be [longitude, latitude]")?;
    let mut o = serde_json::Map::new();
    if let Some(id) = v.get("id") {
        o.insert("id".into(), id.clone());
    }
    o.insert("lon".into(), c[0].clone());
    o.insert("lat".into(), c[1].clone());
    if let Some(p) = v.get("properties") {
        o.insert("properties".into(), p.clone());
    }
    Ok(std::borrow::Cow::Owned(Json::Object(o)))
}

/// Reads one point object (`lon`/`lat` or `point`, optional `properties`, and `id` when
/// `id` is not given by the path), or a GeoJSON Feature with a Point geometry. `what` names the
/// item in messages, `item` its place in a batch.
fn parse_point(
    meta: &Meta,
    v: &Json,
    path_id: Option<&str>,
    what: &str,
    item: Option<usize>,
) -> ApiResult<NewPoint> {
    let bad = |reason: String| {
        let e = ApiError::new(StatusCode::BAD_REQUEST, format!("{what}: {reason}"));
        match item {
            Some(i) => e.for_item(i),
            None => e,
        }
    };
    let is_feature = v.get("type").and_then(Json::as_str) == Some("Feature");
    if is_feature && meta.metric != Metric::Haversine {
        return Err(bad(
            "GeoJSON positions are lon/lat; this index is euclidean: send {\"point\": [...]}"
                .into(),
        ));
    }
    let v = from_feature(v).map_err(bad)?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("must be a JSON object".into()))?;
    let id = match (path_id, obj.get("id")) {
        (Some(p), _) => PointId::parse(p),
        (None, Some(Json::Number(n))) => match n.as_i64() {
            Some(i) => PointId::Int(i),
            None => return Err(bad(format!("id {n} is not an integer or a string"))),
        },
        (None, Some(Json::String(s))) if !s.is_empty() => PointId::parse(s),
        (None, _) => return Err(bad("id is required (a string or an integer)".into())),
    };
    let num = |name: &str| -> ApiResult<f64> {
        match obj.get(name) {
            Some(Json::Number(n)) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(format!("{name} is not a finite number"))),
            Some(other) => Err(bad(format!("{name} must be a number, not {other}"))),
            None => Err(bad(format!("{name} is required"))),
        }
    };
    let coords = match meta.metric {
        Metric::Haversine => vec![num("lon")?, num("lat")?],
        Metric::Euclidean => match obj.get("point") {
            Some(Json::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_f64()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| bad(format!("point holds {x}, not a finite number")))
                })
                .collect::<ApiResult<Vec<f64>>>()?,
            _ => return Err(bad("point is required: an array of numbers".into())),
        },
    };
    if coords.len() != meta.dims as usize {
        return Err(bad(format!(
            "point has {} coordinates, the index has {}",
            coords.len(),
            meta.dims
        )));
    }
    meta.metric.check_point(&coords).map_err(bad)?;
    let properties = match obj.get("properties") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), Value::from_json(v)))
            .collect(),
        Some(other) => return Err(bad(format!("properties must be an object, not {other}"))),
    };
    Ok(NewPoint {
        id,
        coords,
        properties,
    })
}

/// Inserts or replaces the point `id`.
#[utoipa::path(
    put, path = "/v1/points/{id}", tag = "points",
    params(("id" = String, Path, description = "The point's id")),
    request_body(content = crate::server::openapi::PointBodyDoc, description = "Position and attributes"),
    responses(
        (status = 201, description = "Created a new point, durably", body = crate::server::openapi::WriteDoc),
        (status = 200, description = "Replaced the point with this id, durably", body = crate::server::openapi::WriteDoc),
        (status = 400, description = "A malformed body or bad coordinates", body = crate::server::openapi::ErrorDoc),
        (status = 405, description = "The server is read-only", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn put_point(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    writable(&s, &headers)?;
    let v: Json = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })?;
    let p = parse_point(&s.index().meta(), &v, Some(&id), "the point", None)?;
    let pid = p.id.clone();
    let out = run_write(s, vec![WriteOp::Upsert(p)]).await?;
    let mut resp = json_response(
        &json!({"id": pid.to_json(), "written": out.written, "sequence": out.sequence}),
        &JSON,
    )?;
    // 201 when the PUT made a new point, 200 when it replaced one.
    if out.replaced == 0 {
        *resp.status_mut() = StatusCode::CREATED;
    }
    Ok(resp)
}

/// Writes a batch: a JSON array of points, or NDJSON (one point per line), each with its `id`.
#[utoipa::path(
    post, path = "/v1/points", tag = "points",
    request_body(content = Vec<crate::server::openapi::PointBodyDoc>, description = "A JSON array or NDJSON of points with ids"),
    responses(
        (status = 200, description = "All written and durable", body = crate::server::openapi::WriteDoc),
        (status = 400, description = "A bad item (named); nothing was written", body = crate::server::openapi::ErrorDoc),
        (status = 405, description = "The server is read-only", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn post_points(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    writable(&s, &headers)?;
    let meta = s.index().meta();
    let ndjson_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("ndjson"));
    let whole = if ndjson_type {
        None
    } else {
        serde_json::from_slice::<Json>(&body).ok()
    };
    let items: Vec<(String, Json)> = match whole {
        Some(Json::Array(a)) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("item {i}"), v))
            .collect(),
        Some(Json::Object(o))
            if o.get("type").and_then(Json::as_str) == Some("FeatureCollection") =>
        {
            match o.get("features") {
                Some(Json::Array(a)) => a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("feature {i}"), v.clone()))
                    .collect(),
                _ => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "a FeatureCollection needs a features array",
                    ))
                }
            }
        }
        // One object: a one-line NDJSON body.
        Some(v @ Json::Object(_)) => vec![("line 1".to_string(), v)],
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON array of points, a GeoJSON FeatureCollection, or NDJSON",
            ))
        }
        None if ndjson_type || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') => {
            let text = std::str::from_utf8(&body)
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8"))?;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .enumerate()
                .map(|(item, (i, l))| {
                    let what = format!("line {}", i + 1);
                    serde_json::from_str(l)
                        .map(|v| (what.clone(), v))
                        .map_err(|e| {
                            ApiError::new(StatusCode::BAD_REQUEST, format!("{what}: {e}"))
                                .for_item(item)
                        })
                })
                .collect::<ApiResult<_>>()?
        }
        None => {
            let e = serde_json::from_slice::<Json>(&body)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
            ));
        }
    };
    let ops = items
        .iter()
        .enumerate()
        .map(|(i, (what, v))| parse_point(&meta, v, None, what, Some(i)).map(WriteOp::Upsert))
        .collect::<ApiResult<Vec<_>>>()?;
    let out = run_write(s, ops).await?;
    json_response(
        &json!({"written": out.written, "sequence": out.sequence}),
        &JSON,
    )
}

/// Deletes the point `id`.
#[utoipa::path(
    delete, path = "/v1/points/{id}", tag = "points",
    params(("id" = String, Path, description = "The point's id")),
    responses(
        (status = 200, description = "Deleted, durably", body = crate::server::openapi::WriteDoc),
        (status = 404, description = "No point has this id", body = crate::server::openapi::ErrorDoc),
        (status = 405, description = "The server is read-only", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn delete_point(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    writable(&s, &headers)?;
    let pid = PointId::parse(&id);
    let out = run_write(s, vec![WriteOp::Delete(pid.clone())]).await?;
    if out.deleted == 0 {
        return Err(ApiError::not_found(format!("no point with id {id:?}")));
    }
    json_response(
        &json!({"id": pid.to_json(), "deleted": out.deleted, "sequence": out.sequence}),
        &JSON,
    )
}
