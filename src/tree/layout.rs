//! The balanced bulk layout of format 3: leaves of up to `leaf_size` points under median splits
//! on the widest axis, built in parallel with rayon.
//!
//! Splits are by position in sorted order, not by value: a node of n points sends the first
//! `floor(leaves / 2) * leaf_size` of them (in order on the split axis) below and the rest
//! above, so every leaf but the last of a layout is full and any number of identical points
//! still splits evenly (the split value then bounds both sides inclusively).
//!
//! Node ids are given in postorder (the below subtree, the above subtree, then the node), so a
//! subtree's records are one contiguous id range ending at its root, and a layout can be
//! written as it is produced, one partition after another.

use std::ops::Range;

use crate::geometry::Metric;
use crate::store::node::Inner;

/// The axis a leaf's points are kept sorted on, so a walk scans only the run of a leaf whose
/// coordinate there lies in the query's range: latitude for lon/lat indexes (its ranges never
/// wrap, unlike longitude's), the first coordinate otherwise.
pub fn sort_axis(metric: Metric) -> usize {
    match metric {
        Metric::Haversine => 1,
        Metric::Euclidean => 0,
    }
}

/// The slots `start..` of a leaf's flat `coords` whose `axis` coordinate is at least `lo`
/// begin at the returned slot (the leaf is sorted on `axis`).
///
/// An interpolation search: a leaf a query reaches is seldom in the CPU's cache (a warm
/// server's leaves are megabytes), so what a search costs is the cache lines it touches, not
/// its compares. The first and last keys give a guess from where `lo` lies between them, and
/// a gallop from the guess brackets the answer; a leaf covers a small region, where points
/// are spread evenly enough that the bracket is a slot or two, and the walk's scan starts in
/// the guess's line anyway. That is three lines for a 128-point leaf, against ten for an
/// eight-way search (which `perf` put at a fifth of a small radius request's own time). An
/// uneven leaf costs at most two gallops and a binary search of the bracket, O(log n).
/// Whatever the coordinates hold (unsorted by corruption, NaN, infinities), the result is a
/// slot in `0..=len` and nothing panics.
#[inline]
pub fn first_at_or_above(coords: &[f64], dims: usize, axis: usize, lo: f64) -> usize {
    let dims = dims.max(1);
    let n = coords.len() / dims;
    if axis >= dims || n == 0 {
        return 0;
    }
    let key = |i: usize| coords[i * dims + axis];
    // Every test is this one, as in a partition point: a NaN `lo` is below nothing.
    let below = |i: usize| key(i) < lo;
    if !below(0) {
        return 0;
    }
    if below(n - 1) {
        return n;
    }
    // From here slot 0 is below and slot n - 1 is not: the answer is in 1..n, and every
    // bracket below keeps `a` below and `b` not.
    let (first, last) = (key(0), key(n - 1));
    let fraction = (lo - first) / (last - first);
    let guess = ((fraction * (n - 1) as f64) as usize).clamp(1, n - 1);
    let (mut a, mut b) = if below(guess) {
        let (mut a, mut step) = (guess, 1);
        loop {
            let t = (a + step).min(n - 1);
            if !below(t) {
                break (a, t);
            }
            (a, step) = (t, step * 2);
        }
    } else {
        let (mut b, mut step) = (guess, 1);
        loop {
            let t = b.saturating_sub(step);
            if below(t) {
                break (t, b);
            }
            (b, step) = (t, step * 2);
        }
    };
    while b - a > 1 {
        let m = a + (b - a) / 2;
        if below(m) {
            a = m;
        } else {
            b = m;
        }
    }
    b
}

/// Subtrees with fewer points than this are built on the calling thread; below it, rayon's
/// task overhead outweighs the parallelism.
const PARALLEL_THRESHOLD: usize = 8 * 1024;

/// One node of a layout.
#[derive(Debug, Clone, PartialEq)]
pub enum Laid {
    /// An inner node (child ids are absolute).
    Inner(Inner),
    /// A leaf holding `order[range]`.
    Leaf(Range<usize>),
}

/// A balanced tree over points: `nodes[i]` is node `base + i`, the root is the last.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The nodes in id order.
    pub nodes: Vec<Laid>,
    /// The input points' indexes, grouped by leaf.
    pub order: Vec<u32>,
    /// Levels in the tree (0 when empty).
    pub depth: u32,
}

impl Layout {
    /// Node id of the root, if any.
    pub fn root(&self, base: u64) -> Option<u64> {
        (!self.nodes.is_empty()).then(|| base + self.nodes.len() as u64 - 1)
    }
}

/// Nodes a layout of `n` points in leaves of `leaf_size` has: every leaf but one is full, and
/// a binary tree of L leaves has L - 1 inner nodes.
pub fn nodes_for(n: usize, leaf_size: usize) -> usize {
    if n == 0 {
        0
    } else {
        2 * n.div_ceil(leaf_size.max(1)) - 1
    }
}

/// Lays out a balanced tree over `coords` (`dims` values a point) in leaves of at most
/// `leaf_size` points each sorted on axis `sort_axis`, with node ids from `base`.
///
/// # Panics
/// If there are more than `u32::MAX` points (the caller partitions long before that).
pub fn layout(
    coords: &[f64],
    dims: usize,
    leaf_size: usize,
    sort_axis: usize,
    base: u64,
) -> Layout {
    let n = coords.len() / dims.max(1);
    assert!(
        n <= u32::MAX as usize,
        "a single layout holds at most 2^32-1 points"
    );
    let leaf_size = leaf_size.max(1);
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut nodes = vec![Laid::Leaf(0..0); nodes_for(n, leaf_size)];
    let depth = if n == 0 {
        0
    } else {
        let job = Job {
            coords,
            dims,
            leaf_size,
            sort_axis: sort_axis.min(dims.saturating_sub(1)),
        };
        job.build(&mut order, 0, &mut nodes, base)
    };
    Layout {
        nodes,
        order,
        depth,
    }
}

#[derive(Clone, Copy)]
struct Job<'a> {
    coords: &'a [f64],
    dims: usize,
    leaf_size: usize,
    sort_axis: usize,
}

impl Job<'_> {
    /// Lays out `idx` (which starts at `offset` in the order) into `out`, ids from `base`.
    fn build(self, idx: &mut [u32], offset: usize, out: &mut [Laid], base: u64) -> u32 {
        let n = idx.len();
        if n <= self.leaf_size {
            let key = |p: &u32| self.coords[*p as usize * self.dims + self.sort_axis];
            idx.sort_unstable_by(|a, b| key(a).total_cmp(&key(b)));
            out[0] = Laid::Leaf(offset..offset + n);
            return 1;
        }
        let leaves = n.div_ceil(self.leaf_size);
        let nb = (leaves / 2) * self.leaf_size;
        let axis = widest_axis(self.coords, self.dims, idx);
        let key = |p: &u32| self.coords[*p as usize * self.dims + axis];
        idx.select_nth_unstable_by(nb, |a, b| key(a).total_cmp(&key(b)));
        let split = key(&idx[nb]);
        let (below, above) = idx.split_at_mut(nb);
        let below_nodes = nodes_for(nb, self.leaf_size);
        let (out_below, rest) = out.split_at_mut(below_nodes);
        let (out_root, out_above) = rest.split_last_mut().expect("an inner node has a slot");
        let above_base = base + below_nodes as u64;
        *out_root = Laid::Inner(Inner {
            axis: axis as u8,
            split,
            below: Some(base + below_nodes as u64 - 1),
            above: Some(above_base + out_above.len() as u64 - 1),
            count: n as u64,
        });
        let (d1, d2) = if n >= PARALLEL_THRESHOLD {
            rayon::join(
                || self.build(below, offset, out_below, base),
                || self.build(above, offset + nb, out_above, above_base),
            )
        } else {
            (
                self.build(below, offset, out_below, base),
                self.build(above, offset + nb, out_above, above_base),
            )
        };
        1 + d1.max(d2)
    }
}

/// The axis with the largest spread among `idx`'s points.
pub fn widest_axis(coords: &[f64], dims: usize, idx: &[u32]) -> usize {
    if dims <= 1 {
        return 0;
    }
    let mut lo = [f64::INFINITY; crate::geometry::MAX_DIMS];
    let mut hi = [f64::NEG_INFINITY; crate::geometry::MAX_DIMS];
    for &p in idx {
        let c = &coords[p as usize * dims..p as usize * dims + dims];
        for a in 0..dims {
            lo[a] = lo[a].min(c[a]);
            hi[a] = hi[a].max(c[a]);
        }
    }
    (0..dims)
        .max_by(|&a, &b| (hi[a] - lo[a]).total_cmp(&(hi[b] - lo[b])))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpolation_search_finds_what_a_binary_search_does() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        for n in (0..140).chain([255, 256, 257, 511, 512, 513, 4096]) {
            for dims in 1..=3 {
                // Few distinct values make long runs of duplicates.
                let distinct = [2, 7, 1000][n % 3] as u64;
                let axis = n % dims;
                // Even keys, then skewed ones (where an interpolated guess lands far off and
                // the gallop does the work), then one far outlier at the top.
                let shape = |v: u64| match (n / 3) % 3 {
                    0 => v as f64,
                    1 => (v as f64).powi(4),
                    _ if v + 1 == distinct => 1e300,
                    _ => v as f64,
                };
                let mut keys: Vec<f64> = (0..n).map(|_| shape(next(distinct))).collect();
                keys.sort_by(f64::total_cmp);
                let mut coords = vec![0.5; n * dims];
                for (i, k) in keys.iter().enumerate() {
                    coords[i * dims + axis] = *k;
                }
                let mut probes = vec![f64::NEG_INFINITY, f64::INFINITY, f64::NAN, -1.0, 1e9];
                for k in keys.iter().step_by(1 + n / 16) {
                    probes.extend([*k, k - 0.5, k + 0.5, k.next_down(), k.next_up()]);
                }
                for lo in probes {
                    let want = keys.partition_point(|k| *k < lo);
                    assert_eq!(
                        first_at_or_above(&coords, dims, axis, lo),
                        want,
                        "n {n}, dims {dims}, lo {lo}"
                    );
                }
            }
        }
        // Unsorted coordinates (corruption) give some slot in range, never a panic.
        for n in [9usize, 50, 128, 300] {
            let coords: Vec<f64> = (0..n).map(|_| next(100) as f64).collect();
            for lo in [0.0, 33.0, 99.5, f64::NAN] {
                assert!(first_at_or_above(&coords, 1, 0, lo) <= n);
            }
        }
        assert_eq!(first_at_or_above(&[1.0, 2.0], 2, 5, 0.0), 0);
    }

    /// Checks the layout's invariants and returns the points under each node.
    fn check(coords: &[f64], dims: usize, leaf_size: usize) {
        let base = 1;
        let l = layout(coords, dims, leaf_size, 1, base);
        let n = coords.len() / dims;
        assert_eq!(l.nodes.len(), nodes_for(n, leaf_size));
        let mut seen = vec![false; n];
        let mut full = 0;
        for node in &l.nodes {
            if let Laid::Leaf(r) = node {
                assert!(!r.is_empty() && r.len() <= leaf_size);
                let keys: Vec<f64> = l.order[r.clone()]
                    .iter()
                    .map(|&p| coords[p as usize * dims + 1.min(dims - 1)])
                    .collect();
                assert!(keys.windows(2).all(|w| w[0] <= w[1]), "a leaf out of order");
                full += usize::from(r.len() == leaf_size);
                for &p in &l.order[r.clone()] {
                    assert!(!std::mem::replace(&mut seen[p as usize], true));
                }
            }
        }
        assert!(seen.iter().all(|s| *s));
        let leaves = n.div_ceil(leaf_size);
        assert!(full + 1 >= leaves, "all leaves but one are full");
        // Every below point <= split <= every above point; counts add up; postorder.
        fn points(l: &Layout, id: u64, acc: &mut Vec<u32>) -> usize {
            match &l.nodes[(id - 1) as usize] {
                Laid::Leaf(r) => {
                    acc.extend_from_slice(&l.order[r.clone()]);
                    1
                }
                Laid::Inner(i) => {
                    let b = i.below.unwrap();
                    let a = i.above.unwrap();
                    assert!(b < a && a < id);
                    1 + points(l, b, acc).max(points(l, a, acc))
                }
            }
        }
        if let Some(root) = l.root(base) {
            let mut all = vec![];
            assert_eq!(points(&l, root, &mut all) as u32, l.depth);
            let want = (leaves as f64).log2().ceil() as u32 + 1;
            assert!(l.depth <= want, "depth {} for {leaves} leaves", l.depth);
        }
        for (i, node) in l.nodes.iter().enumerate() {
            if let Laid::Inner(inner) = node {
                let at = |p: u32| coords[p as usize * dims + inner.axis as usize];
                let (mut b, mut a) = (vec![], vec![]);
                points(&l, inner.below.unwrap(), &mut b);
                points(&l, inner.above.unwrap(), &mut a);
                assert_eq!((b.len() + a.len()) as u64, inner.count, "node {}", i + 1);
                assert!(b.iter().all(|&p| at(p) <= inner.split));
                assert!(a.iter().all(|&p| at(p) >= inner.split));
            }
        }
    }

    #[test]
    fn layouts_are_valid_balanced_and_full() {
        for b in [1, 2, 3, 16, 128] {
            check(&[], 2, b);
            check(&[1.0, 2.0], 2, b);
            check(&[5.0; 2000], 2, b);
            let pts: Vec<f64> = (0..1000).flat_map(|i| [i as f64, 0.0]).collect();
            check(&pts, 2, b);
        }
        let pts: Vec<f64> = (0..30_000).map(|i| ((i * 7919) % 10007) as f64).collect();
        check(&pts, 3, 64);
    }
}
