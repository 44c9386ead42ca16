//! Removal: take a node out by rebuilding its subtree without it.
//!
//! In a balanced tree most nodes sit near the leaves, so the subtree to rebuild is small on
//! average (O(log n)); removing the root rebuilds the whole tree.

use super::balance::ALPHA;
use super::rebuild::{attach, collect, rebuild_all, relink, Attachment, Side};
use super::txn::Txn;
use crate::error::{Error, Result};

/// Removes node `id` (its record and payload; the caller handles the id index).
pub fn remove(txn: &mut Txn<'_>, id: u64) -> Result<()> {
    let node = txn.node(id)?;
    let at = find_attachment(txn, id, &node.coords)?;
    let mut rest = collect(txn, node.below, None)?;
    rest.extend(collect(txn, node.above, None)?);
    txn.delete_node(id);
    let (new_root, _) = relink(txn, &rest)?;
    attach(txn, at, new_root)?;
    txn.meta.count -= 1;
    if txn.meta.count == 0 {
        txn.meta.depth = 0;
        txn.meta.max_count = 0;
    } else if (txn.meta.count as f64) < ALPHA * txn.meta.max_count as f64 {
        rebuild_all(txn)?;
    }
    Ok(())
}

/// Where node `id` hangs, found by walking down from the root along its coordinates (both ways
/// where its coordinate equals a split, since duplicates may sit on either side).
fn find_attachment(txn: &Txn<'_>, id: u64, coords: &[f64]) -> Result<Attachment> {
    let mut stack: Vec<(u64, Attachment)> = txn.meta.root.map(|r| (r, None)).into_iter().collect();
    while let Some((cur, at)) = stack.pop() {
        if cur == id {
            return Ok(at);
        }
        let n = txn.node(cur)?;
        let c = coords[n.axis as usize];
        let split = n.split();
        if let (Some(b), true) = (n.below, c <= split) {
            stack.push((b, Some((cur, Side::Below))));
        }
        if let (Some(a), true) = (n.above, c >= split) {
            stack.push((a, Some((cur, Side::Above))));
        }
    }
    Err(Error::Corrupt(format!(
        "node {id} is not reachable from the root along its coordinates"
    )))
}
