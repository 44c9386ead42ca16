//! Writing a new tree's records into a fresh sled database in small batches.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::store::codec::{self, NodeFormat};
use crate::store::format::{Meta, META_KEY, VERSION_KEY};
use crate::store::{SledStore, Space, Store, WriteBatch};
use crate::tree::Node;

/// Records per sled batch. sled's memory grows with batch size: 10,000-record batches peaked at
/// 3.3 GB RSS for a million records here, 1,000-record batches at a few hundred MB.
pub(crate) const BATCH_RECORDS: usize = 1000;

/// Records written between closing and reopening the database: sled's memory creeps with the
/// records written through one handle (1M records: 0.4 GB and growing), and a flush, close and
/// reopen every 250k records held it flat here.
const REOPEN_EVERY: u64 = 250_000;

/// Writes node, payload and id records in batches, in any id order, keeping sled's memory flat.
pub(crate) struct NodeWriter {
    path: PathBuf,
    cache_mb: u64,
    version: u32,
    format: NodeFormat,
    store: Option<SledStore>,
    nodes: WriteBatch,
    payloads: WriteBatch,
    ids: WriteBatch,
    written: u64,
}

impl NodeWriter {
    /// A writer into a new database at `path` whose records use format `version`.
    pub(crate) fn create(path: &Path, cache_mb: u64, version: u32) -> Result<NodeWriter> {
        Ok(NodeWriter {
            path: path.to_path_buf(),
            cache_mb,
            version,
            format: NodeFormat::for_version(version)?,
            store: Some(SledStore::open(path, cache_mb)?),
            nodes: WriteBatch::new(),
            payloads: WriteBatch::new(),
            ids: WriteBatch::new(),
            written: 0,
        })
    }

    /// Queues node `id` with its encoded payload and the key of its user id.
    pub(crate) fn put(
        &mut self,
        id: u64,
        node: &Node,
        payload: &[u8],
        id_key: &[u8],
    ) -> Result<()> {
        let key = codec::node_key(id);
        self.nodes
            .put(Space::Nodes, key, codec::encode_node_as(self.format, node));
        self.payloads.put(Space::Payloads, key, payload);
        self.ids
            .put(Space::Ids, id_key, codec::encode_node_ref(id).to_vec());
        self.written += 1;
        if self.nodes.len() >= BATCH_RECORDS {
            self.apply()?;
            if self.written.is_multiple_of(REOPEN_EVERY) {
                self.reopen()?;
            }
        }
        Ok(())
    }

    /// Records queued or written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    fn store(&self) -> &SledStore {
        self.store
            .as_ref()
            .expect("the store is only absent inside reopen")
    }

    fn apply(&mut self) -> Result<()> {
        for batch in [&mut self.nodes, &mut self.payloads, &mut self.ids] {
            if !batch.is_empty() {
                let b = std::mem::take(batch);
                self.store
                    .as_ref()
                    .expect("the store is only absent inside reopen")
                    .apply(&b)?;
            }
        }
        Ok(())
    }

    fn reopen(&mut self) -> Result<()> {
        self.store().flush()?;
        drop(self.store.take());
        self.store = Some(SledStore::open(&self.path, self.cache_mb)?);
        Ok(())
    }

    /// Writes what is queued, then the format version and `meta`, and flushes.
    pub(crate) fn finish(mut self, meta: &Meta) -> Result<()> {
        self.apply()?;
        let mut batch = WriteBatch::new();
        batch.put(
            Space::Meta,
            VERSION_KEY,
            codec::encode_version(self.version),
        );
        batch.put(Space::Meta, META_KEY, codec::encode_meta(meta));
        self.store().apply(&batch)?;
        self.store().flush()?;
        Ok(())
    }
}
