//! A write transaction over the store: reads see the transaction's own writes, decoded records
//! are kept for the transaction's life (a batch touches the same leaves and buckets again and
//! again), and nothing reaches the store until the whole set is handed over as one atomic batch.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::{Error, Result};
use crate::point::{Payload, PointId};
use crate::store::format::{Meta, ID_BUCKET_LOAD, META_KEY};
use crate::store::{codec, Space, Store, WriteBatch};
use crate::tree::node::Node;
use crate::tree::points::read_leaf_payload_chunks;

/// A record's place: its space's number and its key (ordered, so batches are deterministic).
type RawKey = (u8, Vec<u8>);

/// Pending writes layered over a store.
pub struct Txn<'a> {
    store: &'a dyn Store,
    /// Nodes read or written, `None` where deleted.
    nodes: HashMap<u64, Option<Node>>,
    /// Leaf payload records read or written, `None` where deleted.
    payloads: HashMap<u64, Option<Vec<Payload>>>,
    /// Chunks each leaf's payloads took in the store when read (absent: none, or not read).
    stored_chunks: HashMap<u64, usize>,
    /// Id-index buckets read or written.
    buckets: HashMap<u64, Vec<(PointId, u64)>>,
    dirty_nodes: BTreeSet<u64>,
    dirty_payloads: BTreeSet<u64>,
    dirty_buckets: BTreeSet<u64>,
    /// Other records set or removed, by space and key.
    raw: BTreeMap<RawKey, (Space, Option<Vec<u8>>)>,
    /// The meta record as the transaction has it; written with the batch.
    pub meta: Meta,
}

impl<'a> Txn<'a> {
    /// A transaction starting from `meta`.
    pub fn new(store: &'a dyn Store, meta: Meta) -> Self {
        Txn {
            store,
            nodes: HashMap::new(),
            payloads: HashMap::new(),
            stored_chunks: HashMap::new(),
            buckets: HashMap::new(),
            dirty_nodes: BTreeSet::new(),
            dirty_payloads: BTreeSet::new(),
            dirty_buckets: BTreeSet::new(),
            raw: BTreeMap::new(),
            meta,
        }
    }

    /// Node `id`; a missing node is corruption, since something pointed at it.
    pub fn node(&mut self, id: u64) -> Result<Node> {
        if let Some(n) = self.nodes.get(&id) {
            return n.clone().ok_or_else(|| missing(id));
        }
        let n = crate::tree::reader::read(self.store, self.meta.dims as usize, id)?;
        self.nodes.insert(id, Some(n.clone()));
        Ok(n)
    }

    /// Writes node `id`.
    pub fn put_node(&mut self, id: u64, node: Node) {
        self.nodes.insert(id, Some(node));
        self.dirty_nodes.insert(id);
    }

    /// Removes node `id` and, for a leaf, its payload record.
    pub fn delete_node(&mut self, id: u64) {
        self.nodes.insert(id, None);
        self.dirty_nodes.insert(id);
        self.payloads.insert(id, None);
        self.dirty_payloads.insert(id);
    }

    /// The payloads of leaf `leaf`, in slot order.
    pub fn leaf_payloads(&mut self, leaf: u64) -> Result<Vec<Payload>> {
        if let Some(p) = self.payloads.get(&leaf) {
            return p
                .clone()
                .ok_or_else(|| Error::Corrupt(format!("leaf {leaf} has no payload record")));
        }
        let (p, chunks) = read_leaf_payload_chunks(self.store, leaf)?;
        self.stored_chunks.insert(leaf, chunks);
        self.payloads.insert(leaf, Some(p.clone()));
        Ok(p)
    }

    /// Writes the payloads of leaf `leaf`.
    pub fn put_leaf_payloads(&mut self, leaf: u64, payloads: Vec<Payload>) {
        self.payloads.insert(leaf, Some(payloads));
        self.dirty_payloads.insert(leaf);
    }

    fn bucket(&mut self, b: u64) -> Result<&mut Vec<(PointId, u64)>> {
        if !self.buckets.contains_key(&b) {
            let entries = match self.store.get(Space::Ids, &codec::bucket_key(b))? {
                Some(bytes) => codec::decode_id_bucket(b, &bytes)?,
                None => Vec::new(),
            };
            self.buckets.insert(b, entries);
        }
        Ok(self.buckets.entry(b).or_default())
    }

    /// The leaf holding the user's point `id`.
    pub fn lookup(&mut self, id: &PointId) -> Result<Option<u64>> {
        let b = codec::bucket_of(codec::id_hash(id), self.meta.id_buckets);
        Ok(self
            .bucket(b)?
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, l)| *l))
    }

    /// Points the user's id at a leaf, or forgets it.
    pub fn set_id(&mut self, id: &PointId, leaf: Option<u64>) -> Result<()> {
        let b = codec::bucket_of(codec::id_hash(id), self.meta.id_buckets);
        let entries = self.bucket(b)?;
        let at = entries.iter().position(|(k, _)| k == id);
        match (at, leaf) {
            (Some(i), Some(l)) => entries[i].1 = l,
            (None, Some(l)) => entries.push((id.clone(), l)),
            (Some(i), None) => {
                entries.swap_remove(i);
            }
            (None, None) => {}
        }
        self.dirty_buckets.insert(b);
        Ok(())
    }

    /// Grows the id index one bucket at a time (linear hashing) until it holds at most
    /// [`ID_BUCKET_LOAD`] entries a bucket on average. Each step rewrites one bucket.
    pub fn grow_id_index(&mut self) -> Result<()> {
        while self.meta.count > ID_BUCKET_LOAD.saturating_mul(self.meta.id_buckets) {
            let n = self.meta.id_buckets;
            let level = 63 - n.leading_zeros();
            let from = n - (1u64 << level);
            let entries = std::mem::take(self.bucket(from)?);
            let (stay, go): (Vec<_>, Vec<_>) = entries
                .into_iter()
                .partition(|(id, _)| codec::bucket_of(codec::id_hash(id), n + 1) == from);
            self.buckets.insert(from, stay);
            self.buckets.insert(n, go);
            self.dirty_buckets.insert(from);
            self.dirty_buckets.insert(n);
            self.meta.id_buckets = n + 1;
        }
        Ok(())
    }

    /// Records the operations of this write as change `seq` of the changes log, and forgets
    /// change `seq - retain` so the log keeps the last `retain` writes.
    pub fn log_change(&mut self, seq: u64, ops: &[crate::point::WriteOp], retain: u64) {
        let key = codec::change_key(seq).to_vec();
        self.raw.insert(
            (Space::Changes as u8, key),
            (Space::Changes, Some(codec::encode_change(ops))),
        );
        if seq > retain {
            let old = codec::change_key(seq - retain).to_vec();
            self.raw
                .insert((Space::Changes as u8, old), (Space::Changes, None));
        }
    }

    /// A fresh node id.
    pub fn allocate(&mut self) -> u64 {
        let id = self.meta.next_id;
        self.meta.next_id += 1;
        id
    }

    /// The batch to apply (meta included), the final meta, and what changed (for cache
    /// invalidation).
    pub fn finish(self) -> Result<(WriteBatch, Meta, Touched)> {
        let mut batch = WriteBatch::new();
        // Key order makes the batch deterministic and sled's writes sequential.
        for &id in &self.dirty_nodes {
            match self.nodes.get(&id).and_then(Option::as_ref) {
                Some(n) => batch.put(Space::Nodes, codec::node_key(id), codec::encode_node(n)),
                None => batch.delete(Space::Nodes, codec::node_key(id)),
            }
        }
        for &id in &self.dirty_payloads {
            let chunks = match self.payloads.get(&id).and_then(Option::as_ref) {
                Some(p) => codec::encode_leaf_payload_chunks(p),
                None => Vec::new(),
            };
            // Chunks the leaf had beyond its new ones go; a leaf whose payloads were written
            // without being read first is looked up.
            let old = match self.stored_chunks.get(&id) {
                Some(n) => *n,
                None => {
                    let mut n = 0;
                    for r in self.store.scan_range(
                        Space::Payloads,
                        &codec::payload_key(id, 0),
                        &codec::payload_key(id.saturating_add(1), 0),
                    ) {
                        r?;
                        n += 1;
                    }
                    n
                }
            };
            for c in chunks.len()..old {
                batch.delete(Space::Payloads, codec::payload_key(id, c as u16));
            }
            for (c, bytes) in chunks.into_iter().enumerate() {
                batch.put(Space::Payloads, codec::payload_key(id, c as u16), bytes);
            }
        }
        for &b in &self.dirty_buckets {
            match self.buckets.get(&b) {
                Some(e) if !e.is_empty() => {
                    batch.put(Space::Ids, codec::bucket_key(b), codec::encode_id_bucket(e))
                }
                _ => batch.delete(Space::Ids, codec::bucket_key(b)),
            }
        }
        for ((_, key), (space, value)) in self.raw {
            match value {
                Some(v) => batch.put(space, key, v),
                None => batch.delete(space, key),
            }
        }
        batch.put(Space::Meta, META_KEY, codec::encode_meta(&self.meta));
        let touched = Touched {
            nodes: self.dirty_nodes.into_iter().collect(),
            payloads: self.dirty_payloads.into_iter().collect(),
        };
        Ok((batch, self.meta, touched))
    }
}

/// What a transaction rewrote, for the caches to forget.
pub struct Touched {
    /// Nodes whose records changed or went.
    pub nodes: Vec<u64>,
    /// Leaves whose payload records changed or went.
    pub payloads: Vec<u64>,
}

fn missing(id: u64) -> Error {
    Error::Corrupt(format!("node {id} is referenced but has no record"))
}
