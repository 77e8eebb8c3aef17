//! The model as burn-train sees it: an adversarial [`TrainStep`] and an [`InferenceStep`] that
//! measures clean and PGD accuracy.

use std::fmt;
use std::sync::{Arc, Mutex};

use burn::module::Module;
use burn::tensor::{Int, Tensor};
use burn::train::{InferenceStep, Interrupter, TrainOutput, TrainStep};
use harden_adversarial::loss::cross_entropy;
use harden_adversarial::{Attack, AttackRng, Objective, Pgd, Supervision};
use harden_data::Inputs;
use harden_model::Classifier;

use crate::loader::Batch;
use crate::metric::{StepOutput, ValidOutput, class_scores};
use crate::saved::Companions;
use crate::schedule::eps_at;

/// Where the loss first stopped being finite.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// The loss value.
    pub value: f32,
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Iteration, 1-based.
    pub iteration: usize,
}

/// What the steps need besides the weights; not part of the module's parameters.
#[derive(Clone)]
pub struct Plan {
    /// The objective at full eps.
    pub objective: Objective,
    /// Full eps of the training attack.
    pub eps: f64,
    /// Epochs of eps warm-up (0: none).
    pub eps_warmup_epochs: f64,
    /// Batches per epoch (for the warm-up's fractional epoch).
    pub iters_per_epoch: usize,
    /// The validation attack (PGD-k, keeping the best point).
    pub valid_attack: Pgd,
    /// Seed of the validation attack's random stream.
    pub valid_seed: u64,
    /// Stops the run on a non-finite loss.
    pub interrupter: Interrupter,
    /// Set on a non-finite loss.
    pub divergence: Arc<Mutex<Option<Divergence>>>,
    /// The teacher of distillation and the surrogates of ensemble AT.
    pub companions: Companions,
    /// The model's parameters, counted before training (trainable ones need autodiff).
    pub parameters: harden_model::ParamCount,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("objective", &self.objective.name())
            .field("eps", &self.eps)
            .finish_non_exhaustive()
    }
}

/// A model in training (any [`Classifier`]): the weights plus the [`Plan`] of its steps.
#[derive(Module, Debug)]
pub struct Trainee<M: Module + Classifier> {
    /// The weights.
    pub model: M,
    /// Objective, validation attack and guards.
    #[module(skip)]
    pub plan: Plan,
}

impl<M: Module + Classifier> Trainee<M> {
    /// One batch of the objective on inputs of rank `D`; see [`TrainStep::step`].
    fn train_on<const D: usize>(
        &self,
        inputs: Tensor<D>,
        labels: Tensor<1, Int>,
        batch: &Batch,
    ) -> TrainOutput<StepOutput> {
        let plan = &self.plan;
        let objective = if plan.eps_warmup_epochs > 0.0 {
            let eps = eps_at(
                plan.eps,
                plan.eps_warmup_epochs,
                batch.iteration,
                plan.iters_per_epoch,
            );
            plan.objective
                .with_eps(eps)
                .expect("eps in [0, checked eps] is valid")
        } else {
            plan.objective.clone()
        };
        let mut rng = AttackRng::new(batch.seed);
        let supervision = Supervision {
            labels: labels.clone(),
            teacher: plan.companions.teacher.as_ref().map(|t| t.logits(&inputs)),
        };
        let model = |x: Tensor<D>| self.model.logits(x);
        // Ensemble AT: batch i is attacked on surrogate i mod (k + 1), 0 being the model.
        let surrogates = &plan.companions.surrogates;
        let source = batch.iteration % (surrogates.len() + 1);
        let out = if source == 0 {
            let attack_model = self.model.valid();
            let attack = |x: Tensor<D>| attack_model.logits(x);
            objective.loss(&model, &attack, inputs, supervision, None, &mut rng)
        } else {
            let surrogate = surrogates[source - 1].beside(&inputs);
            let attack = |x: Tensor<D>| surrogate.logits(x);
            objective.loss(&model, &attack, inputs, supervision, None, &mut rng)
        };
        let value = out.loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            let mut slot = plan.divergence.lock().expect("divergence lock");
            if slot.is_none() {
                *slot = Some(Divergence {
                    value,
                    epoch: batch.epoch,
                    iteration: batch.iteration,
                });
            }
            plan.interrupter
                .stop(Some("the loss is not finite (training diverged)"));
        }
        let grads = out.loss.backward();
        TrainOutput::new(
            self,
            grads,
            StepOutput {
                loss: out.loss.detach(),
                scores: class_scores(out.logits.detach()),
                targets: labels,
            },
        )
    }

    /// Clean and robust validation of a batch of rank `D`; see [`InferenceStep::step`].
    fn validate_on<const D: usize>(
        &self,
        inputs: Tensor<D>,
        labels: Tensor<1, Int>,
        iteration: usize,
    ) -> ValidOutput {
        let f = |x: Tensor<D>| self.model.logits(x);
        let logits = f(inputs.clone());
        let loss = cross_entropy(logits.clone(), labels.clone()).mean();
        let mut rng = AttackRng::new(self.plan.valid_seed ^ iteration as u64);
        let adv = self
            .plan
            .valid_attack
            .perturb(&f, inputs, labels.clone(), &mut rng)
            .adversarial;
        ValidOutput {
            loss,
            scores: class_scores(logits),
            robust_scores: class_scores(f(adv)),
            targets: labels,
        }
    }
}

impl<M: Module + Classifier> TrainStep for Trainee<M> {
    type Input = Batch;
    type Output = StepOutput;

    /// One batch of the objective. The attack runs on `model.valid()` (no parameter
    /// gradients); eps follows the warm-up. A non-finite loss records a [`Divergence`] and stops
    /// the run before the epoch's checkpoint is written.
    fn step(&self, batch: Batch) -> TrainOutput<StepOutput> {
        let labels = batch.labels.clone();
        match batch.inputs.clone() {
            Inputs::Table(x) => self.train_on(x, labels, &batch),
            Inputs::Image(x) => self.train_on(x, labels, &batch),
        }
    }
}

impl<M: Module + Classifier> InferenceStep for Trainee<M> {
    type Input = Batch;
    type Output = ValidOutput;

    /// Clean loss and accuracy, and accuracy under the validation PGD attack at full eps.
    fn step(&self, batch: Batch) -> ValidOutput {
        match batch.inputs {
            Inputs::Table(x) => self.validate_on(x, batch.labels, batch.iteration),
            Inputs::Image(x) => self.validate_on(x, batch.labels, batch.iteration),
        }
    }
}
