//! Shared test set-up: the embedded digits data and a small MLP trained on it.

#![allow(dead_code)]

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor};
use harden_adversarial::{AttackRng, Norm, Objective, ThreatModel};
use harden_data::source::DatasetSource;
use harden_data::split::shuffled_indices;
use harden_data::{ArrayBatcher, ArrayDataset};
use harden_model::{Mlp, MlpConfig};

/// The digits train and test splits (images `[1, 8, 8]` in `[0, 1]`).
pub fn digits() -> (ArrayDataset, ArrayDataset) {
    let s = DatasetSource::Digits
        .load(std::path::Path::new("."))
        .unwrap();
    (s.train, s.test)
}

/// The whole of `data` as one batch on `device`.
pub fn batch(data: &ArrayDataset, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let b = ArrayBatcher::<4>::for_dataset(data).unwrap().gather(
        data,
        &(0..data.len()).collect::<Vec<_>>(),
        device,
    );
    (b.inputs, b.labels)
}

/// An MLP 64-128-10 trained on `train` with `objective`, returned without autodiff.
pub fn train(objective: &Objective, train: &ArrayDataset, epochs: usize, device: &Device) -> Mlp {
    let device = device.clone().autodiff();
    device.seed(7);
    let mut model =
        MlpConfig::new(train.sample_len(), vec![128], train.num_classes()).init(&device);
    let mut optim = AdamConfig::new().init();
    let batcher = ArrayBatcher::<4>::for_dataset(train).unwrap();
    let mut rng = AttackRng::new(11);
    for epoch in 0..epochs {
        for chunk in shuffled_indices(train.len(), epoch as u64).chunks(64) {
            let b = batcher.gather(train, chunk, &device);
            let attack_model = model.valid();
            let out = objective.loss(
                &|x| model.forward(x),
                &|x| attack_model.forward(x),
                b.inputs,
                b.labels,
                None,
                &mut rng,
            );
            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
            model = optim.step(2e-3, model, grads);
        }
    }
    model.valid()
}

/// The MLP trained cleanly for `epochs` epochs on the digits, and the digits test split.
pub fn clean_model(epochs: usize, device: &Device) -> (Mlp, ArrayDataset) {
    let (train_set, test_set) = digits();
    (
        train(&Objective::Clean, &train_set, epochs, device),
        test_set,
    )
}

/// A clean-trained MLP on flex and the digits test split, whole as one batch.
pub struct Trained {
    /// The MLP, without autodiff.
    pub model: Mlp,
    /// The digits test split.
    pub test_set: ArrayDataset,
    /// The test images `[N, 1, 8, 8]`.
    pub x: Tensor<4>,
    /// The test labels `[N]`.
    pub y: Tensor<1, Int>,
    /// The flex device everything lives on.
    pub device: Device,
}

/// The MLP trained cleanly for `epochs` epochs on flex, and the test split as one batch.
pub fn trained(epochs: usize) -> Trained {
    let device = Device::flex();
    let (model, test_set) = clean_model(epochs, &device);
    let (x, y) = batch(&test_set, &device);
    Trained {
        model,
        test_set,
        x,
        y,
        device,
    }
}

/// The L-inf threat model of radius `eps` in the `[0, 1]` box.
pub fn linf(eps: f64) -> ThreatModel {
    ThreatModel::new(Norm::Linf, eps).unwrap()
}

/// Host copy of a float tensor.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[allow(unused_imports)]
pub use harden_adversarial::eval::to_bools as bools;
