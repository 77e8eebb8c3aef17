//! The classifier interface, and one type over all built-in architectures for code that picks
//! the model at run time.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::text::TextModelConfig;
use crate::{
    BagOfEmbeddingsConfig, MadryCnn, MadryCnnConfig, Mlp, MlpConfig, ModelError, SmallCnn,
    SmallCnnConfig, TextTransformerConfig,
};

/// A classifier harden can train, evaluate, attack and save: any burn [`Module`] with a
/// forward pass from float inputs to logits (`#[derive(Module)]` provides both supertraits).
///
/// The built-in networks implement it, and so can a library user's own network: the trainer
/// (`harden_train::fit`), [`store::save`](crate::store::save) and
/// [`store::load`](crate::store::load) take any `Classifier`.
pub trait Classifier: Module + ModuleDisplay {
    /// Logits for a batch.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` in the layout of the data (`[N, F]` tables, `[N, C, H, W]`
    ///   images).
    /// - output: `[N, K]`: `K` class logits, or `K = 1` for a binary task with one logit.
    fn logits<const D: usize>(&self, input: Tensor<D>) -> Tensor<2>;

    /// burn parameter-name prefixes mapped to the prefixes of the equivalent PyTorch module,
    /// used for safetensors and `.pt` files; empty (the default) keeps burn's names.
    fn pytorch_names(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// The built-in architectures, by the names the CLI and configuration files use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A multi-layer perceptron ([`Mlp`]).
    Mlp,
    /// The fast-adversarial-training MNIST CNN ([`SmallCnn`]).
    SmallCnn,
    /// The Madry et al. MNIST CNN ([`MadryCnn`]).
    MadryCnn,
    /// The fast-AT CNN at a sixth of its size, a student for robust distillation
    /// ([`SmallCnnConfig::tiny`]).
    TinyCnn,
    /// A Transformer encoder over tokens ([`TextTransformer`](crate::TextTransformer)).
    TextTransformer,
    /// The mean of token embeddings and a linear head
    /// ([`BagOfEmbeddings`](crate::BagOfEmbeddings)).
    BagOfEmbeddings,
}

impl ModelKind {
    /// Every built-in architecture, in the order `harden info` lists them.
    pub const ALL: [ModelKind; 6] = [
        Self::Mlp,
        Self::SmallCnn,
        Self::MadryCnn,
        Self::TinyCnn,
        Self::TextTransformer,
        Self::BagOfEmbeddings,
    ];

    /// Whether the architecture reads token sequences (a text dataset).
    pub fn is_text(self) -> bool {
        matches!(self, Self::TextTransformer | Self::BagOfEmbeddings)
    }

    /// The name the CLI and configuration files use.
    pub fn name(self) -> String {
        harden_data::names::name_of(self)
    }
}

impl std::str::FromStr for ModelKind {
    type Err = ModelError;

    /// Parses a name through the same table as configuration files.
    fn from_str(s: &str) -> Result<Self, ModelError> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| {
                ModelError::invalid(
                    "model",
                    format!(
                        "unknown model {s:?}, expected one of {}",
                        Self::ALL.map(ModelKind::name).join(", ")
                    ),
                )
            })
    }
}

/// Hidden widths of an MLP when none are given: `256, 128`.
pub fn default_hidden() -> Vec<usize> {
    vec![256, 128]
}

/// A built-in architecture with its own parameters, before the data fixes its input and
/// output sizes. Serialised with a `kind` tag: `{ kind = "mlp", hidden = [256, 128] }` in
/// TOML, `{"kind": "small-cnn"}` in JSON; a bare name (`"mlp"`) reads as that architecture
/// with its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelSpec {
    /// A multi-layer perceptron.
    Mlp {
        /// Hidden layer widths.
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
    },
    // The architectures without parameters are empty struct variants, not unit variants:
    // serde's `deny_unknown_fields` ignores unit variants, so `{ kind = "small-cnn",
    // channels = [..] }` would be read with the key silently dropped.
    /// The fast-adversarial-training MNIST CNN.
    SmallCnn {},
    /// The Madry et al. MNIST CNN.
    MadryCnn {},
    /// The fast-AT CNN with 8 and 16 filters and 32 hidden units.
    TinyCnn {},
    /// A Transformer encoder over tokens.
    TextTransformer {
        /// Embedding and model width.
        #[serde(default = "text_width")]
        width: usize,
        /// Encoder layers.
        #[serde(default = "text_layers")]
        layers: usize,
        /// Attention heads.
        #[serde(default = "text_heads")]
        heads: usize,
        /// Feed-forward width.
        #[serde(default = "text_ff")]
        ff: usize,
        /// Dropout inside the encoder.
        #[serde(default = "text_dropout")]
        dropout: f64,
    },
    /// Mean of token embeddings and a linear head.
    BagOfEmbeddings {
        /// Embedding width.
        #[serde(default = "text_width")]
        width: usize,
    },
}

fn text_width() -> usize {
    64
}
fn text_layers() -> usize {
    2
}
fn text_heads() -> usize {
    4
}
fn text_ff() -> usize {
    128
}
fn text_dropout() -> f64 {
    0.1
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self::Mlp {
            hidden: default_hidden(),
        }
    }
}

impl From<ModelKind> for ModelSpec {
    /// The architecture with its default parameters.
    fn from(kind: ModelKind) -> Self {
        match kind {
            ModelKind::Mlp => Self::Mlp {
                hidden: default_hidden(),
            },
            ModelKind::SmallCnn => Self::SmallCnn {},
            ModelKind::MadryCnn => Self::MadryCnn {},
            ModelKind::TinyCnn => Self::TinyCnn {},
            ModelKind::TextTransformer => Self::TextTransformer {
                width: text_width(),
                layers: text_layers(),
                heads: text_heads(),
                ff: text_ff(),
                dropout: text_dropout(),
            },
            ModelKind::BagOfEmbeddings => Self::BagOfEmbeddings {
                width: text_width(),
            },
        }
    }
}

impl ModelSpec {
    /// The architecture.
    pub fn kind(&self) -> ModelKind {
        match self {
            Self::Mlp { .. } => ModelKind::Mlp,
            Self::SmallCnn {} => ModelKind::SmallCnn,
            Self::MadryCnn {} => ModelKind::MadryCnn,
            Self::TinyCnn {} => ModelKind::TinyCnn,
            Self::TextTransformer { .. } => ModelKind::TextTransformer,
            Self::BagOfEmbeddings { .. } => ModelKind::BagOfEmbeddings,
        }
    }

    /// The text model configuration for a vocabulary of `vocab_size` tokens, sequences of at
    /// most `max_len` tokens and `num_outputs` logits.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] for an architecture that does not read tokens, or sizes
    /// its `check` refuses.
    pub fn text_config(
        &self,
        vocab_size: usize,
        max_len: usize,
        num_outputs: usize,
    ) -> Result<TextModelConfig, ModelError> {
        let config = match *self {
            Self::TextTransformer {
                width,
                layers,
                heads,
                ff,
                dropout,
            } => TextModelConfig::TextTransformer(
                TextTransformerConfig::new(vocab_size, max_len, num_outputs)
                    .with_width(width)
                    .with_layers(layers)
                    .with_heads(heads)
                    .with_ff(ff)
                    .with_dropout(dropout),
            ),
            Self::BagOfEmbeddings { width } => TextModelConfig::BagOfEmbeddings(
                BagOfEmbeddingsConfig::new(vocab_size, num_outputs).with_width(width),
            ),
            _ => {
                return Err(self.unfit(
                    "does not read text; text datasets need text-transformer or bag-of-embeddings",
                ));
            }
        };
        config.check()?;
        Ok(config)
    }

    /// The error for data this architecture cannot read: its name, then `why`.
    fn unfit(&self, why: &str) -> ModelError {
        ModelError::invalid("model", format!("{} {why}", self.kind().name()))
    }

    /// `kind` with MLP widths `hidden` (when given; other architectures have none).
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] when `hidden` is given for an architecture without
    /// hidden widths.
    pub fn new(kind: ModelKind, hidden: Option<Vec<usize>>) -> Result<Self, ModelError> {
        match (kind, hidden) {
            (ModelKind::Mlp, Some(hidden)) => Ok(Self::Mlp { hidden }),
            (kind, None) => Ok(kind.into()),
            (kind, Some(_)) => Err(ModelError::invalid(
                "model",
                format!("{} has no hidden widths to set", kind.name()),
            )),
        }
    }

    /// The configuration for samples of `sample_shape` with `num_outputs` logits.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] for a CNN on samples that are not images `[C, H, W]`, or
    /// a configuration its `check` rejects.
    pub fn config_for(
        &self,
        sample_shape: &[usize],
        num_outputs: usize,
    ) -> Result<ModelConfig, ModelError> {
        let image = |model: &'static str| -> Result<[usize; 3], ModelError> {
            <[usize; 3]>::try_from(sample_shape).map_err(|_| ModelError::invalid(model, format!(
                    "needs image samples [C, H, W], the data has samples of shape {sample_shape:?}"
                )))
        };
        let config = match self {
            Self::Mlp { hidden } => ModelConfig::Mlp(MlpConfig::new(
                sample_shape.iter().product(),
                hidden.clone(),
                num_outputs,
            )),
            Self::SmallCnn {} => {
                ModelConfig::SmallCnn(SmallCnnConfig::new(image("small-cnn")?, num_outputs))
            }
            Self::MadryCnn {} => {
                ModelConfig::MadryCnn(MadryCnnConfig::new(image("madry-cnn")?, num_outputs))
            }
            Self::TinyCnn {} => {
                ModelConfig::TinyCnn(SmallCnnConfig::tiny(image("tiny-cnn")?, num_outputs))
            }
            Self::TextTransformer { .. } | Self::BagOfEmbeddings { .. } => {
                return Err(self.unfit("reads token sequences; it needs a text dataset (tsv:PATH)"));
            }
        };
        config.check()?;
        Ok(config)
    }
}

/// The configuration of any built-in model, sized for its data; serialised with a `kind` tag
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
    /// The fast-AT CNN at tiny widths (built as a [`SmallCnn`]).
    TinyCnn(SmallCnnConfig),
}

impl ModelConfig {
    /// The number of output logits harden uses for `num_classes` classes: one logit for a
    /// binary task (binary cross-entropy), one per class otherwise.
    pub fn outputs_for_classes(num_classes: usize) -> usize {
        if num_classes == 2 { 1 } else { num_classes }
    }

    /// The architecture.
    pub fn kind(&self) -> ModelKind {
        match self {
            Self::Mlp(_) => ModelKind::Mlp,
            Self::SmallCnn(_) => ModelKind::SmallCnn,
            Self::MadryCnn(_) => ModelKind::MadryCnn,
            Self::TinyCnn(_) => ModelKind::TinyCnn,
        }
    }

    /// The model's name as the CLI spells it.
    pub fn name(&self) -> String {
        self.kind().name()
    }

    /// Number of output logits.
    pub fn num_outputs(&self) -> usize {
        match self {
            Self::Mlp(c) => c.num_outputs,
            Self::SmallCnn(c) | Self::TinyCnn(c) => c.num_classes,
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
            Self::SmallCnn(c) | Self::TinyCnn(c) => c.check(),
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
            Self::SmallCnn(c) | Self::TinyCnn(c) => Model::SmallCnn(c.init(device)),
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
}

impl Classifier for Model {
    fn logits<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        self.forward(input)
    }

    fn pytorch_names(&self) -> Vec<(String, String)> {
        match self {
            Self::Mlp(m) => m.pytorch_names(),
            Self::SmallCnn(m) => m.pytorch_names(),
            Self::MadryCnn(m) => m.pytorch_names(),
        }
    }
}

/// Reads a [`ModelSpec`] written either as a full spec or as a bare architecture name; use
/// with `#[serde(deserialize_with = "harden_model::classifier::spec_or_name")]`.
///
/// # Errors
///
/// The deserialiser's error when the value is neither; for a table, the spec's own error
/// (an unknown key or architecture named).
pub fn spec_or_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ModelSpec, D::Error> {
    use serde::de::{self, value};

    /// A string is a name, a map a spec: visited by hand so a spec's error (`unknown field
    /// "channels"`) reaches the user instead of an untagged enum's "did not match any variant".
    struct SpecVisitor;

    impl<'de> de::Visitor<'de> for SpecVisitor {
        type Value = ModelSpec;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a model name or a table with a `kind` key")
        }

        fn visit_str<E: de::Error>(self, name: &str) -> Result<ModelSpec, E> {
            ModelKind::deserialize(value::StrDeserializer::<E>::new(name)).map(Into::into)
        }

        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ModelSpec, A::Error> {
            ModelSpec::deserialize(value::MapAccessDeserializer::new(map))
        }
    }

    d.deserialize_any(SpecVisitor)
}
