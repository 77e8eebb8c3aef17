//! The settings of a training run: [`TrainConfig`], every key the CLI flags and
//! `--config FILE.toml` set, typed, and [`Run`], the same settings checked once.
//!
//! `TrainConfig::check` is the only way to a [`Run`]: it checks every range, then builds the
//! threat model, the training objective and the validation attack, so the trainer never
//! rebuilds or re-checks them.

use std::path::{Path, PathBuf};

use harden_adversarial::error::{
    BATCH, EPOCHS, ParamError, RESTARTS, STEPS, check_at_least_one, check_count,
    check_finite_non_negative, check_finite_positive,
};
use harden_adversarial::pgd::{FGSM_RS_ALPHA, default_step_size};
use harden_adversarial::{
    Bounds, Norm, Objective, ObjectiveConfig, ObjectiveKind, Pgd, PgdConfig, ThreatModel,
};
use harden_data::DatasetSource;
use harden_model::{LoraSpec, ModelSpec};

use crate::saved::SavedModel;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// The optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Adam (PyTorch's defaults: betas 0.9, 0.999, epsilon 1e-8), with L2 weight decay.
    Adam,
    /// SGD with momentum and weight decay.
    Sgd,
}

/// The learning-rate schedule, updated every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// `lr` throughout.
    Constant,
    /// Linear from 0 to `lr` at epoch `peak_epoch`, then linear to 0 at the end (the
    /// triangular schedule of fast adversarial training).
    OneCycle,
    /// `lr`, multiplied by `gamma` at each epoch in `milestones`.
    Piecewise,
}

impl OptimizerKind {
    /// The name the CLI and configuration files use.
    pub fn name(self) -> String {
        harden_data::names::name_of(self)
    }
}

impl ScheduleKind {
    /// The name the CLI and configuration files use.
    pub fn name(self) -> String {
        harden_data::names::name_of(self)
    }
}

/// Everything a training run needs; serialised as the run's `config.json` and read from TOML
/// files with the same keys (kebab-case, as the CLI flags). Check it into a [`Run`] with
/// [`check`](Self::check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrainConfig {
    /// The dataset: `digits`, `breast-cancer`, `mnist`, `fashion-mnist` or `csv:PATH`.
    pub dataset: DatasetSource,
    /// Folder holding mnist/ and fashion-mnist/ (default: `$HARDEN_DATA_DIR`, else `./data`).
    pub data_dir: Option<PathBuf>,
    /// The architecture and its own parameters: `model = "small-cnn"`, or
    /// `model = { kind = "mlp", hidden = [256, 128] }`.
    #[serde(deserialize_with = "harden_model::classifier::spec_or_name")]
    pub model: ModelSpec,
    /// Training objective.
    pub objective: ObjectiveKind,
    /// Norm of the threat model (default: L-inf for images and tables, L2 per token for the
    /// embeddings of text).
    pub norm: Option<Norm>,
    /// Radius of the threat model.
    pub eps: f64,
    /// Attack step size; default 1.25 eps for FGSM-RS and 2.5 eps / steps otherwise.
    pub alpha: Option<f64>,
    /// Attack steps of PGD training and of the TRADES inner maximisation.
    pub steps: usize,
    /// Random restarts of the training attack.
    pub restarts: usize,
    /// TRADES weight of the robust term.
    pub beta: f64,
    /// Epochs over which eps rises linearly from 0 to `eps` (0: no warm-up).
    pub eps_warmup_epochs: f64,
    /// Number of epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate (the peak of a one-cycle schedule).
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay (L2 penalty added to the gradient).
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: ScheduleKind,
    /// Epoch at which a one-cycle schedule peaks; default `(2 * epochs) / 5` (integer division).
    pub peak_epoch: Option<f64>,
    /// Epochs at which a piecewise schedule multiplies the rate by `gamma`; default half and
    /// three quarters of the run.
    pub milestones: Option<Vec<f64>>,
    /// Factor of a piecewise schedule.
    pub gamma: f64,
    /// Seed of initialisation, shuffling, validation split and attacks.
    pub seed: u64,
    /// Training samples held out for validation (stratified; capped at a fifth of the data).
    pub valid_samples: usize,
    /// PGD steps of the validation robust accuracy.
    pub valid_steps: usize,
    /// Stop when the validation robust accuracy falls more than this below its best while
    /// clean accuracy holds or rises (catastrophic overfitting); 1 disables the guard.
    pub collapse_drop: f64,
    /// Epochs in a row the fall must last before the run stops (at least 1).
    pub collapse_patience: usize,
    /// Test samples of the final evaluation (default: the whole test split).
    pub eval_samples: Option<usize>,
    /// PGD steps of the final evaluation.
    pub eval_steps: usize,
    /// PGD restarts of the final evaluation (a sample is robust only if it survives all).
    pub eval_restarts: usize,
    /// Settings of text runs only (`[text]`): vocabulary, length, FreeLB and attack budgets.
    pub text: crate::text::TextSettings,
    /// Start from these weights (a run directory, `ARCH:FILE` or a weights file of the
    /// run's architecture) instead of a random initialisation.
    pub init: Option<SavedModel>,
    /// Train low-rank adapters on the `init` weights instead of every weight (`[lora]`).
    pub lora: Option<LoraSpec>,
    /// The teacher of `ard` and `rslad` (frozen, in evaluation mode).
    pub teacher: Option<SavedModel>,
    /// ARD's weight of the distillation term (the rest goes to clean cross-entropy).
    pub distill_alpha: f64,
    /// ARD's softmax temperature.
    pub temperature: f64,
    /// The static models of `ensemble-at`, each the source of every `k+1`-th batch.
    pub surrogates: Vec<SavedModel>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetSource::Digits,
            data_dir: None,
            model: ModelSpec::default(),
            objective: ObjectiveKind::Pgd,
            norm: None,
            eps: 0.1,
            alpha: None,
            steps: 7,
            restarts: 1,
            beta: 6.0,
            eps_warmup_epochs: 0.0,
            epochs: 40,
            batch_size: 32,
            optimizer: OptimizerKind::Adam,
            lr: 2e-3,
            momentum: 0.9,
            weight_decay: 0.0,
            schedule: ScheduleKind::OneCycle,
            peak_epoch: None,
            milestones: None,
            gamma: 0.1,
            seed: 0,
            valid_samples: 1000,
            valid_steps: 10,
            collapse_drop: 0.2,
            collapse_patience: 2,
            eval_samples: None,
            eval_steps: 20,
            eval_restarts: 1,
            text: crate::text::TextSettings::default(),
            init: None,
            lora: None,
            teacher: None,
            distill_alpha: 1.0,
            temperature: 30.0,
            surrogates: Vec::new(),
        }
    }
}

/// `value` in `[0, 1)`.
fn check_fraction(name: &'static str, value: f64) -> Result<(), ParamError> {
    if value.is_finite() && (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(ParamError {
            name,
            value: value.to_string(),
            expected: "a number in [0, 1)",
        })
    }
}

impl TrainConfig {
    /// Reads a TOML file with the keys of this struct (kebab-case); missing keys keep their
    /// defaults.
    ///
    /// # Errors
    ///
    /// [`TrainError::ConfigFile`] naming the file, and the line and key for parse errors or
    /// unknown keys.
    pub fn from_toml_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::ConfigFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let refuse = |message: String| TrainError::ConfigFile {
            path: path.to_path_buf(),
            message,
        };
        let parse_error = |e: toml::de::Error| refuse(e.to_string().trim().replace('\n', " "));
        let mut table: toml::Table = toml::from_str(&text).map_err(parse_error)?;
        let mut moved = false;
        // The `[text]` keys may also be written at the top level, as their flags are.
        let text_keys = serde_json::to_value(crate::text::TextSettings::default())
            .expect("serialisable")
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        for key in text_keys {
            if let Some(value) = table.remove(&key) {
                let section = table
                    .entry("text")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(section) = section.as_table_mut() else {
                    return Err(refuse("text: expected a table ([text])".to_string()));
                };
                if section.contains_key(&key) {
                    return Err(refuse(format!(
                        "{key} is set both at the top level and in [text]; set it once"
                    )));
                }
                section.insert(key, value);
                moved = true;
            }
        }
        // Parsed from the text itself when nothing moved, so errors keep their line.
        if moved {
            table.try_into().map_err(parse_error)
        } else {
            toml::from_str(&text).map_err(parse_error)
        }
    }

    /// The norm of the threat model: `norm` if set, else L2 (per token) for text and L-inf
    /// for images and tables.
    pub fn norm(&self) -> Norm {
        self.norm.unwrap_or(if self.dataset.is_text() {
            Norm::L2
        } else {
            Norm::Linf
        })
    }

    /// The threat model: the ball of radius `eps` in [`norm`](Self::norm) inside the `[0, 1]`
    /// box; for text, around each token's embedding and unbounded.
    ///
    /// # Errors
    ///
    /// [`ParamError`] for a negative or non-finite `eps`.
    pub fn threat(&self) -> Result<ThreatModel, ParamError> {
        let threat = ThreatModel::new(self.norm(), self.eps)?;
        Ok(if self.dataset.is_text() {
            threat.with_bounds(Bounds::Unbounded)?.per_token()
        } else {
            threat
        })
    }

    /// The attack step size: `alpha` if set, else 1.25 eps for FGSM-RS, 0.01 for FreeLB
    /// (see [`text`](crate::text)) and 2.5 eps / steps.
    pub fn step_size(&self) -> f64 {
        self.alpha.unwrap_or(match self.objective {
            ObjectiveKind::FgsmRs => FGSM_RS_ALPHA * self.eps,
            ObjectiveKind::Freelb => crate::text::FREELB_STEP,
            _ => default_step_size(self.eps, self.steps),
        })
    }

    /// Whether the training objective perturbs inside the eps ball (and so follows the eps
    /// warm-up): not `clean`, nor FreeLB (its own radius), A2T or text ensemble AT (character
    /// edits).
    pub fn trains_in_eps_ball(&self) -> bool {
        match self.objective {
            ObjectiveKind::Clean | ObjectiveKind::Freelb | ObjectiveKind::A2t => false,
            ObjectiveKind::EnsembleAt => !self.dataset.is_text(),
            _ => true,
        }
    }

    /// The epoch at which a one-cycle schedule peaks.
    pub fn peak_epoch(&self) -> f64 {
        self.peak_epoch.unwrap_or(((2 * self.epochs) / 5) as f64)
    }

    /// The epochs at which a piecewise schedule decays.
    pub fn milestones(&self) -> Vec<f64> {
        self.milestones.clone().unwrap_or_else(|| {
            let e = self.epochs as f64;
            vec![e / 2.0, e * 0.75]
        })
    }

    /// The objective at full eps, unchecked.
    pub(crate) fn objective_config(&self, threat: &ThreatModel) -> ObjectiveConfig {
        let attack = PgdConfig::new(threat.clone(), self.steps, self.step_size())
            .with_restarts(self.restarts);
        match self.objective {
            ObjectiveKind::Clean => ObjectiveConfig::Clean,
            ObjectiveKind::Pgd => ObjectiveConfig::Pgd { attack },
            ObjectiveKind::FgsmRs => ObjectiveConfig::FgsmRs {
                attack: PgdConfig::fgsm_rs(threat.clone())
                    .with_step_size(self.step_size())
                    .with_restarts(self.restarts),
            },
            ObjectiveKind::Trades => ObjectiveConfig::Trades {
                beta: self.beta,
                attack,
            },
            ObjectiveKind::Ard => ObjectiveConfig::Ard {
                alpha: self.distill_alpha,
                temperature: self.temperature,
                attack,
            },
            ObjectiveKind::Rslad => ObjectiveConfig::Rslad { attack },
            // Text: ensemble AT trains on the surrogates' character edits, and FreeLB,
            // Miyato's step and A2T find their inputs themselves ([`crate::text::TextPlan`]);
            // each then takes a clean loss on what it found.
            ObjectiveKind::EnsembleAt if self.dataset.is_text() => ObjectiveConfig::Clean,
            ObjectiveKind::EnsembleAt => ObjectiveConfig::EnsembleAt { attack },
            ObjectiveKind::Freelb | ObjectiveKind::A2t | ObjectiveKind::Miyato => {
                ObjectiveConfig::Clean
            }
        }
    }

    /// Checks every value that does not need the data, and builds the threat model, the
    /// objective and the validation attack (the dataset and the model are checked when they
    /// are loaded).
    ///
    /// # Errors
    ///
    /// [`TrainError::Param`] naming the key, the value and what it expects.
    pub fn check(self) -> Result<Run, TrainError> {
        let text = self.dataset.is_text();
        let fits = if text {
            !matches!(
                self.objective,
                ObjectiveKind::FgsmRs | ObjectiveKind::Trades
            )
        } else {
            !matches!(
                self.objective,
                ObjectiveKind::Freelb | ObjectiveKind::A2t | ObjectiveKind::Miyato
            )
        };
        if !fits {
            return Err(ParamError {
                name: "objective",
                value: self.objective.name(),
                expected: if text {
                    "clean, pgd (on token embeddings), freelb, miyato, a2t, ard, rslad or ensemble-at for text (a tsv: dataset)"
                } else {
                    "clean, pgd, fgsm-rs, trades, ard, rslad or ensemble-at for image and table data (freelb, miyato and a2t train text models, on a tsv: dataset)"
                },
            }
            .into());
        }
        self.check_models()?;
        if let Some(dir) = &self.data_dir
            && !self.dataset.reads_data_dir()
        {
            return Err(ParamError {
                name: "data-dir",
                value: dir.display().to_string(),
                expected: "no value for this dataset: only mnist and fashion-mnist are read from the data folder",
            }
            .into());
        }
        if !text {
            crate::text::refuse_text_settings(&self)?;
        }
        let threat = self.threat()?;
        self.check_loop()?;
        check_count("restarts", self.restarts, RESTARTS)?;
        check_finite_non_negative("beta", self.beta)?;
        check_finite_non_negative("eps-warmup-epochs", self.eps_warmup_epochs)?;
        if self.eps_warmup_epochs > 0.0 && !self.trains_in_eps_ball() {
            return Err(ParamError {
                name: "eps-warmup-epochs",
                value: self.eps_warmup_epochs.to_string(),
                expected: "0 unless the objective trains inside the eps ball (pgd, fgsm-rs, trades, ard, rslad, miyato, ensemble-at on images and tables)",
            }
            .into());
        }
        check_fraction("momentum", self.momentum)?;
        if let Some(peak) = self.peak_epoch
            && !(peak.is_finite() && (0.0..self.epochs as f64).contains(&peak))
        {
            return Err(ParamError {
                name: "peak-epoch",
                value: peak.to_string(),
                expected: "an epoch in [0, epochs)",
            }
            .into());
        }
        for m in self.milestones() {
            if !(m.is_finite() && m > 0.0) {
                return Err(ParamError {
                    name: "milestones",
                    value: m.to_string(),
                    expected: "epochs > 0",
                }
                .into());
            }
        }
        check_finite_positive("gamma", self.gamma)?;
        check_at_least_one("valid-samples", self.valid_samples)?;
        check_count("valid-steps", self.valid_steps, STEPS)?;
        check_finite_non_negative("collapse-drop", self.collapse_drop)?;
        check_at_least_one("collapse-patience", self.collapse_patience)?;
        if let Some(n) = self.eval_samples {
            check_at_least_one("eval-samples", n)?;
        }
        check_count("eval-steps", self.eval_steps, STEPS)?;
        check_count("eval-restarts", self.eval_restarts, RESTARTS)?;
        let text_plan = if text {
            Some(crate::text::TextPlan::check(&self)?)
        } else {
            None
        };
        let objective = self.objective_config(&threat).check()?;
        let valid_attack = PgdConfig::new(
            threat.clone(),
            self.valid_steps,
            default_step_size(self.eps, self.valid_steps),
        )
        .check()?;
        Ok(Run {
            config: self,
            threat,
            objective,
            valid_attack,
            text: text_plan,
        })
    }
}

impl TrainConfig {
    /// The settings every run's loop reads, image, table or text: epochs, batch size,
    /// learning rate, weight decay, attack steps and step size.
    pub(crate) fn check_loop(&self) -> Result<(), ParamError> {
        check_count("epochs", self.epochs, EPOCHS)?;
        check_count("batch-size", self.batch_size, BATCH)?;
        check_finite_positive("lr", self.lr)?;
        check_finite_non_negative("weight-decay", self.weight_decay)?;
        check_count("steps", self.steps, STEPS)?;
        if let Some(alpha) = self.alpha {
            check_finite_positive("alpha", alpha)?;
        }
        Ok(())
    }

    /// The models the run reads besides its own fit the objective: a teacher exactly for
    /// `ard` and `rslad`, surrogates exactly for `ensemble-at`, LoRA only from `init`.
    pub(crate) fn check_models(&self) -> Result<(), TrainError> {
        let refuse = |name: &'static str, value: String, expected: &'static str| {
            Err(ParamError {
                name,
                value,
                expected,
            }
            .into())
        };
        let distils = self.objective.distils();
        match &self.teacher {
            None if distils => {
                return refuse(
                    "teacher",
                    "none".to_string(),
                    "a teacher (run directory or weights file) for ard and rslad",
                );
            }
            Some(t) if !distils => {
                return refuse(
                    "teacher",
                    t.to_string(),
                    "no teacher unless the objective is ard or rslad",
                );
            }
            _ => {}
        }
        let ensemble = self.objective == ObjectiveKind::EnsembleAt;
        if ensemble && self.surrogates.is_empty() {
            return refuse(
                "surrogates",
                "none".to_string(),
                "at least one surrogate model for ensemble-at",
            );
        }
        if !ensemble && !self.surrogates.is_empty() {
            return refuse(
                "surrogates",
                format!("{} model(s)", self.surrogates.len()),
                "no surrogates unless the objective is ensemble-at",
            );
        }
        if let Some(lora) = &self.lora {
            if self.init.is_none() {
                return refuse(
                    "lora-rank",
                    lora.rank.to_string(),
                    "adapters on trained weights: give --init RUN_OR_WEIGHTS",
                );
            }
            lora.check()?;
        }
        Ok(())
    }
}

/// A checked training configuration: every value in range, and the threat model, the
/// training objective and the validation attack built from it. Only
/// [`TrainConfig::check`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    config: TrainConfig,
    threat: ThreatModel,
    objective: Objective,
    valid_attack: Pgd,
    text: Option<crate::text::TextPlan>,
}

impl Run {
    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The threat model of training, validation and the final evaluation.
    pub fn threat(&self) -> &ThreatModel {
        &self.threat
    }

    /// The training objective at full eps.
    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    /// The validation attack: PGD with `valid-steps` steps of 2.5 eps / steps, keeping the
    /// best point.
    pub fn valid_attack(&self) -> &Pgd {
        &self.valid_attack
    }

    /// The text attacks and perturbations of a run on text (`None` for images and tables).
    pub fn text(&self) -> Option<&crate::text::TextPlan> {
        self.text.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_match_the_flags_and_unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(
            &path,
            "dataset = \"breast-cancer\"\nobjective = \"fgsm-rs\"\neps = 0.05\nmodel = { kind = \"mlp\", hidden = [32, 16] }\neps-warmup-epochs = 2\nnorm = \"inf\"\n",
        )
        .unwrap();
        let c = TrainConfig::from_toml_file(&path).unwrap();
        assert_eq!(c.dataset, DatasetSource::BreastCancer);
        assert_eq!(c.objective, ObjectiveKind::FgsmRs);
        assert_eq!(
            c.model,
            ModelSpec::Mlp {
                hidden: vec![32, 16]
            }
        );
        assert_eq!(c.norm(), Norm::Linf);
        assert_eq!(c.eps_warmup_epochs, 2.0);
        assert_eq!(c.step_size(), 1.25 * 0.05);
        assert_eq!(c.epochs, TrainConfig::default().epochs);

        // A bare architecture name takes that architecture's defaults.
        std::fs::write(&path, "model = \"small-cnn\"\n").unwrap();
        let c = TrainConfig::from_toml_file(&path).unwrap();
        assert_eq!(c.model, ModelSpec::SmallCnn {});

        std::fs::write(&path, "epoch = 3\n").unwrap();
        let err = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("run.toml") && err.contains("epoch"), "{err}");
        std::fs::write(&path, "epochs = \"many\"\n").unwrap();
        let err = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("run.toml") && err.contains("epochs"), "{err}");
        std::fs::write(&path, "dataset = \"imagenet\"\n").unwrap();
        let err = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("run.toml") && err.contains("imagenet"),
            "{err}"
        );
        std::fs::write(&path, "norm = \"l1\"\n").unwrap();
        let err = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("run.toml") && err.contains("norm"), "{err}");

        // The text keys, at the top level as their flags are, or in [text]; not both.
        for body in [
            "vocab-size = 500\nmax-len = 32\nword-recognition = \"neutral\"\n",
            "[text]\nvocab-size = 500\nmax-len = 32\nword-recognition = \"neutral\"\n",
            "vocab-size = 500\n[text]\nmax-len = 32\nword-recognition = \"neutral\"\n",
        ] {
            std::fs::write(&path, body).unwrap();
            let c = TrainConfig::from_toml_file(&path).unwrap();
            assert_eq!((c.text.vocab_size, c.text.max_len), (500, 32), "{body}");
            assert!(c.text.word_recognition.is_some(), "{body}");
        }
        std::fs::write(&path, "max-len = 32\n[text]\nmax-len = 64\n").unwrap();
        let err = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("max-len is set both"), "{err}");
        std::fs::write(&path, "max-len = \"long\"\n").unwrap();
        let err = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("run.toml") && err.contains("max-len"), "{err}");
    }

    #[test]
    fn check_names_the_bad_key() {
        let bad = [
            TrainConfig {
                eps: -0.1,
                ..Default::default()
            },
            TrainConfig {
                lr: 0.0,
                ..Default::default()
            },
            TrainConfig {
                batch_size: 0,
                ..Default::default()
            },
            TrainConfig {
                momentum: 1.0,
                ..Default::default()
            },
        ];
        let fields = ["eps", "lr", "batch-size", "momentum"];
        for (config, field) in bad.into_iter().zip(fields) {
            let err = config.check().unwrap_err();
            assert!(
                matches!(&err, TrainError::Param(p) if p.name == field),
                "{err:?}"
            );
            assert!(err.to_string().starts_with(field), "{err}");
        }
        let run = TrainConfig::default().check().unwrap();
        assert_eq!(run.threat().eps(), 0.1);
        assert_eq!(run.objective().kind(), ObjectiveKind::Pgd);
        assert_eq!(run.valid_attack().config().steps, 10);
    }

    #[test]
    fn the_config_round_trips_through_json() {
        let config = TrainConfig {
            dataset: "csv:data/x.csv".parse().unwrap(),
            model: ModelSpec::Mlp { hidden: vec![8] },
            norm: Some(Norm::L2),
            ..Default::default()
        };
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("\"dataset\":\"csv:data/x.csv\""), "{json}");
        assert!(json.contains("\"norm\":\"l2\""), "{json}");
        let back: TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }
}
