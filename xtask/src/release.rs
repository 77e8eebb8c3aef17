//! `cargo xtask release <version> [--publish]`.
//!
//! Refuses a dirty tree, requires a `## [<version>]` entry in `CHANGELOG.md`, runs the CI
//! checks, sets the version in the one place every crate reads it (`[workspace.package]` and
//! the `harden-*` entries of `[workspace.dependencies]`), then packages the crates in
//! dependency order: `cargo package` (a dry run) or, with `--publish`, `cargo publish`. Last it
//! builds the binary's release archives (CPU and wgpu, each with its checksum) as
//! `cargo xtask dist` does, in `target/dist-archives`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Publishable crates, each after the crates it depends on.
pub const CRATES: [&str; 5] = [
    "harden-data",
    "harden-model",
    "harden-adversarial",
    "harden-train",
    "harden-cli",
];

fn is_version(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `Cargo.toml` with every harden version set to `version`.
pub fn bump(manifest: &str, version: &str) -> Result<String> {
    let mut out = String::with_capacity(manifest.len());
    let mut section = String::new();
    let mut changed = 0;
    for line in manifest.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            section = trimmed.to_string();
        }
        let new = if section == "[workspace.package]" && trimmed.starts_with("version =") {
            changed += 1;
            format!("version = \"{version}\"")
        } else if section == "[workspace.dependencies]"
            && trimmed.starts_with("harden-")
            && let Some(start) = line.find("version = \"")
        {
            let rest = &line[start + 11..];
            let end = rest.find('"').context("unterminated version")?;
            changed += 1;
            format!(
                "{}version = \"{version}\"{}",
                &line[..start],
                &rest[end + 1..]
            )
        } else {
            line.to_string()
        };
        out.push_str(&new);
        out.push('\n');
    }
    // The package version, and one workspace dependency per library crate (nothing depends on
    // the CLI).
    if changed != CRATES.len() {
        bail!(
            "expected 1 package version and {} harden dependencies in Cargo.toml, found {changed} versions",
            CRATES.len() - 1
        );
    }
    Ok(out)
}

pub fn run(root: &Path, cargo: &str, args: &[String], ci: impl Fn() -> Result<()>) -> Result<()> {
    let Some(version) = args.first() else {
        bail!("usage: cargo xtask release <version> [--publish]");
    };
    if !is_version(version) {
        bail!("{version:?} is not a version like 1.2.3");
    }
    let publish = args[1..].iter().any(|a| a == "--publish");
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(root)
        .output()
        .context("cannot run git")?;
    if !status.stdout.is_empty() {
        bail!("the working tree has uncommitted changes; commit or stash them first");
    }
    let changelog = std::fs::read_to_string(root.join("CHANGELOG.md")).context("CHANGELOG.md")?;
    if !changelog
        .lines()
        .any(|l| l.starts_with(&format!("## [{version}]")))
    {
        bail!("CHANGELOG.md has no `## [{version}]` entry");
    }
    ci()?;
    let manifest_path = root.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)?;
    std::fs::write(&manifest_path, bump(&manifest, version)?)?;
    eprintln!("set every crate to {version}");
    let mut command = Command::new(cargo);
    if publish {
        for krate in CRATES {
            let ok = Command::new(cargo)
                .args(["publish", "-p", krate])
                .current_dir(root)
                .status()?;
            if !ok.success() {
                bail!("cargo publish -p {krate} failed");
            }
        }
        return archives(root, cargo);
    }
    // One invocation packages interdependent workspace crates against each other.
    command
        .args(["package", "--no-verify", "--allow-dirty"])
        .current_dir(root);
    for krate in CRATES {
        command.args(["-p", krate]);
    }
    if !command.status()?.success() {
        bail!("cargo package failed");
    }
    eprintln!(
        "packaged {} (dry run; --publish uploads)",
        CRATES.join(", ")
    );
    archives(root, cargo)
}

/// The release archives of every variant, in `target/dist-archives`.
fn archives(root: &Path, cargo: &str) -> Result<()> {
    let written = crate::dist::run(root, cargo, &crate::dist::Options::parse(&[])?)?;
    eprintln!("release archives, each with its .sha256:");
    for archive in written {
        eprintln!("  {}", archive.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_sets_every_harden_version_and_nothing_else() {
        let manifest =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
        let bumped = bump(&manifest, "0.2.0").unwrap();
        assert!(bumped.contains("[workspace.package]\nversion = \"0.2.0\""));
        assert_eq!(bumped.matches("version = \"0.2.0\"").count(), CRATES.len());
        assert!(bumped.contains("burn = { version = \"=0.22.1\""));
        assert!(is_version("1.2.3") && is_version("1.0.0-rc.1") && !is_version("1.2"));
    }
}
