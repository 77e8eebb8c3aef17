//! Locating the real datasets that tests and benchmarks read.

use std::path::PathBuf;

use crate::source::DATA_DIR_ENV;

/// The folder of real datasets for tests and benchmarks: `$HARDEN_DATA_DIR`, else the
/// `shared/data` folder beside the workspace (`../shared/data` from the repository root).
///
/// Returns `None`, after printing why, when the folder is missing outside CI, so a test can
/// skip.
///
/// # Panics
///
/// Panics when the folder is missing and the `CI` environment variable is set: CI must run
/// every data test.
pub fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os(DATA_DIR_ENV).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    if dir.join("README.md").is_file() || dir.join("mnist").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "real-data folder {} not found and CI is set: set {DATA_DIR_ENV}",
        dir.display()
    );
    eprintln!(
        "skipping: real-data folder {} not found (set {DATA_DIR_ENV})",
        dir.display()
    );
    None
}
