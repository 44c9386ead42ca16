//! kdsled against its peers on the same points and queries, in one process.
//!
//! `cargo bench --bench peers` builds cities1000 and the clustered synthetic set
//! (`KDSLED_BENCH_POINTS`, default 1,000,000) in kdsled (format 3, and format 2 through its kept
//! reader: one sled get per visited node, sled's page cache warm), in the in-memory k-d tree `kiddo`, in
//! the R-tree `rstar`, and in SQLite's R*Tree module (rusqlite, bundled SQLite), then runs the
//! same radius queries (804.672 m, 1.2 km, 25 km, 100 km) single-threaded on each and prints
//! queries/second, the ratio of each peer to kdsled (warm), build time and bytes on disk. Every
//! engine must return the same count for every query, or the benchmark stops.
//!
//! kiddo and rstar index points as unit vectors (a great-circle radius is a chord), SQLite
//! indexes lon/lat boxes (a circle's bounding box, split at the antimeridian); all three filter
//! their candidates with the same haversine as kdsled.

mod support;

use std::time::{Duration, Instant};

use kdsled::geometry::metric::haversine;
use kdsled::geometry::EARTH_RADIUS_M;
use kdsled::Index;
use kiddo::ImmutableKdTree;
use kiddo::SquaredEuclidean;
use rstar::primitives::GeomWithData;
use rstar::RTree;
use support::*;

#[global_allocator]
static GLOBAL: kdsled::Allocator = kdsled::Allocator;

fn unit(p: [f64; 2]) -> [f64; 3] {
    let (lon, lat) = (p[0].to_radians(), p[1].to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

/// Squared chord length for a great-circle radius, a hair wide so rounding never drops a point
/// the exact haversine check would keep.
fn chord2(r: f64) -> f64 {
    let c = 2.0
        * (r / EARTH_RADIUS_M / 2.0)
            .min(std::f64::consts::FRAC_PI_2)
            .sin();
    (c * (1.0 + 1e-9) + 1e-12).powi(2)
}

/// A circle's lon/lat bounding boxes (two across the antimeridian, the whole width near a pole).
fn boxes(q: [f64; 2], r: f64) -> Vec<[f64; 4]> {
    let ang = r / EARTH_RADIUS_M;
    let dlat = ang.to_degrees() * (1.0 + 1e-9) + 1e-9;
    let (lat0, lat1) = ((q[1] - dlat).max(-90.0), (q[1] + dlat).min(90.0));
    let widest = lat0.abs().max(lat1.abs()).to_radians();
    let s = ang.sin() / widest.cos();
    if lat1 >= 90.0 || lat0 <= -90.0 || s >= 1.0 {
        return vec![[-180.0, lat0, 180.0, lat1]];
    }
    let dlon = s.asin().to_degrees() * (1.0 + 1e-9) + 1e-9;
    let (a, b) = (q[0] - dlon, q[0] + dlon);
    if a < -180.0 {
        vec![[a + 360.0, lat0, 180.0, lat1], [-180.0, lat0, b, lat1]]
    } else if b > 180.0 {
        vec![[a, lat0, 180.0, lat1], [-180.0, lat0, b - 360.0, lat1]]
    } else {
        vec![[a, lat0, b, lat1]]
    }
}

/// Queries/s of `f` over `qs` for about a second, and the per-query counts of one pass.
fn run(qs: &[[f64; 2]], mut f: impl FnMut(&[f64; 2]) -> usize) -> (f64, Vec<usize>) {
    let counts: Vec<usize> = qs.iter().map(&mut f).collect();
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs(1) {
        for q in qs {
            std::hint::black_box(f(q));
            n += 1;
        }
    }
    (n as f64 / t.elapsed().as_secs_f64(), counts)
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (name, pts) in [
        ("cities1000", cities()),
        ("clustered", clustered(synthetic_size(), 7)),
    ] {
        let qs = queries(&pts, 500, 9);
        println!("\n== {name}: {} points, {} queries", pts.len(), qs.len());

        let dir = tmp.path().join(name);
        let kd_build = build_at(&dir, &pts);
        let kd_bytes = kdsled::index::dir_size(&dir).expect("size");
        let dir2 = tmp.path().join(format!("{name}-v2"));
        let v2_build = build_as(&dir2, &pts, 2);
        let v2_bytes = kdsled::index::dir_size(&dir2).expect("size");
        let v2 = kdsled::migrate::v2::V2Index::open(&dir2, 256).expect("open v2");

        let t = Instant::now();
        let vecs: Vec<[f64; 3]> = pts.iter().map(|p| unit(*p)).collect();
        let kiddo: ImmutableKdTree<f64, 3> = ImmutableKdTree::new_from_slice(&vecs);
        let kiddo_build = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let rtree = RTree::bulk_load(
            vecs.iter()
                .enumerate()
                .map(|(i, v)| GeomWithData::new(*v, i))
                .collect(),
        );
        let rstar_build = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let db_path = tmp.path().join(format!("{name}.sqlite"));
        let mut db = rusqlite::Connection::open(&db_path).expect("sqlite");
        db.execute_batch("CREATE VIRTUAL TABLE pts USING rtree(id, minx, maxx, miny, maxy);")
            .expect("rtree");
        {
            let tx = db.transaction().expect("tx");
            {
                let mut ins = tx
                    .prepare("INSERT INTO pts VALUES (?1, ?2, ?2, ?3, ?3)")
                    .expect("prepare");
                for (i, p) in pts.iter().enumerate() {
                    ins.execute(rusqlite::params![i as i64, p[0], p[1]])
                        .expect("insert");
                }
            }
            tx.commit().expect("commit");
        }
        let sqlite_build = t.elapsed().as_secs_f64();
        let sqlite_bytes = std::fs::metadata(&db_path).map(|m| m.len()).unwrap_or(0);
        let mut stmt = db
            .prepare(
                "SELECT id FROM pts WHERE minx >= ?1 AND maxx <= ?3 AND miny >= ?2 AND maxy <= ?4",
            )
            .expect("prepare");

        println!(
            "build s: kdsled {kd_build:.2} ({kd_bytes} bytes on disk), format 2 {v2_build:.2} ({v2_bytes} bytes), kiddo {kiddo_build:.2}, rstar {rstar_build:.2}, sqlite {sqlite_build:.2} ({sqlite_bytes} bytes)"
        );
        println!(
            "{:>9} {:>11} {:>9} {:>9} {:>11} {:>11} {:>11} {:>11} {:>11} {:>7} {:>7} {:>7} {:>7}",
            "radius m",
            "kdsled q/s",
            "visits/q",
            "ns/visit",
            "fresh q/s",
            "v2 q/s",
            "kiddo q/s",
            "rstar q/s",
            "sqlite q/s",
            "kiddo/",
            "rstar/",
            "sqlite/",
            "v2/"
        );
        for r in RADII {
            // Freshly opened: the first pass after open, caches empty.
            let fresh_index = Index::open(&dir, 256).expect("open");
            let t = Instant::now();
            let fresh_counts: Vec<usize> = qs
                .iter()
                .map(|q| fresh_index.count_within(q, r).expect("query").count as usize)
                .collect();
            let fresh = qs.len() as f64 / t.elapsed().as_secs_f64();
            drop(fresh_index);
            let index = Index::open(&dir, 256).expect("open");
            let (kd, kd_counts) = run(&qs, |q| {
                index.count_within(q, r).expect("query").count as usize
            });
            let visits = qs
                .iter()
                .map(|q| index.count_within(q, r).expect("query").nodes_visited)
                .sum::<u64>() as f64
                / qs.len() as f64;
            let (v2q, v2_counts) = run(&qs, |q| v2.count_within(q, r).expect("query").0 as usize);
            let c2 = chord2(r);
            let (ki, ki_counts) = run(&qs, |q| {
                kiddo
                    .within_unsorted::<SquaredEuclidean>(&unit(*q), c2)
                    .iter()
                    .filter(|n| {
                        let p = pts[n.item as usize];
                        haversine(q[0], q[1], p[0], p[1]) <= r
                    })
                    .count()
            });
            let (rs, rs_counts) = run(&qs, |q| {
                rtree
                    .locate_within_distance(unit(*q), c2)
                    .filter(|g| {
                        let p = pts[g.data];
                        haversine(q[0], q[1], p[0], p[1]) <= r
                    })
                    .count()
            });
            let (sq, sq_counts) = run(&qs, |q| {
                let mut n = 0;
                for b in boxes(*q, r) {
                    let rows = stmt
                        .query_map(rusqlite::params![b[0], b[1], b[2], b[3]], |row| {
                            row.get::<_, i64>(0)
                        })
                        .expect("query");
                    for id in rows {
                        let p = pts[id.expect("row") as usize];
                        if haversine(q[0], q[1], p[0], p[1]) <= r {
                            n += 1;
                        }
                    }
                }
                n
            });
            for (peer, c) in [
                ("fresh kdsled", &fresh_counts),
                ("format 2", &v2_counts),
                ("kiddo", &ki_counts),
                ("rstar", &rs_counts),
                ("sqlite", &sq_counts),
            ] {
                assert_eq!(
                    &kd_counts, c,
                    "{peer} disagrees with kdsled at {r} m on {name}"
                );
            }
            println!(
                "{r:>9} {kd:>11.0} {visits:>9.1} {:>9.1} {fresh:>11.0} {v2q:>11.0} {ki:>11.0} {rs:>11.0} {sq:>11.0} {:>7.2} {:>7.2} {:>7.2} {:>7.2}",
                1e9 / kd / visits,
                ki / kd,
                rs / kd,
                sq / kd,
                v2q / kd
            );
        }
    }
}
