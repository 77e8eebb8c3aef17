//! Flags shared by the commands that read saved weights: architecture and dataset, or a run
//! directory of `harden train` that records both.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use harden_data::source::{DatasetSource, default_data_dir};
use harden_data::{ArrayDataset, Splits};
use harden_model::{Model, ModelConfig, store};
use harden_train::trainer::resume_config;

/// What the weights are and which data they belong to.
#[derive(Debug, Clone, clap::Args)]
pub struct WeightsArgs {
    /// Architecture of the weights: mlp, small-cnn or madry-cnn (default for a run directory:
    /// its configuration).
    #[arg(long)]
    pub model: Option<String>,
    /// Hidden layer widths of an MLP, comma-separated [default: 128, or the run's].
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Dataset of the model (fixes input shape and classes; its test split is used):
    /// digits, breast-cancer, mnist, fashion-mnist, csv:PATH [default: digits, or the run's].
    #[arg(long)]
    pub dataset: Option<String>,
    /// Folder holding mnist/ and fashion-mnist/ (default: $HARDEN_DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Weights resolved to a file, an architecture and a dataset.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The weights file.
    pub file: PathBuf,
    /// Architecture name.
    pub model: String,
    /// MLP hidden widths.
    pub hidden: Vec<usize>,
    /// Dataset name.
    pub dataset: String,
    /// Data folder.
    pub data_dir: PathBuf,
}

impl WeightsArgs {
    /// Resolves `path`: a weights file (with `--model`), or a run directory of `harden train`
    /// (its `best.bpk`, with architecture and dataset from its `config.json` unless given).
    pub fn resolve(&self, path: &Path) -> Result<Resolved> {
        if path.is_dir() {
            let config = resume_config(path).with_context(|| {
                format!("{} is a folder but not a run directory", path.display())
            })?;
            return Ok(Resolved {
                file: path.join("best.bpk"),
                model: self.model.clone().unwrap_or(config.model),
                hidden: self.hidden.clone().unwrap_or(config.hidden),
                dataset: self.dataset.clone().unwrap_or(config.dataset),
                data_dir: self
                    .data_dir
                    .clone()
                    .or(config.data_dir)
                    .unwrap_or_else(default_data_dir),
            });
        }
        let Some(model) = self.model.clone() else {
            bail!(
                "missing --model: the architecture of {} (mlp, small-cnn or madry-cnn)",
                path.display()
            );
        };
        Ok(Resolved {
            file: path.to_path_buf(),
            model,
            hidden: self.hidden.clone().unwrap_or_else(|| vec![128]),
            dataset: self.dataset.clone().unwrap_or_else(|| "digits".to_string()),
            data_dir: self.data_dir.clone().unwrap_or_else(default_data_dir),
        })
    }
}

impl Resolved {
    /// The dataset and its splits.
    pub fn splits(&self) -> Result<(DatasetSource, Splits)> {
        let source: DatasetSource = self.dataset.parse().context("--dataset")?;
        let splits = source.load(&self.data_dir)?;
        Ok((source, splits))
    }

    /// Loads the weights into the architecture, sized for `data`.
    pub fn load(&self, data: &ArrayDataset, device: &Device) -> Result<(ModelConfig, Model)> {
        load_model(&self.file, &self.model, &self.hidden, data, device)
    }
}

/// Builds `name`'s architecture for `data` and loads `file` into it.
pub fn load_model(
    file: &Path,
    name: &str,
    hidden: &[usize],
    data: &ArrayDataset,
    device: &Device,
) -> Result<(ModelConfig, Model)> {
    let outputs = ModelConfig::outputs_for_classes(data.num_classes());
    let config =
        ModelConfig::for_data(name, data.sample_shape(), outputs, hidden).context("--model")?;
    let model = store::load(config.init(device), file)?;
    Ok((config, model))
}
