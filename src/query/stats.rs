//! Per-category counts and sums of the points within a radius.

use std::collections::BTreeMap;

use super::{radius, Walk};
use crate::error::{Error, Result};

/// Count and sum for one value of the grouping attribute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupStats {
    /// Points with this value.
    pub count: u64,
    /// Sum of the summed attribute over those points whose value is numeric.
    pub sum: f64,
}

/// The answer of a stats query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatsAnswer {
    /// Points within the radius.
    pub count: u64,
    /// Per value of the grouping attribute (missing values group under "").
    pub groups: BTreeMap<String, GroupStats>,
    /// Tree nodes read from storage.
    pub nodes_read: u64,
    /// Tree nodes visited.
    pub nodes_visited: u64,
}

/// Groups the points within `radius` of `center` by attribute `group_by`, counting them and
/// summing attribute `sum` when given. A leaf's payloads are read (one record) only when one of its points is
/// inside the radius, and memory grows with the number of groups, not of points.
pub fn stats(
    w: Walk<'_>,
    center: &[f64],
    r: f64,
    group_by: &str,
    sum: Option<&str>,
) -> Result<StatsAnswer> {
    let mut answer = StatsAnswer::default();
    let mut grouped = false;
    let (reads, visits) = radius::walk(w, center, r, |point, _, _, payloads| {
        match sum {
            Some(field) => payloads.load_columns(&[group_by, field])?,
            None => payloads.load_columns(&[group_by])?,
        }
        let value = payloads.value(point.slot(), group_by)?;
        grouped |= value.is_some();
        let key = value.map(|v| v.group_key()).unwrap_or_default();
        let g = answer.groups.entry(key).or_default();
        g.count += 1;
        if let Some(field) = sum {
            let text = match payloads.value(point.slot(), field)? {
                None => None,
                Some(v) => match v.as_f64() {
                    Some(x) => {
                        g.sum += x;
                        None
                    }
                    None => Some(v.group_key()).filter(|t| !t.is_empty()),
                },
            };
            // Summing text would answer 0 as if it had worked.
            if let Some(text) = text {
                let id = &payloads.get(point.slot())?.id;
                return Err(Error::invalid(
                    "sum",
                    format!("attribute {field:?} is not numeric (point {id} has {text:?})"),
                ));
            }
        }
        answer.count += 1;
        Ok(())
    })?;
    if answer.count > 0 && !grouped {
        return Err(Error::invalid(
            "group_by",
            format!("no point within the radius has an attribute {group_by:?}"),
        ));
    }
    answer.nodes_read = reads;
    answer.nodes_visited = visits;
    Ok(answer)
}
