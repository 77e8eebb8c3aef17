//! Threat models, adversarial attacks and robust training objectives for any burn model.
//!
//! This crate depends only on burn: a library user can take it alone to attack or
//! adversarially train their own models. An attack needs nothing but a function from inputs to
//! logits ([`Differentiable`], implemented by any closure), so the same code serves images
//! (`Tensor<4>`), tables (`Tensor<2>`) and token embeddings (`Tensor<3>`, per-token balls with
//! a padding mask).
//!
//! - [`ThreatModel`]: L-inf or L2 ball of radius eps inside the input box, exact projection.
//! - [`PgdConfig`] / [`Pgd`]: FGSM, FGSM with random start, PGD with restarts, targeted or not.
//! - [`ObjectiveConfig`] / [`Objective`]: clean, PGD adversarial training, FGSM-RS fast
//!   adversarial training, TRADES; binary single-logit variants.
//! - [`eval`]: clean and worst-case robust accuracy over several attacks.
//!
//! ```no_run
//! use burn::tensor::{Device, Int, Tensor};
//! use harden_adversarial::{AttackRng, Norm, PgdConfig, ThreatModel};
//!
//! # fn demo(model: impl Fn(Tensor<4>) -> Tensor<2>, x: Tensor<4>, y: Tensor<1, Int>) {
//! let threat = ThreatModel::new(Norm::Linf, 0.3).unwrap();
//! let pgd = PgdConfig::new(threat, 40, 0.01).with_restarts(5).check().unwrap();
//! let out = pgd.perturb(&model, x, y, &mut AttackRng::new(0));
//! # }
//! ```
//!
//! Hyperparameters are checked once into a runnable form ([`ParamError`] otherwise), so an
//! attack with eps < 0 or zero steps can never run.

pub mod apgd;
pub mod attack;
mod best;
mod error;
pub mod eval;
pub mod loss;
mod model;
pub mod objective;
mod rng;
pub mod square;
pub mod suite;
pub mod threat;

pub use apgd::{Apgd, ApgdConfig, ApgdLoss};
pub use attack::{AttackOutput, GradientCheck, Pgd, PgdConfig, input_gradient};
pub use error::ParamError;
pub use model::Differentiable;
pub use objective::{Objective, ObjectiveConfig, ObjectiveOutput};
pub use rng::AttackRng;
pub use square::{Square, SquareConfig};
pub use suite::{EvalReport, Suite, SuiteAttack};
pub use threat::{Bounds, Norm, ThreatModel};
