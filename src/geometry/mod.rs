//! Geometry apart from the tree: metrics, regions and query boxes.

pub mod bbox;
pub mod metric;
pub mod reach;
pub mod region;

pub use bbox::BBox;
pub use metric::{Metric, EARTH_RADIUS_M, MAX_DIMS};
pub use reach::ReachBox;
pub use region::Region;
