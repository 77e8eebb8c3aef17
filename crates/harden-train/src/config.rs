//! The configuration of a training run: every key the CLI flags and `--config FILE.toml` set.

use std::path::{Path, PathBuf};

use harden_adversarial::attack::{FGSM_RS_ALPHA, default_step_size};
use harden_adversarial::{Norm, ObjectiveConfig, PgdConfig, ThreatModel};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// The training objective (see `harden_adversarial::Objective`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveKind {
    /// Clean cross-entropy.
    Clean,
    /// PGD adversarial training (Madry et al. 2018).
    Pgd,
    /// FGSM with a random start (Wong, Rice & Kolter 2020).
    FgsmRs,
    /// TRADES (Zhang et al. 2019).
    Trades,
}

impl OptimizerKind {
    /// The name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Adam => "adam",
            Self::Sgd => "sgd",
        }
    }
}

impl ScheduleKind {
    /// The name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::OneCycle => "one-cycle",
            Self::Piecewise => "piecewise",
        }
    }
}

impl ObjectiveKind {
    /// The name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Pgd => "pgd",
            Self::FgsmRs => "fgsm-rs",
            Self::Trades => "trades",
        }
    }
}

/// The optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Adam (PyTorch's defaults: betas 0.9, 0.999, epsilon 1e-8), with L2 weight decay.
    Adam,
    /// SGD with momentum and weight decay.
    Sgd,
}

/// The learning-rate schedule, updated every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// Everything a training run needs; serialised as the run's `config.json` and read from TOML
/// files with the same keys (kebab-case, as the CLI flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrainConfig {
    /// Dataset name: digits, breast-cancer, mnist, fashion-mnist or csv:PATH.
    pub dataset: String,
    /// Folder holding mnist/ and fashion-mnist/ (default: `$HARDEN_DATA_DIR`, else `./data`).
    pub data_dir: Option<PathBuf>,
    /// Architecture: mlp, small-cnn or madry-cnn.
    pub model: String,
    /// Hidden widths of an MLP.
    pub hidden: Vec<usize>,
    /// Training objective.
    pub objective: ObjectiveKind,
    /// Norm of the threat model: `linf` or `l2`.
    pub norm: String,
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
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dataset: "digits".to_string(),
            data_dir: None,
            model: "mlp".to_string(),
            hidden: vec![256, 128],
            objective: ObjectiveKind::Pgd,
            norm: "linf".to_string(),
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
        }
    }
}

fn positive(field: &'static str, value: f64) -> Result<(), TrainError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(TrainError::config(
            field,
            format!("expected a finite number > 0, got {value}"),
        ))
    }
}

fn non_negative(field: &'static str, value: f64) -> Result<(), TrainError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(TrainError::config(
            field,
            format!("expected a finite number >= 0, got {value}"),
        ))
    }
}

fn at_least_one(field: &'static str, value: usize) -> Result<(), TrainError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(TrainError::config(field, "expected at least 1, got 0"))
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
        toml::from_str(&text).map_err(|e| TrainError::ConfigFile {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    /// The threat model's norm.
    ///
    /// # Errors
    ///
    /// [`TrainError::Config`] for a name other than `linf` or `l2`.
    pub fn norm(&self) -> Result<Norm, TrainError> {
        match self.norm.as_str() {
            "linf" => Ok(Norm::Linf),
            "l2" => Ok(Norm::L2),
            other => Err(TrainError::config(
                "norm",
                format!("expected linf or l2, got {other:?}"),
            )),
        }
    }

    /// The attack step size: `alpha` if set, else 1.25 eps for FGSM-RS and 2.5 eps / steps.
    pub fn step_size(&self) -> f64 {
        self.alpha.unwrap_or(match self.objective {
            ObjectiveKind::FgsmRs => FGSM_RS_ALPHA * self.eps,
            _ => default_step_size(self.eps, self.steps),
        })
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
    ///
    /// # Errors
    ///
    /// [`TrainError::Config`] for an unknown norm.
    pub fn objective_config(&self) -> Result<ObjectiveConfig, TrainError> {
        let threat = ThreatModel::new(self.norm()?, self.eps)?;
        let attack = PgdConfig::new(threat.clone(), self.steps, self.step_size())
            .with_restarts(self.restarts);
        Ok(match self.objective {
            ObjectiveKind::Clean => ObjectiveConfig::Clean,
            ObjectiveKind::Pgd => ObjectiveConfig::Pgd { attack },
            ObjectiveKind::FgsmRs => ObjectiveConfig::FgsmRs {
                attack: PgdConfig::fgsm_rs(threat)
                    .with_step_size(self.step_size())
                    .with_restarts(self.restarts),
            },
            ObjectiveKind::Trades => ObjectiveConfig::Trades {
                beta: self.beta,
                attack,
            },
        })
    }

    /// Checks every value that does not need the data (the dataset and model names are
    /// checked when they are loaded).
    ///
    /// # Errors
    ///
    /// [`TrainError::Config`] naming the key and what it expects.
    pub fn check(&self) -> Result<(), TrainError> {
        non_negative("eps", self.eps)?;
        if let Some(alpha) = self.alpha {
            positive("alpha", alpha)?;
        }
        at_least_one("steps", self.steps)?;
        at_least_one("restarts", self.restarts)?;
        non_negative("beta", self.beta)?;
        non_negative("eps-warmup-epochs", self.eps_warmup_epochs)?;
        at_least_one("epochs", self.epochs)?;
        at_least_one("batch-size", self.batch_size)?;
        positive("lr", self.lr)?;
        non_negative("momentum", self.momentum)?;
        if self.momentum >= 1.0 {
            return Err(TrainError::config(
                "momentum",
                format!("expected a value in [0, 1), got {}", self.momentum),
            ));
        }
        non_negative("weight-decay", self.weight_decay)?;
        if let Some(peak) = self.peak_epoch
            && !(peak.is_finite() && (0.0..self.epochs as f64).contains(&peak))
        {
            return Err(TrainError::config(
                "peak-epoch",
                format!(
                    "expected a value in [0, epochs = {}), got {peak}",
                    self.epochs
                ),
            ));
        }
        for m in self.milestones() {
            if !(m.is_finite() && m > 0.0) {
                return Err(TrainError::config(
                    "milestones",
                    format!("expected epochs > 0, got {m}"),
                ));
            }
        }
        positive("gamma", self.gamma)?;
        at_least_one("valid-samples", self.valid_samples)?;
        at_least_one("valid-steps", self.valid_steps)?;
        non_negative("collapse-drop", self.collapse_drop)?;
        at_least_one("collapse-patience", self.collapse_patience)?;
        if let Some(n) = self.eval_samples {
            at_least_one("eval-samples", n)?;
        }
        at_least_one("eval-steps", self.eval_steps)?;
        at_least_one("eval-restarts", self.eval_restarts)?;
        self.objective_config()?.check()?;
        Ok(())
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
            "dataset = \"breast-cancer\"\nobjective = \"fgsm-rs\"\neps = 0.05\nhidden = [32, 16]\neps-warmup-epochs = 2\n",
        )
        .unwrap();
        let c = TrainConfig::from_toml_file(&path).unwrap();
        assert_eq!(c.dataset, "breast-cancer");
        assert_eq!(c.objective, ObjectiveKind::FgsmRs);
        assert_eq!(c.hidden, vec![32, 16]);
        assert_eq!(c.eps_warmup_epochs, 2.0);
        assert_eq!(c.step_size(), 1.25 * 0.05);
        assert_eq!(c.epochs, TrainConfig::default().epochs);

        std::fs::write(&path, "epoch = 3\n").unwrap();
        let err = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("run.toml") && err.contains("epoch"), "{err}");
        std::fs::write(&path, "epochs = \"many\"\n").unwrap();
        let err = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("run.toml") && err.contains("epochs"), "{err}");
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
                norm: "l1".into(),
                ..Default::default()
            },
            TrainConfig {
                momentum: 1.0,
                ..Default::default()
            },
        ];
        let fields = ["eps", "lr", "batch-size", "norm", "momentum"];
        for (config, field) in bad.iter().zip(fields) {
            let err = config.check().unwrap_err().to_string();
            assert!(err.starts_with(field), "{err}");
        }
        TrainConfig::default().check().unwrap();
    }
}
