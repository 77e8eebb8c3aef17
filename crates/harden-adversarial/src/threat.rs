//! Threat models: the set of inputs an adversary may choose, and exact projection onto it.
//!
//! A threat model is a norm ball of radius eps around the clean input (L-inf or L2),
//! intersected with the valid input box (`[0, 1]` for images and scaled tables, per-feature
//! bounds where given, or no box for token embeddings). The ball is taken per sample, or per
//! token for `[N, T, E]` embeddings, where padding tokens (mask 0) are never perturbed.

use burn::tensor::{Bool, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::AttackRng;
use crate::attack::per_sample;
use crate::error::{ParamError, check_finite_non_negative};

/// The norm of the perturbation ball: `linf` (also `inf`) or `l2` (also `2`) in
/// configuration files and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    /// `max_i |delta_i| <= eps`.
    #[serde(alias = "inf", alias = "Linf")]
    #[cfg_attr(feature = "clap", value(alias = "inf", alias = "Linf"))]
    Linf,
    /// `sqrt(sum_i delta_i^2) <= eps`.
    #[serde(alias = "2", alias = "L2")]
    #[cfg_attr(feature = "clap", value(alias = "2", alias = "L2"))]
    L2,
}

impl Norm {
    /// The norm's name as configuration files and the CLI spell it.
    pub fn name(self) -> String {
        crate::names::name_of(self)
    }
}

impl std::str::FromStr for Norm {
    type Err = ParamError;

    /// Parses a name through the same table as configuration files (serde's names and
    /// aliases).
    fn from_str(s: &str) -> Result<Self, ParamError> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| ParamError {
            name: "norm",
            value: s.to_string(),
            expected: "linf or l2 (or their aliases inf and 2)",
        })
    }
}

/// The valid input box the adversarial input must stay in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bounds {
    /// No box (token embeddings).
    Unbounded,
    /// Every value in `[lo, hi]` (`[0, 1]` for images and scaled tables).
    Box {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// One `[lo[j], hi[j]]` per value of a sample (row-major over the sample shape).
    PerFeature {
        /// Lower bounds, one per value of a sample.
        lo: Vec<f32>,
        /// Upper bounds, one per value of a sample.
        hi: Vec<f32>,
    },
}

impl Default for Bounds {
    fn default() -> Self {
        Self::Box { lo: 0.0, hi: 1.0 }
    }
}

/// A checked threat model: norm, radius and box. Build it with [`ThreatModel::new`];
/// deserialising checks it the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedThreatModel")]
pub struct ThreatModel {
    norm: Norm,
    eps: f64,
    bounds: Bounds,
    per_token: bool,
}

/// The fields of a [`ThreatModel`] as read from a file, before checking.
#[derive(Deserialize)]
struct UncheckedThreatModel {
    norm: Norm,
    eps: f64,
    bounds: Bounds,
    per_token: bool,
}

impl TryFrom<UncheckedThreatModel> for ThreatModel {
    type Error = ParamError;

    fn try_from(t: UncheckedThreatModel) -> Result<Self, ParamError> {
        Self {
            norm: t.norm,
            eps: t.eps,
            bounds: t.bounds,
            per_token: t.per_token,
        }
        .checked()
    }
}

/// Binary search steps of the exact L2-and-box projection: the radius is met to within
/// `2^-30` of the distance to project, far below `f32` resolution of the inputs.
const BISECTION_STEPS: usize = 30;

impl ThreatModel {
    /// The ball of radius `eps` in `norm` around each sample, inside the `[0, 1]` box.
    ///
    /// # Errors
    ///
    /// [`ParamError`] when `eps` is negative or not finite.
    pub fn new(norm: Norm, eps: f64) -> Result<Self, ParamError> {
        check_finite_non_negative("eps", eps)?;
        Ok(Self {
            norm,
            eps,
            bounds: Bounds::default(),
            per_token: false,
        })
    }

    /// The same ball inside other bounds.
    ///
    /// # Errors
    ///
    /// [`ParamError`] when a bound is not finite, a lower bound exceeds its upper bound, or
    /// per-feature bounds differ in length.
    pub fn with_bounds(mut self, bounds: Bounds) -> Result<Self, ParamError> {
        let bad = |expected| ParamError {
            name: "bounds",
            value: format!("{bounds:?}"),
            expected,
        };
        match &bounds {
            Bounds::Unbounded => {}
            Bounds::Box { lo, hi } => {
                if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                    return Err(bad("finite lo <= hi"));
                }
            }
            Bounds::PerFeature { lo, hi } => {
                if lo.len() != hi.len() || lo.is_empty() {
                    return Err(bad("as many lower as upper bounds, at least one"));
                }
                if lo
                    .iter()
                    .zip(hi)
                    .any(|(l, h)| !(l.is_finite() && h.is_finite() && l <= h))
                {
                    return Err(bad("finite lo <= hi for every feature"));
                }
            }
        }
        self.bounds = bounds;
        Ok(self)
    }

    /// Checks a threat model that did not come from [`new`](Self::new) (e.g. deserialised).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new) and [`with_bounds`](Self::with_bounds).
    pub fn checked(self) -> Result<Self, ParamError> {
        let per_token = self.per_token;
        let checked = Self::new(self.norm, self.eps)?.with_bounds(self.bounds)?;
        Ok(if per_token {
            checked.per_token()
        } else {
            checked
        })
    }

    /// The same radius taken per token: on `[N, T, E]` embeddings each token's `[E]` vector
    /// gets its own ball.
    pub fn per_token(mut self) -> Self {
        self.per_token = true;
        self
    }

    /// A copy with another radius (for eps schedules).
    ///
    /// # Errors
    ///
    /// [`ParamError`] when `eps` is negative or not finite.
    pub fn with_eps(mut self, eps: f64) -> Result<Self, ParamError> {
        check_finite_non_negative("eps", eps)?;
        self.eps = eps;
        Ok(self)
    }

    /// The norm.
    pub fn norm(&self) -> Norm {
        self.norm
    }

    /// The radius.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The input box.
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }

    /// Whether balls are per token rather than per sample.
    pub fn is_per_token(&self) -> bool {
        self.per_token
    }

    /// L2 norm of each ball's part of `t`, broadcastable against `t`: shape `[N, 1, ..., 1]`
    /// per sample, `[N, T, 1]` per token.
    pub(crate) fn group_l2<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        let squared = t.clone().powf_scalar(2.0);
        if self.per_token {
            squared.sum_dim(D - 1).sqrt()
        } else {
            let flat: Tensor<2> = squared.flatten(1, D - 1);
            per_sample(flat.sum_dim(1).sqrt().squeeze_dim(1))
        }
    }

    /// Largest `|value|` of each ball's part of `t`, broadcastable against `t`.
    fn group_linf<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        let abs = t.clone().abs();
        if self.per_token {
            abs.max_dim(D - 1)
        } else {
            let flat: Tensor<2> = abs.flatten(1, D - 1);
            per_sample(flat.max_dim(1).squeeze_dim(1))
        }
    }

    /// Distance of `adversarial` from `clean` in the threat model's norm, per sample (the
    /// largest over tokens for per-token balls).
    ///
    /// # Shapes
    ///
    /// - `adversarial`, `clean`: `[N, ...]`; output: `[N]`.
    pub fn distance<const D: usize>(&self, adversarial: Tensor<D>, clean: Tensor<D>) -> Tensor<1> {
        let delta = adversarial - clean;
        let n = delta.dims()[0];
        let per_group = match self.norm {
            Norm::Linf => self.group_linf(delta),
            Norm::L2 => self.group_l2(delta),
        };
        let flat: Tensor<2> = per_group.flatten(1, D - 1);
        flat.max_dim(1).reshape([n])
    }

    /// Clamps `x` into the input box.
    pub(crate) fn clamp_box<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match &self.bounds {
            Bounds::Unbounded => x,
            Bounds::Box { lo, hi } => x.clamp(*lo, *hi),
            Bounds::PerFeature { lo, hi } => {
                let dims = x.dims();
                let device = x.device();
                let expand = |v: &[f32]| -> Tensor<D> {
                    let mut shape = dims;
                    shape[0] = 1;
                    Tensor::<D>::from_data(TensorData::new(v.to_vec(), shape), &device)
                        .repeat_dim(0, dims[0])
                };
                x.max_pair(expand(lo)).min_pair(expand(hi))
            }
        }
    }

    /// Projects `adversarial` onto the threat model around `clean`: the nearest point (in L2)
    /// inside both the ball and the box.
    ///
    /// For L-inf the set is a box and clamping is exact. For L2 the nearest point is
    /// `clamp(clean + t * (adversarial - clean))` for the largest `t` in `[0, 1]` that keeps
    /// it inside the ball (the KKT conditions of the problem give this form, with
    /// `t = 1 / (1 + lambda)`); `t` is found by bisection and the returned point always lies
    /// inside the ball. `mask` (1 for perturbable values, 0 for padding; broadcastable, e.g.
    /// `[N, T, 1]`) keeps masked values at their clean value. `clean` must lie in the box.
    ///
    /// # Shapes
    ///
    /// - `adversarial`, `clean`: `[N, ...]`, same shape; output: the same shape.
    pub fn project<const D: usize>(
        &self,
        adversarial: Tensor<D>,
        clean: Tensor<D>,
        mask: Option<Tensor<D>>,
    ) -> Tensor<D> {
        let mut delta = adversarial - clean.clone();
        if let Some(mask) = mask {
            delta = delta * mask;
        }
        let eps = self.eps as f32;
        match self.norm {
            Norm::Linf => self.clamp_box(clean + delta.clamp(-eps, eps)),
            Norm::L2 => {
                if self.bounds == Bounds::Unbounded {
                    let scale = self
                        .group_l2(delta.clone())
                        .clamp_min(1e-12)
                        .recip()
                        .mul_scalar(eps)
                        .clamp_max(1.0);
                    return clean + delta * scale;
                }
                let inside = |t: Option<Tensor<D>>| -> (Tensor<D>, Tensor<D, Bool>) {
                    let step = match t {
                        Some(t) => delta.clone() * t,
                        None => delta.clone(),
                    };
                    let y = self.clamp_box(clean.clone() + step);
                    let ok = self
                        .group_l2(y.clone() - clean.clone())
                        .lower_equal_elem(eps);
                    (y, ok)
                };
                let (y_full, ok_full) = inside(None);
                if ok_full.clone().all().into_scalar::<bool>() {
                    return y_full;
                }
                let mut lo = ok_full.clone().float();
                let mut hi = lo.ones_like();
                for _ in 0..BISECTION_STEPS {
                    let mid = (lo.clone() + hi.clone()).mul_scalar(0.5);
                    let (_, ok) = inside(Some(mid.clone()));
                    lo = lo.mask_where(ok.clone(), mid.clone());
                    hi = mid.mask_where(ok, hi);
                }
                inside(Some(lo)).0
            }
        }
    }

    /// A uniformly random point of the threat model around `clean`: uniform in the L-inf
    /// ball, or uniform in the L2 ball (Gaussian direction, radius `eps * u^(1/n)`), then
    /// projected into the box.
    ///
    /// # Shapes
    ///
    /// - `clean`: `[N, ...]`; output: the same shape.
    pub fn random_point<const D: usize>(
        &self,
        clean: Tensor<D>,
        rng: &mut AttackRng,
        mask: Option<Tensor<D>>,
    ) -> Tensor<D> {
        let delta = self.random_offset(clean.clone(), rng);
        self.project(clean.clone() + delta, clean, mask)
    }

    /// A uniformly random point of the ball around `clean`, not projected into the box: it may
    /// leave `[lo, hi]`. This is the random start of the reference fast adversarial training
    /// (Wong, Rice & Kolter 2020), whose gradient is taken there before the step is projected.
    /// `mask` keeps masked values at their clean value.
    ///
    /// # Shapes
    ///
    /// - `clean`: `[N, ...]`; output: the same shape.
    pub fn random_point_in_ball<const D: usize>(
        &self,
        clean: Tensor<D>,
        rng: &mut AttackRng,
        mask: Option<Tensor<D>>,
    ) -> Tensor<D> {
        let delta = self.random_offset(clean.clone(), rng);
        match mask {
            Some(mask) => clean + delta * mask,
            None => clean + delta,
        }
    }

    /// A uniformly random offset inside the ball (before any box), shaped like `clean`.
    fn random_offset<const D: usize>(&self, clean: Tensor<D>, rng: &mut AttackRng) -> Tensor<D> {
        let dims = clean.dims();
        let device = clean.device();
        let eps = self.eps as f32;
        match self.norm {
            Norm::Linf => rng.uniform(dims, -eps, eps, &device),
            Norm::L2 => {
                let direction = rng.normal(dims, &device);
                let unit = direction.clone() / self.group_l2(direction).clamp_min(1e-12);
                let group_dims = self.group_l2(clean.clone()).dims();
                let group_size =
                    (dims.iter().product::<usize>() / group_dims.iter().product::<usize>()) as f32;
                let u = rng.uniform(group_dims, 0.0, 1.0, &device);
                unit * u.powf_scalar(1.0 / group_size).mul_scalar(eps)
            }
        }
    }

    /// The steepest-ascent direction for a gradient, scaled to `step`: `step * sign(g)` for
    /// L-inf, `step * g / ||g||` for L2 (per ball).
    pub(crate) fn ascent<const D: usize>(&self, grad: Tensor<D>, step: f64) -> Tensor<D> {
        match self.norm {
            Norm::Linf => grad.sign().mul_scalar(step),
            Norm::L2 => {
                let norm = self.group_l2(grad.clone()).clamp_min(1e-12);
                (grad / norm).mul_scalar(step)
            }
        }
    }
}
