//! The k-d tree above the store: node records, the balanced layout, lazy reads, incremental
//! writes that keep balance, and the invariant checker.

pub mod balance;
pub mod build;
pub mod cache;
pub mod insert;
pub mod node;
pub mod reader;
pub mod rebuild;
pub mod remove;
pub mod txn;
pub mod verify;

pub use node::Node;
pub use reader::TreeReader;
