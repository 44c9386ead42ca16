//! Partial rebuilds: gather a subtree's points and relink them as a perfectly balanced subtree.
//!
//! Points keep their node ids (so payloads and the id index stay where they are); only the split
//! axes and child links of the subtree's records change.

use super::build::layout;
use super::txn::Txn;
use crate::error::Result;

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

/// Every (node id, coordinates) of the subtree at `root`, except `skip`.
pub fn collect(
    txn: &Txn<'_>,
    root: Option<u64>,
    skip: Option<u64>,
) -> Result<Vec<(u64, Vec<f64>)>> {
    let mut out = Vec::new();
    let mut stack: Vec<u64> = root.into_iter().collect();
    while let Some(id) = stack.pop() {
        let n = txn.node(id)?;
        stack.extend(n.below);
        stack.extend(n.above);
        if Some(id) != skip {
            out.push((id, n.coords));
        }
    }
    Ok(out)
}

/// Number of nodes in the subtree at `root`.
pub fn size(txn: &Txn<'_>, root: Option<u64>) -> Result<u64> {
    let mut n = 0;
    let mut stack: Vec<u64> = root.into_iter().collect();
    while let Some(id) = stack.pop() {
        let node = txn.node(id)?;
        stack.extend(node.below);
        stack.extend(node.above);
        n += 1;
    }
    Ok(n)
}

/// Relinks `points` as a balanced subtree; returns its root and its depth in levels.
pub fn relink(txn: &mut Txn<'_>, points: &[(u64, Vec<f64>)]) -> Result<(Option<u64>, u32)> {
    let dims = txn.meta.dims as usize;
    let coords: Vec<f64> = points.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    let l = layout(&coords, dims, 0);
    let id_of = |slot: u64| points[l.slots[slot as usize].point as usize].0;
    for s in &l.slots {
        let (id, c) = &points[s.point as usize];
        let node = super::Node {
            axis: s.axis,
            below: s.below.map(id_of),
            above: s.above.map(id_of),
            coords: c.clone(),
        };
        txn.put_node(*id, &node);
    }
    Ok((l.slots.first().map(|_| id_of(0)), l.depth))
}

/// Hangs the subtree `child` where `at` says.
pub fn attach(txn: &mut Txn<'_>, at: Attachment, child: Option<u64>) -> Result<()> {
    match at {
        None => txn.meta.root = child,
        Some((parent, side)) => {
            let mut p = txn.node(parent)?;
            match side {
                Side::Below => p.below = child,
                Side::Above => p.above = child,
            }
            txn.put_node(parent, &p);
        }
    }
    Ok(())
}

/// Rebuilds the whole tree balanced and resets the balance bookkeeping.
pub fn rebuild_all(txn: &mut Txn<'_>) -> Result<()> {
    let points = collect(txn, txn.meta.root, None)?;
    let (root, depth) = relink(txn, &points)?;
    txn.meta.root = root;
    txn.meta.depth = depth;
    txn.meta.max_count = txn.meta.count;
    Ok(())
}
