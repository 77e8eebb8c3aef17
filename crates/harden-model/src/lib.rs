//! Model definitions, device selection and weight files for harden.
//!
//! - [`MlpConfig`] / [`Mlp`]: any list of hidden widths with ReLU; a single output logit for
//!   binary tasks.
//! - [`SmallCnnConfig`] / [`SmallCnn`]: the MNIST CNN of fast adversarial training
//!   (Wong, Rice & Kolter 2020).
//! - [`MadryCnnConfig`] / [`MadryCnn`]: the MNIST CNN of Madry et al. 2018.
//! - [`TextTransformerConfig`] / [`TextTransformer`] and [`BagOfEmbeddingsConfig`] /
//!   [`BagOfEmbeddings`]: text classifiers over token ids, behind [`TextClassifier`], whose
//!   forward pass starts from token embeddings for attacks in embedding space.
//! - [`Classifier`]: the interface the trainer, the store and evaluation take; the built-in
//!   networks implement it, and so can a user's own burn module.
//! - [`ModelKind`] / [`ModelSpec`] / [`ModelConfig`] / [`Model`]: any built-in network, chosen
//!   at run time: its name, its own parameters (MLP widths), its data-sized configuration, and
//!   the network.
//! - [`device`]: maps `auto`, `flex`, `ndarray`, `wgpu`, `cuda`, `cpu` to a burn `Device`.
//! - [`store`]: burnpack and PyTorch-layout safetensors files, written atomically.
//! - [`atomic`]: the temporary-file-then-rename writer every harden output goes through
//!   (harden-data's, re-exported).
//!
//! Models take inputs in `[0, 1]` and return logits `[N, num_outputs]`; they report their
//! parameter count through burn's `Module::num_params`.

pub use harden_data::atomic;
pub mod classifier;
mod cnn;
pub mod device;
mod error;
pub mod lora;
mod mlp;
pub mod store;
pub mod text;

pub use classifier::{Classifier, Model, ModelConfig, ModelKind, ModelSpec, default_hidden};
pub use cnn::{MadryCnn, MadryCnnConfig, SmallCnn, SmallCnnConfig};
pub use device::{DeviceError, parse_device, parse_devices};
pub use error::ModelError;
pub use lora::{LoraSpec, ParamCount};
pub use mlp::{MAX_PARAMS, Mlp, MlpConfig};
pub use store::WeightsFormat;
pub use text::{
    BagOfEmbeddings, BagOfEmbeddingsConfig, TextClassifier, TextModel, TextModelConfig,
    TextTransformer, TextTransformerConfig,
};
