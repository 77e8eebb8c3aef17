use std::path::PathBuf;

/// Errors of model configuration and of saving and loading weights.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration that cannot build a working model.
    #[error("invalid {model} configuration: {message}")]
    InvalidConfig {
        /// The model kind.
        model: &'static str,
        /// What is wrong, and what was expected.
        message: String,
    },
    /// Writing a weights file failed.
    #[error("{path}: cannot save model: {source}")]
    Save {
        /// The file.
        path: PathBuf,
        /// What went wrong (burn-store's or the file system's error, kept as the source).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading a weights file failed (missing, unreadable, not the expected format).
    #[error("{path}: cannot load model: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The weights file does not fit the model's configuration.
    #[error("{path}: weights do not match the model configuration: {details}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Each tensor that is missing, unexpected or of the wrong shape.
        details: String,
    },
}

impl ModelError {
    /// [`ModelError::InvalidConfig`] of the model kind `model`, saying `message`.
    pub fn invalid(model: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidConfig {
            model,
            message: message.into(),
        }
    }
}
