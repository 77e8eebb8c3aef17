//! A burn `DataLoader` whose batches are a pure function of (seed, epoch).
//!
//! burn's `DataLoaderBuilder::shuffle` draws each epoch's order from one generator that
//! advances with every epoch, so a run resumed at epoch `k` would see the orders of epochs
//! `1, 2, ...` again. Here epoch `e`'s order is `shuffled_indices(n, mix(seed, e))`, and every
//! batch carries its epoch, its iteration and a seed for the attack's random stream: a resumed
//! run, or one split across devices, repeats the uninterrupted run's batches and random starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor};
use harden_data::split::shuffled_indices;
use harden_data::{ArrayDataset, DataError, Inputs, Layout, TokenBatch};

/// One batch with its place in the run.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Inputs: `[N, F]` tables, `[N, C, H, W]` images or `[N, L]` token sequences.
    pub inputs: Inputs,
    /// The samples' indices in the split they come from (a text batch's texts).
    pub indices: Vec<usize>,
    /// Labels `[N]`.
    pub labels: Tensor<1, Int>,
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Iteration within the whole run, 1-based.
    pub iteration: usize,
    /// Seed of this batch's attack random stream.
    pub seed: u64,
}

/// SplitMix64 finaliser: decorrelates the seeds of neighbouring epochs and batches.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_add(0x9e37_79b9_7f4a_7c15).rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What a loader draws batches from: the samples of one split.
pub trait Samples: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inputs and labels `[N]` of the samples at `indices`, on `device`.
    ///
    /// # Panics
    ///
    /// When an index is out of range.
    fn gather(&self, indices: &[usize], device: &Device) -> (Inputs, Tensor<1, Int>);
}

/// The samples of an [`ArrayDataset`] in its [`Layout`].
pub(crate) struct Arrays {
    data: ArrayDataset,
    layout: Layout,
}

impl Arrays {
    /// The samples of `data`.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] when the samples are neither feature vectors nor images.
    pub(crate) fn new(data: ArrayDataset) -> Result<Self, DataError> {
        let layout = Layout::of(data.sample_shape())?;
        Ok(Self { data, layout })
    }
}

impl Samples for Arrays {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn gather(&self, indices: &[usize], device: &Device) -> (Inputs, Tensor<1, Int>) {
        self.layout.gather(&self.data, indices, device)
    }
}

/// A text split encoded: one token sequence and one label per text.
#[derive(Debug, Clone, Default)]
pub struct EncodedTexts {
    /// Token ids of each text, truncated.
    pub seqs: Vec<Vec<u32>>,
    /// Each text's class.
    pub labels: Vec<u32>,
}

impl Samples for EncodedTexts {
    fn len(&self) -> usize {
        self.seqs.len()
    }

    /// [`Inputs::Tokens`], padded to the batch's longest sequence.
    fn gather(&self, indices: &[usize], device: &Device) -> (Inputs, Tensor<1, Int>) {
        let seqs: Vec<Vec<u32>> = indices.iter().map(|&i| self.seqs[i].clone()).collect();
        let labels: Vec<u32> = indices.iter().map(|&i| self.labels[i]).collect();
        (
            TokenBatch::new(&seqs, device).into(),
            crate::text::labels_tensor(&labels, device),
        )
    }
}

/// Batches of an [`ArrayDataset`] (or any [`Samples`]), reshuffled each epoch from `(seed, epoch)` when `shuffle`
/// is set, in order otherwise. The last batch of an epoch may be smaller.
pub struct EpochLoader {
    data: Arc<dyn Samples>,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
    /// This loader's share `[start, end)` of each epoch's order (all of it unless sliced).
    range: (usize, usize),
    /// The epoch the next call to `iter` serves.
    next_epoch: Arc<AtomicUsize>,
    device: Device,
}

impl EpochLoader {
    /// A loader over `data` whose first `iter()` serves epoch `first_epoch` (1 for a new run).
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] when `batch_size` is 0 or the samples are neither
    /// feature vectors nor images.
    pub fn new(
        data: ArrayDataset,
        batch_size: usize,
        seed: u64,
        shuffle: bool,
        first_epoch: usize,
        device: Device,
    ) -> Result<Self, DataError> {
        Self::over(
            Arc::new(Arrays::new(data)?),
            batch_size,
            seed,
            shuffle,
            first_epoch,
            device,
        )
    }

    /// A loader over any `samples`, as [`new`](Self::new).
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] when `batch_size` is 0.
    pub fn over(
        samples: Arc<dyn Samples>,
        batch_size: usize,
        seed: u64,
        shuffle: bool,
        first_epoch: usize,
        device: Device,
    ) -> Result<Self, DataError> {
        harden_data::batch::check_batch_size(batch_size)?;
        let n = samples.len();
        Ok(Self {
            data: samples,
            batch_size,
            seed,
            shuffle,
            range: (0, n),
            next_epoch: Arc::new(AtomicUsize::new(first_epoch)),
            device,
        })
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        (self.range.1 - self.range.0).div_ceil(self.batch_size)
    }

    fn with(&self, range: (usize, usize), device: Device) -> Self {
        Self {
            data: self.data.clone(),
            batch_size: self.batch_size,
            seed: self.seed,
            shuffle: self.shuffle,
            range,
            next_epoch: Arc::new(AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst))),
            device,
        }
    }
}

impl DataLoader<Batch> for EpochLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<Batch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let order = if self.shuffle {
            shuffled_indices(self.data.len(), mix(self.seed, epoch as u64))
        } else {
            (0..self.data.len()).collect()
        };
        let order = order[self.range.0..self.range.1].to_vec();
        Box::new(EpochIter {
            loader: self,
            order,
            epoch,
            next: 0,
        })
    }

    fn num_items(&self) -> usize {
        self.range.1 - self.range.0
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<Batch>> {
        Arc::new(self.with(self.range, device.clone()))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<Batch>> {
        let from = self.range.0 + start.min(self.num_items());
        let to = self.range.0 + end.min(self.num_items());
        Arc::new(self.with((from, to.max(from)), self.device.clone()))
    }
}

struct EpochIter<'a> {
    loader: &'a EpochLoader,
    order: Vec<usize>,
    epoch: usize,
    next: usize,
}

impl Iterator for EpochIter<'_> {
    type Item = Result<Batch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let l = self.loader;
        let start = self.next * l.batch_size;
        if start >= self.order.len() {
            return None;
        }
        let end = (start + l.batch_size).min(self.order.len());
        self.next += 1;
        let indices = self.order[start..end].to_vec();
        let (inputs, labels) = l.data.gather(&indices, &l.device);
        // Iterations are numbered over the whole dataset, so every slice of a split run
        // agrees on the iteration of the same step.
        let per_epoch = l.data.len().div_ceil(l.batch_size);
        let index = l.range.0 / l.batch_size + self.next;
        let iteration = (self.epoch - 1) * per_epoch + index;
        Some(Ok(Batch {
            inputs,
            indices,
            labels,
            epoch: self.epoch,
            iteration,
            seed: mix(
                l.seed ^ 0xa77a_c4ed,
                (self.epoch as u64) << 32 | index as u64,
            ),
        }))
    }
}

impl DataLoaderIterator<Batch> for EpochIter<'_> {
    fn progress(&self) -> Progress {
        Progress::new(
            (self.next * self.loader.batch_size).min(self.order.len()),
            self.order.len(),
            Some("samples".to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(b: &Batch) -> Vec<i64> {
        b.labels.clone().into_data().iter::<i64>().collect()
    }

    #[test]
    fn epochs_are_reproducible_from_the_epoch_alone() {
        let data = harden_data::embedded::digits();
        let device = Device::flex();
        let a = EpochLoader::new(data.clone(), 100, 7, true, 1, device.clone()).unwrap();
        let first: Vec<Vec<i64>> = a.iter().map(|b| labels(&b.unwrap())).collect();
        let second: Vec<Batch> = a.iter().map(|b| b.unwrap()).collect();
        assert_ne!(first[0], labels(&second[0]), "each epoch has its own order");
        assert_eq!(second[0].epoch, 2);
        assert_eq!(second[0].iteration, a.batches_per_epoch() + 1);
        // A loader created at epoch 2 (a resumed run) serves the same batches and seeds.
        let resumed = EpochLoader::new(data, 100, 7, true, 2, device).unwrap();
        let again: Vec<Batch> = resumed.iter().map(|b| b.unwrap()).collect();
        assert_eq!(again.len(), second.len());
        for (x, y) in again.iter().zip(&second) {
            assert_eq!(labels(x), labels(y));
            assert_eq!((x.iteration, x.seed), (y.iteration, y.seed));
        }
        let last = again.last().unwrap();
        assert_eq!(last.labels.dims()[0], 1797 % 100);
    }
}
