//! Adversarial training for harden, on burn-train's `Learner`.
//!
//! [`TrainConfig`] names everything a run needs (data, model, objective, optimizer, schedules,
//! validation and final evaluation); [`train`] runs it and leaves a run directory:
//!
//! | file | content |
//! |---|---|
//! | `config.json` | the resolved configuration |
//! | `metrics.jsonl` | one JSON line per epoch: losses, clean and robust validation accuracy, learning rate, eps, time |
//! | `checkpoint/` | burn-train checkpoints (model, optimizer, schedule), written atomically |
//! | `final.bpk`, `final.safetensors` | the weights after the last epoch |
//! | `best.bpk`, `best.safetensors` | the weights of the epoch with the best validation robust accuracy |
//! | `report.json` | configuration, device, versions, per-epoch times, final evaluation and its protocol |
//!
//! The pieces, each on burn-train's extension points: [`loader::EpochLoader`] (a `DataLoader`
//! whose shuffle is a function of seed and epoch, so a resumed run sees the same batches),
//! [`step::Trainee`] (the adversarial `TrainStep` and the clean-plus-PGD `InferenceStep`),
//! [`schedule::LrSchedule`] (an `LrScheduler`), [`monitor::EpochMonitor`] (an
//! `EarlyStoppingStrategy` that writes the metrics and stops on catastrophic overfitting),
//! [`checkpoint::AtomicCheckpointer`] and [`progress::ProgressRenderer`].

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod loader;
pub mod metric;
pub mod monitor;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod step;
pub mod trainer;

pub use config::{ObjectiveKind, OptimizerKind, ScheduleKind, TrainConfig};
pub use error::TrainError;
pub use report::TrainReport;
pub use trainer::{Output, RunOptions, train};
