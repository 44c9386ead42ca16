//! Every byte layout of the index, in one place: keys, and bincode records for nodes, payloads
//! and meta.
//!
//! bincode 2.0.1 is pinned and unmaintained; nothing outside this module may name it, so a future
//! format version can swap the encoding here alone.

use bincode::{Decode, Encode};

use super::format::Meta;
use crate::error::{Error, Result};
use crate::geometry::Metric;
use crate::point::{NewPoint, Payload, PointId, Value, WriteOp};
use crate::tree::Node;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn encode<T: Encode>(v: &T) -> Vec<u8> {
    // Encoding into a Vec fails only for types that refuse to encode; ours never do.
    bincode::encode_to_vec(v, config()).unwrap_or_default()
}

fn decode<T: Decode<()>>(bytes: &[u8], what: impl FnOnce() -> String) -> Result<T> {
    // bincode reserves whatever length a record claims before reading it: a damaged length would
    // ask for gigabytes and abort the process. Its limit is a constant, so one is picked per
    // record size: no valid record claims more memory than 64 times its own bytes.
    let claim = bytes.len().saturating_mul(64);
    let decoded = if claim <= 1 << 16 {
        decode_limited::<T, { 1 << 16 }>(bytes)
    } else if claim <= 1 << 20 {
        decode_limited::<T, { 1 << 20 }>(bytes)
    } else if claim <= 1 << 24 {
        decode_limited::<T, { 1 << 24 }>(bytes)
    } else if claim <= 1 << 28 {
        decode_limited::<T, { 1 << 28 }>(bytes)
    } else {
        decode_limited::<T, { 1 << 34 }>(bytes)
    };
    match decoded {
        Ok((v, used)) if used == bytes.len() => Ok(v),
        Ok((_, used)) => Err(Error::Corrupt(format!(
            "{}: {} trailing bytes after the record",
            what(),
            bytes.len() - used
        ))),
        Err(e) => Err(Error::Corrupt(format!("{}: {e}", what()))),
    }
}

fn decode_limited<T: Decode<()>, const LIMIT: usize>(
    bytes: &[u8],
) -> std::result::Result<(T, usize), bincode::error::DecodeError> {
    bincode::decode_from_slice::<T, _>(bytes, config().with_limit::<LIMIT>())
}

/// The key of node `id`: big-endian, so key order is id order.
#[inline]
pub fn node_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Reads a node id back from its key.
pub fn node_id_from_key(key: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = key
        .try_into()
        .map_err(|_| Error::Corrupt(format!("node key of {} bytes, not 8", key.len())))?;
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

/// Value stored in the id index: the node id, big-endian.
pub fn encode_node_ref(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Reads a node id stored in the id index.
pub fn decode_node_ref(bytes: &[u8]) -> Result<u64> {
    node_id_from_key(bytes)
}

/// How node records are laid out, by format version.
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
    /// The layout of a format version.
    pub fn for_version(version: u32) -> Result<NodeFormat> {
        match version {
            1 => Ok(NodeFormat::V1),
            2 => Ok(NodeFormat::V2),
            v => Err(Error::FormatVersion(format!(
                "no node layout for format version {v}"
            ))),
        }
    }
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

/// Encodes a node record in the current format.
pub fn encode_node(node: &Node) -> Vec<u8> {
    encode_node_as(NodeFormat::V2, node)
}

/// Encodes a node record in `format`.
pub fn encode_node_as(format: NodeFormat, node: &Node) -> Vec<u8> {
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

/// Decodes node `id`'s record in the current format and checks it fits `dims` dimensions.
pub fn decode_node(id: u64, bytes: &[u8], dims: usize) -> Result<Node> {
    decode_node_as(NodeFormat::V2, id, bytes, dims)
}

/// Decodes node `id`'s record in `format` and checks it fits `dims` dimensions.
pub fn decode_node_as(format: NodeFormat, id: u64, bytes: &[u8], dims: usize) -> Result<Node> {
    let node = match format {
        NodeFormat::V1 => {
            let r: NodeRecord = decode(bytes, || format!("node {id} does not decode"))?;
            Node {
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
            let u = |at: usize| {
                let mut a = [0u8; 8];
                a.copy_from_slice(&bytes[at..at + 8]);
                a
            };
            let child = |at: usize| Some(u64::from_le_bytes(u(at))).filter(|&c| c != 0);
            Node {
                axis: bytes[0],
                above: child(1),
                below: child(9),
                coords: (0..dims)
                    .map(|i| f64::from_le_bytes(u(V2_HEADER + 8 * i)))
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
}

/// Encodes the meta record.
pub fn encode_meta(m: &Meta) -> Vec<u8> {
    encode(&MetaRecord {
        metric: match m.metric {
            Metric::Haversine => 0,
            Metric::Euclidean => 1,
        },
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

/// Decodes the meta record.
pub fn decode_meta(bytes: &[u8]) -> Result<Meta> {
    let r: MetaRecord = decode(bytes, || "meta record does not decode".to_string())?;
    let metric = match r.metric {
        0 => Metric::Haversine,
        1 => Metric::Euclidean,
        n => return Err(Error::Corrupt(format!("meta names unknown metric {n}"))),
    };
    metric
        .check_dims(r.dims as usize)
        .map_err(|e| Error::Corrupt(format!("meta: {e}")))?;
    Ok(Meta {
        metric,
        dims: r.dims,
        root: r.root,
        count: r.count,
        next_id: r.next_id,
        depth: r.depth,
        generation: r.generation,
        sequence: r.sequence,
        max_count: r.max_count,
        format: super::format::FORMAT_VERSION,
    })
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
        let n = Node {
            axis: 1,
            above: Some(7),
            below: None,
            coords: vec![1.5, -2.25],
        };
        for f in [NodeFormat::V1, NodeFormat::V2] {
            assert_eq!(decode_node_as(f, 3, &encode_node_as(f, &n), 2).unwrap(), n);
            assert!(decode_node_as(f, 3, &encode_node_as(f, &n), 3).is_err());
            assert!(decode_node_as(f, 3, b"\xff\xff", 2).is_err());
        }
        let mut bad_axis = encode_node(&n);
        bad_axis[0] = 2;
        assert!(decode_node(3, &bad_axis, 2).is_err());

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
}
