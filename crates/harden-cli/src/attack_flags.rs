//! The threat-model and PGD flags that `harden eval` and `harden attack` share.

use anyhow::{Context, Result, bail};
use harden_adversarial::{Norm, ThreatModel};

use crate::kinds::Kind;

/// `--norm`, `--steps`, `--restarts`, `--step-size` and `--seed`.
#[derive(Debug, clap::Args)]
pub struct AttackFlags {
    /// Threat model norm (`inf` and `2` are accepted too) [default: linf; a text run's own].
    #[arg(long, value_parser = Kind::<Norm>::new())]
    norm: Option<Norm>,
    /// PGD steps (with --attack pgd; with --suite text, embedding PGD's) [default: 20; a text
    /// run's own].
    #[arg(long)]
    steps: Option<usize>,
    /// PGD random restarts (with --attack pgd; with --suite text, embedding PGD's); a sample
    /// counts as robust only if it survives every restart [default: 1; a text run's own].
    #[arg(long)]
    restarts: Option<usize>,
    /// PGD step size (with --attack pgd); default 2.5 eps / steps.
    #[arg(long, allow_negative_numbers = true)]
    pub step_size: Option<f64>,
    /// Seed of the attacks' random starts [default: 0; a text run's own].
    #[arg(long)]
    seed: Option<u64>,
}

impl AttackFlags {
    /// `--norm`, as given.
    pub fn norm_given(&self) -> Option<Norm> {
        self.norm
    }

    /// `--steps`, as given.
    pub fn steps_given(&self) -> Option<usize> {
        self.steps
    }

    /// `--restarts`, as given.
    pub fn restarts_given(&self) -> Option<usize> {
        self.restarts
    }

    /// `--seed`, as given.
    pub fn seed_given(&self) -> Option<u64> {
        self.seed
    }

    /// The norm: `--norm`, else L-inf.
    pub fn norm(&self) -> Norm {
        self.norm.unwrap_or(Norm::Linf)
    }

    /// PGD steps: `--steps`, else 20.
    pub fn steps(&self) -> usize {
        self.steps.unwrap_or(20)
    }

    /// PGD restarts: `--restarts`, else 1.
    pub fn restarts(&self) -> usize {
        self.restarts.unwrap_or(1)
    }

    /// The attacks' seed: `--seed`, else 0.
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(0)
    }

    /// The threat model of `--norm` with radius `eps`; `flag` names the flag `eps` came from.
    ///
    /// # Errors
    ///
    /// A radius the threat model rejects (negative, not finite).
    pub fn threat(&self, eps: f64, flag: &str) -> Result<ThreatModel> {
        let threat = ThreatModel::new(self.norm(), eps).with_context(|| flag.to_string())?;
        warn_if_unbounded(&threat, flag);
        Ok(threat)
    }

    /// `--step-size` after checking it against `attack`, the `--attack` value if any: `None`
    /// when not given (2.5 eps / steps applies).
    ///
    /// # Errors
    ///
    /// A step size given with anything but `--attack pgd`, or not a finite positive number.
    pub fn step_size(&self, attack: Option<&str>) -> Result<Option<f64>> {
        let Some(step) = self.step_size else {
            return Ok(None);
        };
        if attack != Some("pgd") {
            bail!("--step-size applies only to --attack pgd");
        }
        if !(step.is_finite() && step > 0.0) {
            bail!("invalid --step-size {step}: expected a finite number above 0");
        }
        Ok(Some(step))
    }
}

/// Warns when an L-inf radius covers the whole `[0, 1]` input box: legal, but then every input
/// can be replaced by any other, and robust accuracy says nothing about robustness.
pub fn warn_if_unbounded(threat: &ThreatModel, flag: &str) {
    if threat.norm() == Norm::Linf && threat.eps() >= 1.0 {
        eprintln!(
            "warning: {flag} {} with linf covers the whole [0, 1] input range: an attack may replace every input by any other",
            threat.eps()
        );
    }
}
