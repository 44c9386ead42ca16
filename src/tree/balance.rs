//! The balance rule incremental writes keep: scapegoat-style alpha-height balance over leaves.
//!
//! A tree of n points in leaves of B is kept at most `log(2n / B) / log(1/ALPHA) + 2` levels
//! deep (leaves split when full, so each holds at least about B/2 points after writes): an
//! insertion that lands deeper rebuilds the lowest unbalanced ancestor (a "scapegoat", whose
//! one child holds more than ALPHA of its points) into a balanced subtree of full leaves, and
//! deletions that shrink the tree below ALPHA of its largest size since the last full rebuild
//! rebuild it whole. Rebuilds cost O(m log m) for a subtree of m points and amortize to
//! O(log^2 n) per write.

/// Weight balance factor: a child may hold at most this share of its parent's subtree before an
/// insertion below it rebuilds it. 0.7 keeps depth within 2x of a perfect tree's.
pub const ALPHA: f64 = 0.7;

/// Deepest a leaf may land (in levels, root = 1) before a rebuild, for `count` points in leaves
/// of at most `leaf_size`: `floor(log_{1/ALPHA} leaves) + 2`, leaves counted half full.
pub fn insert_depth_limit(count: u64, leaf_size: u32) -> u32 {
    let leaves = count.div_ceil(u64::from(leaf_size / 2).max(1));
    if leaves <= 1 {
        return 1;
    }
    ((leaves as f64).ln() / (1.0 / ALPHA).ln()).floor() as u32 + 2
}

/// The depth every index of `count` points keeps to, checked by `verify`: one level of slack over
/// [`insert_depth_limit`] for deletions between full rebuilds.
pub fn depth_bound(count: u64, leaf_size: u32) -> u32 {
    insert_depth_limit(count, leaf_size) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_tree_is_within_the_bound() {
        for b in [2u32, 3, 16, 128] {
            for n in 1..5000u64 {
                let leaves = n.div_ceil(b as u64);
                let perfect = (leaves as f64).log2().ceil() as u32 + 1;
                assert!(perfect <= depth_bound(n, b), "{n} in leaves of {b}");
            }
        }
        // 1M points in leaves of 128: a perfect tree has 14 levels, the bound is 30.
        assert_eq!(depth_bound(1_000_000, 128), 30);
    }
}
