//! The training loop of a text run.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use harden_adversarial::loss::{correct, cross_entropy};
use harden_adversarial::text::{
    CharAttack, EmbeddingPgd, FreeLb, OneStepL2, TextOracle, freelb_loss, keep_mask,
};
use harden_adversarial::{AttackRng, ObjectiveKind, Supervision};
use harden_data::spelling::WordRecognizer;
use harden_data::split::shuffled_indices;
use harden_data::{TextDataset, TextTokenizer, TokenBatch};
use harden_model::store::{load_module, save_module};
use harden_model::{TextClassifier, TextModel, WeightsFormat, lora};

use super::{
    Embedder, Oracle, TextData, TextEpoch, TextReport, TextRunFiles, WORDS, check, distillation,
    evaluate_text, load_companion, model_config, read_companion, read_text_run,
};
use crate::loader::mix;
use crate::report::BURN_VERSION;
use crate::run_dir::write_json;
use crate::trainer::{Output, RunOptions};
use crate::{TrainConfig, TrainError, optimizer};

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

pub(crate) fn labels_tensor(labels: &[u32], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(
            labels.iter().map(|&l| i64::from(l)).collect(),
            [labels.len()],
        ),
        device,
    )
}

/// How often each of the `vocab` token ids occurs in `seqs`, as frequencies summing to 1
/// (uniform when `seqs` holds no token).
///
/// # Shapes
///
/// - output: `[vocab]`.
fn token_frequencies(seqs: &[Vec<u32>], vocab: usize, device: &Device) -> Tensor<1> {
    let mut counts = vec![0.0f32; vocab];
    for &id in seqs.iter().flatten() {
        if let Some(c) = counts.get_mut(id as usize) {
            *c += 1.0;
        }
    }
    let total: f32 = counts.iter().sum();
    if total > 0.0 {
        counts.iter_mut().for_each(|c| *c /= total);
    } else {
        counts.fill(1.0 / vocab.max(1) as f32);
    }
    Tensor::from_data(TensorData::new(counts, [vocab]), device)
}

/// Fraction of `labels` that `logits` classify correctly, as a count.
fn count_correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> usize {
    correct(logits, labels).int().sum().into_scalar::<i64>() as usize
}

/// Accuracy of `model` on `seqs`.
pub(crate) fn accuracy<M: TextClassifier>(
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

/// The teacher run of `ard` or `rslad` ([`read_companion`]) and its model on `device`; the
/// teacher must also read texts at least as long as the student and, when the student starts
/// from `start`, tokenise as it does.
fn read_teacher(
    path: &std::path::Path,
    config: &TrainConfig,
    start: Option<&TextRunFiles>,
    data: &TextData,
    device: &Device,
) -> Result<(TextRunFiles, TextModel), TrainError> {
    let (teacher, refuse) = read_companion("teacher", path, data.train.num_classes())?;
    if teacher.config.text.max_len < config.text.max_len {
        return Err(refuse(format!(
            "the teacher reads at most {} tokens, the student {} (--max-len)",
            teacher.config.text.max_len, config.text.max_len
        )));
    }
    if let Some(s) = start {
        let (a, b) = (&s.tokenizer, &teacher.tokenizer);
        let same = a.vocab_size() == b.vocab_size()
            && (0..a.vocab_size() as u32).all(|id| a.token(id) == b.token(id));
        if !same {
            return Err(refuse(
                "the teacher's tokenizer differs from the --init run's; a student reads the tokens its teacher reads".to_string(),
            ));
        }
    }
    let model = load_module(teacher.model.init(device), &[], &teacher.weights)?;
    Ok((teacher, model))
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
    // The run it starts from, read through the same reader as `harden eval`.
    let start = match &config.init {
        Some(init) => Some(read_text_run(&init.path).map_err(|e| TrainError::Saved {
            what: "init",
            path: init.path.clone(),
            message: e.to_string(),
        })?),
        None => None,
    };
    let (teacher_run, teacher) = match &config.teacher {
        Some(t) => {
            let (run, model) = read_teacher(&t.path, config, start.as_ref(), &data, &device)?;
            (Some(run), Some(model))
        }
        None => (None, None),
    };
    // Ensemble AT's static surrogates: text runs, each read through its own tokenizer.
    let classes = data.train.num_classes();
    let surrogate_runs = config
        .surrogates
        .iter()
        .map(|s| load_companion("surrogates", &s.path, classes, &device))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = crate::run_dir::RunDir::create(&options.out, config)?;
    let out = dir.path().to_path_buf();

    // A student reads the tokens its teacher reads.
    let tokenizer = match (&start, &teacher_run) {
        (Some(s), _) => s.tokenizer.clone(),
        (None, Some(t)) => t.tokenizer.clone(),
        (None, None) => TextTokenizer::train(data.train.texts(), config.text.vocab_size)?,
    };
    tokenizer.save(&out.join("tokenizer.json"))?;
    // The words of this run's training split; every training text passes through unchanged.
    let recognizer = config
        .text
        .word_recognition
        .map(|backoff| WordRecognizer::fit(data.train.texts(), backoff, config.text.max_len));
    if let Some(r) = &recognizer {
        r.save(&out.join(WORDS))?;
    }
    let tokenizer = tokenizer.with_recognizer(recognizer);
    let model_config = match &start {
        Some(s) => s.model.clone(),
        None => model_config(config, tokenizer.vocab_size(), data.train.num_classes())?,
    };
    write_json(&out.join("model.json"), &model_config)?;

    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let mut model = model_config.init(&train_device);
    if let Some(s) = &start {
        model = load_module(model, &[], &s.weights)?;
    }
    if let Some(spec) = &config.lora {
        model = lora::attach(model, spec)?;
    }
    let distillation = distillation(config)?;
    let surrogates: Vec<Oracle<'_, TextModel>> = surrogate_runs
        .iter()
        .map(|(c, tokenizer, model)| Oracle {
            model,
            tokenizer,
            max_len: c.text.max_len,
            device: device.clone(),
        })
        .collect();
    let count = lora::count(&model);
    let parameters = count.total - count.adapter;
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
    let one_step = OneStepL2::new(config.eps)?;
    // Miyato et al. normalise the embeddings with the frequencies of the training tokens.
    let frequencies = (config.objective == ObjectiveKind::Miyato)
        .then(|| token_frequencies(&train_seqs, model_config.vocab_size(), &device));

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
            if matches!(
                config.objective,
                ObjectiveKind::A2t | ObjectiveKind::EnsembleAt
            ) {
                // The batch grows by adversarial versions of its first texts, found by the
                // character attack against the current weights (A2T), or for ensemble AT
                // against the model and each surrogate in turn, batch by batch.
                let attack_model = model.valid();
                let own = Oracle {
                    model: &attack_model,
                    tokenizer: &tokenizer,
                    max_len,
                    device: device.clone(),
                };
                let source: &dyn TextOracle = match b % (surrogates.len() + 1) {
                    0 => &own,
                    k => &surrogates[k - 1],
                };
                let n_adv = ((chunk.len() as f64) * config.text.adv_fraction).ceil() as usize;
                for (k, &i) in chunk.iter().take(n_adv).enumerate() {
                    let ex = chars.attack(source, &data.train.texts()[i], labels[k], &mut rng);
                    seqs.push(tokenizer.encode(&ex.adversarial, max_len));
                    labels.push(labels[k]);
                }
            }
            let batch = TokenBatch::new(&seqs, &train_device);
            let y = labels_tensor(&labels, &train_device);
            let (loss, logits) = match config.objective {
                ObjectiveKind::Clean | ObjectiveKind::A2t | ObjectiveKind::EnsembleAt => {
                    let logits = model.logits_tokens(batch.ids, batch.pad);
                    (cross_entropy(logits.clone(), y.clone()).mean(), logits)
                }
                ObjectiveKind::Freelb | ObjectiveKind::Pgd | ObjectiveKind::Miyato => {
                    // The perturbations are found on the weights without autodiff, in
                    // evaluation mode; the loss is then taken on the training weights.
                    let attack_model = model.valid();
                    let attack_pad = batch.pad.clone().without_autodiff();
                    let emb = attack_model.embed(batch.ids.clone().without_autodiff());
                    let target = y.clone().without_autodiff();
                    let attacked = Embedder(&attack_model);
                    let deltas = match config.objective {
                        ObjectiveKind::Pgd => {
                            vec![pgd.perturb(&attacked, emb, attack_pad, target, &mut rng).0]
                        }
                        ObjectiveKind::Miyato => {
                            let frequencies = frequencies.clone().expect("computed for miyato");
                            let scale =
                                OneStepL2::scale(attack_model.embedding_table(), frequencies);
                            let delta = one_step.perturb(&attacked, emb, attack_pad, target, scale);
                            // The paper's loss is the clean plus the adversarial cross-entropy;
                            // harden takes their mean (the same gradient at half the learning
                            // rate).
                            vec![delta.zeros_like(), delta]
                        }
                        _ => freelb.perturbations(&attacked, emb, attack_pad, target, &mut rng),
                    };
                    let emb = model.embed(batch.ids);
                    freelb_loss(&Embedder(&model), emb, &deltas, batch.pad, y.clone())
                }
                ObjectiveKind::Ard | ObjectiveKind::Rslad => {
                    let objective = distillation.as_ref().expect("built for ard and rslad");
                    let teacher = teacher.as_ref().expect("loaded for ard and rslad");
                    let (ids, pad) = (batch.ids.clone(), batch.pad.clone());
                    let attack_pad = pad.clone().without_autodiff();
                    let taught =
                        teacher.logits_tokens(ids.clone().without_autodiff(), attack_pad.clone());
                    let attack_model = model.valid();
                    let attacked =
                        |e: Tensor<3>| attack_model.logits_embedded(e, attack_pad.clone());
                    // The objective hands the model its clean and perturbed embeddings as new
                    // leaves; adding the perturbation to the looked-up embeddings sends the
                    // gradient on to the embedding table.
                    let emb = model.embed(ids);
                    let student = |e: Tensor<3>| {
                        let delta = (e - emb.clone()).detach();
                        model.logits_embedded(emb.clone() + delta, pad.clone())
                    };
                    let supervision = Supervision {
                        labels: y.clone(),
                        teacher: Some(taught),
                    };
                    let keep = keep_mask(attack_pad.clone());
                    let out = objective.loss(
                        &student,
                        &attacked,
                        emb.clone(),
                        supervision,
                        Some(keep),
                        &mut rng,
                    );
                    (out.loss, out.logits)
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
            // A LoRA run keeps the merged weights, and the adapters alone beside them.
            let plain = match &config.lora {
                Some(spec) => {
                    lora::save_adapters(&valid_model, spec, &out.join("adapters.bpk"))?;
                    lora::export_peft(&valid_model, spec, &[], &out.join("adapters"))?;
                    lora::merge(&valid_model)
                }
                None => valid_model.clone(),
            };
            save_module(&plain, &[], &out.join("model.bpk"), WeightsFormat::Burnpack)?;
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
    let best_model = load_module(model_config.init(&device), &[], &out.join("model.bpk"))?;
    // The same weights for PyTorch: burn's names, linear weights in PyTorch's layout.
    save_module(
        &best_model,
        &[],
        &out.join("model.safetensors"),
        WeightsFormat::PytorchSafetensors,
    )?;
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
        trainable_parameters: count.trainable,
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
