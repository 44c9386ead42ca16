//! Page cursors: an opaque `next` token that continues a list answer where its page ended.
//!
//! A token names the server process that made it, the index state (history and sequence) the
//! first page came from, and the last hit's rank (distance and node id). Pages are exact while
//! the index is unchanged; after a write, or on another server, the token is refused with 409
//! rather than silently skipping or repeating points.

use std::sync::OnceLock;

use axum::http::StatusCode;

use super::error::{ApiError, ApiResult};
use super::fnv1a;
use crate::store::format::Meta;

/// This process's token prefix: node ids are only meaningful to the index this process has.
fn instance() -> u64 {
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        nanos ^ (u64::from(std::process::id()) << 40)
    })
}

/// The token for the page after the hit ranked (`distance`, `node`).
pub fn encode(meta: &Meta, distance: f64, node: u64) -> String {
    format!(
        "{:016x}{:016x}{:016x}{:016x}{:016x}",
        instance(),
        fnv1a(meta.generation.as_bytes()),
        meta.sequence,
        distance.to_bits(),
        node
    )
}

/// The rank a token continues after; 400 for a malformed one, 409 for one this index state
/// did not make.
pub fn decode(token: &str, meta: &Meta) -> ApiResult<(f64, u64)> {
    let bad = || ApiError::bad_param("after", "is not a cursor this server gave out");
    if token.len() != 80 || !token.is_ascii() {
        return Err(bad());
    }
    let mut parts = [0u64; 5];
    for (i, p) in parts.iter_mut().enumerate() {
        *p = u64::from_str_radix(&token[i * 16..(i + 1) * 16], 16).map_err(|_| bad())?;
    }
    if parts[0] != instance()
        || parts[1] != fnv1a(meta.generation.as_bytes())
        || parts[2] != meta.sequence
    {
        let mut e = ApiError::new(
            StatusCode::CONFLICT,
            "the index changed since this cursor was made (a write, a restart or another \
             server): ask the first page again",
        );
        e.param = Some("after".into());
        return Err(e);
    }
    Ok((f64::from_bits(parts[3]), parts[4]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Metric;

    #[test]
    fn a_token_round_trips_only_against_the_same_state() {
        let mut m = Meta::empty(Metric::Haversine, 2);
        let t = encode(&m, 1234.5, 77);
        assert_eq!(decode(&t, &m).unwrap(), (1234.5, 77));
        m.sequence += 1;
        assert_eq!(decode(&t, &m).unwrap_err().status, StatusCode::CONFLICT);
        assert_eq!(
            decode("zz", &m).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
