//! What a point carries besides its coordinates: the user's id and named attributes.

use std::fmt;

/// A user's point id: an integer or a string.
///
/// Text that is a canonical decimal integer (no sign other than `-`, no leading zeros) becomes
/// [`PointId::Int`]; anything else stays a string. The same rule is applied to ids read from files
/// and to ids in URLs, so both spellings meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PointId {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
}

/// Longest id accepted, in bytes of UTF-8: every id must fit in a URL (`/v1/points/{id}`, with
/// room for percent-encoding under the server's URI limit) so that it can be fetched and deleted.
pub const MAX_ID_BYTES: usize = 512;

impl PointId {
    /// Checks that the id can be stored and addressed: not empty, at most [`MAX_ID_BYTES`].
    pub fn check(&self) -> Result<(), String> {
        match self {
            PointId::Int(_) => Ok(()),
            PointId::Str(s) if s.is_empty() => Err("the id is empty".into()),
            PointId::Str(s) if s.len() > MAX_ID_BYTES => Err(format!(
                "the id is {} bytes long; ids may have at most {MAX_ID_BYTES}",
                s.len()
            )),
            PointId::Str(_) => Ok(()),
        }
    }

    /// Parses an id from text with the canonical-integer rule.
    pub fn parse(s: &str) -> PointId {
        match s.parse::<i64>() {
            Ok(n) if n.to_string() == s => PointId::Int(n),
            _ => PointId::Str(s.to_string()),
        }
    }

    /// The id as JSON: a number or a string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            PointId::Int(n) => serde_json::Value::from(*n),
            PointId::Str(s) => serde_json::Value::from(s.as_str()),
        }
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Int(n) => write!(f, "{n}"),
            PointId::Str(s) => f.write_str(s),
        }
    }
}

/// One attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (an empty column).
    Null,
    /// true or false.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Str(String),
}

impl Value {
    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(n) => serde_json::Value::from(*n),
            Value::Float(x) => serde_json::Number::from_f64(*x)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
        }
    }

    /// Converts a JSON value; arrays and objects are kept as their JSON text.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            other => Value::Str(other.to_string()),
        }
    }

    /// The value as a number, if it is one or is text holding one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Float(x) => Some(*x),
            Value::Str(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
            Value::Bool(_) | Value::Null => None,
        }
    }

    /// The value as a grouping key: text as it is, numbers and booleans printed, null as "".
    pub fn group_key(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(n) => n.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Str(s) => s.clone(),
        }
    }
}

/// A point's payload: everything but its coordinates. Stored apart from the tree nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// The user's id.
    pub id: PointId,
    /// Named attributes in input order.
    pub properties: Vec<(String, Value)>,
}

impl Payload {
    /// The attribute called `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The attributes as a JSON object.
    pub fn properties_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.properties
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect()
    }
}

/// A point to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPoint {
    /// The user's id.
    pub id: PointId,
    /// Coordinates (lon, lat for haversine indexes).
    pub coords: Vec<f64>,
    /// Attributes.
    pub properties: Vec<(String, Value)>,
}

/// One operation of a write batch.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Add a point; fails if its id exists.
    Insert(NewPoint),
    /// Add a point or replace the one with its id (position and attributes).
    Upsert(NewPoint),
    /// Remove the point with this id, if there is one.
    Delete(PointId),
}

/// FNV-1a: a stable 64-bit hash for tags, cursors and id buckets (std's hasher is seeded per
/// process, and on-disk bucket numbers must not change between runs).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_canonically() {
        assert_eq!(PointId::parse("42"), PointId::Int(42));
        assert_eq!(PointId::parse("-7"), PointId::Int(-7));
        assert_eq!(PointId::parse("007"), PointId::Str("007".into()));
        assert_eq!(PointId::parse("+7"), PointId::Str("+7".into()));
        assert_eq!(PointId::parse("abc"), PointId::Str("abc".into()));
        assert_eq!(
            PointId::parse("99999999999999999999"),
            PointId::Str("99999999999999999999".into())
        );
    }
}
