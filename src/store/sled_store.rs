//! [`Store`] over a sled database.

use std::path::Path;
use std::time::{Duration, Instant};

use sled::Transactional;

use super::{Bytes, ScanIter, Space, Store, WriteBatch};
use crate::error::{Error, Result};

/// How long an open waits for another handle's lock to be released.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// A sled database with one sled tree per [`Space`].
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    trees: [sled::Tree; 4],
}

impl SledStore {
    /// Opens (creating if needed) the database at `path` with a page cache of `cache_mb` MiB.
    pub fn open(path: &Path, cache_mb: u64) -> Result<SledStore> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_mb.max(1) * 1024 * 1024);
        Self::from_config(config)
    }

    /// A throw-away database in a temporary directory, removed on drop. For tests.
    pub fn temporary() -> Result<SledStore> {
        Self::from_config(sled::Config::new().temporary(true))
    }

    fn from_config(config: sled::Config) -> Result<SledStore> {
        // sled releases its directory lock only when its last background thread lets go of the
        // database, a moment after the handle is dropped; a re-open right after a close (a build
        // followed by serving it) must wait that moment out rather than fail.
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(io)) if is_lock_conflict(&io) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Database(format!(
                            "the index is in use by another process (sled allows one per \
                             directory): {io}"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(other) => return Err(Error::from(other)),
            }
        };
        let open = |s: Space| db.open_tree(s.tree_name());
        let trees = [
            open(Space::Meta)?,
            open(Space::Nodes)?,
            open(Space::Payloads)?,
            open(Space::Ids)?,
        ];
        Ok(SledStore { db, trees })
    }

    fn tree(&self, space: Space) -> &sled::Tree {
        match space {
            Space::Meta => &self.trees[0],
            Space::Nodes => &self.trees[1],
            Space::Payloads => &self.trees[2],
            Space::Ids => &self.trees[3],
        }
    }
}

/// sled wraps the OS's "would block" from its lock attempt in an error of its own kind.
fn is_lock_conflict(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

impl Store for SledStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.tree(space).get(key)?)
    }

    fn apply(&self, batch: &WriteBatch) -> Result<()> {
        let first = match batch.ops().first() {
            None => return Ok(()),
            Some((s, _, _)) => *s,
        };
        if batch.ops().iter().all(|(s, _, _)| *s == first) {
            // One tree: sled's batch is atomic and much cheaper than a transaction.
            let mut b = sled::Batch::default();
            for (_, k, v) in batch.ops() {
                match v {
                    Some(v) => b.insert(k.as_slice(), v.as_slice()),
                    None => b.remove(k.as_slice()),
                }
            }
            self.tree(first).apply_batch(b)?;
            return Ok(());
        }
        let [m, n, p, i] = &self.trees;
        (m, n, p, i)
            .transaction(|(m, n, p, i)| {
                for (s, k, v) in batch.ops() {
                    let t = match s {
                        Space::Meta => m,
                        Space::Nodes => n,
                        Space::Payloads => p,
                        Space::Ids => i,
                    };
                    match v {
                        Some(v) => t.insert(k.as_slice(), v.as_slice())?,
                        None => t.remove(k.as_slice())?,
                    };
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| match e {
                sled::transaction::TransactionError::Storage(s) => Error::from(s),
                sled::transaction::TransactionError::Abort(()) => {
                    Error::Storage("transaction aborted".into())
                }
            })
    }

    fn scan(&self, space: Space) -> ScanIter<'_> {
        Box::new(self.tree(space).iter().map(|r| r.map_err(Error::from)))
    }

    fn last(&self, space: Space) -> Result<Option<(Bytes, Bytes)>> {
        Ok(self.tree(space).last()?)
    }

    fn len(&self, space: Space) -> Result<u64> {
        Ok(self.tree(space).len() as u64)
    }

    fn flush(&self) -> Result<usize> {
        Ok(self.db.flush()?)
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }
}
