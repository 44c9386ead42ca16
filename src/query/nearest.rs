//! The k nearest points, best-first.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::collect::Best;
use super::{Answer, Hit, Walk};
use crate::error::Result;
use crate::geometry::Region;
use crate::tree::node::NodeRef;
use crate::tree::PointRef;

/// A subtree waiting to be read, ordered so the heap pops the smallest lower bound first.
struct Pending {
    bound: f64,
    id: u64,
    depth: u32,
    region: Region,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .bound
            .total_cmp(&self.bound)
            .then(other.id.cmp(&self.id))
    }
}

/// The `k` points nearest to `center` (ties by handle), optionally only those within
/// `max_distance`. Subtrees are read in order of their lower bound, and the walk stops once no
/// unread subtree can beat the k-th best.
pub fn nearest(w: Walk<'_>, center: &[f64], k: usize, max_distance: Option<f64>) -> Result<Answer> {
    let mut reader = w.reader();
    let limit = max_distance.unwrap_or(f64::INFINITY);
    let reach = |d: f64| d + w.metric.slack(d);
    let mut best = Best::new(k);
    let origin = w.metric.origin(center);
    let mut frontier = BinaryHeap::new();
    if let (Some(root), true) = (w.root, k > 0) {
        let region = w.metric.root_region(w.dims);
        let bound = w.metric.min_distance_to_region(center, &region, w.dims);
        if bound <= reach(limit) {
            frontier.push(Pending {
                bound,
                id: root,
                depth: 1,
                region,
            });
        }
    }
    while let Some(p) = frontier.pop() {
        if let (true, Some(worst)) = (best.is_full(), best.worst()) {
            if p.bound > reach(worst) {
                break;
            }
        }
        let inner = match reader.node_at(p.id, p.depth)? {
            NodeRef::Leaf(coords) => {
                let mut payloads = w.payloads(p.id);
                for (slot, c) in coords.chunks_exact(w.dims).enumerate() {
                    let d = origin.distance(c);
                    let point = PointRef::new(p.id, slot);
                    if d > limit || !w.after_cursor(d, point) {
                        continue;
                    }
                    if let (true, Some(worst)) = (best.is_full(), best.worst()) {
                        if d > worst {
                            continue;
                        }
                    }
                    if w.passes(&mut payloads, slot)? {
                        best.offer(Hit {
                            point,
                            coords: c.into(),
                            distance: d,
                        });
                    }
                }
                continue;
            }
            NodeRef::Inner(inner) => inner,
        };
        let (axis, split) = (inner.axis as usize, inner.split);
        for (child, region) in [
            (inner.below, p.region.below(axis, split)),
            (inner.above, p.region.above(axis, split)),
        ] {
            let Some(id) = child else { continue };
            let bound = w.metric.min_distance_to_region(center, &region, w.dims);
            let cutoff = match (best.is_full(), best.worst()) {
                (true, Some(worst)) => worst.min(limit),
                _ => limit,
            };
            if bound <= reach(cutoff) {
                frontier.push(Pending {
                    bound,
                    id,
                    depth: p.depth + 1,
                    region,
                });
            }
        }
    }
    let hits = best.into_sorted();
    Ok(Answer {
        count: hits.len() as u64,
        hits,
        nodes_read: reader.reads(),
        nodes_visited: reader.visits(),
    })
}
