//! On-disk format migrations, applied in order by `kdsled migrate`.
//!
//! Each step converts an index from one format version to the next and is described in
//! `migrations/`. Every step is safe to interrupt:
//!
//! - 1 → 2 converts records in place: it first records, in one atomic write, the new version
//!   together with a cursor; then converts records in batches, each batch written atomically
//!   with the cursor's advance; and finally removes the cursor. A binary of the old version
//!   refuses the index as soon as the step has begun (its version is newer), this binary
//!   refuses it until the cursor is gone, and rerunning `migrate` resumes from the cursor.
//! - 2 → 3 changes the whole record layout (one point per node becomes leaf buckets), so it
//!   streams every point of the version 2 database into a bulk build of a new generation of the
//!   index directory, in bounded memory, and makes it current with the directory's atomic
//!   `CURRENT` swap. Until that swap the version 2 index is untouched and still the one in use;
//!   an interrupted step leaves a partial generation that the rerun removes before it starts
//!   over (the build is the unit of work: there is no half-converted version 2 database).

pub mod v2;

use std::path::Path;

use crate::error::{Error, Result};
use crate::index::build::build_into;
use crate::index::{read_version, BuildOptions, NoProgress, Progress};
use crate::input::Record;
use crate::store::codec::{self, NodeFormat};
use crate::store::format::{
    default_leaf_size, Meta, FORMAT_VERSION, META_KEY, MIGRATION_KEY, VERSION_KEY,
};
use crate::store::{SledStore, Space, Store, WriteBatch};

/// Records converted per atomic batch (plus the cursor: one sled transaction).
const BATCH: usize = 999;

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// Version before.
    pub from: u32,
    /// Version after (this binary's).
    pub to: u32,
    /// Records converted (in this run).
    pub records: u64,
    /// Whether an interrupted migration was resumed.
    pub resumed: bool,
}

/// Migrates the index at `path` to this binary's format version.
pub fn migrate(path: &Path, cache_mb: u64) -> Result<MigrateReport> {
    migrate_with(path, cache_mb, None)
}

/// Like [`migrate`], with the memory the 2 → 3 build may hold (MiB) and its progress shown.
pub fn migrate_in(
    path: &Path,
    cache_mb: u64,
    memory_mb: u64,
    progress: &dyn Progress,
) -> Result<MigrateReport> {
    migrate_inner(path, cache_mb, memory_mb, None, progress)
}

/// Like [`migrate`], but stops (as a crash would) after `stop_after` batches of the in-place
/// 1 → 2 step. For tests.
pub fn migrate_with(
    path: &Path,
    cache_mb: u64,
    stop_after: Option<usize>,
) -> Result<MigrateReport> {
    migrate_inner(
        path,
        cache_mb,
        crate::index::DEFAULT_BUILD_MEMORY_MB,
        stop_after,
        &NoProgress,
    )
}

fn migrate_inner(
    path: &Path,
    cache_mb: u64,
    memory_mb: u64,
    stop_after: Option<usize>,
    progress: &dyn Progress,
) -> Result<MigrateReport> {
    let dir = crate::store::IndexDir::open(path)?;
    let Some(sled_dir) = dir.current()? else {
        return Err(Error::Database(format!("no index at {}", path.display())));
    };
    // A partial generation of an interrupted 2 -> 3 step goes before anything else.
    dir.remove_stale()?;
    let store = SledStore::open(&sled_dir, cache_mb)?;
    let mut version = read_version(&store)?;
    let cursor = store.get(Space::Meta, MIGRATION_KEY)?;
    let resumed = cursor.is_some();
    let from = if resumed { version - 1 } else { version };
    if version > FORMAT_VERSION {
        return Err(Error::FormatVersion(format!(
            "the index has format version {version}, newer than this binary's {FORMAT_VERSION}"
        )));
    }
    let mut records = 0;
    let mut batches_left = stop_after;
    // An interrupted step resumes at its version; otherwise each step starts from the current one.
    let mut step_from = if resumed { version - 1 } else { version };
    while step_from < FORMAT_VERSION {
        let target = step_from + 1;
        if step_from == 2 {
            // Not in place: the whole layout changes, into a new generation.
            records += v2_to_v3(&dir, &store, cache_mb, memory_mb, progress)?;
            drop(store);
            dir.remove_stale()?;
            return Ok(MigrateReport {
                from,
                to: FORMAT_VERSION,
                records,
                resumed,
            });
        }
        let start = if version == target {
            // Resuming: the cursor says where.
            match store.get(Space::Meta, MIGRATION_KEY)? {
                Some(c) => c.to_vec(),
                None => break,
            }
        } else {
            let mut b = WriteBatch::new();
            b.put(Space::Meta, VERSION_KEY, codec::encode_version(target));
            b.put(Space::Meta, MIGRATION_KEY, Vec::new());
            store.apply(&b)?;
            version = target;
            Vec::new()
        };
        match step_from {
            1 => records += v1_to_v2(&store, &start, &mut batches_left)?,
            v => {
                return Err(Error::FormatVersion(format!(
                    "no migration from format version {v}"
                )))
            }
        }
        if batches_left == Some(0) {
            return Ok(MigrateReport {
                from,
                to: version,
                records,
                resumed,
            });
        }
        let mut done = WriteBatch::new();
        done.delete(Space::Meta, MIGRATION_KEY);
        store.apply(&done)?;
        store.flush()?;
        step_from = target;
    }
    store.flush()?;
    Ok(MigrateReport {
        from,
        to: FORMAT_VERSION,
        records,
        resumed,
    })
}

/// Version 1 to 2: every node record from bincode to the fixed layout.
fn v1_to_v2(store: &SledStore, start: &[u8], batches_left: &mut Option<usize>) -> Result<u64> {
    let meta = legacy_meta(store, 1)?;
    let dims = meta.dims as usize;
    let mut converted = 0u64;
    let mut from = start.to_vec();
    loop {
        if *batches_left == Some(0) {
            return Ok(converted);
        }
        let mut batch = WriteBatch::new();
        let mut next = None;
        for r in store.scan_from(Space::Nodes, &from).take(BATCH + 1) {
            let (k, v) = r?;
            if batch.len() == BATCH {
                next = Some(k.to_vec());
                break;
            }
            let id = codec::node_id_from_key(&k)?;
            let node = codec::decode_legacy_node(NodeFormat::V1, id, &v, dims)?;
            batch.put(
                Space::Nodes,
                k.to_vec(),
                codec::encode_legacy_node(NodeFormat::V2, &node),
            );
        }
        converted += batch.len() as u64;
        // The cursor moves in the same atomic write as the records it covers.
        let cursor = next.clone().unwrap_or_else(|| vec![0xff; 9]);
        batch.put(Space::Meta, MIGRATION_KEY, cursor);
        store.apply(&batch)?;
        if let Some(n) = batches_left.as_mut() {
            *n -= 1;
        }
        match next {
            Some(k) => from = k,
            None => return Ok(converted),
        }
    }
}

/// The meta record of a version 1 or 2 index.
fn legacy_meta(store: &dyn Store, version: u32) -> Result<Meta> {
    store
        .get(Space::Meta, META_KEY)?
        .map(|m| codec::decode_meta_v2(&m, version))
        .transpose()?
        .ok_or_else(|| Error::Corrupt("the meta record is missing".into()))
}

/// Version 2 to 3: every point (node record and payload, both keyed by node id) streamed into a
/// bulk build of leaf buckets, as a new generation that keeps the index's history (generation
/// id and sequence number). Returns the points moved.
fn v2_to_v3(
    dir: &std::sync::Arc<crate::store::IndexDir>,
    store: &SledStore,
    cache_mb: u64,
    memory_mb: u64,
    progress: &dyn Progress,
) -> Result<u64> {
    let meta = legacy_meta(store, 2)?;
    let dims = meta.dims as usize;
    let opts = BuildOptions {
        metric: meta.metric,
        dims,
        cache_mb,
        memory_mb,
        skip_invalid: false,
        force: true,
        leaf_size: default_leaf_size(dims),
        history: Some((meta.generation.clone(), meta.sequence)),
    };
    let points = store.scan(Space::Nodes).enumerate().map(|(i, r)| {
        let (k, v) = r?;
        let id = codec::node_id_from_key(&k)?;
        let node = codec::decode_legacy_node(NodeFormat::V2, id, &v, dims)?;
        let payload = store
            .get(Space::Payloads, &k)?
            .ok_or_else(|| Error::Corrupt(format!("node {id} has no payload")))?;
        let payload = codec::decode_payload(id, &payload)?;
        Ok(Record {
            line: i as u64 + 1,
            id: payload.id,
            coords: node.coords,
            properties: payload.properties,
        })
    });
    let summary = build_into(dir, points, &opts, progress, false).map_err(|e| match e {
        Error::DuplicateId { id, .. } => Error::Corrupt(format!(
            "point id {id} appears twice in the version 2 index"
        )),
        other => other,
    })?;
    Ok(summary.points)
}
