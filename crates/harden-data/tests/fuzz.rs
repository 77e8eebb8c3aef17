//! Property tests of every reader: arbitrary bytes (and byte-level mutations of valid files)
//! give a clear error or a valid dataset, never a panic. proptest runs 256 cases of each
//! property; `PROPTEST_CASES=1000000` makes a long run.

use std::path::Path;
use std::sync::OnceLock;

use harden_data::csv::{LabelColumn, parse_bytes as csv_bytes};
use harden_data::{TextTokenizer, cifar, idx, tsv};
use proptest::prelude::*;

/// A valid IDX image file: magic, `[n, h, w]`, bytes.
fn idx_images(n: u32, h: u32, w: u32) -> Vec<u8> {
    let mut b = idx::IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [n, h, w] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend((0..n * h * w).map(|i| (i % 251) as u8));
    b
}

/// Flips, truncates or extends `bytes` at `at`.
fn mutate(mut bytes: Vec<u8>, at: usize, value: u8, op: u8) -> Vec<u8> {
    if bytes.is_empty() {
        return vec![value];
    }
    let at = at % bytes.len();
    match op % 3 {
        0 => bytes[at] ^= value.max(1),
        1 => bytes.truncate(at),
        _ => bytes.insert(at, value),
    }
    bytes
}

/// The JSON of a tokenizer trained on a few sentences.
fn tokenizer_json() -> &'static serde_json::Value {
    static JSON: OnceLock<serde_json::Value> = OnceLock::new();
    JSON.get_or_init(|| {
        let texts: Vec<String> = ["the movie was great", "the food was awful", "a great cast"]
            .iter()
            .map(|t| t.repeat(3))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        TextTokenizer::train(&texts, 64)
            .unwrap()
            .save(&path)
            .unwrap();
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    })
}

/// Loads `bytes` as a `tokenizer.json`: an error, or a tokenizer whose every encoded id is
/// inside its vocabulary (an id past it would index past a model's embedding table).
fn tokenizer_loads_consistently(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, bytes).unwrap();
    if let Ok(tok) = TextTokenizer::load(&path) {
        for text in ["the movie was great", "zzz qqq", "a cast of the food"] {
            let ids = tok.encode(text, 16);
            prop_assert!(
                ids.iter().all(|&i| (i as usize) < tok.vocab_size()),
                "{ids:?}"
            );
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn mutated_tokenizer_files_are_errors_or_consistent(
        at in any::<usize>(), value in any::<u8>(), op in any::<u8>()
    ) {
        let bytes = serde_json::to_vec(tokenizer_json()).unwrap();
        tokenizer_loads_consistently(&mutate(bytes, at, value, op))?;
    }

    #[test]
    fn renumbered_tokenizer_files_are_errors_or_consistent(
        which in any::<usize>(), id in any::<u32>()
    ) {
        let mut json = tokenizer_json().clone();
        let vocab = json["model"]["vocab"].as_object_mut().unwrap();
        let token = vocab.keys().nth(which % vocab.len()).unwrap().clone();
        vocab[&token] = serde_json::json!(id % 200);
        tokenizer_loads_consistently(&serde_json::to_vec(&json).unwrap())?;
    }

    #[test]
    fn idx_never_panics_and_agrees_with_its_header(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(a) = idx::parse(Path::new("f"), &bytes, idx::IMAGES_MAGIC, "images") {
            prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }

    #[test]
    fn mutated_idx_files_are_errors_or_consistent(
        n in 1u32..4, h in 1u32..5, w in 1u32..5, at in any::<usize>(), value in any::<u8>(), op in any::<u8>()
    ) {
        let bytes = mutate(idx_images(n, h, w), at, value, op);
        if let Ok(a) = idx::parse(Path::new("f"), &bytes, idx::IMAGES_MAGIC, "images") {
            prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }

    #[test]
    fn csv_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(d) = csv_bytes(Path::new("f.csv"), bytes, &LabelColumn::default()) {
            prop_assert!(!d.is_empty());
            prop_assert!(d.features().iter().all(|x| x.is_finite()));
            prop_assert!(d.labels().iter().all(|&l| (l as usize) < d.num_classes()));
        }
    }

    #[test]
    fn csv_like_text_never_panics(
        rows in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![
                    Just("1".to_string()), Just("-2.5".to_string()), Just("".to_string()),
                    Just("nan".to_string()), Just("inf".to_string()), Just("x".to_string()),
                    Just("1e309".to_string()), Just("\"a,b\"".to_string()), Just("0".to_string())
                ],
                0..5,
            ),
            0..8,
        ),
        header in any::<bool>()
    ) {
        let mut text = if header { "a,b,label\n".to_string() } else { String::new() };
        for row in rows {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        if let Ok(d) = csv_bytes(Path::new("f.csv"), text.into_bytes(), &LabelColumn::default()) {
            prop_assert!(d.features().iter().all(|x| x.is_finite()));
        }
    }

    #[test]
    fn tsv_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(d) = tsv::parse_bytes(Path::new("f.tsv"), bytes) {
            prop_assert_eq!(d.texts().len(), d.labels().len());
        }
    }

    #[test]
    fn cifar_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..8000)) {
        if let Ok(d) = cifar::parse(Path::new("f.bin"), &bytes) {
            prop_assert_eq!(d.sample_shape(), &[3, 32, 32][..]);
        }
    }
}
