//! Format version 2 against version 1 on the same data, in one run.
//!
//! `cargo bench --bench format` builds cities1000 and the clustered synthetic set
//! (`KDSLED_BENCH_POINTS`, default 1,000,000) once in each node layout, opens both with sled's
//! cache warm and kdsled's node cache off (so every visit reads and decodes a record), and prints
//! radius queries/s, ns per node visit, bytes on disk, and the v2/v1 ratio. It also times decoding
//! alone.

mod support;

use std::time::{Duration, Instant};

use kdsled::store::codec::{self, NodeFormat};
use kdsled::tree::Node;
use kdsled::Index;
use support::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Builds `points` in `format` and opens it with the node cache off.
fn open_as(dir: &std::path::Path, points: &[[f64; 2]], format: u32) -> Index {
    build_as(dir, points, format);
    let mut index = Index::open_any_format(dir, 1024).expect("open");
    index.disable_node_cache();
    index
}

/// Queries/s and ns per node visit over about two seconds.
fn measure(index: &Index, qs: &[[f64; 2]], r: f64) -> (f64, f64) {
    let t = Instant::now();
    let (mut n, mut visits) = (0u64, 0u64);
    while t.elapsed() < Duration::from_secs(2) {
        for q in qs {
            visits += index.count_within(q, r).expect("query").nodes_visited;
            n += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    (n as f64 / secs, secs * 1e9 / visits as f64)
}

fn decode_rate(format: NodeFormat) -> f64 {
    let node = Node {
        axis: 1,
        above: Some(123_456),
        below: Some(7),
        coords: vec![2.3488, 48.85341],
    };
    let bytes = codec::encode_node_as(format, &node);
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_millis(500) {
        for id in 0..10_000u64 {
            let d =
                codec::decode_node_as(format, id, std::hint::black_box(&bytes), 2).expect("decode");
            std::hint::black_box(d);
        }
        n += 10_000;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let v1 = decode_rate(NodeFormat::V1);
    let v2 = decode_rate(NodeFormat::V2);
    println!(
        "decode only: v1 {:.1} M records/s, v2 {:.1} M records/s, ratio {:.2}\n",
        v1 / 1e6,
        v2 / 1e6,
        v2 / v1
    );
    println!(
        "{:<11} {:>9} {:>11} {:>11} {:>9} {:>9} {:>6}",
        "set", "radius m", "v1 q/s", "v2 q/s", "v1 ns/v", "v2 ns/v", "ratio"
    );
    for (name, pts) in [
        ("cities1000", cities()),
        ("clustered", clustered(synthetic_size(), 7)),
    ] {
        let a = open_as(&tmp.path().join(format!("{name}-v1")), &pts, 1);
        let b = open_as(&tmp.path().join(format!("{name}-v2")), &pts, 2);
        let qs = queries(&pts, 512, 5);
        // Warm sled's page cache for both.
        for q in &qs {
            a.count_within(q, 100_000.0).expect("warm");
            b.count_within(q, 100_000.0).expect("warm");
        }
        for r in [1_200.0, 25_000.0] {
            let (qa, na) = measure(&a, &qs, r);
            let (qb, nb) = measure(&b, &qs, r);
            println!(
                "{name:<11} {r:>9} {qa:>11.0} {qb:>11.0} {na:>9.0} {nb:>9.0} {:>6.2}",
                qb / qa
            );
        }
        println!(
            "{name:<11} bytes on disk: v1 {}, v2 {}",
            a.size_on_disk().expect("size"),
            b.size_on_disk().expect("size")
        );
    }
}
