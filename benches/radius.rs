//! Build time and radius-query throughput on cities1000 and a clustered synthetic set.
//!
//! `cargo bench --bench radius` runs criterion for the per-query timings, then prints a table of
//! queries/second for kdsled and for a brute-force scan over the same points in memory, measured
//! in this process, with their ratio. `KDSLED_BENCH_POINTS` sets the synthetic set's size.

mod support;

use std::time::{Duration, Instant};

use criterion::{black_box, Criterion, Throughput};
use kdsled::geometry::metric::haversine;
use kdsled::Index;
use support::*;

struct DataSet {
    name: String,
    points: Vec<[f64; 2]>,
    index: Index,
    build_s: f64,
    bytes: u64,
    _dir: tempfile::TempDir,
}

fn data_set(name: &str, points: Vec<[f64; 2]>) -> DataSet {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("idx");
    let build_s = build_at(&path, &points);
    let index = Index::open(&path, 256).expect("open");
    let bytes = index.size_on_disk().expect("size");
    DataSet {
        name: name.into(),
        points,
        index,
        build_s,
        bytes,
        _dir: dir,
    }
}

/// Runs `f` over `qs` for about `budget`: queries/second, queries run, mean hits per query.
fn rate(qs: &[[f64; 2]], budget: Duration, mut f: impl FnMut(&[f64; 2]) -> u64) -> (f64, u64, u64) {
    let start = Instant::now();
    let (mut n, mut found) = (0u64, 0u64);
    while start.elapsed() < budget {
        for q in qs.iter().take(256) {
            found += f(q);
            n += 1;
        }
    }
    (
        n as f64 / start.elapsed().as_secs_f64(),
        n,
        found / n.max(1),
    )
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let sets = vec![
        data_set("cities1000", cities()),
        data_set("clustered", clustered(synthetic_size(), 7)),
    ];

    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    let small = sets[0].points.clone();
    g.throughput(Throughput::Elements(small.len() as u64));
    g.bench_function("cities1000", |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        b.iter(|| build_at(&dir.path().join("b"), &small))
    });
    g.finish();

    for s in &sets {
        let qs = queries(&s.points, 4096, 42);
        let mut g = c.benchmark_group(format!("radius/{}", s.name));
        g.throughput(Throughput::Elements(1));
        for r in RADII {
            let mut i = 0;
            g.bench_function(format!("{r}m"), |b| {
                b.iter(|| {
                    i = (i + 1) % qs.len();
                    black_box(s.index.count_within(&qs[i], r).expect("query"))
                })
            });
        }
        g.finish();
    }
    c.final_summary();

    println!(
        "\n{:<12} {:>10} {:>9} {:>12}",
        "set", "points", "build s", "bytes"
    );
    for s in &sets {
        println!(
            "{:<12} {:>10} {:>9.2} {:>12}",
            s.name,
            s.points.len(),
            s.build_s,
            s.bytes
        );
    }
    println!(
        "\n{:<12} {:>11} {:>12} {:>10} {:>10} {:>10} {:>12} {:>9} {:>9}",
        "set",
        "radius m",
        "kdsled q/s",
        "visits/q",
        "reads/q",
        "ns/visit",
        "brute q/s",
        "ratio",
        "hits/q"
    );
    for s in &sets {
        let qs = queries(&s.points, 4096, 42);
        for r in RADII {
            let before = s.index.nodes_read_total();
            let mut visits = 0u64;
            let (kd, ran, hits) = rate(&qs, Duration::from_secs(2), |q| {
                let a = s.index.count_within(q, r).expect("query");
                visits += a.nodes_visited;
                a.count
            });
            let visits_per_query = visits as f64 / ran as f64;
            let reads = s.index.nodes_read_total() - before;
            let (brute, _, brute_hits) = rate(&qs, Duration::from_secs(1), |q| {
                s.points
                    .iter()
                    .filter(|p| haversine(q[0], q[1], p[0], p[1]) <= r)
                    .count() as u64
            });
            assert_eq!(hits, brute_hits, "kdsled and brute force disagree");
            println!(
                "{:<12} {:>11} {:>12.0} {:>10.1} {:>10.2} {:>10.1} {:>12.1} {:>8.0}x {:>9}",
                s.name,
                r,
                kd,
                visits_per_query,
                reads as f64 / ran as f64,
                1e9 / kd / visits_per_query,
                brute,
                kd / brute,
                hits
            );
        }
    }
}
