//! The public database API: open an index, query it, build one.

pub(crate) mod build;
mod compact;
mod disk;
mod flush;
mod info;
pub mod leaf_json;
mod snapshot;
mod write;

pub use crate::point::{NewPoint, WriteOp};
pub use crate::progress::{NoProgress, Progress};
pub use build::{build, BuildOptions, BuildSummary, DEFAULT_BUILD_MEMORY_MB};
pub use compact::compact;
pub use disk::dir_size;
pub use info::IndexInfo;
pub use snapshot::Snapshot;
pub use write::WriteOutcome;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{Error, Result};
use crate::geometry::{BBox, Metric};
use crate::point::{Payload, PointId};
use crate::query::{Answer, ColumnCache, StatsAnswer};
use crate::store::format::{Meta, FORMAT_VERSION, META_KEY, MIGRATION_KEY, VERSION_KEY};
use crate::store::{codec, IndexDir, SledStore, Space, Store};
use crate::tree::cache::NodeCache;
use crate::tree::verify::{self, VerifyReport};
use crate::tree::{Node, PointRef};

/// Default memory for caches, MiB: sled's page cache and kdsled's node cache together.
pub const DEFAULT_CACHE_MB: u64 = 256;

/// Committed writes kept in the changes log for replicas unless configured otherwise.
pub const DEFAULT_CHANGE_RETENTION: u64 = 100_000;

/// An open index.
pub struct Index {
    store: Arc<dyn Store>,
    /// The directory's lock, held while the index is open (none for an in-memory store).
    dir: Option<Arc<IndexDir>>,
    /// Readers (snapshots) against a writer applying its batch. Held only around work that
    /// never waits on other queued work: a walk, or a batch landing.
    gate: RwLock<()>,
    /// The latest committed meta record. Behind a mutex held only for an `Arc` clone, so
    /// asking for it never waits on a walk or a write (async handlers call it).
    published: Mutex<Arc<Meta>>,
    /// The highest sequence known to be on disk: replicas are served changes up to it only.
    durable_sequence: AtomicU64,
    nodes_read: AtomicU64,
    cache: Option<NodeCache>,
    /// Answers' payload JSON, encoded once per leaf.
    leaf_json: Option<leaf_json::LeafJsonCache>,
    /// Attributes filters and stats read, per leaf.
    columns: Option<ColumnCache>,
    /// Whether walks read subtrees ahead with range scans.
    read_ahead: bool,
    /// Serializes writers; readers never take it.
    writer: Mutex<()>,
    flusher: flush::GroupFlush,
    writes: AtomicU64,
    retain_changes: AtomicU64,
}

/// How `cache_mb` is shared: a quarter for decoded top-level nodes, a quarter for answers'
/// payload JSON, a sixteenth for the attribute columns filters and stats read, the rest for
/// sled's pages. Returns (sled MiB, node bytes, JSON bytes, column bytes).
fn split_cache(cache_mb: u64) -> (u64, usize, usize, usize) {
    let quarter = (cache_mb * 1024 * 1024 / 4) as usize;
    let sixteenth = (cache_mb * 1024 * 1024 / 16) as usize;
    let sled_mb = cache_mb - 2 * (cache_mb / 4) - cache_mb / 16;
    (sled_mb.max(1), quarter, quarter, sixteenth)
}

pub use crate::tree::points::StoredPoint;

impl Index {
    /// Opens the index at `path` with `cache_mb` MiB of caches (sled's page cache and a cache of
    /// decoded top-level nodes). Fails without touching anything if there is no index there or
    /// its format version is not this binary's.
    pub fn open(path: &Path, cache_mb: u64) -> Result<Index> {
        Self::open_in(IndexDir::open(path)?, cache_mb)
    }

    /// Opens the index in use in `dir`, whose lock the caller holds.
    pub fn open_in(dir: Arc<IndexDir>, cache_mb: u64) -> Result<Index> {
        let path = dir.path();
        let Some(sled_dir) = dir.current()? else {
            return Err(Error::Database(format!(
                "no index at {}: build one with `kdsled build --db {} --input FILE`",
                path.display(),
                path.display()
            )));
        };
        let (sled_mb, node_bytes, json_bytes, column_bytes) = split_cache(cache_mb);
        let store = SledStore::open(&sled_dir, sled_mb)?;
        let mut index = Index::from_store(Arc::new(store)).map_err(|e| match e {
            Error::FormatVersion(m) => {
                Error::FormatVersion(m.replace("DIR", &path.display().to_string()))
            }
            other => other,
        })?;
        index.dir = Some(dir);
        index.leaf_json = (json_bytes > 0).then(|| leaf_json::LeafJsonCache::new(json_bytes));
        index.columns = (column_bytes > 0).then(|| ColumnCache::new(column_bytes));
        index.cache = (node_bytes > 0).then(|| {
            let meta = index.meta();
            // Node ids are not dense after writes (rebuilds take fresh ids), so the node count
            // is estimated from the points: at most two nodes per half-full leaf.
            let nodes = 2 * meta.count.div_ceil(u64::from(meta.leaf_size / 2).max(1));
            let depth = NodeCache::depth_for(
                node_bytes,
                meta.count,
                nodes,
                meta.dims as usize,
                meta.depth,
            );
            NodeCache::with_budget(node_bytes, meta.next_id, depth)
        });
        Ok(index)
    }

    /// Opens an index over any store holding one, without a node cache.
    pub fn from_store(store: Arc<dyn Store>) -> Result<Index> {
        let version = read_version(store.as_ref())?;
        if store.get(Space::Meta, MIGRATION_KEY)?.is_some() {
            return Err(Error::FormatVersion(format!(
                "a migration to format version {version} was interrupted: run \
                 `kdsled migrate --db DIR` to finish it"
            )));
        }
        check_version(version)?;
        let mut meta = match store.get(Space::Meta, META_KEY)? {
            Some(m) => codec::decode_meta(&m)?,
            None => return Err(Error::Corrupt("the meta record is missing".into())),
        };
        meta.format = version;
        Ok(Index {
            store,
            dir: None,
            gate: RwLock::new(()),
            durable_sequence: AtomicU64::new(meta.sequence),
            published: Mutex::new(Arc::new(meta)),
            nodes_read: AtomicU64::new(0),
            cache: None,
            leaf_json: None,
            columns: None,
            read_ahead: true,
            writer: Mutex::new(()),
            flusher: flush::GroupFlush::default(),
            writes: AtomicU64::new(0),
            retain_changes: AtomicU64::new(DEFAULT_CHANGE_RETENTION),
        })
    }

    /// Writes an empty index with the given metric into `store` (which must be empty).
    pub fn create_in(store: Arc<dyn Store>, metric: Metric, dims: usize) -> Result<Index> {
        metric.check_dims(dims)?;
        let mut batch = crate::store::WriteBatch::new();
        batch.put(
            Space::Meta,
            VERSION_KEY,
            codec::encode_version(FORMAT_VERSION),
        );
        batch.put(
            Space::Meta,
            META_KEY,
            codec::encode_meta(&Meta::empty(metric, dims as u8)),
        );
        store.apply(&batch)?;
        store.flush()?;
        Index::from_store(store)
    }

    /// The index's meta record as of the latest commit. Never waits for a walk or a write.
    pub fn meta(&self) -> Arc<Meta> {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The highest sequence number whose write is durable on disk.
    pub fn durable_sequence(&self) -> u64 {
        self.durable_sequence.load(Ordering::Acquire)
    }

    /// Records that every write up to `seq` is on disk.
    fn mark_durable(&self, seq: u64) {
        self.durable_sequence.fetch_max(seq, Ordering::AcqRel);
    }

    fn publish(&self, meta: Meta) {
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(meta);
    }

    /// The directory the index lives in, if it was opened from one.
    pub fn path(&self) -> Option<&Path> {
        self.dir.as_deref().map(IndexDir::path)
    }

    /// The directory this index was opened from, with its lock.
    pub fn dir(&self) -> Option<&Arc<IndexDir>> {
        self.dir.as_ref()
    }

    /// The store underneath.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Drops the node cache, so every visit reads storage (for measuring storage and decoding).
    pub fn disable_node_cache(&mut self) {
        self.cache = None;
    }

    /// Stops walks from reading subtrees ahead, so each visit not answered by the node cache
    /// is one storage get (the baseline the cold benchmark compares against).
    pub fn disable_read_ahead(&mut self) {
        self.read_ahead = false;
    }

    /// Drops the cache of answers' payload JSON, so every answer encodes its payloads anew.
    pub fn disable_leaf_json_cache(&mut self) {
        self.leaf_json = None;
    }

    /// The cache of answers' payload JSON, if the index has one.
    pub fn leaf_json_cache(&self) -> Option<&leaf_json::LeafJsonCache> {
        self.leaf_json.as_ref()
    }

    /// The node cache, if the index has one.
    pub fn node_cache(&self) -> Option<&NodeCache> {
        self.cache.as_ref()
    }

    /// Tree nodes read by all queries on this handle so far.
    pub fn nodes_read_total(&self) -> u64 {
        self.nodes_read.load(Ordering::Relaxed)
    }

    /// A consistent view for one or more reads: writes wait until it is dropped, so a query and
    /// the payload reads that render its answer see the same committed state. Do not hold one
    /// across a write on the same thread.
    ///
    /// A snapshot taken on a thread that already holds one of this index (a rayon job stolen
    /// inside another snapshot's parallel work) shares the outer one's hold instead of asking
    /// the lock again: std's `RwLock` admits no new reader once a writer waits, so a second
    /// read on the same thread would deadlock.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot::take(self)
    }

    /// [`Index::snapshot`] if it can be had without waiting for a writer; `None` while one
    /// applies a batch or waits to. For threads that must not block.
    pub fn try_snapshot(&self) -> Option<Snapshot<'_>> {
        Snapshot::try_take(self)
    }

    /// Points within `radius` of `center`, nearest first, at most `limit`.
    pub fn radius(&self, center: &[f64], radius: f64, limit: usize) -> Result<Answer> {
        self.snapshot().radius(center, radius, limit)
    }

    /// Number of points within `radius` of `center` (an answer with a count and no hits).
    pub fn count_within(&self, center: &[f64], radius: f64) -> Result<Answer> {
        self.snapshot().count_within(center, radius)
    }

    /// The `k` nearest points to `center`, optionally within `max_distance`.
    pub fn nearest(&self, center: &[f64], k: usize, max_distance: Option<f64>) -> Result<Answer> {
        self.snapshot().nearest(center, k, max_distance)
    }

    /// Points inside `bbox`, at most `limit`.
    pub fn within(&self, bbox: &BBox, limit: usize) -> Result<Answer> {
        self.snapshot().within(bbox, limit)
    }

    /// Per-value counts (and sums) of an attribute over the points within a radius.
    pub fn stats(
        &self,
        center: &[f64],
        radius: f64,
        group_by: &str,
        sum: Option<&str>,
    ) -> Result<StatsAnswer> {
        self.snapshot().stats(center, radius, group_by, sum)
    }

    /// The payload of the point `point` of an answer. Handles are valid until the next write:
    /// read answers and their payloads through one [`Index::snapshot`] when writes may run.
    pub fn payload(&self, point: PointRef) -> Result<Payload> {
        self.snapshot().payload(point)
    }

    /// Node `id` as stored.
    pub fn node(&self, id: u64) -> Result<Node> {
        self.snapshot().node(id)
    }

    /// The point with the user's id `id`, if there is one.
    pub fn get(&self, id: &PointId) -> Result<Option<StoredPoint>> {
        self.snapshot().get(id)
    }

    /// Checks a query point: right dimension count, valid for the metric.
    pub fn check_point(&self, p: &[f64]) -> Result<()> {
        check_point(&self.meta(), p)
    }

    /// Walks every node and checks every invariant; see [`verify::verify`].
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with_progress(&NoProgress)
    }

    /// [`Index::verify`], reporting how far it is to `progress`.
    pub fn verify_with_progress(&self, progress: &dyn Progress) -> Result<VerifyReport> {
        let snap = self.snapshot();
        verify::verify(self.store.as_ref(), snap.meta(), progress)
    }

    /// Notes in the directory's lock file what this process offers (`serving http://ADDR`),
    /// for the message another process gets when it is refused the directory.
    pub fn announce(&self, what: &str) {
        if let Some(d) = &self.dir {
            d.announce(what);
        }
    }

    /// Bytes on disk: the directory's files when opened from one, else the store's own figure.
    pub fn size_on_disk(&self) -> Result<u64> {
        match self.path() {
            Some(p) => Ok(dir_size(p)?),
            None => self.store.size_on_disk(),
        }
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<()> {
        let seq = self.meta().sequence;
        self.store.flush()?;
        self.mark_durable(seq);
        Ok(())
    }
}

/// The format version recorded in a store.
pub(crate) fn read_version(store: &dyn Store) -> Result<u32> {
    match store.get(Space::Meta, VERSION_KEY)? {
        Some(v) => codec::decode_version(&v),
        None => Err(Error::Database(
            "not a kdsled index, or its files are damaged: it has no format version record".into(),
        )),
    }
}

fn check_version(version: u32) -> Result<()> {
    use std::cmp::Ordering::*;
    match version.cmp(&FORMAT_VERSION) {
        Equal => Ok(()),
        Less => Err(Error::FormatVersion(format!(
            "the index has format version {version}, this binary reads version {FORMAT_VERSION}: \
             run `kdsled migrate --db DIR` to upgrade it"
        ))),
        Greater => Err(Error::FormatVersion(format!(
            "the index has format version {version}, newer than this binary's \
             {FORMAT_VERSION}: upgrade kdsled to read it"
        ))),
    }
}

pub(crate) fn check_point(meta: &Meta, p: &[f64]) -> Result<()> {
    let dims = meta.dims as usize;
    if p.len() != dims {
        return Err(Error::invalid(
            "point",
            format!("the index has {dims} dimensions, the point {}", p.len()),
        ));
    }
    meta.metric.check_point(p).map_err(|e| {
        let param = match (
            meta.metric,
            e.starts_with("longitude"),
            e.starts_with("latitude"),
        ) {
            (Metric::Haversine, true, _) => "lon",
            (Metric::Haversine, _, true) => "lat",
            _ => "point",
        };
        Error::invalid(param, e)
    })
}

pub(crate) fn check_radius(param: &str, r: f64) -> Result<()> {
    if !r.is_finite() || r < 0.0 {
        return Err(Error::invalid(
            param,
            format!("{r} is not a finite, non-negative distance"),
        ));
    }
    Ok(())
}
