//! Attribute columns: one attribute's value in every slot of a leaf, copied out of the leaf's
//! payload records once and kept in a bounded cache for filters and stats.
//!
//! A filter or a stats query reads one or two attributes of every point it looks at. Decoding
//! a leaf's payload records (128 GeoNames rows, alternate names and all) for that was nearly
//! all of such a query's time, and the same leaves come up query after query.

use std::sync::Arc;

use crate::point::Value;
use crate::tree::leaf_cache::{LeafCache, Weighed};

/// One attribute of every slot of a leaf, `None` where a point has no such attribute.
pub type Column = Vec<Option<Value>>;

/// Memory a column holds, roughly.
fn column_bytes(c: &Column) -> usize {
    /// The column's share of the cache entry and the field name's allocation.
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

/// The cached columns of one leaf (a handful: the attributes queries group and filter by),
/// each with its bytes.
struct LeafColumns(Vec<(Box<str>, Arc<Column>, usize)>);

impl Weighed for LeafColumns {
    fn bytes(&self) -> usize {
        self.0.iter().map(|c| c.2).sum()
    }
}

/// Columns by leaf and attribute, within a byte budget. Invalidated by the writes that change
/// a leaf's payloads, like the payload JSON cache.
pub struct ColumnCache {
    leaves: LeafCache<LeafColumns>,
}

impl ColumnCache {
    /// A cache holding at most `budget` bytes of columns.
    pub fn new(budget: usize) -> ColumnCache {
        ColumnCache {
            leaves: LeafCache::new(budget),
        }
    }

    /// Attribute `field` of leaf `leaf`, if cached.
    pub fn get(&self, leaf: u64, field: &str) -> Option<Arc<Column>> {
        let columns = self.leaves.get(leaf)?;
        let found = columns.0.iter().find(|c| &*c.0 == field);
        found.map(|c| c.1.clone())
    }

    /// Keeps `column` as attribute `field` of leaf `leaf`. The caller must hold a snapshot, so
    /// no write can have changed the leaf since it was read. A column, or a leaf's columns
    /// together, larger than an eighth of the budget is not kept.
    pub fn insert(&self, leaf: u64, field: &str, column: Arc<Column>) {
        let size = column_bytes(&column);
        self.leaves.update(leaf, |old| {
            let mut columns: Vec<_> = old.map(|o| o.0.clone()).unwrap_or_default();
            columns.retain(|c| &*c.0 != field);
            columns.push((field.into(), column, size));
            Some(Arc::new(LeafColumns(columns)))
        });
    }

    /// Forgets every column of the leaves whose payloads a write changed. Called while the
    /// write holds readers off, so no snapshot can put an old column back afterwards.
    pub fn invalidate(&self, leaves: impl IntoIterator<Item = u64>) {
        self.leaves.invalidate(leaves);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.leaves.clear();
    }

    /// Bytes of columns held.
    pub fn bytes(&self) -> usize {
        self.leaves.bytes()
    }

    /// Leaves with columns held.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
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
        let c = ColumnCache::new(16 * one);
        for leaf in 0..32 {
            c.insert(leaf, "cat", column(16, "abc"));
            assert!(c.bytes() <= 16 * one);
        }
        // The oldest went first.
        assert_eq!(c.len(), 16);
        assert!(c.get(15, "cat").is_none());
        assert_eq!(c.get(31, "cat").as_deref(), Some(&*column(16, "abc")));
        assert!(c.get(31, "other").is_none());
        // A second attribute of a leaf (the oldest unused, leaf 16's, makes room), then both
        // gone with the leaf.
        c.insert(31, "w", column(16, "abc"));
        assert!(c.get(31, "w").is_some() && c.get(16, "cat").is_none());
        c.invalidate([31, 30]);
        assert!(c.get(31, "cat").is_none() && c.get(31, "w").is_none());
        assert!(c.get(30, "cat").is_none());
        assert_eq!((c.len(), c.bytes()), (13, 13 * one));
        // Replacing a column counts it once.
        c.insert(29, "cat", column(16, "abc"));
        assert_eq!((c.len(), c.bytes()), (13, 13 * one));
        // Too large for an eighth of the budget: not kept.
        c.insert(1, "big", column(1024, "abc"));
        assert!(c.get(1, "big").is_none());
        c.clear();
        assert!(c.is_empty() && c.bytes() == 0);
    }
}
