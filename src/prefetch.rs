//! Hints that start loading memory a walk or an answer is about to read.
//!
//! The caches a query reads (decoded nodes, payload JSON) are far larger than the CPU's, so a
//! query's reads mostly miss it; issued for many addresses before the first is used, the misses
//! overlap instead of following one another.

/// A hint to load the cache line holding `at`; nothing on targets without one.
#[inline]
pub(crate) fn at<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint: it never
        // faults and has no effect a program can observe but timing.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Hints for the first `lines` cache lines of `items`.
#[inline]
pub(crate) fn lines<T>(items: &[T], lines: usize) {
    let per_line = (64 / std::mem::size_of::<T>().max(1)).max(1);
    for item in items.iter().step_by(per_line).take(lines) {
        at(item);
    }
}
