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
    /// Only points that pass this filter count, are kept or are grouped.
    pub filter: Option<&'a Filter>,
    /// A page after the first: only hits ranked after this (distance, node id) are kept (for
    /// box queries, ranked by node id alone); counts still cover every point.
    pub after: Option<(f64, u64)>,
}

/// An attribute filter applied during a walk, before limits and counts: `field` must have the
/// value `value` (compared as text, numbers printed as they are grouped).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The attribute.
    pub field: String,
    /// The value it must have.
    pub value: String,
}

impl Filter {
    /// Parses `FIELD:VALUE`.
    pub fn parse(s: &str) -> Option<Filter> {
        let (f, v) = s.split_once(':')?;
        (!f.is_empty()).then(|| Filter {
            field: f.to_string(),
            value: v.to_string(),
        })
    }

    /// Whether `payload` has the attribute with the value.
    pub fn matches(&self, payload: &crate::point::Payload) -> bool {
        payload.get(&self.field).map(|v| v.group_key()).as_deref() == Some(self.value.as_str())
    }

    /// Whether the point of node `id` passes; reads its payload.
    pub(crate) fn accepts(&self, store: &dyn Store, id: u64) -> crate::error::Result<bool> {
        use crate::store::{codec, Space};
        let bytes = store
            .get(Space::Payloads, &codec::node_key(id))?
            .ok_or_else(|| crate::error::Error::Corrupt(format!("node {id} has no payload")))?;
        Ok(self.matches(&codec::decode_payload(id, &bytes)?))
    }
}

impl Walk<'_> {
    /// Whether a hit at distance `d` of node `id` comes after the page cursor.
    #[inline]
    pub(crate) fn after_cursor(&self, d: f64, id: u64) -> bool {
        match self.after {
            None => true,
            Some((ad, aid)) => d.total_cmp(&ad).then(id.cmp(&aid)).is_gt(),
        }
    }

    /// Whether node `id` passes the walk's filter (always, without one).
    #[inline]
    pub(crate) fn passes(&self, id: u64) -> crate::error::Result<bool> {
        match self.filter {
            None => Ok(true),
            Some(f) => f.accepts(self.store, id),
        }
    }
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
