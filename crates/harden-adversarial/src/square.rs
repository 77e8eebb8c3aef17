//! Square attack (Andriushchenko et al. 2020): a score-based, gradient-free attack.
//!
//! It never looks at gradients, only at the model's logits, so it breaks models whose
//! gradients are masked (rounded inputs, saturated logits) where gradient attacks stall.
//! L-inf: start from vertical stripes of `+-eps`; each query proposes to set one
//! random square window of every channel to `+-eps` (one sign per channel) and keeps the
//! proposal for the samples whose margin `z_y - max_{i != y} z_i` it lowers. The window's
//! share of the image starts at `p_init` and halves on a fixed schedule of the query budget.
//!
//! L2: start from a grid of blocks, each a pair of opposite-signed "pseudo-Gaussian" bumps,
//! scaled to radius eps; each query moves the perturbation's mass out of one random window
//! into a fresh bump in another window (keeping the total norm at eps), as in the reference
//! implementation.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::attack::{AttackOutput, GradientCheck, builtin_attack};
use crate::best::select;
use crate::error::{ParamError, QUERIES, check_count};
use crate::loss::{margin, predictions};
use crate::{AttackRng, Differentiable, Norm, ThreatModel};

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
    /// [`ParamError`] for a zero budget, `p_init` outside `(0, 1]`, or an invalid threat model.
    pub fn check(mut self) -> Result<Square, ParamError> {
        self.threat = self.threat.checked()?;
        check_count("queries", self.queries, QUERIES)?;
        if !(self.p_init > 0.0 && self.p_init <= 1.0) {
            return Err(ParamError {
                name: "p_init",
                value: self.p_init.to_string(),
                expected: "a number in (0, 1]",
            });
        }
        Ok(Square { config: self })
    }
}

crate::macros::checked! {
    /// A checked, runnable Square attack; see the [module docs](self).
    pub struct Square(SquareConfig);
}

builtin_attack!(
    Square,
    name(_square) = "square".to_string(),
    black_box = true,
    perturb(square, model, input, labels, rng) = square.search(model, input, labels, rng),
);

impl Square {
    /// The hyperparameters.
    pub fn config(&self) -> &SquareConfig {
        &self.config
    }

    /// The attack ([`Attack::perturb`](crate::Attack::perturb)), untargeted. Inputs are viewed
    /// as `[N, C, H, W]` images (`[N, F]` rows as `[N, 1, 1, F]`, where a "square" is a run of
    /// features). Samples are no longer queried once misclassified.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` clean inputs in the box; `labels`: `[N]`.
    ///
    /// The returned `loss` is the margin at the returned point (negative when broken).
    fn search<const D: usize>(
        &self,
        model: &dyn Differentiable<D>,
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

        let l2 = threat.norm() == Norm::L2;
        let init = if l2 {
            let grid = l2_init(n, [ch, h, w], rng, &device);
            grid.clone() / threat.group_l2(grid).clamp_min(1e-12)
        } else {
            // Vertical stripes: one sign per sample, channel and column.
            signs_4d([n, ch, 1, w], rng, &device).repeat_dim(2, h)
        };
        let mut x_best = threat.project(
            to_input(clean4.clone() + init.mul_scalar(eps)),
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
                let proposal = if l2 {
                    let delta: Tensor<4> = (x_best.clone() - clean.clone()).reshape([n, ch, h, w]);
                    to_input(clean4.clone() + l2_proposal(delta, [ch, h, w], p, eps, rng, &device))
                } else {
                    let (sh, sw) = window_size(p, h, w, 1);
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
                    x_best.clone() + to_input(window)
                };
                let proposal = threat.project(proposal, clean.clone(), None);
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

/// Window height and width for a share `p` of an `h x w` input: a square of side
/// `round(sqrt(p h w))` (at least `min_side`, odd for L2 as in the reference, and smaller than
/// the input), or for one-row inputs a run of `round(p w)` values.
fn window_size(p: f64, h: usize, w: usize, min_side: usize) -> (usize, usize) {
    if h == 1 {
        return (
            1,
            ((p * w as f64).round() as usize).clamp(min_side.min(w), w),
        );
    }
    let largest = h.min(w).saturating_sub(1).max(1);
    let mut s = ((p * (h * w) as f64).sqrt().round() as usize).max(min_side);
    if min_side > 1 && s.is_multiple_of(2) {
        s += 1;
    }
    (s.min(largest), s.min(largest))
}

/// `eta(x, y)` of the reference: nested rectangles around the centre, each weighted `1/k^2`,
/// normalised to unit L2 norm. Row-major `[x, y]`.
fn eta(x: usize, y: usize) -> Vec<f32> {
    let mut delta = vec![0.0f32; x * y];
    if x == 0 || y == 0 {
        return delta;
    }
    let (xc, yc) = (x / 2 + 1, y / 2 + 1);
    let (mut c0, mut c1) = (xc as i64 - 1, yc as i64 - 1);
    for k in 0..xc.max(yc) {
        let side = 2 * k as i64 + 1;
        let weight = 1.0 / ((k + 1) * (k + 1)) as f32;
        for r in c0.max(0)..(c0 + side).min(x as i64) {
            for col in c1.max(0)..(c1 + side).min(y as i64) {
                delta[r as usize * y + col as usize] += weight;
            }
        }
        c0 -= 1;
        c1 -= 1;
    }
    normalise(&mut delta);
    delta
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|a| *a /= norm);
    }
}

/// The reference's `meta_pseudo_gaussian_pert`: a positive bump over the first half of the
/// window and a negative one over the second (split along rows, or along the run for
/// one-row windows), unit L2 norm, transposed at random when square. Row-major `[sh, sw]`.
fn bump(sh: usize, sw: usize, rng: &mut AttackRng) -> Vec<f32> {
    let mut delta = vec![0.0f32; sh * sw];
    if sh >= 2 {
        let top = eta(sh / 2, sw);
        let bottom = eta(sh - sh / 2, sw);
        delta[..top.len()].copy_from_slice(&top);
        for (d, b) in delta[top.len()..].iter_mut().zip(bottom) {
            *d = -b;
        }
    } else {
        let (left, right) = (eta(1, sw / 2), eta(1, sw - sw / 2));
        delta[..left.len()].copy_from_slice(&left);
        for (d, r) in delta[left.len()..].iter_mut().zip(right) {
            *d = -r;
        }
    }
    normalise(&mut delta);
    if sh == sw && rng.coin() {
        let mut t = vec![0.0f32; sh * sw];
        for r in 0..sh {
            for c in 0..sw {
                t[c * sh + r] = delta[r * sw + c];
            }
        }
        delta = t;
    }
    delta
}

/// Random signs, +1 or -1 with equal probability.
fn signs_4d(shape: [usize; 4], rng: &mut AttackRng, device: &burn::tensor::Device) -> Tensor<4> {
    rng.uniform(shape, 0.0, 1.0, device)
        .greater_elem(0.5)
        .float()
        .mul_scalar(2.0)
        .sub_scalar(1.0)
}

/// Per-sample, per-channel random signs `[n, ch, 1, 1]`.
fn signs(n: usize, ch: usize, rng: &mut AttackRng, device: &burn::tensor::Device) -> Tensor<4> {
    signs_4d([n, ch, 1, 1], rng, device)
}

/// A `[1, 1, h, w]` canvas holding `values` (`[sh, sw]`) at row `vh`, column `vw`.
fn canvas(
    values: &[f32],
    (sh, sw): (usize, usize),
    (vh, vw): (usize, usize),
    [h, w]: [usize; 2],
    device: &burn::tensor::Device,
) -> Tensor<4> {
    let mut out = vec![0.0f32; h * w];
    for r in 0..sh {
        for c in 0..sw {
            out[(vh + r) * w + vw + c] = values[r * sw + c];
        }
    }
    Tensor::from_data(TensorData::new(out, [1, 1, h, w]), device)
}

/// The L2 starting point: a grid of blocks of side `h / 5` (or runs of `w / 5`), each a
/// [`bump`] with a random sign per sample and channel. Unnormalised, `[n, ch, h, w]`.
fn l2_init(
    n: usize,
    [ch, h, w]: [usize; 3],
    rng: &mut AttackRng,
    device: &burn::tensor::Device,
) -> Tensor<4> {
    let (sh, sw) = if h == 1 {
        (1, (w / 5).max(1))
    } else {
        ((h / 5).max(1), (h / 5).max(1))
    };
    let (start_h, start_w) = ((h - (h / sh) * sh) / 2, (w - (w / sw) * sw) / 2);
    let mut delta = Tensor::<4>::zeros([n, ch, h, w], device);
    for bh in 0..h / sh {
        for bw in 0..w / sw {
            let pattern = bump(sh, sw, rng);
            let placed = canvas(
                &pattern,
                (sh, sw),
                (start_h + bh * sh, start_w + bw * sw),
                [h, w],
                device,
            );
            delta = delta + placed * signs(n, ch, rng, device);
        }
    }
    delta
}

/// One L2 proposal from the current perturbation `delta` (`[n, ch, h, w]`): the mass of
/// window 2 and window 1 is replaced by a fresh bump in window 1, and the result is scaled
/// to L2 norm eps.
fn l2_proposal(
    delta: Tensor<4>,
    [ch, h, w]: [usize; 3],
    p: f64,
    eps: f32,
    rng: &mut AttackRng,
    device: &burn::tensor::Device,
) -> Tensor<4> {
    let n = delta.dims()[0];
    let (sh, sw) = window_size(p, h, w, 3);
    let at1 = (rng.index(h - sh + 1), rng.index(w - sw + 1));
    let at2 = (rng.index(h - sh + 1), rng.index(w - sw + 1));
    let ones = vec![1.0f32; sh * sw];
    let m1 = canvas(&ones, (sh, sw), at1, [h, w], device);
    let m2 = canvas(&ones, (sh, sw), at2, [h, w], device);
    let both = m1.clone().max_pair(m2.clone());
    let sample_norm = |t: Tensor<4>| -> Tensor<4> {
        let flat: Tensor<2> = t.powf_scalar(2.0).flatten(1, 3);
        flat.sum_dim(1).sqrt().reshape([n, 1, 1, 1])
    };
    let window_norm =
        |t: Tensor<4>| -> Tensor<4> { t.powf_scalar(2.0).sum_dim(3).sum_dim(2).sqrt() };
    let norm_image = sample_norm(delta.clone());
    let norm_windows = sample_norm(delta.clone() * both.clone());
    let old = delta.clone() * m1.clone();
    let old = old.clone() / window_norm(old).add_scalar(1e-12);
    let fresh =
        canvas(&bump(sh, sw, rng), (sh, sw), at1, [h, w], device) * signs(n, ch, rng, device) + old;
    let budget = (norm_image
        .powf_scalar(2.0)
        .neg()
        .add_scalar(eps * eps)
        .clamp_min(0.0)
        .div_scalar(ch as f32)
        + norm_windows.powf_scalar(2.0))
    .sqrt();
    let fresh = fresh.clone() / window_norm(fresh).add_scalar(1e-12) * budget;
    let kept = delta * both.neg().add_scalar(1.0);
    let proposal = kept + fresh * m1;
    proposal.clone() / sample_norm(proposal).clamp_min(1e-12) * eps
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
