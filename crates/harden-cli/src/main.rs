//! `harden`: train, attack and evaluate adversarially robust models from the command line.

mod attack;
mod attack_flags;
mod eval;
mod export;
mod grid;
mod info;
mod kinds;
mod output;
mod plot;
mod predict;
mod text_eval;
mod train;
mod weights_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train neural networks that resist adversarial attacks, and measure that resistance.
#[derive(Debug, Parser)]
#[command(name = "harden", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write adversarial examples of a saved model (IDX or CSV like the input) and, for
    /// images, a PNG grid of clean, adversarial and amplified perturbation.
    Attack(Box<attack::AttackArgs>),
    /// Measure clean and robust accuracy of saved weights under an attack suite.
    Eval(Box<eval::EvalArgs>),
    /// Convert weights between burnpack (.bpk) and PyTorch-layout safetensors.
    Export(export::ExportArgs),
    /// Classify new inputs (texts, table rows, images) with a trained model, from files or as
    /// a JSON-lines service on standard input.
    Predict(Box<predict::PredictArgs>),
    /// Train a model on adversarial examples (default: PGD training of an MLP on the embedded
    /// digits, well under a minute on two cores).
    Train(Box<train::TrainArgs>),
    /// List compiled-in backends and working devices, known datasets and built-in models.
    Info(info::InfoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Attack(args) => attack::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Train(args) => train::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each cause once: library errors end their message
/// with their source's text, so a cause already contained in the line is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
