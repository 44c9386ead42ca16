//! Format version 3 (leaf buckets) against version 2 (one point per record) on the same data,
//! in one run.
//!
//! `cargo bench --bench format` builds cities1000 and the clustered synthetic set
//! (`KDSLED_BENCH_POINTS`, default 1,000,000) in each format, opens both with sled's cache
//! warm and kdsled's node cache off (so every visit reads and decodes a record), and prints
//! count queries/s, records read per query, bytes on disk, and the v3/v2 ratio.

mod support;

use std::time::{Duration, Instant};

use kdsled::migrate::v2::V2Index;
use kdsled::Index;
use support::*;

#[global_allocator]
static GLOBAL: kdsled::Allocator = kdsled::Allocator;

/// Queries/s and records read per query over about two seconds.
fn measure(run: &dyn Fn(&[f64; 2]) -> u64, qs: &[[f64; 2]]) -> (f64, f64) {
    let t = Instant::now();
    let (mut n, mut reads) = (0u64, 0u64);
    while t.elapsed() < Duration::from_secs(2) {
        for q in qs {
            reads += run(q);
            n += 1;
        }
    }
    (
        n as f64 / t.elapsed().as_secs_f64(),
        reads as f64 / n as f64,
    )
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    println!(
        "{:<11} {:>9} {:>11} {:>11} {:>9} {:>9} {:>6}",
        "set", "radius m", "v2 q/s", "v3 q/s", "v2 rd/q", "v3 rd/q", "ratio"
    );
    for (name, pts) in [
        ("cities1000", cities()),
        ("clustered", clustered(synthetic_size(), 7)),
    ] {
        let v2_dir = tmp.path().join(format!("{name}-v2"));
        let v3_dir = tmp.path().join(format!("{name}-v3"));
        let v2_build = build_as(&v2_dir, &pts, 2);
        let v3_build = build_at(&v3_dir, &pts);
        let v2 = V2Index::open(&v2_dir, 1024).expect("open v2");
        let mut v3 = Index::open(&v3_dir, 1024).expect("open v3");
        v3.disable_node_cache();
        let qs = queries(&pts, 512, 5);
        // Warm sled's page cache for both.
        for q in &qs {
            v2.count_within(q, 100_000.0).expect("warm");
            v3.count_within(q, 100_000.0).expect("warm");
        }
        for r in RADII {
            let (q2, r2) = measure(&|q| v2.count_within(q, r).expect("query").1, &qs);
            let (q3, r3) = measure(&|q| v3.count_within(q, r).expect("query").nodes_read, &qs);
            println!(
                "{name:<11} {r:>9} {q2:>11.0} {q3:>11.0} {r2:>9.1} {r3:>9.1} {:>6.2}",
                q3 / q2
            );
        }
        println!(
            "{name:<11} build s: v2 {v2_build:.2}, v3 {v3_build:.2}; bytes on disk: v2 {}, v3 {}",
            kdsled::index::dir_size(&v2_dir).expect("size"),
            kdsled::index::dir_size(&v3_dir).expect("size")
        );
    }
}
