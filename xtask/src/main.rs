//! Project automation: `cargo xtask ci` runs the checks CI runs, cheapest first;
//! `cargo xtask bench` runs the end-to-end benchmarks; `cargo xtask dist` builds the release
//! archives of the binary; `cargo xtask release` cuts a release.

mod bench;
mod dist;
mod release;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The checks `.ci/run` runs, in order: formatting, lints, tests on the default CPU backend,
/// then the tests of the crates that run on every compiled-in backend, with wgpu and ndarray.
const CI_STEPS: [&[&str]; 4] = [
    &["fmt", "--all", "--check"],
    &[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ],
    &["test", "--workspace"],
    GPU_TESTS,
];

/// The tests of the crates with per-backend tests, built once with the wgpu and ndarray
/// backends (`harden-train`'s features turn them on in the crates below it).
const GPU_TESTS: &[&str] = &[
    "test",
    "-p",
    "harden-model",
    "-p",
    "harden-adversarial",
    "-p",
    "harden-train",
    "--features",
    "harden-train/wgpu,harden-train/ndarray",
];

fn cargo_path() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = cargo_path();
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn ci() -> Result<()> {
    CI_STEPS.iter().try_for_each(|step| cargo(step))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::run(&root, &cargo_path(), &bench::Options::parse(&args[1..])?),
        Some("dist") => {
            dist::run(&root, &cargo_path(), &dist::Options::parse(&args[1..])?).map(drop)
        }
        Some("release") => release::run(&root, &cargo_path(), &args[1..], ci),
        _ => bail!(
            "usage: cargo xtask ci | bench [--quick ...] | dist [--out DIR] [--variants cpu,wgpu] | release <version> [--publish]"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_script_runs_the_gpu_tests_xtask_runs() {
        let script =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/run")).unwrap();
        let start = script
            .find("GPU_TEST_ARGS=(")
            .expect("GPU_TEST_ARGS in .ci/run")
            + 15;
        let end = start + script[start..].find(')').unwrap();
        let args: Vec<&str> = script[start..end].split_whitespace().collect();
        assert_eq!(args, GPU_TESTS[1..]);
        assert!(script.contains("cargo test \"${GPU_TEST_ARGS[@]}\""));
        assert!(script.contains("cargo test --workspace\n"));
    }
}
