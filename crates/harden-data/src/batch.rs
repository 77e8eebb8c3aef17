//! Batches of samples as tensors on a [`Device`], through burn's `Dataset` and `Batcher`.
//!
//! [`ArrayDataset`] implements burn's [`Dataset`] of [`ArrayItem`]s, and [`ArrayBatcher`]
//! implements burn's [`Batcher`], so burn-train's data loaders can drive training. For
//! evaluation and attacks, [`ArrayBatcher::gather`] builds a batch straight from indices
//! without copying samples into items first.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::{ArrayDataset, DataError};

/// One sample: its features (row-major, the dataset's sample shape) and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayItem {
    /// The features, `product(sample_shape)` values.
    pub features: Vec<f32>,
    /// The class index.
    pub label: u32,
}

/// A batch of `N` samples.
#[derive(Debug, Clone)]
pub struct ArrayBatch<const D: usize> {
    /// Inputs, shape `[N, ...sample_shape]` (`[N, C, H, W]` images, `[N, F]` rows).
    pub inputs: Tensor<D>,
    /// Class indices, shape `[N]`.
    pub labels: Tensor<1, Int>,
}

impl Dataset<ArrayItem> for ArrayDataset {
    fn get(&self, index: usize) -> Result<ArrayItem, DatasetError> {
        if index >= self.len() {
            return Err(DatasetError::new(DataError::InvalidArgument {
                what: "sample index",
                message: format!(
                    "{index} out of range for a dataset of {} samples",
                    self.len()
                ),
            }));
        }
        Ok(ArrayItem {
            features: self.sample(index).to_vec(),
            label: self.labels()[index],
        })
    }

    fn len(&self) -> usize {
        ArrayDataset::len(self)
    }
}

/// Stacks samples of one shape into `D`-dimensional batches (`D` = sample rank + 1).
#[derive(Debug, Clone)]
pub struct ArrayBatcher<const D: usize> {
    sample_shape: Vec<usize>,
}

impl<const D: usize> ArrayBatcher<D> {
    /// A batcher for samples of `sample_shape`.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] when `D` is not `sample_shape.len() + 1`.
    pub fn new(sample_shape: &[usize]) -> Result<Self, DataError> {
        if sample_shape.len() + 1 != D {
            return Err(DataError::InvalidArgument {
                what: "batch rank",
                message: format!(
                    "samples of shape {sample_shape:?} make {}-dimensional batches, not {D}-dimensional",
                    sample_shape.len() + 1
                ),
            });
        }
        Ok(Self {
            sample_shape: sample_shape.to_vec(),
        })
    }

    /// A batcher for the samples of `data`.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn for_dataset(data: &ArrayDataset) -> Result<Self, DataError> {
        Self::new(data.sample_shape())
    }

    fn shape(&self, n: usize) -> [usize; D] {
        let mut shape = [n; D];
        shape[1..].copy_from_slice(&self.sample_shape);
        shape
    }

    /// The samples of `data` at `indices` as one batch on `device`.
    ///
    /// # Panics
    ///
    /// Panics when an index is out of range or `data` has another sample shape.
    pub fn gather(&self, data: &ArrayDataset, indices: &[usize], device: &Device) -> ArrayBatch<D> {
        assert_eq!(
            data.sample_shape(),
            self.sample_shape.as_slice(),
            "sample shape differs from the batcher's"
        );
        let n = data.sample_len();
        let mut features = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            features.extend_from_slice(data.sample(i));
        }
        let labels = indices
            .iter()
            .map(|&i| i64::from(data.labels()[i]))
            .collect();
        self.build(features, labels, device)
    }

    fn build(&self, features: Vec<f32>, labels: Vec<i64>, device: &Device) -> ArrayBatch<D> {
        let n = labels.len();
        ArrayBatch {
            inputs: Tensor::from_data(TensorData::new(features, self.shape(n)), device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}

impl<const D: usize> Batcher<ArrayItem, ArrayBatch<D>> for ArrayBatcher<D> {
    /// # Panics
    ///
    /// Panics when an item has another number of features than the batcher's sample shape.
    fn batch(&self, items: Vec<ArrayItem>, device: &Device) -> ArrayBatch<D> {
        let n: usize = self.sample_shape.iter().product();
        let mut features = Vec::with_capacity(items.len() * n);
        let mut labels = Vec::with_capacity(items.len());
        for item in items {
            assert_eq!(
                item.features.len(),
                n,
                "item has {} features, expected {n}",
                item.features.len()
            );
            features.extend(item.features);
            labels.push(i64::from(item.label));
        }
        self.build(features, labels, device)
    }
}

/// Checks that batches of `batch_size` samples can be made.
///
/// # Errors
///
/// [`DataError::InvalidArgument`] when `batch_size` is 0.
pub fn check_batch_size(batch_size: usize) -> Result<(), DataError> {
    if batch_size == 0 {
        return Err(DataError::InvalidArgument {
            what: "batch size",
            message: "expected at least 1, got 0".to_string(),
        });
    }
    Ok(())
}

/// The samples of `data` at `indices` as `D`-dimensional batches of `batch_size`.
fn rank_batches<const D: usize>(
    data: &ArrayDataset,
    indices: &[usize],
    batch_size: usize,
    device: &Device,
) -> Result<RankBatches<D>, DataError> {
    let batcher = ArrayBatcher::<D>::for_dataset(data)?;
    Ok(indices
        .chunks(batch_size)
        .map(|c| {
            let b = batcher.gather(data, c, device);
            (b.inputs, b.labels)
        })
        .collect())
}

/// The one layout rule of harden: how a dataset's samples become batch tensors.
///
/// Tables (samples of shape `[F]`) are batched as `[N, F]`, images (samples `[C, H, W]`) as
/// `[N, C, H, W]`. Every consumer (the trainer, evaluation, attacks, benchmarks) batches
/// through [`Layout`], so a sample has one shape everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Feature vectors of `features` values: batches `[N, F]`.
    Table {
        /// Values per sample.
        features: usize,
    },
    /// Images: batches `[N, C, H, W]`.
    Image {
        /// Channels.
        channels: usize,
        /// Height.
        height: usize,
        /// Width.
        width: usize,
    },
}

impl Layout {
    /// The layout of samples of `sample_shape`.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] for samples that are neither vectors `[F]` nor images
    /// `[C, H, W]`.
    pub fn of(sample_shape: &[usize]) -> Result<Self, DataError> {
        match *sample_shape {
            [features] => Ok(Self::Table { features }),
            [channels, height, width] => Ok(Self::Image {
                channels,
                height,
                width,
            }),
            _ => Err(DataError::InvalidArgument {
                what: "sample shape",
                message: format!(
                    "samples of shape {sample_shape:?} are neither feature vectors [F] nor images [C, H, W]"
                ),
            }),
        }
    }

    /// The samples of `data` at `indices` as one batch on `device`.
    ///
    /// # Panics
    ///
    /// Panics when an index is out of range or `data`'s samples have another layout.
    pub fn gather(
        self,
        data: &ArrayDataset,
        indices: &[usize],
        device: &Device,
    ) -> (Inputs, Tensor<1, Int>) {
        assert_eq!(
            Layout::of(data.sample_shape()).ok(),
            Some(self),
            "the dataset's samples have another layout"
        );
        match self {
            Self::Table { .. } => {
                let b = ArrayBatcher::<2>::new(data.sample_shape())
                    .expect("rank checked")
                    .gather(data, indices, device);
                (Inputs::Table(b.inputs), b.labels)
            }
            Self::Image { .. } => {
                let b = ArrayBatcher::<4>::new(data.sample_shape())
                    .expect("rank checked")
                    .gather(data, indices, device);
                (Inputs::Image(b.inputs), b.labels)
            }
        }
    }
}

/// A batch of inputs in its dataset's [`Layout`].
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // tensor handles, two of them for tokens
pub enum Inputs {
    /// Feature vectors `[N, F]`.
    Table(Tensor<2>),
    /// Images `[N, C, H, W]`.
    Image(Tensor<4>),
    /// Token sequences padded to the longest: ids and padding mask, both `[N, L]`
    /// ([`TokenBatch`](crate::TokenBatch)'s tensors).
    Tokens {
        /// Token ids `[N, L]`.
        ids: Tensor<2, Int>,
        /// `[N, L]`, `true` at padding.
        pad: Tensor<2, Bool>,
    },
}

impl Inputs {
    /// Number of samples `N`.
    pub fn len(&self) -> usize {
        match self {
            Self::Table(x) => x.dims()[0],
            Self::Image(x) => x.dims()[0],
            Self::Tokens { ids, .. } => ids.dims()[0],
        }
    }

    /// Whether the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<crate::TokenBatch> for Inputs {
    fn from(b: crate::TokenBatch) -> Self {
        Self::Tokens {
            ids: b.ids,
            pad: b.pad,
        }
    }
}

/// `(inputs, labels)` batches of one rank: `[N, ...]` inputs and `[N]` labels.
pub type RankBatches<const D: usize> = Vec<(Tensor<D>, Tensor<1, Int>)>;

/// Batches of a dataset in its [`Layout`], in order.
#[derive(Debug, Clone)]
pub enum Batches {
    /// Feature vectors, `[N, F]` per batch.
    Table(RankBatches<2>),
    /// Images, `[N, C, H, W]` per batch.
    Image(RankBatches<4>),
}

impl Batches {
    /// The first `n` samples of `data` (all of them when `n` is larger) in batches of
    /// `batch_size`, in order, on `device`.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] when `batch_size` is 0 or the samples are neither vectors
    /// nor images.
    pub fn first(
        data: &ArrayDataset,
        n: usize,
        batch_size: usize,
        device: &Device,
    ) -> Result<Self, DataError> {
        let indices: Vec<usize> = (0..n.min(data.len())).collect();
        Self::of(data, &indices, batch_size, device)
    }

    /// The samples of `data` at `indices`, in that order, in batches of `batch_size`.
    ///
    /// # Errors
    ///
    /// As [`first`](Self::first).
    ///
    /// # Panics
    ///
    /// Panics when an index is out of range.
    pub fn of(
        data: &ArrayDataset,
        indices: &[usize],
        batch_size: usize,
        device: &Device,
    ) -> Result<Self, DataError> {
        check_batch_size(batch_size)?;
        let layout = Layout::of(data.sample_shape())?;
        Ok(match layout {
            Layout::Table { .. } => Self::Table(rank_batches(data, indices, batch_size, device)?),
            Layout::Image { .. } => Self::Image(rank_batches(data, indices, batch_size, device)?),
        })
    }

    /// The image batches `[N, C, H, W]`; `None` for tables.
    pub fn into_images(self) -> Option<RankBatches<4>> {
        match self {
            Self::Image(b) => Some(b),
            Self::Table(_) => None,
        }
    }

    /// Total number of samples.
    pub fn len(&self) -> usize {
        match self {
            Self::Table(b) => b.iter().map(|(x, _)| x.dims()[0]).sum(),
            Self::Image(b) => b.iter().map(|(x, _)| x.dims()[0]).sum(),
        }
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
