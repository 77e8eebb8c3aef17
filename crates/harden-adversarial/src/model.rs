//! The one thing an attack needs from a model.

use burn::tensor::Tensor;

/// A model seen as a differentiable function from a continuous input to logits.
///
/// Attacks only ever call [`logits`](Differentiable::logits), so any burn model fits, through a
/// closure: `|x| model.forward(x)`. The same attack code serves images (`Tensor<4>`), tabular
/// rows (`Tensor<2>`) and token embeddings (`Tensor<3>`).
///
/// For attack generation and evaluation pass the model without parameter gradients and in
/// evaluation mode (`model.valid()` in burn): the input gradient is still computed, parameter
/// gradients are skipped, and dropout or batch-norm state is never touched.
pub trait Differentiable<const D: usize> {
    /// Logits for a batch.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]`.
    /// - output: `[N, K]`: `K` class logits, or `K = 1` for a binary task with one logit.
    fn logits(&self, input: Tensor<D>) -> Tensor<2>;
}

impl<const D: usize, F> Differentiable<D> for F
where
    F: Fn(Tensor<D>) -> Tensor<2>,
{
    fn logits(&self, input: Tensor<D>) -> Tensor<2> {
        self(input)
    }
}
