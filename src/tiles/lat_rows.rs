//! Which row of a tile a latitude falls in, without projecting it: the renderers place millions
//! of points a tile, and Web Mercator's `y` costs a sine and a logarithm each.

/// A strictly decreasing sequence of latitudes (rows from north to south: pixel centres, or the
/// edges between bins) and a table by latitude that starts a search at most a row or two short
/// of its answer.
pub(super) struct LatRows {
    /// The latitudes, then −∞, so that a search stops at the end unbidden.
    lats: Vec<f64>,
    /// `starts[b]` is the first row at or south of `lats[0] − b·step`.
    starts: Vec<usize>,
    /// 1 / step, per degree.
    per_step: f64,
    /// The last bucket, as a float to clamp with.
    last_bucket: f64,
}

impl LatRows {
    /// The rows of `lats` (at least two, strictly decreasing).
    pub(super) fn new(lats: &[f64]) -> LatRows {
        let last = lats.len() - 1;
        // Buckets at most half the narrowest row (up to a bound on the table's size), so that a
        // bucket's start is at most a row or two short of any answer in it.
        let narrowest = lats
            .windows(2)
            .map(|w| w[0] - w[1])
            .fold(f64::INFINITY, f64::min);
        let span = lats[0] - lats[last];
        let buckets = ((span / narrowest.max(1e-12)) * 2.0).clamp(256.0, 65536.0) as usize;
        let step = span / buckets as f64;
        let starts = (0..=buckets)
            .map(|b| lats.partition_point(|&l| l > lats[0] - b as f64 * step))
            .collect();
        LatRows {
            lats: lats.iter().copied().chain([f64::NEG_INFINITY]).collect(),
            starts,
            per_step: 1.0 / step,
            last_bucket: buckets as f64,
        }
    }

    /// The first row whose latitude is at or south of `x` (`lats.len()` if none is): as
    /// `lats.partition_point(|l| l > x)`.
    #[inline]
    pub(super) fn first_at_or_south(&self, x: f64) -> usize {
        self.first(x, |l, x| l > x)
    }

    /// The first row whose latitude is south of `x` (`lats.len()` if none is): as
    /// `lats.partition_point(|l| l >= x)`.
    #[inline]
    pub(super) fn first_south_of(&self, x: f64) -> usize {
        self.first(x, |l, x| l >= x)
    }

    #[inline]
    fn first(&self, x: f64, north: impl Fn(f64, f64) -> bool) -> usize {
        // One bucket short of the one holding x, so that rounding cannot start past the answer
        // (clamped to the table; a NaN starts at row 0).
        let b = ((self.lats[0] - x) * self.per_step - 1.0)
            .max(0.0)
            .min(self.last_bucket);
        let mut y = self.starts[super::index_of(b)];
        // Two steps without a branch (the answer is usually there: mispredicted loop exits were
        // much of a splat's cost at small zooms), then a loop for what rounding or the table's
        // size bound leaves.
        y += usize::from(north(self.lats[y], x));
        y += usize::from(north(self.lats[y], x));
        while north(self.lats[y], x) {
            y += 1;
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::mercator::lat_of;

    fn check(lats: &[f64]) {
        let rows = LatRows::new(lats);
        let (hi, lo) = (lats[0] + 1.0, lats[lats.len() - 1] - 1.0);
        let mut probes: Vec<f64> = (0..=20_000)
            .map(|i| hi - (hi - lo) * f64::from(i) / 20_000.0)
            .collect();
        // Every row's own latitude and its neighbours in f64: the edges of each answer.
        for &l in lats {
            probes.extend([l, l.next_up(), l.next_down()]);
        }
        for x in probes {
            assert_eq!(
                rows.first_at_or_south(x),
                lats.partition_point(|&l| l > x),
                "at or south of {x}"
            );
            assert_eq!(
                rows.first_south_of(x),
                lats.partition_point(|&l| l >= x),
                "south of {x}"
            );
        }
    }

    #[test]
    fn rows_match_a_binary_search() {
        // Pixel centres of the world tile (rows narrow towards its edges), of a tile near the
        // top of the map, and uneven rows that the table's size bound leaves coarse.
        let centres = |z: u32, y: u32| -> Vec<f64> {
            let n = f64::from(1u32 << z);
            (0..256)
                .map(|py| lat_of(f64::from(y) + (f64::from(py) + 0.5) / 256.0, n))
                .collect()
        };
        check(&centres(0, 0));
        check(&centres(3, 0));
        check(&centres(12, 2000));
        let mut uneven = vec![80.0, 79.999_999_999, 10.0];
        uneven.extend((0..50).map(|i| -f64::from(i)));
        check(&uneven);
        check(&[1.0, 0.0]);
    }
}
