//! Walks every node and checks every invariant of an index.

use crate::error::{Error, Result};
use crate::store::format::Meta;
use crate::store::{codec, Space, Store};
use crate::tree::balance::depth_bound;
use crate::tree::TreeReader;

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Nodes reached from the root.
    pub nodes: u64,
    /// Levels in the tree.
    pub depth: u32,
}

/// Checks, stopping at the first violation:
/// every node record decodes and holds a valid point; the k-d invariant holds at every node
/// (each point lies inside the region its ancestors' splits leave for it); every node is
/// reachable exactly once; the reachable count equals the meta's point count and the number of
/// node records; every node has a payload whose id the id index maps back to the node; the id
/// index has exactly one entry per point; the tree is no deeper than the balance bound
/// ([`depth_bound`]).
pub fn verify(store: &dyn Store, meta: &Meta) -> Result<VerifyReport> {
    let dims = meta.dims as usize;
    let mut reader = TreeReader::new(store, dims, meta.node_format());
    let max_id = match store.last(Space::Nodes)? {
        Some((k, _)) => codec::node_id_from_key(&k)?,
        None => 0,
    };
    let mut seen = Bitset::new(max_id);
    let mut reached = 0u64;
    let mut depth = 0u32;
    let mut stack = Vec::new();
    if let Some(root) = meta.root {
        stack.push((root, meta.metric.root_region(dims), 1u32));
    }
    while let Some((id, region, level)) = stack.pop() {
        if id > max_id {
            return Err(Error::Corrupt(format!(
                "node {id} is referenced but has no record"
            )));
        }
        if !seen.insert(id) {
            return Err(Error::Corrupt(format!(
                "node {id} is reachable more than once (a cycle or a shared child)"
            )));
        }
        let node = reader.node(id)?;
        reached += 1;
        depth = depth.max(level);
        meta.metric
            .check_point(&node.coords)
            .map_err(|e| Error::Corrupt(format!("node {id}: {e}")))?;
        if !region.contains(&node.coords) {
            let axis = (0..dims)
                .find(|&a| node.coords[a] < region.lo[a] || node.coords[a] > region.hi[a])
                .unwrap_or(0);
            return Err(Error::Corrupt(format!(
                "node {id} breaks the k-d invariant: coordinate {axis} is {} but its ancestors' \
                 splits allow [{}, {}]",
                node.coords[axis], region.lo[axis], region.hi[axis]
            )));
        }
        check_payload(store, id)?;
        let axis = node.axis as usize;
        let split = node.split();
        if let Some(c) = node.below {
            stack.push((c, region.below(axis, split), level + 1));
        }
        if let Some(c) = node.above {
            stack.push((c, region.above(axis, split), level + 1));
        }
    }
    if reached != meta.count {
        return Err(Error::Corrupt(format!(
            "meta counts {} points but {reached} nodes are reachable from the root",
            meta.count
        )));
    }
    let bound = depth_bound(reached);
    if reached > 0 && depth > bound {
        return Err(Error::Corrupt(format!(
            "the tree is {depth} levels deep, but {reached} points may be at most {bound} \
             (the balance bound)"
        )));
    }
    let records = store.len(Space::Nodes)?;
    if records != reached {
        return Err(Error::Corrupt(format!(
            "{} node records are not reachable from the root",
            records.saturating_sub(reached)
        )));
    }
    for (space, what) in [
        (Space::Payloads, "payloads"),
        (Space::Ids, "id index entries"),
    ] {
        let n = store.len(space)?;
        if n != reached {
            return Err(Error::Corrupt(format!("{n} {what} for {reached} points")));
        }
    }
    Ok(VerifyReport {
        nodes: reached,
        depth,
    })
}

fn check_payload(store: &dyn Store, id: u64) -> Result<()> {
    let bytes = store
        .get(Space::Payloads, &codec::node_key(id))?
        .ok_or_else(|| Error::Corrupt(format!("node {id} has no payload")))?;
    let payload = codec::decode_payload(id, &bytes)?;
    let indexed = store
        .get(Space::Ids, &codec::id_key(&payload.id))?
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "point id {} of node {id} is missing from the id index",
                payload.id
            ))
        })?;
    let back = codec::decode_node_ref(&indexed)?;
    if back != id {
        return Err(Error::Corrupt(format!(
            "point id {} of node {id} maps to node {back} in the id index",
            payload.id
        )));
    }
    Ok(())
}

/// One bit per node id up to the largest id on disk: 1.25 MB per 10 million ids.
struct Bitset(Vec<u64>);

impl Bitset {
    fn new(max: u64) -> Self {
        Bitset(vec![0; (max / 64 + 1) as usize])
    }

    /// Sets bit `i`; false if it was already set.
    fn insert(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        let was = self.0[w] & (1 << b) != 0;
        self.0[w] |= 1 << b;
        !was
    }
}
