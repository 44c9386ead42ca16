//! Streams [`Record`]s out of a file, one row at a time.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::columns::{Format, InputSpec, GEONAMES_COLUMNS, GEONAMES_INTEGER_COLUMNS};
use crate::error::{Error, Result};
use crate::point::{PointId, Value};

/// One input row turned into a point.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line of the row in the file.
    pub line: u64,
    /// The user's id.
    pub id: PointId,
    /// Coordinates in axis order.
    pub coords: Vec<f64>,
    /// The other columns, by header name (or `col<N>` without a header).
    pub properties: Vec<(String, Value)>,
}

/// Iterator over the rows of an input. Yields [`Error::Input`] for a bad row (the caller may skip
/// it and go on) and other errors for failures that end the read.
pub struct RecordReader {
    rows: csv::StringRecordsIntoIter<Box<dyn Read + Send>>,
    spec: InputSpec,
    id_col: Option<usize>,
    coord_cols: Vec<usize>,
    names: Vec<String>,
    integer_cols: Vec<bool>,
    data_rows: u64,
    path: PathBuf,
}

/// Opens `path` (`-` for standard input; a `.gz` name is decompressed) for reading with `spec`.
pub fn open(path: &Path, spec: &InputSpec) -> Result<RecordReader> {
    let file_err = |reason: String| Error::InputFile {
        path: path.to_path_buf(),
        reason,
    };
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        let f = File::open(path).map_err(|e| file_err(e.to_string()))?;
        if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f)))
        } else {
            Box::new(f)
        }
    };
    from_reader(raw, spec, path)
}

/// Reads records from any byte stream; `path` names it in messages.
pub fn from_reader(
    raw: Box<dyn Read + Send>,
    spec: &InputSpec,
    path: &Path,
) -> Result<RecordReader> {
    let file_err = |reason: String| Error::InputFile {
        path: path.to_path_buf(),
        reason,
    };
    spec.metric.check_dims(spec.dims())?;
    let has_header = spec.header && spec.format != Format::Geonames;
    let mut b = csv::ReaderBuilder::new();
    b.has_headers(has_header).flexible(true);
    match spec.format {
        Format::Csv => b.delimiter(b','),
        // GeoNames and TSV never quote: a quote character is data.
        Format::Tsv | Format::Geonames => b.delimiter(b'\t').quoting(false),
    };
    let mut rdr = b.from_reader(raw);
    let header: Option<Vec<String>> = if spec.format == Format::Geonames {
        Some(GEONAMES_COLUMNS.iter().map(|s| s.to_string()).collect())
    } else if has_header {
        let h = rdr
            .headers()
            .map_err(|e| file_err(format!("cannot read the header: {e}")))?;
        Some(h.iter().map(|s| s.trim().to_string()).collect())
    } else {
        spec.names.clone()
    };
    let id_col = match (&spec.id, &header) {
        (Some(c), _) => Some(c.resolve(header.as_deref())?),
        // With the coordinates found by name, a header's `id` column is the id too.
        (None, Some(h))
            if spec
                .coords
                .iter()
                .any(|c| matches!(c, super::columns::Column::AnyOf(_))) =>
        {
            InputSpec::detected_id(h)
        }
        (None, _) => None,
    };
    let coord_cols = spec
        .coords
        .iter()
        .map(|c| c.resolve(header.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    let names = header.clone().unwrap_or_default();
    let integer_cols = names
        .iter()
        .map(|n| spec.format == Format::Geonames && GEONAMES_INTEGER_COLUMNS.contains(&n.as_str()))
        .collect();
    Ok(RecordReader {
        rows: rdr.into_records(),
        spec: spec.clone(),
        id_col,
        coord_cols,
        names,
        integer_cols,
        data_rows: 0,
        path: path.to_path_buf(),
    })
}

impl RecordReader {
    fn convert(&mut self, row: csv::StringRecord) -> Result<Record> {
        let line = row.position().map(|p| p.line()).unwrap_or(0);
        let bad = |reason: String| Error::Input { line, reason };
        self.data_rows += 1;
        if self.spec.format == Format::Geonames && row.len() != GEONAMES_COLUMNS.len() {
            return Err(bad(format!(
                "expected {} tab-separated GeoNames columns, found {}",
                GEONAMES_COLUMNS.len(),
                row.len()
            )));
        }
        let mut coords = Vec::with_capacity(self.coord_cols.len());
        for (axis, &col) in self.coord_cols.iter().enumerate() {
            let name = self.spec.metric.axis_name(axis);
            let text = row
                .get(col)
                .ok_or_else(|| {
                    bad(format!(
                        "{name} column {col} is missing (row has {} columns)",
                        row.len()
                    ))
                })?
                .trim();
            if text.is_empty() {
                return Err(bad(format!("{name} is empty")));
            }
            let v: f64 = text
                .parse()
                .map_err(|_| bad(format!("{name} {text:?} is not a number")))?;
            coords.push(v);
        }
        self.spec.metric.check_point(&coords).map_err(bad)?;
        let id = match self.id_col {
            Some(col) => {
                let text = row
                    .get(col)
                    .ok_or_else(|| bad(format!("id column {col} is missing")))?
                    .trim();
                // `check` refuses an empty id as well as one too long to address.
                let id = PointId::parse(text);
                id.check().map_err(bad)?;
                id
            }
            None => PointId::Int(self.data_rows as i64),
        };
        let mut properties = Vec::new();
        for (i, field) in row.iter().enumerate() {
            if Some(i) == self.id_col || self.coord_cols.contains(&i) {
                continue;
            }
            let name = self
                .names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("col{i}"));
            let value = if field.is_empty() {
                Value::Null
            } else if self.integer_cols.get(i).copied().unwrap_or(false) {
                field
                    .parse::<i64>()
                    .map(Value::Int)
                    .unwrap_or_else(|_| Value::Str(field.to_string()))
            } else {
                Value::Str(field.to_string())
            };
            properties.push((name, value));
        }
        Ok(Record {
            line,
            id,
            coords,
            properties,
        })
    }
}

/// Whether a row's fields hold a line break (only a quoted field can).
fn spans_lines(row: &csv::StringRecord) -> bool {
    row.iter().any(|f| f.contains(['\n', '\r']))
}

impl Iterator for RecordReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        let row = self.rows.next()?;
        Some(match row {
            Ok(row) if self.spec.format == Format::Csv && spans_lines(&row) => {
                // An unbalanced quote would otherwise swallow every row up to the next quote
                // (or the end of the file) into one attribute, silently. No row after it can be
                // trusted, so this ends the read even with --skip-invalid.
                let line = row.position().map(|p| p.line()).unwrap_or(0);
                Err(Error::InputFile {
                    path: self.path.clone(),
                    reason: format!(
                        "line {line}: a quoted field starts on this row and runs across line \
                         breaks{}: an unbalanced quote? Close the quote (or double it inside a \
                         quoted field); fields with line breaks are not accepted",
                        match self.rows.reader().position().line() {
                            end if end > line + 1 => format!(" to line {}", end - 1),
                            _ => String::new(),
                        }
                    ),
                })
            }
            Ok(row) => self.convert(row),
            Err(e) => {
                let line = e.position().map(|p| p.line());
                match (e.kind(), line) {
                    (csv::ErrorKind::Utf8 { .. }, Some(line)) => Err(Error::Input {
                        line,
                        reason: "the row is not valid UTF-8".into(),
                    }),
                    _ => Err(Error::InputFile {
                        path: self.path.clone(),
                        reason: e.to_string(),
                    }),
                }
            }
        })
    }
}
