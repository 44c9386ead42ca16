//! The read queries: near, nearest, within and stats.

use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::Uri;
use axum::response::Response;

use super::{bytes_response, json_response, GEOJSON, JSON};
use crate::geometry::BBox;
use crate::index::Snapshot;
use crate::output::{stats_json, Shape, SplicedAnswer};
use crate::query::Answer;
use crate::server::error::{ApiError, ApiResult};
use crate::server::params::{parse_list, Names, Params, MAX_RESULTS};
use crate::server::{query, AppState, INLINE_VISITS};

/// The parameters `/v1/near` takes.
const NEAR: Names<'static, 9> = Names::new([
    "lon",
    "lat",
    "point",
    "radius",
    "limit",
    "format",
    "where",
    "properties",
    "after",
]);

/// The parameters `/v1/nearest` takes.
const NEAREST: Names<'static, 9> = Names::new([
    "lon",
    "lat",
    "point",
    "k",
    "max_distance",
    "format",
    "where",
    "properties",
    "after",
]);

/// The parameters `/v1/within` takes.
const WITHIN: Names<'static, 6> =
    Names::new(["bbox", "limit", "format", "where", "properties", "after"]);

/// The parameters `/v1/stats` takes.
const STATS: Names<'static, 7> =
    Names::new(["lon", "lat", "point", "radius", "group_by", "sum", "where"]);

/// What a list answer looks like: its shape and the attributes it carries.
#[derive(Clone)]
struct Output {
    geojson: bool,
    properties: Option<Vec<String>>,
}

/// Whether the request's `Accept` names GeoJSON: read in place, where the `HeaderMap`
/// extractor would copy every header of every query.
pub struct AcceptsGeoJson(bool);

impl<S: Send + Sync> FromRequestParts<S> for AcceptsGeoJson {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(AcceptsGeoJson(
            parts
                .headers
                .get_all(axum::http::header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("application/geo+json")),
        ))
    }
}

impl Output {
    fn parse(
        p: &Params,
        accept: &AcceptsGeoJson,
        meta: &crate::store::format::Meta,
    ) -> ApiResult<Output> {
        let properties = p.str("properties").map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        });
        Ok(Output {
            geojson: wants_geojson(p, accept, meta)?,
            properties,
        })
    }
}

/// `after=TOKEN`: the rank the page continues after.
fn cursor(p: &Params, meta: &crate::store::format::Meta) -> ApiResult<Option<(f64, u64)>> {
    p.str("after")
        .map(|t| crate::server::cursor::decode(t, meta))
        .transpose()
}

/// Cuts a page asked with one extra hit to `limit`, and makes the token of the next page when
/// the extra hit shows there is one.
fn paginate(snap: &Snapshot<'_>, a: &mut Answer, limit: usize) -> Option<String> {
    if limit == 0 || a.hits.len() <= limit {
        return None;
    }
    a.hits.truncate(limit);
    let last = a.hits.last()?;
    Some(crate::server::cursor::encode(
        snap.meta(),
        last.distance,
        last.point.0,
    ))
}

fn render(
    s: &AppState,
    snap: &Snapshot<'_>,
    a: &Answer,
    out: &Output,
    with_distance: bool,
    next: Option<String>,
) -> ApiResult<Response> {
    let geojson = out.geojson;
    let (shape, content_type) = if geojson {
        (Shape::GeoJson, &GEOJSON)
    } else {
        (Shape::Json, &JSON)
    };
    // Payloads are spliced from their JSON encoded once per leaf, whole or with only the
    // attributes asked for.
    let body = SplicedAnswer::load(snap, a, with_distance, shape)?
        .only_properties(out.properties.as_deref())
        .with_next(next)
        .to_bytes();
    // Counted once the answer is made: a query that gave way is counted where it ran again.
    s.metrics.nodes_read(a.nodes_read);
    Ok(bytes_response(body, content_type))
}

/// Points within a radius, nearest first.
#[utoipa::path(
    get, path = "/v1/near", tag = "query",
    params(crate::server::openapi::NearQuery),
    responses(
        (status = 200, description = "Points within the radius, nearest first (GeoJSON FeatureCollection with format=geojson or Accept: application/geo+json)", content(
            (crate::server::openapi::AnswerDoc = "application/json"),
            (crate::server::openapi::FeatureCollectionDoc = "application/geo+json"),
        )),
        (status = 400, description = "A bad parameter", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn near(
    State(s): State<AppState>,
    uri: Uri,
    accept: AcceptsGeoJson,
) -> ApiResult<Response> {
    let p = Params::parse(uri.query());
    p.only(&NEAR)?;
    // One index for parsing and the query: a replica may swap it in between.
    let index = s.index();
    let meta = index.meta();
    let center = p.location(&meta)?;
    let radius = required(p.distance("radius", &meta, true)?, "radius")?;
    let limit = p.limit()?;
    let out = Output::parse(&p, &accept, &meta)?;
    let filter = p.filter()?;
    query(s.pool.clone(), move |inline| {
        let snap = snapshot(&index, inline)?.filtered(filter.clone());
        let after = cursor(&p, snap.meta())?;
        let snap = snap.after(after);
        let mut a = snap.radius(&center, radius, limit.saturating_add(1))?;
        let next = paginate(&snap, &mut a, limit);
        render(&s, &snap, &a, &out, true, next)
    })
    .await
}

/// The k nearest points.
#[utoipa::path(
    get, path = "/v1/nearest", tag = "query",
    params(crate::server::openapi::NearestQuery),
    responses(
        (status = 200, description = "The k nearest points, nearest first (GeoJSON FeatureCollection with format=geojson or Accept: application/geo+json)", content(
            (crate::server::openapi::AnswerDoc = "application/json"),
            (crate::server::openapi::FeatureCollectionDoc = "application/geo+json"),
        )),
        (status = 400, description = "A bad parameter", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn nearest(
    State(s): State<AppState>,
    uri: Uri,
    accept: AcceptsGeoJson,
) -> ApiResult<Response> {
    let p = Params::parse(uri.query());
    p.only(&NEAREST)?;
    // One index for parsing and the query: a replica may swap it in between.
    let index = s.index();
    let meta = index.meta();
    let center = p.location(&meta)?;
    let k = required(p.count("k", 1, MAX_RESULTS)?, "k")?;
    let max = p.distance("max_distance", &meta, false)?;
    let out = Output::parse(&p, &accept, &meta)?;
    let filter = p.filter()?;
    query(s.pool.clone(), move |inline| {
        let snap = snapshot(&index, inline)?.filtered(filter.clone());
        let after = cursor(&p, snap.meta())?;
        let snap = snap.after(after);
        let mut a = snap.nearest(&center, k.saturating_add(1), max)?;
        let next = paginate(&snap, &mut a, k);
        a.count = a.hits.len() as u64;
        render(&s, &snap, &a, &out, true, next)
    })
    .await
}

/// Points inside a bounding box.
#[utoipa::path(
    get, path = "/v1/within", tag = "query",
    params(crate::server::openapi::WithinQuery),
    responses(
        (status = 200, description = "Points inside the box (GeoJSON FeatureCollection with format=geojson or Accept: application/geo+json)", content(
            (crate::server::openapi::AnswerDoc = "application/json"),
            (crate::server::openapi::FeatureCollectionDoc = "application/geo+json"),
        )),
        (status = 400, description = "A bad parameter", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn within(
    State(s): State<AppState>,
    uri: Uri,
    accept: AcceptsGeoJson,
) -> ApiResult<Response> {
    let p = Params::parse(uri.query());
    p.only(&WITHIN)?;
    // One index for parsing and the query: a replica may swap it in between.
    let index = s.index();
    let meta = index.meta();
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
    let out = Output::parse(&p, &accept, &meta)?;
    let filter = p.filter()?;
    query(s.pool.clone(), move |inline| {
        let snap = snapshot(&index, inline)?.filtered(filter.clone());
        let after = cursor(&p, snap.meta())?;
        let snap = snap.after(after);
        let mut a = snap.within(&bbox, limit.saturating_add(1))?;
        let next = paginate(&snap, &mut a, limit);
        render(&s, &snap, &a, &out, false, next)
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
    p.only(&STATS)?;
    // One index for parsing and the query: a replica may swap it in between.
    let index = s.index();
    let meta = index.meta();
    let center = p.location(&meta)?;
    let radius = required(p.distance("radius", &meta, true)?, "radius")?;
    let group_by = p.required_str("group_by")?.to_string();
    let sum = p.str("sum").filter(|x| !x.is_empty()).map(str::to_string);
    let filter = p.filter()?;
    // Inline when the nodes and attribute columns it reads are cached, as list queries are.
    query(s.pool.clone(), move |inline| {
        let a = snapshot(&index, inline)?.filtered(filter.clone()).stats(
            &center,
            radius,
            &group_by,
            sum.as_deref(),
        )?;
        s.metrics.nodes_read(a.nodes_read);
        json_response(&stats_json(&a, &group_by, sum.as_deref()), &JSON)
    })
    .await
}

/// GeoJSON when `format=geojson` or the client's `Accept` prefers `application/geo+json` (an
/// explicit `format=json` wins). RFC 7946 positions are lon/lat, so a euclidean index refuses.
fn wants_geojson(
    p: &Params,
    accept: &AcceptsGeoJson,
    meta: &crate::store::format::Meta,
) -> ApiResult<bool> {
    let asked = match p.str("format") {
        Some(_) => p.geojson()?,
        None => accept.0,
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

/// The snapshot a query reads: on the async runtime (`inline`), one had without waiting for a
/// writer and answering from caches alone.
fn snapshot(index: &crate::index::Index, inline: bool) -> ApiResult<Snapshot<'_>> {
    if !inline {
        return Ok(index.snapshot());
    }
    match index.try_snapshot() {
        Some(snap) => Ok(snap.cached_only(INLINE_VISITS)),
        None => Err(crate::error::Error::NotCached.into()),
    }
}

fn required<T>(v: Option<T>, name: &str) -> ApiResult<T> {
    v.ok_or_else(|| ApiError::bad_param(name, "is required"))
}
