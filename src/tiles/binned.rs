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
use super::render::TILE_SIZE;
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
    // The finest spacings whose work fits the budget; the coarsest if none does. The points are
    // binned at the finest; coarser grids' work is estimated from those bins, and the points
    // binned again only at the spacings chosen (binning is most of a dense tile's cost).
    let finest = spacings(r_px_min, 32.0);
    let fine = Grid::bin(points, t, (south, north), finest.0, finest.1);
    let ((s_l, k), grid) = if fine.work(t, r, hi_abs, finest.0, finest.1) <= WORK_BUDGET {
        (finest, fine)
    } else {
        let medium = spacings(r_px_min, 16.0);
        let (s_l, k) = if fine.work(t, r, hi_abs, medium.0, medium.1) <= WORK_BUDGET {
            medium
        } else {
            spacings(r_px_min, 8.0)
        };
        ((s_l, k), Grid::bin(points, t, (south, north), s_l, k))
    };
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

/// `slice` cut into consecutive pieces of the given lengths (which must not add up to more
/// than its length), for threads to fill side by side.
fn split_lengths<T>(slice: &mut [T], lengths: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut pieces = Vec::with_capacity(lengths.size_hint().0);
    let mut rest = slice;
    for len in lengths {
        let (piece, tail) = rest.split_at_mut(len);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// `x.floor()` for pixel-sized values (well inside i64), inlined: without SSE4.1 in the target
/// `f64::floor` is a libm call, and binning calls it for every coordinate.
#[inline]
fn floor_px(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// An occupied bin: its column `q·k + rho` (`k` bins per lattice spacing, so that it sits
/// `rho` bins past lattice column `q`), and its count of points.
#[derive(Clone, Copy)]
struct Bin {
    q: i32,
    rho: u32,
    count: f64,
}

/// Point counts per bin, row by row.
struct Grid {
    /// Bin size, pixels.
    s_b: f64,
    /// Occupied bins, row after row, each row's sorted by column.
    bins: Vec<Bin>,
    /// Where each row's bins start in `bins` (one more entry than rows).
    starts: Vec<usize>,
    /// The index of the first row.
    row0: i64,
    /// Bins per lattice spacing.
    k: usize,
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
        // Placed by bands of rows in parallel: each band owns its rows' stretch of `cols` and
        // scans every cell for its own (a scan is cheap beside the scattered writes).
        let mut cols = vec![0i32; cells.len()];
        let bands = rayon::current_num_threads().clamp(1, rows.max(1));
        let per_band = rows.div_ceil(bands).max(1);
        let band_rows = |band: usize| {
            (
                (band * per_band).min(rows),
                ((band + 1) * per_band).min(rows),
            )
        };
        let mut stretches = split_lengths(
            &mut cols,
            (0..bands).map(|band| {
                let (r0, r1) = band_rows(band);
                at[r1] - at[r0]
            }),
        );
        stretches
            .par_iter_mut()
            .enumerate()
            .for_each(|(band, stretch)| {
                let (r0, r1) = band_rows(band);
                let base = at[r0];
                let mut next: Vec<usize> = at[r0..r1].iter().map(|a| a - base).collect();
                for &(row, col) in &cells {
                    let row = row as usize;
                    if (r0..r1).contains(&row) {
                        let slot = &mut next[row - r0];
                        stretch[*slot] = col;
                        *slot += 1;
                    }
                }
            });
        drop(cells);
        // Rows sorted and their distinct columns counted in parallel (the sort is most of the
        // binning), then each row's bins written in place, in parallel too.
        let mut row_slices = split_lengths(&mut cols, at.windows(2).map(|w| w[1] - w[0]));
        let distinct: Vec<usize> = row_slices
            .par_iter_mut()
            .map(|row| {
                row.sort_unstable();
                row.chunk_by(|a, b| a == b).count()
            })
            .collect();
        let mut merged = vec![0usize; rows + 1];
        for i in 0..rows {
            merged[i + 1] = merged[i] + distinct[i];
        }
        let empty = Bin {
            q: 0,
            rho: 0,
            count: 0.0,
        };
        let mut bins = vec![empty; merged[rows]];
        let mut outs = split_lengths(&mut bins, distinct.iter().copied());
        let k = k as i32;
        outs.par_iter_mut().enumerate().for_each(|(i, out)| {
            let runs = cols[at[i]..at[i + 1]].chunk_by(|a, b| a == b);
            for (slot, run) in out.iter_mut().zip(runs) {
                *slot = Bin {
                    q: run[0].div_euclid(k),
                    rho: run[0].rem_euclid(k) as u32,
                    count: run.len() as f64,
                };
            }
        });
        Grid {
            s_b,
            bins,
            starts: merged,
            row0: first,
            k: k as usize,
        }
    }

    /// Kernel applications (bin × lattice point) of evaluating a grid of spacings `s_l` and
    /// `k` (see [`spacings`]): each occupied bin adds to the lattice points within r of it, a
    /// square of `reach` lattice spacings a side, larger where pixels are smaller (towards the
    /// poles). Exact for this grid's own spacings; for coarser ones an estimate that counts
    /// the coarser bins this grid's bin centres fall in, which is all the choice of spacings
    /// needs.
    fn work(&self, t: TileId, r: f64, hi_abs: f64, s_l: f64, k: usize) -> f64 {
        let n = t.n();
        let s_b = s_l / k as f64;
        let v_of_row = |i: usize| 0.5 + (self.row0 + i as i64) as f64 * self.s_b;
        let reach_sq = |v: f64| {
            let lat = lat_of(t.y as f64 + v / TILE_SIZE as f64, n);
            let reach = r / (metres_per_px(lat.abs().min(hi_abs), n) * s_l) * 2.0 + 1.0;
            reach * reach
        };
        let occupied = (0..self.rows()).filter(|&i| !self.row(i).is_empty());
        if s_b == self.s_b {
            return occupied
                .map(|i| self.row(i).len() as f64 * reach_sq(v_of_row(i)))
                .sum();
        }
        let per_bin = 1.0 / s_b;
        let cell = |x: f64| floor_px((x - 0.5) * per_bin + 0.5) as i64;
        let k_self = self.k as i64;
        let col_of = |b: &Bin| {
            let col = i64::from(b.q) * k_self + i64::from(b.rho);
            cell(0.5 + col as f64 * self.s_b)
        };
        // The occupied rows grouped by the coarser row they fall in (in order, so each group
        // is a run), and each group's distinct coarser bins counted on its own, the groups in
        // parallel: a serial pass over every bin cost as much as binning the points.
        // A group is its coarser row and its first and past-last occupied rows (the empty rows
        // between hold no bins).
        let mut groups: Vec<(i64, usize, usize)> = Vec::new();
        for i in occupied {
            let coarse = cell(v_of_row(i));
            match groups.last_mut() {
                Some((row, _, end)) if *row == coarse => *end = i + 1,
                _ => groups.push((coarse, i, i + 1)),
            }
        }
        // Summed in order, not by rayon's splits: the same tile always picks the same spacings.
        let per_group: Vec<f64> = groups
            .par_iter()
            .map(|&(_, first, end)| {
                // Each row's coarser columns are sorted already (a monotone map of sorted
                // columns): the stable sort merges those runs.
                let mut cols: Vec<i64> = (first..end)
                    .flat_map(|i| self.row(i).iter().map(col_of))
                    .collect();
                cols.sort();
                cols.dedup();
                cols.len() as f64 * reach_sq(v_of_row(first))
            })
            .collect();
        per_group.iter().sum()
    }

    /// Rows of bins, empty ones included.
    fn rows(&self) -> usize {
        self.starts.len() - 1
    }

    /// The occupied bins of row `i` (0 being `row0`).
    fn row(&self, i: usize) -> &[Bin] {
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
        // A bin adds a run of `2h + 1` weights centred on its lattice column, h at most this
        // (see `h` below): rows are summed with twice that margin each side, so that no run is
        // clipped to the row bin by bin (the clipping was most of a short run's cost).
        let h_max = (max_cols + k) / k;
        let pad = 2 * h_max;
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
                let mut by_rho: Vec<f64> = Vec::new();
                let mut padded = vec![0.0f64; side + 2 * pad];
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
                    // A bin `rho` bins past lattice column q is |Δ·k − rho| bins from lattice
                    // column q + Δ: per residue rho, the kernel by Δ in −h..=h (0 beyond
                    // `half`), so that each bin adds one contiguous, vectorisable run.
                    let h = (half + k) / k;
                    let width = 2 * h + 1;
                    // Filled in place: extending from a flat map pushed one weight at a time,
                    // a tenth of a dense tile's time where k is large.
                    by_rho.clear();
                    by_rho.resize(k * width, 0.0);
                    for (rho, run) in by_rho.chunks_exact_mut(width).enumerate() {
                        for (i, w) in run.iter_mut().enumerate() {
                            let off = (i as i64 - h as i64) * k as i64 - rho as i64;
                            *w = kernel
                                .get(off.unsigned_abs() as usize)
                                .copied()
                                .unwrap_or(0.0);
                        }
                    }
                    let (h, last_col) = (h as i64, side as i64 - 1);
                    for b in bins {
                        let q = i64::from(b.q);
                        // Runs that miss the row entirely; the rest start at or after
                        // `pad − 2h` ≥ 0 and end before `side + 2 pad` in `padded`.
                        if q + h < 0 || q - h > last_col {
                            continue;
                        }
                        let weights = &by_rho[b.rho as usize * width..][..width];
                        let start = (q - h + pad as i64) as usize;
                        let cols = &mut padded[start..start + width];
                        for (o, w) in cols.iter_mut().zip(weights) {
                            *o += b.count * w;
                        }
                    }
                }
                out.copy_from_slice(&padded[pad..pad + side]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::mercator::{lon_of, x_of};

    /// Points clustered around the tile's centre (a few hundred metres to tens of km).
    fn clustered(t: TileId, count: usize) -> Projected {
        let n = t.n();
        let (lon, lat) = (lon_of(t.x as f64 + 0.5, n), lat_of(t.y as f64 + 0.5, n));
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let points = (0..count)
            .map(|_| {
                let spread = if next() < 0.5 { 0.05 } else { 2.0 };
                let (dx, dy) = ((next() - 0.5) * spread, (next() - 0.5) * spread);
                let p_lon = lon + dx;
                ((x_of(p_lon, n) - t.x as f64) * TILE_SIZE as f64, lat + dy)
            })
            .collect();
        Projected { points }
    }

    #[test]
    fn coarser_work_is_estimated_from_the_fine_bins() {
        let t = TileId::new(4, 8, 5).expect("tile");
        let pts = clustered(t, 50_000);
        let (south, north) = pts
            .points
            .iter()
            .fold((90.0f64, -90.0f64), |(s, n), p| (s.min(p.1), n.max(p.1)));
        let (r, hi_abs) = (50_000.0, 60.0);
        let r_px = 7.5;
        let finest = spacings(r_px, 32.0);
        let fine = Grid::bin(&pts, t, (south, north), finest.0, finest.1);
        assert_eq!(
            fine.bins.iter().map(|b| b.count).sum::<f64>(),
            pts.points.len() as f64,
            "every point is in a bin"
        );
        for cells in [16.0, 8.0] {
            let (s_l, k) = spacings(r_px, cells);
            let coarse = Grid::bin(&pts, t, (south, north), s_l, k);
            let exact = coarse.work(t, r, hi_abs, s_l, k);
            let estimate = fine.work(t, r, hi_abs, s_l, k);
            assert!(coarse.bins.len() < fine.bins.len());
            assert!(
                (estimate / exact - 1.0).abs() < 0.1,
                "{cells} cells a radius: estimated {estimate:e}, binned {exact:e}"
            );
        }
    }
}
