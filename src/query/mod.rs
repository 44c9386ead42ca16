//! Queries, one walk each. Every walk reads nodes lazily from the store, one node per visit,
//! prunes subtrees by the region their ancestors' splits leave them, and keeps an explicit stack
//! or heap so no tree shape can overflow the call stack.

pub mod bbox;
mod collect;
pub mod nearest;
pub mod radius;
pub mod stats;

use crate::geometry::Metric;
use crate::store::codec::NodeFormat;
use crate::store::Store;
use crate::tree::cache::NodeCache;
use crate::tree::TreeReader;

pub use stats::{GroupStats, StatsAnswer};

/// What a walk needs to know about the index it walks.
#[derive(Clone, Copy)]
pub struct Walk<'a> {
    /// Where nodes are read from.
    pub store: &'a dyn Store,
    /// The index's metric.
    pub metric: Metric,
    /// Coordinates per point.
    pub dims: usize,
    /// The root node, if any.
    pub root: Option<u64>,
    /// One past the highest node id in use: the end of the root's id range.
    pub end: u64,
    /// Levels in the tree.
    pub depth: u32,
    /// Whether walks may read whole subtrees ahead with range scans.
    pub read_ahead: bool,
    /// Decoded top levels shared by all queries, if any.
    pub cache: Option<&'a NodeCache>,
    /// How node records are laid out.
    pub format: NodeFormat,
}

impl<'a> Walk<'a> {
    /// A node reader for one walk.
    pub fn reader(&self) -> TreeReader<'a> {
        TreeReader::with_cache(self.store, self.cache, self.dims, self.format)
    }
}

/// One point of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Node id holding the point; its payload is keyed by it.
    pub node: u64,
    /// Coordinates.
    pub coords: Vec<f64>,
    /// Distance from the query point (0 for box queries).
    pub distance: f64,
}

/// The answer of a query that may be cut by a limit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    /// The points, nearest first for distance queries.
    pub hits: Vec<Hit>,
    /// How many points matched, including those cut by the limit.
    pub count: u64,
    /// Tree nodes read from storage by the walk (visits the node cache did not answer).
    pub nodes_read: u64,
    /// Tree nodes the walk visited, from the cache or storage.
    pub nodes_visited: u64,
}

impl Answer {
    /// Whether the limit cut the answer.
    pub fn truncated(&self) -> bool {
        (self.hits.len() as u64) < self.count
    }
}
