//! Keeps the best `limit` hits of a walk in bounded memory.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::Hit;

/// A hit ordered by (distance, point handle), so ties break the same way every time.
pub(crate) struct Ranked(pub Hit);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .distance
            .total_cmp(&other.0.distance)
            .then(self.0.point.cmp(&other.0.point))
    }
}

/// The `limit` nearest hits seen so far: a max-heap whose top is the worst kept hit.
pub(crate) struct Best {
    limit: usize,
    heap: BinaryHeap<Ranked>,
}

impl Best {
    pub(crate) fn new(limit: usize) -> Self {
        Best {
            limit,
            heap: BinaryHeap::with_capacity(limit.min(4096)),
        }
    }

    /// Offers a hit; keeps it if it is among the best `limit`.
    pub(crate) fn offer(&mut self, hit: Hit) {
        if self.limit == 0 {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Ranked(hit));
        } else if let Some(worst) = self.heap.peek() {
            let cand = Ranked(hit);
            if cand < *worst {
                self.heap.pop();
                self.heap.push(cand);
            }
        }
    }

    /// Whether `limit` hits are kept.
    pub(crate) fn is_full(&self) -> bool {
        self.heap.len() >= self.limit
    }

    /// Distance of the worst kept hit.
    pub(crate) fn worst(&self) -> Option<f64> {
        self.heap.peek().map(|r| r.0.distance)
    }

    /// The kept hits, nearest first.
    pub(crate) fn into_sorted(self) -> Vec<Hit> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }
}
