//! Loading flat node files: validate, join the partitions' trees under a balanced top, write.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::flat::FlatNode;
use crate::error::{Error, Result};
use crate::geometry::{Metric, Region, MAX_DIMS};
use crate::index::build::NodeWriter;
use crate::point::Payload;
use crate::store::codec;
use crate::store::format::{Meta, FORMAT_VERSION};
use crate::store::IndexDir;
use crate::tree::build::layout;
use crate::tree::Node;

/// What an import loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// Points loaded.
    pub points: u64,
    /// Partitions (roots) joined.
    pub partitions: u64,
    /// Levels in the joined tree.
    pub depth: u32,
}

/// The files of a path: the file itself, or a directory's regular files in name order
/// (skipping `_SUCCESS`, `.crc` and hidden files, as Hadoop and Spark write them).
fn files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                p.is_file() && !n.starts_with('.') && !n.starts_with('_') && !n.ends_with(".crc")
            })
            .collect();
        v.sort();
        Ok(v)
    } else if path.is_file() {
        Ok(vec![path.to_path_buf()])
    } else {
        Err(Error::InputFile {
            path: path.to_path_buf(),
            reason: "no such file or directory".into(),
        })
    }
}

fn read(path: &Path, roots: bool, out: &mut Vec<FlatNode>) -> Result<()> {
    for f in files(path)? {
        let rdr = std::io::BufReader::new(std::fs::File::open(&f)?);
        for (i, line) in rdr.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{}:{}", f.display(), i + 1);
            let n = FlatNode::parse(&line, &at)?;
            if n.is_root != roots {
                return Err(Error::InputFile {
                    path: at.into(),
                    reason: format!(
                        "node {} has is_root {} in the {} input",
                        n.id,
                        n.is_root as u8,
                        if roots { "roots" } else { "branches" }
                    ),
                });
            }
            out.push(n);
        }
    }
    Ok(())
}

/// The nodes being joined, by internal id (index + 1).
struct Forest {
    nodes: Vec<Node>,
    dims: usize,
}

impl Forest {
    fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }
    fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    /// Relinks `ids` as a balanced subtree; returns its root.
    fn relink(&mut self, ids: &[u64]) -> Option<u64> {
        let coords: Vec<f64> = ids
            .iter()
            .flat_map(|id| self.node(*id).coords.clone())
            .collect();
        let l = layout(&coords, self.dims, 0);
        let id_of = |slot: u64| ids[l.slots[slot as usize].point as usize];
        for s in &l.slots {
            let id = ids[s.point as usize];
            let (below, above) = (s.below.map(id_of), s.above.map(id_of));
            let n = self.node_mut(id);
            n.axis = s.axis;
            n.below = below;
            n.above = above;
        }
        l.slots.first().map(|_| id_of(0))
    }

    fn subtree(&self, root: Option<u64>) -> Vec<u64> {
        let mut out = Vec::new();
        let mut stack: Vec<u64> = root.into_iter().collect();
        while let Some(id) = stack.pop() {
            let n = self.node(id);
            stack.extend(n.below);
            stack.extend(n.above);
            out.push(id);
        }
        out
    }

    /// Takes the point with the largest coordinate on `axis` out of a block's tree, keeping
    /// the rest of the block a valid k-d tree.
    fn extract_max(&mut self, block: &mut Block, axis: usize) -> u64 {
        let mut best: Option<(u64, Option<(u64, bool)>)> = None;
        let mut stack: Vec<(u64, Option<(u64, bool)>)> =
            block.root.map(|r| (r, None)).into_iter().collect();
        while let Some((id, parent)) = stack.pop() {
            let n = self.node(id);
            if best.is_none_or(|(b, _)| n.coords[axis] > self.node(b).coords[axis]) {
                best = Some((id, parent));
            }
            if let Some(a) = n.above {
                stack.push((a, Some((id, true))));
            }
            // Below a split on this axis nothing exceeds the split.
            if n.axis as usize != axis {
                if let Some(b) = n.below {
                    stack.push((b, Some((id, false))));
                }
            }
        }
        let (id, parent) = best.expect("blocks are never empty");
        let n = self.node(id).clone();
        let mut rest = self.subtree(n.below);
        rest.extend(self.subtree(n.above));
        let sub = self.relink(&rest);
        match parent {
            None => block.root = sub,
            Some((p, true)) => self.node_mut(p).above = sub,
            Some((p, false)) => self.node_mut(p).below = sub,
        }
        block.size -= 1;
        id
    }

    /// Joins blocks under a balanced top of split points taken from the blocks themselves.
    fn join(&mut self, mut blocks: Vec<Block>) -> Result<Option<u64>> {
        blocks.retain(|b| b.size > 0);
        match blocks.len() {
            0 => return Ok(None),
            1 => return Ok(blocks[0].root),
            _ => {}
        }
        let dims = self.dims;
        let spread = |a: usize| {
            let lo = blocks.iter().map(|b| b.lo[a]).fold(f64::INFINITY, f64::min);
            let hi = blocks
                .iter()
                .map(|b| b.hi[a])
                .fold(f64::NEG_INFINITY, f64::max);
            hi - lo
        };
        let mut axes: Vec<usize> = (0..dims).collect();
        axes.sort_by(|a, b| spread(*b).total_cmp(&spread(*a)));
        let total: usize = blocks.iter().map(|b| b.size).sum();
        for axis in axes {
            blocks.sort_by(|a, b| (a.lo[axis] + a.hi[axis]).total_cmp(&(b.lo[axis] + b.hi[axis])));
            let mut best: Option<(usize, usize)> = None;
            let mut below_max = f64::NEG_INFINITY;
            let mut below_size = 0;
            for k in 1..blocks.len() {
                below_max = below_max.max(blocks[k - 1].hi[axis]);
                below_size += blocks[k - 1].size;
                let above_min = blocks[k..]
                    .iter()
                    .map(|b| b.lo[axis])
                    .fold(f64::INFINITY, f64::min);
                if below_max <= above_min {
                    let imbalance = below_size.abs_diff(total - below_size);
                    if best.is_none_or(|(_, i)| imbalance < i) {
                        best = Some((k, imbalance));
                    }
                }
            }
            let Some((k, _)) = best else { continue };
            let mut above = blocks.split_off(k);
            let mut below = blocks;
            let at = below
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.hi[axis].total_cmp(&y.1.hi[axis]))
                .map(|(i, _)| i)
                .expect("below is not empty");
            let top = self.extract_max(&mut below[at], axis);
            let b = self.join(std::mem::take(&mut below))?;
            let a = self.join(std::mem::take(&mut above))?;
            let n = self.node_mut(top);
            n.axis = axis as u8;
            n.below = b;
            n.above = a;
            return Ok(Some(top));
        }
        let (x, y) = (&blocks[0], &blocks[1]);
        Err(Error::InputFile {
            path: "roots".into(),
            reason: format!(
                "overlapping partitions: no axis-aligned split separates the partition rooted at \
                 {} from the others (e.g. the one rooted at {}); each partition must cover its own \
                 region",
                x.name, y.name
            ),
        })
    }
}

/// A partition's tree and the bounding box of its points.
struct Block {
    name: String,
    root: Option<u64>,
    size: usize,
    lo: [f64; MAX_DIMS],
    hi: [f64; MAX_DIMS],
}

/// Imports `roots` and `branches` (files or directories of part files) into a new index at
/// `target`. Nothing is written at `target` unless every check passes.
pub fn import(
    target: &Path,
    roots: &Path,
    branches: &Path,
    metric: Metric,
    cache_mb: u64,
    force: bool,
) -> Result<ImportSummary> {
    IndexDir::build_new(target, force, |dir| {
        import_into(dir, roots, branches, metric, cache_mb)
    })
}

fn import_into(
    dir: &std::sync::Arc<IndexDir>,
    roots: &Path,
    branches: &Path,
    metric: Metric,
    cache_mb: u64,
) -> Result<ImportSummary> {
    let mut flat = Vec::new();
    read(roots, true, &mut flat)?;
    let partitions = flat.len();
    read(branches, false, &mut flat)?;
    let dims = flat.first().map(|n| n.coords.len()).unwrap_or(2);
    metric.check_dims(dims)?;
    let mut ids: HashMap<crate::point::PointId, u64> = HashMap::with_capacity(flat.len());
    for (i, n) in flat.iter().enumerate() {
        if n.coords.len() != dims {
            return Err(Error::invalid(
                "coords",
                format!(
                    "node {} has {} coordinates, the others {dims}",
                    n.id,
                    n.coords.len()
                ),
            ));
        }
        metric
            .check_point(&n.coords)
            .map_err(|e| Error::invalid("coords", format!("node {}: {e}", n.id)))?;
        if ids.insert(n.id.clone(), i as u64 + 1).is_some() {
            return Err(Error::invalid("id", format!("node {} appears twice", n.id)));
        }
    }
    let resolve = |n: &FlatNode, c: &Option<crate::point::PointId>| -> Result<Option<u64>> {
        match c {
            None => Ok(None),
            Some(c) => ids.get(c).copied().map(Some).ok_or_else(|| {
                Error::invalid(
                    "child",
                    format!("node {} points to {c}, which is not in the input", n.id),
                )
            }),
        }
    };
    let mut forest = Forest {
        nodes: Vec::with_capacity(flat.len()),
        dims,
    };
    let mut parent: Vec<Option<u64>> = vec![None; flat.len()];
    for (i, n) in flat.iter().enumerate() {
        let (above, below) = (resolve(n, &n.above)?, resolve(n, &n.below)?);
        for c in [above, below].into_iter().flatten() {
            if let Some(p) = parent[(c - 1) as usize].replace(i as u64 + 1) {
                return Err(Error::invalid(
                    "child",
                    format!(
                        "node {} is the child of both {} and {}",
                        flat[(c - 1) as usize].id,
                        flat[(p - 1) as usize].id,
                        n.id
                    ),
                ));
            }
        }
        forest.nodes.push(Node {
            axis: n.axis,
            above,
            below,
            coords: n.coords.clone(),
        });
    }
    // Walk each partition from its root: the k-d invariant, and every node reached once.
    let mut seen = vec![false; flat.len()];
    let mut blocks = Vec::with_capacity(partitions);
    for r in 0..partitions {
        let root = r as u64 + 1;
        if let Some(p) = parent[r] {
            return Err(Error::invalid(
                "roots",
                format!(
                    "root {} is also a child of {}",
                    flat[r].id,
                    flat[(p - 1) as usize].id
                ),
            ));
        }
        let mut block = Block {
            name: flat[r].id.to_string(),
            root: Some(root),
            size: 0,
            lo: [f64::INFINITY; MAX_DIMS],
            hi: [f64::NEG_INFINITY; MAX_DIMS],
        };
        let mut stack = vec![(root, Region::unbounded(dims))];
        while let Some((id, region)) = stack.pop() {
            let i = (id - 1) as usize;
            if std::mem::replace(&mut seen[i], true) {
                return Err(Error::invalid(
                    "child",
                    format!("a cycle runs through node {}", flat[i].id),
                ));
            }
            let n = forest.node(id);
            if !region.contains(&n.coords) {
                return Err(Error::invalid(
                    "tree",
                    format!(
                        "node {} breaks the k-d invariant of the partition rooted at {}",
                        flat[i].id, block.name
                    ),
                ));
            }
            for a in 0..dims {
                block.lo[a] = block.lo[a].min(n.coords[a]);
                block.hi[a] = block.hi[a].max(n.coords[a]);
            }
            block.size += 1;
            let (axis, split) = (n.axis as usize, n.split());
            if let Some(c) = n.below {
                stack.push((c, region.below(axis, split)));
            }
            if let Some(c) = n.above {
                stack.push((c, region.above(axis, split)));
            }
        }
        blocks.push(block);
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        let missing = seen.iter().filter(|s| !**s).count();
        return Err(Error::invalid(
            "roots",
            format!(
                "{missing} nodes are under no root (a cycle or a missing root), e.g. node {}",
                flat[i].id
            ),
        ));
    }
    let root = forest.join(blocks)?;
    let generation = dir.new_generation()?;
    let depth = write(generation.path(), &forest, &flat, root, metric, cache_mb)?;
    // The joined tree is checked as a whole before it replaces anything.
    crate::index::Index::open_generation(generation.path(), cache_mb)?.verify()?;
    dir.install(generation, true)?;
    Ok(ImportSummary {
        points: flat.len() as u64,
        partitions: partitions as u64,
        depth,
    })
}

fn write(
    path: &Path,
    forest: &Forest,
    flat: &[FlatNode],
    root: Option<u64>,
    metric: Metric,
    cache_mb: u64,
) -> Result<u32> {
    let mut writer = NodeWriter::create(path, cache_mb, FORMAT_VERSION)?;
    for (idx, n) in forest.nodes.iter().enumerate() {
        let p = Payload {
            id: flat[idx].id.clone(),
            properties: flat[idx].properties.clone(),
        };
        let payload = codec::encode_payload(&p);
        writer.put(idx as u64 + 1, n, &payload, &codec::id_key(&p.id))?;
    }
    // Depth by walking the joined tree.
    let mut depth = 0;
    let mut stack: Vec<(u64, u32)> = root.map(|r| (r, 1)).into_iter().collect();
    while let Some((id, d)) = stack.pop() {
        depth = depth.max(d);
        let n = forest.node(id);
        stack.extend(n.below.map(|c| (c, d + 1)));
        stack.extend(n.above.map(|c| (c, d + 1)));
    }
    let n = forest.nodes.len() as u64;
    let mut meta = Meta::empty(metric, forest.dims as u8);
    meta.root = root;
    meta.count = n;
    meta.next_id = n + 1;
    meta.depth = depth;
    meta.max_count = n;
    writer.finish(&meta)?;
    Ok(depth)
}
