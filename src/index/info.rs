//! What an index holds, as `kdsled info` prints it and `GET /v1/info` answers it.

use serde::{Deserialize, Serialize};

use super::Index;
use crate::error::Result;

/// An index's shape and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexInfo {
    /// On-disk format version.
    pub format_version: u32,
    /// `haversine` or `euclidean`.
    pub metric: String,
    /// Coordinates per point.
    pub dims: u8,
    /// Points in the index.
    pub points: u64,
    /// Levels in the tree.
    pub depth: u32,
    /// Most points a leaf holds.
    pub leaf_size: u32,
    /// Buckets of the id index.
    pub id_buckets: u64,
    /// Bytes of the index directory (or the store's own figure).
    pub bytes_on_disk: u64,
    /// The index history's identity.
    pub generation: String,
    /// The last committed sequence.
    pub sequence: u64,
}

impl Index {
    /// What the index holds; the size on disk is a walk of the directory's files.
    pub fn info(&self) -> Result<IndexInfo> {
        let m = self.meta();
        Ok(IndexInfo {
            format_version: m.format,
            metric: m.metric.name().to_string(),
            dims: m.dims,
            points: m.count,
            depth: m.depth,
            leaf_size: m.leaf_size,
            id_buckets: m.id_buckets,
            bytes_on_disk: self.size_on_disk()?,
            generation: m.generation.clone(),
            sequence: m.sequence,
        })
    }
}
