//! A bounded in-process cache of rendered heatmap tiles.
//!
//! Entries are keyed by the request and stamped with the tag of the index state they were drawn
//! from; a tile is served from here only while that state is current, so writes never show a
//! stale heatmap. The oldest entries go first once the byte budget is reached.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Rendered tiles by request, within a byte budget.
pub struct TileCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tiles: HashMap<String, (String, Arc<Vec<u8>>)>,
    order: VecDeque<String>,
    bytes: usize,
}

impl TileCache {
    /// A cache holding at most `budget` bytes of PNG.
    pub fn new(budget: usize) -> TileCache {
        TileCache {
            budget,
            inner: Mutex::default(),
        }
    }

    /// The tile for `key` if it was drawn from the state tagged `tag`.
    pub fn get(&self, key: &str, tag: &str) -> Option<Arc<Vec<u8>>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.tiles.get(key) {
            Some((t, png)) if t == tag => Some(png.clone()),
            _ => None,
        }
    }

    /// Keeps `png`, drawn from the state tagged `tag`, for `key`.
    pub fn put(&self, key: String, tag: String, png: Arc<Vec<u8>>) {
        if png.len() > self.budget {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = inner.tiles.remove(&key) {
            inner.bytes -= old.len();
            inner.order.retain(|k| k != &key);
        }
        while inner.bytes + png.len() > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some((_, old)) = inner.tiles.remove(&oldest) {
                inner.bytes -= old.len();
            }
        }
        inner.bytes += png.len();
        inner.order.push_back(key.clone());
        inner.tiles.insert(key, (tag, png));
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_the_current_state_and_stays_within_budget() {
        let c = TileCache::new(100);
        c.put("a".into(), "t1".into(), Arc::new(vec![0; 60]));
        assert!(c.get("a", "t1").is_some());
        assert!(c.get("a", "t2").is_none(), "a tile of an older state");
        c.put("b".into(), "t1".into(), Arc::new(vec![0; 60]));
        assert!(c.get("a", "t1").is_none(), "the oldest went");
        assert!(c.get("b", "t1").is_some());
        assert!(c.bytes() <= 100);
        c.put("b".into(), "t2".into(), Arc::new(vec![0; 30]));
        assert_eq!(c.bytes(), 30);
        c.put("huge".into(), "t2".into(), Arc::new(vec![0; 1000]));
        assert!(c.get("huge", "t2").is_none());
    }
}
