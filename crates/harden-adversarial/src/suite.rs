//! Robust evaluation with an ensemble of attacks, as in the reference protocol of Croce &
//! Hein 2020 ("Reliable evaluation of adversarial robustness with an ensemble of diverse
//! parameter-free attacks").
//!
//! Each attack runs only on the samples every earlier attack failed to break; a sample is
//! robust only when it is classified correctly and survives all of them (and all their
//! restarts). The report lists, per attack, how many samples it broke, and raises sanity
//! flags, each with its evidence, for the usual signs of an evaluation that overstates
//! robustness (gradient masking, a too weak attack, a broken threat model).

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::attack::builtin_attack;
use crate::error::ParamError;
use crate::eval::{AttackResult, run_ensemble, share};
use crate::loss::correct;
use crate::pgd::default_step_size;
use crate::{
    Apgd, ApgdConfig, ApgdLoss, ApgdTargeted, Attack, AttackOutput, AttackRng, Differentiable, Pgd,
    PgdConfig, Square, SquareConfig, ThreatModel,
};

/// A named set of attacks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Suite {
    /// PGD-20 with a random start (step 2.5 eps / 20): fast, and an upper bound only.
    Quick,
    /// APGD-CE (100 iterations), APGD-T with the DLR loss (100 iterations, up to 9 target
    /// classes), Square (5000 queries): the reference protocol.
    Standard,
    /// As `Standard` with 5 restarts of APGD-CE and 10000 Square queries.
    Full,
    /// FGSM alone (a weak baseline).
    Fgsm,
    /// PGD alone with `steps` steps and `restarts` random starts; a sample counts as robust
    /// only if it survives every restart.
    Pgd {
        /// Steps per restart.
        steps: usize,
        /// Random restarts.
        restarts: usize,
        /// Step size; `None` takes `2.5 eps / steps` (the step that lets `steps` steps cross
        /// the ball and back).
        step_size: Option<f64>,
    },
}

impl std::str::FromStr for Suite {
    type Err = ParamError;

    fn from_str(s: &str) -> Result<Self, ParamError> {
        match s {
            "quick" => Ok(Self::Quick),
            "standard" => Ok(Self::Standard),
            "full" => Ok(Self::Full),
            "fgsm" => Ok(Self::Fgsm),
            _ => Err(ParamError {
                name: "suite",
                value: s.to_string(),
                expected: "quick, standard, full or fgsm",
            }),
        }
    }
}

/// One built-in attack of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SuiteAttack {
    /// PGD (or FGSM), untargeted.
    Pgd(Pgd),
    /// APGD, untargeted.
    Apgd(Apgd),
    /// APGD-T: targeted runs towards the classes ranked next after the top one.
    ApgdTargeted(ApgdTargeted),
    /// The Square attack.
    Square(Square),
}

impl SuiteAttack {
    /// The attack behind the variant.
    pub fn as_attack<const D: usize>(&self) -> &dyn Attack<D> {
        match self {
            Self::Pgd(a) => a,
            Self::Apgd(a) => a,
            Self::ApgdTargeted(a) => a,
            Self::Square(a) => a,
        }
    }

    /// A short name for reports (`apgd-ce`, `apgd-t`, `square`, `pgd-20x1`).
    pub fn name(&self) -> String {
        self.as_attack::<2>().name()
    }
}

/// A transfer attack: `attack` crafted on a surrogate model, evaluated on the attacked model.
/// Success means the attacked model misclassifies the crafted inputs; the gradient
/// diagnostics are the surrogate's. Reports describe it by its crafting attack.
#[derive(Serialize)]
pub struct Transfer<'a, const D: usize> {
    attack: Apgd,
    #[serde(skip)]
    surrogate: &'a dyn Differentiable<D>,
}

impl<'a, const D: usize> Transfer<'a, D> {
    /// `attack` run on `surrogate`.
    pub fn new(attack: Apgd, surrogate: &'a dyn Differentiable<D>) -> Self {
        Self { attack, surrogate }
    }
}

builtin_attack!(
    Transfer<'_, D>,
    name(transfer) = format!("transfer-{}", Attack::<D>::name(&transfer.attack)),
    black_box = true,
    perturb(transfer, model, input, labels, rng) = {
        let crafted = transfer
            .attack
            .perturb(transfer.surrogate, input, labels.clone(), rng);
        let logits = model.logits(crafted.adversarial.clone());
        AttackOutput {
            success: correct(logits.clone(), labels.clone()).bool_not(),
            loss: crate::loss::cross_entropy(logits, labels),
            adversarial: crafted.adversarial,
            gradients: crafted.gradients,
        }
    },
);

impl Suite {
    /// The suite's name for reports.
    pub fn name(self) -> String {
        match self {
            Self::Quick => "quick".to_string(),
            Self::Standard => "standard".to_string(),
            Self::Full => "full".to_string(),
            Self::Fgsm => "fgsm".to_string(),
            Self::Pgd {
                steps, restarts, ..
            } => format!("pgd-{steps}x{restarts}"),
        }
    }

    /// The suite's attacks for `threat` on a model with `num_classes` outputs.
    ///
    /// # Errors
    ///
    /// [`ParamError`] when an attack rejects the threat model.
    pub fn attacks(
        self,
        threat: &ThreatModel,
        num_classes: usize,
    ) -> Result<Vec<SuiteAttack>, ParamError> {
        let eps = threat.eps();
        let pgd_step = if eps > 0.0 {
            default_step_size(eps, 20)
        } else {
            1.0
        };
        let (restarts, queries) = match self {
            Self::Quick => {
                return Ok(vec![SuiteAttack::Pgd(
                    PgdConfig::new(threat.clone(), 20, pgd_step).check()?,
                )]);
            }
            Self::Fgsm => {
                return Ok(vec![SuiteAttack::Pgd(
                    PgdConfig::fgsm(threat.clone()).check()?,
                )]);
            }
            Self::Pgd {
                steps,
                restarts,
                step_size,
            } => {
                let step = match step_size {
                    Some(step) => step,
                    None if eps > 0.0 => default_step_size(eps, steps),
                    None => 1.0,
                };
                return Ok(vec![SuiteAttack::Pgd(
                    PgdConfig::new(threat.clone(), steps, step)
                        .with_restarts(restarts)
                        .check()?,
                )]);
            }
            Self::Standard => (1, 5_000),
            Self::Full => (5, 10_000),
        };
        let mut attacks = vec![SuiteAttack::Apgd(
            ApgdConfig::new(threat.clone(), ApgdLoss::CrossEntropy)
                .with_restarts(restarts)
                .check()?,
        )];
        let targets = num_classes.saturating_sub(1).min(9);
        if targets >= 1 && num_classes > 2 {
            attacks.push(SuiteAttack::ApgdTargeted(ApgdTargeted {
                attack: ApgdConfig::new(threat.clone(), ApgdLoss::Dlr).check()?,
                targets,
            }));
        } else {
            attacks.push(SuiteAttack::Apgd(
                ApgdConfig::new(threat.clone(), ApgdLoss::Dlr).check()?,
            ));
        }
        attacks.push(SuiteAttack::Square(
            SquareConfig::new(threat.clone(), queries).check()?,
        ));
        Ok(attacks)
    }
}

/// A sanity check of the evaluation, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SanityFlag {
    /// What is checked.
    pub name: String,
    /// Whether the warning is raised.
    pub raised: bool,
    /// The numbers behind the verdict.
    pub evidence: String,
}

/// The outcome of evaluating a model at one eps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The suite's name.
    pub suite: String,
    /// The threat model.
    pub threat: ThreatModel,
    /// The seed of the attacks' random stream.
    pub seed: u64,
    /// Samples evaluated.
    pub samples: usize,
    /// Share classified correctly.
    pub clean_accuracy: f64,
    /// Share classified correctly and unbroken by every attack.
    pub robust_accuracy: f64,
    /// Per attack, in the order run.
    pub attacks: Vec<AttackResult>,
    /// Sanity checks.
    pub flags: Vec<SanityFlag>,
}

/// Number of classes the model predicts (a single logit counts as 2), from one sample.
fn num_classes<const D: usize>(
    model: &dyn Differentiable<D>,
    batches: &[(Tensor<D>, Tensor<1, Int>)],
) -> usize {
    batches.first().map_or(2, |(x, _)| {
        model.logits(x.clone().narrow(0, 0, 1)).dims()[1].max(2)
    })
}

/// Evaluates `model` on `batches` with `suite` at `threat`, with sanity flags. With a
/// `surrogate`, a transfer attack (APGD-CE crafted on the surrogate) runs after the suite.
///
/// Besides the suite, the diagnostics run FGSM and PGD-20 on every clean-correct sample (to
/// compare them) and PGD-20 at eps = 1 L-inf (an attack that should reach ~0%).
///
/// # Errors
///
/// [`ParamError`] when an attack rejects the threat model.
pub fn evaluate<const D: usize>(
    model: &dyn Differentiable<D>,
    surrogate: Option<&dyn Differentiable<D>>,
    batches: &[(Tensor<D>, Tensor<1, Int>)],
    suite: Suite,
    threat: &ThreatModel,
    seed: u64,
) -> Result<EvalReport, ParamError> {
    let built = suite.attacks(threat, num_classes(model, batches))?;
    let transfer = match surrogate {
        Some(surrogate) => Some(Transfer::new(
            ApgdConfig::new(threat.clone(), ApgdLoss::CrossEntropy).check()?,
            surrogate,
        )),
        None => None,
    };
    let mut attacks: Vec<&dyn Attack<D>> = built.iter().map(SuiteAttack::as_attack).collect();
    if let Some(t) = &transfer {
        attacks.push(t);
    }
    evaluate_with(model, batches, &suite.name(), &attacks, threat, seed)
}

/// Evaluates `model` on `batches` with any `attacks` (built-in or a user's own) as one
/// ensemble, reported under the name `suite`, with the sanity flags of [`evaluate`]. `threat`
/// is the threat model the attacks work in; the diagnostic attacks use it too.
///
/// # Errors
///
/// [`ParamError`] when a diagnostic attack rejects the threat model.
pub fn evaluate_with<const D: usize>(
    model: &dyn Differentiable<D>,
    batches: &[(Tensor<D>, Tensor<1, Int>)],
    suite: &str,
    attacks: &[&dyn Attack<D>],
    threat: &ThreatModel,
    seed: u64,
) -> Result<EvalReport, ParamError> {
    let outcome = run_ensemble(model, batches, attacks, &mut AttackRng::new(seed));
    let results = &outcome.attacks;
    let mut flags = Vec::new();

    let checked: usize = results.iter().map(|r| r.gradients.samples).sum();
    let zero: usize = results.iter().map(|r| r.gradients.zero).sum();
    let non_finite: usize = results.iter().map(|r| r.gradients.non_finite).sum();
    flags.push(SanityFlag {
        name: "zero or non-finite input gradients".to_string(),
        raised: checked > 0 && (zero + non_finite) * 10 >= checked,
        evidence: format!("{zero} zero and {non_finite} non-finite of {checked} gradient checks"),
    });

    let broken_by = |black_box: bool| -> usize {
        results
            .iter()
            .filter(|r| r.black_box == black_box)
            .map(|r| r.broken)
            .sum()
    };
    let (white_box_broken, black_box_broken) = (broken_by(false), broken_by(true));
    flags.push(SanityFlag {
        name: "black-box attack succeeds where white-box attacks failed".to_string(),
        raised: black_box_broken > 0,
        evidence: format!(
            "gradient attacks broke {white_box_broken} samples, then the black-box attack broke {black_box_broken} more"
        ),
    });

    // One diagnostic attack alone on every clean-correct sample, from the same seed.
    let robust_under = |attack: Pgd| -> Vec<bool> {
        run_ensemble(model, batches, &[&attack], &mut AttackRng::new(seed)).robust_correct
    };

    // FGSM against PGD on every clean-correct sample.
    if threat.eps() > 0.0 {
        let fgsm_robust = robust_under(PgdConfig::fgsm(threat.clone()).check()?);
        let pgd_robust = robust_under(
            PgdConfig::new(threat.clone(), 20, default_step_size(threat.eps(), 20)).check()?,
        );
        let fgsm_only = fgsm_robust
            .iter()
            .zip(&pgd_robust)
            .filter(|(f, p)| !**f && **p)
            .count();
        flags.push(SanityFlag {
            name: "FGSM stronger than PGD on some samples".to_string(),
            raised: fgsm_only > 0,
            evidence: format!(
                "FGSM broke {fgsm_only} samples PGD-20 did not (FGSM robust {:.4}, PGD-20 robust {:.4})",
                share(&fgsm_robust),
                share(&pgd_robust)
            ),
        });
    }

    // An attack with an unbounded budget must reach ~0%.
    let unbounded =
        ThreatModel::new(crate::Norm::Linf, 1.0)?.with_bounds(threat.bounds().clone())?;
    let big_acc = share(&robust_under(PgdConfig::new(unbounded, 20, 0.125).check()?));
    flags.push(SanityFlag {
        name: "unbounded attack (eps = 1) does not reach ~0%".to_string(),
        raised: big_acc > 0.01,
        evidence: format!("robust accuracy {big_acc:.4} under PGD-20 at L-inf eps 1"),
    });

    Ok(EvalReport {
        suite: suite.to_string(),
        threat: threat.clone(),
        seed,
        samples: outcome.clean_correct.len(),
        clean_accuracy: outcome.clean_accuracy(),
        robust_accuracy: outcome.robust_accuracy(),
        attacks: outcome.attacks,
        flags,
    })
}

/// One point of a robustness curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// The radius.
    pub eps: f64,
    /// Robust accuracy under the suite at that radius.
    pub robust_accuracy: f64,
}

/// Robust accuracy over a list of eps values, with a flag raised when it ever increases with
/// eps (a sign of an unreliable evaluation).
///
/// # Errors
///
/// [`ParamError`] for an invalid eps or an attack that rejects the threat model.
pub fn robustness_curve<const D: usize>(
    model: &dyn Differentiable<D>,
    batches: &[(Tensor<D>, Tensor<1, Int>)],
    suite: Suite,
    threat: &ThreatModel,
    eps_list: &[f64],
    seed: u64,
) -> Result<(Vec<CurvePoint>, SanityFlag), ParamError> {
    let num_classes = num_classes(model, batches);
    let mut points = Vec::with_capacity(eps_list.len());
    for &eps in eps_list {
        let t = threat.clone().with_eps(eps)?;
        let built = suite.attacks(&t, num_classes)?;
        let attacks: Vec<&dyn Attack<D>> = built.iter().map(SuiteAttack::as_attack).collect();
        let outcome = run_ensemble(model, batches, &attacks, &mut AttackRng::new(seed));
        points.push(CurvePoint {
            eps,
            robust_accuracy: outcome.robust_accuracy(),
        });
    }
    let mut sorted = points.clone();
    sorted.sort_by(|a, b| a.eps.total_cmp(&b.eps));
    let rises: Vec<String> = sorted
        .windows(2)
        .filter(|w| w[1].robust_accuracy > w[0].robust_accuracy)
        .map(|w| {
            format!(
                "{:.4} at eps {} -> {:.4} at eps {}",
                w[0].robust_accuracy, w[0].eps, w[1].robust_accuracy, w[1].eps
            )
        })
        .collect();
    let flag = SanityFlag {
        name: "robust accuracy does not decrease with eps".to_string(),
        raised: !rises.is_empty(),
        evidence: if rises.is_empty() {
            "monotone".to_string()
        } else {
            rises.join("; ")
        },
    };
    Ok((points, flag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Norm;

    #[test]
    fn single_attack_suites_run_exactly_that_attack() {
        let threat = ThreatModel::new(Norm::Linf, 0.3).unwrap();
        let names = |suite: Suite| -> Vec<String> {
            suite
                .attacks(&threat, 10)
                .unwrap()
                .iter()
                .map(SuiteAttack::name)
                .collect()
        };
        assert_eq!(names(Suite::Quick), ["pgd-20x1"]);
        assert_eq!(names(Suite::Fgsm), ["pgd-1x1"]);
        assert_eq!(
            names(Suite::Pgd {
                steps: 50,
                restarts: 10,
                step_size: None,
            }),
            ["pgd-50x10"]
        );
        let pgd = |step_size| {
            let Some(SuiteAttack::Pgd(p)) = Suite::Pgd {
                steps: 50,
                restarts: 10,
                step_size,
            }
            .attacks(&threat, 10)
            .unwrap()
            .pop() else {
                panic!("one PGD attack");
            };
            p
        };
        assert!((pgd(None).config().step_size - 0.015).abs() < 1e-12);
        assert_eq!(pgd(Some(0.01)).config().step_size, 0.01);
        assert_eq!(pgd(Some(0.01)).config().restarts, 10);
        assert!(
            Suite::Pgd {
                steps: 50,
                restarts: 1,
                step_size: Some(-0.01),
            }
            .attacks(&threat, 10)
            .is_err()
        );
        let Some(SuiteAttack::Pgd(f)) = Suite::Fgsm.attacks(&threat, 10).unwrap().pop() else {
            panic!("one FGSM attack");
        };
        assert!(!f.config().random_start && f.config().step_size == 0.3);
        assert_eq!(names(Suite::Standard), ["apgd-ce", "apgd-t", "square"]);
    }
}
