//! The bounded-memory build: inputs larger than `memory_mb` are spilled, partitioned under sampled
//! median splits and built partition by partition. The result must answer every query exactly
//! as brute force does, stay balanced, pass `verify`, and fail on bad input as a plain build does.

mod common;

use common::*;
use kdsled::index::{build, BuildOptions, NoProgress};
use kdsled::input::Record;
use kdsled::{BBox, Error, Metric, PointId, Value};

/// Deterministic pseudo-random values in [0, 1).
fn unit(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

/// Enough points that 1 MiB of memory cannot hold them: uniform, a dense cluster with repeated
/// coordinates, both poles, and both sides of the antimeridian.
fn adversarial_lonlat(n: usize) -> Vec<Vec<f64>> {
    let mut s = 7u64;
    let mut pts = Vec::with_capacity(n);
    for i in 0..n {
        let p = match i % 6 {
            0 | 1 => vec![unit(&mut s) * 360.0 - 180.0, unit(&mut s) * 180.0 - 90.0],
            2 => vec![
                2.35 + (unit(&mut s) * 20.0).floor() * 0.001,
                48.85 + (unit(&mut s) * 20.0).floor() * 0.001,
            ],
            3 => vec![
                unit(&mut s) * 360.0 - 180.0,
                if i % 12 == 3 { 90.0 } else { -90.0 },
            ],
            4 => vec![179.999 + unit(&mut s) * 0.001, unit(&mut s) * 2.0 - 1.0],
            _ => vec![-180.0 + unit(&mut s) * 0.001, unit(&mut s) * 2.0 - 1.0],
        };
        pts.push(p);
    }
    pts
}

fn optimal_depth(n: usize) -> u32 {
    (n as f64 + 1.0).log2().ceil() as u32
}

#[test]
fn partitioned_lonlat_build_answers_like_brute_force() {
    let m = Metric::Haversine;
    let points = adversarial_lonlat(30_000);
    let (t, summary) = build_index_with(m, 2, &points, 1);
    assert!(summary.partitions > 1, "1 MiB must not hold 30k records");
    assert_eq!(summary.points, points.len() as u64);
    assert!(
        summary.depth <= optimal_depth(points.len()) + 2,
        "depth {} for {} points",
        summary.depth,
        points.len()
    );
    let report = t.index.verify().expect("verify");
    assert_eq!(report.points, points.len() as u64);

    let mut s = 99u64;
    let mut centers: Vec<Vec<f64>> = vec![
        vec![0.0, 90.0],
        vec![0.0, -90.0],
        vec![180.0, 0.0],
        vec![-180.0, 0.5],
        vec![2.36, 48.86],
    ];
    for _ in 0..25 {
        centers.push(vec![
            unit(&mut s) * 360.0 - 180.0,
            unit(&mut s) * 180.0 - 90.0,
        ]);
    }
    for c in &centers {
        for r in [0.0, 804.672, 25_000.0, 400_000.0] {
            let want = brute_radius(m, &points, c, r);
            let got = t.index.radius(c, r, usize::MAX).expect("radius");
            assert_eq!(got.count as usize, want.len(), "count at {c:?} r {r}");
            assert_eq!(sorted(ids_and_distances(&t.index, &got.hits)), want);
        }
        let got = t.index.nearest(c, 7, None).expect("nearest");
        let d: Vec<f64> = got.hits.iter().map(|h| h.distance).collect();
        assert_eq!(d, brute_nearest(m, &points, c, 7, None));
    }
    let b = BBox::new(m, &[170.0, -5.0], &[-170.0, 5.0]).expect("bbox");
    let got = t.index.within(&b, usize::MAX).expect("within");
    let mut ids: Vec<i64> = ids_and_distances(&t.index, &got.hits)
        .into_iter()
        .map(|x| x.1)
        .collect();
    ids.sort();
    assert_eq!(ids, brute_within(&points, &b));
    // Payloads went with their points through the spill files.
    let p = t.index.payload(got.hits[0].point).expect("payload");
    let PointId::Int(i) = p.id else {
        panic!("int ids")
    };
    assert_eq!(p.get("w"), Some(&Value::Int(i)));
}

#[test]
fn identical_points_split_evenly_across_partitions() {
    let m = Metric::Haversine;
    let points = vec![vec![10.0, 20.0]; 25_000];
    let (t, summary) = build_index_with(m, 2, &points, 1);
    assert!(summary.partitions > 1);
    assert!(summary.depth <= optimal_depth(points.len()) + 2);
    t.index.verify().expect("verify");
    let got = t.index.count_within(&[10.0, 20.0], 0.0).expect("count");
    assert_eq!(got.count, 25_000);
}

#[test]
fn partitioned_euclidean_build_with_collinear_points() {
    let m = Metric::Euclidean;
    let mut s = 5u64;
    let points: Vec<Vec<f64>> = (0..20_000)
        .map(|i| {
            if i % 2 == 0 {
                // On one line in 3-space, many repeats.
                let x = (i % 500) as f64;
                vec![x, 2.0 * x, -x]
            } else {
                vec![
                    unit(&mut s) * 100.0,
                    unit(&mut s) * 100.0,
                    unit(&mut s) * 100.0,
                ]
            }
        })
        .collect();
    let (t, summary) = build_index_with(m, 3, &points, 1);
    assert!(summary.partitions > 1);
    t.index.verify().expect("verify");
    for c in [[0.0, 0.0, 0.0], [250.0, 500.0, -250.0], [50.0, 50.0, 50.0]] {
        for r in [0.0, 3.0, 40.0] {
            let want = brute_radius(m, &points, &c, r);
            let got = t.index.radius(&c, r, usize::MAX).expect("radius");
            assert_eq!(sorted(ids_and_distances(&t.index, &got.hits)), want);
        }
    }
}

fn record(i: u64, id: i64, lon: f64, lat: f64) -> kdsled::Result<Record> {
    Ok(Record {
        line: i + 1,
        id: PointId::Int(id),
        coords: vec![lon, lat],
        properties: vec![("name".into(), Value::Str(format!("place {i}")))],
    })
}

fn options() -> BuildOptions {
    BuildOptions {
        metric: Metric::Haversine,
        dims: 2,
        cache_mb: 16,
        memory_mb: 1,
        skip_invalid: false,
        force: false,
        history: None,
        leaf_size: kdsled::store::format::DEFAULT_LEAF_SIZE as usize,
    }
}

/// Nothing but `keep` is left in `dir`: no index, no half-built or spill directory.
fn only(dir: &std::path::Path, keep: &[&str]) {
    let names = dir_names(dir, |_| true);
    assert_eq!(names, keep, "left behind in {}", dir.display());
}

#[test]
fn duplicate_ids_past_the_memory_budget_name_both_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("idx");
    // Line 3 and line 29,001 share id 2: the second is read long after spilling began.
    let records = (0..30_000u64).map(|i| {
        let id = if i == 29_000 { 2 } else { i as i64 };
        record(i, id, (i % 360) as f64 - 180.0, (i % 170) as f64 - 85.0)
    });
    let err = build(&target, records, &options(), &NoProgress).expect_err("duplicate");
    match err {
        Error::DuplicateId {
            id,
            first_line,
            second_line,
        } => {
            assert_eq!(id, "2");
            assert_eq!((first_line, second_line), (3, 29_001));
        }
        other => panic!("expected a duplicate id error, got {other}"),
    }
    only(dir.path(), &[]);
}

/// 30,000 good records but for line 28,001, long after the build has begun to spill.
fn with_bad_row() -> impl Iterator<Item = kdsled::Result<Record>> {
    (0..30_000u64).map(|i| {
        if i == 28_000 {
            Err(Error::Input {
                line: i + 1,
                reason: "latitude 95 is outside [-90, 90]".into(),
            })
        } else {
            record(
                i,
                i as i64,
                (i % 360) as f64 - 180.0,
                (i % 170) as f64 - 85.0,
            )
        }
    })
}

#[test]
fn a_bad_row_past_the_memory_budget_names_its_line_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("idx");
    let err = build(&target, with_bad_row(), &options(), &NoProgress).expect_err("bad row");
    assert!(err.to_string().contains("line 28001"), "{err}");
    only(dir.path(), &[]);

    // With --skip-invalid the same input builds, partitioned, without the bad row.
    let records = with_bad_row();
    let mut opts = options();
    opts.skip_invalid = true;
    let summary = build(&target, records, &opts, &NoProgress).expect("build");
    assert_eq!((summary.points, summary.skipped), (29_999, 1));
    assert!(summary.partitions > 1);
    only(dir.path(), &["idx"]);
}
