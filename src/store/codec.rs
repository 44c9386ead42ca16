//! Every byte layout of the index, in one place: keys, and bincode records for nodes, payloads
//! and meta.
//!
//! bincode 2.0.1 is pinned and unmaintained; nothing outside this module may name it, so a future
//! format version can swap the encoding here alone.

use bincode::{BorrowDecode, Decode, Encode};

use super::format::Meta;
use super::node::{Inner, Node, MAX_LEAF_SIZE};
use crate::error::{Error, Result};
use crate::geometry::Metric;
use crate::point::{NewPoint, Payload, PointId, Value, WriteOp};

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn encode<T: Encode>(v: &T) -> Vec<u8> {
    // Encoding into a Vec fails only for types that refuse to encode; ours never do.
    bincode::encode_to_vec(v, config()).unwrap_or_default()
}

/// Calls `$f::<T, LIMIT>(bytes)` with the smallest memory limit that admits a record of this
/// size. bincode reserves whatever length a record claims before reading it: a damaged length
/// would ask for gigabytes and abort the process. Its limit is a constant, so one is picked per
/// record size: no valid record claims more memory than 64 times its own bytes.
macro_rules! by_size {
    ($f:ident::<$t:ty>($bytes:expr)) => {{
        let bytes = $bytes;
        let claim = bytes.len().saturating_mul(64);
        if claim <= 1 << 16 {
            $f::<$t, { 1 << 16 }>(bytes)
        } else if claim <= 1 << 20 {
            $f::<$t, { 1 << 20 }>(bytes)
        } else if claim <= 1 << 24 {
            $f::<$t, { 1 << 24 }>(bytes)
        } else if claim <= 1 << 28 {
            $f::<$t, { 1 << 28 }>(bytes)
        } else {
            $f::<$t, { 1 << 34 }>(bytes)
        }
    }};
}

fn decode<T: Decode<()>>(bytes: &[u8], what: impl FnOnce() -> String) -> Result<T> {
    fn limited<T: Decode<()>, const LIMIT: usize>(
        bytes: &[u8],
    ) -> std::result::Result<(T, usize), bincode::error::DecodeError> {
        bincode::decode_from_slice::<T, _>(bytes, config().with_limit::<LIMIT>())
    }
    whole(by_size!(limited::<T>(bytes)), bytes.len(), what)
}

/// [`decode`] for records read in place: strings borrow from `bytes` instead of being copied.
fn borrow_decode<'a, T: BorrowDecode<'a, ()>>(
    bytes: &'a [u8],
    what: impl FnOnce() -> String,
) -> Result<T> {
    fn limited<'a, T: BorrowDecode<'a, ()>, const LIMIT: usize>(
        bytes: &'a [u8],
    ) -> std::result::Result<(T, usize), bincode::error::DecodeError> {
        bincode::borrow_decode_from_slice::<T, _>(bytes, config().with_limit::<LIMIT>())
    }
    whole(by_size!(limited::<T>(bytes)), bytes.len(), what)
}

/// A decoded record that used all of its `len` bytes, or why not.
fn whole<T>(
    decoded: std::result::Result<(T, usize), bincode::error::DecodeError>,
    len: usize,
    what: impl FnOnce() -> String,
) -> Result<T> {
    match decoded {
        Ok((v, used)) if used == len => Ok(v),
        Ok((_, used)) => Err(Error::Corrupt(format!(
            "{}: {} trailing bytes after the record",
            what(),
            len - used
        ))),
        Err(e) => Err(Error::Corrupt(format!("{}: {e}", what()))),
    }
}

/// The key of node `id`: big-endian, so key order is id order.
#[inline]
pub fn node_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Reads a node id back from its key.
pub fn node_id_from_key(key: &[u8]) -> Result<u64> {
    be_u64_key(key, "node")
}

/// Reads a big-endian u64 key; `what` names the key in the error.
fn be_u64_key(key: &[u8], what: &str) -> Result<u64> {
    let arr: [u8; 8] = key
        .try_into()
        .map_err(|_| Error::Corrupt(format!("{what} key of {} bytes, not 8", key.len())))?;
    Ok(u64::from_be_bytes(arr))
}

/// The key of a user's point id in the id index: a tag byte, then the integer (sign bit flipped,
/// big-endian, so integers sort numerically) or the string's UTF-8.
pub fn id_key(id: &PointId) -> Vec<u8> {
    match id {
        PointId::Int(n) => {
            let mut k = Vec::with_capacity(9);
            k.push(0);
            k.extend_from_slice(&((*n as u64) ^ (1 << 63)).to_be_bytes());
            k
        }
        PointId::Str(s) => {
            let mut k = Vec::with_capacity(1 + s.len());
            k.push(1);
            k.extend_from_slice(s.as_bytes());
            k
        }
    }
}

/// Reads a user's point id back from its id-index key.
pub fn id_from_key(key: &[u8]) -> Result<PointId> {
    match key.split_first() {
        Some((0, rest)) if rest.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(rest);
            Ok(PointId::Int((u64::from_be_bytes(a) ^ (1 << 63)) as i64))
        }
        Some((1, rest)) => std::str::from_utf8(rest)
            .map(|s| PointId::Str(s.to_string()))
            .map_err(|_| Error::Corrupt("id index key is not UTF-8".into())),
        _ => Err(Error::Corrupt(format!(
            "id index key {key:?} has no valid tag"
        ))),
    }
}

/// The key of bucket `b` of the id index: big-endian.
pub fn bucket_key(b: u64) -> [u8; 8] {
    b.to_be_bytes()
}

/// Reads a bucket number back from its key.
pub fn bucket_from_key(key: &[u8]) -> Result<u64> {
    be_u64_key(key, "id bucket")
}

/// The hash that places a user's point id in an id-index bucket: FNV-1a over its key, then a
/// finalizer so the low bits that pick a bucket depend on every byte.
pub fn id_hash(id: &PointId) -> u64 {
    let mut h = crate::point::fnv1a(&id_key(id));
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// The bucket of a hash in a linear-hashing table of `buckets` buckets: the low bits of the
/// next power of two, folded once when that names a bucket not split off yet.
pub fn bucket_of(hash: u64, buckets: u64) -> u64 {
    let buckets = buckets.max(1);
    let level = 63 - buckets.leading_zeros();
    let wide = hash & ((2u64 << level) - 1);
    if wide < buckets {
        wide
    } else {
        hash & ((1u64 << level) - 1)
    }
}

/// Node record layouts of format versions 1 and 2 (one point per node), still read by
/// `migrate` and written by fixtures that exercise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeFormat {
    /// Version 1: bincode of `NodeRecord` (varint ids, a length-prefixed coordinate vector).
    V1,
    /// Version 2: fixed layout, decoded with plain slice reads: axis `u8`, above and below as
    /// `u64` little-endian (0 = none; node ids start at 1), then the coordinates as `f64`
    /// little-endian.
    V2,
}

impl NodeFormat {
    /// The legacy layout of a format version.
    pub fn for_version(version: u32) -> Result<NodeFormat> {
        match version {
            1 => Ok(NodeFormat::V1),
            2 => Ok(NodeFormat::V2),
            v => Err(Error::FormatVersion(format!(
                "no one-point node layout for format version {v}"
            ))),
        }
    }
}

/// A node of format versions 1 and 2: one point, the axis it splits on, and its children.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyNode {
    /// The split axis, `0..dims`; the split value is `coords[axis]`.
    pub axis: u8,
    /// Child holding the points at or above the split value.
    pub above: Option<u64>,
    /// Child holding the points at or below the split value.
    pub below: Option<u64>,
    /// The point's coordinates.
    pub coords: Vec<f64>,
}

#[derive(Encode, Decode)]
struct NodeRecord {
    axis: u8,
    above: Option<u64>,
    below: Option<u64>,
    coords: Vec<f64>,
}

/// Bytes of a version 2 node record before its coordinates.
const V2_HEADER: usize = 17;

/// Encodes a one-point node record in `format`.
pub fn encode_legacy_node(format: NodeFormat, node: &LegacyNode) -> Vec<u8> {
    match format {
        NodeFormat::V1 => encode(&NodeRecord {
            axis: node.axis,
            above: node.above,
            below: node.below,
            coords: node.coords.clone(),
        }),
        NodeFormat::V2 => {
            let mut out = Vec::with_capacity(V2_HEADER + 8 * node.coords.len());
            out.push(node.axis);
            out.extend_from_slice(&node.above.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&node.below.unwrap_or(0).to_le_bytes());
            for c in &node.coords {
                out.extend_from_slice(&c.to_le_bytes());
            }
            out
        }
    }
}

fn le8(bytes: &[u8], at: usize) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[at..at + 8]);
    a
}

/// Decodes one-point node `id`'s record in `format` and checks it fits `dims` dimensions.
pub fn decode_legacy_node(
    format: NodeFormat,
    id: u64,
    bytes: &[u8],
    dims: usize,
) -> Result<LegacyNode> {
    let node = match format {
        NodeFormat::V1 => {
            let r: NodeRecord = decode(bytes, || format!("node {id} does not decode"))?;
            LegacyNode {
                axis: r.axis,
                above: r.above,
                below: r.below,
                coords: r.coords,
            }
        }
        NodeFormat::V2 => {
            if bytes.len() != V2_HEADER + 8 * dims {
                return Err(Error::Corrupt(format!(
                    "node {id} does not decode: {} bytes, a {dims}-dimensional record has {}",
                    bytes.len(),
                    V2_HEADER + 8 * dims
                )));
            }
            let child = |at: usize| Some(u64::from_le_bytes(le8(bytes, at))).filter(|&c| c != 0);
            LegacyNode {
                axis: bytes[0],
                above: child(1),
                below: child(9),
                coords: (0..dims)
                    .map(|i| f64::from_le_bytes(le8(bytes, V2_HEADER + 8 * i)))
                    .collect(),
            }
        }
    };
    if node.coords.len() != dims {
        return Err(Error::Corrupt(format!(
            "node {id} has {} coordinates, the index has {dims}",
            node.coords.len()
        )));
    }
    if node.axis as usize >= dims {
        return Err(Error::Corrupt(format!(
            "node {id} splits on axis {} of {dims}",
            node.axis
        )));
    }
    Ok(node)
}

/// Tag byte of a format 3 inner node record.
const INNER_TAG: u8 = 0;
/// Tag byte of a format 3 leaf record.
const LEAF_TAG: u8 = 1;
/// Bytes of a format 3 inner node record: tag, axis, split, below, above, count.
const INNER_BYTES: usize = 2 + 8 * 4;
/// Bytes of a format 3 leaf record before its coordinates: the tag.
const LEAF_HEADER: usize = 1;

/// Encodes a node record (format 3). Fixed layouts, little-endian, decoded with slice reads:
/// an inner node is `[0, axis, split f64, below u64, above u64, count u64]` (child 0 = none;
/// node ids start at 1), a leaf `[1, coordinates f64...]` (its length gives its point count).
pub fn encode_node(node: &Node) -> Vec<u8> {
    match node {
        Node::Inner(i) => {
            let mut out = Vec::with_capacity(INNER_BYTES);
            out.push(INNER_TAG);
            out.push(i.axis);
            out.extend_from_slice(&i.split.to_le_bytes());
            out.extend_from_slice(&i.below.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&i.above.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&i.count.to_le_bytes());
            out
        }
        Node::Leaf { coords } => encode_leaf(coords),
    }
}

/// Encodes a leaf from its points' flat coordinates (format 3).
pub fn encode_leaf(coords: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEAF_HEADER + 8 * coords.len());
    out.push(LEAF_TAG);
    for c in coords {
        out.extend_from_slice(&c.to_le_bytes());
    }
    out
}

/// Decodes node `id`'s record (format 3) and checks it fits `dims` dimensions and leaves of at
/// most [`MAX_LEAF_SIZE`] points.
pub fn decode_node(id: u64, bytes: &[u8], dims: usize) -> Result<Node> {
    let bad = |why: String| Error::Corrupt(format!("node {id} does not decode: {why}"));
    match bytes.first() {
        Some(&INNER_TAG) => {
            if bytes.len() != INNER_BYTES {
                return Err(bad(format!(
                    "an inner node has {INNER_BYTES} bytes, this one {}",
                    bytes.len()
                )));
            }
            let axis = bytes[1];
            if axis as usize >= dims {
                return Err(bad(format!("it splits on axis {axis} of {dims}")));
            }
            let child = |at: usize| Some(u64::from_le_bytes(le8(bytes, at))).filter(|&c| c != 0);
            let split = f64::from_le_bytes(le8(bytes, 2));
            if split.is_nan() {
                return Err(bad("its split value is NaN".into()));
            }
            Ok(Node::Inner(Inner {
                axis,
                split,
                below: child(10),
                above: child(18),
                count: u64::from_le_bytes(le8(bytes, 26)),
            }))
        }
        Some(&LEAF_TAG) => {
            let body = bytes.len() - LEAF_HEADER;
            let point = 8 * dims.max(1);
            if !body.is_multiple_of(point) {
                return Err(bad(format!(
                    "a leaf of {dims}-dimensional points has a multiple of {point} bytes of \
                     coordinates, this one {body}"
                )));
            }
            let n = body / point;
            if n > MAX_LEAF_SIZE {
                return Err(bad(format!(
                    "a leaf of {n} points, more than {MAX_LEAF_SIZE}"
                )));
            }
            let coords = bytes[LEAF_HEADER..]
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(le8(c, 0)))
                .collect();
            Ok(Node::Leaf { coords })
        }
        Some(t) => Err(bad(format!("unknown tag {t}"))),
        None => Err(bad("the record is empty".into())),
    }
}

#[derive(Encode, Decode)]
enum IdRecord {
    Int(i64),
    Str(String),
}

#[derive(Encode, Decode)]
enum ValueRecord {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Encode, Decode)]
struct PayloadRecord {
    id: IdRecord,
    properties: Vec<(String, ValueRecord)>,
}

fn id_record(id: &PointId) -> IdRecord {
    match id {
        PointId::Int(n) => IdRecord::Int(*n),
        PointId::Str(s) => IdRecord::Str(s.clone()),
    }
}

fn id_from_record(r: IdRecord) -> PointId {
    match r {
        IdRecord::Int(n) => PointId::Int(n),
        IdRecord::Str(s) => PointId::Str(s),
    }
}

fn properties_record(props: &[(String, Value)]) -> Vec<(String, ValueRecord)> {
    props
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Null => ValueRecord::Null,
                Value::Bool(b) => ValueRecord::Bool(*b),
                Value::Int(n) => ValueRecord::Int(*n),
                Value::Float(x) => ValueRecord::Float(*x),
                Value::Str(s) => ValueRecord::Str(s.clone()),
            };
            (k.clone(), v)
        })
        .collect()
}

fn properties_from_record(r: Vec<(String, ValueRecord)>) -> Vec<(String, Value)> {
    r.into_iter()
        .map(|(k, v)| {
            let v = match v {
                ValueRecord::Null => Value::Null,
                ValueRecord::Bool(b) => Value::Bool(b),
                ValueRecord::Int(n) => Value::Int(n),
                ValueRecord::Float(x) => Value::Float(x),
                ValueRecord::Str(s) => Value::Str(s),
            };
            (k, v)
        })
        .collect()
}

/// Encodes a payload.
pub fn encode_payload(p: &Payload) -> Vec<u8> {
    encode(&PayloadRecord {
        id: id_record(&p.id),
        properties: properties_record(&p.properties),
    })
}

/// Decodes the payload of node `id`.
pub fn decode_payload(id: u64, bytes: &[u8]) -> Result<Payload> {
    let r: PayloadRecord = decode(bytes, || format!("payload of node {id} does not decode"))?;
    Ok(Payload {
        id: id_from_record(r.id),
        properties: properties_from_record(r.properties),
    })
}

#[derive(Encode, Decode)]
struct LeafPayloadsRecord {
    /// Attribute names, once per leaf.
    keys: Vec<String>,
    /// Per point in slot order: its id and its attributes as (index into `keys`, value).
    points: Vec<(IdRecord, Vec<(u32, ValueRecord)>)>,
}

/// Bytes a payload record aims at: a sled page of 16 such records stays well under sled's blob
/// threshold (131,052 bytes), past which every page write becomes its own file.
pub const PAYLOAD_RECORD_BYTES: usize = 4096;

/// The key of chunk `chunk` of leaf `leaf`'s payloads: the leaf's id, then the chunk number,
/// big-endian, so a leaf's chunks are one key range in slot order.
pub fn payload_key(leaf: u64, chunk: u16) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[..8].copy_from_slice(&leaf.to_be_bytes());
    k[8..].copy_from_slice(&chunk.to_be_bytes());
    k
}

/// Reads (leaf, chunk) back from a payload key.
pub fn payload_key_parts(key: &[u8]) -> Result<(u64, u16)> {
    if key.len() != 10 {
        return Err(Error::Corrupt(format!(
            "payload key of {} bytes, not 10",
            key.len()
        )));
    }
    let mut l = [0u8; 8];
    l.copy_from_slice(&key[..8]);
    Ok((u64::from_be_bytes(l), u16::from_be_bytes([key[8], key[9]])))
}

/// Encodes the payloads of one leaf's points, in slot order, as records of about
/// [`PAYLOAD_RECORD_BYTES`] each (one, for small payloads). Attribute names are stored once per
/// record, not once per point.
pub fn encode_leaf_payload_chunks(payloads: &[Payload]) -> Vec<Vec<u8>> {
    // Most leaves' payloads fit one record: encode them once and be done.
    let whole = encode_leaf_payloads(payloads);
    if whole.len() <= PAYLOAD_RECORD_BYTES {
        return vec![whole];
    }
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, p) in payloads.iter().enumerate() {
        let size = encode_payload(p).len();
        if i > start && bytes + size > PAYLOAD_RECORD_BYTES {
            chunks.push(encode_leaf_payloads(&payloads[start..i]));
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < payloads.len() || chunks.is_empty() {
        chunks.push(encode_leaf_payloads(&payloads[start..]));
    }
    chunks
}

/// Encodes the payloads of points, in slot order, as one record. Attribute names are stored
/// once per record, not once per point.
pub fn encode_leaf_payloads<'p>(payloads: impl IntoIterator<Item = &'p Payload>) -> Vec<u8> {
    let mut keys: Vec<String> = Vec::new();
    let mut points = Vec::new();
    for p in payloads {
        let props = properties_record(&p.properties)
            .into_iter()
            .map(|(k, v)| {
                let at = match keys.iter().position(|x| *x == k) {
                    Some(i) => i,
                    None => {
                        keys.push(k);
                        keys.len() - 1
                    }
                };
                (at as u32, v)
            })
            .collect();
        points.push((id_record(&p.id), props));
    }
    encode(&LeafPayloadsRecord { keys, points })
}

/// Decodes the payloads of leaf `leaf`, in slot order.
pub fn decode_leaf_payloads(leaf: u64, bytes: &[u8]) -> Result<Vec<Payload>> {
    let r: LeafPayloadsRecord = decode(bytes, || {
        format!("the payloads of leaf {leaf} do not decode")
    })?;
    r.points
        .into_iter()
        .map(|(id, props)| {
            let properties = props
                .into_iter()
                .map(|(k, v)| {
                    let key = r.keys.get(k as usize).cloned().ok_or_else(|| {
                        Error::Corrupt(format!(
                            "the payloads of leaf {leaf} name attribute {k} of {}",
                            r.keys.len()
                        ))
                    })?;
                    Ok((key, v))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Payload {
                id: id_from_record(id),
                properties: properties_from_record(properties),
            })
        })
        .collect()
}

/// A user id borrowed from a payload record (the layout of `IdRecord`).
#[derive(Debug, Clone, Copy, PartialEq, BorrowDecode)]
pub enum IdRef<'a> {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(&'a str),
}

impl IdRef<'_> {
    /// The id, owned.
    pub fn to_owned_id(self) -> PointId {
        match self {
            IdRef::Int(n) => PointId::Int(n),
            IdRef::Str(s) => PointId::Str(s.to_string()),
        }
    }
}

/// An attribute value borrowed from a payload record (the layout of `ValueRecord`).
#[derive(Debug, Clone, Copy, PartialEq, BorrowDecode)]
pub enum ValueRef<'a> {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(&'a str),
}

impl ValueRef<'_> {
    /// The value, owned.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(n) => Value::Int(n),
            ValueRef::Float(x) => Value::Float(x),
            ValueRef::Str(s) => Value::Str(s.to_string()),
        }
    }
}

/// `LeafPayloadsRecord` decoded in place.
#[derive(BorrowDecode)]
struct LeafPayloadsBorrowed<'a> {
    keys: Vec<&'a str>,
    points: Vec<(IdRef<'a>, Vec<(u32, ValueRef<'a>)>)>,
}

/// One payload record of a leaf read in place: strings borrow from the record's bytes, so only
/// what an answer needs is ever copied.
pub struct LeafPayloadsRef<'a> {
    record: LeafPayloadsBorrowed<'a>,
}

impl<'a> LeafPayloadsRef<'a> {
    /// Points in the record.
    pub fn len(&self) -> usize {
        self.record.points.len()
    }

    /// Whether the record holds no point.
    pub fn is_empty(&self) -> bool {
        self.record.points.is_empty()
    }

    /// Point `i` of the record: its id and its attributes in input order.
    pub fn point(
        &self,
        i: usize,
    ) -> Option<(
        IdRef<'a>,
        impl Iterator<Item = (&'a str, ValueRef<'a>)> + '_,
    )> {
        let (id, props) = self.record.points.get(i)?;
        let keys = &self.record.keys;
        // Key indexes were checked when the record was decoded.
        Some((
            *id,
            props
                .iter()
                .filter_map(move |(k, v)| keys.get(*k as usize).map(|k| (*k, *v))),
        ))
    }
}

/// Decodes one payload record of leaf `leaf` in place.
pub fn decode_leaf_payloads_ref(leaf: u64, bytes: &[u8]) -> Result<LeafPayloadsRef<'_>> {
    let record: LeafPayloadsBorrowed<'_> = borrow_decode(bytes, || {
        format!("the payloads of leaf {leaf} do not decode")
    })?;
    let names = record.keys.len();
    if let Some(k) = record
        .points
        .iter()
        .flat_map(|(_, props)| props.iter().map(|(k, _)| *k))
        .find(|k| *k as usize >= names)
    {
        return Err(Error::Corrupt(format!(
            "the payloads of leaf {leaf} name attribute {k} of {names}"
        )));
    }
    Ok(LeafPayloadsRef { record })
}

/// Encodes one id-index bucket: each user id with the leaf holding its point.
pub fn encode_id_bucket(entries: &[(PointId, u64)]) -> Vec<u8> {
    let recs: Vec<(IdRecord, u64)> = entries.iter().map(|(id, l)| (id_record(id), *l)).collect();
    encode(&recs)
}

/// Decodes id-index bucket `b`.
pub fn decode_id_bucket(b: u64, bytes: &[u8]) -> Result<Vec<(PointId, u64)>> {
    let recs: Vec<(IdRecord, u64)> = decode(bytes, || format!("id bucket {b} does not decode"))?;
    Ok(recs
        .into_iter()
        .map(|(id, l)| (id_from_record(id), l))
        .collect())
}

#[derive(Encode, Decode)]
enum ChangeRecord {
    Upsert {
        id: IdRecord,
        coords: Vec<f64>,
        properties: Vec<(String, ValueRecord)>,
    },
    Delete {
        id: IdRecord,
    },
}

/// The key of change `seq` in the changes log: big-endian, so key order is sequence order.
pub fn change_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Encodes the operations of one committed write (inserts are logged as upserts: replaying
/// them must not fail).
pub fn encode_change(ops: &[WriteOp]) -> Vec<u8> {
    let recs: Vec<ChangeRecord> = ops
        .iter()
        .map(|op| match op {
            WriteOp::Insert(p) | WriteOp::Upsert(p) => ChangeRecord::Upsert {
                id: id_record(&p.id),
                coords: p.coords.clone(),
                properties: properties_record(&p.properties),
            },
            WriteOp::Delete(id) => ChangeRecord::Delete { id: id_record(id) },
        })
        .collect();
    encode(&recs)
}

/// Decodes change `seq`.
pub fn decode_change(seq: u64, bytes: &[u8]) -> Result<Vec<WriteOp>> {
    let recs: Vec<ChangeRecord> = decode(bytes, || format!("change {seq} does not decode"))?;
    Ok(recs
        .into_iter()
        .map(|r| match r {
            ChangeRecord::Upsert {
                id,
                coords,
                properties,
            } => WriteOp::Upsert(NewPoint {
                id: id_from_record(id),
                coords,
                properties: properties_from_record(properties),
            }),
            ChangeRecord::Delete { id } => WriteOp::Delete(id_from_record(id)),
        })
        .collect())
}

#[derive(Encode, Decode)]
struct MetaRecord {
    metric: u8,
    dims: u8,
    root: Option<u64>,
    count: u64,
    next_id: u64,
    depth: u32,
    generation: String,
    sequence: u64,
    max_count: u64,
    leaf_size: u32,
    id_buckets: u64,
}

/// The meta record of format versions 1 and 2.
#[derive(Encode, Decode)]
struct MetaRecordV2 {
    metric: u8,
    dims: u8,
    root: Option<u64>,
    count: u64,
    next_id: u64,
    depth: u32,
    generation: String,
    sequence: u64,
    max_count: u64,
}

fn metric_code(m: Metric) -> u8 {
    match m {
        Metric::Haversine => 0,
        Metric::Euclidean => 1,
    }
}

fn metric_of(code: u8, dims: u8) -> Result<Metric> {
    let metric = match code {
        0 => Metric::Haversine,
        1 => Metric::Euclidean,
        n => return Err(Error::Corrupt(format!("meta names unknown metric {n}"))),
    };
    metric
        .check_dims(dims as usize)
        .map_err(|e| Error::Corrupt(format!("meta: {e}")))?;
    Ok(metric)
}

/// Encodes the meta record.
pub fn encode_meta(m: &Meta) -> Vec<u8> {
    encode(&MetaRecord {
        metric: metric_code(m.metric),
        dims: m.dims,
        root: m.root,
        count: m.count,
        next_id: m.next_id,
        depth: m.depth,
        generation: m.generation.clone(),
        sequence: m.sequence,
        max_count: m.max_count,
        leaf_size: m.leaf_size,
        id_buckets: m.id_buckets,
    })
}

/// Decodes the meta record (format 3).
pub fn decode_meta(bytes: &[u8]) -> Result<Meta> {
    let r: MetaRecord = decode(bytes, || "meta record does not decode".to_string())?;
    if !(2..=MAX_LEAF_SIZE as u32).contains(&r.leaf_size) {
        return Err(Error::Corrupt(format!(
            "meta names a leaf size of {}, outside 2..={MAX_LEAF_SIZE}",
            r.leaf_size
        )));
    }
    Ok(Meta {
        metric: metric_of(r.metric, r.dims)?,
        dims: r.dims,
        root: r.root,
        count: r.count,
        next_id: r.next_id,
        depth: r.depth,
        generation: r.generation,
        sequence: r.sequence,
        max_count: r.max_count,
        leaf_size: r.leaf_size,
        id_buckets: r.id_buckets.max(1),
        format: super::format::FORMAT_VERSION,
    })
}

/// Encodes the meta record of format versions 1 and 2 (for fixtures).
pub fn encode_meta_v2(m: &Meta) -> Vec<u8> {
    encode(&MetaRecordV2 {
        metric: metric_code(m.metric),
        dims: m.dims,
        root: m.root,
        count: m.count,
        next_id: m.next_id,
        depth: m.depth,
        generation: m.generation.clone(),
        sequence: m.sequence,
        max_count: m.max_count,
    })
}

/// Decodes the meta record of format versions 1 and 2; `leaf_size` and `id_buckets` are left
/// at their defaults (those versions have no leaves).
pub fn decode_meta_v2(bytes: &[u8], version: u32) -> Result<Meta> {
    let r: MetaRecordV2 = decode(bytes, || "meta record does not decode".to_string())?;
    let mut m = Meta::empty(metric_of(r.metric, r.dims)?, r.dims);
    m.root = r.root;
    m.count = r.count;
    m.next_id = r.next_id;
    m.depth = r.depth;
    m.generation = r.generation;
    m.sequence = r.sequence;
    m.max_count = r.max_count;
    m.format = version;
    Ok(m)
}

/// Encodes a format version.
pub fn encode_version(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// Decodes a format version.
pub fn decode_version(bytes: &[u8]) -> Result<u32> {
    let a: [u8; 4] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt(format!("format version of {} bytes", bytes.len())))?;
    Ok(u32::from_be_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let n = LegacyNode {
            axis: 1,
            above: Some(7),
            below: None,
            coords: vec![1.5, -2.25],
        };
        for f in [NodeFormat::V1, NodeFormat::V2] {
            let b = encode_legacy_node(f, &n);
            assert_eq!(decode_legacy_node(f, 3, &b, 2).unwrap(), n);
            assert!(decode_legacy_node(f, 3, &b, 3).is_err());
            assert!(decode_legacy_node(f, 3, b"\xff\xff", 2).is_err());
        }
        let inner = Node::Inner(Inner {
            axis: 1,
            split: -3.5,
            below: Some(2),
            above: None,
            count: 99,
        });
        assert_eq!(decode_node(5, &encode_node(&inner), 2).unwrap(), inner);
        assert!(decode_node(5, &encode_node(&inner), 1).is_err());
        let leaf = Node::Leaf {
            coords: vec![1.0, 2.0, 3.0, 4.0],
        };
        assert_eq!(decode_node(5, &encode_node(&leaf), 2).unwrap(), leaf);
        assert!(decode_node(5, &encode_node(&leaf), 3).is_err());
        assert!(decode_node(5, &[], 2).is_err());
        assert!(decode_node(5, &[7], 2).is_err());

        let p = Payload {
            id: PointId::Str("x".into()),
            properties: vec![
                ("a".into(), Value::Int(-3)),
                ("b".into(), Value::Str("é".into())),
                ("c".into(), Value::Null),
                ("d".into(), Value::Float(0.5)),
            ],
        };
        assert_eq!(decode_payload(1, &encode_payload(&p)).unwrap(), p);
        let q = Payload {
            id: PointId::Int(4),
            properties: vec![("b".into(), Value::Bool(true))],
        };
        let group = vec![p.clone(), q, p];
        assert_eq!(
            decode_leaf_payloads(1, &encode_leaf_payloads(&group)).unwrap(),
            group
        );
        let bucket = vec![(PointId::Int(3), 9), (PointId::Str("y".into()), 1)];
        assert_eq!(
            decode_id_bucket(0, &encode_id_bucket(&bucket)).unwrap(),
            bucket
        );

        for id in [
            PointId::Int(i64::MIN),
            PointId::Int(-1),
            PointId::Int(0),
            PointId::Int(i64::MAX),
            PointId::Str(String::new()),
            PointId::Str("abc".into()),
        ] {
            assert_eq!(id_from_key(&id_key(&id)).unwrap(), id);
        }
        assert!(id_key(&PointId::Int(-1)) < id_key(&PointId::Int(0)));
    }

    #[test]
    fn linear_hashing_splits_one_bucket_at_a_time() {
        // Growing from n to n + 1 buckets moves entries only out of bucket n - 2^level.
        for n in 1..200u64 {
            let level = 63 - n.leading_zeros();
            let split = n - (1 << level);
            for h in 0..2000u64 {
                let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let (before, after) = (bucket_of(h, n), bucket_of(h, n + 1));
                assert!(before < n && after < n + 1);
                if before != after {
                    assert_eq!((before, after), (split, n));
                }
            }
        }
    }
}
