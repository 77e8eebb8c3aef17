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

use crate::attack::{
    AttackOutput, GradientCheck, builtin_attack, check_gradient, loss_and_gradient, zero_non_finite,
};
use crate::best::Best;
use crate::error::{ParamError, check_finite_non_negative, check_finite_positive, check_search};
use crate::loss::{cross_entropy, predictions};
use crate::{AttackRng, Differentiable, ThreatModel};

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

    crate::macros::setters! {
        /// Sets the step size.
        with_step_size(step_size: f64);
        /// Sets the number of restarts.
        with_restarts(restarts: usize);
        /// Sets whether to start from a random point.
        with_random_start(random_start: bool);
        /// Sets whether the random start is projected into the box.
        with_start_in_box(start_in_box: bool);
        /// Sets whether to keep the best point visited or the last iterate.
        with_keep_best(keep_best: bool);
    }

    /// Checks the hyperparameters.
    ///
    /// # Errors
    ///
    /// [`ParamError`] for `steps` or `restarts` of 0, a `step_size` that is not finite and
    /// positive (with eps = 0, where the attack returns the clean input, a step of 0 is
    /// allowed), or an invalid threat model.
    pub fn check(mut self) -> Result<Pgd, ParamError> {
        self.threat = check_search(self.threat, self.steps, self.restarts)?;
        if self.threat.eps() == 0.0 {
            // Nothing to search: FGSM's step (eps itself) may be 0 too.
            check_finite_non_negative("step size", self.step_size)?;
        } else {
            check_finite_positive("step size", self.step_size)?;
        }
        Ok(Pgd { config: self })
    }
}

crate::macros::checked! {
    /// A checked, runnable PGD attack (FGSM and FGSM-RS are special cases); see [`PgdConfig`].
    pub struct Pgd(PgdConfig);
}

/// One run of the PGD engine: what to attack and what to compute besides the adversarial
/// inputs.
struct Request<const D: usize> {
    /// Clean inputs `[N, ...]`.
    input: Tensor<D>,
    /// Classes the loss is taken to `[N]`: the labels, or the targets of a targeted attack.
    classes: Tensor<1, Int>,
    /// Descend the loss towards `classes` instead of ascending it away from them.
    targeted: bool,
    /// Perturbation mask (1 perturbable, 0 fixed), broadcastable against `input`.
    mask: Option<Tensor<D>>,
    /// Evaluate the returned point (loss, success, gradient diagnostics) even when the last
    /// iterate is returned.
    evaluate: bool,
}

/// What one run of the PGD engine found.
struct Found<const D: usize> {
    adversarial: Tensor<D>,
    /// Per-sample loss and success at `adversarial`, when evaluated.
    evaluated: Option<(Tensor<1>, Tensor<1, Bool>)>,
    gradients: GradientCheck,
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
    /// `mask` (1 perturbable, 0 fixed; broadcastable against `input`, e.g. `[N, T, 1]` for
    /// token embeddings with padding) keeps masked values at their clean value.
    ///
    /// [`perturb`]: crate::Attack::perturb
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` clean inputs inside the box; `labels`: `[N]`; output: like `input`.
    pub fn adversarial<const D: usize, M: Differentiable<D> + ?Sized>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        mask: Option<Tensor<D>>,
        rng: &mut AttackRng,
    ) -> Tensor<D> {
        let request = Request {
            input,
            classes: labels,
            targeted: false,
            mask,
            evaluate: false,
        };
        self.search(model, request, rng).adversarial
    }

    /// Targeted attack: pulls each sample towards `targets[i]` (success: classified as the
    /// target).
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]`; `targets`: `[N]` class indices.
    pub fn perturb_targeted<const D: usize, M: Differentiable<D> + ?Sized>(
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
    pub fn perturb_masked<const D: usize, M: Differentiable<D> + ?Sized>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        mask: Tensor<D>,
        rng: &mut AttackRng,
    ) -> AttackOutput<D> {
        self.run(model, input, labels, false, Some(mask), rng)
    }

    fn run<const D: usize, M: Differentiable<D> + ?Sized>(
        &self,
        model: &M,
        input: Tensor<D>,
        classes: Tensor<1, Int>,
        targeted: bool,
        mask: Option<Tensor<D>>,
        rng: &mut AttackRng,
    ) -> AttackOutput<D> {
        let request = Request {
            input,
            classes,
            targeted,
            mask,
            evaluate: true,
        };
        let found = self.search(model, request, rng);
        let (loss, success) = found.evaluated.expect("evaluation was requested");
        AttackOutput {
            adversarial: found.adversarial,
            success,
            loss,
            gradients: found.gradients,
        }
    }

    /// The attack itself: the adversarial inputs, their per-sample loss and success (when
    /// `evaluate` is set or the best point is kept), and the gradient diagnostics.
    fn search<const D: usize, M: Differentiable<D> + ?Sized>(
        &self,
        model: &M,
        request: Request<D>,
        rng: &mut AttackRng,
    ) -> Found<D> {
        let c = &self.config;
        let threat = &c.threat;
        let Request {
            input,
            classes,
            targeted,
            mask,
            evaluate,
        } = request;
        let clean = input.detach().without_autodiff();
        let classes = classes.without_autodiff();
        let n = clean.dims()[0];
        // Ascend the loss for untargeted attacks, descend it towards the target otherwise.
        let direction = if targeted { -1.0 } else { 1.0 };
        let success_of = |logits: Tensor<2>| {
            let hit = predictions(logits).equal(classes.clone());
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
                let at = loss_and_gradient(model, x.clone(), |logits| {
                    cross_entropy(logits, classes.clone())
                });
                if c.keep_best {
                    best.offer(
                        x.clone(),
                        at.loss.mul_scalar(direction),
                        success_of(at.logits),
                    );
                }
                // The diagnostics cost two host reads; training (which only wants the
                // adversarial batch) skips them.
                let grad = if step == 0 && (evaluate || c.keep_best) {
                    let (checked, grad) = check_gradient(at.grad, n);
                    if restart == 0 {
                        gradients = checked;
                    } else {
                        gradients.merge(checked);
                    }
                    grad
                } else {
                    zero_non_finite(at.grad)
                };
                let stepped = x + threat.ascent(grad, c.step_size * direction);
                x = threat.project(stepped, clean.clone(), mask.clone());
            }
            if c.keep_best || evaluate {
                let logits = model.logits(x.clone());
                let loss = cross_entropy(logits.clone(), classes.clone())
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
            (Some((x, score, success)), _) => Found {
                adversarial: x,
                evaluated: Some((score.mul_scalar(direction), success)),
                gradients,
            },
            (None, Some(x)) => Found {
                adversarial: x,
                evaluated: None,
                gradients,
            },
            (None, None) => unreachable!("restarts >= 1 is checked"),
        }
    }
}

builtin_attack!(
    Pgd,
    name(pgd) = format!("pgd-{}x{}", pgd.config.steps, pgd.config.restarts),
    black_box = false,
    perturb(pgd, model, input, labels, rng) = pgd.run(model, input, labels, false, None, rng),
);
