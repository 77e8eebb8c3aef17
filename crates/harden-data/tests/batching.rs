//! Batches reach the device with the right shapes and values, through burn's traits too.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use harden_data::{ArrayBatcher, embedded};

#[cfg(feature = "flex")]
#[test]
fn gather_and_batcher_agree_on_flex() {
    let device = burn::tensor::Device::flex();
    let digits = embedded::digits();
    let batcher = ArrayBatcher::<4>::for_dataset(&digits).unwrap();
    let indices = [5, 0, 1796];
    let a = batcher.gather(&digits, &indices, &device);
    assert_eq!(a.inputs.dims(), [3, 1, 8, 8]);
    let items = indices.iter().map(|&i| digits.get(i).unwrap()).collect();
    let b = batcher.batch(items, &device);
    assert_eq!(
        a.inputs.into_data().try_to_vec::<f32>().unwrap(),
        b.inputs.into_data().try_to_vec::<f32>().unwrap()
    );
    let labels: Vec<i64> = a.labels.into_data().convert::<i64>().try_to_vec().unwrap();
    let expected: Vec<i64> = indices
        .iter()
        .map(|&i| i64::from(digits.labels()[i]))
        .collect();
    assert_eq!(labels, expected);
    assert!(digits.get(1797).is_err());
    assert!(ArrayBatcher::<2>::for_dataset(&digits).is_err());
}
