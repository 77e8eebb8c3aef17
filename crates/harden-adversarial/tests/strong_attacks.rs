//! APGD and Square against a model trained on the embedded digits.

#![cfg(feature = "flex")]

mod common;

use burn::tensor::Tensor;
use common::{Trained, bools, linf, trained, values};
use harden_adversarial::eval::{accuracy, run_ensemble};
use harden_adversarial::{
    ApgdConfig, ApgdLoss, Attack, AttackOutput, AttackRng, Norm, PgdConfig, SquareConfig,
    ThreatModel,
};

fn assert_inside(name: &str, threat: &ThreatModel, out: &AttackOutput<4>, x: &Tensor<4>) {
    let adv = values(out.adversarial.clone());
    assert!(
        adv.iter().all(|v| (0.0..=1.0).contains(v)),
        "{name} left the [0, 1] box"
    );
    let dist = values(threat.distance(out.adversarial.clone(), x.clone()));
    let worst = dist.iter().cloned().fold(0.0f32, f32::max);
    assert!(
        worst <= threat.eps() as f32 + 1e-5,
        "{name} left the ball: {worst}"
    );
}

/// Share of samples that are classified correctly and were not broken.
fn robust(clean_correct: &[bool], out: &AttackOutput<4>) -> f64 {
    let broken = bools(out.success.clone());
    clean_correct
        .iter()
        .zip(&broken)
        .filter(|(c, b)| **c && !**b)
        .count() as f64
        / broken.len() as f64
}

#[test]
fn apgd_is_at_least_as_strong_as_pgd_at_equal_iterations() {
    let Trained { model, x, y, .. } = trained(15);
    let f = |x: Tensor<4>| model.forward(x);
    let eps = 0.08;
    let clean = run_ensemble(&f, &[(x.clone(), y.clone())], &[], &mut AttackRng::new(0));
    let steps = 10;
    let pgd = PgdConfig::new(linf(eps), steps, 0.01).check().unwrap();
    let pgd_out = pgd.perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(1));
    let mut rows = vec![(
        format!("PGD-{steps}"),
        robust(&clean.clean_correct, &pgd_out),
    )];
    for loss in [ApgdLoss::CrossEntropy, ApgdLoss::Dlr] {
        let apgd = ApgdConfig::new(linf(eps), loss)
            .with_steps(steps)
            .check()
            .unwrap();
        let out = apgd.perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(1));
        assert_inside(&format!("APGD {loss:?}"), &linf(eps), &out, &x);
        rows.push((
            format!("APGD-{loss:?}-{steps}"),
            robust(&clean.clean_correct, &out),
        ));
    }
    let apgd_t = ApgdConfig::new(linf(eps), ApgdLoss::Dlr)
        .with_steps(steps)
        .check()
        .unwrap();
    let out = apgd_t.perturb_top_targets(&f, x.clone(), y.clone(), 3, &mut AttackRng::new(1));
    assert_inside("APGD-T", &linf(eps), &out, &x);
    rows.push((
        format!("APGD-T-DLR-{steps}x3"),
        robust(&clean.clean_correct, &out),
    ));
    eprintln!(
        "digits MLP, L-inf eps {eps}: clean {:.3}, {rows:?}",
        clean.clean_accuracy()
    );
    let pgd_robust = rows[0].1;
    for (name, acc) in &rows[1..] {
        assert!(
            *acc <= pgd_robust,
            "{name} ({acc}) weaker than PGD-{steps} ({pgd_robust})"
        );
    }
    assert!(pgd_robust < clean.clean_accuracy() - 0.2);
}

#[test]
fn apgd_l2_and_targeted_stay_inside_and_reach_targets() {
    let Trained {
        model,
        x,
        y,
        test_set,
        ..
    } = trained(10);
    let f = |x: Tensor<4>| model.forward(x);
    let l2 = ThreatModel::new(Norm::L2, 1.0).unwrap();
    let out = ApgdConfig::new(l2.clone(), ApgdLoss::CrossEntropy)
        .with_steps(20)
        .check()
        .unwrap()
        .perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(0));
    assert_inside("APGD L2", &l2, &out, &x);
    assert!(accuracy(&f, out.adversarial, y.clone()) < 0.5);
    let targets = (y.clone() + 3).remainder_scalar(10);
    let out = ApgdConfig::new(linf(0.2), ApgdLoss::Dlr)
        .with_steps(30)
        .check()
        .unwrap()
        .perturb_targeted(&f, x.clone(), y, targets, &mut AttackRng::new(0));
    let hit = bools(out.success).iter().filter(|&&b| b).count() as f64 / test_set.len() as f64;
    assert!(hit > 0.5, "targeted APGD-DLR reached only {hit}");
}

#[test]
fn square_breaks_a_clean_model_within_a_modest_budget_and_stays_inside() {
    let Trained { model, x, y, .. } = trained(15);
    let f = |x: Tensor<4>| model.forward(x);
    let threat = linf(0.2);
    let square = SquareConfig::new(threat.clone(), 300).check().unwrap();
    let out = square.perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(0));
    assert_inside("Square", &threat, &out, &x);
    let clean = accuracy(&f, x.clone(), y.clone());
    let after = accuracy(&f, out.adversarial.clone(), y.clone());
    eprintln!("Square L-inf eps 0.2, 300 queries: clean {clean:.3} -> {after:.3}");
    assert!(after < clean - 0.4, "Square: {clean} -> {after}");
    let flags = bools(out.success);
    let margins = values(out.loss);
    assert!(
        flags.iter().zip(&margins).all(|(s, m)| *s == (*m < 0.0)),
        "success flags disagree with margins"
    );
}

#[test]
fn l2_square_breaks_a_clean_model_and_stays_in_the_l2_ball() {
    let Trained { model, x, y, .. } = trained(15);
    let f = |x: Tensor<4>| model.forward(x);
    let threat = ThreatModel::new(Norm::L2, 1.5).unwrap();
    let out = SquareConfig::new(threat.clone(), 300)
        .check()
        .unwrap()
        .perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(0));
    assert_inside("L2 Square", &threat, &out, &x);
    let clean = accuracy(&f, x.clone(), y.clone());
    let after = accuracy(&f, out.adversarial, y);
    eprintln!("Square L2 eps 1.5, 300 queries: clean {clean:.3} -> {after:.3}");
    assert!(after < clean - 0.3, "L2 Square: {clean} -> {after}");
}

#[test]
fn square_breaks_a_gradient_masked_model_that_pgd_cannot() {
    let Trained { model, x, y, .. } = trained(15);
    // Quantising the input to 8 levels: zero gradient almost everywhere.
    let masked = |x: Tensor<4>| model.forward(x.mul_scalar(8.0).round().div_scalar(8.0));
    let eps = 0.2;
    let pgd = PgdConfig::new(linf(eps), 10, 0.02)
        .with_random_start(false)
        .check()
        .unwrap();
    let report = run_ensemble(
        &masked,
        &[(x.clone(), y.clone())],
        &[&pgd],
        &mut AttackRng::new(0),
    );
    // Every sample the attack saw (the clean-correct ones) had a zero input gradient.
    let gradients = report.attacks[0].gradients;
    assert_eq!(
        (gradients.zero, gradients.samples),
        (
            report.clean_correct.iter().filter(|&&c| c).count(),
            report.clean_correct.iter().filter(|&&c| c).count()
        ),
        "zero-gradient flag: {gradients:?}"
    );
    let square = SquareConfig::new(linf(eps), 300).check().unwrap();
    let out = square.perturb(&masked, x.clone(), y.clone(), &mut AttackRng::new(0));
    let after = accuracy(&masked, out.adversarial, y);
    eprintln!(
        "masked model, eps {eps}: clean {:.3}, PGD-10 {:.3}, Square-300 {after:.3}",
        report.clean_accuracy(),
        report.robust_accuracy()
    );
    assert!(
        (report.robust_accuracy() - report.clean_accuracy()).abs() < 1e-9,
        "PGD moved a zero-gradient model"
    );
    assert!(
        after < report.clean_accuracy() - 0.4,
        "Square did not break the masked model: {after}"
    );
}

#[test]
fn square_and_apgd_hyperparameters_are_checked() {
    assert!(SquareConfig::new(linf(0.1), 0).check().is_err());
    assert!(
        SquareConfig {
            p_init: 1.5,
            ..SquareConfig::new(linf(0.1), 10)
        }
        .check()
        .is_err()
    );
    let l2 = ThreatModel::new(Norm::L2, 1.0).unwrap();
    assert!(SquareConfig::new(l2, 10).check().is_ok());
    assert!(
        ApgdConfig::new(linf(0.1), ApgdLoss::Dlr)
            .with_steps(0)
            .check()
            .is_err()
    );
    assert!(
        ApgdConfig::new(linf(0.1), ApgdLoss::Dlr)
            .with_restarts(0)
            .check()
            .is_err()
    );
}
