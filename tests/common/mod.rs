//! Helpers shared by the integration tests: building indexes from point lists and brute-force
//! oracles.
#![allow(dead_code)]

pub mod inproc;
pub mod proc;

use std::path::PathBuf;

use kdsled::index::{build, BuildOptions, BuildSummary, NoProgress};
use kdsled::input::Record;
use kdsled::{BBox, Index, Metric, PointId, Value};

/// `id<TAB>lon<TAB>lat<TAB>...` files without a header, as the CLI spells it.
pub const TSV_FLAGS: [&str; 9] = [
    "--format",
    "tsv",
    "--no-header",
    "--id",
    "0",
    "--lon",
    "1",
    "--lat",
    "2",
];

/// `kdsled build --db DB --input INPUT` with [`TSV_FLAGS`] and any `extra` flags.
pub fn tsv_build<'a>(db: &'a str, input: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["build", "--db", db, "--input", input];
    v.extend(TSV_FLAGS);
    v.extend(extra);
    v
}

/// Names of the entries of `dir` for which `keep` holds, sorted.
pub fn dir_names(dir: &std::path::Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| keep(n))
        .collect();
    names.sort();
    names
}

/// The sled database directory of the closed index at `path` (the generation its `CURRENT`
/// names, or the directory itself in the older layout).
pub fn sled_dir(path: &std::path::Path) -> PathBuf {
    kdsled::store::directory::current_sled_dir(path)
        .expect("index directory")
        .expect("an index")
}

/// An index in a temporary directory that is removed when this is dropped.
pub struct TestIndex {
    pub index: std::sync::Arc<Index>,
    pub dir: tempfile::TempDir,
}

impl TestIndex {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("idx")
    }
}

/// The category every test point gets: its id modulo 3, as text.
pub fn category(i: usize) -> String {
    format!("c{}", i % 3)
}

/// Leaves of the test indexes: small, so that small test sets still make deep trees.
pub const TEST_LEAF_SIZE: usize = 4;

/// Builds an index over `points` in leaves of [`TEST_LEAF_SIZE`]; point i gets id i, a `cat`
/// and a numeric `w` attribute.
pub fn build_index(metric: Metric, dims: usize, points: &[Vec<f64>]) -> TestIndex {
    build_index_with(metric, dims, points, kdsled::index::DEFAULT_BUILD_MEMORY_MB).0
}

/// [`build_index`] in leaves of `leaf_size`.
pub fn build_index_leaves(
    metric: Metric,
    dims: usize,
    points: &[Vec<f64>],
    leaf_size: usize,
) -> TestIndex {
    build_index_full(
        metric,
        dims,
        points,
        kdsled::index::DEFAULT_BUILD_MEMORY_MB,
        leaf_size,
    )
    .0
}

/// [`build_index`] holding at most `memory_mb` of records in memory; also returns the summary.
pub fn build_index_with(
    metric: Metric,
    dims: usize,
    points: &[Vec<f64>],
    memory_mb: u64,
) -> (TestIndex, BuildSummary) {
    build_index_full(metric, dims, points, memory_mb, TEST_LEAF_SIZE)
}

/// [`build_index`] with every setting given.
pub fn build_index_full(
    metric: Metric,
    dims: usize,
    points: &[Vec<f64>],
    memory_mb: u64,
    leaf_size: usize,
) -> (TestIndex, BuildSummary) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("idx");
    let records = points.iter().enumerate().map(|(i, p)| {
        Ok(Record {
            line: i as u64 + 1,
            id: PointId::Int(i as i64),
            coords: p.clone(),
            properties: vec![
                ("cat".into(), Value::Str(category(i))),
                ("w".into(), Value::Int(i as i64)),
            ],
        })
    });
    let opts = BuildOptions {
        metric,
        dims,
        cache_mb: 16,
        memory_mb,
        skip_invalid: false,
        force: false,
        history: None,
        leaf_size,
    };
    let summary = build(&path, records, &opts, &NoProgress).expect("build");
    let index = std::sync::Arc::new(Index::open(&path, 16).expect("open"));
    (TestIndex { index, dir }, summary)
}

/// User ids of an answer's hits, in answer order, with their distances.
pub fn ids_and_distances(index: &Index, hits: &[kdsled::query::Hit]) -> Vec<(f64, i64)> {
    let snap = index.snapshot();
    let points: Vec<_> = hits.iter().map(|h| h.point).collect();
    hits.iter()
        .zip(snap.payloads(&points).expect("payloads"))
        .map(|(h, p)| match p.id {
            PointId::Int(n) => (h.distance, n),
            PointId::Str(s) => panic!("unexpected string id {s}"),
        })
        .collect()
}

/// Every point within `r` of `c`, as (distance, id), sorted.
pub fn brute_radius(metric: Metric, points: &[Vec<f64>], c: &[f64], r: f64) -> Vec<(f64, i64)> {
    let mut v: Vec<(f64, i64)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (metric.distance(c, p), i as i64))
        .filter(|(d, _)| *d <= r)
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    v
}

/// The k smallest distances to `c` (within `max`), sorted.
pub fn brute_nearest(
    metric: Metric,
    points: &[Vec<f64>],
    c: &[f64],
    k: usize,
    max: Option<f64>,
) -> Vec<f64> {
    let mut d: Vec<f64> = points
        .iter()
        .map(|p| metric.distance(c, p))
        .filter(|d| max.is_none_or(|m| *d <= m))
        .collect();
    d.sort_by(|a, b| a.total_cmp(b));
    d.truncate(k);
    d
}

/// Ids of the points inside `bbox`, sorted.
pub fn brute_within(points: &[Vec<f64>], bbox: &BBox) -> Vec<i64> {
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| bbox.contains(p))
        .map(|(i, _)| i as i64)
        .collect()
}

/// Sorts (distance, id) pairs the way the oracle does.
pub fn sorted(mut v: Vec<(f64, i64)>) -> Vec<(f64, i64)> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    v
}
