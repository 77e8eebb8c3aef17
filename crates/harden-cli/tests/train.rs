//! `harden train` through the real binary.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};

use common::{assert_user_error, harden, stdout_json, train_quietly};
use predicates::str::contains;

/// Flags of a small, quick run on the embedded digits.
const QUICK: [&str; 8] = [
    "--hidden",
    "32",
    "--epochs",
    "6",
    "--device",
    "flex",
    "--eval-steps",
    "5",
];

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn train_prints_every_epoch_and_writes_the_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    harden()
        .arg("train")
        .args(QUICK)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(contains("epoch   6/6  loss"))
        .stdout(contains("valid clean"))
        .stdout(contains("test samples: clean"))
        .stdout(contains("PGD-5x1 robust"));
    let r = report(&out);
    assert_eq!(r["config"]["epochs"], 6);
    assert_eq!(r["epochs"].as_array().unwrap().len(), 6);
    assert!(out.join("best.safetensors").is_file());
}

#[test]
fn the_breast_cancer_example_trains_a_single_logit_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bc");
    let assert = harden()
        .args([
            "train",
            "--dataset",
            "breast-cancer",
            "--model",
            "mlp",
            "--hidden",
            "128",
            "--objective",
            "pgd",
            "--eps",
            "0.1",
            "--optimizer",
            "adam",
            "--lr",
            "1e-3",
            "--device",
            "flex",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert_eq!(stdout.matches("  loss ").count(), 40, "{stdout}");
    let r = report(&out);
    let clean = r["evaluation"]["clean_accuracy"].as_f64().unwrap();
    let robust = r["evaluation"]["robust_accuracy"].as_f64().unwrap();
    // 63% of the test split is one class: the model must beat that, robustly too.
    assert!(
        clean > 0.75 && robust > 0.64,
        "clean {clean}, robust {robust}"
    );
}

#[test]
fn a_config_file_sets_defaults_that_flags_override_and_json_is_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        "model = { kind = \"mlp\", hidden = [16] }\nepochs = 3\nobjective = \"fgsm-rs\"\neps = 0.05\neval-steps = 3\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    let assert = harden()
        .args(["train", "--config"])
        .arg(&config)
        .args(["--eps", "0.08", "--device", "flex", "--json", "--out"])
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[..3].iter().all(|l| l["type"] == "epoch"));
    let last = &lines[3];
    assert_eq!(last["type"], "report");
    assert_eq!(last["config"]["objective"], "fgsm-rs");
    assert_eq!(last["config"]["eps"], 0.08);
    assert_eq!(last["config"]["model"]["hidden"], serde_json::json!([16]));

    // --quiet prints nothing.
    harden()
        .args(["train", "--config"])
        .arg(&config)
        .args(["--device", "flex", "--quiet", "--out"])
        .arg(dir.path().join("quiet"))
        .assert()
        .success()
        .stdout("");
}

#[test]
fn common_mistakes_are_one_line_errors_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "epoch = 3\n").unwrap();
    let existing = dir.path().join("existing");
    std::fs::create_dir_all(&existing).unwrap();
    std::fs::write(existing.join("notes.txt"), "mine").unwrap();
    let one_class = dir.path().join("one-class.csv");
    let rows: String = (0..20).map(|i| format!("{i},{},yes\n", 2 * i)).collect();
    std::fs::write(&one_class, format!("a,b,label\n{rows}")).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--hidden".into(), "4294967296".into()],
            "at most 1073741824 (2^30) parameters",
        ),
        (
            vec!["--hidden".into(), "65536,65536".into()],
            "at most 1073741824 (2^30) parameters",
        ),
        (
            vec!["--dataset".into(), format!("csv:{}", one_class.display())],
            "one class only",
        ),
        (
            vec!["--hidden".into(), "8".into(), "--hidden".into(), "4".into()],
            "cannot be used multiple times",
        ),
        (
            vec!["--eps".into(), "-0.1".into()],
            "eps: expected a finite number >= 0",
        ),
        (
            vec!["--lr".into(), "0".into()],
            "lr: expected a finite number > 0",
        ),
        (
            vec!["--collapse-patience".into(), "0".into()],
            "collapse-patience",
        ),
        (
            vec!["--objective".into(), "magic".into()],
            "clean, pgd, fgsm-rs, trades, freelb, a2t, ard, rslad or ensemble-at",
        ),
        (vec!["--dataset".into(), "imagenet".into()], "imagenet"),
        (vec!["--model".into(), "resnet".into()], "resnet"),
        (
            vec![
                "--dataset".into(),
                "breast-cancer".into(),
                "--model".into(),
                "small-cnn".into(),
            ],
            "small-cnn",
        ),
        (vec!["--device".into(), "tpu".into()], "--device"),
        (
            vec!["--devices".into(), "flex,flex".into()],
            "distributed data-parallel",
        ),
        (
            vec!["--config".into(), bad_toml.display().to_string()],
            "bad.toml",
        ),
        (
            vec![
                "--config".into(),
                dir.path().join("missing.toml").display().to_string(),
            ],
            "missing.toml",
        ),
        (
            vec!["--out".into(), existing.display().to_string()],
            "is not empty",
        ),
        (
            vec![
                "--resume".into(),
                dir.path().join("nowhere").display().to_string(),
            ],
            "cannot resume",
        ),
        (
            vec!["--dataset".into(), "csv:/nonexistent/data.csv".into()],
            "/nonexistent/data.csv",
        ),
    ];
    for (args, needle) in cases {
        assert_user_error(harden().arg("train").args(&args), needle);
    }
    assert_eq!(
        std::fs::read_to_string(existing.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// Kills a run after its third epoch, resumes it, and compares with an uninterrupted run.
#[test]
fn a_killed_run_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    harden()
        .arg("train")
        .args(QUICK)
        .arg("--quiet")
        .arg("--out")
        .arg(&full)
        .assert()
        .success();

    let killed = dir.path().join("killed");
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("harden"))
        .arg("train")
        .args(QUICK)
        .arg("--json")
        .arg("--out")
        .arg(&killed)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut epochs = 0;
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("\"type\":\"epoch\"") {
            epochs += 1;
            if epochs == 3 {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(epochs, 3);
    assert!(!killed.join("report.json").exists());

    harden()
        .args(["train", "--device", "flex", "--quiet", "--resume"])
        .arg(&killed)
        .assert()
        .success();
    let (a, b) = (report(&full), report(&killed));
    let resumed_after = b["resumed_after"].as_u64().unwrap();
    assert!((1..=3).contains(&resumed_after), "{resumed_after}");
    assert_eq!(b["epochs"].as_array().unwrap().len(), 6);
    for key in ["train_loss", "valid_accuracy", "valid_robust_accuracy"] {
        for (x, y) in a["epochs"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["epochs"].as_array().unwrap())
        {
            assert_eq!(x[key], y[key], "epoch {} {key}", x["epoch"]);
        }
    }
    for key in ["clean_accuracy", "robust_accuracy"] {
        assert_eq!(a["evaluation"][key], b["evaluation"][key], "{key}");
    }

    // Settings cannot change on resume.
    assert_user_error(
        harden()
            .args(["train", "--eps", "0.3", "--resume"])
            .arg(&killed),
        "saved settings",
    );
}

/// `--norm` is parsed by one table for every command: `inf` and `2` are accepted by `train`
/// and `eval` alike, and a bad name gets the same answer from both.
#[test]
fn train_and_eval_read_norm_names_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    train_quietly(
        &out,
        &[
            "--hidden",
            "16",
            "--epochs",
            "2",
            "--eval-steps",
            "2",
            "--norm",
            "inf",
        ],
    );
    assert_eq!(report(&out)["config"]["norm"], "linf");
    let eval = |norm: &str| -> serde_json::Value {
        stdout_json(harden().arg("eval").arg(&out).args([
            "--attack", "fgsm", "--eps", "0.1", "--device", "flex", "--norm", norm,
        ]))
    };
    let (a, b) = (eval("inf"), eval("linf"));
    for key in ["threat", "clean_accuracy", "robust_accuracy"] {
        assert_eq!(a["evaluation"][key], b["evaluation"][key], "{key}");
    }
    assert_eq!(a["evaluation"]["threat"]["norm"], "linf");
    assert_eq!(eval("2")["evaluation"]["threat"]["norm"], "l2");
    for command in [
        vec!["train"],
        vec!["eval", out.to_str().unwrap(), "--eps", "0.1"],
    ] {
        assert_user_error(
            harden().args(&command).args(["--norm", "l3"]),
            "expected linf or l2",
        );
    }
}

/// An error with an OS error beneath it names the path and the OS error once.
#[test]
fn an_os_error_is_printed_once() {
    let assert = harden()
        .args(["train", "--epochs", "1", "--device", "flex", "--out"])
        .arg("/proc/harden-cannot-create")
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
    assert!(stderr.contains("/proc/harden-cannot-create"), "{stderr}");
}
