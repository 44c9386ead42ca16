//! Heatmap tiles.

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::server::error::{ApiError, ApiResult};
use crate::server::params::Params;
use crate::server::{blocking, AppState};
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
    if let Some(w) = p.str("where") {
        let (f, v) = w
            .split_once(':')
            .filter(|(f, _)| !f.is_empty())
            .ok_or_else(|| ApiError::bad_param("where", format!("{w:?} is not FIELD:VALUE")))?;
        h.filter = Some((f.to_string(), v.to_string()));
    }
    h.check()?;
    Ok(h)
}

/// A 256x256 RGBA PNG: how much lies within walking distance of each pixel.
#[utoipa::path(
    get, path = "/v1/tiles/heatmap/{z}/{x}/{y}", tag = "tiles",
    params(
        ("z" = u32, Path, description = "Zoom, 0 to 22"),
        ("x" = u32, Path, description = "Column"),
        ("y" = String, Path, description = "Row, followed by .png"),
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
    p.only(&["radius", "saturation", "where"])?;
    let params = heatmap_params(&p)?;
    let gate = s.tiles.clone();
    let _slot = gate.enter(s.config.request_timeout / 2).await?;
    let png = blocking(s.pool.clone(), move || {
        Ok(render(&s.index(), tile, &params)?.png())
    })
    .await?;
    Ok((
        [(CONTENT_TYPE, "image/png"), (CACHE_CONTROL, "no-cache")],
        png,
    )
        .into_response())
}
