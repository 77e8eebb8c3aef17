//! Square attack (Andriushchenko et al. 2020): a score-based, gradient-free attack.
//!
//! It never looks at gradients, only at the model's logits, so it breaks models whose
//! gradients are masked (rounded inputs, saturated logits) where gradient attacks stall.
//! L-inf version: start from vertical stripes of `+-eps`; each query proposes to set one
//! random square window of every channel to `+-eps` (one sign per channel) and keeps the
//! proposal for the samples whose margin `z_y - max_{i != y} z_i` it lowers. The window's
//! share of the image starts at `p_init` and halves on a fixed schedule of the query budget.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::best::select;
use crate::error::{ParamError, check_at_least_one};
use crate::loss::predictions;
use crate::{AttackOutput, AttackRng, Differentiable, GradientCheck, Norm, ThreatModel};

/// Hyperparameters of the Square attack, before checking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SquareConfig {
    /// The threat model (L-inf).
    pub threat: ThreatModel,
    /// Query budget per sample (>= 1; the reference uses 5000).
    pub queries: usize,
    /// Initial share of the input a square covers (in `(0, 1]`; the reference uses 0.8).
    pub p_init: f64,
}

impl SquareConfig {
    /// Square with a budget of `queries` and `p_init = 0.8`.
    pub fn new(threat: ThreatModel, queries: usize) -> Self {
        Self {
            threat,
            queries,
            p_init: 0.8,
        }
    }

    /// Checks the hyperparameters.
    ///
    /// # Errors
    ///
    /// [`ParamError`] for a zero budget, `p_init` outside `(0, 1]`, an invalid threat model,
    /// or an L2 threat model (not implemented: only the L-inf Square attack is).
    pub fn check(mut self) -> Result<Square, ParamError> {
        self.threat = self.threat.checked()?;
        check_at_least_one("queries", self.queries)?;
        if !(self.p_init > 0.0 && self.p_init <= 1.0) {
            return Err(ParamError {
                name: "p_init",
                value: self.p_init.to_string(),
                expected: "a number in (0, 1]",
            });
        }
        if self.threat.norm() != Norm::Linf {
            return Err(ParamError {
                name: "norm",
                value: "l2".to_string(),
                expected: "linf (the Square attack is implemented for L-inf only)",
            });
        }
        Ok(Square { config: self })
    }
}

/// A checked, runnable Square attack; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Square {
    config: SquareConfig,
}

/// The window share at query `i` of `budget`: `p_init` halved at 10, 50, 200, 500, 1000,
/// 2000, 4000, 6000 and 8000 ten-thousandths of the budget.
pub fn window_share(p_init: f64, i: usize, budget: usize) -> f64 {
    let at = i * 10_000 / budget.max(1);
    let halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000]
        .iter()
        .filter(|&&t| at > t)
        .count();
    p_init / f64::from(1u32 << halvings)
}

/// Margin of the true class over the best other class, `[N]`: positive when correct.
fn margin(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [n, k] = logits.dims();
    if k == 1 {
        let z: Tensor<1> = logits.reshape([n]);
        return z * labels.float().mul_scalar(2.0).sub_scalar(1.0);
    }
    let z_y: Tensor<1> = logits
        .clone()
        .gather(1, labels.clone().reshape([n, 1]))
        .reshape([n]);
    let others = logits.mask_fill(labels.one_hot::<2>(k).bool(), f32::NEG_INFINITY);
    z_y - others.max_dim(1).reshape([n])
}

impl Square {
    /// The hyperparameters.
    pub fn config(&self) -> &SquareConfig {
        &self.config
    }

    /// Untargeted attack. Inputs are viewed as `[N, C, H, W]` images (`[N, F]` rows as
    /// `[N, 1, 1, F]`, where a "square" is a run of features). Samples are no longer queried
    /// once misclassified.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` clean inputs in the box; `labels`: `[N]`.
    ///
    /// The returned `loss` is the margin at the returned point (negative when broken).
    pub fn perturb<const D: usize, M: Differentiable<D>>(
        &self,
        model: &M,
        input: Tensor<D>,
        labels: Tensor<1, Int>,
        rng: &mut AttackRng,
    ) -> AttackOutput<D> {
        let c = &self.config;
        let threat = &c.threat;
        let eps = threat.eps() as f32;
        let clean = input.detach().without_autodiff();
        let labels = labels.without_autodiff();
        let dims = clean.dims();
        let n = dims[0];
        let [ch, h, w] = if D == 4 {
            [dims[1], dims[2], dims[3]]
        } else {
            [1, 1, dims[1..].iter().product()]
        };
        let device = clean.device();
        let to_input = |t: Tensor<4>| -> Tensor<D> { t.reshape(dims) };
        let clean4: Tensor<4> = clean.clone().reshape([n, ch, h, w]);
        let score = |x: Tensor<D>| margin(model.logits(x), labels.clone());

        // Vertical stripes: one sign per sample, channel and column.
        let stripes = rng
            .uniform([n, ch, 1, w], 0.0, 1.0, &device)
            .greater_elem(0.5)
            .float()
            .mul_scalar(2.0)
            .sub_scalar(1.0);
        let mut x_best = threat.project(
            to_input(clean4.clone() + stripes.repeat_dim(2, h).mul_scalar(eps)),
            clean.clone(),
            None,
        );
        let mut best_margin = score(x_best.clone());
        if eps > 0.0 {
            for i in 0..c.queries {
                let active = best_margin.clone().greater_elem(0.0);
                if !active.clone().any().into_scalar::<bool>() {
                    break;
                }
                let p = window_share(c.p_init, i, c.queries);
                let (sh, sw) = if h == 1 {
                    (1, ((p * w as f64).round() as usize).clamp(1, w))
                } else {
                    let s = ((p * (h * w) as f64).sqrt().round() as usize)
                        .clamp(1, h.min(w).saturating_sub(1).max(1));
                    (s, s)
                };
                let vh = rng.index(h - sh + 1);
                let vw = rng.index(w - sw + 1);
                let signs: Vec<f32> = (0..ch)
                    .map(|_| if rng.coin() { 2.0 * eps } else { -2.0 * eps })
                    .collect();
                let mut window = vec![0.0f32; ch * h * w];
                for (k, sign) in signs.iter().enumerate() {
                    for r in vh..vh + sh {
                        for col in vw..vw + sw {
                            window[(k * h + r) * w + col] = *sign;
                        }
                    }
                }
                let window =
                    Tensor::<4>::from_data(TensorData::new(window, [1, ch, h, w]), &device)
                        .repeat_dim(0, n);
                let proposal =
                    threat.project(x_best.clone() + to_input(window), clean.clone(), None);
                let proposal_margin = score(proposal.clone());
                let accept: Tensor<1, Bool> = proposal_margin
                    .clone()
                    .lower(best_margin.clone())
                    .bool_and(active);
                x_best = select(accept.clone(), proposal, x_best);
                best_margin = best_margin.mask_where(accept, proposal_margin);
            }
        }
        let success = predictions(model.logits(x_best.clone()))
            .equal(labels)
            .bool_not();
        AttackOutput {
            adversarial: x_best,
            success,
            loss: best_margin,
            gradients: GradientCheck::default(),
        }
    }
}

impl AttackRng {
    /// A uniform index in `0..n` (`n >= 1`).
    pub(crate) fn index(&mut self, n: usize) -> usize {
        self.inner().random_range(0..n.max(1))
    }

    /// A fair coin.
    pub(crate) fn coin(&mut self) -> bool {
        self.inner().random_bool(0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::window_share;

    #[test]
    fn window_share_halves_on_schedule() {
        assert_eq!(window_share(0.8, 0, 10_000), 0.8);
        assert_eq!(window_share(0.8, 11, 10_000), 0.4);
        assert_eq!(window_share(0.8, 9_999, 10_000), 0.8 / 512.0);
        assert_eq!(window_share(0.8, 100, 1_000), 0.8 / 16.0);
    }
}
