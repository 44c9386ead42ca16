//! The OpenAPI 3 description, generated from the handlers' annotations.
//!
//! The structs here document parameters and answers; the handlers parse and render by hand so
//! that every error can name its parameter.
#![allow(dead_code)]

use axum::Json;
use utoipa::{IntoParams, OpenApi, ToSchema};

/// Parameters of `/v1/near`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearQuery {
    /// Longitude in degrees, [-180, 180] (lon/lat indexes).
    lon: Option<f64>,
    /// Latitude in degrees, [-90, 90] (lon/lat indexes).
    lat: Option<f64>,
    /// Comma-separated coordinates (euclidean indexes).
    point: Option<String>,
    /// Radius: metres for lon/lat indexes; above 0, at most half the earth's circumference.
    radius: f64,
    /// Most points in the answer (default 1000, at most 10000); `count` covers all.
    limit: Option<usize>,
    /// `json` (default) or `geojson`.
    format: Option<String>,
    /// Only points whose attribute FIELD equals VALUE: `FIELD:VALUE` (applied before `limit`).
    #[param(rename = "where")]
    where_: Option<String>,
    /// Comma-separated attributes to return (default: all).
    properties: Option<String>,
    /// The `next` cursor of the previous page (409 if the index changed since).
    after: Option<String>,
}

/// Parameters of `/v1/nearest`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearestQuery {
    /// Longitude in degrees.
    lon: Option<f64>,
    /// Latitude in degrees.
    lat: Option<f64>,
    /// Comma-separated coordinates (euclidean indexes).
    point: Option<String>,
    /// How many points, 1 to 10000.
    k: usize,
    /// Only points within this distance.
    max_distance: Option<f64>,
    /// `json` (default) or `geojson`.
    format: Option<String>,
    /// Only points whose attribute FIELD equals VALUE: `FIELD:VALUE` (applied before `limit`).
    #[param(rename = "where")]
    where_: Option<String>,
    /// Comma-separated attributes to return (default: all).
    properties: Option<String>,
    /// The `next` cursor of the previous page (409 if the index changed since).
    after: Option<String>,
}

/// Parameters of `/v1/within`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WithinQuery {
    /// `MINLON,MINLAT,MAXLON,MAXLAT`; MINLON > MAXLON crosses the antimeridian. Euclidean
    /// indexes: the k minimums, then the k maximums.
    bbox: String,
    /// Most points in the answer (default 1000, at most 10000).
    limit: Option<usize>,
    /// `json` (default) or `geojson`.
    format: Option<String>,
    /// Only points whose attribute FIELD equals VALUE: `FIELD:VALUE` (applied before `limit`).
    #[param(rename = "where")]
    where_: Option<String>,
    /// Comma-separated attributes to return (default: all).
    properties: Option<String>,
    /// The `next` cursor of the previous page (409 if the index changed since).
    after: Option<String>,
}

/// Parameters of `/v1/stats`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Longitude in degrees.
    lon: Option<f64>,
    /// Latitude in degrees.
    lat: Option<f64>,
    /// Comma-separated coordinates (euclidean indexes).
    point: Option<String>,
    /// Radius, as for `/v1/near`.
    radius: f64,
    /// The attribute to group by.
    group_by: String,
    /// A numeric attribute to sum per group.
    sum: Option<String>,
    /// Only points whose attribute FIELD equals VALUE: `FIELD:VALUE`.
    #[param(rename = "where")]
    where_: Option<String>,
}

/// One point of an answer.
#[derive(ToSchema)]
pub struct PointDoc {
    /// The point's id: a number or a string.
    id: serde_json::Value,
    /// Longitude (lon/lat indexes).
    lon: Option<f64>,
    /// Latitude (lon/lat indexes).
    lat: Option<f64>,
    /// Coordinates (euclidean indexes).
    point: Option<Vec<f64>>,
    /// Great-circle metres from the query point (distance queries on lon/lat indexes).
    distance_m: Option<f64>,
    /// Distance from the query point (euclidean indexes).
    distance: Option<f64>,
    /// The point's attributes.
    properties: serde_json::Map<String, serde_json::Value>,
}

/// A list answer. With `format=geojson` the same points come as an RFC 7946 FeatureCollection.
#[derive(ToSchema)]
pub struct AnswerDoc {
    /// Points that matched, including any cut by the limit.
    count: u64,
    /// Whether the limit cut the answer.
    truncated: bool,
    /// Tree nodes the query read from storage.
    nodes_read: u64,
    /// The cursor of the next page (pass it as `after`), when there is one.
    next: Option<String>,
    /// The points.
    results: Vec<PointDoc>,
}

/// A list answer as GeoJSON (RFC 7946): one Point feature per place.
#[derive(ToSchema)]
pub struct FeatureCollectionDoc {
    /// Always `FeatureCollection`.
    #[schema(example = "FeatureCollection")]
    r#type: String,
    /// Points that matched, including any cut by the limit.
    count: u64,
    /// The cursor of the next page, when there is one.
    next: Option<String>,
    /// `{"type": "Feature", "id", "geometry": {"type": "Point", "coordinates": [lon, lat]},
    /// "properties"}` per place.
    features: Vec<serde_json::Value>,
}

/// One group of a stats answer.
#[derive(ToSchema)]
pub struct GroupDoc {
    /// The attribute's value.
    value: String,
    /// Points with it.
    count: u64,
    /// Sum of the `sum` attribute, when asked.
    sum: Option<f64>,
}

/// A stats answer.
#[derive(ToSchema)]
pub struct StatsDoc {
    /// Points within the radius.
    count: u64,
    /// The grouping attribute.
    group_by: String,
    /// The summed attribute.
    sum_field: Option<String>,
    /// Tree nodes read.
    nodes_read: u64,
    /// Groups, largest first.
    groups: Vec<GroupDoc>,
}

/// Liveness.
#[derive(ToSchema)]
pub struct HealthDoc {
    /// Always `ok`.
    status: String,
    /// Points in the index.
    points: u64,
    /// On-disk format version.
    format_version: u32,
    /// `haversine` or `euclidean`.
    metric: String,
    /// Coordinates per point.
    dims: u8,
    /// The index history's identity.
    generation: String,
    /// Whether writes are refused.
    read_only: bool,
}

/// What an index holds (`GET /v1/info`).
#[derive(ToSchema)]
pub struct InfoDoc {
    /// On-disk format version.
    format_version: u32,
    /// `haversine` or `euclidean`.
    metric: String,
    /// Coordinates per point.
    dims: u8,
    /// Points in the index.
    points: u64,
    /// Levels in the tree.
    depth: u32,
    /// Most points a leaf holds.
    leaf_size: u32,
    /// Buckets of the id index.
    id_buckets: u64,
    /// Bytes of the index directory.
    bytes_on_disk: u64,
    /// The index history's identity.
    generation: String,
    /// The last committed sequence.
    sequence: u64,
}

/// A verification's verdict (`POST /v1/verify`).
#[derive(ToSchema)]
pub struct VerifyDoc {
    /// Whether every invariant holds.
    ok: bool,
    /// The first violation, when not `ok`.
    error: Option<String>,
    /// Points in the leaves.
    points: Option<u64>,
    /// Leaves reached.
    leaves: Option<u64>,
    /// Nodes reached.
    nodes: Option<u64>,
    /// Levels in the tree.
    depth: Option<u32>,
}

/// A point to write. `id` is taken from the path for `PUT /v1/points/{id}`.
#[derive(ToSchema)]
pub struct PointBodyDoc {
    /// The point's id (batches only): a string or an integer.
    id: Option<serde_json::Value>,
    /// Longitude in degrees (lon/lat indexes).
    lon: Option<f64>,
    /// Latitude in degrees (lon/lat indexes).
    lat: Option<f64>,
    /// Coordinates (euclidean indexes).
    point: Option<Vec<f64>>,
    /// Attributes.
    properties: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The answer to a write, sent once it is durable.
#[derive(ToSchema)]
pub struct WriteDoc {
    /// Points written.
    written: Option<u64>,
    /// Points deleted.
    deleted: Option<u64>,
    /// The write's sequence number.
    sequence: u64,
}

/// Parameters of the heatmap tiles.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TileQuery {
    /// Walking distance in metres (default 1200, at most 50000).
    radius: Option<f64>,
    /// Summed closeness in km at which a pixel saturates (default 4).
    saturation: Option<f64>,
    /// Only points whose attribute FIELD equals VALUE: `FIELD:VALUE`.
    r#where: Option<String>,
}

/// Parameters of `/v1/replication/changes`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The follower's applied sequence: changes after it are returned.
    since: Option<u64>,
    /// Most changes in the answer (default 1000, at most 10000).
    limit: Option<usize>,
    /// Seconds to wait for a change when there is none yet (at most 60).
    wait: Option<u64>,
    /// The follower's generation: a different one answers 410 at once.
    generation: Option<String>,
}

/// A page of changes.
#[derive(ToSchema)]
pub struct ChangesDoc {
    /// The primary's history.
    generation: String,
    /// The primary's latest sequence.
    sequence: u64,
    /// `{"seq", "ops": [{"op": "upsert", "id", "coords", "properties"} | {"op": "delete", "id"}]}`
    changes: Vec<serde_json::Value>,
}

/// Every error answer.
#[derive(ToSchema)]
pub struct ErrorDoc {
    /// What went wrong.
    error: String,
    /// The parameter at fault, if one is.
    param: Option<String>,
}

/// The whole API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "kdsled",
        description = "Proximity search over a k-d tree persisted in sled."
    ),
    paths(
        super::routes::health::healthz,
        super::routes::health::metrics,
        super::routes::inspect::info,
        super::routes::inspect::verify,
        serve,
        super::routes::query::near,
        super::routes::query::nearest,
        super::routes::query::within,
        super::routes::query::stats,
        super::routes::points::get_point,
        super::routes::write::put_point,
        super::routes::write::post_points,
        super::routes::write::delete_point,
        super::routes::health::readyz,
        super::routes::replication::changes,
        super::routes::replication::snapshot,
        super::routes::tiles::heatmap,
        super::routes::tiles::tilejson,
        super::routes::map::page,
        super::routes::map::leaflet_js,
        super::routes::map::leaflet_css,
        super::routes::map::leaflet_license,
        super::routes::map::countries,
        super::routes::map::topojson_js,
        super::routes::map::basemap_license,
        super::routes::docs::page,
        super::routes::docs::redoc_js,
        super::routes::docs::redoc_license,
    ),
    components(schemas(
        PointDoc,
        AnswerDoc,
        GroupDoc,
        StatsDoc,
        HealthDoc,
        InfoDoc,
        VerifyDoc,
        ErrorDoc,
        PointBodyDoc,
        WriteDoc
    ))
)]
pub struct ApiDoc;

/// This description.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 description of every route"))
)]
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
