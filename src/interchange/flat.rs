//! Reading and writing flat node lines.

use std::io::Write;

use crate::error::{Error, Result};
use crate::input::Record;
use crate::point::PointId;
use crate::replication::wire::{properties_from_json, properties_json};
use crate::tree::point_layout::layout;

/// One node line.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatNode {
    /// The point's id.
    pub id: PointId,
    /// Whether it roots a partition's tree.
    pub is_root: bool,
    /// Split axis.
    pub axis: u8,
    /// Above child's id.
    pub above: Option<PointId>,
    /// Below child's id.
    pub below: Option<PointId>,
    /// Coordinates.
    pub coords: Vec<f64>,
    /// Attributes.
    pub properties: Vec<(String, crate::point::Value)>,
}

impl FlatNode {
    /// Parses one line; `where_` names it in errors (`file:line`).
    pub fn parse(line: &str, where_: &str) -> Result<FlatNode> {
        let bad = |reason: String| Error::InputFile {
            path: where_.into(),
            reason,
        };
        let mut f: Vec<&str> = line.split('\t').collect();
        let properties = match f.last() {
            Some(last) if f.len() > 6 && last.trim_start().starts_with('{') => {
                let v: serde_json::Value = serde_json::from_str(last)
                    .map_err(|e| bad(format!("the properties column is not JSON: {e}")))?;
                f.pop();
                properties_from_json(Some(&v)).map_err(|e| bad(e.to_string()))?
            }
            _ => Vec::new(),
        };
        if f.len() < 6 {
            return Err(bad(format!(
                "{} columns; a node line has id, is_root, axis, above, below and coordinates",
                f.len()
            )));
        }
        if f[0].is_empty() {
            return Err(bad("the id is empty".into()));
        }
        let is_root = match f[1] {
            "1" | "true" => true,
            "0" | "false" => false,
            other => return Err(bad(format!("is_root {other:?} is not 1 or 0"))),
        };
        let axis: u8 = f[2]
            .parse()
            .map_err(|_| bad(format!("axis {:?} is not a small integer", f[2])))?;
        let child = |s: &str| (!s.is_empty()).then(|| PointId::parse(s));
        let coords = f[5..]
            .iter()
            .map(|c| {
                c.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| bad(format!("coordinate {c:?} is not a finite number")))
            })
            .collect::<Result<Vec<_>>>()?;
        if axis as usize >= coords.len() {
            return Err(bad(format!("axis {axis} of {} coordinates", coords.len())));
        }
        Ok(FlatNode {
            id: PointId::parse(f[0]),
            is_root,
            axis,
            above: child(f[3]),
            below: child(f[4]),
            coords,
            properties,
        })
    }

    /// The line, without its newline.
    pub fn line(&self) -> String {
        let opt = |c: &Option<PointId>| c.as_ref().map(|i| i.to_string()).unwrap_or_default();
        let mut s = format!(
            "{}\t{}\t{}\t{}\t{}",
            self.id,
            if self.is_root { 1 } else { 0 },
            self.axis,
            opt(&self.above),
            opt(&self.below)
        );
        for c in &self.coords {
            s.push('\t');
            s.push_str(&c.to_string());
        }
        if !self.properties.is_empty() {
            s.push('\t');
            s.push_str(&properties_json(&self.properties).to_string());
        }
        s
    }
}

/// Builds one partition's balanced tree over `records` and writes its nodes as flat lines
/// (root first). Returns the number of nodes.
pub fn write_partition(records: &[Record], dims: usize, out: &mut dyn Write) -> Result<u64> {
    let coords: Vec<f64> = records
        .iter()
        .flat_map(|r| r.coords.iter().copied())
        .collect();
    let l = layout(&coords, dims, 0);
    let id_at = |slot: u64| records[l.slots[slot as usize].point as usize].id.clone();
    for (i, s) in l.slots.iter().enumerate() {
        let r = &records[s.point as usize];
        let node = FlatNode {
            id: r.id.clone(),
            is_root: i == 0,
            axis: s.axis,
            above: s.above.map(id_at),
            below: s.below.map(id_at),
            coords: r.coords.clone(),
            properties: r.properties.clone(),
        };
        writeln!(out, "{}", node.line())?;
    }
    out.flush()?;
    Ok(l.slots.len() as u64)
}
