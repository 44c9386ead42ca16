//! Lazy node reads, through the node cache when there is one, counted.

use std::borrow::Cow;

use super::cache::{CacheView, NodeCache};
use super::node::{Node, NodeRef};
use crate::error::{Error, Result};
use crate::store::codec;
use crate::store::{Space, Store};

/// Reads nodes one at a time as a walk asks for them, and counts visits and storage reads.
///
/// With a cache, the reader holds the cache's read lock from creation to drop; nodes it had to
/// read from storage at cached depths are offered to the cache when it is dropped.
pub struct TreeReader<'a> {
    store: &'a dyn Store,
    cache: Option<&'a NodeCache>,
    view: Option<CacheView<'a>>,
    dims: usize,
    reads: u64,
    visits: u64,
    /// Visits at depths the cache covers.
    covered: u64,
    /// Nodes read from storage at depths the cache covers.
    fill: Vec<(u64, Node)>,
    /// Nodes of one id range read by [`TreeReader::prefetch`]: `window[i]` is node
    /// `window_lo + i`, `None` where the range holds no record.
    window: Vec<Option<Node>>,
    window_lo: u64,
    /// Visits left when the reader may answer from the cache alone (see
    /// [`TreeReader::cached_only`]); `None` when it may read storage.
    cached_only: Option<u64>,
}

impl<'a> TreeReader<'a> {
    /// A reader over `store` for an index of `dims` dimensions, without a cache.
    pub fn new(store: &'a dyn Store, dims: usize) -> Self {
        Self::with_cache(store, None, dims)
    }

    /// A reader that consults and fills `cache`.
    pub fn with_cache(store: &'a dyn Store, cache: Option<&'a NodeCache>, dims: usize) -> Self {
        TreeReader {
            store,
            cache,
            view: cache.map(NodeCache::view),
            dims,
            reads: 0,
            visits: 0,
            covered: 0,
            fill: Vec::new(),
            window: Vec::new(),
            window_lo: 0,
            cached_only: None,
        }
    }

    /// Makes every storage read, and every visit past the first `visits`, fail with
    /// [`Error::NotCached`]: for walks run where waiting on a disk is not allowed.
    pub fn cached_only(mut self, visits: u64) -> Self {
        self.cached_only = Some(visits);
        self
    }

    /// Whether the cache holds nodes at `depth`, so reading them ahead is pointless.
    #[inline]
    pub fn cached_depth(&self, depth: u32) -> bool {
        self.cache.is_some_and(|c| c.covers(depth))
    }

    /// Whether node `id` is in the range last read ahead.
    #[inline]
    pub fn prefetched(&self, id: u64) -> bool {
        id >= self.window_lo && id - self.window_lo < self.window.len() as u64
    }

    /// Reads the node records with ids in `lo..hi` with one range scan, replacing the last range
    /// read. A subtree of a bulk-built tree is such a range (ids are postorder), and one scan
    /// costs about what two or three single gets do, so a walk about to visit all of a small
    /// subtree reads it this way. Ids outside the range, or missing from it after writes
    /// reshaped the tree, are still read one at a time.
    pub fn prefetch(&mut self, lo: u64, hi: u64) -> Result<()> {
        if self.cached_only.is_some() {
            return Err(Error::NotCached);
        }
        self.window.clear();
        self.window
            .resize_with(hi.saturating_sub(lo) as usize, || None);
        self.window_lo = lo;
        let range = self
            .store
            .scan_range(Space::Nodes, &codec::node_key(lo), &codec::node_key(hi));
        for r in range {
            let (k, v) = r?;
            let id = codec::node_id_from_key(&k)?;
            let Some(slot) = id
                .checked_sub(lo)
                .and_then(|i| self.window.get_mut(i as usize))
            else {
                continue;
            };
            self.reads += 1;
            *slot = Some(codec::decode_node(id, &v, self.dims)?);
        }
        Ok(())
    }

    /// Node `id` at `depth` (root = 1). A missing node is corruption: something pointed at it.
    #[inline(always)]
    pub fn node_at(&mut self, id: u64, depth: u32) -> Result<NodeRef<'_>> {
        self.visits += 1;
        if let Some(left) = &mut self.cached_only {
            *left = left.checked_sub(1).ok_or(Error::NotCached)?;
        }
        let covered = self.cache.is_some_and(|c| c.covers(depth));
        if covered {
            self.covered += 1;
            if let Some(n) = self.view.as_ref().and_then(|v| v.get(id)) {
                return Ok(n);
            }
        }
        if id >= self.window_lo {
            if let Some(Some(n)) = self.window.get((id - self.window_lo) as usize) {
                return Ok(match n {
                    Node::Inner(i) => NodeRef::Inner(*i),
                    Node::Leaf { coords } => NodeRef::Leaf(Cow::Borrowed(coords)),
                });
            }
        }
        if self.cached_only.is_some() {
            return Err(Error::NotCached);
        }
        self.reads += 1;
        let n = read(self.store, self.dims, id)?;
        if covered {
            self.fill.push((id, n.clone()));
        }
        Ok(n.into())
    }

    /// Reads and decodes node `id` from storage, bypassing any cache.
    pub fn node(&mut self, id: u64) -> Result<Node> {
        self.visits += 1;
        self.reads += 1;
        read(self.store, self.dims, id)
    }

    /// Nodes read from storage so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Nodes visited so far (from the cache or storage).
    pub fn visits(&self) -> u64 {
        self.visits
    }
}

impl Drop for TreeReader<'_> {
    fn drop(&mut self) {
        // Let go of the read lock first: the cache takes its write lock to add what was read.
        self.view = None;
        if let Some(c) = self.cache {
            let misses = self.fill.len() as u64;
            c.record(self.covered - misses, misses);
            c.offer(&self.fill);
        }
    }
}

/// Reads and decodes node `id`.
pub fn read(store: &dyn Store, dims: usize, id: u64) -> Result<Node> {
    match store.get(Space::Nodes, &codec::node_key(id))? {
        Some(bytes) => codec::decode_node(id, &bytes, dims),
        None => Err(Error::Corrupt(format!(
            "node {id} is referenced but has no record"
        ))),
    }
}
