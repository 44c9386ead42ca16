//! Every point within a radius of a centre, boundary inclusive.

use super::collect::Best;
use super::{Answer, Hit, Walk};
use crate::error::Result;
use crate::geometry::ReachBox;
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
    // Reading ahead only pays below the levels the node cache holds; when it holds them all,
    // the walk skips the bookkeeping altogether.
    if w.read_ahead && !reader.cached_depth(w.depth) {
        walk_with::<true>(w, reader, center, radius, visit)
    } else {
        walk_with::<false>(w, reader, center, radius, visit)
    }
}

fn walk_with<const AHEAD: bool>(
    w: Walk<'_>,
    mut reader: TreeReader<'_>,
    center: &[f64],
    radius: f64,
    mut visit: impl FnMut(u64, &[f64], f64) -> Result<()>,
) -> Result<(u64, u64)> {
    let reach = ReachBox::new(w.metric, center, radius + w.metric.slack(radius));
    // (node, depth, end of its id range, sides of its region inside the box): in a bulk-built
    // tree a subtree's ids run from its root to the start of whatever follows it in preorder.
    let mut stack: Vec<(u64, u32, u64, u64)> = Vec::with_capacity(64);
    stack.extend(w.root.map(|r| (r, 1, w.end, reach.root_mask())));
    while let Some((id, depth, end, mask)) = stack.pop() {
        // A subtree wholly inside the box and below the cached levels will be visited node by
        // node: read it with one scan.
        if AHEAD
            && reach.holds(mask)
            && (2..=PREFETCH_MAX).contains(&end.saturating_sub(id))
            && !reader.cached_depth(depth)
            && !reader.prefetched(id)
        {
            reader.prefetch(id, end)?;
        }
        let node = reader.node_at(id, depth)?;
        if reach.contains(&node.coords) {
            let d = w.metric.distance(center, &node.coords);
            if d <= radius {
                visit(id, &node.coords, d)?;
            }
        }
        let (axis, split) = (node.axis as usize, node.split());
        if let Some(c) = node.above.filter(|_| reach.reaches_above(axis, split)) {
            let m = if AHEAD {
                reach.above_mask(mask, axis, split)
            } else {
                0
            };
            stack.push((c, depth + 1, end, m));
        }
        if let Some(c) = node.below.filter(|_| reach.reaches_below(axis, split)) {
            let (below_end, m) = if AHEAD {
                (
                    node.above.unwrap_or(end),
                    reach.below_mask(mask, axis, split),
                )
            } else {
                (0, 0)
            };
            stack.push((c, depth + 1, below_end, m));
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
        count += 1;
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
    let (nodes_read, nodes_visited) = walk(w, center, radius, |_, _, _| {
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
