//! Text: attacks on token embeddings (the white-box bound), on tokens (HotFlip) and on the
//! characters a user types (DeepWordBug), and the embedding-space training objectives.
//!
//! A text model is seen two ways, neither tied to a tokenizer or an architecture:
//! - [`EmbeddingModel`]: token ids to embeddings, embeddings (with a padding mask) to logits,
//!   and the embedding table; for the gradient attacks and the training objectives.
//! - [`TextOracle`]: texts to logits, counting queries; for the black-box character attack,
//!   which re-tokenises every candidate.

pub mod char_edit;
pub mod embedding;
pub mod hotflip;
pub mod summary;

use burn::tensor::{Bool, Int, Tensor};

pub use char_edit::{CharAttack, CharEdit};
pub use embedding::{EmbeddingPgd, FreeLb, OneStepL2, freelb_loss, keep_mask};
pub use hotflip::HotFlip;
pub use summary::{TextAttackSummary, TextExample};

/// A text classifier whose forward pass starts from token embeddings.
///
/// For attacks pass the model without parameter gradients and in evaluation mode
/// (`model.valid()`).
pub trait EmbeddingModel {
    /// Token embeddings.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[N, L]`; output: `[N, L, E]`.
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3>;

    /// Logits from (possibly perturbed) token embeddings.
    ///
    /// # Shapes
    ///
    /// - `embeddings`: `[N, L, E]`; `pad`: `[N, L]`, `true` at padding; output: `[N, K]`.
    fn logits_embedded(&self, embeddings: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<2>;

    /// The token embedding table `[V, E]`.
    fn embedding_table(&self) -> Tensor<2>;
}

/// A text classifier seen from outside: logits of raw texts.
pub trait TextOracle {
    /// Logits of each text, `K` values per text (`K = 1` for one binary logit).
    fn logits(&self, texts: &[String]) -> Vec<Vec<f32>>;
}

/// The margin of the true class over the best other one (`z_y - max_{i != y} z_i`), or the
/// label-signed logit for one binary logit: positive when `logits` classify as `label`.
///
/// # Panics
///
/// Panics when `logits` is empty or `label` is out of range for two or more logits.
pub fn text_margin(logits: &[f32], label: u32) -> f32 {
    if logits.len() == 1 {
        return if label == 1 { logits[0] } else { -logits[0] };
    }
    let y = label as usize;
    let best_other = logits
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != y)
        .map(|(_, &z)| z)
        .fold(f32::NEG_INFINITY, f32::max);
    logits[y] - best_other
}
