//! Replication: the wire format of changes and snapshots, and the follower that applies them.
//!
//! A primary logs every committed write with its sequence number (see [`crate::index`]); a
//! follower bootstraps from a snapshot (every point, with the sequence it is consistent with) and
//! then tails the changes after that sequence, applying them through the same write path.

pub mod follower;
pub mod snapshot;
pub mod wire;
