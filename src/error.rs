//! The one error type of the library.

use std::path::PathBuf;

/// Everything that can go wrong inside kdsled.
///
/// Variants carry enough context (line numbers, node ids, parameter names) for the message to be
/// shown to a user as it is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A row of an input file could not be turned into a point.
    #[error("line {line}: {reason}")]
    Input {
        /// 1-based line number in the input file.
        line: u64,
        /// What is wrong with the row.
        reason: String,
    },

    /// Two rows of an input carry the same point id.
    #[error("duplicate point id {id:?}: first on line {first_line}, again on line {second_line}")]
    DuplicateId {
        /// The repeated id, as text.
        id: String,
        /// Line of the first occurrence.
        first_line: u64,
        /// Line of the repeat.
        second_line: u64,
    },

    /// The input file could not be read at all (missing, unreadable, bad header, ...).
    #[error("input {path}: {reason}")]
    InputFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A query or write was asked with a bad parameter.
    #[error("invalid {param}: {reason}")]
    InvalidArgument {
        /// The parameter's name as the caller spelled it.
        param: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A record on disk does not decode or breaks an invariant.
    #[error("corrupt index: {0}")]
    Corrupt(String),

    /// The index on disk has a format this binary does not read as it is.
    #[error("{0}")]
    FormatVersion(String),

    /// The database directory is missing, already exists, or is not an index.
    #[error("{0}")]
    Database(String),

    /// Another process holds the index (one process may open it at a time).
    #[error("{0}")]
    InUse(String),

    /// The storage engine reported an error.
    #[error("storage: {0}")]
    Storage(String),

    /// Plain I/O outside the storage engine.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),

    /// A query asked to run from caches alone needed storage reads or more work than such a
    /// query may do; the caller runs it again where it may wait on storage.
    #[error("the query needs storage reads")]
    NotCached,
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Corruption { at, .. } => {
                Error::Corrupt(format!("storage engine reports corruption at {at:?}"))
            }
            other => Error::Storage(other.to_string()),
        }
    }
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(param: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            param: param.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
