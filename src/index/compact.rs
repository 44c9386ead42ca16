//! Compaction: rewrite an index into a fresh, balanced, densely packed database.
//!
//! sled is log-structured: deleting points writes tombstones and relocated pages, and writes
//! leave half-full leaves behind, so the directory grows and walks read more records than a
//! fresh layout needs. Compaction streams every point, leaf by leaf, into a bulk build (which
//! spills past its memory budget), keeping the history's generation and sequence, as a new
//! generation of the index directory that replaces the old one atomically. The directory's lock
//! is held throughout, so no other process opens the index meanwhile.

use std::path::Path;

use super::build::{build_into, BuildOptions, BuildSummary};
use super::Index;
use crate::error::{Error, Result};
use crate::input::Record;
use crate::progress::Progress;

/// Rewrites the index at `path` within `memory_mb` MiB of build memory; the index must not be
/// open elsewhere.
pub fn compact(
    path: &Path,
    cache_mb: u64,
    memory_mb: u64,
    progress: &dyn Progress,
) -> Result<BuildSummary> {
    let index = Index::open(path, cache_mb)?;
    let dir = index
        .dir()
        .cloned()
        .ok_or_else(|| Error::Database("compaction needs an index directory".into()))?;
    let meta = index.meta();
    let opts = BuildOptions {
        metric: meta.metric,
        dims: meta.dims as usize,
        cache_mb,
        memory_mb,
        skip_invalid: false,
        force: true,
        history: Some((meta.generation.clone(), meta.sequence)),
        leaf_size: meta.leaf_size as usize,
    };
    let records = crate::tree::points::scan(index.store(), meta.dims as usize)
        .enumerate()
        .map(|(i, r)| {
            let (coords, payload) = r?;
            Ok(Record {
                line: i as u64 + 1,
                id: payload.id,
                coords,
                properties: payload.properties,
            })
        });
    // The old generation stays until the index reading it is closed; the lock stays held
    // through `dir`.
    let mut summary = build_into(&dir, records, &opts, progress, false).map_err(|e| match e {
        Error::DuplicateId { id, .. } => {
            Error::Corrupt(format!("point id {id} appears twice among the payloads"))
        }
        other => other,
    })?;
    drop(index);
    dir.remove_stale()?;
    summary.bytes_on_disk = super::dir_size(dir.path())?;
    Ok(summary)
}
