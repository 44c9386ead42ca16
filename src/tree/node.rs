//! A tree node as stored on disk, and how a walk sees it.
//!
//! The types are defined with the record codec in the store layer (which must not depend on
//! the tree); this module is where the tree code finds them.

pub use crate::store::node::{Inner, Node, NodeRef, PointRef, MAX_LEAF_SIZE};
