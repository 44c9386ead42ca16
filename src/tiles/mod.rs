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

/// `x as usize` for `x` in [0, 2⁶³) (a NaN gives 0, as `as usize` does): through `i64` it is one
/// signed conversion and its saturation checks on x86-64, where a float-to-unsigned conversion
/// without AVX-512 branches between two (callgrind: about half the instructions). The splat
/// converts a few coordinates of every point it places.
#[inline]
fn index_of(x: f64) -> usize {
    x as i64 as usize
}
