//! Bulk build: read every point, lay out a balanced tree in parallel, write it to a fresh sled
//! database in small batches, then move it into place.
//!
//! The database is written under a temporary name beside the target and renamed only once it is
//! complete and flushed, so a failed or interrupted build leaves no half-built index behind.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::disk::dir_size;
use crate::error::{Error, Result};
use crate::geometry::Metric;
use crate::input::Record;
use crate::point::Payload;
use crate::store::format::{Meta, META_KEY, VERSION_KEY};
use crate::store::{codec, SledStore, Space, Store, WriteBatch};
use crate::tree::build::layout;
use crate::tree::Node;

/// Records per sled batch. sled's memory grows with batch size: 10,000-record batches peaked at
/// 3.3 GB RSS for a million records here, 1,000-record batches at a few hundred MB.
pub const BATCH_RECORDS: usize = 1000;

/// How a build behaves.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Metric of the new index.
    pub metric: Metric,
    /// Coordinates per point.
    pub dims: usize,
    /// sled page cache while writing, MiB.
    pub cache_mb: u64,
    /// Skip rows with bad coordinates instead of failing.
    pub skip_invalid: bool,
    /// Replace an existing index at the target.
    pub force: bool,
    /// Format version to write: [`FORMAT_VERSION`], or an older one the binary still writes
    /// (fixtures and format benchmarks).
    pub format: u32,
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
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Bytes of the index directory.
    pub bytes_on_disk: u64,
}

/// Hooks for showing a build's progress.
pub trait BuildProgress: Sync {
    /// A phase starts; `total` is its number of steps if known.
    fn phase(&self, name: &str, total: Option<u64>);
    /// `n` more steps of the current phase are done.
    fn advance(&self, n: u64);
    /// The build is over.
    fn finish(&self) {}
}

/// Shows nothing.
pub struct NoProgress;

impl BuildProgress for NoProgress {
    fn phase(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
}

/// Removes a half-written directory unless disarmed.
pub(crate) struct TempDir {
    pub(crate) path: PathBuf,
    pub(crate) armed: bool,
}

impl TempDir {
    /// A fresh temporary directory name beside `target`; fails if `target` exists and
    /// `force` is off.
    pub(crate) fn beside(target: &Path, force: bool) -> Result<TempDir> {
        if target.exists() && !force {
            return Err(Error::Database(format!(
                "{} already exists: pass --force to replace it",
                target.display()
            )));
        }
        let name = target
            .file_name()
            .ok_or_else(|| {
                Error::Database(format!("{} is not a directory name", target.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)?;
        let path = parent.join(format!(".{name}.building-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        Ok(TempDir { path, armed: true })
    }

    /// Moves the finished directory into place at `target`.
    pub(crate) fn install(mut self, target: &Path) -> Result<()> {
        install(&self.path, target)?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Builds an index at `target` from `records`.
pub fn build(
    target: &Path,
    records: impl Iterator<Item = Result<Record>>,
    opts: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<BuildSummary> {
    let started = Instant::now();
    opts.metric.check_dims(opts.dims)?;
    let tmp = TempDir::beside(target, opts.force)?;

    progress.phase("reading", None);
    let input = read_all(records, opts, progress)?;
    let n = input.payloads.len() as u64;

    progress.phase("building", None);
    let layout = layout(&input.coords, opts.dims, 1);

    progress.phase("writing", Some(n));
    write_tree(&tmp.path, &input, &layout, opts, progress)?;
    tmp.install(target)?;
    progress.finish();
    Ok(BuildSummary {
        points: n,
        skipped: input.skipped,
        skipped_examples: input.skipped_examples,
        depth: layout.depth,
        seconds: started.elapsed().as_secs_f64(),
        bytes_on_disk: dir_size(target)?,
    })
}

struct Input {
    coords: Vec<f64>,
    payloads: Vec<Payload>,
    skipped: u64,
    skipped_examples: Vec<String>,
}

fn read_all(
    records: impl Iterator<Item = Result<Record>>,
    opts: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<Input> {
    let mut input = Input {
        coords: Vec::new(),
        payloads: Vec::new(),
        skipped: 0,
        skipped_examples: Vec::new(),
    };
    let mut seen = crate::input::SeenIds::default();
    for (i, r) in records.enumerate() {
        let rec = match r {
            Ok(rec) => rec,
            Err(e @ Error::Input { .. }) if opts.skip_invalid => {
                input.skipped += 1;
                if input.skipped_examples.len() < 5 {
                    input.skipped_examples.push(e.to_string());
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
        seen.check(&rec)?;
        input.coords.extend_from_slice(&rec.coords);
        input.payloads.push(Payload {
            id: rec.id,
            properties: rec.properties,
        });
        if i % 4096 == 4095 {
            progress.advance(4096);
        }
    }
    Ok(input)
}

/// Records written between closing and reopening the database: sled's memory creeps with the
/// records written through one handle (1M records: 0.4 GB and growing), and a flush, close and
/// reopen every 250k records held it flat here.
const REOPEN_EVERY: usize = 250_000;

fn write_tree(
    path: &Path,
    input: &Input,
    layout: &crate::tree::build::Layout,
    opts: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<()> {
    let dims = opts.dims;
    let node_format = codec::NodeFormat::for_version(opts.format)?;
    let mut store = SledStore::open(path, opts.cache_mb)?;
    for (chunk_no, chunk) in layout.slots.chunks(BATCH_RECORDS).enumerate() {
        if chunk_no > 0 && (chunk_no * BATCH_RECORDS) % REOPEN_EVERY == 0 {
            store.flush()?;
            drop(store);
            store = SledStore::open(path, opts.cache_mb)?;
        }
        let first_id = 1 + (chunk_no * BATCH_RECORDS) as u64;
        let mut nodes = WriteBatch::new();
        let mut payloads = WriteBatch::new();
        let mut ids = WriteBatch::new();
        for (i, slot) in chunk.iter().enumerate() {
            let id = first_id + i as u64;
            let p = slot.point as usize;
            let node = Node {
                axis: slot.axis,
                above: slot.above,
                below: slot.below,
                coords: input.coords[p * dims..(p + 1) * dims].to_vec(),
            };
            let key = codec::node_key(id);
            nodes.put(Space::Nodes, key, codec::encode_node_as(node_format, &node));
            payloads.put(
                Space::Payloads,
                key,
                codec::encode_payload(&input.payloads[p]),
            );
            ids.put(
                Space::Ids,
                codec::id_key(&input.payloads[p].id),
                codec::encode_node_ref(id),
            );
        }
        store.apply(&nodes)?;
        store.apply(&payloads)?;
        store.apply(&ids)?;
        progress.advance(chunk.len() as u64);
    }
    let n = layout.slots.len() as u64;
    let mut meta = Meta::empty(opts.metric, dims as u8);
    meta.root = (n > 0).then_some(1);
    meta.count = n;
    meta.next_id = n + 1;
    meta.depth = layout.depth;
    meta.max_count = n;
    if let Some((generation, sequence)) = &opts.history {
        meta.generation = generation.clone();
        meta.sequence = *sequence;
    }
    let mut batch = WriteBatch::new();
    batch.put(Space::Meta, VERSION_KEY, codec::encode_version(opts.format));
    batch.put(Space::Meta, META_KEY, codec::encode_meta(&meta));
    store.apply(&batch)?;
    store.flush()?;
    Ok(())
}

/// Moves the finished build into place, replacing any previous index only after the new one is
/// complete.
pub(crate) fn install(built: &Path, target: &Path) -> Result<()> {
    if target.exists() {
        let old = target.with_file_name(format!(
            ".{}.replaced-{}",
            target
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        std::fs::rename(target, &old)?;
        std::fs::rename(built, target)?;
        std::fs::remove_dir_all(&old)?;
    } else {
        std::fs::rename(built, target)?;
    }
    Ok(())
}
