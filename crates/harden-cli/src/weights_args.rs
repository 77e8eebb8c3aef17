//! Flags shared by the commands that read saved weights: architecture and dataset, or a run
//! directory of `harden train` that records both.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::{Module, ModuleDisplay};
use burn::tensor::Device;
use harden_data::source::{DatasetSource, default_data_dir};
use harden_data::{ArrayDataset, MinMaxScaler};
use harden_model::{Model, ModelConfig, ModelKind, ModelSpec, lora, store};
use harden_train::run_config;

use crate::kinds::Kind;

/// What the weights are and which data they belong to.
#[derive(Debug, Clone, clap::Args)]
pub struct WeightsArgs {
    /// Architecture of the weights (default for a run directory: its configuration).
    #[arg(long, value_parser = Kind::<ModelKind>::new())]
    pub model: Option<ModelKind>,
    /// Hidden layer widths of an MLP, comma-separated [default: 256,128, or the run's].
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set)]
    pub hidden: Option<Vec<usize>>,
    /// Dataset of the model (fixes input shape and classes; its test split is used):
    /// digits, breast-cancer, mnist, fashion-mnist, csv:PATH [default: digits, or the run's].
    #[arg(long)]
    pub dataset: Option<DatasetSource>,
    /// Folder holding mnist/ and fashion-mnist/ (default: $HARDEN_DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Weights resolved to a file, an architecture and a dataset.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The weights file.
    pub file: PathBuf,
    /// The architecture.
    pub spec: ModelSpec,
    /// The dataset.
    pub dataset: DatasetSource,
    /// Data folder.
    pub data_dir: PathBuf,
}

/// `--model` and `--hidden` applied to `base`: the flags' architecture (or `base`'s), with the
/// flags' widths (or `base`'s when the architecture is the same).
///
/// # Errors
///
/// `--hidden` with an architecture that has no hidden widths.
pub fn model_spec(
    base: &ModelSpec,
    model: Option<ModelKind>,
    hidden: Option<Vec<usize>>,
) -> Result<ModelSpec> {
    let kind = model.unwrap_or(base.kind());
    if kind == base.kind() && hidden.is_none() {
        return Ok(base.clone());
    }
    let hidden = hidden.or_else(|| match base {
        ModelSpec::Mlp { hidden } if kind == ModelKind::Mlp => Some(hidden.clone()),
        _ => None,
    });
    ModelSpec::new(kind, hidden).context("--hidden")
}

impl WeightsArgs {
    /// Resolves `path`: a weights file (with `--model`), or a run directory of `harden train`
    /// (its `best.bpk`, with architecture and dataset from its `config.json` unless given).
    pub fn resolve(&self, path: &Path) -> Result<Resolved> {
        if path.is_dir() {
            let config = run_config(path)?;
            if self.dataset.is_none() {
                harden_train::run_dir::check_dataset(path)?;
            }
            return Ok(Resolved {
                file: path.join("best.bpk"),
                spec: model_spec(&config.model, self.model, self.hidden.clone())?,
                dataset: self.dataset.clone().unwrap_or(config.dataset),
                data_dir: self
                    .data_dir
                    .clone()
                    .or(config.data_dir)
                    .unwrap_or_else(default_data_dir),
            });
        }
        let Some(model) = self.model else {
            bail!(
                "missing --model: the architecture of {} (mlp, small-cnn, madry-cnn or tiny-cnn)",
                path.display()
            );
        };
        Ok(Resolved {
            file: path.to_path_buf(),
            spec: model_spec(&ModelSpec::default(), Some(model), self.hidden.clone())?,
            dataset: self.dataset.clone().unwrap_or(DatasetSource::Digits),
            data_dir: self.data_dir.clone().unwrap_or_else(default_data_dir),
        })
    }
}

impl Resolved {
    /// The dataset's test split, and the scaler fitted on its training split (tables); the
    /// training images of an IDX dataset are not read.
    pub fn test_split(&self) -> Result<(ArrayDataset, Option<MinMaxScaler>)> {
        Ok(self.dataset.load_test(&self.data_dir)?)
    }

    /// Loads the weights into the architecture, sized for `data`.
    pub fn load(&self, data: &ArrayDataset, device: &Device) -> Result<(ModelConfig, Model)> {
        load_model(&self.file, &self.spec, data, device)
    }
}

/// Builds `spec`'s architecture for `data` and loads `file` into it.
pub fn load_model(
    file: &Path,
    spec: &ModelSpec,
    data: &ArrayDataset,
    device: &Device,
) -> Result<(ModelConfig, Model)> {
    let outputs = ModelConfig::outputs_for_classes(data.num_classes());
    let config = spec
        .config_for(data.sample_shape(), outputs)
        .context("--model")?;
    let model = store::load(config.init(device), file)?;
    Ok((config, model))
}

/// `model` with the adapters of the LoRA run `run` attached and loaded: the weights are the
/// base that run started from. Works for any model (image, table, text).
///
/// # Errors
///
/// "--adapters RUN: ..." when `run` is not a LoRA run or its adapters do not fit `model`.
pub fn with_adapters<M: Module + ModuleDisplay>(model: M, run: &Path) -> Result<M> {
    let config = run_config(run).context("--adapters")?;
    let Some(spec) = config.lora else {
        bail!(
            "--adapters {}: not a LoRA run (its config.json has no lora settings)",
            run.display()
        );
    };
    let model = lora::attach(model, &spec).context("--adapters")?;
    lora::load_adapters(model, &spec, &run.join("adapters.bpk")).context("--adapters")
}

/// Checks `--batch-size` and opens `--device`, first of all: a bad size or a backend this
/// build lacks is refused before any file is read.
///
/// # Errors
///
/// The batch size's limits, or the device's error under `--device`.
pub fn batch_and_device(batch_size: usize, device: &str) -> Result<Device> {
    harden_adversarial::error::check_count(
        "batch-size",
        batch_size,
        harden_adversarial::error::BATCH,
    )?;
    harden_model::parse_device(device).context("--device")
}
