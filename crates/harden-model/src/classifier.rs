//! One type over all built-in architectures, for code that picks the model at run time.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::{MadryCnn, MadryCnnConfig, Mlp, MlpConfig, ModelError, SmallCnn, SmallCnnConfig};

/// The configuration of any built-in model; serialised with a `kind` tag
/// (`{"kind": "mlp", "input_size": 64, ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelConfig {
    /// A multi-layer perceptron.
    Mlp(MlpConfig),
    /// The fast-adversarial-training MNIST CNN.
    SmallCnn(SmallCnnConfig),
    /// The Madry et al. MNIST CNN.
    MadryCnn(MadryCnnConfig),
}

/// The model names the CLI accepts, in the order `harden info` lists them.
pub const MODEL_NAMES: [&str; 3] = ["mlp", "small-cnn", "madry-cnn"];

impl ModelConfig {
    /// The configuration for model `name` (`mlp`, `small-cnn`, `madry-cnn`) on samples of
    /// `sample_shape` with `num_outputs` logits. `hidden` is used by the MLP only.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] for an unknown name, a CNN on samples that are not images
    /// `[C, H, W]`, or a configuration its `check` rejects.
    pub fn for_data(
        name: &str,
        sample_shape: &[usize],
        num_outputs: usize,
        hidden: &[usize],
    ) -> Result<Self, ModelError> {
        let image = |model: &'static str| -> Result<[usize; 3], ModelError> {
            <[usize; 3]>::try_from(sample_shape).map_err(|_| ModelError::InvalidConfig {
                model,
                message: format!(
                    "needs image samples [C, H, W], the data has samples of shape {sample_shape:?}"
                ),
            })
        };
        let config = match name {
            "mlp" => Self::Mlp(MlpConfig::new(
                sample_shape.iter().product(),
                hidden.to_vec(),
                num_outputs,
            )),
            "small-cnn" => Self::SmallCnn(SmallCnnConfig::new(image("small-cnn")?, num_outputs)),
            "madry-cnn" => Self::MadryCnn(MadryCnnConfig::new(image("madry-cnn")?, num_outputs)),
            _ => {
                return Err(ModelError::InvalidConfig {
                    model: "model",
                    message: format!(
                        "unknown model {name:?}, expected one of {}",
                        MODEL_NAMES.join(", ")
                    ),
                });
            }
        };
        config.check()?;
        Ok(config)
    }

    /// The number of output logits harden uses for `num_classes` classes: one logit for a
    /// binary task (binary cross-entropy), one per class otherwise.
    pub fn outputs_for_classes(num_classes: usize) -> usize {
        if num_classes == 2 { 1 } else { num_classes }
    }

    /// The model's name as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Mlp(_) => "mlp",
            Self::SmallCnn(_) => "small-cnn",
            Self::MadryCnn(_) => "madry-cnn",
        }
    }

    /// Number of output logits.
    pub fn num_outputs(&self) -> usize {
        match self {
            Self::Mlp(c) => c.num_outputs,
            Self::SmallCnn(c) => c.num_classes,
            Self::MadryCnn(c) => c.num_classes,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] from the inner configuration's `check`.
    pub fn check(&self) -> Result<(), ModelError> {
        match self {
            Self::Mlp(c) => c.check(),
            Self::SmallCnn(c) => c.check(),
            Self::MadryCnn(c) => c.check(),
        }
    }

    /// Builds the model with freshly initialised weights on `device`.
    ///
    /// # Panics
    ///
    /// Panics when [`check`](Self::check) fails.
    pub fn init(&self, device: &Device) -> Model {
        match self {
            Self::Mlp(c) => Model::Mlp(c.init(device)),
            Self::SmallCnn(c) => Model::SmallCnn(c.init(device)),
            Self::MadryCnn(c) => Model::MadryCnn(c.init(device)),
        }
    }
}

/// Any built-in model.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Model {
    /// A multi-layer perceptron.
    Mlp(Mlp),
    /// The fast-adversarial-training MNIST CNN.
    SmallCnn(SmallCnn),
    /// The Madry et al. MNIST CNN.
    MadryCnn(MadryCnn),
}

impl Model {
    /// Logits for a batch.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` with the sample size the model was configured for.
    /// - output: `[N, num_outputs]`.
    ///
    /// # Panics
    ///
    /// Panics when a sample has another number of values than the model expects.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        match self {
            Self::Mlp(m) => m.forward(input),
            Self::SmallCnn(m) => m.forward(input),
            Self::MadryCnn(m) => m.forward(input),
        }
    }

    /// burn parameter-name prefixes mapped to those of the equivalent PyTorch `nn.Sequential`.
    pub fn pytorch_names(&self) -> Vec<(String, String)> {
        match self {
            Self::Mlp(m) => m.pytorch_names(),
            Self::SmallCnn(m) => m.pytorch_names(),
            Self::MadryCnn(m) => m.pytorch_names(),
        }
    }
}
