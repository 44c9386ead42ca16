//! Removal: take a point out of its leaf (one record read, modified and written), drop a leaf
//! that empties, merge a leaf that shrinks to a quarter into its sibling leaf, and rebuild the
//! whole tree once deletions shrink it below ALPHA of its largest size.

use super::balance::ALPHA;
use super::layout::sort_axis;
use super::node::Node;
use super::points::check_payload_count;
use super::rebuild::{attach, rebuild_all, Attachment, Side};
use super::txn::Txn;
use crate::error::{Error, Result};
use crate::point::PointId;

/// Removes the point with the user's id `id`; false if there is none.
pub fn remove(txn: &mut Txn<'_>, id: &PointId) -> Result<bool> {
    let Some(leaf) = txn.lookup(id)? else {
        return Ok(false);
    };
    let dims = txn.meta.dims as usize;
    let Node::Leaf { coords: mut held } = txn.node(leaf)? else {
        return Err(Error::Corrupt(format!(
            "the id index maps point {id} to node {leaf}, which is not a leaf"
        )));
    };
    let mut payloads = txn.leaf_payloads(leaf)?;
    check_payload_count(leaf, payloads.len(), &held, dims)?;
    let Some(slot) = payloads.iter().position(|p| p.id == *id) else {
        return Err(Error::Corrupt(format!(
            "the id index maps point {id} to leaf {leaf}, which does not hold it"
        )));
    };
    let point = held[slot * dims..(slot + 1) * dims].to_vec();
    let path = path_to(txn, leaf, &point)?;
    for &(anc, _) in &path {
        if let Node::Inner(mut i) = txn.node(anc)? {
            i.count = i.count.saturating_sub(1);
            txn.put_node(anc, Node::Inner(i));
        }
    }
    // The leaf stays sorted on its sort axis: later slots move down by one.
    payloads.remove(slot);
    held.drain(slot * dims..(slot + 1) * dims);
    txn.set_id(id, None)?;
    txn.meta.count -= 1;
    let n = payloads.len();
    txn.put_node(leaf, Node::Leaf { coords: held });
    txn.put_leaf_payloads(leaf, payloads);
    if n == 0 {
        drop_leaf(txn, &path, leaf)?;
    } else if n <= txn.meta.leaf_size as usize / 4 {
        merge_with_sibling(txn, &path, leaf)?;
    }
    if txn.meta.count == 0 {
        txn.meta.depth = 0;
        txn.meta.max_count = 0;
    } else if (txn.meta.count as f64) < ALPHA * txn.meta.max_count as f64 {
        rebuild_all(txn)?;
    }
    Ok(true)
}

/// The ancestors of `leaf`, with the side taken at each, found by walking down from the root
/// along `point` (both ways where it equals a split, since ties may sit on either side).
fn path_to(txn: &mut Txn<'_>, leaf: u64, point: &[f64]) -> Result<Vec<(u64, Side)>> {
    // (node, its depth below the root, the parent link it was reached by)
    let mut stack: Vec<(u64, usize, Attachment)> =
        txn.meta.root.map(|r| (r, 0, None)).into_iter().collect();
    let mut path: Vec<(u64, Side)> = Vec::new();
    while let Some((cur, depth, from)) = stack.pop() {
        path.truncate(depth.saturating_sub(1));
        path.extend(from);
        if cur == leaf {
            return Ok(path);
        }
        let Node::Inner(i) = txn.node(cur)? else {
            continue;
        };
        let c = point[i.axis as usize];
        if let (Some(a), true) = (i.above, c >= i.split) {
            stack.push((a, depth + 1, Some((cur, Side::Above))));
        }
        if let (Some(b), true) = (i.below, c <= i.split) {
            stack.push((b, depth + 1, Some((cur, Side::Below))));
        }
    }
    Err(Error::Corrupt(format!(
        "leaf {leaf} is not reachable from the root along its points' coordinates"
    )))
}

/// Replaces the parent of an emptied leaf by the leaf's sibling.
fn drop_leaf(txn: &mut Txn<'_>, path: &[(u64, Side)], leaf: u64) -> Result<()> {
    txn.delete_node(leaf);
    let Some(&(parent, side)) = path.last() else {
        txn.meta.root = None;
        return Ok(());
    };
    let Node::Inner(p) = txn.node(parent)? else {
        return Err(Error::Corrupt(format!(
            "node {parent} is a leaf with children"
        )));
    };
    let sibling = match side {
        Side::Below => p.above,
        Side::Above => p.below,
    };
    txn.delete_node(parent);
    let at: Attachment = path.len().checked_sub(2).map(|i| path[i]);
    attach(txn, at, sibling)
}

/// Folds a small leaf and its sibling, when that is a leaf too and both fit half a leaf, into
/// one leaf in the parent's place.
fn merge_with_sibling(txn: &mut Txn<'_>, path: &[(u64, Side)], leaf: u64) -> Result<()> {
    let Some(&(parent, side)) = path.last() else {
        return Ok(());
    };
    let Node::Inner(p) = txn.node(parent)? else {
        return Ok(());
    };
    let Some(sibling) = (match side {
        Side::Below => p.above,
        Side::Above => p.below,
    }) else {
        return Ok(());
    };
    let Node::Leaf { coords: theirs } = txn.node(sibling)? else {
        return Ok(());
    };
    let Node::Leaf { coords: mut mine } = txn.node(leaf)? else {
        return Ok(());
    };
    let dims = txn.meta.dims as usize;
    if (mine.len() + theirs.len()) / dims.max(1) > txn.meta.leaf_size as usize / 2 {
        return Ok(());
    }
    let mut payloads = txn.leaf_payloads(leaf)?;
    let moved = txn.leaf_payloads(sibling)?;
    for q in &moved {
        txn.set_id(&q.id, Some(leaf))?;
    }
    mine.extend_from_slice(&theirs);
    payloads.extend(moved);
    let (mine, payloads) = sorted(mine, payloads, dims, sort_axis(txn.meta.metric));
    txn.put_node(leaf, Node::Leaf { coords: mine });
    txn.put_leaf_payloads(leaf, payloads);
    txn.delete_node(sibling);
    txn.delete_node(parent);
    let at: Attachment = path.len().checked_sub(2).map(|i| path[i]);
    attach(txn, at, Some(leaf))
}

/// A leaf's points and payloads in order of coordinate `axis`.
fn sorted(
    coords: Vec<f64>,
    payloads: Vec<crate::point::Payload>,
    dims: usize,
    axis: usize,
) -> (Vec<f64>, Vec<crate::point::Payload>) {
    let mut order: Vec<usize> = (0..payloads.len()).collect();
    order.sort_by(|&a, &b| coords[a * dims + axis].total_cmp(&coords[b * dims + axis]));
    let mut slots: Vec<Option<crate::point::Payload>> = payloads.into_iter().map(Some).collect();
    let mut c = Vec::with_capacity(coords.len());
    let mut p = Vec::with_capacity(slots.len());
    for i in order {
        c.extend_from_slice(&coords[i * dims..(i + 1) * dims]);
        p.extend(slots[i].take());
    }
    (c, p)
}
