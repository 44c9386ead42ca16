//! The k-d tree above the store: node records, the balanced bulk layout, reading nodes lazily,
//! and the invariant checker.

pub mod build;
pub mod cache;
pub mod node;
pub mod reader;
pub mod verify;

pub use node::Node;
pub use reader::TreeReader;
