//! Single points by id.

use axum::extract::{Path, State};
use axum::response::Response;

use super::{bytes_response, JSON};
use crate::output::point_json;
use crate::point::PointId;
use crate::query::Hit;
use crate::server::error::{ApiError, ApiResult};
use crate::server::{blocking, AppState};

/// One point by its id.
#[utoipa::path(
    get, path = "/v1/points/{id}", tag = "points",
    params(("id" = String, Path, description = "The point's id (an integer or a string)")),
    responses(
        (status = 200, description = "The point", body = crate::server::openapi::PointDoc),
        (status = 404, description = "No point has this id", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn get_point(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let pid = PointId::parse(&id);
    blocking(s.pool.clone(), move || {
        let index = s.index();
        let snap = index.snapshot();
        let Some(p) = snap.get(&pid)? else {
            return Err(ApiError::not_found(format!("no point with id {id:?}")));
        };
        let hit = Hit {
            point: crate::tree::PointRef::new(p.leaf, p.slot),
            coords: p.coords.into(),
            distance: 0.0,
        };
        Ok(bytes_response(
            point_json(snap.meta().metric, &hit, &p.payload),
            &JSON,
        ))
    })
    .await
}
