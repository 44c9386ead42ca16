//! Every point inside a box.

use super::{Answer, Hit, Walk};
use crate::error::Result;
use crate::geometry::BBox;

/// The points inside `bbox` (edges inclusive), at most `limit` of them in node-id order; the
/// answer's count covers all of them. Subtrees whose region misses the box are never read.
pub fn within(w: Walk<'_>, bbox: &BBox, limit: usize) -> Result<Answer> {
    let mut reader = w.reader();
    let mut hits = Vec::new();
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
            if hits.len() < limit {
                hits.push(Hit {
                    node: id,
                    coords: node.coords.to_vec(),
                    distance: 0.0,
                });
            }
        }
    }
    hits.sort_by_key(|h| h.node);
    Ok(Answer {
        hits,
        count,
        nodes_read: reader.reads(),
        nodes_visited: reader.visits(),
    })
}
