//! Saving and loading weights: round trips, PyTorch names and layouts, mismatch errors.

#![cfg(feature = "flex")]

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use harden_model::store::{self, WeightsFormat};
use harden_model::{MlpConfig, Model, ModelConfig, ModelError, ModelKind, ModelSpec};

/// The configuration of the architecture called `name` for samples of `shape`, with MLP widths
/// `hidden` (ignored by the CNNs).
fn for_data(
    name: &str,
    shape: &[usize],
    outputs: usize,
    hidden: &[usize],
) -> Result<ModelConfig, ModelError> {
    let kind: ModelKind = name.parse()?;
    ModelSpec::new(kind, (kind == ModelKind::Mlp).then(|| hidden.to_vec()))?
        .config_for(shape, outputs)
}

fn device() -> Device {
    Device::flex()
}

fn outputs(model: &Model, x: &Tensor<4>) -> Vec<f32> {
    model.forward(x.clone()).into_data().try_to_vec().unwrap()
}

fn configs() -> Vec<ModelConfig> {
    ["mlp", "small-cnn", "madry-cnn"]
        .into_iter()
        .map(|name| for_data(name, &[1, 28, 28], 10, &[32, 16]).unwrap())
        .collect()
}

#[test]
fn every_model_round_trips_through_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    device.seed(1);
    let x = Tensor::<4>::random([3, 1, 28, 28], Distribution::Default, &device);
    for config in configs() {
        let model = config.init(&device);
        let expected = outputs(&model, &x);
        for format in [WeightsFormat::Burnpack, WeightsFormat::PytorchSafetensors] {
            let path = dir
                .path()
                .join(format!("{}.{}", config.name(), format.extension()));
            store::save(&model, &path, format).unwrap();
            let fresh = config.init(&device);
            assert_ne!(outputs(&fresh, &x), expected, "fresh weights differ");
            let loaded = store::load(fresh, &path).unwrap();
            assert_eq!(
                outputs(&loaded, &x),
                expected,
                "{} {format:?}",
                config.name()
            );
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Reads a safetensors file as `name -> (shape, values)`.
fn read_safetensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, view.shape().to_vec(), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn safetensors_use_pytorch_sequential_names_and_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    // Per model: its name, then each tensor's name and shape, in name order.
    let expected = [
        "mlp: 1.bias 32, 1.weight 32x784, 3.bias 16, 3.weight 16x32, 5.bias 10, 5.weight 10x16",
        "small-cnn: 0.bias 16, 0.weight 16x1x4x4, 2.bias 32, 2.weight 32x16x4x4, 5.bias 100, 5.weight 100x1568, 7.bias 10, 7.weight 10x100",
        "madry-cnn: 0.bias 32, 0.weight 32x1x5x5, 3.bias 64, 3.weight 64x32x5x5, 7.bias 1024, 7.weight 1024x3136, 9.bias 10, 9.weight 10x1024",
    ];
    for (config, tensors) in configs().into_iter().zip(expected) {
        let name = config.name();
        let model = config.init(&device);
        let path = dir.path().join(format!("{name}.safetensors"));
        store::save(&model, &path, WeightsFormat::PytorchSafetensors).unwrap();
        let found = read_safetensors(&path);
        let shapes: Vec<String> = found
            .iter()
            .map(|(n, s, _)| {
                let dims: Vec<String> = s.iter().map(usize::to_string).collect();
                format!("{n} {}", dims.join("x"))
            })
            .collect();
        assert_eq!(format!("{name}: {}", shapes.join(", ")), tensors);
        if let Model::Mlp(mlp) = &model {
            // PyTorch stores Linear weights as [out, in]; burn as [in, out].
            let burn_w: Vec<f32> = mlp.layers[2].weight.val().into_data().try_to_vec().unwrap();
            let (_, shape, torch_w) = found.iter().find(|(n, _, _)| n == "5.weight").unwrap();
            let (out_f, in_f) = (shape[0], shape[1]);
            for o in 0..out_f {
                for i in 0..in_f {
                    assert_eq!(torch_w[o * in_f + i], burn_w[i * out_f + o]);
                }
            }
        }
    }
}

#[test]
fn loading_weights_of_another_shape_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    let small = ModelConfig::Mlp(MlpConfig::new(64, vec![128], 10)).init(&device);
    for format in [WeightsFormat::Burnpack, WeightsFormat::PytorchSafetensors] {
        let path = dir.path().join(format!("m.{}", format.extension()));
        store::save(&small, &path, format).unwrap();

        let wider = ModelConfig::Mlp(MlpConfig::new(64, vec![256], 10)).init(&device);
        let err = store::load(wider, &path).unwrap_err();
        assert!(
            matches!(err, ModelError::Mismatch { .. }),
            "{format:?}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("m.") && msg.contains("128") && msg.contains("256"),
            "{msg}"
        );

        let deeper = ModelConfig::Mlp(MlpConfig::new(64, vec![128, 128], 10)).init(&device);
        let msg = store::load(deeper, &path).unwrap_err().to_string();
        assert!(msg.contains("missing tensor"), "{format:?}: {msg}");

        let cnn = for_data("small-cnn", &[1, 8, 8], 10, &[])
            .unwrap()
            .init(&device);
        assert!(matches!(
            store::load(cnn, &path).unwrap_err(),
            ModelError::Mismatch { .. }
        ));
    }
    let missing = store::load(small, &dir.path().join("none.bpk")).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("none.bpk: cannot load model: no such file"),
        "{missing}"
    );
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    let model = ModelConfig::Mlp(MlpConfig::new(64, vec![128], 10)).init(&device);
    assert!(matches!(
        store::load(model, &garbage).unwrap_err(),
        ModelError::Load { .. }
    ));
}

#[test]
fn parameter_counts_match_the_published_architectures() {
    let device = device();
    let counts: Vec<usize> = ["mlp", "small-cnn", "madry-cnn"]
        .into_iter()
        .map(|name| {
            for_data(name, &[1, 28, 28], 10, &[128])
                .unwrap()
                .init(&device)
                .num_params()
        })
        .collect();
    // 784*128+128 + 128*10+10; the Wong et al. CNN; the Madry et al. CNN (3.27 M).
    assert_eq!(counts, vec![101_770, 166_406, 3_274_634]);
    let binary = for_data("mlp", &[30], 1, &[128]).unwrap().init(&device);
    assert_eq!(
        binary.forward(Tensor::<2>::zeros([4, 30], &device)).dims(),
        [4, 1]
    );
}

#[test]
fn invalid_configurations_are_errors_not_panics() {
    assert!(for_data("small-cnn", &[30], 2, &[]).is_err());
    assert!(for_data("madry-cnn", &[1, 3, 3], 2, &[]).is_err());
    assert!(for_data("mlp", &[30], 2, &[0]).is_err());
    assert!(
        for_data("resnet", &[30], 2, &[])
            .unwrap_err()
            .to_string()
            .contains("mlp, small-cnn, madry-cnn")
    );
    assert!(for_data("small-cnn", &[1, 8, 8], 10, &[]).is_ok());
}

/// `tests/fixtures/mlp.pt`: the state_dict of PyTorch's `Sequential(Flatten(), Linear(4, 3),
/// ReLU(), Linear(3, 2))` in `torch.save`'s format, written by `tests/fixtures/make_pt.py`.
#[test]
fn a_torch_save_state_dict_loads_into_the_equivalent_mlp() {
    let device = device();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mlp.pt");
    let model = ModelConfig::Mlp(MlpConfig::new(4, vec![3], 2)).init(&device);
    let model = store::load(model, &path).unwrap();
    // The fixture's values: weight1[o][i] = 0.1 (4o + i) - 0.6, bias1 = [0.1, -0.2, 0.3],
    // weight2[o][i] = -0.25 (3o + i) + 0.5, bias2 = [0.05, -0.05].
    let x = [0.5f32, -1.0, 2.0, 0.25];
    let w1 = |o: usize, i: usize| 0.1 * (4 * o + i) as f32 - 0.6;
    let b1 = [0.1f32, -0.2, 0.3];
    let w2 = |o: usize, i: usize| -0.25 * (3 * o + i) as f32 + 0.5;
    let b2 = [0.05f32, -0.05];
    let h: Vec<f32> = (0..3)
        .map(|o| (b1[o] + (0..4).map(|i| w1(o, i) * x[i]).sum::<f32>()).max(0.0))
        .collect();
    let expected: Vec<f32> = (0..2)
        .map(|o| b2[o] + (0..3).map(|i| w2(o, i) * h[i]).sum::<f32>())
        .collect();
    let got = outputs4(&model, Tensor::<2>::from_floats([x], &device));
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-5, "{got:?} vs {expected:?}");
    }
    let wrong = ModelConfig::Mlp(MlpConfig::new(4, vec![5], 2)).init(&device);
    assert!(matches!(
        store::load(wrong, &path).unwrap_err(),
        ModelError::Mismatch { .. }
    ));
    let err = store::save(&model, Path::new("x.pt"), WeightsFormat::PytorchPickle).unwrap_err();
    assert!(err.to_string().contains("write .safetensors"), "{err}");
}

fn outputs4(model: &Model, x: Tensor<2>) -> Vec<f32> {
    model.forward(x).into_data().try_to_vec().unwrap()
}

/// Writes `tensors` (name, shape, values) as a safetensors file of `dtype`, or with the value
/// at `poison` (tensor index, element) replaced by NaN.
fn write_safetensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    dtype: burn::tensor::DType,
    poison: Option<(usize, usize)>,
) {
    use burn::tensor::TensorData;
    let st_dtype = match dtype {
        burn::tensor::DType::F64 => safetensors::Dtype::F64,
        burn::tensor::DType::F32 => safetensors::Dtype::F32,
        burn::tensor::DType::F16 => safetensors::Dtype::F16,
        burn::tensor::DType::BF16 => safetensors::Dtype::BF16,
        other => panic!("no safetensors dtype for {other:?}"),
    };
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .enumerate()
        .map(|(t, (name, shape, values))| {
            let mut values = values.clone();
            if let Some((pt, pi)) = poison
                && pt == t
            {
                values[pi] = f32::NAN;
            }
            let data = TensorData::new(values, shape.clone()).convert_dtype(dtype);
            (name.clone(), shape.clone(), data.as_bytes().to_vec())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = encoded
        .iter()
        .map(|(name, shape, bytes)| {
            (
                name.clone(),
                safetensors::tensor::TensorView::new(st_dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn other_float_types_are_cast_on_load_and_non_finite_weights_are_refused() {
    use burn::tensor::DType;
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    device.seed(3);
    let config = ModelConfig::Mlp(MlpConfig::new(64, vec![16], 10));
    let model = config.init(&device);
    let x = Tensor::<4>::random([5, 1, 8, 8], Distribution::Default, &device);
    let expected = outputs(&model, &x);
    let original = dir.path().join("f32.safetensors");
    store::save(&model, &original, WeightsFormat::PytorchSafetensors).unwrap();
    let tensors = read_safetensors(&original);
    for (dtype, tolerance) in [(DType::F64, 1e-6), (DType::F16, 2e-2), (DType::BF16, 1e-1)] {
        let path = dir.path().join(format!("{dtype:?}.safetensors"));
        write_safetensors(&path, &tensors, dtype, None);
        let loaded = store::load(config.init(&device), &path).unwrap();
        for (a, b) in outputs(&loaded, &x).iter().zip(&expected) {
            assert!((a - b).abs() < tolerance, "{dtype:?}: {a} vs {b}");
        }
        // Converting it writes F32 weights, which load again.
        let bpk = dir.path().join(format!("{dtype:?}.bpk"));
        store::save(&loaded, &bpk, WeightsFormat::Burnpack).unwrap();
        store::load(config.init(&device), &bpk).unwrap();
    }
    let poisoned = dir.path().join("nan.safetensors");
    write_safetensors(&poisoned, &tensors, DType::F32, Some((1, 7)));
    let err = store::load(config.init(&device), &poisoned)
        .unwrap_err()
        .to_string();
    // `1.weight` in PyTorch's names is the first linear layer's weight in burn's.
    assert_eq!(tensors[1].0, "1.weight");
    assert!(
        err.contains("nan.safetensors") && err.contains("NaN") && err.contains("layers.0.weight"),
        "{err}"
    );
}
