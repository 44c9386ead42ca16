//! Storage at the bottom: a small key-value interface over sled, the record codec and the on-disk
//! format's meta record.
//!
//! The tree and query code only ever talk to [`Store`], so tests can inject faults and another
//! backend can be measured against sled without touching them.

pub mod codec;
pub mod directory;
pub mod format;
mod guard;
pub mod node;
mod sled_store;

pub use directory::IndexDir;
pub use sled_store::SledStore;

use crate::error::Result;

/// Bytes handed back by a [`Store`]: sled's reference-counted buffer, cheap to clone and inline
/// for small records.
pub type Bytes = sled::IVec;

/// The keyspaces of an index. Each is its own sled tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    /// Format version and the meta record.
    Meta,
    /// One record per tree node (an inner split or a leaf bucket), keyed by big-endian node id.
    Nodes,
    /// One record per leaf: its points' payloads (user id and attributes) in slot order, keyed
    /// by the leaf's node id.
    Payloads,
    /// From a user's point id to the leaf holding it: buckets of a linear-hashing table, keyed by
    /// big-endian bucket number.
    Ids,
    /// Redo log of a large write batch while it is being applied.
    Journal,
    /// The committed writes, by sequence number, that replicas tail.
    Changes,
}

impl Space {
    /// All spaces, in a fixed order.
    pub const ALL: [Space; 6] = [
        Space::Meta,
        Space::Nodes,
        Space::Payloads,
        Space::Ids,
        Space::Journal,
        Space::Changes,
    ];

    /// The sled tree name of the space.
    pub fn tree_name(self) -> &'static str {
        match self {
            Space::Meta => "meta",
            Space::Nodes => "nodes",
            Space::Payloads => "payloads",
            Space::Ids => "ids",
            Space::Journal => "journal",
            Space::Changes => "changes",
        }
    }
}

/// One write: a key in a space set to a value, or removed (`None`).
pub type WriteOp = (Space, Vec<u8>, Option<Vec<u8>>);

/// A set of writes applied together by [`Store::apply`].
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` in `space`.
    pub fn put(&mut self, space: Space, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((space, key.into(), Some(value.into())));
    }

    /// Removes `key` from `space`.
    pub fn delete(&mut self, space: Space, key: impl Into<Vec<u8>>) {
        self.ops.push((space, key.into(), None));
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations in order.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }
}

/// Iterator over the records of one space, in key order.
pub type ScanIter<'a> = Box<dyn Iterator<Item = Result<(Bytes, Bytes)>> + Send + 'a>;

/// What the tree needs from storage.
pub trait Store: Send + Sync {
    /// Reads one record.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes>>;

    /// Applies a batch atomically: after a crash either every operation is there or none is,
    /// whatever the batch's size. Not durable until [`Store::flush`]. Concurrent readers may see
    /// part of a large batch while it is applied; the index keeps them out meanwhile.
    fn apply(&self, batch: &WriteBatch) -> Result<()>;

    /// Every record of a space in key order.
    fn scan(&self, space: Space) -> ScanIter<'_>;

    /// The records of a space from key `from` (inclusive) on, in key order.
    fn scan_from(&self, space: Space, from: &[u8]) -> ScanIter<'_>;

    /// The records of a space with keys in `from..to`, in key order.
    fn scan_range(&self, space: Space, from: &[u8], to: &[u8]) -> ScanIter<'_> {
        let to = to.to_vec();
        Box::new(
            self.scan_from(space, from)
                .take_while(move |r| r.as_ref().map_or(true, |(k, _)| k.as_ref() < &to[..])),
        )
    }

    /// The last record of a space (highest key), if any.
    fn last(&self, space: Space) -> Result<Option<(Bytes, Bytes)>>;

    /// Number of records in a space. Walks the whole space.
    fn len(&self, space: Space) -> Result<u64> {
        let mut n = 0;
        for r in self.scan(space) {
            r?;
            n += 1;
        }
        Ok(n)
    }

    /// Makes everything applied so far durable; returns the bytes written.
    fn flush(&self) -> Result<usize>;

    /// Bytes the store occupies on disk.
    fn size_on_disk(&self) -> Result<u64>;
}
