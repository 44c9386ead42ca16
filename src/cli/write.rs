//! `kdsled insert` and `kdsled delete`.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use kdsled::index::{NewPoint, Progress, WriteOp};
use kdsled::{Error, Index, PointId};

use super::args::{DeleteArgs, InsertArgs};
use super::build::input_spec;

/// Reads the whole input first, so a bad row fails the command before anything is written, then
/// applies it as one atomic, durable write (larger than a sled transaction, it goes through the
/// journal): a crash leaves all of the file or none of it, and rerunning the command is safe.
pub fn insert(a: InsertArgs) -> anyhow::Result<ExitCode> {
    let index = Index::open(&a.db.db, a.db.cache_mb)?;
    let spec = input_spec(&a.input)?;
    let meta = index.meta();
    if spec.metric != meta.metric || spec.dims() != meta.dims as usize {
        bail!(
            "the input has {} {} coordinates, the index {} {}",
            spec.dims(),
            spec.metric.name(),
            meta.dims,
            meta.metric.name()
        );
    }
    let mut ops = Vec::new();
    let mut seen = kdsled::input::SeenIds::default();
    let mut skipped = 0u64;
    let bar = super::progress::BarProgress::new();
    bar.phase("reading", None);
    for r in kdsled::input::open(&a.input.input, &spec)? {
        bar.advance(1);
        let rec = match r {
            Ok(rec) => rec,
            Err(Error::Input { .. }) if a.skip_invalid => {
                skipped += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        seen.check(&rec)?;
        if !a.upsert && index.get(&rec.id)?.is_some() {
            bail!(
                "line {}: a point with id {} is already in the index (--upsert replaces it)",
                rec.line,
                rec.id
            );
        }
        let p = NewPoint {
            id: rec.id,
            coords: rec.coords,
            properties: rec.properties,
        };
        ops.push(if a.upsert {
            WriteOp::Upsert(p)
        } else {
            WriteOp::Insert(p)
        });
    }
    let started = Instant::now();
    let written = index
        .write_with_progress(&ops, &bar)
        .context("nothing was written")?
        .written;
    let secs = started.elapsed().as_secs_f64();
    if skipped > 0 {
        eprintln!("skipped {skipped} invalid rows");
    }
    status!(
        "wrote {written} points in {secs:.2} s ({:.0} points/s); the index has {}",
        written as f64 / secs.max(1e-9),
        index.meta().count
    );
    Ok(ExitCode::SUCCESS)
}

/// Deletes the listed ids; ids not in the index are counted, not fatal.
pub fn delete(a: DeleteArgs) -> anyhow::Result<ExitCode> {
    let index = Index::open(&a.db.db, a.db.cache_mb)?;
    let reader: Box<dyn BufRead> = if a.ids.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(&a.ids).with_context(|| format!("opening {}", a.ids.display()))?,
        ))
    };
    let mut ops = Vec::new();
    for line in reader.lines() {
        let line = line?;
        let id = line.trim();
        if !id.is_empty() {
            ops.push(WriteOp::Delete(PointId::parse(id)));
        }
    }
    // One atomic, durable write, as for insert.
    let out = index
        .write_with_progress(&ops, &super::progress::BarProgress::new())
        .context("nothing was deleted")?;
    let (deleted, missing) = (out.deleted, out.missing);
    status!(
        "deleted {deleted} points ({missing} ids were not in the index); the index has {}",
        index.meta().count
    );
    Ok(ExitCode::SUCCESS)
}

/// Rewrites the index densely and reports the space reclaimed.
pub fn compact(a: super::args::RewriteArgs) -> anyhow::Result<ExitCode> {
    let before = kdsled::index::dir_size(&a.db.db)?;
    let s = kdsled::index::compact(
        &a.db.db,
        a.db.cache_mb,
        a.memory_mb,
        &super::progress::BarProgress::new(),
    )?;
    status!(
        "compacted {}: {} points, {} bytes on disk before, {} after ({:.1} s)",
        a.db.db.display(),
        s.points,
        before,
        s.bytes_on_disk,
        s.seconds
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads one partition's points and writes its tree as flat node lines on standard output.
pub fn partition_build(a: super::args::PartitionBuildArgs) -> anyhow::Result<ExitCode> {
    let spec = input_spec(&a.input)?;
    let mut records = Vec::new();
    let mut seen = kdsled::input::SeenIds::default();
    for r in kdsled::input::open(&a.input.input, &spec)? {
        let rec = r?;
        seen.check(&rec)?;
        records.push(rec);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    kdsled::interchange::write_partition(&records, spec.dims(), &mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// Loads flat node files into a new index.
pub fn import(a: super::args::ImportArgs) -> anyhow::Result<ExitCode> {
    let metric = match a.metric {
        super::args::MetricArg::Haversine => kdsled::Metric::Haversine,
        super::args::MetricArg::Euclidean => kdsled::Metric::Euclidean,
    };
    let s = kdsled::interchange::import(
        &a.db.db,
        &a.roots,
        &a.branches,
        metric,
        a.db.cache_mb,
        a.force,
        &super::progress::BarProgress::new(),
    )
    .with_context(|| format!("importing into {}", a.db.db.display()))?;
    status!(
        "imported {} points from {} partitions into {}: depth {}",
        s.points,
        s.partitions,
        a.db.db.display(),
        s.depth
    );
    Ok(ExitCode::SUCCESS)
}
