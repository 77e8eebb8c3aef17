//! Min-max scaling of tabular features to `[0, 1]`.

use serde::{Deserialize, Serialize};

use crate::{ArrayDataset, DataError};

/// Per-feature min-max scaler, fitted on a training split and reused unchanged on every other
/// split (and stored beside a trained model so evaluation scales inputs the same way).
///
/// `x' = (x - min) / (max - min)`, clamped to `[0, 1]` so that values outside the training range
/// stay inside the valid input box that threat models assume. A feature that is constant on the
/// training split maps to 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinMaxScaler {
    /// Smallest training value of each feature.
    pub min: Vec<f32>,
    /// Largest training value of each feature.
    pub max: Vec<f32>,
}

impl MinMaxScaler {
    /// Fits the scaler on `data`: one minimum and maximum per feature (per value of a sample).
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] for an empty dataset.
    pub fn fit(data: &ArrayDataset) -> Result<Self, DataError> {
        if data.is_empty() {
            return Err(DataError::InvalidArgument {
                what: "scaler",
                message: "cannot fit a scaler on an empty dataset".to_string(),
            });
        }
        let mut min = data.sample(0).to_vec();
        let mut max = min.clone();
        for i in 1..data.len() {
            for (j, &x) in data.sample(i).iter().enumerate() {
                min[j] = min[j].min(x);
                max[j] = max[j].max(x);
            }
        }
        Ok(Self { min, max })
    }

    /// Number of features the scaler was fitted on.
    pub fn num_features(&self) -> usize {
        self.min.len()
    }

    /// Scales one sample in place.
    ///
    /// # Panics
    ///
    /// Panics when `row.len()` differs from [`num_features`](Self::num_features).
    pub fn transform_row(&self, row: &mut [f32]) {
        self.map_row(row, |x, lo, range| {
            if range > 0.0 {
                ((x - lo) / range).clamp(0.0, 1.0)
            } else {
                0.0
            }
        });
    }

    /// Maps one scaled sample back to the units of the data the scaler was fitted on, in
    /// place: `x = min + x' (max - min)` (a constant feature maps back to its value).
    ///
    /// # Panics
    ///
    /// Panics when `row.len()` differs from [`num_features`](Self::num_features).
    pub fn inverse_row(&self, row: &mut [f32]) {
        self.map_row(row, |x, lo, range| lo + x * range);
    }

    /// Replaces each value `x` of `row` by `f(x, min, max - min)` of its feature.
    ///
    /// # Panics
    ///
    /// Panics when `row.len()` differs from [`num_features`](Self::num_features).
    fn map_row(&self, row: &mut [f32], f: impl Fn(f32, f32, f32) -> f32) {
        assert_eq!(
            row.len(),
            self.min.len(),
            "row width differs from the scaler's"
        );
        for ((x, &lo), &hi) in row.iter_mut().zip(&self.min).zip(&self.max) {
            *x = f(*x, lo, hi - lo);
        }
    }

    /// Scales every sample of `data` in place.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] when the dataset's samples have another width.
    pub fn transform(&self, data: &mut ArrayDataset) -> Result<(), DataError> {
        let n = data.sample_len();
        if n != self.num_features() {
            return Err(DataError::InvalidArgument {
                what: "scaler",
                message: format!(
                    "the scaler was fitted on {} features, the dataset has {n}",
                    self.num_features()
                ),
            });
        }
        for row in data.features_mut().chunks_exact_mut(n) {
            self.transform_row(row);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_on_train_and_clamps_unseen_values() {
        let names = vec!["a".to_string()];
        let train = ArrayDataset::new(
            vec![0.0, 10.0, 2.0, 20.0, 4.0, 10.0],
            vec![2],
            vec![0; 3],
            names.clone(),
        )
        .unwrap();
        let scaler = MinMaxScaler::fit(&train).unwrap();
        assert_eq!(scaler.min, vec![0.0, 10.0]);
        assert_eq!(scaler.max, vec![4.0, 20.0]);
        let mut test = ArrayDataset::new(
            vec![2.0, 15.0, 8.0, 10.0, -1.0, 30.0],
            vec![2],
            vec![0; 3],
            names,
        )
        .unwrap();
        scaler.transform(&mut test).unwrap();
        assert_eq!(test.features(), &[0.5, 0.5, 1.0, 0.0, 0.0, 1.0]);
        let mut row = [0.5, 0.25];
        scaler.inverse_row(&mut row);
        assert_eq!(row, [2.0, 12.5]);
    }
}
