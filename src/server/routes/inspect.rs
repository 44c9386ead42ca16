//! What `kdsled info` and `kdsled verify` tell of an index, for the index a server holds: sled
//! lets one process open a directory, so while it is served these are the way to ask.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::{json_response, JSON};
use crate::server::error::{ApiError, ApiResult};
use crate::server::AppState;

/// The index's shape and size.
#[utoipa::path(
    get, path = "/v1/info", tag = "operations",
    responses((status = 200, description = "What the index holds", body = crate::server::openapi::InfoDoc))
)]
pub async fn info(State(s): State<AppState>) -> ApiResult<Response> {
    let index = s.index();
    // The directory's size is a walk of its files: not on the runtime threads.
    let info = crate::server::blocking(s.pool.clone(), move || Ok(index.info()?)).await?;
    json_response(&json!(info), &JSON)
}

/// Walks every node and checks every invariant, as `kdsled verify` does. A full walk reads the
/// whole index, so it needs the write token when one is set, and one runs at a time.
#[utoipa::path(
    post, path = "/v1/verify", tag = "operations",
    responses(
        (status = 200, description = "The verdict: `ok` with what was walked, or the first violation", body = crate::server::openapi::VerifyDoc),
        (status = 401, description = "A write token is set and the request lacks it", body = crate::server::openapi::ErrorDoc),
        (status = 409, description = "A verification is already running", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn verify(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    crate::server::auth::require(&headers, s.config.write_token.as_deref(), "verify")?;
    if s.verifying.swap(true, Ordering::AcqRel) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "a verification is already running: ask again when it is done",
        ));
    }
    let index = s.index();
    let flag = s.verifying.clone();
    // Its own blocking thread, not the query pool: a walk of seconds must not hold up queries.
    let report = tokio::task::spawn_blocking(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| index.verify()));
        flag.store(false, Ordering::Release);
        r
    })
    .await;
    let v = match report {
        Ok(Ok(Ok(r))) => {
            let mut v = json!(r);
            v["ok"] = json!(true);
            v
        }
        Ok(Ok(Err(e))) => json!({"ok": false, "error": e.to_string()}),
        Ok(Err(_)) | Err(_) => return Err(crate::server::panicked()),
    };
    json_response(&v, &JSON)
}
