//! Walks on an index much larger than its node cache read whole subtrees ahead with range scans
//! (their ids are contiguous in a bulk build). The answers must stay exact, including after
//! writes have reshaped the tree so that id ranges no longer match subtrees.

mod common;

use common::*;
use kdsled::index::{NewPoint, WriteOp};
use kdsled::{Index, Metric, PointId, Value};

fn unit(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

/// Clustered points plus uniform ones, both sides of the antimeridian and the poles.
fn points(n: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut s = seed;
    (0..n)
        .map(|i| match i % 5 {
            0 => vec![unit(&mut s) * 360.0 - 180.0, unit(&mut s) * 180.0 - 90.0],
            1 => vec![179.5 + unit(&mut s), unit(&mut s) * 4.0 - 2.0],
            2 => vec![unit(&mut s) * 360.0 - 180.0, 88.0 + unit(&mut s) * 2.0],
            _ => vec![10.0 + unit(&mut s) * 2.0, 45.0 + unit(&mut s) * 2.0],
        })
        .map(|mut p| {
            if p[0] > 180.0 {
                p[0] -= 360.0;
            }
            p
        })
        .collect()
}

fn centers() -> Vec<Vec<f64>> {
    vec![
        vec![11.0, 46.0],
        vec![10.2, 45.1],
        vec![180.0, 0.0],
        vec![-179.9, 1.0],
        vec![0.0, 90.0],
        vec![45.0, -30.0],
    ]
}

/// Every radius answer of `index` equals brute force over `live` (id, point) pairs.
fn check(index: &Index, live: &[(i64, Vec<f64>)]) -> u64 {
    let m = Metric::Haversine;
    let mut reads = 0;
    for c in centers() {
        for r in [5_000.0, 60_000.0, 400_000.0, 3_000_000.0] {
            let mut want: Vec<(f64, i64)> = live
                .iter()
                .map(|(id, p)| (m.distance(&c, p), *id))
                .filter(|(d, _)| *d <= r)
                .collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let got = index.radius(&c, r, usize::MAX).expect("radius");
            reads += got.nodes_read;
            assert_eq!(got.count as usize, want.len(), "count at {c:?} r {r}");
            assert_eq!(
                sorted(ids_and_distances(index, &got.hits)),
                want,
                "at {c:?} r {r}"
            );
            let n = index.count_within(&c, r).expect("count");
            assert_eq!(n.count as usize, want.len());
        }
    }
    reads
}

#[test]
fn read_ahead_answers_exactly_before_and_after_writes() {
    let pts = points(30_000, 17);
    let t = build_index(Metric::Haversine, 2, &pts);
    let path = t.path();
    drop(t.index);
    // A 1 MB cache keeps a few thousand nodes decoded: most of the tree is read from sled.
    let index = Index::open(&path, 1).expect("open");
    let mut live: Vec<(i64, Vec<f64>)> = pts
        .iter()
        .enumerate()
        .map(|(i, p)| (i as i64, p.clone()))
        .collect();
    let reads = check(&index, &live);
    assert!(
        reads > 10_000,
        "the walks should read from storage ({reads})"
    );

    // Delete every third point and insert new ones: subtrees are rebuilt and new nodes get ids
    // past the old range, so id ranges stop matching subtrees.
    let mut ops = Vec::new();
    for i in (0..30_000).step_by(3) {
        ops.push(WriteOp::Delete(PointId::Int(i)));
    }
    let extra = points(8_000, 99);
    for (k, p) in extra.iter().enumerate() {
        ops.push(WriteOp::Insert(NewPoint {
            id: PointId::Int(100_000 + k as i64),
            coords: p.clone(),
            properties: vec![("w".into(), Value::Int(k as i64))],
        }));
    }
    for chunk in ops.chunks(500) {
        index.write(chunk).expect("write");
    }
    live.retain(|(id, _)| id % 3 != 0);
    live.extend(
        extra
            .iter()
            .enumerate()
            .map(|(k, p)| (100_000 + k as i64, p.clone())),
    );
    index.verify().expect("verify");
    check(&index, &live);

    // The same answers with read-ahead off (one get per visit).
    drop(index);
    let mut plain = Index::open(&path, 1).expect("open");
    plain.disable_read_ahead();
    plain.disable_node_cache();
    check(&plain, &live);
}
