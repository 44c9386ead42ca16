//! The bounded-memory build: split spilled records into partitions that fit the memory budget
//! under a balanced top of sampled median splits, then lay out each partition on its own.
//!
//! A file too large for the budget is read twice: once to draw a uniform sample, once to route
//! every record down the top tree to its partition file. The top tree is the balanced layout of
//! the sample cut a few levels down, so its split nodes are real records (found again by their
//! position in the file) and each partition holds a nearly equal share. Ids are preorder across
//! the whole tree: a top node, then its below side, then its above side, so every partition is a
//! contiguous id range and the result is the same shape of tree a single in-memory layout gives,
//! a level or two deeper at most.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::spill::{self, file_cost, Frame, Items, SpillFile, SpillReader, SpillWriter};
use super::writer::NodeWriter;
use super::BuildProgress;
use crate::error::Result;
use crate::tree::build::layout;
use crate::tree::Node;

/// Records sampled to choose the top splits.
const SAMPLE: usize = 64 * 1024;

/// Most partitions one file is split into at once (open files); larger inputs recurse.
const MAX_FANOUT_LEVELS: u32 = 8;

/// Partitions are aimed at this share of the budget, leaving room for sampling error.
const TARGET_SHARE: f64 = 0.6;

/// Recursion depth after which a file is laid out in memory whatever its size: only reachable
/// if splitting stops shrinking files, which median splits with alternating ties do not.
const MAX_RECURSION: u32 = 12;

/// What the partitioned build shares across its recursion.
pub(crate) struct Partitioner<'a> {
    /// Coordinates per record.
    pub dims: usize,
    /// Memory the records of one in-memory layout may take, bytes.
    pub budget: u64,
    /// Where partition files go.
    pub dir: PathBuf,
    /// The database being written.
    pub writer: &'a mut NodeWriter,
    /// Progress display.
    pub progress: &'a dyn BuildProgress,
    /// Partitions laid out so far.
    pub partitions: u64,
    /// Most top levels cut from one file (2^levels partitions).
    max_levels: u32,
    next_file: u64,
}

impl<'a> Partitioner<'a> {
    /// A partitioner writing through `writer`, spilling into `dir`.
    pub(crate) fn new(
        dims: usize,
        budget: u64,
        dir: &Path,
        writer: &'a mut NodeWriter,
        progress: &'a dyn BuildProgress,
    ) -> Self {
        Partitioner {
            dims,
            budget,
            dir: dir.to_path_buf(),
            writer,
            progress,
            partitions: 0,
            max_levels: MAX_FANOUT_LEVELS,
            next_file: 0,
        }
    }

    /// Builds the tree of `file`'s records with node ids from `base`, deleting the file;
    /// returns the tree's depth.
    pub(crate) fn build_file(&mut self, file: SpillFile, base: u64) -> Result<u32> {
        self.build_file_at(file, base, 0)
    }

    fn build_file_at(&mut self, file: SpillFile, base: u64, level: u32) -> Result<u32> {
        let cost = file_cost(file.bytes, file.records);
        if cost <= self.budget || level >= MAX_RECURSION {
            let items = spill::load(&file, self.dims)?;
            std::fs::remove_file(&file.path)?;
            self.partitions += 1;
            return write_items(self.writer, &items, base, self.progress);
        }
        let share = (self.budget as f64 * TARGET_SHARE).max(1.0);
        let levels = ((cost as f64 / share).log2().ceil() as u32).clamp(1, self.max_levels);
        let top = Top::sample(&file, self.dims, levels)?;
        let routed = self.route(&file, top)?;
        std::fs::remove_file(&file.path)?;
        self.emit(&routed, 0, base, level)
    }

    /// Sends every record of `file` to its partition; the top's own records are kept aside.
    fn route(&mut self, file: &SpillFile, mut top: Top) -> Result<Routed> {
        let mut outs = Vec::with_capacity(top.parts);
        for _ in 0..top.parts {
            let path = self.dir.join(format!("part-{:06}", self.next_file));
            self.next_file += 1;
            outs.push(SpillWriter::create(&path)?);
        }
        let mut held: Vec<Option<Frame>> = vec![None; top.nodes.len()];
        let mut r = SpillReader::open(&file.path, self.dims)?;
        let mut f = Frame::default();
        let mut ordinal = 0u64;
        while r.next_into(&mut f)? {
            if let Some(&at) = top.by_ordinal.get(&ordinal) {
                held[at] = Some(std::mem::take(&mut f));
            } else {
                let part = top.route(&f.coords);
                outs[part].write_frame(&f)?;
            }
            ordinal += 1;
        }
        let files = outs
            .into_iter()
            .map(SpillWriter::finish)
            .collect::<Result<Vec<_>>>()?;
        Ok(Routed {
            nodes: top.nodes,
            held,
            files,
        })
    }

    /// Writes top node `at` and everything under it with ids from `base`; returns the depth.
    fn emit(&mut self, routed: &Routed, at: usize, base: u64, level: u32) -> Result<u32> {
        match &routed.nodes[at] {
            TopNode::Part(p) => {
                let file = routed.files[*p].clone();
                if file.records == 0 {
                    std::fs::remove_file(&file.path)?;
                    return Ok(0);
                }
                self.build_file_at(file, base, level + 1)
            }
            TopNode::Split {
                axis, below, above, ..
            } => {
                let below_size = routed.size(*below);
                let above_size = routed.size(*above);
                let frame = routed.held[at]
                    .as_ref()
                    .expect("every split node's record is in the file it was sampled from");
                let node = Node {
                    axis: *axis as u8,
                    below: (below_size > 0).then_some(base + 1),
                    above: (above_size > 0).then_some(base + 1 + below_size),
                    coords: frame.coords.clone(),
                };
                self.writer.put(base, &node, &frame.payload, &frame.key)?;
                self.progress.advance(1);
                let d_below = self.emit(routed, *below, base + 1, level)?;
                let d_above = self.emit(routed, *above, base + 1 + below_size, level)?;
                Ok(1 + d_below.max(d_above))
            }
        }
    }
}

/// Lays out `items` in memory and writes them with ids from `base`; returns the depth.
pub(crate) fn write_items(
    writer: &mut NodeWriter,
    items: &Items,
    base: u64,
    progress: &dyn BuildProgress,
) -> Result<u32> {
    let l = layout(&items.coords, items.dims(), base);
    for (i, slot) in l.slots.iter().enumerate() {
        let p = slot.point as usize;
        let node = Node {
            axis: slot.axis,
            above: slot.above,
            below: slot.below,
            coords: items.coords_of(p).to_vec(),
        };
        writer.put(base + i as u64, &node, items.payload(p), items.key(p))?;
        if i % 1024 == 1023 {
            progress.advance(1024);
        }
    }
    progress.advance(l.slots.len() as u64 % 1024);
    Ok(l.depth)
}

/// A node of the top tree: a split on a sampled record, or a partition.
#[derive(Debug, Clone)]
enum TopNode {
    Split {
        axis: usize,
        value: f64,
        below: usize,
        above: usize,
    },
    Part(usize),
}

/// The top splits of one file.
struct Top {
    nodes: Vec<TopNode>,
    by_ordinal: HashMap<u64, usize>,
    /// Per node, which side the next record equal to its split value goes to, so runs of equal
    /// values split evenly.
    tie_above: Vec<bool>,
    parts: usize,
}

impl Top {
    /// Samples `file` and lays the sample out `levels` deep.
    fn sample(file: &SpillFile, dims: usize, levels: u32) -> Result<Top> {
        let mut rng = SplitMix(file.records ^ 0x6b64_736c_6564);
        let mut ordinals: Vec<u64> = Vec::with_capacity(SAMPLE);
        let mut coords: Vec<f64> = Vec::with_capacity(SAMPLE * dims);
        let mut r = SpillReader::open(&file.path, dims)?;
        let mut f = Frame::default();
        let mut seen = 0u64;
        // Reservoir sampling: every record is equally likely to be in the sample.
        while r.next_into(&mut f)? {
            if ordinals.len() < SAMPLE {
                ordinals.push(seen);
                coords.extend_from_slice(&f.coords);
            } else {
                let j = rng.below(seen + 1) as usize;
                if j < SAMPLE {
                    ordinals[j] = seen;
                    coords[j * dims..(j + 1) * dims].copy_from_slice(&f.coords);
                }
            }
            seen += 1;
        }
        let l = layout(&coords, dims, 0);
        let mut top = Top {
            nodes: Vec::new(),
            by_ordinal: HashMap::new(),
            tie_above: Vec::new(),
            parts: 0,
        };
        let root = l.slots.first().map(|_| 0u64);
        top.add(&l.slots, root, 1, levels, &ordinals, &coords, dims);
        top.tie_above = vec![false; top.nodes.len()];
        Ok(top)
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        slots: &[crate::tree::build::Slot],
        slot: Option<u64>,
        depth: u32,
        levels: u32,
        ordinals: &[u64],
        coords: &[f64],
        dims: usize,
    ) -> usize {
        let at = self.nodes.len();
        match slot {
            Some(id) if depth <= levels => {
                let s = slots[id as usize];
                let p = s.point as usize;
                let axis = s.axis as usize;
                self.nodes.push(TopNode::Part(0));
                self.by_ordinal.insert(ordinals[p], at);
                let below = self.add(slots, s.below, depth + 1, levels, ordinals, coords, dims);
                let above = self.add(slots, s.above, depth + 1, levels, ordinals, coords, dims);
                self.nodes[at] = TopNode::Split {
                    axis,
                    value: coords[p * dims + axis],
                    below,
                    above,
                };
            }
            _ => {
                self.nodes.push(TopNode::Part(self.parts));
                self.parts += 1;
            }
        }
        at
    }

    /// The partition a record at `coords` belongs to.
    fn route(&mut self, coords: &[f64]) -> usize {
        let mut at = 0;
        loop {
            match &self.nodes[at] {
                TopNode::Part(p) => return *p,
                TopNode::Split {
                    axis,
                    value,
                    below,
                    above,
                    ..
                } => {
                    let c = coords[*axis];
                    let go_above = if c == *value {
                        let t = self.tie_above[at];
                        self.tie_above[at] = !t;
                        t
                    } else {
                        c > *value
                    };
                    at = if go_above { *above } else { *below };
                }
            }
        }
    }
}

/// A file's records after routing: the top, its own records, and the partition files.
struct Routed {
    nodes: Vec<TopNode>,
    held: Vec<Option<Frame>>,
    files: Vec<SpillFile>,
}

impl Routed {
    /// Records in the subtree under top node `at`.
    fn size(&self, at: usize) -> u64 {
        match &self.nodes[at] {
            TopNode::Part(p) => self.files[*p].records,
            TopNode::Split { below, above, .. } => 1 + self.size(*below) + self.size(*above),
        }
    }
}

/// A small deterministic generator for sampling (splitmix64): builds are reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), up to a negligible bias.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Metric;
    use crate::index::build::NoProgress;
    use crate::index::Index;
    use crate::store::format::{Meta, FORMAT_VERSION};

    /// A fan-out of two per file forces files to be split again and again, the path huge inputs
    /// take; the tree must still be one valid, balanced k-d tree.
    #[test]
    fn files_too_large_for_one_split_are_split_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spill_dir = dir.path().join("spill");
        std::fs::create_dir_all(&spill_dir).expect("mkdir");
        let n = 5_000u64;
        let mut w = SpillWriter::create(&spill_dir.join("input")).expect("spill");
        let mut s = 1u64;
        for i in 0..n {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            let lon = (s >> 11) as f64 / (1u64 << 53) as f64 * 360.0 - 180.0;
            let lat = (i % 181) as f64 - 90.0;
            let id = crate::point::PointId::Int(i as i64);
            let payload = crate::store::codec::encode_payload(&crate::point::Payload {
                id: id.clone(),
                properties: Vec::new(),
            });
            let key = crate::store::codec::id_key(&id);
            w.write(i + 1, &[lon, lat], &key, &payload).expect("write");
        }
        let file = w.finish().expect("finish");
        let db = dir.path().join("db");
        let mut writer = NodeWriter::create(&db, 8, FORMAT_VERSION).expect("writer");
        let mut p = Partitioner::new(2, 16 * 1024, &spill_dir, &mut writer, &NoProgress);
        p.max_levels = 1;
        let depth = p.build_file(file, 1).expect("build");
        assert!(p.partitions >= 16, "{} partitions", p.partitions);
        let optimal = (n as f64 + 1.0).log2().ceil() as u32;
        assert!(depth <= optimal + 3, "depth {depth}, optimal {optimal}");
        let mut meta = Meta::empty(Metric::Haversine, 2);
        meta.root = Some(1);
        meta.count = n;
        meta.next_id = n + 1;
        meta.depth = depth;
        meta.max_count = n;
        writer.finish(&meta).expect("finish");
        let report = Index::open(&db, 8).expect("open").verify().expect("verify");
        assert_eq!(report.nodes, n);
        assert_eq!(report.depth, depth);
        // Every partition file was consumed.
        let left: Vec<_> = std::fs::read_dir(&spill_dir).expect("read").collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
