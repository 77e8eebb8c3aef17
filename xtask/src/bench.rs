//! `cargo xtask bench`: end-to-end workloads on every device, and the PyTorch reference.
//!
//! Each workload runs in a fresh process of the `workload` binary (`benches/src/bin`), so its
//! peak resident memory is its own; the median of the runs is reported. Results go to
//! `target/bench/report.json`, `report.md` (ratios to flex and to PyTorch) and `report.svg`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

const WORKLOADS: [&str; 7] = [
    "fgsm-rs-epoch",
    "pgd10-epoch",
    "standard-eval",
    "predict-mnist",
    "predict-text",
    "text-clean-epoch",
    "text-freelb-epoch",
];

/// Options of `cargo xtask bench`.
pub struct Options {
    pub samples: usize,
    pub eval_samples: usize,
    pub runs: usize,
    pub threads: usize,
    pub devices: Vec<String>,
    /// Backend features to build (default: those of `devices`, see [`Options::features`]).
    pub features: Option<String>,
    /// The workloads to run (default: all of [`WORKLOADS`]).
    pub workloads: Vec<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut o = Self {
            samples: 5000,
            eval_samples: 1000,
            runs: 3,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            devices: ["flex", "ndarray", "wgpu"].map(String::from).to_vec(),
            features: None,
            workloads: WORKLOADS.map(String::from).to_vec(),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--quick" => {
                    o.samples = 1000;
                    o.eval_samples = 100;
                    o.runs = 1;
                }
                "--samples" => o.samples = value()?.parse().context("--samples")?,
                "--eval-samples" => o.eval_samples = value()?.parse().context("--eval-samples")?,
                "--runs" => o.runs = value()?.parse().context("--runs")?,
                "--threads" => o.threads = value()?.parse().context("--threads")?,
                "--devices" => o.devices = value()?.split(',').map(String::from).collect(),
                "--features" => o.features = Some(value()?.clone()),
                "--workloads" => {
                    o.workloads = value()?.split(',').map(String::from).collect();
                    if let Some(w) = o
                        .workloads
                        .iter()
                        .find(|w| !WORKLOADS.contains(&w.as_str()))
                    {
                        bail!(
                            "unknown workload {w}; expected some of {}",
                            WORKLOADS.join(",")
                        );
                    }
                }
                other => bail!(
                    "unknown flag {other}; usage: cargo xtask bench [--quick] [--samples N] [--eval-samples N] [--runs N] [--threads N] [--devices flex,ndarray,wgpu[,cuda]] [--features flex,wgpu,...] [--workloads fgsm-rs-epoch,pgd10-epoch,...]"
                ),
            }
        }
        if o.runs == 0 || o.samples == 0 || o.threads == 0 {
            bail!("--runs, --samples and --threads must be at least 1");
        }
        Ok(o)
    }

    /// The backend features the workload binary is built with: `--features` as given, else
    /// `flex` (the baseline every ratio is taken to) and the backend of each of `--devices`,
    /// so comparing backends needs no flag beyond the devices.
    pub fn features(&self) -> String {
        if let Some(features) = &self.features {
            return features.clone();
        }
        let mut features = vec!["flex"];
        for device in &self.devices {
            let backend = device.split(':').next().unwrap_or_default();
            if BACKENDS.contains(&backend) && !features.contains(&backend) {
                features.push(backend);
            }
        }
        features.join(",")
    }
}

/// The benches crate's backend features, each named after its backend.
const BACKENDS: [&str; 5] = ["flex", "ndarray", "wgpu", "cuda", "cpu"];

fn data_dir(root: &Path) -> PathBuf {
    std::env::var_os("HARDEN_DATA_DIR").map_or_else(|| root.join("../shared/data"), PathBuf::from)
}

/// Runs `command` and parses the last line of its standard output as JSON.
fn json_line(mut command: Command) -> Result<Value> {
    let out = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rfind(|l| !l.contains("XDG_RUNTIME_DIR"))
                .unwrap_or("failed")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().context("no output")?;
    Ok(serde_json::from_str(line)?)
}

/// Run `i` of harden against run `i` of PyTorch (they ran one after the other): the median,
/// smallest and largest of the speed ratios, or `None` when a side has no speeds.
fn paired_ratios(harden: &[Value], torch: &[Value]) -> Option<Value> {
    let speed = |r: &Value| r["samples_per_second"].as_f64();
    let mut ratios: Vec<f64> = harden
        .iter()
        .zip(torch)
        .map(|(h, t)| Some(speed(h)? / speed(t)?))
        .collect::<Option<_>>()?;
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some(json!({
        "median": ratios[ratios.len() / 2],
        "min": ratios[0],
        "max": ratios[ratios.len() - 1],
        "ratios": ratios,
    }))
}

/// The median run of `runs` (by samples/s), with the largest peak memory of all runs.
fn summarise(runs: Vec<Value>) -> Value {
    if runs.iter().any(|r| r.get("skipped").is_some()) {
        return runs[0].clone();
    }
    let mut sorted = runs.clone();
    sorted.sort_by(|a, b| {
        a["samples_per_second"]
            .as_f64()
            .partial_cmp(&b["samples_per_second"].as_f64())
            .expect("finite")
    });
    let mut median = sorted[sorted.len() / 2].clone();
    let peak = runs
        .iter()
        .filter_map(|r| r["peak_rss_mib"].as_f64())
        .fold(0.0, f64::max);
    median["peak_rss_mib"] = json!(peak);
    median["ok"] = json!(runs.iter().all(|r| r["ok"] == json!(true)));
    median["runs"] = json!(
        runs.iter()
            .map(|r| r["samples_per_second"].clone())
            .collect::<Vec<_>>()
    );
    median
}

pub fn run(root: &Path, cargo: &str, o: &Options) -> Result<()> {
    let mut build = vec![
        "build",
        "--release",
        "-p",
        "harden-benches",
        "--bin",
        "workload",
    ];
    let features = o.features();
    build.extend(["--no-default-features", "--features", features.as_str()]);
    eprintln!("$ cargo {}", build.join(" "));
    let status = Command::new(cargo).args(&build).status()?;
    if !status.success() {
        bail!("building the workload binary failed");
    }
    let binary = root.join("target/release/workload");
    let data = data_dir(root);
    let torch = Command::new("python3")
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    if torch.is_none() {
        eprintln!("PyTorch reference skipped: no python3 with torch on this machine");
    }
    // standard-eval's weights, saved by harden's run and attacked by PyTorch's next.
    let weights = root.join("target/bench/standard-eval.safetensors");
    std::fs::create_dir_all(root.join("target/bench"))?;
    let mut results = Vec::new();
    let mut reference = Vec::new();
    for workload in o.workloads.iter().map(String::as_str) {
        let samples = match workload {
            "standard-eval" => o.eval_samples,
            // The whole MNIST test split, as `harden predict` on its IDX file reads it.
            "predict-mnist" => 10_000,
            _ => o.samples,
        };
        // Runs interleaved (each device, then PyTorch, run after run), so a change of the
        // machine's load falls on both sides of a ratio.
        let mut runs: Vec<Vec<Value>> = vec![Vec::new(); o.devices.len()];
        let mut unavailable = vec![false; o.devices.len()];
        let mut torch_runs = Vec::new();
        for run in 0..o.runs {
            let _ = std::fs::remove_file(&weights);
            for (d, device) in o.devices.iter().enumerate() {
                if unavailable[d] {
                    continue;
                }
                eprintln!(
                    "{workload} on {device}, {samples} samples, run {}/{}",
                    run + 1,
                    o.runs
                );
                let mut command = Command::new(&binary);
                command
                    .args([workload, device.as_str(), &samples.to_string()])
                    .env("RAYON_NUM_THREADS", o.threads.to_string())
                    .env("HARDEN_DATA_DIR", &data)
                    .env("HARDEN_BENCH_WEIGHTS", &weights);
                match json_line(command) {
                    Ok(v) => runs[d].push(v),
                    Err(e) => {
                        eprintln!("  {device} unavailable: {e}");
                        unavailable[d] = true;
                    }
                }
            }
            if torch.is_some() {
                eprintln!("{workload} on PyTorch, run {}/{}", run + 1, o.runs);
                let mut command = Command::new("python3");
                command
                    .arg(root.join("benches/reference/workloads.py"))
                    .args([workload, &samples.to_string(), &o.threads.to_string()])
                    .arg(&data)
                    .env("OMP_NUM_THREADS", o.threads.to_string())
                    .env("HARDEN_BENCH_WEIGHTS", &weights);
                torch_runs.push(json_line(command)?);
            }
        }
        for device_runs in runs.into_iter().filter(|r| !r.is_empty()) {
            let mut summary = summarise(device_runs.clone());
            if let Some(spread) = paired_ratios(&device_runs, &torch_runs) {
                summary["vs_pytorch"] = spread;
            }
            results.push(summary);
        }
        if !torch_runs.is_empty() {
            reference.push(summarise(torch_runs));
        }
    }
    let reference_note = match &torch {
        Some(version) => format!("PyTorch {version}, runs interleaved with harden's"),
        None => "skipped: no python3 with torch on this machine".to_string(),
    };

    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let report = json!({
        "machine": {
            "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        },
        "harden": env!("CARGO_PKG_VERSION"),
        "burn": "0.22.1",
        "threads": o.threads,
        "samples": o.samples,
        "eval_samples": o.eval_samples,
        "runs": o.runs,
        "results": results,
        "reference": reference,
        "reference_note": reference_note,
    });
    std::fs::write(
        out_dir.join("report.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    let md = markdown(&report);
    std::fs::write(out_dir.join("report.md"), &md)?;
    chart(&out_dir.join("report.svg"), &report)?;
    println!("{md}");
    eprintln!("wrote {}/report.{{json,md,svg}}", out_dir.display());
    Ok(())
}

fn speed(results: &[Value], workload: &str, device: &str) -> Option<f64> {
    results
        .iter()
        .find(|r| r["workload"] == workload && r["device"] == device)
        .and_then(|r| r["samples_per_second"].as_f64())
}

fn markdown(report: &Value) -> String {
    let results = report["results"].as_array().cloned().unwrap_or_default();
    let reference = report["reference"].as_array().cloned().unwrap_or_default();
    let mut md = format!(
        "# harden benchmarks\n\n{} threads, {} training samples per epoch workload, {} evaluation samples, median of {} run(s). {}. vs PyTorch: the median of the run-by-run ratios (smallest-largest).\n\n| workload | device | samples/s | vs flex | vs PyTorch | peak RSS (MiB) | checks |\n|---|---|---|---|---|---|---|\n",
        report["threads"],
        report["samples"],
        report["eval_samples"],
        report["runs"],
        report["reference_note"].as_str().unwrap_or("")
    );
    for r in &results {
        let w = r["workload"].as_str().unwrap_or("");
        let d = r["device"].as_str().unwrap_or("");
        let Some(s) = r["samples_per_second"].as_f64() else {
            md += &format!("| {w} | {d} | skipped: {} | | | | |\n", r["skipped"]);
            continue;
        };
        let ratio = |base: Option<f64>| base.map_or("-".to_string(), |b| format!("{:.2}x", s / b));
        let torch = match &r["vs_pytorch"] {
            Value::Null => "-".to_string(),
            v => format!(
                "{:.2}x ({:.2}-{:.2})",
                v["median"].as_f64().unwrap_or(f64::NAN),
                v["min"].as_f64().unwrap_or(f64::NAN),
                v["max"].as_f64().unwrap_or(f64::NAN)
            ),
        };
        md += &format!(
            "| {w} | {d} | {s:.0} | {} | {torch} | {:.0} | {} |\n",
            ratio(speed(&results, w, "flex")),
            r["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
            if r["ok"] == json!(true) {
                "pass"
            } else {
                "FAIL"
            }
        );
    }
    // The same weights attacked by both sides: their robust accuracies should agree.
    let robust = |r: &Value| r["checks"]["robust_accuracy"].as_f64();
    let attacked: Vec<String> = results
        .iter()
        .chain(&reference)
        .filter(|r| r["workload"] == "standard-eval")
        .filter_map(|r| {
            Some(format!(
                "{} {:.1}%",
                r["device"].as_str()?,
                100.0 * robust(r)?
            ))
        })
        .collect();
    for t in &reference {
        if let Some(s) = t["samples_per_second"].as_f64() {
            md += &format!(
                "| {} | PyTorch CPU | {s:.0} | | 1.00x | {:.0} | {} |\n",
                t["workload"].as_str().unwrap_or(""),
                t["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
                if t["ok"] == json!(true) {
                    "pass"
                } else {
                    "FAIL"
                }
            );
        }
    }
    if !attacked.is_empty() {
        md += &format!(
            "\nstandard-eval robust accuracy (the median run; PyTorch attacks the weights harden's run before it saved): {}\n",
            attacked.join(", ")
        );
    }
    md
}

fn chart(path: &Path, report: &Value) -> Result<()> {
    use plotters::prelude::*;
    let results = report["results"].as_array().cloned().unwrap_or_default();
    let bars: Vec<(String, f64)> = results
        .iter()
        .filter_map(|r| {
            let flex = speed(&results, r["workload"].as_str()?, "flex")?;
            Some((
                format!("{} {}", r["workload"].as_str()?, r["device"].as_str()?),
                r["samples_per_second"].as_f64()? / flex,
            ))
        })
        .collect();
    let root = SVGBackend::new(path, (900, 60 + 28 * bars.len().max(1) as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "samples/s relative to flex (higher is faster)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(260)
        .build_cartesian_2d(0.0..max, (0..bars.len().max(1)).into_segmented())?;
    chart
        .configure_mesh()
        .y_labels(bars.len().max(1))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => bars.get(*i).map_or(String::new(), |b| b.0.clone()),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
        Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (*v, SegmentValue::Exact(i + 1)),
            ],
            BLUE.mix(0.6).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &str) -> Options {
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        Options::parse(&args).unwrap()
    }

    #[test]
    fn the_devices_compared_decide_the_features_built() {
        assert_eq!(options("").features(), "flex,ndarray,wgpu");
        assert_eq!(options("--devices flex").features(), "flex");
        assert_eq!(
            options("--devices wgpu:1,cuda:0,wgpu").features(),
            "flex,wgpu,cuda"
        );
        assert_eq!(options("--devices ndarray,auto").features(), "flex,ndarray");
        assert_eq!(
            options("--devices flex,wgpu --features flex,ndarray").features(),
            "flex,ndarray"
        );
    }
}
