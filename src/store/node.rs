//! A tree node as stored on disk (format 3): an inner split or a leaf bucket of points.
//!
//! The type lives in the store layer because the record codec encodes it; the tree above gives
//! it meaning (how splits bound subtrees, how buckets fill and split).

use std::borrow::Cow;

/// One k-d tree node.
///
/// Every point under `below` has `coords[axis] <= split`, every point under `above` has
/// `coords[axis] >= split`. Both bounds are inclusive, so that copies of the split value may
/// sit on either side and any number of identical points still split by position.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An inner node: a split and the points beneath it.
    Inner(Inner),
    /// A leaf: a bucket of points, `dims` coordinates each, in slot order.
    Leaf {
        /// The points' coordinates, flat: point `i` is `coords[i * dims..(i + 1) * dims]`.
        coords: Vec<f64>,
    },
}

/// The fixed-size part of an inner node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inner {
    /// The split axis, `0..dims`.
    pub axis: u8,
    /// The split value.
    pub split: f64,
    /// Child holding the points at or below the split value.
    pub below: Option<u64>,
    /// Child holding the points at or above the split value.
    pub above: Option<u64>,
    /// Points in the subtree: lets writes weigh subtrees and counts skip whole ones.
    pub count: u64,
}

/// A node as a walk sees it: borrowed from the node cache, or read from storage for this walk.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeRef<'a> {
    /// An inner node.
    Inner(Inner),
    /// A leaf's coordinates, flat.
    Leaf(Cow<'a, [f64]>),
}

impl From<Node> for NodeRef<'static> {
    fn from(n: Node) -> Self {
        match n {
            Node::Inner(i) => NodeRef::Inner(i),
            Node::Leaf { coords } => NodeRef::Leaf(Cow::Owned(coords)),
        }
    }
}

impl Node {
    /// Points in this node's subtree (`dims` coordinates a point).
    pub fn count(&self, dims: usize) -> u64 {
        match self {
            Node::Inner(i) => i.count,
            Node::Leaf { coords } => (coords.len() / dims.max(1)) as u64,
        }
    }
}

/// A point's handle in answers: its leaf's node id and its slot in the leaf, packed so that
/// sorting handles sorts by leaf, then slot. Valid until the next write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PointRef(pub u64);

/// Most points a leaf may hold: slots must fit [`PointRef`]'s low bits.
pub const MAX_LEAF_SIZE: usize = 4096;

const SLOT_BITS: u32 = 16;

impl PointRef {
    /// The handle of slot `slot` of leaf `leaf`.
    #[inline]
    pub fn new(leaf: u64, slot: usize) -> PointRef {
        PointRef((leaf << SLOT_BITS) | slot as u64)
    }

    /// The leaf's node id.
    #[inline]
    pub fn leaf(self) -> u64 {
        self.0 >> SLOT_BITS
    }

    /// The slot in the leaf.
    #[inline]
    pub fn slot(self) -> usize {
        (self.0 & ((1 << SLOT_BITS) - 1)) as usize
    }
}
