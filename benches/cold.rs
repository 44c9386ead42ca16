//! Radius queries on an index many times larger than its caches: format 3 against format 2.
//!
//! `cargo bench --bench cold` builds the clustered synthetic set (`KDSLED_BENCH_POINTS`, default
//! 1,000,000 points) in format 3 and in format 2, and opens each with the same small cache
//! (`KDSLED_COLD_CACHE_MB`; by default a sixteenth of the format 3 index's size, so the index is
//! 16x its cache and the format 2 one far more):
//!
//! - format 3 as shipped: a quarter of the cache holds decoded top levels of the tree, the rest
//!   is sled's page cache; leaves hold up to 128 points each;
//! - format 2 through its kept reader: the whole budget as sled's page cache, one sled get per
//!   visited node (one point per node), as format 2 walks did below their node cache.
//!
//! Both run the same queries (spread over the data, so the deep levels cannot all be cached)
//! single-threaded, after a warm-up pass of the same length, and must agree on every count. The
//! table gives queries/second, nodes visited and read from sled per query, and the ratio of
//! format 3 to format 2. The operating system's page cache is not dropped (that needs root):
//! "cold" here means outside the process's caches.

mod support;

use std::time::{Duration, Instant};

use kdsled::migrate::v2::V2Index;
use kdsled::Index;
use support::*;

#[global_allocator]
static GLOBAL: kdsled::Allocator = kdsled::Allocator;

struct Run {
    qps: f64,
    visits: f64,
    reads: f64,
    counts: Vec<u64>,
}

/// One query's count, nodes visited and records read from sled.
type Query<'a> = &'a dyn Fn(&[f64; 2]) -> (u64, u64, u64);

/// Runs `query` over `qs` for `budget` after a warm-up as long.
fn measure(query: Query<'_>, qs: &[[f64; 2]], budget: Duration) -> Run {
    // Warm-up: fill the caches to their steady state.
    let t = Instant::now();
    let mut i = 0;
    while t.elapsed() < budget {
        query(&qs[i % qs.len()]);
        i += 1;
    }
    let counts: Vec<u64> = qs.iter().take(2_000).map(|q| query(q).0).collect();
    let (mut n, mut visits, mut reads) = (0u64, 0u64, 0u64);
    let t = Instant::now();
    while t.elapsed() < budget {
        let (_, v, r) = query(&qs[n as usize % qs.len()]);
        visits += v;
        reads += r;
        n += 1;
    }
    Run {
        qps: n as f64 / t.elapsed().as_secs_f64(),
        visits: visits as f64 / n as f64,
        reads: reads as f64 / n as f64,
        counts,
    }
}

fn main() {
    let pts = clustered(synthetic_size(), 11);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cold-v3");
    let dir2 = tmp.path().join("cold-v2");
    let build_s = build_at(&dir, &pts);
    let build2_s = build_as(&dir2, &pts, 2);
    let bytes = kdsled::index::dir_size(&dir).expect("size");
    let bytes2 = kdsled::index::dir_size(&dir2).expect("size");
    let cache_mb: u64 = std::env::var("KDSLED_COLD_CACHE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or((bytes / 16 / (1 << 20)).max(1));
    // Queries spread over the data, many more than the top levels can tell apart.
    let qs = queries(&pts, 50_000, 5);
    println!(
        "\n{} points; format 3: built in {build_s:.1} s, {} MB on disk ({:.0}x the cache); \
         format 2: {build2_s:.1} s, {} MB ({:.0}x); cache {cache_mb} MB",
        pts.len(),
        bytes / (1 << 20),
        bytes as f64 / (cache_mb << 20) as f64,
        bytes2 / (1 << 20),
        bytes2 as f64 / (cache_mb << 20) as f64,
    );

    // One sled handle per directory at a time: measure one format, close, open the other.
    let v3_runs: Vec<Run> = {
        let kd = Index::open(&dir, cache_mb).expect("open");
        RADII
            .iter()
            .map(|&r| {
                let q = |c: &[f64; 2]| {
                    let a = kd.count_within(c, r).expect("query");
                    (a.count, a.nodes_visited, a.nodes_read)
                };
                measure(&q, &qs, Duration::from_secs(3))
            })
            .collect()
    };
    let v2_runs: Vec<Run> = {
        let v2 = V2Index::open(&dir2, cache_mb).expect("open");
        RADII
            .iter()
            .map(|&r| {
                let q = |c: &[f64; 2]| {
                    let (n, reads) = v2.count_within(c, r).expect("query");
                    (n, reads, reads)
                };
                measure(&q, &qs, Duration::from_secs(3))
            })
            .collect()
    };
    println!(
        "{:>9} {:>11} {:>9} {:>8} {:>11} {:>9} {:>8} {:>7}",
        "radius m", "v3 q/s", "visits/q", "reads/q", "v2 q/s", "visits/q", "reads/q", "v3/v2"
    );
    for ((r, a), b) in RADII.iter().zip(&v3_runs).zip(&v2_runs) {
        assert_eq!(a.counts, b.counts, "the two formats disagree at {r} m");
        println!(
            "{r:>9} {:>11.0} {:>9.1} {:>8.1} {:>11.0} {:>9.1} {:>8.1} {:>6.2}x",
            a.qps,
            a.visits,
            a.reads,
            b.qps,
            b.visits,
            b.reads,
            a.qps / b.qps
        );
    }
}
