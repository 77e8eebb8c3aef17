//! Seeded shuffles and stratified train/validation splits.
//!
//! Randomness comes from ChaCha8 seeded with the given `u64`, so the same seed gives the same
//! order on every platform and in every release of harden.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::DataError;

/// The indices `0..n` in an order fixed by `seed`.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    indices.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    indices
}

/// Splits sample indices into `(train, valid)` keeping each class's share in both parts.
///
/// Each class contributes `round(count * valid_fraction)` samples to the validation part,
/// chosen at random by `seed`; both parts are then shuffled. Every index appears exactly once.
///
/// # Errors
///
/// [`DataError::InvalidArgument`] when `valid_fraction` is not in `[0, 1)`.
pub fn stratified_split(
    labels: &[u32],
    valid_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    if !(0.0..1.0).contains(&valid_fraction) {
        return Err(DataError::InvalidArgument {
            what: "validation fraction",
            message: format!("{valid_fraction} is not in [0, 1)"),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let num_classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for mut members in by_class {
        members.shuffle(&mut rng);
        let n_valid = (members.len() as f64 * valid_fraction).round() as usize;
        valid.extend_from_slice(&members[..n_valid]);
        train.extend_from_slice(&members[n_valid..]);
    }
    train.shuffle(&mut rng);
    valid.shuffle(&mut rng);
    Ok((train, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_a_stratified_partition_and_deterministic() {
        let labels: Vec<u32> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
        let (train, valid) = stratified_split(&labels, 0.25, 7).unwrap();
        assert_eq!(valid.iter().filter(|&&i| labels[i] == 1).count(), 5);
        assert_eq!(valid.iter().filter(|&&i| labels[i] == 0).count(), 20);
        let mut all: Vec<usize> = train.iter().chain(&valid).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(stratified_split(&labels, 0.25, 7).unwrap(), (train, valid));
        assert_ne!(shuffled_indices(100, 1), shuffled_indices(100, 2));
        assert_eq!(shuffled_indices(100, 1), shuffled_indices(100, 1));
    }

    #[test]
    fn fraction_out_of_range_is_an_error() {
        assert!(stratified_split(&[0, 1], 1.0, 0).is_err());
        assert!(stratified_split(&[0, 1], f64::NAN, 0).is_err());
    }
}
