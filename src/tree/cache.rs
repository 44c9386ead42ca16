//! A bounded cache of decoded nodes from the top levels of the tree.
//!
//! Every query walks the same top levels, so keeping them decoded in memory removes most sled
//! lookups and decodes from a walk. The cache holds at most a fixed number of nodes, and only
//! nodes at depth at most `log2(capacity)`, so the levels it keeps are the ones every walk
//! touches, and its memory is bounded whatever the index's size.
//!
//! A walk takes the cache's read lock once and then looks nodes up with no further
//! synchronisation: no per-node lock, reference count or shared counter, which cost more than
//! the rest of a cached visit and made every thread write to the root's cache line. Nodes a walk
//! had to read from storage are offered to the cache when it ends, and are added only if the
//! write lock is free at that moment (`try_write`), so readers never wait for each other. Index
//! writers, which run while no walk does, invalidate what they change under the write lock.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

use super::node::NodeRef;
use super::Node;

/// Hashes a node id with one multiplication: ids are not attacker-chosen, and SipHash cost more
/// than the rest of a cached node visit.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
}

type IdMap = HashMap<u64, u32, std::hash::BuildHasherDefault<IdHasher>>;

/// Bytes per cached node besides its coordinates: links and axis.
pub const BYTES_PER_NODE: usize = 24;

/// Bytes a hashed id index adds per cached node (key, slot, control byte, spare capacity).
const BYTES_PER_HASHED_ID: usize = 24;

/// A cached node's links; its coordinates are in [`Nodes::coords`] at the same slot.
#[derive(Clone, Copy)]
struct Entry {
    below: u64,
    above: u64,
    axis: u8,
}

/// From node id to slot.
enum Slots {
    /// Indexed by id, [`NO_SLOT`] where absent: one load per lookup. Used while the index's ids
    /// fit a small share of the budget (4 bytes per id), as they do whenever its whole tree fits.
    Dense(Vec<u32>, usize),
    /// Hashed, for indexes with more ids than that.
    Hashed(IdMap),
}

const NO_SLOT: u32 = u32::MAX;

impl Default for Slots {
    fn default() -> Self {
        Slots::Hashed(IdMap::default())
    }
}

impl Slots {
    #[inline]
    fn get(&self, id: u64) -> Option<u32> {
        match self {
            Slots::Dense(v, _) => match v.get(id as usize) {
                Some(&s) if s != NO_SLOT => Some(s),
                _ => None,
            },
            Slots::Hashed(m) => m.get(&id).copied(),
        }
    }

    /// Records `id` at `slot`; false if a dense index cannot hold `id`.
    fn insert(&mut self, id: u64, slot: u32) -> bool {
        match self {
            Slots::Dense(v, max) => {
                let i = id as usize;
                if i >= *max {
                    return false;
                }
                if i >= v.len() {
                    v.resize((i + 1).next_power_of_two().min(*max), NO_SLOT);
                }
                v[i] = slot;
                true
            }
            Slots::Hashed(m) => {
                m.insert(id, slot);
                true
            }
        }
    }

    fn remove(&mut self, id: u64) -> Option<u32> {
        match self {
            Slots::Dense(v, _) => {
                let s = v.get_mut(id as usize)?;
                let old = std::mem::replace(s, NO_SLOT);
                (old != NO_SLOT).then_some(old)
            }
            Slots::Hashed(m) => m.remove(&id),
        }
    }
}

/// The cached nodes: id to slot, and per slot the links and coordinates.
#[derive(Default)]
struct Nodes {
    map: Slots,
    len: usize,
    entries: Vec<Entry>,
    coords: Vec<f64>,
    /// Slots of invalidated nodes, reused before the arrays grow.
    free: Vec<u32>,
    dims: usize,
}

impl Nodes {
    fn insert(&mut self, id: u64, node: &Node) {
        if self.dims == 0 {
            self.dims = node.coords.len();
        }
        if node.coords.len() != self.dims || self.map.get(id).is_some() {
            return;
        }
        let entry = Entry {
            below: node.below.unwrap_or(0),
            above: node.above.unwrap_or(0),
            axis: node.axis,
        };
        let slot = match self.free.last().copied() {
            Some(s) => {
                self.free.pop();
                self.entries[s as usize] = entry;
                let at = s as usize * self.dims;
                self.coords[at..at + self.dims].copy_from_slice(&node.coords);
                s
            }
            None => {
                self.entries.push(entry);
                self.coords.extend_from_slice(&node.coords);
                (self.entries.len() - 1) as u32
            }
        };
        if self.map.insert(id, slot) {
            self.len += 1;
        } else {
            self.free.push(slot);
        }
    }
}

/// Decoded nodes of the top levels, shared by every query of an index.
pub struct NodeCache {
    nodes: RwLock<Nodes>,
    capacity: usize,
    max_depth: u32,
    /// Set once the cache holds `capacity` nodes, so walks stop offering what they read.
    full: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl NodeCache {
    /// A cache of at most `bytes` (0 disables it) for nodes of `dims` coordinates, for an index
    /// whose node ids are below `ids`.
    pub fn with_budget(bytes: usize, dims: usize, ids: u64) -> NodeCache {
        // A dense id index costs 4 bytes per id; take it when that is at most a quarter of the
        // budget, with room for a quarter more ids (later ones are left to storage).
        let ids = ids as usize;
        let dense = ids.saturating_mul(4) <= bytes / 4;
        let per_node = BYTES_PER_NODE + 8 * dims.max(1);
        let (map, capacity) = if dense {
            let max = ids.saturating_add(ids / 4).min(bytes / 4 / 4).max(1);
            (Slots::Dense(Vec::new(), max), (bytes - max * 4) / per_node)
        } else {
            (Slots::default(), bytes / (per_node + BYTES_PER_HASHED_ID))
        };
        NodeCache {
            nodes: RwLock::new(Nodes {
                map,
                ..Nodes::default()
            }),
            capacity,
            // A balanced tree has 2^d - 1 nodes in its top d levels.
            max_depth: (capacity as f64 + 1.0).log2().floor() as u32,
            full: AtomicBool::new(capacity == 0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether a node at `depth` (root = 1) is worth asking for.
    #[inline]
    pub fn covers(&self, depth: u32) -> bool {
        depth <= self.max_depth
    }

    /// A view for one walk: lookups without further locking until it is dropped.
    pub fn view(&self) -> CacheView<'_> {
        CacheView {
            nodes: self.nodes.read().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Adds nodes a walk read from storage, if there is room and no one holds the cache now.
    pub fn offer(&self, read: &[(u64, Node)]) {
        if read.is_empty() || self.full.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut nodes) = self.nodes.try_write() else {
            return;
        };
        for (id, node) in read {
            if nodes.len >= self.capacity {
                self.full.store(true, Ordering::Relaxed);
                break;
            }
            nodes.insert(*id, node);
        }
    }

    /// Counts a walk's lookups.
    pub fn record(&self, hits: u64, misses: u64) {
        if hits > 0 {
            self.hits.fetch_add(hits, Ordering::Relaxed);
        }
        if misses > 0 {
            self.misses.fetch_add(misses, Ordering::Relaxed);
        }
    }

    /// Forgets the nodes `ids` (their records changed). Waits for walks in progress.
    pub fn invalidate(&self, ids: impl IntoIterator<Item = u64>) {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            if let Some(slot) = nodes.map.remove(id) {
                nodes.free.push(slot);
                nodes.len -= 1;
                self.full.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        let map = match &nodes.map {
            Slots::Dense(_, max) => Slots::Dense(Vec::new(), *max),
            Slots::Hashed(_) => Slots::default(),
        };
        *nodes = Nodes {
            map,
            ..Nodes::default()
        };
        self.full.store(self.capacity == 0, Ordering::Relaxed);
    }

    /// Nodes held.
    pub fn len(&self) -> usize {
        self.nodes.read().map(|n| n.len).unwrap_or(0)
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most nodes held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that went to storage.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

/// The cache as one walk sees it.
pub struct CacheView<'a> {
    nodes: RwLockReadGuard<'a, Nodes>,
}

impl CacheView<'_> {
    /// The cached node `id`, borrowed.
    #[inline(always)]
    pub fn get(&self, id: u64) -> Option<NodeRef<'_>> {
        let n = &*self.nodes;
        let slot = n.map.get(id)? as usize;
        let e = n.entries[slot];
        let at = slot * n.dims;
        Some(NodeRef {
            axis: e.axis,
            below: (e.below != 0).then_some(e.below),
            above: (e.above != 0).then_some(e.above),
            coords: Cow::Borrowed(&n.coords[at..at + n.dims]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(x: f64, below: Option<u64>) -> Node {
        Node {
            axis: 1,
            above: None,
            below,
            coords: vec![x, -x],
        }
    }

    #[test]
    fn offers_fill_up_to_capacity_and_invalidation_frees_slots() {
        // Ids up to a million: too many for a dense index in this budget, so hashed.
        let c = NodeCache::with_budget(3 * (BYTES_PER_NODE + 16 + BYTES_PER_HASHED_ID), 2, 1 << 20);
        assert_eq!(c.capacity(), 3);
        let read: Vec<(u64, Node)> = (1..=5).map(|i| (i, node(i as f64, Some(i + 1)))).collect();
        c.offer(&read);
        assert_eq!(c.len(), 3);
        {
            let v = c.view();
            let n = v.get(2).expect("cached");
            assert_eq!((n.axis, n.below, n.above), (1, Some(3), None));
            assert_eq!(&*n.coords, &[2.0, -2.0]);
            assert!(v.get(4).is_none());
        }
        // Full: further offers are dropped until something is invalidated.
        c.offer(&[(9, node(9.0, None))]);
        assert!(c.view().get(9).is_none());
        c.invalidate([2]);
        assert!(c.view().get(2).is_none());
        c.offer(&[(9, node(9.0, None))]);
        let v = c.view();
        assert_eq!(&*v.get(9).expect("reused slot").coords, &[9.0, -9.0]);
        assert_eq!(&*v.get(1).expect("kept").coords, &[1.0, -1.0]);
    }

    #[test]
    fn an_offer_while_a_walk_holds_the_cache_is_dropped_not_waited_for() {
        let c = NodeCache::with_budget(1 << 20, 2, 10);
        let v = c.view();
        c.offer(&[(1, node(1.0, None))]);
        drop(v);
        assert!(c.is_empty());
        c.offer(&[(1, node(1.0, None))]);
        assert_eq!(c.len(), 1);
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn a_dense_index_holds_ids_up_to_a_quarter_past_the_count_and_leaves_the_rest() {
        let c = NodeCache::with_budget(1 << 20, 2, 1000);
        let read: Vec<(u64, Node)> = [1u64, 999, 1249, 1250, 5000]
            .iter()
            .map(|&i| (i, node(i as f64, None)))
            .collect();
        c.offer(&read);
        let v = c.view();
        for id in [1, 999, 1249] {
            assert_eq!(v.get(id).expect("cached").coords[0], id as f64);
        }
        assert!(v.get(1250).is_none() && v.get(5000).is_none() && v.get(7).is_none());
        drop(v);
        assert_eq!(c.len(), 3);
        c.invalidate([999, 12345]);
        assert_eq!(c.len(), 2);
        assert!(c.view().get(999).is_none());
    }
}
