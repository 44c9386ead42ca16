//! A bounded cache of something made from one leaf (its payloads' JSON, its attribute
//! columns), shared by the caches that sit beside the node cache.
//!
//! Entries are dropped when a write changes their leaf, and evicted within a byte budget by
//! second chance: an entry used since it last came up for eviction is kept one more round, so
//! the leaves of a hot area survive a scan over a cold one.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, MutexGuard};

use super::cache::IdHasher;

/// What a cached value costs in memory, roughly; weighed once, when it is put in.
pub trait Weighed {
    /// Bytes the value holds, its allocations included.
    fn bytes(&self) -> usize;
}

/// Values by leaf id within a byte budget. The caller must hold a snapshot when it puts a
/// value in, and writers invalidate while they hold readers off, so no value made from an
/// older version of a leaf can come back after the write.
pub struct LeafCache<V> {
    budget: usize,
    state: Mutex<State<V>>,
}

struct Slot<V> {
    value: Arc<V>,
    bytes: usize,
    /// The stamp the value was put in with: eviction entries with another stamp are stale.
    stamp: u64,
    /// Used since it last came up for eviction.
    used: bool,
}

struct State<V> {
    /// Hashed like the node cache's ids: leaf ids are not attacker-chosen, and SipHash cost
    /// more than the rest of a lookup.
    map: HashMap<u64, Slot<V>, BuildHasherDefault<IdHasher>>,
    /// Eviction order: (leaf, stamp).
    order: VecDeque<(u64, u64)>,
    bytes: usize,
    stamp: u64,
    hits: u64,
    misses: u64,
}

impl<V> Default for State<V> {
    fn default() -> Self {
        State {
            map: HashMap::default(),
            order: VecDeque::new(),
            bytes: 0,
            stamp: 0,
            hits: 0,
            misses: 0,
        }
    }
}

impl<V: Weighed> LeafCache<V> {
    /// A cache holding at most `budget` bytes.
    pub fn new(budget: usize) -> LeafCache<V> {
        LeafCache {
            budget,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<V>> {
        // A panic elsewhere cannot leave the state inconsistent: every update completes
        // before anything that could panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `leaf`, if cached.
    pub fn get(&self, leaf: u64) -> Option<Arc<V>> {
        let mut s = self.lock();
        match s.map.get_mut(&leaf) {
            Some(slot) => {
                slot.used = true;
                let value = slot.value.clone();
                s.hits += 1;
                Some(value)
            }
            None => {
                s.misses += 1;
                None
            }
        }
    }

    /// Keeps `value` as the value of `leaf`, replacing any. A value larger than an eighth of
    /// the budget is not kept.
    pub fn insert(&self, leaf: u64, value: Arc<V>) {
        self.update(leaf, |_| Some(value));
    }

    /// Replaces the value of `leaf` by what `make` returns given the cached one (`None`
    /// keeps what is there), in one step, so two callers adding to one leaf's value do not
    /// lose each other's part.
    pub fn update(&self, leaf: u64, make: impl FnOnce(Option<&Arc<V>>) -> Option<Arc<V>>) {
        let mut s = self.lock();
        let Some(value) = make(s.map.get(&leaf).map(|slot| &slot.value)) else {
            return;
        };
        let bytes = value.bytes();
        if bytes > self.budget / 8 {
            return;
        }
        s.stamp += 1;
        let stamp = s.stamp;
        let slot = Slot {
            value,
            bytes,
            stamp,
            used: false,
        };
        if let Some(old) = s.map.insert(leaf, slot) {
            s.bytes -= old.bytes;
        }
        s.bytes += bytes;
        s.order.push_back((leaf, stamp));
        s.evict(self.budget);
    }

    /// Forgets the values of the leaves a write changed.
    pub fn invalidate(&self, leaves: impl IntoIterator<Item = u64>) {
        let mut s = self.lock();
        for id in leaves {
            if let Some(old) = s.map.remove(&id) {
                s.bytes -= old.bytes;
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut s = self.lock();
        s.map.clear();
        s.order.clear();
        s.bytes = 0;
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Leaves held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (hits, misses) of [`LeafCache::get`] so far.
    pub fn hit_counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.hits, s.misses)
    }
}

impl<V> State<V> {
    fn evict(&mut self, budget: usize) {
        while self.bytes > budget {
            let Some((id, stamp)) = self.order.pop_front() else {
                break;
            };
            match self.map.get_mut(&id).filter(|slot| slot.stamp == stamp) {
                Some(slot) if slot.used => {
                    slot.used = false;
                    self.order.push_back((id, stamp));
                }
                Some(_) => {
                    if let Some(old) = self.map.remove(&id) {
                        self.bytes -= old.bytes;
                    }
                }
                None => {}
            }
        }
        // Invalidations and replacements leave stale entries behind: drop them before they
        // outnumber the live ones.
        if self.order.len() > 2 * self.map.len() + 1024 {
            let State { map, order, .. } = self;
            order.retain(|(id, stamp)| map.get(id).is_some_and(|slot| slot.stamp == *stamp));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value weighing its length.
    struct Blob(usize);

    impl Weighed for Blob {
        fn bytes(&self) -> usize {
            self.0
        }
    }

    fn held(c: &LeafCache<Blob>) -> Vec<u64> {
        let mut ids: Vec<u64> = c.lock().map.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn values_are_kept_within_budget_oldest_unused_going_first() {
        let c = LeafCache::new(1000);
        for leaf in 0..10 {
            c.insert(leaf, Arc::new(Blob(100)));
        }
        assert_eq!((c.len(), c.bytes()), (10, 1000));
        // Leaf 0 used: it gets a second chance, leaf 1 goes instead.
        assert_eq!(c.get(0).map(|b| b.0), Some(100));
        c.insert(10, Arc::new(Blob(100)));
        assert_eq!(held(&c), [0, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        // Its chance spent, leaf 0 goes next unless used again.
        for leaf in 11..20 {
            c.insert(leaf, Arc::new(Blob(100)));
        }
        assert_eq!(held(&c), [0, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        c.insert(20, Arc::new(Blob(100)));
        assert_eq!(held(&c), (11..21).collect::<Vec<_>>());
        assert!(c.bytes() <= 1000);
        assert_eq!(c.hit_counts(), (1, 0));
        assert!(c.get(0).is_none());
        assert_eq!(c.hit_counts(), (1, 1));
    }

    #[test]
    fn replacing_counts_once_and_too_large_is_not_kept() {
        let c = LeafCache::new(1000);
        c.insert(1, Arc::new(Blob(100)));
        c.insert(1, Arc::new(Blob(50)));
        assert_eq!((c.len(), c.bytes()), (1, 50));
        c.insert(2, Arc::new(Blob(126)));
        assert!(c.get(2).is_none());
        c.update(1, |old| old.map(|b| Arc::new(Blob(b.0 + 10))));
        assert_eq!(c.get(1).map(|b| b.0), Some(60));
        c.update(1, |_| None);
        assert_eq!(c.get(1).map(|b| b.0), Some(60));
    }

    #[test]
    fn invalidated_and_cleared_values_are_gone() {
        let c = LeafCache::new(1000);
        for leaf in 0..5 {
            c.insert(leaf, Arc::new(Blob(10)));
        }
        c.invalidate([1, 3, 99]);
        assert_eq!(held(&c), [0, 2, 4]);
        assert_eq!(c.bytes(), 30);
        c.clear();
        assert!(c.is_empty() && c.bytes() == 0 && c.get(0).is_none());
    }

    #[test]
    fn stale_eviction_entries_do_not_pile_up() {
        let c = LeafCache::new(1 << 30);
        for round in 0..5_000u64 {
            c.insert(round % 3, Arc::new(Blob(1)));
            c.invalidate([round % 3]);
        }
        assert!(c.is_empty());
        assert!(c.lock().order.len() <= 1024 + 1);
    }
}
