//! Bearer tokens for writes and replication.

use axum::http::{HeaderMap, StatusCode};

use super::error::{ApiError, ApiResult};

/// Passes when no token is configured, or the request carries `Authorization: Bearer TOKEN`.
pub fn require(headers: &HeaderMap, token: Option<&str>, what: &str) -> ApiResult<()> {
    let Some(want) = token else { return Ok(()) };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), want.as_bytes()) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("{what} need a valid bearer token (Authorization: Bearer ...)"),
        )),
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let mut h = HeaderMap::new();
        assert!(require(&h, None, "writes").is_ok());
        assert!(require(&h, Some("s3cret"), "writes").is_err());
        h.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(require(&h, Some("s3cret"), "writes").is_ok());
        assert!(require(&h, Some("s3cret!"), "writes").is_err());
    }
}
