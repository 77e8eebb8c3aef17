//! Text runs on the real sentiment sentences: a Transformer learns, and the attacks a user
//! can type change its predictions within their budgets.

use std::path::Path;

use burn::tensor::Device;
use harden_adversarial::text::{TextOracle, text_margin};
use harden_data::source::DatasetSource;
use harden_data::spelling::Backoff;
use harden_data::testing::data_dir;
use harden_data::{TextDataset, TextTokenizer};
use harden_model::{ModelSpec, TextModel};
use harden_train::text::{Oracle, TextSettings, evaluate_text, load_text_run, transfer_text};
use harden_train::trainer::RunOptions;
use harden_train::{ObjectiveKind, TextReport, TrainConfig, TrainError};

fn options(out: &Path) -> RunOptions {
    RunOptions::quiet(out, Device::flex())
}

/// `config` checked and trained as `options` say.
fn train_text(config: &TrainConfig, options: &RunOptions) -> Result<TextReport, TrainError> {
    config
        .clone()
        .check()
        .and_then(|run| harden_train::train_text(&run, options))
}

/// The text run in `out` read back, with its test split.
fn reload(out: &Path, device: &Device) -> (TrainConfig, TextTokenizer, TextModel, TextDataset) {
    let (config, tokenizer, model) = load_text_run(out, device).unwrap();
    let (_, test) = config
        .dataset
        .load_text_columns(&config.text.columns)
        .unwrap();
    (config, tokenizer, model, test)
}

fn sentiment(data: &Path, objective: ObjectiveKind, epochs: usize) -> TrainConfig {
    TrainConfig {
        dataset: DatasetSource::Tsv(data.join("text/sentiment-labelled-sentences/all.tsv")),
        model: ModelSpec::TextTransformer {
            width: 32,
            layers: 1,
            heads: 2,
            ff: 64,
            dropout: 0.1,
        },
        objective,
        eps: 0.01,
        steps: 2,
        epochs,
        batch_size: 32,
        lr: 2e-3,
        eval_samples: Some(60),
        eval_steps: 5,
        text: TextSettings {
            vocab_size: 3000,
            max_len: 48,
            max_words: 3,
            max_flips: 2,
            valid_attack_texts: 40,
            ..TextSettings::default()
        },
        ..TrainConfig::default()
    }
}

#[test]
fn a_transformer_learns_sentiment_and_typed_attacks_break_it_within_budget() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let config = sentiment(&data, ObjectiveKind::Clean, 6);
    let report = train_text(&config, &options(&out)).unwrap();
    for file in [
        "config.json",
        "tokenizer.json",
        "model.json",
        "best.bpk",
        "best.safetensors",
        "final.bpk",
        "final.safetensors",
        "metrics.jsonl",
        "report.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let best = &report.epochs[report.best_epoch.unwrap() - 1];
    assert!(
        best.valid_accuracy > 0.68,
        "validation accuracy {}",
        best.valid_accuracy
    );

    // The run reads back to the same model and tokenizer.
    let device = Device::flex();
    let (config, tokenizer, model, test) = reload(&out, &device);
    let (eval, examples) = evaluate_text(&model, &tokenizer, &test, &config, 60, &device);
    assert!((eval.clean_accuracy - report.evaluation.clean_accuracy).abs() < 1e-9);
    assert!(
        eval.clean_accuracy > 0.6,
        "test accuracy {}",
        eval.clean_accuracy
    );

    let oracle = Oracle {
        model: &model,
        tokenizer: &tokenizer,
        max_len: config.text.max_len,
        device: device.clone(),
    };
    for (attack, list) in &examples {
        let budget = if attack == "deepwordbug" {
            config.text.max_words
        } else {
            config.text.max_flips
        };
        let mut successes = 0;
        for e in list {
            assert!(e.words_changed <= budget, "{attack}: {e:?}");
            assert_eq!(e.edits.len(), e.words_changed, "{attack}: {e:?}");
            if attack == "deepwordbug" && e.success {
                // The adversarial text, re-tokenised, really is misclassified.
                let logits = &oracle.logits(std::slice::from_ref(&e.adversarial))[0];
                assert!(text_margin(logits, e.label) <= 0.0, "{e:?}");
                let changed = e
                    .original
                    .split_whitespace()
                    .zip(e.adversarial.split_whitespace())
                    .filter(|(a, b)| a != b)
                    .count();
                assert_eq!(changed, e.words_changed, "{e:?}");
            }
            successes += usize::from(e.success);
        }
        assert!(successes > 0, "{attack} never succeeded");
    }
    for a in &eval.attacks {
        assert!(a.accuracy_under_attack < eval.clean_accuracy, "{a:?}");
    }
    let bound = eval.embedding_pgd_white_box_bound.unwrap();
    assert!(bound.robust_accuracy < eval.clean_accuracy, "{bound:?}");
}

#[test]
fn embedding_space_objectives_train_and_image_objectives_are_refused() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Miyato et al.'s radius is over a whole text in normalised embedding space.
    for (objective, eps) in [
        (ObjectiveKind::Freelb, 0.01),
        (ObjectiveKind::Pgd, 0.01),
        (ObjectiveKind::Miyato, 1.0),
    ] {
        let out = dir.path().join(objective.name());
        let config = TrainConfig {
            eps,
            ..sentiment(&data, objective, 3)
        };
        let report = train_text(&config, &options(&out)).unwrap();
        let best = &report.epochs[report.best_epoch.unwrap() - 1];
        assert!(
            best.valid_accuracy > 0.6,
            "{objective:?}: {}",
            best.valid_accuracy
        );
    }
    let err = train_text(
        &sentiment(&data, ObjectiveKind::Trades, 1),
        &options(&dir.path().join("trades")),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("objective") && err.contains("freelb"), "{err}");
    assert!(
        !dir.path().join("trades").exists(),
        "a refused run writes nothing"
    );
}

/// ARD and RSLAD train a smaller Transformer from a text teacher run: the student reads the
/// teacher's tokens, learns, and its loss follows the teacher (another teacher, the same
/// student seed: another loss).
#[test]
fn a_smaller_student_distils_from_a_text_teacher() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (robust, plain) = (dir.path().join("robust"), dir.path().join("plain"));
    let teacher = train_text(&sentiment(&data, ObjectiveKind::Pgd, 3), &options(&robust)).unwrap();
    train_text(&sentiment(&data, ObjectiveKind::Clean, 1), &options(&plain)).unwrap();
    let student = |objective, teacher: &Path, epochs| TrainConfig {
        model: ModelSpec::TextTransformer {
            width: 16,
            layers: 1,
            heads: 2,
            ff: 32,
            dropout: 0.1,
        },
        teacher: Some(teacher.display().to_string().parse().unwrap()),
        distill_alpha: 0.9,
        temperature: 2.0,
        ..sentiment(&data, objective, epochs)
    };
    let mut first_losses = Vec::new();
    for objective in [ObjectiveKind::Ard, ObjectiveKind::Rslad] {
        let out = dir.path().join(objective.name());
        let report = train_text(&student(objective, &robust, 3), &options(&out)).unwrap();
        let best = &report.epochs[report.best_epoch.unwrap() - 1];
        eprintln!("{objective:?}: validation accuracy {}", best.valid_accuracy);
        assert!(
            best.valid_accuracy > 0.6,
            "{objective:?}: {}",
            best.valid_accuracy
        );
        assert!(
            report.parameters.total < teacher.parameters.total,
            "{:?}",
            report.parameters
        );
        assert_eq!(
            std::fs::read(robust.join("tokenizer.json")).unwrap(),
            std::fs::read(out.join("tokenizer.json")).unwrap()
        );
        first_losses.push(report.epochs[0].train_loss);
    }
    let other = dir.path().join("ard-plain");
    let report = train_text(&student(ObjectiveKind::Ard, &plain, 3), &options(&other)).unwrap();
    assert_ne!(report.epochs[0].train_loss, first_losses[0]);

    // A teacher that reads shorter texts than the student is refused before anything runs.
    let longer = TrainConfig {
        text: TextSettings {
            max_len: 64,
            ..student(ObjectiveKind::Rslad, &robust, 1).text
        },
        ..student(ObjectiveKind::Rslad, &robust, 1)
    };
    let err = train_text(&longer, &options(&dir.path().join("longer")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("teacher") && err.contains("--max-len"),
        "{err}"
    );
    assert!(!dir.path().join("longer").exists());
}

/// Ensemble AT on text: the character attack runs against the model and a static surrogate
/// run in turn. Edits transferred from that surrogate break fewer of the model's texts than
/// edits crafted on the model itself.
#[test]
fn ensemble_at_attacks_through_surrogate_runs_and_transfer_is_weaker_than_white_box() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let surrogate = dir.path().join("surrogate");
    let bag = TrainConfig {
        model: ModelSpec::BagOfEmbeddings { width: 32 },
        ..sentiment(&data, ObjectiveKind::Clean, 5)
    };
    train_text(&bag, &options(&surrogate)).unwrap();
    let out = dir.path().join("ensemble");
    let config = TrainConfig {
        surrogates: vec![surrogate.display().to_string().parse().unwrap()],
        ..sentiment(&data, ObjectiveKind::EnsembleAt, 3)
    };
    let report = train_text(&config, &options(&out)).unwrap();
    let best = &report.epochs[report.best_epoch.unwrap() - 1];
    eprintln!("ensemble AT: validation accuracy {}", best.valid_accuracy);
    assert!(best.valid_accuracy > 0.6, "{}", best.valid_accuracy);

    let device = Device::flex();
    let (config, tokenizer, model, test) = reload(&out, &device);
    let (s_config, s_tokenizer, s_model) = load_text_run(&surrogate, &device).unwrap();
    let target = Oracle {
        model: &model,
        tokenizer: &tokenizer,
        max_len: config.text.max_len,
        device: device.clone(),
    };
    let from_bag = Oracle {
        model: &s_model,
        tokenizer: &s_tokenizer,
        max_len: s_config.text.max_len,
        device: device.clone(),
    };
    let (transfer, examples) = transfer_text(&target, &from_bag, &test, &config, 100);
    let (itself, _) = transfer_text(&target, &target, &test, &config, 100);
    assert_eq!(examples.len(), 100);
    assert!(
        examples
            .iter()
            .all(|e| e.words_changed <= config.text.max_words)
    );
    assert!(transfer.attack == "deepwordbug-transfer");
    eprintln!(
        "transfer success {} vs white-box {}",
        transfer.success_rate, itself.success_rate
    );
    assert!(
        transfer.success_rate < itself.success_rate && itself.success_rate > 0.5,
        "transfer {} vs white-box {}",
        transfer.success_rate,
        itself.success_rate
    );
}

#[test]
fn lora_on_a_text_run_trains_encoder_adapters_from_its_weights() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let base_report =
        train_text(&sentiment(&data, ObjectiveKind::Clean, 3), &options(&base)).unwrap();
    let out = dir.path().join("lora");
    let config = TrainConfig {
        init: Some(base.display().to_string().parse().unwrap()),
        lora: Some(harden_model::LoraSpec {
            rank: 8,
            alpha: 16.0,
            targets: vec!["encoder".into()],
            ..Default::default()
        }),
        ..sentiment(&data, ObjectiveKind::A2t, 1)
    };
    let report = train_text(&config, &options(&out)).unwrap();
    // One layer of width 32, ff 64: query, key, value, output [32, 32], the feed-forward
    // [32, 64] and [64, 32], rank 8.
    assert_eq!(report.parameters.trainable, 4 * 8 * 64 + 2 * 8 * 96);
    assert_eq!(
        report.parameters.total - report.parameters.adapter,
        base_report.parameters.total
    );
    assert!(report.parameters.trainable * 10 < report.parameters.total);
    // The tokenizer is the base run's; the adapters are saved alone and for PEFT.
    assert_eq!(
        std::fs::read(base.join("tokenizer.json")).unwrap(),
        std::fs::read(out.join("tokenizer.json")).unwrap()
    );
    for file in [
        "adapters.bpk",
        "adapters/adapter_model.safetensors",
        "best.bpk",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    load_text_run(&out, &Device::flex()).unwrap();
}

#[test]
fn word_recognition_travels_with_the_run_and_blunts_the_character_attack() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    // The character attack's success on the first 300 test texts, and the clean accuracy,
    // of a run evaluated as `harden eval` reads it back.
    let run = |word_recognition: Option<Backoff>| {
        let base = sentiment(&data, ObjectiveKind::Clean, 15);
        let config = TrainConfig {
            model: ModelSpec::BagOfEmbeddings { width: 64 },
            eval_samples: Some(300),
            text: TextSettings {
                word_recognition,
                ..base.text.clone()
            },
            ..base
        };
        let out = dir.path().join(format!("wr-{word_recognition:?}"));
        train_text(&config, &options(&out)).unwrap();
        assert_eq!(out.join("words.json").is_file(), word_recognition.is_some());
        let (config, tokenizer, model, test) = reload(&out, &device);
        assert_eq!(
            tokenizer.recognizer().map(|r| r.backoff()),
            word_recognition
        );
        let (eval, _) = evaluate_text(&model, &tokenizer, &test, &config, 300, &device);
        let dwb = eval
            .attacks
            .iter()
            .find(|a| a.attack == "deepwordbug")
            .unwrap()
            .success_rate;
        (out, tokenizer, eval.clean_accuracy, dwb)
    };
    let (_, _, plain_clean, plain_dwb) = run(None);
    let (out, tokenizer, clean, dwb) = run(Some(Backoff::Neutral));

    // A swap inside a training word reads as that word.
    assert_eq!(
        tokenizer.encode("a mvoie", 48),
        tokenizer.encode("a movie", 48)
    );
    // Measured on this protocol: success 0.96 without and 0.71 with word recognition, at
    // clean accuracy 0.75 and 0.76.
    assert!(
        dwb < 0.85 * plain_dwb,
        "success {dwb} with word recognition, {plain_dwb} without"
    );
    assert!(
        clean > plain_clean - 0.05,
        "clean accuracy {clean} with word recognition, {plain_clean} without"
    );

    // The run needs its word list back.
    std::fs::remove_file(out.join("words.json")).unwrap();
    let err = load_text_run(&out, &device).unwrap_err().to_string();
    assert!(err.contains("words.json"), "{err}");
}

#[test]
fn attacks_see_the_model_in_evaluation_mode_whatever_mode_it_comes_in() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut config = sentiment(&data, ObjectiveKind::Clean, 2);
    // Heavy dropout: in training mode two forward passes of the same text disagree often.
    config.model = ModelSpec::TextTransformer {
        width: 32,
        layers: 1,
        heads: 2,
        ff: 64,
        dropout: 0.5,
    };
    let report = train_text(&config, &options(&out)).unwrap();
    // A freshly loaded module is in training mode; evaluation must not depend on that.
    let device = Device::flex();
    let (config, tokenizer, model, test) = reload(&out, &device);
    let runs: Vec<_> = (0..2)
        .map(|_| evaluate_text(&model, &tokenizer, &test, &config, 60, &device).0)
        .collect();
    for eval in &runs {
        for a in &eval.attacks {
            // Each attack starts from the same predictions as the clean accuracy.
            assert_eq!(a.clean_accuracy, eval.clean_accuracy, "{a:?}");
        }
        assert_eq!(eval.clean_accuracy, report.evaluation.clean_accuracy);
        assert_eq!(
            eval.embedding_pgd_white_box_bound,
            report.evaluation.embedding_pgd_white_box_bound
        );
        assert_eq!(eval.attacks, report.evaluation.attacks);
    }
}
