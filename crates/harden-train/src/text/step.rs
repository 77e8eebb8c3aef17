//! A text model in the trainer: [`TextLearner`] trains and validates on token batches, with
//! what [`TextKit`] holds besides the weights.

use std::fmt;

use burn::module::Module;
use burn::tensor::{Bool, Device, Int, Tensor};
use harden_adversarial::loss::cross_entropy;
use harden_adversarial::text::{OneStepL2, TextOracle, freelb_loss, keep_mask};
use harden_adversarial::{AttackRng, Objective, ObjectiveKind, Supervision};
use harden_data::{Inputs, TextDataset, TextTokenizer, TokenBatch};
use harden_model::{TextClassifier, TextModel};

use super::{Embedder, Oracle, TextPlan, labels_tensor};
use crate::TrainConfig;
use crate::loader::{Batch, mix};
use crate::metric::{ValidOutput, class_scores};
use crate::schedule::eps_at;
use crate::step::{Learn, Plan, Trained};

/// What the steps of a text run read besides the weights: the tokenizer, the texts (A2T and
/// the validation attack edit them), the attacks and the companion models.
pub struct TextKit {
    /// The run's tokenizer (with its word recognizer, if any).
    pub tokenizer: TextTokenizer,
    /// Truncation length in tokens.
    pub max_len: usize,
    /// The training texts, in the order the loader indexes them.
    pub train: TextDataset,
    /// The validation texts, in the order the loader indexes them.
    pub valid: TextDataset,
    /// The objective's kind (its text-only perturbations are in `plan`).
    pub objective: ObjectiveKind,
    /// The checked text attacks and perturbations.
    pub plan: TextPlan,
    /// A2T and ensemble AT: the share of each batch also trained on its adversarial texts.
    pub adv_fraction: f64,
    /// Validation texts attacked by the character attack each epoch (the first ones).
    pub valid_attack_texts: usize,
    /// The teacher of `ard` and `rslad`, in evaluation mode.
    pub teacher: Option<TextModel>,
    /// Ensemble AT's surrogates: each with its configuration, tokenizer and model.
    pub surrogates: Vec<(TrainConfig, TextTokenizer, TextModel)>,
    /// Miyato: the training tokens' frequencies `[V]`.
    pub frequencies: Option<Tensor<1>>,
}

impl fmt::Debug for TextKit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextKit")
            .field("objective", &self.objective.name())
            .field("max_len", &self.max_len)
            .field("train", &self.train.len())
            .finish_non_exhaustive()
    }
}

/// A text model in training: the trainer's [`Learn`] for any [`TextClassifier`].
#[derive(Module, Debug)]
pub struct TextLearner<M: TextClassifier> {
    /// The weights.
    pub model: M,
}

/// Why a text model never sees array batches.
const TOKENS_ONLY: &str = "a TextLearner reads token batches; tables and images train a Classifier";

/// The token ids and padding of a text batch.
fn tokens(batch: &Batch) -> (Tensor<2, Int>, Tensor<2, Bool>) {
    match batch.inputs.clone() {
        Inputs::Tokens { ids, pad } => (ids, pad),
        _ => panic!("{TOKENS_ONLY}"),
    }
}

fn kit(plan: &Plan) -> &TextKit {
    plan.text
        .as_deref()
        .expect("a text run's plan holds its TextKit")
}

impl<M: TextClassifier + Send + 'static> TextLearner<M> {
    /// The batch grown by adversarial versions of its first texts (`adv-fraction` of them),
    /// found by the character attack against the current weights (A2T) or, for ensemble AT,
    /// against the model and each surrogate in turn, batch by batch.
    fn augment(
        &self,
        kit: &TextKit,
        batch: &Batch,
        device: &Device,
        rng: &mut AttackRng,
    ) -> (Tensor<2, Int>, Tensor<2, Bool>, Tensor<1, Int>) {
        let texts = kit.train.texts();
        let mut labels: Vec<u32> = batch
            .indices
            .iter()
            .map(|&i| kit.train.labels()[i])
            .collect();
        let mut seqs: Vec<Vec<u32>> = batch
            .indices
            .iter()
            .map(|&i| kit.tokenizer.encode(&texts[i], kit.max_len))
            .collect();
        let attack_model = self.model.valid();
        let inner = device.clone().inner();
        let own = Oracle {
            model: &attack_model,
            tokenizer: &kit.tokenizer,
            max_len: kit.max_len,
            device: inner.clone(),
        };
        let surrogates: Vec<Oracle<'_, TextModel>> = kit
            .surrogates
            .iter()
            .map(|(c, tokenizer, model)| Oracle {
                model,
                tokenizer,
                max_len: c.text.max_len,
                device: inner.clone(),
            })
            .collect();
        let source: &dyn TextOracle = match batch.iteration % (surrogates.len() + 1) {
            0 => &own,
            k => &surrogates[k - 1],
        };
        let n_adv = ((batch.indices.len() as f64) * kit.adv_fraction).ceil() as usize;
        for (k, &i) in batch.indices.iter().take(n_adv).enumerate() {
            let ex = kit.plan.chars.attack(source, &texts[i], labels[k], rng);
            seqs.push(kit.tokenizer.encode(&ex.adversarial, kit.max_len));
            labels.push(labels[k]);
        }
        let b = TokenBatch::new(&seqs, device);
        (b.ids, b.pad, labels_tensor(&labels, device))
    }
}

impl<M: TextClassifier + Send + 'static> Learn for TextLearner<M> {
    fn train_loss(
        &self,
        plan: &Plan,
        objective: &Objective,
        batch: &Batch,
        rng: &mut AttackRng,
    ) -> Trained {
        let kit = kit(plan);
        let (ids, pad) = tokens(batch);
        let device = ids.device();
        let (ids, pad, y) = match kit.objective {
            ObjectiveKind::A2t | ObjectiveKind::EnsembleAt => {
                self.augment(kit, batch, &device, rng)
            }
            _ => (ids, pad, batch.labels.clone()),
        };
        let model = &self.model;
        // The perturbations are found on the weights without autodiff, in evaluation mode; the
        // loss is then taken on the training weights.
        let attack_model = model.valid();
        let attack_pad = pad.clone().without_autodiff();
        let target = y.clone().without_autodiff();
        let (loss, logits) = match (kit.objective, &kit.plan.freelb) {
            (ObjectiveKind::Freelb, Some(freelb)) => {
                let emb = attack_model.embed(ids.clone().without_autodiff());
                let deltas =
                    freelb.perturbations(&Embedder(&attack_model), emb, attack_pad, target, rng);
                freelb_loss(&Embedder(model), model.embed(ids), &deltas, pad, y.clone())
            }
            (ObjectiveKind::Miyato, _) => {
                let frequencies = kit.frequencies.clone().expect("computed for miyato");
                let eps = eps_at(
                    plan.eps,
                    plan.eps_warmup_epochs,
                    batch.iteration,
                    plan.iters_per_epoch,
                );
                let one_step = OneStepL2::new(eps).expect("eps in [0, checked eps] is valid");
                let emb = attack_model.embed(ids.clone().without_autodiff());
                let scale = OneStepL2::scale(attack_model.embedding_table(), frequencies);
                let attacked = Embedder(&attack_model);
                let delta = one_step.perturb(&attacked, emb, attack_pad, target, scale);
                // The paper's loss is the clean plus the adversarial cross-entropy; harden
                // takes their mean (the same gradient at half the learning rate).
                let deltas = [delta.zeros_like(), delta];
                freelb_loss(&Embedder(model), model.embed(ids), &deltas, pad, y.clone())
            }
            _ => {
                // Every other objective perturbs the embeddings inside the run's per-token
                // threat model. It hands the model its clean and perturbed embeddings as new
                // leaves; adding the perturbation to the looked-up embeddings sends the
                // gradient on to the embedding table.
                let teacher = kit
                    .teacher
                    .as_ref()
                    .map(|t| t.logits_tokens(ids.clone().without_autodiff(), attack_pad.clone()));
                let attacked = |e: Tensor<3>| attack_model.logits_embedded(e, attack_pad.clone());
                let emb = model.embed(ids);
                let student = |e: Tensor<3>| {
                    let delta = (e - emb.clone()).detach();
                    model.logits_embedded(emb.clone() + delta, pad.clone())
                };
                let supervision = Supervision {
                    labels: y.clone(),
                    teacher,
                };
                let keep = keep_mask(attack_pad.clone());
                let out = objective.loss(
                    &student,
                    &attacked,
                    emb.clone(),
                    supervision,
                    Some(keep),
                    rng,
                );
                (out.loss, out.logits)
            }
        };
        Trained {
            loss,
            logits,
            labels: y,
        }
    }

    /// Clean loss and scores, and the scores of the character attack's texts for the batch's
    /// texts among the first `valid-attack-texts` of the split (each attacked with its own
    /// random stream, so batching does not change them).
    fn validate(&self, plan: &Plan, batch: &Batch) -> ValidOutput {
        let kit = kit(plan);
        let (ids, pad) = tokens(batch);
        let device = ids.device();
        let logits = self.model.logits_tokens(ids, pad);
        let loss = cross_entropy(logits.clone(), batch.labels.clone()).mean();
        let oracle = Oracle {
            model: &self.model,
            tokenizer: &kit.tokenizer,
            max_len: kit.max_len,
            device: device.clone(),
        };
        let (mut seqs, mut labels) = (Vec::new(), Vec::new());
        for &i in batch
            .indices
            .iter()
            .filter(|&&i| i < kit.valid_attack_texts)
        {
            let (text, label) = (&kit.valid.texts()[i], kit.valid.labels()[i]);
            let mut rng = AttackRng::new(mix(plan.valid_seed, i as u64));
            let ex = kit.plan.chars.attack(&oracle, text, label, &mut rng);
            seqs.push(kit.tokenizer.encode(&ex.adversarial, kit.max_len));
            labels.push(label);
        }
        let scores = class_scores(logits);
        let robust_scores = if seqs.is_empty() {
            Tensor::zeros([0, scores.dims()[1]], &device)
        } else {
            let b = TokenBatch::new(&seqs, &device);
            class_scores(self.model.logits_tokens(b.ids, b.pad))
        };
        ValidOutput {
            loss,
            scores,
            robust_scores,
            robust_targets: labels_tensor(&labels, &device),
            targets: batch.labels.clone(),
        }
    }
}
