//! Batches of samples as tensors on a [`Device`], through burn's `Dataset` and `Batcher`.
//!
//! [`ArrayDataset`] implements burn's [`Dataset`] of [`ArrayItem`]s, and [`ArrayBatcher`]
//! implements burn's [`Batcher`], so burn-train's data loaders can drive training. For
//! evaluation and attacks, [`ArrayBatcher::gather`] builds a batch straight from indices
//! without copying samples into items first.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Int, Tensor, TensorData};

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
