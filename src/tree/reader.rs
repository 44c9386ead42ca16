//! Lazy node reads, through the node cache when there is one, counted.

use std::sync::Arc;

use super::cache::NodeCache;
use crate::error::{Error, Result};
use crate::store::codec::{self, NodeFormat};
use crate::store::{Space, Store};
use crate::tree::Node;

/// Reads nodes one at a time as a walk asks for them, and counts visits and storage reads.
pub struct TreeReader<'a> {
    store: &'a dyn Store,
    format: NodeFormat,
    cache: Option<&'a NodeCache>,
    dims: usize,
    reads: u64,
    visits: u64,
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
            dims,
            reads: 0,
            visits: 0,
        }
    }

    /// Node `id` at `depth` (root = 1). A missing node is corruption: something pointed at it.
    pub fn node_at(&mut self, id: u64, depth: u32) -> Result<Arc<Node>> {
        self.visits += 1;
        let cache = self.cache.filter(|c| c.covers(depth));
        if let Some(n) = cache.and_then(|c| c.get(id)) {
            return Ok(n);
        }
        let n = Arc::new(self.read(id)?);
        if let Some(c) = cache {
            c.put(id, n.clone());
        }
        Ok(n)
    }

    /// Reads and decodes node `id` from storage, bypassing any cache.
    pub fn node(&mut self, id: u64) -> Result<Node> {
        self.visits += 1;
        self.read(id)
    }

    fn read(&mut self, id: u64) -> Result<Node> {
        self.reads += 1;
        match self.store.get(Space::Nodes, &codec::node_key(id))? {
            Some(bytes) => codec::decode_node_as(self.format, id, &bytes, self.dims),
            None => Err(Error::Corrupt(format!(
                "node {id} is referenced but has no record"
            ))),
        }
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
