//! Query boxes, including lon/lat boxes that cross the antimeridian.

use super::metric::Metric;
use super::region::Region;
use crate::error::{Error, Result};

/// A query box: one or two axis-aligned boxes (two when a lon/lat box crosses the antimeridian).
#[derive(Debug, Clone, PartialEq)]
pub struct BBox {
    parts: Vec<Region>,
    dims: usize,
}

impl BBox {
    /// Builds a box from its minimum and maximum corners.
    ///
    /// For haversine indexes the corners are `(min_lon, min_lat)` and `(max_lon, max_lat)`;
    /// `min_lon > max_lon` means the box crosses the antimeridian. For euclidean indexes every
    /// minimum must be at most its maximum.
    pub fn new(metric: Metric, min: &[f64], max: &[f64]) -> Result<BBox> {
        if min.len() != max.len() || min.is_empty() {
            return Err(Error::invalid(
                "bbox",
                "corners must have the same dimension",
            ));
        }
        let dims = min.len();
        for (corner, name) in [(min, "minimum"), (max, "maximum")] {
            metric
                .check_point(corner)
                .map_err(|e| Error::invalid("bbox", format!("{name} corner: {e}")))?;
        }
        if metric == Metric::Haversine && min[1] > max[1] {
            return Err(Error::invalid(
                "bbox",
                format!("min_lat {} is above max_lat {}", min[1], max[1]),
            ));
        }
        let mut base = Region::unbounded(dims);
        base.lo[..dims].copy_from_slice(min);
        base.hi[..dims].copy_from_slice(max);
        let parts = if metric == Metric::Haversine && min[0] > max[0] {
            let mut east = base;
            east.hi[0] = 180.0;
            let mut west = base;
            west.lo[0] = -180.0;
            vec![east, west]
        } else {
            if let Some(i) = (0..dims).find(|&i| min[i] > max[i]) {
                return Err(Error::invalid(
                    "bbox",
                    format!("minimum {} is above maximum {} on axis {i}", min[i], max[i]),
                ));
            }
            vec![base]
        };
        Ok(BBox { parts, dims })
    }

    /// The smallest and largest value the box allows on `axis`.
    pub fn axis_range(&self, axis: usize) -> (f64, f64) {
        self.parts
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                (lo.min(r.lo[axis]), hi.max(r.hi[axis]))
            })
    }

    /// Number of dimensions.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Whether the point lies in the box (edges inclusive).
    #[inline]
    pub fn contains(&self, p: &[f64]) -> bool {
        self.parts.iter().any(|r| r.contains(p))
    }

    /// Whether the box can hold any point of `region`.
    #[inline]
    pub fn intersects(&self, region: &Region) -> bool {
        self.parts
            .iter()
            .any(|b| (0..self.dims).all(|i| b.lo[i] <= region.hi[i] && b.hi[i] >= region.lo[i]))
    }

    /// Whether every point of `region` lies in the box (edges inclusive): a walk can then take
    /// a subtree whole, with no test per point.
    #[inline]
    pub fn covers(&self, region: &Region) -> bool {
        self.parts
            .iter()
            .any(|b| (0..self.dims).all(|i| b.lo[i] <= region.lo[i] && region.hi[i] <= b.hi[i]))
    }

    /// The parts of the box, one or two regions.
    pub fn parts(&self) -> &[Region] {
        &self.parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn antimeridian_box_splits() {
        let b = BBox::new(Metric::Haversine, &[170.0, -10.0], &[-170.0, 10.0]).unwrap();
        assert_eq!(b.parts().len(), 2);
        assert!(b.contains(&[179.0, 0.0]));
        assert!(b.contains(&[-179.0, 0.0]));
        assert!(!b.contains(&[0.0, 0.0]));
    }

    #[test]
    fn covers_only_regions_wholly_inside() {
        let region = |lo: [f64; 2], hi: [f64; 2]| {
            let mut r = Region::unbounded(2);
            r.lo[..2].copy_from_slice(&lo);
            r.hi[..2].copy_from_slice(&hi);
            r
        };
        let b = BBox::new(Metric::Haversine, &[170.0, -10.0], &[-170.0, 10.0]).unwrap();
        // Inside one part, edges included; across both parts (the gap between is outside).
        assert!(b.covers(&region([170.0, -10.0], [180.0, 10.0])));
        assert!(b.covers(&region([-180.0, 0.0], [-175.0, 5.0])));
        assert!(!b.covers(&region([175.0, 0.0], [185.0, 5.0])));
        assert!(!b.covers(&region([-175.0, 0.0], [175.0, 5.0])));
        assert!(!b.covers(&region([171.0, -11.0], [172.0, 0.0])));
        // An unbounded side is never covered, though it intersects.
        let e = BBox::new(Metric::Euclidean, &[0.0, 0.0], &[1.0, 1.0]).unwrap();
        let open = region([0.5, f64::NEG_INFINITY], [0.6, 0.7]);
        assert!(e.intersects(&open) && !e.covers(&open));
        assert!(e.covers(&region([0.0, 0.0], [1.0, 1.0])));
    }

    #[test]
    fn rejects_bad_corners() {
        assert!(BBox::new(Metric::Haversine, &[0.0, 10.0], &[1.0, 5.0]).is_err());
        assert!(BBox::new(Metric::Haversine, &[0.0, 0.0], &[1.0, 95.0]).is_err());
        assert!(BBox::new(Metric::Euclidean, &[2.0], &[1.0]).is_err());
    }
}
