//! Heatmap tile render time against a brute-force renderer, in one run.
//!
//! `cargo bench --bench tiles` renders tiles over central Paris at zooms 8, 11 and 14 from
//! cities1000 and from the clustered synthetic set (`KDSLED_BENCH_POINTS`, default 1,000,000),
//! and compares with a renderer that loops over every point for every pixel. The brute force is
//! timed on 8 rows of the tile and scaled to 256 (its cost is the same for every row).

mod support;

use std::time::Instant;

use kdsled::geometry::metric::haversine;
use kdsled::tiles::mercator::{x_of, y_of, TileId};
use kdsled::tiles::render::pixel_center;
use kdsled::tiles::{render, HeatmapParams, TILE_SIZE};
use kdsled::Index;
use support::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn brute_seconds(points: &[[f64; 2]], t: TileId, p: &HeatmapParams) -> f64 {
    let rows = 8;
    let start = Instant::now();
    let mut sink = 0.0;
    for py in 0..rows {
        for px in 0..TILE_SIZE {
            let (lon, lat) = pixel_center(t, px, py * 32);
            for c in points {
                let d = haversine(c[0], c[1], lon, lat);
                if d <= p.radius_m {
                    sink += p.radius_m / 1000.0 - d / 1000.0;
                }
            }
        }
    }
    std::hint::black_box(sink);
    start.elapsed().as_secs_f64() * (TILE_SIZE / rows) as f64
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = HeatmapParams::default();
    println!(
        "{:<11} {:>4} {:>11} {:>10} {:>12} {:>10}",
        "set", "zoom", "candidates", "kdsled ms", "brute ms", "ratio"
    );
    for (name, pts) in [
        ("cities1000", cities()),
        ("clustered", clustered(synthetic_size(), 7)),
    ] {
        let dir = tmp.path().join(name);
        build_at(&dir, &pts);
        let index = Index::open(&dir, 512).expect("open");
        for z in [8u32, 11, 14] {
            let n = (1u64 << z) as f64;
            let t = TileId::new(z, x_of(2.35, n) as u32, y_of(48.86, n) as u32).expect("tile");
            render(&index, t, &p).expect("warm");
            let reps = 20;
            let start = Instant::now();
            let mut cands = 0;
            for _ in 0..reps {
                cands = render(&index, t, &p).expect("render").candidates;
            }
            let ms = start.elapsed().as_secs_f64() * 1e3 / reps as f64;
            let brute_ms = brute_seconds(&pts, t, &p) * 1e3;
            println!(
                "{name:<11} {z:>4} {cands:>11} {ms:>10.2} {brute_ms:>12.0} {:>9.0}x",
                brute_ms / ms
            );
        }
    }
}
