//! Property tests of the weight readers: a damaged `.bpk`, `.safetensors` or `.pt` file is an
//! error naming it, never a panic or a model with garbage weights.

#![cfg(feature = "flex")]

use burn::tensor::Device;
use harden_model::store::{self, WeightsFormat};
use harden_model::{MlpConfig, ModelConfig};
use proptest::prelude::*;

fn model() -> harden_model::Model {
    ModelConfig::Mlp(MlpConfig::new(4, vec![3], 2)).init(&Device::flex())
}

proptest! {
    #[test]
    fn damaged_weight_files_are_errors(
        format in prop_oneof![Just(WeightsFormat::Burnpack), Just(WeightsFormat::PytorchSafetensors)],
        at in any::<usize>(),
        value in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("m.{}", format.extension()));
        store::save(&model(), &path, format).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let at = at % bytes.len();
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] ^= value.max(1);
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Err(err) = store::load(model(), &path) {
            prop_assert!(err.to_string().contains("m."), "{}", err);
        }
    }

    #[test]
    fn arbitrary_bytes_are_never_loaded_as_weights(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        ext in prop_oneof![Just("bpk"), Just("safetensors"), Just("pt")],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("junk.{ext}"));
        std::fs::write(&path, &bytes).unwrap();
        let err = store::load(model(), &path).unwrap_err();
        prop_assert!(err.to_string().contains("junk."), "{}", err);
    }
}
