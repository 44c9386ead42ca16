//! The balance rule incremental writes keep: scapegoat-style alpha-height balance.
//!
//! A tree of n points is kept at most `log(n) / log(1/ALPHA) + 2` levels deep: an insertion that
//! lands deeper rebuilds the highest unbalanced ancestor (a "scapegoat", whose one child holds
//! more than ALPHA of its points) into a perfectly balanced subtree, and deletions that shrink the
//! tree below ALPHA of its largest size since the last full rebuild rebuild it whole. Rebuilds
//! cost O(m log m) for a subtree of m points and amortize to O(log^2 n) per write.

/// Weight balance factor: a child may hold at most this share of its parent's subtree before an
/// insertion below it rebuilds it. 0.7 keeps depth within 2x of a perfect tree's.
pub const ALPHA: f64 = 0.7;

/// Deepest an insertion may land (in levels, root = 1) before a rebuild: `floor(log_{1/ALPHA} n) + 1`.
pub fn insert_depth_limit(count: u64) -> u32 {
    if count <= 1 {
        return 1;
    }
    ((count as f64).ln() / (1.0 / ALPHA).ln()).floor() as u32 + 1
}

/// The depth every index of `count` points keeps to, checked by `verify`: one level of slack over
/// [`insert_depth_limit`] for deletions between full rebuilds.
pub fn depth_bound(count: u64) -> u32 {
    insert_depth_limit(count) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_tree_is_within_the_bound() {
        for n in 1..5000u64 {
            let perfect = (n as f64 + 1.0).log2().ceil() as u32;
            assert!(perfect <= depth_bound(n), "{n}");
        }
        // log(1e6) / log(1/0.7) = 38.7: at most 40 levels where a perfect tree has 20.
        assert_eq!(depth_bound(1_000_000), 40);
    }
}
