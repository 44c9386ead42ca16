//! Every point within a radius of a centre, boundary inclusive.

use super::collect::Best;
use super::{Answer, Hit, Walk};
use crate::error::Result;
use crate::tree::Node;

/// Walks the tree and calls `visit` for every point within `radius` of `center`, in no
/// particular order. Returns the nodes read from storage and the nodes visited.
///
/// A child is read only if the region it covers can hold a point within the radius, so a small
/// radius reads O(log n + answer) nodes.
pub fn walk(
    w: Walk<'_>,
    center: &[f64],
    radius: f64,
    mut visit: impl FnMut(u64, &Node, f64) -> Result<()>,
) -> Result<(u64, u64)> {
    let mut reader = w.reader();
    let reach = radius + w.metric.slack(radius);
    let mut stack = Vec::with_capacity(64);
    if let Some(root) = w.root {
        let region = w.metric.root_region(w.dims);
        if w.metric.min_distance_to_region(center, &region, w.dims) <= reach {
            stack.push((root, region, 1u32));
        }
    }
    while let Some((id, region, depth)) = stack.pop() {
        let node = reader.node_at(id, depth)?;
        let d = w.metric.distance(center, &node.coords);
        if d <= radius {
            visit(id, &node, d)?;
        }
        let axis = node.axis as usize;
        let split = node.split();
        for (child, r) in [
            (node.below, region.below(axis, split)),
            (node.above, region.above(axis, split)),
        ] {
            if let Some(c) = child {
                if w.metric.min_distance_to_region(center, &r, w.dims) <= reach {
                    stack.push((c, r, depth + 1));
                }
            }
        }
    }
    Ok((reader.reads(), reader.visits()))
}

/// The points within `radius` of `center`, nearest first (ties by node id), at most `limit` of
/// them; the answer's count covers all of them. Memory is bounded by the limit.
pub fn radius(w: Walk<'_>, center: &[f64], radius: f64, limit: usize) -> Result<Answer> {
    let mut best = Best::new(limit);
    let mut count = 0u64;
    let (nodes_read, nodes_visited) = walk(w, center, radius, |id, node, d| {
        count += 1;
        best.offer(Hit {
            node: id,
            coords: node.coords.clone(),
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
