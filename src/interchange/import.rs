//! Loading flat node files: validate every partition's tree (links, cycles, the k-d
//! invariant), then bulk-build a format 3 index of leaf buckets from their points. The
//! partitions' own shapes are checked, not kept: a bucket tree is laid out from the points, so
//! partitions may also overlap.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::flat::FlatNode;
use crate::error::{Error, Result};
use crate::geometry::{Metric, Region};
use crate::index::build::build_into;
use crate::index::{BuildOptions, DEFAULT_BUILD_MEMORY_MB};
use crate::input::Record;
use crate::progress::Progress;
use crate::store::codec::LegacyNode;
use crate::store::format::default_leaf_size;
use crate::store::IndexDir;

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

fn read(path: &Path, roots: bool, out: &mut Vec<FlatNode>, progress: &dyn Progress) -> Result<()> {
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
            progress.advance(1);
        }
    }
    Ok(())
}

/// The partitions' nodes, by internal id (index + 1).
struct Forest {
    nodes: Vec<LegacyNode>,
}

impl Forest {
    fn node(&self, id: u64) -> &LegacyNode {
        &self.nodes[(id - 1) as usize]
    }
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
    progress: &dyn Progress,
) -> Result<ImportSummary> {
    IndexDir::build_new(target, force, |dir| {
        import_into(dir, roots, branches, metric, cache_mb, progress)
    })
}

fn import_into(
    dir: &std::sync::Arc<IndexDir>,
    roots: &Path,
    branches: &Path,
    metric: Metric,
    cache_mb: u64,
    progress: &dyn Progress,
) -> Result<ImportSummary> {
    let mut flat = Vec::new();
    progress.phase("reading", None);
    read(roots, true, &mut flat, progress)?;
    let partitions = flat.len();
    read(branches, false, &mut flat, progress)?;
    progress.phase("checking", None);
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
        forest.nodes.push(LegacyNode {
            axis: n.axis,
            above,
            below,
            coords: n.coords.clone(),
        });
    }
    // Walk each partition from its root: the k-d invariant, and every node reached once.
    let mut seen = vec![false; flat.len()];
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
        let name = flat[r].id.to_string();
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
                        flat[i].id, name
                    ),
                ));
            }
            let (axis, split) = (n.axis as usize, n.coords[n.axis as usize]);
            if let Some(c) = n.below {
                stack.push((c, region.below(axis, split)));
            }
            if let Some(c) = n.above {
                stack.push((c, region.above(axis, split)));
            }
        }
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
    drop(forest);
    let points = flat.len() as u64;
    let opts = BuildOptions {
        metric,
        dims,
        cache_mb,
        memory_mb: DEFAULT_BUILD_MEMORY_MB,
        skip_invalid: false,
        force: true,
        leaf_size: default_leaf_size(dims),
        history: None,
    };
    let records = flat.into_iter().enumerate().map(|(i, n)| {
        Ok(Record {
            line: i as u64 + 1,
            id: n.id,
            coords: n.coords,
            properties: n.properties,
        })
    });
    let summary = build_into(dir, records, &opts, progress, true)?;
    Ok(ImportSummary {
        points,
        partitions: partitions as u64,
        depth: summary.depth,
    })
}
