//! Bulk build: read every point, lay out a balanced tree in parallel (in partitions when the
//! input exceeds the memory budget), write it to a fresh sled database in small batches, then move
//! it into place.
//!
//! The database is written as a new generation of the index directory and made current only
//! once it is complete and flushed (see [`crate::store::directory`]), so a failed or interrupted
//! build leaves the previous index, or none, never a half-built one.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

mod partition;
mod spill;
mod writer;

use self::partition::Partitioner;
use self::spill::{IdBuckets, Items, SpillFile, SpillWriter};
use super::disk::dir_size;
use crate::error::{Error, Result};
use crate::geometry::Metric;
use crate::input::Record;
use crate::point::Payload;
use crate::store::codec;
use crate::store::format::{Meta, MAX_LEAF_RECORD};
use crate::store::IndexDir;
use crate::tree::layout::sort_axis;

pub(crate) use self::writer::NodeWriter;

/// Default memory for the records a build holds, MiB; larger inputs are built in partitions.
pub const DEFAULT_BUILD_MEMORY_MB: u64 = 1024;

/// How a build behaves.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Metric of the new index.
    pub metric: Metric,
    /// Coordinates per point.
    pub dims: usize,
    /// sled page cache while writing, MiB.
    pub cache_mb: u64,
    /// Memory for the records held at once, MiB: inputs beyond it are spilled to disk and built
    /// in partitions that each fit it.
    pub memory_mb: u64,
    /// Skip rows with bad coordinates instead of failing.
    pub skip_invalid: bool,
    /// Replace an existing index at the target.
    pub force: bool,
    /// Most points a leaf holds (2 to [`crate::tree::node::MAX_LEAF_SIZE`]).
    pub leaf_size: usize,
    /// Keep this generation and sequence number (a compaction rewrites an index without
    /// starting a new history); `None` starts a new one.
    pub history: Option<(String, u64)>,
}

/// What a finished build reports.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSummary {
    /// Points in the index.
    pub points: u64,
    /// Rows skipped as invalid (only with `skip_invalid`).
    pub skipped: u64,
    /// The first few skipped rows' errors, for the user to look at.
    pub skipped_examples: Vec<String>,
    /// Levels in the tree.
    pub depth: u32,
    /// Partitions laid out (1 when the input fit in memory).
    pub partitions: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Bytes of the index directory.
    pub bytes_on_disk: u64,
}

use crate::progress::Progress;

/// Builds an index at `target` from `records`.
///
/// Records are held in memory while they fit `opts.memory_mb`; past that they are spilled to
/// files beside the target and built partition by partition (see [`partition`]), so the build's
/// memory stays within the budget (plus sled's cache) however large the input.
///
/// `target` is created if missing; an existing directory must be empty or (with `force`) hold a
/// kdsled index that no other process has open: anything else is refused untouched.
pub fn build(
    target: &Path,
    records: impl Iterator<Item = Result<Record>>,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildSummary> {
    // Checked before the directory is created, so a bad option leaves nothing behind.
    check_options(opts)?;
    IndexDir::build_new(target, opts.force, |dir| {
        build_into(dir, records, opts, progress, true)
    })
}

/// Builds a new generation in `dir` (whose lock the caller holds) and makes it current;
/// `remove_old` removes the generation it replaces (a server still serving it passes false).
pub(crate) fn build_into(
    dir: &Arc<IndexDir>,
    records: impl Iterator<Item = Result<Record>>,
    opts: &BuildOptions,
    progress: &dyn Progress,
    remove_old: bool,
) -> Result<BuildSummary> {
    let started = Instant::now();
    check_options(opts)?;
    let generation = dir.new_generation()?;
    let spill_dir = dir.scratch();

    progress.phase("reading", None);
    let input = read_all(records, opts, spill_dir.path(), progress)?;

    let budget = opts.memory_mb.max(1) * 1024 * 1024;
    let points = match &input.held {
        Held::Memory(items) => items.len() as u64,
        Held::Spilled(file) => file.records,
    };
    let mut writer = NodeWriter::create(
        generation.path(),
        opts.cache_mb,
        points,
        budget,
        spill_dir.path(),
    )?;
    let (tree, partitions) = match input.held {
        Held::Memory(items) => {
            progress.phase("writing", Some(points));
            let t = partition::write_items(
                &mut writer,
                &items,
                1,
                opts.leaf_size,
                sort_axis(opts.metric),
                progress,
            )?;
            (t, 1)
        }
        Held::Spilled(file) => {
            progress.phase("partitioning and writing", Some(points));
            let mut p = Partitioner::new(
                opts.dims,
                opts.leaf_size,
                sort_axis(opts.metric),
                budget,
                spill_dir.path(),
                &mut writer,
                progress,
            );
            let t = p.build_file(file)?;
            let parts = p.partitions;
            (t, parts)
        }
    };
    let mut meta = Meta::empty(opts.metric, opts.dims as u8);
    meta.root = tree.root;
    meta.count = tree.count;
    meta.next_id = tree.root.map_or(1, |r| r + 1);
    meta.depth = tree.depth;
    meta.max_count = tree.count;
    meta.leaf_size = opts.leaf_size as u32;
    if let Some((generation, sequence)) = &opts.history {
        meta.generation = generation.clone();
        meta.sequence = *sequence;
    }
    debug_assert_eq!(writer.written(), points);
    progress.phase("writing the id index", None);
    writer.finish(&mut meta)?;
    drop(spill_dir);
    crate::failpoint::hit("build-before-install");
    dir.install(generation, remove_old)?;
    progress.finish();
    Ok(BuildSummary {
        points: tree.count,
        skipped: input.skipped,
        skipped_examples: input.skipped_examples,
        depth: tree.depth,
        partitions,
        seconds: started.elapsed().as_secs_f64(),
        bytes_on_disk: dir_size(dir.path())?,
    })
}

fn check_options(opts: &BuildOptions) -> Result<()> {
    opts.metric.check_dims(opts.dims)?;
    let max = crate::tree::node::MAX_LEAF_SIZE;
    if !(2..=max).contains(&opts.leaf_size) {
        return Err(Error::invalid(
            "leaf-size",
            format!("{} is outside 2..={max}", opts.leaf_size),
        ));
    }
    // A full page of leaf records must stay under sled's blob threshold (131,052 bytes; pages
    // hold up to 16 records): past it every page write becomes its own file under blobs/.
    let record = 1 + 8 * opts.dims * opts.leaf_size;
    if record > MAX_LEAF_RECORD {
        return Err(Error::invalid(
            "leaf-size",
            format!(
                "{} points of {} coordinates make {record}-byte leaves, more than \
                 {MAX_LEAF_RECORD} (sled writes larger pages as separate blob files)",
                opts.leaf_size, opts.dims
            ),
        ));
    }
    Ok(())
}

/// Where the read records are.
enum Held {
    /// All of them in memory.
    Memory(Items),
    /// In a spill file, being more than the budget.
    Spilled(SpillFile),
}

struct Input {
    held: Held,
    skipped: u64,
    skipped_examples: Vec<String>,
}

/// Reads and checks every record, keeping them in memory until they pass the budget and
/// spilling them all to one file from then on.
fn read_all(
    records: impl Iterator<Item = Result<Record>>,
    opts: &BuildOptions,
    spill_dir: &Path,
    progress: &dyn Progress,
) -> Result<Input> {
    let budget = opts.memory_mb.max(1) * 1024 * 1024;
    let mut items = Items::new(opts.dims);
    let mut seen = crate::input::SeenIds::default();
    let mut spilled: Option<(SpillWriter, IdBuckets)> = None;
    let (mut skipped, mut skipped_examples) = (0u64, Vec::new());
    for (i, r) in records.enumerate() {
        let rec = match r {
            Ok(rec) => rec,
            Err(e @ Error::Input { .. }) if opts.skip_invalid => {
                skipped += 1;
                if skipped_examples.len() < 5 {
                    skipped_examples.push(e.to_string());
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if rec.coords.len() != opts.dims {
            return Err(Error::Input {
                line: rec.line,
                reason: format!(
                    "{} coordinates, the index has {}",
                    rec.coords.len(),
                    opts.dims
                ),
            });
        }
        match &mut spilled {
            None => seen.check(&rec)?,
            Some((_, ids)) => ids.add(&rec.id.to_string(), rec.line)?,
        }
        let key = codec::id_key(&rec.id);
        let (line, coords) = (rec.line, rec.coords);
        let payload = codec::encode_payload(&Payload {
            id: rec.id,
            properties: rec.properties,
        });
        match &mut spilled {
            Some((w, _)) => w.write(line, &coords, &key, &payload)?,
            None => {
                items.push(line, &coords, &key, &payload);
                if items.cost() > budget {
                    std::fs::create_dir_all(spill_dir)?;
                    let mut w = SpillWriter::create(&spill_dir.join("input"))?;
                    items.spill_to(&mut w)?;
                    items = Items::new(opts.dims);
                    let mut ids = IdBuckets::create(spill_dir)?;
                    for (id, line) in std::mem::take(&mut seen).into_entries() {
                        ids.add(&id.to_string(), line)?;
                    }
                    spilled = Some((w, ids));
                }
            }
        }
        if i % 4096 == 4095 {
            progress.advance(4096);
        }
    }
    let held = match spilled {
        None => Held::Memory(items),
        Some((w, ids)) => {
            ids.check()?;
            Held::Spilled(w.finish()?)
        }
    };
    Ok(Input {
        held,
        skipped,
        skipped_examples,
    })
}
