//! `report.json`: what a run did and what it reached, with the protocol of the final numbers.

use harden_adversarial::EvalReport;
use serde::{Deserialize, Serialize};

use crate::TrainConfig;
use crate::recorder::EpochRecord;

/// The burn version harden is built against (pinned in the workspace `Cargo.toml`).
pub const BURN_VERSION: &str = "0.22.1";

/// The final evaluation of a run on the test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalEvaluation {
    /// Which weights: `best (epoch N)` or `final (epoch N)`.
    pub weights: String,
    /// The attack protocol, in words.
    pub protocol: String,
    /// Test samples evaluated (the first ones of the test split).
    pub samples: usize,
    /// Clean accuracy.
    pub clean_accuracy: f64,
    /// Robust accuracy under `protocol` (an upper bound; `harden eval --suite standard` is the
    /// reference protocol).
    pub robust_accuracy: f64,
    /// The full evaluation report, with its sanity flags.
    pub details: EvalReport,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

/// Everything `report.json` holds; `E` is the final evaluation: [`FinalEvaluation`] for
/// images and tables, [`TextEvaluation`](crate::text::TextEvaluation) for text
/// ([`TextReport`](crate::TextReport)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "E: Serialize",
    deserialize = "E: serde::de::DeserializeOwned"
))]
pub struct TrainReport<E = FinalEvaluation> {
    /// harden's version.
    pub harden_version: String,
    /// burn's version.
    pub burn_version: String,
    /// The resolved configuration.
    pub config: TrainConfig,
    /// The devices trained on, described.
    pub devices: Vec<String>,
    /// CPU threads available to the tensor backend (rayon's pool size).
    pub threads: usize,
    /// Parameters of the trained model: all of them, and those trained (the adapters of a
    /// LoRA run; every weight otherwise).
    #[serde(default)]
    pub parameters: harden_model::ParamCount,
    /// Training samples (after holding out validation).
    pub train_samples: usize,
    /// Validation samples (held out of the training split).
    pub valid_samples: usize,
    /// Epochs completed.
    pub epochs_completed: usize,
    /// The epoch this run resumed after, if it was resumed.
    pub resumed_after: Option<usize>,
    /// Why the run stopped before `epochs`, if it did.
    pub stopped_early: Option<String>,
    /// The epoch whose weights are `best.*`: the best validation robust accuracy, or clean
    /// accuracy for clean training and text runs.
    pub best_epoch: Option<usize>,
    /// Every epoch's metrics (as in `metrics.jsonl`).
    pub epochs: Vec<EpochRecord>,
    /// Training wall time summed over the epochs, in seconds.
    pub train_seconds: f64,
    /// The final evaluation.
    pub evaluation: E,
}
