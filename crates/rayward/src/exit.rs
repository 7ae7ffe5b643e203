//! Exit codes, the same for every command (the README's table is this one):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; no finding at or above `--fail-on` |
//! | 1 | findings at or above `--fail-on` (audit; harden: findings it could not fix; `certs check`: a problem) |
//! | 2 | the run could not be done: an input, config or argument error, or nothing written |

/// Done, and nothing to fail on.
pub const OK: u8 = 0;
/// Findings at or above the `--fail-on` threshold.
pub const FINDINGS: u8 = 1;
/// An input, config or argument error: the answer is not trustworthy.
pub const ERROR: u8 = 2;
