//! The wiring of burn-train's `SupervisedTraining` for a harden run: loaders, checkpointers
//! and their strategy, metrics, renderer, the epoch recorder, devices; then the launch.

use std::sync::{Arc, Mutex};

use burn::data::dataloader::DataLoader;
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::checkpoint::{
    ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ExecutionStrategy, Learner, SupervisedTraining, TrainingStrategy};
use harden_adversarial::ObjectiveKind;

use crate::checkpoint::{AtomicCheckpointer, Written, complete_epochs};
use crate::loader::{EpochLoader, Samples, mix};
use crate::metric::RobustAccuracyMetric;
use crate::progress::ProgressRenderer;
use crate::recorder::{EpochRecorder, RunHistory};
use crate::run_dir::RunDir;
use crate::saved::Companions;
use crate::schedule::{LrSchedule, eps_at};
use crate::step::{Learn, Plan, Trainee};
use crate::text::TextKit;
use crate::trainer::{Output, RunData, RunOptions};
use crate::{Run, TrainError, optimizer};

/// burn-train's distributed data-parallel strategy over `devices`.
///
/// burn 0.22 implements the collective operations for GPU backends only and panics while
/// setting up the strategy on CPU devices; that panic becomes [`TrainError::Distributed`].
///
/// # Errors
///
/// [`TrainError::Distributed`] with burn's reason.
pub fn ddp(devices: &[Device]) -> Result<ExecutionStrategy, TrainError> {
    let devices: Vec<Device> = devices.iter().map(|d| d.clone().autodiff()).collect();
    harden_model::device::catch_backend_panic(|| {
        ExecutionStrategy::ddp(
            devices.clone(),
            DistributedConfig {
                all_reduce_op: ReduceOperation::Mean,
            },
        )
    })
    .map_err(|reason| TrainError::Distributed { reason })
}

/// The checkpointer of the records called `name` in the run's `checkpoint/` folder.
///
/// # Errors
///
/// [`TrainError::Io`] when the folder cannot be created.
pub fn checkpointer(dir: &RunDir, name: &str) -> Result<AtomicCheckpointer, TrainError> {
    let folder = dir.checkpoints();
    AtomicCheckpointer::new(&folder, name).map_err(|e| TrainError::io(&folder, e))
}

/// What a run's steps read: the samples of its training and validation splits, and the
/// models and text pieces its objective uses besides the weights.
pub struct Material {
    /// The training split.
    pub train: Arc<dyn Samples>,
    /// The validation split.
    pub valid: Arc<dyn Samples>,
    /// The teacher and surrogates of an image or table run.
    pub companions: Companions,
    /// What a text run's steps read (`None` for images and tables).
    pub text: Option<Arc<TextKit>>,
}

impl Material {
    /// The array splits of `data` and `companions`.
    pub fn arrays(data: &RunData, companions: Companions) -> Result<Self, TrainError> {
        let arrays = |d: &harden_data::ArrayDataset| -> Result<Arc<dyn Samples>, TrainError> {
            Ok(Arc::new(crate::loader::Arrays::new(d.clone())?))
        };
        Ok(Self {
            train: arrays(&data.train)?,
            valid: arrays(&data.valid)?,
            companions,
            text: None,
        })
    }
}

/// Trains `model` on `material` as `run` says, from where `dir` left off; returns the model after the last epoch (with its plan) and the
/// history of every epoch, those done before a resume included.
///
/// `strategy` is the distributed strategy for several devices, `None` for one.
///
/// # Errors
///
/// [`TrainError::Diverged`] when the loss stopped being finite, [`TrainError::Training`]
/// when burn-train failed, [`TrainError::Io`] for the checkpoint folder, [`TrainError::Data`]
/// for data that cannot be batched.
pub fn launch<M: Learn>(
    run: &Run,
    dir: &RunDir,
    material: Material,
    model: M,
    strategy: Option<ExecutionStrategy>,
    options: &RunOptions,
) -> Result<(Trainee<M>, RunHistory), TrainError> {
    let config = run.config();
    // The epochs already done, replayed through the guard: a run it stopped (and that was
    // killed while finishing) trains no further.
    // Text runs keep the epoch of the best clean accuracy: a model that predicts one class for
    // everything cannot be flipped, so robust accuracy alone would prefer an untrained epoch.
    // The guard still watches their robust accuracy, unless the objective is clean.
    let clean = config.objective == ObjectiveKind::Clean;
    let by_clean = clean || material.text.is_some();
    let mut history = RunHistory::new(by_clean).with_guard(!clean);
    for record in dir.history()? {
        history.push(record, config.collapse_drop, config.collapse_patience);
    }
    let device = options.device()?;
    let done = dir.done_epochs();
    let train_samples = material.train.len();
    let train_loader = EpochLoader::over(
        material.train,
        config.batch_size,
        config.seed,
        true,
        done + 1,
        device.clone(),
    )?;
    let iters_per_epoch = train_loader.batches_per_epoch();
    let valid_loader = EpochLoader::over(
        material.valid,
        config
            .batch_size
            .max(if material.text.is_some() { 64 } else { 250 }),
        config.seed,
        false,
        done + 1,
        device.clone(),
    )?;
    let train_loader: Arc<dyn DataLoader<_>> = Arc::new(train_loader);
    let valid_loader: Arc<dyn DataLoader<_>> = Arc::new(valid_loader);

    // The epoch recorder: metrics.jsonl, best epoch, collapse guard.
    let schedule = LrSchedule::new(config, iters_per_epoch, done);
    let (eps, warmup) = (config.eps, config.eps_warmup_epochs);
    let at_epoch_end = {
        let schedule = schedule.clone();
        Arc::new(move |epoch: usize| {
            let it = epoch * iters_per_epoch;
            (schedule.lr_at(it), eps_at(eps, warmup, it, iters_per_epoch))
        })
    };
    let history_stopped = history.collapse.is_some();
    let written = Written::default();
    let recorder = EpochRecorder::new(
        history,
        dir.metrics_file(),
        config.collapse_drop,
        config.collapse_patience,
        train_samples,
        at_epoch_end,
        options.on_epoch.clone().unwrap_or_else(|| Arc::new(|_| {})),
    )
    .after_checkpoints(written.clone(), 3);

    let best_by = if by_clean {
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
    };
    let mut training = SupervisedTraining::new(dir.path(), train_loader, valid_loader)
        .with_application_logger(None)
        .with_custom_checkpointers(
            checkpointer(dir, "model")?
                .keeping({
                    // The run's best epoch, across resumes: its weights are what `finish` restores.
                    let history = recorder.history.clone();
                    Arc::new(move || history.lock().expect("history lock").best_epoch)
                })
                .counting(written.clone()),
            checkpointer(dir, "optim")?.counting(written.clone()),
            checkpointer(dir, "scheduler")?.counting(written),
        )
        .with_checkpointing_strategy(
            ComposedCheckpointingStrategy::builder()
                .add(KeepLastNCheckpoints::new(2))
                .add(best_by)
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
        .early_stopping(recorder.clone())
        .num_epochs(if history_stopped { done } else { config.epochs });
    if let Some(epoch) = dir.resumed_after().filter(|&e| e > 0) {
        training = training.checkpoint(epoch);
    }
    if let Some(strategy) = strategy {
        training = training.with_training_strategy(TrainingStrategy::Default(strategy));
    }
    let divergence = Arc::new(Mutex::new(None));
    let parameters = harden_model::lora::count(&model);
    let trainee = Trainee {
        model,
        plan: Plan {
            objective: run.objective().clone(),
            eps: config.eps,
            eps_warmup_epochs: config.eps_warmup_epochs,
            iters_per_epoch,
            valid_attack: run.valid_attack().clone(),
            valid_seed: mix(config.seed, 2),
            interrupter: training.interrupter(),
            divergence: divergence.clone(),
            companions: material.companions,
            parameters,
            text: material.text,
        },
    };
    recorder.start_clock();
    let result = training.launch(Learner::new(trainee, optimizer::build(config), schedule));

    if let Some(d) = divergence.lock().expect("divergence lock").clone() {
        let checkpoints = dir.checkpoints();
        let kept = match complete_epochs(&checkpoints).last() {
            Some(e) => format!(
                "the last good checkpoint is epoch {e} in {}",
                checkpoints.display()
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
    if let Some(err) = recorder.failure() {
        return Err(TrainError::io(dir.metrics_file(), err));
    }
    if let Some(err) = result.error {
        return Err(TrainError::Training(err));
    }
    let history = recorder.history.lock().expect("history lock").clone();
    Ok((result.model, history))
}
