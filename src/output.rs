//! The JSON and GeoJSON shapes of answers, shared by the CLI and the HTTP API.
//!
//! Answers are serialized straight from the decoded payloads into the output buffer (no
//! intermediate JSON tree): rendering was the largest cost of small HTTP answers.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Value as Json};

use crate::error::Result;
use crate::geometry::Metric;
use std::sync::Arc;

use crate::index::leaf_json::{write_json as put, LeafJson};
use crate::index::Snapshot;
use crate::point::{Payload, PointId, Value};
use crate::query::{Answer, Hit, StatsAnswer};
use crate::tree::PointRef;

/// How an answer is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"count", "truncated", "nodes_read", "results": [...]}`.
    Json,
    /// An RFC 7946 FeatureCollection.
    GeoJson,
}

/// Distances as shown: millimetres for metres, 1e-9 in k-space. More digits are noise.
fn shown_distance(metric: Metric, d: f64) -> f64 {
    match metric {
        Metric::Haversine => (d * 1e3).round() / 1e3,
        Metric::Euclidean => (d * 1e9).round() / 1e9,
    }
}

fn distance_key(metric: Metric) -> &'static str {
    match metric {
        Metric::Haversine => "distance_m",
        Metric::Euclidean => "distance",
    }
}

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            PointId::Int(n) => s.serialize_i64(*n),
            PointId::Str(x) => s.serialize_str(x),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(n) => s.serialize_i64(*n),
            Value::Float(x) if x.is_finite() => s.serialize_f64(*x),
            Value::Float(_) => s.serialize_unit(),
            Value::Str(x) => s.serialize_str(x),
        }
    }
}

/// A payload's attributes as a JSON object, plus an optional distance member.
struct Properties<'a> {
    payload: &'a Payload,
    distance: Option<(&'static str, f64)>,
}

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in &self.payload.properties {
            m.serialize_entry(k, v)?;
        }
        if let Some((k, d)) = self.distance {
            m.serialize_entry(k, &d)?;
        }
        m.end()
    }
}

/// One point as `{"id", "lon", "lat" | "point", "distance_m" | "distance", "properties"}`.
struct PointView<'a> {
    metric: Metric,
    hit: &'a Hit,
    payload: &'a Payload,
    with_distance: bool,
}

impl Serialize for PointView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.payload.id)?;
        match self.metric {
            Metric::Haversine => {
                m.serialize_entry("lon", &self.hit.coords[0])?;
                m.serialize_entry("lat", &self.hit.coords[1])?;
            }
            Metric::Euclidean => m.serialize_entry("point", &self.hit.coords)?,
        }
        if self.with_distance {
            m.serialize_entry(
                distance_key(self.metric),
                &shown_distance(self.metric, self.hit.distance),
            )?;
        }
        m.serialize_entry(
            "properties",
            &Properties {
                payload: self.payload,
                distance: None,
            },
        )?;
        m.end()
    }
}

/// One point as a GeoJSON Feature.
struct FeatureView<'a>(&'a PointView<'a>);

impl Serialize for FeatureView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let p = self.0;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("type", "Feature")?;
        m.serialize_entry("id", &p.payload.id)?;
        m.serialize_entry(
            "geometry",
            &json!({"type": "Point", "coordinates": p.hit.coords}),
        )?;
        let distance = p.with_distance.then(|| {
            (
                distance_key(p.metric),
                shown_distance(p.metric, p.hit.distance),
            )
        });
        m.serialize_entry(
            "properties",
            &Properties {
                payload: p.payload,
                distance,
            },
        )?;
        m.end()
    }
}

/// The handles of `answer`'s hits, in its order.
fn points_of(answer: &Answer) -> Vec<PointRef> {
    answer.hits.iter().map(|h| h.point).collect()
}

/// `answer`'s hits, each with what was loaded for it (`loaded`, in the hits' order), ordered
/// by distance, then by user id (`by_id` compares two rows' ids): node ids differ between a
/// primary and its replicas, user ids do not, so equal-distance points come out in the same
/// order everywhere.
fn ranked<T>(
    answer: &Answer,
    loaded: Vec<T>,
    by_id: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<(&Hit, T)> {
    let mut rows: Vec<_> = answer.hits.iter().zip(loaded).collect();
    rank(&mut rows, by_id);
    rows
}

/// Orders `rows` as [`ranked`] does.
fn rank<T>(rows: &mut [(&Hit, T)], by_id: impl Fn(&T, &T) -> std::cmp::Ordering) {
    // Walks give hits nearest first: sorted unless distances tie (or come out of order).
    if rows.windows(2).any(|w| w[0].0.distance >= w[1].0.distance) {
        rows.sort_by(|a, b| {
            a.0.distance
                .total_cmp(&b.0.distance)
                .then_with(|| by_id(&a.1, &b.1))
        });
    }
}

/// An answer with its payloads loaded, ready to serialize in either [`Shape`].
///
/// Points are listed by distance, then by user id: node ids differ between a primary and its
/// replicas, user ids do not, so equal-distance points come out in the same order everywhere.
pub struct AnswerView<'a> {
    hits: Vec<&'a Hit>,
    answer: &'a Answer,
    payloads: Vec<Payload>,
    metric: Metric,
    with_distance: bool,
    shape: Shape,
    next: Option<String>,
}

impl<'a> AnswerView<'a> {
    /// The hits with their payloads, in the answer's order.
    pub fn rows(&self) -> impl Iterator<Item = (&Hit, &Payload)> {
        self.hits.iter().copied().zip(&self.payloads)
    }

    /// Adds the cursor of the next page.
    pub fn with_next(mut self, next: Option<String>) -> Self {
        self.next = next;
        self
    }

    /// Reads the payloads of `answer`'s hits from the snapshot the query ran on.
    /// `with_distance` adds each hit's distance.
    pub fn load(
        snap: &Snapshot<'_>,
        answer: &'a Answer,
        with_distance: bool,
        shape: Shape,
    ) -> Result<Self> {
        let payloads = snap.payloads(&points_of(answer))?;
        let rows = ranked(answer, payloads, |a, b| a.id.cmp(&b.id));
        let (hits, payloads) = rows.into_iter().unzip();
        Ok(AnswerView {
            hits,
            answer,
            payloads,
            metric: snap.meta().metric,
            with_distance,
            shape,
            next: None,
        })
    }

    /// Keeps only the attributes named in `keep` (all of them when `None`).
    pub fn only_properties(mut self, keep: Option<&[String]>) -> Self {
        if let Some(keep) = keep {
            for p in &mut self.payloads {
                p.properties.retain(|(k, _)| keep.iter().any(|w| w == k));
            }
        }
        self
    }

    fn points(&self) -> impl Iterator<Item = PointView<'_>> {
        self.hits
            .iter()
            .copied()
            .zip(&self.payloads)
            .map(|(hit, payload)| PointView {
                metric: self.metric,
                hit,
                payload,
                with_distance: self.with_distance,
            })
    }

    /// The answer as compact JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + 512 * self.payloads.len());
        // Writing to a Vec fails only if a Serialize impl fails, and ours do not.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }
}

struct Points<'a>(&'a AnswerView<'a>);

impl Serialize for Points<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.payloads.len()))?;
        for p in self.0.points() {
            match self.0.shape {
                Shape::Json => seq.serialize_element(&p)?,
                Shape::GeoJson => seq.serialize_element(&FeatureView(&p))?,
            }
        }
        seq.end()
    }
}

impl Serialize for AnswerView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if self.shape == Shape::GeoJson {
            m.serialize_entry("type", "FeatureCollection")?;
        }
        m.serialize_entry("count", &self.answer.count)?;
        m.serialize_entry("truncated", &self.answer.truncated())?;
        m.serialize_entry("nodes_read", &self.answer.nodes_read)?;
        if let Some(next) = &self.next {
            m.serialize_entry("next", next)?;
        }
        match self.shape {
            Shape::Json => m.serialize_entry("results", &Points(self))?,
            Shape::GeoJson => m.serialize_entry("features", &Points(self))?,
        }
        m.end()
    }
}

/// An answer whose payloads come as JSON encoded once per leaf
/// ([`crate::index::leaf_json`]) and spliced in: byte for byte what [`AnswerView`] writes, without
/// decoding a payload or serializing its attributes again.
pub struct SplicedAnswer<'a> {
    /// Per hit: its leaf's place in `leaves`, and its slot there.
    rows: Vec<(&'a Hit, (usize, usize))>,
    leaves: smallvec::SmallVec<[Arc<LeafJson>; 4]>,
    /// The attributes kept (`properties=`), as the JSON of their names; all when `None`.
    keep: Option<Vec<Vec<u8>>>,
    answer: &'a Answer,
    metric: Metric,
    with_distance: bool,
    shape: Shape,
    next: Option<String>,
}

impl<'a> SplicedAnswer<'a> {
    /// Reads (or finds cached) the payload JSON of `answer`'s hits from the snapshot the query
    /// ran on, in [`AnswerView`]'s order: by distance, then by user id.
    pub fn load(
        snap: &Snapshot<'_>,
        answer: &'a Answer,
        with_distance: bool,
        shape: Shape,
    ) -> Result<Self> {
        let (leaves, mut rows) = snap.payload_json(&answer.hits)?;
        for &(_, (at, slot)) in &rows {
            leaves[at].prefetch_bounds(slot);
        }
        rank(&mut rows, |a, b| {
            leaves[a.0].id(a.1).cmp(&leaves[b.0].id(b.1))
        });
        Ok(SplicedAnswer {
            rows,
            leaves,
            keep: None,
            answer,
            metric: snap.meta().metric,
            with_distance,
            shape,
            next: None,
        })
    }

    /// Adds the cursor of the next page.
    pub fn with_next(mut self, next: Option<String>) -> Self {
        self.next = next;
        self
    }

    /// Keeps only the attributes named in `keep` (all of them when `None`), in their stored
    /// order, as [`AnswerView::only_properties`] does: picked out of the spliced JSON rather than
    /// decoded (decoding a leaf's payloads for each answer made `properties=` answers two orders
    /// of magnitude slower than whole ones).
    pub fn only_properties(mut self, keep: Option<&[String]>) -> Self {
        self.keep = keep.map(|names| {
            names
                .iter()
                .map(|n| {
                    let mut key = Vec::with_capacity(n.len() + 2);
                    put(&mut key, n.as_str());
                    key
                })
                .collect()
        });
        self
    }

    /// The answer as compact JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut picked = Vec::new();
        let mut out = Vec::with_capacity(
            128 + self
                .rows
                .iter()
                .map(|(_, (at, s))| {
                    let json = &self.leaves[*at];
                    json.prefetch(*s);
                    96 + json.properties_json(*s).map_or(0, <[u8]>::len)
                })
                .sum::<usize>(),
        );
        out.push(b'{');
        if self.shape == Shape::GeoJson {
            out.extend_from_slice(br#""type":"FeatureCollection","#);
        }
        out.extend_from_slice(br#""count":"#);
        put(&mut out, &self.answer.count);
        out.extend_from_slice(br#","truncated":"#);
        put(&mut out, &self.answer.truncated());
        out.extend_from_slice(br#","nodes_read":"#);
        put(&mut out, &self.answer.nodes_read);
        if let Some(next) = &self.next {
            out.extend_from_slice(br#","next":"#);
            put(&mut out, next);
        }
        out.extend_from_slice(match self.shape {
            Shape::Json => br#","results":["#,
            Shape::GeoJson => br#","features":["#,
        });
        let key = distance_key(self.metric);
        for (n, (hit, (at, slot))) in self.rows.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let json = &self.leaves[*at];
            let id = json.id_json(*slot).unwrap_or(b"null");
            let mut props = json.properties_json(*slot).unwrap_or(b"{}");
            if let Some(keep) = &self.keep {
                pick_members(props, keep, json.unique_keys(), &mut picked);
                props = &picked;
            }
            let distance = shown_distance(self.metric, hit.distance);
            match self.shape {
                Shape::Json => {
                    out.extend_from_slice(br#"{"id":"#);
                    out.extend_from_slice(id);
                    match self.metric {
                        Metric::Haversine => {
                            out.extend_from_slice(br#","lon":"#);
                            put(&mut out, &hit.coords[0]);
                            out.extend_from_slice(br#","lat":"#);
                            put(&mut out, &hit.coords[1]);
                        }
                        Metric::Euclidean => {
                            out.extend_from_slice(br#","point":"#);
                            put(&mut out, &hit.coords);
                        }
                    }
                    if self.with_distance {
                        out.extend_from_slice(b",");
                        put(&mut out, key);
                        out.push(b':');
                        put(&mut out, &distance);
                    }
                    out.extend_from_slice(br#","properties":"#);
                    out.extend_from_slice(props);
                    out.push(b'}');
                }
                Shape::GeoJson => {
                    out.extend_from_slice(br#"{"type":"Feature","id":"#);
                    out.extend_from_slice(id);
                    out.extend_from_slice(br#","geometry":{"type":"Point","coordinates":"#);
                    put(&mut out, &hit.coords);
                    out.extend_from_slice(br#"},"properties":"#);
                    if self.with_distance {
                        // The distance is the last member of the properties object.
                        let inner = &props[..props.len().saturating_sub(1)];
                        out.extend_from_slice(inner);
                        if inner.len() > 1 {
                            out.push(b',');
                        }
                        put(&mut out, key);
                        out.push(b':');
                        put(&mut out, &distance);
                        out.push(b'}');
                    } else {
                        out.extend_from_slice(props);
                    }
                    out.push(b'}');
                }
            }
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// Writes to `out` the JSON object `object` with only the members whose key (as JSON) is one of
/// `keep`, in their order. With `unique_keys` (no key of `object` repeats, as
/// [`LeafJson::unique_keys`] knows per leaf) the scan ends once every name of `keep` is found:
/// a GeoNames place's kilobyte of alternate names after its `name` is then not read.
///
/// `object` is a payload's attributes as [`crate::index::leaf_json`] encodes them: flat (values
/// are strings, numbers, booleans or null), compact, keys and strings escaped by serde_json. On
/// anything else it stops at the first byte it cannot follow, keeping what it had, and never
/// panics.
fn pick_members(object: &[u8], keep: &[Vec<u8>], unique_keys: bool, out: &mut Vec<u8>) {
    /// The end (one past the closing quote) of the string opening at `at`.
    fn string_end(b: &[u8], at: usize) -> usize {
        let mut i = at + 1;
        // Long strings (alternate names run to kilobytes): find the next quote or escape a
        // vector at a time.
        while let Some(n) = b
            .get(i..)
            .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
        {
            i += n;
            match b[i] {
                b'"' => return i + 1,
                _ => i += 2,
            }
        }
        b.len()
    }
    out.clear();
    out.push(b'{');
    let mut i = 1;
    let mut first = true;
    // Each member found counts down; a repeated name in `keep` keeps it above zero, so the
    // scan runs to the end then, as it must when keys may repeat.
    let mut missing = if unique_keys { keep.len() } else { usize::MAX };
    while missing > 0 && object.get(i) == Some(&b'"') {
        let key_end = string_end(object, i);
        if object.get(key_end) != Some(&b':') {
            break;
        }
        let value_end = match object.get(key_end + 1) {
            Some(b'"') => string_end(object, key_end + 1),
            Some(_) => object[key_end + 1..]
                .iter()
                .position(|c| matches!(c, b',' | b'}'))
                .map_or(object.len(), |n| key_end + 1 + n),
            None => break,
        };
        // A member must be followed by `,` or `}`; a truncated one is left out.
        if value_end >= object.len() {
            break;
        }
        let key = &object[i..key_end];
        if keep.iter().any(|k| k.as_slice() == key) {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(&object[i..value_end]);
            first = false;
            missing = missing.saturating_sub(1);
        }
        i = value_end;
        if object.get(i) == Some(&b',') {
            i += 1;
        }
    }
    out.push(b'}');
}

/// One stored point (no distance) as a JSON object.
pub fn point_json(metric: Metric, hit: &Hit, payload: &Payload) -> Vec<u8> {
    let view = PointView {
        metric,
        hit,
        payload,
        with_distance: false,
    };
    serde_json::to_vec(&view).unwrap_or_default()
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

#[cfg(test)]
mod pick_tests {
    use super::pick_members;

    #[test]
    fn picking_members_keeps_order_and_survives_any_bytes() {
        let keep = vec![br#""b""#.to_vec(), br#""a\"""#.to_vec()];
        let mut out = Vec::new();
        // Keys that may repeat: every member of a kept name.
        pick_members(
            br#"{"a\"":"x,}\"y","b":-1.5e3,"c":null,"b":true}"#,
            &keep,
            false,
            &mut out,
        );
        assert_eq!(out, br#"{"a\"":"x,}\"y","b":-1.5e3,"b":true}"#);
        // Keys known unique: the scan ends at the last name asked for, so nothing after it is
        // read (here foreign bytes that would end the scan anyway, and a second `b`).
        pick_members(br#"{"z":0,"b":1,"b":2,x"#, &keep[..1], true, &mut out);
        assert_eq!(out, br#"{"b":1}"#);
        // A name asked twice is one member, and the scan runs on to the end.
        let twice = [keep[0].clone(), keep[0].clone()];
        pick_members(br#"{"b":1,"c":2}"#, &twice, true, &mut out);
        assert_eq!(out, br#"{"b":1}"#);
        // Truncated or foreign bytes: complete members kept, a closed object, no panic.
        for bad in [
            &b""[..],
            b"{",
            b"{\"b",
            b"{\"b\":",
            b"{\"b\":\"x",
            b"{\"b\":1,\"a\\\"\"",
            b"{\"b\":1,x}",
            b"[1,2]",
            b"{\"b\":\"\\",
        ] {
            for unique in [false, true] {
                pick_members(bad, &keep, unique, &mut out);
                serde_json::from_slice::<serde_json::Value>(&out)
                    .unwrap_or_else(|e| panic!("{bad:?} gave {out:?}: {e}"));
            }
        }
        pick_members(b"{\"b\":1,x}", &keep, false, &mut out);
        assert_eq!(out, b"{\"b\":1}");
    }
}
