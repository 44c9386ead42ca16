//! The storage boundary turns a panic inside sled into an error.
//!
//! sled 0.34 indexes into its files without checking them: a truncated `db` file panics it
//! (`segment.rs` index out of bounds) during recovery. No byte from disk may take the process
//! down, so every call into sled runs here and a panic becomes [`Error::Corrupt`]. The panic
//! hook stays quiet for panics caught this way (the error says what happened) and prints every
//! other panic as before.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use crate::error::{Error, Result};

thread_local! {
    /// How many guarded calls this thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) == 0 {
                previous(info);
            } else {
                tracing::debug!(panic = %info, "the storage engine panicked");
            }
        }));
    });
}

/// Runs `f`, a call into the storage engine about `what`, turning a panic into an error.
pub(crate) fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    install_quiet_hook();
    DEPTH.with(|d| d.set(d.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    match r {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(Error::Corrupt(format!(
                "the storage engine failed {what} ({msg}): the index's files are damaged"
            )))
        }
    }
}

/// An iterator whose every step is [`guarded`].
pub(crate) struct Guarded<I> {
    inner: Option<I>,
    what: &'static str,
}

impl<I> Guarded<I> {
    pub(crate) fn new(inner: I, what: &'static str) -> Self {
        Guarded {
            inner: Some(inner),
            what,
        }
    }
}

impl<T, I: Iterator<Item = Result<T>>> Iterator for Guarded<I> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        let inner = self.inner.as_mut()?;
        match guarded(self.what, || Ok(inner.next())) {
            Ok(item) => item,
            Err(e) => {
                // An engine that panicked mid-scan is not asked again.
                self.inner = None;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_corruption_error_and_later_calls_work() {
        let e = guarded("reading", || -> Result<()> {
            let v: Vec<u8> = Vec::new();
            let i = v.len() + 3;
            Ok(std::hint::black_box(v)[i..].len()).map(|_| ())
        })
        .unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
        assert!(e.to_string().contains("reading"), "{e}");
        assert_eq!(guarded("x", || Ok(5)).unwrap(), 5);
        let mut it = Guarded::new(
            (0..3).map(|i| {
                if i == 1 {
                    panic!("boom")
                }
                Ok(i)
            }),
            "scanning",
        );
        assert_eq!(it.next().unwrap().unwrap(), 0);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }
}
