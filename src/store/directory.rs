//! An index directory: its lock, the `CURRENT` pointer and the generations it points between.
//!
//! ```text
//! DIR/LOCK          held (flock) by the one process that has the index open; names it
//! DIR/CURRENT       the name of the generation in use, replaced atomically by rename
//! DIR/index-<id>/   a generation: one sled database
//! DIR/spill-<id>/   a build's spill files, while it runs
//! ```
//!
//! A build, compaction or import writes a new generation beside the current one, flushes it,
//! and only then renames a new `CURRENT` over the old: a crash at any step leaves `CURRENT`
//! naming either the old generation or the new one, both complete. Whatever a crash leaves
//! behind (generations `CURRENT` does not name, spill directories, `CURRENT.tmp`) is removed
//! the next time a process takes the lock, since the lock proves nobody else is using them.
//!
//! Directories written before this layout hold the sled files (`db`, `conf`, `snap.*`,
//! `blobs/`) directly; they are read in place and converted at their next rebuild.
//!
//! Nothing here removes anything it cannot prove is kdsled's: a directory that holds files
//! of its own and no index is refused, and an index another process holds is never replaced.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{codec, format, SledStore, Space, Store};
use crate::error::{Error, Result};

const LOCK: &str = "LOCK";
/// How long a held lock is waited for before the directory is reported in use.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const CURRENT: &str = "CURRENT";
const CURRENT_TMP: &str = "CURRENT.tmp";
const GENERATION_PREFIX: &str = "index-";
const SPILL_PREFIX: &str = "spill-";
/// The files sled 0.34 keeps in its directory (the layout before `CURRENT`).
const SLED_FILES: [&str; 3] = ["db", "conf", "blobs"];

/// An index directory whose lock this process holds. Dropping it releases the lock.
#[derive(Debug)]
pub struct IndexDir {
    path: PathBuf,
    lock: File,
    /// What the lock file says of its holder (pid and command line).
    holder: String,
}

/// A generation being written; removed on drop unless installed.
#[derive(Debug)]
pub struct Generation {
    path: PathBuf,
    name: String,
    installed: bool,
}

impl Generation {
    /// Where the generation's sled database goes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if !self.installed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A scratch directory inside the index directory, removed on drop.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// The directory (created on first use by whoever writes into it).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What a directory holds, as far as kdsled can prove.
enum Contents {
    /// Nothing, or only what interrupted kdsled builds leave.
    Empty,
    /// A kdsled index.
    Index,
}

impl IndexDir {
    /// Takes the lock of the existing directory `path` and removes what interrupted builds left.
    /// Fails if another process holds it.
    pub fn open(path: &Path) -> Result<Arc<IndexDir>> {
        if !path.is_dir() {
            return Err(no_index(path));
        }
        let dir = Self::lock(path)?;
        dir.remove_stale()?;
        Ok(Arc::new(dir))
    }

    /// The directory a build writes into: `path` is created if missing; an existing one must be
    /// empty, hold only an interrupted build's leftovers, or (with `force`) hold a kdsled index,
    /// which the build will replace once it is complete. Returns the directory and whether this
    /// call created it.
    pub fn for_build(path: &Path, force: bool) -> Result<(Arc<IndexDir>, bool)> {
        let created = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => false,
            Ok(_) => {
                return Err(Error::Database(format!(
                    "{} exists and is not a directory: refusing to touch it",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(path)?;
                true
            }
            Err(e) => return Err(e.into()),
        };
        let dir = Self::lock(path)?;
        match dir.contents()? {
            Contents::Empty => {}
            Contents::Index if force => {}
            Contents::Index => {
                return Err(Error::Database(format!(
                    "{} already holds an index: pass --force to replace it",
                    path.display()
                )))
            }
        }
        dir.remove_stale()?;
        Ok((Arc::new(dir), created))
    }

    /// Runs `build` on the directory [`IndexDir::for_build`] gives for `path`; if it fails and
    /// this call created the directory, the directory is removed again (nothing is left behind).
    pub fn build_new<T>(
        path: &Path,
        force: bool,
        build: impl FnOnce(&Arc<IndexDir>) -> Result<T>,
    ) -> Result<T> {
        let (dir, created) = Self::for_build(path, force)?;
        let r = build(&dir);
        if r.is_err() && created {
            dir.remove_if_unused();
        }
        r
    }

    fn lock(path: &Path) -> Result<IndexDir> {
        let lock_path = path.join(LOCK);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::Database(format!("cannot open {}: {e}", lock_path.display())))?;
        let locked = lock_within(&f, LOCK_WAIT);
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = f.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    format!("another process ({holder})")
                };
                let ask = match serving_url(holder) {
                    Some(url) => format!("ask it with --server {url}"),
                    None => "ask the running server over HTTP (--server URL)".to_string(),
                };
                return Err(Error::InUse(format!(
                    "{} is in use by {who}: one process may open an index at a time; stop it, \
                     or {ask}",
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::Database(format!(
                    "cannot lock {}: {e}",
                    lock_path.display()
                )))
            }
        }
        // Who holds it, for the message another process gets.
        let who = format!(
            "pid {}: {}",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        let holder: String = who.chars().take(512).collect();
        let dir = IndexDir {
            path: path.to_path_buf(),
            lock: f,
            holder,
        };
        dir.write_holder("");
        Ok(dir)
    }

    fn write_holder(&self, note: &str) {
        // The note is advice for other processes' error messages: failing to write it is
        // not worth failing the open for.
        let mut f = &self.lock;
        let _ = f.set_len(0);
        let _ = f.rewind();
        let _ = f.write_all(format!("{}{note}", self.holder).as_bytes());
        let _ = f.flush();
    }

    /// Adds to what the lock file says of this process, e.g. `serving http://ADDR`, so that a
    /// command refused the directory can say where to ask instead.
    pub fn announce(&self, what: &str) {
        self.write_holder(&format!("; {what}"));
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sled directory of the index in use, if there is one: the generation `CURRENT`
    /// names, or the directory itself in the layout before `CURRENT`.
    pub fn current(&self) -> Result<Option<PathBuf>> {
        current_in(&self.path)
    }

    /// A fresh, empty generation to build into.
    pub fn new_generation(&self) -> Result<Generation> {
        let name = format!("{GENERATION_PREFIX}{}", unique());
        let path = self.path.join(&name);
        std::fs::create_dir(&path)?;
        Ok(Generation {
            path,
            name,
            installed: false,
        })
    }

    /// A scratch directory for a build's spill files.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            path: self.path.join(format!("{SPILL_PREFIX}{}", unique())),
        }
    }

    /// Makes `generation` (complete and flushed) the index in use, atomically: `CURRENT` is
    /// written to a temporary file, synced, and renamed over the old one. With `remove_old`,
    /// the previous generation is removed afterwards; a process still serving it passes false
    /// and the next open removes it.
    pub fn install(&self, mut generation: Generation, remove_old: bool) -> Result<()> {
        sync_dir(&generation.path)?;
        let tmp = self.path.join(CURRENT_TMP);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(generation.name.as_bytes())?;
            f.sync_all()?;
        }
        crate::failpoint::hit("install-before-current");
        std::fs::rename(&tmp, self.path.join(CURRENT))?;
        sync_dir(&self.path)?;
        generation.installed = true;
        crate::failpoint::hit("install-after-current");
        if remove_old {
            self.remove_stale()?;
        }
        Ok(())
    }

    /// Removes what `CURRENT` does not name: older generations, spill directories, a
    /// half-written `CURRENT.tmp`, and the sled files of the layout before `CURRENT` once a
    /// generation has replaced them. Only kdsled's own names are touched.
    pub fn remove_stale(&self) -> Result<()> {
        let current = read_current(&self.path)?;
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let stale = if name.starts_with(GENERATION_PREFIX) || name.starts_with(SPILL_PREFIX) {
                current.as_deref() != Some(name.as_str())
            } else if name == CURRENT_TMP {
                true
            } else {
                // The old layout's sled files go only once CURRENT points elsewhere.
                current.is_some() && is_sled_file(&name)
            };
            if !stale {
                continue;
            }
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => tracing::info!(path = %path.display(), "removed a leftover"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Database(format!(
                        "cannot remove the leftover {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        Ok(())
    }

    /// After a failed first build: removes the directory if it holds nothing but the lock.
    pub fn remove_if_unused(self: Arc<Self>) {
        let path = self.path.clone();
        let Ok(entries) = std::fs::read_dir(&path) else {
            return;
        };
        let only_lock = entries
            .flatten()
            .all(|e| e.file_name().to_string_lossy() == LOCK);
        if only_lock {
            let _ = std::fs::remove_file(path.join(LOCK));
            drop(self);
            let _ = std::fs::remove_dir(&path);
        }
    }

    /// Classifies the directory's entries; anything unknown without an index is refused.
    fn contents(&self) -> Result<Contents> {
        if let Some(sled_dir) = self.current()? {
            prove_index(&sled_dir)?;
            return Ok(Contents::Index);
        }
        let mut foreign = Vec::new();
        for entry in std::fs::read_dir(&self.path)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let ours = name == LOCK
                || name == CURRENT_TMP
                || name.starts_with(GENERATION_PREFIX)
                || name.starts_with(SPILL_PREFIX);
            if !ours {
                foreign.push(name);
            }
        }
        if foreign.is_empty() {
            return Ok(Contents::Empty);
        }
        foreign.sort();
        let shown: Vec<_> = foreign.iter().take(5).map(|n| format!("{n:?}")).collect();
        Err(Error::Database(format!(
            "{} is not a kdsled index (it holds {}{}): refusing to replace it; choose another \
             directory, or remove it yourself",
            self.path.display(),
            shown.join(", "),
            if foreign.len() > 5 { ", ..." } else { "" }
        )))
    }
}

/// The URL a serving holder announced in its lock file (see [`IndexDir::announce`]).
fn serving_url(holder: &str) -> Option<&str> {
    let (_, rest) = holder.rsplit_once("; serving ")?;
    rest.split_whitespace().next()
}

/// Takes `f`'s exclusive flock, waiting up to `wait` while another handle holds it.
///
/// A lock that was just released can still look held for a moment: a child forked between
/// `fork` and `exec` shares the open file (and its flock) until exec closes it, and sled lets go
/// of its lock only when its last background thread does. So a conflict counts only once it
/// outlasts a short wait.
pub(crate) fn lock_within(f: &File, wait: std::time::Duration) -> Result<(), TryLockError> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match f.try_lock() {
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Whether `path` holds an index (without taking its lock).
pub fn has_index(path: &Path) -> bool {
    matches!(current_in(path), Ok(Some(_)))
}

/// The sled directory of the index in use at `path`, if any, without taking the lock (for
/// tools and tests that open the raw store of a closed index).
pub fn current_sled_dir(path: &Path) -> Result<Option<PathBuf>> {
    current_in(path)
}

fn current_in(path: &Path) -> Result<Option<PathBuf>> {
    if let Some(name) = read_current(path)? {
        let dir = path.join(&name);
        if !dir.join("db").is_file() {
            return Err(Error::Corrupt(format!(
                "{} names {name}, which holds no database",
                path.join(CURRENT).display()
            )));
        }
        return Ok(Some(dir));
    }
    if path.join("db").is_file() {
        return Ok(Some(path.to_path_buf()));
    }
    Ok(None)
}

fn read_current(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path.join(CURRENT)) {
        Ok(s) => {
            let name = s.trim();
            let valid = name.starts_with(GENERATION_PREFIX)
                && !name.contains('/')
                && !name.contains('\\')
                && name != "."
                && name != "..";
            if !valid {
                return Err(Error::Corrupt(format!(
                    "{} does not name a generation ({name:?})",
                    path.join(CURRENT).display()
                )));
            }
            Ok(Some(name.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Database(format!(
            "cannot read {}: {e}",
            path.join(CURRENT).display()
        ))),
    }
}

fn is_sled_file(name: &str) -> bool {
    SLED_FILES.contains(&name) || name.starts_with("snap.")
}

/// Proves `sled_dir` is a kdsled database by reading its format version record.
fn prove_index(sled_dir: &Path) -> Result<()> {
    let store = SledStore::open(sled_dir, 1).map_err(|e| match e {
        e @ Error::InUse(_) => e,
        e => Error::Database(format!(
            "{} cannot be opened as a kdsled index ({e}): refusing to replace it; remove it \
             yourself if it is one",
            sled_dir.display()
        )),
    })?;
    match store.get(Space::Meta, format::VERSION_KEY)? {
        Some(v) => codec::decode_version(&v).map(|_| ()),
        None => Err(Error::Database(format!(
            "{} is a sled database but not a kdsled index: refusing to replace it",
            sled_dir.display()
        ))),
    }
}

fn no_index(path: &Path) -> Error {
    Error::Database(format!(
        "no index at {}: build one with `kdsled build --db {} --input FILE`",
        path.display(),
        path.display()
    ))
}

/// A name no other generation or scratch directory of this machine has used.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{}", std::process::id())
}

/// Makes a directory's entries (a rename, a new file) durable.
fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)?.sync_all()?;
    Ok(())
}

/// Removes the snapshot files sled leaves half-written when a write fails (a full disk): sled
/// would otherwise take the newest for the real thing and refuse to open. The snapshot is
/// derived from the log, which sled replays in full when none is left.
pub(crate) fn remove_incomplete_snapshots(sled_dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(sled_dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            tracing::warn!(file = %entry.path().display(), "removing an incomplete sled snapshot");
            std::fs::remove_file(entry.path()).map_err(|e| {
                Error::Database(format!(
                    "cannot remove the incomplete snapshot {}: {e}",
                    entry.path().display()
                ))
            })?;
        }
    }
    Ok(())
}
