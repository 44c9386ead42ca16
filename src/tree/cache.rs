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

use super::node::{Inner, Node, NodeRef};

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

/// Bytes per cached node besides a leaf's coordinates: links, split, count, arena span.
pub const BYTES_PER_NODE: usize = std::mem::size_of::<Entry>();

/// Bytes a hashed id index adds per cached node (key, slot, control byte, spare capacity).
const BYTES_PER_HASHED_ID: usize = 24;

/// A cached node: an inner node's fields, or a leaf's span of [`Nodes::coords`].
#[derive(Clone, Copy)]
struct Entry {
    below: u64,
    above: u64,
    split: f64,
    count: u64,
    /// Start of a leaf's coordinates in the arena, `u64::MAX` for an inner node.
    start: u64,
    len: u32,
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

    /// Records `id` at `slot` (a dense index too small for `id` turns into a hashed one).
    fn insert(&mut self, id: u64, slot: u32) {
        match self {
            Slots::Dense(v, max) => {
                let i = id as usize;
                if i >= *max {
                    // Writes gave out ids past what the index had when it was opened: hash
                    // from now on rather than stop caching new nodes.
                    let map: IdMap = v
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| **s != NO_SLOT)
                        .map(|(id, s)| (id as u64, *s))
                        .collect();
                    *self = Slots::Hashed(map);
                    return self.insert(id, slot);
                }
                if i >= v.len() {
                    v.resize((i + 1).next_power_of_two().min(*max), NO_SLOT);
                }
                v[i] = slot;
            }
            Slots::Hashed(m) => {
                m.insert(id, slot);
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

/// The cached nodes: id to slot, per slot the node, and one arena of leaf coordinates.
#[derive(Default)]
struct Nodes {
    map: Slots,
    len: usize,
    entries: Vec<Entry>,
    coords: Vec<f64>,
    /// Slots of invalidated nodes, reused before the arrays grow.
    free: Vec<u32>,
    /// Bytes held: entries and the arena (invalidated leaves' coordinates stay counted until
    /// the next clear, so the budget bounds the arena too).
    bytes: usize,
    /// Arena bytes of invalidated leaves.
    garbage: usize,
}

impl Nodes {
    fn insert(&mut self, id: u64, node: &Node) {
        let entry = match node {
            Node::Inner(i) => Entry {
                below: i.below.unwrap_or(0),
                above: i.above.unwrap_or(0),
                split: i.split,
                count: i.count,
                start: u64::MAX,
                len: 0,
                axis: i.axis,
            },
            Node::Leaf { coords } => {
                let start = self.coords.len() as u64;
                self.coords.extend_from_slice(coords);
                self.bytes += 8 * coords.len();
                Entry {
                    below: 0,
                    above: 0,
                    split: 0.0,
                    count: 0,
                    start,
                    len: coords.len() as u32,
                    axis: 0,
                }
            }
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.entries[s as usize] = entry;
                s
            }
            None => {
                self.entries.push(entry);
                self.bytes += BYTES_PER_NODE;
                (self.entries.len() - 1) as u32
            }
        };
        self.map.insert(id, slot);
        self.len += 1;
    }
}

/// Decoded nodes of the top levels (all levels, leaves included, when the tree fits), shared by
/// every query of an index.
pub struct NodeCache {
    nodes: RwLock<Nodes>,
    /// Bytes the entries and the leaf arena may take.
    capacity: usize,
    max_depth: u32,
    /// Set once the cache is full, so walks stop offering what they read.
    full: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl NodeCache {
    /// A cache of at most `bytes` (0 disables it) for an index of `dims` dimensions whose node
    /// ids are below `ids`, holding nodes at depth at most `max_depth`.
    pub fn with_budget(bytes: usize, ids: u64, max_depth: u32) -> NodeCache {
        // A dense id index costs 4 bytes per id; take it when that is at most a quarter of the
        // budget, with room for a quarter more ids (later ones are left to storage).
        let ids = ids as usize;
        let dense = ids.saturating_mul(4) <= bytes / 4;
        let (map, capacity) = if dense {
            let max = ids.saturating_add(ids / 4).min(bytes / 4 / 4).max(1);
            (Slots::Dense(Vec::new(), max), bytes.saturating_sub(max * 4))
        } else {
            let per = BYTES_PER_NODE + BYTES_PER_HASHED_ID;
            (Slots::default(), bytes / per * BYTES_PER_NODE)
        };
        NodeCache {
            nodes: RwLock::new(Nodes {
                map,
                ..Nodes::default()
            }),
            capacity,
            max_depth,
            full: AtomicBool::new(capacity == 0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The depth to cache down to for a tree of `count` points in `nodes` nodes, `dims`
    /// coordinates a point, `depth` levels, in a budget of `bytes`: every level when the whole
    /// tree fits, else the inner levels a balanced tree fits in the budget.
    pub fn depth_for(bytes: usize, count: u64, nodes: u64, dims: usize, depth: u32) -> u32 {
        let whole = (count as usize)
            .saturating_mul(8 * dims)
            .saturating_add((nodes as usize).saturating_mul(BYTES_PER_NODE + 4));
        if whole <= bytes {
            return u32::MAX;
        }
        // A balanced tree has 2^d - 1 nodes in its top d levels.
        let fit = (bytes / (BYTES_PER_NODE + BYTES_PER_HASHED_ID)) as f64;
        ((fit + 1.0).log2().floor() as u32).min(depth.saturating_sub(1))
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
            // A freed slot is reused, so only a new one costs an entry.
            let entry = if nodes.free.is_empty() {
                BYTES_PER_NODE
            } else {
                0
            };
            let extra = match node {
                Node::Inner(_) => entry,
                Node::Leaf { coords } => entry + 8 * coords.len(),
            };
            if nodes.bytes + extra > self.capacity {
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
                let e = nodes.entries[slot as usize];
                if e.start != u64::MAX {
                    nodes.garbage += 8 * e.len as usize;
                }
                nodes.free.push(slot);
                nodes.len -= 1;
                self.full.store(false, Ordering::Relaxed);
            }
        }
        // Freed leaf coordinates stay in the arena: once they are half of it, start over.
        if nodes.garbage > self.capacity / 2 {
            drop(nodes);
            self.clear();
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

    /// Bytes the cache may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.nodes.read().map(|n| n.bytes).unwrap_or(0)
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
        Some(if e.start == u64::MAX {
            NodeRef::Inner(Inner {
                axis: e.axis,
                split: e.split,
                below: (e.below != 0).then_some(e.below),
                above: (e.above != 0).then_some(e.above),
                count: e.count,
            })
        } else {
            let at = e.start as usize;
            NodeRef::Leaf(Cow::Borrowed(&n.coords[at..at + e.len as usize]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner(x: f64, below: Option<u64>) -> Node {
        Node::Inner(Inner {
            axis: 1,
            split: x,
            below,
            above: None,
            count: 7,
        })
    }

    fn split_of(n: NodeRef<'_>) -> f64 {
        match n {
            NodeRef::Inner(i) => i.split,
            NodeRef::Leaf(c) => c[0],
        }
    }

    #[test]
    fn offers_fill_up_to_capacity_and_invalidation_frees_slots() {
        // Ids up to a million: too many for a dense index in this budget, so hashed.
        let c = NodeCache::with_budget(3 * (BYTES_PER_NODE + BYTES_PER_HASHED_ID), 1 << 20, 9);
        assert_eq!(c.capacity(), 3 * BYTES_PER_NODE);
        let read: Vec<(u64, Node)> = (1..=5).map(|i| (i, inner(i as f64, Some(i + 1)))).collect();
        c.offer(&read);
        assert_eq!(c.len(), 3);
        {
            let v = c.view();
            match v.get(2).expect("cached") {
                NodeRef::Inner(i) => {
                    assert_eq!((i.axis, i.below, i.above, i.split), (1, Some(3), None, 2.0))
                }
                NodeRef::Leaf(_) => panic!("an inner node came back as a leaf"),
            }
            assert!(v.get(4).is_none());
        }
        // Full: further offers are dropped until something is invalidated.
        c.offer(&[(9, inner(9.0, None))]);
        assert!(c.view().get(9).is_none());
        c.invalidate([2]);
        assert!(c.view().get(2).is_none());
        c.offer(&[(9, inner(9.0, None))]);
        let v = c.view();
        assert_eq!(split_of(v.get(9).expect("reused slot")), 9.0);
        assert_eq!(split_of(v.get(1).expect("kept")), 1.0);
    }

    #[test]
    fn leaves_are_cached_with_their_coordinates() {
        let c = NodeCache::with_budget(1 << 20, 10, u32::MAX);
        let leaf = Node::Leaf {
            coords: vec![1.0, 2.0, 3.0, 4.0],
        };
        c.offer(&[(4, leaf), (5, inner(0.5, Some(4)))]);
        let v = c.view();
        assert_eq!(
            v.get(4),
            Some(NodeRef::Leaf(Cow::Borrowed(&[1.0, 2.0, 3.0, 4.0][..])))
        );
        assert_eq!(split_of(v.get(5).expect("cached")), 0.5);
    }

    #[test]
    fn an_offer_while_a_walk_holds_the_cache_is_dropped_not_waited_for() {
        let c = NodeCache::with_budget(1 << 20, 10, 9);
        let v = c.view();
        c.offer(&[(1, inner(1.0, None))]);
        drop(v);
        assert!(c.is_empty());
        c.offer(&[(1, inner(1.0, None))]);
        assert_eq!(c.len(), 1);
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn a_dense_index_turns_hashed_when_writes_give_out_larger_ids() {
        let c = NodeCache::with_budget(1 << 20, 1000, 9);
        let read: Vec<(u64, Node)> = [1u64, 999, 1249, 1250, 5000]
            .iter()
            .map(|&i| (i, inner(i as f64, None)))
            .collect();
        c.offer(&read);
        let v = c.view();
        for id in [1, 999, 1249, 1250, 5000] {
            assert_eq!(split_of(v.get(id).expect("cached")), id as f64);
        }
        assert!(v.get(7).is_none());
        drop(v);
        assert_eq!(c.len(), 5);
        c.invalidate([999, 12345]);
        assert_eq!(c.len(), 4);
        assert!(c.view().get(999).is_none());
    }
}
