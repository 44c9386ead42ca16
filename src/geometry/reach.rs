//! The axis-aligned box around a radius query: a cheap superset of the points within reach.
//!
//! A radius walk prunes a subtree when its side of a split lies outside this box, and computes a
//! point's exact distance only when the point lies inside it. Both tests are comparisons, so a
//! walk does trigonometry only for the few points near the answer instead of for every node and
//! every child region it considers.

use super::metric::{Metric, EARTH_RADIUS_M, MAX_DIMS};

/// Which longitudes can hold a point within reach.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lon {
    /// Not a lon/lat index.
    None,
    /// Every longitude (the reach covers a pole, or half the globe).
    All,
    /// `lo..=hi` within [-180, 180].
    Span(f64, f64),
    /// `lo..=180` and `-180..=hi`: the window crosses the antimeridian.
    Wrapped(f64, f64),
}

/// A closed box per axis that contains every point within a distance of a centre.
#[derive(Debug, Clone, Copy)]
pub struct ReachBox {
    /// Per-axis bounds for split tests; an axis with no bound has infinities.
    lo: [f64; MAX_DIMS],
    hi: [f64; MAX_DIMS],
    dims: usize,
    lon: Lon,
    /// A region whose lower bound on an axis is at least this lies inside the box on that side
    /// (infinite where no bound proves it, as for a window that wraps the antimeridian).
    inside_lo: [f64; MAX_DIMS],
    /// Likewise for upper bounds at most this.
    inside_hi: [f64; MAX_DIMS],
    /// Sides of the whole space (the globe) already inside the box: bit `2a` for axis a's
    /// lower side, `2a + 1` for its upper side.
    root_mask: u64,
}

impl ReachBox {
    /// The box around `center` holding everything within `reach` under `metric`.
    pub fn new(metric: Metric, center: &[f64], reach: f64) -> ReachBox {
        let mut b = ReachBox {
            lo: [f64::NEG_INFINITY; MAX_DIMS],
            hi: [f64::INFINITY; MAX_DIMS],
            dims: center.len(),
            lon: Lon::None,
            inside_lo: [f64::INFINITY; MAX_DIMS],
            inside_hi: [f64::NEG_INFINITY; MAX_DIMS],
            root_mask: 0,
        };
        b.bound(metric, center, reach);
        b.set_inside(metric);
        b
    }

    fn bound(&mut self, metric: Metric, center: &[f64], reach: f64) {
        let b = self;
        match metric {
            Metric::Euclidean => {
                for (a, c) in center.iter().enumerate() {
                    b.lo[a] = c - reach;
                    b.hi[a] = c + reach;
                }
            }
            Metric::Haversine => {
                let (lon, lat) = (center[0], center[1]);
                // Rounding in the degree conversions is far below this margin (1e-9 degrees is
                // 0.1 mm); the box only has to be a superset.
                let margin = 1e-9;
                let delta = (reach / EARTH_RADIUS_M).to_degrees();
                if delta >= 180.0 {
                    b.lon = Lon::All;
                    return;
                }
                // Along a meridian the distance is the latitude difference: a lower bound.
                b.lo[1] = lat - delta - margin;
                b.hi[1] = lat + delta + margin;
                b.lon = if b.hi[1] >= 90.0 || b.lo[1] <= -90.0 {
                    Lon::All
                } else {
                    // The widest longitude a cap of angular radius delta reaches from latitude
                    // lat (the cap holds no pole here, so the ratio is below 1).
                    let ratio = delta.to_radians().sin() / lat.to_radians().cos();
                    if ratio >= 1.0 {
                        Lon::All
                    } else {
                        let w = ratio.asin().to_degrees() * (1.0 + 1e-9) + margin;
                        if w >= 180.0 {
                            Lon::All
                        } else if lon - w < -180.0 {
                            Lon::Wrapped(lon - w + 360.0, lon + w)
                        } else if lon + w > 180.0 {
                            Lon::Wrapped(lon - w, lon + w - 360.0)
                        } else {
                            Lon::Span(lon - w, lon + w)
                        }
                    }
                };
                if let Lon::Span(lo, hi) = b.lon {
                    b.lo[0] = lo;
                    b.hi[0] = hi;
                }
                // A wrapped window reaches both ends of the longitude range, so both sides of
                // every longitude split stay reachable: the infinities already say so.
            }
        }
    }

    fn set_inside(&mut self, metric: Metric) {
        let root = metric.root_region(self.dims);
        for a in 0..self.dims {
            let bounded = !(a == 0 && matches!(self.lon, Lon::Wrapped(..)));
            if a == 0 && self.lon == Lon::All {
                self.root_mask |= 0b11;
                continue;
            }
            if bounded {
                self.inside_lo[a] = self.lo[a];
                self.inside_hi[a] = self.hi[a];
            }
            if root.lo[a] >= self.inside_lo[a] {
                self.root_mask |= 1 << (2 * a);
            }
            if root.hi[a] <= self.inside_hi[a] {
                self.root_mask |= 1 << (2 * a + 1);
            }
        }
    }

    /// Which sides of the whole space lie inside the box, as a mask for [`ReachBox::below_mask`],
    /// [`ReachBox::above_mask`] and [`ReachBox::holds`].
    #[inline]
    pub fn root_mask(&self) -> u64 {
        self.root_mask
    }

    /// The mask of the below side of a split on `axis` at `split`, in a region with `mask`.
    #[inline]
    pub fn below_mask(&self, mask: u64, axis: usize, split: f64) -> u64 {
        if split <= self.inside_hi[axis] {
            mask | 1 << (2 * axis + 1)
        } else {
            mask
        }
    }

    /// The mask of the above side of a split on `axis` at `split`, in a region with `mask`.
    #[inline]
    pub fn above_mask(&self, mask: u64, axis: usize, split: f64) -> u64 {
        if split >= self.inside_lo[axis] {
            mask | 1 << (2 * axis)
        } else {
            mask
        }
    }

    /// Whether a region with `mask` lies wholly inside the box: a walk will visit every node
    /// under it.
    #[inline]
    pub fn holds(&self, mask: u64) -> bool {
        mask == (1u64 << (2 * self.dims)) - 1
    }

    /// Whether some point at or below `split` on `axis` may lie in the box.
    #[inline]
    pub fn reaches_below(&self, axis: usize, split: f64) -> bool {
        split >= self.lo[axis]
    }

    /// The box's bounds on `axis` (for a lon/lat box, longitude's are the whole range when its
    /// window wraps or covers every longitude).
    #[inline]
    pub fn bounds(&self, axis: usize) -> (f64, f64) {
        (self.lo[axis], self.hi[axis])
    }

    /// Whether some point at or above `split` on `axis` may lie in the box.
    #[inline]
    pub fn reaches_above(&self, axis: usize, split: f64) -> bool {
        split <= self.hi[axis]
    }

    /// Whether `p` lies in the box.
    #[inline(always)]
    pub fn contains(&self, p: &[f64]) -> bool {
        let first = match self.lon {
            Lon::None => 0,
            Lon::All => 1,
            Lon::Span(lo, hi) => {
                if p[0] < lo || p[0] > hi {
                    return false;
                }
                1
            }
            Lon::Wrapped(lo, hi) => {
                if p[0] < lo && p[0] > hi {
                    return false;
                }
                1
            }
        };
        (first..self.dims).all(|a| p[a] >= self.lo[a] && p[a] <= self.hi[a])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand(s: &mut u64) -> f64 {
        *s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*s >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Every point within reach is in the box, near poles and the antimeridian included.
    #[test]
    fn the_box_holds_every_point_within_reach() {
        let mut s = 3u64;
        let m = Metric::Haversine;
        for i in 0..200_000 {
            let c = match i % 4 {
                0 => [rand(&mut s) * 360.0 - 180.0, rand(&mut s) * 180.0 - 90.0],
                1 => [179.0 + rand(&mut s) * 2.0 - 1.0, rand(&mut s) * 10.0],
                2 => [rand(&mut s) * 360.0 - 180.0, 89.0 + rand(&mut s)],
                _ => [-180.0 + rand(&mut s) * 0.5, -60.0 + rand(&mut s)],
            };
            // Points near the centre, some far away.
            let spread = [0.01, 1.0, 30.0][i % 3];
            let mut p = [
                c[0] + (rand(&mut s) - 0.5) * spread,
                (c[1] + (rand(&mut s) - 0.5) * spread).clamp(-90.0, 90.0),
            ];
            if p[0] > 180.0 {
                p[0] -= 360.0;
            }
            if p[0] < -180.0 {
                p[0] += 360.0;
            }
            let d = m.distance(&c, &p);
            for reach in [d, d * 1.5, 1.0, 50_000.0, 3.0e6] {
                if d <= reach {
                    let b = ReachBox::new(m, &c, reach);
                    assert!(b.contains(&p), "{p:?} at {d} m of {c:?}, reach {reach}");
                    assert!(b.reaches_below(0, p[0]) && b.reaches_above(0, p[0]));
                    assert!(b.reaches_below(1, p[1]) && b.reaches_above(1, p[1]));
                }
            }
        }
    }

    #[test]
    fn the_box_is_tight_away_from_the_poles() {
        let b = ReachBox::new(Metric::Haversine, &[10.0, 45.0], 1000.0);
        assert!(!b.contains(&[10.0, 45.02]));
        assert!(!b.contains(&[10.02, 45.0]));
        assert!(b.contains(&[10.0, 45.008]));
        let e = ReachBox::new(Metric::Euclidean, &[1.0, 2.0, 3.0], 0.5);
        assert!(e.contains(&[1.5, 2.5, 2.5]));
        assert!(!e.contains(&[1.6, 2.0, 3.0]));
    }
}
