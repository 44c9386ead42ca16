//! Snapshots: every point of an index with the sequence number it is consistent with, as
//! NDJSON, and the build of a follower's index from one.
//!
//! The first line is a header `{"kdsled_snapshot": 1, "generation", "sequence", "metric",
//! "dims", "count"}`; each further line is a point `{"id", "coords", "properties"}`.

use std::cell::Cell;
use std::io::{BufRead, Write};
use std::sync::Arc;

use serde_json::json;

use super::wire::{coords_from_json, id_from_json, id_json, properties_from_json, properties_json};
use crate::error::{Error, Result};
use crate::geometry::Metric;
use crate::index::build::build_into;
use crate::index::{BuildOptions, Index, Progress};
use crate::input::Record;
use crate::store::format::Meta;
use crate::store::IndexDir;

/// Writes a consistent snapshot of `index` to `out` and returns the meta it reflects. Writers
/// wait while it is taken, so write it to local storage and send that.
///
/// Everything the snapshot holds is flushed first (no write can land while the snapshot is
/// held), so a replica never starts from a state this index could lose in a crash.
pub fn export(index: &Index, out: &mut dyn Write) -> Result<Meta> {
    let snap = index.snapshot();
    index.flush()?;
    let meta = snap.meta().clone();
    let header = json!({
        "kdsled_snapshot": 1,
        "generation": meta.generation,
        "sequence": meta.sequence,
        "metric": meta.metric.name(),
        "dims": meta.dims,
        "count": meta.count,
    });
    writeln!(out, "{header}")?;
    for r in crate::tree::points::scan(index.store(), meta.dims as usize) {
        let (coords, payload) = r?;
        let line = json!({
            "id": id_json(&payload.id),
            "coords": coords,
            "properties": properties_json(&payload.properties),
        });
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(meta)
}

/// What a snapshot's header says.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotHeader {
    /// The primary's history.
    pub generation: String,
    /// The sequence the snapshot is consistent with.
    pub sequence: u64,
    /// The metric.
    pub metric: Metric,
    /// Coordinates per point.
    pub dims: usize,
    /// Points that follow.
    pub count: u64,
}

/// Builds a new generation of `dir` (whose lock the caller holds) from a snapshot stream and
/// makes it current; the generation it replaces stays until the next open, since the server may
/// still be serving it. A stream that breaks off or holds another count than its header says
/// changes nothing.
pub fn import(
    dir: &Arc<IndexDir>,
    mut input: impl BufRead,
    cache_mb: u64,
    progress: &dyn Progress,
) -> Result<SnapshotHeader> {
    let bad = |reason: String| Error::Input { line: 1, reason };
    let mut first = String::new();
    input.read_line(&mut first)?;
    let h: serde_json::Value = serde_json::from_str(&first)
        .map_err(|e| bad(format!("the snapshot header is not JSON: {e}")))?;
    if h["kdsled_snapshot"] != 1 {
        return Err(bad("not a kdsled snapshot".into()));
    }
    let header = SnapshotHeader {
        generation: h["generation"].as_str().unwrap_or_default().to_string(),
        sequence: h["sequence"]
            .as_u64()
            .ok_or_else(|| bad("no sequence".into()))?,
        metric: Metric::parse(h["metric"].as_str().unwrap_or_default())?,
        dims: h["dims"].as_u64().ok_or_else(|| bad("no dims".into()))? as usize,
        count: h["count"].as_u64().unwrap_or(0),
    };
    let records = input.lines().enumerate().map(|(i, line)| {
        let line_no = i as u64 + 2;
        let line = line?;
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| Error::Input {
            line: line_no,
            reason: format!("not JSON: {e}"),
        })?;
        let at = |e: Error| Error::Input {
            line: line_no,
            reason: e.to_string(),
        };
        Ok(Record {
            line: line_no,
            id: id_from_json(&v["id"]).map_err(at)?,
            coords: coords_from_json(v.get("coords")).map_err(at)?,
            properties: properties_from_json(v.get("properties")).map_err(at)?,
        })
    });
    let opts = BuildOptions {
        metric: header.metric,
        dims: header.dims,
        cache_mb,
        memory_mb: crate::index::build::DEFAULT_BUILD_MEMORY_MB,
        skip_invalid: false,
        force: true,
        history: Some((header.generation.clone(), header.sequence)),
        leaf_size: crate::store::format::default_leaf_size(header.dims),
    };
    // The count is checked as the records' last item, so a short stream fails the build
    // before its generation is made current.
    let seen = Cell::new(0u64);
    let announced = header.count;
    let records = records
        .inspect(|r| {
            if r.is_ok() {
                seen.set(seen.get() + 1);
            }
        })
        .chain(std::iter::from_fn(|| {
            (seen.get() != announced).then(|| {
                let held = seen.replace(announced);
                Err(Error::Input {
                    line: 1,
                    reason: format!("the snapshot announced {announced} points and held {held}"),
                })
            })
        }));
    build_into(dir, records, &opts, progress, false)?;
    Ok(header)
}
