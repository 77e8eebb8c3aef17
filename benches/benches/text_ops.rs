//! The element-wise operations of the default `text-transformer` training step (batch 32,
//! 128 tokens, width 64, 4 heads, feed-forward 128), one at a time, next to the feed-forward
//! matrix product, on every available device.
//!
//! This is a minimal reproduction of where a text epoch on flex loses to PyTorch (see
//! docs/benchmarks.md): burn-flex draws dropout masks one element at a time from one
//! generator behind a lock, and computes softmax's `exp` and GELU's `erf` one value at a time.
//! `benches/reference/text_ops.py` times the same operations and shapes in PyTorch.
//! Run with `cargo bench -p harden-benches --bench text_ops`.

use burn::nn::LayerNormConfig;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::linear;
use burn::tensor::{Device, Distribution, Tensor};
use common::iter_synced;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;

/// Sentences per batch.
const BATCH: usize = 32;
/// Tokens per sentence.
const LEN: usize = 128;
/// Model width.
const WIDTH: usize = 64;
/// Feed-forward width.
const FF: usize = 128;
/// Attention heads.
const HEADS: usize = 4;

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Default, device)
}

fn text_ops(c: &mut Criterion) {
    for (device_name, device) in harden_benches::bench_devices() {
        let mut group = c.benchmark_group(format!("text_ops/{device_name}"));
        let hidden = random([BATCH, LEN, WIDTH], &device);
        let ff = random([BATCH, LEN, FF], &device);
        let scores = random([BATCH, HEADS, LEN, LEN], &device);
        let elements = |t: &Tensor<3>| Throughput::Elements(t.shape().num_elements() as u64);

        // Dropout 0.1 on the residual stream: burn's `Dropout::forward` is this mask and product.
        group.throughput(elements(&hidden));
        group.bench_function("dropout mask [32, 128, 64]", |b| {
            iter_synced(b, &device, || {
                hidden.random_like(Distribution::Bernoulli(0.9))
            })
        });
        group.bench_function("dropout [32, 128, 64]", |b| {
            iter_synced(b, &device, || {
                let mask = hidden.random_like(Distribution::Bernoulli(0.9));
                hidden.clone() * mask * (1.0 / 0.9)
            })
        });
        let norm = LayerNormConfig::new(WIDTH).init(&device);
        group.bench_function("layer norm [32, 128, 64]", |b| {
            iter_synced(b, &device, || norm.forward(hidden.clone()))
        });
        group.throughput(elements(&ff));
        group.bench_function("gelu [32, 128, 128]", |b| {
            iter_synced(b, &device, || gelu(ff.clone()))
        });
        let w = random([WIDTH, FF], &device);
        group.bench_function("linear [4096, 64] x [64, 128]", |b| {
            iter_synced(b, &device, || linear(hidden.clone(), w.clone(), None))
        });
        group.throughput(Throughput::Elements(scores.shape().num_elements() as u64));
        group.bench_function("exp [32, 4, 128, 128]", |b| {
            iter_synced(b, &device, || scores.clone().exp())
        });
        group.bench_function("softmax [32, 4, 128, 128]", |b| {
            iter_synced(b, &device, || softmax(scores.clone(), 3))
        });
        group.finish();
    }
}

criterion_group! { name = benches; config = common::criterion(20); targets = text_ops }
criterion_main!(benches);
