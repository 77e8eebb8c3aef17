//! What happens at the end of each epoch: [`EpochRecorder`] appends the epoch's line to
//! `metrics.jsonl`, hands it to a callback, and adds it to the [`RunHistory`], which tracks
//! the best epoch and decides whether the catastrophic-overfitting guard stops the run.
//! burn-train's only per-epoch hook is its `EarlyStoppingStrategy`, so the recorder is one.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::train::EarlyStoppingStrategy;
use burn::train::metric::store::{Aggregate, EventStoreClient, Split};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Written;
use crate::metric::ROBUST_ACCURACY;

/// One epoch's line of `metrics.jsonl`. Accuracies are fractions in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Mean training loss (the objective's).
    pub train_loss: f64,
    /// Accuracy on the inputs trained on (adversarial for PGD and FGSM-RS).
    pub train_accuracy: f64,
    /// Mean clean validation loss.
    pub valid_loss: f64,
    /// Clean validation accuracy.
    pub valid_accuracy: f64,
    /// Validation accuracy under PGD at full eps.
    pub valid_robust_accuracy: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Training eps at the epoch's end.
    pub eps: f64,
    /// Wall time of the epoch (training and validation), in seconds.
    pub seconds: f64,
    /// Training samples per second (training and validation time included).
    pub samples_per_second: f64,
}

/// The epochs of a run so far, its best epoch and whether the guard stopped it; shared
/// between the recorder and the trainer.
#[derive(Debug, Clone)]
pub struct RunHistory {
    /// Every epoch's record, in order.
    pub epochs: Vec<EpochRecord>,
    /// The epoch with the highest validation robust accuracy (ties: the earliest).
    pub best_epoch: Option<usize>,
    /// Why the guard stopped the run, if it did.
    pub collapse: Option<String>,
    /// Rank epochs by clean rather than robust validation accuracy.
    pub by_clean: bool,
    /// Watch for a collapse of robust accuracy (not for clean training, where robust accuracy
    /// is expected to fall).
    pub guard: bool,
}

impl Default for RunHistory {
    /// An empty history ranking epochs by robust accuracy, guarded.
    fn default() -> Self {
        Self::new(false)
    }
}

impl RunHistory {
    /// A history ranking epochs by clean accuracy (`by_clean`) or robust accuracy; the guard
    /// watches robust accuracy unless epochs are ranked by clean accuracy.
    pub fn new(by_clean: bool) -> Self {
        Self {
            epochs: Vec::new(),
            best_epoch: None,
            collapse: None,
            by_clean,
            guard: !by_clean,
        }
    }

    /// The same history with the guard on or off.
    pub fn with_guard(mut self, guard: bool) -> Self {
        self.guard = guard;
        self
    }

    /// The first epoch of the highest validation robust accuracy: what the guard measures a
    /// fall from.
    fn most_robust(&self) -> Option<&EpochRecord> {
        self.epochs
            .iter()
            .fold(None, |best: Option<&EpochRecord>, r| match best {
                Some(b) if b.valid_robust_accuracy >= r.valid_robust_accuracy => Some(b),
                _ => Some(r),
            })
    }

    fn score(&self, record: &EpochRecord) -> f64 {
        if self.by_clean {
            record.valid_accuracy
        } else {
            record.valid_robust_accuracy
        }
    }

    /// The record of the best epoch.
    pub fn best(&self) -> Option<&EpochRecord> {
        let best = self.best_epoch?;
        self.epochs.iter().find(|r| r.epoch == best)
    }

    /// Adds `record`, updates the best epoch, and returns the collapse message when the
    /// validation robust accuracy has been more than `drop` below its best, with clean
    /// accuracy holding or rising, for `patience` epochs in a row (this one included).
    ///
    /// Waiting `patience` epochs lets a transient dip pass: fast adversarial training on MNIST
    /// can lose 37 points of robust accuracy over two epochs and regain them in the next. The
    /// best checkpoint is kept either way, so waiting costs only the extra epochs.
    pub fn push(&mut self, record: EpochRecord, drop: f64, patience: usize) -> Option<String> {
        let best_epoch = if self
            .best()
            .is_none_or(|b| self.score(&record) > self.score(b))
        {
            Some(record.epoch)
        } else {
            self.best_epoch
        };
        let guarded = if self.guard { self.most_robust() } else { None };
        let collapse = guarded.and_then(|best| {
            let collapsed = |r: &EpochRecord| {
                best.valid_robust_accuracy - r.valid_robust_accuracy > drop
                    && r.valid_accuracy + 0.005 >= best.valid_accuracy
            };
            if !collapsed(&record) {
                return None;
            }
            let streak = 1 + self
                .epochs
                .iter()
                .rev()
                .take_while(|r| collapsed(r))
                .count();
            (streak >= patience.max(1)).then(|| {
                format!(
                    "catastrophic overfitting at epoch {}: validation robust accuracy fell from {:.2}% (epoch {}) to {:.2}% and stayed more than {:.0} points below it for {streak} epoch(s), while clean accuracy went from {:.2}% to {:.2}%; stopped early, the best checkpoint is epoch {}",
                    record.epoch,
                    100.0 * best.valid_robust_accuracy,
                    best.epoch,
                    100.0 * record.valid_robust_accuracy,
                    100.0 * drop,
                    100.0 * best.valid_accuracy,
                    100.0 * record.valid_accuracy,
                    best_epoch.unwrap_or(best.epoch)
                )
            })
        });
        self.best_epoch = best_epoch;
        self.epochs.push(record);
        if collapse.is_some() {
            self.collapse = collapse.clone();
        }
        collapse
    }
}

/// Computes the learning rate and eps at the end of an epoch.
pub type EpochSchedule = Arc<dyn Fn(usize) -> (f64, f64) + Send + Sync>;
/// Called with each epoch's record (for printing).
pub type EpochCallback = Arc<dyn Fn(&EpochRecord) + Send + Sync>;

/// Records each epoch (metrics line, callback, history) and stops the run when the history
/// reports a collapse; burn-train's `EarlyStoppingStrategy` of a harden run.
#[derive(Clone)]
pub struct EpochRecorder {
    /// Shared with the trainer.
    pub history: Arc<Mutex<RunHistory>>,
    metrics_file: PathBuf,
    collapse_drop: f64,
    collapse_patience: usize,
    train_samples: usize,
    schedule: EpochSchedule,
    on_epoch: EpochCallback,
    last: Arc<Mutex<Instant>>,
    /// The error that stopped the run when an epoch's line could not be appended.
    failure: Arc<Mutex<Option<std::io::Error>>>,
    /// The checkpoint records each epoch must have written before its line is appended.
    checkpoints: Option<(Written, usize)>,
    /// Held while an epoch is recorded: under distributed training every worker asks, and
    /// the first one records.
    turn: Arc<Mutex<()>>,
}

impl EpochRecorder {
    /// A recorder appending to `metrics_file`, continuing from `history` (empty for a new run);
    /// `collapse_drop` and `collapse_patience` set the guard (see [`RunHistory::push`]).
    pub fn new(
        history: RunHistory,
        metrics_file: PathBuf,
        collapse_drop: f64,
        collapse_patience: usize,
        train_samples: usize,
        schedule: EpochSchedule,
        on_epoch: EpochCallback,
    ) -> Self {
        Self {
            history: Arc::new(Mutex::new(history)),
            metrics_file,
            collapse_drop,
            collapse_patience,
            train_samples,
            schedule,
            on_epoch,
            last: Arc::new(Mutex::new(Instant::now())),
            failure: Arc::new(Mutex::new(None)),
            checkpoints: None,
            turn: Arc::new(Mutex::new(())),
        }
    }

    /// The same recorder, appending an epoch's line only once `records` checkpoint records of
    /// that epoch are counted in `written` (see [`Written`]).
    pub fn after_checkpoints(mut self, written: Written, records: usize) -> Self {
        self.checkpoints = Some((written, records));
        self
    }

    /// The I/O error that stopped the run because an epoch's line could not be appended to
    /// `metrics.jsonl` (a run whose history cannot be recorded must not go on), if one did.
    pub fn failure(&self) -> Option<std::io::Error> {
        self.failure.lock().expect("failure lock").take()
    }

    /// Appends `line` and its newline to `metrics.jsonl`.
    fn append(&self, line: &str) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.metrics_file)?;
        writeln!(file, "{line}")?;
        file.sync_data()
    }

    /// Restarts the epoch clock (call when training starts).
    pub fn start_clock(&self) {
        *self.last.lock().expect("clock lock") = Instant::now();
    }

    fn record(&self, epoch: usize, store: &EventStoreClient) -> EpochRecord {
        let metric = |name: &str, split: Split| {
            store
                .find_metric(name, epoch, Aggregate::Mean, &split)
                .unwrap_or(f64::NAN)
        };
        let seconds = {
            let mut last = self.last.lock().expect("clock lock");
            let s = last.elapsed().as_secs_f64();
            *last = Instant::now();
            s
        };
        let (lr, eps) = (self.schedule)(epoch);
        EpochRecord {
            epoch,
            train_loss: metric("Loss", Split::Train),
            train_accuracy: metric("Accuracy", Split::Train) / 100.0,
            valid_loss: metric("Loss", Split::Valid),
            valid_accuracy: metric("Accuracy", Split::Valid) / 100.0,
            valid_robust_accuracy: metric(ROBUST_ACCURACY, Split::Valid) / 100.0,
            lr,
            eps,
            seconds,
            samples_per_second: self.train_samples as f64 / seconds.max(1e-9),
        }
    }
}

impl EarlyStoppingStrategy for EpochRecorder {
    fn should_stop(&mut self, epoch: usize, store: &EventStoreClient) -> bool {
        if let Some((written, records)) = &self.checkpoints {
            written.wait(epoch, *records);
        }
        let _turn = self.turn.lock().expect("turn lock");
        {
            let history = self.history.lock().expect("history lock");
            if history.epochs.last().is_some_and(|r| r.epoch >= epoch) {
                return history.collapse.is_some();
            }
        }
        let record = self.record(epoch, store);
        let line = serde_json::to_string(&record).expect("records serialise");
        if let Err(err) = self.append(&line) {
            *self.failure.lock().expect("failure lock") = Some(err);
            return true;
        }
        harden_data::crash::point("after-metrics", epoch);
        (self.on_epoch)(&record);
        let collapse = self.history.lock().expect("history lock").push(
            record,
            self.collapse_drop,
            self.collapse_patience,
        );
        collapse.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, clean: f64, robust: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.0,
            train_accuracy: 0.0,
            valid_loss: 0.0,
            valid_accuracy: clean,
            valid_robust_accuracy: robust,
            lr: 0.0,
            eps: 0.0,
            seconds: 1.0,
            samples_per_second: 1.0,
        }
    }

    #[test]
    fn collapse_needs_a_robust_drop_with_clean_accuracy_holding() {
        let mut s = RunHistory::default();
        assert!(s.push(record(1, 0.90, 0.40), 0.2, 1).is_none());
        assert!(s.push(record(2, 0.95, 0.60), 0.2, 1).is_none());
        // Robust falls 15 points: within the threshold.
        assert!(s.push(record(3, 0.96, 0.45), 0.2, 1).is_none());
        // Robust and clean both fall: divergence, not overfitting.
        assert!(s.push(record(4, 0.50, 0.10), 0.2, 1).is_none());
        assert_eq!(s.best_epoch, Some(2));
        let msg = s.push(record(5, 0.98, 0.02), 0.2, 1).unwrap();
        assert!(
            msg.contains("epoch 5") && msg.contains("best checkpoint is epoch 2"),
            "{msg}"
        );
        assert_eq!(s.best().unwrap().epoch, 2);

        // Clean training ranks by clean accuracy and has no collapse.
        let mut c = RunHistory::new(true);
        assert!(c.push(record(1, 0.90, 0.40), 0.2, 1).is_none());
        assert!(c.push(record(2, 0.98, 0.01), 0.2, 1).is_none());
        assert_eq!(c.best_epoch, Some(2));

        // Text runs rank by clean accuracy and are still guarded: the fall is measured from
        // the most robust epoch, and the message names the best checkpoint by clean accuracy.
        let mut t = RunHistory::new(true).with_guard(true);
        assert!(t.push(record(1, 0.80, 0.50), 0.2, 1).is_none());
        assert!(t.push(record(2, 0.85, 0.45), 0.2, 1).is_none());
        let msg = t.push(record(3, 0.86, 0.10), 0.2, 1).unwrap();
        assert!(
            msg.contains("fell from 50.00% (epoch 1)")
                && msg.contains("best checkpoint is epoch 3"),
            "{msg}"
        );
        assert_eq!(t.best_epoch, Some(3));
    }

    /// Seed 5 of fast adversarial training on MNIST (validation clean / PGD-10 accuracy of
    /// epochs 3-6): a dip that a patience of 2 rides out.
    #[test]
    fn patience_lets_a_transient_dip_pass_and_still_stops_a_lasting_collapse() {
        let dip = [(3, 0.946, 0.587), (4, 0.947, 0.448), (5, 0.962, 0.214)];
        let mut s = RunHistory::default();
        for (epoch, clean, robust) in dip {
            assert!(s.push(record(epoch, clean, robust), 0.2, 2).is_none());
        }
        assert!(s.push(record(6, 0.967, 0.804), 0.2, 2).is_none());
        assert_eq!(s.best_epoch, Some(6));
        // The same dip with a patience of 1 stops at epoch 5.
        let mut eager = RunHistory::default();
        let stops: Vec<bool> = dip
            .iter()
            .map(|&(e, c, r)| eager.push(record(e, c, r), 0.2, 1).is_some())
            .collect();
        assert_eq!(stops, [false, false, true]);
        // A collapse that lasts stops at its second epoch; an epoch in between that is
        // within the threshold resets the count.
        assert!(s.push(record(7, 0.970, 0.10), 0.2, 2).is_none());
        assert!(s.push(record(8, 0.970, 0.70), 0.2, 2).is_none());
        assert!(s.push(record(9, 0.975, 0.05), 0.2, 2).is_none());
        let msg = s.push(record(10, 0.980, 0.02), 0.2, 2).unwrap();
        assert!(
            msg.contains("epoch 10") && msg.contains("for 2 epoch(s)"),
            "{msg}"
        );
        assert_eq!(s.best().unwrap().epoch, 6);
    }
}
