//! [`Store`] over a sled database.

use std::path::Path;
use std::time::{Duration, Instant};

use sled::Transactional;

use super::guard::{guarded, Guarded};
use super::{Bytes, ScanIter, Space, Store, WriteBatch, WriteOp};
use crate::error::{Error, Result};

/// How long an open waits for another handle's lock to be released.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Batches up to this many operations go through one sled transaction; larger ones through the
/// journal, because sled holds a transaction's writes in memory and its memory grows steeply with
/// batch size (10,000-record batches peaked at 3.3 GB RSS for a million records).
pub const TRANSACTION_OPS: usize = 1000;

/// Journal key of the commit marker, after every entry's key.
const JOURNAL_COMMIT: [u8; 8] = [0xff; 8];

/// A sled database with one sled tree per [`Space`].
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    trees: [sled::Tree; 6],
}

impl SledStore {
    /// Opens (creating if needed) the database at `path` with a page cache of `cache_mb` MiB,
    /// finishing or discarding any large batch a crash interrupted.
    ///
    /// A damaged database is an error naming the directory, never a panic.
    pub fn open(path: &Path, cache_mb: u64) -> Result<SledStore> {
        wait_for_lock(path)?;
        super::directory::remove_incomplete_snapshots(path)?;
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_mb.max(1) * 1024 * 1024);
        Self::from_config(config).map_err(|e| match e {
            Error::Corrupt(m) => Error::Corrupt(format!("{}: {m}", path.display())),
            Error::Storage(m) => Error::Storage(format!("opening {}: {m}", path.display())),
            other => other,
        })
    }

    /// A throw-away database in a temporary directory, removed on drop. For tests.
    pub fn temporary() -> Result<SledStore> {
        Self::from_config(sled::Config::new().temporary(true))
    }

    fn from_config(config: sled::Config) -> Result<SledStore> {
        guarded("opening the database", || {
            Self::from_config_unguarded(config)
        })
    }

    fn from_config_unguarded(config: sled::Config) -> Result<SledStore> {
        // sled releases its directory lock only when its last background thread lets go of the
        // database, a moment after the handle is dropped; a re-open right after a close (a build
        // followed by serving it) must wait that moment out rather than fail.
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(io)) if is_lock_conflict(&io) => {
                    if Instant::now() >= deadline {
                        return Err(Error::InUse(format!(
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
            open(Space::Journal)?,
            open(Space::Changes)?,
        ];
        let store = SledStore { db, trees };
        store.recover()?;
        Ok(store)
    }

    fn tree(&self, space: Space) -> &sled::Tree {
        match space {
            Space::Meta => &self.trees[0],
            Space::Nodes => &self.trees[1],
            Space::Payloads => &self.trees[2],
            Space::Ids => &self.trees[3],
            Space::Journal => &self.trees[4],
            Space::Changes => &self.trees[5],
        }
    }

    /// Replays a committed journal, or drops an uncommitted one.
    fn recover(&self) -> Result<()> {
        let journal = self.tree(Space::Journal);
        if journal.is_empty() {
            return Ok(());
        }
        if journal.contains_key(JOURNAL_COMMIT)? {
            tracing::warn!("finishing a large write that a crash interrupted");
            let mut chunk = Vec::with_capacity(TRANSACTION_OPS);
            for entry in journal.iter() {
                let (k, v) = entry?;
                if k.as_ref() == JOURNAL_COMMIT {
                    continue;
                }
                chunk.push(decode_op(&v)?);
                if chunk.len() >= TRANSACTION_OPS {
                    self.apply_ops_unlogged(&chunk)?;
                    chunk.clear();
                }
            }
            self.apply_ops_unlogged(&chunk)?;
        } else {
            tracing::warn!("dropping a large write that a crash interrupted before it committed");
        }
        self.clear_journal()?;
        self.db.flush()?;
        Ok(())
    }

    fn clear_journal(&self) -> Result<()> {
        let journal = self.tree(Space::Journal);
        // The marker goes first: once it is gone a crash leaves only droppable entries.
        journal.remove(JOURNAL_COMMIT)?;
        let mut b = sled::Batch::default();
        let mut n = 0;
        for k in journal.iter().keys() {
            b.remove(k?);
            n += 1;
            if n >= TRANSACTION_OPS {
                journal.apply_batch(std::mem::take(&mut b))?;
                n = 0;
            }
        }
        journal.apply_batch(b)?;
        Ok(())
    }

    /// Applies operations grouped per tree, each group atomically, the whole not.
    fn apply_ops_unlogged(&self, ops: &[WriteOp]) -> Result<()> {
        for space in Space::ALL {
            let mut b = sled::Batch::default();
            let mut any = false;
            for (s, k, v) in ops.iter().filter(|(s, _, _)| *s == space) {
                debug_assert_eq!(*s, space);
                any = true;
                match v {
                    Some(v) => b.insert(k.as_slice(), v.as_slice()),
                    None => b.remove(k.as_slice()),
                }
            }
            if any {
                self.tree(space).apply_batch(b)?;
            }
        }
        Ok(())
    }

    /// A large batch: log every operation, commit the log, apply, clear the log.
    fn apply_journaled(&self, batch: &WriteBatch) -> Result<()> {
        let journal = self.tree(Space::Journal);
        for (n, chunk) in batch.ops().chunks(TRANSACTION_OPS).enumerate() {
            let mut b = sled::Batch::default();
            for (i, op) in chunk.iter().enumerate() {
                let seq = (n * TRANSACTION_OPS + i) as u64;
                b.insert(&seq.to_be_bytes(), encode_op(op));
            }
            journal.apply_batch(b)?;
        }
        crate::failpoint::hit("journal-before-commit");
        // sled recovers a prefix of its log, so the marker is never there without the entries.
        journal.insert(JOURNAL_COMMIT, &[1u8])?;
        if crate::failpoint::armed("journal-after-commit") {
            // The crash under test is one after the marker reached the disk.
            self.db.flush()?;
        }
        crate::failpoint::hit("journal-after-commit");
        for chunk in batch.ops().chunks(TRANSACTION_OPS) {
            self.apply_ops_unlogged(chunk)?;
        }
        self.clear_journal()
    }

    fn apply_transaction(&self, batch: &WriteBatch) -> Result<()> {
        let [m, n, p, i, _, c] = &self.trees;
        (m, n, p, i, c)
            .transaction(|(m, n, p, i, c)| {
                for (s, k, v) in batch.ops() {
                    let t = match s {
                        Space::Meta => m,
                        Space::Nodes => n,
                        Space::Payloads => p,
                        Space::Ids => i,
                        Space::Changes => c,
                        Space::Journal => {
                            return Err(sled::transaction::ConflictableTransactionError::Abort(()))
                        }
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
                    Error::Storage("a write batch may not touch the journal".into())
                }
            })
    }
}

/// Waits (as long as sled's own open would) until no other handle holds the database's lock,
/// so that nothing is cleaned up under a process that has it open.
fn wait_for_lock(path: &Path) -> Result<()> {
    let db = path.join("db");
    let Ok(f) = std::fs::OpenOptions::new().read(true).write(true).open(&db) else {
        return Ok(());
    };
    match super::directory::lock_within(&f, LOCK_WAIT) {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::InUse(format!(
            "{} is in use by another process (sled allows one per directory)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Database(format!(
            "cannot lock {}: {e}",
            db.display()
        ))),
    }
}

/// sled wraps the OS's "would block" from its lock attempt in an error of its own kind.
fn is_lock_conflict(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

fn space_tag(s: Space) -> u8 {
    match s {
        Space::Meta => 0,
        Space::Nodes => 1,
        Space::Payloads => 2,
        Space::Ids => 3,
        Space::Journal => 4,
        Space::Changes => 5,
    }
}

/// A journal entry: space tag, key length (u32 BE), key, then 1 and the value or 0 for a removal.
fn encode_op((s, k, v): &WriteOp) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + k.len() + v.as_ref().map_or(0, Vec::len));
    out.push(space_tag(*s));
    out.extend_from_slice(&(k.len() as u32).to_be_bytes());
    out.extend_from_slice(k);
    match v {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(v);
        }
        None => out.push(0),
    }
    out
}

fn decode_op(b: &[u8]) -> Result<WriteOp> {
    let bad = || Error::Corrupt("a journal entry does not decode".into());
    let (&tag, rest) = b.split_first().ok_or_else(bad)?;
    let space = *Space::ALL.get(tag as usize).ok_or_else(bad)?;
    let len_bytes: [u8; 4] = rest
        .get(..4)
        .ok_or_else(bad)?
        .try_into()
        .map_err(|_| bad())?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let key = rest.get(4..4 + len).ok_or_else(bad)?.to_vec();
    let value = match rest.get(4 + len) {
        Some(1) => Some(rest[5 + len..].to_vec()),
        Some(0) => None,
        _ => return Err(bad()),
    };
    Ok((space, key, value))
}

impl Store for SledStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes>> {
        guarded("reading", || Ok(self.tree(space).get(key)?))
    }

    fn apply(&self, batch: &WriteBatch) -> Result<()> {
        guarded("writing", || self.apply_unguarded(batch))
    }

    fn scan(&self, space: Space) -> ScanIter<'_> {
        Box::new(Guarded::new(
            self.tree(space).iter().map(|r| r.map_err(Error::from)),
            "scanning",
        ))
    }

    fn scan_from(&self, space: Space, from: &[u8]) -> ScanIter<'_> {
        Box::new(Guarded::new(
            self.tree(space)
                .range(from.to_vec()..)
                .map(|r| r.map_err(Error::from)),
            "scanning",
        ))
    }

    fn scan_range(&self, space: Space, from: &[u8], to: &[u8]) -> ScanIter<'_> {
        Box::new(Guarded::new(
            self.tree(space)
                .range(from.to_vec()..to.to_vec())
                .map(|r| r.map_err(Error::from)),
            "scanning",
        ))
    }

    fn last(&self, space: Space) -> Result<Option<(Bytes, Bytes)>> {
        guarded("reading", || Ok(self.tree(space).last()?))
    }

    fn len(&self, space: Space) -> Result<u64> {
        guarded("counting", || Ok(self.tree(space).len() as u64))
    }

    fn flush(&self) -> Result<usize> {
        guarded("flushing", || Ok(self.db.flush()?))
    }

    fn size_on_disk(&self) -> Result<u64> {
        guarded("measuring", || Ok(self.db.size_on_disk()?))
    }
}

impl SledStore {
    fn apply_unguarded(&self, batch: &WriteBatch) -> Result<()> {
        let first = match batch.ops().first() {
            None => return Ok(()),
            Some((s, _, _)) => *s,
        };
        if batch.len() > TRANSACTION_OPS {
            return self.apply_journaled(batch);
        }
        if batch.ops().iter().all(|(s, _, _)| *s == first) {
            // One tree: sled's batch is atomic and much cheaper than a transaction.
            return self.apply_ops_unlogged(batch.ops());
        }
        self.apply_transaction(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_batches_apply_whole_and_leave_no_journal() {
        let s = SledStore::temporary().unwrap();
        let mut b = WriteBatch::new();
        for i in 0..2500u64 {
            b.put(Space::Nodes, i.to_be_bytes(), vec![1, 2, 3]);
            b.put(Space::Ids, i.to_be_bytes(), vec![4]);
        }
        b.delete(Space::Nodes, 7u64.to_be_bytes());
        s.apply(&b).unwrap();
        assert_eq!(s.len(Space::Nodes).unwrap(), 2499);
        assert_eq!(s.len(Space::Ids).unwrap(), 2500);
        assert_eq!(s.len(Space::Journal).unwrap(), 0);
    }

    #[test]
    fn a_committed_journal_is_replayed_and_an_uncommitted_one_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let ops: Vec<WriteOp> = (0..10u64)
            .map(|i| (Space::Nodes, i.to_be_bytes().to_vec(), Some(vec![9])))
            .collect();
        {
            // A crash after the commit marker, before the apply.
            let s = SledStore::open(&path, 8).unwrap();
            let j = s.tree(Space::Journal);
            for (i, op) in ops.iter().enumerate() {
                j.insert((i as u64).to_be_bytes(), encode_op(op)).unwrap();
            }
            j.insert(JOURNAL_COMMIT, &[1u8]).unwrap();
            s.flush().unwrap();
        }
        let s = SledStore::open(&path, 8).unwrap();
        assert_eq!(s.len(Space::Nodes).unwrap(), 10);
        assert_eq!(s.len(Space::Journal).unwrap(), 0);
        {
            // A crash before the marker: nothing of it survives.
            let j = s.tree(Space::Journal);
            j.insert(
                0u64.to_be_bytes(),
                encode_op(&(Space::Ids, vec![1], Some(vec![2]))),
            )
            .unwrap();
            s.flush().unwrap();
        }
        drop(s);
        let s = SledStore::open(&path, 8).unwrap();
        assert_eq!(s.len(Space::Ids).unwrap(), 0);
        assert_eq!(s.len(Space::Journal).unwrap(), 0);
        assert!(decode_op(&[9, 0]).is_err());
    }
}
