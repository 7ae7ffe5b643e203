//! What every parser of the crate shares: the bounds a file is read under, and the
//! document it gives. Both readers (the fast path, `fast`, and the full YAML reader,
//! `load`) use them; neither depends on the other for them.

use crate::node::Node;

/// Bounds applied while loading. The defaults fit any real manifest with room to spare.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most nodes that aliases may copy in one file.
    pub max_alias_nodes: usize,
    /// Most nodes in one file, aliases included.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 64 * 1024 * 1024,
            max_depth: 128,
            max_alias_nodes: 100_000,
            max_nodes: 20_000_000,
        }
    }
}

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// 0-based index of the document in its file.
    pub index: usize,
    pub root: Node,
}
