//! A leaf's payloads encoded as JSON once and spliced into answers, with a bounded cache of them.
//!
//! Decoding a leaf's payload records into owned attributes and serializing them again was most
//! of a request's time at 25 km (about 40 places with full GeoNames rows) and, since a leaf holds
//! up to 128 points, even of one-hit answers. The JSON of each point's id and attributes is
//! therefore made once per leaf, straight from the records read in place, and kept until a write
//! rewrites that leaf's payloads.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::point::PointId;
use crate::prefetch;
use crate::store::codec::{self, IdRef, ValueRef};
use crate::store::Store;
use crate::tree::leaf_cache::{LeafCache, Weighed};
use crate::tree::points::for_each_payload_chunk;

/// The JSON of one leaf's payloads: per slot, the user id and the `properties` object.
pub struct LeafJson {
    buf: Vec<u8>,
    /// Per slot: where its id ends and where its properties end in `buf` (each slot starts where
    /// the previous one ends).
    ends: Vec<(u32, u32)>,
    ids: Vec<PointId>,
    /// Whether no slot's attributes repeat a key (a payload may: its attributes are a list),
    /// so a pick of named attributes may stop once it has found each name.
    unique_keys: bool,
}

impl LeafJson {
    /// Reads and encodes the payloads of leaf `leaf`.
    pub fn read(store: &dyn Store, leaf: u64) -> Result<LeafJson> {
        let mut out = LeafJson {
            buf: Vec::new(),
            ends: Vec::new(),
            ids: Vec::new(),
            unique_keys: true,
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
        let mut keys: smallvec::SmallVec<[&str; 32]> = smallvec::SmallVec::new();
        for (n, (k, v)) in props.enumerate() {
            if n > 0 {
                self.buf.push(b',');
            }
            keys.push(k);
            write_json(&mut self.buf, k);
            self.buf.push(b':');
            write_value(&mut self.buf, v);
        }
        self.buf.push(b'}');
        if self.unique_keys {
            keys.sort_unstable();
            self.unique_keys = keys.windows(2).all(|w| w[0] != w[1]);
        }
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

    /// Whether no slot's attributes repeat a key.
    pub fn unique_keys(&self) -> bool {
        self.unique_keys
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

/// Encoded leaves by leaf id, within a byte budget.
pub type LeafJsonCache = LeafCache<LeafJson>;

impl Weighed for LeafJson {
    fn bytes(&self) -> usize {
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
