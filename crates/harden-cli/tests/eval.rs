//! `harden eval` through the real binary.

mod common;

use burn::tensor::Device;
use common::{MLP_16, assert_user_error, harden, stdout_json};
use harden_model::store::{self, WeightsFormat};
use harden_model::{MlpConfig, ModelConfig};
use predicates::str::contains;

/// `harden SUBCOMMAND` for the 16-unit MLP of `weights()`.
fn mlp_16(subcommand: &str) -> assert_cmd::Command {
    let mut command = harden();
    command.arg(subcommand).args(MLP_16);
    command
}

/// Writes an untrained digits MLP 64-16-10 in both formats; returns the folder.
fn weights() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    device.seed(0);
    let model = ModelConfig::Mlp(MlpConfig::new(64, vec![16], 10)).init(&device);
    store::save(&model, &dir.path().join("m.bpk"), WeightsFormat::Burnpack).unwrap();
    store::save(
        &model,
        &dir.path().join("m.safetensors"),
        WeightsFormat::PytorchSafetensors,
    )
    .unwrap();
    dir
}

#[test]
fn eval_writes_a_json_report_and_a_plot() {
    let dir = weights();
    let report = dir.path().join("report.json");
    let plot = dir.path().join("curve.svg");
    mlp_16("eval")
        .args("--dataset digits --device flex".split(' '))
        .args("--attack pgd --steps 5 --restarts 2 --step-size 0.02 --eps-list 0,0.05,0.1 --samples 100".split(' '))
        .arg(dir.path().join("m.safetensors"))
        .arg("--report")
        .arg(&report)
        .arg("--plot")
        .arg(&plot)
        .assert()
        .success()
        .stdout(contains("pgd-5x2 suite"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let e = &v["evaluation"];
    assert_eq!(e["samples"], 100);
    assert_eq!(e["threat"]["eps"], 0.1);
    let pgd = &e["attacks"][0]["attack"];
    assert_eq!(
        (pgd["step_size"].as_f64(), pgd["restarts"].as_u64()),
        (Some(0.02), Some(2))
    );
    assert!(e["robust_accuracy"].as_f64().unwrap() <= e["clean_accuracy"].as_f64().unwrap());
    assert_eq!(v["curve"].as_array().unwrap().len(), 3);
    assert!(
        e["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"].as_str().unwrap().contains("zero"))
    );
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("robust accuracy"),
        "{}",
        &svg[..100.min(svg.len())]
    );
}

#[test]
fn eval_prints_json_to_stdout_with_the_standard_suite() {
    let dir = weights();
    let v = stdout_json(
        mlp_16("eval")
            .args("--device flex --eps 0.1 --samples 20".split(' '))
            .arg(dir.path().join("m.bpk")),
    );
    let names: Vec<&str> = v["evaluation"]["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["apgd-ce", "apgd-t", "square"]);
}

#[test]
fn eval_mistakes_are_one_line_errors_with_exit_code_2() {
    let dir = weights();
    let bpk = dir.path().join("m.bpk");
    // Each case: the arguments after `eval m.bpk`, split at spaces; `+` stands for the flags
    // of a valid evaluation of `m.bpk`, which most cases add one mistake to.
    const VALID: &str = "--model mlp --hidden 16 --eps 0.1";
    let cases = [
        ("--model mlp --hidden 16 --eps -0.1", "eps"),
        ("--model mlp --hidden 16", "missing --eps"),
        ("--model mlp --hidden 32 --eps 0.1", "do not match"),
        (
            "--model resnet --eps 0.1",
            "expected mlp, small-cnn, madry-cnn, tiny-cnn, text-transformer or bag-of-embeddings",
        ),
        ("+ --device tpu", "unknown device"),
        ("+ --suite strong", "quick, standard"),
        ("+ --dataset mnist --data-dir /nonexistent", "--data-dir"),
        ("+ --norm l3", "linf or l2"),
        ("+ --attack pgd --step-size 0", "invalid --step-size 0"),
        (
            "+ --suite quick --step-size 0.01",
            "--step-size applies only to --attack pgd",
        ),
        // Destinations are checked before the evaluation runs.
        (
            "+ --report /nonexistent/report.json",
            "--report /nonexistent/report.json: the folder /nonexistent does not exist",
        ),
        ("+ --plot /tmp", "--plot /tmp: is a folder"),
        // Sizes past what can run, refused before anything is allocated or attacked.
        (
            "+ --attack pgd --steps 100000000",
            "steps: expected an integer from 1 to 10000",
        ),
        (
            "+ --attack pgd --restarts 5000",
            "restarts: expected an integer from 1 to 1000",
        ),
        (
            "+ --batch-size 100000000000",
            "batch-size: expected an integer from 1 to 65536",
        ),
        ("+ --batch-size 0", "batch-size"),
    ];
    for (args, message) in cases {
        let args = args.replace('+', VALID);
        assert_user_error(
            harden().arg("eval").arg(&bpk).args(args.split(' ')),
            message,
        );
    }
    assert_user_error(
        harden()
            .args("eval --model mlp --eps 0.1".split(' '))
            .arg(dir.path().join("missing.bpk")),
        "missing.bpk: cannot load model: no such file",
    );
}

#[test]
fn export_converts_between_formats_and_the_result_evaluates_the_same() {
    let dir = weights();
    let bpk = dir.path().join("m.bpk");
    let out = dir.path().join("converted.safetensors");
    mlp_16("export")
        .args(["--format", "safetensors", "--out"])
        .arg(&out)
        .arg(&bpk)
        .assert()
        .success();
    let eval = |file: &std::path::Path| {
        let v = stdout_json(
            mlp_16("eval")
                .args("--device flex --attack fgsm --eps 0.1".split(' '))
                .arg(file),
        );
        (
            v["evaluation"]["clean_accuracy"].clone(),
            v["evaluation"]["robust_accuracy"].clone(),
        )
    };
    assert_eq!(eval(&bpk), eval(&out));
    assert_user_error(
        mlp_16("export").args(["--format", "onnx"]).arg(&bpk),
        "expected safetensors or bpk",
    );
    assert_user_error(
        mlp_16("export").args(["--format", "bpk"]).arg(&bpk),
        "would overwrite",
    );
}
