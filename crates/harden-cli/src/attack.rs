//! `harden attack`: adversarial examples of a saved model, written in the dataset's own format.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::{Int, Tensor};
use harden_adversarial::loss::predictions;
use harden_adversarial::pgd::default_step_size;
use harden_adversarial::{Attack, AttackRng, Pgd, PgdConfig, ThreatModel};
use harden_data::source::DatasetSource;
use harden_data::{ArrayDataset, Batches, idx};
use harden_model::{Model, parse_device};
use serde::Serialize;

use crate::attack_flags::AttackFlags;
use crate::grid::{self, Row};
use crate::output;
use crate::weights_args::WeightsArgs;

/// Arguments of `harden attack`.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {
    /// Weights file, or a `harden train` run directory (its best weights).
    model_file: PathBuf,
    #[command(flatten)]
    weights: WeightsArgs,
    /// Attack: fgsm, or pgd (with --steps and --restarts).
    #[arg(long, default_value = "pgd")]
    attack: String,
    #[command(flatten)]
    flags: AttackFlags,
    /// Radius of the threat model.
    #[arg(long, allow_negative_numbers = true)]
    eps: f64,
    /// Attack the first N test samples.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Rows of the PNG grid (image datasets).
    #[arg(long, default_value_t = 8)]
    grid: usize,
    /// Device: auto, flex, ndarray, wgpu or wgpu:N, cuda or cuda:N, cpu.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Output folder (created; files in it are replaced).
    #[arg(long)]
    out: PathBuf,
}

/// One attacked sample in `summary.json`.
#[derive(Debug, Serialize)]
struct Sample {
    index: usize,
    label: usize,
    clean_prediction: usize,
    adversarial_prediction: usize,
    linf: f32,
    l2: f32,
}

/// `summary.json`.
#[derive(Debug, Serialize)]
struct Summary {
    harden: &'static str,
    model_file: PathBuf,
    dataset: String,
    attack: String,
    threat: ThreatModel,
    samples: usize,
    clean_accuracy: f64,
    adversarial_accuracy: f64,
    files: Vec<String>,
    note: String,
    per_sample: Vec<Sample>,
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

fn classes(t: Tensor<1, Int>) -> Vec<usize> {
    t.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("int data")
        .into_iter()
        .map(|v| v as usize)
        .collect()
}

/// Host copies of a batch's clean inputs, adversarial inputs, labels and clean predictions.
#[derive(Default)]
struct Attacked {
    clean: Vec<f32>,
    adversarial: Vec<f32>,
    labels: Vec<usize>,
    clean_prediction: Vec<usize>,
}

impl Attacked {
    /// Attacks batches of rank `D` and appends them.
    fn extend<const D: usize>(
        &mut self,
        model: &Model,
        attack: &Pgd,
        batches: &[(Tensor<D>, Tensor<1, Int>)],
        rng: &mut AttackRng,
    ) {
        let f = |x: Tensor<D>| model.forward(x);
        for (x, y) in batches {
            let adv = attack.perturb(&f, x.clone(), y.clone(), rng).adversarial;
            self.clean_prediction
                .extend(classes(predictions(f(x.clone()))));
            self.clean.extend(to_vec(x.clone()));
            self.adversarial.extend(to_vec(adv));
            self.labels.extend(classes(y.clone()));
        }
    }
}

/// The model's predictions on batches of rank `D`, in order.
fn predictions_of<const D: usize>(
    model: &Model,
    batches: &[(Tensor<D>, Tensor<1, Int>)],
) -> Vec<usize> {
    batches
        .iter()
        .flat_map(|(x, _)| classes(predictions(model.forward(x.clone()))))
        .collect()
}

/// Runs `harden attack`.
pub fn run(args: &AttackArgs) -> Result<()> {
    // The device first: a backend this build lacks is refused before any file is read.
    let device = parse_device(&args.device).context("--device")?;
    if args.model_file.is_dir()
        && harden_train::run_config(&args.model_file).is_ok_and(|c| c.dataset.is_text())
    {
        // A text run: the text suite, its report and the attacked texts side by side.
        if args.attack != "pgd" {
            bail!(
                "--attack {} is for image and table models; a text run is attacked by DeepWordBug, HotFlip and embedding PGD",
                args.attack
            );
        }
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("--out {}", args.out.display()))?;
        return crate::text_eval::run(
            &args.model_file,
            &crate::text_eval::Budget {
                samples: Some(args.samples),
                eps: Some(args.eps),
                norm: args.flags.norm_given(),
                steps: args.flags.steps_given(),
                restarts: args.flags.restarts_given(),
                seed: args.flags.seed_given(),
                max_words: None,
                max_flips: None,
                surrogate: None,
            },
            &device,
            Some(&args.out.join("report.json")),
            Some(&args.out.join("examples.tsv")),
        );
    }
    let threat = args.flags.threat(args.eps, "--eps")?;
    let flags = &args.flags;
    let step_size = flags.step_size(Some(&args.attack))?;
    let attack = match args.attack.as_str() {
        "fgsm" => PgdConfig::fgsm(threat.clone()),
        "pgd" => PgdConfig::new(
            threat.clone(),
            flags.steps(),
            step_size.unwrap_or_else(|| default_step_size(args.eps, flags.steps())),
        )
        .with_restarts(flags.restarts()),
        other => bail!("invalid --attack {other:?}: expected fgsm or pgd"),
    }
    .check()
    .context("--steps/--restarts")?;
    if args.samples == 0 {
        bail!("invalid --samples 0: expected at least 1");
    }
    let weights = args.weights.resolve(&args.model_file)?;
    let (test, scaler) = weights.test_split()?;
    let test = &test;
    let source = &weights.dataset;
    let n = args.samples.min(test.len());
    let (_, model) = weights.load(test, &device)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("--out {}", args.out.display()))?;

    let mut rng = AttackRng::new(flags.seed());
    let mut attacked = Attacked::default();
    match Batches::first(test, n, 256, &device)? {
        Batches::Table(b) => attacked.extend(&model, &attack, &b, &mut rng),
        Batches::Image(b) => attacked.extend(&model, &attack, &b, &mut rng),
    }
    let Attacked {
        clean,
        mut adversarial,
        labels,
        clean_prediction: clean_pred,
    } = attacked;
    let width = test.sample_len();
    let is_idx = matches!(source, DatasetSource::Mnist | DatasetSource::FashionMnist);
    if is_idx {
        // IDX holds bytes: round each perturbation towards the clean value so the saved
        // example stays inside the ball, and evaluate what is saved.
        for (a, &c) in adversarial.iter_mut().zip(&clean) {
            let c255 = (c * 255.0).round();
            *a = ((c255 + (*a * 255.0 - c255).trunc()).clamp(0.0, 255.0)) / 255.0;
        }
    }
    // What is saved is evaluated, batched by the same rule as the clean samples.
    let saved = ArrayDataset::new(
        adversarial.clone(),
        test.sample_shape().to_vec(),
        labels.iter().map(|&l| l as u32).collect(),
        test.class_names().to_vec(),
    )?;
    let adv_pred = match Batches::first(&saved, n, 256, &device)? {
        Batches::Table(b) => predictions_of(&model, &b),
        Batches::Image(b) => predictions_of(&model, &b),
    };

    let mut files = Vec::new();
    if is_idx {
        let [_, h, w] = <[usize; 3]>::try_from(test.sample_shape()).expect("IDX images");
        let bytes: Vec<u8> = adversarial
            .iter()
            .map(|v| (v * 255.0).round() as u8)
            .collect();
        idx::write(
            &args.out.join("adversarial-images-idx3-ubyte"),
            &[n, h, w],
            &bytes,
        )?;
        let label_bytes: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
        idx::write(
            &args.out.join("adversarial-labels-idx1-ubyte"),
            &[n],
            &label_bytes,
        )?;
        files.extend(
            [
                "adversarial-images-idx3-ubyte",
                "adversarial-labels-idx1-ubyte",
            ]
            .map(String::from),
        );
    } else {
        let mut csv = (0..width).map(|i| format!("f{i},")).collect::<String>();
        csv.push_str("label\n");
        for (i, row) in adversarial.chunks(width).enumerate() {
            let mut row = row.to_vec();
            // Back to the units of the input file when the data was min-max scaled.
            if let Some(scaler) = &scaler {
                scaler.inverse_row(&mut row);
            }
            for v in row {
                write!(csv, "{v},").expect("string write");
            }
            writeln!(csv, "{}", test.class_names()[labels[i]]).expect("string write");
        }
        let path = args.out.join("adversarial.csv");
        output::write_file(&path, csv.as_bytes())?;
        files.push("adversarial.csv".to_string());
    }
    if let [c @ (1 | 3), h, w] = *test.sample_shape() {
        let rows: Vec<Row<'_>> = (0..args.grid.min(n))
            .map(|i| Row {
                clean: &clean[i * width..(i + 1) * width],
                adversarial: &adversarial[i * width..(i + 1) * width],
                label: labels[i],
                clean_prediction: clean_pred[i],
                adversarial_prediction: adv_pred[i],
            })
            .collect();
        grid::write_png(&args.out.join("grid.png"), [c, h, w], &rows, args.eps)?;
        files.push("grid.png".to_string());
    }

    let per_sample: Vec<Sample> = (0..n)
        .map(|i| {
            let d: Vec<f32> = adversarial[i * width..(i + 1) * width]
                .iter()
                .zip(&clean[i * width..(i + 1) * width])
                .map(|(a, c)| a - c)
                .collect();
            Sample {
                index: i,
                label: labels[i],
                clean_prediction: clean_pred[i],
                adversarial_prediction: adv_pred[i],
                linf: d.iter().fold(0.0, |m, v| m.max(v.abs())),
                l2: d.iter().map(|v| v * v).sum::<f32>().sqrt(),
            }
        })
        .collect();
    let share =
        |p: &[usize]| p.iter().zip(&labels).filter(|(a, b)| a == b).count() as f64 / n as f64;
    let summary = Summary {
        harden: env!("CARGO_PKG_VERSION"),
        model_file: weights.file.clone(),
        dataset: source.to_string(),
        attack: attack_name(args, attack.config()),
        threat,
        samples: n,
        clean_accuracy: share(&clean_pred),
        adversarial_accuracy: share(&adv_pred),
        files: files.clone(),
        note: if is_idx {
            "perturbations rounded towards the clean image to whole IDX bytes; accuracies are of the saved bytes".to_string()
        } else {
            "CSV values are in the input file's units (min-max scaling undone)".to_string()
        },
        per_sample,
    };
    let json = serde_json::to_string_pretty(&summary)?;
    output::write_file(&args.out.join("summary.json"), json.as_bytes())?;
    println!(
        "{} on {n} test samples of {source}: accuracy {:.4} clean, {:.4} adversarial; wrote {} and summary.json to {}",
        summary.attack,
        summary.clean_accuracy,
        summary.adversarial_accuracy,
        files.join(", "),
        args.out.display()
    );
    Ok(())
}

fn attack_name(args: &AttackArgs, attack: &PgdConfig) -> String {
    let (norm, eps) = (args.flags.norm().name(), args.eps);
    match args.attack.as_str() {
        "fgsm" => format!("FGSM {norm} eps {eps}"),
        _ => format!(
            "PGD-{}x{} step {} {norm} eps {eps}",
            attack.steps, attack.restarts, attack.step_size
        ),
    }
}
