//! What every criterion bench here shares.

use burn::tensor::Device;
use criterion::Bencher;

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
