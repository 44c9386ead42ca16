//! Handlers, one module per resource.

pub mod docs;
pub mod health;
pub mod inspect;
pub mod map;
pub mod points;
pub mod query;
pub mod replication;
pub mod tiles;
pub mod write;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::Response;

use super::error::{ApiError, ApiResult};

/// Unknown routes: 404 in JSON.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

/// Known routes asked with another method: 405 in JSON.
pub async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// A JSON value as a response with the given content type.
pub fn json_response(v: &serde_json::Value, content_type: &HeaderValue) -> ApiResult<Response> {
    let body = serde_json::to_vec(v).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the answer: {e}"),
        )
    })?;
    Ok(bytes_response(body, content_type))
}

/// Ready bytes as a response with the given content type.
///
/// Built directly: the tuple form sets `application/octet-stream` for the bytes and then
/// replaces it, two header-map writes on every answer.
pub fn bytes_response(body: Vec<u8>, content_type: &HeaderValue) -> Response {
    let mut resp = Response::new(axum::body::Body::from(body));
    resp.headers_mut()
        .insert(CONTENT_TYPE, content_type.clone());
    resp
}

// Content types are header values made once, as statics: `HeaderValue::from_static` checks
// every byte when it runs, ~190 instructions of every answer under callgrind, and cloning a
// static value copies two words. (Statics rather than consts: a value holding `Bytes` is
// interior-mutable, and a const would be a fresh copy at every use.)

/// `application/json`.
pub static JSON: HeaderValue = HeaderValue::from_static("application/json");
/// `application/geo+json` (RFC 7946).
pub static GEOJSON: HeaderValue = HeaderValue::from_static("application/geo+json");
