//! Auto-PGD (Croce & Hein 2020): PGD without a step size to tune.
//!
//! APGD starts with step `2 eps`, adds momentum (0.75), and at checkpoints
//! `w_j = ceil(p_j N)` (`p_0 = 0`, `p_1 = 0.22`, `p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03,
//! 0.06)`) halves a sample's step and restarts it from its best point when, since the last
//! checkpoint, its loss rose in at most 75% of the steps, or its step was not halved and its
//! best loss did not improve. Losses: cross-entropy, or the difference of logits ratio (DLR),
//! which is invariant to shifting and rescaling the logits and so is not fooled by saturated
//! softmax outputs; targeted DLR attacks pull towards the classes the model ranks next.

use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::attack::{
    AttackOutput, GradientCheck, builtin_attack, check_gradient, loss_and_gradient,
    per_sample_shape, zero_non_finite,
};
use crate::best::{Best, select};
use crate::error::{ParamError, check_search};
use crate::loss::{cross_entropy, margin, predictions};
use crate::{AttackRng, Differentiable, ThreatModel};

/// The loss APGD maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApgdLoss {
    /// Cross-entropy to the label (untargeted), or minus cross-entropy to the target.
    CrossEntropy,
    /// Difference of logits ratio: `-(z_y - max_{i != y} z_i) / (z_(1) - z_(3))`, or, targeted,
    /// `-(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2)`, with `z_(k)` the k-th largest logit.
    /// With fewer classes than the ratio needs (3, or 4 targeted) the denominator is 1.
    Dlr,
}

/// Hyperparameters of APGD, before checking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApgdConfig {
    /// The threat model.
    pub threat: ThreatModel,
    /// Iterations per restart (>= 1; the reference uses 100).
    pub steps: usize,
    /// Independent runs from random starts (>= 1).
    pub restarts: usize,
    /// The loss maximised.
    pub loss: ApgdLoss,
}

impl ApgdConfig {
    /// APGD with 100 iterations and one restart.
    pub fn new(threat: ThreatModel, loss: ApgdLoss) -> Self {
        Self {
            threat,
            steps: 100,
            restarts: 1,
            loss,
        }
    }

    crate::macros::setters! {
        /// Sets the iterations per restart.
        with_steps(steps: usize);
        /// Sets the number of restarts.
        with_restarts(restarts: usize);
    }

    /// Checks the hyperparameters.
    ///
    /// # Errors
    ///
    /// [`ParamError`] for zero steps or restarts, or an invalid threat model.
    pub fn check(mut self) -> Result<Apgd, ParamError> {
        self.threat = check_search(self.threat, self.steps, self.restarts)?;
        Ok(Apgd { config: self })
    }
}

crate::macros::checked! {
    /// A checked, runnable APGD attack; see the [module docs](self).
    pub struct Apgd(ApgdConfig);
}

/// APGD-T as one attack: targeted runs of `attack` towards each of the `targets` classes the
/// model ranks next after its top one (see [`Apgd::perturb_top_targets`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApgdTargeted {
    /// The attack (the reference uses the DLR loss).
    pub attack: Apgd,
    /// Number of target classes.
    pub targets: usize,
}

builtin_attack!(
    Apgd,
    name(apgd) = match apgd.config.loss {
        ApgdLoss::CrossEntropy => "apgd-ce".to_string(),
        ApgdLoss::Dlr => "apgd-dlr".to_string(),
    },
    black_box = false,
    perturb(apgd, model, input, labels, rng) = apgd.run(model, input, labels, None, rng),
);

builtin_attack!(
    ApgdTargeted,
    name(_apgd_t) = "apgd-t".to_string(),
    black_box = false,
    perturb(apgd_t, model, input, labels, rng) =
        apgd_t
            .attack
            .perturb_top_targets(model, input, labels, apgd_t.targets, rng),
);

/// Momentum of the APGD update.
const MOMENTUM: f64 = 0.75;
/// Share of loss increases below which a step is halved.
const RHO: f64 = 0.75;

/// The iterations at which APGD checks its progress, as the reference implementation
/// computes them: windows of `max(0.22 N, 1)` iterations, each `max(0.03 N, 1)` shorter than
/// the last, never shorter than `max(0.06 N, 1)` (integer parts; for N = 100 the paper's
/// 22, 41, 57, 70, 80, 87, 93, 99).
pub fn checkpoints(steps: usize) -> Vec<usize> {
    let part = |share: usize| (share * steps / 100).max(1);
    let (mut window, decrease, shortest) = (part(22), part(3), part(6));
    let mut out = Vec::new();
    let mut at = window;
    while at <= steps {
        out.push(at);
        window = window.saturating_sub(decrease).max(shortest);
        at += window;
    }
    out
}

/// The per-sample loss APGD maximises, `[N]`.
///
/// `labels` are the true classes; `targets`, when given, the classes to reach.
pub fn apgd_loss(
    loss: ApgdLoss,
    logits: Tensor<2>,
    labels: Tensor<1, Int>,
    targets: Option<Tensor<1, Int>>,
) -> Tensor<1> {
    let [n, k] = logits.dims();
    match (loss, targets) {
        (ApgdLoss::CrossEntropy, None) => cross_entropy(logits, labels),
        (ApgdLoss::CrossEntropy, Some(t)) => cross_entropy(logits, t).neg(),
        (ApgdLoss::Dlr, targets) => {
            if k == 1 {
                // One logit: the margin towards the other class, signed by the label.
                return margin(logits, labels).neg();
            }
            let sorted = logits.clone().sort_descending(1);
            let col = |i: usize| -> Tensor<1> { sorted.clone().narrow(1, i, 1).reshape([n]) };
            match targets {
                None => {
                    let denom = if k >= 3 {
                        (col(0) - col(2)).add_scalar(1e-12)
                    } else {
                        col(0).ones_like()
                    };
                    (margin(logits, labels) / denom).neg()
                }
                Some(t) => {
                    let z_y: Tensor<1> = logits
                        .clone()
                        .gather(1, labels.reshape([n, 1]))
                        .reshape([n]);
                    let z_t: Tensor<1> = logits.gather(1, t.reshape([n, 1])).reshape([n]);
                    let denom = if k >= 4 {
                        (col(0) - (col(2) + col(3)).mul_scalar(0.5)).add_scalar(1e-12)
                    } else {
                        col(0).ones_like()
                    };
                    ((z_y - z_t) / denom).neg()
                }
            }
        }
    }
}

impl Apgd {
    /// The hyperparameters.
    pub fn config(&self) -> &ApgdConfig {
        &self.config
    }

    /// Targeted attack towards `targets` (success: classified as the target).
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]`; `labels`, `targets`: `[N]`.
    pub fn perturb_targeted<const D: usize, M: Differentiable<D> + ?Sized>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        targets: Tensor<1, Int>,
        rng: &mut AttackRng,
    ) -> AttackOutput<D> {
        self.run(model, input, labels, Some(targets), rng)
    }

    /// APGD-T: targeted runs towards each of the `num_targets` classes the model ranks
    /// highest after the top one on the clean input; a sample is broken when any run
    /// misclassifies it. The returned point is the first successful one (or the last run's).
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]`; `labels`: `[N]`.
    pub fn perturb_top_targets<const D: usize, M: Differentiable<D> + ?Sized>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        num_targets: usize,
        rng: &mut AttackRng,
    ) -> AttackOutput<D> {
        let clean = input.detach().without_autodiff();
        let labels = labels.without_autodiff();
        let logits = model.logits(clean.clone());
        let [n, k] = logits.dims();
        let ranked = logits.argsort_descending(1);
        let mut best = Best::new();
        let mut gradients = GradientCheck::default();
        for rank in 1..=num_targets.min(k.saturating_sub(1)) {
            let targets: Tensor<1, Int> = ranked.clone().narrow(1, rank, 1).reshape([n]);
            let out = self.run(model, clean.clone(), labels.clone(), Some(targets), rng);
            // Success here is "misclassified", whichever class the run reached.
            let broken = predictions(model.logits(out.adversarial.clone()))
                .equal(labels.clone())
                .bool_not();
            best.offer(out.adversarial, out.loss, broken);
            gradients.merge(out.gradients);
        }
        match best.into_inner() {
            Some((adversarial, loss, success)) => AttackOutput {
                adversarial,
                success,
                loss,
                gradients,
            },
            None => self.run(model, clean, labels, None, rng),
        }
    }

    fn run<const D: usize, M: Differentiable<D> + ?Sized>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        targets: Option<Tensor<1, Int>>,
        rng: &mut AttackRng,
    ) -> AttackOutput<D> {
        let c = &self.config;
        let threat = &c.threat;
        let clean = input.detach().without_autodiff();
        let labels = labels.without_autodiff();
        let targets = targets.map(Tensor::without_autodiff);
        let n = clean.dims()[0];
        let success_of = |logits: Tensor<2>| match &targets {
            Some(t) => predictions(logits).equal(t.clone()),
            None => predictions(logits).equal(labels.clone()).bool_not(),
        };
        // Loss, gradient and success at a point.
        let evaluate = |x: Tensor<D>| -> (Tensor<1>, Tensor<D>, Tensor<1, Bool>) {
            let at = loss_and_gradient(model, x, |logits| {
                apgd_loss(c.loss, logits, labels.clone(), targets.clone())
            });
            (at.loss, at.grad, success_of(at.logits))
        };
        let checkpoints = checkpoints(c.steps);
        let mut best = Best::new();
        let mut gradients = GradientCheck::default();
        let group_shape = per_sample_shape::<D>(n);
        for _ in 0..c.restarts {
            let mut x = if threat.eps() > 0.0 {
                threat.random_point(clean.clone(), rng, None)
            } else {
                clean.clone()
            };
            let (mut loss, grad, success) = evaluate(x.clone());
            let (check, mut grad) = check_gradient(grad, n);
            gradients.merge(check);
            best.offer(x.clone(), loss.clone(), success);
            let mut x_best = x.clone();
            let mut grad_best = grad.clone();
            let mut loss_best = loss.clone();
            let mut loss_best_last_check = loss_best.clone();
            let mut reduced_last_check = loss.clone().lower_elem(f32::NEG_INFINITY); // all false
            let mut increases = loss.zeros_like();
            let mut step: Tensor<D> =
                Tensor::<D>::ones(group_shape, &clean.device()).mul_scalar(2.0 * threat.eps());
            let mut x_prev = x.clone();
            let mut last_checkpoint = 0usize;
            for i in 0..c.steps {
                let a = if i == 0 { 1.0 } else { MOMENTUM };
                let z = threat.project(
                    x.clone() + threat.ascent(grad.clone(), 1.0) * step.clone(),
                    clean.clone(),
                    None,
                );
                let momentum = (x.clone() - x_prev.clone()).mul_scalar(1.0 - a);
                let x_next = threat.project(
                    x.clone() + (z - x.clone()).mul_scalar(a) + momentum,
                    clean.clone(),
                    None,
                );
                x_prev = x;
                x = x_next;
                let (new_loss, new_grad, success) = evaluate(x.clone());
                let new_grad = zero_non_finite(new_grad);
                best.offer(x.clone(), new_loss.clone(), success);
                increases = increases + new_loss.clone().greater(loss.clone()).float();
                let improved = new_loss.clone().greater(loss_best.clone());
                x_best = select(improved.clone(), x.clone(), x_best);
                grad_best = select(improved.clone(), new_grad.clone(), grad_best);
                loss_best = loss_best.mask_where(improved, new_loss.clone());
                loss = new_loss;
                grad = new_grad;
                if checkpoints.contains(&(i + 1)) {
                    let window = (i + 1 - last_checkpoint) as f32;
                    let oscillating = increases.clone().lower_equal_elem(window * RHO as f32);
                    let stalled = reduced_last_check.clone().bool_not().bool_and(
                        loss_best_last_check
                            .clone()
                            .greater_equal(loss_best.clone()),
                    );
                    let reduce = oscillating.bool_or(stalled);
                    let halved = step.clone().mul_scalar(0.5);
                    let reduce_groups: Tensor<D, Bool> = reduce.clone().reshape(group_shape);
                    step = step.mask_where(reduce_groups, halved);
                    x = select(reduce.clone(), x_best.clone(), x);
                    grad = select(reduce.clone(), grad_best.clone(), grad);
                    reduced_last_check = reduce;
                    loss_best_last_check = loss_best.clone();
                    increases = increases.zeros_like();
                    last_checkpoint = i + 1;
                }
            }
        }
        let (adversarial, loss, success) = best.into_inner().expect("restarts >= 1 is checked");
        AttackOutput {
            adversarial,
            success,
            loss,
            gradients,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::checkpoints;

    #[test]
    fn checkpoints_follow_the_paper() {
        // p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 for N = 100.
        assert_eq!(checkpoints(100), vec![22, 41, 57, 70, 80, 87, 93, 99]);
    }
}
