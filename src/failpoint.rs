//! Named crash points for crash tests.
//!
//! `KDSLED_FAILPOINT=NAME` makes the process abort (as a SIGKILL or power cut would stop it,
//! with no destructor or flush running) the first time it reaches the point called `NAME`. Tests
//! run the real binary with it to land a crash exactly between two steps of a directory swap or
//! a journaled write, then check that the next command finds a whole index.

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const ENV: &str = "KDSLED_FAILPOINT";

/// Whether `name` is the configured crash point (to make state durable first where the test
/// is about what a crash after a flush leaves).
#[inline]
pub fn armed(name: &str) -> bool {
    static CHOSEN: OnceLock<Option<String>> = OnceLock::new();
    let chosen = CHOSEN.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()));
    chosen.as_deref() == Some(name)
}

/// Aborts the process if `name` is the configured crash point.
#[inline]
pub fn hit(name: &str) {
    if armed(name) {
        eprintln!("kdsled: crash point {name} reached: aborting");
        std::process::abort();
    }
}
