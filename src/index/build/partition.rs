//! The bounded-memory build: split spilled records into partitions that fit the memory budget
//! under a balanced top of sampled median splits, then lay out each partition on its own.
//!
//! A file too large for the budget is read twice: once to draw a uniform sample, once to route
//! every record down the top tree to its partition file. The top tree is the balanced layout of
//! the sample cut a few levels down, so each partition holds a nearly equal share, and its
//! splits become inner nodes. Ids are postorder across the whole tree: a top node's below side,
//! its above side, then the node, so every subtree is a contiguous id range, nodes are written
//! as they are made, and the result is the same shape of tree a single in-memory layout gives,
//! a level or two deeper at most, with one partly filled leaf per partition.

use std::path::{Path, PathBuf};

use super::spill::{self, file_cost, Frame, Items, SpillFile, SpillReader, SpillWriter};
use super::writer::NodeWriter;
use crate::error::Result;
use crate::progress::Progress;
use crate::tree::layout::{layout, Laid};
use crate::tree::node::{Inner, Node};

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
    pub progress: &'a dyn Progress,
    /// Partitions laid out so far.
    pub partitions: u64,
    /// Points a leaf holds.
    pub leaf_size: usize,
    /// The axis leaves are sorted on.
    pub sort_axis: usize,
    /// The next node id to give.
    pub next_id: u64,
    /// Most top levels cut from one file (2^levels partitions).
    max_levels: u32,
    next_file: u64,
}

impl<'a> Partitioner<'a> {
    /// A partitioner writing through `writer`, spilling into `dir`.
    pub(crate) fn new(
        dims: usize,
        leaf_size: usize,
        sort_axis: usize,
        budget: u64,
        dir: &Path,
        writer: &'a mut NodeWriter,
        progress: &'a dyn Progress,
    ) -> Self {
        Partitioner {
            dims,
            budget,
            dir: dir.to_path_buf(),
            writer,
            progress,
            partitions: 0,
            leaf_size,
            sort_axis,
            next_id: 1,
            max_levels: MAX_FANOUT_LEVELS,
            next_file: 0,
        }
    }

    /// Builds the tree of `file`'s records with node ids from [`Partitioner::next_id`],
    /// deleting the file; returns the tree's root, depth and point count.
    pub(crate) fn build_file(&mut self, file: SpillFile) -> Result<Subtree> {
        self.build_file_at(file, 0)
    }

    fn build_file_at(&mut self, file: SpillFile, level: u32) -> Result<Subtree> {
        let cost = file_cost(file.bytes, file.records);
        if cost <= self.budget || level >= MAX_RECURSION {
            let items = spill::load(&file, self.dims)?;
            std::fs::remove_file(&file.path)?;
            self.partitions += 1;
            let t = write_items(
                self.writer,
                &items,
                self.next_id,
                self.leaf_size,
                self.sort_axis,
                self.progress,
            )?;
            self.next_id += t.nodes;
            return Ok(t);
        }
        let share = (self.budget as f64 * TARGET_SHARE).max(1.0);
        let levels = ((cost as f64 / share).log2().ceil() as u32).clamp(1, self.max_levels);
        let top = Top::sample(&file, self.dims, levels)?;
        let routed = self.route(&file, top)?;
        std::fs::remove_file(&file.path)?;
        self.emit(&routed, 0, level)
    }

    /// Sends every record of `file` to its partition.
    fn route(&mut self, file: &SpillFile, mut top: Top) -> Result<Routed> {
        let mut outs = Vec::with_capacity(top.parts);
        for _ in 0..top.parts {
            let path = self.dir.join(format!("part-{:06}", self.next_file));
            self.next_file += 1;
            outs.push(SpillWriter::create(&path)?);
        }
        let mut r = SpillReader::open(&file.path, self.dims)?;
        let mut f = Frame::default();
        while r.next_into(&mut f)? {
            let part = top.route(&f.coords);
            outs[part].write_frame(&f)?;
        }
        let files = outs
            .into_iter()
            .map(SpillWriter::finish)
            .collect::<Result<Vec<_>>>()?;
        Ok(Routed {
            nodes: top.nodes,
            files,
        })
    }

    /// Writes everything under top node `at`, children before parents; returns its subtree.
    fn emit(&mut self, routed: &Routed, at: usize, level: u32) -> Result<Subtree> {
        match &routed.nodes[at] {
            TopNode::Part(p) => {
                let file = routed.files[*p].clone();
                if file.records == 0 {
                    std::fs::remove_file(&file.path)?;
                    return Ok(Subtree::default());
                }
                self.build_file_at(file, level + 1)
            }
            TopNode::Split {
                axis,
                value,
                below,
                above,
            } => {
                let b = self.emit(routed, *below, level)?;
                let a = self.emit(routed, *above, level)?;
                if b.root.is_none() || a.root.is_none() {
                    // One side is empty: the other stands in for the split.
                    return Ok(if b.root.is_some() { b } else { a });
                }
                let id = self.next_id;
                self.next_id += 1;
                let node = Node::Inner(Inner {
                    axis: *axis as u8,
                    split: *value,
                    below: b.root,
                    above: a.root,
                    count: b.count + a.count,
                });
                self.writer.put_inner(id, &node)?;
                Ok(Subtree {
                    root: Some(id),
                    depth: 1 + b.depth.max(a.depth),
                    count: b.count + a.count,
                    nodes: b.nodes + a.nodes + 1,
                })
            }
        }
    }
}

/// A written subtree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Subtree {
    /// Its root, `None` when it holds no point.
    pub root: Option<u64>,
    /// Its levels.
    pub depth: u32,
    /// Its points.
    pub count: u64,
    /// Its nodes.
    pub nodes: u64,
}

/// Lays out `items` in memory in leaves of `leaf_size` and writes them with ids from `base`.
pub(crate) fn write_items(
    writer: &mut NodeWriter,
    items: &Items,
    base: u64,
    leaf_size: usize,
    sort_axis: usize,
    progress: &dyn Progress,
) -> Result<Subtree> {
    let l = layout(&items.coords, items.dims(), leaf_size, sort_axis, base);
    let mut coords = Vec::new();
    for (i, node) in l.nodes.iter().enumerate() {
        let id = base + i as u64;
        match node {
            Laid::Inner(inner) => writer.put_inner(id, &Node::Inner(*inner))?,
            Laid::Leaf(range) => {
                let order = &l.order[range.clone()];
                coords.clear();
                for &p in order {
                    coords.extend_from_slice(items.coords_of(p as usize));
                }
                writer.put_leaf(
                    id,
                    &coords,
                    order
                        .iter()
                        .map(|&p| (items.key(p as usize), items.payload(p as usize))),
                )?;
                progress.advance(order.len() as u64);
            }
        }
    }
    Ok(Subtree {
        root: l.root(base),
        depth: l.depth,
        count: items.len() as u64,
        nodes: l.nodes.len() as u64,
    })
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
    /// Per node, which side the next record equal to its split value goes to, so runs of equal
    /// values split evenly.
    tie_above: Vec<bool>,
    parts: usize,
}

impl Top {
    /// Samples `file` and lays the sample out `levels` deep.
    fn sample(file: &SpillFile, dims: usize, levels: u32) -> Result<Top> {
        let mut rng = SplitMix(file.records ^ 0x6b64_736c_6564);
        let mut coords: Vec<f64> = Vec::with_capacity(SAMPLE * dims);
        let mut r = SpillReader::open(&file.path, dims)?;
        let mut f = Frame::default();
        let mut seen = 0u64;
        // Reservoir sampling: every record is equally likely to be in the sample.
        while r.next_into(&mut f)? {
            if seen < SAMPLE as u64 {
                coords.extend_from_slice(&f.coords);
            } else {
                let j = rng.below(seen + 1) as usize;
                if j < SAMPLE {
                    coords[j * dims..(j + 1) * dims].copy_from_slice(&f.coords);
                }
            }
            seen += 1;
        }
        let l = layout(&coords, dims, 1, 0, 0);
        let mut top = Top {
            nodes: Vec::new(),
            tie_above: Vec::new(),
            parts: 0,
        };
        top.add(&l.nodes, l.root(0), 1, levels);
        top.tie_above = vec![false; top.nodes.len()];
        Ok(top)
    }

    fn add(&mut self, laid: &[Laid], node: Option<u64>, depth: u32, levels: u32) -> usize {
        let at = self.nodes.len();
        match node.map(|id| &laid[id as usize]) {
            Some(Laid::Inner(i)) if depth <= levels => {
                self.nodes.push(TopNode::Part(0));
                let below = self.add(laid, i.below, depth + 1, levels);
                let above = self.add(laid, i.above, depth + 1, levels);
                self.nodes[at] = TopNode::Split {
                    axis: i.axis as usize,
                    value: i.split,
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

/// A file's records after routing: the top and the partition files.
struct Routed {
    nodes: Vec<TopNode>,
    files: Vec<SpillFile>,
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
    use crate::index::Index;
    use crate::progress::NoProgress;
    use crate::store::format::Meta;

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
        let leaf_size = 8;
        // A small id-index budget sends its entries through files too.
        let mut writer = NodeWriter::create(&db, 8, n, 64 * 1024, &spill_dir).expect("writer");
        let mut p = Partitioner::new(
            2,
            leaf_size,
            1,
            16 * 1024,
            &spill_dir,
            &mut writer,
            &NoProgress,
        );
        p.max_levels = 1;
        let t = p.build_file(file).expect("build");
        assert!(p.partitions >= 16, "{} partitions", p.partitions);
        assert_eq!(t.count, n);
        let leaves = n.div_ceil(leaf_size as u64);
        let optimal = (leaves as f64).log2().ceil() as u32 + 1;
        assert!(
            t.depth <= optimal + 3,
            "depth {}, optimal {optimal}",
            t.depth
        );
        // At most one partly filled leaf per partition.
        assert!(t.nodes <= 2 * (leaves + p.partitions), "{} nodes", t.nodes);
        let mut meta = Meta::empty(Metric::Haversine, 2);
        meta.root = t.root;
        meta.count = n;
        meta.next_id = t.root.expect("a root") + 1;
        meta.depth = t.depth;
        meta.max_count = n;
        meta.leaf_size = leaf_size as u32;
        writer.finish(&mut meta).expect("finish");
        let report = Index::from_store(std::sync::Arc::new(
            crate::store::SledStore::open(&db, 8).expect("open"),
        ))
        .expect("index")
        .verify()
        .expect("verify");
        assert_eq!(report.points, n);
        assert_eq!(report.nodes, t.nodes);
        assert_eq!(report.depth, t.depth);
        // Every partition and id file was consumed.
        let left: Vec<_> = std::fs::read_dir(&spill_dir)
            .expect("read")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() != "input")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
