//! Hooks through which long operations (builds, rewrites, writes, verification) report how far
//! they are; the CLI draws them as bars, everything else passes [`NoProgress`].

/// Hooks for showing a long operation's progress.
pub trait Progress: Sync {
    /// A phase starts; `total` is its number of steps if known.
    fn phase(&self, name: &str, total: Option<u64>);
    /// `n` more steps of the current phase are done.
    fn advance(&self, n: u64);
    /// The operation is over.
    fn finish(&self) {}
}

/// Shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
}
