//! Rendering one heatmap tile.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::lat_rows::LatRows;
use super::mercator::{lat_of, lon_of, metres_per_px, x_of, TileId};
use crate::error::{Error, Result};
use crate::geometry::metric::{
    cos_lat, haversine, lon_half_span, small_cos, small_distance_of_haversine, small_sin,
    SMALL_ANGLE_MAX,
};
use crate::geometry::{BBox, Metric, EARTH_RADIUS_M};
use crate::index::Index;
use crate::query::Filter;

/// Pixels per tile side.
pub const TILE_SIZE: usize = 256;

/// Largest radius a tile may use, metres: beyond it one query would read too much of the index.
pub const MAX_RADIUS_M: f64 = 50_000.0;

// The renderers' kernels take distances without the arcsine, exact only that far.
const _: () = assert!(MAX_RADIUS_M <= crate::geometry::metric::SMALL_DISTANCE_MAX_M);

/// Most points one tile may read; lower zooms over dense data must be pre-rendered from higher
/// ones or asked at a higher zoom.
pub const MAX_CANDIDATES: usize = 2_000_000;

/// How a heatmap is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapParams {
    /// Walking distance, metres.
    pub radius_m: f64,
    /// Summed closeness (in km) at which a pixel saturates.
    pub saturation: f64,
    /// Only points whose attribute equals a value: (field, value).
    pub filter: Option<Filter>,
}

impl Default for HeatmapParams {
    fn default() -> Self {
        HeatmapParams {
            radius_m: 1200.0,
            saturation: 4.0,
            filter: None,
        }
    }
}

impl HeatmapParams {
    /// Checks the parameters.
    pub fn check(&self) -> Result<()> {
        if !(self.radius_m > 0.0 && self.radius_m <= MAX_RADIUS_M) {
            return Err(Error::invalid(
                "radius",
                format!("{} m is outside (0, {MAX_RADIUS_M}]", self.radius_m),
            ));
        }
        if !(self.saturation.is_finite() && self.saturation > 0.0) {
            return Err(Error::invalid(
                "saturation",
                format!("{} must be a positive number", self.saturation),
            ));
        }
        Ok(())
    }
}

/// A rendered tile: per-pixel values, row-major from the top-left.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Values in [0, 1].
    pub values: Vec<f64>,
    /// Points that could touch the tile (read from the index).
    pub candidates: usize,
    /// 0 when every pixel is the exact sum; else each pixel's sum (km, before saturation) is
    /// within `error_km × N` of the exact one, `N` being the points within `r + error_km` of it
    /// (see [`super::binned`]).
    pub error_km: f64,
}

impl Tile {
    /// Whether every pixel is zero.
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(|v| *v == 0.0)
    }

    /// The tile as an RGBA PNG: the jet colormap, alpha growing with the value, transparent
    /// where zero.
    pub fn png(&self) -> Vec<u8> {
        if self.is_empty() {
            return empty_png().to_vec();
        }
        let mut rgba = Vec::with_capacity(TILE_SIZE * TILE_SIZE * 4);
        for &v in &self.values {
            rgba.extend_from_slice(&color(v));
        }
        encode_png(&rgba)
    }
}

/// Viridis, perceptually uniform and readable without colour vision: its stops, every eighth.
/// The map page's legend draws the same stops.
pub const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// The viridis colour of `v` in [0, 1] with an alpha that grows with the value; transparent at 0.
pub fn color(v: f64) -> [u8; 4] {
    if v <= 0.0 || v.is_nan() {
        return [0, 0, 0, 0];
    }
    let v = v.min(1.0);
    let x = v * (VIRIDIS.len() - 1) as f64;
    // Every value here is in [0, 255], where truncation is the floor and `+ 0.5` then rounds:
    // `floor` and `round` are libm calls without SSE4.1, four per pixel of a PNG.
    let i = (x as usize).min(VIRIDIS.len() - 2);
    let t = x - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t + 0.5) as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    [
        mix(a[0], b[0]),
        mix(a[1], b[1]),
        mix(a[2], b[2]),
        (96.0 + 159.0 * v + 0.5) as u8,
    ]
}

fn encode_png(rgba: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, TILE_SIZE as u32, TILE_SIZE as u32);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        // fdeflate's PNG-tuned DEFLATE: the default (zlib level 6 with adaptive filters) took
        // 28-36 ms a 256x256 tile, more than rendering it.
        enc.set_compression(png::Compression::Fast);
        // Writing to a Vec fails only on a malformed image, and ours has the declared size.
        if let Ok(mut w) = enc.write_header() {
            let _ = w.write_image_data(rgba);
        }
    }
    out
}

/// The fully transparent tile, encoded once.
pub fn empty_png() -> &'static [u8] {
    static EMPTY: OnceLock<Vec<u8>> = OnceLock::new();
    EMPTY.get_or_init(|| encode_png(&vec![0u8; TILE_SIZE * TILE_SIZE * 4]))
}

/// The box that holds every point within `r` metres of the tile, as (min, max) corners; a
/// longitude range wider than the globe becomes the whole globe.
fn grown_extent(t: TileId, r: f64) -> ([f64; 2], [f64; 2]) {
    let n = t.n();
    let (lon0, lon1) = (lon_of(t.x as f64, n), lon_of(t.x as f64 + 1.0, n));
    let (lat1, lat0) = (lat_of(t.y as f64, n), lat_of(t.y as f64 + 1.0, n));
    let ang = r / EARTH_RADIUS_M;
    let dlat = ang.to_degrees();
    let (glat0, glat1) = ((lat0 - dlat).max(-90.0), (lat1 + dlat).min(90.0));
    let span = lon_half_span(ang, glat0.abs().max(glat1.abs()));
    let Some(dlon) = span.filter(|_| glat1 < 90.0 && glat0 > -90.0) else {
        return ([-180.0, glat0], [180.0, glat1]);
    };
    let (mut a, mut b) = (lon0 - dlon, lon1 + dlon);
    if b - a >= 360.0 {
        return ([-180.0, glat0], [180.0, glat1]);
    }
    if a < -180.0 {
        a += 360.0;
    }
    if b > 180.0 {
        b -= 360.0;
    }
    // a > b now means the box crosses the antimeridian, which BBox understands.
    ([a, glat0], [b, glat1])
}

/// Renders tile `t` from `index` (a haversine index).
///
/// The candidates are read under a snapshot that is released before the pixels are computed in
/// parallel: a read lock held across a rayon join on a shared pool would let a stolen job wait
/// on a writer that waits on this lock.
pub fn render(index: &Index, t: TileId, p: &HeatmapParams) -> Result<Tile> {
    let points = candidates(index, t, p)?;
    Ok(draw(t, &points, p))
}

/// Splat work (in pixel visits, each about 4–11 ns on one of two cores: one great-circle term,
/// cheapest in large discs) up to which a tile is splatted exactly whatever binning would cost:
/// about 20–30 ms.
const SPLAT_BUDGET: f64 = 2.7e6;

/// What a point costs the splat beyond its pixels, in pixel visits: finding its box
/// ([`disc_rows`]: two table look-ups, a few multiplications).
const SPLAT_POINT_COST: f64 = 1.5;

/// What a point whose box holds a pixel costs beyond that: the row and column terms set up for it.
const SPLAT_SETUP_COST: f64 = 3.0;

/// What binning costs per point, in the same units (projection, sort, merge, kernel): binned
/// tiles of 350–475 thousand points took 130–150 ns per point on two cores (`cargo bench --bench
/// tiles`), where the splat took 58 ms at 16 pixel visits per point (binned: 70 ms) and 92 ms at
/// 53 (binned: 69 ms). The crossover is near 25–30.
const BINNED_POINT_COST: f64 = 25.0;

/// Draws tile `t` from its candidates: splatted exactly when that is cheap (or cheaper than
/// binning them), else from a binned density grid ([`super::binned`]) with a bounded error.
pub fn draw(t: TileId, points: &[[f64; 2]], p: &HeatmapParams) -> Tile {
    let n = t.n();
    let full = (TILE_SIZE * TILE_SIZE) as f64;
    // The splat's work per point: finding its box, setting up its terms when the box holds a
    // pixel (likely as (2 r_px)² while that is under 1), and the pixels within its disc.
    // Estimated on a sample of large sets: the estimate must cost far less than the splat.
    let step = if points.len() > 8192 { 16 } else { 1 };
    let sampled: f64 = points
        .iter()
        .step_by(step)
        .map(|c| {
            let r_px = p.radius_m / metres_per_px(c[1], n).max(1e-9);
            let hit = (2.0 * r_px).min(1.0).powi(2);
            SPLAT_POINT_COST
                + SPLAT_SETUP_COST * hit
                + (std::f64::consts::PI * r_px * r_px).min(full)
        })
        .sum();
    let work = sampled * step as f64;
    if work <= SPLAT_BUDGET.max(BINNED_POINT_COST * points.len() as f64) {
        return saturated(splat(t, points, p), points.len(), 0.0, p);
    }
    draw_binned(t, points, p)
}

fn saturated(sums: Vec<f64>, candidates: usize, error_km: f64, p: &HeatmapParams) -> Tile {
    Tile {
        values: sums
            .into_iter()
            .map(|v| (v / p.saturation).min(1.0))
            .collect(),
        candidates,
        error_km,
    }
}

/// Draws tile `t` from a binned density grid whatever the cost of splatting (see [`draw`]).
pub fn draw_binned(t: TileId, points: &[[f64; 2]], p: &HeatmapParams) -> Tile {
    let n = t.n();
    // Points beyond the map's latitudes have no pixel row to be binned into: those few are
    // splatted exactly on top.
    let beyond: Vec<[f64; 2]> = points
        .iter()
        .filter(|c| c[1].abs() > MAP_LAT)
        .copied()
        .collect();
    let center = lon_of(t.x as f64 + 0.5, n);
    let project = |c: &[f64; 2]| {
        let lon = nearest_copy(c[0], center);
        ((x_of(lon, n) - t.x as f64) * TILE_SIZE as f64, c[1])
    };
    // Mapped straight into place when every point has a row (the rule): a filtered parallel
    // collect gathers per-thread lists and copies them, which cost as much as the projection.
    let projected = super::binned::Projected {
        points: if beyond.is_empty() {
            points.par_iter().map(project).collect()
        } else {
            points
                .par_iter()
                .filter(|c| c[1].abs() <= MAP_LAT)
                .map(project)
                .collect()
        },
    };
    let b = super::binned::render(t, &projected, p.radius_m);
    let mut sums = b.sums;
    if !beyond.is_empty() {
        for (s, e) in sums.iter_mut().zip(splat(t, &beyond, p)) {
            *s += e;
        }
    }
    saturated(sums, points.len(), b.error_km, p)
}

/// The highest latitude Web Mercator maps (85.0511°), a little under.
const MAP_LAT: f64 = 85.05;

/// The copy of longitude `lon` nearest `center` (across the antimeridian if need be).
fn nearest_copy(lon: f64, center: f64) -> f64 {
    if lon - center > 180.0 {
        lon - 360.0
    } else if center - lon > 180.0 {
        lon + 360.0
    } else {
        lon
    }
}

/// The points (lon, lat) of `index` that can touch tile `t` and pass the filter.
pub fn candidates(index: &Index, t: TileId, p: &HeatmapParams) -> Result<Vec<[f64; 2]>> {
    let snap = index.snapshot().filtered(p.filter.clone());
    p.check()?;
    if snap.meta().metric != Metric::Haversine {
        return Err(Error::invalid(
            "index",
            "heatmap tiles need a lon/lat (haversine) index",
        ));
    }
    let (lo, hi) = grown_extent(t, p.radius_m);
    let bbox = BBox::new(Metric::Haversine, &lo, &hi)?;
    // Room for every point up front when the tile may take most of the index (small zooms):
    // growing a vector of a million points by doubling copied it and faulted in twice its pages.
    // The reservation is address space only until points are written.
    let mut points = Vec::with_capacity(if t.z <= 3 {
        (snap.meta().count as usize).min(MAX_CANDIDATES)
    } else {
        0
    });
    let found =
        snap.for_each_within(&bbox, MAX_CANDIDATES as u64, |c| points.push([c[0], c[1]]))?;
    if found > MAX_CANDIDATES as u64 {
        return Err(Error::invalid(
            "z",
            format!(
                "the tile and its radius cover {found} points, more than {MAX_CANDIDATES}: zoom in"
            ),
        ));
    }
    Ok(points)
}

/// Pixel centres of tile `t`: (lon, lat) of pixel (px, py).
pub fn pixel_center(t: TileId, px: usize, py: usize) -> (f64, f64) {
    let n = t.n();
    let s = TILE_SIZE as f64;
    (
        lon_of(t.x as f64 + (px as f64 + 0.5) / s, n),
        lat_of(t.y as f64 + (py as f64 + 0.5) / s, n),
    )
}

/// What [`disc_rows`] needs of a tile and a radius, computed once per tile.
struct DiscBounds {
    /// The radius in degrees of latitude.
    dlat: f64,
    /// The rows by their pixel centres' latitudes.
    rows: LatRows,
    /// The longitude of the first column's centres, and columns per degree of longitude.
    lon0: f64,
    px_per_deg: f64,
    /// The columns' half-width of a disc (`None`: every column) by [`sec_table`] step of
    /// |φ| + radius: worked out once per tile instead of once per point.
    half_cols: Vec<Option<f64>>,
}

/// Latitude steps of [`sec_table`], per degree.
const SEC_STEPS: f64 = 10.0;

/// A [`sec_table`] step above |φ| degrees (`phi` ≥ 0), the next one up when φ is on a step:
/// its secant bounds sec φ above.
fn sec_step(phi: f64) -> usize {
    super::index_of(phi * SEC_STEPS) + 1
}

/// sec φ at every [`SEC_STEPS`]-th of a degree up to 89°, behind [`DiscBounds::half_cols`].
fn sec_table() -> &'static [f64] {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=(89.0 * SEC_STEPS) as usize)
            .map(|i| 1.0 / (i as f64 / SEC_STEPS).to_radians().cos())
            .collect()
    })
}

impl DiscBounds {
    /// Longitude `lon` in columns from the first column's centre (fractional, unclamped).
    fn column(&self, lon: f64) -> f64 {
        (lon - self.lon0) * self.px_per_deg
    }

    fn new(t: TileId, r: f64, lats: &[f64], lons: &[f64]) -> DiscBounds {
        let ang = r / EARTH_RADIUS_M;
        let deg_per_px = 360.0 / (TILE_SIZE as f64 * t.n());
        let sin_ang = ang.sin();
        // A disc reaching a pole, or wide in longitude, may cover every column.
        let half_cols = sec_table()
            .iter()
            .map(|sec| {
                let sn = sin_ang * sec;
                (sn < 0.9).then(|| {
                    let dlon = (sn / (1.0 - sn * sn).sqrt()).to_degrees() * (1.0 + 1e-9) + 1e-12;
                    dlon / deg_per_px
                })
            })
            .collect();
        DiscBounds {
            dlat: ang.to_degrees(),
            rows: LatRows::new(lats),
            lon0: lons[0],
            px_per_deg: 1.0 / deg_per_px,
            half_cols,
        }
    }
}

/// The rows (y0..=y1) and the columns' half-width around the point, in columns (`None`: every
/// column), of the pixels whose centres may lie within the radius of a point at latitude `lat`;
/// `None` when no row of the tile's can.
///
/// Rows: exactly those whose centre latitude is within the radius's latitude span (a great-circle
/// distance is at least the latitude difference), found from a table by latitude. Columns:
/// within `asin(sin a · sec φ_max) ≤ s/√(1−s²)` (s = sin a · sec φ_max, φ_max = |φ| + a, sec from
/// a table rounded up) of the point's longitude, an upper bound of the disc's longitude
/// half-span. So no pixel within the radius is missed, and at small zooms, where most discs hold
/// no pixel centre at all, a point costs two table look-ups and no transcendental function.
fn disc_rows(b: &DiscBounds, lat: f64) -> Option<(usize, usize, Option<f64>)> {
    let (top, bottom) = (lat + b.dlat, lat - b.dlat);
    let y0 = b.rows.first_at_or_south(top);
    let y1 = b.rows.first_south_of(bottom);
    if y0 >= y1 {
        return None;
    }
    // Past the table's 89° the disc may reach a pole: every column.
    let half = b
        .half_cols
        .get(sec_step(lat.abs() + b.dlat))
        .copied()
        .flatten();
    Some((y0, y1 - 1, half))
}

/// The columns x0..=x1 within `half` columns of longitude `lon` (every column for `None`).
fn disc_columns(b: &DiscBounds, lon: f64, half: Option<f64>) -> Option<(usize, usize)> {
    let last = TILE_SIZE - 1;
    let Some(w) = half else {
        return Some((0, last));
    };
    let u = b.column(lon);
    // Clamped to the tile first: both ends are then small and non-negative, where truncation
    // is the floor (the splat's cost at small zooms is such bookkeeping per point).
    let (lo, hi) = ((u - w).max(0.0), (u + w).min(last as f64));
    // (`max` and `min` drop a NaN, so both are numbers.)
    if lo > hi {
        return None;
    }
    let (t, x1) = (super::index_of(lo), super::index_of(hi));
    let x0 = t + usize::from((t as f64) < lo);
    (x0 <= x1).then_some((x0, x1))
}

/// Whether the columns within `half` columns of longitude `lon` reach past either edge of the
/// tile: only then can the world tile's copy of a disc 360° away hold a pixel (it is 256
/// columns off), so most points skip looking for it.
fn leaves_tile(b: &DiscBounds, lon: f64, half: f64) -> bool {
    let u = b.column(lon);
    !(u - half >= 0.0 && u + half <= (TILE_SIZE - 1) as f64)
}

/// Adds each point's contribution to the pixels within its radius: the exact sums, km.
fn splat(t: TileId, points: &[[f64; 2]], p: &HeatmapParams) -> Vec<f64> {
    let n = t.n();
    let r = p.radius_m;
    let tile_center_lon = lon_of(t.x as f64 + 0.5, n);
    // Pixel centres, computed once.
    let lons: Vec<f64> = (0..TILE_SIZE).map(|px| pixel_center(t, px, 0).0).collect();
    let lats: Vec<f64> = (0..TILE_SIZE).map(|py| pixel_center(t, 0, py).1).collect();
    let lat_cos: Vec<f64> = lats.iter().map(|l| cos_lat(*l)).collect();
    let lat_sin: Vec<f64> = lats.iter().map(|l| l.to_radians().sin()).collect();
    // Centres in radians: a point's differences from them are small angles (within the radius),
    // whose sines a short series gives exactly, with no libm call per point.
    let lon_rad: Vec<f64> = lons.iter().map(|l| l.to_radians()).collect();
    let lat_rad: Vec<f64> = lats.iter().map(|l| l.to_radians()).collect();
    // Columns of a disc are within this half-angle of its centre (radians) for the series to
    // serve; wider discs (at the poles) take the sine.
    let deg_per_px = 360.0 / (TILE_SIZE as f64 * n);
    let small_cols = SMALL_ANGLE_MAX / (0.5 * deg_per_px.to_radians());
    let bounds = DiscBounds::new(t, r, &lats, &lons);
    let world = n == 1.0;
    // Enough chunks for every thread even when there are few points.
    let chunk = points
        .len()
        .div_ceil(4 * rayon::current_num_threads())
        .clamp(1, 256);
    // Each split rayon makes gets its own 512 KB accumulator, zeroed (faulted in) and added
    // up at the end: a few per thread keep the balance without dozens of them.
    let chunks = points.len().div_ceil(chunk);
    let per_split = chunks.div_ceil(4 * rayon::current_num_threads()).max(1);
    let mut sums = points
        .par_chunks(chunk)
        .with_min_len(per_split)
        .fold(
            || vec![0.0f64; TILE_SIZE * TILE_SIZE],
            |mut acc, chunk| {
                let mut s2: Vec<f64> = Vec::with_capacity(TILE_SIZE);
                for c in chunk {
                    let (lon, lat) = (c[0], c[1]);
                    let near_lon = nearest_copy(lon, tile_center_lon);
                    let Some((y0, y1, half)) = disc_rows(&bounds, lat) else {
                        continue;
                    };
                    // The world tile (zoom 0) spans every longitude: a disc over the
                    // antimeridian reaches the far edge too, through the copy 360° away (a box
                    // of every column holds its pixels already).
                    let far_lon = near_lon - 360f64.copysign(near_lon);
                    let far = half
                        .filter(|w| world && leaves_tile(&bounds, near_lon, *w))
                        .and_then(|_| disc_columns(&bounds, far_lon, half));
                    let near = disc_columns(&bounds, near_lon, half);
                    if near.is_none() && far.is_none() {
                        continue;
                    }
                    // The haversine formula split into its row and column terms, each computed
                    // once per box: sin²(Δφ/2) + cos φ₁ cos φ₂ sin²(Δλ/2). Row y0 is within the
                    // radius's latitude span of the point, so cos φ₁ = cos(φ_y0 + δ) takes only
                    // the small δ's series.
                    let phi = lat.to_radians();
                    let delta = phi - lat_rad[y0];
                    let c1 =
                        (lat_cos[y0] * small_cos(delta) - lat_sin[y0] * small_sin(delta)).max(0.0);
                    let wide = half.is_none_or(|w| w > small_cols);
                    for ((x0, x1), copy) in [(near, near_lon), (far, far_lon)]
                        .into_iter()
                        .filter_map(|(cols, lon)| Some((cols?, lon.to_radians())))
                    {
                        s2.clear();
                        s2.extend(lon_rad[x0..=x1].iter().map(|l| {
                            let h = (l - copy) * 0.5;
                            if wide {
                                h.sin().powi(2)
                            } else {
                                small_sin(h).powi(2)
                            }
                        }));
                        for py in y0..=y1 {
                            let s1 = small_sin((lat_rad[py] - phi) * 0.5).powi(2);
                            let cc = c1 * lat_cos[py];
                            let row = &mut acc[py * TILE_SIZE + x0..=py * TILE_SIZE + x1];
                            // No branch per pixel, so the loop vectorises: beyond the radius
                            // the series (increasing in `a`) gives more than r, which adds 0,
                            // exactly as skipping the pixel would. Half a box's pixels are
                            // outside its disc, which made a branch here a coin toss.
                            // Metres, turned into km once per pixel at the end: a division
                            // per pixel visit was the loop's slowest instruction.
                            for (v, s2) in row.iter_mut().zip(&s2) {
                                let d = small_distance_of_haversine(s1 + cc * s2);
                                *v += (r - d).max(0.0);
                            }
                        }
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![0.0f64; TILE_SIZE * TILE_SIZE],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    sums.iter_mut().for_each(|v| *v /= 1000.0);
    sums
}

/// The exact per-pixel sums (km, before saturation): every point against every pixel. The
/// oracle of the tests.
pub fn sums_brute(points: &[[f64; 2]], t: TileId, p: &HeatmapParams) -> Vec<f64> {
    let r_km = p.radius_m / 1000.0;
    let mut out = vec![0.0; TILE_SIZE * TILE_SIZE];
    for py in 0..TILE_SIZE {
        for px in 0..TILE_SIZE {
            let (lon, lat) = pixel_center(t, px, py);
            out[py * TILE_SIZE + px] = points
                .iter()
                .map(|c| haversine(c[0], c[1], lon, lat))
                .filter(|d| *d <= p.radius_m)
                .map(|d| r_km - d / 1000.0)
                .sum();
        }
    }
    out
}

/// The reference renderer: every point against every pixel, saturated. For tests and
/// benchmarks.
pub fn render_brute(points: &[[f64; 2]], t: TileId, p: &HeatmapParams) -> Vec<f64> {
    sums_brute(points, t, p)
        .into_iter()
        .map(|v| (v / p.saturation).min(1.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_round_as_f64_round_does() {
        // The colour by f64::floor and f64::round, as it was written first.
        let reference = |v: f64| -> [u8; 4] {
            let v = v.min(1.0);
            let x = v * (VIRIDIS.len() - 1) as f64;
            let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
            let t = x - i as f64;
            let mix =
                |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
            let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
            [
                mix(a[0], b[0]),
                mix(a[1], b[1]),
                mix(a[2], b[2]),
                (96.0 + 159.0 * v).round() as u8,
            ]
        };
        for i in 1..=200_000 {
            let v = f64::from(i) / 200_000.0;
            assert_eq!(color(v), reference(v), "v = {v}");
        }
        assert_eq!(color(2.0), reference(1.0));
        assert_eq!(color(0.0), [0, 0, 0, 0]);
        assert_eq!(color(f64::NAN), [0, 0, 0, 0]);
        assert_eq!(color(1e-300)[3], 96);
    }
}
