//! The axis-aligned region a subtree covers, derived while walking down from the root.

use super::metric::MAX_DIMS;

/// Closed bounds per axis. Only the first `dims` entries are meaningful; fixed arrays keep walks
/// free of allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// Lower bound per axis.
    pub lo: [f64; MAX_DIMS],
    /// Upper bound per axis.
    pub hi: [f64; MAX_DIMS],
}

impl Region {
    /// The whole of k-space.
    pub fn unbounded(_dims: usize) -> Region {
        Region {
            lo: [f64::NEG_INFINITY; MAX_DIMS],
            hi: [f64::INFINITY; MAX_DIMS],
        }
    }

    /// The part of this region at or below `split` on `axis`.
    #[inline]
    pub fn below(&self, axis: usize, split: f64) -> Region {
        let mut r = *self;
        r.hi[axis] = r.hi[axis].min(split);
        r
    }

    /// The part of this region at or above `split` on `axis`.
    #[inline]
    pub fn above(&self, axis: usize, split: f64) -> Region {
        let mut r = *self;
        r.lo[axis] = r.lo[axis].max(split);
        r
    }

    /// Whether `p` lies inside (bounds inclusive).
    #[inline]
    pub fn contains(&self, p: &[f64]) -> bool {
        p.iter()
            .enumerate()
            .all(|(i, &c)| c >= self.lo[i] && c <= self.hi[i])
    }
}
