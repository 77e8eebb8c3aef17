//! Writing user files: atomically (see `harden_model::atomic`), with the path in any error.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to `path` through a temporary file and a rename.
///
/// # Errors
///
/// "cannot write PATH" with the I/O error beneath it.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    harden_model::atomic::write_bytes(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
