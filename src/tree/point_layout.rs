//! The one-point-per-node balanced layout of flat seed rows (`partition-build`) and format 2
//! fixtures: median splits on the widest axis, built in parallel with rayon.
//! Node ids are given in preorder (a node, then its whole below subtree, then its above subtree),
//! so every subtree's records are contiguous in sled's key order and a walk reads neighbouring
//! keys.

use super::layout::widest_axis;

/// Subtrees smaller than this are built on the calling thread; below it, rayon's task overhead
/// outweighs the parallelism.
const PARALLEL_THRESHOLD: usize = 8 * 1024;

/// One node of a layout: which input point it holds and how it links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    /// Index of the point in the input.
    pub point: u32,
    /// Split axis.
    pub axis: u8,
    /// Node id of the below child.
    pub below: Option<u64>,
    /// Node id of the above child.
    pub above: Option<u64>,
}

/// A balanced tree over points, in preorder: `slots[i]` is node `base_id + i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The nodes in id order.
    pub slots: Vec<Slot>,
    /// Levels in the tree (0 when empty).
    pub depth: u32,
}

/// Lays out a balanced tree over `coords` (`dims` values per point) with node ids from `base_id`.
///
/// # Panics
/// If there are more than `u32::MAX` points (the caller partitions long before that).
pub fn layout(coords: &[f64], dims: usize, base_id: u64) -> Layout {
    let n = coords.len() / dims;
    assert!(
        n <= u32::MAX as usize,
        "a single layout holds at most 2^32-1 points"
    );
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mut slots = vec![Slot::default(); n];
    let depth = build(coords, dims, &mut idx, &mut slots, base_id);
    Layout { slots, depth }
}

fn build(coords: &[f64], dims: usize, idx: &mut [u32], out: &mut [Slot], base: u64) -> u32 {
    if idx.is_empty() {
        return 0;
    }
    let axis = widest_axis(coords, dims, idx);
    let mid = idx.len() / 2;
    let key = |p: &u32| coords[*p as usize * dims + axis];
    idx.select_nth_unstable_by(mid, |a, b| key(a).total_cmp(&key(b)));
    let (below, rest) = idx.split_at_mut(mid);
    let (median, above) = rest.split_first_mut().expect("mid < len");
    let (slot, out_rest) = out.split_first_mut().expect("out has len idx.len()");
    let (out_below, out_above) = out_rest.split_at_mut(mid);
    *slot = Slot {
        point: *median,
        axis: axis as u8,
        below: (!below.is_empty()).then_some(base + 1),
        above: (!above.is_empty()).then_some(base + 1 + mid as u64),
    };
    let above_base = base + 1 + mid as u64;
    let (d1, d2) = if below.len() + above.len() >= PARALLEL_THRESHOLD {
        rayon::join(
            || build(coords, dims, below, out_below, base + 1),
            || build(coords, dims, above, out_above, above_base),
        )
    } else {
        (
            build(coords, dims, below, out_below, base + 1),
            build(coords, dims, above, out_above, above_base),
        )
    };
    1 + d1.max(d2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(coords: &[f64], dims: usize) {
        let l = layout(coords, dims, 1);
        let n = coords.len() / dims;
        assert_eq!(l.slots.len(), n);
        let want_depth = if n == 0 {
            0
        } else {
            (n as f64 + 1.0).log2().ceil() as u32
        };
        assert_eq!(l.depth, want_depth);
        let mut seen = vec![false; n];
        for s in &l.slots {
            assert!(!seen[s.point as usize]);
            seen[s.point as usize] = true;
        }
        // Every below descendant <= split <= every above descendant.
        fn subtree(l: &Layout, id: u64, acc: &mut Vec<u32>) {
            let s = l.slots[(id - 1) as usize];
            acc.push(s.point);
            for c in [s.below, s.above].into_iter().flatten() {
                subtree(l, c, acc);
            }
        }
        for (i, s) in l.slots.iter().enumerate() {
            let split = coords[s.point as usize * dims + s.axis as usize];
            let at = |p: u32| coords[p as usize * dims + s.axis as usize];
            if let Some(b) = s.below {
                assert_eq!(b, i as u64 + 2);
                let mut acc = vec![];
                subtree(&l, b, &mut acc);
                assert!(acc.iter().all(|&p| at(p) <= split));
            }
            if let Some(a) = s.above {
                let mut acc = vec![];
                subtree(&l, a, &mut acc);
                assert!(acc.iter().all(|&p| at(p) >= split));
            }
        }
    }

    #[test]
    fn layouts_are_valid_and_balanced() {
        check(&[], 2);
        check(&[1.0, 2.0], 2);
        check(&[5.0; 200], 2);
        let pts: Vec<f64> = (0..1000).flat_map(|i| [i as f64, 0.0]).collect();
        check(&pts, 2);
        let pts: Vec<f64> = (0..30_000).map(|i| ((i * 7919) % 10007) as f64).collect();
        check(&pts, 3);
    }
}
