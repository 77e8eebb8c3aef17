//! One end-to-end workload on one device, timed, checked, and printed as one JSON line.
//!
//! `cargo xtask bench` runs this binary once per workload, device and repetition, so each run
//! starts from a fresh process and its peak resident memory is its own.
//!
//! ```sh
//! workload <fgsm-rs-epoch|pgd10-epoch|standard-eval|predict-mnist|predict-text|text-clean-epoch|text-freelb-epoch> <device> <samples>
//! ```

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use harden_adversarial::eval::accuracy;
use harden_adversarial::suite::evaluate;
use harden_adversarial::{AttackRng, Norm, ObjectiveConfig, PgdConfig, Suite, ThreatModel};
use harden_data::source::DatasetSource;
use harden_data::split::shuffled_indices;
use harden_data::{ArrayDataset, Batches, RankBatches};
use harden_model::{Model, SmallCnnConfig, parse_device};
use harden_train::predict::{predict_samples, predict_texts};
use serde_json::json;

const BATCH: usize = 100;

/// Peak resident memory of this process in MiB (Linux `VmHWM`), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The MNIST images at `indices` in batches of `size` (harden-data's layout rule).
fn batches(data: &ArrayDataset, indices: &[usize], size: usize, device: &Device) -> RankBatches<4> {
    Batches::of(data, indices, size, device)
        .expect("valid batch size")
        .into_images()
        .expect("images")
}

/// One epoch of `objective` over `n` training images; returns per-batch losses and seconds.
fn train_epoch(
    objective: &ObjectiveConfig,
    train: &ArrayDataset,
    n: usize,
    device: &Device,
) -> (Model, Vec<f32>, f64) {
    let train_device = device.clone().autodiff();
    train_device.seed(0);
    let mut model = Model::SmallCnn(SmallCnnConfig::new([1, 28, 28], 10).init(&train_device));
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let objective = objective.clone().check().expect("valid objective");
    let order = shuffled_indices(train.len(), 0);
    let data = batches(train, &order[..n], BATCH, &train_device);
    let mut rng = AttackRng::new(0);
    let mut losses = Vec::with_capacity(data.len());
    let started = Instant::now();
    for (x, y) in data {
        let attack_model = model.valid();
        let out = objective.loss(
            &|x: Tensor<4>| model.forward(x),
            &|x: Tensor<4>| attack_model.forward(x),
            x,
            y,
            None,
            &mut rng,
        );
        // One host read per batch: the loss curve the checks need (the trainer reads it too).
        losses.push(out.loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
    }
    device.sync().expect("device sync");
    (model.valid(), losses, started.elapsed().as_secs_f64())
}

fn clean_accuracy(model: &Model, test: &ArrayDataset, device: &Device) -> f64 {
    let all: Vec<usize> = (0..1000.min(test.len())).collect();
    let b = batches(test, &all, 1000, device);
    let (x, y) = b[0].clone();
    accuracy(&|x: Tensor<4>| model.forward(x), x, y)
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The workload runs on a worker of rayon's pool (sized by `RAYON_NUM_THREADS`), the pool
    // burn's CPU backends split their kernels over: with one thread every kernel then runs
    // inline under its caller, so a profiler's call stacks say which operation called it.
    rayon::ThreadPoolBuilder::new().build()?.install(workload)
}

fn workload() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workload, device_name, samples] = <[String; 3]>::try_from(args).map_err(
        |_| "usage: workload <fgsm-rs-epoch|pgd10-epoch|standard-eval|predict-mnist|predict-text|text-clean-epoch|text-freelb-epoch> <device> <samples>",
    )?;
    let n: usize = samples.parse()?;
    let device = parse_device(&device_name)?;
    let Some(data_dir) = harden_data::testing::data_dir() else {
        println!(
            "{}",
            json!({"workload": workload, "device": device_name, "skipped": "MNIST not found"})
        );
        return Ok(());
    };
    if let Some(objective) = workload.strip_prefix("text-") {
        return text_epoch(&workload, objective, &device_name, &device, &data_dir);
    }
    if workload == "predict-text" {
        return predict_text(&device_name, &device, &data_dir);
    }
    let splits = DatasetSource::Mnist.load(&data_dir)?;
    let (train, test) = (splits.train, splits.test);
    let n = n.min(train.len());
    // eps 0.1: from scratch at 0.3 a short epoch stays at chance (the recipes ramp eps or run
    // ten epochs), and the check below would fail; the cost per step does not depend on eps.
    let fgsm_rs = ObjectiveConfig::FgsmRs {
        attack: PgdConfig::fgsm_rs(ThreatModel::new(Norm::Linf, 0.1)?),
    };
    let mut checks = serde_json::Map::new();
    let (seconds, processed) = match workload.as_str() {
        "fgsm-rs-epoch" | "pgd10-epoch" => {
            let objective = if workload == "pgd10-epoch" {
                ObjectiveConfig::Pgd {
                    attack: PgdConfig::new(ThreatModel::new(Norm::Linf, 0.1)?, 10, 0.025),
                }
            } else {
                fgsm_rs
            };
            let (model, losses, seconds) = train_epoch(&objective, &train, n, &device);
            let quarter = (losses.len() / 4).max(1);
            let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
            let (first, last) = (
                mean(&losses[..quarter]),
                mean(&losses[losses.len() - quarter..]),
            );
            let acc = clean_accuracy(&model, &test, &device);
            checks.insert(
                "loss_finite".into(),
                json!(losses.iter().all(|l| l.is_finite())),
            );
            checks.insert("loss_falling".into(), json!(last < first));
            checks.insert("loss_first_quarter".into(), json!(first));
            checks.insert("loss_last_quarter".into(), json!(last));
            checks.insert("clean_accuracy".into(), json!(acc));
            checks.insert("accuracy_above_chance".into(), json!(acc > 0.2));
            (seconds, n)
        }
        "standard-eval" => {
            // The model under test: one FGSM-RS epoch (not timed), evaluated at eps 0.1.
            let (model, _, _) = train_epoch(&fgsm_rs, &train, 10_000.min(train.len()), &device);
            save_weights(&model)?;
            let m = n.min(test.len());
            let indices: Vec<usize> = (0..m).collect();
            let data = batches(&test, &indices, 250, &device);
            let threat = ThreatModel::new(Norm::Linf, 0.1)?;
            let started = Instant::now();
            let f = |x: Tensor<4>| model.forward(x);
            let report = evaluate(&f, None, &data, Suite::Standard, &threat, 0)?;
            device.sync()?;
            let seconds = started.elapsed().as_secs_f64();
            checks.insert("clean_accuracy".into(), json!(report.clean_accuracy));
            checks.insert("robust_accuracy".into(), json!(report.robust_accuracy));
            checks.insert(
                "accuracy_above_chance".into(),
                json!(report.clean_accuracy > 0.2),
            );
            checks.insert(
                "robust_at_most_clean".into(),
                json!(report.robust_accuracy <= report.clean_accuracy),
            );
            (seconds, m)
        }
        "predict-mnist" => {
            // The model: one FGSM-RS epoch (not timed); its weights for the PyTorch reference.
            let (model, _, _) = train_epoch(&fgsm_rs, &train, 10_000.min(train.len()), &device);
            save_weights(&model)?;
            let m = n.min(test.len());
            let values = &test.features()[..m * test.sample_len()];
            // `harden predict`'s path: batches of its default 64, classes and probabilities
            // back on the host.
            let started = Instant::now();
            let answers = predict_samples(&model, test.sample_shape(), values, 64, &device);
            let seconds = started.elapsed().as_secs_f64();
            let acc = accuracy_of(&answers, test.labels());
            checks.insert("clean_accuracy".into(), json!(acc));
            checks.insert("accuracy_above_chance".into(), json!(acc > 0.2));
            checks.insert(
                "probabilities_sum_to_one".into(),
                json!(
                    answers
                        .iter()
                        .all(|a| { (a.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-4 })
                ),
            );
            (seconds, m)
        }
        other => return Err(format!("unknown workload {other:?}").into()),
    };
    print_result(&workload, &device_name, &device, processed, seconds, checks);
    Ok(())
}

/// The share of `answers` whose class is the label (labels beyond the answers are not counted).
fn accuracy_of(answers: &[harden_train::predict::Prediction], labels: &[u32]) -> f64 {
    let right = answers
        .iter()
        .zip(labels)
        .filter(|(a, l)| a.class == **l as usize)
        .count();
    right as f64 / answers.len().max(1) as f64
}

/// Saves `model` to `HARDEN_BENCH_WEIGHTS` (PyTorch-layout safetensors), when set, for the
/// PyTorch reference to run the same weights.
fn save_weights(model: &Model) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if let Some(path) = std::env::var_os("HARDEN_BENCH_WEIGHTS") {
        harden_model::store::save(
            model,
            std::path::Path::new(&path),
            harden_model::store::WeightsFormat::PytorchSafetensors,
        )?;
    }
    Ok(())
}

/// Prints the workload's JSON line: what ran, how fast, its peak memory and its checks.
fn print_result(
    workload: &str,
    device_name: &str,
    device: &Device,
    samples: usize,
    seconds: f64,
    checks: serde_json::Map<String, serde_json::Value>,
) {
    let ok = checks.values().all(|v| v.as_bool().unwrap_or(true));
    println!(
        "{}",
        json!({
            "workload": workload,
            "device": device_name,
            "device_description": harden_model::device::describe(device),
            "threads": harden_model::device::cpu_threads(),
            "samples": samples,
            "seconds": seconds,
            "samples_per_second": samples as f64 / seconds,
            "peak_rss_mib": peak_rss_mib(),
            "checks": checks,
            "ok": ok,
        })
    );
}

/// One epoch of the default `text-transformer` on the SpamAssassin training split (all of it,
/// whatever `samples` says), clean or FreeLB (3 steps of its default adv-lr 0.01), through
/// `harden_train::train_text`.
/// The time is the epoch's training time; tokenizer training and evaluation are not timed.
fn text_epoch(
    workload: &str,
    objective: &str,
    device_name: &str,
    device: &Device,
    data_dir: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use harden_train::text::TextSettings;
    use harden_train::{ObjectiveKind, RunOptions, TrainConfig, train_text};
    let objective = match objective {
        "clean-epoch" => ObjectiveKind::Clean,
        "freelb-epoch" => ObjectiveKind::Freelb,
        other => return Err(format!("unknown text workload {other:?}").into()),
    };
    let run_dir =
        std::env::temp_dir().join(format!("harden-bench-{workload}-{}", std::process::id()));
    let config = TrainConfig {
        dataset: DatasetSource::Tsv(data_dir.join("text/spamassassin/spamassassin.tsv")),
        model: harden_model::ModelSpec::from(harden_model::ModelKind::TextTransformer),
        objective,
        steps: 3,
        epochs: 1,
        batch_size: 32,
        eps: 0.0,
        eval_samples: Some(100),
        text: TextSettings {
            valid_attack_texts: 1,
            ..TextSettings::default()
        },
        ..TrainConfig::default()
    };
    let options = RunOptions::quiet(run_dir.clone(), device.clone());
    let report = config.check().and_then(|run| train_text(&run, &options));
    let _ = std::fs::remove_dir_all(&run_dir);
    let report = report?;
    let epoch = &report.epochs[0];
    let mut checks = serde_json::Map::new();
    checks.insert("loss_finite".into(), json!(epoch.train_loss.is_finite()));
    checks.insert("valid_accuracy".into(), json!(epoch.valid_accuracy));
    // A third of SpamAssassin is spam: one epoch must beat predicting ham.
    checks.insert(
        "accuracy_above_majority".into(),
        json!(epoch.valid_accuracy > 0.7),
    );
    print_result(
        workload,
        device_name,
        device,
        report.train_samples,
        epoch.seconds,
        checks,
    );
    Ok(())
}

/// `harden predict`'s path on the sentiment sentences' test split (600 texts): the default
/// `text-transformer` trained one clean epoch (not timed), then every test text tokenised
/// (truncated at 128 tokens) and classified in batches of 64. The tokenizer and the texts are
/// written beside `HARDEN_BENCH_WEIGHTS` for the PyTorch reference.
fn predict_text(
    device_name: &str,
    device: &Device,
    data_dir: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use harden_train::text::{TextSettings, load_text_run};
    use harden_train::{ObjectiveKind, RunOptions, TrainConfig, train_text};
    let run_dir =
        std::env::temp_dir().join(format!("harden-bench-predict-text-{}", std::process::id()));
    let config = TrainConfig {
        dataset: DatasetSource::Tsv(data_dir.join("text/sentiment-labelled-sentences/all.tsv")),
        model: harden_model::ModelSpec::from(harden_model::ModelKind::TextTransformer),
        objective: ObjectiveKind::Clean,
        epochs: 1,
        batch_size: 32,
        eps: 0.0,
        eval_samples: Some(10),
        text: TextSettings {
            valid_attack_texts: 1,
            ..TextSettings::default()
        },
        ..TrainConfig::default()
    };
    let trained = config
        .check()
        .and_then(|run| train_text(&run, &RunOptions::quiet(run_dir.clone(), device.clone())))
        .map_err(|e| e.to_string())
        .and_then(|_| load_text_run(&run_dir, device).map_err(|e| e.to_string()));
    if let (Ok(_), Some(weights)) = (&trained, std::env::var_os("HARDEN_BENCH_WEIGHTS")) {
        let weights = std::path::Path::new(&weights);
        std::fs::copy(
            run_dir.join("tokenizer.json"),
            weights.with_file_name("predict-text-tokenizer.json"),
        )?;
    }
    let _ = std::fs::remove_dir_all(&run_dir);
    let (config, tokenizer, model) = trained?;
    let (_, test) = config.dataset.load_text_columns(&config.text.columns)?;
    if let Some(weights) = std::env::var_os("HARDEN_BENCH_WEIGHTS") {
        let texts = test.texts().join("\n") + "\n";
        std::fs::write(
            std::path::Path::new(&weights).with_file_name("predict-text-texts.txt"),
            texts,
        )?;
    }
    let started = Instant::now();
    let answers = predict_texts(
        &model,
        &tokenizer,
        config.text.max_len,
        test.texts(),
        64,
        device,
    );
    device.sync()?;
    let seconds = started.elapsed().as_secs_f64();
    let mut checks = serde_json::Map::new();
    checks.insert(
        "clean_accuracy".into(),
        json!(accuracy_of(&answers, test.labels())),
    );
    checks.insert("answers".into(), json!(answers.len() == test.len()));
    print_result(
        "predict-text",
        device_name,
        device,
        test.len(),
        seconds,
        checks,
    );
    Ok(())
}
