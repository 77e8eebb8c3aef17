//! burn-train checkpoints written atomically.
//!
//! burn-train's `FileCheckpointer` writes records in place, so a run killed mid-write leaves a
//! truncated file. [`AtomicCheckpointer`] writes each record to a temporary file in the same
//! folder, syncs it and renames it over the target: a checkpoint file is always complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use burn::tensor::Bytes;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use harden_model::atomic::write_bytes;

/// How many checkpoint records of each epoch have been written (or have failed), shared by a
/// run's checkpointers and its recorder.
///
/// burn-train writes checkpoints on background threads, so without it an epoch's metrics line
/// could be appended before its checkpoint is complete, or after; with it the recorder waits,
/// and the metrics line is the epoch's commit point: a kill before it leaves the epoch to be
/// trained again, a kill after it leaves a complete checkpoint.
#[derive(Clone, Default)]
pub struct Written(Arc<(Mutex<BTreeMap<usize, usize>>, Condvar)>);

impl Written {
    fn add(&self, epoch: usize) {
        let (counts, changed) = &*self.0;
        *counts
            .lock()
            .expect("written lock")
            .entry(epoch)
            .or_default() += 1;
        changed.notify_all();
    }

    /// Blocks until `records` records of `epoch` have been written or have failed.
    pub fn wait(&self, epoch: usize, records: usize) {
        let (counts, changed) = &*self.0;
        let mut counts = counts.lock().expect("written lock");
        while counts.get(&epoch).copied().unwrap_or(0) < records {
            counts = changed.wait(counts).expect("written lock");
        }
    }
}

/// Counts a record of its epoch in [`Written`] when dropped: after the write, when it fails,
/// and when it panics, so a waiting recorder is never left hanging.
struct Announce<'a>(&'a Written, usize);

impl Drop for Announce<'_> {
    fn drop(&mut self) {
        self.0.add(self.1);
    }
}

/// The epoch whose checkpoint must survive (the run's best so far), if any.
pub type KeepEpoch = Arc<dyn Fn() -> Option<usize> + Send + Sync>;

/// Saves each record as `<name>-<epoch>.bpk` in a folder, atomically.
///
/// With [`keeping`](Self::keeping), a deletion burn-train asks for is put off while its epoch
/// is the one to keep: after a resume, burn-train's best-metric strategy knows only the epochs
/// since the resume and would delete the run's best checkpoint, which the end of the run then
/// needs. A put-off deletion happens with the next one once the epoch is no longer kept.
#[derive(Clone)]
pub struct AtomicCheckpointer {
    directory: PathBuf,
    name: String,
    keep: Option<KeepEpoch>,
    /// Epochs whose deletion was asked for and put off.
    deferred: Arc<Mutex<Vec<usize>>>,
    /// Where each written record is counted, if anywhere.
    written: Option<Written>,
}

impl std::fmt::Debug for AtomicCheckpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicCheckpointer")
            .field("directory", &self.directory)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
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
            keep: None,
            deferred: Arc::new(Mutex::new(Vec::new())),
            written: None,
        })
    }

    /// The same checkpointer, counting each record it writes in `written`.
    pub fn counting(mut self, written: Written) -> Self {
        self.written = Some(written);
        self
    }

    /// The same checkpointer, never deleting the checkpoint of the epoch `keep` names.
    pub fn keeping(mut self, keep: KeepEpoch) -> Self {
        self.keep = Some(keep);
        self
    }

    /// Deletes `epoch`'s record, unless it is the epoch to keep (then later), together with
    /// the put-off deletions of epochs no longer kept.
    ///
    /// # Errors
    ///
    /// The I/O error of removing a file.
    pub fn discard(&self, epoch: usize) -> std::io::Result<()> {
        let kept = self.keep.as_ref().and_then(|keep| keep());
        let mut deferred = self.deferred.lock().expect("deferred lock");
        deferred.push(epoch);
        let mut result = Ok(());
        deferred.retain(|&e| {
            if Some(e) == kept {
                return true;
            }
            let path = self.path(e);
            if path.exists()
                && let Err(err) = std::fs::remove_file(&path)
            {
                result = Err(naming(&path, err));
            }
            false
        });
        result
    }

    /// The file of `epoch`'s record.
    pub fn path(&self, epoch: usize) -> PathBuf {
        self.directory.join(format!("{}-{epoch}.bpk", self.name))
    }
}

impl<R: Checkpoint> Checkpointer<R> for AtomicCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let _announce = self.written.as_ref().map(|w| Announce(w, epoch));
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        let path = self.path(epoch);
        write_bytes(&path, &bytes).map_err(|e| CheckpointerError::IOError(naming(&path, e)))
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let path = self.path(epoch);
        let bytes =
            std::fs::read(&path).map_err(|e| CheckpointerError::IOError(naming(&path, e)))?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        self.discard(epoch).map_err(CheckpointerError::IOError)
    }
}

/// `error` with `path` in its message: burn-train reports a checkpointer's error as it is,
/// and an I/O error alone (`No space left on device`) does not say which file.
fn naming(path: &Path, error: std::io::Error) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorder's wait ends once every record of the epoch is counted, written or failed
    /// (a failed save counts too, so nothing waits forever), and not before.
    #[test]
    fn waiting_ends_when_every_record_of_the_epoch_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let written = Written::default();
        let model = AtomicCheckpointer::new(dir.path(), "model")
            .unwrap()
            .counting(written.clone());
        std::fs::create_dir(model.path(2)).unwrap();
        std::fs::write(model.path(2).join("x"), b"x").unwrap();
        let saver = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            Checkpointer::<()>::save(&model, 1, ()).unwrap();
            Checkpointer::<()>::save(&model, 2, ()).unwrap_err();
        });
        written.wait(1, 1);
        assert!(dir.path().join("model-1.bpk").exists());
        written.wait(2, 1);
        saver.join().unwrap();
    }

    /// A checkpoint that cannot be written (here: a folder stands where the file goes, as a
    /// full disk would refuse it) fails with an error that names the file.
    #[test]
    fn a_failed_save_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let checkpointer = AtomicCheckpointer::new(dir.path(), "model").unwrap();
        let blocked = checkpointer.path(3);
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), b"x").unwrap();
        let error = Checkpointer::<()>::save(&checkpointer, 3, ()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("model-3.bpk"), "{message}");
        let error = Checkpointer::<()>::restore(&checkpointer, 4).unwrap_err();
        assert!(error.to_string().contains("model-4.bpk"), "{error}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn the_kept_epoch_survives_deletion_until_it_is_no_longer_kept() {
        let dir = tempfile::tempdir().unwrap();
        let best = Arc::new(Mutex::new(Some(2)));
        let reader = best.clone();
        let checkpointer = AtomicCheckpointer::new(dir.path(), "model")
            .unwrap()
            .keeping(Arc::new(move || *reader.lock().unwrap()));
        for epoch in 1..=4 {
            std::fs::write(checkpointer.path(epoch), b"x").unwrap();
        }
        checkpointer.discard(1).unwrap();
        checkpointer.discard(2).unwrap();
        assert!(!checkpointer.path(1).exists());
        assert!(checkpointer.path(2).exists(), "the best epoch is kept");
        *best.lock().unwrap() = Some(4);
        checkpointer.discard(3).unwrap();
        assert!(!checkpointer.path(3).exists());
        assert!(
            !checkpointer.path(2).exists(),
            "deleted once no longer the best"
        );
        assert!(checkpointer.path(4).exists());
    }
}
