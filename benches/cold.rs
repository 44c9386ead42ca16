//! Radius queries on an index many times larger than its caches, against a plain walk.
//!
//! `cargo bench --bench cold` builds the clustered synthetic set (`KDSLED_BENCH_POINTS`, default
//! 1,000,000 points, about 500 MB in sled) and opens it twice with a small cache
//! (`KDSLED_COLD_CACHE_MB`, default 32, so the index is over ten times the cache):
//!
//! - kdsled as shipped: a quarter of the cache holds decoded top levels of the tree, the rest is
//!   sled's page cache;
//! - the baseline: the node cache switched off and the whole budget given to sled, so the walk
//!   does one sled get per visited node.
//!
//! Both run the same queries (spread over the data, so the deep levels cannot all be cached)
//! single-threaded, after a warm-up pass of the same length, and must agree on every count. The
//! table gives queries/second, nodes visited and read from sled per query, nanoseconds per
//! visit, and the ratio of kdsled to the baseline. The operating system's page cache is not
//! dropped (that needs root): "cold" here means outside the process's caches.

mod support;

use std::time::{Duration, Instant};

use kdsled::Index;
use support::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Run {
    qps: f64,
    visits: f64,
    reads: f64,
    counts: Vec<u64>,
}

fn measure(index: &Index, qs: &[[f64; 2]], r: f64, budget: Duration) -> Run {
    // Warm-up: fill the caches to their steady state.
    let t = Instant::now();
    let mut i = 0;
    while t.elapsed() < budget {
        index.count_within(&qs[i % qs.len()], r).expect("query");
        i += 1;
    }
    let counts: Vec<u64> = qs
        .iter()
        .take(2_000)
        .map(|q| index.count_within(q, r).expect("query").count)
        .collect();
    let (mut n, mut visits, mut reads) = (0u64, 0u64, 0u64);
    let t = Instant::now();
    while t.elapsed() < budget {
        let a = index
            .count_within(&qs[n as usize % qs.len()], r)
            .expect("query");
        visits += a.nodes_visited;
        reads += a.nodes_read;
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
    let cache_mb: u64 = std::env::var("KDSLED_COLD_CACHE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let pts = clustered(synthetic_size(), 11);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cold");
    let build_s = build_at(&dir, &pts);
    let bytes = kdsled::index::dir_size(&dir).expect("size");
    // Queries spread over the data, many more than the top levels can tell apart.
    let qs = queries(&pts, 50_000, 5);
    println!(
        "\n{} points built in {build_s:.1} s, {} MB on disk; cache {cache_mb} MB ({:.0}x smaller)",
        pts.len(),
        bytes / (1 << 20),
        bytes as f64 / (cache_mb << 20) as f64
    );

    // One sled handle per directory at a time: measure one configuration, close, open the other.
    let kd_runs: Vec<Run> = {
        let kd = Index::open(&dir, cache_mb).expect("open");
        RADII
            .iter()
            .map(|&r| measure(&kd, &qs, r, Duration::from_secs(3)))
            .collect()
    };
    let plain_runs: Vec<Run> = {
        // The baseline gets the whole budget as sled cache: split_cache gives sled 3/4 of it.
        let mut plain = Index::open(&dir, cache_mb * 4 / 3).expect("open");
        plain.disable_node_cache();
        plain.disable_read_ahead();
        RADII
            .iter()
            .map(|&r| measure(&plain, &qs, r, Duration::from_secs(3)))
            .collect()
    };
    println!(
        "{:>9} {:>11} {:>9} {:>8} {:>9} {:>11} {:>9} {:>8} {:>9} {:>7}",
        "radius m",
        "kdsled q/s",
        "visits/q",
        "reads/q",
        "ns/visit",
        "plain q/s",
        "visits/q",
        "reads/q",
        "ns/visit",
        "ratio"
    );
    for ((r, a), b) in RADII.iter().zip(&kd_runs).zip(&plain_runs) {
        assert_eq!(a.counts, b.counts, "the two walks disagree at {r} m");
        println!(
            "{r:>9} {:>11.0} {:>9.1} {:>8.1} {:>9.0} {:>11.0} {:>9.1} {:>8.1} {:>9.0} {:>6.2}x",
            a.qps,
            a.visits,
            a.reads,
            1e9 / a.qps / a.visits,
            b.qps,
            b.visits,
            b.reads,
            1e9 / b.qps / b.visits,
            a.qps / b.qps
        );
    }
}
