//! The on-disk format: its version number and the meta record that describes an index.

use crate::geometry::Metric;

/// The format version this binary writes and reads. Each version is described in `migrations/`.
pub const FORMAT_VERSION: u32 = 3;

/// Key of the format version in the meta space (a big-endian u32, readable by every version).
pub const VERSION_KEY: &[u8] = b"format_version";

/// Key, in the meta space, of the next node key a running migration will convert; present only
/// while a migration is under way.
pub const MIGRATION_KEY: &[u8] = b"migration_cursor";

/// Key of the [`Meta`] record in the meta space.
pub const META_KEY: &[u8] = b"meta";

/// Points a bulk-built leaf of lon/lat points holds unless a build asks otherwise (chosen by
/// measurement: see README's format 3 table).
pub const DEFAULT_LEAF_SIZE: u32 = 128;

/// Largest leaf record a build writes: a sled page of 16 of them stays under sled 0.34.7's
/// blob threshold (segment size / 4 - 20 = 131,052 bytes), with room for keys and headers.
pub const MAX_LEAF_RECORD: usize = 7 * 1024;

/// The leaf size a build uses for `dims`-dimensional points unless told otherwise:
/// [`DEFAULT_LEAF_SIZE`], or fewer where that many points would pass [`MAX_LEAF_RECORD`].
pub fn default_leaf_size(dims: usize) -> usize {
    ((MAX_LEAF_RECORD - 1) / (8 * dims.max(1))).clamp(2, DEFAULT_LEAF_SIZE as usize)
}

/// Id-index entries a bucket holds on average before the table grows by one bucket: ~2.5 KB
/// records for integer ids, so 16 to a sled page stay well under its blob threshold, and a
/// quarter of a record per leaf of 128 points.
pub const ID_BUCKET_LOAD: u64 = 256;

/// Everything an index knows about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// How distances are measured.
    pub metric: Metric,
    /// Number of coordinates per point.
    pub dims: u8,
    /// The root node, if the tree has any node.
    pub root: Option<u64>,
    /// Number of points.
    pub count: u64,
    /// The next unused node id.
    pub next_id: u64,
    /// Depth of the tree (levels; 0 for an empty tree) as of the last build or write.
    pub depth: u32,
    /// Identity of this index's history: new at every fresh build.
    pub generation: String,
    /// Sequence number of the last committed write (0 after a build).
    pub sequence: u64,
    /// The largest point count since the last full rebuild: deletions that shrink the tree
    /// well below it trigger one, so depth keeps within its bound of the current count.
    pub max_count: u64,
    /// Most points a leaf holds; an insertion into a full leaf splits it.
    pub leaf_size: u32,
    /// Buckets of the id index (a linear-hashing table: it grows one bucket at a time).
    pub id_buckets: u64,
    /// The format version the index is stored in. Not part of the meta record: it comes from
    /// the format version key, which every version can read.
    pub format: u32,
}

impl Meta {
    /// Meta of an empty index.
    pub fn empty(metric: Metric, dims: u8) -> Meta {
        Meta {
            metric,
            dims,
            root: None,
            count: 0,
            next_id: 1,
            depth: 0,
            generation: new_generation(),
            sequence: 0,
            max_count: 0,
            leaf_size: DEFAULT_LEAF_SIZE,
            id_buckets: 1,
            format: FORMAT_VERSION,
        }
    }

    /// Id-index buckets for `count` points.
    pub fn buckets_for(count: u64) -> u64 {
        count.div_ceil(ID_BUCKET_LOAD).max(1)
    }
}

/// A fresh generation id: time and process id, unique enough to tell two builds apart.
pub fn new_generation() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", std::process::id())
}
