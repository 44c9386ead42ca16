//! `kdsled info` and `kdsled verify`.

use std::process::ExitCode;

use kdsled::index::IndexInfo;
use kdsled::tree::verify::VerifyReport;

use super::args::SourceArgs;
use super::remote::Source;

/// Prints what an index holds, read from its directory or asked of the server that holds it.
pub fn info(a: SourceArgs) -> anyhow::Result<ExitCode> {
    let (place, info) = match a.open()? {
        Source::Local(index) => {
            let db = a.db.as_deref().unwrap_or(std::path::Path::new(""));
            (format!("path            {}", db.display()), index.info()?)
        }
        Source::Remote(r) => (
            format!("server          {}", r.url()),
            serde_json::from_value::<IndexInfo>(r.get_json("/v1/info", &[])?)?,
        ),
    };
    println!("{place}");
    println!("format version  {}", info.format_version);
    println!("metric          {}", info.metric);
    println!("dimensions      {}", info.dims);
    println!("points          {}", info.points);
    println!("depth           {}", info.depth);
    println!("leaf size       {}", info.leaf_size);
    println!("id buckets      {}", info.id_buckets);
    println!("bytes on disk   {}", info.bytes_on_disk);
    println!("generation      {}", info.generation);
    println!("sequence        {}", info.sequence);
    Ok(ExitCode::SUCCESS)
}

/// Checks every invariant, here or on the server that holds the index; exits 2 naming the
/// first violation.
pub fn verify(a: SourceArgs) -> anyhow::Result<ExitCode> {
    let report: Result<VerifyReport, String> = match a.open()? {
        // The bar is gone (dropped with the statement) before the result is printed.
        Source::Local(index) => index
            .verify_with_progress(&super::progress::BarProgress::new())
            .map_err(|e| e.to_string()),
        Source::Remote(r) => {
            let v = r.post_json("/v1/verify")?;
            if v["ok"] == serde_json::Value::Bool(true) {
                Ok(serde_json::from_value(v)?)
            } else {
                Err(v["error"].as_str().unwrap_or("no reason given").to_string())
            }
        }
    };
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
