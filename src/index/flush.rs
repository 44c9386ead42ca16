//! Group commit: concurrent writers share one flush.
//!
//! A writer that has applied its batch takes a ticket and waits until a flush that started after
//! its ticket has finished. Whoever finds no flush running starts one covering every ticket issued
//! so far; the others wait for it, so N concurrent writes cost one or two flushes, not N.

use std::sync::{Condvar, Mutex};

use crate::error::Result;
use crate::store::Store;

#[derive(Default)]
struct State {
    issued: u64,
    durable: u64,
    flushing: bool,
    failed: Option<(u64, String)>,
}

/// Shares flushes between concurrent writers.
#[derive(Default)]
pub struct GroupFlush {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupFlush {
    /// Returns once everything applied to `store` before the call is durable.
    pub fn wait_durable(&self, store: &dyn Store) -> Result<()> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.issued += 1;
        let ticket = s.issued;
        loop {
            if let Some((upto, e)) = &s.failed {
                if *upto >= ticket {
                    return Err(crate::error::Error::Storage(format!("flush failed: {e}")));
                }
            }
            if s.durable >= ticket {
                return Ok(());
            }
            if !s.flushing {
                s.flushing = true;
                let target = s.issued;
                drop(s);
                let r = store.flush();
                s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                s.flushing = false;
                match r {
                    Ok(_) => s.durable = s.durable.max(target),
                    Err(e) => s.failed = Some((target, e.to_string())),
                }
                self.done.notify_all();
                continue;
            }
            s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}
