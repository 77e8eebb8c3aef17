//! Errors of a training run.

use std::path::PathBuf;

use harden_adversarial::ParamError;
use harden_data::DataError;
use harden_model::ModelError;
use harden_model::device::DeviceError;

/// Everything that can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value is out of range.
    #[error("{field}: {message}")]
    Config {
        /// The configuration key (the CLI flag without `--`).
        field: &'static str,
        /// What was wrong and what is expected.
        message: String,
    },
    /// A configuration file could not be read or parsed.
    #[error("{path}: {message}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The dataset could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The model could not be built, saved or loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An attack or objective hyperparameter is invalid.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A device could not be used.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A file of the run directory could not be written or read.
    #[error("{path}: {source}")]
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
    /// `--resume` pointed at something that is not a resumable run directory.
    #[error("cannot resume from {dir}: {message}")]
    Resume {
        /// The directory.
        dir: PathBuf,
        /// Why.
        message: String,
    },
    /// burn-train stopped with an error.
    #[error("training failed: {0}")]
    Training(String),
}

impl TrainError {
    /// A configuration error for `field`.
    pub fn config(field: &'static str, message: impl Into<String>) -> Self {
        Self::Config {
            field,
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
