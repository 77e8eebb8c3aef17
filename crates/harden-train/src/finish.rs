//! The end of a run: save the final weights, restore and save the best ones, evaluate them on
//! the test split, and write `report.json`.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use burn::train::checkpoint::Checkpointer;
use harden_adversarial::Suite;
use harden_data::{ArrayDataset, Batches};
use harden_model::Classifier;
use harden_model::lora;
use harden_model::store::{self, WeightsFormat};

use crate::learner::checkpointer;
use crate::recorder::RunHistory;
use crate::report::{BURN_VERSION, FinalEvaluation, TrainReport};
use crate::run_dir::{RunDir, write_json};
use crate::step::{Learn, Trainee};
use crate::trainer::{RunData, RunOptions};
use crate::{Run, TrainError};

/// Saves `model` as `<stem>.bpk` and `<stem>.safetensors` in `dir`.
///
/// # Errors
///
/// [`TrainError::Model`] when a file cannot be written.
pub fn save_both<M: Classifier>(model: &M, dir: &Path, stem: &str) -> Result<(), TrainError> {
    for format in [WeightsFormat::Burnpack, WeightsFormat::PytorchSafetensors] {
        let path = dir.join(format!("{stem}.{}", format.extension()));
        store::save(model, &path, format)?;
    }
    Ok(())
}

/// Finishes a run whose training ended with `trained` and `history`: writes `final.*` and
/// `best.*` (the epoch with the best validation score, restored from its checkpoint when it
/// is not the last), evaluates the best weights and writes `report.json`.
///
/// For a LoRA run, `final.*` and `best.*` hold the merged weights (plain models of the
/// architecture), and the best epoch's adapters are saved alone too: `adapters.bpk` and, in
/// PEFT's format, `adapters/`.
///
/// # Errors
///
/// [`TrainError::Checkpoint`] when the best epoch's checkpoint cannot be read,
/// [`TrainError::Model`] or [`TrainError::Io`] when a file cannot be written.
pub fn finish<M: Learn + Classifier>(
    run: &Run,
    dir: &RunDir,
    data: &RunData,
    trained: Trainee<M>,
    history: RunHistory,
    options: &RunOptions,
) -> Result<TrainReport, TrainError> {
    let config = run.config();
    let device = options.device()?;
    let parameters = trained.plan.parameters;
    // Plain weights: adapters merged.
    let plain = |model: &M| match config.lora {
        Some(_) => lora::merge(model),
        None => model.valid(),
    };
    let (weights, best, last) = best_and_last(dir, &history, trained)?;
    save_both(&plain(&last), dir.path(), "final")?;
    let eval_model = plain(&best);
    save_both(&eval_model, dir.path(), "best")?;
    if let Some(spec) = &config.lora {
        lora::save_adapters(&best, spec, &dir.path().join("adapters.bpk"))?;
        lora::export_peft(
            &best,
            spec,
            &eval_model.pytorch_names(),
            &dir.path().join("adapters"),
        )?;
    }

    let evaluation = evaluate(run, &eval_model, &data.test, device, weights)?;
    let samples = (data.train.len(), data.valid.len());
    write_report(run, dir, history, parameters, samples, options, evaluation)
}

/// Writes and returns the `report.json` of a run that ended with `history`, trained a model
/// of `parameters` on `(train, valid)` samples, and was evaluated to `evaluation`.
///
/// # Errors
///
/// [`TrainError::Io`] when the file cannot be written.
pub fn write_report<E: serde::Serialize>(
    run: &Run,
    dir: &RunDir,
    history: RunHistory,
    parameters: harden_model::ParamCount,
    (train_samples, valid_samples): (usize, usize),
    options: &RunOptions,
    evaluation: E,
) -> Result<TrainReport<E>, TrainError> {
    let report = TrainReport {
        harden_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: BURN_VERSION.to_string(),
        config: run.config().clone(),
        devices: options
            .devices
            .iter()
            .map(harden_model::device::describe)
            .collect(),
        threads: harden_model::device::cpu_threads(),
        parameters,
        train_samples,
        valid_samples,
        epochs_completed: history.epochs.last().map_or(dir.done_epochs(), |r| r.epoch),
        resumed_after: dir.resumed_after(),
        stopped_early: history.collapse.clone(),
        best_epoch: history.best_epoch,
        train_seconds: history.epochs.iter().map(|r| r.seconds).sum(),
        epochs: history.epochs,
        evaluation,
    };
    write_json(&dir.path().join("report.json"), &report)?;
    Ok(report)
}

/// The weights of the run's best epoch (restored from its checkpoint when it is not the last)
/// and a label that says which they are, beside the weights of the last epoch.
///
/// # Errors
///
/// [`TrainError::Checkpoint`] when the best epoch's checkpoint cannot be read.
pub fn best_and_last<M: Learn>(
    dir: &RunDir,
    history: &RunHistory,
    trained: Trainee<M>,
) -> Result<(String, M, M), TrainError> {
    let last_epoch = history.epochs.last().map_or(dir.done_epochs(), |r| r.epoch);
    let last = trained.model.clone();
    Ok(match history.best_epoch {
        Some(best) if best != last_epoch => {
            let record = checkpointer(dir, "model")?
                .restore(best)
                .map_err(|source| TrainError::Checkpoint {
                    dir: dir.checkpoints(),
                    epoch: best,
                    source,
                })?;
            let trainee = trained.load_record(record);
            (format!("best (epoch {best})"), trainee.model, last)
        }
        Some(best) => (
            format!("best (epoch {best}, the last)"),
            trained.model,
            last,
        ),
        None => (format!("final (epoch {last_epoch})"), trained.model, last),
    })
}

/// Clean and PGD accuracy of `model` on the first `eval-samples` test samples.
fn evaluate<M: Classifier>(
    run: &Run,
    model: &M,
    test: &ArrayDataset,
    device: &Device,
    weights: String,
) -> Result<FinalEvaluation, TrainError> {
    let config = run.config();
    let n = config.eval_samples.unwrap_or(test.len()).min(test.len());
    let suite = Suite::Pgd {
        steps: config.eval_steps,
        restarts: config.eval_restarts,
        step_size: None,
    };
    let started = Instant::now();
    harden_data::crash::point("final-evaluation", "");
    let details = match Batches::first(test, n, 500, device)? {
        Batches::Table(b) => evaluate_rank(model, &b, suite, run, config.seed)?,
        Batches::Image(b) => evaluate_rank(model, &b, suite, run, config.seed)?,
    };
    Ok(FinalEvaluation {
        weights,
        protocol: format!(
            "PGD-{} with {} random restart(s), step 2.5 eps / steps, {} eps {}; a sample is robust only if it survives every restart (an upper bound: `harden eval --suite standard` is the reference protocol)",
            config.eval_steps,
            config.eval_restarts,
            config.norm().name(),
            config.eps
        ),
        samples: n,
        clean_accuracy: details.clean_accuracy,
        robust_accuracy: details.robust_accuracy,
        details,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// [`harden_adversarial::suite::evaluate`] on batches of rank `D`.
fn evaluate_rank<const D: usize, M: Classifier>(
    model: &M,
    batches: &[(Tensor<D>, Tensor<1, Int>)],
    suite: Suite,
    run: &Run,
    seed: u64,
) -> Result<harden_adversarial::EvalReport, TrainError> {
    let f = |x: Tensor<D>| model.logits(x);
    Ok(harden_adversarial::suite::evaluate(
        &f,
        None,
        batches,
        suite,
        run.threat(),
        seed,
    )?)
}
