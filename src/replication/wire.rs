//! Changes as JSON.

use serde_json::{json, Map, Value as Json};

use crate::error::{Error, Result};
use crate::point::{NewPoint, PointId, Value, WriteOp};

/// An id as JSON.
pub fn id_json(id: &PointId) -> Json {
    id.to_json()
}

/// Reads an id from JSON (an integer or a string, with the canonical-integer rule).
pub fn id_from_json(v: &Json) -> Result<PointId> {
    match v {
        Json::Number(n) => n
            .as_i64()
            .map(PointId::Int)
            .ok_or_else(|| Error::invalid("id", format!("{n} is not an integer id"))),
        Json::String(s) => Ok(PointId::parse(s)),
        other => Err(Error::invalid("id", format!("{other} is not an id"))),
    }
}

/// Properties as a JSON object.
pub fn properties_json(props: &[(String, Value)]) -> Json {
    Json::Object(
        props
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect::<Map<_, _>>(),
    )
}

/// Properties from a JSON object (absent or null: none).
pub fn properties_from_json(v: Option<&Json>) -> Result<Vec<(String, Value)>> {
    match v {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Object(m)) => Ok(m
            .iter()
            .map(|(k, v)| (k.clone(), Value::from_json(v)))
            .collect()),
        Some(other) => Err(Error::invalid(
            "properties",
            format!("{other} is not an object"),
        )),
    }
}

/// Coordinates from a JSON array of numbers.
pub fn coords_from_json(v: Option<&Json>) -> Result<Vec<f64>> {
    match v {
        Some(Json::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| Error::invalid("coords", format!("{x} is not a number")))
            })
            .collect(),
        _ => Err(Error::invalid("coords", "an array of numbers is required")),
    }
}

/// One committed write: `{"seq", "ops": [{"op": "upsert", "id", "coords", "properties"} |
/// {"op": "delete", "id"}]}`.
pub fn change_json(seq: u64, ops: &[WriteOp]) -> Json {
    let ops: Vec<Json> = ops
        .iter()
        .map(|op| match op {
            WriteOp::Insert(p) | WriteOp::Upsert(p) => json!({
                "op": "upsert",
                "id": id_json(&p.id),
                "coords": p.coords,
                "properties": properties_json(&p.properties),
            }),
            WriteOp::Delete(id) => json!({"op": "delete", "id": id_json(id)}),
        })
        .collect();
    json!({"seq": seq, "ops": ops})
}

/// Reads a change back.
pub fn change_from_json(v: &Json) -> Result<(u64, Vec<WriteOp>)> {
    let seq = v["seq"]
        .as_u64()
        .ok_or_else(|| Error::invalid("seq", "a change needs a sequence number"))?;
    let ops = v["ops"]
        .as_array()
        .ok_or_else(|| Error::invalid("ops", "a change needs an ops array"))?
        .iter()
        .map(|o| {
            let id = id_from_json(&o["id"])?;
            match o["op"].as_str() {
                Some("upsert") => Ok(WriteOp::Upsert(NewPoint {
                    id,
                    coords: coords_from_json(o.get("coords"))?,
                    properties: properties_from_json(o.get("properties"))?,
                })),
                Some("delete") => Ok(WriteOp::Delete(id)),
                other => Err(Error::invalid("op", format!("unknown operation {other:?}"))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((seq, ops))
}
