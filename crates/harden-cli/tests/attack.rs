//! `harden attack` and `harden eval` on run directories, through the real binary.

mod common;

use std::path::Path;

use common::{assert_user_error, attack, harden, train_quietly};
use harden_data::idx;
use predicates::str::contains;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn attack_writes_csv_a_grid_and_a_summary_for_a_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train_quietly(
        &run,
        "--objective clean --hidden 64 --epochs 15 --lr 5e-3".split(' '),
    );
    let out = dir.path().join("adv");
    attack(&run, &out, "0.2", "60").stdout(contains(
        "PGD-20x1 step 0.025 linf eps 0.2 on 60 test samples of digits",
    ));
    let summary = json(&out.join("summary.json"));
    let clean = summary["clean_accuracy"].as_f64().unwrap();
    let adversarial = summary["adversarial_accuracy"].as_f64().unwrap();
    assert!(
        clean > 0.85 && adversarial < clean - 0.5,
        "{clean} -> {adversarial}"
    );
    for s in summary["per_sample"].as_array().unwrap() {
        assert!(s["linf"].as_f64().unwrap() <= 0.2 + 1e-6);
    }
    // The CSV reads back as a dataset of the same shape and labels.
    let csv = harden_data::csv::read(&out.join("adversarial.csv"), &Default::default()).unwrap();
    assert_eq!((csv.len(), csv.sample_len()), (60, 64));
    let png = std::fs::read(out.join("grid.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // eval and export accept the run directory too.
    harden()
        .arg("eval")
        .arg(&run)
        .args("--attack pgd --eps 0.2 --samples 60 --device flex".split(' '))
        .assert()
        .success()
        .stdout(contains("\"suite\": \"pgd-20x1\""));
    harden()
        .arg("export")
        .arg(&run)
        .args(["--format", "safetensors", "--out"])
        .arg(dir.path().join("w.safetensors"))
        .assert()
        .success();
    // A folder that is not a run directory.
    assert_user_error(
        harden()
            .arg("attack")
            .arg(dir.path())
            .args(["--eps", "0.2", "--out"])
            .arg(&out),
        "not a run directory",
    );
}

#[test]
fn attack_writes_idx_inside_the_ball_for_mnist() {
    let Some(data) = harden_data::testing::data_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let data_dir = data.display().to_string();
    train_quietly(
        &run,
        [
            "--dataset",
            "mnist",
            "--data-dir",
            &data_dir,
            "--objective",
            "clean",
            "--hidden",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            "128",
            "--valid-samples",
            "200",
            "--eval-samples",
            "200",
            "--eval-steps",
            "2",
        ],
    );
    let out = dir.path().join("adv");
    attack(&run, &out, "0.1", "40");
    let adv = idx::read_dataset(
        &out.join("adversarial-images-idx3-ubyte"),
        &out.join("adversarial-labels-idx1-ubyte"),
        (0..10).map(|d| d.to_string()).collect(),
    )
    .unwrap();
    let clean = harden_data::DatasetSource::Mnist.load(&data).unwrap().test;
    assert_eq!(adv.len(), 40);
    assert_eq!(adv.labels(), &clean.labels()[..40]);
    let mut changed = 0;
    for i in 0..40 {
        for (a, c) in adv.sample(i).iter().zip(clean.sample(i)) {
            assert!((a - c).abs() <= 0.1 + 1e-6, "sample {i}: {a} vs {c}");
            changed += usize::from(a != c);
        }
    }
    assert!(changed > 40 * 100, "only {changed} pixels changed");
    let summary = json(&out.join("summary.json"));
    assert!(
        summary["adversarial_accuracy"].as_f64().unwrap()
            < summary["clean_accuracy"].as_f64().unwrap() - 0.3
    );
}
