//! A [`TextClassifier`] as the text attacks see it: through embeddings, or through texts.

use burn::tensor::{Bool, Device, Int, Tensor};
use harden_adversarial::text::{EmbeddingModel, TextOracle};
use harden_data::{TextTokenizer, TokenBatch};
use harden_model::TextClassifier;

/// A [`TextClassifier`] seen by the attacks of harden-adversarial.
pub struct Embedder<'a, M>(pub &'a M);

impl<M: TextClassifier> EmbeddingModel for Embedder<'_, M> {
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.0.embed(ids)
    }

    fn logits_embedded(&self, embeddings: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<2> {
        self.0.logits_embedded(embeddings, pad)
    }

    fn embedding_table(&self) -> Tensor<2> {
        self.0.embedding_table()
    }
}

/// A [`TextClassifier`] and its tokenizer seen from outside: texts in, logits out.
pub struct Oracle<'a, M> {
    /// The model (without autodiff, in evaluation mode).
    pub model: &'a M,
    /// The run's tokenizer.
    pub tokenizer: &'a TextTokenizer,
    /// Truncation length.
    pub max_len: usize,
    /// Where the model lives.
    pub device: Device,
}

impl<M: TextClassifier> TextOracle for Oracle<'_, M> {
    fn logits(&self, texts: &[String]) -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(64) {
            let seqs: Vec<Vec<u32>> = chunk
                .iter()
                .map(|t| self.tokenizer.encode(t, self.max_len))
                .collect();
            let b = TokenBatch::new(&seqs, &self.device);
            let logits = self.model.logits_tokens(b.ids, b.pad);
            let k = logits.dims()[1];
            let values: Vec<f32> = logits
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 logits");
            out.extend(values.chunks(k).map(<[f32]>::to_vec));
        }
        out
    }
}
