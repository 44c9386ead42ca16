//! Reading points from files: the GeoNames dump format and generic delimited text.

mod columns;
mod reader;

pub use columns::{Column, Format, InputSpec};
pub use reader::{open, Record, RecordReader};
