//! Reading points from files: the GeoNames dump format and generic delimited text.

mod columns;
mod reader;

pub use columns::{Column, Format, InputSpec};
pub use reader::{open, Record, RecordReader};

/// The ids seen so far in an input, to report a repeated id with both of its lines.
#[derive(Debug, Default)]
pub struct SeenIds(std::collections::HashMap<crate::point::PointId, u64>);

impl SeenIds {
    /// Records `rec`'s id; a repeat is an [`crate::Error::DuplicateId`] naming both lines.
    pub fn check(&mut self, rec: &Record) -> crate::Result<()> {
        match self.0.insert(rec.id.clone(), rec.line) {
            Some(first) => Err(crate::Error::DuplicateId {
                id: rec.id.to_string(),
                first_line: first,
                second_line: rec.line,
            }),
            None => Ok(()),
        }
    }

    /// Every id seen with its line.
    pub fn into_entries(self) -> impl Iterator<Item = (crate::point::PointId, u64)> {
        self.0.into_iter()
    }
}
