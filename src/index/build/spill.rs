//! Build records held compactly in memory, and spilled to temporary files when they do not fit.
//!
//! A record is kept as its input line, its coordinates, the key of its user id and its encoded
//! payload: the bytes it will be written as, so holding or spilling it costs what storing it will.
//! Spill files are private to one build and deleted with it; their framing is plain
//! little-endian lengths, not the index's record encoding.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Bytes of buffer per open spill file.
const IO_BUFFER: usize = 64 * 1024;

/// Memory a record costs beyond its bytes: arena offsets, and the index and slot the layout
/// keeps per point.
pub(crate) const OVERHEAD_PER_RECORD: u64 = 16 + 4 + 40;

/// One record being built.
#[derive(Debug, Default, Clone)]
pub(crate) struct Frame {
    /// Input line, for error messages.
    pub line: u64,
    /// Coordinates.
    pub coords: Vec<f64>,
    /// Key of the user id in the ids space.
    pub key: Vec<u8>,
    /// Encoded payload.
    pub payload: Vec<u8>,
}

/// Records in memory, in columns, so a million small records are a few large allocations.
pub(crate) struct Items {
    dims: usize,
    lines: Vec<u64>,
    /// `dims` values per record.
    pub coords: Vec<f64>,
    keys: Vec<u8>,
    key_ends: Vec<usize>,
    payloads: Vec<u8>,
    payload_ends: Vec<usize>,
}

impl Items {
    /// No records of `dims` coordinates.
    pub(crate) fn new(dims: usize) -> Items {
        Items {
            dims,
            lines: Vec::new(),
            coords: Vec::new(),
            keys: Vec::new(),
            key_ends: Vec::new(),
            payloads: Vec::new(),
            payload_ends: Vec::new(),
        }
    }

    /// Adds a record.
    pub(crate) fn push(&mut self, line: u64, coords: &[f64], key: &[u8], payload: &[u8]) {
        self.lines.push(line);
        self.coords.extend_from_slice(coords);
        self.keys.extend_from_slice(key);
        self.key_ends.push(self.keys.len());
        self.payloads.extend_from_slice(payload);
        self.payload_ends.push(self.payloads.len());
    }

    /// Coordinates per record.
    pub(crate) fn dims(&self) -> usize {
        self.dims
    }

    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    /// Estimated memory of these records once laid out, bytes.
    pub(crate) fn cost(&self) -> u64 {
        (self.coords.len() * 8 + self.keys.len() + self.payloads.len()) as u64
            + self.len() as u64 * (8 + OVERHEAD_PER_RECORD)
    }

    /// Record `i`'s coordinates.
    pub(crate) fn coords_of(&self, i: usize) -> &[f64] {
        &self.coords[i * self.dims..(i + 1) * self.dims]
    }

    /// Record `i`'s id key.
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.key_ends[i - 1] };
        &self.keys[start..self.key_ends[i]]
    }

    /// Record `i`'s encoded payload.
    pub(crate) fn payload(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.payload_ends[i - 1] };
        &self.payloads[start..self.payload_ends[i]]
    }

    /// Writes every record to `w`.
    pub(crate) fn spill_to(&self, w: &mut SpillWriter) -> Result<()> {
        for i in 0..self.len() {
            w.write(
                self.lines[i],
                self.coords_of(i),
                self.key(i),
                self.payload(i),
            )?;
        }
        Ok(())
    }
}

/// Memory the records of a spill file will cost once loaded and laid out, bytes.
pub(crate) fn file_cost(bytes: u64, records: u64) -> u64 {
    bytes + records * OVERHEAD_PER_RECORD
}

/// Appends records to a spill file.
pub(crate) struct SpillWriter {
    out: BufWriter<File>,
    path: PathBuf,
    records: u64,
    bytes: u64,
}

impl SpillWriter {
    /// Creates (or truncates) the spill file at `path`.
    pub(crate) fn create(path: &Path) -> Result<SpillWriter> {
        Ok(SpillWriter {
            out: BufWriter::with_capacity(IO_BUFFER, File::create(path)?),
            path: path.to_path_buf(),
            records: 0,
            bytes: 0,
        })
    }

    /// Appends one record.
    pub(crate) fn write(
        &mut self,
        line: u64,
        coords: &[f64],
        key: &[u8],
        payload: &[u8],
    ) -> Result<()> {
        self.out.write_all(&line.to_le_bytes())?;
        for c in coords {
            self.out.write_all(&c.to_le_bytes())?;
        }
        for part in [key, payload] {
            let len = u32::try_from(part.len()).map_err(|_| Error::Input {
                line,
                reason: format!("a record of {} bytes is too large", part.len()),
            })?;
            self.out.write_all(&len.to_le_bytes())?;
            self.out.write_all(part)?;
        }
        self.records += 1;
        self.bytes += 8 + 8 * coords.len() as u64 + 8 + key.len() as u64 + payload.len() as u64;
        Ok(())
    }

    /// Appends `f`.
    pub(crate) fn write_frame(&mut self, f: &Frame) -> Result<()> {
        self.write(f.line, &f.coords, &f.key, &f.payload)
    }

    /// Flushes and closes the file: its path, records and bytes.
    pub(crate) fn finish(mut self) -> Result<SpillFile> {
        self.out.flush()?;
        Ok(SpillFile {
            path: self.path,
            records: self.records,
            bytes: self.bytes,
        })
    }
}

/// A closed spill file.
#[derive(Debug, Clone)]
pub(crate) struct SpillFile {
    /// Where it is.
    pub path: PathBuf,
    /// Records in it.
    pub records: u64,
    /// Its size.
    pub bytes: u64,
}

/// Reads a spill file's records in order.
pub(crate) struct SpillReader {
    input: BufReader<File>,
    dims: usize,
    path: PathBuf,
}

impl SpillReader {
    /// Opens `path`, whose records have `dims` coordinates.
    pub(crate) fn open(path: &Path, dims: usize) -> Result<SpillReader> {
        Ok(SpillReader {
            input: BufReader::with_capacity(IO_BUFFER, File::open(path)?),
            dims,
            path: path.to_path_buf(),
        })
    }

    /// Reads the next record into `f`; false at the end of the file.
    pub(crate) fn next_into(&mut self, f: &mut Frame) -> Result<bool> {
        let mut word = [0u8; 8];
        match self.input.read_exact(&mut word) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        f.line = u64::from_le_bytes(word);
        f.coords.clear();
        for _ in 0..self.dims {
            self.exact(&mut word)?;
            f.coords.push(f64::from_le_bytes(word));
        }
        self.part(&mut f.key)?;
        self.part(&mut f.payload)?;
        Ok(true)
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.input.read_exact(buf).map_err(|e| {
            Error::Database(format!(
                "build spill file {} is cut short: {e}",
                self.path.display()
            ))
        })
    }

    fn part(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let mut len = [0u8; 4];
        self.exact(&mut len)?;
        out.resize(u32::from_le_bytes(len) as usize, 0);
        self.exact(out)
    }
}

/// Loads a whole spill file into memory.
pub(crate) fn load(file: &SpillFile, dims: usize) -> Result<Items> {
    let mut items = Items::new(dims);
    let mut r = SpillReader::open(&file.path, dims)?;
    let mut f = Frame::default();
    while r.next_into(&mut f)? {
        items.push(f.line, &f.coords, &f.key, &f.payload);
    }
    Ok(items)
}

/// Finds repeated user ids among more records than fit in memory: ids go to one of a fixed
/// number of files by hash, and each file is checked on its own.
pub(crate) struct IdBuckets {
    files: Vec<BufWriter<File>>,
    paths: Vec<PathBuf>,
}

/// Files the ids are spread over; at 100M records each holds about 400k ids.
const BUCKETS: usize = 256;

impl IdBuckets {
    /// Bucket files in `dir`.
    pub(crate) fn create(dir: &Path) -> Result<IdBuckets> {
        let mut files = Vec::with_capacity(BUCKETS);
        let mut paths = Vec::with_capacity(BUCKETS);
        for b in 0..BUCKETS {
            let p = dir.join(format!("ids-{b:03}"));
            files.push(BufWriter::with_capacity(8 * 1024, File::create(&p)?));
            paths.push(p);
        }
        Ok(IdBuckets { files, paths })
    }

    /// Notes that `id` was read on `line`.
    pub(crate) fn add(&mut self, id: &str, line: u64) -> Result<()> {
        let b = (crate::point::fnv1a(id.as_bytes()) % BUCKETS as u64) as usize;
        let w = &mut self.files[b];
        w.write_all(&line.to_le_bytes())?;
        w.write_all(&(id.len() as u64).to_le_bytes())?;
        w.write_all(id.as_bytes())?;
        Ok(())
    }

    /// Fails with [`Error::DuplicateId`] naming both lines if any id was added twice; removes
    /// the bucket files either way.
    pub(crate) fn check(self) -> Result<()> {
        let IdBuckets { files, paths } = self;
        for w in files {
            w.into_inner().map_err(|e| e.into_error())?;
        }
        for p in &paths {
            let result = check_bucket(p);
            let _ = std::fs::remove_file(p);
            result?;
        }
        Ok(())
    }
}

fn check_bucket(path: &Path) -> Result<()> {
    let mut r = BufReader::new(File::open(path)?);
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut word = [0u8; 8];
    loop {
        match r.read_exact(&mut word) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let line = u64::from_le_bytes(word);
        r.read_exact(&mut word)?;
        let mut id = vec![0u8; u64::from_le_bytes(word) as usize];
        r.read_exact(&mut id)?;
        let id = String::from_utf8_lossy(&id).into_owned();
        if let Some(first) = seen.insert(id.clone(), line) {
            return Err(Error::DuplicateId {
                id,
                first_line: first.min(line),
                second_line: first.max(line),
            });
        }
    }
}
