//! Writing files so that a reader finds the old file or the new one, never half of one: the
//! weights, checkpoints, reports and adversarial examples harden writes all go through here.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The hidden temporary sibling of `path`, `.<name>.tmp-<pid>`, in the same folder so the final
/// rename stays on one file system.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// The last component of `path`, for crash points.
fn file_name(path: &Path) -> std::borrow::Cow<'_, str> {
    path.file_name().unwrap_or_default().to_string_lossy()
}

/// Whether `name` is a temporary file of [`write_with`] (`.<name>.tmp-<pid>`), left behind
/// only when the writing process was killed.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the temporary files a killed writer left in `dir` (see [`is_temporary`]); returns
/// how many were removed.
///
/// # Errors
///
/// The I/O error of listing the folder or removing a file.
pub fn remove_temporaries(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if is_temporary(&entry.file_name().to_string_lossy()) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Runs `write` on a temporary sibling of `path`, flushes that file to disk and renames it over
/// `path`. On any failure the temporary file is removed and `path` is left as it was.
///
/// # Errors
///
/// `write`'s error, or the I/O error of syncing or renaming (through `E: From<io::Error>`).
pub fn write_with<E: From<io::Error>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = temp_sibling(path);
    // The permissions a plain `File::create` gives under the user's umask: writers that put
    // their own temporary file in place (burn-store's safetensors writer, mode 0600) get them
    // back, so every file harden writes is as readable as the user's other files.
    let permissions = File::create(&tmp)
        .and_then(|f| f.metadata())
        .map(|m| m.permissions());
    let result = permissions.map_err(E::from).and_then(|permissions| {
        write(&tmp)?;
        std::fs::set_permissions(&tmp, permissions)?;
        File::open(&tmp)?.sync_all()?;
        crate::crash::point("before-rename", file_name(path));
        std::fs::rename(&tmp, path)?;
        crate::crash::point("after-rename", file_name(path));
        Ok(())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path` with [`write_with`].
///
/// # Errors
///
/// The I/O error of writing, syncing or renaming.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |tmp| std::fs::write(tmp, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("harden-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.json");
        write_bytes(&path, b"old").unwrap();
        let failed: io::Result<()> = write_with(&path, |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        write_bytes(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["report.json"], "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A writer that puts a private file in place (mode 0600, as burn-store's safetensors
    /// writer does) still leaves a file with the permissions `File::create` gives.
    #[cfg(unix)]
    #[test]
    fn written_files_get_the_permissions_of_a_created_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("harden-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("plain");
        let expected = File::create(&plain)
            .unwrap()
            .metadata()
            .unwrap()
            .permissions();
        let path = dir.join("model.safetensors");
        let written: io::Result<()> = write_with(&path, |tmp| {
            std::fs::write(tmp, b"weights")?;
            std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o600))
        });
        written.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode, expected.mode());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
