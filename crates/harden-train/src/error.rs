//! Errors of a training run: one variant per kind of mistake, each keeping its source.

use std::path::PathBuf;
use std::sync::Arc;

use burn::train::TrainingError;
use burn::train::checkpoint::CheckpointerError;
use harden_adversarial::ParamError;
use harden_data::DataError;
use harden_model::ModelError;
use harden_model::device::DeviceError;

/// Everything that can stop a training run.
///
/// Messages name the key, file or directory at fault and end with the underlying error, which
/// is also kept as [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting is out of range (its key is [`ParamError::name`]).
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A configuration file could not be read or parsed.
    #[error("{path}: {message}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What was wrong (the parser's message, with line and key).
        message: String,
    },
    /// The run directory of a new run exists and holds files.
    #[error(
        "{} exists and is not empty: pass another --out, or --resume {} to continue it",
        dir.display(),
        dir.display()
    )]
    OutNotEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// A model the run reads (`init`, `teacher`, `surrogates`) cannot be used.
    #[error("{what} {}: {message}", path.display())]
    Saved {
        /// The key: `init`, `teacher` or `surrogates`.
        what: &'static str,
        /// The run directory or weights file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// No device was given.
    #[error("devices: no device given")]
    NoDevice,
    /// burn cannot train on these devices together.
    #[error(
        "devices: burn cannot run distributed data-parallel training on these devices ({reason}); use one device, or GPUs (cuda:0,cuda:1)"
    )]
    Distributed {
        /// What burn reported.
        reason: String,
    },
    /// The dataset is too small to hold out a validation split.
    #[error("dataset: {dataset} has too few samples ({samples}) to hold out a validation split")]
    TooFewSamples {
        /// The dataset's name.
        dataset: String,
        /// Its training samples.
        samples: usize,
    },
    /// A class has too few samples for the splits: training would never see it.
    #[error(
        "dataset: {dataset}: class {class} has {samples} sample(s) outside the test split; each class needs at least 2 so that training sees it (add samples of it or drop it)"
    )]
    ClassTooSmall {
        /// The dataset's name.
        dataset: String,
        /// The class index.
        class: u32,
        /// Its samples outside the test split.
        samples: usize,
    },
    /// The training samples hold fewer than two classes: nothing to classify.
    #[error(
        "dataset: {dataset} has samples of one class only; a classifier needs at least two (check the label column)"
    )]
    OneClass {
        /// The dataset's name.
        dataset: String,
    },
    /// The dataset could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The model could not be built, saved or loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A device could not be used.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A file of the run directory could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    #[error(
        "training diverged: the loss became {value} at epoch {epoch}, iteration {iteration}; {kept} (lower --lr or check the data)"
    )]
    Diverged {
        /// The non-finite loss value, as text.
        value: String,
        /// Epoch (1-based).
        epoch: usize,
        /// Iteration within the run (1-based).
        iteration: usize,
        /// Which checkpoint was kept.
        kept: String,
    },
    /// A folder given as a run directory is not one.
    #[error("{} is not a run directory of harden train ({message})", dir.display())]
    NotARun {
        /// The folder.
        dir: PathBuf,
        /// Why.
        message: String,
    },
    /// A run directory cannot be resumed as it is.
    #[error("cannot resume from {}: {message}", dir.display())]
    Resume {
        /// The directory.
        dir: PathBuf,
        /// Why.
        message: String,
    },
    /// A checkpoint of the run could not be read back.
    #[error("reading the epoch-{epoch} checkpoint in {}: {source}", dir.display())]
    Checkpoint {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The epoch.
        epoch: usize,
        /// burn-train's error.
        source: CheckpointerError,
    },
    /// burn-train stopped with an error.
    #[error("training failed: {0}")]
    Training(#[source] Arc<TrainingError>),
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
