//! Datasets compiled into the crate, so harden runs with no files at all.
//!
//! - UCI optical recognition of handwritten digits, the 8x8 version bundled with scikit-learn
//!   (1797 images, pixel counts 0..16, 10 classes). Dua & Graff, UCI Machine Learning
//!   Repository, CC BY 4.0.
//! - Wisconsin diagnostic breast cancer (569 rows, 30 features, classes malignant/benign).
//!   Wolberg, Street & Mangasarian, UCI Machine Learning Repository, CC BY 4.0.

use std::path::Path;

use crate::ArrayDataset;
use crate::csv::{LabelColumn, parse_bytes};

/// The UCI digits table as shipped: gzip CSV, no header, 64 pixel counts then the label.
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// The breast-cancer table as shipped: gzip sklearn-style CSV (`569,30,malignant,benign`).
pub const BREAST_CANCER_CSV_GZ: &[u8] = include_bytes!("../data/breast_cancer.csv.gz");

/// The UCI digits as `[1797]` images of shape `[1, 8, 8]` with pixels in `[0, 1]`
/// (counts divided by 16), labels `0..10`.
///
/// # Panics
///
/// Never for the data shipped in the crate (a test parses it).
pub fn digits() -> ArrayDataset {
    let raw = parse_bytes(
        Path::new("<embedded digits.csv.gz>"),
        DIGITS_CSV_GZ.to_vec(),
        &LabelColumn::Last,
    )
    .expect("the embedded digits table parses");
    let pixels: Vec<f32> = raw.features().iter().map(|&c| c / 16.0).collect();
    ArrayDataset::new(
        pixels,
        vec![1, 8, 8],
        raw.labels().to_vec(),
        raw.class_names().to_vec(),
    )
    .expect("the embedded digits table has 64 pixels per row")
}

/// The breast-cancer table: `[569]` rows of 30 raw (unscaled) features, labels 0 (malignant)
/// and 1 (benign).
///
/// # Panics
///
/// Never for the data shipped in the crate (a test parses it).
pub fn breast_cancer() -> ArrayDataset {
    parse_bytes(
        Path::new("<embedded breast_cancer.csv.gz>"),
        BREAST_CANCER_CSV_GZ.to_vec(),
        &LabelColumn::Last,
    )
    .expect("the embedded breast-cancer table parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_have_their_published_sizes() {
        let d = digits();
        assert_eq!(
            (d.len(), d.sample_shape(), d.num_classes()),
            (1797, &[1, 8, 8][..], 10)
        );
        assert_eq!(d.value_range(), Some((0.0, 1.0)));
        let b = breast_cancer();
        assert_eq!(
            (b.len(), b.sample_shape(), b.num_classes()),
            (569, &[30][..], 2)
        );
        assert_eq!(b.class_counts(), vec![212, 357]);
        assert_eq!(
            b.class_names(),
            &["malignant".to_string(), "benign".to_string()]
        );
    }
}
