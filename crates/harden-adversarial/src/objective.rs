//! Training objectives: one loss tensor, one backward pass each.
//!
//! - [`Objective::Clean`]: cross-entropy on clean inputs.
//! - [`Objective::Pgd`]: PGD adversarial training (Madry et al. 2018): cross-entropy on PGD
//!   adversarial inputs.
//! - [`Objective::FgsmRs`]: fast adversarial training (Wong, Rice & Kolter 2020):
//!   cross-entropy on FGSM inputs from a uniform random start.
//! - [`Objective::Trades`]: TRADES (Zhang et al. 2019): clean cross-entropy plus
//!   `beta * KL(p(x) || p(x'))`, with `x'` maximising that KL inside the ball.
//! - [`Objective::Ard`]: adversarially robust distillation (Goldblum et al. 2020):
//!   `alpha T^2 KL(t(x)/T || s(x')/T) + (1 - alpha) CE(s(x), y)`, with `x'` from PGD on the
//!   student's cross-entropy and `t(x)` a frozen teacher's logits on the clean batch.
//! - [`Objective::Rslad`]: robust soft-label adversarial distillation (Zi et al. 2021):
//!   `5/6 KL(t(x) || s(x')) + 1/6 KL(t(x) || s(x))`, with `x'` maximising
//!   `KL(t(x) || s(x'))`: the teacher's clean soft labels replace the hard labels everywhere.
//! - [`Objective::EnsembleAt`]: ensemble adversarial training (Tramèr et al. 2018): PGD
//!   training whose adversarial inputs come, batch by batch, from the model itself or from
//!   static surrogate models; the caller passes the batch's source as `attack_model`.
//!
//! The distillation objectives need the teacher's logits on the clean batch, passed with the
//! labels as a [`Supervision`].
//!
//! All of them use binary cross-entropy with logits (and a Bernoulli KL) when the model has a
//! single output logit.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::attack::{loss_and_gradient, zero_non_finite};
use crate::error::{ParamError, check_finite_non_negative, check_finite_positive};
use crate::loss::{cross_entropy, kl_divergence};
use crate::{AttackRng, Differentiable, Pgd, PgdConfig};

/// The kind of a training objective, as the CLI and configuration files name it
/// (`clean`, `pgd`, `fgsm-rs`, `trades`; for text models also `freelb`, `a2t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveKind {
    /// Clean cross-entropy.
    Clean,
    /// PGD adversarial training (Madry et al. 2018).
    Pgd,
    /// FGSM with a random start (Wong, Rice & Kolter 2020).
    FgsmRs,
    /// TRADES (Zhang et al. 2019).
    Trades,
    /// FreeLB (Zhu et al. 2020): ascent steps on token embeddings, text models only
    /// ([`text::FreeLb`](crate::text::FreeLb)).
    Freelb,
    /// A2T (Yoo & Qi 2021): training on adversarial character edits found on the fly by a
    /// cheap attack, text models only.
    A2t,
    /// Adversarial training on embeddings (Miyato, Dai & Goodfellow 2017): one L2 step on
    /// normalised token embeddings ([`text::OneStepL2`](crate::text::OneStepL2)), text models
    /// only.
    Miyato,
    /// Adversarially robust distillation (Goldblum et al. 2020), from a teacher.
    Ard,
    /// Robust soft-label adversarial distillation (Zi et al. 2021), from a teacher.
    Rslad,
    /// Ensemble adversarial training (Tramèr et al. 2018), with static surrogates.
    EnsembleAt,
}

impl ObjectiveKind {
    /// The name the CLI and configuration files use.
    pub fn name(self) -> String {
        crate::names::name_of(self)
    }

    /// Whether the objective learns from a teacher's logits (`ard`, `rslad`).
    pub fn distils(self) -> bool {
        matches!(self, Self::Ard | Self::Rslad)
    }
}

/// What a batch is trained towards: its labels, and for the distillation objectives the
/// teacher's logits on the clean batch.
#[derive(Debug, Clone)]
pub struct Supervision {
    /// Class indices `[N]`.
    pub labels: Tensor<1, Int>,
    /// The teacher's logits `[N, K]` on the clean inputs (no graph needed), for `ard` and
    /// `rslad`.
    pub teacher: Option<Tensor<2>>,
}

impl From<Tensor<1, Int>> for Supervision {
    /// Labels alone.
    fn from(labels: Tensor<1, Int>) -> Self {
        Self {
            labels,
            teacher: None,
        }
    }
}

/// Hyperparameters of a training objective, before checking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ObjectiveConfig {
    /// Clean cross-entropy.
    Clean,
    /// PGD adversarial training with this attack.
    Pgd {
        /// The inner attack (last iterate is used, as in Madry et al.).
        attack: PgdConfig,
    },
    /// FGSM-RS fast adversarial training with this one-step attack.
    FgsmRs {
        /// The inner attack (`PgdConfig::fgsm_rs`).
        attack: PgdConfig,
    },
    /// TRADES.
    Trades {
        /// Weight of the KL term (>= 0).
        beta: f64,
        /// The inner maximisation of the KL term (steps, step size, ball).
        attack: PgdConfig,
    },
    /// Adversarially robust distillation.
    Ard {
        /// Weight of the distillation term, in [0, 1].
        alpha: f64,
        /// Softmax temperature (> 0).
        temperature: f64,
        /// PGD on the student's cross-entropy (last iterate).
        attack: PgdConfig,
    },
    /// Robust soft-label adversarial distillation.
    Rslad {
        /// The inner maximisation of the KL to the teacher's soft labels.
        attack: PgdConfig,
    },
    /// Ensemble adversarial training.
    EnsembleAt {
        /// The attack run on the batch's source model (last iterate).
        attack: PgdConfig,
    },
}

impl ObjectiveConfig {
    /// Checks every hyperparameter.
    ///
    /// # Errors
    ///
    /// [`ParamError`] from the inner attack, or for a negative or non-finite `beta`.
    pub fn check(self) -> Result<Objective, ParamError> {
        Ok(match self {
            Self::Clean => Objective::Clean,
            Self::Pgd { attack } => Objective::Pgd(attack.with_keep_best(false).check()?),
            Self::FgsmRs { attack } => Objective::FgsmRs(attack.with_keep_best(false).check()?),
            Self::Trades { beta, attack } => {
                check_finite_non_negative("beta", beta)?;
                Objective::Trades {
                    beta,
                    attack: attack.with_keep_best(false).check()?,
                }
            }
            Self::Ard {
                alpha,
                temperature,
                attack,
            } => {
                if !(alpha.is_finite() && (0.0..=1.0).contains(&alpha)) {
                    return Err(ParamError {
                        name: "distill-alpha",
                        value: alpha.to_string(),
                        expected: "a weight in [0, 1]",
                    });
                }
                check_finite_positive("temperature", temperature)?;
                Objective::Ard {
                    alpha,
                    temperature,
                    attack: attack.with_keep_best(false).check()?,
                }
            }
            Self::Rslad { attack } => Objective::Rslad {
                attack: attack.with_keep_best(false).check()?,
            },
            Self::EnsembleAt { attack } => {
                Objective::EnsembleAt(attack.with_keep_best(false).check()?)
            }
        })
    }
}

/// A checked training objective; see the [module docs](self).
///
/// Deserialising goes through [`ObjectiveConfig::check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ObjectiveConfig", into = "ObjectiveConfig")]
pub enum Objective {
    /// Clean cross-entropy.
    Clean,
    /// PGD adversarial training.
    Pgd(Pgd),
    /// FGSM-RS fast adversarial training.
    FgsmRs(Pgd),
    /// TRADES with weight `beta`.
    Trades {
        /// Weight of the KL term.
        beta: f64,
        /// The inner maximisation.
        attack: Pgd,
    },
    /// Adversarially robust distillation.
    Ard {
        /// Weight of the distillation term.
        alpha: f64,
        /// Softmax temperature.
        temperature: f64,
        /// PGD on the student's cross-entropy.
        attack: Pgd,
    },
    /// Robust soft-label adversarial distillation.
    Rslad {
        /// The inner maximisation of the KL to the teacher.
        attack: Pgd,
    },
    /// Ensemble adversarial training: PGD on the batch's source model.
    EnsembleAt(Pgd),
}

impl TryFrom<ObjectiveConfig> for Objective {
    type Error = ParamError;

    fn try_from(config: ObjectiveConfig) -> Result<Self, ParamError> {
        config.check()
    }
}

impl From<Objective> for ObjectiveConfig {
    fn from(objective: Objective) -> Self {
        match objective {
            Objective::Clean => Self::Clean,
            Objective::Pgd(a) => Self::Pgd {
                attack: a.config().clone(),
            },
            Objective::FgsmRs(a) => Self::FgsmRs {
                attack: a.config().clone(),
            },
            Objective::Trades { beta, attack } => Self::Trades {
                beta,
                attack: attack.config().clone(),
            },
            Objective::Ard {
                alpha,
                temperature,
                attack,
            } => Self::Ard {
                alpha,
                temperature,
                attack: attack.config().clone(),
            },
            Objective::Rslad { attack } => Self::Rslad {
                attack: attack.config().clone(),
            },
            Objective::EnsembleAt(a) => Self::EnsembleAt {
                attack: a.config().clone(),
            },
        }
    }
}

/// What an objective computed on a batch.
#[derive(Debug, Clone)]
pub struct ObjectiveOutput<const D: usize> {
    /// The mean loss over the batch, shape `[1]`, with the training model's graph.
    pub loss: Tensor<1>,
    /// Logits `[N, K]` of the inputs the model was trained on (adversarial for PGD and
    /// FGSM-RS, clean for clean training and TRADES), with graph.
    pub logits: Tensor<2>,
    /// The adversarial batch (without graph), when the objective made one.
    pub adversarial: Option<Tensor<D>>,
    /// Logits `[N, K]` of the adversarial batch, with graph, when the objective made one.
    pub adversarial_logits: Option<Tensor<2>>,
}

impl Objective {
    /// The objective's kind.
    pub fn kind(&self) -> ObjectiveKind {
        match self {
            Self::Clean => ObjectiveKind::Clean,
            Self::Pgd(_) => ObjectiveKind::Pgd,
            Self::FgsmRs(_) => ObjectiveKind::FgsmRs,
            Self::Trades { .. } => ObjectiveKind::Trades,
            Self::Ard { .. } => ObjectiveKind::Ard,
            Self::Rslad { .. } => ObjectiveKind::Rslad,
            Self::EnsembleAt(_) => ObjectiveKind::EnsembleAt,
        }
    }

    /// The objective's name as the CLI spells it.
    pub fn name(&self) -> String {
        self.kind().name()
    }

    /// The inner attack, if any.
    pub fn attack(&self) -> Option<&Pgd> {
        match self {
            Self::Clean => None,
            Self::Pgd(a)
            | Self::FgsmRs(a)
            | Self::EnsembleAt(a)
            | Self::Trades { attack: a, .. }
            | Self::Ard { attack: a, .. }
            | Self::Rslad { attack: a } => Some(a),
        }
    }

    /// A copy with the inner attack's eps (and step size, proportionally) changed, for eps
    /// warm-up schedules.
    ///
    /// # Errors
    ///
    /// [`ParamError`] when `eps` is negative or not finite.
    pub fn with_eps(&self, eps: f64) -> Result<Self, ParamError> {
        Ok(match self {
            Self::Clean => Self::Clean,
            Self::Pgd(a) => Self::Pgd(a.with_eps(eps)?),
            Self::FgsmRs(a) => Self::FgsmRs(a.with_eps(eps)?),
            Self::Trades { beta, attack } => Self::Trades {
                beta: *beta,
                attack: attack.with_eps(eps)?,
            },
            Self::Ard {
                alpha,
                temperature,
                attack,
            } => Self::Ard {
                alpha: *alpha,
                temperature: *temperature,
                attack: attack.with_eps(eps)?,
            },
            Self::Rslad { attack } => Self::Rslad {
                attack: attack.with_eps(eps)?,
            },
            Self::EnsembleAt(a) => Self::EnsembleAt(a.with_eps(eps)?),
        })
    }

    /// The loss of one batch.
    ///
    /// `model` is the model being trained (parameters with autodiff); `attack_model` the same
    /// weights without parameter gradients and in evaluation mode (burn's `model.valid()`),
    /// used to craft adversarial inputs (for ensemble AT, the batch's source: the model's
    /// `valid()` copy or a surrogate). Inputs are returned to `input`'s autodiff context
    /// before the training forward pass. `mask` (1 perturbable, 0 fixed; broadcastable
    /// against `input`, e.g. `[N, T, 1]` for token embeddings with padding) keeps masked
    /// values at their clean value in every adversarial input.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]` clean inputs in the box; `labels`: `[N]` (a tensor, or a
    ///   [`Supervision`] with the teacher's logits `[N, K]`).
    ///
    /// # Panics
    ///
    /// Panics for `ard` and `rslad` without the teacher's logits.
    pub fn loss<const D: usize, M, A>(
        &self,
        model: &M,
        attack_model: &A,
        input: Tensor<D>,
        labels: impl Into<Supervision>,
        mask: Option<Tensor<D>>,
        rng: &mut AttackRng,
    ) -> ObjectiveOutput<D>
    where
        M: Differentiable<D> + ?Sized,
        A: Differentiable<D> + ?Sized,
    {
        let Supervision { labels, teacher } = labels.into();
        let on_input = |x: Tensor<D>| if input.is_autodiff() { x.autodiff() } else { x };
        let teacher = || {
            teacher
                .clone()
                .map(|t| t.detach().without_autodiff())
                .unwrap_or_else(|| panic!("{} needs the teacher's logits", self.name()))
        };
        match self {
            Self::Clean => {
                let logits = model.logits(input.clone());
                ObjectiveOutput {
                    loss: cross_entropy(logits.clone(), labels).mean(),
                    logits,
                    adversarial: None,
                    adversarial_logits: None,
                }
            }
            Self::Pgd(attack) | Self::FgsmRs(attack) | Self::EnsembleAt(attack) => {
                let adv =
                    attack.adversarial(attack_model, input.clone(), labels.clone(), mask, rng);
                let logits = model.logits(on_input(adv.clone()));
                ObjectiveOutput {
                    loss: cross_entropy(logits.clone(), labels).mean(),
                    logits: logits.clone(),
                    adversarial: Some(adv),
                    adversarial_logits: Some(logits),
                }
            }
            Self::Trades { beta, attack } => {
                let clean = input.clone().detach().without_autodiff();
                let target = attack_model.logits(clean).detach().without_autodiff();
                let adv = kl_inner(attack, attack_model, input.clone(), target, mask, rng);
                let clean_logits = model.logits(input.clone());
                let adv_logits = model.logits(on_input(adv.clone()));
                let natural = cross_entropy(clean_logits.clone(), labels).mean();
                let robust = kl_divergence(clean_logits.clone(), adv_logits.clone()).mean();
                ObjectiveOutput {
                    loss: natural + robust.mul_scalar(*beta),
                    logits: clean_logits,
                    adversarial: Some(adv),
                    adversarial_logits: Some(adv_logits),
                }
            }
            Self::Ard {
                alpha,
                temperature,
                attack,
            } => {
                let teacher = teacher().autodiff_if(input.is_autodiff());
                let adv =
                    attack.adversarial(attack_model, input.clone(), labels.clone(), mask, rng);
                let clean_logits = model.logits(input.clone());
                let adv_logits = model.logits(on_input(adv.clone()));
                let t = *temperature;
                let distill =
                    kl_divergence(teacher.div_scalar(t), adv_logits.clone().div_scalar(t))
                        .mean()
                        .mul_scalar(alpha * t * t);
                let natural = cross_entropy(clean_logits, labels)
                    .mean()
                    .mul_scalar(1.0 - alpha);
                ObjectiveOutput {
                    loss: distill + natural,
                    logits: adv_logits.clone(),
                    adversarial: Some(adv),
                    adversarial_logits: Some(adv_logits),
                }
            }
            Self::Rslad { attack } => {
                let target = teacher();
                let adv = kl_inner(
                    attack,
                    attack_model,
                    input.clone(),
                    target.clone(),
                    mask,
                    rng,
                );
                let teacher = target.autodiff_if(input.is_autodiff());
                let clean_logits = model.logits(input.clone());
                let adv_logits = model.logits(on_input(adv.clone()));
                let robust = kl_divergence(teacher.clone(), adv_logits.clone()).mean();
                let natural = kl_divergence(teacher, clean_logits).mean();
                ObjectiveOutput {
                    loss: robust.mul_scalar(5.0 / 6.0) + natural.mul_scalar(1.0 / 6.0),
                    logits: adv_logits.clone(),
                    adversarial: Some(adv),
                    adversarial_logits: Some(adv_logits),
                }
            }
        }
    }
}

/// Moves a tensor without graph into the autodiff context when `autodiff` says so.
trait AutodiffIf {
    fn autodiff_if(self, autodiff: bool) -> Self;
}

impl AutodiffIf for Tensor<2> {
    fn autodiff_if(self, autodiff: bool) -> Self {
        if autodiff { self.autodiff() } else { self }
    }
}

/// The inner maximisation of TRADES and RSLAD: from `x + 0.001 N(0, 1)`, steps of steepest
/// ascent on `KL(target || p(x'))` (`target`: logits `[N, K]` without graph: the model's own on
/// the clean batch for TRADES, the teacher's for RSLAD), each projected onto the threat model
/// (and the mask).
fn kl_inner<const D: usize, A: Differentiable<D> + ?Sized>(
    attack: &Pgd,
    model: &A,
    input: Tensor<D>,
    clean_logits: Tensor<2>,
    mask: Option<Tensor<D>>,
    rng: &mut AttackRng,
) -> Tensor<D> {
    let config = attack.config();
    let threat = attack.threat();
    let clean = input.detach().without_autodiff();
    if threat.eps() == 0.0 {
        return clean;
    }
    let noise = rng.normal(clean.dims(), &clean.device()).mul_scalar(0.001);
    let mut x = threat.project(clean.clone() + noise, clean.clone(), mask.clone());
    for _ in 0..config.steps {
        let at = loss_and_gradient(model, x.clone(), |logits| {
            kl_divergence(clean_logits.clone().autodiff(), logits)
        });
        x = threat.project(
            x + threat.ascent(zero_non_finite(at.grad), config.step_size),
            clean.clone(),
            mask.clone(),
        );
    }
    x
}
