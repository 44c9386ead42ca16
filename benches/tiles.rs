//! Heatmap tile render time against a brute-force renderer, in one run.
//!
//! `cargo bench --bench tiles` renders tiles over central Paris at zooms 8, 11 and 14 from
//! cities1000 and from the clustered synthetic set (`KDSLED_BENCH_POINTS`, default 1,000,000),
//! and compares with a renderer that loops over every point for every pixel. The brute force is
//! timed on 8 rows of the tile and scaled to 256 (its cost is the same for every row).
//! `KDSLED_TILE_BRUTE=0` skips that comparison, `KDSLED_TILE_ZOOMS=0,1,2,3` picks the zooms of
//! the every-radius table, and `KDSLED_TILE_DIR=DIR` keeps the built sets in `DIR` for the next
//! run. `KDSLED_TILE_SWEEP=3,4` then renders every tile of those zooms (over the whole map, not
//! only Paris) at the largest radius and prints the slowest five of each set: the target is
//! every tile, and the densest tile of a zoom need not be the one over Paris.

mod support;

use std::time::Instant;

use kdsled::geometry::metric::haversine;
use kdsled::tiles::mercator::{x_of, y_of, TileId};
use kdsled::tiles::render::{candidates, draw, pixel_center};
use kdsled::tiles::{render, HeatmapParams, TILE_SIZE};
use kdsled::Index;
use support::*;

#[global_allocator]
static GLOBAL: kdsled::Allocator = kdsled::Allocator;

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
    // `KDSLED_TILE_DIR` keeps the built sets there and reuses them on later runs, for repeated
    // runs that change only the renderer (a directory is reused as it is, so a build cut short
    // must be deleted by hand).
    let keep = std::env::var_os("KDSLED_TILE_DIR").map(std::path::PathBuf::from);
    let root = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    // The brute force against the tiles the splat renders exactly (radius 1.2 km).
    println!(
        "{:<11} {:>4} {:>11} {:>10} {:>12} {:>10}",
        "set", "zoom", "candidates", "kdsled ms", "brute ms", "ratio"
    );
    let sets = [
        ("cities1000", cities()),
        ("clustered", clustered(synthetic_size(), 7)),
    ];
    let mut indexes = Vec::new();
    for (name, pts) in &sets {
        let dir = root.join(format!("{name}-{}", pts.len()));
        if keep.is_none() || !dir.exists() {
            build_at(&dir, pts);
        }
        let index = Index::open(&dir, 512).expect("open");
        let p = HeatmapParams::default();
        let brute = std::env::var("KDSLED_TILE_BRUTE").map_or(true, |v| v != "0");
        for z in [8u32, 11, 14].into_iter().filter(|_| brute) {
            let t = paris(z);
            let (ms, tile) = time_tile(&index, t, &p);
            let brute_ms = brute_seconds(pts, t, &p) * 1e3;
            println!(
                "{name:<11} {z:>4} {:>11} {ms:>10.2} {brute_ms:>12.0} {:>9.0}x",
                tile.candidates,
                brute_ms / ms
            );
        }
        indexes.push((name, index));
    }
    // Every radius at every zoom over Paris (the densest part of both sets in Europe), and the
    // slowest tile of each set: the target is 50 ms for every one.
    println!();
    println!(
        "{:<11} {:>4} {:>9} {:>11} {:>10} {:>8} {:>8} {:>8} {:>13}",
        "set",
        "zoom",
        "radius m",
        "candidates",
        "kdsled ms",
        "read ms",
        "cpu ms",
        "mode",
        "bound km/pt"
    );
    for (name, index) in &indexes {
        let mut worst = (0.0f64, 0u32, 0.0f64);
        let zooms: Vec<u32> = std::env::var("KDSLED_TILE_ZOOMS")
            .unwrap_or_else(|_| "0,3,5,8,11,14".into())
            .split(',')
            .filter_map(|z| z.trim().parse().ok())
            .collect();
        for &z in &zooms {
            for r in [1_200.0, 5_000.0, 20_000.0, 50_000.0] {
                let p = HeatmapParams {
                    radius_m: r,
                    ..HeatmapParams::default()
                };
                let (ms, read_ms, cpu_ms, tile) = time_parts(index, paris(z), &p);
                let mode = if tile.error_km == 0.0 {
                    "exact"
                } else {
                    "binned"
                };
                println!(
                    "{name:<11} {z:>4} {r:>9.0} {:>11} {ms:>10.2} {read_ms:>8.2} {cpu_ms:>8.1} {mode:>8} {:>13.4}",
                    tile.candidates, tile.error_km
                );
                if ms > worst.0 {
                    worst = (ms, z, r);
                }
            }
        }
        println!(
            "{name}: slowest tile {:.1} ms (zoom {}, radius {} m)",
            worst.0, worst.1, worst.2
        );
    }
    let sweep: Vec<u32> = std::env::var("KDSLED_TILE_SWEEP")
        .unwrap_or_default()
        .split(',')
        .filter_map(|z| z.trim().parse().ok())
        .filter(|z| *z <= 8)
        .collect();
    for (name, index) in indexes.iter().filter(|_| !sweep.is_empty()) {
        let p = HeatmapParams {
            radius_m: kdsled::tiles::render::MAX_RADIUS_M,
            ..HeatmapParams::default()
        };
        let mut times = Vec::new();
        for &z in &sweep {
            let side = 1u32 << z;
            for y in 0..side {
                for x in 0..side {
                    let t = TileId::new(z, x, y).expect("tile");
                    // One render first: most tiles are empty ocean, timed only if not.
                    let first = render(index, t, &p).expect("render");
                    if first.candidates > 0 {
                        let (ms, _, cpu_ms, tile) = time_parts(index, t, &p);
                        times.push((ms, cpu_ms, t, tile.candidates, tile.error_km));
                    }
                }
            }
        }
        times.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!();
        println!(
            "{name}: every tile of zooms {sweep:?} at {} m, {} not empty; the slowest:",
            p.radius_m,
            times.len()
        );
        for (ms, cpu_ms, t, candidates, error_km) in times.iter().take(5) {
            println!(
                "  z{} x{} y{}: {ms:.2} ms ({cpu_ms:.1} cpu ms), {candidates} candidates, bound {error_km:.4} km/pt",
                t.z, t.x, t.y
            );
        }
    }
}

/// The tile over central Paris at zoom `z`.
fn paris(z: u32) -> TileId {
    let n = (1u64 << z) as f64;
    TileId::new(z, x_of(2.35, n) as u32, y_of(48.86, n) as u32).expect("tile")
}

/// Mean render time of tile `t` (after one warm-up render), ms, and the tile.
fn time_tile(index: &Index, t: TileId, p: &HeatmapParams) -> (f64, kdsled::tiles::Tile) {
    let (ms, _, _, tile) = time_parts(index, t, p);
    (ms, tile)
}

/// This process's CPU time so far (user and system, every thread), seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Mean render time of tile `t`, ms, the part of it spent reading candidates, the CPU time per
/// render (ms, both cores together: steadier than the wall clock on a shared machine), and the
/// tile.
fn time_parts(index: &Index, t: TileId, p: &HeatmapParams) -> (f64, f64, f64, kdsled::tiles::Tile) {
    let mut tile = render(index, t, p).expect("warm");
    let reps = 5;
    let mut read = 0.0;
    let cpu = cpu_seconds();
    let start = Instant::now();
    for _ in 0..reps {
        let r = Instant::now();
        let points = candidates(index, t, p).expect("candidates");
        read += r.elapsed().as_secs_f64();
        tile = draw(t, &points, p);
    }
    (
        start.elapsed().as_secs_f64() * 1e3 / reps as f64,
        read * 1e3 / reps as f64,
        (cpu_seconds() - cpu) * 1e3 / reps as f64,
        tile,
    )
}
