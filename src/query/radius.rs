//! Every point within a radius of a centre, boundary inclusive.

use super::collect::Best;
use super::{Answer, Hit, Walk};
use crate::error::Result;
use crate::geometry::{ReachBox, Region};
use crate::tree::TreeReader;

/// Largest subtree (in nodes) read with one range scan when a walk reaches it outside the node
/// cache and the query box holds all of it. In sled 0.34 a range scan costs 0.3-0.7 µs per
/// record against 1.2 µs per single get with the pages cached, and far less than a get that
/// misses the page cache; the cap bounds a walk's read-ahead memory.
pub const PREFETCH_MAX: u64 = 512;

/// Walks the tree and calls `visit` for every point within `radius` of `center`, in no
/// particular order. Returns the nodes read from storage and the nodes visited.
///
/// A child is read only if its side of the split meets the box around the query circle, so a
/// small radius reads O(log n + answer) nodes; a point's exact distance is computed only if it
/// lies inside that box.
pub fn walk(
    w: Walk<'_>,
    center: &[f64],
    radius: f64,
    visit: impl FnMut(u64, &[f64], f64) -> Result<()>,
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
    /// End of the subtree's id range: in a bulk-built tree a subtree's ids run from its root to
    /// the start of whatever follows it in preorder.
    end: u64,
    /// Sides of the subtree's region inside the query box ([`ReachBox::holds`]).
    mask: u64,
}

fn walk_with<const DEEP: bool>(
    w: Walk<'_>,
    mut reader: TreeReader<'_>,
    center: &[f64],
    radius: f64,
    mut visit: impl FnMut(u64, &[f64], f64) -> Result<()>,
) -> Result<(u64, u64)> {
    let reach_m = radius + w.metric.slack(radius);
    let reach = ReachBox::new(w.metric, center, reach_m);
    let mut stack: Vec<Pending> = Vec::with_capacity(64);
    // Regions, in step with `stack`, only in deep walks.
    let mut regions: Vec<Region> = Vec::new();
    if let Some(root) = w.root {
        stack.push(Pending {
            id: root,
            depth: 1,
            end: w.end,
            mask: reach.root_mask(),
        });
        if DEEP {
            regions.push(w.metric.root_region(w.dims));
        }
    }
    while let Some(p) = stack.pop() {
        let region = if DEEP { regions.pop() } else { None };
        // A subtree wholly inside the box and below the cached levels will be visited node by
        // node: read it with one scan.
        if DEEP
            && w.read_ahead
            && reach.holds(p.mask)
            && (2..=PREFETCH_MAX).contains(&p.end.saturating_sub(p.id))
            && !reader.cached_depth(p.depth)
            && !reader.prefetched(p.id)
        {
            reader.prefetch(p.id, p.end)?;
        }
        // Reading an uncached child costs far more than the exact bound that may spare it.
        let exact = DEEP && !reader.cached_depth(p.depth + 1) && !reader.prefetched(p.id);
        let node = reader.node_at(p.id, p.depth)?;
        if reach.contains(&node.coords) {
            let d = w.metric.distance(center, &node.coords);
            if d <= radius {
                visit(p.id, &node.coords, d)?;
            }
        }
        let (axis, split) = (node.axis as usize, node.split());
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
                node.above.filter(|_| reach.reaches_above(axis, split)),
                region.map(|r| r.above(axis, split)),
                p.end,
                above_mask,
            ),
            (
                node.below.filter(|_| reach.reaches_below(axis, split)),
                region.map(|r| r.below(axis, split)),
                node.above.unwrap_or(p.end),
                below_mask,
            ),
        ];
        for (child, r, end, mask) in children {
            let Some(id) = child else { continue };
            if let (true, Some(r)) = (exact, &r) {
                if w.metric.min_distance_to_region(center, r, w.dims) > reach_m {
                    continue;
                }
            }
            stack.push(Pending {
                id,
                depth,
                end,
                mask,
            });
            regions.extend(r);
        }
    }
    Ok((reader.reads(), reader.visits()))
}

/// The points within `radius` of `center`, nearest first (ties by node id), at most `limit` of
/// them; the answer's count covers all of them. Memory is bounded by the limit.
pub fn radius(w: Walk<'_>, center: &[f64], radius: f64, limit: usize) -> Result<Answer> {
    let mut best = Best::new(limit);
    let mut count = 0u64;
    let (nodes_read, nodes_visited) = walk(w, center, radius, |id, coords, d| {
        if !w.passes(id)? {
            return Ok(());
        }
        count += 1;
        if !w.after_cursor(d, id) {
            return Ok(());
        }
        best.offer(Hit {
            node: id,
            coords: coords.to_vec(),
            distance: d,
        });
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
    let (nodes_read, nodes_visited) = walk(w, center, radius, |id, _, _| {
        if w.passes(id)? {
            count += 1;
        }
        Ok(())
    })?;
    Ok(Answer {
        hits: Vec::new(),
        count,
        nodes_read,
        nodes_visited,
    })
}
