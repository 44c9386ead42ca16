//! Data sets shared by the benchmarks: cities1000 and a clustered synthetic set grown from it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use kdsled::index::{build, BuildOptions, NoProgress};
use kdsled::input::{self, InputSpec, Record};
use kdsled::{Metric, PointId};

/// cities1000 with all its GeoNames attributes, built at `path`.
pub fn build_cities(path: &Path) {
    build(
        path,
        input::open(&cities_path(), &InputSpec::geonames()).expect("open cities"),
        &options(),
        &NoProgress,
    )
    .expect("build");
}

/// The bundled cities1000 file.
pub fn cities_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/cities1000.txt.gz"
    ))
}

/// cities1000's coordinates as (lon, lat).
pub fn cities() -> Vec<[f64; 2]> {
    input::open(&cities_path(), &InputSpec::geonames())
        .expect("open cities1000")
        .map(|r| {
            let r = r.expect("cities1000 row");
            [r.coords[0], r.coords[1]]
        })
        .collect()
}

/// Deterministic xorshift in [0, 1).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` points clustered like the world's towns: each a random city moved by up to ~10 km.
pub fn clustered(n: usize, seed: u64) -> Vec<[f64; 2]> {
    let base = cities();
    let mut r = Rng::new(seed);
    (0..n)
        .map(|_| {
            let c = base[(r.next() * base.len() as f64) as usize % base.len()];
            let lat = (c[1] + (r.next() - 0.5) * 0.18).clamp(-90.0, 90.0);
            let mut lon = c[0] + (r.next() - 0.5) * 0.18;
            if lon > 180.0 {
                lon -= 360.0;
            }
            if lon < -180.0 {
                lon += 360.0;
            }
            [lon, lat]
        })
        .collect()
}

/// Build options for a lon/lat index, replacing what is there.
pub fn options() -> BuildOptions {
    BuildOptions {
        metric: Metric::Haversine,
        dims: 2,
        cache_mb: 256,
        memory_mb: kdsled::index::DEFAULT_BUILD_MEMORY_MB,
        skip_invalid: false,
        force: true,
        history: None,
        leaf_size: kdsled::store::format::DEFAULT_LEAF_SIZE as usize,
    }
}

/// Builds a haversine index of `points` (ids 0..n, no attributes) at `dir` in format `format`;
/// returns the build's seconds.
pub fn build_as(dir: &Path, points: &[[f64; 2]], format: u32) -> f64 {
    let records = points.iter().enumerate().map(|(i, p)| {
        Ok(Record {
            line: i as u64 + 1,
            id: PointId::Int(i as i64),
            coords: p.to_vec(),
            properties: vec![],
        })
    });
    if format < kdsled::store::format::FORMAT_VERSION {
        let records: Vec<Record> = records
            .map(|r: kdsled::Result<Record>| r.expect("record"))
            .collect();
        let t = std::time::Instant::now();
        kdsled::migrate::v2::write(dir, Metric::Haversine, 2, &records, format).expect("build");
        return t.elapsed().as_secs_f64();
    }
    build(dir, records, &options(), &NoProgress)
        .expect("build")
        .seconds
}

/// [`build_as`] in the current format.
pub fn build_at(dir: &Path, points: &[[f64; 2]]) -> f64 {
    build_as(dir, points, kdsled::store::format::FORMAT_VERSION)
}

/// `n` query centres drawn from `points`.
pub fn queries(points: &[[f64; 2]], n: usize, seed: u64) -> Vec<[f64; 2]> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|_| points[(r.next() * points.len() as f64) as usize % points.len()])
        .collect()
}

/// The four radii every radius benchmark reports, in metres.
pub const RADII: [f64; 4] = [804.672, 1_200.0, 25_000.0, 100_000.0];

/// Points in the synthetic set (`KDSLED_BENCH_POINTS`, default one million).
pub fn synthetic_size() -> usize {
    std::env::var("KDSLED_BENCH_POINTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}
