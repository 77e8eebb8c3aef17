//! The tensor operations behind a SmallCnn training step, one at a time, at batch 100 on every
//! available device: each layer's forward pass, its input gradient and its weight gradient.
//!
//! This isolates where a backend spends an FGSM-RS or PGD step (see the README's benchmark
//! section); `benches/reference/ops.py` times the same operations in PyTorch.
//! Run with `cargo bench -p harden-benches --bench ops`.

use burn::tensor::module::{conv_transpose2d, conv2d, linear};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor};
use common::iter_synced;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;

const BATCH: usize = 100;

/// SmallCnn's convolutions: (name, input `[N, C, H, W]`, weight `[O, C, 4, 4]`), stride 2,
/// padding 1.
const CONVS: [(&str, [usize; 4], [usize; 4]); 2] = [
    ("conv1", [BATCH, 1, 28, 28], [16, 1, 4, 4]),
    ("conv2", [BATCH, 16, 14, 14], [32, 16, 4, 4]),
];

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Default, device)
}

/// SmallCnn's convolution: stride 2, padding 1.
fn conv(x: Tensor<4>, w: Tensor<4>) -> Tensor<4> {
    conv2d(x, w, None, ConvOptions::new([2, 2], [1, 1], [1, 1], 1))
}

fn conv_ops(c: &mut Criterion) {
    for (device_name, device) in harden_benches::bench_devices() {
        let grad_device = device.clone().autodiff();
        let mut group = c.benchmark_group(format!("ops/{device_name}"));
        group.throughput(Throughput::Elements(BATCH as u64));
        for (name, x_shape, w_shape) in CONVS {
            let x = random(x_shape, &device);
            let w = random(w_shape, &device);
            group.bench_function(format!("{name} forward"), |b| {
                iter_synced(b, &device, || conv(x.clone(), w.clone()))
            });
            // Only the tracked tensor gets a gradient, so each backward pass below computes
            // exactly one of the two. The output is weighted by a dense random tensor before
            // the sum, so the gradient flowing into the convolution is dense, as in an attack
            // (the gradient of a plain sum is a broadcast constant, which kernels can shortcut).
            let out_shape = conv(x.clone(), w.clone()).dims();
            let upstream = random(out_shape, &grad_device);
            let tracked = |shape| random(shape, &grad_device).require_grad();
            let inputs = [
                ("input", tracked(x_shape), random(w_shape, &grad_device)),
                ("weight", random(x_shape, &grad_device), tracked(w_shape)),
            ];
            for (which, xt, wt) in inputs {
                group.bench_function(format!("{name} forward + {which} gradient"), |b| {
                    iter_synced(b, &device, || {
                        (conv(xt.clone(), wt.clone()) * upstream.clone())
                            .sum()
                            .backward()
                    })
                });
            }
            // The input gradient's own kernel: the transposed convolution of a dense output
            // gradient (what burn's default `conv2d_x_backward` calls).
            let grad = random(out_shape, &device);
            group.bench_function(
                format!("{name} input gradient alone (conv_transpose2d)"),
                |b| {
                    iter_synced(b, &device, || {
                        conv_transpose2d(
                            grad.clone(),
                            w.clone(),
                            None,
                            ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1),
                        )
                    })
                },
            );
        }
        let x = random([BATCH, 32 * 7 * 7], &device);
        let w = random([32 * 7 * 7, 100], &device);
        group.bench_function("fc1 forward", |b| {
            iter_synced(b, &device, || linear(x.clone(), w.clone(), None))
        });
        group.finish();
    }
}

criterion_group! { name = benches; config = common::criterion(20); targets = conv_ops }
criterion_main!(benches);
