//! A bounded cache of decoded nodes from the top levels of the tree.
//!
//! Every query walks the same top levels, so keeping them decoded in memory removes most sled
//! lookups and decodes from a walk. The cache holds at most a fixed number of nodes, and only
//! nodes at depth at most `log2(capacity)`, so the levels it keeps are the ones every walk
//! touches, and its memory is bounded whatever the index's size.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use super::Node;

const SHARDS: usize = 16;

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

type IdMap = HashMap<u64, Arc<Node>, std::hash::BuildHasherDefault<IdHasher>>;

/// Rough bytes per cached node (record, map entry, `Arc`), to turn a byte budget into a count.
pub const BYTES_PER_NODE: usize = 112;

/// Decoded nodes of the top levels, shared by every query of an index.
pub struct NodeCache {
    shards: Vec<RwLock<IdMap>>,
    capacity: usize,
    max_depth: u32,
    len: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl NodeCache {
    /// A cache of at most `bytes` (0 disables it).
    pub fn with_budget(bytes: usize) -> NodeCache {
        let capacity = bytes / BYTES_PER_NODE;
        NodeCache {
            shards: (0..SHARDS).map(|_| RwLock::new(IdMap::default())).collect(),
            capacity,
            // A balanced tree has 2^d - 1 nodes in its top d levels.
            max_depth: (capacity as f64 + 1.0).log2().floor() as u32,
            len: AtomicUsize::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, id: u64) -> &RwLock<IdMap> {
        // Preorder ids of neighbouring nodes differ in their low bits; mix before picking.
        let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
        &self.shards[h as usize % SHARDS]
    }

    /// Whether a node at `depth` (root = 1) is worth asking for.
    #[inline]
    pub fn covers(&self, depth: u32) -> bool {
        depth <= self.max_depth
    }

    /// The cached node `id`, counting a hit or a miss.
    pub fn get(&self, id: u64) -> Option<Arc<Node>> {
        let found = self.shard(id).read().ok().and_then(|m| m.get(&id).cloned());
        match &found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    /// Keeps node `id` if there is room.
    pub fn put(&self, id: u64, node: Arc<Node>) {
        if self.len.load(Ordering::Relaxed) >= self.capacity {
            return;
        }
        if let Ok(mut m) = self.shard(id).write() {
            if m.insert(id, node).is_none() {
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Forgets node `id` (its record changed).
    pub fn invalidate(&self, id: u64) {
        if let Ok(mut m) = self.shard(id).write() {
            if m.remove(&id).is_some() {
                self.len.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        for s in &self.shards {
            if let Ok(mut m) = s.write() {
                m.clear();
            }
        }
        self.len.store(0, Ordering::Relaxed);
    }

    /// Nodes held.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
