//! A write transaction over the store: reads see the transaction's own writes, and nothing
//! reaches the store until the whole set is handed over as one atomic batch.

use std::collections::{BTreeSet, HashMap};

use crate::error::{Error, Result};
use crate::point::{Payload, PointId};
use crate::store::format::{Meta, META_KEY};
use crate::store::{codec, Space, Store, WriteBatch};
use crate::tree::Node;

/// Pending writes layered over a store.
pub struct Txn<'a> {
    store: &'a dyn Store,
    changes: HashMap<(Space, Vec<u8>), Option<Vec<u8>>>,
    touched: BTreeSet<u64>,
    /// The meta record as the transaction has it; written with the batch.
    pub meta: Meta,
}

impl<'a> Txn<'a> {
    /// A transaction starting from `meta`.
    pub fn new(store: &'a dyn Store, meta: Meta) -> Self {
        Txn {
            store,
            changes: HashMap::new(),
            touched: BTreeSet::new(),
            meta,
        }
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.changes.get(&(space, key.to_vec())) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.store.get(space, key)?.map(|b| b.to_vec())),
        }
    }

    fn set(&mut self, space: Space, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.changes.insert((space, key), value);
    }

    /// Node `id`; a missing node is corruption, since something pointed at it.
    pub fn node(&self, id: u64) -> Result<Node> {
        match self.get(Space::Nodes, &codec::node_key(id))? {
            Some(b) => {
                codec::decode_node_as(self.meta.node_format(), id, &b, self.meta.dims as usize)
            }
            None => Err(Error::Corrupt(format!(
                "node {id} is referenced but has no record"
            ))),
        }
    }

    /// Writes node `id`.
    pub fn put_node(&mut self, id: u64, node: &Node) {
        self.touched.insert(id);
        self.set(
            Space::Nodes,
            codec::node_key(id).to_vec(),
            Some(codec::encode_node_as(self.meta.node_format(), node)),
        );
    }

    /// Removes node `id` and its payload.
    pub fn delete_node(&mut self, id: u64) {
        self.touched.insert(id);
        self.set(Space::Nodes, codec::node_key(id).to_vec(), None);
        self.set(Space::Payloads, codec::node_key(id).to_vec(), None);
    }

    /// The payload of node `id`.
    pub fn payload(&self, id: u64) -> Result<Option<Payload>> {
        self.get(Space::Payloads, &codec::node_key(id))?
            .map(|b| codec::decode_payload(id, &b))
            .transpose()
    }

    /// Writes the payload of node `id`.
    pub fn put_payload(&mut self, id: u64, p: &Payload) {
        self.set(
            Space::Payloads,
            codec::node_key(id).to_vec(),
            Some(codec::encode_payload(p)),
        );
    }

    /// The node holding the user's point `id`.
    pub fn lookup(&self, id: &PointId) -> Result<Option<u64>> {
        self.get(Space::Ids, &codec::id_key(id))?
            .map(|b| codec::decode_node_ref(&b))
            .transpose()
    }

    /// Points the user's id at a node, or forgets it.
    pub fn set_id(&mut self, id: &PointId, node: Option<u64>) {
        self.set(
            Space::Ids,
            codec::id_key(id),
            node.map(|n| codec::encode_node_ref(n).to_vec()),
        );
    }

    /// Records the operations of this write as change `seq` of the changes log, and forgets
    /// change `seq - retain` so the log keeps the last `retain` writes.
    pub fn log_change(&mut self, seq: u64, ops: &[crate::point::WriteOp], retain: u64) {
        self.set(
            Space::Changes,
            codec::change_key(seq).to_vec(),
            Some(codec::encode_change(ops)),
        );
        if seq > retain {
            self.set(
                Space::Changes,
                codec::change_key(seq - retain).to_vec(),
                None,
            );
        }
    }

    /// A fresh node id.
    pub fn allocate(&mut self) -> u64 {
        let id = self.meta.next_id;
        self.meta.next_id += 1;
        id
    }

    /// The batch to apply (meta included), the final meta, and the node ids whose records
    /// changed (for cache invalidation).
    pub fn finish(self) -> (WriteBatch, Meta, Vec<u64>) {
        let mut batch = WriteBatch::new();
        let mut changes: Vec<_> = self.changes.into_iter().collect();
        // Key order makes the batch deterministic and sled's writes sequential.
        changes.sort_by(|a, b| (a.0 .0 as u8, &a.0 .1).cmp(&(b.0 .0 as u8, &b.0 .1)));
        for ((space, key), value) in changes {
            match value {
                Some(v) => batch.put(space, key, v),
                None => batch.delete(space, key),
            }
        }
        batch.put(Space::Meta, META_KEY, codec::encode_meta(&self.meta));
        (batch, self.meta, self.touched.into_iter().collect())
    }
}
