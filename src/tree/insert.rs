//! Insertion: walk down to a free child slot, hang a new leaf there, and rebuild a scapegoat
//! subtree if the leaf landed too deep.

use super::balance::{insert_depth_limit, ALPHA};
use super::rebuild::{attach, collect, relink, size, Side};
use super::txn::Txn;
use super::Node;
use crate::error::Result;

/// Adds a node `id` holding `coords` and keeps the tree alpha-height balanced.
pub fn insert(txn: &mut Txn<'_>, id: u64, coords: &[f64]) -> Result<()> {
    let dims = txn.meta.dims as usize;
    txn.meta.count += 1;
    txn.meta.max_count = txn.meta.max_count.max(txn.meta.count);
    let Some(root) = txn.meta.root else {
        txn.put_node(id, &leaf(0, coords));
        txn.meta.root = Some(id);
        txn.meta.depth = txn.meta.depth.max(1);
        return Ok(());
    };
    // The ancestors of the new leaf, with the side taken at each.
    let mut path: Vec<(u64, Side)> = Vec::new();
    let mut cur = root;
    loop {
        let mut node = txn.node(cur)?;
        let side = if coords[node.axis as usize] < node.split() {
            Side::Below
        } else {
            Side::Above
        };
        path.push((cur, side));
        let next = match side {
            Side::Below => node.below,
            Side::Above => node.above,
        };
        match next {
            Some(c) => cur = c,
            None => {
                match side {
                    Side::Below => node.below = Some(id),
                    Side::Above => node.above = Some(id),
                }
                txn.put_node(cur, &node);
                let axis = (node.axis as usize + 1) % dims;
                txn.put_node(id, &leaf(axis, coords));
                break;
            }
        }
    }
    let depth = path.len() as u32 + 1;
    if depth <= insert_depth_limit(txn.meta.count) {
        txn.meta.depth = txn.meta.depth.max(depth);
        return Ok(());
    }
    // Walk back up, sizing subtrees, to the first ancestor whose child on the path is too heavy.
    let mut child_size = 1u64;
    for i in (0..path.len()).rev() {
        let (anc, side) = path[i];
        let node = txn.node(anc)?;
        let sibling = match side {
            Side::Below => node.above,
            Side::Above => node.below,
        };
        let anc_size = child_size + 1 + size(txn, sibling)?;
        if child_size as f64 > ALPHA * anc_size as f64 {
            let points = collect(txn, Some(anc), None)?;
            let (new_root, _) = relink(txn, &points)?;
            let at = if i == 0 { None } else { Some(path[i - 1]) };
            attach(txn, at, new_root)?;
            return Ok(());
        }
        child_size = anc_size;
    }
    // No ancestor is unbalanced by weight (possible only through rounding at tiny sizes).
    txn.meta.depth = txn.meta.depth.max(depth);
    Ok(())
}

fn leaf(axis: usize, coords: &[f64]) -> Node {
    Node {
        axis: axis as u8,
        above: None,
        below: None,
        coords: coords.to_vec(),
    }
}
