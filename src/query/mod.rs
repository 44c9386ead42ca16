//! Queries, one walk each. Every walk reads nodes lazily from the store, one node per visit,
//! prunes subtrees by the region their ancestors' splits leave them, checks a leaf's points
//! from its one record, reads a leaf's payloads (one record) only when a filter or the answer
//! needs them, and keeps an explicit stack or heap so no tree shape can overflow the call stack.

pub mod bbox;
mod collect;
mod columns;
pub mod nearest;
pub mod radius;
pub mod stats;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::geometry::Metric;
use crate::point::{Payload, Value};
use crate::store::codec;
use crate::store::Store;
use crate::tree::cache::NodeCache;
use crate::tree::points::{for_each_payload_chunk, read_leaf_payloads};
use crate::tree::{PointRef, TreeReader};

pub use columns::{Column, ColumnCache};
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
    /// Levels in the tree.
    pub depth: u32,
    /// Whether walks may read whole subtrees ahead with range scans.
    pub read_ahead: bool,
    /// Decoded top levels shared by all queries, if any.
    pub cache: Option<&'a NodeCache>,
    /// Attributes filters and stats read, per leaf, shared by all queries, if any.
    pub columns: Option<&'a ColumnCache>,
    /// Only points that pass this filter count, are kept or are grouped.
    pub filter: Option<&'a Filter>,
    /// A page after the first: only hits ranked after this (distance, point handle) are kept
    /// (for box queries, ranked by handle alone); counts still cover every point.
    pub after: Option<(f64, u64)>,
    /// When set, the walk answers from the node cache alone, visiting at most this many nodes,
    /// or fails with [`Error::NotCached`].
    pub cached_only: Option<u64>,
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

    /// Whether an attribute's value (`None`: the point has no such attribute) is the value.
    pub fn matches_value(&self, value: Option<&Value>) -> bool {
        match value {
            // The common case, compared without printing the value.
            Some(Value::Str(s)) => *s == self.value,
            Some(v) => v.group_key() == self.value,
            None => false,
        }
    }
}

impl Walk<'_> {
    /// Whether a hit at distance `d` with handle `point` comes after the page cursor.
    #[inline]
    pub(crate) fn after_cursor(&self, d: f64, point: PointRef) -> bool {
        match self.after {
            None => true,
            Some((ad, aid)) => d.total_cmp(&ad).then(point.0.cmp(&aid)).is_gt(),
        }
    }

    /// Whether slot `slot` of the leaf whose payloads `payloads` reads passes the walk's filter
    /// (always, without one: the payloads are then not read).
    #[inline]
    pub(crate) fn passes(&self, payloads: &mut LeafPayloads<'_>, slot: usize) -> Result<bool> {
        match self.filter {
            None => Ok(true),
            // On a walk limited to caches, an attribute not in the column cache gives way.
            Some(f) => Ok(f.matches_value(payloads.value(slot, &f.field)?)),
        }
    }
}

impl<'a> Walk<'a> {
    /// The payloads of leaf `leaf`, read when first asked for.
    pub fn payloads(&self, leaf: u64) -> LeafPayloads<'a> {
        LeafPayloads {
            cache: self.columns,
            cached_only: self.cached_only.is_some(),
            ..LeafPayloads::new(self.store, leaf)
        }
    }

    /// A node reader for one walk.
    pub fn reader(&self) -> TreeReader<'a> {
        let r = TreeReader::with_cache(self.store, self.cache, self.dims);
        match self.cached_only {
            Some(visits) => r.cached_only(visits),
            None => r,
        }
    }
}

/// The payloads of one leaf, read from storage the first time a slot is asked for.
pub struct LeafPayloads<'s> {
    store: &'s dyn Store,
    leaf: u64,
    loaded: Option<Vec<Payload>>,
    /// Attributes asked for by name ([`LeafPayloads::value`]): each one's value in every slot.
    columns: Vec<(String, Arc<Column>)>,
    /// Where columns are shared between queries.
    cache: Option<&'s ColumnCache>,
    /// Whether storage may not be read (see [`Walk::cached_only`]): only cached columns serve.
    cached_only: bool,
}

impl<'s> LeafPayloads<'s> {
    /// The payloads of leaf `leaf`, not read yet.
    pub fn new(store: &'s dyn Store, leaf: u64) -> Self {
        LeafPayloads {
            store,
            leaf,
            loaded: None,
            columns: Vec::new(),
            cache: None,
            cached_only: false,
        }
    }

    /// The value of attribute `field` in slot `slot`, `None` where the point has none.
    ///
    /// Filters and stats read one or two attributes of every point they look at: the first
    /// time a field is asked for, it comes from the column cache, or the leaf's records are
    /// read in place and only that attribute is copied out, for every slot (decoding whole
    /// payloads, long strings of alternate names and all, was most of such a query's time).
    pub fn value(&mut self, slot: usize, field: &str) -> Result<Option<&Value>> {
        let leaf = self.leaf;
        let find = |columns: &[(String, Arc<Column>)]| columns.iter().position(|(f, _)| f == field);
        // Looked up before anything else: this runs for every point a filter or stats sees.
        let at = match find(&self.columns) {
            Some(at) => at,
            None => {
                self.load_columns(&[field])?;
                // load_columns either adds the column or fails.
                find(&self.columns).ok_or_else(|| {
                    Error::Corrupt(format!("leaf {leaf}: no column {field:?} after loading"))
                })?
            }
        };
        self.columns[at]
            .1
            .get(slot)
            .map(Option::as_ref)
            .ok_or_else(|| Error::Corrupt(format!("leaf {leaf} has no payload for slot {slot}")))
    }

    /// Copies out the attributes of `fields` not copied yet, in one pass over the leaf's
    /// records: a query that reads several attributes per point calls this with all of them
    /// before its first [`LeafPayloads::value`].
    pub fn load_columns(&mut self, fields: &[&str]) -> Result<()> {
        let leaf = self.leaf;
        let mut missing: Vec<&str> = Vec::new();
        for f in fields {
            if missing.contains(f) || self.columns.iter().any(|(c, _)| c == f) {
                continue;
            }
            match self.cache.and_then(|c| c.get(leaf, f)) {
                Some(column) => self.columns.push((f.to_string(), column)),
                None => missing.push(f),
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if self.cached_only {
            return Err(Error::NotCached);
        }
        let mut columns: Vec<Vec<Option<Value>>> = vec![Vec::new(); missing.len()];
        for_each_payload_chunk(self.store, leaf, |bytes| {
            let record = codec::decode_leaf_payloads_ref(leaf, bytes)?;
            for i in 0..record.len() {
                let Some((_, props)) = record.point(i) else {
                    break;
                };
                for column in columns.iter_mut() {
                    column.push(None);
                }
                let mut left = missing.len();
                for (k, v) in props {
                    let Some(at) = missing.iter().position(|f| *f == k) else {
                        continue;
                    };
                    // The first of repeated names wins, as in [`Payload::get`].
                    if let Some(slot @ None) = columns[at].last_mut() {
                        *slot = Some(v.to_value());
                        left -= 1;
                        if left == 0 {
                            break;
                        }
                    }
                }
            }
            Ok(())
        })?;
        for (field, column) in missing.into_iter().zip(columns) {
            let column = Arc::new(column);
            if let Some(c) = self.cache {
                c.insert(leaf, field, column.clone());
            }
            self.columns.push((field.to_string(), column));
        }
        Ok(())
    }

    /// The payload of slot `slot`.
    pub fn get(&mut self, slot: usize) -> Result<&Payload> {
        if self.loaded.is_none() {
            if self.cached_only {
                return Err(Error::NotCached);
            }
            self.loaded = Some(read_leaf_payloads(self.store, self.leaf)?);
        }
        let leaf = self.leaf;
        self.loaded
            .as_ref()
            .and_then(|p| p.get(slot))
            .ok_or_else(|| Error::Corrupt(format!("leaf {leaf} has no payload for slot {slot}")))
    }
}

/// A point's coordinates in an answer: held inline up to two (every lon/lat point), on the heap
/// beyond, so a hit costs no allocation of its own on the common path.
pub type Coords = smallvec::SmallVec<[f64; 2]>;

/// One point of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The point's handle: its leaf and slot (valid until the next write).
    pub point: PointRef,
    /// Coordinates.
    pub coords: Coords,
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
    /// Tree nodes (inner nodes and leaves) read from storage by the walk (visits the node cache
    /// did not answer).
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
