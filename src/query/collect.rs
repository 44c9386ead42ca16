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

/// The `limit` nearest hits seen so far.
///
/// Until `limit` hits are offered they are only collected, and sorted once at the end: most
/// answers hold far fewer hits than their limit (a 25 km query: ~40 of 1,000), and pushing each
/// into a heap and popping it out again in order cost more than the walk that found them. At
/// the limit they become a max-heap whose top is the worst kept hit.
pub(crate) struct Best {
    limit: usize,
    /// The hits while fewer than `limit` were offered.
    collected: Vec<Ranked>,
    /// The best `limit` hits, once that many were offered.
    heap: Option<BinaryHeap<Ranked>>,
}

impl Best {
    pub(crate) fn new(limit: usize) -> Self {
        Best {
            limit,
            collected: Vec::with_capacity(limit.min(64)),
            heap: None,
        }
    }

    /// Offers a hit; keeps it if it is among the best `limit`.
    pub(crate) fn offer(&mut self, hit: Hit) {
        if self.limit == 0 {
            return;
        }
        let Some(heap) = &mut self.heap else {
            self.collected.push(Ranked(hit));
            if self.collected.len() == self.limit {
                self.heap = Some(BinaryHeap::from(std::mem::take(&mut self.collected)));
            }
            return;
        };
        if let Some(worst) = heap.peek() {
            let cand = Ranked(hit);
            if cand < *worst {
                heap.pop();
                heap.push(cand);
            }
        }
    }

    /// Whether `limit` hits are kept.
    pub(crate) fn is_full(&self) -> bool {
        self.heap.is_some() || self.limit == 0
    }

    /// Distance of the worst kept hit, once `limit` hits are kept ([`Best::is_full`]).
    pub(crate) fn worst(&self) -> Option<f64> {
        self.heap.as_ref()?.peek().map(|r| r.0.distance)
    }

    /// The kept hits, nearest first.
    pub(crate) fn into_sorted(self) -> Vec<Hit> {
        let sorted = match self.heap {
            Some(heap) => heap.into_sorted_vec(),
            None => {
                let mut v = self.collected;
                // Ranked orders by (distance, handle) and handles are unique: no ties.
                v.sort_unstable();
                v
            }
        };
        sorted.into_iter().map(|r| r.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::PointRef;

    #[test]
    fn keeps_the_best_limit_in_order_below_at_and_past_the_limit() {
        // Distances with ties (broken by handle), offered in a scrambled order.
        let hits: Vec<Hit> = (0..200u64)
            .map(|i| Hit {
                point: PointRef((i * 7919) % 200),
                coords: smallvec::smallvec![i as f64],
                distance: ((i * 37) % 50) as f64,
            })
            .collect();
        let mut want: Vec<(f64, u64)> = hits.iter().map(|h| (h.distance, h.point.0)).collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for limit in [0, 1, 2, 57, 199, 200, 201, 1000] {
            let mut best = Best::new(limit);
            for h in &hits {
                best.offer(h.clone());
            }
            assert_eq!(best.is_full(), limit <= hits.len(), "limit {limit}");
            if limit > 0 && limit <= hits.len() {
                assert_eq!(best.worst(), Some(want[limit - 1].0), "limit {limit}");
            } else {
                assert_eq!(best.worst(), None, "limit {limit}");
            }
            let got: Vec<(f64, u64)> = best
                .into_sorted()
                .iter()
                .map(|h| (h.distance, h.point.0))
                .collect();
            assert_eq!(got, want[..limit.min(want.len())], "limit {limit}");
        }
    }
}
