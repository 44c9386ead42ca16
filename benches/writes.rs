//! Write throughput and the shape of a tree built by insertion.
//!
//! `cargo bench --bench writes` prints, from one process:
//! - points/s for durable single-point writes (one flush each, and 8 threads sharing flushes)
//!   and for 1000-point batches, through the library;
//! - for `KDSLED_BENCH_POINTS` (default 1,000,000) points inserted in sorted order (the worst
//!   case for a plain k-d tree): insertion time, tree depth, and radius queries/s at 1.2 km and
//!   25 km against the same points bulk-built, with the ratio.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kdsled::index::{NewPoint, WriteOp};
use kdsled::{Index, PointId};
use support::*;

#[global_allocator]
static GLOBAL: kdsled::Allocator = kdsled::Allocator;

fn point(i: u64, p: [f64; 2]) -> NewPoint {
    NewPoint {
        id: PointId::Int(i as i64),
        coords: p.to_vec(),
        properties: vec![],
    }
}

fn empty_index(dir: &std::path::Path) -> Index {
    build_at(dir, &[]);
    Index::open(dir, 256).expect("open")
}

fn qps(index: &Index, qs: &[[f64; 2]], r: f64) -> f64 {
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_secs(2) {
        for q in qs.iter().take(256) {
            index.count_within(q, r).expect("query");
            n += 1;
        }
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let base = clustered(200_000, 11);
    let tmp = tempfile::tempdir().expect("tempdir");

    // Durable single writes, one thread: one flush per write.
    let index = empty_index(&tmp.path().join("single"));
    let t = Instant::now();
    let n1 = 2_000u64;
    for i in 0..n1 {
        index.insert(point(i, base[i as usize])).expect("insert");
    }
    let single = n1 as f64 / t.elapsed().as_secs_f64();

    // Durable single writes from 8 threads: group commit shares flushes.
    let index = Arc::new(empty_index(&tmp.path().join("group")));
    let t = Instant::now();
    let per = 1_000u64;
    let threads: Vec<_> = (0..8u64)
        .map(|w| {
            let (index, base) = (index.clone(), base.clone());
            std::thread::spawn(move || {
                for i in 0..per {
                    let id = w * per + i;
                    index.insert(point(id, base[id as usize])).expect("insert");
                }
            })
        })
        .collect();
    for th in threads {
        th.join().expect("writer");
    }
    let grouped = (8 * per) as f64 / t.elapsed().as_secs_f64();

    // Durable 1000-point batches.
    let index = empty_index(&tmp.path().join("batched"));
    let t = Instant::now();
    for (b, chunk) in base.chunks(1000).enumerate() {
        let ops: Vec<WriteOp> = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| WriteOp::Insert(point((b * 1000 + i) as u64, *p)))
            .collect();
        index.write(&ops).expect("batch");
    }
    let batched = base.len() as f64 / t.elapsed().as_secs_f64();

    println!("durable writes through the library:");
    println!("  one point per write, 1 thread     {single:>10.0} points/s");
    println!("  one point per write, 8 threads    {grouped:>10.0} points/s (shared flushes)");
    println!("  1000 points per write             {batched:>10.0} points/s");

    // Sorted insertion against a bulk build of the same points.
    let n = synthetic_size();
    let mut pts = clustered(n, 7);
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let inserted = empty_index(&tmp.path().join("sorted"));
    let t = Instant::now();
    for (b, chunk) in pts.chunks(1000).enumerate() {
        let ops: Vec<WriteOp> = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| WriteOp::Insert(point((b * 1000 + i) as u64, *p)))
            .collect();
        inserted.write_unsynced(&ops).expect("insert");
    }
    inserted.flush().expect("flush");
    let insert_s = t.elapsed().as_secs_f64();
    let ins_depth = inserted.verify().expect("verify").depth;
    let bulk_dir = tmp.path().join("bulk");
    let bulk_s = build_at(&bulk_dir, &pts);
    let bulk = Index::open(&bulk_dir, 256).expect("open");
    let bulk_depth = bulk.verify().expect("verify").depth;
    println!(
        "\n{n} points in sorted order: inserted in {insert_s:.1} s ({:.0} points/s), bulk-built in {bulk_s:.1} s",
        n as f64 / insert_s
    );
    println!(
        "depth: inserted {ins_depth}, bulk {bulk_depth}, log2(n) = {:.1}, bound {}",
        (n as f64).log2(),
        kdsled::tree::balance::depth_bound(n as u64, kdsled::store::format::DEFAULT_LEAF_SIZE)
    );
    let qs = queries(&pts, 4096, 3);
    println!(
        "{:>10} {:>14} {:>14} {:>8}",
        "radius m", "inserted q/s", "bulk q/s", "ratio"
    );
    for r in [1_200.0, 25_000.0] {
        let a = qps(&inserted, &qs, r);
        let b = qps(&bulk, &qs, r);
        println!("{r:>10} {a:>14.0} {b:>14.0} {:>8.2}", a / b);
    }
}
