//! Partial rebuilds: gather a subtree's points and lay them out again as a balanced subtree of
//! full leaves, with fresh node ids (the id index follows the points to their new leaves).

use super::layout::{layout, Laid};
use super::node::Node;
use super::points::check_payload_count;
use super::txn::Txn;
use crate::error::{Error, Result};
use crate::point::Payload;

/// Which child of a parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The `below` child.
    Below,
    /// The `above` child.
    Above,
}

/// Where a subtree hangs: under a parent node, or at the root.
pub type Attachment = Option<(u64, Side)>;

/// Removes the subtree at `root` and returns its points (flat coordinates and payloads).
pub fn take(txn: &mut Txn<'_>, root: Option<u64>) -> Result<(Vec<f64>, Vec<Payload>)> {
    let dims = txn.meta.dims as usize;
    let (mut coords, mut payloads) = (Vec::new(), Vec::new());
    let mut stack: Vec<u64> = root.into_iter().collect();
    while let Some(id) = stack.pop() {
        match txn.node(id)? {
            Node::Inner(i) => {
                stack.extend(i.below);
                stack.extend(i.above);
            }
            Node::Leaf { coords: c } => {
                let p = txn.leaf_payloads(id)?;
                check_payload_count(id, p.len(), &c, dims)?;
                coords.extend_from_slice(&c);
                payloads.extend(p);
            }
        }
        txn.delete_node(id);
    }
    Ok((coords, payloads))
}

/// Writes `coords`/`payloads` as a balanced subtree with fresh ids and points the id index at
/// the new leaves; returns its root and its depth in levels.
pub fn lay(
    txn: &mut Txn<'_>,
    coords: &[f64],
    payloads: Vec<Payload>,
) -> Result<(Option<u64>, u32)> {
    let dims = txn.meta.dims as usize;
    let base = txn.meta.next_id;
    let l = layout(
        coords,
        dims,
        txn.meta.leaf_size as usize,
        super::layout::sort_axis(txn.meta.metric),
        base,
    );
    txn.meta.next_id += l.nodes.len() as u64;
    let mut payloads: Vec<Option<Payload>> = payloads.into_iter().map(Some).collect();
    for (i, node) in l.nodes.iter().enumerate() {
        let id = base + i as u64;
        match node {
            Laid::Inner(inner) => txn.put_node(id, Node::Inner(*inner)),
            Laid::Leaf(range) => {
                let mut c = Vec::with_capacity(range.len() * dims);
                let mut p = Vec::with_capacity(range.len());
                for &at in &l.order[range.clone()] {
                    let at = at as usize;
                    c.extend_from_slice(&coords[at * dims..(at + 1) * dims]);
                    let payload = payloads[at]
                        .take()
                        .ok_or_else(|| Error::Corrupt("a point was laid out twice".into()))?;
                    txn.set_id(&payload.id, Some(id))?;
                    p.push(payload);
                }
                txn.put_node(id, Node::Leaf { coords: c });
                txn.put_leaf_payloads(id, p);
            }
        }
    }
    Ok((l.root(base), l.depth))
}

/// Rebuilds the subtree at `root`, hung where `at` says; returns the new root and depth.
pub fn rebuild(txn: &mut Txn<'_>, at: Attachment, root: u64) -> Result<(Option<u64>, u32)> {
    let (coords, payloads) = take(txn, Some(root))?;
    let (new_root, depth) = lay(txn, &coords, payloads)?;
    attach(txn, at, new_root)?;
    Ok((new_root, depth))
}

/// Hangs the subtree `child` where `at` says.
pub fn attach(txn: &mut Txn<'_>, at: Attachment, child: Option<u64>) -> Result<()> {
    match at {
        None => txn.meta.root = child,
        Some((parent, side)) => {
            let Node::Inner(mut p) = txn.node(parent)? else {
                return Err(Error::Corrupt(format!(
                    "node {parent} is a leaf with children"
                )));
            };
            match side {
                Side::Below => p.below = child,
                Side::Above => p.above = child,
            }
            txn.put_node(parent, Node::Inner(p));
        }
    }
    Ok(())
}

/// Rebuilds the whole tree balanced and resets the balance bookkeeping.
pub fn rebuild_all(txn: &mut Txn<'_>) -> Result<()> {
    match txn.meta.root {
        Some(root) => {
            let (_, depth) = rebuild(txn, None, root)?;
            txn.meta.depth = depth;
        }
        None => txn.meta.depth = 0,
    }
    txn.meta.max_count = txn.meta.count;
    Ok(())
}
