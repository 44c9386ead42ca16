//! Reads against one committed state of the index.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockReadGuard};

use smallvec::SmallVec;

use super::leaf_json::LeafJson;
use super::{check_point, check_radius, Index};
use crate::error::{Error, Result};
use crate::geometry::BBox;
use crate::point::{Payload, PointId, WriteOp};
use crate::query::{self, Answer, Filter, Hit, LeafPayloads, StatsAnswer, Walk};
use crate::store::format::Meta;
use crate::store::{codec, Space};
use crate::tree::points::{self, StoredPoint};
use crate::tree::{Node, PointRef, TreeReader};

/// The payload JSON of an answer's hits ([`Snapshot::payload_json`]): the encodings of the
/// leaves they lie in (inline up to four), and per hit, in the hits' order, the hit with its
/// leaf's place among those and its slot.
pub type PointsJson<'h> = (SmallVec<[Arc<LeafJson>; 4]>, Vec<(&'h Hit, (usize, usize))>);

/// One committed write from the changes log: its sequence number and operations.
pub type Change = (u64, Vec<WriteOp>);

thread_local! {
    /// The indexes (by address) this thread holds a snapshot of, innermost last.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Leaves an answer's points are matched against by a scan before [`by_leaf`] sorts them
/// instead.
const SCANNED_LEAVES: usize = 16;

/// `take(leaf's reader, item)` for each of `items`, in their order, opening each item's leaf
/// (`point(item)`'s) once (`open(leaf)`) however many of the items it holds.
///
/// Most answers lie in a few leaves: each item's is found among those opened so far by a
/// short scan, in the items' order, with no sort. Past [`SCANNED_LEAVES`] distinct leaves the
/// rest of the items are sorted by leaf, reusing the leaves already opened.
fn by_leaf<'i, P, L, T>(
    items: &'i [P],
    point: impl Fn(&P) -> PointRef,
    mut open: impl FnMut(u64) -> Result<L>,
    mut take: impl FnMut(&mut L, &'i P) -> Result<T>,
) -> Result<Vec<T>> {
    // Inline: an answer's few leaves cost no allocation.
    let mut opened: SmallVec<[(u64, L); 4]> = SmallVec::new();
    let mut out = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let leaf = point(item).leaf();
        let at = match opened.iter().position(|(l, _)| *l == leaf) {
            Some(at) => at,
            None if opened.len() < SCANNED_LEAVES => {
                opened.push((leaf, open(leaf)?));
                opened.len() - 1
            }
            None => {
                out.extend(by_leaf_sorted(
                    &items[n..],
                    point,
                    opened.into_vec(),
                    open,
                    take,
                )?);
                return Ok(out);
            }
        };
        out.push(take(&mut opened[at].1, item)?);
    }
    Ok(out)
}

/// [`by_leaf`] for items in many leaves, given the leaves already `opened`.
fn by_leaf_sorted<'i, P, L, T>(
    items: &'i [P],
    point: impl Fn(&P) -> PointRef,
    mut opened: Vec<(u64, L)>,
    mut open: impl FnMut(u64) -> Result<L>,
    mut take: impl FnMut(&mut L, &'i P) -> Result<T>,
) -> Result<Vec<T>> {
    let mut order: Vec<(PointRef, usize)> = items.iter().map(&point).zip(0..).collect();
    // Handles are unique within an answer: an unstable sort orders them the same.
    order.sort_unstable();
    let mut out: Vec<Option<T>> = (0..items.len()).map(|_| None).collect();
    let mut leaf: Option<(u64, L)> = None;
    for (p, i) in order {
        let reader = match &mut leaf {
            Some((l, r)) if *l == p.leaf() => r,
            _ => {
                let reader = match opened.iter().position(|(l, _)| *l == p.leaf()) {
                    Some(at) => opened.swap_remove(at).1,
                    None => open(p.leaf())?,
                };
                &mut leaf.insert((p.leaf(), reader)).1
            }
        };
        out[i] = Some(take(reader, &items[i])?);
    }
    Ok(out.into_iter().flatten().collect())
}

/// A read view: holds off writers while it lives. See [`Index::snapshot`].
pub struct Snapshot<'a> {
    pub(super) index: &'a Index,
    /// `None` when an outer snapshot on this thread already holds the gate.
    _gate: Option<RwLockReadGuard<'a, ()>>,
    meta: Arc<Meta>,
    filter: Option<Filter>,
    after: Option<(f64, u64)>,
    cached_only: Option<u64>,
}

impl<'a> Snapshot<'a> {
    pub(super) fn take(index: &'a Index) -> Snapshot<'a> {
        let held = Self::held(index);
        let gate = if held {
            None
        } else {
            Some(index.gate.read().unwrap_or_else(|p| p.into_inner()))
        };
        Self::with_gate(index, gate)
    }

    /// A snapshot if one can be had without waiting (no writer holds or waits for the gate).
    pub(super) fn try_take(index: &'a Index) -> Option<Snapshot<'a>> {
        let gate = if Self::held(index) {
            None
        } else {
            match index.gate.try_read() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => return None,
            }
        };
        Some(Self::with_gate(index, gate))
    }

    fn held(index: &Index) -> bool {
        let key = index as *const Index as usize;
        HELD.with(|h| h.borrow().contains(&key))
    }

    fn with_gate(index: &'a Index, gate: Option<RwLockReadGuard<'a, ()>>) -> Snapshot<'a> {
        let key = index as *const Index as usize;
        HELD.with(|h| h.borrow_mut().push(key));
        // Read under the gate: no writer can publish while it is held.
        let meta = index.meta();
        Snapshot {
            index,
            _gate: gate,
            meta,
            filter: None,
            after: None,
            cached_only: None,
        }
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        let key = self.index as *const Index as usize;
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().rposition(|k| *k == key) {
                h.remove(i);
            }
        });
    }
}

impl Snapshot<'_> {
    /// This view with an attribute filter that every query through it applies during its walk
    /// (before limits and counts).
    pub fn filtered(mut self, filter: Option<Filter>) -> Self {
        self.filter = filter;
        self
    }

    /// This view answering from caches alone: a walk that would read storage or visit more than
    /// `visits` nodes, a filter whose attribute column is not cached, and payload JSON not
    /// cached, fail with [`Error::NotCached`] instead. For queries run on an async runtime's
    /// threads, which must never wait on a disk.
    pub fn cached_only(mut self, visits: u64) -> Self {
        self.cached_only = Some(visits);
        self
    }

    /// This view paging after `after`: list queries keep only hits ranked after this
    /// (distance, point handle), box queries after this handle; counts still cover every point.
    pub fn after(mut self, after: Option<(f64, u64)>) -> Self {
        self.after = after;
        self
    }

    /// The meta record of this view.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    fn walk(&self) -> Walk<'_> {
        Walk {
            store: self.index.store.as_ref(),
            metric: self.meta.metric,
            dims: self.meta.dims as usize,
            root: self.meta.root,
            depth: self.meta.depth,
            read_ahead: self.index.read_ahead,
            cache: self.index.cache.as_ref(),
            columns: self.index.columns.as_ref(),
            filter: self.filter.as_ref(),
            after: self.after,
            cached_only: self.cached_only,
        }
    }

    fn counted(&self, a: Result<Answer>) -> Result<Answer> {
        if let Ok(a) = &a {
            self.index
                .nodes_read
                .fetch_add(a.nodes_read, Ordering::Relaxed);
        }
        a
    }

    /// Points within `radius` of `center`, nearest first, at most `limit`.
    pub fn radius(&self, center: &[f64], radius: f64, limit: usize) -> Result<Answer> {
        check_point(&self.meta, center)?;
        check_radius("radius", radius)?;
        self.counted(query::radius::radius(self.walk(), center, radius, limit))
    }

    /// Number of points within `radius` of `center` (an answer with a count and no hits).
    pub fn count_within(&self, center: &[f64], radius: f64) -> Result<Answer> {
        check_point(&self.meta, center)?;
        check_radius("radius", radius)?;
        self.counted(query::radius::count(self.walk(), center, radius))
    }

    /// The `k` nearest points to `center`, optionally within `max_distance`.
    pub fn nearest(&self, center: &[f64], k: usize, max_distance: Option<f64>) -> Result<Answer> {
        check_point(&self.meta, center)?;
        if let Some(d) = max_distance {
            check_radius("max_distance", d)?;
        }
        self.counted(query::nearest::nearest(
            self.walk(),
            center,
            k,
            max_distance,
        ))
    }

    /// Points inside `bbox`, at most `limit`.
    pub fn within(&self, bbox: &BBox, limit: usize) -> Result<Answer> {
        self.check_box(bbox)?;
        self.counted(query::bbox::within(self.walk(), bbox, limit))
    }

    fn check_box(&self, bbox: &BBox) -> Result<()> {
        if bbox.dims() != self.meta.dims as usize {
            return Err(Error::invalid(
                "bbox",
                format!(
                    "the index has {} dimensions, the box {}",
                    self.meta.dims,
                    bbox.dims()
                ),
            ));
        }
        Ok(())
    }

    /// Hands the coordinates of every point inside `bbox` that passes this view's filter to
    /// `f`, in no particular order, and returns how many there were; stops with an error once
    /// more than `max` were found. For readers of many points (heatmap tiles): no hit is ranked
    /// or copied.
    pub fn for_each_within(&self, bbox: &BBox, max: u64, mut f: impl FnMut(&[f64])) -> Result<u64> {
        self.check_box(bbox)?;
        let mut count = 0u64;
        let (reads, _) = query::bbox::visit(self.walk(), bbox, |_, c| {
            count += 1;
            if count <= max {
                f(c);
            }
        })?;
        self.index.nodes_read.fetch_add(reads, Ordering::Relaxed);
        Ok(count)
    }

    /// Per-value counts (and sums) of an attribute over the points within a radius.
    pub fn stats(
        &self,
        center: &[f64],
        radius: f64,
        group_by: &str,
        sum: Option<&str>,
    ) -> Result<StatsAnswer> {
        check_point(&self.meta, center)?;
        check_radius("radius", radius)?;
        let a = query::stats::stats(self.walk(), center, radius, group_by, sum)?;
        self.index
            .nodes_read
            .fetch_add(a.nodes_read, Ordering::Relaxed);
        Ok(a)
    }

    /// The payload of the point `point` of an answer from this snapshot.
    pub fn payload(&self, point: PointRef) -> Result<Payload> {
        let mut p = self.payloads(&[point])?;
        p.pop()
            .ok_or_else(|| Error::Corrupt(format!("no payload for point {point:?}")))
    }

    /// The payloads of `points` (from answers of this snapshot), in their order: each leaf's
    /// payload record is read once, however many of the points it holds.
    pub fn payloads(&self, points: &[PointRef]) -> Result<Vec<Payload>> {
        if self.cached_only.is_some() && !points.is_empty() {
            return Err(Error::NotCached);
        }
        by_leaf(
            points,
            |p| *p,
            |leaf| Ok(LeafPayloads::new(self.index.store.as_ref(), leaf)),
            |read, p| Ok(read.get(p.slot())?.clone()),
        )
    }

    /// The JSON of the payloads of `hits` (from answers of this snapshot): the leaves they lie
    /// in, encoded, and per hit in their order (the hit, its leaf's place among those, slot).
    /// Each leaf is read and encoded once, and kept in the index's cache for later answers; a
    /// leaf's encoding is held by one reference however many hits it holds, so an answer does
    /// not bump a counter every thread shares per place.
    pub fn payload_json<'h>(&self, hits: &'h [Hit]) -> Result<PointsJson<'h>> {
        let mut leaves = SmallVec::new();
        let rows = by_leaf(
            hits,
            |h| h.point,
            |leaf| {
                let json = self.leaf_json(leaf)?;
                let len = json.len();
                leaves.push(json);
                Ok((leaves.len() - 1, len))
            },
            |&mut (at, len), hit| {
                let p = hit.point;
                if p.slot() >= len {
                    return Err(Error::Corrupt(format!(
                        "leaf {} has no payload for slot {}",
                        p.leaf(),
                        p.slot()
                    )));
                }
                Ok((hit, (at, p.slot())))
            },
        )?;
        Ok((leaves, rows))
    }

    fn leaf_json(&self, leaf: u64) -> Result<Arc<LeafJson>> {
        let cache = self.index.leaf_json.as_ref();
        if let Some(json) = cache.and_then(|c| c.get(leaf)) {
            return Ok(json);
        }
        if self.cached_only.is_some() {
            return Err(Error::NotCached);
        }
        let json = Arc::new(LeafJson::read(self.index.store.as_ref(), leaf)?);
        // Under this snapshot no write can land, so what was read is still the leaf's.
        if let Some(c) = cache {
            c.insert(leaf, json.clone());
        }
        Ok(json)
    }

    /// Node `id` as stored.
    pub fn node(&self, id: u64) -> Result<Node> {
        TreeReader::new(self.index.store.as_ref(), self.meta.dims as usize).node(id)
    }

    /// Up to `limit` committed writes after sequence `since`, in order, or `None` when some of
    /// them are no longer in the changes log (the follower must re-snapshot).
    ///
    /// Only durable changes are served: a replica must never hold a write that a crash of this
    /// primary could still take back.
    pub fn changes_since(&self, since: u64, limit: usize) -> Result<Option<Vec<Change>>> {
        // A follower ahead of this index holds writes this index does not (it lost them, or
        // it was replaced): only a new snapshot brings it back in step.
        if since > self.meta.sequence {
            return Ok(None);
        }
        let current = self.meta.sequence.min(self.index.durable_sequence());
        if since >= current {
            return Ok(Some(Vec::new()));
        }
        let mut out = Vec::new();
        let store = self.index.store.as_ref();
        for r in store.scan_from(Space::Changes, &codec::change_key(since + 1)) {
            let (k, v) = r?;
            let seq = codec::node_id_from_key(&k)?;
            if seq > current {
                break;
            }
            if out.is_empty() && seq != since + 1 {
                return Ok(None);
            }
            out.push((seq, codec::decode_change(seq, &v)?));
            if out.len() >= limit.max(1) {
                break;
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// The point with the user's id `id`, if there is one.
    pub fn get(&self, id: &PointId) -> Result<Option<StoredPoint>> {
        points::find(self.index.store.as_ref(), &self.meta, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_leaf_keeps_the_points_order_and_opens_each_leaf_once() {
        for leaves in [1u64, 3, 16, 17, 40] {
            // Scrambled over the leaves, several points in each.
            let points: Vec<PointRef> = (0..200u64)
                .map(|i| PointRef::new(100 + (i * 7) % leaves, (i % 11) as usize))
                .collect();
            let mut opens = Vec::new();
            let got = by_leaf(
                &points,
                |p| *p,
                |leaf| {
                    opens.push(leaf);
                    Ok(leaf)
                },
                |leaf, p: &PointRef| {
                    assert_eq!(*leaf, p.leaf());
                    Ok((p.leaf(), p.slot()))
                },
            )
            .expect("by_leaf");
            let want: Vec<(u64, usize)> = points.iter().map(|p| (p.leaf(), p.slot())).collect();
            assert_eq!(got, want, "{leaves} leaves");
            // Each leaf opened once, past the scan too.
            let mut distinct = opens.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), leaves.min(200) as usize, "{leaves} leaves");
            assert_eq!(opens.len(), distinct.len(), "{leaves} leaves");
        }
    }
}
