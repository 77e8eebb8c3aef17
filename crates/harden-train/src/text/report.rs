//! What a text run records: its epochs, its evaluation and its `report.json`.

use harden_adversarial::text::TextAttackSummary;
use serde::{Deserialize, Serialize};

use crate::TrainConfig;

/// One epoch of a text run, a line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextEpoch {
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy on the (possibly perturbed) inputs trained on.
    pub train_accuracy: f64,
    /// Clean validation accuracy.
    pub valid_accuracy: f64,
    /// Validation accuracy under the character attack (adversarial objectives only).
    pub valid_robust_accuracy: Option<f64>,
    /// Training seconds.
    pub seconds: f64,
    /// Training sentences per second.
    pub sentences_per_second: f64,
}

/// Robust accuracy under embedding PGD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRobustness {
    /// Per-token L2 radius.
    pub eps: f64,
    /// Steps.
    pub steps: usize,
    /// Accuracy when every iterate must be classified correctly.
    pub robust_accuracy: f64,
}

/// The evaluation of a text model on test texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextEvaluation {
    /// Texts evaluated (the first ones of the test split).
    pub samples: usize,
    /// Clean accuracy.
    pub clean_accuracy: f64,
    /// Embedding PGD at the run's `eps` (none when it is 0): the white-box upper bound of
    /// the embedding threat model, not a claim about text a user can type.
    pub embedding_pgd_white_box_bound: Option<EmbeddingRobustness>,
    /// The attacks on tokens and characters, in TextAttack's summary.
    pub attacks: Vec<TextAttackSummaryRecord>,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

/// [`TextAttackSummary`] with its budget, as stored in reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextAttackSummaryRecord {
    /// The attack: `deepwordbug` (characters) or `hotflip` (tokens).
    pub attack: String,
    /// The budget, in words.
    pub budget: String,
    /// Texts attacked.
    pub texts: usize,
    /// Clean accuracy.
    pub clean_accuracy: f64,
    /// Accuracy under the attack.
    pub accuracy_under_attack: f64,
    /// Successes over texts classified correctly.
    pub success_rate: f64,
    /// Mean share of words changed in successful attacks, percent.
    pub words_changed_percent: f64,
    /// Mean queries per attacked text.
    pub queries_per_text: f64,
}

impl TextAttackSummaryRecord {
    pub(crate) fn new(s: &TextAttackSummary, budget: String) -> Self {
        Self {
            attack: s.attack.clone(),
            budget,
            texts: s.texts,
            clean_accuracy: s.clean_accuracy,
            accuracy_under_attack: s.accuracy_under_attack,
            success_rate: s.success_rate,
            words_changed_percent: s.words_changed_percent,
            queries_per_text: s.queries_per_text,
        }
    }
}

/// Everything a text run's `report.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextReport {
    /// harden's version.
    pub harden_version: String,
    /// burn's version.
    pub burn_version: String,
    /// The configuration.
    pub config: TrainConfig,
    /// The device trained on.
    pub device: String,
    /// Tokens in the vocabulary learned.
    pub vocab_size: usize,
    /// Parameters of the model.
    pub parameters: usize,
    /// Parameters trained: all of them, or the adapters of a LoRA run.
    #[serde(default)]
    pub trainable_parameters: usize,
    /// Training texts.
    pub train_samples: usize,
    /// Validation texts.
    pub valid_samples: usize,
    /// The epoch with the best clean validation accuracy (its weights are `model.bpk`).
    pub best_epoch: usize,
    /// Every epoch.
    pub epochs: Vec<TextEpoch>,
    /// Training seconds over all epochs.
    pub train_seconds: f64,
    /// The final evaluation on the test split.
    pub evaluation: TextEvaluation,
}
