//! Input errors: every one names the file and, where there is one, the line and column.

use std::fmt;

/// Why a file (or part of it) could not be read as manifests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("not a text file (NUL byte found)")]
    Binary,
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("YAML syntax error: {0}")]
    Syntax(String),
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    #[error("aliases expand to more than {0} nodes (alias bomb?)")]
    AliasBomb(usize),
    #[error("alias refers to an unknown anchor")]
    UnknownAlias,
    #[error("document has more than {0} nodes")]
    TooManyNodes(usize),
    /// Valid YAML that Kubernetes' reader (sigs.k8s.io/yaml) refuses, so `kubectl` would too.
    #[error("Kubernetes cannot read this: {0}")]
    Refused(String),
}

/// A [`LoadErrorKind`] at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    /// 1-based; 0 when the error concerns the whole file.
    pub line: u32,
    pub col: u32,
    pub kind: LoadErrorKind,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.kind)
        } else {
            write!(f, "{}: {}", self.file, self.kind)
        }
    }
}

impl std::error::Error for LoadError {}
