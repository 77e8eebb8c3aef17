//! `cargo xtask dist [--out DIR] [--variants cpu,wgpu]`: the release archives of the `harden`
//! binary, so a user can run harden without compiling anything.
//!
//! Each variant is built with `cargo build --profile dist -p harden-cli --locked` and its
//! features, then packed with the README and the changelog into
//! `harden-<version>-<target>-<variant>.tar.gz`, beside a `.sha256` file in `sha256sum`'s format
//! (`sha256sum -c` checks it). Archives are written to a temporary name and renamed, so an
//! interrupted run never leaves a half-written archive under the final name.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

/// A release variant: its name in the archive's file name and the cargo features it adds to
/// the CPU default.
pub const VARIANTS: [(&str, &str); 2] = [("cpu", ""), ("wgpu", "wgpu")];

/// Files of the repository packed beside the binary.
const DOCS: [&str; 2] = ["README.md", "CHANGELOG.md"];

/// Options of `cargo xtask dist`.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// Folder the archives are written to (default `target/dist-archives`).
    pub out: Option<PathBuf>,
    /// The variants to build, a subset of [`VARIANTS`]' names.
    pub variants: Vec<String>,
}

impl Options {
    /// Parses `--out DIR` and `--variants a,b`.
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut o = Self {
            out: None,
            variants: VARIANTS.map(|(name, _)| name.to_string()).to_vec(),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--out" => o.out = Some(PathBuf::from(value()?)),
                "--variants" => {
                    o.variants = value()?.split(',').map(String::from).collect();
                    if let Some(v) = o
                        .variants
                        .iter()
                        .find(|v| !VARIANTS.iter().any(|(name, _)| name == v))
                    {
                        bail!(
                            "unknown variant {v:?}; expected some of {}",
                            VARIANTS.map(|(name, _)| name).join(",")
                        );
                    }
                }
                other => {
                    bail!(
                        "unknown flag {other}; usage: cargo xtask dist [--out DIR] [--variants cpu,wgpu]"
                    )
                }
            }
        }
        Ok(o)
    }
}

/// `harden-0.1.0-x86_64-unknown-linux-gnu-cpu`: the archive's name without `.tar.gz`, and the
/// folder inside it.
pub fn archive_stem(version: &str, target: &str, variant: &str) -> String {
    format!("harden-{version}-{target}-{variant}")
}

/// The host's target triple, from `rustc -vV`.
fn host_target() -> Result<String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string()))
        .arg("-vV")
        .output()
        .context("cannot run rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV printed no host line")
}

/// The workspace version, from `[workspace.package]` in `Cargo.toml`.
pub fn workspace_version(manifest: &str) -> Result<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[workspace.package]";
        } else if in_package && let Some(rest) = line.strip_prefix("version = \"") {
            return Ok(rest.trim_end_matches('"').to_string());
        }
    }
    bail!("Cargo.toml has no version in [workspace.package]")
}

/// Packs `files` (each stored under `stem/` by its file name, the binary executable) into a
/// gzipped tar at `archive`, and writes `archive.sha256`. Returns the checksum's hex digits.
///
/// # Errors
///
/// A file that cannot be read, or an archive that cannot be written.
pub fn pack(archive: &Path, stem: &str, binary: &Path, files: &[PathBuf]) -> Result<String> {
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .context("archive name")?
        .to_string();
    let partial = archive.with_file_name(format!(".{name}.partial"));
    {
        let file = File::create(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::best()));
        tar.mode(tar::HeaderMode::Deterministic);
        for (path, mode) in
            std::iter::once((binary, 0o755)).chain(files.iter().map(|f| (f.as_path(), 0o644)))
        {
            let mut bytes = Vec::new();
            File::open(path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .with_context(|| format!("cannot read {}", path.display()))?;
            let file_name = path.file_name().context("file name")?.to_string_lossy();
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(mode);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, format!("{stem}/{file_name}"), bytes.as_slice())?;
        }
        tar.into_inner()?.finish()?.sync_all()?;
    }
    let mut hasher = Sha256::new();
    let mut bytes = Vec::new();
    File::open(&partial)?.read_to_end(&mut bytes)?;
    hasher.update(&bytes);
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::rename(&partial, archive)?;
    let sum = archive.with_file_name(format!("{name}.sha256"));
    let mut f = File::create(&sum).with_context(|| format!("cannot write {}", sum.display()))?;
    writeln!(f, "{hex}  {name}")?;
    Ok(hex)
}

/// Builds and packs every variant of `o`; returns the archives written.
pub fn run(root: &Path, cargo: &str, o: &Options) -> Result<Vec<PathBuf>> {
    let version = workspace_version(&std::fs::read_to_string(root.join("Cargo.toml"))?)?;
    let target = host_target()?;
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| root.join("target/dist-archives"));
    std::fs::create_dir_all(&out).with_context(|| format!("--out {}", out.display()))?;
    let docs: Vec<PathBuf> = DOCS.iter().map(|d| root.join(d)).collect();
    let mut written = Vec::new();
    for (variant, features) in VARIANTS
        .iter()
        .filter(|(name, _)| o.variants.iter().any(|v| v == name))
    {
        let mut args = vec!["build", "--profile", "dist", "-p", "harden-cli", "--locked"];
        if !features.is_empty() {
            args.extend(["--features", features]);
        }
        eprintln!("$ cargo {}", args.join(" "));
        let status = Command::new(cargo)
            .args(&args)
            .current_dir(root)
            .status()
            .with_context(|| format!("cannot run {cargo}"))?;
        if !status.success() {
            bail!("building the {variant} variant failed ({status})");
        }
        let stem = archive_stem(&version, &target, variant);
        let archive = out.join(format!("{stem}.tar.gz"));
        let hex = pack(&archive, &stem, &root.join("target/dist/harden"), &docs)?;
        eprintln!("wrote {} (sha256 {hex})", archive.display());
        written.push(archive);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_name_known_variants_only() {
        let parse =
            |s: &str| Options::parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>());
        assert_eq!(parse("").unwrap().variants, ["cpu", "wgpu"]);
        assert_eq!(parse("--variants wgpu").unwrap().variants, ["wgpu"]);
        let err = parse("--variants cpu,metal").unwrap_err().to_string();
        assert!(
            err.contains("\"metal\"") && err.contains("cpu,wgpu"),
            "{err}"
        );
        assert!(parse("--out").is_err());
        assert!(parse("--frobnicate").is_err());
    }

    #[test]
    fn the_version_is_the_workspace_one() {
        let manifest =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
        assert_eq!(
            workspace_version(&manifest).unwrap(),
            env!("CARGO_PKG_VERSION")
        );
        assert!(workspace_version("[package]\nversion = \"1.0.0\"\n").is_err());
    }

    /// The archive unpacks to `stem/` with an executable binary and the docs, and its checksum
    /// file is what `sha256sum` writes.
    #[test]
    fn pack_writes_an_archive_and_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("harden");
        std::fs::write(&binary, b"\x7fELF not really").unwrap();
        let readme = dir.path().join("README.md");
        std::fs::write(&readme, "# harden\n").unwrap();
        let stem = archive_stem("0.1.0", "x86_64-unknown-linux-gnu", "cpu");
        assert_eq!(stem, "harden-0.1.0-x86_64-unknown-linux-gnu-cpu");
        let archive = dir.path().join(format!("{stem}.tar.gz"));
        let hex = pack(&archive, &stem, &binary, std::slice::from_ref(&readme)).unwrap();

        let bytes = std::fs::read(&archive).unwrap();
        let expected: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
        let sum =
            std::fs::read_to_string(dir.path().join(format!("{stem}.tar.gz.sha256"))).unwrap();
        assert_eq!(sum, format!("{hex}  {stem}.tar.gz\n"));

        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut entries: Vec<(String, u32, Vec<u8>)> = tar
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mode = e.header().mode().unwrap();
                let mut content = Vec::new();
                e.read_to_end(&mut content).unwrap();
                (path, mode, content)
            })
            .collect();
        entries.sort();
        assert_eq!(
            entries,
            [
                (format!("{stem}/README.md"), 0o644, b"# harden\n".to_vec()),
                (
                    format!("{stem}/harden"),
                    0o755,
                    b"\x7fELF not really".to_vec()
                ),
            ]
        );
        // Packing again gives the same bytes: the archive does not depend on when it was made.
        let again = pack(&archive, &stem, &binary, &[readme]).unwrap();
        assert_eq!(again, hex);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
