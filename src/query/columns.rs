//! Attribute columns: one attribute's value in every slot of a leaf, copied out of the leaf's
//! payload records once and kept in a bounded cache for filters and stats.
//!
//! A filter or a stats query reads one or two attributes of every point it looks at. Decoding
//! a leaf's payload records (128 GeoNames rows, alternate names and all) for that was nearly
//! all of such a query's time, and the same leaves come up query after query.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex};

use crate::point::Value;
use crate::tree::cache::IdHasher;

/// One attribute of every slot of a leaf, `None` where a point has no such attribute.
pub type Column = Vec<Option<Value>>;

/// Memory a column holds, roughly.
fn column_bytes(c: &Column) -> usize {
    /// The map entry, the eviction entry and the field name's allocation.
    const OVERHEAD: usize = 96;
    OVERHEAD
        + c.capacity() * std::mem::size_of::<Option<Value>>()
        + c.iter()
            .map(|v| match v {
                Some(Value::Str(s)) => s.capacity(),
                _ => 0,
            })
            .sum::<usize>()
}

/// Columns by leaf and attribute, within a byte budget, evicted oldest first. Invalidated by
/// the writes that change a leaf's payloads, like the payload JSON cache.
pub struct ColumnCache {
    budget: usize,
    state: Mutex<State>,
}

/// A cached column: the attribute, the column, its bytes and the stamp it was put in with.
type Entry = (String, Arc<Column>, usize, u64);

#[derive(Default)]
struct State {
    /// Leaf id to its cached columns (a handful: the attributes queries group and filter by).
    map: HashMap<u64, Vec<Entry>, BuildHasherDefault<IdHasher>>,
    /// Eviction order: (leaf, stamp); entries whose stamp is no longer cached are stale.
    order: VecDeque<(u64, u64)>,
    columns: usize,
    bytes: usize,
    stamp: u64,
}

impl ColumnCache {
    /// A cache holding at most `budget` bytes of columns.
    pub fn new(budget: usize) -> ColumnCache {
        ColumnCache {
            budget,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Attribute `field` of leaf `leaf`, if cached.
    pub fn get(&self, leaf: u64, field: &str) -> Option<Arc<Column>> {
        let s = self.lock();
        s.map
            .get(&leaf)?
            .iter()
            .find(|e| e.0 == field)
            .map(|e| e.1.clone())
    }

    /// Keeps `column` as attribute `field` of leaf `leaf`. The caller must hold a snapshot, so
    /// no write can have changed the leaf since it was read. A column larger than an eighth of
    /// the budget is not kept.
    pub fn insert(&self, leaf: u64, field: &str, column: Arc<Column>) {
        let size = column_bytes(&column);
        if size > self.budget / 8 {
            return;
        }
        let mut s = self.lock();
        s.stamp += 1;
        let stamp = s.stamp;
        let entries = s.map.entry(leaf).or_default();
        let old = entries
            .iter()
            .position(|e| e.0 == field)
            .map(|at| entries.swap_remove(at));
        entries.push((field.to_string(), column, size, stamp));
        if let Some(old) = old {
            s.bytes -= old.2;
            s.columns -= 1;
        }
        s.bytes += size;
        s.columns += 1;
        s.order.push_back((leaf, stamp));
        while s.bytes > self.budget {
            let Some((id, st)) = s.order.pop_front() else {
                break;
            };
            s.remove(id, |e| e.3 == st);
        }
        // Invalidations leave stale entries behind: drop them before they outnumber the live.
        if s.order.len() > 2 * s.columns + 1024 {
            let State { map, order, .. } = &mut *s;
            order.retain(|(id, st)| map.get(id).is_some_and(|es| es.iter().any(|e| e.3 == *st)));
        }
    }

    /// Forgets every column of the leaves whose payloads a write changed. Called while the
    /// write holds readers off, so no snapshot can put an old column back afterwards.
    pub fn invalidate(&self, leaves: impl IntoIterator<Item = u64>) {
        let mut s = self.lock();
        for id in leaves {
            s.remove(id, |_| true);
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut s = self.lock();
        s.map.clear();
        s.order.clear();
        s.columns = 0;
        s.bytes = 0;
    }

    /// Bytes of columns held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Columns held.
    pub fn len(&self) -> usize {
        self.lock().columns
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    /// Drops the columns of `leaf` that `which` picks.
    fn remove(&mut self, leaf: u64, which: impl Fn(&Entry) -> bool) {
        let Some(entries) = self.map.get_mut(&leaf) else {
            return;
        };
        let (mut bytes, mut columns) = (0, 0);
        entries.retain(|e| {
            let gone = which(e);
            if gone {
                bytes += e.2;
                columns += 1;
            }
            !gone
        });
        if entries.is_empty() {
            self.map.remove(&leaf);
        }
        self.bytes -= bytes;
        self.columns -= columns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(n: usize, text: &str) -> Arc<Column> {
        Arc::new(vec![Some(Value::Str(text.to_string())); n])
    }

    #[test]
    fn columns_are_kept_within_budget_and_forgotten_on_invalidation() {
        let one = column_bytes(&column(16, "abc"));
        let c = ColumnCache::new(10 * one);
        for leaf in 0..20 {
            c.insert(leaf, "cat", column(16, "abc"));
            assert!(c.bytes() <= 10 * one);
        }
        // The oldest went first.
        assert_eq!(c.len(), 10);
        assert!(c.get(0, "cat").is_none());
        assert_eq!(c.get(19, "cat").as_deref(), Some(&*column(16, "abc")));
        assert!(c.get(19, "other").is_none());
        // A second attribute of a leaf (the oldest column, leaf 10's, makes room), then both
        // gone with the leaf.
        c.insert(19, "w", column(16, "abc"));
        assert!(c.get(19, "w").is_some() && c.get(10, "cat").is_none());
        c.invalidate([19, 18]);
        assert!(c.get(19, "cat").is_none() && c.get(19, "w").is_none());
        assert!(c.get(18, "cat").is_none());
        assert_eq!((c.len(), c.bytes()), (7, 7 * one));
        // Replacing a column counts it once.
        c.insert(17, "cat", column(16, "abc"));
        assert_eq!((c.len(), c.bytes()), (7, 7 * one));
        // Too large for an eighth of the budget: not kept.
        c.insert(1, "big", column(1024, "abc"));
        assert!(c.get(1, "big").is_none());
        c.clear();
        assert!(c.is_empty() && c.bytes() == 0);
    }

    #[test]
    fn stale_eviction_entries_do_not_pile_up() {
        let c = ColumnCache::new(1 << 30);
        for round in 0..5_000u64 {
            c.insert(round % 3, "cat", column(1, "x"));
            c.invalidate([round % 3]);
        }
        assert!(c.is_empty());
        assert!(c.lock().order.len() <= 1024 + 1);
    }
}
