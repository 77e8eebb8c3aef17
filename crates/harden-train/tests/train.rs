//! Training runs on the embedded digits, end to end through burn-train.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use harden_adversarial::eval::accuracy;
use harden_data::source::DatasetSource;
use harden_model::{ModelSpec, store};
use harden_train::trainer::{RunOptions, train};
use harden_train::{ObjectiveKind, ScheduleKind, TrainConfig, TrainError, TrainReport};

fn options(out: &Path) -> RunOptions {
    RunOptions::quiet(out, Device::flex())
}

fn small(objective: ObjectiveKind) -> TrainConfig {
    TrainConfig {
        model: ModelSpec::Mlp { hidden: vec![64] },
        objective,
        eps: 0.2,
        epochs: 30,
        lr: 5e-3,
        eval_steps: 10,
        ..Default::default()
    }
}

fn run(config: &TrainConfig, out: &Path) -> TrainReport {
    train(&config.clone().check().unwrap(), &options(out)).unwrap()
}

#[test]
fn adversarial_training_is_robust_and_the_run_directory_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let clean = run(&small(ObjectiveKind::Clean), &dir.path().join("clean"));
    let out = dir.path().join("pgd");
    let pgd = run(&small(ObjectiveKind::Pgd), &out);
    let (c, p) = (&clean.evaluation, &pgd.evaluation);
    eprintln!(
        "digits eps 0.2, PGD-10 on {} test samples: clean training {:.3} / {:.3}, PGD training {:.3} / {:.3}",
        p.samples, c.clean_accuracy, c.robust_accuracy, p.clean_accuracy, p.robust_accuracy
    );
    assert!(c.clean_accuracy > 0.85 && p.clean_accuracy > 0.8);
    assert!(
        p.robust_accuracy > c.robust_accuracy + 0.2,
        "PGD training must be far more robust"
    );

    for file in [
        "config.json",
        "metrics.jsonl",
        "report.json",
        "final.bpk",
        "final.safetensors",
        "best.bpk",
        "best.safetensors",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 30);
    let report: TrainReport =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report.best_epoch, pgd.best_epoch);
    assert_eq!(report.epochs.len(), pgd.epochs.len());
    assert!((report.evaluation.robust_accuracy - p.robust_accuracy).abs() < 1e-12);
    assert_eq!(report.epochs_completed, 30);
    assert!(report.best_epoch.is_some());
    let config: TrainConfig =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config, small(ObjectiveKind::Pgd));

    // The saved best weights give the reported clean accuracy.
    let device = Device::flex();
    let test = DatasetSource::Digits.load(Path::new(".")).unwrap().test;
    let batcher = harden_data::ArrayBatcher::<4>::for_dataset(&test).unwrap();
    let all: Vec<usize> = (0..test.len()).collect();
    let b = batcher.gather(&test, &all, &device);
    let model_config = ModelSpec::Mlp { hidden: vec![64] }
        .config_for(test.sample_shape(), 10)
        .unwrap();
    for file in ["best.bpk", "best.safetensors"] {
        let model = store::load(model_config.init(&device), &out.join(file)).unwrap();
        let acc = accuracy(
            &|x: Tensor<4>| model.forward(x),
            b.inputs.clone(),
            b.labels.clone(),
        );
        assert!((acc - p.clean_accuracy).abs() < 1e-9, "{file}: {acc}");
    }

    // A second run into the same folder is refused rather than mixed in.
    let err = train(&small(ObjectiveKind::Pgd).check().unwrap(), &options(&out)).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
}

#[test]
fn a_diverging_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // The rate jumps from 1e-3 to 1e27 after two epochs.
    let config = TrainConfig {
        model: ModelSpec::Mlp { hidden: vec![32] },
        objective: ObjectiveKind::Clean,
        epochs: 4,
        schedule: ScheduleKind::Piecewise,
        milestones: Some(vec![2.0]),
        gamma: 1e30,
        lr: 1e-3,
        ..Default::default()
    };
    let out = dir.path().join("run");
    let err = train(&config.check().unwrap(), &options(&out)).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, TrainError::Diverged { epoch: 3, .. }),
        "{message}"
    );
    assert!(
        message.contains("last good checkpoint is epoch 2"),
        "{message}"
    );
    assert!(out.join("checkpoint/model-2.bpk").is_file());
    assert!(!out.join("checkpoint/model-3.bpk").exists());
    assert!(!out.join("report.json").exists());
}

#[test]
fn bad_configurations_are_errors_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    // An unknown dataset cannot even be written into a configuration.
    let err = "imagenet".parse::<DatasetSource>().unwrap_err();
    assert!(err.to_string().contains("imagenet"), "{err}");
    let cases = [
        (
            TrainConfig {
                dataset: DatasetSource::BreastCancer,
                model: ModelSpec::SmallCnn {},
                ..Default::default()
            },
            "small-cnn",
        ),
        (
            TrainConfig {
                eps: f64::NAN,
                ..Default::default()
            },
            "eps",
        ),
    ];
    for (i, (config, needle)) in cases.iter().enumerate() {
        let err = config
            .clone()
            .check()
            .and_then(|run| train(&run, &options(&dir.path().join(i.to_string()))))
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn several_cpu_devices_are_a_clear_error() {
    // burn 0.22 implements distributed data parallelism for GPU backends only.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir.path().join("two"));
    opts.devices = vec![Device::flex(), Device::flex()];
    let err = train(&small(ObjectiveKind::Pgd).check().unwrap(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("devices: burn cannot run distributed data-parallel training"),
        "{err}"
    );
    assert!(err.contains("not supported for device Flex"), "{err}");
    assert!(
        !dir.path().join("two").exists(),
        "a refused run writes nothing"
    );
}
