//! Incremental writes: insert, upsert, delete, and batches of them, atomic and durable.

use std::sync::atomic::Ordering;

use super::{check_point, Index};
use crate::error::{Error, Result};
use crate::point::{NewPoint, Payload, PointId, WriteOp};
use crate::progress::{NoProgress, Progress};
use crate::tree::insert::insert;
use crate::tree::remove::remove;
use crate::tree::txn::Txn;

/// Operations between progress reports: often enough for a bar, rare enough to cost nothing.
const PROGRESS_STEP: usize = 256;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    /// Points inserted or replaced.
    pub written: u64,
    /// Of those, points that replaced one with the same id (upserts of an existing id).
    pub replaced: u64,
    /// Points deleted.
    pub deleted: u64,
    /// Deletes whose id was not there.
    pub missing: u64,
    /// The write's sequence number.
    pub sequence: u64,
}

impl Index {
    /// Applies `ops` in order as one atomic write, and returns once it is durable on disk.
    ///
    /// Every operation is checked before anything is written: one bad coordinate or duplicate
    /// insert rejects the whole batch and writes nothing. Concurrent calls are serialized, and
    /// their flushes are shared.
    pub fn write(&self, ops: &[WriteOp]) -> Result<WriteOutcome> {
        self.write_with_progress(ops, &NoProgress)
    }

    /// [`Index::write`], reporting its phases (applying the operations, landing the batch,
    /// flushing) to `progress`: a large batch from the CLI takes seconds to minutes.
    pub fn write_with_progress(
        &self,
        ops: &[WriteOp],
        progress: &dyn Progress,
    ) -> Result<WriteOutcome> {
        let outcome = self.commit(ops, None, progress)?;
        progress.phase("flushing", None);
        self.flusher.wait_durable(self.store.as_ref())?;
        self.mark_durable(outcome.sequence);
        progress.finish();
        Ok(outcome)
    }

    /// Like [`Index::write`] but returns before the flush: the write is atomic but not yet
    /// durable (for bulk loads that flush once at the end).
    pub fn write_unsynced(&self, ops: &[WriteOp]) -> Result<WriteOutcome> {
        self.commit(ops, None, &NoProgress)
    }

    /// Applies change `seq` of the primary this index follows, durably. Changes at or below
    /// the applied sequence are skipped (they are already here); a gap is an error.
    pub fn apply_replicated(&self, seq: u64, ops: &[WriteOp]) -> Result<WriteOutcome> {
        let applied = self.meta().sequence;
        if seq <= applied {
            return Ok(WriteOutcome {
                sequence: applied,
                ..WriteOutcome::default()
            });
        }
        if seq != applied + 1 {
            return Err(Error::invalid(
                "seq",
                format!("change {seq} does not follow the applied sequence {applied}"),
            ));
        }
        let out = self.commit(ops, Some(seq), &NoProgress)?;
        self.flusher.wait_durable(self.store.as_ref())?;
        self.mark_durable(out.sequence);
        Ok(out)
    }

    /// Writes kept in the changes log for replicas (default 100,000).
    pub fn set_change_retention(&self, writes: u64) {
        self.retain_changes.store(writes.max(1), Ordering::Relaxed);
    }

    /// One atomic write; `replicated` carries the primary's sequence number for a follower.
    fn commit(
        &self,
        ops: &[WriteOp],
        replicated: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<WriteOutcome> {
        {
            let meta = self.meta();
            for (i, op) in ops.iter().enumerate() {
                if let WriteOp::Insert(p) | WriteOp::Upsert(p) = op {
                    // Deletes are not checked: an id stored before the bound must stay removable.
                    p.id.check()
                        .map_err(|reason| Error::invalid(format!("item {i} id"), reason))?;
                    check_point(&meta, &p.coords).map_err(|e| match e {
                        Error::InvalidArgument { param, reason } => Error::InvalidArgument {
                            param: format!("item {i} (id {}) {param}", p.id),
                            reason,
                        },
                        other => other,
                    })?;
                }
            }
        }
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut txn = Txn::new(self.store.as_ref(), (*self.meta()).clone());
        let mut outcome = WriteOutcome::default();
        progress.phase("applying", Some(ops.len() as u64));
        for (i, op) in ops.iter().enumerate() {
            if i % PROGRESS_STEP == 0 && i > 0 {
                progress.advance(PROGRESS_STEP as u64);
            }
            match op {
                WriteOp::Insert(p) | WriteOp::Upsert(p) => {
                    if txn.lookup(&p.id)?.is_some() {
                        if matches!(op, WriteOp::Insert(_)) {
                            return Err(Error::invalid(
                                format!("item {i} id"),
                                format!("a point with id {} exists (upsert replaces it)", p.id),
                            ));
                        }
                        remove(&mut txn, &p.id)?;
                        outcome.replaced += 1;
                    }
                    insert(
                        &mut txn,
                        &p.coords,
                        Payload {
                            id: p.id.clone(),
                            properties: p.properties.clone(),
                        },
                    )?;
                    outcome.written += 1;
                }
                WriteOp::Delete(id) => {
                    if remove(&mut txn, id)? {
                        outcome.deleted += 1;
                    } else {
                        outcome.missing += 1;
                    }
                }
            }
        }
        txn.grow_id_index()?;
        if outcome.written + outcome.deleted == 0 && replicated.is_none() {
            outcome.sequence = txn.meta.sequence;
            return Ok(outcome);
        }
        txn.meta.sequence = replicated.unwrap_or(txn.meta.sequence + 1);
        outcome.sequence = txn.meta.sequence;
        txn.log_change(
            txn.meta.sequence,
            ops,
            self.retain_changes.load(Ordering::Relaxed),
        );
        progress.phase("landing", None);
        let (batch, meta, touched) = txn.finish()?;
        // Readers are held off only while the batch lands and the cache follows it.
        let gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let applied = self.store.apply(&batch);
        let (nodes, leaf_json) = (self.cache.as_ref(), self.leaf_json.as_ref());
        let columns = self.columns.as_ref();
        match &applied {
            Ok(()) => {
                nodes.inspect(|c| c.invalidate(touched.nodes.iter().copied()));
                leaf_json.inspect(|c| c.invalidate(touched.payloads.iter().copied()));
                columns.inspect(|c| c.invalidate(touched.payloads.iter().copied()));
            }
            // A failed large batch may have landed in part: trust nothing cached.
            Err(_) => {
                nodes.inspect(|c| c.clear());
                leaf_json.inspect(|c| c.clear());
                columns.inspect(|c| c.clear());
            }
        }
        applied?;
        self.publish(meta);
        drop(gate);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(outcome)
    }

    /// Inserts one point (its id must be new), durably.
    pub fn insert(&self, p: NewPoint) -> Result<WriteOutcome> {
        self.write(&[WriteOp::Insert(p)])
    }

    /// Inserts or replaces one point, durably.
    pub fn upsert(&self, p: NewPoint) -> Result<WriteOutcome> {
        self.write(&[WriteOp::Upsert(p)])
    }

    /// Deletes one point, durably; false if there was none with this id.
    pub fn delete(&self, id: &PointId) -> Result<bool> {
        Ok(self.write(&[WriteOp::Delete(id.clone())])?.deleted == 1)
    }

    /// Committed writes on this handle.
    pub fn writes_total(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}
