//! Lazy node reads, through the node cache when there is one, counted.

use super::cache::{CacheView, NodeCache};
use super::node::NodeRef;
use crate::error::{Error, Result};
use crate::store::codec::{self, NodeFormat};
use crate::store::{Space, Store};
use crate::tree::Node;

/// Reads nodes one at a time as a walk asks for them, and counts visits and storage reads.
///
/// With a cache, the reader holds the cache's read lock from creation to drop; nodes it had to
/// read from storage at cached depths are offered to the cache when it is dropped.
pub struct TreeReader<'a> {
    store: &'a dyn Store,
    format: NodeFormat,
    cache: Option<&'a NodeCache>,
    view: Option<CacheView<'a>>,
    dims: usize,
    reads: u64,
    visits: u64,
    /// Visits at depths the cache covers.
    covered: u64,
    /// Nodes read from storage at depths the cache covers.
    fill: Vec<(u64, Node)>,
}

impl<'a> TreeReader<'a> {
    /// A reader over `store` for an index of `dims` dimensions, without a cache.
    pub fn new(store: &'a dyn Store, dims: usize, format: NodeFormat) -> Self {
        Self::with_cache(store, None, dims, format)
    }

    /// A reader that consults and fills `cache`.
    pub fn with_cache(
        store: &'a dyn Store,
        cache: Option<&'a NodeCache>,
        dims: usize,
        format: NodeFormat,
    ) -> Self {
        TreeReader {
            store,
            format,
            cache,
            view: cache.map(NodeCache::view),
            dims,
            reads: 0,
            visits: 0,
            covered: 0,
            fill: Vec::new(),
        }
    }

    /// Node `id` at `depth` (root = 1). A missing node is corruption: something pointed at it.
    #[inline]
    pub fn node_at(&mut self, id: u64, depth: u32) -> Result<NodeRef<'_>> {
        self.visits += 1;
        let covered = self.cache.is_some_and(|c| c.covers(depth));
        if covered {
            self.covered += 1;
            if let Some(n) = self.view.as_ref().and_then(|v| v.get(id)) {
                return Ok(n);
            }
        }
        self.reads += 1;
        let n = read(self.store, self.format, self.dims, id)?;
        if covered {
            self.fill.push((id, n.clone()));
        }
        Ok(n.into())
    }

    /// Reads and decodes node `id` from storage, bypassing any cache.
    pub fn node(&mut self, id: u64) -> Result<Node> {
        self.visits += 1;
        self.reads += 1;
        read(self.store, self.format, self.dims, id)
    }

    /// Nodes read from storage so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Nodes visited so far (from the cache or storage).
    pub fn visits(&self) -> u64 {
        self.visits
    }
}

impl Drop for TreeReader<'_> {
    fn drop(&mut self) {
        // Let go of the read lock first: the cache takes its write lock to add what was read.
        self.view = None;
        if let Some(c) = self.cache {
            let misses = self.fill.len() as u64;
            c.record(self.covered - misses, misses);
            c.offer(&self.fill);
        }
    }
}

fn read(store: &dyn Store, format: NodeFormat, dims: usize, id: u64) -> Result<Node> {
    match store.get(Space::Nodes, &codec::node_key(id))? {
        Some(bytes) => codec::decode_node_as(format, id, &bytes, dims),
        None => Err(Error::Corrupt(format!(
            "node {id} is referenced but has no record"
        ))),
    }
}
