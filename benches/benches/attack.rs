//! One FGSM step and a PGD-10 attack of a batch, and one training step of every objective,
//! for the MLP and the SmallCnn at batch sizes 1, 32 and 256, on every available device.
//!
//! Run with `cargo bench -p harden-benches --bench attack` (add `-- --quick` for a short run);
//! throughput is in samples per second and every iteration ends with a device sync.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use common::iter_synced;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harden_adversarial::{Attack, AttackRng, Norm, ObjectiveConfig, PgdConfig, ThreatModel};
use harden_model::{MlpConfig, ModelConfig, SmallCnnConfig};

mod common;

fn models() -> [(&'static str, ModelConfig); 2] {
    [
        ("mlp", ModelConfig::Mlp(MlpConfig::new(784, vec![128], 10))),
        (
            "small-cnn",
            ModelConfig::SmallCnn(SmallCnnConfig::new([1, 28, 28], 10)),
        ),
    ]
}

fn attacks(c: &mut Criterion) {
    let threat = ThreatModel::new(Norm::Linf, 0.3).unwrap();
    let fgsm = PgdConfig::fgsm(threat.clone()).check().unwrap();
    let pgd = PgdConfig::new(threat, 10, 0.075).check().unwrap();
    for (device_name, device) in harden_benches::bench_devices() {
        for (model_name, config) in models() {
            let model = config.init(&device);
            for batch in [1usize, 32, 256] {
                let x = Tensor::<4>::random([batch, 1, 28, 28], Distribution::Default, &device);
                let y = Tensor::<1, Int>::from_data(
                    TensorData::new((0..batch as i64).map(|i| i % 10).collect(), [batch]),
                    &device,
                );
                let f = |x: Tensor<4>| model.forward(x);
                for (name, attack) in [("fgsm", &fgsm), ("pgd-10", &pgd)] {
                    let mut group = c.benchmark_group(format!("{name}/{model_name}/{device_name}"));
                    group.throughput(Throughput::Elements(batch as u64));
                    let mut rng = AttackRng::new(0);
                    group.bench_function(format!("batch {batch}"), |b| {
                        iter_synced(b, &device, || {
                            attack.perturb(&f, x.clone(), y.clone(), &mut rng)
                        })
                    });
                    group.finish();
                }
            }
        }
    }
}

fn train_steps(c: &mut Criterion) {
    let threat = ThreatModel::new(Norm::Linf, 0.3).unwrap();
    let objectives = [
        ("clean", ObjectiveConfig::Clean),
        (
            "fgsm-rs",
            ObjectiveConfig::FgsmRs {
                attack: PgdConfig::fgsm_rs(threat.clone()),
            },
        ),
        (
            "pgd-7",
            ObjectiveConfig::Pgd {
                attack: PgdConfig::new(threat.clone(), 7, 2.5 * 0.3 / 7.0),
            },
        ),
        (
            "trades",
            ObjectiveConfig::Trades {
                beta: 6.0,
                attack: PgdConfig::new(threat, 7, 2.5 * 0.3 / 7.0),
            },
        ),
    ];
    for (device_name, device) in harden_benches::bench_devices() {
        let train_device = device.clone().autodiff();
        for (model_name, config) in models() {
            for batch in [1usize, 32, 256] {
                let x =
                    Tensor::<4>::random([batch, 1, 28, 28], Distribution::Default, &train_device);
                let y = Tensor::<1, Int>::from_data(
                    TensorData::new((0..batch as i64).map(|i| i % 10).collect(), [batch]),
                    &train_device,
                );
                for (name, objective) in &objectives {
                    let objective = objective.clone().check().unwrap();
                    let mut model = config.init(&train_device);
                    let mut optim = AdamConfig::new().init();
                    let mut rng = AttackRng::new(0);
                    let mut group =
                        c.benchmark_group(format!("train-step/{name}/{model_name}/{device_name}"));
                    group.throughput(Throughput::Elements(batch as u64));
                    group.bench_function(format!("batch {batch}"), |b| {
                        iter_synced(b, &device, || {
                            let attack_model = model.valid();
                            let out = objective.loss(
                                &|x: Tensor<4>| model.forward(x),
                                &|x: Tensor<4>| attack_model.forward(x),
                                x.clone(),
                                y.clone(),
                                None,
                                &mut rng,
                            );
                            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
                            model = optim.step(1e-3, model.clone(), grads);
                        })
                    });
                    group.finish();
                }
            }
        }
    }
}

/// Shorter than the other benches': an attack or a training step takes tens of milliseconds.
fn config() -> Criterion {
    common::criterion(10)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
}

criterion_group! { name = benches; config = config(); targets = attacks, train_steps }
criterion_main!(benches);
