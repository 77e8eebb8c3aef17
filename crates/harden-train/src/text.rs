//! Text runs: a WordPiece tokenizer trained on the training split, a text model
//! ([`TextModel`]), adversarial training in embedding space (PGD, FreeLB) or on character edits
//! found on the fly (A2T), and an evaluation under the attacks a user can type.
//!
//! A text run directory holds `config.json`, `tokenizer.json` (HF `tokenizers` format),
//! `model.bpk` (the weights of the best validation epoch), `metrics.jsonl` (one line per epoch)
//! and `report.json` ([`TextReport`]).
//!
//! The loop is written here rather than through burn-train's `Learner`, whose data loaders,
//! steps and checkpoint strategy harden wires for array batches: a text batch carries its
//! texts (A2T re-tokenises edited ones), and an epoch ends with one atomic write of the best
//! weights.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use harden_adversarial::loss::{correct, cross_entropy};
use harden_adversarial::text::{
    CharAttack, EmbeddingModel, EmbeddingPgd, FreeLb, HotFlip, TextAttackSummary, TextExample,
    TextOracle, freelb_loss,
};
use harden_adversarial::{AttackRng, ObjectiveKind};
use harden_data::split::{shuffled_indices, stratified_split};
use harden_data::tokenizer::{PAD_ID, UNK_ID};
use harden_data::{TextDataset, TextTokenizer, TokenBatch};
use harden_model::{ModelConfig, TextClassifier, TextModel, TextModelConfig, WeightsFormat};
use serde::{Deserialize, Serialize};

use crate::loader::mix;
use crate::report::BURN_VERSION;
use crate::run_dir::write_json;
use crate::trainer::{Output, RunOptions};
use crate::{TrainConfig, TrainError, optimizer};

/// The settings only text runs have (`[text]` in a configuration file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TextSettings {
    /// WordPiece vocabulary size, special tokens included.
    pub vocab_size: usize,
    /// Longest sequence in tokens; longer texts are truncated.
    pub max_len: usize,
    /// FreeLB: magnitude of the random start (0: start at zero).
    pub init_mag: f64,
    /// FreeLB: radius of the per-sample L2 ball (0: unbounded).
    pub max_norm: f64,
    /// Character attack (and A2T training): edited words per text.
    pub max_words: usize,
    /// Character attack: edits tried per word.
    pub candidates: usize,
    /// Token attack (HotFlip): replaced tokens per text.
    pub max_flips: usize,
    /// A2T: share of each batch also trained on its adversarial texts.
    pub adv_fraction: f64,
    /// Validation texts attacked by the character attack after each epoch of an adversarial
    /// objective, to record its robustness (0: none).
    pub valid_attack_texts: usize,
    /// The TSV columns of the texts and labels (default: `text` and `label`).
    pub columns: harden_data::tsv::Columns,
}

impl Default for TextSettings {
    fn default() -> Self {
        Self {
            vocab_size: 8000,
            max_len: 128,
            init_mag: 0.0,
            max_norm: 0.0,
            max_words: 3,
            candidates: 16,
            max_flips: 3,
            adv_fraction: 0.5,
            valid_attack_texts: 100,
            columns: harden_data::tsv::Columns::default(),
        }
    }
}

/// A [`TextClassifier`] seen by the attacks of harden-adversarial.
pub struct Embedder<'a, M>(pub &'a M);

impl<M: TextClassifier> EmbeddingModel for Embedder<'_, M> {
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.0.embed(ids)
    }

    fn logits_embedded(&self, embeddings: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<2> {
        self.0.logits_embedded(embeddings, pad)
    }

    fn embedding_table(&self) -> Tensor<2> {
        self.0.embedding_table()
    }
}

/// A [`TextClassifier`] and its tokenizer seen from outside: texts in, logits out.
pub struct Oracle<'a, M> {
    /// The model (without autodiff, in evaluation mode).
    pub model: &'a M,
    /// The run's tokenizer.
    pub tokenizer: &'a TextTokenizer,
    /// Truncation length.
    pub max_len: usize,
    /// Where the model lives.
    pub device: Device,
}

impl<M: TextClassifier> TextOracle for Oracle<'_, M> {
    fn logits(&self, texts: &[String]) -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(64) {
            let seqs: Vec<Vec<u32>> = chunk
                .iter()
                .map(|t| self.tokenizer.encode(t, self.max_len))
                .collect();
            let b = TokenBatch::new(&seqs, &self.device);
            let logits = self.model.logits_tokens(b.ids, b.pad);
            let k = logits.dims()[1];
            let values: Vec<f32> = logits
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 logits");
            out.extend(values.chunks(k).map(<[f32]>::to_vec));
        }
        out
    }
}

/// The training, validation and test texts of a run.
#[derive(Debug, Clone)]
pub struct TextData {
    /// Texts trained on (the tokenizer too).
    pub train: TextDataset,
    /// Texts held out of the training split (best epoch).
    pub valid: TextDataset,
    /// The test split.
    pub test: TextDataset,
}

impl TextData {
    /// The dataset `config` names, with a stratified validation split of `valid-samples` (at
    /// most a fifth) held out of its training split.
    ///
    /// # Errors
    ///
    /// [`TrainError::Data`] when the dataset cannot be read or is not text,
    /// [`TrainError::OneClass`] / [`TrainError::TooFewSamples`] for data that cannot train.
    pub fn load(config: &TrainConfig) -> Result<Self, TrainError> {
        let (train, test) = config.dataset.load_text_columns(&config.text.columns)?;
        let name = config.dataset.to_string();
        let first = train.labels().first().copied();
        if train.labels().iter().all(|&l| Some(l) == first) {
            return Err(TrainError::OneClass { dataset: name });
        }
        let n = train.len();
        let n_valid = config.valid_samples.min(n / 5).max(1);
        let (train_idx, valid_idx) = stratified_split(
            train.labels(),
            n_valid as f64 / n as f64,
            mix(config.seed, 1),
        )?;
        if train_idx.is_empty() || valid_idx.is_empty() {
            return Err(TrainError::TooFewSamples {
                dataset: name,
                samples: n,
            });
        }
        Ok(Self {
            valid: train.subset(&valid_idx),
            train: train.subset(&train_idx),
            test,
        })
    }
}

/// One epoch of a text run, a line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextEpoch {
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy on the (possibly perturbed) inputs trained on.
    pub train_accuracy: f64,
    /// Clean validation accuracy.
    pub valid_accuracy: f64,
    /// Validation accuracy under the character attack (adversarial objectives only).
    pub valid_robust_accuracy: Option<f64>,
    /// Training seconds.
    pub seconds: f64,
    /// Training sentences per second.
    pub sentences_per_second: f64,
}

/// Robust accuracy under embedding PGD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRobustness {
    /// Per-token L2 radius.
    pub eps: f64,
    /// Steps.
    pub steps: usize,
    /// Accuracy when every iterate must be classified correctly.
    pub robust_accuracy: f64,
}

/// The evaluation of a text model on test texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextEvaluation {
    /// Texts evaluated (the first ones of the test split).
    pub samples: usize,
    /// Clean accuracy.
    pub clean_accuracy: f64,
    /// Embedding PGD at the run's `eps` (none when it is 0): the white-box upper bound of
    /// the embedding threat model, not a claim about text a user can type.
    pub embedding_pgd_white_box_bound: Option<EmbeddingRobustness>,
    /// The attacks on tokens and characters, in TextAttack's summary.
    pub attacks: Vec<TextAttackSummaryRecord>,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

/// [`TextAttackSummary`] with its budget, as stored in reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextAttackSummaryRecord {
    /// The attack: `deepwordbug` (characters) or `hotflip` (tokens).
    pub attack: String,
    /// The budget, in words.
    pub budget: String,
    /// Texts attacked.
    pub texts: usize,
    /// Clean accuracy.
    pub clean_accuracy: f64,
    /// Accuracy under the attack.
    pub accuracy_under_attack: f64,
    /// Successes over texts classified correctly.
    pub success_rate: f64,
    /// Mean share of words changed in successful attacks, percent.
    pub words_changed_percent: f64,
    /// Mean queries per attacked text.
    pub queries_per_text: f64,
}

impl TextAttackSummaryRecord {
    fn new(s: &TextAttackSummary, budget: String) -> Self {
        Self {
            attack: s.attack.clone(),
            budget,
            texts: s.texts,
            clean_accuracy: s.clean_accuracy,
            accuracy_under_attack: s.accuracy_under_attack,
            success_rate: s.success_rate,
            words_changed_percent: s.words_changed_percent,
            queries_per_text: s.queries_per_text,
        }
    }
}

/// Everything a text run's `report.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextReport {
    /// harden's version.
    pub harden_version: String,
    /// burn's version.
    pub burn_version: String,
    /// The configuration.
    pub config: TrainConfig,
    /// The device trained on.
    pub device: String,
    /// Tokens in the vocabulary learned.
    pub vocab_size: usize,
    /// Parameters of the model.
    pub parameters: usize,
    /// Training texts.
    pub train_samples: usize,
    /// Validation texts.
    pub valid_samples: usize,
    /// The epoch with the best clean validation accuracy (its weights are `model.bpk`).
    pub best_epoch: usize,
    /// Every epoch.
    pub epochs: Vec<TextEpoch>,
    /// Training seconds over all epochs.
    pub train_seconds: f64,
    /// The final evaluation on the test split.
    pub evaluation: TextEvaluation,
}

/// The checked values of a text run.
fn check(config: &TrainConfig) -> Result<(), TrainError> {
    use harden_adversarial::error::{
        ParamError, check_at_least_one, check_finite_non_negative, check_finite_positive,
    };
    let t = &config.text;
    check_at_least_one("epochs", config.epochs)?;
    check_at_least_one("batch-size", config.batch_size)?;
    check_at_least_one("max-len", t.max_len)?;
    check_at_least_one("steps", config.steps)?;
    check_finite_positive("lr", config.lr)?;
    check_finite_non_negative("eps", config.eps)?;
    check_finite_non_negative("weight-decay", config.weight_decay)?;
    check_finite_non_negative("init-mag", t.init_mag)?;
    check_finite_non_negative("max-norm", t.max_norm)?;
    if let Some(a) = config.alpha {
        check_finite_positive("alpha", a)?;
    }
    if !(t.adv_fraction > 0.0 && t.adv_fraction <= 1.0) {
        return Err(ParamError {
            name: "adv-fraction",
            value: t.adv_fraction.to_string(),
            expected: "a number in (0, 1]",
        }
        .into());
    }
    CharAttack::new(t.max_words, t.candidates)?;
    HotFlip::new(t.max_flips)?;
    if matches!(
        config.objective,
        ObjectiveKind::FgsmRs | ObjectiveKind::Trades
    ) {
        return Err(ParamError {
            name: "objective",
            value: config.objective.name(),
            expected: "clean, pgd (on token embeddings), freelb or a2t for a text model",
        }
        .into());
    }
    Ok(())
}

/// The step of embedding attacks: `alpha`, else 2.5 eps / steps; for FreeLB `alpha`, else
/// 0.01. FreeLB's 0.1 was set for BERT's embeddings, about ten times longer per token than
/// harden's (N(0, 0.02) at width 64: 0.16); at 0.1 a harden Transformer stays at chance for
/// epochs.
fn adv_step(config: &TrainConfig) -> f64 {
    match (config.alpha, config.objective) {
        (Some(a), _) => a,
        (None, ObjectiveKind::Freelb) => 0.01,
        (None, _) => 2.5 * config.eps / config.steps as f64,
    }
}

fn labels_tensor(labels: &[u32], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(
            labels.iter().map(|&l| i64::from(l)).collect(),
            [labels.len()],
        ),
        device,
    )
}

/// Fraction of `labels` that `logits` classify correctly, as a count.
fn count_correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> usize {
    correct(logits, labels).int().sum().into_scalar::<i64>() as usize
}

/// Accuracy of `model` on `seqs`.
fn accuracy<M: TextClassifier>(
    model: &M,
    seqs: &[Vec<u32>],
    labels: &[u32],
    batch_size: usize,
    device: &Device,
) -> f64 {
    let mut right = 0;
    for (s, l) in seqs.chunks(batch_size).zip(labels.chunks(batch_size)) {
        let b = TokenBatch::new(s, device);
        right += count_correct(model.logits_tokens(b.ids, b.pad), labels_tensor(l, device));
    }
    right as f64 / seqs.len().max(1) as f64
}

/// The text model `config` asks for, sized for `vocab_size` tokens and `classes` classes.
///
/// # Errors
///
/// [`TrainError::Model`] for a model that does not read text or bad sizes.
pub fn model_config(
    config: &TrainConfig,
    vocab_size: usize,
    classes: usize,
) -> Result<TextModelConfig, TrainError> {
    Ok(config.model.text_config(
        vocab_size,
        config.text.max_len,
        ModelConfig::outputs_for_classes(classes),
    )?)
}

/// Trains the text model `config` describes, writing the run directory `options.out`.
///
/// # Errors
///
/// [`TrainError`] for bad settings, data or model; an existing non-empty `out`; a resume
/// (text runs cannot be resumed yet); a diverged loss; or an I/O failure.
pub fn train_text(config: &TrainConfig, options: &RunOptions) -> Result<TextReport, TrainError> {
    check(config)?;
    if options.resume {
        return Err(TrainError::Resume {
            dir: options.out.clone(),
            message: "text runs cannot be resumed; start a new run".to_string(),
        });
    }
    if options.devices.len() > 1 {
        return Err(TrainError::Distributed {
            reason: "text runs train on one device".to_string(),
        });
    }
    let device = options.device()?.clone();
    let data = TextData::load(config)?;
    // Validate the model before anything is written.
    model_config(config, config.text.vocab_size, data.train.num_classes())?;
    let dir = crate::run_dir::RunDir::create(&options.out, config)?;
    let out = dir.path().to_path_buf();

    let tokenizer = TextTokenizer::train(data.train.texts(), config.text.vocab_size)?;
    tokenizer.save(&out.join("tokenizer.json"))?;
    let model_config = model_config(config, tokenizer.vocab_size(), data.train.num_classes())?;
    write_json(&out.join("model.json"), &model_config)?;

    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let mut model = model_config.init(&train_device);
    let parameters = model.num_params();
    let mut optim = optimizer::build(config);
    let max_len = config.text.max_len;
    let encode = |d: &TextDataset| -> Vec<Vec<u32>> {
        d.texts()
            .iter()
            .map(|t| tokenizer.encode(t, max_len))
            .collect()
    };
    let train_seqs = encode(&data.train);
    let valid_seqs = encode(&data.valid);
    let step = adv_step(config);
    let pgd = EmbeddingPgd::new(config.eps, config.steps, step, true)?;
    let freelb = FreeLb::new(
        config.steps,
        step,
        config.text.init_mag,
        config.text.max_norm,
    )?;
    let chars =
        CharAttack::new(config.text.max_words, config.text.candidates)?.with_word_limit(max_len);

    let batches = train_seqs.len().div_ceil(config.batch_size);
    let mut epochs: Vec<TextEpoch> = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    let metrics = out.join("metrics.jsonl");
    let progress = options.output == Output::Progress;
    for epoch in 1..=config.epochs {
        let start = Instant::now();
        let order = shuffled_indices(train_seqs.len(), mix(config.seed, epoch as u64));
        let (mut loss_sum, mut right, mut seen) = (0.0, 0usize, 0usize);
        for (b, chunk) in order.chunks(config.batch_size).enumerate() {
            let mut rng = AttackRng::new(mix(config.seed ^ 0x7e47, (epoch << 32 | b) as u64));
            let labels: Vec<u32> = chunk.iter().map(|&i| data.train.labels()[i]).collect();
            let mut seqs: Vec<Vec<u32>> = chunk.iter().map(|&i| train_seqs[i].clone()).collect();
            let mut labels = labels;
            if config.objective == ObjectiveKind::A2t {
                // The batch grows by adversarial versions of its first texts, found by the
                // character attack against the current weights.
                let attack_model = model.valid();
                let oracle = Oracle {
                    model: &attack_model,
                    tokenizer: &tokenizer,
                    max_len,
                    device: device.clone(),
                };
                let n_adv = ((chunk.len() as f64) * config.text.adv_fraction).ceil() as usize;
                for (k, &i) in chunk.iter().take(n_adv).enumerate() {
                    let ex = chars.attack(&oracle, &data.train.texts()[i], labels[k], &mut rng);
                    seqs.push(tokenizer.encode(&ex.adversarial, max_len));
                    labels.push(labels[k]);
                }
            }
            let batch = TokenBatch::new(&seqs, &train_device);
            let y = labels_tensor(&labels, &train_device);
            let (loss, logits) = match config.objective {
                ObjectiveKind::Clean | ObjectiveKind::A2t => {
                    let logits = model.logits_tokens(batch.ids, batch.pad);
                    (cross_entropy(logits.clone(), y.clone()).mean(), logits)
                }
                ObjectiveKind::Freelb | ObjectiveKind::Pgd => {
                    // The perturbations are found on the weights without autodiff, in
                    // evaluation mode; the loss is then taken on the training weights.
                    let attack_model = model.valid();
                    let attack_pad = batch.pad.clone().without_autodiff();
                    let emb = attack_model.embed(batch.ids.clone().without_autodiff());
                    let target = y.clone().without_autodiff();
                    let attacked = Embedder(&attack_model);
                    let deltas = if config.objective == ObjectiveKind::Pgd {
                        vec![pgd.perturb(&attacked, emb, attack_pad, target, &mut rng).0]
                    } else {
                        freelb.perturbations(&attacked, emb, attack_pad, target, &mut rng)
                    };
                    let emb = model.embed(batch.ids);
                    freelb_loss(&Embedder(&model), emb, &deltas, batch.pad, y.clone())
                }
                other => unreachable!("{other:?} refused by check"),
            };
            seen += labels.len();
            let at = (epoch, (epoch - 1) * batches + b + 1);
            (model, loss_sum, right) = apply(
                model, &mut optim, config.lr, loss, logits, y, loss_sum, right, at,
            )?;
        }
        let seconds = start.elapsed().as_secs_f64();
        let valid_model = model.valid();
        let valid_accuracy = accuracy(
            &valid_model,
            &valid_seqs,
            data.valid.labels(),
            config.batch_size.max(64),
            &device,
        );
        // Accuracy under the character attack on the first validation texts, recorded to show
        // how robustness develops. The best epoch is still chosen by clean accuracy: a model
        // that predicts one class for everything cannot be flipped, so robust accuracy alone
        // would prefer an untrained epoch.
        let valid_robust_accuracy = (config.objective != ObjectiveKind::Clean
            && config.text.valid_attack_texts > 0)
            .then(|| {
                let oracle = Oracle {
                    model: &valid_model,
                    tokenizer: &tokenizer,
                    max_len,
                    device: device.clone(),
                };
                let mut rng = AttackRng::new(mix(config.seed, 2));
                let n = config.text.valid_attack_texts.min(data.valid.len());
                let held = (0..n)
                    .filter(|&i| {
                        let (text, label) = (&data.valid.texts()[i], data.valid.labels()[i]);
                        let ex = chars.attack(&oracle, text, label, &mut rng);
                        ex.clean_correct && !ex.success
                    })
                    .count();
                held as f64 / n.max(1) as f64
            });
        let record = TextEpoch {
            epoch,
            train_loss: loss_sum / order.len().div_ceil(config.batch_size) as f64,
            train_accuracy: right as f64 / seen.max(1) as f64,
            valid_accuracy,
            valid_robust_accuracy,
            seconds,
            sentences_per_second: order.len() as f64 / seconds.max(1e-9),
        };
        if progress {
            eprintln!(
                "epoch {epoch}/{}: loss {:.4}, train acc {:.2}%, valid acc {:.2}%{} ({:.1} s, {:.0} sentences/s)",
                config.epochs,
                record.train_loss,
                100.0 * record.train_accuracy,
                100.0 * valid_accuracy,
                valid_robust_accuracy.map_or_else(String::new, |r| format!(
                    ", under the character attack {:.2}%",
                    100.0 * r
                )),
                seconds,
                record.sentences_per_second
            );
        }
        if best.is_none_or(|(_, b)| valid_accuracy > b) {
            best = Some((epoch, valid_accuracy));
            harden_model::store::save_module(
                &valid_model,
                &[],
                &out.join("model.bpk"),
                WeightsFormat::Burnpack,
            )?;
        }
        epochs.push(record);
        let lines: String = epochs
            .iter()
            .map(|e| serde_json::to_string(e).expect("serialisable") + "\n")
            .collect();
        harden_data::atomic::write_bytes(&metrics, lines.as_bytes())
            .map_err(|e| TrainError::io(&metrics, e))?;
    }
    let (best_epoch, _) = best.expect("at least one epoch");
    let best_model =
        harden_model::store::load_module(model_config.init(&device), &[], &out.join("model.bpk"))?;
    let evaluation = evaluate_text(
        &best_model,
        &tokenizer,
        &data.test,
        config,
        config.eval_samples.unwrap_or(data.test.len()),
        &device,
    )
    .0;
    let report = TextReport {
        harden_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: BURN_VERSION.to_string(),
        config: config.clone(),
        device: format!("{device:?}"),
        vocab_size: tokenizer.vocab_size(),
        parameters,
        train_samples: data.train.len(),
        valid_samples: data.valid.len(),
        best_epoch,
        train_seconds: epochs.iter().map(|e| e.seconds).sum(),
        epochs,
        evaluation,
    };
    write_json(&out.join("report.json"), &report)?;
    Ok(report)
}

/// One optimizer step on `loss`; returns the model and the running loss and correct counts.
/// `at` is the (epoch, iteration) named if the loss is not finite.
#[allow(clippy::too_many_arguments)]
fn apply(
    model: TextModel,
    optim: &mut burn::optim::ModuleOptimizer,
    lr: f64,
    loss: Tensor<1>,
    logits: Tensor<2>,
    labels: Tensor<1, Int>,
    loss_sum: f64,
    right: usize,
    (epoch, iteration): (usize, usize),
) -> Result<(TextModel, f64, usize), TrainError> {
    let value: f64 = loss.clone().into_scalar::<f32>().into();
    if !value.is_finite() {
        return Err(TrainError::Diverged {
            value: value.to_string(),
            epoch,
            iteration,
            kept: if epoch > 1 {
                "model.bpk in the run directory holds the best epoch before it".to_string()
            } else {
                "no epoch had completed, so no weights were written".to_string()
            },
        });
    }
    let right = right + count_correct(logits.detach(), labels);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    Ok((optim.step(lr, model, grads), loss_sum + value, right))
}

/// Evaluates `model` on the first `samples` texts of `data`: clean accuracy, embedding PGD
/// (white-box bound), HotFlip on tokens and DeepWordBug on characters at the budgets of
/// `config`. Returns the evaluation and each attack's examples.
pub fn evaluate_text<M: TextClassifier>(
    model: &M,
    tokenizer: &TextTokenizer,
    data: &TextDataset,
    config: &TrainConfig,
    samples: usize,
    device: &Device,
) -> (TextEvaluation, Vec<(String, Vec<TextExample>)>) {
    let start = Instant::now();
    let t = &config.text;
    let n = samples.min(data.len());
    let texts = &data.texts()[..n];
    let labels = &data.labels()[..n];
    let seqs: Vec<Vec<u32>> = texts
        .iter()
        .map(|s| tokenizer.encode(s, t.max_len))
        .collect();
    let clean_accuracy = accuracy(model, &seqs, labels, 64, device);

    // Embedding PGD at the run's eps; the attacks differentiate with respect to their inputs
    // only (the weights carry no autodiff).
    let steps = config.eval_steps.max(1);
    let embedding = (config.eps > 0.0).then(|| {
        let eps = config.eps;
        let pgd =
            EmbeddingPgd::new(eps, steps, 2.5 * eps / steps as f64, true).expect("checked values");
        let mut rng = AttackRng::new(mix(config.seed, 3));
        let mut robust = 0;
        for (s, l) in seqs.chunks(32).zip(labels.chunks(32)) {
            let b = TokenBatch::new(s, device);
            let emb = model.embed(b.ids);
            let y = labels_tensor(l, device);
            let (_, ok) = pgd.perturb(&Embedder(model), emb, b.pad, y, &mut rng);
            robust += ok.int().sum().into_scalar::<i64>() as usize;
        }
        EmbeddingRobustness {
            eps,
            steps,
            robust_accuracy: robust as f64 / n.max(1) as f64,
        }
    });

    // HotFlip on tokens.
    let hotflip = HotFlip::new(t.max_flips).expect("checked");
    let mut flip_examples = Vec::with_capacity(n);
    for (k, (s, l)) in seqs.chunks(16).zip(labels.chunks(16)).enumerate() {
        for (j, f) in hotflip
            .attack(&Embedder(model), s, l, &[PAD_ID, UNK_ID], device)
            .into_iter()
            .enumerate()
        {
            let i = k * 16 + j;
            flip_examples.push(TextExample {
                original: texts[i].clone(),
                adversarial: tokenizer.decode(&f.ids),
                label: labels[i],
                clean_correct: f.clean_correct,
                success: f.success,
                words_changed: f.flips.len(),
                words_total: f.ids.len(),
                queries: f.queries,
                edits: f
                    .flips
                    .iter()
                    .map(|&(_, a, b)| {
                        (
                            tokenizer.token(a).unwrap_or_default(),
                            tokenizer.token(b).unwrap_or_default(),
                        )
                    })
                    .collect(),
            });
        }
    }

    // DeepWordBug on characters.
    let chars = CharAttack::new(t.max_words, t.candidates)
        .expect("checked")
        .with_word_limit(t.max_len);
    let oracle = Oracle {
        model,
        tokenizer,
        max_len: t.max_len,
        device: device.clone(),
    };
    let mut rng = AttackRng::new(mix(config.seed, 4));
    let char_examples: Vec<TextExample> = texts
        .iter()
        .zip(labels)
        .map(|(s, &l)| chars.attack(&oracle, s, l, &mut rng))
        .collect();

    let summaries = vec![
        TextAttackSummaryRecord::new(
            &TextAttackSummary::of("deepwordbug", &char_examples),
            format!("{} words", t.max_words),
        ),
        TextAttackSummaryRecord::new(
            &TextAttackSummary::of("hotflip", &flip_examples),
            format!("{} tokens", t.max_flips),
        ),
    ];
    (
        TextEvaluation {
            samples: n,
            clean_accuracy,
            embedding_pgd_white_box_bound: embedding,
            attacks: summaries,
            seconds: start.elapsed().as_secs_f64(),
        },
        vec![
            ("deepwordbug".to_string(), char_examples),
            ("hotflip".to_string(), flip_examples),
        ],
    )
}

/// A trained text run read back: its configuration, tokenizer and best weights on `device`.
///
/// # Errors
///
/// [`TrainError::NotARun`] when the folder lacks a file of a text run; the store's and the
/// tokenizer's errors for unreadable files.
pub fn load_text_run(
    dir: &Path,
    device: &Device,
) -> Result<(TrainConfig, TextTokenizer, TextModel), TrainError> {
    let config = crate::run_dir::run_config(dir)?;
    let need = |name: &str| -> Result<PathBuf, TrainError> {
        let p = dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(TrainError::NotARun {
                dir: dir.to_path_buf(),
                message: format!(
                    "{name} is missing (a text run holds config.json, tokenizer.json, model.json and model.bpk)"
                ),
            })
        }
    };
    let tokenizer = TextTokenizer::load(&need("tokenizer.json")?)?;
    let model_path = need("model.json")?;
    let model_config: TextModelConfig = serde_json::from_str(
        &std::fs::read_to_string(&model_path).map_err(|e| TrainError::io(&model_path, e))?,
    )
    .map_err(|e| TrainError::NotARun {
        dir: dir.to_path_buf(),
        message: format!("{}: {e}", model_path.display()),
    })?;
    model_config.check()?;
    let model =
        harden_model::store::load_module(model_config.init(device), &[], &need("model.bpk")?)?;
    Ok((config, tokenizer, model))
}
