//! The heatmap from a binned density grid, for tiles where splatting each point would cost too
//! much: many points, or discs that cover many pixels.
//!
//! Points are counted into bins of `s_b` pixels; the sum `Σ max(0, r − d)` is evaluated on a
//! lattice of pixel centres `s_l = k·s_b` pixels apart (every pixel when `s_l` is 1) and
//! interpolated bilinearly to pixels in between. Distances are exact great-circle distances
//! between lattice points and bin centres: in Web Mercator a longitude offset is a column offset,
//! so for one lattice row and one bin row the kernel is a function of the column difference
//! alone, computed once per pair of rows and slid along the row (no flat-earth scale, and no
//! distortion at any latitude).
//!
//! **Error bound.** Moving a point by `δ` metres changes its term by at most `δ` (the kernel is
//! 1-Lipschitz in the distance), and bilinear interpolation between lattice points at most `√2·s_l`
//! pixels away changes a term by at most that distance. With `m` the largest metres per pixel
//! among the points, every pixel's sum (in km) is within
//! `δ_km × N` of the exact per-pixel sum, where `δ = (√2/2·s_b + √2·s_l [if s_l > 1])·m` and `N`
//! counts the points within `r + δ` of the pixel: [`Binned::error_km`] is `δ_km`. The spacings
//! are chosen from the radius (`s_l` ≤ r/32 or r/16 pixels, bins at most r/16), so each point's
//! term is off by at most ~9% of its peak `r` when interpolating and ~4% when not, and far
//! less on average.

use rayon::prelude::*;

use super::lat_rows::LatRows;
use super::mercator::{lat_of, metres_per_px, y_unclamped, TileId};
use super::render::{floor_px, TILE_SIZE};
use crate::geometry::metric::{
    cos_lat, haversine_of_distance, lon_half_span, small_distance_of_haversine,
};
use crate::geometry::EARTH_RADIUS_M;

/// Most kernel applications (bin × lattice point) a tile may cost before coarser spacings are
/// chosen: about 20 ms on two cores (8e7 made a dense zoom-5 tile at 50 km 2.4x slower for a
/// bound 10x tighter; tiles keep to their time budget first).
const WORK_BUDGET: f64 = 4.0e7;

/// Points by their tile pixel column (`u` right, the tile is `[0, 256)`) and their latitude, for
/// binning (rows are found by latitude: see [`LatRows`]).
pub struct Projected {
    /// (u, latitude) of each point.
    pub points: Vec<(f64, f64)>,
}

/// A rendered binned tile: pixel sums in km before saturation, and its error bound.
pub struct Binned {
    /// Row-major pixel sums, km.
    pub sums: Vec<f64>,
    /// Each pixel's sum is within `error_km × N` of the exact sum, `N` being the points within
    /// `r + error_km` of the pixel.
    pub error_km: f64,
    /// Lattice spacing used, pixels.
    pub lattice_px: f64,
    /// Bin size used, pixels.
    pub bin_px: f64,
}

/// The lattice spacing (pixels) and the bins per lattice spacing for a radius of `r_px` pixels
/// (the smallest over the points) spanning about `cells_per_radius` bins.
fn spacings(r_px: f64, cells_per_radius: f64) -> (f64, usize) {
    if r_px >= cells_per_radius {
        // Lattice r/K apart, bins the same size.
        (r_px / cells_per_radius, 1)
    } else {
        // Every pixel is a lattice point; bins split a pixel so that at least K of them span a
        // radius (up to 128 per pixel side).
        let k = (cells_per_radius / r_px.max(1e-9)).ceil().clamp(1.0, 128.0) as usize;
        (1.0, k)
    }
}

/// Renders tile `t` with radius `r` metres from `points` (projected, all within the Mercator
/// map's latitudes).
pub fn render(t: TileId, points: &Projected, r: f64) -> Binned {
    let n = t.n();
    let metres_per_px = |lat: f64| metres_per_px(lat, n);
    // The smallest |latitude| among the points has the largest pixels; the largest |latitude|
    // the smallest pixels (largest discs in pixels).
    let (mut lo_abs, mut hi_abs) = (90.0f64, 0.0f64);
    let (mut south, mut north) = (90.0f64, -90.0f64);
    for &(_, lat) in &points.points {
        lo_abs = lo_abs.min(lat.abs());
        hi_abs = hi_abs.max(lat.abs());
        south = south.min(lat);
        north = north.max(lat);
    }
    // The tile's own rows matter too (lattice points are there).
    for v in [0.0, TILE_SIZE as f64] {
        let lat = lat_of(t.y as f64 + v / TILE_SIZE as f64, n).abs();
        lo_abs = lo_abs.min(lat);
        hi_abs = hi_abs.max(lat);
    }
    let m_max = metres_per_px(lo_abs);
    let r_px_min = r / m_max;
    // The finest spacings whose work fits the budget; the coarsest if none does.
    let pick = |cells: f64| {
        let (s_l, k) = spacings(r_px_min, cells);
        let grid = Grid::bin(points, t, (south, north), s_l, k);
        // Each occupied bin adds to the lattice points within r of it: a square of `reach`
        // lattice spacings a side, larger where pixels are smaller (towards the poles).
        let work: f64 = (0..grid.rows())
            .map(|i| (i, grid.row(i)))
            .filter(|(_, bins)| !bins.is_empty())
            .map(|(i, bins)| {
                let v = 0.5 + (grid.row0 + i as i64) as f64 * grid.s_b;
                let lat = lat_of(t.y as f64 + v / TILE_SIZE as f64, n);
                let reach = r / (metres_per_px(lat.abs().min(hi_abs)) * s_l) * 2.0 + 1.0;
                bins.len() as f64 * reach * reach
            })
            .sum();
        (work <= WORK_BUDGET, s_l, k, grid)
    };
    let (mut fits, mut s_l, mut k, mut grid) = pick(32.0);
    if !fits {
        (fits, s_l, k, grid) = pick(16.0);
    }
    if !fits {
        (_, s_l, k, grid) = pick(8.0);
    }
    let s_b = s_l / k as f64;
    let lattice = grid.evaluate(t, r, s_l, k, hi_abs);
    let sums = if lattice.side == TILE_SIZE {
        lattice.values
    } else {
        lattice.interpolate(s_l)
    };
    let interp = if s_l > 1.0 {
        std::f64::consts::SQRT_2 * s_l
    } else {
        0.0
    };
    let delta_px = std::f64::consts::FRAC_1_SQRT_2 * s_b + interp;
    Binned {
        sums,
        error_km: delta_px * m_max / 1000.0,
        lattice_px: s_l,
        bin_px: s_b,
    }
}

/// Point counts per bin, row by row.
struct Grid {
    /// Bin size, pixels.
    s_b: f64,
    /// Occupied bins as (column, count), row after row, each row's sorted by column.
    bins: Vec<(i64, f64)>,
    /// Where each row's bins start in `bins` (one more entry than rows).
    starts: Vec<usize>,
    /// The index of the first row.
    row0: i64,
}

impl Grid {
    /// Bins whose centres are at `0.5 + i·s_b` pixels, so every `k`-th one sits on a lattice
    /// point; `lats` is the points' (southmost, northmost) latitude.
    fn bin(points: &Projected, t: TileId, lats: (f64, f64), s_l: f64, k: usize) -> Grid {
        let s_b = s_l / k as f64;
        let n = t.n();
        // Nearest bin centre, rounded without a libm call (`f64::round` is one per coordinate).
        let per_bin = 1.0 / s_b;
        let cell = |u: f64| floor_px((u - 0.5) * per_bin + 0.5) as i64;
        // Bin row i holds v in [0.5 + (i − ½)·s_b, 0.5 + (i + ½)·s_b): a point is placed by
        // its latitude among the latitudes of those edges (a sine and a logarithm per point
        // was most of the binning), a row of margin each side for rounding.
        let v_of = |lat: f64| (y_unclamped(lat, n) - t.y as f64) * TILE_SIZE as f64;
        let (south, north) = lats;
        let first = cell(v_of(north)) - 1;
        let rows = (cell(v_of(south)) + 1 - first + 1).max(1) as usize;
        let edges: Vec<f64> = (0..=rows)
            .map(|m| {
                let v = 0.5 + ((first + m as i64) as f64 - 0.5) * s_b;
                lat_of(t.y as f64 + v / TILE_SIZE as f64, n)
            })
            .collect();
        let by_lat = LatRows::new(&edges);
        // (row from `first`, column) of each point, as 32-bit numbers: half the memory to fault
        // in per tile (columns of the grown extent are far inside i32 in bins of these sizes).
        let cells: Vec<(u32, i32)> = points
            .points
            .par_iter()
            .map(|&(u, lat)| {
                let m = by_lat.first_south_of(lat).clamp(1, rows) - 1;
                (m as u32, cell(u) as i32)
            })
            .collect();
        // A counting sort by row (rows are few beside points), then each row's columns sorted
        // and merged into counts: a comparison sort of every point cost a dense tile as much as
        // the rest of its rendering.
        let mut at = vec![0usize; rows + 1];
        for &(row, _) in &cells {
            at[row as usize + 1] += 1;
        }
        for i in 0..rows {
            at[i + 1] += at[i];
        }
        let mut cols = vec![0i32; cells.len()];
        let mut next = at.clone();
        for &(row, col) in &cells {
            let slot = &mut next[row as usize];
            cols[*slot] = col;
            *slot += 1;
        }
        drop(cells);
        // Rows sorted in parallel (the sort is most of the binning), then merged in order.
        let mut row_slices: Vec<&mut [i32]> = Vec::with_capacity(rows);
        let mut rest = cols.as_mut_slice();
        for i in 0..rows {
            let (row, tail) = rest.split_at_mut(at[i + 1] - at[i]);
            row_slices.push(row);
            rest = tail;
        }
        row_slices
            .par_iter_mut()
            .for_each(|row| row.sort_unstable());
        // Room for a bin per point up front: growing by doubling copied the bins and faulted
        // in fresh pages each time (reserved pages cost nothing until written).
        let mut bins: Vec<(i64, f64)> = Vec::with_capacity(cols.len());
        let mut merged = vec![0usize; rows + 1];
        for i in 0..rows {
            let row = &cols[at[i]..at[i + 1]];
            let before = bins.len();
            for &col in row.iter() {
                let col = i64::from(col);
                let fresh = bins.len() == before;
                match bins.last_mut() {
                    Some((c, n)) if !fresh && *c == col => *n += 1.0,
                    _ => bins.push((col, 1.0)),
                }
            }
            merged[i + 1] = bins.len();
        }
        Grid {
            s_b,
            bins,
            starts: merged,
            row0: first,
        }
    }

    /// Rows of bins, empty ones included.
    fn rows(&self) -> usize {
        self.starts.len() - 1
    }

    /// The occupied bins of row `i` (0 being `row0`).
    fn row(&self, i: usize) -> &[(i64, f64)] {
        &self.bins[self.starts[i]..self.starts[i + 1]]
    }

    /// The sums at lattice points `0.5 + j·s_l` pixels (both axes), in km.
    fn evaluate(&self, t: TileId, r: f64, s_l: f64, k: usize, hi_abs: f64) -> Lattice {
        let n = t.n();
        let side = ((TILE_SIZE as f64 - 1.0) / s_l).ceil() as usize + 1;
        let lat_at = |v_px: f64| lat_of(t.y as f64 + v_px / TILE_SIZE as f64, n);
        let deg_per_px = 360.0 / (TILE_SIZE as f64 * n);
        let ang = r / EARTH_RADIUS_M;
        let dlat = ang.to_degrees();
        let r_km = r / 1000.0;
        // The haversine's longitude term for a column offset of d bins, shared by every pair
        // of rows: sin²(Δλ/2).
        // Columns up to the widest longitude span a disc reaches, at the highest latitude a
        // lattice point or bin has.
        let span = lon_half_span(ang, (hi_abs + ang.to_degrees()).min(89.999)).unwrap_or(180.0);
        let max_cols = (span / (self.s_b * deg_per_px)).ceil() as usize + 1;
        let a_r = haversine_of_distance(r) * (1.0 + 1e-9);
        let s2: Vec<f64> = (0..=max_cols)
            .map(|d| {
                ((d as f64 * self.s_b * deg_per_px).to_radians() * 0.5)
                    .sin()
                    .powi(2)
            })
            .collect();
        // One buffer, each lattice row written in place by whichever thread takes it.
        let mut values = vec![0.0f64; side * side];
        values
            .par_chunks_mut(side)
            .enumerate()
            .for_each(|(j, out)| {
                let v = 0.5 + j as f64 * s_l;
                let lat = lat_at(v);
                let (phi, cos_phi) = (lat.to_radians(), cos_lat(lat));
                // Bin rows whose latitude is within `r` of this row's.
                let (top, bottom) = ((lat + dlat).min(90.0), (lat - dlat).max(-90.0));
                let first = self.row_of_lat(t, top).max(self.row0);
                let last = self
                    .row_of_lat(t, bottom)
                    .min(self.row0 + self.rows() as i64 - 1);
                let mut kernel: Vec<f64> = Vec::new();
                for row in first..=last {
                    let bins = self.row((row - self.row0) as usize);
                    if bins.is_empty() {
                        continue;
                    }
                    let bin_lat = lat_at(0.5 + row as f64 * self.s_b);
                    // kernel[d] for a column offset of d bins (symmetric), while positive: the
                    // great-circle distance between this row and the bin row, d bins apart.
                    let s1 = ((bin_lat.to_radians() - phi) * 0.5).sin().powi(2);
                    let cc = cos_phi * cos_lat(bin_lat);
                    kernel.clear();
                    for s2 in &s2 {
                        let a = s1 + cc * s2;
                        if a > a_r {
                            break;
                        }
                        let w = r_km - small_distance_of_haversine(a) / 1000.0;
                        if w <= 0.0 {
                            break;
                        }
                        kernel.push(w);
                    }
                    let Some(half) = kernel.len().checked_sub(1) else {
                        continue;
                    };
                    let half = half as i64;
                    let k = k as i64;
                    for &(col, count) in bins {
                        // Lattice columns jc with |jc·k − col| ≤ half.
                        let lo =
                            (col - half).div_euclid(k) + i64::from((col - half).rem_euclid(k) != 0);
                        let hi = (col + half).div_euclid(k);
                        let (lo, hi) = (lo.max(0), hi.min(side as i64 - 1));
                        for jc in lo..=hi {
                            let off = (jc * k - col).unsigned_abs() as usize;
                            out[jc as usize] += count * kernel[off];
                        }
                    }
                }
            });
        Lattice { side, values }
    }

    /// The bin row holding latitude `lat` (rounded to the nearest centre).
    fn row_of_lat(&self, t: TileId, lat: f64) -> i64 {
        let n = t.n();
        let v = (y_unclamped(lat, n) - t.y as f64) * TILE_SIZE as f64;
        ((v - 0.5) / self.s_b).round() as i64
    }
}

/// Sums on the lattice, row-major, `side` per row.
struct Lattice {
    side: usize,
    values: Vec<f64>,
}

impl Lattice {
    /// Pixel values by bilinear interpolation between lattice points `s_l` pixels apart.
    fn interpolate(&self, s_l: f64) -> Vec<f64> {
        let at = |j: usize, i: usize| {
            self.values[j.min(self.side - 1) * self.side + i.min(self.side - 1)]
        };
        let mut out = Vec::with_capacity(TILE_SIZE * TILE_SIZE);
        for py in 0..TILE_SIZE {
            let y = py as f64 / s_l;
            let (j, fy) = (y.floor() as usize, y - y.floor());
            for px in 0..TILE_SIZE {
                let x = px as f64 / s_l;
                let (i, fx) = (x.floor() as usize, x - x.floor());
                let top = at(j, i) * (1.0 - fx) + at(j, i + 1) * fx;
                let bottom = at(j + 1, i) * (1.0 - fx) + at(j + 1, i + 1) * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
        out
    }
}
