//! Distance functions and the lower bounds that let a walk prune whole subtrees.

use super::region::Region;
use crate::error::{Error, Result};

/// Mean earth radius (IUGG), in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Highest number of dimensions an euclidean index may have.
pub const MAX_DIMS: usize = 16;

/// Half the earth's circumference: no two points on the sphere are further apart.
pub const HALF_CIRCUMFERENCE_M: f64 = std::f64::consts::PI * EARTH_RADIUS_M;

/// How distances are measured in an index. Chosen at build time and stored in the index's meta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Longitude/latitude in degrees, great-circle distance in metres on a sphere of radius
    /// [`EARTH_RADIUS_M`].
    Haversine,
    /// Straight-line distance in k dimensions.
    Euclidean,
}

impl Metric {
    /// The metric's name as the CLI and the meta record spell it.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Haversine => "haversine",
            Metric::Euclidean => "euclidean",
        }
    }

    /// Parses a metric name.
    pub fn parse(s: &str) -> Result<Metric> {
        match s {
            "haversine" => Ok(Metric::Haversine),
            "euclidean" => Ok(Metric::Euclidean),
            other => Err(Error::invalid(
                "metric",
                format!("unknown metric {other:?} (haversine or euclidean)"),
            )),
        }
    }

    /// Checks that `dims` suits the metric.
    pub fn check_dims(self, dims: usize) -> Result<()> {
        match self {
            Metric::Haversine if dims != 2 => Err(Error::invalid(
                "dims",
                format!("haversine indexes have 2 dimensions (lon, lat), not {dims}"),
            )),
            Metric::Euclidean if !(1..=MAX_DIMS).contains(&dims) => Err(Error::invalid(
                "dims",
                format!("euclidean indexes have 1 to {MAX_DIMS} dimensions, not {dims}"),
            )),
            _ => Ok(()),
        }
    }

    /// Checks that a point is valid for the metric: finite, and on the globe for haversine.
    /// The error names the offending coordinate (`lon`, `lat` or `coordinate N`).
    pub fn check_point(self, p: &[f64]) -> std::result::Result<(), String> {
        for (i, &c) in p.iter().enumerate() {
            if !c.is_finite() {
                return Err(format!("{} is {c}, not a finite number", self.axis_name(i)));
            }
        }
        if self == Metric::Haversine {
            if !(-180.0..=180.0).contains(&p[0]) {
                return Err(format!("longitude {} is outside [-180, 180]", p[0]));
            }
            if !(-90.0..=90.0).contains(&p[1]) {
                return Err(format!("latitude {} is outside [-90, 90]", p[1]));
            }
        }
        Ok(())
    }

    /// The name of axis `i` in messages.
    pub fn axis_name(self, i: usize) -> String {
        match (self, i) {
            (Metric::Haversine, 0) => "longitude".into(),
            (Metric::Haversine, 1) => "latitude".into(),
            _ => format!("coordinate {i}"),
        }
    }

    /// Distance from `a` to `b`: [`Origin::distance`] from `a`, so a walk that measures from
    /// one [`Metric::origin`] and an oracle that calls this agree to the last bit.
    #[inline]
    pub fn distance(self, a: &[f64], b: &[f64]) -> f64 {
        self.origin(a).distance(b)
    }

    /// `p` as the point many distances are measured from (a query's centre).
    #[inline]
    pub fn origin(self, p: &[f64]) -> Origin<'_> {
        let (phi, cos_lat, sin_phi, cos_phi) = match self {
            Metric::Haversine => {
                let phi = p[1].to_radians();
                let (s, c) = phi.sin_cos();
                // `cos_lat` from the cosine just taken: the same value, 0 at a pole.
                (phi, if p[1].abs() == 90.0 { 0.0 } else { c }, s, c)
            }
            Metric::Euclidean => (0.0, 0.0, 0.0, 0.0),
        };
        Origin {
            metric: self,
            p,
            phi,
            cos_lat,
            sin_phi,
            cos_phi,
        }
    }

    /// A lower bound of the distance from `p` to any point inside `region`.
    ///
    /// Exact for both metrics up to rounding; callers add [`Metric::slack`] before pruning so
    /// rounding never drops a point that lies on a query's boundary.
    #[inline]
    pub fn min_distance_to_region(self, p: &[f64], region: &Region, dims: usize) -> f64 {
        match self {
            Metric::Haversine => haversine_to_box(
                p[0],
                p[1],
                region.lo[0],
                region.lo[1],
                region.hi[0],
                region.hi[1],
            ),
            Metric::Euclidean => {
                let mut sum = 0.0;
                for ((&c, &lo), &hi) in p[..dims].iter().zip(&region.lo).zip(&region.hi) {
                    let d = if c < lo {
                        lo - c
                    } else if c > hi {
                        c - hi
                    } else {
                        0.0
                    };
                    sum += d * d;
                }
                sum.sqrt()
            }
        }
    }

    /// How far past a radius a subtree's lower bound may lie and still be visited: a margin for
    /// rounding in the bound, so pruning is always conservative.
    #[inline]
    pub fn slack(self, radius: f64) -> f64 {
        match self {
            // Trigonometry on metres-scale values loses ~1e-9 m; a millimetre is ample and costs
            // nothing measurable in extra visits.
            Metric::Haversine => 1e-3 + radius * 1e-9,
            Metric::Euclidean => radius.abs() * 1e-9 + f64::MIN_POSITIVE,
        }
    }

    /// The region that holds every valid point: the globe, or all of k-space.
    pub fn root_region(self, dims: usize) -> Region {
        match self {
            Metric::Haversine => {
                let mut r = Region::unbounded(2);
                r.lo[0] = -180.0;
                r.hi[0] = 180.0;
                r.lo[1] = -90.0;
                r.hi[1] = 90.0;
                r
            }
            Metric::Euclidean => Region::unbounded(dims),
        }
    }
}

/// A point distances are measured from, with the trigonometry of its latitude done once.
///
/// A radius walk measures every candidate from one centre; with libm's `sin`, `cos` and `asin`
/// per candidate those calls were a tenth of a 25 km query's server time. Here the sines of the
/// half differences and the cosine of the candidate's latitude (by the angle-addition formula
/// from the centre's) come from the small-angle series whenever the differences are small, and
/// the arcsine from its series for distances up to [`SMALL_DISTANCE_MAX_M`]; far pairs take the
/// libm path. Agrees with [`haversine`] within 1e-12 relative (tested over 400k pairs near and
/// far, at the poles and across the antimeridian; the worst seen is 6e-16), far below the
/// millimetre answers show and the walk's pruning [`Metric::slack`].
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    metric: Metric,
    p: &'a [f64],
    phi: f64,
    /// [`cos_lat`] of the origin: exactly 0 at a pole.
    cos_lat: f64,
    sin_phi: f64,
    cos_phi: f64,
}

/// Haversine terms of distances up to [`SMALL_DISTANCE_MAX_M`] (a little under
/// `haversine_of_distance(SMALL_DISTANCE_MAX_M)`, tested): the arcsine's series is exact below.
const SMALL_DISTANCE_MAX_A: f64 = 6.159e-5;

/// `sin(x / 2)`.
#[inline]
fn sin_half(x: f64) -> f64 {
    let h = x * 0.5;
    if h.abs() <= SMALL_ANGLE_MAX {
        small_sin(h)
    } else {
        h.sin()
    }
}

impl Origin<'_> {
    /// Distance from the origin to `q`.
    #[inline]
    pub fn distance(&self, q: &[f64]) -> f64 {
        match self.metric {
            Metric::Haversine => {
                let phi2 = q[1].to_radians();
                let dphi = phi2 - self.phi;
                let s1 = sin_half(dphi);
                let s2 = sin_half((q[0] - self.p[0]).to_radians());
                // cos(φ₁ + Δφ) from the origin's sine and cosine; exactly 0 at a pole, as
                // `cos_lat` gives, so points at one pole are 0 apart whatever their longitude.
                let cos2 = if q[1].abs() == 90.0 {
                    0.0
                } else if dphi.abs() <= SMALL_ANGLE_MAX {
                    self.cos_phi * small_cos(dphi) - self.sin_phi * small_sin(dphi)
                } else {
                    phi2.cos()
                };
                let a = s1 * s1 + self.cos_lat * cos2 * s2 * s2;
                if a <= SMALL_DISTANCE_MAX_A {
                    small_distance_of_haversine(a)
                } else {
                    distance_of_haversine(a)
                }
            }
            Metric::Euclidean => self
                .p
                .iter()
                .zip(q)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>()
                .sqrt(),
        }
    }
}

/// Great-circle distance in metres between two lon/lat points given in degrees, with libm's
/// trigonometry throughout: the reference [`Origin::distance`] is tested against.
#[inline]
pub fn haversine(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let phi1 = lat1.to_radians();
    let phi2 = lat2.to_radians();
    let dphi = phi2 - phi1;
    let dlambda = (lon2 - lon1).to_radians();
    let s1 = (dphi * 0.5).sin();
    let s2 = (dlambda * 0.5).sin();
    let a = s1 * s1 + cos_lat(lat1) * cos_lat(lat2) * s2 * s2;
    distance_of_haversine(a)
}

/// The great-circle distance, metres, whose haversine term `a = sin²(Δφ/2) + cos φ₁ cos φ₂
/// sin²(Δλ/2)` is given: for callers that build `a` from parts computed once and reused.
#[inline]
pub fn distance_of_haversine(a: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Distances up to which [`small_distance_of_haversine`] is exact to rounding, metres.
pub const SMALL_DISTANCE_MAX_M: f64 = 100_000.0;

/// [`distance_of_haversine`] for terms of distances up to [`SMALL_DISTANCE_MAX_M`], without the
/// arcsine: for inner loops (heatmap kernels) that evaluate millions of short distances.
///
/// The arcsine's Taylor series to x⁷ (x = √a ≤ sin(0.5·100 km / R) ≈ 0.0079 here) leaves out
/// terms below 35/1152·x⁹, a relative error under 6e-19: far below f64 rounding (1.1e-16), so
/// the two functions agree to the last bit or two.
#[inline]
pub fn small_distance_of_haversine(a: f64) -> f64 {
    let x = a.sqrt();
    2.0 * EARTH_RADIUS_M * x * (1.0 + a * (1.0 / 6.0 + a * (3.0 / 40.0 + a * (5.0 / 112.0))))
}

/// Angles (radians) up to which [`small_sin`] and [`small_cos`] are exact to rounding.
pub const SMALL_ANGLE_MAX: f64 = 0.1;

/// `x.sin()` for |x| ≤ [`SMALL_ANGLE_MAX`], without the libm call: its Taylor series to x⁹
/// leaves out terms below x¹¹/11! (relative 2.5e-18 at 0.1 rad), under f64 rounding. For kernels
/// that take the sine of a small difference per point (heatmap splats).
#[inline]
pub fn small_sin(x: f64) -> f64 {
    // Horner's form with constant coefficients: no division at run time.
    const C3: f64 = -1.0 / 6.0;
    const C5: f64 = 1.0 / 120.0;
    const C7: f64 = -1.0 / 5040.0;
    const C9: f64 = 1.0 / 362_880.0;
    let x2 = x * x;
    x + x * x2 * (C3 + x2 * (C5 + x2 * (C7 + x2 * C9)))
}

/// `x.cos()` for |x| ≤ [`SMALL_ANGLE_MAX`], like [`small_sin`] (series to x¹⁰).
#[inline]
pub fn small_cos(x: f64) -> f64 {
    const C2: f64 = -0.5;
    const C4: f64 = 1.0 / 24.0;
    const C6: f64 = -1.0 / 720.0;
    const C8: f64 = 1.0 / 40_320.0;
    const C10: f64 = -1.0 / 3_628_800.0;
    let x2 = x * x;
    1.0 + x2 * (C2 + x2 * (C4 + x2 * (C6 + x2 * (C8 + x2 * C10))))
}

/// The haversine term of a great-circle distance of `d` metres: pairs whose term exceeds it are
/// farther apart, which a caller can tell without the arcsine.
#[inline]
pub fn haversine_of_distance(d: f64) -> f64 {
    (d / EARTH_RADIUS_M * 0.5).sin().powi(2)
}

/// Half the longitude span, degrees, of every point within `ang` radians of a point whose
/// latitude is at most `widest_lat` degrees from the equator (the span is widest there); `None`
/// when the points reach every longitude.
pub fn lon_half_span(ang: f64, widest_lat: f64) -> Option<f64> {
    let s = ang.sin() / widest_lat.to_radians().cos();
    (s < 1.0).then(|| s.asin().to_degrees())
}

/// Cosine of a latitude, exactly 0 at the poles, where `90f64.to_radians().cos()` is 6e-17 and
/// would give points at the same pole but different longitudes a non-zero distance.
#[inline]
pub fn cos_lat(lat: f64) -> f64 {
    if lat.abs() == 90.0 {
        0.0
    } else {
        lat.to_radians().cos()
    }
}

/// Longitude difference folded into [0, 180] degrees.
#[inline]
fn lon_gap(a: f64, b: f64) -> f64 {
    let d = (a - b).abs() % 360.0;
    if d > 180.0 {
        360.0 - d
    } else {
        d
    }
}

/// Smallest great-circle distance from a point to a lon/lat box that does not cross the
/// antimeridian (`lon0 <= lon1`).
///
/// If the point's longitude is inside the box, the nearest box point shares that longitude. If
/// not, the nearest point lies on one of the two bounding meridians (along a parallel, distance
/// only grows with the longitude gap), and on a meridian the distance is unimodal, so clamping the
/// meridian's closest latitude to the box finds it.
pub fn haversine_to_box(lon: f64, lat: f64, lon0: f64, lat0: f64, lon1: f64, lat1: f64) -> f64 {
    if lon >= lon0 && lon <= lon1 {
        let clamped = lat.clamp(lat0, lat1);
        return haversine(lon, lat, lon, clamped);
    }
    let to_meridian = |edge: f64| {
        let gap = lon_gap(lon, edge);
        if gap <= 90.0 {
            let phi = lat.to_radians();
            let nearest = phi
                .sin()
                .atan2(phi.cos() * gap.to_radians().cos())
                .to_degrees();
            haversine(lon, lat, edge, nearest.clamp(lat0, lat1))
        } else {
            // The meridian's nearest point to p is on the far side of the pole; along this half
            // of it the distance rises then falls, so one of the segment's ends is closest.
            haversine(lon, lat, edge, lat0).min(haversine(lon, lat, edge, lat1))
        }
    };
    to_meridian(lon0).min(to_meridian(lon1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_known_distances() {
        // One degree of latitude is R * pi / 180.
        let one_deg = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        assert!((haversine(0.0, 0.0, 0.0, 1.0) - one_deg).abs() < 1e-6);
        // Across the antimeridian: 179.9 and -179.9 on the equator are 0.2 degrees apart.
        assert!((haversine(179.9, 0.0, -179.9, 0.0) - 0.2 * one_deg).abs() < 1e-6);
        // Longitude means nothing at a pole.
        assert!(haversine(10.0, 90.0, -170.0, 90.0) < 1e-9);
        assert!((haversine(0.0, -90.0, 0.0, 90.0) - HALF_CIRCUMFERENCE_M).abs() < 1e-6);
    }

    #[test]
    fn the_short_distance_series_matches_the_arcsine_to_rounding() {
        let a_max = haversine_of_distance(SMALL_DISTANCE_MAX_M);
        let mut worst = 0.0f64;
        for i in 0..=100_000u32 {
            // Evenly in distance, and densely near 0 where relative error is hardest.
            for a in [
                a_max * f64::from(i) / 1e5,
                a_max * (f64::from(i) / 1e5).powi(6),
            ] {
                let exact = distance_of_haversine(a);
                let series = small_distance_of_haversine(a);
                if exact > 0.0 {
                    worst = worst.max((series - exact).abs() / exact);
                } else {
                    assert_eq!(series, 0.0);
                }
            }
        }
        assert!(worst < 4.0 * f64::EPSILON, "relative error {worst:e}");
    }

    #[test]
    fn small_angle_series_match_libm() {
        let mut worst = 0.0f64;
        for i in -100_000..=100_000 {
            let x = SMALL_ANGLE_MAX * f64::from(i) / 1e5;
            let x = if i % 2 == 0 {
                x
            } else {
                x * x.abs() / SMALL_ANGLE_MAX
            };
            let (s, c) = x.sin_cos();
            if x != 0.0 {
                worst = worst.max((small_sin(x) - s).abs() / s.abs());
            } else {
                assert_eq!(small_sin(x), 0.0);
            }
            worst = worst.max((small_cos(x) - c).abs() / c);
        }
        assert!(worst < 4.0 * f64::EPSILON, "relative error {worst:e}");
    }

    #[test]
    fn distances_from_an_origin_match_the_libm_formula() {
        assert!(SMALL_DISTANCE_MAX_A <= haversine_of_distance(SMALL_DISTANCE_MAX_M));
        // A fixed xorshift sequence: pairs near and far, around the poles and the antimeridian.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut unit = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut worst = 0.0f64;
        for i in 0..400_000 {
            let lat1 = match i % 4 {
                0 => unit() * 180.0 - 90.0,
                1 => 90.0 - unit().powi(4) * 2.0,
                2 => -90.0 + unit().powi(4) * 2.0,
                _ => unit() * 10.0 - 5.0,
            };
            let lon1 = if i % 3 == 0 {
                180.0 - unit() * 0.01
            } else {
                unit() * 360.0 - 180.0
            };
            let spread = [1e-7, 1e-4, 0.01, 0.5, 3.0, 180.0][i % 6];
            let lat2 = (lat1 + (unit() - 0.5) * spread).clamp(-90.0, 90.0);
            let mut lon2 = lon1 + (unit() - 0.5) * spread;
            if lon2 > 180.0 {
                lon2 -= 360.0;
            }
            let a = [lon1, lat1];
            let b = [lon2, lat2];
            let fast = Metric::Haversine.distance(&a, &b);
            let exact = haversine(lon1, lat1, lon2, lat2);
            let err = (fast - exact).abs();
            assert!(
                err <= 1e-12 * exact + 1e-9,
                "{a:?} {b:?}: {fast} vs {exact}"
            );
            if exact > 1e-3 {
                worst = worst.max(err / exact);
            }
        }
        // The poles and a point with itself, exactly.
        for (a, b) in [
            ([10.0, 90.0], [-170.0, 90.0]),
            ([0.0, -90.0], [123.0, -90.0]),
            ([179.9, 12.0], [179.9, 12.0]),
        ] {
            assert_eq!(Metric::Haversine.distance(&a, &b), 0.0);
        }
        assert!(
            (Metric::Haversine.distance(&[0.0, -90.0], &[0.0, 90.0]) - HALF_CIRCUMFERENCE_M).abs()
                < 1e-6
        );
        assert!(worst < 1e-14, "worst relative difference {worst:e}");
    }

    #[test]
    fn box_bound_never_exceeds_true_distance() {
        // Dense sampling of boxes and points; the bound must be <= the distance to every point
        // of the box, and equal to the smallest of them up to sampling error.
        let boxes = [
            (-180.0, -90.0, 180.0, 90.0),
            (170.0, -10.0, 180.0, 10.0),
            (-180.0, 80.0, -170.0, 90.0),
            (0.0, 0.0, 1.0, 1.0),
            (-50.0, -89.0, 120.0, -60.0),
        ];
        let points = [
            (-179.9, 0.0),
            (179.95, 5.0),
            (0.5, 90.0),
            (0.5, -90.0),
            (100.0, 45.0),
            (-100.0, -45.0),
            (0.5, 0.5),
            (-130.0, 70.0),
        ];
        for &(lo0, la0, lo1, la1) in &boxes {
            for &(lon, lat) in &points {
                let bound = haversine_to_box(lon, lat, lo0, la0, lo1, la1);
                let mut best = f64::INFINITY;
                for i in 0..=200 {
                    for j in 0..=200 {
                        let x = lo0 + (lo1 - lo0) * i as f64 / 200.0;
                        let y = la0 + (la1 - la0) * j as f64 / 200.0;
                        best = best.min(haversine(lon, lat, x, y));
                    }
                }
                assert!(bound <= best + 1e-6, "bound {bound} > {best}");
                // The grid is coarse; within a grid step of the true minimum.
                let step = EARTH_RADIUS_M * ((lo1 - lo0).max(la1 - la0) / 200.0).to_radians();
                assert!(best - bound <= step, "bound {bound} far below {best}");
            }
        }
    }

    #[test]
    fn point_validation() {
        let m = Metric::Haversine;
        assert!(m.check_point(&[180.0, -90.0]).is_ok());
        assert!(m
            .check_point(&[180.1, 0.0])
            .unwrap_err()
            .contains("longitude"));
        assert!(m
            .check_point(&[0.0, 90.5])
            .unwrap_err()
            .contains("latitude"));
        assert!(m.check_point(&[f64::NAN, 0.0]).is_err());
        assert!(Metric::Euclidean
            .check_point(&[1.0, f64::INFINITY])
            .is_err());
    }
}
