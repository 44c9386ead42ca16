//! Heatmap tiles against a brute-force renderer over every point.

mod common;

use std::sync::Arc;

use common::build_index;
use kdsled::geometry::metric::haversine;
use kdsled::server::ServerConfig;
use kdsled::tiles::mercator::{x_of, y_of, TileId};
use kdsled::tiles::render::{draw, draw_binned, empty_png, pixel_center, render_brute};
use kdsled::tiles::{render, HeatmapParams, TILE_SIZE};
use kdsled::Metric;

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() < 1e-9, "pixel {i}: {x} vs {y}");
    }
}

/// Checks `got` against the exact per-pixel sums within the tile's stated bound: for every pixel,
/// |got − exact| ≤ error_km × (points within r + error_km of it), after saturation (which can
/// only shrink a difference). Returns the largest error as a fraction of the largest exact value.
fn within_bound(
    got: &kdsled::tiles::Tile,
    points: &[[f64; 2]],
    t: TileId,
    p: &HeatmapParams,
) -> f64 {
    let r_km = p.radius_m / 1000.0;
    let reach = p.radius_m + got.error_km * 1000.0;
    let (mut worst, mut peak) = (0.0f64, 0.0f64);
    for py in 0..TILE_SIZE {
        for px in 0..TILE_SIZE {
            let (lon, lat) = pixel_center(t, px, py);
            let (mut exact, mut near) = (0.0, 0usize);
            for c in points {
                let d = haversine(c[0], c[1], lon, lat);
                if d <= p.radius_m {
                    exact += r_km - d / 1000.0;
                }
                if d <= reach {
                    near += 1;
                }
            }
            let want = (exact / p.saturation).min(1.0);
            let have = got.values[py * TILE_SIZE + px];
            let bound = got.error_km * near as f64 / p.saturation + 1e-9;
            assert!(
                (have - want).abs() <= bound,
                "{t:?} r {} pixel ({px}, {py}): {have} vs exact {want}, bound {bound}",
                p.radius_m
            );
            worst = worst.max((have - want).abs());
            peak = peak.max(want);
        }
    }
    if peak > 0.0 {
        worst / peak
    } else {
        0.0
    }
}

fn tile_at(z: u32, lon: f64, lat: f64) -> TileId {
    let n = (1u64 << z) as f64;
    TileId::new(z, x_of(lon, n) as u32, y_of(lat, n) as u32).unwrap()
}

fn paris() -> Vec<Vec<f64>> {
    (0..1000)
        .map(|i| {
            let a = (i * 7919 % 1000) as f64 / 1000.0;
            let b = (i * 104_729 % 997) as f64 / 997.0;
            vec![2.2 + 0.3 * a, 48.75 + 0.2 * b]
        })
        .collect()
}

#[test]
fn tiles_match_brute_force_over_all_points() {
    let pts = paris();
    let all: Vec<[f64; 2]> = pts.iter().map(|p| [p[0], p[1]]).collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    for (z, r, sat) in [
        (8u32, 1200.0, 4.0),
        (12, 1200.0, 4.0),
        (14, 500.0, 1.0),
        (11, 3000.0, 20.0),
    ] {
        let tile = tile_at(z, 2.35, 48.85);
        let p = HeatmapParams {
            radius_m: r,
            saturation: sat,
            filter: None,
        };
        let got = render(&t.index, tile, &p).unwrap();
        assert!(!got.is_empty(), "z {z}");
        if got.error_km == 0.0 {
            close(&got.values, &render_brute(&all, tile, &p));
        } else {
            within_bound(&got, &all, tile, &p);
        }
    }
    // A filter keeps only matching points.
    let p = HeatmapParams {
        filter: kdsled::query::Filter::parse("cat:c1"),
        ..HeatmapParams::default()
    };
    let c1: Vec<[f64; 2]> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 1)
        .map(|(_, p)| *p)
        .collect();
    let tile = tile_at(12, 2.35, 48.85);
    close(
        &render(&t.index, tile, &p).unwrap().values,
        &render_brute(&c1, tile, &p),
    );
}

#[test]
fn a_point_just_outside_the_edge_colours_the_tile() {
    let tile = tile_at(13, 2.35, 48.85);
    let (west, _) = pixel_center(tile, 0, 128);
    // 400 m west of the tile's first pixel centre, outside the tile.
    let outside = vec![
        west - 400.0 / (111_320.0 * 48.85f64.to_radians().cos()),
        pixel_center(tile, 0, 128).1,
    ];
    let t = build_index(Metric::Haversine, 2, std::slice::from_ref(&outside));
    let p = HeatmapParams::default();
    let got = render(&t.index, tile, &p).unwrap();
    assert_eq!(got.candidates, 1);
    assert!(got.values[128 * TILE_SIZE] > 0.0);
    assert_eq!(got.values[128 * TILE_SIZE + 255], 0.0);
    close(
        &got.values,
        &render_brute(&[[outside[0], outside[1]]], tile, &p),
    );
}

#[test]
fn the_antimeridian_is_seamless() {
    // A point just west of 180 E... is east of -180: it colours the eastmost tile's right edge.
    let pts = vec![vec![-179.999, -16.5], vec![179.998, -16.5]];
    let t = build_index(Metric::Haversine, 2, &pts);
    let z = 12;
    let n = 1u32 << z;
    let east = TileId::new(z, n - 1, y_of(-16.5, n as f64) as u32).unwrap();
    let west = TileId::new(z, 0, east.y).unwrap();
    let p = HeatmapParams::default();
    let all = [[-179.999, -16.5], [179.998, -16.5]];
    for tile in [east, west] {
        let got = render(&t.index, tile, &p).unwrap();
        assert_eq!(got.candidates, 2, "{tile:?}");
        assert!(!got.is_empty());
        close(&got.values, &render_brute(&all, tile, &p));
    }
}

#[test]
fn tiles_over_http() {
    let t = build_index(Metric::Haversine, 2, &paris());
    let server = common::inproc::serve(Arc::clone(&t.index), ServerConfig::default());
    let base = server.base.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get = |path: &str| {
        let mut r = agent.get(&format!("{base}{path}")).call().unwrap();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (r.status().as_u16(), ct, r.body_mut().read_to_vec().unwrap())
    };
    let tile = tile_at(12, 2.35, 48.85);
    let (st, ct, body) = get(&format!(
        "/v1/tiles/heatmap/12/{}/{}.png?radius=1500&saturation=3",
        tile.x, tile.y
    ));
    assert_eq!((st, ct.as_str()), (200, "image/png"));
    let decoder = png::Decoder::new(std::io::Cursor::new(body));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        (info.width, info.height, info.color_type),
        (256, 256, png::ColorType::Rgba)
    );
    let opaque = buf.chunks(4).filter(|p| p[3] > 0).count();
    assert!(opaque > 1000, "{opaque} coloured pixels");
    // An empty tile is the shared transparent PNG.
    let (st, _, body) = get("/v1/tiles/heatmap/12/0/0.png");
    assert_eq!((st, body.as_slice()), (200, empty_png()));
    for (path, param) in [
        ("/v1/tiles/heatmap/23/0/0.png", "z"),
        ("/v1/tiles/heatmap/3/8/0.png", "x"),
        ("/v1/tiles/heatmap/3/0/8.png", "y"),
        ("/v1/tiles/heatmap/3/0/1", "y"),
        ("/v1/tiles/heatmap/a/0/1.png", "z"),
        ("/v1/tiles/heatmap/3/0/1.png?radius=0", "radius"),
        ("/v1/tiles/heatmap/3/0/1.png?radius=60000", "radius"),
        ("/v1/tiles/heatmap/3/0/1.png?saturation=-1", "saturation"),
        ("/v1/tiles/heatmap/3/0/1.png?saturation=NaN", "saturation"),
        ("/v1/tiles/heatmap/3/0/1.png?where=nocolon", "where"),
    ] {
        let (st, ct, body) = get(path);
        assert_eq!(st, 400, "{path}");
        assert!(ct.starts_with("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["param"], param, "{path}: {v}");
    }
}

#[test]
fn the_cli_prerenders_tiles() {
    let t = build_index(Metric::Haversine, 2, &paris());
    let path = t.path();
    let out = t.dir.path().join("tiles");
    drop(t.index);
    let stdout = common::proc::kdsled_status(
        &[
            "tiles",
            "--db",
            path.to_str().unwrap(),
            "--bbox",
            "2.2,48.75,2.5,48.95",
            "--zoom",
            "10-11",
            "--out",
            out.to_str().unwrap(),
        ],
        "",
    );
    let tile = tile_at(11, 2.35, 48.85);
    let f = out
        .join("11")
        .join(tile.x.to_string())
        .join(format!("{}.png", tile.y));
    assert!(std::fs::metadata(&f).unwrap().len() > empty_png().len() as u64);
    assert!(stdout.contains("non-empty"));
}

/// Deterministic pseudo-random numbers in [0, 1).
fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

/// Clusters around (lon, lat) of about `spread` degrees.
fn cluster(n: usize, lon: f64, lat: f64, spread: f64, seed: u64) -> Vec<[f64; 2]> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            let a = lcg(&mut s) - 0.5;
            let b = lcg(&mut s) - 0.5;
            let k = lcg(&mut s).powi(3);
            [
                (lon + spread * a * k * 2.0 + 540.0) % 360.0 - 180.0,
                (lat + spread * b * k).clamp(-90.0, 90.0),
            ]
        })
        .collect()
}

fn params(r: f64, saturation: f64) -> HeatmapParams {
    HeatmapParams {
        radius_m: r,
        saturation,
        filter: None,
    }
}

#[test]
fn the_binned_renderer_stays_within_its_stated_bound() {
    // (zoom, centre lon, lat, spread in degrees, radius m): small and large discs, low and high
    // zooms, high latitudes, the antimeridian.
    let cases = [
        (11u32, 2.35, 48.85, 0.2, 1200.0),
        (11, 2.35, 48.85, 0.3, 5000.0),
        (14, 2.35, 48.85, 0.5, 50_000.0),
        (8, 2.35, 48.85, 2.0, 20_000.0),
        (5, 10.0, 60.0, 8.0, 50_000.0),
        (2, 20.0, 70.0, 30.0, 50_000.0),
        (0, 0.0, 0.0, 120.0, 50_000.0),
        (9, 179.9, -16.5, 1.0, 30_000.0),
        (10, -179.95, -16.5, 0.5, 10_000.0),
        (6, 25.0, 84.0, 3.0, 40_000.0),
    ];
    for (i, (z, lon, lat, spread, r)) in cases.into_iter().enumerate() {
        let pts = cluster(400, lon, lat, spread, i as u64 + 1);
        let t = tile_at(z, lon, lat.clamp(-85.0, 85.0));
        let p = params(r, 1e4);
        let got = draw_binned(t, &pts, &p);
        assert!(got.error_km > 0.0);
        let rel = within_bound(&got, &pts, t, &p);
        println!(
            "{t:?} r {r}: bound {:.4} km per point, largest error {rel:.4} of the peak",
            got.error_km
        );
        // The bound is a worst case; the pictures are close.
        assert!(rel < 0.03, "{t:?} r {r}: {rel}");
    }
}

#[test]
fn the_binned_renderer_handles_adversarial_points() {
    let p = params(20_000.0, 1e4);
    let t = tile_at(9, 2.35, 48.85);
    let (lon, lat) = pixel_center(t, 128, 128);
    let sets: Vec<Vec<[f64; 2]>> = vec![
        Vec::new(),
        vec![[lon, lat]],
        // One place repeated: every copy in one bin.
        vec![[lon, lat]; 300],
        // Collinear along a meridian and along a parallel, through the tile and beyond.
        (0..200)
            .map(|i| [lon, lat - 0.5 + i as f64 * 0.005])
            .collect(),
        (0..200)
            .map(|i| [lon - 0.7 + i as f64 * 0.007, lat])
            .collect(),
    ];
    for pts in &sets {
        let got = draw_binned(t, pts, &p);
        within_bound(&got, pts, t, &p);
        assert_eq!(got.is_empty(), pts.is_empty());
    }
    // Beyond the map's latitudes (above 85.05 N), next to the top row of tiles: splatted exactly.
    let top = TileId::new(8, 128, 0).unwrap();
    let (lon0, _) = pixel_center(top, 128, 0);
    let mut polar: Vec<[f64; 2]> = (0..50).map(|i| [lon0, 85.1 + i as f64 * 0.002]).collect();
    polar.extend(cluster(100, lon0, 84.9, 0.5, 9));
    let p = params(30_000.0, 1e4);
    let got = draw_binned(top, &polar, &p);
    within_bound(&got, &polar, top, &p);
    assert!(!got.is_empty());
}

#[test]
fn cheap_tiles_are_splatted_exactly_and_costly_ones_binned() {
    let few = cluster(50, 2.35, 48.85, 0.05, 3);
    let t = tile_at(12, 2.35, 48.85);
    let p = params(1200.0, 4.0);
    let exact = draw(t, &few, &p);
    assert_eq!(exact.error_km, 0.0);
    close(&exact.values, &render_brute(&few, t, &p));
    // Tens of thousands of points whose discs each cover the whole tile.
    let many = cluster(20_000, 2.35, 48.85, 0.5, 4);
    let p = params(50_000.0, 1e4);
    let t = tile_at(12, 2.35, 48.85);
    let binned = draw(t, &many, &p);
    assert!(binned.error_km > 0.0);
    // Checked on a sample: the full brute force over 20,000 points is slow in a test build.
    let sample: Vec<[f64; 2]> = many.iter().step_by(40).copied().collect();
    let sampled = draw_binned(t, &sample, &p);
    within_bound(&sampled, &sample, t, &p);
}

#[test]
fn the_splat_is_exact_at_small_zooms_at_the_poles_and_across_the_antimeridian() {
    // Random points worldwide, and adversarial ones: at the poles, at the map's edge (85.05°),
    // on both sides of the antimeridian, duplicated.
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut pts: Vec<[f64; 2]> = (0..120)
        .map(|_| [rnd() * 360.0 - 180.0, rnd() * 178.0 - 89.0])
        .collect();
    for lat in [89.999, -89.999, 85.04, 85.06, -85.06, 60.0, 0.0] {
        for lon in [-179.999, 179.999, 0.0] {
            pts.push([lon, lat]);
        }
    }
    pts.extend(std::iter::repeat_n([179.9995, 84.9], 20));
    let mut drawn = 0;
    for (z, x, y) in [
        (0, 0, 0),
        (1, 0, 0),
        (1, 1, 1),
        (2, 3, 0),
        (3, 0, 4),
        (4, 15, 7),
    ] {
        let t = TileId::new(z, x, y).unwrap();
        for r in [1_200.0, 20_000.0, 50_000.0] {
            let p = params(r, 0.5);
            let got = draw(t, &pts, &p);
            assert_eq!(got.error_km, 0.0, "a few points are splatted");
            let want = render_brute(&pts, t, &p);
            if z == 0 && r >= 20_000.0 {
                // The duplicates at 179.9995°E reach the world tile's first column, across
                // the antimeridian.
                assert!(want[0] > 0.0, "r {r}: the wrap is not exercised");
            }
            drawn += usize::from(want.iter().any(|v| *v > 0.0));
            close(&got.values, &want);
        }
    }
    assert!(drawn >= 12, "only {drawn} of 18 tiles have a drawn pixel");
}
