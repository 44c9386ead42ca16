//! Lazy node reads from the store, counted.

use crate::error::{Error, Result};
use crate::store::{codec, Space, Store};
use crate::tree::Node;

/// Reads nodes one at a time as a walk asks for them, and counts how many it read.
pub struct TreeReader<'a> {
    store: &'a dyn Store,
    dims: usize,
    reads: u64,
}

impl<'a> TreeReader<'a> {
    /// A reader over `store` for an index of `dims` dimensions.
    pub fn new(store: &'a dyn Store, dims: usize) -> Self {
        TreeReader {
            store,
            dims,
            reads: 0,
        }
    }

    /// Reads and decodes node `id`. A missing node is corruption: something pointed at it.
    pub fn node(&mut self, id: u64) -> Result<Node> {
        self.reads += 1;
        match self.store.get(Space::Nodes, &codec::node_key(id))? {
            Some(bytes) => codec::decode_node(id, &bytes, self.dims),
            None => Err(Error::Corrupt(format!(
                "node {id} is referenced but has no record"
            ))),
        }
    }

    /// Nodes read so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }
}
