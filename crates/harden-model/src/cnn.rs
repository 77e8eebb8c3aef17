//! Convolutional networks from the adversarial-robustness literature.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, activation::relu};

use crate::{Classifier, ModelError};

/// Output size of a convolution or pooling along one axis, `None` when nothing is left.
fn conv_out(size: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    (size + 2 * padding)
        .checked_sub(kernel)
        .map(|s| s / stride + 1)
}

fn check_input(
    model: &'static str,
    input_shape: [usize; 3],
    num_classes: usize,
) -> Result<(), ModelError> {
    if input_shape.contains(&0) {
        return Err(ModelError::invalid(
            model,
            format!("input shape {input_shape:?} has a zero dimension"),
        ));
    }
    if num_classes == 0 {
        return Err(ModelError::invalid(
            model,
            "number of classes must be at least 1",
        ));
    }
    Ok(())
}

/// Refuses a network of more than [`MAX_PARAMS`](crate::mlp::MAX_PARAMS) parameters
/// (`None`: the count overflows), before anything is allocated.
fn check_size(model: &'static str, params: Option<usize>) -> Result<(), ModelError> {
    match params {
        Some(n) if n <= crate::mlp::MAX_PARAMS => Ok(()),
        _ => Err(ModelError::invalid(
            model,
            format!(
                "the sizes make {} parameters; harden builds models of at most {} (2^30) parameters, 4 GiB of f32 weights before gradients and optimizer state",
                params.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
                crate::mlp::MAX_PARAMS
            ),
        )),
    }
}

/// Parameters of a 2-d convolution with `kernel` x `kernel` filters.
fn conv_params(c_in: usize, c_out: usize, kernel: usize) -> Option<usize> {
    c_in.checked_mul(c_out)?
        .checked_mul(kernel * kernel)?
        .checked_add(c_out)
}

/// Parameters of a linear layer.
fn linear_params(d_in: usize, d_out: usize) -> Option<usize> {
    d_in.checked_mul(d_out)?.checked_add(d_out)
}

/// The sum of layer counts, `None` when one overflows.
fn total(counts: &[Option<usize>]) -> Option<usize> {
    counts
        .iter()
        .try_fold(0usize, |sum, c| sum.checked_add((*c)?))
}

/// Configuration of a [`SmallCnn`], the MNIST network of fast adversarial training
/// (Wong, Rice & Kolter 2020): conv 16@4x4 stride 2 pad 1, ReLU, conv 32@4x4 stride 2 pad 1,
/// ReLU, linear `32*h*w -> 100`, ReLU, linear `100 -> num_classes`. Other widths give the same
/// network smaller or larger ([`tiny`](Self::tiny): 8 and 16 filters, 32 hidden units).
#[derive(Config, Debug, PartialEq)]
pub struct SmallCnnConfig {
    /// Input shape `[C, H, W]` (`[1, 28, 28]` for MNIST).
    pub input_shape: [usize; 3],
    /// Number of classes (output logits).
    pub num_classes: usize,
    /// Filters of the two convolutions.
    #[config(default = "[16, 32]")]
    pub channels: [usize; 2],
    /// Units of the hidden linear layer.
    #[config(default = 100)]
    pub hidden: usize,
}

impl SmallCnnConfig {
    /// The tiny student network of robust distillation: 8 and 16 filters, 32 hidden units
    /// (27,650 parameters on MNIST, a sixth of [`SmallCnn`]'s 166,406).
    pub fn tiny(input_shape: [usize; 3], num_classes: usize) -> Self {
        Self::new(input_shape, num_classes)
            .with_channels([8, 16])
            .with_hidden(32)
    }

    /// Spatial size `[h, w]` after the two strided convolutions.
    fn feature_hw(&self) -> Option<[usize; 2]> {
        let f = |s| {
            conv_out(s, 4, 2, 1)
                .and_then(|s| conv_out(s, 4, 2, 1))
                .filter(|&s| s > 0)
        };
        Some([f(self.input_shape[1])?, f(self.input_shape[2])?])
    }

    /// Checks the input shape leaves a non-empty feature map.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] for a zero dimension, zero classes, or an image smaller
    /// than 2x2.
    pub fn check(&self) -> Result<(), ModelError> {
        check_input("small-cnn", self.input_shape, self.num_classes)?;
        if self.channels.contains(&0) || self.hidden == 0 {
            return Err(ModelError::invalid(
                "small-cnn",
                format!(
                    "channels {:?} and hidden {} must be at least 1",
                    self.channels, self.hidden
                ),
            ));
        }
        let [h, w] = self.feature_hw().ok_or_else(|| {
            ModelError::invalid(
                "small-cnn",
                format!(
                    "input {:?} is too small for two 4x4 stride-2 convolutions",
                    self.input_shape
                ),
            )
        })?;
        check_size("small-cnn", self.parameters([h, w]))
    }

    /// Parameters of the network whose feature map is `[h, w]`; `None` when they overflow.
    fn parameters(&self, [h, w]: [usize; 2]) -> Option<usize> {
        let [c1, c2] = self.channels;
        let features = c2.checked_mul(h)?.checked_mul(w)?;
        total(&[
            conv_params(self.input_shape[0], c1, 4),
            conv_params(c1, c2, 4),
            linear_params(features, self.hidden),
            linear_params(self.hidden, self.num_classes),
        ])
    }

    /// Builds the network with freshly initialised weights on `device`.
    ///
    /// # Panics
    ///
    /// Panics when [`check`](Self::check) fails.
    pub fn init(&self, device: &Device) -> SmallCnn {
        if let Err(e) = self.check() {
            panic!("{e}");
        }
        let [h, w] = self.feature_hw().unwrap_or([1, 1]);
        let conv = |c_in, c_out| {
            Conv2dConfig::new([c_in, c_out], [4, 4])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let [c1, c2] = self.channels;
        SmallCnn {
            conv1: conv(self.input_shape[0], c1),
            conv2: conv(c1, c2),
            fc1: LinearConfig::new(c2 * h * w, self.hidden).init(device),
            fc2: LinearConfig::new(self.hidden, self.num_classes).init(device),
            input_shape: self.input_shape,
        }
    }
}

/// The fast-adversarial-training MNIST CNN (see [`SmallCnnConfig`]).
#[derive(Module, Debug)]
pub struct SmallCnn {
    /// First convolution, 16 filters 4x4 (by default), stride 2, padding 1.
    pub conv1: Conv2d,
    /// Second convolution, 32 filters 4x4 (by default), stride 2, padding 1.
    pub conv2: Conv2d,
    /// Hidden linear layer, 100 units (by default).
    pub fc1: Linear,
    /// Output layer.
    pub fc2: Linear,
    /// Input shape `[C, H, W]`.
    pub input_shape: [usize; 3],
}

impl SmallCnn {
    /// Logits for a batch of images.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` holding `C*H*W` values per sample (`[N, C, H, W]`, or flattened).
    /// - output: `[N, num_classes]`.
    ///
    /// # Panics
    ///
    /// Panics when a sample does not hold `C*H*W` values.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        let x = images(input, self.input_shape);
        let x = relu(self.conv1.forward(x));
        let x = relu(self.conv2.forward(x));
        let x: Tensor<2> = x.flatten(1, 3);
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}

impl Classifier for SmallCnn {
    fn logits<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        self.forward(input)
    }

    /// burn parameter names mapped to the names of the equivalent PyTorch
    /// `nn.Sequential(Conv2d, ReLU, Conv2d, ReLU, Flatten, Linear, ReLU, Linear)`.
    fn pytorch_names(&self) -> Vec<(String, String)> {
        sequential_names([0, 2, 5, 7])
    }
}

/// Configuration of a [`MadryCnn`], the MNIST network of Madry et al. 2018: conv 32@5x5
/// (same padding), ReLU, 2x2 max-pool, conv 64@5x5 (same padding), ReLU, 2x2 max-pool,
/// linear `64*h*w -> 1024`, ReLU, linear `1024 -> num_classes`.
#[derive(Config, Debug, PartialEq)]
pub struct MadryCnnConfig {
    /// Input shape `[C, H, W]` (`[1, 28, 28]` for MNIST).
    pub input_shape: [usize; 3],
    /// Number of classes (output logits).
    pub num_classes: usize,
}

impl MadryCnnConfig {
    fn feature_hw(&self) -> Option<[usize; 2]> {
        let f = |s: usize| Some(s / 4).filter(|&s| s > 0);
        Some([f(self.input_shape[1])?, f(self.input_shape[2])?])
    }

    /// Checks the input shape survives two 2x2 poolings.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] for a zero dimension, zero classes, or an image smaller
    /// than 4x4.
    pub fn check(&self) -> Result<(), ModelError> {
        check_input("madry-cnn", self.input_shape, self.num_classes)?;
        let [h, w] = self.feature_hw().ok_or_else(|| {
            ModelError::invalid(
                "madry-cnn",
                format!(
                    "input {:?} is too small for two 2x2 max-pools",
                    self.input_shape
                ),
            )
        })?;
        check_size("madry-cnn", self.parameters([h, w]))
    }

    /// Parameters of the network whose feature map is `[h, w]`; `None` when they overflow.
    fn parameters(&self, [h, w]: [usize; 2]) -> Option<usize> {
        let features = 64usize.checked_mul(h)?.checked_mul(w)?;
        total(&[
            conv_params(self.input_shape[0], 32, 5),
            conv_params(32, 64, 5),
            linear_params(features, 1024),
            linear_params(1024, self.num_classes),
        ])
    }

    /// Builds the network with freshly initialised weights on `device`.
    ///
    /// # Panics
    ///
    /// Panics when [`check`](Self::check) fails.
    pub fn init(&self, device: &Device) -> MadryCnn {
        if let Err(e) = self.check() {
            panic!("{e}");
        }
        let [h, w] = self.feature_hw().unwrap_or([1, 1]);
        let conv = |c_in, c_out| {
            Conv2dConfig::new([c_in, c_out], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device)
        };
        MadryCnn {
            conv1: conv(self.input_shape[0], 32),
            conv2: conv(32, 64),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: LinearConfig::new(64 * h * w, 1024).init(device),
            fc2: LinearConfig::new(1024, self.num_classes).init(device),
            input_shape: self.input_shape,
        }
    }
}

/// The Madry et al. MNIST CNN (see [`MadryCnnConfig`]).
#[derive(Module, Debug)]
pub struct MadryCnn {
    /// First convolution, 32 filters 5x5, same padding.
    pub conv1: Conv2d,
    /// Second convolution, 64 filters 5x5, same padding.
    pub conv2: Conv2d,
    /// 2x2 max-pool with stride 2, after each convolution.
    pub pool: MaxPool2d,
    /// Hidden linear layer, 1024 units.
    pub fc1: Linear,
    /// Output layer.
    pub fc2: Linear,
    /// Input shape `[C, H, W]`.
    pub input_shape: [usize; 3],
}

impl MadryCnn {
    /// Logits for a batch of images; shapes and panics as [`SmallCnn::forward`].
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        let x = images(input, self.input_shape);
        let x = self.pool.forward(relu(self.conv1.forward(x)));
        let x = self.pool.forward(relu(self.conv2.forward(x)));
        let x: Tensor<2> = x.flatten(1, 3);
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}

impl Classifier for MadryCnn {
    fn logits<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        self.forward(input)
    }

    /// burn parameter names mapped to the names of the equivalent PyTorch
    /// `nn.Sequential(Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, MaxPool2d, Flatten, Linear, ReLU,
    /// Linear)`.
    fn pytorch_names(&self) -> Vec<(String, String)> {
        sequential_names([0, 3, 7, 9])
    }
}

/// `input` as images `[N, C, H, W]` for `shape = [C, H, W]`.
///
/// # Panics
///
/// Panics when a sample of `input` does not hold `C*H*W` values.
fn images<const D: usize>(input: Tensor<D>, [c, h, w]: [usize; 3]) -> Tensor<4> {
    let n = input.dims()[0];
    input.reshape([n, c, h, w])
}

/// The name map of a CNN with layers `conv1`, `conv2`, `fc1`, `fc2` to the PyTorch
/// `nn.Sequential` holding them at `indices`.
fn sequential_names(indices: [usize; 4]) -> Vec<(String, String)> {
    ["conv1.", "conv2.", "fc1.", "fc2."]
        .iter()
        .zip(indices)
        .map(|(layer, i)| (layer.to_string(), format!("{i}.")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size check counts exactly the parameters the network gets, and refuses sizes past
    /// the limit (or past what a `usize` holds) before anything is allocated.
    #[test]
    fn the_size_check_counts_the_built_network_and_refuses_huge_ones() {
        let device = Device::default();
        for (shape, classes) in [([1, 28, 28], 10), ([3, 32, 32], 10), ([2, 9, 13], 3)] {
            let small = SmallCnnConfig::new(shape, classes).with_channels([5, 7]);
            let hw = small.feature_hw().unwrap();
            assert_eq!(small.parameters(hw), Some(small.init(&device).num_params()));
            let madry = MadryCnnConfig::new(shape, classes);
            let hw = madry.feature_hw().unwrap();
            assert_eq!(madry.parameters(hw), Some(madry.init(&device).num_params()));
        }
        for channels in [[100_000, 100_000], [usize::MAX / 4, 2]] {
            let err = SmallCnnConfig::new([1, 28, 28], 10)
                .with_channels(channels)
                .check()
                .unwrap_err();
            assert!(err.to_string().contains("2^30"), "{err}");
        }
        let err = MadryCnnConfig::new([3, 100_000, 100_000], 10)
            .check()
            .unwrap_err();
        assert!(err.to_string().contains("2^30"), "{err}");
    }
}
