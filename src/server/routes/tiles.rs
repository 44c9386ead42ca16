//! Heatmap tiles.

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::server::error::{ApiError, ApiResult};
use crate::server::params::{Names, Params};
use crate::server::{blocking, fnv1a, AppState};
use crate::tiles::mercator::TileId;
use crate::tiles::{render, HeatmapParams};

/// Parses `radius`, `saturation` and `where=FIELD:VALUE`.
pub fn heatmap_params(p: &Params) -> ApiResult<HeatmapParams> {
    let mut h = HeatmapParams::default();
    if let Some(r) = p.f64("radius")? {
        h.radius_m = r;
    }
    if let Some(s) = p.f64("saturation")? {
        h.saturation = s;
    }
    h.filter = p.filter()?;
    h.check()?;
    Ok(h)
}

/// The parameters of a heatmap tile.
const HEATMAP: Names<'static, 3> = Names::new(["radius", "saturation", "where"]);

/// A 256x256 RGBA PNG: how much lies within walking distance of each pixel.
#[utoipa::path(
    get, path = "/v1/tiles/heatmap/{z}/{x}/{y}.png", tag = "tiles",
    params(
        ("z" = u32, Path, description = "Zoom, 0 to 22"),
        ("x" = u32, Path, description = "Column"),
        ("y" = u32, Path, description = "Row"),
        crate::server::openapi::TileQuery,
    ),
    responses(
        (status = 200, description = "The tile", content_type = "image/png"),
        (status = 400, description = "A bad tile address or parameter", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn heatmap(
    State(s): State<AppState>,
    Path((z, x, y)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let num = |name: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| ApiError::bad_param(name, format!("{v:?} is not a tile coordinate")))
    };
    let y = y
        .strip_suffix(".png")
        .ok_or_else(|| ApiError::bad_param("y", "tiles are .png"))?;
    let tile = TileId::new(num("z", &z)?, num("x", &x)?, num("y", y)?)?;
    let p = Params::parse(q.as_deref());
    p.only(&HEATMAP)?;
    let params = heatmap_params(&p)?;
    // A tile changes only when the index does: its tag is the history and sequence it was
    // drawn from, with the request.
    let meta = s.index().meta();
    let key = format!(
        "{}/{}/{}?r={}&s={}&w={:?}",
        tile.z, tile.x, tile.y, params.radius_m, params.saturation, params.filter
    );
    let etag = format!(
        "\"{:016x}\"",
        fnv1a(format!("{}:{}:{key}", meta.generation, meta.sequence).as_bytes())
    );
    let not_modified = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (ETAG, etag),
                (CACHE_CONTROL, TILE_CACHE_CONTROL.to_string()),
            ],
        )
            .into_response());
    }
    let png = match s.tile_cache.get(&key, &etag) {
        Some(png) => png,
        None => {
            let gate = s.tiles.clone();
            let _slot = gate.enter(s.config.request_timeout / 2).await?;
            let st = s.clone();
            let png: std::sync::Arc<Vec<u8>> = blocking(s.pool.clone(), move || {
                Ok(std::sync::Arc::new(
                    render(&st.index(), tile, &params)?.png(),
                ))
            })
            .await?;
            s.tile_cache.put(key, etag.clone(), png.clone());
            png
        }
    };
    Ok((
        [
            (CONTENT_TYPE, "image/png".to_string()),
            (CACHE_CONTROL, TILE_CACHE_CONTROL.to_string()),
            (ETAG, etag),
        ],
        png.as_ref().clone(),
    )
        .into_response())
}

/// Browsers and proxies may keep a tile a minute, then must revalidate (a 304 when unchanged).
const TILE_CACHE_CONTROL: &str = "public, max-age=60, must-revalidate";

/// A TileJSON 3.0 description of the heatmap layer, for map clients.
#[utoipa::path(
    get, path = "/v1/tiles/heatmap.json", tag = "tiles",
    responses((status = 200, description = "TileJSON 3.0.0", content_type = "application/json"))
)]
pub async fn tilejson(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    let meta = s.index().meta();
    let doc = serde_json::json!({
        "tilejson": "3.0.0",
        "name": "kdsled heatmap",
        "description": "How much lies within walking distance (radius, metres) of each pixel",
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [format!("http://{host}/v1/tiles/heatmap/{{z}}/{{x}}/{{y}}.png")],
        "minzoom": 0,
        "maxzoom": crate::tiles::mercator::MAX_ZOOM,
        "bounds": [-180.0, -85.051_128_78, 180.0, 85.051_128_78],
        "attribution": s.config.basemap_attribution.clone().unwrap_or_default(),
        "kdsled": {"points": meta.count, "sequence": meta.sequence, "max_radius_m": crate::tiles::render::MAX_RADIUS_M},
    });
    super::json_response(&doc, &super::JSON)
}
