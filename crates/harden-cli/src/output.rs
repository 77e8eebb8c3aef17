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

/// Checks, before any work, that `path` (the value of `flag`) can be written: its folder
/// exists and takes a new file, and `path` is not a folder. A probe file is created there and
/// removed again.
///
/// # Errors
///
/// "FLAG PATH: ..." naming what is wrong.
pub fn check_destination(flag: &str, path: &Path) -> Result<()> {
    let context = || format!("{flag} {}", path.display());
    if path.is_dir() {
        anyhow::bail!("{}: is a folder, expected a file name", context());
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        anyhow::bail!(
            "{}: the folder {} does not exist",
            context(),
            folder.display()
        );
    }
    let probe = folder.join(format!(".harden-probe-{}", std::process::id()));
    std::fs::File::create(&probe).with_context(context)?;
    std::fs::remove_file(&probe).with_context(context)?;
    Ok(())
}
