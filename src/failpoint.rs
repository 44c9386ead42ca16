//! Named crash points for crash tests.
//!
//! `KDSLED_FAILPOINT=NAME` makes the process abort (as a SIGKILL or power cut would stop it,
//! with no destructor or flush running) the first time it reaches the point called `NAME`. Tests
//! run the real binary with it to land a crash exactly between two steps of a directory swap or
//! a journaled write, then check that the next command finds a whole index.

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const ENV: &str = "KDSLED_FAILPOINT";

/// Aborts the process if `name` is the configured crash point.
#[inline]
pub fn hit(name: &str) {
    static CHOSEN: OnceLock<Option<String>> = OnceLock::new();
    let chosen = CHOSEN.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()));
    if chosen.as_deref() == Some(name) {
        eprintln!("kdsled: crash point {name} reached: aborting");
        std::process::abort();
    }
}
