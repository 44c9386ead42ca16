//! The standard Web Mercator z/x/y tile scheme.

use std::f64::consts::PI;

use crate::error::{Error, Result};

/// The highest zoom served: at z 22 a pixel is ~4 cm at the equator.
pub const MAX_ZOOM: u32 = 22;

/// A tile address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    /// Zoom.
    pub z: u32,
    /// Column, 0 at 180 W.
    pub x: u32,
    /// Row, 0 at the top (85.05 N).
    pub y: u32,
}

impl TileId {
    /// A checked tile address.
    pub fn new(z: u32, x: u32, y: u32) -> Result<TileId> {
        if z > MAX_ZOOM {
            return Err(Error::invalid(
                "z",
                format!("{z} is above the maximum zoom {MAX_ZOOM}"),
            ));
        }
        let n = 1u64 << z;
        if x as u64 >= n {
            return Err(Error::invalid(
                "x",
                format!("{x} is outside [0, {}] at zoom {z}", n - 1),
            ));
        }
        if y as u64 >= n {
            return Err(Error::invalid(
                "y",
                format!("{y} is outside [0, {}] at zoom {z}", n - 1),
            ));
        }
        Ok(TileId { z, x, y })
    }

    /// Tiles per side at this zoom.
    pub fn n(&self) -> f64 {
        (1u64 << self.z) as f64
    }
}

/// Longitude of a global x coordinate in tile units (0..n).
pub fn lon_of(tx: f64, n: f64) -> f64 {
    tx / n * 360.0 - 180.0
}

/// Latitude of a global y coordinate in tile units (0..n).
pub fn lat_of(ty: f64, n: f64) -> f64 {
    (PI * (1.0 - 2.0 * ty / n)).sinh().atan().to_degrees()
}

/// Global x coordinate in tile units of a longitude.
pub fn x_of(lon: f64, n: f64) -> f64 {
    (lon + 180.0) / 360.0 * n
}

/// Global y coordinate in tile units of a latitude (clamped to the Mercator range).
pub fn y_of(lat: f64, n: f64) -> f64 {
    y_unclamped(lat.clamp(-85.051_128_78, 85.051_128_78), n)
}

/// [`y_of`] beyond the map's latitudes too (up to a millionth of a degree from a pole, where y
/// is still finite), for reaches that cross the map's edge. Computed by its sine form: one sine
/// and one logarithm.
pub fn y_unclamped(lat: f64, n: f64) -> f64 {
    let s = lat.clamp(-89.999_999, 89.999_999).to_radians().sin();
    (0.5 - ((1.0 + s) / (1.0 - s)).ln() / (4.0 * PI)) * n
}

/// Metres a pixel of a zoom with `n` tiles a side spans at latitude `lat` (pixels are square in
/// Web Mercator).
pub fn metres_per_px(lat: f64, n: f64) -> f64 {
    2.0 * PI * crate::geometry::EARTH_RADIUS_M * lat.to_radians().cos() / (256.0 * n)
}

/// Tiles covering a lon/lat box at zoom `z` (the box must not cross the antimeridian).
pub fn tiles_covering(
    z: u32,
    min_lon: f64,
    min_lat: f64,
    max_lon: f64,
    max_lat: f64,
) -> Vec<TileId> {
    let n = (1u64 << z) as f64;
    let last = (1u64 << z) - 1;
    let clamp = |v: f64| (v.floor().max(0.0) as u64).min(last) as u32;
    let (x0, x1) = (clamp(x_of(min_lon, n)), clamp(x_of(max_lon, n)));
    let (y0, y1) = (clamp(y_of(max_lat, n)), clamp(y_of(min_lat, n)));
    // A box whose west edge is east of its east edge crosses the antimeridian, as in the
    // queries: its columns run from the west edge to the last one, then from 0 to the east edge.
    let columns: Vec<u32> = if min_lon > max_lon {
        (x0..=last as u32)
            .chain((0..=x1).take_while(|x| *x < x0))
            .collect()
    } else {
        (x0..=x1).collect()
    };
    let mut out = Vec::new();
    for x in columns {
        for y in y0..=y1 {
            out.push(TileId { z, x, y });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_across_the_antimeridian_covers_tiles_on_both_sides() {
        let t = tiles_covering(3, 178.0, -20.0, -178.0, -15.0);
        let xs: Vec<u32> = t.iter().map(|t| t.x).collect();
        assert!(xs.contains(&7) && xs.contains(&0), "{xs:?}");
        assert!(xs.iter().all(|x| *x == 7 || *x == 0), "{xs:?}");
        // At zoom 0 the one tile is there once.
        assert_eq!(tiles_covering(0, 178.0, -20.0, -178.0, -15.0).len(), 1);
    }

    #[test]
    fn round_trips() {
        for z in [0u32, 3, 11] {
            let n = (1u64 << z) as f64;
            for v in [0.0, 0.25 * n, 0.5 * n, 0.9 * n] {
                assert!((x_of(lon_of(v, n), n) - v).abs() < 1e-9);
                assert!((y_of(lat_of(v, n), n) - v).abs() < 1e-6);
            }
        }
        assert!(TileId::new(3, 8, 0).is_err());
        assert!(TileId::new(23, 0, 0).is_err());
        assert_eq!(tiles_covering(1, -10.0, -10.0, 10.0, 10.0).len(), 4);
    }
}
