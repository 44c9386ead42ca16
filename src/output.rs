//! The JSON and GeoJSON shapes of answers, shared by the CLI and the HTTP API.

use serde_json::{json, Map, Value as Json};

use crate::error::Result;
use crate::geometry::Metric;
use crate::index::Index;
use crate::query::{Answer, Hit, StatsAnswer};

/// Rounds to a millimetre (or 1e-9 in k-space): more digits are noise to a reader.
fn round(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// One hit as a JSON object: `id`, `lon`/`lat` (or `point`), `distance_m` (or `distance`) when
/// `with_distance`, and `properties`.
pub fn hit_json(index: &Index, metric: Metric, hit: &Hit, with_distance: bool) -> Result<Json> {
    let payload = index.payload(hit.node)?;
    let mut o = Map::new();
    o.insert("id".into(), payload.id.to_json());
    match metric {
        Metric::Haversine => {
            o.insert("lon".into(), json!(hit.coords[0]));
            o.insert("lat".into(), json!(hit.coords[1]));
            if with_distance {
                o.insert(
                    "distance_m".into(),
                    json!((hit.distance * 1000.0).round() / 1000.0),
                );
            }
        }
        Metric::Euclidean => {
            o.insert("point".into(), json!(hit.coords));
            if with_distance {
                o.insert("distance".into(), json!(round(hit.distance)));
            }
        }
    }
    o.insert("properties".into(), Json::Object(payload.properties_json()));
    Ok(Json::Object(o))
}

/// An answer as `{"count", "truncated", "nodes_read", "results": [...]}`.
pub fn answer_json(index: &Index, answer: &Answer, with_distance: bool) -> Result<Json> {
    let metric = index.meta().metric;
    let results = answer
        .hits
        .iter()
        .map(|h| hit_json(index, metric, h, with_distance))
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({
        "count": answer.count,
        "truncated": answer.truncated(),
        "nodes_read": answer.nodes_read,
        "results": results,
    }))
}

/// An answer as an RFC 7946 FeatureCollection. Coordinates are `[lon, lat]` (or the k
/// coordinates of a euclidean index, which GeoJSON readers will not place on a map); the id,
/// distance and the answer's count ride along as members.
pub fn answer_geojson(index: &Index, answer: &Answer, with_distance: bool) -> Result<Json> {
    let metric = index.meta().metric;
    let mut features = Vec::with_capacity(answer.hits.len());
    for h in &answer.hits {
        let payload = index.payload(h.node)?;
        let mut props = payload.properties_json();
        if with_distance {
            let key = match metric {
                Metric::Haversine => "distance_m",
                Metric::Euclidean => "distance",
            };
            props.insert(key.into(), json!(round(h.distance)));
        }
        features.push(json!({
            "type": "Feature",
            "id": payload.id.to_json(),
            "geometry": {"type": "Point", "coordinates": h.coords},
            "properties": props,
        }));
    }
    Ok(json!({
        "type": "FeatureCollection",
        "count": answer.count,
        "truncated": answer.truncated(),
        "features": features,
    }))
}

/// A stats answer as `{"count", "group_by", "sum_field", "groups": [{"value", "count", "sum"}]}`,
/// groups by descending count.
pub fn stats_json(a: &StatsAnswer, group_by: &str, sum: Option<&str>) -> Json {
    let mut groups: Vec<_> = a.groups.iter().collect();
    groups.sort_by(|x, y| y.1.count.cmp(&x.1.count).then(x.0.cmp(y.0)));
    let groups: Vec<Json> = groups
        .into_iter()
        .map(|(k, g)| {
            let mut o = json!({"value": k, "count": g.count});
            if sum.is_some() {
                o["sum"] = json!(g.sum);
            }
            o
        })
        .collect();
    json!({
        "count": a.count,
        "group_by": group_by,
        "sum_field": sum,
        "nodes_read": a.nodes_read,
        "groups": groups,
    })
}
