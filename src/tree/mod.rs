//! The k-d tree above the store: node records, the balanced bucket layout, lazy reads,
//! incremental writes that keep balance, and the invariant checker.

pub mod balance;
pub mod cache;
pub mod insert;
pub mod layout;
pub mod leaf_cache;
pub mod node;
pub mod point_layout;
pub mod points;
pub mod reader;
pub mod rebuild;
pub mod remove;
pub mod txn;
pub mod verify;

pub use node::{Node, PointRef};
pub use reader::TreeReader;
