//! Helpers that the CLI test files share.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;
use assert_cmd::assert::Assert;

/// The `harden` binary of this build.
pub fn harden() -> Command {
    Command::cargo_bin("harden").unwrap()
}

/// Runs `cmd` and asserts that it fails the way every user mistake must: exit code 2, exactly
/// one `error:` line on standard error, containing `needle`, and no panic.
///
/// # Panics
///
/// When any of that does not hold (the message shows the arguments and standard error).
pub fn assert_user_error(cmd: &mut Command, needle: &str) {
    let assert = cmd.assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    // Vulkan's loader may warn about XDG_RUNTIME_DIR on machines without a session.
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error:") && !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert_eq!(errors.len(), 1, "{cmd:?}: {stderr}");
    assert!(errors[0].contains(needle), "{cmd:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{cmd:?}: {stderr}");
}

/// The architecture flags of the 16-wide digits MLP the tests save.
pub const MLP_16: [&str; 4] = ["--model", "mlp", "--hidden", "16"];

/// Runs `cmd`, asserts that it succeeds, and parses its standard output as one JSON value.
///
/// # Panics
///
/// When the command fails or its output is not JSON.
pub fn stdout_json(cmd: &mut Command) -> serde_json::Value {
    let stdout = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&stdout).unwrap()
}

/// Runs `harden train ARGS --device flex --quiet --out OUT` and asserts that it succeeds.
///
/// # Panics
///
/// When the run fails.
pub fn train_quietly<S: AsRef<std::ffi::OsStr>>(out: &Path, args: impl IntoIterator<Item = S>) {
    harden()
        .arg("train")
        .args(args)
        .args(["--device", "flex", "--quiet", "--out"])
        .arg(out)
        .assert()
        .success();
}

/// Runs `harden attack RUN --eps EPS --samples N --device flex --out OUT` and asserts that it
/// succeeds.
///
/// # Panics
///
/// When the command fails.
pub fn attack(run: &Path, out: &Path, eps: &str, samples: &str) -> Assert {
    harden()
        .arg("attack")
        .arg(run)
        .args([
            "--eps",
            eps,
            "--samples",
            samples,
            "--device",
            "flex",
            "--out",
        ])
        .arg(out)
        .assert()
        .success()
}

/// The first 400 yelp sentences of the shared data folder `data` (real data, balanced enough)
/// as a TSV of its own in `dir`.
pub fn yelp_slice(data: &Path, dir: &Path) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(data.join("text/sentiment-labelled-sentences/yelp.tsv")).unwrap();
    let slice: Vec<&str> = text.lines().take(401).collect();
    let path = dir.join("yelp400.tsv");
    std::fs::write(&path, slice.join("\n") + "\n").unwrap();
    path
}

/// Trains `base` (an MLP with 32 hidden units on the digits, clean, 4 epochs), then `lora`:
/// rank-2 adapters on it for 3 epochs, its second layer trained in full.
pub fn base_and_lora(base: &Path, lora: &Path) {
    train_quietly(base, "--objective clean --hidden 32 --epochs 4".split(' '));
    train_quietly(
        lora,
        [
            "--init",
            base.to_str().unwrap(),
            "--lora-rank",
            "2",
            "--lora-full",
            "layers.1",
            "--epochs",
            "3",
        ],
    );
}

/// [`train_quietly`] on the text dataset `tsv:TSV` with `args`.
pub fn train_on_tsv(out: &Path, tsv: &Path, args: &[&str]) {
    let dataset = format!("tsv:{}", tsv.display());
    train_quietly(out, ["--dataset", dataset.as_str()].iter().chain(args));
}
