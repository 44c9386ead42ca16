//! Every point inside a box.

use super::collect::Best;
use super::{Answer, Hit, Walk};
use crate::error::Result;
use crate::geometry::BBox;
use crate::tree::layout::{first_at_or_above, sort_axis};
use crate::tree::node::NodeRef;
use crate::tree::PointRef;

/// The points inside `bbox` (edges inclusive): the `limit` with the smallest handles (after the
/// page cursor's), in handle order; the answer's count covers all of them. Subtrees whose
/// region misses the box are never read.
pub fn within(w: Walk<'_>, bbox: &BBox, limit: usize) -> Result<Answer> {
    // Every hit is at distance 0, so the ranking by (distance, handle) is by handle.
    let mut best = Best::new(limit);
    let after = w.after.map(|(_, id)| id);
    let mut count = 0u64;
    let (nodes_read, nodes_visited) = visit(w, bbox, |point, c| {
        count += 1;
        if after.is_none_or(|a| point.0 > a) {
            best.offer(Hit {
                point,
                coords: c.into(),
                distance: 0.0,
            });
        }
    })?;
    Ok(Answer {
        hits: best.into_sorted(),
        count,
        nodes_read,
        nodes_visited,
    })
}

/// Hands every point inside `bbox` that passes the walk's filter to `f`, with its handle, in no
/// particular order; returns (nodes read from storage, nodes visited). For readers of many
/// points (heatmap tiles), which need neither a ranking nor an owned copy of each.
pub fn visit(w: Walk<'_>, bbox: &BBox, mut f: impl FnMut(PointRef, &[f64])) -> Result<(u64, u64)> {
    let mut reader = w.reader();
    // Leaves are sorted on `sorted_on`: only the run inside the box's range there is looked at.
    let sorted_on = sort_axis(w.metric).min(w.dims.saturating_sub(1));
    let (key_lo, key_hi) = bbox.axis_range(sorted_on);
    // Each entry: a subtree, its region, its depth, and whether the box covers that region (then
    // so it does every region below, and no point needs testing: most of a large box's points).
    let mut stack = Vec::with_capacity(64);
    if let Some(root) = w.root {
        stack.push((root, w.metric.root_region(w.dims), 1u32, false));
    }
    while let Some((id, region, depth, inside)) = stack.pop() {
        let inside = inside || bbox.covers(&region);
        if !inside && !bbox.intersects(&region) {
            continue;
        }
        match reader.node_at(id, depth)? {
            NodeRef::Leaf(coords) if inside => {
                let mut payloads = w.payloads(id);
                for (slot, c) in coords.chunks_exact(w.dims).enumerate() {
                    if w.passes(&mut payloads, slot)? {
                        f(PointRef::new(id, slot), c);
                    }
                }
            }
            NodeRef::Leaf(coords) => {
                let mut payloads = w.payloads(id);
                let from = first_at_or_above(&coords, w.dims, sorted_on, key_lo);
                for (slot, c) in coords.chunks_exact(w.dims).enumerate().skip(from) {
                    if c[sorted_on] > key_hi {
                        break;
                    }
                    if bbox.contains(c) && w.passes(&mut payloads, slot)? {
                        f(PointRef::new(id, slot), c);
                    }
                }
            }
            NodeRef::Inner(inner) => {
                let (axis, split) = (inner.axis as usize, inner.split);
                if let Some(c) = inner.below {
                    stack.push((c, region.below(axis, split), depth + 1, inside));
                }
                if let Some(c) = inner.above {
                    stack.push((c, region.above(axis, split), depth + 1, inside));
                }
            }
        }
    }
    Ok((reader.reads(), reader.visits()))
}
