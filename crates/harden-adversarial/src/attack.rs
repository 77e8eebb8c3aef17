//! The attack interface: what every attack takes and returns, and the gradient step they share.
//!
//! An [`Attack`] maps a batch of clean inputs and labels to adversarial inputs inside its
//! threat model, given only a [`Differentiable`] model. PGD and FGSM ([`Pgd`](crate::Pgd)),
//! APGD and APGD-T ([`Apgd`](crate::Apgd), [`ApgdTargeted`](crate::ApgdTargeted)), the Square
//! attack ([`Square`](crate::Square)) and the transfer attack
//! ([`Transfer`](crate::suite::Transfer)) implement it, and so can a user's own attack: the
//! evaluation ensemble ([`run_ensemble`](crate::eval::run_ensemble),
//! [`evaluate_with`](crate::suite::evaluate_with)) runs any of them.

use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::{AttackRng, Differentiable};

/// An untargeted adversarial attack on a batch: bring the trait into scope to call
/// `attack.perturb(&model, inputs, labels, &mut rng)` on any attack.
///
/// Implementations must keep every returned input inside their threat model (ball and box)
/// and report per sample whether the model misclassifies it.
pub trait Attack<const D: usize> {
    /// A short name for reports (`pgd-20x1`, `apgd-ce`, `square`).
    fn name(&self) -> String;

    /// The attack's full configuration, as it should appear in reports (JSON `null` when it
    /// has none worth recording).
    fn describe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Whether the attack uses no gradients of the attacked model (score-based or transfer
    /// attacks); a black-box success where gradient attacks failed hints at gradient masking.
    fn is_black_box(&self) -> bool {
        false
    }

    /// Untargeted attack on `input` (labels `labels`) against `model`; success means the
    /// model misclassifies the returned input.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` clean inputs inside the threat model's box; `labels`: `[N]`.
    /// - output: adversarial inputs of `input`'s shape, `success` and `loss` of shape `[N]`.
    fn perturb(
        &self,
        model: &dyn Differentiable<D>,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        rng: &mut AttackRng,
    ) -> AttackOutput<D>;
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
    /// Per sample, the attack's own loss at the adversarial input (cross-entropy for PGD,
    /// the maximised APGD loss, the margin for Square).
    pub loss: Tensor<1>,
    /// Input-gradient diagnostics.
    pub gradients: GradientCheck,
}

/// A loss, its input gradient and the logits at one point, without autodiff graph.
pub(crate) struct AtPoint<const D: usize> {
    /// Per-sample loss `[N]`.
    pub loss: Tensor<1>,
    /// Gradient of the summed loss with respect to the input, like the input; may hold
    /// non-finite values (see [`zero_non_finite`]).
    pub grad: Tensor<D>,
    /// Logits `[N, K]`.
    pub logits: Tensor<2>,
}

/// The one place attacks differentiate a model: evaluates `loss(logits)` (per sample, `[N]`)
/// at `input` and its gradient with respect to `input`.
///
/// The gradient is of the sum of per-sample losses, so each sample's part is the gradient of
/// its own loss. `input` may live on a device with or without autodiff; what is returned
/// carries no graph. A model that ignores its input yields a zero gradient.
pub(crate) fn loss_and_gradient<const D: usize, M: Differentiable<D> + ?Sized>(
    model: &M,
    input: Tensor<D>,
    loss: impl FnOnce(Tensor<2>) -> Tensor<1>,
) -> AtPoint<D> {
    let x = input.detach().autodiff().require_grad();
    let logits = model.logits(x.clone());
    let per_sample = loss(logits.clone());
    let grads = per_sample.clone().sum().backward();
    let grad = x
        .grad(&grads)
        .unwrap_or_else(|| x.clone().detach().without_autodiff().zeros_like());
    AtPoint {
        loss: per_sample.detach().without_autodiff(),
        grad,
        logits: logits.detach().without_autodiff(),
    }
}

/// The cross-entropy loss and its gradient with respect to the input, per sample.
///
/// # Shapes
///
/// - `input`: `[N, ...]`; `labels`: `[N]`.
/// - output: (`[N]` per-sample cross-entropy, gradient of its sum with the shape of `input`).
///
/// The gradient is of the sum of per-sample losses, so each sample's part is the gradient of
/// its own loss. `input` may live on a device with or without autodiff; the returned tensors
/// carry no autodiff graph.
pub fn input_gradient<const D: usize, M: Differentiable<D> + ?Sized>(
    model: &M,
    input: Tensor<D>,
    labels: Tensor<1, Int>,
) -> (Tensor<1>, Tensor<D>) {
    let labels = labels.without_autodiff();
    let at = loss_and_gradient(model, input, |logits| {
        crate::loss::cross_entropy(logits, labels)
    });
    (at.loss, at.grad)
}

/// `grad` with its NaN and infinite values replaced by zero.
pub(crate) fn zero_non_finite<const D: usize>(grad: Tensor<D>) -> Tensor<D> {
    grad.clone().mask_fill(grad.is_finite().bool_not(), 0.0)
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

/// `[n, 1, ..., 1]`: the shape that broadcasts one value per sample against a `D`-dimensional
/// batch.
pub(crate) fn per_sample_shape<const D: usize>(n: usize) -> [usize; D] {
    let mut shape = [1usize; D];
    shape[0] = n;
    shape
}

/// A per-sample value `[N]` viewed as `[N, 1, ..., 1]`, to broadcast against a `D`-dimensional
/// batch.
pub(crate) fn per_sample<const D: usize, K: burn::tensor::kind::Basic>(
    values: Tensor<1, K>,
) -> Tensor<D, K> {
    let n = values.dims()[0];
    values.reshape(per_sample_shape::<D>(n))
}

/// Implements [`Attack`] for a built-in attack type: `describe` is its serde form (its checked
/// configuration), and `name`, `is_black_box` and the body of `perturb` are given, each with
/// the name `self` is bound to:
///
/// ```ignore
/// builtin_attack!(
///     Pgd,
///     name(pgd) = format!("pgd-{}x{}", pgd.config.steps, pgd.config.restarts),
///     black_box = false,
///     perturb(pgd, model, input, labels, rng) = pgd.run(model, input, labels, rng),
/// );
/// ```
macro_rules! builtin_attack {
    (
        $ty:ty,
        name($named:ident) = $name:expr,
        black_box = $black_box:expr,
        perturb($this:ident, $model:ident, $input:ident, $labels:ident, $rng:ident) = $body:expr $(,)?
    ) => {
        impl<const D: usize> $crate::Attack<D> for $ty {
            fn name(&self) -> String {
                let $named = self;
                $name
            }

            fn describe(&self) -> serde_json::Value {
                serde_json::to_value(self).expect("attacks serialise")
            }

            fn is_black_box(&self) -> bool {
                $black_box
            }

            fn perturb(
                &self,
                $model: &dyn $crate::Differentiable<D>,
                $input: burn::tensor::Tensor<D>,
                $labels: burn::tensor::Tensor<1, burn::tensor::Int>,
                $rng: &mut $crate::AttackRng,
            ) -> $crate::AttackOutput<D> {
                let $this = self;
                $body
            }
        }
    };
}

pub(crate) use builtin_attack;
