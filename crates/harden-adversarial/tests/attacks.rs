//! Attacks against a model trained on the embedded digits: they work, stay in the threat
//! model, are deterministic, and stronger settings are never weaker.

#![cfg(feature = "flex")]

mod common;

use burn::module::Module;
use burn::nn::LinearConfig;
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Int, Tensor};
use common::{Trained, batch, bools, digits, linf, train, trained, values};
use harden_adversarial::eval::{accuracy, run_ensemble};
use harden_adversarial::{
    Attack, AttackRng, Norm, Objective, ObjectiveConfig, PgdConfig, ThreatModel, input_gradient,
};

const EPS: f64 = 0.1;

fn success_rate(s: &[bool]) -> f64 {
    s.iter().filter(|&&b| b).count() as f64 / s.len() as f64
}

#[test]
fn fgsm_and_pgd_break_a_trained_model_inside_the_threat_model() {
    let Trained { model, x, y, .. } = trained(15);
    let f = |x: Tensor<4>| model.forward(x);
    let clean = accuracy(&f, x.clone(), y.clone());
    assert!(clean > 0.93, "clean accuracy {clean}");

    let fgsm = PgdConfig::fgsm(linf(EPS)).check().unwrap();
    let pgd = PgdConfig::new(linf(EPS), 20, 0.01).check().unwrap();
    let ensemble = |attack: &dyn Attack<4>| {
        let batches = [(x.clone(), y.clone())];
        run_ensemble(&f, &batches, &[attack], &mut AttackRng::new(1))
    };
    let fgsm_acc = ensemble(&fgsm).robust_accuracy();
    let report = ensemble(&pgd);
    let pgd_acc = report.robust_accuracy();
    eprintln!(
        "digits MLP, L-inf eps {EPS}: clean {clean:.3}, FGSM {fgsm_acc:.3}, PGD-20 {pgd_acc:.3}"
    );
    assert!(fgsm_acc < clean - 0.2, "FGSM: {fgsm_acc} vs clean {clean}");
    assert!(
        pgd_acc < fgsm_acc,
        "PGD {pgd_acc} not stronger than FGSM {fgsm_acc}"
    );
    assert_eq!(report.attacks[0].gradients.zero, 0);

    for (attack, threat) in [(pgd, linf(EPS)), (fgsm, linf(EPS))] {
        let out = attack.perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(2));
        let adv = values(out.adversarial.clone());
        assert!(
            adv.iter().all(|v| (0.0..=1.0).contains(v)),
            "left the [0, 1] box"
        );
        let dist = values(threat.distance(out.adversarial, x.clone()));
        assert!(
            dist.iter().all(|d| *d <= EPS as f32 + 1e-6),
            "left the ball"
        );
    }

    // L2 too: eps 1.0 over 64 pixels.
    let l2 = PgdConfig::new(ThreatModel::new(Norm::L2, 1.0).unwrap(), 20, 0.25)
        .check()
        .unwrap();
    let out = l2.perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(3));
    let dist = values(l2.threat().distance(out.adversarial.clone(), x.clone()));
    assert!(
        dist.iter().all(|d| *d <= 1.0 + 1e-5),
        "left the L2 ball: {:?}",
        dist.iter().cloned().fold(0.0, f32::max)
    );
    let l2_acc = accuracy(&f, out.adversarial, y);
    assert!(l2_acc < clean - 0.2, "L2 PGD: {l2_acc} vs clean {clean}");
}

#[test]
fn more_steps_or_restarts_are_never_weaker_and_seeds_repeat() {
    let Trained { model, x, y, .. } = trained(10);
    let f = |x: Tensor<4>| model.forward(x);
    let run = |steps: usize, restarts: usize, seed: u64| {
        let attack = PgdConfig::new(linf(0.05), steps, 0.01)
            .with_restarts(restarts)
            .check()
            .unwrap();
        attack.perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(seed))
    };
    let weak = bools(run(3, 1, 4).success);
    for (steps, restarts) in [(10, 1), (3, 3), (10, 3)] {
        let strong = bools(run(steps, restarts, 4).success);
        let lost: Vec<usize> = (0..weak.len()).filter(|&i| weak[i] && !strong[i]).collect();
        assert!(
            lost.is_empty(),
            "PGD-{steps}x{restarts} misses samples PGD-3x1 broke: {lost:?}"
        );
        assert!(success_rate(&strong) >= success_rate(&weak));
    }
    // Same seed, same device: identical adversarial examples; another seed differs.
    let a = values(run(5, 2, 9).adversarial);
    assert_eq!(a, values(run(5, 2, 9).adversarial));
    assert_ne!(a, values(run(5, 2, 10).adversarial));
}

#[test]
fn eps_zero_returns_the_clean_input() {
    let device = Device::flex();
    let (_, test_set) = digits();
    let model = harden_model::MlpConfig::new(64, vec![16], 10).init(&device);
    let f = |x: Tensor<4>| model.forward(x);
    let (x, y) = batch(&test_set, &device);
    for norm in [Norm::Linf, Norm::L2] {
        let threat = ThreatModel::new(norm, 0.0).unwrap();
        for attack in [
            PgdConfig::new(threat.clone(), 5, 0.1),
            PgdConfig::fgsm(threat.clone()),
            PgdConfig::fgsm_rs(threat.clone()).with_step_size(0.1),
        ] {
            let out =
                attack
                    .check()
                    .unwrap()
                    .perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(0));
            assert_eq!(values(out.adversarial), values(x.clone()), "{norm:?}");
        }
    }
}

#[test]
fn targeted_pgd_reaches_its_targets() {
    let Trained { model, x, y, .. } = trained(10);
    let f = |x: Tensor<4>| model.forward(x);
    let targets: Tensor<1, Int> = (y.clone() + 1).remainder_scalar(10);
    let attack = PgdConfig::new(linf(0.2), 30, 0.02).check().unwrap();
    let out = attack.perturb_targeted(&f, x.clone(), targets.clone(), &mut AttackRng::new(0));
    let hit = success_rate(&bools(out.success));
    let predicted = harden_adversarial::loss::predictions(f(out.adversarial));
    let agree = success_rate(&bools(predicted.equal(targets)));
    eprintln!("targeted PGD-30 eps 0.2: {hit:.3} reach their target");
    assert!(hit > 0.5, "only {hit} reached their target");
    assert!(
        (hit - agree).abs() < 1e-9,
        "success flags disagree with predictions"
    );
}

#[test]
fn input_gradient_matches_finite_differences() {
    let device = Device::flex();
    device.seed(2);
    let l1 = LinearConfig::new(5, 4).init(&device);
    let l2 = LinearConfig::new(4, 3).init(&device);
    let f = |x: Tensor<2>| l2.forward(tanh(l1.forward(x)));
    let mut rng = AttackRng::new(1);
    let x = rng.uniform([2, 5], 0.0, 1.0, &device);
    let y = Tensor::<1, Int>::from_ints([2, 0], &device);
    let (_, grad) = input_gradient(&f, x.clone(), y.clone());
    let grad = values(grad);
    let loss_sum = |x: Tensor<2>| -> f64 {
        f64::from(
            harden_adversarial::loss::cross_entropy(f(x), y.clone())
                .sum()
                .into_scalar::<f32>(),
        )
    };
    let h = 1e-2f32;
    for i in 0..10 {
        let mut e = vec![0.0f32; 10];
        e[i] = h;
        let e = Tensor::<2>::from_floats(burn::tensor::TensorData::new(e, [2, 5]), &device);
        let fd = (loss_sum(x.clone() + e.clone()) - loss_sum(x.clone() - e)) / (2.0 * f64::from(h));
        assert!(
            (fd - f64::from(grad[i])).abs() < 2e-3,
            "coordinate {i}: analytic {} vs finite difference {fd}",
            grad[i]
        );
    }
    assert_eq!(l1.num_params() + l2.num_params(), 24 + 15);
}

#[test]
fn a_model_with_zero_gradients_is_reported() {
    let Trained {
        model,
        x,
        y,
        test_set,
        ..
    } = trained(5);
    // Rounding the input has a zero gradient almost everywhere: a masked model.
    let masked = |x: Tensor<4>| model.forward(x.mul_scalar(16.0).round().div_scalar(16.0));
    let out = PgdConfig::new(linf(EPS), 5, 0.02).check().unwrap().perturb(
        &masked,
        x,
        y,
        &mut AttackRng::new(0),
    );
    assert_eq!(out.gradients.samples, test_set.len());
    assert_eq!(out.gradients.zero, test_set.len(), "{:?}", out.gradients);
}

#[test]
fn invalid_hyperparameters_never_run() {
    let t = linf(0.1);
    assert!(
        PgdConfig::new(t.clone(), 0, 0.01)
            .check()
            .unwrap_err()
            .to_string()
            .contains("steps")
    );
    assert!(PgdConfig::new(t.clone(), 10, 0.0).check().is_err());
    assert!(PgdConfig::new(t.clone(), 10, f64::NAN).check().is_err());
    assert!(
        PgdConfig::new(t.clone(), 10, 0.01)
            .with_restarts(0)
            .check()
            .is_err()
    );
    let trades = ObjectiveConfig::Trades {
        beta: -1.0,
        attack: PgdConfig::new(t, 10, 0.01),
    };
    assert!(trades.check().unwrap_err().to_string().contains("beta"));
}

#[test]
fn attacks_run_on_every_compiled_backend() {
    let flex = Device::flex();
    let (train_set, test_set) = digits();
    let model = train(&Objective::Clean, &train_set, 10, &flex);
    let mut ran = Vec::new();
    for name in ["flex", "ndarray", "wgpu", "cuda"] {
        let Some(device) = harden_model::device::test_device(name) else {
            continue;
        };
        let model = model.clone().to_device(&device);
        let f = |x: Tensor<4>| model.forward(x);
        let (x, y) = batch(&test_set, &device);
        let clean = accuracy(&f, x.clone(), y.clone());
        let attack = PgdConfig::new(linf(EPS), 10, 0.02).check().unwrap();
        let out = attack.perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(0));
        let dist = values(attack.threat().distance(out.adversarial.clone(), x.clone()));
        assert!(
            dist.iter().all(|d| *d <= EPS as f32 + 1e-6),
            "{name}: left the ball"
        );
        let robust = accuracy(&f, out.adversarial, y);
        eprintln!("{name}: clean {clean:.3}, PGD-10 {robust:.3}");
        assert!(
            clean > 0.9 && robust < clean - 0.3,
            "{name}: clean {clean}, robust {robust}"
        );
        ran.push(name);
    }
    eprintln!("attacks ran on: {}", ran.join(", "));
}
