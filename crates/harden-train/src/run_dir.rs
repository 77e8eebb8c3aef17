//! The run directory: created for a new run, reopened for a resumed one, and every file in it
//! written atomically.

use std::path::{Path, PathBuf};

use harden_data::atomic::{remove_temporaries, write_bytes};

use harden_data::source::Fingerprint;

use crate::checkpoint::complete_epochs;
use crate::recorder::EpochRecord;
use crate::{TrainConfig, TrainError};

/// The directory of one run (see the [crate docs](crate) for its files).
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    /// The epoch of the checkpoint the run resumes after (`None` for a new run).
    resumed_after: Option<usize>,
    /// The records of the epochs already done, with their `metrics.jsonl` lines as written.
    done: Vec<Recorded>,
    /// Whether `metrics.jsonl` holds exactly the lines of `done` (nothing to repair).
    metrics_exact: bool,
    /// Whether [`create`](Self::create) made the folder itself (it did not exist before).
    made: bool,
}

/// The file of a run directory that records the dataset file it was trained on
/// ([`Fingerprint`]), for `csv:` and `tsv:` datasets.
pub const DATASET: &str = "dataset.json";

/// Checks that the dataset file the run in `dir` was trained on still holds what it held
/// then (a run without `dataset.json`, of an embedded or folder dataset, passes). Everything
/// that reads a run's data again (evaluation, attacks, `predict --test-split`, resuming)
/// calls this first.
///
/// # Errors
///
/// [`TrainError::Data`] naming the file when it changed or cannot be read,
/// [`TrainError::NotARun`] when `dataset.json` is unreadable.
pub fn check_dataset(dir: &Path) -> Result<(), TrainError> {
    let path = dir.join(DATASET);
    if !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    let recorded: Fingerprint = serde_json::from_str(&text).map_err(|e| TrainError::NotARun {
        dir: dir.to_path_buf(),
        message: format!("{}: {e}", path.display()),
    })?;
    Ok(recorded.verify(dir)?)
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
/// [`TrainError::NotARun`] when the file is missing or not a configuration.
pub fn run_config(dir: &Path) -> Result<TrainConfig, TrainError> {
    let path = dir.join("config.json");
    let not_a_run = |message: String| TrainError::NotARun {
        dir: dir.to_path_buf(),
        message: format!("{}: {message}", path.display()),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| not_a_run(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| not_a_run(e.to_string()))
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

/// An epoch's record with its `metrics.jsonl` line as written.
type Recorded = (EpochRecord, String);

/// The epoch records of `metrics.jsonl` (the file `path` of the run in `dir`) with their
/// lines as written, in order, and the file's bytes. A last line without its newline that
/// does not parse is a write the kill cut short: dropped.
///
/// # Errors
///
/// [`TrainError::Resume`] naming the first line that is not UTF-8 or not an epoch record,
/// or whose epoch does not follow the one before; [`TrainError::Io`] for an unreadable
/// file.
fn read_metrics(dir: &Path, path: &Path) -> Result<(Vec<Recorded>, Vec<u8>), TrainError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(TrainError::io(path, e)),
    };
    let bad_line = |number: usize, what: String| TrainError::Resume {
        dir: dir.to_path_buf(),
        message: format!(
            "{} line {number}: {what}; fix or remove the line, nothing was changed",
            path.display()
        ),
    };
    let complete = bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut records = Vec::with_capacity(lines.len());
    for (i, raw) in lines.iter().enumerate() {
        let torn = i + 1 == lines.len() && !complete;
        let parsed = std::str::from_utf8(raw)
            .map_err(|e| format!("not UTF-8 text ({e})"))
            .and_then(|text| {
                serde_json::from_str::<EpochRecord>(text)
                    .map(|r| (r, text.to_string()))
                    .map_err(|e| format!("not an epoch record ({e})"))
            });
        match parsed {
            Ok((record, text)) => {
                if record.epoch != records.len() + 1 {
                    return Err(bad_line(
                        i + 1,
                        format!(
                            "epoch {} where {} was expected",
                            record.epoch,
                            records.len() + 1
                        ),
                    ));
                }
                records.push((record, text));
            }
            Err(_) if torn => break,
            Err(what) => return Err(bad_line(i + 1, what)),
        }
    }
    Ok((records, bytes))
}

/// The lines of `records` as `metrics.jsonl` holds them.
fn lines_of(records: &[Recorded]) -> String {
    records
        .iter()
        .map(|(_, line)| format!("{line}\n"))
        .collect()
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
        let made = !path.exists();
        std::fs::create_dir_all(path).map_err(|e| TrainError::io(path, e))?;
        let dir = Self {
            path: path.to_path_buf(),
            resumed_after: None,
            done: Vec::new(),
            metrics_exact: true,
            made,
        };
        let written = write_json(&path.join("config.json"), config).and_then(|()| {
            match config.dataset.fingerprint()? {
                Some(f) => write_json(&path.join(DATASET), &f),
                None => Ok(()),
            }
        });
        if let Err(e) = written {
            dir.abandon();
            return Err(e);
        }
        Ok(dir)
    }

    /// Reopens the run at `path` where a kill at any instant can have left it, repairing what
    /// it can: leftover temporary files are removed, a torn last line of `metrics.jsonl` is
    /// dropped, and the run resumes after the newest complete checkpoint whose epoch has its
    /// metrics line (burn-train writes an epoch's checkpoint before its metrics line), or from
    /// the start when no epoch was recorded yet.
    ///
    /// # Errors
    ///
    /// [`TrainError::Resume`] when `config.json` is missing or `metrics.jsonl` holds a line
    /// that is not an epoch record (its number named; nothing is rewritten then), or
    /// [`TrainError::Io`] when the directory cannot be read or repaired.
    pub fn resume(path: &Path) -> Result<Self, TrainError> {
        if !path.join("config.json").is_file() {
            return Err(TrainError::Resume {
                dir: path.to_path_buf(),
                message: "no config.json: not a run directory".to_string(),
            });
        }
        check_dataset(path)?;
        for folder in [path.to_path_buf(), path.join("checkpoint")] {
            if folder.is_dir() {
                remove_temporaries(&folder).map_err(|e| TrainError::io(&folder, e))?;
            }
        }
        let (recorded, bytes) = read_metrics(path, &path.join("metrics.jsonl"))?;
        let last_recorded = recorded.last().map_or(0, |(r, _)| r.epoch);
        let resume_at = complete_epochs(&path.join("checkpoint"))
            .into_iter()
            .filter(|&e| e <= last_recorded)
            .max()
            .unwrap_or(0);
        let done: Vec<Recorded> = recorded
            .into_iter()
            .filter(|(r, _)| r.epoch <= resume_at)
            .collect();
        let metrics_exact = lines_of(&done).as_bytes() == bytes.as_slice();
        Ok(Self {
            path: path.to_path_buf(),
            resumed_after: Some(resume_at),
            done,
            metrics_exact,
            made: false,
        })
    }

    /// Removes what a new run wrote when it failed before its first epoch's checkpoint was
    /// complete, so that `--out` can be used again: the folder if [`create`](Self::create) made
    /// it, else the files in it. A resumed run, or one with a complete epoch (which `--resume`
    /// continues), is left as it is.
    pub fn abandon(&self) {
        if self.resumed_after.is_some() || !complete_epochs(&self.checkpoints()).is_empty() {
            return;
        }
        if self.made {
            let _ = std::fs::remove_dir_all(&self.path);
        } else if let Ok(entries) = std::fs::read_dir(&self.path) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
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

    /// The epochs of `metrics.jsonl` up to the checkpoint the run resumes after, as
    /// [`resume`](Self::resume) read them; for a resumed run, later lines (those of epochs the
    /// run repeats, or a torn one) are dropped from the file, and the lines kept stay byte for
    /// byte as they were written.
    ///
    /// # Errors
    ///
    /// [`TrainError::Io`] when the file cannot be rewritten.
    pub fn history(&self) -> Result<Vec<EpochRecord>, TrainError> {
        if !self.metrics_exact {
            let path = self.metrics_file();
            write_bytes(&path, lines_of(&self.done).as_bytes())
                .map_err(|e| TrainError::io(&path, e))?;
        }
        Ok(self.done.iter().map(|(r, _)| r.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(epoch: usize) -> String {
        // A value whose shortest round trip differs from a re-serialisation's last digit.
        format!(
            "{{\"epoch\":{epoch},\"train_loss\":0.10104529616724739,\"train_accuracy\":0.5,\"valid_loss\":0.5,\"valid_accuracy\":0.5,\"valid_robust_accuracy\":0.25,\"lr\":0.001,\"eps\":0.1,\"seconds\":1.0,\"samples_per_second\":100.0}}"
        )
    }

    fn run_dir(metrics: &[u8], checkpoints: &[usize]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let config = TrainConfig::default();
        write_json(&dir.path().join("config.json"), &config).unwrap();
        std::fs::write(dir.path().join("metrics.jsonl"), metrics).unwrap();
        let folder = dir.path().join("checkpoint");
        std::fs::create_dir_all(&folder).unwrap();
        for epoch in checkpoints {
            for name in ["model", "optim", "scheduler"] {
                std::fs::write(folder.join(format!("{name}-{epoch}.bpk")), b"x").unwrap();
            }
        }
        dir
    }

    #[test]
    fn resume_repairs_what_a_kill_leaves_and_keeps_lines_as_written() {
        // Killed after checkpoint 3 was written, before its metrics line, with a temporary
        // file of the next write left behind.
        let metrics = format!("{}\n{}\n", line(1), line(2));
        let dir = run_dir(metrics.as_bytes(), &[2, 3]);
        let tmp = dir.path().join(".report.json.tmp-4242");
        std::fs::write(&tmp, b"half").unwrap();
        let resumed = RunDir::resume(dir.path()).unwrap();
        assert_eq!(resumed.resumed_after(), Some(2));
        assert!(!tmp.exists(), "temporary file removed");
        let history = resumed.history().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            std::fs::read_to_string(resumed.metrics_file()).unwrap(),
            metrics,
            "lines kept byte for byte"
        );

        // A torn last line is dropped; the checkpoint of its epoch is then not used.
        let torn = format!("{}\n{}\n{}", line(1), line(2), &line(3)[..40]);
        let dir = run_dir(torn.as_bytes(), &[2, 3]);
        let resumed = RunDir::resume(dir.path()).unwrap();
        assert_eq!(resumed.resumed_after(), Some(2));
        resumed.history().unwrap();
        let kept = std::fs::read_to_string(resumed.metrics_file()).unwrap();
        assert_eq!(kept, format!("{}\n{}\n", line(1), line(2)));

        // Killed during the first epoch's checkpoint: the run starts again from nothing.
        let dir = run_dir(b"", &[1]);
        let resumed = RunDir::resume(dir.path()).unwrap();
        assert_eq!(resumed.resumed_after(), Some(0));
        assert!(resumed.history().unwrap().is_empty());
    }

    proptest::proptest! {
        /// Whatever floats an epoch recorded, the history a resumed run reads back holds the
        /// same values, so `report.json` (written from the history) repeats `metrics.jsonl`
        /// digit for digit. Without serde_json's exact float parsing (`float_roundtrip`),
        /// about one value in nine came back a unit in the last place away
        /// (1.6581637263298035 -> ...037).
        #[test]
        fn resumed_histories_hold_the_floats_as_written(
            values in proptest::collection::vec(proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO, 9),
        ) {
            let record = EpochRecord {
                epoch: 1,
                train_loss: values[0],
                train_accuracy: values[1],
                valid_loss: values[2],
                valid_accuracy: values[3],
                valid_robust_accuracy: values[4],
                lr: values[5],
                eps: values[6],
                seconds: values[7],
                samples_per_second: values[8],
            };
            let written = serde_json::to_string(&record).unwrap();
            let dir = run_dir(format!("{written}\n").as_bytes(), &[1]);
            let history = RunDir::resume(dir.path()).unwrap().history().unwrap();
            proptest::prop_assert_eq!(serde_json::to_string(&history[0]).unwrap(), written);
        }
    }

    #[test]
    fn a_damaged_metrics_line_is_refused_with_its_number_and_nothing_is_rewritten() {
        let mut bytes = format!("{}\n", line(1)).into_bytes();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        bytes.extend_from_slice(format!("{}\n", line(3)).as_bytes());
        let dir = run_dir(&bytes, &[1, 3]);
        let err = RunDir::resume(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("metrics.jsonl line 2") && err.contains("UTF-8"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(dir.path().join("metrics.jsonl")).unwrap(),
            bytes
        );

        let skipped = format!("{}\n{}\n", line(1), line(3));
        let dir = run_dir(skipped.as_bytes(), &[1, 3]);
        let err = RunDir::resume(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("epoch 3"), "{err}");
        // A folder that is not a run directory at all.
        let empty = tempfile::tempdir().unwrap();
        let err = RunDir::resume(empty.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
    }
}
