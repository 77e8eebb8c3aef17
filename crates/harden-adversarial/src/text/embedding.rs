//! Attacks and training objectives in the token-embedding space of a text classifier.
//!
//! The perturbation is always a leaf tensor added to the embeddings (burn panics on
//! `require_grad` of a non-leaf), and padding positions are never perturbed.

use burn::tensor::{Bool, Int, Tensor};

use crate::AttackRng;
use crate::error::{ParamError, STEPS, check_count, check_finite_non_negative};
use crate::loss::{correct, cross_entropy};
use crate::text::EmbeddingModel;

/// `1` at real tokens, `0` at padding, shaped `[N, L, 1]` to scale embeddings.
pub fn keep_mask(pad: Tensor<2, Bool>) -> Tensor<3> {
    pad.bool_not().float().unsqueeze_dim(2)
}

/// Projects each token's perturbation onto the L2 ball of radius `eps`.
///
/// # Shapes
///
/// - `delta`: `[N, L, E]`; output: the same.
pub fn project_per_token(delta: Tensor<3>, eps: f64) -> Tensor<3> {
    let norms = delta.clone().powi_scalar(2).sum_dim(2).sqrt(); // [N, L, 1]
    let scale = norms
        .add_scalar(1e-12)
        .recip()
        .mul_scalar(eps)
        .clamp_max(1.0);
    delta * scale
}

/// `g` divided by its L2 norm per token (0 where the gradient is 0).
fn per_token_unit(g: Tensor<3>) -> Tensor<3> {
    let norms = g.clone().powi_scalar(2).sum_dim(2).sqrt();
    g / norms.add_scalar(1e-12)
}

/// `g` divided by its L2 norm over each whole sample `[L, E]`.
fn per_sample_unit(g: Tensor<3>) -> Tensor<3> {
    let norms = g.clone().powi_scalar(2).sum_dim(2).sum_dim(1).sqrt();
    g / norms.add_scalar(1e-12)
}

/// A batch the embedding attacks hold fixed while they search a perturbation: detached
/// embeddings `[N, L, E]`, padding `[N, L]`, labels `[N]` and the keep mask `[N, L, 1]`
/// (1 at tokens, 0 at padding), all without autodiff.
struct Fixed {
    embeddings: Tensor<3>,
    pad: Tensor<2, Bool>,
    labels: Tensor<1, Int>,
    keep: Tensor<3>,
}

impl Fixed {
    fn new(embeddings: Tensor<3>, pad: Tensor<2, Bool>, labels: Tensor<1, Int>) -> Self {
        let pad = pad.without_autodiff();
        Self {
            embeddings: embeddings.detach().without_autodiff(),
            keep: keep_mask(pad.clone()),
            pad,
            labels: labels.without_autodiff(),
        }
    }

    /// The gradient of the summed cross-entropy with respect to `delta` at `embeddings + delta`.
    fn gradient<M: EmbeddingModel + ?Sized>(
        &self,
        model: &M,
        delta: Tensor<3>,
    ) -> (Tensor<3>, Tensor<1, Bool>) {
        let delta = delta.detach().autodiff().require_grad();
        let embedded = self.embeddings.clone().autodiff() + delta.clone();
        let logits = model.logits_embedded(embedded, self.pad.clone());
        let still_correct = correct(logits.clone().detach(), self.labels.clone());
        let loss = cross_entropy(logits, self.labels.clone()).sum();
        let grad = delta
            .grad(&loss.backward())
            .map(crate::attack::zero_non_finite)
            .unwrap_or_else(|| delta.detach().without_autodiff().zeros_like());
        (grad.without_autodiff(), still_correct.without_autodiff())
    }
}

/// PGD on token embeddings inside a per-token L2 ball of radius `eps`, padding masked.
///
/// A white-box upper bound of the embedding threat model: no typed text corresponds to these
/// embeddings, so robustness to it is not a claim about edits a user can make.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EmbeddingPgd {
    eps: f64,
    steps: usize,
    step_size: f64,
    random_start: bool,
}

impl EmbeddingPgd {
    /// `steps` steps of `step_size` (each step moves every token by `step_size` along its own
    /// normalised gradient), projected onto per-token balls of radius `eps`; with
    /// `random_start`, from a uniform point of each token's ball.
    ///
    /// # Errors
    ///
    /// [`ParamError`] naming `eps` or `step_size` when negative or not finite, `steps` when 0.
    pub fn new(
        eps: f64,
        steps: usize,
        step_size: f64,
        random_start: bool,
    ) -> Result<Self, ParamError> {
        check_finite_non_negative("eps", eps)?;
        check_finite_non_negative("step_size", step_size)?;
        check_count("steps", steps, STEPS)?;
        Ok(Self {
            eps,
            steps,
            step_size,
            random_start,
        })
    }

    /// The ball radius per token.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Number of steps.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Runs the attack on the detached `embeddings`; returns the final perturbation and, per
    /// sample, whether every iterate (the start included) was still classified as `labels`
    /// (the honest robust-accuracy count: a sample fooled at any step counts as broken).
    ///
    /// # Shapes
    ///
    /// - `embeddings`: `[N, L, E]`; `pad`: `[N, L]`; `labels`: `[N]`.
    /// - outputs: `[N, L, E]` (zero at padding, each token's norm at most `eps`) and `[N]`.
    pub fn perturb<M: EmbeddingModel + ?Sized>(
        &self,
        model: &M,
        embeddings: Tensor<3>,
        pad: Tensor<2, Bool>,
        labels: Tensor<1, Int>,
        rng: &mut AttackRng,
    ) -> (Tensor<3>, Tensor<1, Bool>) {
        let fixed = Fixed::new(embeddings, pad, labels);
        let (device, keep) = (fixed.embeddings.device(), fixed.keep.clone());
        let mut delta = if self.random_start && self.eps > 0.0 {
            let dims = fixed.embeddings.dims();
            let direction = per_token_unit(rng.normal(dims, &device));
            let radius = rng.uniform([dims[0], dims[1], 1], 0.0, self.eps as f32, &device);
            direction * radius * keep.clone()
        } else {
            fixed.embeddings.zeros_like()
        };
        let mut robust: Option<Tensor<1, Bool>> = None;
        for _ in 0..self.steps {
            let (g, ok) = fixed.gradient(model, delta.clone());
            robust = Some(match robust {
                Some(r) => r.bool_and(ok),
                None => ok,
            });
            let step = per_token_unit(g).mul_scalar(self.step_size);
            delta = project_per_token(delta + step, self.eps) * keep.clone();
        }
        let logits = model.logits_embedded(fixed.embeddings + delta.clone(), fixed.pad);
        let last = correct(logits.detach(), fixed.labels);
        let robust = robust.map_or(last.clone(), |r| r.bool_and(last));
        (delta.detach(), robust)
    }
}

/// FreeLB (Zhu et al. 2020) settings: `steps` ascent steps of `adv_lr` on the perturbation,
/// normalised per sample, from a uniform start of magnitude `init_mag`, projected onto the
/// per-sample L2 ball of radius `max_norm` (0: unbounded, as in the paper's default).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FreeLb {
    steps: usize,
    adv_lr: f64,
    init_mag: f64,
    max_norm: f64,
}

impl FreeLb {
    /// FreeLB with the given settings; the paper uses 2-3 steps and `adv_lr` 0.1.
    ///
    /// # Errors
    ///
    /// [`ParamError`] naming a negative or non-finite value, or `steps` = 0.
    pub fn new(
        steps: usize,
        adv_lr: f64,
        init_mag: f64,
        max_norm: f64,
    ) -> Result<Self, ParamError> {
        check_count("steps", steps, STEPS)?;
        check_finite_non_negative("adv_lr", adv_lr)?;
        check_finite_non_negative("init_mag", init_mag)?;
        check_finite_non_negative("max_norm", max_norm)?;
        Ok(Self {
            steps,
            adv_lr,
            init_mag,
            max_norm,
        })
    }

    /// The perturbations `delta_0 .. delta_{K-1}` FreeLB trains on, found with `attack_model`
    /// (the model without parameter gradients, in evaluation mode).
    ///
    /// burn cannot keep a graph across several backward passes, so where FreeLB accumulates
    /// the parameter gradients of each ascent step, harden finds the `K` perturbations first
    /// and then trains on the mean of the `K` losses with one backward pass
    /// ([`freelb_loss`]): the same gradient, at the cost of `K` extra forward passes.
    ///
    /// # Shapes
    ///
    /// As [`EmbeddingPgd::perturb`]; returns `K` tensors `[N, L, E]`.
    pub fn perturbations<M: EmbeddingModel + ?Sized>(
        &self,
        attack_model: &M,
        embeddings: Tensor<3>,
        pad: Tensor<2, Bool>,
        labels: Tensor<1, Int>,
        rng: &mut AttackRng,
    ) -> Vec<Tensor<3>> {
        let fixed = Fixed::new(embeddings, pad, labels);
        let (device, keep) = (fixed.embeddings.device(), fixed.keep.clone());
        let [n, len, width] = fixed.embeddings.dims();
        // Uniform in [-1, 1], scaled by init_mag / sqrt(tokens * width) per sample.
        let tokens: Tensor<3> = keep.clone().sum_dim(1).reshape([n, 1, 1]);
        let scale = tokens
            .mul_scalar(width as f64)
            .sqrt()
            .recip()
            .mul_scalar(self.init_mag);
        let mut delta = (rng.uniform([n, len, width], -1.0, 1.0, &device) * scale) * keep.clone();
        let mut deltas = Vec::with_capacity(self.steps);
        for step in 0..self.steps {
            deltas.push(delta.clone());
            if step + 1 == self.steps {
                break;
            }
            let (g, _) = fixed.gradient(attack_model, delta.clone());
            delta = (delta + per_sample_unit(g).mul_scalar(self.adv_lr)) * keep.clone();
            if self.max_norm > 0.0 {
                let norms = delta.clone().powi_scalar(2).sum_dim(2).sum_dim(1).sqrt();
                let factor = norms
                    .add_scalar(1e-12)
                    .recip()
                    .mul_scalar(self.max_norm)
                    .clamp_max(1.0);
                delta = delta * factor;
            }
        }
        deltas
    }
}

/// The one-step adversarial perturbation of Miyato, Dai & Goodfellow 2017 ("Adversarial
/// Training Methods for Semi-Supervised Text Classification"): `eps` times the normalised
/// gradient of the loss, taken on normalised embeddings, one L2 ball per text.
///
/// The paper normalises the embedding table per dimension, `(v - mean) / std` with the mean
/// and variance weighted by the training tokens' frequencies, so that the perturbation cannot
/// be made harmless by embeddings that grow. harden's models take raw embeddings, so the same
/// perturbation is applied in their space: with `s` the per-dimension standard deviation
/// ([`OneStepL2::scale`]), the gradient on normalised embeddings is `s * g`, the normalised
/// perturbation `r = eps (s * g) / ||s * g||` and the raw one `s * r`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OneStepL2 {
    eps: f64,
}

impl OneStepL2 {
    /// The perturbation of radius `eps` over each whole text in normalised embedding space
    /// (the paper: 5.0 for IMDB's 400-token reviews at width 256).
    ///
    /// # Errors
    ///
    /// [`ParamError`] naming `eps` when negative or not finite.
    pub fn new(eps: f64) -> Result<Self, ParamError> {
        check_finite_non_negative("eps", eps)?;
        Ok(Self { eps })
    }

    /// The radius in normalised embedding space.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The per-dimension standard deviation of the embedding table under token frequencies,
    /// `sqrt(sum_v f_v (table_v - mean)^2 + 1e-6)` with `mean = sum_v f_v table_v`.
    ///
    /// # Shapes
    ///
    /// - `table`: `[V, E]`; `frequencies`: `[V]`, non-negative and summing to 1; output: `[E]`.
    pub fn scale(table: Tensor<2>, frequencies: Tensor<1>) -> Tensor<1> {
        let [v, _] = table.dims();
        let f: Tensor<2> = frequencies.reshape([1, v]);
        let mean = f.clone().matmul(table.clone()); // [1, E]
        let centred = table - mean;
        let var = f.matmul(centred.powi_scalar(2)); // [1, E]
        var.add_scalar(1e-6).sqrt().squeeze_dim(0)
    }

    /// The perturbation of the detached `embeddings` (found at the clean point, without
    /// parameter gradients) for the per-dimension `scale` of [`OneStepL2::scale`].
    ///
    /// # Shapes
    ///
    /// - `embeddings`: `[N, L, E]`; `pad`: `[N, L]`; `labels`: `[N]`; `scale`: `[E]`.
    /// - output: `[N, L, E]`, zero at padding, with `||delta / scale|| = eps` over each text
    ///   (0 where the loss has no gradient).
    pub fn perturb<M: EmbeddingModel + ?Sized>(
        &self,
        model: &M,
        embeddings: Tensor<3>,
        pad: Tensor<2, Bool>,
        labels: Tensor<1, Int>,
        scale: Tensor<1>,
    ) -> Tensor<3> {
        let fixed = Fixed::new(embeddings, pad, labels);
        let width = scale.dims()[0];
        let scale: Tensor<3> = scale.without_autodiff().reshape([1, 1, width]);
        let keep = fixed.keep.clone();
        let (g, _) = fixed.gradient(model, fixed.embeddings.zeros_like());
        let normalised = per_sample_unit(g * scale.clone() * keep.clone()).mul_scalar(self.eps);
        (normalised * scale * keep).detach()
    }
}

/// The mean cross-entropy of `model` over the perturbed embeddings `embeddings + delta_k`,
/// averaged over the `deltas` (FreeLB's objective; one `delta` gives embedding-PGD
/// adversarial training). Returns the loss and the logits of the last perturbation.
///
/// # Shapes
///
/// - `embeddings`: `[N, L, E]` (with gradients to the embedding table); `deltas`: `K` of
///   `[N, L, E]`; outputs: a scalar `[1]` and `[N, K_classes]`.
///
/// # Panics
///
/// Panics when `deltas` is empty.
pub fn freelb_loss<M: EmbeddingModel + ?Sized>(
    model: &M,
    embeddings: Tensor<3>,
    deltas: &[Tensor<3>],
    pad: Tensor<2, Bool>,
    labels: Tensor<1, Int>,
) -> (Tensor<1>, Tensor<2>) {
    assert!(!deltas.is_empty(), "FreeLB needs at least one perturbation");
    let mut total: Option<Tensor<1>> = None;
    let mut last = None;
    for delta in deltas {
        let delta = delta.clone().detach();
        let delta = if embeddings.is_autodiff() {
            delta.autodiff()
        } else {
            delta
        };
        let logits = model.logits_embedded(embeddings.clone() + delta, pad.clone());
        let loss = cross_entropy(logits.clone(), labels.clone()).mean();
        total = Some(match total {
            Some(t) => t + loss,
            None => loss,
        });
        last = Some(logits);
    }
    let k = deltas.len() as f64;
    (
        total.expect("non-empty").div_scalar(k),
        last.expect("non-empty"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData};

    /// Mean of the real tokens' embeddings, then a fixed linear map to 3 classes.
    struct MeanLinear {
        table: Tensor<2>,
        head: Tensor<2>,
    }

    impl EmbeddingModel for MeanLinear {
        fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
            let [n, l] = ids.dims();
            let width = self.table.dims()[1];
            self.table
                .clone()
                .select(0, ids.reshape([n * l]))
                .reshape([n, l, width])
        }

        fn logits_embedded(&self, embeddings: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<2> {
            let keep = keep_mask(pad);
            let sum: Tensor<2> = (embeddings * keep.clone()).sum_dim(1).squeeze_dim(1);
            let count: Tensor<2> = keep.sum_dim(1).squeeze_dim(1);
            (sum / count).matmul(self.head.clone())
        }

        fn embedding_table(&self) -> Tensor<2> {
            self.table.clone()
        }
    }

    fn setup() -> (MeanLinear, Tensor<3>, Tensor<2, Bool>, Tensor<1, Int>) {
        let device = Device::flex();
        device.seed(3);
        let model = MeanLinear {
            table: Tensor::random([20, 8], Distribution::Normal(0.0, 1.0), &device),
            head: Tensor::random([8, 3], Distribution::Normal(0.0, 1.0), &device),
        };
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 2, 3, 4, 5, 6, 0, 0, 7, 0, 0, 0], [3, 4]),
            &device,
        );
        let pad = ids.clone().equal_elem(0);
        let emb = model.embed(ids);
        let labels = crate::loss::predictions(model.logits_embedded(emb.clone(), pad.clone()));
        (model, emb, pad, labels)
    }

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    /// The L2 norm of each token's perturbation.
    fn token_norms(delta: Tensor<3>) -> Vec<f32> {
        host(delta.powi_scalar(2).sum_dim(2).sqrt())
    }

    /// The L2 norm of each text's whole perturbation.
    fn text_norms(delta: Tensor<3>) -> Vec<f32> {
        host(delta.powi_scalar(2).sum_dim(2).sum_dim(1).sqrt())
    }

    #[test]
    fn embedding_pgd_stays_in_each_tokens_ball_and_off_padding() {
        let (model, emb, pad, labels) = setup();
        let pad_flags: Vec<bool> = pad.clone().into_data().try_to_vec::<bool>().unwrap();
        let eps = 1.5;
        let pgd = EmbeddingPgd::new(eps, 10, 0.5, true).unwrap();
        let (delta, robust) = pgd.perturb(&model, emb, pad, labels, &mut AttackRng::new(1));
        for (norm, is_pad) in token_norms(delta).iter().zip(pad_flags) {
            assert!(*norm <= eps as f32 + 1e-4, "{norm}");
            if is_pad {
                assert_eq!(*norm, 0.0);
            }
        }
        // The labels are the clean predictions; a large ball breaks at least one.
        let robust: Vec<bool> = robust.into_data().try_to_vec::<bool>().unwrap();
        assert!(robust.iter().any(|r| !r), "{robust:?}");
    }

    #[test]
    fn stronger_embedding_pgd_breaks_more() {
        let (model, emb, pad, labels) = setup();
        let broken = |eps: f64| {
            let pgd = EmbeddingPgd::new(eps, 10, eps / 4.0, false).unwrap();
            let (_, ok) = pgd.perturb(
                &model,
                emb.clone(),
                pad.clone(),
                labels.clone(),
                &mut AttackRng::new(0),
            );
            3 - ok.int().sum().into_scalar::<i64>()
        };
        assert_eq!(
            broken(0.0),
            0,
            "no perturbation keeps the clean predictions"
        );
        assert!(broken(4.0) >= broken(0.5));
        assert_eq!(broken(50.0), 3);
    }

    #[test]
    fn the_scale_is_the_frequency_weighted_standard_deviation() {
        let device = Device::flex();
        let table = Tensor::<2>::from_data(
            TensorData::new(vec![0.0f32, 0.0, 2.0, 4.0, 9.0, 9.0], [3, 2]),
            &device,
        );
        // The third token never occurs: mean [1, 2], variance [1, 4].
        let f = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, 0.5, 0.0], [3]), &device);
        let s: Vec<f32> = OneStepL2::scale(table, f).into_data().try_to_vec().unwrap();
        assert!(
            (s[0] - 1.0).abs() < 1e-4 && (s[1] - 2.0).abs() < 1e-4,
            "{s:?}"
        );
    }

    #[test]
    fn the_one_step_perturbation_has_radius_eps_in_normalised_space_and_raises_the_loss() {
        let (model, emb, pad, labels) = setup();
        let pad_flags: Vec<bool> = pad.clone().into_data().try_to_vec::<bool>().unwrap();
        let device = emb.device();
        let scale = Tensor::<1>::from_data(
            TensorData::new(vec![0.5f32, 1.0, 2.0, 1.0, 1.0, 3.0, 1.0, 0.25], [8]),
            &device,
        );
        let eps = 0.7;
        let attack = OneStepL2::new(eps).unwrap();
        let delta = attack.perturb(
            &model,
            emb.clone(),
            pad.clone(),
            labels.clone(),
            scale.clone(),
        );
        let normalised = delta.clone() / scale.reshape([1, 1, 8]);
        for n in text_norms(normalised) {
            assert!((n - eps as f32).abs() < 1e-3, "{n}");
        }
        for (norm, is_pad) in token_norms(delta.clone()).iter().zip(pad_flags) {
            if is_pad {
                assert_eq!(*norm, 0.0);
            }
        }
        let loss = |d: Tensor<3>| {
            cross_entropy(
                model.logits_embedded(emb.clone() + d, pad.clone()),
                labels.clone(),
            )
            .sum()
            .into_scalar::<f32>()
        };
        assert!(loss(delta.clone()) > loss(delta.zeros_like()));
        assert!(OneStepL2::new(f64::NAN).is_err());
    }

    #[test]
    fn freelb_perturbations_grow_within_the_bound() {
        let (model, emb, pad, labels) = setup();
        let freelb = FreeLb::new(3, 0.5, 0.1, 0.8).unwrap();
        let deltas = freelb.perturbations(
            &model,
            emb.clone(),
            pad.clone(),
            labels.clone(),
            &mut AttackRng::new(2),
        );
        assert_eq!(deltas.len(), 3);
        for d in &deltas {
            let per_sample = text_norms(d.clone());
            assert!(
                per_sample.iter().all(|&n| n <= 0.8 + 1e-4),
                "{per_sample:?}"
            );
        }
        let (loss, _) = freelb_loss(&model, emb, &deltas, pad, labels);
        assert!(loss.into_scalar::<f32>().is_finite());
        assert!(FreeLb::new(0, 0.1, 0.0, 0.0).is_err());
        assert!(EmbeddingPgd::new(-1.0, 1, 0.1, false).is_err());
    }
}
