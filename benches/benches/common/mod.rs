//! What every criterion bench here shares.

use burn::tensor::Device;
use std::time::Duration;

use criterion::{Bencher, Criterion};

/// Times `f` with criterion, synchronising `device` before each iteration's clock stops, so
/// asynchronous backends (wgpu, cuda) are timed for the work itself, not for queueing it.
///
/// # Panics
///
/// When the device reports an execution error on sync.
pub fn iter_synced<T>(b: &mut Bencher<'_>, device: &Device, mut f: impl FnMut() -> T) {
    b.iter(|| {
        let out = f();
        device.sync().expect("device sync");
        out
    });
}

/// Criterion with `samples` samples, a half-second warm-up and two seconds of measurement:
/// enough for these benches' kernels, short enough to run every device.
pub fn criterion(samples: usize) -> Criterion {
    Criterion::default()
        .sample_size(samples)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}
