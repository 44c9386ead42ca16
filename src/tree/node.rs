//! A tree node as stored on disk.

/// One k-d tree node: a point, the axis it splits on, and its children.
///
/// Every point in the `below` subtree has `coords[axis]` at most this node's, every point in the
/// `above` subtree at least this node's. Both bounds are inclusive so that duplicates of the
/// split value may sit on either side.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The split axis, `0..dims`.
    pub axis: u8,
    /// Child holding the points at or above the split value.
    pub above: Option<u64>,
    /// Child holding the points at or below the split value.
    pub below: Option<u64>,
    /// The point's coordinates (lon, lat for haversine indexes).
    pub coords: Vec<f64>,
}

impl Node {
    /// The split value: this node's coordinate on its axis.
    #[inline]
    pub fn split(&self) -> f64 {
        self.coords[self.axis as usize]
    }
}

/// A node as a walk sees it: borrowed from the node cache, or read from storage for this walk.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRef<'a> {
    /// The split axis, `0..dims`.
    pub axis: u8,
    /// Child holding the points at or above the split value.
    pub above: Option<u64>,
    /// Child holding the points at or below the split value.
    pub below: Option<u64>,
    /// The point's coordinates.
    pub coords: std::borrow::Cow<'a, [f64]>,
}

impl NodeRef<'_> {
    /// The split value: this node's coordinate on its axis.
    #[inline]
    pub fn split(&self) -> f64 {
        self.coords[self.axis as usize]
    }
}

impl From<Node> for NodeRef<'static> {
    fn from(n: Node) -> Self {
        NodeRef {
            axis: n.axis,
            above: n.above,
            below: n.below,
            coords: std::borrow::Cow::Owned(n.coords),
        }
    }
}
