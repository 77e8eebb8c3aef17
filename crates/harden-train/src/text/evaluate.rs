//! The evaluation of a text model under the embedding, token and character attacks.

use std::time::Instant;

use burn::tensor::Device;
use burn::tensor::Tensor;
use harden_adversarial::pgd::default_step_size;
use harden_adversarial::text::{CharAttack, HotFlip, TextAttackSummary, TextExample, keep_mask};
use harden_adversarial::{AttackRng, PgdConfig};
use harden_data::tokenizer::{PAD_ID, UNK_ID};
use harden_data::{TextDataset, TextTokenizer, TokenBatch};
use harden_model::TextClassifier;

use super::run::{accuracy, labels_tensor};
use super::{Embedder, EmbeddingRobustness, Oracle, TextAttackSummaryRecord, TextEvaluation};
use crate::TrainConfig;
use crate::loader::mix;

/// Evaluates `model` on the first `samples` texts of `data`: clean accuracy, embedding PGD
/// (white-box bound), HotFlip on tokens and DeepWordBug on characters at the budgets of
/// `config`. Returns the evaluation and each attack's examples.
///
/// The model is evaluated in evaluation mode (`model.valid()`), whatever mode it comes in: the
/// white-box attacks differentiate through it, and a module in training mode would apply
/// dropout in their forward passes.
pub fn evaluate_text<M: TextClassifier>(
    model: &M,
    tokenizer: &TextTokenizer,
    data: &TextDataset,
    config: &TrainConfig,
    samples: usize,
    device: &Device,
) -> (TextEvaluation, Vec<(String, Vec<TextExample>)>) {
    let start = Instant::now();
    let model = &model.valid();
    let t = &config.text;
    let n = samples.min(data.len());
    let texts = &data.texts()[..n];
    let labels = &data.labels()[..n];
    let seqs: Vec<Vec<u32>> = texts
        .iter()
        .map(|s| tokenizer.encode(s, t.max_len))
        .collect();
    let clean_accuracy = accuracy(model, &seqs, labels, 64, device);

    // PGD on the embeddings inside the run's per-token threat model at its eps, with
    // `eval-restarts` restarts: a text counts as robust only if no point visited fools the
    // model. The attack differentiates with respect to its inputs only (the weights carry no
    // autodiff).
    let steps = config.eval_steps.max(1);
    let embedding = (config.eps > 0.0).then(|| {
        let eps = config.eps;
        let pgd = PgdConfig::new(
            config.threat().expect("a checked eps"),
            steps,
            default_step_size(eps, steps),
        )
        .with_restarts(config.eval_restarts.max(1))
        .check()
        .expect("checked values");
        let mut rng = AttackRng::new(mix(config.seed, 3));
        let mut robust = 0;
        for (s, l) in seqs.chunks(32).zip(labels.chunks(32)) {
            let b = TokenBatch::new(s, device);
            let emb = model.embed(b.ids);
            let y = labels_tensor(l, device);
            let keep = keep_mask(b.pad.clone());
            let f = |e: Tensor<3>| model.logits_embedded(e, b.pad.clone());
            let out = pgd.perturb_masked(&f, emb, y, keep, &mut rng);
            robust += out.success.bool_not().int().sum().into_scalar::<i64>() as usize;
        }
        EmbeddingRobustness {
            norm: config.norm(),
            eps,
            steps,
            restarts: config.eval_restarts.max(1),
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
            weights: String::new(),
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

/// The transfer attack on `target`: DeepWordBug's edits crafted against `surrogate` (another
/// run, with its own tokenizer) on the first `samples` texts of `data`, at the character budget
/// of `config`, judged on `target` ([`CharAttack::transfer`]). The record is named
/// `deepwordbug-transfer`; its success rate is the share of the texts `target` classified
/// correctly that the transferred edits break.
pub fn transfer_text<M: TextClassifier, S: TextClassifier>(
    target: &Oracle<'_, M>,
    surrogate: &Oracle<'_, S>,
    data: &TextDataset,
    config: &TrainConfig,
    samples: usize,
) -> (TextAttackSummaryRecord, Vec<TextExample>) {
    let t = &config.text;
    let n = samples.min(data.len());
    let chars = CharAttack::new(t.max_words, t.candidates)
        .expect("checked")
        .with_word_limit(surrogate.max_len);
    let mut rng = AttackRng::new(mix(config.seed, 5));
    let examples: Vec<TextExample> = data.texts()[..n]
        .iter()
        .zip(&data.labels()[..n])
        .map(|(s, &l)| chars.transfer(target, surrogate, s, l, &mut rng))
        .collect();
    let record = TextAttackSummaryRecord::new(
        &TextAttackSummary::of("deepwordbug-transfer", &examples),
        format!("{} words, crafted on a surrogate", t.max_words),
    );
    (record, examples)
}
