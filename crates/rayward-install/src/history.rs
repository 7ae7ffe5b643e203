//! The Ray history server's place in an installation. Its component is another
//! engineer's work in progress: until it lands, `--history` is refused with this message
//! rather than installing something that does not run. When it does, this module gives a
//! [`crate::component::Spec`] like the others and [`crate::objects`] calls it.

use crate::Error;

/// Where the history server is being built.
pub const HISTORY_ISSUE: &str = "the history server is not part of rayward yet";

pub fn not_yet() -> Error {
    Error::Usage(format!(
        "--history: {HISTORY_ISSUE}; install the other components now (--webhook, --gateway, \
         --watch) and add --history once `rayward history` exists"
    ))
}
