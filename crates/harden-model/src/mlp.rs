//! Multi-layer perceptron.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation::relu};

use crate::{Classifier, ModelError};

/// The most parameters a built-in model may have: 2^30, 4 GiB of `f32` weights (training
/// needs about four times that with gradients and Adam's state).
pub const MAX_PARAMS: usize = 1 << 30;

/// Configuration of an [`Mlp`]: `input_size -> hidden[0] -> ... -> num_outputs`, ReLU between
/// layers, no activation on the output (logits).
///
/// `num_outputs` is the number of classes, or 1 for a binary task with a single logit.
#[derive(Config, Debug, PartialEq)]
pub struct MlpConfig {
    /// Number of input features (the product of the sample shape).
    pub input_size: usize,
    /// Width of each hidden layer, in order; may be empty (a linear model).
    pub hidden: Vec<usize>,
    /// Number of output logits.
    pub num_outputs: usize,
}

impl MlpConfig {
    /// Checks that every width is at least 1.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] naming the zero width.
    pub fn check(&self) -> Result<(), ModelError> {
        let invalid = |message: String| ModelError::invalid("mlp", message);
        if self.input_size == 0 {
            return Err(invalid("input size must be at least 1".to_string()));
        }
        if self.num_outputs == 0 {
            return Err(invalid("number of outputs must be at least 1".to_string()));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(invalid(format!("hidden layer {i} has width 0")));
        }
        let mut widths = vec![self.input_size];
        widths.extend(&self.hidden);
        widths.push(self.num_outputs);
        let params = widths.windows(2).try_fold(0usize, |sum, w| {
            w[0].checked_mul(w[1])?.checked_add(w[1])?.checked_add(sum)
        });
        match params {
            Some(n) if n <= MAX_PARAMS => Ok(()),
            _ => Err(invalid(format!(
                "widths {:?} make {} parameters; harden builds models of at most {MAX_PARAMS} (2^30) parameters, 4 GiB of f32 weights before gradients and optimizer state",
                self.hidden,
                params.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
            ))),
        }
    }

    /// Builds the network with freshly initialised weights on `device`.
    ///
    /// # Panics
    ///
    /// Panics when [`check`](Self::check) fails.
    pub fn init(&self, device: &Device) -> Mlp {
        if let Err(e) = self.check() {
            panic!("{e}");
        }
        let mut widths = vec![self.input_size];
        widths.extend(&self.hidden);
        widths.push(self.num_outputs);
        let layers = widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Mlp { layers }
    }
}

/// A multi-layer perceptron with ReLU activations.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The linear layers, input first.
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// Logits for a batch.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` whose trailing dimensions hold `input_size` values (a `[N, F]`
    ///   row batch or a `[N, C, H, W]` image batch, flattened here).
    /// - output: `[N, num_outputs]`.
    ///
    /// # Panics
    ///
    /// Panics when the trailing dimensions do not hold `input_size` values.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        let mut x: Tensor<2> = input.flatten(1, D - 1);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        x
    }
}

impl Classifier for Mlp {
    fn logits<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        self.forward(input)
    }

    /// burn parameter names mapped to the names of the equivalent PyTorch
    /// `nn.Sequential(nn.Flatten(), nn.Linear, nn.ReLU(), ..., nn.Linear)`: linear layer `k`
    /// sits at index `1 + 2k`.
    fn pytorch_names(&self) -> Vec<(String, String)> {
        (0..self.layers.len())
            .map(|k| (format!("layers.{k}."), format!("{}.", 1 + 2 * k)))
            .collect()
    }
}
