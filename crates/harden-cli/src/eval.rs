//! `harden eval`: clean and robust accuracy of a saved model under an attack suite.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::{Int, Tensor};
use harden_adversarial::suite::{
    CurvePoint, EvalReport, SanityFlag, evaluate, evaluate_with, robustness_curve,
};
use harden_adversarial::{ApgdConfig, ApgdLoss, Differentiable, Suite, ThreatModel, Transfer};
use harden_data::Batches;
use harden_model::{Model, ModelConfig, ModelKind};
use serde::Serialize;

use crate::attack_flags::AttackFlags;
use crate::kinds::Kind;
use crate::weights_args::{WeightsArgs, batch_and_device, load_model, model_spec, with_adapters};

/// Arguments of `harden eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Weights file (`.bpk`, `.safetensors` in PyTorch layout, or a PyTorch `.pt` / `.pth`
    /// state_dict of the equivalent `nn.Sequential`), or a `harden train` run directory (its
    /// best weights).
    model_file: PathBuf,
    #[command(flatten)]
    weights: WeightsArgs,
    /// Attack ensemble: quick (PGD-20), standard (APGD-CE, APGD-T, Square) or full.
    #[arg(long, conflicts_with = "attack")]
    suite: Option<String>,
    /// A single attack instead of a suite: fgsm, pgd (with --steps and --restarts), or
    /// transfer (APGD-CE crafted on --surrogate alone: the transfer success rate).
    #[arg(long)]
    attack: Option<String>,
    #[command(flatten)]
    flags: AttackFlags,
    /// Radius of the threat model.
    #[arg(long, allow_negative_numbers = true)]
    eps: Option<f64>,
    /// Radii of a robustness curve, comma-separated (e.g. 0,0.1,0.2,0.3).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, action = clap::ArgAction::Set)]
    eps_list: Vec<f64>,
    /// Evaluate only the first N test samples.
    #[arg(long)]
    samples: Option<usize>,
    /// Samples per batch.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Device: auto, flex, ndarray, wgpu or wgpu:N, cuda or cuda:N, cpu.
    #[arg(long, default_value = "auto")]
    device: String,
    /// LoRA adapters to apply over the weights: a run directory of `harden train --lora-rank`
    /// (its adapters.bpk, with the adapter settings of its config.json); the weights are then
    /// the base that run started from.
    #[arg(long)]
    adapters: Option<PathBuf>,
    /// Weights of a surrogate model for a transfer attack; with `--suite text`, a text run
    /// directory to craft DeepWordBug's edits on.
    #[arg(long)]
    surrogate: Option<PathBuf>,
    /// Architecture of the surrogate (default: --model).
    #[arg(long, value_parser = Kind::<ModelKind>::new())]
    surrogate_model: Option<ModelKind>,
    /// Hidden widths of an MLP surrogate (default: --hidden).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set)]
    surrogate_hidden: Option<Vec<usize>>,
    /// Write the JSON report to this file instead of standard output.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write an SVG plot of robust accuracy against eps.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Text suite: write each attacked text beside its original, edits marked, to this TSV.
    #[arg(long)]
    examples: Option<PathBuf>,
    /// Text suite: words the character attack may edit per text [default: the run's].
    #[arg(long)]
    max_words: Option<usize>,
    /// Text suite: tokens HotFlip may replace per text [default: the run's].
    #[arg(long)]
    max_flips: Option<usize>,
}

/// The JSON report of `harden eval`.
#[derive(Debug, Serialize)]
struct Report {
    harden: &'static str,
    model_file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    adapters: Option<PathBuf>,
    model: ModelConfig,
    dataset: String,
    split: &'static str,
    device: String,
    evaluation: EvalReport,
    curve: Vec<CurvePoint>,
    curve_flag: Option<SanityFlag>,
}

fn suite(args: &EvalArgs) -> Result<Suite> {
    let step_size = args.flags.step_size(args.attack.as_deref())?;
    match (&args.suite, &args.attack) {
        (Some(s), None) => Ok(s.parse()?),
        (None, Some(a)) => match a.as_str() {
            "fgsm" => Ok(Suite::Fgsm),
            "transfer" if args.surrogate.is_none() => {
                bail!("--attack transfer needs --surrogate: the model to craft on")
            }
            "transfer" if !args.eps_list.is_empty() => {
                bail!(
                    "--eps-list draws a curve of a suite or of fgsm or pgd, not of --attack transfer"
                )
            }
            // The suite is not run: `evaluate_rank` runs the transfer attack alone, and no
            // curve is drawn (refused above).
            "transfer" => Ok(Suite::Fgsm),
            "pgd" => Ok(Suite::Pgd {
                steps: args.flags.steps(),
                restarts: args.flags.restarts(),
                step_size,
            }),
            other => bail!("invalid --attack {other:?}: expected fgsm, pgd or transfer"),
        },
        (None, None) => Ok(Suite::Standard),
        (Some(_), Some(_)) => bail!("--suite and --attack exclude each other"),
    }
}

/// A robustness curve and its sanity flag.
type Curve = (Vec<CurvePoint>, SanityFlag);

/// The suite's report and, for a list of radii, the robustness curve, on batches of rank `D`.
fn evaluate_rank<const D: usize>(
    model: &Model,
    surrogate: Option<&Model>,
    batches: &[(Tensor<D>, Tensor<1, Int>)],
    args: &EvalArgs,
    suite: Suite,
    threat: &ThreatModel,
) -> Result<(EvalReport, Option<Curve>)> {
    let f = |x: Tensor<D>| model.forward(x);
    let g = surrogate.map(|s| move |x: Tensor<D>| s.forward(x));
    let g_dyn = g.as_ref().map(|g| g as &dyn Differentiable<D>);
    let seed = args.flags.seed();
    let evaluation = match (args.attack.as_deref(), g_dyn) {
        (Some("transfer"), Some(g)) => {
            let apgd = ApgdConfig::new(threat.clone(), ApgdLoss::CrossEntropy).check()?;
            let transfer = Transfer::new(apgd, g);
            evaluate_with(&f, batches, "transfer", &[&transfer], threat, seed)?
        }
        _ => evaluate(&f, g_dyn, batches, suite, threat, seed)?,
    };
    let curve = if args.eps_list.is_empty() {
        None
    } else {
        Some(robustness_curve(
            &f,
            batches,
            suite,
            threat,
            &args.eps_list,
            seed,
        )?)
    };
    Ok((evaluation, curve))
}

/// `--suite text` on a text run: the flags of image and table evaluations are refused, the
/// attack flags set the embedding PGD of the suite.
fn text_suite(args: &EvalArgs, device: &burn::tensor::Device) -> Result<()> {
    let weights = &args.weights;
    for (flag, given) in [
        ("--adapters", args.adapters.is_some()),
        ("--plot", args.plot.is_some()),
        ("--eps-list", !args.eps_list.is_empty()),
        ("--attack", args.attack.is_some()),
        ("--model", weights.model.is_some()),
        ("--hidden", weights.hidden.is_some()),
        ("--dataset", weights.dataset.is_some()),
        ("--data-dir", weights.data_dir.is_some()),
        ("--surrogate-model", args.surrogate_model.is_some()),
        ("--surrogate-hidden", args.surrogate_hidden.is_some()),
        ("--step-size", args.flags.step_size(Some("pgd"))?.is_some()),
    ] {
        if given {
            bail!(
                "{flag} does not apply to --suite text: a text run is evaluated with its own model, tokenizer and test split (a LoRA text run already holds its merged weights)"
            );
        }
    }
    crate::text_eval::run(
        &args.model_file,
        &crate::text_eval::Budget {
            samples: args.samples,
            eps: args.eps,
            norm: args.flags.norm_given(),
            steps: args.flags.steps_given(),
            restarts: args.flags.restarts_given(),
            seed: args.flags.seed_given(),
            max_words: args.max_words,
            max_flips: args.max_flips,
            surrogate: args.surrogate.clone(),
        },
        device,
        args.report.as_deref(),
        args.examples.as_deref(),
    )
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let device = batch_and_device(args.batch_size, &args.device)?;
    let text_run = args.model_file.is_dir()
        && harden_train::run_config(&args.model_file).is_ok_and(|c| c.dataset.is_text());
    match (args.suite.as_deref(), &args.attack) {
        (Some("text"), _) => return text_suite(args, &device),
        (None, None) if text_run => return text_suite(args, &device),
        (suite, attack) if text_run => bail!(
            "{}: {} is a text run; evaluate it with --suite text",
            match (suite, attack) {
                (Some(s), _) => format!("--suite {s}"),
                (None, Some(a)) => format!("--attack {a}"),
                _ => unreachable!("matched above"),
            },
            args.model_file.display()
        ),
        _ => {}
    }
    for (flag, given) in [
        ("--examples", args.examples.is_some()),
        ("--max-words", args.max_words.is_some()),
        ("--max-flips", args.max_flips.is_some()),
    ] {
        if given {
            bail!("{flag} is a setting of --suite text");
        }
    }
    let suite = suite(args)?;
    let eps = match (args.eps, args.eps_list.iter().copied().reduce(f64::max)) {
        (Some(e), _) => e,
        (None, Some(e)) => e,
        (None, None) => bail!("missing --eps (or --eps-list): the radius of the threat model"),
    };
    let threat = args.flags.threat(eps, "--eps")?;
    for &e in &args.eps_list {
        args.flags.threat(e, "--eps-list")?;
    }
    // Destinations are checked first, so a typo does not throw away the evaluation.
    if let Some(path) = &args.report {
        crate::output::check_destination("--report", path)?;
    }
    if let Some(path) = &args.plot {
        crate::output::check_destination("--plot", path)?;
    }
    let weights = args.weights.resolve(&args.model_file)?;
    let (test, _) = weights.test_split()?;
    let n = args.samples.unwrap_or(test.len()).min(test.len());
    if n == 0 {
        bail!("invalid --samples 0: expected at least 1");
    }
    if args.samples.is_some_and(|s| s > test.len()) {
        eprintln!(
            "warning: --samples {} is more than the {} test samples of {}; evaluating all {}",
            args.samples.unwrap_or_default(),
            test.len(),
            weights.dataset,
            test.len()
        );
    }
    let (config, model) = weights.load(&test, &device)?;
    let model = match &args.adapters {
        Some(run) => with_adapters(model, run)?,
        None => model,
    };
    let surrogate = match &args.surrogate {
        Some(file) => {
            let spec = model_spec(
                &weights.spec,
                args.surrogate_model,
                args.surrogate_hidden.clone(),
            )
            .context("--surrogate-hidden")?;
            Some(
                load_model(file, &spec, &test, &device)
                    .context("--surrogate")?
                    .1,
            )
        }
        None => None,
    };
    let (evaluation, curve) = match Batches::first(&test, n, args.batch_size, &device)? {
        Batches::Table(b) => evaluate_rank(&model, surrogate.as_ref(), &b, args, suite, &threat)?,
        Batches::Image(b) => evaluate_rank(&model, surrogate.as_ref(), &b, args, suite, &threat)?,
    };
    let (curve, curve_flag) = match curve {
        Some((curve, flag)) => (curve, Some(flag)),
        None => (Vec::new(), None),
    };
    let report = Report {
        harden: env!("CARGO_PKG_VERSION"),
        model_file: weights.file.clone(),
        adapters: args.adapters.as_ref().map(|run| run.join("adapters.bpk")),
        model: config,
        dataset: weights.dataset.to_string(),
        split: "test",
        device: harden_model::device::describe(&device),
        evaluation,
        curve,
        curve_flag,
    };
    if let Some(path) = &args.plot {
        let points = if report.curve.is_empty() {
            vec![
                CurvePoint {
                    eps: 0.0,
                    robust_accuracy: report.evaluation.clean_accuracy,
                },
                CurvePoint {
                    eps,
                    robust_accuracy: report.evaluation.robust_accuracy,
                },
            ]
        } else {
            report.curve.clone()
        };
        let written = harden_model::atomic::write_with::<anyhow::Error>(path, |tmp| {
            crate::plot::robustness_svg(tmp, &points, &report.evaluation.suite)
        })
        .with_context(|| format!("--plot {}", path.display()));
        if let Err(err) = written {
            // The evaluation is not lost: its report goes to standard output.
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Err(err);
        }
    }
    let json = serde_json::to_string_pretty(&report)?;
    match &args.report {
        Some(path) => {
            if let Err(err) = harden_model::atomic::write_bytes(path, json.as_bytes()) {
                println!("{json}");
                return Err(err).with_context(|| {
                    format!(
                        "--report {} (the report was printed to standard output instead)",
                        path.display()
                    )
                });
            }
            let e = &report.evaluation;
            println!(
                "{}: clean {:.4}, robust {:.4} ({} suite, {} eps {}, {} samples)",
                args.model_file.display(),
                e.clean_accuracy,
                e.robust_accuracy,
                e.suite,
                threat.norm().name(),
                eps,
                e.samples
            );
            for flag in e.flags.iter().filter(|f| f.raised) {
                println!("warning: {}: {}", flag.name, flag.evidence);
            }
        }
        None => println!("{json}"),
    }
    Ok(())
}
