//! `harden export`: convert weights between burnpack and PyTorch-layout safetensors.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use harden_data::source::{DatasetSource, default_data_dir};
use harden_model::parse_device;
use harden_model::store::{self, WeightsFormat};

use crate::eval::load_model;

/// Arguments of `harden export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Weights file to convert: `.bpk`, or `.safetensors` in PyTorch layout.
    model_file: PathBuf,
    /// Format to write: safetensors (PyTorch names and layouts) or bpk.
    #[arg(long)]
    format: String,
    /// Output file (default: the input with the new extension).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Architecture of the weights: mlp, small-cnn or madry-cnn.
    #[arg(long)]
    model: String,
    /// Hidden layer widths of an MLP, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128")]
    hidden: Vec<usize>,
    /// Dataset the model was trained on (fixes input shape and classes).
    #[arg(long, default_value = "digits")]
    dataset: String,
    /// Folder holding mnist/ and fashion-mnist/ (default: $HARDEN_DATA_DIR, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub fn run(args: &ExportArgs) -> Result<()> {
    let format = match args.format.as_str() {
        "safetensors" => WeightsFormat::PytorchSafetensors,
        "bpk" => WeightsFormat::Burnpack,
        other => bail!("invalid --format {other:?}: expected safetensors or bpk"),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model_file.with_extension(format.extension()));
    if out == args.model_file {
        bail!("--out {} would overwrite the input file", out.display());
    }
    let source: DatasetSource = args.dataset.parse().context("--dataset")?;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let test = source.load(&data_dir)?.test;
    let device = parse_device("auto")?;
    let (config, model) = load_model(&args.model_file, &args.model, &args.hidden, &test, &device)?;
    store::save(&model, &out, format)?;
    println!(
        "{} ({}) -> {}",
        args.model_file.display(),
        config.name(),
        out.display()
    );
    Ok(())
}
