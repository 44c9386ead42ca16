//! Request limits and the rule that every error a client gets is JSON with a message.
//!
//! Layers below the handlers answer on their own (the body limit's 413, the timeout's 408,
//! axum's extractor rejections as text); [`json_errors`] rewrites any error answer that is not
//! JSON into `{"error": ...}`, keeping its status and using its text as the message.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

/// Longest request target (path and query) accepted, bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Longest error text from an inner layer kept as the message.
const MAX_MESSAGE_BYTES: usize = 2048;

/// The 414 answer (as JSON) for a request target over [`MAX_URI_BYTES`].
pub fn refuse_long_uri(uri: &Uri) -> Option<Response> {
    let len = uri.path_and_query().map(|p| p.as_str().len()).unwrap_or(0);
    (len > MAX_URI_BYTES).then(|| {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {len} bytes; at most {MAX_URI_BYTES} are accepted"),
        )
        .into_response()
    })
}

/// Bounds a request's body to `max` bytes: a declared `Content-Length` above it is answered 413
/// at once (before any of the body is read); a body that may still come (a length, chunked
/// transfer, or HTTP/2 data frames) gets `max` as the limit of axum's body extractors, which
/// answer 413 when a streamed body runs past it. A request known to have no body is left alone,
/// which costs it nothing.
pub fn limit_body(req: &mut Request, max: usize) -> Option<Response> {
    // Asked first: a body hyper knows to be empty was framed without a length above zero, and
    // the header lookup below is a hash of its name on every query request.
    if axum::body::HttpBody::is_end_stream(req.body()) {
        return None;
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Some(payload_too_large(max));
    }
    axum::extract::DefaultBodyLimit::max(max).apply(req);
    None
}

fn payload_too_large(max: usize) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than the {max} bytes this server accepts"),
    )
    .into_response()
}

/// Whether `resp` is an error answer that is not JSON yet (one from axum or a layer, not from a
/// handler), which [`json_errors`] rewrites.
pub fn needs_json_error(resp: &Response) -> bool {
    let status = resp.status();
    (status.is_client_error() || status.is_server_error()) && !is_json(resp)
}

/// Turns a non-JSON error answer into `{"error": "..."}` with the same status.
pub async fn json_errors(s: &AppState, resp: Response) -> Response {
    if !needs_json_error(&resp) {
        return resp;
    }
    let status = resp.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return payload_too_large(s.config.max_body_bytes);
    }
    let (mut parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        default_message(status)
    } else {
        text
    };
    let body = serde_json::json!({ "error": message }).to_string();
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(axum::http::header::CONTENT_ENCODING);
    Response::from_parts(parts, Body::from(body))
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"))
}

fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::REQUEST_TIMEOUT => {
            "the request took longer than the server's time limit".into()
        }
        other => other
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_string(),
    }
}
