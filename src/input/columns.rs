//! How the columns of an input file map onto a point.

use crate::error::{Error, Result};
use crate::geometry::Metric;

/// An input file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The GeoNames dump: tab-separated, no header, 19 fixed columns.
    Geonames,
    /// Comma-separated values with quoting.
    Csv,
    /// Tab-separated values without quoting.
    Tsv,
}

impl Format {
    /// Parses a format name.
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "geonames" => Ok(Format::Geonames),
            "csv" => Ok(Format::Csv),
            "tsv" => Ok(Format::Tsv),
            other => Err(Error::invalid(
                "format",
                format!("unknown format {other:?} (geonames, csv or tsv)"),
            )),
        }
    }
}

/// A column named by its header or its 0-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// The first header column whose name (ignoring case) is one of these: how a file with
    /// `lon`, `lng`, `longitude` or `x` columns needs no flags.
    AnyOf(Vec<&'static str>),
    /// 0-based position.
    Index(usize),
    /// Header name.
    Name(String),
}

impl Column {
    /// Digits are a position, anything else a header name.
    pub fn parse(s: &str) -> Column {
        match s.trim().parse::<usize>() {
            Ok(i) => Column::Index(i),
            Err(_) => Column::Name(s.trim().to_string()),
        }
    }

    /// The column's position given the header.
    pub fn resolve(&self, header: Option<&[String]>) -> Result<usize> {
        match (self, header) {
            (Column::Index(i), _) => Ok(*i),
            (Column::AnyOf(names), Some(h)) => h
                .iter()
                .position(|x| names.iter().any(|n| x.eq_ignore_ascii_case(n)))
                .ok_or_else(|| {
                    Error::invalid(
                        "column",
                        format!(
                            "no column named any of {names:?} in the header {h:?}: name it with \
                             --lon/--lat (or --coords)"
                        ),
                    )
                }),
            (Column::AnyOf(names), None) => Err(Error::invalid(
                "column",
                format!(
                    "the file has no header to find a {} column in: name the columns with \
                     --columns, or give 0-based indexes",
                    names.first().copied().unwrap_or("coordinate")
                ),
            )),
            (Column::Name(n), Some(h)) => h.iter().position(|x| x == n).ok_or_else(|| {
                Error::invalid(
                    "column",
                    format!("no column named {n:?} in the header {h:?}"),
                )
            }),
            (Column::Name(n), None) => Err(Error::invalid(
                "column",
                format!("column {n:?} is a name, but the file has no header (use a 0-based index)"),
            )),
        }
    }
}

/// Everything needed to turn a file's rows into points.
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// File format.
    pub format: Format,
    /// Whether the first row is a header (ignored for GeoNames, which has none).
    pub header: bool,
    /// The point id column; without one, the data row number (1-based) is the id.
    pub id: Option<Column>,
    /// Coordinate columns in axis order: (lon, lat) for haversine.
    pub coords: Vec<Column>,
    /// The metric the points are for; decides which coordinates are valid.
    pub metric: Metric,
    /// Names for the columns of a file without a header (its attributes are stored under them).
    pub names: Option<Vec<String>>,
}

impl InputSpec {
    /// The GeoNames dump: id column 0, longitude column 5, latitude column 4.
    pub fn geonames() -> InputSpec {
        InputSpec {
            format: Format::Geonames,
            header: false,
            id: Some(Column::Index(0)),
            coords: vec![Column::Index(5), Column::Index(4)],
            metric: Metric::Haversine,
            names: None,
        }
    }

    /// The columns a header names the longitude and latitude by, when no flag names them.
    pub fn detected_lonlat() -> Vec<Column> {
        vec![
            Column::AnyOf(vec!["lon", "lng", "long", "longitude", "x"]),
            Column::AnyOf(vec!["lat", "latitude", "y"]),
        ]
    }

    /// The header column that names the id, when no flag does (none: the row number).
    pub fn detected_id(header: &[String]) -> Option<usize> {
        header.iter().position(|h| {
            ["id", "fid", "uid", "gid"]
                .iter()
                .any(|n| h.eq_ignore_ascii_case(n))
        })
    }

    /// Number of coordinates per point.
    pub fn dims(&self) -> usize {
        self.coords.len()
    }
}

/// Names of the GeoNames dump's 19 columns.
pub const GEONAMES_COLUMNS: [&str; 19] = [
    "geonameid",
    "name",
    "asciiname",
    "alternatenames",
    "latitude",
    "longitude",
    "feature_class",
    "feature_code",
    "country_code",
    "cc2",
    "admin1_code",
    "admin2_code",
    "admin3_code",
    "admin4_code",
    "population",
    "elevation",
    "dem",
    "timezone",
    "modification_date",
];

/// GeoNames columns holding integers, stored as numbers so stats can sum them.
pub const GEONAMES_INTEGER_COLUMNS: [&str; 3] = ["population", "elevation", "dem"];
