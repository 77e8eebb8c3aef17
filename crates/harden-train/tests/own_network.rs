//! A library user's own network, defined here and not one of harden's built-ins, trained with
//! `harden-train` and attacked with `harden-adversarial`, saved and loaded back.

use std::path::Path;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use harden_adversarial::eval::accuracy;
use harden_adversarial::{Attack, AttackRng, Norm, ObjectiveKind, PgdConfig, ThreatModel};
use harden_data::Batches;
use harden_model::store::{self, WeightsFormat};
use harden_model::{Classifier, ModelSpec};
use harden_train::{RunData, RunOptions, TrainConfig, fit};

/// Two linear layers with a ReLU between them, flattening any input.
#[derive(Module, Debug)]
struct TwoLayer {
    hidden: Linear,
    out: Linear,
}

impl TwoLayer {
    fn new(inputs: usize, classes: usize, device: &Device) -> Self {
        Self {
            hidden: LinearConfig::new(inputs, 48).init(device),
            out: LinearConfig::new(48, classes).init(device),
        }
    }
}

impl Classifier for TwoLayer {
    fn logits<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        let x: Tensor<2> = input.flatten(1, D - 1);
        self.out.forward(relu(self.hidden.forward(x)))
    }
}

#[test]
fn a_network_defined_by_the_user_trains_saves_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("own");
    let config = TrainConfig {
        objective: ObjectiveKind::Pgd,
        // The built-in model setting is not used by `fit`.
        model: ModelSpec::SmallCnn {},
        eps: 0.2,
        epochs: 15,
        lr: 5e-3,
        eval_steps: 10,
        ..Default::default()
    };
    let run = config.clone().check().unwrap();
    let data = RunData::load(run.config()).unwrap();
    let (inputs, classes) = (data.train.sample_len(), data.train.num_classes());
    let train = |run: &harden_train::Run, out: &Path| {
        let options = RunOptions::quiet(out.to_path_buf(), Device::flex());
        fit(
            run,
            &data,
            |device| TwoLayer::new(inputs, classes, device),
            &options,
        )
        .unwrap()
        .evaluation
    };
    let e = train(&run, &out);
    // The same network trained on clean inputs, as the yardstick of robustness.
    let clean_run = TrainConfig {
        objective: ObjectiveKind::Clean,
        ..config
    }
    .check()
    .unwrap();
    let plain = train(&clean_run, &dir.path().join("clean"));
    eprintln!(
        "own two-layer network, digits eps 0.2: PGD-AT clean {:.3}, PGD-10 {:.3}; clean training clean {:.3}, PGD-10 {:.3}",
        e.clean_accuracy, e.robust_accuracy, plain.clean_accuracy, plain.robust_accuracy
    );
    assert!(e.clean_accuracy > 0.8, "clean {}", e.clean_accuracy);
    // Measured: 0.398 against 0.003. The bar sits well inside that gap, so that another CPU's
    // float rounding (a test image or two) cannot cross it.
    assert!(
        e.robust_accuracy > plain.robust_accuracy + 0.25,
        "robust {} after PGD-AT, {} after clean training",
        e.robust_accuracy,
        plain.robust_accuracy
    );

    // The saved weights load back into a fresh network and give the reported accuracy.
    let device = Device::flex();
    let Batches::Image(test) =
        Batches::first(&data.test, data.test.len(), 10_000, &device).unwrap()
    else {
        panic!("digits are images");
    };
    let (x, y) = test[0].clone();
    for file in ["best.bpk", "best.safetensors"] {
        let model = store::load(TwoLayer::new(inputs, classes, &device), &out.join(file)).unwrap();
        let f = |x: Tensor<4>| model.logits(x);
        let acc = accuracy(&f, x.clone(), y.clone());
        assert!((acc - e.clean_accuracy).abs() < 1e-9, "{file}: {acc}");
        // And the attacks of harden-adversarial take it as it is.
        let threat = ThreatModel::new(Norm::Linf, 0.2).unwrap();
        let pgd = PgdConfig::new(threat, 10, 0.05).check().unwrap();
        let adv = pgd
            .perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(0))
            .adversarial;
        assert!(accuracy(&f, adv, y.clone()) < acc);
    }

    // Saving through the store round-trips bit for bit.
    let model = store::load(
        TwoLayer::new(inputs, classes, &device),
        &out.join("best.bpk"),
    )
    .unwrap();
    let copy = dir.path().join("copy.safetensors");
    store::save(&model, &copy, WeightsFormat::PytorchSafetensors).unwrap();
    let again = store::load(TwoLayer::new(inputs, classes, &device), &copy).unwrap();
    let logits = |m: &TwoLayer| m.logits(x.clone()).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(logits(&model), logits(&again));
    assert!(Path::new(&out.join("report.json")).is_file());
}
