//! `harden predict`: classify new inputs with a trained model, through exactly its run's
//! pipeline (the scaler of a table run, the tokenizer, word recognition and truncation of a
//! text run), from files, or as a line-by-line JSON service on standard input.

mod answer;
mod input;
mod request;

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use harden_data::{ArrayDataset, MinMaxScaler, TextTokenizer};
use harden_model::{Model, TextModel};
use harden_train::predict::{Prediction, predict_samples, predict_texts};
use harden_train::run_config;

use answer::{Format, Writer};
use input::{InputFormat, Source};
use request::Inputs;

use crate::weights_args::{WeightsArgs, batch_and_device, with_adapters};

/// Arguments of `harden predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// A run directory of `harden train` (its best weights), or a weights file with --model
    /// and --dataset.
    model_file: PathBuf,
    /// Inputs: texts (one per line, or a .tsv file with the run's text column), table rows
    /// (comma-separated feature values), or images (PNG, IDX, CIFAR-10 binary files); `-` or
    /// none: standard input (texts and rows).
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    weights: WeightsArgs,
    /// LoRA adapters to apply over the weights: a run directory of `harden train --lora-rank`.
    #[arg(long)]
    adapters: Option<PathBuf>,
    /// Classify the run's test split (the samples `harden eval` evaluates) instead of inputs.
    #[arg(long, conflicts_with = "inputs")]
    test_split: bool,
    /// How text inputs are read.
    #[arg(long, value_enum, default_value = "auto")]
    input_format: InputFormat,
    /// Answer format: one JSON object per line, or CSV or TSV with a header line.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
    /// Write the answers to this file (atomically) instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Answer JSON requests, one per line on standard input, one JSON answer per line on
    /// standard output: {"texts": [...]}, {"rows": [[...]]} or {"images": [[...]]}.
    #[arg(long, conflicts_with_all = ["inputs", "test_split", "out", "format", "input_format"])]
    serve_stdin: bool,
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Device: auto, flex, ndarray, wgpu or wgpu:N, cuda or cuda:N, cpu.
    #[arg(long, default_value = "auto")]
    device: String,
}

/// A model with the steps that bring an input to it.
enum Pipeline {
    /// Images or table rows.
    Array {
        model: Box<Model>,
        /// `[F]` or `[C, H, W]`.
        shape: Vec<usize>,
        /// A table run's scaler, fitted on its training split.
        scaler: Option<MinMaxScaler>,
        test: ArrayDataset,
    },
    /// Texts.
    Text {
        model: Box<TextModel>,
        tokenizer: Box<TextTokenizer>,
        max_len: usize,
        /// The run's text column in TSV inputs (`None`: `text`, else the last).
        column: Option<String>,
        test: Vec<String>,
    },
}

/// A loaded model: its pipeline and its class names.
struct Loaded {
    pipeline: Pipeline,
    classes: Vec<String>,
}

impl Loaded {
    /// Loads what `args` names on `device`.
    fn load(args: &PredictArgs, device: &Device) -> Result<Self> {
        let path = &args.model_file;
        if !path.exists() {
            bail!("{}: no such run directory or weights file", path.display());
        }
        if path.is_dir() {
            let config = run_config(path)?;
            if config.dataset.is_text() {
                return Self::load_text(args, device);
            }
        }
        let resolved = args.weights.resolve(path)?;
        let (test, scaler) = resolved.test_split()?;
        let (_, model) = resolved.load(&test, device)?;
        let model = match &args.adapters {
            Some(run) => with_adapters(model, run)?,
            None => model,
        };
        Ok(Self {
            classes: test.class_names().to_vec(),
            pipeline: Pipeline::Array {
                model: Box::new(model),
                shape: test.sample_shape().to_vec(),
                scaler,
                test,
            },
        })
    }

    /// A text run and the test split of its dataset (for the class names).
    fn load_text(args: &PredictArgs, device: &Device) -> Result<Self> {
        let w = &args.weights;
        if w.model.is_some() || w.hidden.is_some() || w.dataset.is_some() || w.data_dir.is_some() {
            bail!(
                "--model, --hidden, --dataset and --data-dir describe image and table weights; the text run {} records its own",
                args.model_file.display()
            );
        }
        harden_train::run_dir::check_dataset(&args.model_file)?;
        let (config, tokenizer, model) =
            harden_train::text::load_text_run(&args.model_file, device)?;
        let model = match &args.adapters {
            Some(run) => with_adapters(model, run)?,
            None => model,
        };
        let (_, test) = config
            .dataset
            .load_text_columns(&config.text.columns)
            .with_context(|| format!("the dataset of {}", args.model_file.display()))?;
        Ok(Self {
            classes: test.class_names().to_vec(),
            pipeline: Pipeline::Text {
                model: Box::new(model),
                tokenizer: Box::new(tokenizer),
                max_len: config.text.max_len,
                column: config.text.columns.text.clone(),
                test: test.texts().to_vec(),
            },
        })
    }
}

/// Runs `harden predict`.
pub fn run(args: &PredictArgs) -> Result<()> {
    let device = batch_and_device(args.batch_size, &args.device)?;
    if let Some(out) = &args.out {
        crate::output::check_destination("--out", out)?;
    }
    let loaded = Loaded::load(args, &device)?;
    if args.input_format != InputFormat::Auto
        && (args.test_split || !matches!(loaded.pipeline, Pipeline::Text { .. }))
    {
        bail!(
            "--input-format applies to text inputs: table rows are read as CSV, images from PNG, IDX and CIFAR-10 files, and --test-split reads the run's own split"
        );
    }
    let result = if args.serve_stdin {
        serve(&loaded, args.batch_size, &device)
    } else {
        match &args.out {
            Some(path) => harden_model::atomic::write_with(path, |tmp| {
                let file = std::fs::File::create(tmp)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                let writer =
                    Writer::new(args.format, loaded.classes.clone(), BufWriter::new(file))?;
                predict_all(&loaded, args, &device, writer)?;
                Ok(())
            }),
            None => {
                let stdout = BufWriter::new(std::io::stdout().lock());
                let writer = Writer::new(args.format, loaded.classes.clone(), stdout)?;
                predict_all(&loaded, args, &device, writer)
            }
        }
    };
    match result {
        // A reader that stopped reading (`| head`) is not an error.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A progress bar of the bytes read, on standard error when it is a terminal.
fn progress() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .expect("valid template"),
    )
}

/// Classifies every input `args` names (or the test split), writing each batch's answers as
/// they come.
fn predict_all<W: Write>(
    loaded: &Loaded,
    args: &PredictArgs,
    device: &Device,
    mut writer: Writer<W>,
) -> Result<()> {
    let batch = args.batch_size;
    let sources: Vec<Source> = if args.inputs.is_empty() {
        vec![Source::Stdin]
    } else {
        args.inputs.iter().map(|p| Source::of(p)).collect()
    };
    let bar = progress();
    match &loaded.pipeline {
        Pipeline::Array {
            model,
            shape,
            scaler,
            test,
        } => {
            if args.test_split {
                writer.write(&predict_samples(
                    model,
                    shape,
                    test.features(),
                    batch,
                    device,
                ))?;
                return writer.finish().map(drop);
            }
            for source in &sources {
                match (shape.as_slice(), source) {
                    (&[features], _) => input::rows(source, features, batch, &bar, |mut raw| {
                        if let Some(s) = scaler {
                            raw.chunks_exact_mut(features)
                                .for_each(|row| s.transform_row(row));
                        }
                        writer.write(&predict_samples(model, shape, &raw, batch, device))
                    })?,
                    (&[c, h, w], Source::File(path)) => {
                        let values = input::images(path, [c, h, w])?;
                        writer.write(&predict_samples(model, shape, &values, batch, device))?;
                    }
                    (_, Source::Stdin) => bail!(
                        "an image model reads image files (PNG, IDX, CIFAR-10 binary), not standard input; use --serve-stdin to send pixel values"
                    ),
                    _ => bail!("samples of shape {shape:?} are neither table rows nor images"),
                }
            }
        }
        Pipeline::Text {
            model,
            tokenizer,
            max_len,
            column,
            test,
        } => {
            let predict = |texts: &[String]| {
                predict_texts(&**model, tokenizer, *max_len, texts, batch, device)
            };
            if args.test_split {
                for chunk in test.chunks(batch) {
                    writer.write(&predict(chunk))?;
                }
                return writer.finish().map(drop);
            }
            for source in &sources {
                input::texts(
                    source,
                    args.input_format,
                    column.as_deref(),
                    batch,
                    &bar,
                    |texts| writer.write(&predict(&texts)),
                )?;
            }
        }
    }
    bar.finish_and_clear();
    writer.finish().map(drop)
}

/// Answers requests from standard input until it closes; see [`request`].
fn serve(loaded: &Loaded, batch: usize, device: &Device) -> Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        if stdin.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (id, result) = match request::parse(&line) {
            Err(e) => (e.id, Err(e.message)),
            Ok(r) => (r.id, answer(loaded, r.inputs, batch, device)),
        };
        let answers: Vec<answer::Answer> = match &result {
            Ok(predictions) => predictions
                .iter()
                .map(|p| answer::Answer::of(p, &loaded.classes, None))
                .collect(),
            Err(_) => Vec::new(),
        };
        let served = Served {
            id,
            predictions: result.is_ok().then_some(answers),
            error: result.as_ref().err().cloned(),
        };
        serde_json::to_writer(&mut out, &served)?;
        writeln!(out)?;
        out.flush()?;
    }
}

/// One line of `--serve-stdin`'s output: the request's `id` if it had one, and its answers or
/// what is wrong with it.
#[derive(serde::Serialize)]
struct Served<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    predictions: Option<Vec<answer::Answer<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The answers to one request's inputs, or what is wrong with them for this model.
fn answer(
    loaded: &Loaded,
    inputs: Inputs,
    batch: usize,
    device: &Device,
) -> Result<Vec<Prediction>, String> {
    match (&loaded.pipeline, inputs) {
        (
            Pipeline::Text {
                model,
                tokenizer,
                max_len,
                ..
            },
            Inputs::Texts(texts),
        ) => Ok(predict_texts(
            &**model, tokenizer, *max_len, &texts, batch, device,
        )),
        (
            Pipeline::Array {
                model,
                shape,
                scaler,
                ..
            },
            Inputs::Rows(rows),
        ) if shape.len() == 1 => {
            let features = shape[0];
            let mut values = Vec::with_capacity(rows.len() * features);
            for (i, mut row) in rows.into_iter().enumerate() {
                if row.len() != features {
                    return Err(format!(
                        "rows[{i}] has {} values; this model reads {features} features (without the label)",
                        row.len()
                    ));
                }
                if let Some(s) = scaler {
                    s.transform_row(&mut row);
                }
                values.extend(row);
            }
            Ok(predict_samples(model, shape, &values, batch, device))
        }
        (Pipeline::Array { model, shape, .. }, Inputs::Images(images)) if shape.len() == 3 => {
            let len: usize = shape.iter().product();
            let mut values = Vec::with_capacity(images.len() * len);
            for (i, image) in images.into_iter().enumerate() {
                if image.len() != len {
                    return Err(format!(
                        "images[{i}] has {} values; this model reads images of {}x{}x{} = {len} values",
                        image.len(),
                        shape[0],
                        shape[1],
                        shape[2]
                    ));
                }
                values.extend(image);
            }
            Ok(predict_samples(model, shape, &values, batch, device))
        }
        (pipeline, inputs) => {
            let wanted = match pipeline {
                Pipeline::Text { .. } => "texts",
                Pipeline::Array { shape, .. } if shape.len() == 1 => "rows",
                Pipeline::Array { .. } => "images",
            };
            Err(format!(
                "this model classifies {wanted}: send {{\"{wanted}\": [...]}}, not \"{}\"",
                inputs.key()
            ))
        }
    }
}
