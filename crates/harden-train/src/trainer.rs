//! A run from start to end: [`train`] for the built-in models, [`fit`] for any
//! [`Classifier`].
//!
//! Both go through the same pieces: the checked [`Run`], the [`RunDir`], the learner wiring
//! ([`learner::launch`](crate::learner::launch)) and [`finish::finish`](crate::finish::finish).

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::Device;
use harden_data::ArrayDataset;
use harden_data::source::default_data_dir;
use harden_data::split::stratified_split;
use harden_model::{Classifier, ModelConfig, lora, store};

use crate::finish::finish;
use crate::learner::{Material, ddp, launch};
use crate::loader::mix;
use crate::recorder::EpochCallback;
use crate::run_dir::RunDir;
use crate::saved::Companions;
use crate::{Run, TrainConfig, TrainError, TrainReport};

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

impl RunOptions {
    /// A new run in `out` on one `device`, printing nothing.
    pub fn quiet(out: impl Into<PathBuf>, device: Device) -> Self {
        Self {
            out: out.into(),
            resume: false,
            devices: vec![device],
            output: Output::Quiet,
            on_epoch: None,
        }
    }

    /// The first device: the one a single-device run trains on, and where the final
    /// evaluation runs.
    ///
    /// # Errors
    ///
    /// [`TrainError::NoDevice`] when `devices` is empty.
    pub fn device(&self) -> Result<&Device, TrainError> {
        self.devices.first().ok_or(TrainError::NoDevice)
    }
}

/// The indices `(train, valid)` of a stratified validation split of `valid_samples` (at most a
/// fifth, at least one) held out of samples with `labels`, drawn with the run's `seed`; the one
/// rule of image, table and text runs. `test_labels` are those of the test split, checked so
/// that training sees every class the test holds.
///
/// # Errors
///
/// [`TrainError::OneClass`] when the labels hold fewer than two classes,
/// [`TrainError::ClassTooSmall`] for a class with a single sample, or one that only the test
/// split holds, [`TrainError::TooFewSamples`] when no sample would be left on either side.
pub fn hold_out_indices(
    name: &str,
    labels: &[u32],
    test_labels: &[u32],
    valid_samples: usize,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), TrainError> {
    let mut counts = std::collections::BTreeMap::<u32, usize>::new();
    for &l in labels {
        *counts.entry(l).or_default() += 1;
    }
    if counts.len() < 2 {
        return Err(TrainError::OneClass {
            dataset: name.to_string(),
        });
    }
    let too_small = |class: u32, samples: usize| TrainError::ClassTooSmall {
        dataset: name.to_string(),
        class,
        samples,
    };
    if let Some((&class, &samples)) = counts.iter().find(|&(_, &c)| c < 2) {
        return Err(too_small(class, samples));
    }
    // A class the test split holds and the training pool lacks is never trained on.
    if let Some(&class) = test_labels.iter().find(|l| !counts.contains_key(l)) {
        return Err(too_small(class, 0));
    }
    let n = labels.len();
    let too_few = || TrainError::TooFewSamples {
        dataset: name.to_string(),
        samples: n,
    };
    if n < 2 {
        return Err(too_few());
    }
    let n_valid = valid_samples.min(n / 5).max(1);
    let (train_idx, valid_idx) = stratified_split(labels, n_valid as f64 / n as f64, mix(seed, 1))?;
    if train_idx.is_empty() || valid_idx.is_empty() {
        return Err(too_few());
    }
    Ok((train_idx, valid_idx))
}

/// The training, validation and test data of a run.
#[derive(Debug, Clone)]
pub struct RunData {
    /// Samples trained on.
    pub train: ArrayDataset,
    /// Samples held out of the training split for validation (best epoch, collapse guard).
    pub valid: ArrayDataset,
    /// The test split of the final evaluation.
    pub test: ArrayDataset,
}

impl RunData {
    /// Holds out a stratified validation split of `valid_samples` (at most a fifth) from
    /// `train`, with `seed`; `test` is kept for the final evaluation.
    ///
    /// # Errors
    ///
    /// [`TrainError::OneClass`] when the training samples hold fewer than two classes,
    /// [`TrainError::TooFewSamples`] when no sample would be left on either side,
    /// [`TrainError::ClassTooSmall`] for a class with fewer than two samples outside the test
    /// split, [`TrainError::Data`] when the test samples have another shape than the training
    /// ones.
    pub fn hold_out(
        name: &str,
        train: ArrayDataset,
        test: ArrayDataset,
        valid_samples: usize,
        seed: u64,
    ) -> Result<Self, TrainError> {
        if train.sample_shape() != test.sample_shape() {
            return Err(harden_data::DataError::InvalidArgument {
                what: "test split",
                message: format!(
                    "{name}: test samples have shape {:?}, training samples {:?}",
                    test.sample_shape(),
                    train.sample_shape()
                ),
            }
            .into());
        }
        let (train_idx, valid_idx) =
            hold_out_indices(name, train.labels(), test.labels(), valid_samples, seed)?;
        Ok(Self {
            valid: train.subset(&valid_idx),
            train: train.subset(&train_idx),
            test,
        })
    }

    /// The data `config` names: its dataset's splits, with the validation split held out.
    ///
    /// # Errors
    ///
    /// As [`hold_out`](Self::hold_out), and [`TrainError::Data`] when the dataset cannot be
    /// loaded.
    pub fn load(config: &TrainConfig) -> Result<Self, TrainError> {
        let data_dir = config.data_dir.clone().unwrap_or_else(default_data_dir);
        let splits = config.dataset.load(&data_dir)?;
        Self::hold_out(
            &config.dataset.to_string(),
            splits.train,
            splits.test,
            config.valid_samples,
            config.seed,
        )
    }
}

/// Runs the checked configuration `run` with its built-in model, as `options` say; see the
/// [crate docs](crate) for the run directory.
///
/// A collapse caught by the catastrophic-overfitting guard ends the run early but is not an
/// error: the report says so, and the best checkpoint is what gets evaluated.
///
/// # Errors
///
/// [`TrainError`] for invalid data, model or devices; an existing non-empty `out` without
/// `resume`; a resume directory without a complete checkpoint; a diverged loss; or an I/O
/// failure writing the run directory.
pub fn train(run: &Run, options: &RunOptions) -> Result<TrainReport, TrainError> {
    let config = run.config();
    let data = RunData::load(config)?;
    let model_config = config.model.config_for(
        data.train.sample_shape(),
        ModelConfig::outputs_for_classes(data.train.num_classes()),
    )?;
    let Some(init) = &config.init else {
        return fit(run, &data, |device| model_config.init(device), options);
    };
    // Starting weights (and the adapters' targets) are checked before anything is written.
    let (file, spec) = init.resolve("init", &config.model)?;
    let refuse = |message: String| TrainError::Saved {
        what: "init",
        path: init.path.clone(),
        message,
    };
    if spec != config.model {
        return Err(refuse(format!(
            "holds a {} ({spec:?}), and this run trains {:?}: pass the same --model",
            spec.kind().name(),
            config.model
        )));
    }
    let base = store::load(model_config.init(options.device()?), &file)
        .map_err(|e| refuse(e.to_string()))?;
    if let Some(spec) = &config.lora {
        lora::attach(base, spec)?;
    }
    let lora = config.lora.clone();
    fit(
        run,
        &data,
        move |device| {
            let model = store::load(model_config.init(device), &file).expect("loaded above");
            match &lora {
                Some(spec) => lora::attach(model, spec).expect("attached above"),
                None => model,
            }
        },
        options,
    )
}

/// Trains the model `init` builds (any burn module implementing [`Classifier`]) on `data` as
/// `run` says, writing the run directory of `options.out` as [`train`] does.
///
/// `init` is called once, on the first device with autodiff, after the device is seeded with
/// the run's seed. A resumed run then loads the weights of its last checkpoint into it.
///
/// # Errors
///
/// As [`train`].
pub fn fit<M: Module + Classifier + 'static>(
    run: &Run,
    data: &RunData,
    init: impl FnOnce(&Device) -> M,
    options: &RunOptions,
) -> Result<TrainReport, TrainError> {
    let config = run.config();
    let device = options.device()?;
    // Devices are checked before anything is written, so a refused run leaves no directory.
    let strategy = if options.devices.len() > 1 {
        Some(ddp(&options.devices)?)
    } else {
        None
    };
    // So are the teacher and surrogates.
    let companions = Companions::load(
        config,
        data.train.sample_shape(),
        ModelConfig::outputs_for_classes(data.train.num_classes()),
        device,
    )?;
    let dir = if options.resume {
        RunDir::resume(&options.out)?
    } else {
        RunDir::create(&options.out, config)?
    };

    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let model = init(&train_device);
    let result = Material::arrays(data, companions)
        .and_then(|material| launch(run, &dir, material, model, strategy, options))
        .and_then(|(trained, history)| finish(run, &dir, data, trained, history, options));
    if result.is_err() {
        dir.abandon();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use assert_matches::assert_matches;

    #[test]
    fn every_class_must_reach_training_whatever_the_run() {
        let labels = [0, 0, 0, 1, 1, 1, 0, 1, 0, 1];
        assert!(hold_out_indices("d", &labels, &[0, 1], 2, 0).is_ok());
        // One sample of class 2 outside the test split.
        let mut lone = labels.to_vec();
        lone.push(2);
        let err = hold_out_indices("d", &lone, &[0, 1], 2, 0).unwrap_err();
        assert_matches!(
            err,
            TrainError::ClassTooSmall {
                class: 2,
                samples: 1,
                ..
            }
        );
        // Class 2 only in the test split.
        let err = hold_out_indices("d", &labels, &[0, 2], 2, 0).unwrap_err();
        assert_matches!(
            err,
            TrainError::ClassTooSmall {
                class: 2,
                samples: 0,
                ..
            }
        );
        let err = hold_out_indices("d", &[1, 1, 1], &[1], 1, 0).unwrap_err();
        assert_matches!(err, TrainError::OneClass { .. });
    }
}
