//! Errors as HTTP answers: a status and `{"error": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::Error;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Message for the client.
    pub message: String,
    /// The offending parameter, when one is to blame.
    pub param: Option<String>,
    /// The offending item of a batch (0-based), when one is to blame.
    pub item: Option<usize>,
    /// Set when a query run from caches alone gave way (it is run again off the runtime; never
    /// sent to a client).
    pub(crate) gave_way: bool,
}

impl ApiError {
    /// 400 naming a parameter.
    pub fn bad_param(param: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!("invalid {param}: {reason}"),
            param: Some(param.to_string()),
            item: None,
            gave_way: false,
        }
    }

    /// Any status with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            param: None,
            item: None,
            gave_way: false,
        }
    }

    /// The same error, naming batch item `i`.
    pub fn for_item(mut self, i: usize) -> Self {
        self.item = Some(i);
        self
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument { param, reason } => ApiError::bad_param(&param, reason),
            Error::NotCached => ApiError {
                gave_way: true,
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            },
            Error::Input { .. } | Error::DuplicateId { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
            }
            other => {
                tracing::error!(error = %other, "request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.message});
        if let Some(p) = &self.param {
            body["param"] = json!(p);
        }
        if let Some(i) = self.item {
            body["item"] = json!(i);
        }
        (self.status, Json(body)).into_response()
    }
}

/// What every handler returns.
pub type ApiResult<T> = Result<T, ApiError>;
