//! Every point within a radius of a centre, boundary inclusive.

use super::collect::Best;
use super::{Answer, Hit, Walk};
use crate::error::Result;
use crate::geometry::ReachBox;

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
    mut visit: impl FnMut(u64, &[f64], f64) -> Result<()>,
) -> Result<(u64, u64)> {
    let mut reader = w.reader();
    let reach = ReachBox::new(w.metric, center, radius + w.metric.slack(radius));
    let mut stack: Vec<(u64, u32)> = Vec::with_capacity(64);
    stack.extend(w.root.map(|r| (r, 1)));
    while let Some((id, depth)) = stack.pop() {
        let node = reader.node_at(id, depth)?;
        if reach.contains(&node.coords) {
            let d = w.metric.distance(center, &node.coords);
            if d <= radius {
                visit(id, &node.coords, d)?;
            }
        }
        let (axis, split) = (node.axis as usize, node.split());
        if let Some(c) = node.above.filter(|_| reach.reaches_above(axis, split)) {
            stack.push((c, depth + 1));
        }
        if let Some(c) = node.below.filter(|_| reach.reaches_below(axis, split)) {
            stack.push((c, depth + 1));
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
