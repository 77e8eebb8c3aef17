//! Flags shared by the commands that read saved weights: architecture and dataset.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use harden_data::ArrayDataset;
use harden_data::source::{DatasetSource, default_data_dir};
use harden_model::{Model, ModelConfig, store};

/// What the weights are and which data they belong to.
#[derive(Debug, clap::Args)]
pub struct WeightsArgs {
    /// Architecture of the weights: mlp, small-cnn or madry-cnn.
    #[arg(long)]
    pub model: String,
    /// Hidden layer widths of an MLP, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128")]
    pub hidden: Vec<usize>,
    /// Dataset of the model (fixes input shape and classes; its test split is evaluated):
    /// digits, breast-cancer, mnist, fashion-mnist, csv:PATH.
    #[arg(long, default_value = "digits")]
    pub dataset: String,
    /// Folder holding mnist/ and fashion-mnist/ (default: $HARDEN_DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl WeightsArgs {
    /// The dataset and its test split.
    pub fn test_split(&self) -> Result<(DatasetSource, ArrayDataset)> {
        let source: DatasetSource = self.dataset.parse().context("--dataset")?;
        let data_dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        let test = source.load(&data_dir)?.test;
        Ok((source, test))
    }

    /// Loads `file` into the architecture these flags name, sized for `data`.
    pub fn load(
        &self,
        file: &Path,
        data: &ArrayDataset,
        device: &Device,
    ) -> Result<(ModelConfig, Model)> {
        load_model(file, &self.model, &self.hidden, data, device)
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
