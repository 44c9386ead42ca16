//! Writing a new tree's records into a fresh sled database in small batches: nodes and leaf
//! payload records as the layout produces them, and the id index, grouped into its buckets in
//! bounded memory, at the end.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::point::{Payload, PointId};
use crate::store::codec;
use crate::store::format::{Meta, FORMAT_VERSION, META_KEY, VERSION_KEY};
use crate::store::{SledStore, Space, Store, WriteBatch};
use crate::tree::Node;

/// Records per sled batch. sled's memory grows with batch size: 10,000-record batches peaked at
/// 3.3 GB RSS for a million records here, 1,000-record batches at a few hundred MB.
pub(crate) const BATCH_RECORDS: usize = 1000;

/// Records written between closing and reopening the database: sled's memory creeps with the
/// records written through one handle, and a flush, close and reopen every 250k records held
/// it flat here.
const REOPEN_EVERY: u64 = 250_000;

/// Bytes an id-index entry costs while it waits to be grouped, besides its key.
const ID_ENTRY_COST: u64 = 16 + 24 + 16;

/// Writes node, leaf payload and id records in batches, keeping sled's memory flat.
pub(crate) struct NodeWriter {
    path: PathBuf,
    cache_mb: u64,
    store: Option<SledStore>,
    /// One batch per space: a single-tree sled batch is atomic on its own and far cheaper than
    /// a transaction across trees, which a build (installed only once complete) does not need.
    batches: [WriteBatch; 3],
    records: u64,
    points: u64,
    ids: IdSink,
    /// The id index's size, fixed by the point count the build was told.
    buckets: u64,
}

impl NodeWriter {
    /// A writer into a new database at `path` for a tree of `points` points; id-index entries
    /// beyond `memory` bytes wait in files under `scratch`.
    pub(crate) fn create(
        path: &Path,
        cache_mb: u64,
        points: u64,
        memory: u64,
        scratch: &Path,
    ) -> Result<NodeWriter> {
        let buckets = Meta::buckets_for(points);
        Ok(NodeWriter {
            path: path.to_path_buf(),
            cache_mb,
            store: Some(SledStore::open(path, cache_mb)?),
            batches: Default::default(),
            records: 0,
            points: 0,
            ids: IdSink::new(points, buckets, memory, scratch)?,
            buckets,
        })
    }

    /// Queues inner node `id`.
    pub(crate) fn put_inner(&mut self, id: u64, node: &Node) -> Result<()> {
        self.batches[0].put(Space::Nodes, codec::node_key(id), codec::encode_node(node));
        self.queued()
    }

    /// Queues leaf `id` holding `coords` (flat) and, in the same order, the points' id keys and
    /// encoded payloads.
    pub(crate) fn put_leaf<'p>(
        &mut self,
        id: u64,
        coords: &[f64],
        points: impl Iterator<Item = (&'p [u8], &'p [u8])>,
    ) -> Result<()> {
        let mut payloads = Vec::new();
        for (i, (key, payload)) in points.enumerate() {
            let p: Payload = codec::decode_payload(i as u64, payload)?;
            let point = codec::id_from_key(key)?;
            self.ids.add(
                codec::bucket_of(codec::id_hash(&point), self.buckets),
                id,
                key,
            )?;
            payloads.push(p);
        }
        self.points += payloads.len() as u64;
        self.batches[0].put(
            Space::Nodes,
            codec::node_key(id),
            codec::encode_leaf(coords),
        );
        for (i, chunk) in codec::encode_leaf_payload_chunks(&payloads)
            .into_iter()
            .enumerate()
        {
            self.batches[1].put(Space::Payloads, codec::payload_key(id, i as u16), chunk);
        }
        self.queued()
    }

    fn queued(&mut self) -> Result<()> {
        self.records += 1;
        if self.batches.iter().any(|b| b.len() >= BATCH_RECORDS) {
            self.apply()?;
            if self.records >= REOPEN_EVERY {
                self.records = 0;
                self.reopen()?;
            }
        }
        Ok(())
    }

    /// Points queued or written so far.
    pub(crate) fn written(&self) -> u64 {
        self.points
    }

    fn store(&self) -> Result<&SledStore> {
        self.store
            .as_ref()
            .ok_or_else(|| Error::Database("the build's database failed to reopen".into()))
    }

    fn apply(&mut self) -> Result<()> {
        for i in 0..self.batches.len() {
            if !self.batches[i].is_empty() {
                let b = std::mem::take(&mut self.batches[i]);
                self.store()?.apply(&b)?;
            }
        }
        Ok(())
    }

    fn reopen(&mut self) -> Result<()> {
        self.store()?.flush()?;
        drop(self.store.take());
        self.store = Some(SledStore::open(&self.path, self.cache_mb)?);
        Ok(())
    }

    /// Writes what is queued, the id index, then the format version and `meta` (whose
    /// `id_buckets` it sets), and flushes.
    pub(crate) fn finish(mut self, meta: &mut Meta) -> Result<()> {
        self.apply()?;
        let ids = std::mem::replace(&mut self.ids, IdSink::empty());
        ids.write(&mut |b, bytes| {
            self.batches[2].put(Space::Ids, codec::bucket_key(b), bytes);
            self.queued()
        })?;
        self.apply()?;
        meta.id_buckets = self.buckets;
        let mut batch = WriteBatch::new();
        batch.put(
            Space::Meta,
            VERSION_KEY,
            codec::encode_version(FORMAT_VERSION),
        );
        batch.put(Space::Meta, META_KEY, codec::encode_meta(meta));
        self.store()?.apply(&batch)?;
        self.store()?.flush()?;
        Ok(())
    }
}

/// Id-index entries (bucket, leaf, id key) waiting to be grouped by bucket: in memory while
/// they fit, else in files that each cover a range of buckets and fit in memory on their own.
struct IdSink {
    /// Buckets per file (all of them when held in memory).
    per_file: u64,
    held: Vec<(u64, u64, Vec<u8>)>,
    files: Vec<(PathBuf, BufWriter<File>)>,
}

impl IdSink {
    fn empty() -> IdSink {
        IdSink {
            per_file: 1,
            held: Vec::new(),
            files: Vec::new(),
        }
    }

    fn new(points: u64, buckets: u64, memory: u64, scratch: &Path) -> Result<IdSink> {
        // Ids average well under 32 bytes of key; a file is sized to load in half the budget.
        let need = points.saturating_mul(ID_ENTRY_COST + 32);
        let parts = need.div_ceil((memory / 2).max(1)).clamp(1, 4096);
        let mut files = Vec::new();
        if parts > 1 {
            std::fs::create_dir_all(scratch)?;
            for i in 0..parts {
                let path = scratch.join(format!("ids-{i:05}"));
                files.push((path.clone(), BufWriter::new(File::create(&path)?)));
            }
        }
        Ok(IdSink {
            per_file: buckets.div_ceil(parts),
            held: Vec::new(),
            files,
        })
    }

    fn add(&mut self, bucket: u64, leaf: u64, key: &[u8]) -> Result<()> {
        if self.files.is_empty() {
            self.held.push((bucket, leaf, key.to_vec()));
            return Ok(());
        }
        let f = &mut self.files[(bucket / self.per_file) as usize].1;
        f.write_all(&bucket.to_le_bytes())?;
        f.write_all(&leaf.to_le_bytes())?;
        f.write_all(&(key.len() as u32).to_le_bytes())?;
        f.write_all(key)?;
        Ok(())
    }

    /// Hands every bucket's encoded record to `put`, in bucket order, and removes the files.
    fn write(self, put: &mut dyn FnMut(u64, Vec<u8>) -> Result<()>) -> Result<()> {
        if self.files.is_empty() {
            return write_grouped(self.held, put);
        }
        for (path, w) in self.files {
            let file = w.into_inner().map_err(|e| Error::Io(e.into_error()))?;
            file.sync_data().ok();
            drop(file);
            let mut entries = Vec::new();
            let mut r = BufReader::new(File::open(&path)?);
            let mut head = [0u8; 20];
            loop {
                match r.read_exact(&mut head) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e.into()),
                }
                let u = |at: usize| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&head[at..at + 8]);
                    u64::from_le_bytes(a)
                };
                let len = u32::from_le_bytes([head[16], head[17], head[18], head[19]]) as usize;
                let mut key = vec![0u8; len];
                r.read_exact(&mut key)?;
                entries.push((u(0), u(8), key));
            }
            std::fs::remove_file(&path)?;
            write_grouped(entries, put)?;
        }
        Ok(())
    }
}

/// Sorts entries by bucket and hands each bucket's record to `put`.
fn write_grouped(
    mut entries: Vec<(u64, u64, Vec<u8>)>,
    put: &mut dyn FnMut(u64, Vec<u8>) -> Result<()>,
) -> Result<()> {
    entries.sort_unstable_by_key(|e| e.0);
    let mut at = 0;
    while at < entries.len() {
        let b = entries[at].0;
        let end = at + entries[at..].iter().take_while(|e| e.0 == b).count();
        let group = entries[at..end]
            .iter()
            .map(|(_, leaf, key)| Ok((codec::id_from_key(key)?, *leaf)))
            .collect::<Result<Vec<(PointId, u64)>>>()?;
        put(b, codec::encode_id_bucket(&group))?;
        at = end;
    }
    Ok(())
}
