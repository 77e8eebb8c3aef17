//! Small robust models on the embedded digits: LoRA runs from saved weights, distillation from
//! a teacher and ensemble adversarial training with surrogates, end to end through `train`.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use harden_data::source::DatasetSource;
use harden_model::lora::{self, LoraSpec};
use harden_model::{Classifier, ModelSpec, store};
use harden_train::trainer::{RunOptions, train};
use harden_train::{ObjectiveKind, SavedModel, TrainConfig, TrainError, TrainReport};

fn options(out: &Path) -> RunOptions {
    RunOptions::quiet(out, Device::flex())
}

fn config(objective: ObjectiveKind, hidden: usize, epochs: usize) -> TrainConfig {
    TrainConfig {
        model: ModelSpec::Mlp {
            hidden: vec![hidden],
        },
        objective,
        eps: 0.2,
        epochs,
        lr: 5e-3,
        eval_steps: 10,
        ..Default::default()
    }
}

fn run(config: &TrainConfig, out: &Path) -> TrainReport {
    train(&config.clone().check().unwrap(), &options(out)).unwrap()
}

fn saved(path: &Path) -> SavedModel {
    path.display().to_string().parse().unwrap()
}

fn logits_of(model: &impl Classifier, x: &Tensor<4>) -> Vec<f32> {
    model.logits(x.clone()).into_data().iter::<f32>().collect()
}

#[test]
fn lora_runs_train_adapters_over_an_unchanged_base() {
    let dir = tempfile::tempdir().unwrap();
    let base_dir = dir.path().join("base");
    let base = run(&config(ObjectiveKind::Clean, 64, 8), &base_dir);
    assert_eq!(base.parameters.trainable, base.parameters.total);
    let spec = LoraSpec {
        rank: 4,
        alpha: 8.0,
        ..LoraSpec::default()
    };
    let lora_dir = dir.path().join("lora");
    let lora_run = run(
        &TrainConfig {
            init: Some(saved(&base_dir)),
            lora: Some(spec.clone()),
            ..config(ObjectiveKind::Pgd, 64, 6)
        },
        &lora_dir,
    );
    // 64x64 and 64x10 weights with rank-4 factors; every base weight frozen.
    let p = lora_run.parameters;
    assert_eq!(p.trainable, 4 * (64 + 64) + 4 * (64 + 10));
    assert_eq!(p.total, base.parameters.total + p.trainable);
    assert!(
        lora_run.evaluation.robust_accuracy > base.evaluation.robust_accuracy + 0.1,
        "adversarial adapters add robustness: {} vs {}",
        lora_run.evaluation.robust_accuracy,
        base.evaluation.robust_accuracy
    );
    for file in [
        "adapters.bpk",
        "adapters/adapter_model.safetensors",
        "adapters/adapter_config.json",
    ] {
        assert!(lora_dir.join(file).is_file(), "{file}");
    }
    let adapter_bytes = std::fs::metadata(lora_dir.join("adapters.bpk"))
        .unwrap()
        .len();
    let merged_bytes = std::fs::metadata(lora_dir.join("best.bpk")).unwrap().len();
    assert!(
        adapter_bytes * 4 < merged_bytes,
        "{adapter_bytes} vs {merged_bytes}"
    );

    // The base file plus the adapters computes what the merged file computes: the base did
    // not move, only the adapters trained.
    let device = Device::flex();
    let splits = DatasetSource::Digits.load(Path::new(".")).unwrap();
    let model_config = ModelSpec::Mlp { hidden: vec![64] }
        .config_for(splits.test.sample_shape(), 10)
        .unwrap();
    let merged = store::load(model_config.init(&device), &lora_dir.join("best.bpk")).unwrap();
    let base_model = store::load(model_config.init(&device), &base_dir.join("best.bpk")).unwrap();
    let unmerged = lora::load_adapters(
        lora::attach(base_model.clone(), &spec).unwrap(),
        &spec,
        &lora_dir.join("adapters.bpk"),
    )
    .unwrap();
    let x: Tensor<4> = match harden_data::Batches::first(&splits.test, 64, 64, &device).unwrap() {
        harden_data::Batches::Image(b) => b[0].0.clone(),
        harden_data::Batches::Table(_) => unreachable!("digits are images"),
    };
    let (m, u, b) = (
        logits_of(&merged, &x),
        logits_of(&unmerged, &x),
        logits_of(&base_model, &x),
    );
    let diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    };
    assert!(
        diff(&m, &u) < 1e-4,
        "merged and base + adapters differ by {}",
        diff(&m, &u)
    );
    assert!(diff(&m, &b) > 1e-2, "the adapters changed nothing");
    assert_eq!(lora::count(&unmerged.valid()).adapted, 2);
}

#[test]
fn distillation_and_ensemble_runs_read_their_models() {
    let dir = tempfile::tempdir().unwrap();
    let teacher_dir = dir.path().join("teacher");
    run(&config(ObjectiveKind::Pgd, 64, 6), &teacher_dir);
    for objective in [ObjectiveKind::Rslad, ObjectiveKind::Ard] {
        let out = dir.path().join(objective.name());
        let report = run(
            &TrainConfig {
                teacher: Some(saved(&teacher_dir)),
                distill_alpha: 0.9,
                temperature: 4.0,
                ..config(objective, 16, 6)
            },
            &out,
        );
        assert!(
            report.evaluation.clean_accuracy > 0.5,
            "{objective:?}: {}",
            report.evaluation.clean_accuracy
        );
        assert_eq!(report.parameters.total, 64 * 16 + 16 + 16 * 10 + 10);
    }
    let report = run(
        &TrainConfig {
            surrogates: vec![saved(&teacher_dir)],
            ..config(ObjectiveKind::EnsembleAt, 64, 4)
        },
        &dir.path().join("ensemble"),
    );
    assert!(report.evaluation.clean_accuracy > 0.5);

    // A teacher of another architecture is named by ARCH:FILE.
    let file = format!("mlp:{}", teacher_dir.join("best.bpk").display());
    let wrong = TrainConfig {
        teacher: Some(file.parse().unwrap()),
        ..config(ObjectiveKind::Rslad, 16, 1)
    };
    let err = train(&wrong.check().unwrap(), &options(&dir.path().join("wrong"))).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Saved {
                what: "teacher",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        !dir.path().join("wrong").exists(),
        "a refused run leaves no directory"
    );
}

#[test]
fn companions_must_fit_the_objective() {
    let teacher: SavedModel = "runs/t".parse().unwrap();
    let cases = [
        (config(ObjectiveKind::Ard, 16, 1), "teacher"),
        (
            TrainConfig {
                teacher: Some(teacher.clone()),
                ..config(ObjectiveKind::Pgd, 16, 1)
            },
            "teacher",
        ),
        (config(ObjectiveKind::EnsembleAt, 16, 1), "surrogates"),
        (
            TrainConfig {
                surrogates: vec![teacher.clone()],
                ..config(ObjectiveKind::Trades, 16, 1)
            },
            "surrogates",
        ),
        (
            TrainConfig {
                lora: Some(LoraSpec::default()),
                ..config(ObjectiveKind::Pgd, 16, 1)
            },
            "lora-rank",
        ),
    ];
    for (config, key) in cases {
        match config.check() {
            Err(TrainError::Param(e)) => assert_eq!(e.name, key, "{e}"),
            other => panic!("{key}: expected a refusal, got {other:?}"),
        }
    }
    // A missing init is named with its path before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let missing = TrainConfig {
        init: Some("no/such/run".parse().unwrap()),
        ..config(ObjectiveKind::Pgd, 16, 1)
    };
    let err = train(&missing.check().unwrap(), &options(&dir.path().join("x"))).unwrap_err();
    assert!(err.to_string().contains("no/such/run"), "{err}");
    assert!(!dir.path().join("x").exists());
}

/// A frozen teacher answers on every device it is asked on, with the same logits.
#[cfg(feature = "ndarray")]
#[test]
fn frozen_models_copy_themselves_to_each_device() {
    let flex = Device::flex();
    flex.seed(2);
    let config = ModelSpec::Mlp { hidden: vec![8] }
        .config_for(&[1, 8, 8], 10)
        .unwrap();
    let frozen = harden_train::Frozen::new("teacher", config.init(&flex));
    let x = Tensor::<4>::ones([3, 1, 8, 8], &flex);
    let on_flex = frozen.logits(&x);
    let ndarray = harden_model::parse_device("ndarray").unwrap();
    let on_ndarray = frozen.logits(&x.clone().to_device(&ndarray));
    assert_eq!(on_ndarray.device(), ndarray);
    let (a, b) = (
        on_flex
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap(),
        on_ndarray
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap(),
    );
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5));
    // The autodiff graph of a training batch is dropped.
    let trained = frozen.logits(&x.autodiff().require_grad());
    assert!(!trained.is_autodiff());
}
