//! The ensemble runner: clean and worst-case robust accuracy under several attacks.
//!
//! Robust accuracy is the per-sample worst case: a sample counts as robust only when it is
//! classified correctly and no attack (and no restart of any attack) succeeded on it. Each
//! attack runs only on the samples every earlier attack failed to break, as in the reference
//! protocol of Croce & Hein 2020, so later (slower) attacks spend their budget where it can
//! still change the result.

use std::time::Instant;

use burn::tensor::{Bool, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::loss::correct;
use crate::{Attack, AttackRng, Differentiable, GradientCheck};

/// What one attack of an ensemble did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackResult {
    /// The attack's name ([`Attack::name`]).
    pub name: String,
    /// Its full configuration ([`Attack::describe`]).
    pub attack: serde_json::Value,
    /// Whether it is a black-box attack ([`Attack::is_black_box`]).
    #[serde(default)]
    pub black_box: bool,
    /// Samples it was run on (those still robust).
    pub attempted: usize,
    /// Samples it broke.
    pub broken: usize,
    /// Wall-clock seconds it took.
    pub seconds: f64,
    /// Its input-gradient diagnostics (all zero for black-box attacks).
    pub gradients: GradientCheck,
}

/// Per-sample outcome of an ensemble, in the order of the batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    /// Whether each sample is classified correctly without attack.
    pub clean_correct: Vec<bool>,
    /// Whether each sample is classified correctly and survived every attack.
    pub robust_correct: Vec<bool>,
    /// Per attack, in the order run.
    pub attacks: Vec<AttackResult>,
}

impl Ensemble {
    /// Share of samples classified correctly.
    pub fn clean_accuracy(&self) -> f64 {
        share(&self.clean_correct)
    }

    /// Share of samples that are robust to every attack.
    pub fn robust_accuracy(&self) -> f64 {
        share(&self.robust_correct)
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

/// Runs `attacks` as an ensemble on `batches`; see the [module docs](self).
///
/// `batches` are `(inputs [N, ...], labels [N])` pairs on the model's device. Each attack runs
/// on the samples of each batch that are still robust; all draw from `rng` in turn.
///
/// # Panics
///
/// Panics when a batch's inputs and labels differ in length.
pub fn run_ensemble<const D: usize>(
    model: &dyn Differentiable<D>,
    batches: &[(Tensor<D>, Tensor<1, Int>)],
    attacks: &[&dyn Attack<D>],
    rng: &mut AttackRng,
) -> Ensemble {
    let mut clean_all = Vec::new();
    let mut robust_all = Vec::new();
    let mut results: Vec<AttackResult> = attacks
        .iter()
        .map(|a| AttackResult {
            name: a.name(),
            attack: a.describe(),
            black_box: a.is_black_box(),
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
            let out = attack.perturb(
                model,
                x.clone().select(0, idx.clone()),
                y.clone().select(0, idx),
                rng,
            );
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
    Ensemble {
        clean_correct: clean_all,
        robust_correct: robust_all,
        attacks: results,
    }
}

/// Share of samples `model` classifies correctly.
///
/// # Shapes
///
/// - `input`: `[N, ...]`; `labels`: `[N]`.
pub fn accuracy<const D: usize, M: Differentiable<D> + ?Sized>(
    model: &M,
    input: Tensor<D>,
    labels: Tensor<1, Int>,
) -> f64 {
    share(&to_bools(correct(model.logits(input), labels)))
}
