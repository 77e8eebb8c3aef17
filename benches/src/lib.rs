//! Shared set-up for harden's criterion benchmarks: the devices to compare.

use burn::tensor::Device;

/// Every compiled-in device that answers, with its name: the devices benchmarks compare.
pub fn bench_devices() -> Vec<(String, Device)> {
    harden_model::device::probe_all()
        .into_iter()
        .filter_map(|(name, device)| device.ok().map(|d| (name, d)))
        .collect()
}
