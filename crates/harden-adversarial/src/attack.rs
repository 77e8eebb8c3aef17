//! Gradient attacks: FGSM, FGSM with a random start, and PGD with restarts.
//!
//! All share one engine ([`Pgd`]): FGSM is one step of size eps from the clean input, FGSM-RS
//! one step of size alpha from a random point of the ball, PGD `steps` steps of `step_size`
//! from a random point, repeated `restarts` times. Per sample the attack keeps the best point
//! it visited: a successful one (misclassified, or classified as the target) before an
//! unsuccessful one, and among equals the one with the highest loss (lowest for targeted
//! attacks). With the same seed, more steps or more restarts therefore never give a weaker
//! attack on the same samples.

use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::best::Best;
use crate::error::{
    ParamError, check_at_least_one, check_finite_non_negative, check_finite_positive,
};
use crate::loss::{cross_entropy, predictions};
use crate::{AttackRng, Differentiable, Norm, ThreatModel};

fn start_in_box_default() -> bool {
    true
}

/// FGSM-RS step size as a multiple of eps, as in Wong, Rice & Kolter 2020.
pub const FGSM_RS_ALPHA: f64 = 1.25;

/// The usual PGD step size for `steps` steps in a ball of radius `eps`: 2.5 eps / steps (Madry
/// et al. 2018), long enough to cross the ball and come back. `steps` of 0 counts as 1.
pub fn default_step_size(eps: f64, steps: usize) -> f64 {
    2.5 * eps / steps.max(1) as f64
}

/// Hyperparameters of a PGD attack, before checking. [`check`](PgdConfig::check) turns them
/// into a runnable [`Pgd`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgdConfig {
    /// The threat model (norm, eps, box).
    pub threat: ThreatModel,
    /// Number of gradient steps per restart (>= 1).
    pub steps: usize,
    /// Size of each step (> 0): `sign(g) * step_size` for L-inf, `g / |g| * step_size` for L2.
    pub step_size: f64,
    /// Number of independent runs (>= 1); each starts from a new random point when
    /// `random_start` is set.
    pub restarts: usize,
    /// Start from a uniformly random point of the ball rather than the clean input.
    pub random_start: bool,
    /// Project the random start into the box (true) or take the first gradient at a point of
    /// the ball that may leave the box (false, as the reference fast adversarial training
    /// does; every step is still projected onto ball and box).
    #[serde(default = "start_in_box_default")]
    pub start_in_box: bool,
    /// Keep, per sample, the best point visited (true), or return the last iterate (false,
    /// as adversarial training does).
    pub keep_best: bool,
}

impl PgdConfig {
    /// PGD with `steps` steps of size `step_size`, a random start, one restart, keeping the
    /// best point.
    pub fn new(threat: ThreatModel, steps: usize, step_size: f64) -> Self {
        Self {
            threat,
            steps,
            step_size,
            restarts: 1,
            random_start: true,
            start_in_box: true,
            keep_best: true,
        }
    }

    /// FGSM (Goodfellow et al. 2015): one step of size eps from the clean input.
    pub fn fgsm(threat: ThreatModel) -> Self {
        let eps = threat.eps();
        Self {
            threat,
            steps: 1,
            step_size: eps,
            restarts: 1,
            random_start: false,
            start_in_box: true,
            keep_best: true,
        }
    }

    /// FGSM with a uniform random start (Wong, Rice & Kolter 2020): one step of size
    /// [`FGSM_RS_ALPHA`] x eps from a random point of the ball, projected back. As in the
    /// paper's code the start is not clamped into the box (`start_in_box` false): on MNIST,
    /// clamping it makes every start on a black pixel non-negative, and training then falls
    /// into catastrophic overfitting far more often. Change the step with
    /// [`with_step_size`](Self::with_step_size).
    pub fn fgsm_rs(threat: ThreatModel) -> Self {
        let alpha = FGSM_RS_ALPHA * threat.eps();
        Self {
            threat,
            steps: 1,
            step_size: alpha,
            restarts: 1,
            random_start: true,
            start_in_box: false,
            keep_best: false,
        }
    }

    /// Sets the step size.
    pub fn with_step_size(mut self, step_size: f64) -> Self {
        self.step_size = step_size;
        self
    }

    /// Sets the number of restarts.
    pub fn with_restarts(mut self, restarts: usize) -> Self {
        self.restarts = restarts;
        self
    }

    /// Sets whether to start from a random point.
    pub fn with_random_start(mut self, random_start: bool) -> Self {
        self.random_start = random_start;
        self
    }

    /// Sets whether the random start is projected into the box.
    pub fn with_start_in_box(mut self, start_in_box: bool) -> Self {
        self.start_in_box = start_in_box;
        self
    }

    /// Sets whether to keep the best point visited or the last iterate.
    pub fn with_keep_best(mut self, keep_best: bool) -> Self {
        self.keep_best = keep_best;
        self
    }

    /// Checks the hyperparameters.
    ///
    /// # Errors
    ///
    /// [`ParamError`] for `steps` or `restarts` of 0, a `step_size` that is not finite and
    /// positive (with eps = 0, where the attack returns the clean input, a step of 0 is
    /// allowed), or an invalid threat model.
    pub fn check(mut self) -> Result<Pgd, ParamError> {
        self.threat = self.threat.checked()?;
        check_at_least_one("steps", self.steps)?;
        check_at_least_one("restarts", self.restarts)?;
        if self.threat.eps() == 0.0 {
            // Nothing to search: FGSM's step (eps itself) may be 0 too.
            check_finite_non_negative("step size", self.step_size)?;
        } else {
            check_finite_positive("step size", self.step_size)?;
        }
        Ok(Pgd { config: self })
    }
}

/// What the attack found about the model's input gradients.
///
/// A sample whose loss gradient is exactly zero, or not finite, cannot be attacked by
/// gradient steps; a model where many are is likely masking its gradients, and its robust
/// accuracy under gradient attacks overstates its robustness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradientCheck {
    /// Samples checked (those attacked).
    pub samples: usize,
    /// Samples whose input gradient at the first step was exactly zero everywhere.
    pub zero: usize,
    /// Samples whose input gradient at the first step had a NaN or infinite value (the step
    /// treated those values as zero).
    pub non_finite: usize,
}

impl GradientCheck {
    /// Combines checks of the same samples (restarts, targets): the worst of each count.
    pub(crate) fn merge(&mut self, other: Self) {
        self.samples = self.samples.max(other.samples);
        self.zero = self.zero.max(other.zero);
        self.non_finite = self.non_finite.max(other.non_finite);
    }

    /// Combines checks of different samples (batches, subsets): the sum of each count.
    pub(crate) fn add(&mut self, other: Self) {
        self.samples += other.samples;
        self.zero += other.zero;
        self.non_finite += other.non_finite;
    }
}

/// The result of an attack on a batch.
#[derive(Debug, Clone)]
pub struct AttackOutput<const D: usize> {
    /// The adversarial inputs, inside the threat model; same shape as the clean inputs.
    pub adversarial: Tensor<D>,
    /// Per sample, whether the attack succeeded (misclassified, or classified as the target).
    pub success: Tensor<1, Bool>,
    /// Per sample, the loss at the adversarial input (cross-entropy to the label, or to the
    /// target for targeted attacks).
    pub loss: Tensor<1>,
    /// Input-gradient diagnostics.
    pub gradients: GradientCheck,
}

/// A checked, runnable PGD attack (FGSM and FGSM-RS are special cases); see [`PgdConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pgd {
    config: PgdConfig,
}

/// The loss and its gradient with respect to the input, per sample.
///
/// # Shapes
///
/// - `input`: `[N, ...]`; `labels`: `[N]`.
/// - output: (`[N]` per-sample cross-entropy, gradient of its sum with the shape of `input`).
///
/// The gradient is of the sum of per-sample losses, so each sample's part is the gradient of
/// its own loss. `input` may live on a device with or without autodiff; the returned tensors
/// carry no autodiff graph.
pub fn input_gradient<const D: usize, M: Differentiable<D>>(
    model: &M,
    input: Tensor<D>,
    labels: Tensor<1, Int>,
) -> (Tensor<1>, Tensor<D>) {
    let (loss, grad, _) = loss_gradient_logits(model, input, labels);
    (loss, grad)
}

/// [`input_gradient`], also returning the logits `[N, K]` (without graph).
fn loss_gradient_logits<const D: usize, M: Differentiable<D>>(
    model: &M,
    input: Tensor<D>,
    labels: Tensor<1, Int>,
) -> (Tensor<1>, Tensor<D>, Tensor<2>) {
    let x = input.detach().autodiff().require_grad();
    let logits = model.logits(x.clone());
    let loss = cross_entropy(logits.clone(), labels);
    let grads = loss.clone().sum().backward();
    let grad = x
        .grad(&grads)
        .unwrap_or_else(|| x.clone().detach().without_autodiff().zeros_like());
    (
        loss.detach().without_autodiff(),
        grad,
        logits.detach().without_autodiff(),
    )
}

impl Pgd {
    /// The hyperparameters.
    pub fn config(&self) -> &PgdConfig {
        &self.config
    }

    /// The threat model.
    pub fn threat(&self) -> &ThreatModel {
        &self.config.threat
    }

    /// A copy with another eps; the step size is scaled by the same factor, so ratios such
    /// as `alpha = 1.25 eps` are kept (for eps schedules).
    ///
    /// # Errors
    ///
    /// [`ParamError`] when `eps` is negative or not finite.
    pub fn with_eps(&self, eps: f64) -> Result<Self, ParamError> {
        let mut config = self.config.clone();
        let old = config.threat.eps();
        config.threat = config.threat.with_eps(eps)?;
        if old > 0.0 && eps > 0.0 {
            config.step_size *= eps / old;
        }
        config.check()
    }

    /// The adversarial inputs alone, without the final evaluation pass that [`perturb`]
    /// makes when the attack returns its last iterate: what adversarial training needs.
    ///
    /// [`perturb`]: Pgd::perturb
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` clean inputs inside the box; `labels`: `[N]`; output: like `input`.
    pub fn adversarial<const D: usize, M: Differentiable<D>>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        rng: &mut AttackRng,
    ) -> Tensor<D> {
        self.search(model, input, labels, false, None, rng, false).0
    }

    /// Untargeted attack: pushes each sample away from its label.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` clean inputs inside the box; `labels`: `[N]`.
    pub fn perturb<const D: usize, M: Differentiable<D>>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        rng: &mut AttackRng,
    ) -> AttackOutput<D> {
        self.run(model, input, labels, false, None, rng)
    }

    /// Targeted attack: pulls each sample towards `targets[i]`.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]`; `targets`: `[N]` class indices.
    pub fn perturb_targeted<const D: usize, M: Differentiable<D>>(
        &self,
        model: &M,
        input: Tensor<D>,
        targets: Tensor<1, Int>,
        rng: &mut AttackRng,
    ) -> AttackOutput<D> {
        self.run(model, input, targets, true, None, rng)
    }

    /// Untargeted attack with a perturbation mask (1 perturbable, 0 fixed; broadcastable
    /// against `input`, e.g. `[N, T, 1]` for token embeddings with padding).
    pub fn perturb_masked<const D: usize, M: Differentiable<D>>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        mask: Tensor<D>,
        rng: &mut AttackRng,
    ) -> AttackOutput<D> {
        self.run(model, input, labels, false, Some(mask), rng)
    }

    fn run<const D: usize, M: Differentiable<D>>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        targeted: bool,
        mask: Option<Tensor<D>>,
        rng: &mut AttackRng,
    ) -> AttackOutput<D> {
        let (adversarial, evaluated, gradients) =
            self.search(model, input, labels, targeted, mask, rng, true);
        let (loss, success) = evaluated.expect("evaluation was requested");
        AttackOutput {
            adversarial,
            success,
            loss,
            gradients,
        }
    }

    /// The attack itself: returns the adversarial inputs, their per-sample loss and success
    /// (when `evaluate` is set or the best point is kept), and the gradient diagnostics.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn search<const D: usize, M: Differentiable<D>>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        targeted: bool,
        mask: Option<Tensor<D>>,
        rng: &mut AttackRng,
        evaluate: bool,
    ) -> (
        Tensor<D>,
        Option<(Tensor<1>, Tensor<1, Bool>)>,
        GradientCheck,
    ) {
        let c = &self.config;
        let threat = &c.threat;
        let clean = input.detach().without_autodiff();
        let labels = labels.without_autodiff();
        let n = clean.dims()[0];
        // Ascend the loss for untargeted attacks, descend it towards the target otherwise.
        let direction = if targeted { -1.0 } else { 1.0 };
        let success_of = |logits: Tensor<2>| {
            let hit = predictions(logits).equal(labels.clone());
            if targeted { hit } else { hit.bool_not() }
        };
        // Scores are maximised: the loss for untargeted attacks, minus the loss for targeted.
        let mut best = Best::new();
        let mut gradients = GradientCheck::default();
        let mut last = None;
        for restart in 0..c.restarts {
            let mut x = if c.random_start && threat.eps() > 0.0 {
                if c.start_in_box {
                    threat.random_point(clean.clone(), rng, mask.clone())
                } else {
                    threat.random_point_in_ball(clean.clone(), rng, mask.clone())
                }
            } else {
                clean.clone()
            };
            for step in 0..c.steps {
                let (loss, grad, logits) = loss_gradient_logits(model, x.clone(), labels.clone());
                if c.keep_best {
                    best.offer(x.clone(), loss.mul_scalar(direction), success_of(logits));
                }
                // The diagnostics cost two host reads; training (which only wants the
                // adversarial batch) skips them.
                let grad = if step == 0 && (evaluate || c.keep_best) {
                    let (checked, grad) = check_gradient(grad, n);
                    if restart == 0 {
                        gradients = checked;
                    } else {
                        gradients.merge(checked);
                    }
                    grad
                } else {
                    grad.clone().mask_fill(grad.is_finite().bool_not(), 0.0)
                };
                let stepped = x + threat.ascent(grad, c.step_size * direction);
                x = threat.project(stepped, clean.clone(), mask.clone());
            }
            if c.keep_best || evaluate {
                let logits = model.logits(x.clone());
                let loss = cross_entropy(logits.clone(), labels.clone())
                    .detach()
                    .without_autodiff();
                let success = success_of(logits);
                if !c.keep_best {
                    best = Best::new();
                }
                best.offer(x, loss.mul_scalar(direction), success);
            } else {
                last = Some(x);
            }
        }
        match (best.into_inner(), last) {
            (Some((x, score, success)), _) => {
                (x, Some((score.mul_scalar(direction), success)), gradients)
            }
            (None, Some(x)) => (x, None, gradients),
            (None, None) => unreachable!("restarts >= 1 is checked"),
        }
    }
}

/// Counts samples with an all-zero or non-finite gradient, and zeroes non-finite values.
pub(crate) fn check_gradient<const D: usize>(
    grad: Tensor<D>,
    n: usize,
) -> (GradientCheck, Tensor<D>) {
    let finite = grad.clone().is_finite();
    let flat_finite: Tensor<2, Bool> = finite.clone().flatten(1, D - 1);
    let non_finite = flat_finite
        .all_dim(1)
        .bool_not()
        .int()
        .sum()
        .into_scalar::<i64>() as usize;
    let grad = grad.mask_fill(finite.bool_not(), 0.0);
    let flat: Tensor<2> = grad.clone().abs().flatten(1, D - 1);
    let zero = flat
        .max_dim(1)
        .equal_elem(0.0)
        .int()
        .sum()
        .into_scalar::<i64>() as usize;
    (
        GradientCheck {
            samples: n,
            zero,
            non_finite,
        },
        grad,
    )
}

impl Norm {
    /// The norm's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Norm::Linf => "linf",
            Norm::L2 => "l2",
        }
    }
}
