//! A leaf's payloads encoded as JSON once and spliced into answers, with a bounded cache of them.
//!
//! Decoding a leaf's payload records into owned attributes and serializing them again was most
//! of a request's time at 25 km (about 40 places with full GeoNames rows) and, since a leaf holds
//! up to 128 points, even of one-hit answers. The JSON of each point's id and attributes is
//! therefore made once per leaf, straight from the records read in place, and kept until a write
//! rewrites that leaf's payloads.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::point::PointId;
use crate::prefetch;
use crate::store::codec::{self, IdRef, ValueRef};
use crate::store::Store;
use crate::tree::cache::IdHasher;
use crate::tree::points::for_each_payload_chunk;

/// The JSON of one leaf's payloads: per slot, the user id and the `properties` object.
pub struct LeafJson {
    buf: Vec<u8>,
    /// Per slot: where its id ends and where its properties end in `buf` (each slot starts where
    /// the previous one ends).
    ends: Vec<(u32, u32)>,
    ids: Vec<PointId>,
}

impl LeafJson {
    /// Reads and encodes the payloads of leaf `leaf`.
    pub fn read(store: &dyn Store, leaf: u64) -> Result<LeafJson> {
        let mut out = LeafJson {
            buf: Vec::new(),
            ends: Vec::new(),
            ids: Vec::new(),
        };
        for_each_payload_chunk(store, leaf, |bytes| {
            let record = codec::decode_leaf_payloads_ref(leaf, bytes)?;
            out.buf.reserve(bytes.len() + bytes.len() / 2);
            for i in 0..record.len() {
                let Some((id, props)) = record.point(i) else {
                    break;
                };
                out.push(id, props)?;
            }
            Ok(())
        })?;
        // Kept for long in a cache that counts capacity: no slack.
        out.buf.shrink_to_fit();
        out.ends.shrink_to_fit();
        out.ids.shrink_to_fit();
        Ok(out)
    }

    fn push<'a>(
        &mut self,
        id: IdRef<'a>,
        props: impl Iterator<Item = (&'a str, ValueRef<'a>)>,
    ) -> Result<()> {
        let too_big = || Error::Corrupt("a leaf's payloads exceed 4 GiB of JSON".into());
        write_json(&mut self.buf, &id_json(id));
        let id_end = u32::try_from(self.buf.len()).map_err(|_| too_big())?;
        self.buf.push(b'{');
        for (n, (k, v)) in props.enumerate() {
            if n > 0 {
                self.buf.push(b',');
            }
            write_json(&mut self.buf, k);
            self.buf.push(b':');
            write_value(&mut self.buf, v);
        }
        self.buf.push(b'}');
        let end = u32::try_from(self.buf.len()).map_err(|_| too_big())?;
        self.ends.push((id_end, end));
        self.ids.push(id.to_owned_id());
        Ok(())
    }

    /// Points (slots) encoded.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the leaf has no point.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn start(&self, slot: usize) -> usize {
        match slot.checked_sub(1) {
            Some(p) => self.ends[p].1 as usize,
            None => 0,
        }
    }

    /// The user id of slot `slot`.
    pub fn id(&self, slot: usize) -> Option<&PointId> {
        self.ids.get(slot)
    }

    /// The JSON of slot `slot`'s id.
    pub fn id_json(&self, slot: usize) -> Option<&[u8]> {
        let (id_end, _) = *self.ends.get(slot)?;
        self.buf.get(self.start(slot)..id_end as usize)
    }

    /// The JSON object of slot `slot`'s attributes.
    pub fn properties_json(&self, slot: usize) -> Option<&[u8]> {
        let (id_end, end) = *self.ends.get(slot)?;
        self.buf.get(id_end as usize..end as usize)
    }

    /// Asks the CPU to start loading slot `slot`'s JSON (its first kilobyte) into cache.
    ///
    /// An answer copies each hit's JSON out of a cache far larger than the CPU's, so every copy
    /// starts with a miss to memory; issued for all hits before the first copy, the misses
    /// overlap instead of following one another.
    pub fn prefetch(&self, slot: usize) {
        /// Lines asked for per slot: most payloads fit, long ones stream behind the first.
        const LINES: usize = 16;
        // Where the slot starts and ends: reading them is itself a miss unless
        // [`LeafJson::prefetch_bounds`] asked for them earlier.
        let Some(&(_, end)) = self.ends.get(slot) else {
            return;
        };
        if let Some(bytes) = self.buf.get(self.start(slot)..end as usize) {
            prefetch::lines(bytes, LINES);
        }
    }

    /// Asks the CPU to start loading where slot `slot`'s JSON starts and ends, which
    /// [`LeafJson::prefetch`] reads: a pass over every hit's bounds first, then one over their
    /// bytes, keeps both kinds of misses overlapping.
    pub fn prefetch_bounds(&self, slot: usize) {
        for s in [slot.saturating_sub(1), slot] {
            if let Some(e) = self.ends.get(s) {
                prefetch::at(e);
            }
        }
    }

    /// Memory held, roughly.
    pub fn bytes(&self) -> usize {
        self.buf.capacity()
            + self.ends.capacity() * 8
            + self.ids.capacity() * std::mem::size_of::<PointId>()
            + self
                .ids
                .iter()
                .map(|id| match id {
                    PointId::Str(s) => s.capacity(),
                    PointId::Int(_) => 0,
                })
                .sum::<usize>()
    }
}

/// An id borrowed as the JSON it serializes to.
fn id_json(id: IdRef<'_>) -> Either<'_> {
    match id {
        IdRef::Int(n) => Either::Int(n),
        IdRef::Str(s) => Either::Str(s),
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Either<'a> {
    Int(i64),
    Str(&'a str),
}

/// Appends `v` as serde_json writes it: the same escapes and number forms as every other answer.
pub(crate) fn write_json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, v: &T) {
    // Writing to a Vec fails only if a Serialize impl fails, and these do not.
    let _ = serde_json::to_writer(&mut *buf, v);
}

/// Appends a value as [`crate::point::Value`] serializes: non-finite floats are `null`.
fn write_value(buf: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => buf.extend_from_slice(b"null"),
        ValueRef::Bool(true) => buf.extend_from_slice(b"true"),
        ValueRef::Bool(false) => buf.extend_from_slice(b"false"),
        ValueRef::Int(n) => write_json(buf, &n),
        ValueRef::Float(x) if x.is_finite() => write_json(buf, &x),
        ValueRef::Float(_) => buf.extend_from_slice(b"null"),
        ValueRef::Str(s) => write_json(buf, s),
    }
}

/// Encoded leaves by leaf id, within a byte budget; evicted by second chance (a leaf used since
/// it last came up for eviction is kept one more round).
pub struct LeafJsonCache {
    budget: usize,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Leaf id to (its JSON, the stamp it was put in with, used since last considered);
    /// hashed like the node cache's ids (node ids are not attacker-chosen; SipHash cost more
    /// than the rest of a lookup).
    map: HashMap<u64, (Arc<LeafJson>, u64, bool), BuildHasherDefault<IdHasher>>,
    /// Eviction order: (leaf, stamp); entries whose stamp no longer matches the map are stale.
    order: VecDeque<(u64, u64)>,
    bytes: usize,
    stamp: u64,
    hits: u64,
    misses: u64,
}

impl LeafJsonCache {
    /// A cache holding at most `budget` bytes of encoded leaves.
    pub fn new(budget: usize) -> LeafJsonCache {
        LeafJsonCache {
            budget,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The encoded payloads of `leaf`, if cached.
    pub fn get(&self, leaf: u64) -> Option<Arc<LeafJson>> {
        let mut s = self.lock();
        match s.map.get_mut(&leaf) {
            Some((json, _, used)) => {
                *used = true;
                let json = json.clone();
                s.hits += 1;
                Some(json)
            }
            None => {
                s.misses += 1;
                None
            }
        }
    }

    /// Keeps `json` as the payloads of `leaf`. The caller must hold a snapshot, so no write
    /// can have changed the leaf since it was read. A leaf larger than an eighth of the budget
    /// is not kept.
    pub fn insert(&self, leaf: u64, json: Arc<LeafJson>) {
        let size = json.bytes();
        if size > self.budget / 8 {
            return;
        }
        let mut s = self.lock();
        s.stamp += 1;
        let stamp = s.stamp;
        if let Some((old, _, _)) = s.map.insert(leaf, (json, stamp, false)) {
            s.bytes -= old.bytes();
        }
        s.bytes += size;
        s.order.push_back((leaf, stamp));
        while s.bytes > self.budget {
            let Some((id, st)) = s.order.pop_front() else {
                break;
            };
            let live = s.map.get_mut(&id).filter(|e| e.1 == st);
            match live {
                Some(e) if e.2 => {
                    e.2 = false;
                    s.order.push_back((id, st));
                }
                Some(_) => {
                    if let Some((old, _, _)) = s.map.remove(&id) {
                        s.bytes -= old.bytes();
                    }
                }
                None => {}
            }
        }
        // Invalidations leave stale entries behind: drop them before they outnumber the live.
        if s.order.len() > 2 * s.map.len() + 1024 {
            let CacheState { map, order, .. } = &mut *s;
            order.retain(|(id, st)| map.get(id).is_some_and(|e| e.1 == *st));
        }
    }

    /// Forgets the leaves whose payloads a write changed. Called while the write holds readers
    /// off, so no snapshot can put an old encoding back afterwards.
    pub fn invalidate(&self, leaves: impl IntoIterator<Item = u64>) {
        let mut s = self.lock();
        for id in leaves {
            if let Some((old, _, _)) = s.map.remove(&id) {
                s.bytes -= old.bytes();
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut s = self.lock();
        s.map.clear();
        s.order.clear();
        s.bytes = 0;
    }

    /// Bytes of encoded leaves held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Leaves held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (hits, misses) so far.
    pub fn hit_counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.hits, s.misses)
    }
}
