//! Accessibility heatmap tiles: for each pixel of a 256x256 Web Mercator tile, how much lies
//! within walking distance.
//!
//! A pixel's value is `min(1, sum over points within the radius of (radius_km - distance_km) /
//! saturation)`. Candidates come from one box query over the tile's extent grown by the radius,
//! so points that cannot touch the tile are never read; each candidate then adds to the pixels
//! within its radius only (a splat), in parallel over candidates.

pub mod binned;
mod lat_rows;
pub mod mercator;
pub mod render;

pub use render::{render, HeatmapParams, Tile, TILE_SIZE};
