//! Points by the user's id, and every point in storage order: through the id index and the
//! leaves, for gets, exports and rewrites.

use crate::error::{Error, Result};
use crate::point::{Payload, PointId};
use crate::store::format::Meta;
use crate::store::{codec, Space, Store};
use crate::tree::node::Node;
use crate::tree::reader::read;

/// One stored point with everything known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoint {
    /// The leaf holding the point.
    pub leaf: u64,
    /// Its slot in the leaf.
    pub slot: usize,
    /// Coordinates.
    pub coords: Vec<f64>,
    /// User id and attributes.
    pub payload: Payload,
}

/// Checks that leaf `leaf`, holding `coords` (flat, `dims` a point), has one payload per point.
pub fn check_payload_count(leaf: u64, payloads: usize, coords: &[f64], dims: usize) -> Result<()> {
    let points = coords.len() / dims.max(1);
    if payloads == points && points * dims == coords.len() {
        return Ok(());
    }
    Err(Error::Corrupt(format!(
        "leaf {leaf} has {payloads} payloads for {points} points"
    )))
}

/// Reads and decodes the payloads of leaf `leaf`, in slot order.
pub fn read_leaf_payloads(store: &dyn Store, leaf: u64) -> Result<Vec<Payload>> {
    Ok(read_leaf_payload_chunks(store, leaf)?.0)
}

/// Reads and decodes the payloads of leaf `leaf`, in slot order, with the number of records
/// (chunks) they are stored in.
pub fn read_leaf_payload_chunks(store: &dyn Store, leaf: u64) -> Result<(Vec<Payload>, usize)> {
    let mut out = Vec::new();
    let chunks = for_each_payload_chunk(store, leaf, |bytes| {
        out.extend(codec::decode_leaf_payloads(leaf, bytes)?);
        Ok(())
    })?;
    Ok((out, chunks))
}

/// Hands each payload record of leaf `leaf` to `f`, in slot order, and returns how many there
/// were. Chunks are numbered from 0 with no gap; a leaf has at least one.
pub fn for_each_payload_chunk(
    store: &dyn Store,
    leaf: u64,
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<usize> {
    let mut chunks = 0usize;
    let end = codec::payload_key(leaf.saturating_add(1), 0);
    for r in store.scan_range(Space::Payloads, &codec::payload_key(leaf, 0), &end) {
        let (k, v) = r?;
        let (_, chunk) = codec::payload_key_parts(&k)?;
        if chunk as usize != chunks {
            return Err(Error::Corrupt(format!(
                "leaf {leaf} has payload chunk {chunk} where chunk {chunks} belongs"
            )));
        }
        f(&v)?;
        chunks += 1;
    }
    if chunks == 0 {
        return Err(Error::Corrupt(format!("leaf {leaf} has no payload record")));
    }
    Ok(chunks)
}

/// The leaf the id index names for `id`, if any.
pub fn lookup(store: &dyn Store, meta: &Meta, id: &PointId) -> Result<Option<u64>> {
    let b = codec::bucket_of(codec::id_hash(id), meta.id_buckets);
    let Some(bytes) = store.get(Space::Ids, &codec::bucket_key(b))? else {
        return Ok(None);
    };
    Ok(codec::decode_id_bucket(b, &bytes)?
        .into_iter()
        .find(|(k, _)| k == id)
        .map(|(_, leaf)| leaf))
}

/// The point with the user's id `id`, if there is one.
pub fn find(store: &dyn Store, meta: &Meta, id: &PointId) -> Result<Option<StoredPoint>> {
    let Some(leaf) = lookup(store, meta, id)? else {
        return Ok(None);
    };
    let dims = meta.dims as usize;
    let Node::Leaf { coords } = read(store, dims, leaf)? else {
        return Err(Error::Corrupt(format!(
            "the id index maps point {id} to node {leaf}, which is not a leaf"
        )));
    };
    let payloads = read_leaf_payloads(store, leaf)?;
    check_payload_count(leaf, payloads.len(), &coords, dims)?;
    let Some(slot) = payloads.iter().position(|p| p.id == *id) else {
        return Err(Error::Corrupt(format!(
            "the id index maps point {id} to leaf {leaf}, which does not hold it"
        )));
    };
    Ok(Some(StoredPoint {
        leaf,
        slot,
        coords: coords[slot * dims..(slot + 1) * dims].to_vec(),
        payload: payloads[slot].clone(),
    }))
}

/// Every point in storage, leaf by leaf in node-id order: coordinates and payload. Reads one
/// leaf and its payload record at a time, so memory stays at one leaf's.
pub fn scan(
    store: &dyn Store,
    dims: usize,
) -> impl Iterator<Item = Result<(Vec<f64>, Payload)>> + '_ {
    let mut leaves = store.scan(Space::Nodes);
    let mut pending: std::vec::IntoIter<(Vec<f64>, Payload)> = Vec::new().into_iter();
    std::iter::from_fn(move || loop {
        if let Some(p) = pending.next() {
            return Some(Ok(p));
        }
        let (k, v) = match leaves.next()? {
            Ok(kv) => kv,
            Err(e) => return Some(Err(e)),
        };
        let next = (|| {
            let id = codec::node_id_from_key(&k)?;
            let Node::Leaf { coords } = codec::decode_node(id, &v, dims)? else {
                return Ok(Vec::new());
            };
            let payloads = read_leaf_payloads(store, id)?;
            check_payload_count(id, payloads.len(), &coords, dims)?;
            Ok(coords
                .chunks_exact(dims)
                .map(<[f64]>::to_vec)
                .zip(payloads)
                .collect::<Vec<_>>())
        })();
        match next {
            Ok(v) => pending = v.into_iter(),
            Err(e) => return Some(Err(e)),
        }
    })
}
