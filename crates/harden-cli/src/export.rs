//! `harden export`: convert weights between burnpack and PyTorch-layout safetensors.

use std::path::PathBuf;

use anyhow::{Result, bail};
use harden_model::parse_device;
use harden_model::store::{self, WeightsFormat};

use crate::weights_args::WeightsArgs;

/// Arguments of `harden export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Weights file to convert (`.bpk`, or `.safetensors` in PyTorch layout), or a
    /// `harden train` run directory (its best weights).
    model_file: PathBuf,
    /// Format to write: safetensors (PyTorch names and layouts) or bpk.
    #[arg(long)]
    format: String,
    /// Output file (default: the input with the new extension).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    weights: WeightsArgs,
}

pub fn run(args: &ExportArgs) -> Result<()> {
    let format = match args.format.as_str() {
        "safetensors" => WeightsFormat::PytorchSafetensors,
        "bpk" => WeightsFormat::Burnpack,
        other => bail!("invalid --format {other:?}: expected safetensors or bpk"),
    };
    let weights = args.weights.resolve(&args.model_file)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| weights.file.with_extension(format.extension()));
    if let Some(ext) = out.extension().and_then(|e| e.to_str())
        && ext != format.extension()
    {
        bail!(
            "--out {}: the file name ends in .{ext} but --format {} writes .{} files",
            out.display(),
            args.format,
            format.extension()
        );
    }
    if out == weights.file {
        bail!("--out {} would overwrite the input file", out.display());
    }
    let (test, _) = weights.test_split()?;
    let device = parse_device("flex")?;
    let (config, model) = weights.load(&test, &device)?;
    store::save(&model, &out, format)?;
    println!(
        "{} ({}) -> {}",
        weights.file.display(),
        config.name(),
        out.display()
    );
    Ok(())
}
