//! Insertion: walk down to the leaf whose region holds the point, add it there (one record
//! read, modified and written), split the leaf in two when it overflows, and rebuild a
//! scapegoat subtree if the split left leaves too deep.

use super::balance::{insert_depth_limit, ALPHA};
use super::layout::{first_at_or_above, sort_axis, widest_axis};
use super::node::{Inner, Node};
use super::rebuild::{attach, rebuild, Side};
use super::txn::Txn;
use crate::error::Result;
use crate::point::Payload;
use crate::store::codec;

/// Adds a point at `coords` with `payload` (whose id must not be in the index) and keeps the
/// tree balanced.
pub fn insert(txn: &mut Txn<'_>, coords: &[f64], payload: Payload) -> Result<()> {
    let dims = txn.meta.dims as usize;
    txn.meta.count += 1;
    txn.meta.max_count = txn.meta.max_count.max(txn.meta.count);
    let Some(root) = txn.meta.root else {
        let leaf = txn.allocate();
        txn.set_id(&payload.id, Some(leaf))?;
        txn.put_node(
            leaf,
            Node::Leaf {
                coords: coords.to_vec(),
            },
        );
        txn.put_leaf_payloads(leaf, vec![payload]);
        txn.meta.root = Some(leaf);
        txn.meta.depth = txn.meta.depth.max(1);
        return Ok(());
    };
    // Points equal to a split value may go either way: the id's hash picks, so a run of
    // identical points spreads over both sides instead of piling up on one.
    let tie_above = codec::id_hash(&payload.id) & 1 == 1;
    // The ancestors of the leaf, with the side taken at each.
    let mut path: Vec<(u64, Side)> = Vec::new();
    let mut cur = root;
    let leaf = loop {
        match txn.node(cur)? {
            Node::Inner(mut i) => {
                let c = coords[i.axis as usize];
                let side = if c < i.split || (c == i.split && !tie_above) {
                    Side::Below
                } else {
                    Side::Above
                };
                i.count += 1;
                let next = match side {
                    Side::Below => i.below,
                    Side::Above => i.above,
                };
                txn.put_node(cur, Node::Inner(i));
                path.push((cur, side));
                match next {
                    Some(n) => cur = n,
                    None => {
                        // A one-sided inner node (a bulk build's empty partition): hang a
                        // new leaf on the empty side.
                        let leaf = txn.allocate();
                        attach(txn, Some((cur, side)), Some(leaf))?;
                        txn.put_node(leaf, Node::Leaf { coords: Vec::new() });
                        txn.put_leaf_payloads(leaf, Vec::new());
                        break leaf;
                    }
                }
            }
            Node::Leaf { .. } => break cur,
        }
    };
    let Node::Leaf { coords: mut held } = txn.node(leaf)? else {
        unreachable!("the loop stops at a leaf")
    };
    let mut payloads = txn.leaf_payloads(leaf)?;
    txn.set_id(&payload.id, Some(leaf))?;
    let n = payloads.len() + 1;
    if n <= txn.meta.leaf_size as usize {
        // Leaves stay sorted on their sort axis: the point goes after those at or below it.
        let axis = sort_axis(txn.meta.metric);
        let at = first_at_or_above(&held, dims, axis, coords[axis]);
        let at = (at..n - 1)
            .find(|&i| held[i * dims + axis] > coords[axis])
            .unwrap_or(n - 1);
        held.splice(at * dims..at * dims, coords.iter().copied());
        payloads.insert(at, payload);
        txn.put_node(leaf, Node::Leaf { coords: held });
        txn.put_leaf_payloads(leaf, payloads);
        txn.meta.depth = txn.meta.depth.max(path.len() as u32 + 1);
        return Ok(());
    }
    // Overflowing: the newest point goes last, where `split` looks for it.
    held.extend_from_slice(coords);
    payloads.push(payload);
    split(txn, &path, leaf, held, payloads, dims)?;
    let depth = path.len() as u32 + 2;
    txn.meta.depth = txn.meta.depth.max(depth);
    if depth <= insert_depth_limit(txn.meta.count, txn.meta.leaf_size) {
        return Ok(());
    }
    // Walk back up to the first ancestor whose child on the path is too heavy, and rebuild it.
    let mut child_count = n as u64;
    for i in (0..path.len()).rev() {
        let (anc, _) = path[i];
        let anc_count = txn.node(anc)?.count(dims);
        if child_count as f64 > ALPHA * anc_count as f64 {
            let at = if i == 0 { None } else { Some(path[i - 1]) };
            rebuild(txn, at, anc)?;
            return Ok(());
        }
        child_count = anc_count;
    }
    Ok(())
}

/// Splits an overflowing leaf in two on its widest axis: the leaf keeps the lower part, a new
/// leaf takes the upper part, and a new inner node takes the leaf's place. The split is at the
/// median, except when the point just added (the last) lies strictly beyond all the others on
/// some axis: then the split is on that axis and it alone moves to the new leaf, so insertions
/// in sorted order fill leaves instead of leaving them half full (as B-trees do for appends),
/// and the full leaf's region is closed on the side the insertions move towards (a median split
/// on another axis would leave both halves open to every later point).
fn split(
    txn: &mut Txn<'_>,
    path: &[(u64, Side)],
    leaf: u64,
    coords: Vec<f64>,
    payloads: Vec<Payload>,
    dims: usize,
) -> Result<()> {
    let n = payloads.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let newest = (n - 1) as u32;
    let range = |axis: usize| {
        order[..n - 1]
            .iter()
            .map(|p| coords[*p as usize * dims + axis])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            })
    };
    let beyond = |axis: usize| {
        let (lo, hi) = range(axis);
        let v = coords[newest as usize * dims + axis];
        v > hi || v < lo
    };
    let widest = widest_axis(&coords, dims, &order);
    let axis = if beyond(widest) {
        widest
    } else {
        (0..dims).find(|&a| beyond(a)).unwrap_or(widest)
    };
    let key = |p: &u32| coords[*p as usize * dims + axis];
    let (lo, hi) = range(axis);
    let (mid, split) = if key(&newest) > hi {
        // `order` ends with the newest point already; it bounds the new leaf from below.
        (n - 1, key(&newest))
    } else if key(&newest) < lo {
        // The newest point alone below; the others are all at or above their minimum.
        order.rotate_right(1);
        (1, lo)
    } else {
        let mid = n / 2;
        order.select_nth_unstable_by(mid, |a, b| key(a).total_cmp(&key(b)));
        (mid, key(&order[mid]))
    };
    let mut payloads: Vec<Option<Payload>> = payloads.into_iter().map(Some).collect();
    let sorted_on = sort_axis(txn.meta.metric);
    let mut half = |idx: &mut [u32]| {
        idx.sort_unstable_by(|a, b| {
            coords[*a as usize * dims + sorted_on]
                .total_cmp(&coords[*b as usize * dims + sorted_on])
        });
        let mut c = Vec::with_capacity(idx.len() * dims);
        let mut p = Vec::with_capacity(idx.len());
        for &mut i in idx {
            let i = i as usize;
            c.extend_from_slice(&coords[i * dims..(i + 1) * dims]);
            p.extend(payloads[i].take());
        }
        (c, p)
    };
    let (low, high) = order.split_at_mut(mid);
    let (low_c, low_p) = half(low);
    let (high_c, high_p) = half(high);
    let upper = txn.allocate();
    let inner = txn.allocate();
    for p in &high_p {
        txn.set_id(&p.id, Some(upper))?;
    }
    txn.put_node(leaf, Node::Leaf { coords: low_c });
    txn.put_leaf_payloads(leaf, low_p);
    txn.put_node(upper, Node::Leaf { coords: high_c });
    txn.put_leaf_payloads(upper, high_p);
    txn.put_node(
        inner,
        Node::Inner(Inner {
            axis: axis as u8,
            split,
            below: Some(leaf),
            above: Some(upper),
            count: n as u64,
        }),
    );
    attach(txn, path.last().copied(), Some(inner))
}
