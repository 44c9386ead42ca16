//! Walks every node and checks every invariant of an index.

use crate::error::{Error, Result};
use crate::point::PointId;
use crate::progress::Progress;
use crate::store::format::Meta;
use crate::store::{codec, Space, Store};
use crate::tree::balance::depth_bound;
use crate::tree::layout::sort_axis;
use crate::tree::node::Node;
use crate::tree::points::{check_payload_count, lookup, read_leaf_payload_chunks};
use crate::tree::TreeReader;

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// Nodes reached from the root (inner nodes and leaves).
    pub nodes: u64,
    /// Leaves among them.
    pub leaves: u64,
    /// Points in the leaves.
    pub points: u64,
    /// Levels in the tree.
    pub depth: u32,
}

/// Checks, stopping at the first violation:
/// every node record decodes; every point is valid and lies inside the region its ancestors'
/// splits leave for it (the k-d invariant); every inner node's count is its children's sum;
/// every leaf holds 1 to `leaf_size` points and a payload record with one payload per point,
/// each of whose ids the id index maps back to this leaf; every node is reachable exactly once;
/// the reachable points equal the meta's count, the node and payload records equal the nodes
/// and leaves reached, and the id index holds exactly one entry per point, each in the bucket
/// its hash names; the tree is no deeper than the balance bound ([`depth_bound`]).
pub fn verify(store: &dyn Store, meta: &Meta, progress: &dyn Progress) -> Result<VerifyReport> {
    let dims = meta.dims as usize;
    let mut reader = TreeReader::new(store, dims);
    let max_id = match store.last(Space::Nodes)? {
        Some((k, _)) => codec::node_id_from_key(&k)?,
        None => 0,
    };
    let mut seen = Bitset::new(max_id);
    let mut is_leaf = Bitset::new(max_id);
    let (mut nodes, mut leaves, mut points, mut depth) = (0u64, 0u64, 0u64, 0u32);
    let mut payload_records = 0u64;
    // The id index is checked against the leaves as two multisets of (id, leaf), by the sum of
    // their entries' hashes: one pass over each in constant memory, instead of one bucket read
    // per point. Only when they differ are the points looked up one by one, to name one.
    let mut held = 0u64;
    // (node id, region, level, the node when its parent already read it to check its count)
    let mut stack: Vec<(u64, _, u32, Option<Node>)> = Vec::new();
    if let Some(root) = meta.root {
        stack.push((root, meta.metric.root_region(dims), 1u32, None));
    }
    progress.phase("tree", Some(meta.count));
    while let Some((id, region, level, read)) = stack.pop() {
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
        let node = match read {
            Some(n) => n,
            None => reader.node(id)?,
        };
        nodes += 1;
        depth = depth.max(level);
        match node {
            Node::Inner(i) => {
                for c in [i.below, i.above].into_iter().flatten() {
                    if c <= max_id && seen.contains(c) {
                        return Err(Error::Corrupt(format!(
                            "node {c} is reachable more than once (a cycle or a shared child)"
                        )));
                    }
                }
                let child = |c: Option<u64>, r: &mut TreeReader<'_>| -> Result<Option<Node>> {
                    match c {
                        Some(c) if c <= max_id => Ok(Some(r.node(c)?)),
                        Some(c) => Err(Error::Corrupt(format!(
                            "node {c} is referenced but has no record"
                        ))),
                        None => Ok(None),
                    }
                };
                let (below, above) = (child(i.below, &mut reader)?, child(i.above, &mut reader)?);
                let count = |n: &Option<Node>| n.as_ref().map_or(0, |n| n.count(dims));
                let (b, a) = (count(&below), count(&above));
                if b + a != i.count {
                    return Err(Error::Corrupt(format!(
                        "inner node {id} counts {} points, its children hold {}",
                        i.count,
                        b + a
                    )));
                }
                if i.below.is_none() && i.above.is_none() {
                    return Err(Error::Corrupt(format!("inner node {id} has no child")));
                }
                let axis = i.axis as usize;
                if let Some(c) = i.below {
                    stack.push((c, region.below(axis, i.split), level + 1, below));
                }
                if let Some(c) = i.above {
                    stack.push((c, region.above(axis, i.split), level + 1, above));
                }
            }
            Node::Leaf { coords } => {
                leaves += 1;
                is_leaf.insert(id);
                let n = coords.len() / dims.max(1);
                if n == 0 || n > meta.leaf_size as usize {
                    return Err(Error::Corrupt(format!(
                        "leaf {id} holds {n} points, outside 1..={}",
                        meta.leaf_size
                    )));
                }
                points += n as u64;
                progress.advance(n as u64);
                for c in coords.chunks_exact(dims) {
                    meta.metric
                        .check_point(c)
                        .map_err(|e| Error::Corrupt(format!("leaf {id}: {e}")))?;
                    if !region.contains(c) {
                        let axis = (0..dims)
                            .find(|&a| c[a] < region.lo[a] || c[a] > region.hi[a])
                            .unwrap_or(0);
                        return Err(Error::Corrupt(format!(
                            "leaf {id} breaks the k-d invariant: a point's coordinate {axis} is \
                             {} but its ancestors' splits allow [{}, {}]",
                            c[axis], region.lo[axis], region.hi[axis]
                        )));
                    }
                }
                let sorted_on = sort_axis(meta.metric).min(dims.saturating_sub(1));
                let in_order = coords
                    .chunks_exact(dims)
                    .zip(coords.chunks_exact(dims).skip(1))
                    .all(|(a, b)| a[sorted_on] <= b[sorted_on]);
                if !in_order {
                    return Err(Error::Corrupt(format!(
                        "leaf {id}'s points are not in order of coordinate {sorted_on}"
                    )));
                }
                let (payloads, chunks) = read_leaf_payload_chunks(store, id)?;
                payload_records += chunks as u64;
                check_payload_count(id, payloads.len(), &coords, dims)?;
                for p in &payloads {
                    held = held.wrapping_add(entry_hash(&p.id, id));
                }
            }
        }
    }
    if points != meta.count {
        return Err(Error::Corrupt(format!(
            "meta counts {} points but the leaves reachable from the root hold {points}",
            meta.count
        )));
    }
    let bound = depth_bound(points, meta.leaf_size);
    if points > 0 && depth > bound {
        return Err(Error::Corrupt(format!(
            "the tree is {depth} levels deep, but {points} points in leaves of {} may be at \
             most {bound} (the balance bound)",
            meta.leaf_size
        )));
    }
    progress.phase("records", Some(max_id));
    // Records nothing reaches. Looked for by id with gets, not by scanning the spaces: sled
    // 0.34's page cache grows far past its capacity under a full scan (measured: 320 MB for a
    // 10M-point index with a 48 MB cache), while gets in key order stay within it.
    for id in 1..=max_id {
        if id % 1024 == 0 {
            progress.advance(1024);
        }
        if !seen.contains(id) && store.get(Space::Nodes, &codec::node_key(id))?.is_some() {
            return Err(Error::Corrupt(format!(
                "node record {id} is not reachable from the root ({} records are)",
                nodes
            )));
        }
    }
    let max_payload = match store.last(Space::Payloads)? {
        Some((k, _)) => codec::payload_key_parts(&k)?.0,
        None => 0,
    };
    for id in 1..=max_payload {
        let orphan = id > max_id || !seen.contains(id) || !is_leaf.contains(id);
        if orphan
            && store
                .get(Space::Payloads, &codec::payload_key(id, 0))?
                .is_some()
        {
            return Err(Error::Corrupt(format!(
                "payload record of node {id}, which is not a reachable leaf ({payload_records} \
                 payload records belong to the {leaves} leaves)"
            )));
        }
    }
    if let Some((k, _)) = store.last(Space::Ids)? {
        let b = codec::bucket_from_key(&k)?;
        if b >= meta.id_buckets {
            return Err(Error::Corrupt(format!(
                "id bucket {b} is beyond the index's {} buckets",
                meta.id_buckets
            )));
        }
    }
    let (mut entries, mut indexed) = (0u64, 0u64);
    progress.phase("id index", Some(meta.id_buckets));
    for b in 0..meta.id_buckets {
        progress.advance(1);
        let Some(v) = store.get(Space::Ids, &codec::bucket_key(b))? else {
            continue;
        };
        for (id, leaf) in codec::decode_id_bucket(b, &v)? {
            if codec::bucket_of(codec::id_hash(&id), meta.id_buckets) != b {
                return Err(Error::Corrupt(format!(
                    "point id {id} is in id bucket {b}, its hash names another"
                )));
            }
            indexed = indexed.wrapping_add(entry_hash(&id, leaf));
            entries += 1;
        }
    }
    if indexed != held {
        name_a_lost_id(store, meta)?;
        return Err(Error::Corrupt(
            "the id index does not map every point to the leaf holding it".into(),
        ));
    }
    if entries != points {
        return Err(Error::Corrupt(format!(
            "{entries} id index entries for {points} points"
        )));
    }
    progress.finish();
    Ok(VerifyReport {
        nodes,
        leaves,
        points,
        depth,
    })
}

/// One (id, leaf) pair's share of a multiset hash.
fn entry_hash(id: &PointId, leaf: u64) -> u64 {
    let mut h = codec::id_hash(id) ^ leaf.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 31;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 29)
}

/// Looks every point up in the id index and reports the first that does not map back to its
/// leaf (the slow pass, run only once the fast one found a difference).
fn name_a_lost_id(store: &dyn Store, meta: &Meta) -> Result<()> {
    for r in store.scan(Space::Nodes) {
        let (k, v) = r?;
        let id = codec::node_id_from_key(&k)?;
        if let Node::Leaf { .. } = codec::decode_node(id, &v, meta.dims as usize)? {
            for p in read_leaf_payload_chunks(store, id)?.0 {
                check_id(store, meta, &p.id, id)?;
            }
        }
    }
    Ok(())
}

fn check_id(store: &dyn Store, meta: &Meta, id: &PointId, leaf: u64) -> Result<()> {
    match lookup(store, meta, id)? {
        Some(l) if l == leaf => Ok(()),
        Some(l) => Err(Error::Corrupt(format!(
            "point id {id} of leaf {leaf} maps to node {l} in the id index"
        ))),
        None => Err(Error::Corrupt(format!(
            "point id {id} of leaf {leaf} is missing from the id index"
        ))),
    }
}

/// One bit per node id up to the largest id on disk: 1.25 MB per 10 million ids.
struct Bitset(Vec<u64>);

impl Bitset {
    fn new(max: u64) -> Self {
        Bitset(vec![0; (max / 64 + 1) as usize])
    }

    fn contains(&self, i: u64) -> bool {
        self.0[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Sets bit `i`; false if it was already set.
    fn insert(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        let was = self.0[w] & (1 << b) != 0;
        self.0[w] |= 1 << b;
        !was
    }
}
