//! burn-train checkpoints written atomically.
//!
//! burn-train's `FileCheckpointer` writes records in place, so a run killed mid-write leaves a
//! truncated file. [`AtomicCheckpointer`] writes each record to a temporary file in the same
//! folder, syncs it and renames it over the target: a checkpoint file is always complete.

use std::path::{Path, PathBuf};

use burn::tensor::Bytes;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use harden_model::atomic::write_bytes;

/// Saves each record as `<name>-<epoch>.bpk` in a folder, atomically.
#[derive(Debug, Clone)]
pub struct AtomicCheckpointer {
    directory: PathBuf,
    name: String,
}

impl AtomicCheckpointer {
    /// A checkpointer for records called `name` in `directory` (created if missing).
    ///
    /// # Errors
    ///
    /// The I/O error of creating the folder.
    pub fn new(directory: &Path, name: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(directory)?;
        Ok(Self {
            directory: directory.to_path_buf(),
            name: name.to_string(),
        })
    }

    /// The file of `epoch`'s record.
    pub fn path(&self, epoch: usize) -> PathBuf {
        self.directory.join(format!("{}-{epoch}.bpk", self.name))
    }
}

impl<R: Checkpoint> Checkpointer<R> for AtomicCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        write_bytes(&self.path(epoch), &bytes).map_err(CheckpointerError::IOError)
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let bytes = std::fs::read(self.path(epoch)).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        let path = self.path(epoch);
        if path.exists() {
            std::fs::remove_file(path).map_err(CheckpointerError::IOError)?;
        }
        Ok(())
    }
}

/// The epochs that have a complete model, optimizer and scheduler checkpoint in `directory`.
pub fn complete_epochs(directory: &Path) -> Vec<usize> {
    let epochs_of = |name: &str| -> Vec<usize> {
        let prefix = format!("{name}-");
        std::fs::read_dir(directory)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let file = e.file_name().to_string_lossy().into_owned();
                        file.strip_prefix(&prefix)?
                            .strip_suffix(".bpk")?
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let optim = epochs_of("optim");
    let scheduler = epochs_of("scheduler");
    let mut epochs: Vec<usize> = epochs_of("model")
        .into_iter()
        .filter(|e| optim.contains(e) && scheduler.contains(e))
        .collect();
    epochs.sort_unstable();
    epochs
}
