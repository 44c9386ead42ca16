//! On-disk format migrations, applied in order by `kdsled migrate`.
//!
//! Each step converts an index from one format version to the next and is described in
//! `migrations/`. A step is safe to interrupt: it first records, in one atomic write, the new
//! version together with a cursor; then converts records in batches, each batch written
//! atomically with the cursor's advance; and finally removes the cursor. A binary of the old
//! version refuses the index as soon as the step has begun (its version is newer), this binary
//! refuses it until the cursor is gone, and rerunning `migrate` resumes from the cursor.

use std::path::Path;

use crate::error::{Error, Result};
use crate::index::read_version;
use crate::store::codec::{self, NodeFormat};
use crate::store::format::{Meta, FORMAT_VERSION, META_KEY, MIGRATION_KEY, VERSION_KEY};
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

/// Like [`migrate`], but stops (as a crash would) after `stop_after` batches. For tests.
pub fn migrate_with(
    path: &Path,
    cache_mb: u64,
    stop_after: Option<usize>,
) -> Result<MigrateReport> {
    let dir = crate::store::IndexDir::open(path)?;
    let Some(sled_dir) = dir.current()? else {
        return Err(Error::Database(format!("no index at {}", path.display())));
    };
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
    let meta: Meta = store
        .get(Space::Meta, META_KEY)?
        .map(|m| codec::decode_meta(&m))
        .transpose()?
        .ok_or_else(|| Error::Corrupt("the meta record is missing".into()))?;
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
            let node = codec::decode_node_as(NodeFormat::V1, id, &v, dims)?;
            batch.put(
                Space::Nodes,
                k.to_vec(),
                codec::encode_node_as(NodeFormat::V2, &node),
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
