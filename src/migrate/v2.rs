//! The version 2 format (one point per node record), kept for migration, for fixtures that
//! exercise it, and for the side-by-side benchmarks: a writer of version 2 indexes and a
//! reader that counts the points within a radius by walking its nodes from disk.

use std::path::Path;

use crate::error::{Error, Result};
use crate::geometry::{Metric, ReachBox};
use crate::input::Record;
use crate::point::Payload;
use crate::store::codec::{self, LegacyNode, NodeFormat};
use crate::store::format::{Meta, META_KEY, VERSION_KEY};
use crate::store::{IndexDir, SledStore, Space, Store, WriteBatch};
use crate::tree::point_layout::layout;

/// Writes `records` as a new version 2 (or, with `version` 1, version 1) index at `path`,
/// replacing an index there. Node ids are preorder from 1; each node has a payload record and
/// an id-index record of its own, as those versions stored them.
pub fn write(
    path: &Path,
    metric: Metric,
    dims: usize,
    records: &[Record],
    version: u32,
) -> Result<Meta> {
    let format = NodeFormat::for_version(version)?;
    metric.check_dims(dims)?;
    IndexDir::build_new(path, true, |dir| {
        let generation = dir.new_generation()?;
        let store = SledStore::open(generation.path(), 64)?;
        let coords: Vec<f64> = records.iter().flat_map(|r| r.coords.clone()).collect();
        let l = layout(&coords, dims, 1);
        let mut batch = WriteBatch::new();
        for (i, slot) in l.slots.iter().enumerate() {
            let id = i as u64 + 1;
            let r = &records[slot.point as usize];
            let node = LegacyNode {
                axis: slot.axis,
                above: slot.above,
                below: slot.below,
                coords: r.coords.clone(),
            };
            let key = codec::node_key(id);
            batch.put(Space::Nodes, key, codec::encode_legacy_node(format, &node));
            let payload = Payload {
                id: r.id.clone(),
                properties: r.properties.clone(),
            };
            batch.put(Space::Payloads, key, codec::encode_payload(&payload));
            batch.put(Space::Ids, codec::id_key(&r.id), key.to_vec());
            if batch.len() >= 3000 {
                store.apply(&std::mem::take(&mut batch))?;
            }
        }
        let n = records.len() as u64;
        let mut meta = Meta::empty(metric, dims as u8);
        meta.root = (n > 0).then_some(1);
        meta.count = n;
        meta.next_id = n + 1;
        meta.depth = l.depth;
        meta.max_count = n;
        meta.format = version;
        batch.put(Space::Meta, VERSION_KEY, codec::encode_version(version));
        batch.put(Space::Meta, META_KEY, codec::encode_meta_v2(&meta));
        store.apply(&batch)?;
        store.flush()?;
        drop(store);
        dir.install(generation, true)?;
        Ok(meta)
    })
}

/// A read-only version 2 index, for the side-by-side benchmarks.
pub struct V2Index {
    store: SledStore,
    meta: Meta,
}

impl V2Index {
    /// Opens the version 2 index at `path` with `cache_mb` MiB of sled page cache.
    pub fn open(path: &Path, cache_mb: u64) -> Result<V2Index> {
        let Some(sled_dir) = crate::store::directory::current_sled_dir(path)? else {
            return Err(Error::Database(format!("no index at {}", path.display())));
        };
        let store = SledStore::open(&sled_dir, cache_mb)?;
        let version = crate::index::read_version(&store)?;
        if version != 2 {
            return Err(Error::FormatVersion(format!(
                "{} has format version {version}, not 2",
                path.display()
            )));
        }
        let meta = store
            .get(Space::Meta, META_KEY)?
            .map(|m| codec::decode_meta_v2(&m, 2))
            .transpose()?
            .ok_or_else(|| Error::Corrupt("the meta record is missing".into()))?;
        Ok(V2Index { store, meta })
    }

    /// The meta record.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.store.size_on_disk()
    }

    /// The points within `radius` of `center`, and the node records read: one get per node
    /// visited, pruned by the box around the circle, as format 2 walks did without a cache.
    pub fn count_within(&self, center: &[f64], radius: f64) -> Result<(u64, u64)> {
        let dims = self.meta.dims as usize;
        let metric = self.meta.metric;
        let reach = ReachBox::new(metric, center, radius + metric.slack(radius));
        let origin = metric.origin(center);
        let (mut count, mut reads) = (0u64, 0u64);
        let mut stack: Vec<u64> = self.meta.root.into_iter().collect();
        while let Some(id) = stack.pop() {
            let bytes = self
                .store
                .get(Space::Nodes, &codec::node_key(id))?
                .ok_or_else(|| Error::Corrupt(format!("node {id} has no record")))?;
            reads += 1;
            let n = codec::decode_legacy_node(NodeFormat::V2, id, &bytes, dims)?;
            if reach.contains(&n.coords) && origin.distance(&n.coords) <= radius {
                count += 1;
            }
            let (axis, split) = (n.axis as usize, n.coords[n.axis as usize]);
            if let (Some(a), true) = (n.above, reach.reaches_above(axis, split)) {
                stack.push(a);
            }
            if let (Some(b), true) = (n.below, reach.reaches_below(axis, split)) {
                stack.push(b);
            }
        }
        Ok((count, reads))
    }
}
