//! Every point within a radius of a centre, boundary inclusive.

use super::collect::Best;
use super::{Answer, Hit, LeafPayloads, Walk};
use crate::error::Result;
use crate::geometry::{ReachBox, Region};
use crate::tree::layout::{first_at_or_above, sort_axis};
use crate::tree::node::NodeRef;
use crate::tree::{PointRef, TreeReader};

/// Largest subtree (in nodes, leaves included) read with one range scan when a walk reaches it
/// outside the node cache and the query box holds all of it. In sled 0.34 a range scan costs
/// 0.3-0.7 µs per record against 1.2 µs per single get with the pages cached, and far less than
/// a get that misses the page cache; the cap bounds a walk's read-ahead memory (64 nodes of
/// full 128-point leaves: 64 KiB).
pub const PREFETCH_MAX: u64 = 64;

/// Walks the tree and calls `visit` for every point within `radius` of `center` that passes the
/// walk's filter, in no particular order, with its leaf's payloads (read only if `visit` or the
/// filter asks). Returns the nodes read from storage and the nodes visited.
///
/// A child is read only if its side of the split meets the box around the query circle, so a
/// small radius reads O(log n + answer / leaf size) nodes; a point's exact distance is computed
/// only if it lies inside that box.
pub fn walk(
    w: Walk<'_>,
    center: &[f64],
    radius: f64,
    visit: impl FnMut(PointRef, &[f64], f64, &mut LeafPayloads<'_>) -> Result<()>,
) -> Result<(u64, u64)> {
    let reader = w.reader();
    // Below the levels the node cache holds, a visit costs a storage read: there the walk also
    // tracks each subtree's region, prunes with the exact distance to it and reads whole
    // subtrees ahead. When the cache holds every level it skips that bookkeeping.
    if reader.cached_depth(w.depth) {
        walk_with::<false>(w, reader, center, radius, visit)
    } else {
        walk_with::<true>(w, reader, center, radius, visit)
    }
}

/// One entry of a walk's stack.
#[derive(Clone, Copy)]
struct Pending {
    id: u64,
    depth: u32,
    /// Start of the subtree's id range: in a bulk-built tree a subtree's ids run from here to
    /// its root (postorder).
    lo: u64,
    /// Sides of the subtree's region inside the query box ([`ReachBox::holds`]).
    mask: u64,
}

fn walk_with<const DEEP: bool>(
    w: Walk<'_>,
    mut reader: TreeReader<'_>,
    center: &[f64],
    radius: f64,
    mut visit: impl FnMut(PointRef, &[f64], f64, &mut LeafPayloads<'_>) -> Result<()>,
) -> Result<(u64, u64)> {
    let dims = w.dims;
    let reach_m = radius + w.metric.slack(radius);
    let reach = ReachBox::new(w.metric, center, reach_m);
    let origin = w.metric.origin(center);
    let sorted_on = sort_axis(w.metric).min(dims.saturating_sub(1));
    let (key_lo, key_hi) = reach.bounds(sorted_on);
    // A depth-first stack holds at most one pending sibling per level: inline, a balanced
    // tree of 2^31 leaves never reaches the heap.
    let mut stack: smallvec::SmallVec<[Pending; 32]> = smallvec::SmallVec::new();
    // Regions, in step with `stack`, only in deep walks.
    let mut regions: Vec<Region> = Vec::new();
    if let Some(root) = w.root {
        stack.push(Pending {
            id: root,
            depth: 1,
            lo: 1,
            mask: reach.root_mask(),
        });
        if DEEP {
            regions.push(w.metric.root_region(dims));
        }
    }
    while let Some(p) = stack.pop() {
        let region = if DEEP { regions.pop() } else { None };
        // A subtree wholly inside the box and below the cached levels will be visited node by
        // node: read it with one scan.
        let span = (p.id + 1).saturating_sub(p.lo);
        if DEEP
            && w.read_ahead
            && reach.holds(p.mask)
            && (2..=PREFETCH_MAX).contains(&span)
            && !reader.cached_depth(p.depth)
            && !reader.prefetched(p.id)
        {
            reader.prefetch(p.lo, p.id + 1)?;
        }
        // Reading an uncached child costs far more than the exact bound that may spare it.
        let exact = DEEP && !reader.cached_depth(p.depth + 1) && !reader.prefetched(p.id);
        let inner = match reader.node_at(p.id, p.depth)? {
            NodeRef::Leaf(coords) => {
                let mut payloads = w.payloads(p.id);
                // The leaf is sorted on `sorted_on`: only the run inside the box's range there
                // is looked at.
                let from = first_at_or_above(&coords, dims, sorted_on, key_lo);
                for (slot, c) in coords.chunks_exact(dims).enumerate().skip(from) {
                    if c[sorted_on] > key_hi {
                        break;
                    }
                    if !reach.contains(c) {
                        continue;
                    }
                    let d = origin.distance(c);
                    if d <= radius && w.passes(&mut payloads, slot)? {
                        visit(PointRef::new(p.id, slot), c, d, &mut payloads)?;
                    }
                }
                continue;
            }
            NodeRef::Inner(inner) => inner,
        };
        let (axis, split) = (inner.axis as usize, inner.split);
        let depth = p.depth + 1;
        let (above_mask, below_mask) = if DEEP {
            (
                reach.above_mask(p.mask, axis, split),
                reach.below_mask(p.mask, axis, split),
            )
        } else {
            (0, 0)
        };
        // Above first, so the below side is walked first.
        let children = [
            (
                inner.above.filter(|_| reach.reaches_above(axis, split)),
                region.map(|r| r.above(axis, split)),
                inner.below.map_or(p.lo, |b| b + 1),
                above_mask,
            ),
            (
                inner.below.filter(|_| reach.reaches_below(axis, split)),
                region.map(|r| r.below(axis, split)),
                p.lo,
                below_mask,
            ),
        ];
        for (child, r, lo, mask) in children {
            let Some(id) = child else { continue };
            if let (true, Some(r)) = (exact, &r) {
                if w.metric.min_distance_to_region(center, r, dims) > reach_m {
                    continue;
                }
            }
            stack.push(Pending {
                id,
                depth,
                lo: lo.min(id),
                mask,
            });
            regions.extend(r);
        }
    }
    Ok((reader.reads(), reader.visits()))
}

/// The points within `radius` of `center`, nearest first (ties by handle), at most `limit` of
/// them; the answer's count covers all of them. Memory is bounded by the limit.
pub fn radius(w: Walk<'_>, center: &[f64], radius: f64, limit: usize) -> Result<Answer> {
    let mut best = Best::new(limit);
    let mut count = 0u64;
    let (nodes_read, nodes_visited) = walk(w, center, radius, |point, coords, d, _| {
        count += 1;
        if w.after_cursor(d, point) {
            best.offer(Hit {
                point,
                coords: coords.into(),
                distance: d,
            });
        }
        Ok(())
    })?;
    Ok(Answer {
        hits: best.into_sorted(),
        count,
        nodes_read,
        nodes_visited,
    })
}

/// How many points lie within `radius` of `center`; the answer has no hits.
pub fn count(w: Walk<'_>, center: &[f64], radius: f64) -> Result<Answer> {
    let mut count = 0u64;
    let (nodes_read, nodes_visited) = walk(w, center, radius, |_, _, _, _| {
        count += 1;
        Ok(())
    })?;
    Ok(Answer {
        hits: Vec::new(),
        count,
        nodes_read,
        nodes_visited,
    })
}
