//! The model as burn-train sees it: an adversarial [`TrainStep`] and an [`InferenceStep`] that
//! measures clean and robust accuracy, for any model that can [`Learn`].

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
    /// What a text run's steps read besides the weights (`None` for images and tables).
    pub text: Option<std::sync::Arc<crate::text::TextKit>>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("objective", &self.objective.name())
            .field("eps", &self.eps)
            .finish_non_exhaustive()
    }
}

/// What a training step trained on: the objective's loss and the logits and labels of the
/// inputs it took (a text batch grows by its adversarial texts under A2T).
pub struct Trained {
    /// Mean loss `[1]`.
    pub loss: Tensor<1>,
    /// Logits `[N, K]` of the inputs trained on.
    pub logits: Tensor<2>,
    /// Labels `[N]` of the inputs trained on.
    pub labels: Tensor<1, Int>,
}

/// A model the trainer knows how to train and validate on its batches: every [`Classifier`]
/// on table and image batches, and [`TextLearner`](crate::text::TextLearner) on token
/// batches.
pub trait Learn: Module + burn::module::ModuleDisplay + Send + Sized + 'static {
    /// The loss of `objective` (the plan's, at this batch's eps) on `batch`, its attack
    /// drawing from `rng`.
    fn train_loss(
        &self,
        plan: &Plan,
        objective: &Objective,
        batch: &Batch,
        rng: &mut AttackRng,
    ) -> Trained;

    /// Clean loss and scores of `batch`, and the scores under the validation attack.
    fn validate(&self, plan: &Plan, batch: &Batch) -> ValidOutput;
}

impl<M: Module + Classifier + Send + 'static> Learn for M {
    fn train_loss(
        &self,
        plan: &Plan,
        objective: &Objective,
        batch: &Batch,
        rng: &mut AttackRng,
    ) -> Trained {
        let labels = batch.labels.clone();
        match batch.inputs.clone() {
            Inputs::Table(x) => train_on(self, plan, objective, x, labels, batch, rng),
            Inputs::Image(x) => train_on(self, plan, objective, x, labels, batch, rng),
            Inputs::Tokens { .. } => panic!("{}", ARRAYS_ONLY),
        }
    }

    fn validate(&self, plan: &Plan, batch: &Batch) -> ValidOutput {
        let (labels, iteration) = (batch.labels.clone(), batch.iteration);
        match batch.inputs.clone() {
            Inputs::Table(x) => validate_on(self, plan, x, labels, iteration),
            Inputs::Image(x) => validate_on(self, plan, x, labels, iteration),
            Inputs::Tokens { .. } => panic!("{}", ARRAYS_ONLY),
        }
    }
}

/// Why a [`Classifier`] never sees token batches.
const ARRAYS_ONLY: &str =
    "a Classifier reads tables and images; text runs train a TextLearner on token batches";

/// One batch of the objective on inputs of rank `D`; see [`TrainStep::step`].
fn train_on<const D: usize, M: Module + Classifier>(
    model: &M,
    plan: &Plan,
    objective: &Objective,
    inputs: Tensor<D>,
    labels: Tensor<1, Int>,
    batch: &Batch,
    rng: &mut AttackRng,
) -> Trained {
    let supervision = Supervision {
        labels: labels.clone(),
        teacher: plan.companions.teacher.as_ref().map(|t| t.logits(&inputs)),
    };
    let f = |x: Tensor<D>| model.logits(x);
    // Ensemble AT: batch i is attacked on surrogate i mod (k + 1), 0 being the model.
    let surrogates = &plan.companions.surrogates;
    let source = batch.iteration % (surrogates.len() + 1);
    let out = if source == 0 {
        let attack_model = model.valid();
        let attack = |x: Tensor<D>| attack_model.logits(x);
        objective.loss(&f, &attack, inputs, supervision, None, rng)
    } else {
        let surrogate = surrogates[source - 1].beside(&inputs);
        let attack = |x: Tensor<D>| surrogate.logits(x);
        objective.loss(&f, &attack, inputs, supervision, None, rng)
    };
    Trained {
        loss: out.loss,
        logits: out.logits,
        labels,
    }
}

/// Clean and robust validation of a batch of rank `D`; see [`InferenceStep::step`].
fn validate_on<const D: usize, M: Classifier>(
    model: &M,
    plan: &Plan,
    inputs: Tensor<D>,
    labels: Tensor<1, Int>,
    iteration: usize,
) -> ValidOutput {
    let f = |x: Tensor<D>| model.logits(x);
    let logits = f(inputs.clone());
    let loss = cross_entropy(logits.clone(), labels.clone()).mean();
    let mut rng = AttackRng::new(plan.valid_seed ^ iteration as u64);
    let adv = plan
        .valid_attack
        .perturb(&f, inputs, labels.clone(), &mut rng)
        .adversarial;
    ValidOutput {
        loss,
        scores: class_scores(logits),
        robust_scores: class_scores(f(adv)),
        robust_targets: labels.clone(),
        targets: labels,
    }
}

/// A model in training (any [`Learn`]): the weights plus the [`Plan`] of its steps.
#[derive(Module, Debug)]
pub struct Trainee<M: Learn> {
    /// The weights.
    pub model: M,
    /// Objective, validation attack and guards.
    #[module(skip)]
    pub plan: Plan,
}

impl<M: Learn> Trainee<M> {
    /// The objective at this batch's eps (the warm-up's).
    fn objective_at(&self, batch: &Batch) -> Objective {
        let plan = &self.plan;
        if plan.eps_warmup_epochs > 0.0 {
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
        }
    }
}

impl<M: Learn> TrainStep for Trainee<M> {
    type Input = Batch;
    type Output = StepOutput;

    /// One batch of the objective. The attack runs on `model.valid()` (no parameter
    /// gradients); eps follows the warm-up. A non-finite loss records a [`Divergence`] and stops
    /// the run before the epoch's checkpoint is written.
    fn step(&self, batch: Batch) -> TrainOutput<StepOutput> {
        let plan = &self.plan;
        let objective = self.objective_at(&batch);
        let mut rng = AttackRng::new(batch.seed);
        // The device's generator (dropout) starts each batch from the batch's seed, so a
        // resumed run draws the masks the uninterrupted one drew.
        batch
            .labels
            .device()
            .seed(crate::loader::mix(batch.seed, 0xd7));
        let out = self.model.train_loss(plan, &objective, &batch, &mut rng);
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
                targets: out.labels,
            },
        )
    }
}

impl<M: Learn> InferenceStep for Trainee<M> {
    type Input = Batch;
    type Output = ValidOutput;

    /// Clean loss and accuracy, and accuracy under the validation attack at full eps.
    fn step(&self, batch: Batch) -> ValidOutput {
        self.model.validate(&self.plan, &batch)
    }
}
