//! Clean and robust accuracy of a batch under several attacks.
//!
//! Robust accuracy is the per-sample worst case: a sample counts as robust only when it is
//! classified correctly and no attack (and no restart of any attack) succeeded on it.

use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::loss::correct;
use crate::{AttackRng, Differentiable, GradientCheck, Pgd};

/// Per-sample outcome of evaluating a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchEval {
    /// Whether each sample is classified correctly without attack.
    pub clean_correct: Vec<bool>,
    /// Whether each sample is classified correctly and survived every attack.
    pub robust_correct: Vec<bool>,
    /// For each attack, how many clean-correct samples it broke.
    pub broken_by: Vec<usize>,
    /// For each attack, its input-gradient diagnostics.
    pub gradients: Vec<GradientCheck>,
}

impl BatchEval {
    /// Share of samples classified correctly.
    pub fn clean_accuracy(&self) -> f64 {
        share(&self.clean_correct)
    }

    /// Share of samples that are robust to every attack.
    pub fn robust_accuracy(&self) -> f64 {
        share(&self.robust_correct)
    }

    /// Appends another batch's outcome (attacks in the same order).
    pub fn extend(&mut self, other: BatchEval) {
        self.clean_correct.extend(other.clean_correct);
        self.robust_correct.extend(other.robust_correct);
        if self.broken_by.is_empty() {
            self.broken_by = other.broken_by;
            self.gradients = other.gradients;
        } else {
            for (a, b) in self.broken_by.iter_mut().zip(other.broken_by) {
                *a += b;
            }
            for (a, b) in self.gradients.iter_mut().zip(other.gradients) {
                a.add(b);
            }
        }
    }
}

/// Share of `true` values (0 for an empty slice).
pub(crate) fn share(v: &[bool]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().filter(|&&b| b).count() as f64 / v.len() as f64
    }
}

/// Host copy of a bool tensor. Read through integers: backends store booleans differently
/// (bytes, 32-bit words), and the integer conversion is defined for all of them.
pub fn to_bools(t: Tensor<1, Bool>) -> Vec<bool> {
    t.int()
        .into_data()
        .convert::<i64>()
        .iter::<i64>()
        .map(|v| v != 0)
        .collect()
}

/// Evaluates a batch: clean predictions, then every attack; robust is the worst case.
///
/// # Shapes
///
/// - `input`: `[N, ...]`; `labels`: `[N]`.
pub fn evaluate_batch<const D: usize, M: Differentiable<D>>(
    model: &M,
    input: Tensor<D>,
    labels: Tensor<1, Int>,
    attacks: &[Pgd],
    rng: &mut AttackRng,
) -> BatchEval {
    let clean = input.detach().without_autodiff();
    let labels = labels.without_autodiff();
    let clean_correct = correct(model.logits(clean.clone()), labels.clone());
    let mut robust = clean_correct.clone();
    let mut broken_by = Vec::with_capacity(attacks.len());
    let mut gradients = Vec::with_capacity(attacks.len());
    for attack in attacks {
        let out = attack.perturb(model, clean.clone(), labels.clone(), rng);
        let broken = out.success.bool_and(clean_correct.clone());
        broken_by.push(broken.clone().int().sum().into_scalar::<i64>() as usize);
        gradients.push(out.gradients);
        robust = robust.bool_and(broken.bool_not());
    }
    BatchEval {
        clean_correct: to_bools(clean_correct),
        robust_correct: to_bools(robust),
        broken_by,
        gradients,
    }
}

/// Share of samples `model` classifies correctly.
///
/// # Shapes
///
/// - `input`: `[N, ...]`; `labels`: `[N]`.
pub fn accuracy<const D: usize, M: Differentiable<D>>(
    model: &M,
    input: Tensor<D>,
    labels: Tensor<1, Int>,
) -> f64 {
    share(&to_bools(correct(model.logits(input), labels)))
}
