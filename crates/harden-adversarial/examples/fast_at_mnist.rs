//! Fast adversarial training on MNIST (Wong, Rice & Kolter 2020) with harden-adversarial alone,
//! then an honest evaluation: PGD-50 with 10 restarts and the `standard` suite.
//!
//! The recipe: the fast-AT MNIST CNN (`SmallCnn`), FGSM from a uniform random start with step
//! 1.25 eps, eps 0.3 L-inf, 10 epochs of batch 100, Adam with a triangular learning rate rising
//! from 0 to 5e-3 at epoch (2 * epochs) / 5 and falling to 0 at the end, updated every batch.
//!
//! ```sh
//! HARDEN_DATA_DIR=../shared/data cargo run --release -p harden-adversarial \
//!     --example fast_at_mnist -- [epochs] [eval samples] [out.bpk] [seed]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use harden_adversarial::eval::{accuracy, run_ensemble};
use harden_adversarial::suite::evaluate;
use harden_adversarial::{AttackRng, Norm, ObjectiveConfig, PgdConfig, Suite, ThreatModel};
use harden_data::source::{DatasetSource, default_data_dir};
use harden_data::split::shuffled_indices;
use harden_data::{ArrayBatcher, ArrayDataset, Batches, RankBatches};
use harden_model::SmallCnnConfig;
use harden_model::store::{self, WeightsFormat};

const EPS: f64 = 0.3;
const BATCH: usize = 100;
const MAX_LR: f64 = 5e-3;

/// The triangular schedule, as a function of the fractional epoch `t`.
fn learning_rate(t: f64, epochs: usize) -> f64 {
    let peak = ((2 * epochs) / 5) as f64;
    if t <= peak {
        MAX_LR * t / peak.max(1e-9)
    } else {
        MAX_LR * (epochs as f64 - t).max(0.0) / (epochs as f64 - peak)
    }
}

/// The first `n` images of `data` in batches of 500 (harden-data's layout rule).
fn batches(data: &ArrayDataset, n: usize, device: &Device) -> RankBatches<4> {
    Batches::first(data, n, 500, device)
        .expect("valid batch size")
        .into_images()
        .expect("images")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let epochs: usize = args.first().map_or(Ok(10), |a| a.parse())?;
    let eval_samples: usize = args.get(1).map_or(Ok(1000), |a| a.parse())?;
    let out = PathBuf::from(args.get(2).map_or("fast-at-mnist.bpk", String::as_str));
    let seed: u64 = args.get(3).map_or(Ok(0), |a| a.parse())?;
    let splits = DatasetSource::Mnist.load(&default_data_dir())?;
    let (train, test) = (splits.train, splits.test);

    let device = Device::flex();
    let train_device = device.clone().autodiff();
    train_device.seed(seed);
    let mut model = SmallCnnConfig::new([1, 28, 28], 10).init(&train_device);
    // PyTorch's Adam epsilon (burn defaults to 1e-5), as in the reference recipe.
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let threat = ThreatModel::new(Norm::Linf, EPS)?;
    let objective = ObjectiveConfig::FgsmRs {
        attack: PgdConfig::fgsm_rs(threat.clone()),
    }
    .check()?;
    let batcher = ArrayBatcher::<4>::for_dataset(&train)?;
    let mut rng = AttackRng::new(seed);
    let steps_per_epoch = train.len() / BATCH;
    let start = Instant::now();
    for epoch in 0..epochs {
        let order = shuffled_indices(train.len(), seed.wrapping_mul(1000) + epoch as u64);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (step, chunk) in order.chunks(BATCH).take(steps_per_epoch).enumerate() {
            let lr = learning_rate(
                epoch as f64 + (step + 1) as f64 / steps_per_epoch as f64,
                epochs,
            );
            let b = batcher.gather(&train, chunk, &train_device);
            let attack_model = model.valid();
            let out = objective.loss(
                &|x| model.forward(x),
                &|x| attack_model.forward(x),
                b.inputs,
                b.labels.clone(),
                None,
                &mut rng,
            );
            loss_sum += f64::from(out.loss.clone().into_scalar::<f32>());
            correct += harden_adversarial::loss::correct(out.logits.detach(), b.labels)
                .int()
                .sum()
                .into_scalar::<i64>() as usize;
            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
            model = optim.step(lr, model, grads);
        }
        println!(
            "epoch {:>2}: FGSM-RS loss {:.4}, adversarial train accuracy {:.4}, {:.0} s",
            epoch + 1,
            loss_sum / steps_per_epoch as f64,
            correct as f64 / (steps_per_epoch * BATCH) as f64,
            start.elapsed().as_secs_f64()
        );
    }
    let train_seconds = start.elapsed().as_secs_f64();
    let model = model.valid();
    store::save(&model, &out, WeightsFormat::Burnpack)?;
    let f = |x: Tensor<4>| model.forward(x);

    let all = batches(&test, test.len(), &device);
    let clean: f64 = all
        .iter()
        .map(|(x, y)| accuracy(&f, x.clone(), y.clone()) * x.dims()[0] as f64)
        .sum::<f64>()
        / test.len() as f64;
    println!(
        "trained {epochs} epochs in {train_seconds:.0} s; clean accuracy on 10000 test images {clean:.4}; saved {}",
        out.display()
    );

    let subset = batches(&test, eval_samples.min(test.len()), &device);
    let t = Instant::now();
    let pgd = PgdConfig::new(threat.clone(), 50, 0.01)
        .with_restarts(10)
        .check()?;
    let mut rng = AttackRng::new(1);
    let mut robust = 0usize;
    let mut n = 0usize;
    for (x, y) in &subset {
        let r = run_ensemble(&f, &[(x.clone(), y.clone())], &[&pgd], &mut rng);
        robust += r.robust_correct.iter().filter(|&&b| b).count();
        n += r.robust_correct.len();
    }
    println!(
        "PGD-50x10 (step 0.01) on the first {n} test images: robust {:.4} ({:.0} s)",
        robust as f64 / n as f64,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let report = evaluate(&f, None, &subset, Suite::Standard, &threat, 0)?;
    println!(
        "standard suite on the first {n}: clean {:.4}, robust {:.4} ({:.0} s)",
        report.clean_accuracy,
        report.robust_accuracy,
        t.elapsed().as_secs_f64()
    );
    for a in &report.attacks {
        println!(
            "  {:<8} attempted {:>5}, broke {:>5}, {:.0} s",
            a.name, a.attempted, a.broken, a.seconds
        );
    }
    for flag in &report.flags {
        println!(
            "  flag {:<58} {} ({})",
            flag.name,
            if flag.raised { "RAISED" } else { "ok" },
            flag.evidence
        );
    }
    Ok(())
}
