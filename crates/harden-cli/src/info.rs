//! `harden info`: what this build of harden can do on this machine.

use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module;
use harden_data::source::{BUILT_IN, DatasetSource, default_data_dir};
use harden_model::{ModelKind, ModelSpec, device};
use serde_json::json;

/// Arguments of `harden info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Folder holding `mnist/`, `fashion-mnist/` (default: $HARDEN_DATA_DIR, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Input shape and class count the model listing is sized for (MNIST).
const MNIST_SHAPE: [usize; 3] = [1, 28, 28];

pub fn run(args: &InfoArgs) -> Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let devices: Vec<_> = device::probe_all()
        .into_iter()
        .map(|(name, d)| match d {
            Ok(d) => json!({"name": name, "ok": true, "device": device::describe(&d)}),
            Err(e) => json!({"name": name, "ok": false, "error": e.to_string()}),
        })
        .collect();
    let datasets: Vec<_> = BUILT_IN
        .iter()
        .map(|source: &DatasetSource| {
            let origin = if source.is_embedded() {
                "embedded".to_string()
            } else {
                data_dir.display().to_string()
            };
            match source.summary(&data_dir) {
                Ok(s) => json!({
                    "name": source.to_string(), "origin": origin, "available": true,
                    "train": s.train, "test": s.test,
                    "sample_shape": s.sample_shape, "num_classes": s.num_classes,
                }),
                Err(e) => json!({
                    "name": source.to_string(), "origin": origin, "available": false,
                    "error": e.to_string(),
                }),
            }
        })
        .collect();
    let cpu = device::parse_device("auto")?;
    let models: Vec<_> = ModelKind::ALL
        .iter()
        .filter_map(|&kind| {
            if kind.is_text() {
                // Text models are sized by their vocabulary: the default 8000 tokens, 128 long.
                let config = ModelSpec::from(kind).text_config(8000, 128, 1).ok()?;
                let params = config.init(&cpu).num_params();
                return Some(json!({"name": kind.name(), "params": params, "config": config}));
            }
            let config = ModelSpec::new(kind, (kind == ModelKind::Mlp).then(|| vec![128]))
                .ok()?
                .config_for(&MNIST_SHAPE, 10)
                .ok()?;
            let params = config.init(&cpu).num_params();
            Some(json!({"name": kind.name(), "params": params, "config": config}))
        })
        .collect();
    let report = json!({
        "harden": env!("CARGO_PKG_VERSION"),
        "backends": device::compiled_backends(),
        "backends_not_compiled": device::missing_backends()
            .into_iter()
            .map(|name| json!({"name": name, "feature": name}))
            .collect::<Vec<_>>(),
        "devices": devices,
        "data_dir": data_dir,
        "datasets": datasets,
        "models_for": {"sample_shape": MNIST_SHAPE, "num_classes": 10, "mlp_hidden": [128]},
        "models": models,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn print_text(r: &serde_json::Value) {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    println!("harden {}", s(&r["harden"]));
    let backends: Vec<String> = r["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    println!("\nbackends compiled in: {}", backends.join(", "));
    let missing: Vec<String> = r["backends_not_compiled"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| format!("{} (feature `{}`)", s(&b["name"]), s(&b["feature"])))
        .collect();
    if !missing.is_empty() {
        println!("not compiled in: {}", missing.join(", "));
        println!("  add one with: cargo build --release -p harden-cli --features NAME");
    }
    println!("devices:");
    for d in r["devices"].as_array().into_iter().flatten() {
        if d["ok"].as_bool() == Some(true) {
            println!("  {:<8} ok      {}", s(&d["name"]), s(&d["device"]));
        } else {
            println!("  {:<8} failed  {}", s(&d["name"]), s(&d["error"]));
        }
    }
    println!("\ndatasets (data dir {}):", s(&r["data_dir"]));
    for d in r["datasets"].as_array().into_iter().flatten() {
        if d["available"].as_bool() == Some(true) {
            println!(
                "  {:<14} {:<9} train {:>6}  test {:>6}  sample {}  {} classes",
                s(&d["name"]),
                if s(&d["origin"]) == "embedded" {
                    "embedded"
                } else {
                    "found"
                },
                d["train"],
                d["test"],
                d["sample_shape"],
                d["num_classes"]
            );
        } else {
            println!("  {:<14} missing   {}", s(&d["name"]), s(&d["error"]));
        }
    }
    println!("  csv:PATH, tsv:PATH: your own CSV or TSV files");
    println!("\nmodels (parameters for MNIST input [1, 28, 28], 10 classes, mlp hidden 128):");
    for m in r["models"].as_array().into_iter().flatten() {
        println!("  {:<10} {:>10} parameters", s(&m["name"]), m["params"]);
    }
}
