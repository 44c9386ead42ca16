//! The primary's side of replication: the changes log and snapshots.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{json_response, JSON};
use crate::replication::{snapshot, wire};
use crate::server::auth;
use crate::server::error::{ApiError, ApiResult};
use crate::server::params::{Names, Params};
use crate::server::AppState;

/// Longest long-poll a follower may ask for, seconds.
const MAX_WAIT_S: u64 = 60;

/// The parameters `/v1/replication/changes` takes.
const CHANGES: Names<'static, 4> = Names::new(["since", "limit", "wait", "generation"]);

/// Committed writes after `since`, long-polling up to `wait` seconds when there are none.
#[utoipa::path(
    get, path = "/v1/replication/changes", tag = "replication",
    params(crate::server::openapi::ChangesQuery),
    responses(
        (status = 200, description = "The changes after `since`, in order", body = crate::server::openapi::ChangesDoc),
        (status = 401, description = "A replication token is required", body = crate::server::openapi::ErrorDoc),
        (status = 410, description = "Changes after `since` were pruned, or `since` is from another history: re-snapshot", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn changes(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    auth::require(
        &headers,
        s.config.replication_token.as_deref(),
        "replication endpoints",
    )?;
    let p = Params::parse(q.as_deref());
    p.only(&CHANGES)?;
    let since = p
        .str("since")
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::bad_param("since", format!("{v:?} is not a sequence number"))
            })
        })
        .transpose()?
        .unwrap_or(0);
    let limit = p.count("limit", 1, 10_000)?.unwrap_or(1000);
    let wait = p.count("wait", 0, MAX_WAIT_S as usize)?.unwrap_or(0) as u64;
    if let Some(name) = headers
        .get("x-kdsled-follower")
        .and_then(|v| v.to_str().ok())
    {
        record_follower(&s, name, since);
    }
    // A follower from another history, or ahead of this one, must re-snapshot: say so at once.
    let meta = s.index().meta();
    let other_history = p
        .str("generation")
        .is_some_and(|g| !g.is_empty() && g != meta.generation);
    let mut rx = s.sequence.subscribe();
    let mut stopping = s.stopping.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    while !other_history && since <= meta.sequence && !*stopping.borrow() {
        let current = *rx.borrow_and_update();
        if current > since || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::select! {
            r = tokio::time::timeout_at(deadline, rx.changed()) => if r.is_err() { break },
            _ = stopping.changed() => break,
        }
    }
    let st = s.clone();
    let page = tokio::task::spawn_blocking(move || {
        let index = st.index();
        let snap = index.snapshot();
        let meta = snap.meta().clone();
        if since > meta.sequence || other_history {
            return Ok(None);
        }
        // Followers learn only the durable sequence: the rest could still be lost.
        let durable = meta.sequence.min(index.durable_sequence());
        Ok::<_, crate::Error>(
            snap.changes_since(since, limit)?
                .map(|c| (meta.generation.clone(), durable, c)),
        )
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reading changes failed"))??;
    let Some((generation, sequence, changes)) = page else {
        return Err(ApiError::new(
            StatusCode::GONE,
            format!(
                "the changes after sequence {since} are not available (pruned, or from another \
                 history): fetch /v1/replication/snapshot"
            ),
        ));
    };
    let changes: Vec<_> = changes
        .iter()
        .map(|(seq, ops)| wire::change_json(*seq, ops))
        .collect();
    json_response(
        &json!({"generation": generation, "sequence": sequence, "changes": changes}),
        &JSON,
    )
}

/// A consistent snapshot of the whole index as NDJSON.
#[utoipa::path(
    get, path = "/v1/replication/snapshot", tag = "replication",
    responses(
        (status = 200, description = "A header line {kdsled_snapshot, generation, sequence, metric, dims, count}, then one point per line", content_type = "application/x-ndjson"),
        (status = 401, description = "A replication token is required", body = crate::server::openapi::ErrorDoc),
    )
)]
pub async fn snapshot(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    auth::require(
        &headers,
        s.config.replication_token.as_deref(),
        "replication endpoints",
    )?;
    // Dump to a local file while holding off writers, then stream the file without them.
    let st = s.clone();
    let (file, meta) = tokio::task::spawn_blocking(move || {
        let index = st.index();
        let mut f = tempfile_in_temp()?;
        let meta = {
            let mut w = std::io::BufWriter::new(&mut f);
            snapshot::export(&index, &mut w)?
        };
        use std::io::Seek;
        f.rewind()?;
        Ok::<_, crate::Error>((f, meta))
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the snapshot failed"))??;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (
                header::HeaderName::from_static("x-kdsled-sequence"),
                meta.sequence.to_string(),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// An anonymous temporary file: unlinked at once, gone when closed.
fn tempfile_in_temp() -> std::io::Result<std::fs::File> {
    let path = std::env::temp_dir().join(format!(
        "kdsled-snapshot-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

/// Followers listed at once; the one heard from longest ago makes room for a new one.
const MAX_FOLLOWERS: usize = 64;

/// A follower not heard from for this long is forgotten.
const FOLLOWER_TTL: Duration = Duration::from_secs(600);

/// Notes that follower `name` asked after `since`. Names are bounded in length and alphabet, the
/// list in size and age, so anonymous requests cannot grow it (or `/metrics`) without bound.
fn record_follower(s: &AppState, name: &str, since: u64) {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '@'));
    if !valid {
        return;
    }
    let now = Instant::now();
    let mut f = s.followers.lock().unwrap_or_else(|p| p.into_inner());
    f.retain(|_, (_, at)| now.duration_since(*at) < FOLLOWER_TTL);
    if !f.contains_key(name) && f.len() >= MAX_FOLLOWERS {
        if let Some(oldest) = f
            .iter()
            .min_by_key(|(_, (_, at))| *at)
            .map(|(k, _)| k.clone())
        {
            f.remove(&oldest);
        }
    }
    f.insert(name.to_string(), (since, now));
}
