//! Training objectives: TRADES with beta 0 is clean cross-entropy, single-logit variants work,
//! and adversarial training buys robustness that clean training does not have.

#![cfg(feature = "flex")]

mod common;

use burn::tensor::{Device, Tensor};
use common::{batch, digits, linf, train, values};
use harden_adversarial::eval::run_ensemble;
use harden_adversarial::{AttackRng, Objective, ObjectiveConfig, PgdConfig, Supervision};
use harden_model::MlpConfig;

#[test]
fn trades_with_beta_zero_is_clean_cross_entropy() {
    let device = Device::flex().autodiff();
    let (_, test_set) = digits();
    device.seed(1);
    let model = MlpConfig::new(64, vec![32], 10).init(&device);
    let f = |x: Tensor<4>| model.forward(x);
    let (x, y) = batch(&test_set, &device);
    let mut rng = AttackRng::new(0);
    let clean = Objective::Clean
        .loss(&f, &f, x.clone(), y.clone(), None, &mut rng)
        .loss;
    let trades = ObjectiveConfig::Trades {
        beta: 0.0,
        attack: PgdConfig::new(linf(0.1), 3, 0.02),
    }
    .check()
    .unwrap()
    .loss(&f, &f, x.clone(), y.clone(), None, &mut rng);
    assert_eq!(values(clean.clone()), values(trades.loss));
    let with_kl = ObjectiveConfig::Trades {
        beta: 6.0,
        attack: PgdConfig::new(linf(0.1), 3, 0.02),
    }
    .check()
    .unwrap()
    .loss(&f, &f, x, y, None, &mut rng);
    assert!(
        values(with_kl.loss)[0] > values(clean)[0],
        "the KL term adds to the loss"
    );
}

#[test]
fn single_logit_models_train_and_break_under_pgd() {
    let device = Device::flex();
    let splits = harden_data::source::DatasetSource::BreastCancer
        .load(std::path::Path::new("."))
        .unwrap();
    let ad = device.clone().autodiff();
    ad.seed(3);
    let mut model = MlpConfig::new(30, vec![128], 1).init(&ad);
    let (x, y) = {
        let b = harden_data::ArrayBatcher::<2>::for_dataset(&splits.train).unwrap();
        let all: Vec<usize> = (0..splits.train.len()).collect();
        let b = b.gather(&splits.train, &all, &ad);
        (b.inputs, b.labels)
    };
    use burn::module::Module;
    use burn::optim::{AdamConfig, GradientsParams};
    let mut optim = AdamConfig::new().init();
    let mut rng = AttackRng::new(0);
    let mut losses = Vec::new();
    for _ in 0..100 {
        let out = Objective::Clean.loss(
            &|x| model.forward(x),
            &|x| model.forward(x),
            x.clone(),
            y.clone(),
            None,
            &mut rng,
        );
        losses.push(values(out.loss.clone())[0]);
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    assert!(
        losses[99] < losses[0] * 0.5,
        "BCE did not fall: {} -> {}",
        losses[0],
        losses[99]
    );
    let model = model.valid();
    let f = |x: Tensor<2>| model.forward(x);
    let test = harden_data::ArrayBatcher::<2>::for_dataset(&splits.test)
        .unwrap()
        .gather(
            &splits.test,
            &(0..splits.test.len()).collect::<Vec<_>>(),
            &device,
        );
    let attack = PgdConfig::new(linf(0.1), 20, 0.01).check().unwrap();
    let report = run_ensemble(&f, &[(test.inputs, test.labels)], &[&attack], &mut rng);
    eprintln!(
        "breast-cancer single-logit MLP: clean {:.3}, PGD-20 eps 0.1 {:.3}",
        report.clean_accuracy(),
        report.robust_accuracy()
    );
    assert!(report.clean_accuracy() > 0.9);
    assert!(report.robust_accuracy() < report.clean_accuracy() - 0.1);
}

#[test]
fn adversarial_training_raises_robust_accuracy() {
    let device = Device::flex();
    let (train_set, test_set) = digits();
    let eps = 0.2;
    let pgd_at = ObjectiveConfig::Pgd {
        attack: PgdConfig::new(linf(eps), 7, 0.05),
    }
    .check()
    .unwrap();
    let trades = ObjectiveConfig::Trades {
        beta: 6.0,
        attack: PgdConfig::new(linf(eps), 7, 0.05),
    }
    .check()
    .unwrap();
    let fgsm_rs = ObjectiveConfig::FgsmRs {
        attack: PgdConfig::fgsm_rs(linf(eps)),
    }
    .check()
    .unwrap();
    let eval = PgdConfig::new(linf(eps), 20, 0.02)
        .with_restarts(2)
        .check()
        .unwrap();
    let (x, y) = batch(&test_set, &device);
    let mut results = Vec::new();
    for objective in [Objective::Clean, pgd_at, fgsm_rs, trades] {
        let model = train(&objective, &train_set, 15, &device);
        let f = |x: Tensor<4>| model.forward(x);
        let r = run_ensemble(
            &f,
            &[(x.clone(), y.clone())],
            &[&eval],
            &mut AttackRng::new(5),
        );
        eprintln!(
            "digits MLP 64-128-10, 15 epochs, {}: clean {:.3}, PGD-20x2 L-inf eps {eps}: {:.3}",
            objective.name(),
            r.clean_accuracy(),
            r.robust_accuracy()
        );
        results.push((r.clean_accuracy(), r.robust_accuracy()));
    }
    let (clean_model_robust, pgd_robust) = (results[0].1, results[1].1);
    assert!(
        pgd_robust > clean_model_robust + 0.25,
        "PGD-AT {pgd_robust} vs clean {clean_model_robust}"
    );
    assert!(
        results[2].1 > clean_model_robust + 0.15,
        "FGSM-RS {:?}",
        results[2]
    );
    assert!(
        results[3].1 > clean_model_robust + 0.25,
        "TRADES {:?}",
        results[3]
    );
    assert!(results.iter().all(|(clean, _)| *clean > 0.8), "{results:?}");
}

/// Logits `[N, K]` of another, untrained network: a second teacher.
fn other_teacher(x: &Tensor<4>, device: &Device) -> Tensor<2> {
    device.seed(99);
    MlpConfig::new(64, vec![16], 10)
        .init(device)
        .forward(x.clone())
}

#[test]
fn distillation_losses_follow_the_teacher() {
    let device = Device::flex();
    let (_, test_set) = digits();
    let (x, y) = batch(&test_set, &device);
    let ad = device.clone().autodiff();
    ad.seed(1);
    let student = MlpConfig::new(64, vec![32], 10).init(&ad);
    let f = |x: Tensor<4>| student.forward(x);
    let attack = PgdConfig::new(linf(0.1), 3, 0.05);
    let teacher_a = other_teacher(&x, &device);
    let teacher_b = teacher_a.clone().mul_scalar(-2.0);
    for config in [
        ObjectiveConfig::Ard {
            alpha: 0.9,
            temperature: 4.0,
            attack: attack.clone(),
        },
        ObjectiveConfig::Rslad {
            attack: attack.clone(),
        },
    ] {
        let objective = config.check().unwrap();
        let loss = |teacher: &Tensor<2>| {
            let supervision = Supervision {
                labels: y.clone(),
                teacher: Some(teacher.clone()),
            };
            let mut rng = AttackRng::new(3);
            let out = objective.loss(&f, &f, x.clone().autodiff(), supervision, None, &mut rng);
            let adv = out.adversarial.clone().unwrap();
            let gap = values((adv - x.clone()).abs().max());
            assert!(
                gap[0] <= 0.1 + 1e-6,
                "{}: outside the ball",
                objective.name()
            );
            values(out.loss)[0]
        };
        let (a, b) = (loss(&teacher_a), loss(&teacher_b));
        assert!(a.is_finite() && b.is_finite());
        assert!(
            (a - b).abs() > 1e-3,
            "{}: the teacher does not change the loss ({a} vs {b})",
            objective.name()
        );
        // The student's gradient flows through the loss.
        let supervision = Supervision {
            labels: y.clone(),
            teacher: Some(teacher_a.clone()),
        };
        let out = objective.loss(
            &f,
            &f,
            x.clone().autodiff(),
            supervision,
            None,
            &mut AttackRng::new(3),
        );
        let grads = out.loss.backward();
        let g = student.layers[0].weight.val().grad(&grads);
        assert!(
            g.is_some(),
            "{}: no gradient for the student",
            objective.name()
        );
    }
    // ARD with alpha 0 is clean cross-entropy: the teacher drops out.
    let ard0 = ObjectiveConfig::Ard {
        alpha: 0.0,
        temperature: 4.0,
        attack,
    }
    .check()
    .unwrap();
    let clean = Objective::Clean.loss(&f, &f, x.clone(), y.clone(), None, &mut AttackRng::new(0));
    let ard = ard0.loss(
        &f,
        &f,
        x.clone(),
        Supervision {
            labels: y,
            teacher: Some(teacher_a),
        },
        None,
        &mut AttackRng::new(0),
    );
    assert!((values(clean.loss)[0] - values(ard.loss)[0]).abs() < 1e-5);
}

#[test]
fn distillation_settings_are_checked() {
    let attack = PgdConfig::new(linf(0.1), 3, 0.05);
    for (alpha, temperature) in [(1.5, 4.0), (-0.1, 4.0), (0.5, 0.0), (0.5, f64::NAN)] {
        let err = ObjectiveConfig::Ard {
            alpha,
            temperature,
            attack: attack.clone(),
        }
        .check()
        .unwrap_err();
        assert!(
            err.name == "distill-alpha" || err.name == "temperature",
            "{err}"
        );
    }
}
