//! A text run from start to end, through the trainer every run shares: the data, tokenizer
//! and companions are read, then [`launch`] trains a [`TextLearner`] and the best weights
//! are evaluated under the text attacks.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use harden_adversarial::ObjectiveKind;
use harden_adversarial::loss::correct;
use harden_data::spelling::WordRecognizer;
use harden_data::{TextDataset, TextTokenizer, TokenBatch};
use harden_model::store::{load_module, save_module};
use harden_model::{TextClassifier, TextModel, WeightsFormat, lora};

use super::{
    TextData, TextKit, TextLearner, TextReport, TextRunFiles, WORDS, evaluate_text, load_companion,
    model_config, read_companion,
};
use crate::finish::{best_and_last, write_report};
use crate::learner::{Material, ddp, launch};
use crate::loader::EncodedTexts;
use crate::run_dir::{RunDir, write_json};
use crate::saved::Companions;
use crate::trainer::RunOptions;
use crate::{Run, TrainError};

/// Labels as an `[N]` tensor on `device`.
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
        let logits = model.logits_tokens(b.ids, b.pad);
        right += correct(logits, labels_tensor(l, device))
            .int()
            .sum()
            .into_scalar::<i64>() as usize;
    }
    right as f64 / seqs.len().max(1) as f64
}

/// The teacher run of `ard` or `rslad` ([`read_companion`]) and its model on `device`; the
/// teacher must also read texts at least as long as the student and, when the student starts
/// from `start`, tokenise as it does.
fn read_teacher(
    path: &Path,
    run: &Run,
    start: Option<&TextRunFiles>,
    classes: usize,
    device: &Device,
) -> Result<(TextRunFiles, TextModel), TrainError> {
    let config = run.config();
    let (teacher, refuse) = read_companion("teacher", path, classes)?;
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

/// The run a text run starts from (`--init`): a text run of the same model kind and class
/// count, read through the same reader as `harden eval`.
fn read_start(run: &Run, classes: usize) -> Result<Option<TextRunFiles>, TrainError> {
    let Some(init) = &run.config().init else {
        return Ok(None);
    };
    let (start, refuse) = read_companion("init", &init.path, classes)?;
    let (theirs, ours) = (&start.config.model, &run.config().model);
    if theirs != ours {
        return Err(refuse(format!(
            "holds a {} ({theirs:?}) and this run trains {ours:?}: pass the same --model and sizes",
            theirs.kind().name(),
        )));
    }
    Ok(Some(start))
}

/// The tokenizer of the run in `dir`: the one it saved (a resumed run), else the `--init`
/// run's or the teacher's (a student reads its teacher's tokens), else one trained on the
/// training split; with the word recognizer fitted on the training split when asked for.
/// Saved in `dir` before training starts.
fn tokenizer_for(
    run: &Run,
    dir: &RunDir,
    inherited: Option<&TextTokenizer>,
    train: &TextDataset,
) -> Result<TextTokenizer, TrainError> {
    let config = run.config();
    let (tokens, words) = (dir.path().join("tokenizer.json"), dir.path().join(WORDS));
    let tokenizer = match inherited {
        _ if tokens.is_file() => TextTokenizer::load(&tokens)?,
        Some(t) => t.clone(),
        None => TextTokenizer::train(train.texts(), config.text.vocab_size)?,
    };
    tokenizer.save(&tokens)?;
    // The words of this run's training split; every training text passes through unchanged.
    let recognizer = match config.text.word_recognition {
        Some(_) if words.is_file() => Some(WordRecognizer::load(&words)?),
        Some(backoff) => Some(WordRecognizer::fit(
            train.texts(),
            backoff,
            config.text.max_len,
        )),
        None => None,
    };
    if let Some(r) = &recognizer {
        r.save(&words)?;
    }
    Ok(tokenizer.with_recognizer(recognizer))
}

/// Trains the text model `run` describes, writing (or, with `options.resume`, continuing)
/// the run directory `options.out`: the same layout as an image run's, with `tokenizer.json`,
/// `model.json` and, with word recognition, `words.json` beside the weights.
///
/// # Errors
///
/// [`TrainError`] for a run that is not on text, bad data, model, companions or devices; an
/// existing non-empty `out` without `resume`; a diverged loss; or an I/O failure.
pub fn train_text(run: &Run, options: &RunOptions) -> Result<TextReport, TrainError> {
    let config = run.config();
    let Some(plan) = run.text() else {
        return Err(TrainError::Data(harden_data::DataError::InvalidArgument {
            what: "dataset",
            message: format!("{} is not text; train it with `train`", config.dataset),
        }));
    };
    let device = options.device()?.clone();
    // Devices, data, model and companions are checked before anything is written.
    let strategy = if options.devices.len() > 1 {
        Some(ddp(&options.devices)?)
    } else {
        None
    };
    let data = TextData::load(config)?;
    let classes = data.train.num_classes();
    model_config(config, config.text.vocab_size, classes)?;
    let start = read_start(run, classes)?;
    let (teacher_run, teacher) = match &config.teacher {
        Some(t) => {
            let (files, model) = read_teacher(&t.path, run, start.as_ref(), classes, &device)?;
            (Some(files), Some(model.valid()))
        }
        None => (None, None),
    };
    // Ensemble AT's static surrogates: text runs, each read through its own tokenizer.
    let surrogates = config
        .surrogates
        .iter()
        .map(|s| load_companion("surrogates", &s.path, classes, &device))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = if options.resume {
        RunDir::resume(&options.out)?
    } else {
        RunDir::create(&options.out, config)?
    };

    // A failure before the first epoch is complete leaves nothing behind.
    let result = (|| {
        let inherited = start
            .as_ref()
            .or(teacher_run.as_ref())
            .map(|r| &r.tokenizer);
        let tokenizer = tokenizer_for(run, &dir, inherited, &data.train)?;
        let model_config = match &start {
            Some(s) => s.model.clone(),
            None => model_config(config, tokenizer.vocab_size(), classes)?,
        };
        write_json(&dir.path().join("model.json"), &model_config)?;

        let train_device = device.clone().autodiff();
        train_device.seed(config.seed);
        let mut model = model_config.init(&train_device);
        if let Some(s) = &start {
            model = load_module(model, &[], &s.weights)?;
        }
        if let Some(spec) = &config.lora {
            model = lora::attach(model, spec)?;
        }
        let encode = |d: &TextDataset| EncodedTexts {
            seqs: d
                .texts()
                .iter()
                .map(|t| tokenizer.encode(t, config.text.max_len))
                .collect(),
            labels: d.labels().to_vec(),
        };
        let (train, valid) = (encode(&data.train), encode(&data.valid));
        // Miyato et al. normalise the embeddings with the frequencies of the training tokens.
        let frequencies = (config.objective == ObjectiveKind::Miyato)
            .then(|| token_frequencies(&train.seqs, model_config.vocab_size(), &device));
        let kit = TextKit {
            tokenizer: tokenizer.clone(),
            max_len: config.text.max_len,
            train: data.train.clone(),
            valid: data.valid.clone(),
            objective: config.objective,
            plan: plan.clone(),
            adv_fraction: config.text.adv_fraction,
            valid_attack_texts: config.text.valid_attack_texts,
            teacher,
            surrogates,
            frequencies,
        };
        let material = Material {
            train: Arc::new(train),
            valid: Arc::new(valid),
            companions: Companions::default(),
            text: Some(Arc::new(kit)),
        };
        let (trained, history) = launch(
            run,
            &dir,
            material,
            TextLearner { model },
            strategy,
            options,
        )?;

        // The end: the weights of the last and the best epoch, then the evaluation of the best.
        let parameters = trained.plan.parameters;
        let (weights, best, last) = best_and_last(&dir, &history, trained)?;
        let plain = |m: &TextModel| match &config.lora {
            Some(_) => lora::merge(m),
            None => m.valid(),
        };
        save_both(&plain(&last.model), dir.path(), "final")?;
        let eval_model = plain(&best.model);
        save_both(&eval_model, dir.path(), "best")?;
        if let Some(spec) = &config.lora {
            lora::save_adapters(&best.model, spec, &dir.path().join("adapters.bpk"))?;
            lora::export_peft(&best.model, spec, &[], &dir.path().join("adapters"))?;
        }
        harden_data::crash::point("final-evaluation", "");
        let samples = config.eval_samples.unwrap_or(data.test.len());
        let (mut evaluation, _) = evaluate_text(
            &eval_model,
            &tokenizer,
            &data.test,
            config,
            samples,
            &device,
        );
        evaluation.weights = weights;
        let sizes = (data.train.len(), data.valid.len());
        write_report(run, &dir, history, parameters, sizes, options, evaluation)
    })();
    if result.is_err() {
        dir.abandon();
    }
    result
}

/// Saves a text model as `<stem>.bpk` and `<stem>.safetensors` (burn's names, linear weights
/// in PyTorch's layout) in `dir`.
fn save_both(model: &TextModel, dir: &Path, stem: &str) -> Result<(), TrainError> {
    for format in [WeightsFormat::Burnpack, WeightsFormat::PytorchSafetensors] {
        let path = dir.join(format!("{stem}.{}", format.extension()));
        save_module(model, &[], &path, format)?;
    }
    Ok(())
}
