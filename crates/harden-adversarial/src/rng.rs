//! The random stream attacks draw their random starts from.

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// A seeded random stream for attacks (ChaCha8, drawn on the host).
///
/// Noise is drawn on the host and copied to the device, so the same seed gives the same random
/// starts on every backend and platform, independently of burn's global per-device seed. Each
/// draw advances the stream: a training loop that keeps one `AttackRng` gets fresh starts
/// every batch, and a run restarted from the same seed repeats them exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackRng(ChaCha8Rng);

impl AttackRng {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// The underlying generator, for draws other than tensors.
    pub(crate) fn inner(&mut self) -> &mut ChaCha8Rng {
        &mut self.0
    }

    /// A tensor of independent `U(lo, hi)` values.
    pub fn uniform<const D: usize>(
        &mut self,
        shape: [usize; D],
        lo: f32,
        hi: f32,
        device: &Device,
    ) -> Tensor<D> {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| self.0.random_range(lo..=hi)).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// A tensor of independent standard normal values.
    pub fn normal<const D: usize>(&mut self, shape: [usize; D], device: &Device) -> Tensor<D> {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| self.0.sample(StandardNormal)).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}
