//! kdsled: a k-d tree spatial index persisted in sled, queried lazily from disk.
//!
//! Layers, bottom up: [`store`] (sled behind a small interface, the record codec, the format),
//! [`tree`] (nodes, the balanced layout, lazy reads, verification), [`query`] (one walk per query
//! kind), [`index`] (the public database API), then the CLI and the HTTP server in the binary.
//!
//! ```no_run
//! use kdsled::Index;
//! let index = Index::open(std::path::Path::new("cities.kdsled"), 64)?;
//! let near = index.radius(&[2.35, 48.85], 25_000.0, 10)?;
//! for hit in &near.hits {
//!     println!("{} at {:.0} m", index.payload(hit.point)?.id, hit.distance);
//! }
//! # Ok::<(), kdsled::Error>(())
//! ```

#![warn(missing_docs)]

mod allocator;
pub mod error;
pub mod failpoint;
pub mod geometry;
pub mod index;
pub mod input;
pub mod interchange;
pub mod migrate;
pub mod output;
pub mod point;
mod prefetch;
pub mod progress;
pub mod query;
pub mod replication;
pub mod server;
pub mod store;
pub mod tiles;
pub mod tree;

pub use allocator::Allocator;
pub use error::{Error, Result};
pub use geometry::{BBox, Metric};
pub use index::Index;
pub use point::{Payload, PointId, Value};
