//! Adversarial training for harden, on burn-train's `Learner`.
//!
//! [`TrainConfig`] names everything a run needs (data, model, objective, optimizer, schedules,
//! validation and final evaluation); [`TrainConfig::check`] turns it into a [`Run`] with the
//! threat model, objective and validation attack built once; [`train`] runs it with a
//! built-in model and [`fit`] with any burn module that implements
//! [`Classifier`](harden_model::Classifier). Both leave a run directory:
//!
//! | file | content |
//! |---|---|
//! | `config.json` | the resolved configuration |
//! | `dataset.json` | for `csv:` and `tsv:` data, the file's size and SHA-256 ([`run_dir::check_dataset`]) |
//! | `metrics.jsonl` | one JSON line per epoch: losses, clean and robust validation accuracy, learning rate, eps, time |
//! | `checkpoint/` | burn-train checkpoints (model, optimizer, schedule), written atomically |
//! | `final.bpk`, `final.safetensors` | the weights after the last epoch |
//! | `best.bpk`, `best.safetensors` | the weights of the epoch with the best validation robust accuracy |
//! | `report.json` | configuration, device, versions, per-epoch times, final evaluation and its protocol |
//! | `tokenizer.json`, `model.json`, `words.json` | text runs: the tokenizer, the sized model, the word list of word recognition |
//!
//! The pieces, each readable alone: [`config`] (settings and their checks), [`run_dir`] (the
//! directory: create, resume, history), [`optimizer`] (Adam or SGD), [`learner`] (burn-train's
//! `SupervisedTraining` wired up and launched), [`finish`] (best weights, export, final
//! evaluation, report). On burn-train's extension points: [`loader::EpochLoader`] (a
//! `DataLoader` whose shuffle is a function of seed and epoch, so a resumed run sees the same
//! batches), [`step::Trainee`] (the adversarial `TrainStep` and the clean-plus-PGD
//! `InferenceStep`, for inputs of any layout), [`schedule::LrSchedule`] (an `LrScheduler`),
//! [`recorder::EpochRecorder`] (the `EarlyStoppingStrategy` that records each epoch and stops
//! on catastrophic overfitting), [`checkpoint::AtomicCheckpointer`] and
//! [`progress::ProgressRenderer`]. [`predict`] classifies new inputs with a trained model.

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod finish;
pub mod learner;
pub mod loader;
pub mod metric;
pub mod optimizer;
pub mod predict;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod run_dir;
pub mod saved;
pub mod schedule;
pub mod step;
pub mod text;
pub mod trainer;

pub use config::{OptimizerKind, Run, ScheduleKind, TrainConfig};
pub use error::TrainError;
pub use harden_adversarial::{Norm, ObjectiveKind};
pub use report::TrainReport;
pub use run_dir::{RunDir, default_run_dir, run_config};
pub use saved::{Frozen, SavedModel};
pub use text::{TextReport, TextSettings, train_text};
pub use trainer::{Output, RunData, RunOptions, fit, train};
