//! Every point inside a box.

use super::collect::Best;
use super::{Answer, Hit, Walk};
use crate::error::Result;
use crate::geometry::BBox;

/// The points inside `bbox` (edges inclusive): the `limit` with the smallest node ids (after
/// the page cursor's), in node-id order; the answer's count covers all of them. Subtrees whose region misses the box are never read.
pub fn within(w: Walk<'_>, bbox: &BBox, limit: usize) -> Result<Answer> {
    let mut reader = w.reader();
    // The `limit` smallest node ids after the cursor's: every hit is at distance 0, so the
    // ranking by (distance, node) is by node id.
    let mut best = Best::new(limit);
    let after = w.after.map(|(_, id)| id);
    let mut count = 0u64;
    let mut stack = Vec::with_capacity(64);
    if let Some(root) = w.root {
        stack.push((root, w.metric.root_region(w.dims), 1u32));
    }
    while let Some((id, region, depth)) = stack.pop() {
        if !bbox.intersects(&region) {
            continue;
        }
        let node = reader.node_at(id, depth)?;
        let axis = node.axis as usize;
        let split = node.split();
        if let Some(c) = node.below {
            stack.push((c, region.below(axis, split), depth + 1));
        }
        if let Some(c) = node.above {
            stack.push((c, region.above(axis, split), depth + 1));
        }
        if bbox.contains(&node.coords) && w.passes(id)? {
            count += 1;
            if after.is_none_or(|a| id > a) {
                best.offer(Hit {
                    node: id,
                    coords: node.coords.to_vec(),
                    distance: 0.0,
                });
            }
        }
    }
    Ok(Answer {
        hits: best.into_sorted(),
        count,
        nodes_read: reader.reads(),
        nodes_visited: reader.visits(),
    })
}
