//! `harden train --init --lora-rank`, `--teacher` and `--surrogates`, and `harden eval
//! --adapters`, through the real binary.

mod common;

use common::{assert_user_error, base_and_lora, harden, stdout_json};

#[test]
fn eval_gives_the_same_numbers_for_merged_weights_and_base_plus_adapters() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let lora = dir.path().join("lora");
    base_and_lora(&base, &lora);
    let base_s = base.to_str().unwrap();
    let eval = |args: &[&str]| {
        let report = stdout_json(
            harden()
                .arg("eval")
                .args(args)
                .args("--device flex --eps 0.1 --attack pgd".split(' ')),
        );
        (
            report["evaluation"]["clean_accuracy"].as_f64().unwrap(),
            report["evaluation"]["robust_accuracy"].as_f64().unwrap(),
        )
    };
    let lora_s = lora.to_str().unwrap();
    let merged = eval(&[lora_s]);
    let unmerged = eval(&[base_s, "--adapters", lora_s]);
    assert_eq!(merged, unmerged);
    let plain = eval(&[base_s]);
    assert_ne!(plain, merged, "the adapters changed nothing");

    // The transfer attack alone: it needs a surrogate, and draws no curve.
    assert_user_error(
        harden().arg("eval").args([
            base_s, "--attack", "transfer", "--eps", "0.1", "--device", "flex",
        ]),
        "needs --surrogate",
    );
    let surrogate = base.join("best.bpk");
    assert_user_error(
        harden()
            .arg("eval")
            .args([lora_s, "--attack", "transfer", "--eps-list", "0,0.1"])
            .args("--device flex --surrogate-hidden 32 --surrogate".split(' '))
            .arg(&surrogate),
        "--eps-list",
    );

    // Adapters need a LoRA run, and weights of another size do not take them.
    assert_user_error(
        harden().arg("eval").args([
            base_s,
            "--adapters",
            base_s,
            "--eps",
            "0.1",
            "--device",
            "flex",
        ]),
        "not a LoRA run",
    );
    assert_user_error(
        harden()
            .arg("eval")
            .args([base_s, "--hidden", "16", "--adapters", lora_s])
            .args("--eps 0.1 --device flex".split(' ')),
        "do not match",
    );
}

#[test]
fn companions_are_named_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    assert_user_error(
        harden().args(["train", "--objective", "rslad", "--out", out_s]),
        "teacher",
    );
    assert_user_error(
        harden().args([
            "train",
            "--objective",
            "ard",
            "--teacher",
            "no/such/run",
            "--out",
            out_s,
        ]),
        "teacher no/such/run: no such run directory or weights file",
    );
    assert_user_error(
        harden().args(["train", "--lora-rank", "4", "--out", out_s]),
        "--init",
    );
    assert_user_error(
        harden().args(["train", "--objective", "ensemble-at", "--out", out_s]),
        "surrogates",
    );
    assert!(!out.exists(), "a refused run leaves no directory");
}
