//! `kdsled info` and `kdsled verify`.

use std::process::ExitCode;

use kdsled::Index;

use super::args::DbArgs;

/// Prints what an index holds.
pub fn info(a: DbArgs) -> anyhow::Result<ExitCode> {
    let index = Index::open(&a.db, a.cache_mb)?;
    let m = index.meta();
    println!("path            {}", a.db.display());
    println!("format version  {}", m.format);
    println!("metric          {}", m.metric.name());
    println!("dimensions      {}", m.dims);
    println!("points          {}", m.count);
    println!("depth           {}", m.depth);
    println!("leaf size       {}", m.leaf_size);
    println!("id buckets      {}", m.id_buckets);
    println!("bytes on disk   {}", index.size_on_disk()?);
    println!("generation      {}", m.generation);
    Ok(ExitCode::SUCCESS)
}

/// Checks every invariant; exits non-zero naming the first violation.
pub fn verify(a: DbArgs) -> anyhow::Result<ExitCode> {
    let index = Index::open(&a.db, a.cache_mb)?;
    // The bar is gone (dropped with the statement) before the result is printed.
    let report = index.verify_with_progress(&super::progress::BarProgress::new());
    match report {
        Ok(r) => {
            status!(
                "ok: {} points in {} leaves, {} nodes, depth {}",
                r.points,
                r.leaves,
                r.nodes,
                r.depth
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("verify failed: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Applies the pending format migrations.
pub fn migrate(a: super::args::RewriteArgs) -> anyhow::Result<ExitCode> {
    let r = kdsled::migrate::migrate_in(
        &a.db.db,
        a.db.cache_mb,
        a.memory_mb,
        &super::progress::BarProgress::new(),
    )?;
    if r.from == r.to && !r.resumed {
        status!(
            "{} is already at format version {}",
            a.db.db.display(),
            r.to
        );
    } else {
        status!(
            "migrated {} from format version {} to {}{}: {} records converted",
            a.db.db.display(),
            r.from,
            r.to,
            if r.resumed { " (resumed)" } else { "" },
            r.records
        );
    }
    Ok(ExitCode::SUCCESS)
}
