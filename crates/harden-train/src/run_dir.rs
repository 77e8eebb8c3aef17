//! The run directory: created for a new run, reopened for a resumed one, and every file in it
//! written atomically.

use std::path::{Path, PathBuf};

use harden_data::atomic::write_bytes;

use crate::checkpoint::complete_epochs;
use crate::recorder::EpochRecord;
use crate::{TrainConfig, TrainError};

/// The directory of one run (see the [crate docs](crate) for its files).
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    /// The epoch of the checkpoint the run resumes after (`None` for a new run).
    resumed_after: Option<usize>,
}

/// The default run directory: `runs/<UTC timestamp>-<dataset>-<objective>`.
pub fn default_run_dir(config: &TrainConfig) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let dataset: String = config
        .dataset
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from("runs").join(format!("{stamp}-{dataset}-{}", config.objective.name()))
}

/// The configuration of the run in `dir` (its `config.json`).
///
/// # Errors
///
/// [`TrainError::Resume`] when the file is missing or not a configuration.
pub fn resume_config(dir: &Path) -> Result<TrainConfig, TrainError> {
    let path = dir.join("config.json");
    let resume_err = |message: String| TrainError::Resume {
        dir: dir.to_path_buf(),
        message: format!("{}: {message}", path.display()),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| resume_err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| resume_err(e.to_string()))
}

/// Writes `value` as pretty JSON to `path`, atomically.
///
/// # Errors
///
/// [`TrainError::Io`] naming `path`.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).expect("serialisable");
    write_bytes(path, format!("{text}\n").as_bytes()).map_err(|e| TrainError::io(path, e))
}

impl RunDir {
    /// Creates the directory of a new run at `path` and writes its `config.json`.
    ///
    /// # Errors
    ///
    /// [`TrainError::OutNotEmpty`] when `path` exists and holds files (nothing in it is
    /// touched), [`TrainError::Io`] when it cannot be created or written.
    pub fn create(path: &Path, config: &TrainConfig) -> Result<Self, TrainError> {
        if path.exists()
            && std::fs::read_dir(path)
                .map_err(|e| TrainError::io(path, e))?
                .next()
                .is_some()
        {
            return Err(TrainError::OutNotEmpty {
                dir: path.to_path_buf(),
            });
        }
        std::fs::create_dir_all(path).map_err(|e| TrainError::io(path, e))?;
        write_json(&path.join("config.json"), config)?;
        Ok(Self {
            path: path.to_path_buf(),
            resumed_after: None,
        })
    }

    /// Reopens the run at `path` after its last complete checkpoint.
    ///
    /// # Errors
    ///
    /// [`TrainError::Resume`] when `checkpoint/` holds no complete checkpoint (model,
    /// optimizer and scheduler of one epoch).
    pub fn resume(path: &Path) -> Result<Self, TrainError> {
        let dir = Self {
            path: path.to_path_buf(),
            resumed_after: None,
        };
        let Some(&last) = complete_epochs(&dir.checkpoints()).last() else {
            return Err(TrainError::Resume {
                dir: path.to_path_buf(),
                message: "no complete checkpoint (model, optim and scheduler) in checkpoint/"
                    .to_string(),
            });
        };
        Ok(Self {
            resumed_after: Some(last),
            ..dir
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The epoch the run resumes after, if it is resumed.
    pub fn resumed_after(&self) -> Option<usize> {
        self.resumed_after
    }

    /// Epochs already complete: 0 for a new run.
    pub fn done_epochs(&self) -> usize {
        self.resumed_after.unwrap_or(0)
    }

    /// The folder of burn-train's checkpoints.
    pub fn checkpoints(&self) -> PathBuf {
        self.path.join("checkpoint")
    }

    /// `metrics.jsonl`, one line per epoch.
    pub fn metrics_file(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }

    /// The epochs of `metrics.jsonl` up to the checkpoint the run resumes after; for a
    /// resumed run, later lines (an interrupted epoch's) are dropped from the file.
    ///
    /// # Errors
    ///
    /// [`TrainError::Resume`] naming the line that is not an epoch record, [`TrainError::Io`]
    /// when the file cannot be rewritten.
    pub fn history(&self) -> Result<Vec<EpochRecord>, TrainError> {
        let path = self.metrics_file();
        let last_epoch = self.done_epochs();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut records = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let record: EpochRecord =
                serde_json::from_str(line).map_err(|e| TrainError::Resume {
                    dir: path.clone(),
                    message: format!("line {}: {e}", i + 1),
                })?;
            if record.epoch <= last_epoch {
                records.push(record);
            }
        }
        if self.resumed_after.is_some() {
            let lines: String = records
                .iter()
                .map(|r| serde_json::to_string(r).expect("serialisable") + "\n")
                .collect();
            write_bytes(&path, lines.as_bytes()).map_err(|e| TrainError::io(&path, e))?;
        }
        Ok(records)
    }
}
