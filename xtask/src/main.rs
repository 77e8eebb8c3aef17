//! Project automation: `cargo xtask ci` runs the checks CI runs, cheapest first;
//! `cargo xtask bench` runs the end-to-end benchmarks; `cargo xtask release` cuts a release.

mod bench;
mod release;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The checks `.ci/run` runs, in order: formatting, lints, tests.
const CI_STEPS: [&[&str]; 3] = [
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
        Some("release") => release::run(&root, &cargo_path(), &args[1..], ci),
        _ => bail!("usage: cargo xtask ci | bench [--quick ...] | release <version> [--publish]"),
    }
}
