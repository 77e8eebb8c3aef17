//! Text classifiers over token ids: [`TextTransformer`] and the [`BagOfEmbeddings`] baseline.
//!
//! Both split their forward pass at the token embeddings ([`TextClassifier::embed`] then
//! [`TextClassifier::logits_embedded`]), so attacks and training objectives can perturb the
//! embeddings. Padding positions (`pad = true`) never influence the logits: the Transformer
//! masks them out of attention and both models pool over the real tokens only.

use burn::config::Config;
use burn::module::{Module, ModuleDisplay};
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::{MAX_PARAMS, ModelError};

/// A classifier of token sequences whose forward pass can start from token embeddings.
pub trait TextClassifier: Module + ModuleDisplay {
    /// The token embeddings of `ids`.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[N, L]` token ids below the vocabulary size.
    /// - output: `[N, L, E]`.
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3>;

    /// Logits from token embeddings (as [`embed`](Self::embed) returns them, possibly
    /// perturbed).
    ///
    /// # Shapes
    ///
    /// - `embeddings`: `[N, L, E]`.
    /// - `pad`: `[N, L]`, `true` at padding; every row has at least one real token.
    /// - output: `[N, K]`.
    ///
    /// # Panics
    ///
    /// The Transformer panics when `L` exceeds its maximum sequence length.
    fn logits_embedded(&self, embeddings: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<2>;

    /// The token embedding table `[V, E]` (for attacks that choose replacement tokens).
    fn embedding_table(&self) -> Tensor<2>;

    /// Logits of token ids: [`logits_embedded`](Self::logits_embedded) of
    /// [`embed`](Self::embed).
    fn logits_tokens(&self, ids: Tensor<2, Int>, pad: Tensor<2, Bool>) -> Tensor<2> {
        self.logits_embedded(self.embed(ids), pad)
    }

    /// burn parameter-name prefixes mapped to PyTorch's, as
    /// [`Classifier::pytorch_names`](crate::Classifier::pytorch_names).
    fn pytorch_names(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// The mean of `x` over the real tokens.
///
/// # Shapes
///
/// - `x`: `[N, L, E]`, `pad`: `[N, L]` (`true` at padding).
/// - output: `[N, E]`; a row with no real token is 0.
pub fn masked_mean(x: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<2> {
    let keep = pad.bool_not().float().unsqueeze_dim::<3>(2);
    let sum: Tensor<2> = (x * keep.clone()).sum_dim(1).squeeze_dim(1);
    let count: Tensor<2> = keep.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1.0);
    sum / count
}

/// A token or position embedding table of `rows` x `width` with BERT's initialisation,
/// N(0, 0.02): with burn's default N(0, 1) the embeddings dwarf what the encoder adds, small
/// corpora are memorised, and embedding-space radii mean different things for each model.
fn bert_embedding(rows: usize, width: usize, device: &Device) -> Embedding {
    EmbeddingConfig::new(rows, width)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        })
        .init(device)
}

fn check_sizes(
    model: &'static str,
    sizes: &[(&str, usize)],
    params: Option<usize>,
) -> Result<(), ModelError> {
    if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
        return Err(ModelError::invalid(
            model,
            format!("{name} must be at least 1"),
        ));
    }
    match params {
        Some(n) if n <= MAX_PARAMS => Ok(()),
        _ => Err(ModelError::invalid(
            model,
            format!(
                "the sizes make more than {MAX_PARAMS} (2^30) parameters, the most harden builds"
            ),
        )),
    }
}

/// Configuration of a [`TextTransformer`]: token and learned positional embeddings of
/// `width`, burn's post-norm `TransformerEncoder`, masked mean pooling, a linear head.
#[derive(Config, Debug, PartialEq)]
pub struct TextTransformerConfig {
    /// Vocabulary size (token ids `0..vocab_size`).
    pub vocab_size: usize,
    /// Longest sequence, in tokens.
    pub max_len: usize,
    /// Number of output logits.
    pub num_outputs: usize,
    /// Embedding and model width.
    #[config(default = 64)]
    pub width: usize,
    /// Encoder layers.
    #[config(default = 2)]
    pub layers: usize,
    /// Attention heads (dividing `width`).
    #[config(default = 4)]
    pub heads: usize,
    /// Feed-forward width.
    #[config(default = 128)]
    pub ff: usize,
    /// Dropout inside the encoder, in `[0, 1)`.
    #[config(default = 0.1)]
    pub dropout: f64,
}

impl TextTransformerConfig {
    /// Checks every size and the parameter count.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] naming the size that is 0, a `width` that `heads` does not
    /// divide, a dropout outside `[0, 1)`, or more than [`MAX_PARAMS`] parameters.
    pub fn check(&self) -> Result<(), ModelError> {
        let invalid = |message: String| ModelError::invalid("text-transformer", message);
        let per_layer = self
            .width
            .checked_mul(self.width)
            .and_then(|w2| w2.checked_mul(4))
            .and_then(|a| a.checked_add(self.width.checked_mul(self.ff)?.checked_mul(2)?));
        let params = self
            .vocab_size
            .checked_add(self.max_len)
            .and_then(|rows| rows.checked_mul(self.width))
            .and_then(|e| e.checked_add(per_layer?.checked_mul(self.layers)?))
            .and_then(|p| p.checked_add(self.width.checked_mul(self.num_outputs)?));
        check_sizes(
            "text-transformer",
            &[
                ("vocabulary size", self.vocab_size),
                ("maximum length", self.max_len),
                ("number of outputs", self.num_outputs),
                ("width", self.width),
                ("layers", self.layers),
                ("heads", self.heads),
                ("feed-forward width", self.ff),
            ],
            params,
        )?;
        if !self.width.is_multiple_of(self.heads) {
            return Err(invalid(format!(
                "{} heads do not divide the width {}",
                self.heads, self.width
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(invalid(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(())
    }

    /// Builds the model on `device`.
    ///
    /// # Panics
    ///
    /// Panics on a configuration that [`check`](Self::check) refuses.
    pub fn init(&self, device: &Device) -> TextTransformer {
        self.check()
            .expect("invalid text-transformer configuration");
        let embedding = |rows: usize| bert_embedding(rows, self.width, device);
        TextTransformer {
            tokens: embedding(self.vocab_size),
            positions: embedding(self.max_len),
            encoder: TransformerEncoderConfig::new(self.width, self.ff, self.heads, self.layers)
                .with_dropout(self.dropout)
                .init(device),
            head: LinearConfig::new(self.width, self.num_outputs).init(device),
        }
    }
}

/// A Transformer encoder classifier of token sequences; see [`TextTransformerConfig`].
#[derive(Module, Debug)]
pub struct TextTransformer {
    /// Token embeddings `[V, E]`.
    pub tokens: Embedding,
    /// Learned positional embeddings `[max_len, E]`.
    pub positions: Embedding,
    /// The encoder layers.
    pub encoder: TransformerEncoder,
    /// The classification head on the pooled tokens.
    pub head: Linear,
}

impl TextTransformer {
    /// Longest sequence the positional embeddings cover.
    pub fn max_len(&self) -> usize {
        self.positions.weight.dims()[0]
    }
}

impl TextClassifier for TextTransformer {
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.tokens.forward(ids)
    }

    fn logits_embedded(&self, embeddings: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<2> {
        let [_, len, _] = embeddings.dims();
        assert!(
            len <= self.max_len(),
            "sequence of {len} tokens, longer than the model's {}",
            self.max_len()
        );
        let device = embeddings.device();
        let positions = Tensor::<1, Int>::arange(0..len as i64, &device).unsqueeze::<2>();
        let x = embeddings + self.positions.forward(positions);
        let h = self
            .encoder
            .forward(TransformerEncoderInput::new(x).mask_pad(pad.clone()));
        self.head.forward(masked_mean(h, pad))
    }

    fn embedding_table(&self) -> Tensor<2> {
        self.tokens.weight.val()
    }
}

/// Configuration of a [`BagOfEmbeddings`]: the mean of the token embeddings, then a linear
/// layer. The baseline every text result is compared with.
#[derive(Config, Debug, PartialEq)]
pub struct BagOfEmbeddingsConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Number of output logits.
    pub num_outputs: usize,
    /// Embedding width.
    #[config(default = 64)]
    pub width: usize,
}

impl BagOfEmbeddingsConfig {
    /// Checks every size.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] naming a size that is 0, or too many parameters.
    pub fn check(&self) -> Result<(), ModelError> {
        let params = self
            .vocab_size
            .checked_add(self.num_outputs)
            .and_then(|r| r.checked_mul(self.width));
        check_sizes(
            "bag-of-embeddings",
            &[
                ("vocabulary size", self.vocab_size),
                ("number of outputs", self.num_outputs),
                ("width", self.width),
            ],
            params,
        )
    }

    /// Builds the model on `device`.
    ///
    /// # Panics
    ///
    /// Panics on a configuration that [`check`](Self::check) refuses.
    pub fn init(&self, device: &Device) -> BagOfEmbeddings {
        self.check()
            .expect("invalid bag-of-embeddings configuration");
        BagOfEmbeddings {
            tokens: bert_embedding(self.vocab_size, self.width, device),
            head: LinearConfig::new(self.width, self.num_outputs).init(device),
        }
    }
}

/// Mean of token embeddings and a linear head; see [`BagOfEmbeddingsConfig`].
#[derive(Module, Debug)]
pub struct BagOfEmbeddings {
    /// Token embeddings `[V, E]`.
    pub tokens: Embedding,
    /// The linear head.
    pub head: Linear,
}

impl TextClassifier for BagOfEmbeddings {
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.tokens.forward(ids)
    }

    fn logits_embedded(&self, embeddings: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<2> {
        self.head.forward(masked_mean(embeddings, pad))
    }

    fn embedding_table(&self) -> Tensor<2> {
        self.tokens.weight.val()
    }
}

/// The configuration of any built-in text model, sized for its vocabulary; serialised with a
/// `kind` tag.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TextModelConfig {
    /// A Transformer encoder.
    TextTransformer(TextTransformerConfig),
    /// The bag-of-embeddings baseline.
    BagOfEmbeddings(BagOfEmbeddingsConfig),
}

impl TextModelConfig {
    /// Vocabulary size: the token ids the model embeds are `0..vocab_size()`.
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::TextTransformer(c) => c.vocab_size,
            Self::BagOfEmbeddings(c) => c.vocab_size,
        }
    }

    /// Number of logits: the number of classes, or 1 for a binary task with one logit.
    pub fn num_outputs(&self) -> usize {
        match self {
            Self::TextTransformer(c) => c.num_outputs,
            Self::BagOfEmbeddings(c) => c.num_outputs,
        }
    }

    /// Checks the sizes.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] as the architecture's own `check`.
    pub fn check(&self) -> Result<(), ModelError> {
        match self {
            Self::TextTransformer(c) => c.check(),
            Self::BagOfEmbeddings(c) => c.check(),
        }
    }

    /// Builds the model on `device`.
    ///
    /// # Panics
    ///
    /// Panics on a configuration that [`check`](Self::check) refuses.
    pub fn init(&self, device: &Device) -> TextModel {
        match self {
            Self::TextTransformer(c) => TextModel::TextTransformer(c.init(device)),
            Self::BagOfEmbeddings(c) => TextModel::BagOfEmbeddings(c.init(device)),
        }
    }
}

/// Any built-in text model, chosen at run time.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum TextModel {
    /// A Transformer encoder.
    TextTransformer(TextTransformer),
    /// The bag-of-embeddings baseline.
    BagOfEmbeddings(BagOfEmbeddings),
}

impl TextClassifier for TextModel {
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        match self {
            Self::TextTransformer(m) => m.embed(ids),
            Self::BagOfEmbeddings(m) => m.embed(ids),
        }
    }

    fn logits_embedded(&self, embeddings: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<2> {
        match self {
            Self::TextTransformer(m) => m.logits_embedded(embeddings, pad),
            Self::BagOfEmbeddings(m) => m.logits_embedded(embeddings, pad),
        }
    }

    fn embedding_table(&self) -> Tensor<2> {
        match self {
            Self::TextTransformer(m) => m.embedding_table(),
            Self::BagOfEmbeddings(m) => m.embedding_table(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use harden_data::TokenBatch;

    fn logits_of<M: TextClassifier>(model: &M, seqs: &[Vec<u32>], device: &Device) -> Vec<f32> {
        let b = TokenBatch::new(seqs, device);
        model
            .logits_tokens(b.ids, b.pad)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
    }

    fn padding_never_matters<M: TextClassifier>(model: M, device: &Device) {
        let model = model.valid();
        let a = vec![5u32, 9, 13, 2];
        // Alone, beside a longer sequence (more padding), and with other tokens after it.
        let alone = logits_of(&model, std::slice::from_ref(&a), device);
        let padded = logits_of(&model, &[a.clone(), vec![3; 11]], device);
        for (x, y) in alone.iter().zip(&padded) {
            assert!((x - y).abs() < 1e-4, "{alone:?} vs {padded:?}");
        }
        // Garbage under the padding mask changes nothing.
        let mut ids = vec![a.iter().map(|&t| i64::from(t)).collect::<Vec<_>>(); 1];
        ids[0].extend([7, 7, 7]);
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids.concat(), [1, 7]), device);
        let pad = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![false, false, false, false, true, true, true], [1, 7]),
            device,
        );
        let garbage: Vec<f32> = model
            .logits_tokens(ids, pad)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        for (x, y) in alone.iter().zip(&garbage) {
            assert!((x - y).abs() < 1e-4, "{alone:?} vs {garbage:?}");
        }
    }

    #[test]
    fn padding_never_influences_the_logits() {
        let device = Device::flex();
        padding_never_matters(
            TextTransformerConfig::new(50, 16, 2)
                .with_width(16)
                .with_ff(32)
                .init(&device),
            &device,
        );
        padding_never_matters(BagOfEmbeddingsConfig::new(50, 2).init(&device), &device);
    }

    #[test]
    fn bad_sizes_are_refused_with_their_name() {
        let err = TextTransformerConfig::new(50, 16, 2)
            .with_heads(3)
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 heads do not divide the width 64"), "{err}");
        let err = TextTransformerConfig::new(0, 16, 2)
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("vocabulary size"), "{err}");
        let err = TextTransformerConfig::new(1 << 40, 16, 2)
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("parameters"), "{err}");
        assert!(
            BagOfEmbeddingsConfig::new(10, 2)
                .with_width(0)
                .check()
                .is_err()
        );
    }

    #[test]
    fn embedding_gradient_flows_through_a_leaf_perturbation() {
        let device = Device::flex().autodiff();
        let model = TextTransformerConfig::new(50, 16, 2)
            .with_width(16)
            .with_ff(32)
            .init(&device)
            .valid();
        let b = TokenBatch::new(&[vec![4, 5, 6], vec![7]], &device);
        let emb = model.embed(b.ids).detach();
        let delta = Tensor::<3>::zeros(emb.dims(), &device).require_grad();
        let loss = model.logits_embedded(emb + delta.clone(), b.pad).sum();
        let grad = delta.grad(&loss.backward()).expect("gradient");
        let g: Vec<f32> = grad
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        // Real tokens get a gradient, padding none.
        let row = |r: usize, t: usize| &g[(r * 3 + t) * 16..(r * 3 + t + 1) * 16];
        assert!(row(0, 0).iter().any(|v| v.abs() > 0.0));
        assert!(row(1, 0).iter().any(|v| v.abs() > 0.0));
        assert!(row(1, 1).iter().chain(row(1, 2)).all(|v| *v == 0.0));
    }
}
