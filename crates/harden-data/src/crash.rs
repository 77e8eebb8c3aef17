//! Crash points: places where the kill tests stop harden as `kill -9` would.
//!
//! With the `crash-points` feature, [`point`] aborts the process (no destructor runs, no buffer
//! is flushed) when the environment variable `HARDEN_CRASH_AT` is `NAME:SUBJECT` for the point
//! reached, e.g. `after-rename:scheduler-3.bpk` (epoch 3's checkpoint is complete, its metrics
//! line not yet written) or `final-evaluation:`. Without the feature (every build but the
//! tests'), [`point`] does nothing.
//!
//! Written here rather than with a fail-point library: a kill test needs to stop at one named
//! point for one named file, where fail-point libraries count every call of a point.

use std::fmt::Display;

/// The crash point `name` reached for `subject` (a file name, an epoch, or `""`): aborts the
/// process when `HARDEN_CRASH_AT` names both and the `crash-points` feature is on.
#[inline]
pub fn point(name: &str, subject: impl Display) {
    #[cfg(feature = "crash-points")]
    if let Ok(at) = std::env::var("HARDEN_CRASH_AT")
        && at == format!("{name}:{subject}")
    {
        std::process::abort();
    }
    #[cfg(not(feature = "crash-points"))]
    let _ = (name, subject);
}
