//! Robust evaluation with an ensemble of attacks, as in the reference protocol of Croce &
//! Hein 2020 ("Reliable evaluation of adversarial robustness with an ensemble of diverse
//! parameter-free attacks").
//!
//! Each attack runs only on the samples every earlier attack failed to break; a sample is
//! robust only when it is classified correctly and survives all of them (and all their
//! restarts). The report lists, per attack, how many samples it broke, and raises sanity
//! flags, each with its evidence, for the usual signs of an evaluation that overstates
//! robustness (gradient masking, a too weak attack, a broken threat model).

use std::time::Instant;

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::attack::default_step_size;
use crate::error::ParamError;
use crate::eval::{share, to_bools};
use crate::loss::correct;
use crate::{
    Apgd, ApgdConfig, ApgdLoss, AttackOutput, AttackRng, Differentiable, GradientCheck, Pgd,
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

/// One attack of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SuiteAttack {
    /// PGD (or FGSM), untargeted.
    Pgd(Pgd),
    /// APGD, untargeted.
    Apgd(Apgd),
    /// APGD-T: targeted runs towards the `targets` classes ranked next after the top one.
    ApgdTargeted {
        /// The attack.
        attack: Apgd,
        /// Number of target classes.
        targets: usize,
    },
    /// The Square attack.
    Square(Square),
    /// A transfer attack: this attack crafted on a surrogate model, evaluated on the target.
    Transfer(Apgd),
}

impl SuiteAttack {
    /// A short name for reports (`apgd-ce`, `apgd-t`, `square`, `pgd-20`).
    pub fn name(&self) -> String {
        match self {
            Self::Pgd(p) => format!("pgd-{}x{}", p.config().steps, p.config().restarts),
            Self::Apgd(a) => match a.config().loss {
                ApgdLoss::CrossEntropy => "apgd-ce".to_string(),
                ApgdLoss::Dlr => "apgd-dlr".to_string(),
            },
            Self::ApgdTargeted { .. } => "apgd-t".to_string(),
            Self::Square(_) => "square".to_string(),
            Self::Transfer(_) => "transfer-apgd-ce".to_string(),
        }
    }

    /// Whether the attack uses no gradients of the evaluated model.
    pub fn is_black_box(&self) -> bool {
        matches!(self, Self::Square(_) | Self::Transfer(_))
    }

    /// Runs the attack; `None` for a transfer attack without a surrogate.
    fn run<const D: usize, M: Differentiable<D>>(
        &self,
        model: &M,
        surrogate: Option<&dyn Differentiable<D>>,
        x: Tensor<D>,
        y: Tensor<1, Int>,
        rng: &mut AttackRng,
    ) -> Option<AttackOutput<D>> {
        Some(match self {
            Self::Pgd(a) => a.perturb(model, x, y, rng),
            Self::Apgd(a) => a.perturb(model, x, y, rng),
            Self::ApgdTargeted { attack, targets } => {
                attack.perturb_top_targets(model, x, y, *targets, rng)
            }
            Self::Square(a) => a.perturb(model, x, y, rng),
            Self::Transfer(a) => transfer(a, surrogate?, model, x, y, rng),
        })
    }
}

/// Crafts adversarial inputs with `attack` on `surrogate` and evaluates them on `target`:
/// success means `target` misclassifies them. The gradient diagnostics are the surrogate's.
///
/// # Shapes
///
/// - `input`: `[N, ...]`; `labels`: `[N]`.
pub fn transfer<const D: usize, T: Differentiable<D> + ?Sized>(
    attack: &Apgd,
    surrogate: &dyn Differentiable<D>,
    target: &T,
    input: Tensor<D>,
    labels: Tensor<1, Int>,
    rng: &mut AttackRng,
) -> AttackOutput<D> {
    let crafted = attack.perturb(&|x| surrogate.logits(x), input, labels.clone(), rng);
    let logits = target.logits(crafted.adversarial.clone());
    AttackOutput {
        success: correct(logits.clone(), labels.clone()).bool_not(),
        loss: crate::loss::cross_entropy(logits, labels),
        adversarial: crafted.adversarial,
        gradients: crafted.gradients,
    }
}

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
            attacks.push(SuiteAttack::ApgdTargeted {
                attack: ApgdConfig::new(threat.clone(), ApgdLoss::Dlr).check()?,
                targets,
            });
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

/// What one attack of the ensemble did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackResult {
    /// The attack's name.
    pub name: String,
    /// Its full configuration.
    pub attack: SuiteAttack,
    /// Samples it was run on (those still robust).
    pub attempted: usize,
    /// Samples it broke.
    pub broken: usize,
    /// Wall-clock seconds it took.
    pub seconds: f64,
    /// Its input-gradient diagnostics (all zero for black-box attacks).
    pub gradients: GradientCheck,
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

/// Runs `attacks` as an ensemble on `batches`; see the [module docs](self).
///
/// `batches` are `(inputs [N, ...], labels [N])` pairs on the model's device. Each attack runs
/// on the samples of each batch that are still robust.
///
/// # Panics
///
/// Panics when a batch's inputs and labels differ in length.
pub fn run_ensemble<const D: usize, M: Differentiable<D>>(
    model: &M,
    surrogate: Option<&dyn Differentiable<D>>,
    batches: &[(Tensor<D>, Tensor<1, Int>)],
    attacks: &[SuiteAttack],
    rng: &mut AttackRng,
) -> (Vec<bool>, Vec<bool>, Vec<AttackResult>) {
    let mut clean_all = Vec::new();
    let mut robust_all = Vec::new();
    let mut results: Vec<AttackResult> = attacks
        .iter()
        .map(|a| AttackResult {
            name: a.name(),
            attack: a.clone(),
            attempted: 0,
            broken: 0,
            seconds: 0.0,
            gradients: GradientCheck::default(),
        })
        .collect();
    for (x, y) in batches {
        let x = x.clone().detach().without_autodiff();
        let y = y.clone().without_autodiff();
        assert_eq!(
            x.dims()[0],
            y.dims()[0],
            "inputs and labels differ in length"
        );
        let clean = to_bools(correct(model.logits(x.clone()), y.clone()));
        let mut robust = clean.clone();
        for (attack, result) in attacks.iter().zip(&mut results) {
            let still: Vec<i64> = (0..robust.len())
                .filter(|&i| robust[i])
                .map(|i| i as i64)
                .collect();
            if still.is_empty() {
                continue;
            }
            let idx = Tensor::<1, Int>::from_data(
                TensorData::new(still.clone(), [still.len()]),
                &x.device(),
            );
            let start = Instant::now();
            let Some(out) = attack.run(
                model,
                surrogate,
                x.clone().select(0, idx.clone()),
                y.clone().select(0, idx),
                rng,
            ) else {
                continue;
            };
            let broken = to_bools(out.success);
            result.seconds += start.elapsed().as_secs_f64();
            result.attempted += still.len();
            result.gradients.add(out.gradients);
            for (k, &i) in still.iter().enumerate() {
                if broken[k] {
                    robust[i as usize] = false;
                    result.broken += 1;
                }
            }
        }
        clean_all.extend(clean);
        robust_all.extend(robust);
    }
    (clean_all, robust_all, results)
}

/// Number of classes the model predicts (a single logit counts as 2), from one sample.
fn num_classes<const D: usize, M: Differentiable<D>>(
    model: &M,
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
pub fn evaluate<const D: usize, M: Differentiable<D>>(
    model: &M,
    surrogate: Option<&dyn Differentiable<D>>,
    batches: &[(Tensor<D>, Tensor<1, Int>)],
    suite: Suite,
    threat: &ThreatModel,
    seed: u64,
) -> Result<EvalReport, ParamError> {
    let num_classes = num_classes(model, batches);
    let mut attacks = suite.attacks(threat, num_classes)?;
    if surrogate.is_some() {
        attacks.push(SuiteAttack::Transfer(
            ApgdConfig::new(threat.clone(), ApgdLoss::CrossEntropy).check()?,
        ));
    }
    let mut rng = AttackRng::new(seed);
    let (clean, robust, results) = run_ensemble(model, surrogate, batches, &attacks, &mut rng);
    let mut flags = Vec::new();

    let checked: usize = results.iter().map(|r| r.gradients.samples).sum();
    let zero: usize = results.iter().map(|r| r.gradients.zero).sum();
    let non_finite: usize = results.iter().map(|r| r.gradients.non_finite).sum();
    flags.push(SanityFlag {
        name: "zero or non-finite input gradients".to_string(),
        raised: checked > 0 && (zero + non_finite) * 10 >= checked,
        evidence: format!("{zero} zero and {non_finite} non-finite of {checked} gradient checks"),
    });

    let white_box_broken: usize = results
        .iter()
        .filter(|r| !r.attack.is_black_box())
        .map(|r| r.broken)
        .sum();
    let black_box_broken: usize = results
        .iter()
        .filter(|r| r.attack.is_black_box())
        .map(|r| r.broken)
        .sum();
    flags.push(SanityFlag {
        name: "black-box attack succeeds where white-box attacks failed".to_string(),
        raised: black_box_broken > 0,
        evidence: format!(
            "gradient attacks broke {white_box_broken} samples, then the black-box attack broke {black_box_broken} more"
        ),
    });

    // FGSM against PGD on every clean-correct sample.
    if threat.eps() > 0.0 {
        let fgsm = SuiteAttack::Pgd(PgdConfig::fgsm(threat.clone()).check()?);
        let pgd = SuiteAttack::Pgd(
            PgdConfig::new(threat.clone(), 20, default_step_size(threat.eps(), 20)).check()?,
        );
        let (_, fgsm_robust, _) = run_ensemble(
            model,
            None,
            batches,
            std::slice::from_ref(&fgsm),
            &mut AttackRng::new(seed),
        );
        let (_, pgd_robust, _) = run_ensemble(
            model,
            None,
            batches,
            std::slice::from_ref(&pgd),
            &mut AttackRng::new(seed),
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
    let big = SuiteAttack::Pgd(PgdConfig::new(unbounded, 20, 0.125).check()?);
    let (_, big_robust, _) = run_ensemble(
        model,
        None,
        batches,
        std::slice::from_ref(&big),
        &mut AttackRng::new(seed),
    );
    let big_acc = share(&big_robust);
    flags.push(SanityFlag {
        name: "unbounded attack (eps = 1) does not reach ~0%".to_string(),
        raised: big_acc > 0.01,
        evidence: format!("robust accuracy {big_acc:.4} under PGD-20 at L-inf eps 1"),
    });

    Ok(EvalReport {
        suite: suite.name(),
        threat: threat.clone(),
        seed,
        samples: clean.len(),
        clean_accuracy: share(&clean),
        robust_accuracy: share(&robust),
        attacks: results,
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
pub fn robustness_curve<const D: usize, M: Differentiable<D>>(
    model: &M,
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
        let attacks = suite.attacks(&t, num_classes)?;
        let (_, robust, _) =
            run_ensemble(model, None, batches, &attacks, &mut AttackRng::new(seed));
        points.push(CurvePoint {
            eps,
            robust_accuracy: share(&robust),
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
