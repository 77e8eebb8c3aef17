//! `harden train` through the real binary.

mod common;

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
        .args("train --dataset breast-cancer --model mlp --hidden 128 --objective pgd --eps 0.1 --optimizer adam --lr 1e-3 --device flex --out".split(' '))
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
        .args("--eps 0.08 --device flex --json --out".split(' '))
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
        .args("--device flex --quiet --out".split(' '))
        .arg(dir.path().join("quiet"))
        .assert()
        .success()
        .stdout("");
}

#[test]
fn common_mistakes_are_one_line_errors_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..20).map(|i| format!("{i},{},yes\n", 2 * i)).collect();
    // The files the cases read, by name in the test's folder.
    let files = [
        ("bad.toml", "epoch = 3\n".to_string()),
        (
            "huge-cnn.toml",
            "model = { kind = \"small-cnn\", channels = [100000, 100000] }\n".to_string(),
        ),
        ("one-class.csv", format!("a,b,label\n{rows}")),
        // Twenty samples of class 0 and one of class 1: training could never see class 1.
        (
            "lone-class.csv",
            format!("a,b,label\n{}7,7,1\n", rows.replace("yes", "0")),
        ),
        (
            "stray-label.csv",
            "a,b,label\n1,2,0\n3,4,1\n5,6,-1\n".to_string(),
        ),
        ("header-only.csv", "a,b,label\n".to_string()),
    ];
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let existing = dir.path().join("existing");
    std::fs::create_dir_all(&existing).unwrap();
    std::fs::write(existing.join("notes.txt"), "mine").unwrap();
    // Each case: the arguments after `train`, split at spaces, with `{dir}` the test's folder.
    let cases = [
        (
            "--dataset csv:{dir}/lone-class.csv",
            "outside the test split; each class needs at least 2",
        ),
        (
            "--dataset csv:{dir}/stray-label.csv",
            "line 4: label \"-1\" is not a class index",
        ),
        (
            "--dataset csv:{dir}/header-only.csv",
            "a header line and no data rows",
        ),
        (
            "--hidden 4294967296",
            "at most 1073741824 (2^30) parameters",
        ),
        (
            "--hidden 65536,65536",
            "at most 1073741824 (2^30) parameters",
        ),
        ("--dataset csv:{dir}/one-class.csv", "one class only"),
        // Every size a user gives is checked against what can run, before anything runs.
        ("--config {dir}/huge-cnn.toml", "unknown field `channels`"),
        (
            "--epochs 1000000",
            "epochs: expected an integer from 1 to 100000",
        ),
        (
            "--batch-size 4294967296",
            "batch-size: expected an integer from 1 to 65536",
        ),
        (
            "--steps 20000",
            "steps: expected an integer from 1 to 10000",
        ),
        (
            "--eval-restarts 100000000",
            "eval-restarts: expected an integer from 1 to 1000",
        ),
        (
            "--valid-steps 100000",
            "valid-steps: expected an integer from 1 to 10000",
        ),
        ("--hidden 8 --hidden 4", "cannot be used multiple times"),
        ("--eps -0.1", "eps: expected a finite number >= 0"),
        ("--lr 0", "lr: expected a finite number > 0"),
        ("--collapse-patience 0", "collapse-patience"),
        (
            "--objective magic",
            "clean, pgd, fgsm-rs, trades, freelb, a2t, miyato, ard, rslad or ensemble-at",
        ),
        ("--dataset imagenet", "imagenet"),
        ("--model resnet", "resnet"),
        ("--dataset breast-cancer --model small-cnn", "small-cnn"),
        ("--device tpu", "--device"),
        ("--devices flex,flex", "distributed data-parallel"),
        ("--config {dir}/bad.toml", "bad.toml"),
        ("--config {dir}/missing.toml", "missing.toml"),
        ("--out {dir}/existing", "is not empty"),
        ("--resume {dir}/nowhere", "cannot resume"),
        (
            "--dataset csv:/nonexistent/data.csv",
            "/nonexistent/data.csv",
        ),
    ];
    let folder = dir.path().display().to_string();
    for (args, needle) in cases {
        let args = args.replace("{dir}", &folder);
        assert_user_error(harden().arg("train").args(args.split(' ')), needle);
    }
    assert_eq!(
        std::fs::read_to_string(existing.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// Replaces the value of every timing field (and `resumed_after`) in a JSON text by `_`,
/// keeping every other byte: what a resumed run may change and nothing more.
fn without_timings(text: &str) -> String {
    let mut out = text.to_string();
    for key in [
        "\"seconds\":",
        "\"samples_per_second\":",
        "\"train_seconds\":",
        "\"resumed_after\":",
    ] {
        let mut masked = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(key) {
            let (head, tail) = rest.split_at(i + key.len());
            masked.push_str(head);
            let value = tail.trim_start();
            masked.push_str(&tail[..tail.len() - value.len()]);
            masked.push('_');
            let end = value.find([',', '}', '\n']).unwrap_or(value.len());
            rest = &value[end..];
        }
        masked.push_str(rest);
        out = masked;
    }
    out
}

/// The files of `dir` (and of its `checkpoint/` folder) whose names mark a killed write.
fn temporaries(dir: &Path) -> Vec<String> {
    [dir.to_path_buf(), dir.join("checkpoint")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect()
}

/// Each tensor of a safetensors file by name: its dtype, shape and bytes (the header's order
/// of tensors is not fixed).
fn tensors(bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, t)| {
            (
                name,
                format!("{:?} {:?} {:?}", t.dtype(), t.shape(), t.data()),
            )
        })
        .collect()
}

/// Runs `harden train ARGS` once whole and once killed at each of `points` (as `kill -9`
/// would: the process aborts, nothing is flushed) and resumed, and asserts that every resumed
/// run ends with the files of the whole one: `metrics.jsonl` and `report.json` byte for byte
/// but for their timings, the weights tensor for tensor, no temporary file left.
fn assert_killed_runs_resume(dir: &Path, args: &[&str], points: &[&str]) {
    let train = |out: &Path| {
        let mut command = Process::new(assert_cmd::cargo::cargo_bin("harden"));
        command
            .arg("train")
            .args(args)
            .arg("--quiet")
            .arg("--out")
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let full = dir.join("full");
    assert!(train(&full).status().unwrap().success());
    let read = |run: &Path, file: &str| std::fs::read(run.join(file)).unwrap();
    let text = |run: &Path, file: &str| String::from_utf8(read(run, file)).unwrap();
    for point in points {
        let killed = dir.join(point.replace([':', '.'], "_"));
        let status = train(&killed)
            .env("HARDEN_CRASH_AT", point)
            .status()
            .unwrap();
        assert_eq!(
            status.code(),
            None,
            "{point}: the crash point was not reached"
        );
        assert!(!killed.join("report.json").exists(), "{point}");

        harden()
            .args("train --device flex --quiet --resume".split(' '))
            .arg(&killed)
            .assert()
            .success();
        assert_eq!(temporaries(&killed), Vec::<String>::new(), "{point}");
        for file in ["metrics.jsonl", "report.json"] {
            assert_eq!(
                without_timings(&text(&killed, file)),
                without_timings(&text(&full, file)),
                "{point}: {file}"
            );
        }
        for file in ["best.safetensors", "final.safetensors"] {
            assert!(
                tensors(&read(&killed, file)) == tensors(&read(&full, file)),
                "{point}: {file}"
            );
        }
    }
}

/// A run killed around its epoch boundaries, during the export of its weights or during its
/// final evaluation resumes to the files of an uninterrupted run.
#[test]
fn a_run_killed_at_any_point_resumes_to_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let points = [
        // Right after the run directory is created.
        "after-rename:config.json",
        // During the first checkpoint: no epoch is complete.
        "before-rename:model-1.bpk",
        // Mid-checkpoint: the model is written, the optimizer is not.
        "before-rename:optim-3.bpk",
        // Epoch 3's checkpoint is complete, its metrics line is not written yet.
        "after-rename:scheduler-3.bpk",
        // Epoch 3's metrics line is written.
        "after-metrics:3",
        // After the last epoch: the export of the final weights.
        "before-rename:final.safetensors",
        // During the export of the best weights.
        "after-rename:best.bpk",
        "final-evaluation:",
        "before-rename:report.json",
    ];
    assert_killed_runs_resume(dir.path(), &QUICK, &points);

    // Settings cannot change on resume.
    assert_user_error(
        harden()
            .args("train --eps 0.3 --resume".split(' '))
            .arg(dir.path().join("after-metrics_3")),
        "saved settings",
    );
}

/// A run the overfitting guard stopped (here at epoch 5 of 6: robust accuracy dips while clean
/// accuracy holds, and any dip counts) and that was killed while finishing does not train on
/// when resumed.
#[test]
fn a_run_the_guard_stopped_resumes_without_training_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = QUICK.to_vec();
    args.extend(["--collapse-drop", "0", "--collapse-patience", "1"]);
    assert_killed_runs_resume(dir.path(), &args, &["final-evaluation:"]);
    let report = report(&dir.path().join("final-evaluation_"));
    assert!(report["stopped_early"].is_string(), "{report}");
    assert!(report["epochs_completed"].as_u64().unwrap() < 6, "{report}");
}

/// The flags of a small text run on 400 yelp sentences: a one-layer Transformer, A2T with word
/// recognition (so the tokenizer, the word list and the character attack all take part),
/// 4 epochs.
fn quick_text(tsv: &Path) -> Vec<String> {
    format!(
        "--dataset tsv:{} --model text-transformer --width 16 --layers 1 --heads 2 --ff 32 \
         --objective a2t --word-recognition --vocab-size 300 --max-len 24 --epochs 4 \
         --valid-attack-texts 10 --eval-samples 20 --eval-steps 2 --device flex",
        tsv.display()
    )
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

/// A text run killed at its epoch boundaries, while writing its tokenizer, its weights or
/// its report resumes to the files of an uninterrupted run.
#[test]
fn a_text_run_killed_at_any_point_resumes_to_the_same_files() {
    let Some(data) = harden_data::testing::data_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tsv = common::yelp_slice(&data, dir.path());
    let args = quick_text(&tsv);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let points = [
        "after-rename:config.json",
        "after-rename:tokenizer.json",
        "before-rename:words.json",
        "before-rename:model-1.bpk",
        "after-rename:scheduler-2.bpk",
        "after-metrics:2",
        "before-rename:final.safetensors",
        "after-rename:best.bpk",
        "final-evaluation:",
        "before-rename:report.json",
    ];
    assert_killed_runs_resume(dir.path(), &args, &points);
}

/// The same text command twice, on one thread and on two, writes the same `metrics.jsonl`
/// and `report.json` (timings aside) and the same weights: the seed decides the run.
#[test]
fn a_text_run_repeats_with_its_seed_on_any_thread_count() {
    let Some(data) = harden_data::testing::data_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tsv = common::yelp_slice(&data, dir.path());
    let run = |name: &str, threads: &str| {
        let out = dir.path().join(name);
        harden()
            .arg("train")
            .args(quick_text(&tsv))
            .args(["--quiet", "--out"])
            .arg(&out)
            .env("RAYON_NUM_THREADS", threads)
            .assert()
            .success();
        out
    };
    let (a, b, c) = (run("a", "2"), run("b", "2"), run("c", "1"));
    let text = |run: &Path, file: &str| std::fs::read_to_string(run.join(file)).unwrap();
    let read = |run: &Path, file: &str| std::fs::read(run.join(file)).unwrap();
    for other in [&b, &c] {
        for file in ["metrics.jsonl", "report.json"] {
            let (x, y) = (
                without_timings(&text(&a, file)),
                without_timings(&text(other, file)),
            );
            // The report names the thread count; nothing else may differ.
            let threads = |s: &str| {
                s.replace("\"threads\": 1", "\"threads\": 2")
                    .replace("1 threads", "2 threads")
            };
            assert_eq!(threads(&x), threads(&y), "{file}: {}", other.display());
        }
        for file in ["best.safetensors", "final.safetensors"] {
            assert!(
                tensors(&read(&a, file)) == tensors(&read(other, file)),
                "{file}"
            );
        }
    }
    // And another seed gives another run.
    let out = dir.path().join("seed");
    harden()
        .arg("train")
        .args(quick_text(&tsv))
        .args(["--quiet", "--seed", "1", "--out"])
        .arg(&out)
        .assert()
        .success();
    assert_ne!(
        without_timings(&text(&a, "metrics.jsonl")),
        without_timings(&text(&out, "metrics.jsonl"))
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
        "--hidden 16 --epochs 2 --eval-steps 2 --norm inf".split(' '),
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
        .args("train --epochs 1 --device flex --out".split(' '))
        .arg("/proc/harden-cannot-create")
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
    assert!(stderr.contains("/proc/harden-cannot-create"), "{stderr}");
}
