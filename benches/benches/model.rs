//! Forward and backward passes of the built-in models on every available device.
//!
//! Run with `cargo bench -p harden-benches`; throughput is reported in samples per second.

use burn::tensor::{Distribution, Tensor};
use common::iter_synced;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harden_model::{MlpConfig, ModelConfig, SmallCnnConfig};

mod common;

fn forward_backward(c: &mut Criterion) {
    let models = [
        ("mlp", ModelConfig::Mlp(MlpConfig::new(784, vec![128], 10))),
        (
            "small-cnn",
            ModelConfig::SmallCnn(SmallCnnConfig::new([1, 28, 28], 10)),
        ),
    ];
    for (device_name, device) in harden_benches::bench_devices() {
        let device = device.autodiff();
        for (model_name, config) in &models {
            let model = config.init(&device);
            for batch in [1usize, 32, 256] {
                let mut group =
                    c.benchmark_group(format!("forward_backward/{model_name}/{device_name}"));
                group.throughput(Throughput::Elements(batch as u64));
                let x = Tensor::<4>::random([batch, 1, 28, 28], Distribution::Default, &device);
                group.bench_function(format!("batch {batch}"), |b| {
                    iter_synced(b, &device, || model.forward(x.clone()).sum().backward())
                });
                group.finish();
            }
        }
    }
}

criterion_group! { name = benches; config = common::criterion(10); targets = forward_backward }
criterion_main!(benches);
