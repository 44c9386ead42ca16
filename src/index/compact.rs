//! Compaction: rewrite an index into a fresh, balanced, densely packed database.
//!
//! sled is log-structured: deleting points writes tombstones and relocated pages, so the
//! directory grows until sled's segment cleaner catches up. Compaction reads every point and
//! bulk-builds them again (preorder node ids, no garbage), keeping the history's generation and
//! sequence, as a new generation of the index directory that replaces the old one atomically.
//! The directory's lock is held throughout, so no other process opens the index meanwhile.

use std::path::Path;

use super::build::{build_into, BuildOptions, BuildProgress, BuildSummary};
use super::Index;
use crate::error::{Error, Result};
use crate::input::Record;
use crate::store::{codec, Space};

/// Rewrites the index at `path`; the index must not be open elsewhere.
pub fn compact(path: &Path, cache_mb: u64, progress: &dyn BuildProgress) -> Result<BuildSummary> {
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
        memory_mb: crate::index::build::DEFAULT_BUILD_MEMORY_MB,
        skip_invalid: false,
        force: true,
        history: Some((meta.generation.clone(), meta.sequence)),
        format: crate::store::format::FORMAT_VERSION,
    };
    let store = index.store();
    // Read everything, then close the index before its directory is replaced under it.
    let records: Vec<Result<Record>> = store
        .scan(Space::Payloads)
        .enumerate()
        .map(|(i, r)| {
            let (k, v) = r?;
            let node = codec::node_id_from_key(&k)?;
            let payload = codec::decode_payload(node, &v)?;
            let coords = index.node(node)?.coords;
            Ok(Record {
                line: i as u64 + 1,
                id: payload.id,
                coords,
                properties: payload.properties,
            })
        })
        .collect();
    // The old generation closes before it is removed; the lock stays held through `dir`.
    drop(index);
    let summary =
        build_into(&dir, records.into_iter(), &opts, progress, true).map_err(|e| match e {
            Error::DuplicateId { id, .. } => {
                Error::Corrupt(format!("point id {id} appears twice among the payloads"))
            }
            other => other,
        })?;
    Ok(summary)
}
