//! Classifying new inputs with a trained model: each input's class, decided exactly as
//! evaluation decides it, and the class probabilities.
//!
//! The functions here take inputs already in the model's scale (tables scaled by the run's
//! scaler, images in `[0, 1]`) or raw texts, which go through the run's tokenizer (and word
//! recognition) with its truncation. Batches are formed in input order, `batch_size` at a time,
//! as evaluation forms them, so the same inputs give the same answers bit for bit.

use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use harden_adversarial::loss::predictions;
use harden_data::{Layout, TextTokenizer, TokenBatch};
use harden_model::{Model, TextClassifier};
use serde::Serialize;

/// One input's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The predicted class index.
    pub class: usize,
    /// The probability of each class, in class order; they sum to 1 (up to rounding).
    pub probabilities: Vec<f32>,
}

/// The answers for a batch of logits.
///
/// The class is `argmax` (or `logit > 0` for a binary model with one logit), as evaluation
/// decides it; the probabilities are the softmax of the logits (for one logit, `[1 - p, p]`
/// with `p` its sigmoid).
///
/// # Shapes
///
/// - `logits`: `[N, K]`; the output has `N` answers of `max(K, 2)` probabilities.
pub fn from_logits(logits: Tensor<2>) -> Vec<Prediction> {
    let [n, k] = logits.dims();
    let classes: Vec<i64> = predictions(logits.clone())
        .into_data()
        .convert::<i64>()
        .try_to_vec()
        .expect("integer predictions");
    let probabilities: Vec<f32> = if k == 1 {
        sigmoid(logits)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("float logits")
            .into_iter()
            .flat_map(|p| [1.0 - p, p])
            .collect()
    } else {
        softmax(logits, 1)
            .into_data()
            .convert::<f32>()
            .try_to_vec()
            .expect("float logits")
    };
    let width = k.max(2);
    (0..n)
        .map(|i| Prediction {
            class: usize::try_from(classes[i]).expect("class index"),
            probabilities: probabilities[i * width..(i + 1) * width].to_vec(),
        })
        .collect()
}

/// The answers of an image or table `model` for `n` samples of `sample_shape`, given as
/// `values` (row-major, `n * prod(sample_shape)` values in the model's scale), in batches of
/// `batch_size` on `device`.
///
/// # Panics
///
/// Panics when `values` does not hold whole samples of `sample_shape`, when `sample_shape` is
/// neither `[F]` nor `[C, H, W]`, when `batch_size` is 0, or when the model was built for
/// another sample size.
pub fn predict_samples(
    model: &Model,
    sample_shape: &[usize],
    values: &[f32],
    batch_size: usize,
    device: &Device,
) -> Vec<Prediction> {
    let sample_len: usize = sample_shape.iter().product();
    assert!(
        sample_len > 0 && values.len().is_multiple_of(sample_len),
        "whole samples"
    );
    assert!(batch_size > 0, "batch size 0");
    let layout = Layout::of(sample_shape).expect("vectors or images");
    values
        .chunks(batch_size * sample_len)
        .flat_map(|chunk| {
            let n = chunk.len() / sample_len;
            let logits = match layout {
                Layout::Table { features } => model.forward(Tensor::<2>::from_data(
                    TensorData::new(chunk.to_vec(), [n, features]),
                    device,
                )),
                Layout::Image {
                    channels,
                    height,
                    width,
                } => model.forward(Tensor::<4>::from_data(
                    TensorData::new(chunk.to_vec(), [n, channels, height, width]),
                    device,
                )),
            };
            from_logits(logits)
        })
        .collect()
}

/// The answers of a text `model` for `texts`, each encoded by `tokenizer` (its word
/// recognition included) to at most `max_len` tokens, in batches of `batch_size` on `device`.
///
/// # Panics
///
/// Panics when `batch_size` is 0, or when `max_len` exceeds the Transformer's length.
pub fn predict_texts<M: TextClassifier, S: AsRef<str>>(
    model: &M,
    tokenizer: &TextTokenizer,
    max_len: usize,
    texts: &[S],
    batch_size: usize,
    device: &Device,
) -> Vec<Prediction> {
    assert!(batch_size > 0, "batch size 0");
    texts
        .chunks(batch_size)
        .flat_map(|chunk| {
            let seqs: Vec<Vec<u32>> = chunk
                .iter()
                .map(|t| tokenizer.encode(t.as_ref(), max_len))
                .collect();
            let b = TokenBatch::new(&seqs, device);
            from_logits(model.logits_tokens(b.ids, b.pad))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_follow_the_logits_and_the_class_is_evaluations() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_floats([[0.0, 2.0, 1.0], [3.0, -1.0, 3.0 - 1e-3]], &device);
        let p = from_logits(logits);
        assert_eq!(p[0].class, 1);
        assert_eq!(p[1].class, 0);
        for answer in &p {
            assert_eq!(answer.probabilities.len(), 3);
            let sum: f32 = answer.probabilities.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "{sum}");
        }
        let e: Vec<f32> = [0.0f32, 2.0, 1.0].iter().map(|x| x.exp()).collect();
        let z: f32 = e.iter().sum();
        for (got, want) in p[0].probabilities.iter().zip(&e) {
            assert!((got - want / z).abs() < 1e-6);
        }
    }

    #[test]
    fn one_logit_gives_two_probabilities_and_the_sign_decides() {
        let device = Device::flex();
        let p = from_logits(Tensor::<2>::from_floats([[-0.5], [0.25], [0.0]], &device));
        assert_eq!(
            p.iter().map(|a| a.class).collect::<Vec<_>>(),
            [0, 1, 0],
            "logit > 0 is class 1, as evaluation counts it"
        );
        let s = 1.0 / (1.0 + 0.5f32.exp());
        assert!((p[0].probabilities[1] - s).abs() < 1e-6);
        assert!((p[0].probabilities[0] - (1.0 - s)).abs() < 1e-6);
        assert_eq!(p[2].probabilities, [0.5, 0.5]);
    }
}
