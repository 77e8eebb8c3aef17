//! Low-rank adapters: only the factors train, merged and unmerged models agree, and the saved
//! and exported adapters hold what the model holds.

#![cfg(feature = "flex")]

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Distribution, Tensor};
use harden_model::lora::{self, LoraSpec};
use harden_model::{Classifier, Model, ModelSpec, TextModel, TextTransformerConfig};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every tensor of `model` by record name.
fn tensors<M: Module>(model: &M) -> Vec<(String, Vec<f32>)> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|t| {
            let bytes = t.to_bytes().unwrap();
            let v = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (t.name.clone(), v)
        })
        .collect()
}

fn small_cnn(device: &Device) -> Model {
    ModelSpec::SmallCnn {}
        .config_for(&[1, 28, 28], 10)
        .unwrap()
        .init(device)
}

/// Three Adam steps on a cross-entropy-like loss of random data.
fn train_a_little(mut model: Model, device: &Device) -> Model {
    let mut optim = AdamConfig::new().init();
    for _ in 0..3 {
        let x = Tensor::<4>::random([8, 1, 28, 28], Distribution::Default, device);
        let loss = model.logits(x).powf_scalar(2.0).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    model
}

/// Adapters of rank `rank` (alpha twice the rank) on every matrix and convolution kernel.
fn every_weight(rank: usize) -> LoraSpec {
    LoraSpec {
        rank,
        alpha: 2.0 * rank as f64,
        convolutions: true,
        ..LoraSpec::default()
    }
}

#[test]
fn adapters_train_and_the_base_stays_bit_identical() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let base = small_cnn(&device);
    let before = tensors(&base);
    let spec = every_weight(2);
    let model = lora::attach(base, &spec).unwrap();
    let count = lora::count(&model);
    assert_eq!(count.adapted, 4, "two kernels and two matrices");
    assert_eq!(count.trainable, count.adapter);
    // conv1 [16, 1*4*4], conv2 [32, 16*4*4], fc1 [1568, 100], fc2 [100, 10], rank 2.
    assert_eq!(
        count.adapter,
        2 * (16 + 16) + 2 * (32 + 256) + 2 * (1568 + 100) + 2 * (100 + 10)
    );
    let trained = train_a_little(model, &device);
    let after = tensors(&trained);
    for (name, old) in &before {
        let (_, new) = after.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(old, new, "{name} changed");
    }
    let moved = after
        .iter()
        .filter(|(n, v)| n.ends_with(".lora.b") && v.iter().any(|&x| x != 0.0))
        .count();
    assert_eq!(moved, 4, "every adapter's b left zero");
}

#[test]
fn targets_and_full_weights_choose_what_trains() {
    let device = Device::flex().autodiff();
    let spec = LoraSpec {
        rank: 1,
        alpha: 1.0,
        targets: vec!["fc1".into()],
        full: vec!["fc2".into()],
        ..LoraSpec::default()
    };
    let model = lora::attach(small_cnn(&device), &spec).unwrap();
    let count = lora::count(&model);
    assert_eq!(count.adapted, 1);
    assert_eq!(count.trainable, (1568 + 100) + (100 * 10 + 10));
    // Kernels need the flag.
    let spec = LoraSpec {
        targets: vec!["conv".into()],
        ..LoraSpec::default()
    };
    let err = lora::attach(small_cnn(&device), &spec).unwrap_err();
    assert!(err.to_string().contains("--lora-convolutions"), "{err}");
    let err = lora::attach(
        small_cnn(&device),
        &LoraSpec {
            rank: 0,
            ..LoraSpec::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("lora-rank"), "{err}");
}

#[test]
fn merged_saved_and_exported_adapters_agree() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let base = small_cnn(&device);
    let spec = every_weight(3);
    let trained = train_a_little(lora::attach(base.clone(), &spec).unwrap(), &device);
    let x = Tensor::<4>::random([4, 1, 28, 28], Distribution::Default, &device.clone())
        .without_autodiff();
    let unmerged = values(trained.valid().logits(x.clone()));
    let merged = lora::merge(&trained);
    assert_eq!(lora::count(&merged).adapted, 0);
    let merged_logits = values(merged.logits(x.clone()));
    assert!(max_diff(&unmerged, &merged_logits) < 1e-4);

    // The adapters file alone, applied over a fresh copy of the base.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adapters.bpk");
    lora::save_adapters(&trained, &spec, &file).unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size < 4 * lora::count(&trained).total as u64 / 10, "{size}");
    let fresh = lora::attach(base.valid(), &spec).unwrap();
    let loaded = lora::load_adapters(fresh, &spec, &file).unwrap();
    let reloaded = values(loaded.logits(x.clone()));
    assert!(max_diff(&unmerged, &reloaded) < 1e-6);
    // Adapters of another rank do not fit.
    let other = LoraSpec {
        rank: 2,
        ..spec.clone()
    };
    let wrong = lora::attach(small_cnn(&Device::flex()), &other).unwrap();
    assert!(lora::load_adapters(wrong, &other, &file).is_err());

    // PEFT: delta = alpha / r * B A in PyTorch's layout equals merged - base.
    let names = merged.pytorch_names();
    lora::export_peft(&trained, &spec, &names, dir.path()).unwrap();
    let bytes = std::fs::read(dir.path().join("adapter_model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let read = |name: &str| -> (Vec<usize>, Vec<f32>) {
        let t = st.tensor(name).unwrap();
        let v = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (t.shape().to_vec(), v)
    };
    let merged_t = tensors(&merged);
    let base_t = tensors(&base);
    let get =
        |set: &[(String, Vec<f32>)], n: &str| set.iter().find(|(k, _)| k == n).unwrap().1.clone();
    let scale = (spec.alpha / spec.rank as f64) as f32;
    // fc1: burn [in, out], PyTorch module "5".
    let (a_shape, a) = read("base_model.model.5.lora_A.weight");
    let (b_shape, b) = read("base_model.model.5.lora_B.weight");
    assert_eq!(a_shape, vec![3, 1568]);
    assert_eq!(b_shape, vec![100, 3]);
    let (w_new, w_old) = (get(&merged_t, "fc1.weight"), get(&base_t, "fc1.weight"));
    // PyTorch delta[out=j][in=i] = sum_k B[j][k] A[k][i]; burn weight[i][j].
    let peft_delta = |a: &[f32], b: &[f32], out: usize, inp: usize, width: usize| {
        (0..3)
            .map(|k| b[out * 3 + k] * a[k * width + inp])
            .sum::<f32>()
            * scale
    };
    for (i, j) in [(0, 0), (17, 42), (1567, 99)] {
        let delta = peft_delta(&a, &b, j, i, 1568);
        let burn = w_new[i * 100 + j] - w_old[i * 100 + j];
        assert!(
            (delta - burn).abs() < 1e-5,
            "fc1 [{i}, {j}]: {delta} vs {burn}"
        );
    }
    // conv2: [32, 16, 4, 4], PyTorch module "2".
    let (a_shape, a) = read("base_model.model.2.lora_A.weight");
    let (b_shape, b) = read("base_model.model.2.lora_B.weight");
    assert_eq!(a_shape, vec![3, 16, 4, 4]);
    assert_eq!(b_shape, vec![32, 3, 1, 1]);
    let (w_new, w_old) = (get(&merged_t, "conv2.weight"), get(&base_t, "conv2.weight"));
    for (o, i) in [(0, 0), (31, 255), (7, 100)] {
        let (delta, burn) = (
            peft_delta(&a, &b, o, i, 256),
            w_new[o * 256 + i] - w_old[o * 256 + i],
        );
        assert!(
            (delta - burn).abs() < 1e-5,
            "conv2 [{o}, {i}]: {delta} vs {burn}"
        );
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["r"], 3);
    assert_eq!(config["peft_type"], "LORA");
}

#[test]
fn text_transformer_adapters_on_the_encoder_train_under_a_tenth() {
    let device = Device::flex().autodiff();
    // The default text Transformer: 8,000 tokens, width 64, 2 layers, 4 heads, ff 128.
    let model = TextModel::TextTransformer(TextTransformerConfig::new(8000, 128, 1).init(&device));
    let total = lora::count(&model).total;
    let spec = LoraSpec {
        rank: 8,
        alpha: 16.0,
        targets: vec!["encoder".into()],
        ..LoraSpec::default()
    };
    let adapted = lora::attach(model.clone(), &spec).unwrap();
    let count = lora::count(&adapted);
    // Per layer: query, key, value, output [64, 64] and the feed-forward [64, 128], [128, 64].
    assert_eq!(count.adapted, 12, "{count:?}");
    assert_eq!(
        count.trainable,
        2 * (4 * 8 * (64 + 64) + 2 * 8 * (64 + 128))
    );
    assert!(count.trainable * 10 < total, "{count:?} of {total}");
    // Without targets the embedding tables get adapters too.
    let all = lora::attach(
        model,
        &LoraSpec {
            targets: Vec::new(),
            ..spec
        },
    )
    .unwrap();
    assert_eq!(lora::count(&all).adapted, 12 + 3, "tokens, positions, head");
}

#[test]
fn peft_export_names_embedding_tables_as_embeddings() {
    let device = Device::flex().autodiff();
    let model = TextModel::TextTransformer(
        TextTransformerConfig::new(500, 32, 1)
            .with_width(16)
            .with_layers(1)
            .with_heads(2)
            .with_ff(32)
            .init(&device),
    );
    let spec = LoraSpec {
        rank: 2,
        alpha: 4.0,
        targets: vec!["tokens".into(), "head".into()],
        ..LoraSpec::default()
    };
    let adapted = lora::attach(model, &spec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    lora::export_peft(&adapted, &spec, &[], dir.path()).unwrap();
    let bytes = std::fs::read(dir.path().join("adapter_model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<(String, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            (
                "base_model.model.head.lora_A.weight".to_string(),
                vec![2, 16]
            ),
            (
                "base_model.model.head.lora_B.weight".to_string(),
                vec![1, 2]
            ),
            (
                "base_model.model.tokens.lora_embedding_A".to_string(),
                vec![2, 500]
            ),
            (
                "base_model.model.tokens.lora_embedding_B".to_string(),
                vec![16, 2]
            ),
        ]
    );
}
