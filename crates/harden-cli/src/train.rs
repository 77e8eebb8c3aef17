//! `harden train`: adversarial training from flags or a TOML file, into a run directory.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use harden_data::DatasetSource;
use harden_data::spelling::Backoff;
use harden_model::{LoraSpec, ModelKind, ModelSpec, parse_device, parse_devices};
use harden_train::recorder::EpochRecord;
use harden_train::{
    Norm, ObjectiveKind, OptimizerKind, Output, RunOptions, SavedModel, ScheduleKind, TrainConfig,
    TrainReport, default_run_dir, run_config, train,
};

use crate::kinds::Kind;
use crate::weights_args::model_spec;

/// Arguments of `harden train`. Every setting defaults to the `--config` file's value, then
/// to the built-in default (an adversarially trained MLP on the embedded digits).
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Read settings from a TOML file with the flags' names as keys (e.g. `eps = 0.3`,
    /// `eps-warmup-epochs = 3`); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Dataset: digits, breast-cancer, mnist, fashion-mnist or csv:PATH [default: digits].
    #[arg(long)]
    dataset: Option<DatasetSource>,
    /// Folder holding mnist/ and fashion-mnist/ (default: $HARDEN_DATA_DIR, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Architecture [default: mlp; text-transformer for a tsv: dataset].
    #[arg(long, value_parser = Kind::<ModelKind>::new())]
    model: Option<ModelKind>,
    /// Hidden layer widths of an MLP, comma-separated [default: 256,128].
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set)]
    hidden: Option<Vec<usize>>,
    /// Objective [default: pgd].
    #[arg(long, value_parser = Kind::<ObjectiveKind>::new())]
    objective: Option<ObjectiveKind>,
    /// Threat model norm (`inf` and `2` are accepted too) [default: linf].
    #[arg(long, value_parser = Kind::<Norm>::new())]
    norm: Option<Norm>,
    /// Radius of the threat model [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    eps: Option<f64>,
    /// Attack step size [default: 1.25 eps for fgsm-rs, else 2.5 eps / steps].
    #[arg(long, allow_negative_numbers = true)]
    alpha: Option<f64>,
    /// Attack steps of PGD training and of the TRADES inner maximisation [default: 7].
    #[arg(long)]
    steps: Option<usize>,
    /// Random restarts of the training attack [default: 1].
    #[arg(long)]
    restarts: Option<usize>,
    /// TRADES weight of the robust term [default: 6].
    #[arg(long, allow_negative_numbers = true)]
    beta: Option<f64>,
    /// Epochs over which eps rises linearly from 0 [default: 0, no warm-up].
    #[arg(long, allow_negative_numbers = true)]
    eps_warmup_epochs: Option<f64>,
    /// Number of epochs [default: 40].
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size [default: 32].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Optimizer [default: adam].
    #[arg(long, value_parser = Kind::<OptimizerKind>::new())]
    optimizer: Option<OptimizerKind>,
    /// Learning rate, the peak of a one-cycle schedule [default: 0.002].
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// SGD momentum [default: 0.9].
    #[arg(long, allow_negative_numbers = true)]
    momentum: Option<f64>,
    /// Weight decay [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    weight_decay: Option<f64>,
    /// Learning-rate schedule [default: one-cycle].
    #[arg(long, value_parser = Kind::<ScheduleKind>::new())]
    schedule: Option<ScheduleKind>,
    /// Epoch at which one-cycle peaks [default: (2 * epochs) / 5].
    #[arg(long, allow_negative_numbers = true)]
    peak_epoch: Option<f64>,
    /// Epochs at which piecewise multiplies the rate by --gamma, comma-separated.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, action = clap::ArgAction::Set)]
    milestones: Option<Vec<f64>>,
    /// Factor of the piecewise schedule [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    gamma: Option<f64>,
    /// Seed of initialisation, shuffling, validation split and attacks [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Training samples held out for validation [default: 1000, at most a fifth].
    #[arg(long)]
    valid_samples: Option<usize>,
    /// PGD steps of the validation robust accuracy [default: 10].
    #[arg(long)]
    valid_steps: Option<usize>,
    /// Stop when validation robust accuracy falls this far below its best while clean
    /// accuracy holds (catastrophic overfitting); 1 disables [default: 0.2].
    #[arg(long, allow_negative_numbers = true)]
    collapse_drop: Option<f64>,
    /// Epochs in a row the fall must last before the guard stops the run [default: 2].
    #[arg(long)]
    collapse_patience: Option<usize>,
    /// Test samples of the final evaluation [default: all].
    #[arg(long)]
    eval_samples: Option<usize>,
    /// PGD steps of the final evaluation [default: 20].
    #[arg(long)]
    eval_steps: Option<usize>,
    /// PGD restarts of the final evaluation [default: 1].
    #[arg(long)]
    eval_restarts: Option<usize>,
    /// Text models: width of embeddings and layers [default: 64].
    #[arg(long, help_heading = "Text")]
    width: Option<usize>,
    /// text-transformer: encoder layers [default: 2].
    #[arg(long, help_heading = "Text")]
    layers: Option<usize>,
    /// text-transformer: attention heads [default: 4].
    #[arg(long, help_heading = "Text")]
    heads: Option<usize>,
    /// text-transformer: feed-forward width [default: 128].
    #[arg(long, help_heading = "Text")]
    ff: Option<usize>,
    /// text-transformer: dropout [default: 0.1].
    #[arg(long, allow_negative_numbers = true, help_heading = "Text")]
    dropout: Option<f64>,
    /// Text: WordPiece vocabulary size, trained on the training split [default: 8000].
    #[arg(long, help_heading = "Text")]
    vocab_size: Option<usize>,
    /// Text: longest sequence in tokens; longer texts are truncated [default: 128].
    #[arg(long, help_heading = "Text")]
    max_len: Option<usize>,
    /// FreeLB: magnitude of the random start [default: 0].
    #[arg(long, allow_negative_numbers = true, help_heading = "Text")]
    init_mag: Option<f64>,
    /// FreeLB: per-sample L2 bound of the perturbation, 0 for none [default: 0].
    #[arg(long, allow_negative_numbers = true, help_heading = "Text")]
    max_norm: Option<f64>,
    /// Character attack and A2T: edited words per text [default: 3].
    #[arg(long, help_heading = "Text")]
    max_words: Option<usize>,
    /// Token attack (HotFlip): replaced tokens per text [default: 3].
    #[arg(long, help_heading = "Text")]
    max_flips: Option<usize>,
    /// Text, adversarial objectives: validation texts attacked by the character attack after
    /// each epoch, to record robustness; 0 for none [default: 100].
    #[arg(long, help_heading = "Text")]
    valid_attack_texts: Option<usize>,
    /// Text: the TSV column holding the texts [default: text, else the last].
    #[arg(long, help_heading = "Text")]
    text_column: Option<String>,
    /// Text: the TSV column holding the labels [default: label, else the first].
    #[arg(long, help_heading = "Text")]
    label_column: Option<String>,
    /// Text: word recognition in front of the model: a word the training split never used is
    /// corrected to the training word one character edit away that its neighbours, then its
    /// frequency, favour; one with no such word is kept (pass-through) or dropped (neutral)
    /// [default when given without a value: neutral].
    #[arg(
        long,
        help_heading = "Text",
        num_args = 0..=1,
        default_missing_value = "neutral",
        value_name = "BACKOFF",
        value_parser = Kind::<Backoff>::new()
    )]
    word_recognition: Option<Backoff>,
    /// A2T: share of each batch also trained on its adversarial texts [default: 0.5].
    #[arg(long, allow_negative_numbers = true, help_heading = "Text")]
    adv_fraction: Option<f64>,
    /// Start from these weights: a run directory (its best.bpk; its architecture unless
    /// --model is given), ARCH:FILE, or a weights file of --model's architecture.
    #[arg(long, help_heading = "Small models")]
    init: Option<SavedModel>,
    /// Train rank-R LoRA adapters on the --init weights instead of every weight.
    #[arg(long, help_heading = "Small models")]
    lora_rank: Option<usize>,
    /// LoRA scale numerator: updates are (alpha / rank) a b [default: 2 x rank].
    #[arg(
        long,
        allow_negative_numbers = true,
        help_heading = "Small models",
        requires = "lora_rank"
    )]
    lora_alpha: Option<f64>,
    /// LoRA: adapt only weights whose path contains one of these, comma-separated (e.g.
    /// fc1,fc2 or encoder) [default: every matrix].
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, help_heading = "Small models", requires = "lora_rank")]
    lora_targets: Option<Vec<String>>,
    /// LoRA: adapt convolution kernels too (over their [out, in*kh*kw] matrix view).
    #[arg(long, help_heading = "Small models", requires = "lora_rank")]
    lora_convolutions: bool,
    /// LoRA: train these weights in full instead (paths containing one of these, e.g. fc2).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, help_heading = "Small models", requires = "lora_rank")]
    lora_full: Option<Vec<String>>,
    /// The teacher of --objective ard or rslad: a run directory, ARCH:FILE or a weights file
    /// (a text run directory for text data).
    #[arg(long, help_heading = "Small models")]
    teacher: Option<SavedModel>,
    /// ARD: weight of the distillation term, the rest on clean cross-entropy [default: 1].
    #[arg(long, allow_negative_numbers = true, help_heading = "Small models")]
    distill_alpha: Option<f64>,
    /// ARD: softmax temperature [default: 30].
    #[arg(long, allow_negative_numbers = true, help_heading = "Small models")]
    temperature: Option<f64>,
    /// The static models of --objective ensemble-at, comma-separated (run directories,
    /// ARCH:FILE or weights files; text run directories for text data).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, help_heading = "Small models")]
    surrogates: Option<Vec<SavedModel>>,
    /// Device: auto, flex, ndarray, wgpu or wgpu:N, cuda or cuda:N, cpu.
    #[arg(long, default_value = "auto", conflicts_with = "devices")]
    device: String,
    /// Several devices for distributed data-parallel training, comma-separated
    /// (e.g. cuda:0,cuda:1).
    #[arg(long)]
    devices: Option<String>,
    /// Run directory [default: runs/TIMESTAMP-DATASET-OBJECTIVE].
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last complete checkpoint.
    #[arg(long, conflicts_with = "config")]
    resume: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, conflicts_with = "json")]
    quiet: bool,
    /// Print one JSON object per line: each epoch, then the report.
    #[arg(long)]
    json: bool,
}

impl TrainArgs {
    /// Applies the flags given to `config`.
    ///
    /// # Errors
    ///
    /// `--hidden` for an architecture without hidden widths.
    fn apply(&self, config: &mut TrainConfig) -> Result<()> {
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = &self.$field {
                    config.$field = v.clone();
                }
            )*};
        }
        macro_rules! set_some {
            ($($field:ident),*) => {$(
                if let Some(v) = &self.$field {
                    config.$field = Some(v.clone());
                }
            )*};
        }
        set!(
            dataset,
            objective,
            eps,
            steps,
            restarts,
            beta,
            eps_warmup_epochs,
            epochs,
            batch_size,
            optimizer,
            lr,
            momentum,
            weight_decay,
            schedule,
            gamma,
            seed,
            valid_samples,
            valid_steps,
            collapse_drop,
            collapse_patience,
            eval_steps,
            eval_restarts
        );
        set_some!(
            data_dir,
            norm,
            alpha,
            peak_epoch,
            milestones,
            eval_samples,
            init,
            teacher
        );
        set!(distill_alpha, temperature, surrogates);
        if let Some(rank) = self.lora_rank {
            config.lora = Some(LoraSpec {
                rank,
                alpha: self.lora_alpha.unwrap_or(2.0 * rank as f64),
                targets: self.lora_targets.clone().unwrap_or_default(),
                convolutions: self.lora_convolutions,
                full: self.lora_full.clone().unwrap_or_default(),
            });
        }
        if self.model.is_none()
            && let Some(init) = &config.init
            && init.path.is_dir()
            && let Ok(base) = run_config(&init.path)
        {
            // Fine-tuning continues the architecture of the run it starts from.
            config.model = base.model;
        }
        if config.dataset.is_text() && self.model.is_none() && config.model == ModelSpec::default()
        {
            // The default architecture of text data, as the MLP is of images and tables.
            config.model = ModelSpec::from(ModelKind::TextTransformer);
        }
        config.model = model_spec(&config.model, self.model, self.hidden.clone())?;
        macro_rules! set_text {
            ($($field:ident),*) => {$(
                if let Some(v) = self.$field {
                    config.text.$field = v;
                }
            )*};
        }
        set_text!(
            vocab_size,
            max_len,
            init_mag,
            max_norm,
            max_words,
            max_flips,
            adv_fraction,
            valid_attack_texts
        );
        if let Some(backoff) = self.word_recognition {
            if !config.dataset.is_text() {
                bail!(
                    "--word-recognition corrects the words of text data; {} is not a text dataset",
                    config.dataset
                );
            }
            config.text.word_recognition = Some(backoff);
        }
        if let Some(c) = &self.text_column {
            config.text.columns.text = Some(c.clone());
        }
        if let Some(c) = &self.label_column {
            config.text.columns.label = Some(c.clone());
        }
        let asked = [
            ("--width", self.width.is_some()),
            ("--layers", self.layers.is_some()),
            ("--heads", self.heads.is_some()),
            ("--ff", self.ff.is_some()),
            ("--dropout", self.dropout.is_some()),
        ];
        match &mut config.model {
            ModelSpec::TextTransformer {
                width,
                layers,
                heads,
                ff,
                dropout,
            } => {
                *width = self.width.unwrap_or(*width);
                *layers = self.layers.unwrap_or(*layers);
                *heads = self.heads.unwrap_or(*heads);
                *ff = self.ff.unwrap_or(*ff);
                *dropout = self.dropout.unwrap_or(*dropout);
            }
            ModelSpec::BagOfEmbeddings { width } => {
                *width = self.width.unwrap_or(*width);
                if let Some((flag, _)) = asked[1..].iter().find(|(_, given)| *given) {
                    bail!(
                        "{flag} sets a text-transformer size; bag-of-embeddings has only --width"
                    );
                }
            }
            other => {
                if let Some((flag, _)) = asked.iter().find(|(_, given)| *given) {
                    bail!(
                        "{flag} sets a text model size; {} has none",
                        other.kind().name()
                    );
                }
            }
        }
        Ok(())
    }
}

fn percent(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

/// One epoch's line; `attack` names the validation attack.
fn print_epoch(record: &EpochRecord, epochs: usize, attack: &str) {
    println!(
        "epoch {:>3}/{epochs}  loss {:.4}  train acc {}  valid clean {}  {attack} {}  lr {:.2e}  eps {:.3}  {:.1} s ({:.0} samples/s)",
        record.epoch,
        record.train_loss,
        percent(record.train_accuracy),
        percent(record.valid_accuracy),
        percent(record.valid_robust_accuracy),
        record.lr,
        record.eps,
        record.seconds,
        record.samples_per_second
    );
}

fn print_report(report: &TrainReport, out: &std::path::Path) {
    if let Some(reason) = &report.stopped_early {
        println!("stopped early: {reason}");
    }
    let e = &report.evaluation;
    println!(
        "{} weights on {} test samples: clean {}, PGD-{}x{} robust {} ({:.1} s); training took {:.1} s",
        e.weights,
        e.samples,
        percent(e.clean_accuracy),
        report.config.eval_steps,
        report.config.eval_restarts,
        percent(e.robust_accuracy),
        e.seconds,
        report.train_seconds
    );
    for flag in e.details.flags.iter().filter(|f| f.raised) {
        println!("warning: {}: {}", flag.name, flag.evidence);
    }
    let p = &report.parameters;
    println!(
        "parameters: {} trained of {} ({:.2}%)",
        p.trainable,
        p.total,
        100.0 * p.trainable as f64 / p.total.max(1) as f64
    );
    println!(
        "wrote {}/{{best,final}}.{{bpk,safetensors}}{}, metrics.jsonl, report.json",
        out.display(),
        if report.config.lora.is_some() {
            " (adapters merged), adapters.bpk, adapters/ (PEFT)"
        } else {
            ""
        }
    );
}

/// `mlp 256,128`, `small-cnn`.
fn describe(model: &ModelSpec) -> String {
    match model {
        ModelSpec::Mlp { hidden } => format!(
            "mlp {}",
            hidden
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.kind().name(),
    }
}

/// Runs `harden train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let (config, out, resume) = match &args.resume {
        Some(dir) => {
            let saved =
                run_config(dir).with_context(|| format!("cannot resume from {}", dir.display()))?;
            let mut config = saved.clone();
            args.apply(&mut config)?;
            if config != saved {
                bail!(
                    "--resume continues {} with its saved settings (config.json); drop the other training flags",
                    dir.display()
                );
            }
            (config, dir.clone(), true)
        }
        None => {
            let mut config = match &args.config {
                Some(path) => TrainConfig::from_toml_file(path)?,
                None => TrainConfig::default(),
            };
            args.apply(&mut config)?;
            let out = args.out.clone().unwrap_or_else(|| default_run_dir(&config));
            (config, out, false)
        }
    };
    let run = config.check()?;
    let config = run.config();
    let text_run = run.text().is_some();
    if !text_run {
        crate::attack_flags::warn_if_unbounded(run.threat(), "--eps");
    }
    let devices = match &args.devices {
        Some(list) => parse_devices(list).context("--devices")?,
        None => vec![parse_device(&args.device).context("--device")?],
    };
    let text = !args.quiet && !args.json;
    let json = args.json;
    let epochs = config.epochs;
    let attack = if text_run {
        format!("DeepWordBug-{}", config.text.max_words)
    } else {
        format!("PGD-{}", config.valid_steps)
    };
    let on_epoch: Arc<dyn Fn(&EpochRecord) + Send + Sync> = Arc::new(move |record| {
        if text {
            print_epoch(record, epochs, &attack);
        } else if json {
            let mut value = serde_json::to_value(record).expect("serialisable");
            value["type"] = "epoch".into();
            println!("{value}");
        }
    });
    if text && text_run {
        println!(
            "{} {} on {} with {}, {} epochs of {}, {} lr {} {}; vocabulary {}, max {} tokens; {}",
            if resume { "resuming" } else { "training" },
            describe(&config.model),
            config.dataset,
            config.objective.name(),
            config.epochs,
            config.batch_size,
            config.optimizer.name(),
            config.lr,
            config.schedule.name(),
            config.text.vocab_size,
            config.text.max_len,
            devices
                .iter()
                .map(harden_model::device::describe)
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("run directory: {}", out.display());
    } else if text {
        let attack = match config.objective {
            ObjectiveKind::Clean => String::new(),
            ObjectiveKind::FgsmRs => format!(", FGSM-RS step {:.4}", config.step_size()),
            _ => format!(", {} steps of {:.4}", config.steps, config.step_size()),
        };
        println!(
            "{} {} on {} with {}{attack}, {} eps {}, {} epochs of {}, {} lr {} {}; {}",
            if resume { "resuming" } else { "training" },
            describe(&config.model),
            config.dataset,
            config.objective.name(),
            config.norm().name(),
            config.eps,
            config.epochs,
            config.batch_size,
            config.optimizer.name(),
            config.lr,
            config.schedule.name(),
            devices
                .iter()
                .map(harden_model::device::describe)
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("run directory: {}", out.display());
    }
    let options = RunOptions {
        out: out.clone(),
        resume,
        devices,
        output: if text {
            Output::Progress
        } else {
            Output::Quiet
        },
        on_epoch: Some(on_epoch),
    };
    if text_run {
        let report = harden_train::train_text(&run, &options)?;
        if text {
            print_text_report(&report, &out);
        } else if json {
            print_json_report(&report);
        }
        return Ok(());
    }
    let report = train(&run, &options)?;
    if text {
        print_report(&report, &out);
    } else if json {
        print_json_report(&report);
    }
    Ok(())
}

/// The report as one JSON line of type `report`.
fn print_json_report<E: serde::Serialize>(report: &harden_train::TrainReport<E>) {
    let mut value = serde_json::to_value(report).expect("serialisable");
    value["type"] = "report".into();
    println!("{value}");
}

/// The end of a text run, for a terminal.
fn print_text_report(report: &harden_train::TextReport, out: &std::path::Path) {
    if let Some(reason) = &report.stopped_early {
        println!("stopped early: {reason}");
    }
    let e = &report.evaluation;
    println!(
        "{} on {} test texts: clean {} ({:.1} s training, {:.1} s evaluation)",
        e.weights,
        e.samples,
        percent(e.clean_accuracy),
        report.train_seconds,
        e.seconds
    );
    if let Some(b) = &e.embedding_pgd_white_box_bound {
        println!(
            "  embedding PGD-{} eps {} (white-box bound, not typed text): {}",
            b.steps,
            b.eps,
            percent(b.robust_accuracy)
        );
    }
    for a in &e.attacks {
        println!(
            "  {} ({}): accuracy under attack {}, success rate {}, {:.1}% words changed, {:.1} queries per text",
            a.attack,
            a.budget,
            percent(a.accuracy_under_attack),
            percent(a.success_rate),
            a.words_changed_percent,
            a.queries_per_text
        );
    }
    println!(
        "wrote {}/tokenizer.json, model.json, best.{{bpk,safetensors}}, final.{{bpk,safetensors}}, metrics.jsonl, report.json",
        out.display()
    );
}
