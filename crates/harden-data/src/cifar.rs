//! CIFAR-10 binary batches.
//!
//! Each record is one label byte followed by 3072 pixel bytes: the 1024 red values of the
//! 32x32 image row by row, then green, then blue. That is channel-first, so the pixels of a
//! record are already `[3, 32, 32]`.

use std::path::Path;

use crate::{ArrayDataset, DataError, read::read_bytes};

/// Bytes per CIFAR-10 record: one label and 3 x 32 x 32 pixels.
pub const RECORD_LEN: usize = 1 + 3 * 32 * 32;

/// The ten CIFAR-10 class names, indexed by label.
pub const CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Parses a CIFAR-10 binary buffer into `[N, 3, 32, 32]` images in `[0, 1]`.
///
/// `path` only names the source in errors.
///
/// # Errors
///
/// [`DataError::Empty`] for no bytes, [`DataError::Truncated`] when the length is not a whole
/// number of records, [`DataError::LabelOutOfRange`] for a label byte above 9.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<ArrayDataset, DataError> {
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            header_only: false,
        });
    }
    if !bytes.len().is_multiple_of(RECORD_LEN) {
        let records = bytes.len().div_ceil(RECORD_LEN);
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: (records * RECORD_LEN) as u64,
            found: bytes.len() as u64,
        });
    }
    let n = bytes.len() / RECORD_LEN;
    let mut features = Vec::with_capacity(n * (RECORD_LEN - 1));
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(RECORD_LEN).enumerate() {
        if record[0] as usize >= CLASS_NAMES.len() {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                line: i + 1,
                label: record[0].to_string(),
                num_classes: CLASS_NAMES.len(),
            });
        }
        labels.push(u32::from(record[0]));
        features.extend(record[1..].iter().map(|&p| f32::from(p) / 255.0));
    }
    let names = CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    ArrayDataset::new(features, vec![3, 32, 32], labels, names)
}

/// Reads a CIFAR-10 binary batch file (gzip allowed). Errors as [`parse`], plus I/O errors.
///
/// # Errors
///
/// [`DataError::Io`], [`DataError::Gzip`], and the errors of [`parse`].
pub fn read(path: &Path) -> Result<ArrayDataset, DataError> {
    parse(path, &read_bytes(path)?)
}
