//! Threat models, adversarial attacks and robust training objectives for any burn model.
//!
//! This crate depends only on burn: a library user can take it alone to attack or
//! adversarially train their own models. An attack needs nothing but a function from inputs to
//! logits ([`Differentiable`], implemented by any closure), so the same code serves images
//! (`Tensor<4>`), tables (`Tensor<2>`) and token embeddings (`Tensor<3>`, per-token balls with
//! a padding mask).
//!
//! - [`ThreatModel`]: L-inf or L2 ball of radius eps inside the input box, exact projection.
//! - [`Attack`]: the interface every attack implements (and a user's own attack can), so the
//!   evaluation ensemble runs any of them.
//! - [`PgdConfig`] / [`Pgd`]: FGSM, FGSM with random start, PGD with restarts, targeted or not.
//! - [`ApgdConfig`] / [`Apgd`], [`ApgdTargeted`], [`SquareConfig`] / [`Square`],
//!   [`Transfer`]: the attacks of the reference evaluation protocol.
//! - [`ObjectiveConfig`] / [`Objective`]: clean, PGD adversarial training, FGSM-RS fast
//!   adversarial training, TRADES; binary single-logit variants.
//! - [`text`]: text attacks (embedding PGD, HotFlip on tokens, DeepWordBug on characters),
//!   FreeLB and embedding-PGD training losses, and TextAttack's summary of an attack.
//! - [`eval::run_ensemble`]: clean and worst-case robust accuracy over several attacks;
//!   [`suite::evaluate`] adds the named suites and the sanity flags.
//!
//! ```
//! use burn::nn::LinearConfig;
//! use burn::tensor::{Device, Distribution, Int, Tensor};
//! use harden_adversarial::{Attack, AttackRng, Norm, PgdConfig, ThreatModel};
//!
//! // Any function from inputs to logits is a model: here one linear layer on 4 features.
//! let device = Device::flex();
//! let layer = LinearConfig::new(4, 3).init(&device);
//! let model = |x: Tensor<2>| layer.forward(x);
//! let x = Tensor::<2>::random([8, 4], Distribution::Default, &device);
//! let y = Tensor::<1, Int>::zeros([8], &device);
//!
//! let threat = ThreatModel::new(Norm::Linf, 0.1)?;
//! let pgd = PgdConfig::new(threat, 10, 0.025).with_restarts(2).check()?;
//! let out = pgd.perturb(&model, x.clone(), y, &mut AttackRng::new(0));
//! let moved: f32 = (out.adversarial - x).abs().max().into_scalar();
//! assert!(moved <= 0.1 + 1e-6, "the perturbation stays in the ball");
//! # Ok::<(), harden_adversarial::ParamError>(())
//! ```
//!
//! Hyperparameters are checked once into a runnable form ([`ParamError`] otherwise), so an
//! attack with eps < 0 or zero steps can never run.

pub mod apgd;
pub mod attack;
mod best;
pub mod error;
pub mod eval;
pub mod loss;
mod macros;
mod model;
pub mod names;
pub mod objective;
pub mod pgd;
mod rng;
pub mod square;
pub mod suite;
pub mod text;
pub mod threat;

pub use apgd::{Apgd, ApgdConfig, ApgdLoss, ApgdTargeted};
pub use attack::{Attack, AttackOutput, GradientCheck, input_gradient};
pub use error::ParamError;
pub use model::Differentiable;
pub use objective::{Objective, ObjectiveConfig, ObjectiveKind, ObjectiveOutput, Supervision};
pub use pgd::{Pgd, PgdConfig};
pub use rng::AttackRng;
pub use square::{Square, SquareConfig};
pub use suite::{EvalReport, Suite, SuiteAttack, Transfer};
pub use threat::{Bounds, Norm, ThreatModel};
