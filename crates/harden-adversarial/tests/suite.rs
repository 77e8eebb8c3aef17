//! The evaluation ensemble: worst case over attacks, per-attack counts, sanity flags.

#![cfg(feature = "flex")]

mod common;

use burn::tensor::{Device, Int, Tensor};
use common::{Trained, digits, train, trained};
use harden_adversarial::eval::accuracy;
use harden_adversarial::suite::{Transfer, evaluate, evaluate_with, robustness_curve};
use harden_adversarial::{
    ApgdConfig, ApgdLoss, Attack, AttackOutput, AttackRng, Differentiable, GradientCheck, Norm,
    Objective, Suite, ThreatModel,
};
use harden_data::{ArrayDataset, Batches, RankBatches};

/// The whole of `data` in batches of `size`, by harden-data's layout rule.
fn batches(data: &ArrayDataset, device: &Device, size: usize) -> RankBatches<4> {
    Batches::first(data, data.len(), size, device)
        .unwrap()
        .into_images()
        .unwrap()
}

/// The clean MLP of `epochs` epochs, the test split in batches of `size`, and its length.
fn trained_batches(epochs: usize, size: usize) -> (harden_model::Mlp, RankBatches<4>, usize) {
    let Trained {
        model,
        test_set,
        device,
        ..
    } = trained(epochs);
    (model, batches(&test_set, &device, size), test_set.len())
}

fn flag<'a>(
    report: &'a harden_adversarial::EvalReport,
    name: &str,
) -> &'a harden_adversarial::suite::SanityFlag {
    report.flags.iter().find(|f| f.name.contains(name)).unwrap()
}

#[test]
fn standard_suite_is_the_worst_case_and_flags_nothing_on_an_honest_model() {
    let (model, data, n) = trained_batches(15, 128);
    let f = |x: Tensor<4>| model.forward(x);
    let threat = ThreatModel::new(Norm::Linf, 0.08).unwrap();
    let quick = evaluate(&f, None, &data, Suite::Quick, &threat, 0).unwrap();
    let standard = evaluate(&f, None, &data, Suite::Standard, &threat, 0).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&standard).unwrap());
    assert_eq!(standard.samples, n);
    assert!(
        standard.robust_accuracy <= quick.robust_accuracy,
        "standard weaker than quick"
    );
    let names: Vec<&str> = standard.attacks.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["apgd-ce", "apgd-t", "square"]);
    // Each attack only sees what the earlier ones left; robust = clean - all broken.
    let broken: usize = standard.attacks.iter().map(|a| a.broken).sum();
    let clean_correct = (standard.clean_accuracy * n as f64).round() as usize;
    let robust = (standard.robust_accuracy * n as f64).round() as usize;
    assert_eq!(clean_correct - broken, robust);
    assert_eq!(standard.attacks[0].attempted, clean_correct);
    assert_eq!(
        standard.attacks[1].attempted,
        clean_correct - standard.attacks[0].broken
    );
    assert!(!flag(&standard, "zero or non-finite").raised);
    assert!(
        !flag(&standard, "unbounded").raised,
        "{:?}",
        flag(&standard, "unbounded")
    );
}

#[test]
fn a_gradient_masked_model_raises_the_flags() {
    let (model, data, _) = trained_batches(15, 512);
    let masked = |x: Tensor<4>| model.forward(x.mul_scalar(8.0).round().div_scalar(8.0));
    let threat = ThreatModel::new(Norm::Linf, 0.2).unwrap();
    let report = evaluate(&masked, None, &data, Suite::Standard, &threat, 0).unwrap();
    let zero = flag(&report, "zero or non-finite");
    let black_box = flag(&report, "black-box");
    eprintln!("{zero:?}\n{black_box:?}\nrobust {}", report.robust_accuracy);
    assert!(zero.raised && black_box.raised);
    assert!(
        report.robust_accuracy < 0.1,
        "Square should break the masked model"
    );
}

#[test]
fn robustness_curve_decreases_with_eps() {
    let (model, data, _) = trained_batches(10, 512);
    let f = |x: Tensor<4>| model.forward(x);
    let threat = ThreatModel::new(Norm::Linf, 0.0).unwrap();
    let (curve, flag) =
        robustness_curve(&f, &data, Suite::Quick, &threat, &[0.0, 0.05, 0.1, 0.2], 0).unwrap();
    eprintln!("{curve:?} {flag:?}");
    assert!(!flag.raised);
    assert!(curve[0].robust_accuracy > 0.9 && curve[3].robust_accuracy < 0.1);
}

#[test]
fn transfer_attacks_from_a_surrogate_break_the_target() {
    let device = Device::flex();
    let (train_set, test_set) = digits();
    let target = train(&Objective::Clean, &train_set, 15, &device);
    let surrogate = train(&Objective::Clean, &train_set, 4, &device);
    let f = |x: Tensor<4>| target.forward(x);
    let g = |x: Tensor<4>| surrogate.forward(x);
    let data = batches(&test_set, &device, 512);
    let (x, y) = data[0].clone();
    let threat = ThreatModel::new(Norm::Linf, 0.2).unwrap();
    let apgd = ApgdConfig::new(threat.clone(), ApgdLoss::CrossEntropy)
        .with_steps(20)
        .check()
        .unwrap();
    let out = Transfer::new(apgd, &g).perturb(&f, x.clone(), y.clone(), &mut AttackRng::new(0));
    let clean = accuracy(&f, x, y.clone());
    let after = accuracy(&f, out.adversarial, y);
    eprintln!("transfer from a 4-epoch surrogate, eps 0.2: target {clean:.3} -> {after:.3}");
    assert!(after < clean - 0.3);
    let report = evaluate(
        &f,
        Some(&g as &dyn Differentiable<4>),
        &data,
        Suite::Quick,
        &threat,
        0,
    )
    .unwrap();
    let names: Vec<&str> = report.attacks.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["pgd-20x1", "transfer-apgd-ce"]);
    assert_eq!(
        report.attacks[1].attempted,
        report.attacks[0].attempted - report.attacks[0].broken
    );
}

/// A user's own attack: one signed-gradient step of a fixed size, written here against the
/// public interface only.
struct OneStep {
    threat: ThreatModel,
}

impl Attack<4> for OneStep {
    fn name(&self) -> String {
        "one-step".to_string()
    }

    fn perturb(
        &self,
        model: &dyn Differentiable<4>,
        input: Tensor<4>,
        labels: Tensor<1, Int>,
        _rng: &mut AttackRng,
    ) -> AttackOutput<4> {
        let (_, grad) = harden_adversarial::input_gradient(model, input.clone(), labels.clone());
        let eps = self.threat.eps() as f32;
        let adversarial = (input + grad.sign().mul_scalar(eps)).clamp(0.0, 1.0);
        let logits = model.logits(adversarial.clone());
        AttackOutput {
            success: harden_adversarial::loss::correct(logits.clone(), labels.clone()).bool_not(),
            loss: harden_adversarial::loss::cross_entropy(logits, labels),
            adversarial,
            gradients: GradientCheck::default(),
        }
    }
}

#[test]
fn a_users_own_attack_runs_in_the_ensemble_next_to_the_built_in_ones() {
    let (model, data, n) = trained_batches(15, 256);
    let f = |x: Tensor<4>| model.forward(x);
    let threat = ThreatModel::new(Norm::Linf, 0.1).unwrap();
    let mine = OneStep {
        threat: threat.clone(),
    };
    let apgd = ApgdConfig::new(threat.clone(), ApgdLoss::CrossEntropy)
        .with_steps(20)
        .check()
        .unwrap();
    let report = evaluate_with(&f, &data, "mine", &[&mine, &apgd], &threat, 0).unwrap();
    eprintln!(
        "own one-step attack then APGD-CE-20: clean {:.3}, robust {:.3}, broken {} then {}",
        report.clean_accuracy,
        report.robust_accuracy,
        report.attacks[0].broken,
        report.attacks[1].broken
    );
    let names: Vec<&str> = report.attacks.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["one-step", "apgd-ce"]);
    assert!(
        report.attacks[0].broken > 0,
        "the user's attack broke nothing"
    );
    // APGD runs only on what the user's attack left, and the worst case is counted once.
    assert_eq!(
        report.attacks[1].attempted,
        report.attacks[0].attempted - report.attacks[0].broken
    );
    assert!(report.robust_accuracy < report.clean_accuracy - 0.2);
    let clean = (report.clean_accuracy * n as f64).round() as usize;
    let robust = (report.robust_accuracy * n as f64).round() as usize;
    assert_eq!(
        clean - report.attacks[0].broken - report.attacks[1].broken,
        robust
    );
}
