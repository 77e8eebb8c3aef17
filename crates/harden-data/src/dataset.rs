//! In-memory datasets: dense arrays (images, tabular rows) and labelled texts.

use crate::DataError;

/// A labelled dataset of dense `f32` samples that all share one shape.
///
/// Images have sample shape `[C, H, W]`, tabular rows `[F]`. Features are stored row-major,
/// sample after sample, so sample `i` is `features[i * sample_len .. (i + 1) * sample_len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayDataset {
    features: Vec<f32>,
    sample_shape: Vec<usize>,
    labels: Vec<u32>,
    class_names: Vec<String>,
}

impl ArrayDataset {
    /// Builds a dataset, checking that the parts agree.
    ///
    /// `class_names` gives one name per class; its length is the number of classes.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] when `features.len()` is not
    /// `labels.len() * product(sample_shape)`, when the sample shape is empty or has a zero
    /// dimension, when there are no classes, when a label is not below the number of classes, or
    /// when a feature is not finite.
    pub fn new(
        features: Vec<f32>,
        sample_shape: Vec<usize>,
        labels: Vec<u32>,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        let invalid = |message: String| DataError::InvalidArgument {
            what: "dataset",
            message,
        };
        if sample_shape.is_empty() || sample_shape.contains(&0) {
            return Err(invalid(format!(
                "sample shape {sample_shape:?} must have at least one dimension and no zero dimension"
            )));
        }
        let sample_len: usize = sample_shape.iter().product();
        if features.len() != labels.len() * sample_len {
            return Err(invalid(format!(
                "{} features for {} samples of shape {sample_shape:?} (expected {})",
                features.len(),
                labels.len(),
                labels.len() * sample_len
            )));
        }
        check_labels(&labels, &class_names).map_err(invalid)?;
        if let Some(i) = features.iter().position(|x| !x.is_finite()) {
            return Err(invalid(format!(
                "feature {} of sample {} is not finite",
                i % sample_len,
                i / sample_len
            )));
        }
        Ok(Self {
            features,
            sample_shape,
            labels,
            class_names,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Shape of one sample: `[C, H, W]` for images, `[F]` for tabular rows.
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    /// Number of `f32` values in one sample (the product of the sample shape).
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The name of each class, indexed by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// All features, row-major, `len() * sample_len()` values.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// Mutable access to all features (row-major), for in-place transforms.
    pub(crate) fn features_mut(&mut self) -> &mut [f32] {
        &mut self.features
    }

    /// All labels, one per sample.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// The features of sample `index`.
    ///
    /// # Panics
    ///
    /// Panics when `index >= len()`.
    pub fn sample(&self, index: usize) -> &[f32] {
        let n = self.sample_len();
        &self.features[index * n..(index + 1) * n]
    }

    /// Number of samples of each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// A new dataset holding the samples at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    ///
    /// Panics when an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let n = self.sample_len();
        let mut features = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            features.extend_from_slice(self.sample(i));
        }
        Self {
            features,
            sample_shape: self.sample_shape.clone(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        }
    }

    /// The same samples with a new sample shape of equal size (e.g. `[64]` to `[1, 8, 8]`).
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] when the new shape has another number of values.
    pub fn reshape(mut self, sample_shape: Vec<usize>) -> Result<Self, DataError> {
        let len: usize = sample_shape.iter().product();
        if len != self.sample_len() || sample_shape.contains(&0) {
            return Err(DataError::InvalidArgument {
                what: "sample shape",
                message: format!(
                    "cannot reshape samples of shape {:?} to {sample_shape:?}",
                    self.sample_shape
                ),
            });
        }
        self.sample_shape = sample_shape;
        Ok(self)
    }

    /// The smallest and largest feature value, or `None` for an empty dataset.
    pub fn value_range(&self) -> Option<(f32, f32)> {
        let mut it = self.features.iter().copied();
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x))))
    }
}

/// Checks there is at least one class and every label is a class index.
fn check_labels(labels: &[u32], class_names: &[String]) -> Result<(), String> {
    if class_names.is_empty() {
        return Err("no classes".to_string());
    }
    match labels.iter().find(|&&l| l as usize >= class_names.len()) {
        Some(bad) => Err(format!("label {bad} out of range 0..{}", class_names.len())),
        None => Ok(()),
    }
}

/// A labelled dataset of texts (sentences, e-mails) for text classifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct TextDataset {
    texts: Vec<String>,
    labels: Vec<u32>,
    class_names: Vec<String>,
}

impl TextDataset {
    /// Builds a text dataset.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] when the numbers of texts and labels differ, when there are
    /// no classes, or when a label is not below the number of classes.
    pub fn new(
        texts: Vec<String>,
        labels: Vec<u32>,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        let invalid = |message: String| DataError::InvalidArgument {
            what: "text dataset",
            message,
        };
        if texts.len() != labels.len() {
            return Err(invalid(format!(
                "{} texts but {} labels",
                texts.len(),
                labels.len()
            )));
        }
        check_labels(&labels, &class_names).map_err(invalid)?;
        Ok(Self {
            texts,
            labels,
            class_names,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The texts, one per sample.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// The labels, one per sample.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The name of each class, indexed by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// A new dataset holding the samples at `indices`, in that order.
    ///
    /// # Panics
    ///
    /// Panics when an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self {
            texts: indices.iter().map(|&i| self.texts[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        }
    }
}
