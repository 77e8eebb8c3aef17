//! [`train`]: one run from configuration to report, on burn-train's `SupervisedTraining`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, SgdConfig};
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::tensor::{Device, Int, Tensor};
use burn::train::checkpoint::{
    Checkpointer, ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ExecutionStrategy, Learner, SupervisedTraining, TrainingStrategy};
use harden_adversarial::attack::default_step_size;
use harden_adversarial::{PgdConfig, Suite, ThreatModel};
use harden_data::ArrayDataset;
use harden_data::source::{DatasetSource, default_data_dir};
use harden_data::split::stratified_split;
use harden_model::atomic::write_bytes;
use harden_model::store::{self, WeightsFormat};
use harden_model::{Model, ModelConfig};

use crate::checkpoint::{AtomicCheckpointer, complete_epochs};
use crate::loader::{EpochLoader, mix};
use crate::metric::RobustAccuracyMetric;
use crate::monitor::{EpochCallback, EpochMonitor, EpochRecord, MonitorState};
use crate::progress::ProgressRenderer;
use crate::report::{BURN_VERSION, FinalEvaluation, TrainReport};
use crate::schedule::{LrSchedule, eps_at};
use crate::step::{Plan, Trainee};
use crate::{ObjectiveKind, OptimizerKind, TrainConfig, TrainError};

/// How a run reports while it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Progress bars on a terminal.
    Progress,
    /// Nothing.
    Quiet,
}

/// Where and on what a run happens.
#[derive(Clone)]
pub struct RunOptions {
    /// The run directory; for a resumed run, the directory resumed.
    pub out: PathBuf,
    /// Continue the run in `out` from its last complete checkpoint.
    pub resume: bool,
    /// The devices: one for a single-device run, several for burn-train's distributed data
    /// parallel strategy.
    pub devices: Vec<Device>,
    /// Progress bars or nothing.
    pub output: Output,
    /// Called with each epoch's record.
    pub on_epoch: Option<EpochCallback>,
}

/// The default run directory: `runs/<UTC timestamp>-<dataset>-<objective>`.
pub fn default_run_dir(config: &TrainConfig) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let dataset: String = config
        .dataset
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from("runs").join(format!("{stamp}-{dataset}-{}", config.objective.name()))
}

/// The configuration of the run in `dir` (its `config.json`).
///
/// # Errors
///
/// [`TrainError::Resume`] when the file is missing or not a configuration.
pub fn resume_config(dir: &Path) -> Result<TrainConfig, TrainError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::Resume {
        dir: dir.to_path_buf(),
        message: format!("{}: {e}", path.display()),
    })?;
    serde_json::from_str(&text).map_err(|e| TrainError::Resume {
        dir: dir.to_path_buf(),
        message: format!("{}: {e}", path.display()),
    })
}

/// The training, validation and test data of a run.
struct RunData {
    train: ArrayDataset,
    valid: ArrayDataset,
    test: ArrayDataset,
}

fn load_data(config: &TrainConfig) -> Result<RunData, TrainError> {
    let source: DatasetSource = config.dataset.parse()?;
    let data_dir = config.data_dir.clone().unwrap_or_else(default_data_dir);
    let splits = source.load(&data_dir)?;
    let n = splits.train.len();
    let n_valid = config.valid_samples.min(n / 5).max(1);
    let (train_idx, valid_idx) = stratified_split(
        splits.train.labels(),
        n_valid as f64 / n as f64,
        mix(config.seed, 1),
    )?;
    if train_idx.is_empty() || valid_idx.is_empty() {
        return Err(TrainError::config(
            "dataset",
            format!(
                "{} has too few samples ({n}) to hold out a validation split",
                config.dataset
            ),
        ));
    }
    Ok(RunData {
        train: splits.train.subset(&train_idx),
        valid: splits.train.subset(&valid_idx),
        test: splits.test,
    })
}

/// Reads the epochs of `metrics.jsonl` up to `last_epoch`.
fn read_metrics(path: &Path, last_epoch: usize) -> Result<Vec<EpochRecord>, TrainError> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut records = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: EpochRecord = serde_json::from_str(line).map_err(|e| TrainError::Resume {
            dir: path.to_path_buf(),
            message: format!("line {}: {e}", i + 1),
        })?;
        if record.epoch <= last_epoch {
            records.push(record);
        }
    }
    Ok(records)
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).expect("serialisable");
    write_bytes(path, format!("{text}\n").as_bytes()).map_err(|e| TrainError::io(path, e))
}

/// Saves `model` as `<stem>.bpk` and `<stem>.safetensors` in `dir`.
fn save_both(model: &Model, dir: &Path, stem: &str) -> Result<(), TrainError> {
    for format in [WeightsFormat::Burnpack, WeightsFormat::PytorchSafetensors] {
        let path = dir.join(format!("{stem}.{}", format.extension()));
        store::save(model, &path, format)?;
    }
    Ok(())
}

/// Runs `config` as `options` say; see the [crate docs](crate) for the run directory.
///
/// A collapse caught by the catastrophic-overfitting guard ends the run early but is not an
/// error: the report says so, and the best checkpoint is what gets evaluated.
///
/// # Errors
///
/// [`TrainError`] for invalid configuration, data or devices; an existing non-empty `out`
/// without `resume`; a resume directory without a complete checkpoint; a diverged loss; or an
/// I/O failure writing the run directory.
pub fn train(config: &TrainConfig, options: &RunOptions) -> Result<TrainReport, TrainError> {
    config.check()?;
    let out = &options.out;
    let checkpoint_dir = out.join("checkpoint");
    let metrics_file = out.join("metrics.jsonl");
    let Some(device) = options.devices.first().cloned() else {
        return Err(TrainError::config("devices", "no device given"));
    };

    let data = load_data(config)?;
    let outputs = ModelConfig::outputs_for_classes(data.train.num_classes());
    let model_config = ModelConfig::for_data(
        &config.model,
        data.train.sample_shape(),
        outputs,
        &config.hidden,
    )?;

    // Devices are checked before anything is written, so a refused run leaves no directory.
    let strategy = if options.devices.len() > 1 {
        Some(ddp(&options.devices)?)
    } else {
        None
    };

    // The run directory: fresh, or resumed from its last complete checkpoint.
    let resumed_after = if options.resume {
        let epochs = complete_epochs(&checkpoint_dir);
        let Some(&last) = epochs.last() else {
            return Err(TrainError::Resume {
                dir: out.clone(),
                message: "no complete checkpoint (model, optim and scheduler) in checkpoint/"
                    .to_string(),
            });
        };
        Some(last)
    } else {
        if out.exists()
            && std::fs::read_dir(out)
                .map_err(|e| TrainError::io(out, e))?
                .next()
                .is_some()
        {
            return Err(TrainError::config(
                "out",
                format!(
                    "{} exists and is not empty: pass another --out, or --resume {} to continue it",
                    out.display(),
                    out.display()
                ),
            ));
        }
        std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
        write_json(&out.join("config.json"), config)?;
        None
    };
    let done = resumed_after.unwrap_or(0);
    let history = read_metrics(&metrics_file, done)?;
    if options.resume {
        // Drop lines of epochs after the checkpoint (the interrupted epoch's, if any).
        let lines: String = history
            .iter()
            .map(|r| serde_json::to_string(r).expect("serialisable") + "\n")
            .collect();
        write_bytes(&metrics_file, lines.as_bytes())
            .map_err(|e| TrainError::io(&metrics_file, e))?;
    }

    // Model, objective, validation attack.
    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let model = model_config.init(&train_device);
    let objective = config.objective_config()?.check()?;
    let threat = ThreatModel::new(config.norm()?, config.eps)?;
    let valid_attack = PgdConfig::new(
        threat.clone(),
        config.valid_steps,
        default_step_size(config.eps, config.valid_steps),
    )
    .check()?;

    // Data loaders.
    let train_loader = EpochLoader::new(
        data.train.clone(),
        config.batch_size,
        config.seed,
        true,
        done + 1,
        device.clone(),
    );
    let iters_per_epoch = train_loader.batches_per_epoch();
    let valid_loader = EpochLoader::new(
        data.valid.clone(),
        config.batch_size.max(250),
        config.seed,
        false,
        done + 1,
        device.clone(),
    );
    let train_loader: Arc<dyn DataLoader<_>> = Arc::new(train_loader);
    let valid_loader: Arc<dyn DataLoader<_>> = Arc::new(valid_loader);

    // The epoch monitor: metrics.jsonl, best epoch, collapse guard.
    let schedule = LrSchedule::new(config, iters_per_epoch, done);
    let (eps, warmup) = (config.eps, config.eps_warmup_epochs);
    let at_epoch_end = {
        let schedule = schedule.clone();
        Arc::new(move |epoch: usize| {
            let it = epoch * iters_per_epoch;
            (schedule.lr_at(it), eps_at(eps, warmup, it, iters_per_epoch))
        })
    };
    let by_clean = config.objective == ObjectiveKind::Clean;
    let mut state = MonitorState::new(by_clean);
    for record in history {
        state.push(record, f64::INFINITY, 1);
    }
    let monitor = EpochMonitor::new(
        state,
        metrics_file.clone(),
        config.collapse_drop,
        config.collapse_patience,
        data.train.len(),
        at_epoch_end,
        options.on_epoch.clone().unwrap_or_else(|| Arc::new(|_| {})),
    );

    let checkpointer = |name: &str| {
        AtomicCheckpointer::new(&checkpoint_dir, name)
            .map_err(|e| TrainError::io(&checkpoint_dir, e))
    };
    let mut training = SupervisedTraining::new(out, train_loader, valid_loader)
        .with_application_logger(None)
        .with_custom_checkpointers(
            checkpointer("model")?,
            checkpointer("optim")?,
            checkpointer("scheduler")?,
        )
        .with_checkpointing_strategy(
            ComposedCheckpointingStrategy::builder()
                .add(KeepLastNCheckpoints::new(2))
                .add(if by_clean {
                    MetricCheckpointingStrategy::new(
                        &AccuracyMetric::new(),
                        Aggregate::Mean,
                        Direction::Highest,
                        Split::Valid,
                    )
                } else {
                    MetricCheckpointingStrategy::new(
                        &RobustAccuracyMetric::new(),
                        Aggregate::Mean,
                        Direction::Highest,
                        Split::Valid,
                    )
                })
                .build(),
        )
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(AccuracyMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_valid_numeric(RobustAccuracyMetric::new())
        .renderer(Box::new(ProgressRenderer::new(
            options.output == Output::Progress,
        )))
        .early_stopping(monitor.clone())
        .num_epochs(config.epochs);
    if let Some(epoch) = resumed_after {
        training = training.checkpoint(epoch);
    }
    if let Some(strategy) = strategy {
        training = training.with_training_strategy(TrainingStrategy::Default(strategy));
    }
    let divergence = Arc::new(Mutex::new(None));
    let trainee = Trainee {
        model,
        plan: Plan {
            objective,
            eps: config.eps,
            eps_warmup_epochs: config.eps_warmup_epochs,
            iters_per_epoch,
            valid_attack,
            valid_seed: mix(config.seed, 2),
            interrupter: training.interrupter(),
            divergence: divergence.clone(),
        },
    };
    let optim = match config.optimizer {
        OptimizerKind::Adam => {
            // PyTorch's epsilon; burn defaults to 1e-5.
            let adam = AdamConfig::new().with_epsilon(1e-8);
            let adam = if config.weight_decay > 0.0 {
                adam.with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)))
            } else {
                adam
            };
            adam.init()
        }
        OptimizerKind::Sgd => {
            let sgd = SgdConfig::new();
            let sgd = if config.momentum > 0.0 {
                sgd.with_momentum(Some(MomentumConfig::new().with_momentum(config.momentum)))
            } else {
                sgd
            };
            let sgd = if config.weight_decay > 0.0 {
                sgd.with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)))
            } else {
                sgd
            };
            sgd.init()
        }
    };

    monitor.start_clock();
    let result = training.launch(Learner::new(trainee, optim, schedule));

    if let Some(d) = divergence.lock().expect("divergence lock").clone() {
        let kept = match complete_epochs(&checkpoint_dir).last() {
            Some(e) => format!(
                "the last good checkpoint is epoch {e} in {}",
                checkpoint_dir.display()
            ),
            None => "no epoch had completed, so no checkpoint was written".to_string(),
        };
        return Err(TrainError::Diverged {
            value: d.value.to_string(),
            epoch: d.epoch,
            iteration: d.iteration,
            kept,
        });
    }
    if let Some(err) = &result.error {
        return Err(TrainError::Training(err.to_string()));
    }

    let state = monitor.state.lock().expect("monitor lock").clone();
    let last_epoch = state.epochs.last().map_or(done, |r| r.epoch);
    let final_model = result.model.model.valid();
    save_both(&final_model, out, "final")?;
    let (weights, eval_model) = match state.best_epoch {
        Some(best) if best != last_epoch => {
            let record = checkpointer("model")?.restore(best).map_err(|e| {
                TrainError::Training(format!("reading the epoch-{best} checkpoint: {e}"))
            })?;
            let trainee = result.model.clone().load_record(record);
            (format!("best (epoch {best})"), trainee.model.valid())
        }
        Some(best) => (
            format!("best (epoch {best}, the last)"),
            final_model.clone(),
        ),
        None => (format!("final (epoch {last_epoch})"), final_model.clone()),
    };
    save_both(&eval_model, out, "best")?;

    let evaluation = final_evaluation(config, &eval_model, &data.test, &threat, &device, weights)?;
    let report = TrainReport {
        harden_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: BURN_VERSION.to_string(),
        config: config.clone(),
        devices: options
            .devices
            .iter()
            .map(harden_model::device::describe)
            .collect(),
        threads: harden_model::device::cpu_threads(),
        train_samples: data.train.len(),
        valid_samples: data.valid.len(),
        epochs_completed: last_epoch,
        resumed_after,
        stopped_early: state.collapse.clone(),
        best_epoch: state.best_epoch,
        train_seconds: state.epochs.iter().map(|r| r.seconds).sum(),
        epochs: state.epochs,
        evaluation,
    };
    write_json(&out.join("report.json"), &report)?;
    Ok(report)
}

/// burn-train's distributed data-parallel strategy over `devices`.
///
/// burn 0.22 implements the collective operations for GPU backends only and panics while
/// setting up the strategy on CPU devices; that panic becomes [`TrainError::Config`].
fn ddp(devices: &[Device]) -> Result<ExecutionStrategy, TrainError> {
    let devices: Vec<Device> = devices.iter().map(|d| d.clone().autodiff()).collect();
    harden_model::device::catch_backend_panic(|| {
        ExecutionStrategy::ddp(
            devices.clone(),
            DistributedConfig {
                all_reduce_op: ReduceOperation::Mean,
            },
        )
    })
    .map_err(|reason| {
        TrainError::config(
            "devices",
            format!(
                "burn cannot run distributed data-parallel training on these devices ({reason}); use one device, or GPUs (cuda:0,cuda:1)"
            ),
        )
    })
}

/// Clean and PGD accuracy of `model` on the first `eval_samples` test samples.
fn final_evaluation(
    config: &TrainConfig,
    model: &Model,
    test: &ArrayDataset,
    threat: &ThreatModel,
    device: &Device,
    weights: String,
) -> Result<FinalEvaluation, TrainError> {
    let n = config.eval_samples.unwrap_or(test.len()).min(test.len());
    let loader = EpochLoader::new(test.clone(), 500, 0, false, 1, device.clone());
    let mut batches: Vec<(Tensor<4>, Tensor<1, Int>)> = Vec::new();
    let mut taken = 0;
    for batch in loader.iter() {
        let batch = batch.map_err(|e| TrainError::Training(e.to_string()))?;
        let size = batch.labels.dims()[0].min(n - taken);
        batches.push((
            batch.inputs.narrow(0, 0, size),
            batch.labels.narrow(0, 0, size),
        ));
        taken += size;
        if taken >= n {
            break;
        }
    }
    let suite = Suite::Pgd {
        steps: config.eval_steps,
        restarts: config.eval_restarts,
        step_size: None,
    };
    let started = Instant::now();
    let f = |x: Tensor<4>| model.forward(x);
    let details =
        harden_adversarial::suite::evaluate(&f, None, &batches, suite, threat, config.seed)?;
    Ok(FinalEvaluation {
        weights,
        protocol: format!(
            "PGD-{} with {} random restart(s), step 2.5 eps / steps, {} eps {}; a sample is robust only if it survives every restart (an upper bound: `harden eval --suite standard` is the reference protocol)",
            config.eval_steps, config.eval_restarts, config.norm, config.eps
        ),
        samples: n,
        clean_accuracy: details.clean_accuracy,
        robust_accuracy: details.robust_accuracy,
        details,
        seconds: started.elapsed().as_secs_f64(),
    })
}
