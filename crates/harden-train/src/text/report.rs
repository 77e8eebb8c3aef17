//! What a text run records: its epochs, its evaluation and its `report.json`.

use harden_adversarial::text::TextAttackSummary;
use serde::{Deserialize, Serialize};

/// Robust accuracy under embedding PGD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRobustness {
    /// The norm of each token's ball.
    #[serde(default = "l2")]
    pub norm: harden_adversarial::Norm,
    /// Per-token radius.
    pub eps: f64,
    /// Steps.
    pub steps: usize,
    /// Random restarts; a text is robust only if it survives all.
    #[serde(default = "one")]
    pub restarts: usize,
    /// Accuracy when no point visited fools the model.
    pub robust_accuracy: f64,
}

fn l2() -> harden_adversarial::Norm {
    harden_adversarial::Norm::L2
}

fn one() -> usize {
    1
}

/// The evaluation of a text model on test texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextEvaluation {
    /// Which weights: `best (epoch N)` or `final (epoch N)`.
    #[serde(default)]
    pub weights: String,
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

/// Everything a text run's `report.json` holds: the report of every run, with the text
/// evaluation.
pub type TextReport = crate::TrainReport<TextEvaluation>;
