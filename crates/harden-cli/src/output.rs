//! Writing user files without ever leaving a half-written one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A hidden sibling of `path` to write before renaming over it.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Runs `write` on a temporary sibling of `path`, then renames it over `path`; on failure the
/// temporary file is removed and `path` is untouched.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result =
        write(&tmp).and_then(|()| std::fs::rename(&tmp, path).context("cannot rename into place"));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
