//! Every compiled-in backend computes the same forward and backward pass as flex.

#![cfg(feature = "flex")]

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use harden_model::device::test_device;
use harden_model::{ModelConfig, ModelSpec};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Logits and the input gradient of the summed logits of a SmallCnn on `device`.
fn forward_backward(
    config: &ModelConfig,
    weights: &harden_model::Model,
    x: &Tensor<4>,
    device: &Device,
) -> (Vec<f32>, Vec<f32>) {
    let device = device.clone().autodiff();
    let model = weights.clone().to_device(&device);
    let x = x.clone().to_device(&device).autodiff().require_grad();
    let logits = model.forward(x.clone());
    let grads = logits.clone().sum().backward();
    let _ = config;
    (values(logits), values(x.grad(&grads).unwrap()))
}

fn assert_close(name: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "{name}: largest difference from flex {worst}");
}

#[test]
fn backends_agree_with_flex() {
    let flex = Device::flex();
    flex.seed(4);
    let config = ModelSpec::SmallCnn {}.config_for(&[1, 28, 28], 10).unwrap();
    let model = config.init(&flex);
    let x = Tensor::<4>::random([4, 1, 28, 28], Distribution::Default, &flex);
    let (logits, grad) = forward_backward(&config, &model, &x, &flex);
    let mut ran = vec!["flex"];
    for name in ["ndarray", "wgpu", "cuda"] {
        let Some(device) = test_device(name) else {
            continue;
        };
        let (l, g) = forward_backward(&config, &model, &x, &device);
        assert_close(&format!("{name} logits"), &l, &logits);
        assert_close(&format!("{name} input gradient"), &g, &grad);
        ran.push(name);
    }
    eprintln!("forward and backward agree on: {}", ran.join(", "));
}

/// Logits and the gradient of the summed logits with respect to a perturbation of the token
/// embeddings, of a text Transformer on `device`.
fn text_forward_backward(
    weights: &harden_model::TextTransformer,
    seqs: &[Vec<u32>],
    device: &Device,
) -> (Vec<f32>, Vec<f32>) {
    use harden_model::TextClassifier;
    let model = weights.clone().to_device(device);
    let batch = harden_data::TokenBatch::new(seqs, device);
    let emb = model.embed(batch.ids);
    let delta = emb.zeros_like().autodiff().require_grad();
    let logits = model.logits_embedded(emb.autodiff() + delta.clone(), batch.pad);
    let grads = logits.clone().sum().backward();
    (values(logits), values(delta.grad(&grads).unwrap()))
}

#[test]
fn text_transformer_agrees_with_flex() {
    let flex = Device::flex();
    flex.seed(5);
    let model = harden_model::TextTransformerConfig::new(60, 16, 2)
        .with_width(16)
        .with_ff(32)
        .init(&flex)
        .valid();
    let seqs = vec![
        vec![3, 9, 27, 4, 5],
        vec![11, 2],
        vec![59, 58, 57, 56, 55, 54, 53],
    ];
    let (logits, grad) = text_forward_backward(&model, &seqs, &flex);
    let mut ran = vec!["flex"];
    for name in ["ndarray", "wgpu", "cuda"] {
        let Some(device) = test_device(name) else {
            continue;
        };
        let (l, g) = text_forward_backward(&model, &seqs, &device);
        assert_close(&format!("{name} text logits"), &l, &logits);
        assert_close(&format!("{name} embedding gradient"), &g, &grad);
        ran.push(name);
    }
    eprintln!("the text Transformer agrees on: {}", ran.join(", "));
}
