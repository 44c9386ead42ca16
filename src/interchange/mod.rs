//! The flat-node interchange format, for tree builds run on another engine (Hadoop, Spark).
//!
//! One line per node, tab-separated:
//! `id  is_root  axis  above_child  below_child  coord_1 ... coord_k  [properties]`
//! - `id`: the point's id (an integer or a string); node links use these ids;
//! - `is_root`: `1` for the root of a partition's tree, else `0`;
//! - `axis`: the split axis, `0..k`;
//! - `above_child`, `below_child`: child ids, empty for none;
//! - the k coordinates (lon, lat for haversine indexes);
//! - optionally, the point's attributes as one JSON object.
//!
//! `kdsled partition-build` writes it for one partition's points; `kdsled import` joins the
//! partitions' trees under a balanced top and loads them.

pub mod flat;
pub mod import;

pub use flat::{write_partition, FlatNode};
pub use import::{import, ImportSummary};
