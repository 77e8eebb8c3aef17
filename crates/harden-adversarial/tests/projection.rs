//! Projection onto the threat model, as properties over random inputs: every output lies in
//! both the ball and the box, a point already inside is unchanged, and no feasible point is
//! nearer to the projected input.

#![cfg(feature = "flex")]

use burn::tensor::{Device, Tensor};
use harden_adversarial::{AttackRng, Bounds, Norm, ThreatModel};

const TOL: f32 = 1e-5;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn threats() -> Vec<ThreatModel> {
    let mut all = Vec::new();
    for norm in [Norm::Linf, Norm::L2] {
        for eps in [0.0, 0.05, 0.3, 2.0] {
            let t = ThreatModel::new(norm, eps).unwrap();
            all.push(t.clone());
            all.push(t.clone().with_bounds(Bounds::Unbounded).unwrap());
            let lo: Vec<f32> = (0..12).map(|i| 0.05 * (i % 3) as f32).collect();
            let hi: Vec<f32> = lo.iter().map(|l| l + 0.5).collect();
            all.push(t.with_bounds(Bounds::PerFeature { lo, hi }).unwrap());
        }
    }
    all
}

/// Clean inputs inside the threat model's box.
fn clean(threat: &ThreatModel, rng: &mut AttackRng, device: &Device) -> Tensor<3> {
    let x = rng.uniform([8, 3, 4], 0.0, 1.0, device);
    match threat.bounds() {
        Bounds::PerFeature { lo, .. } => {
            let lo = Tensor::<3>::from_floats(
                burn::tensor::TensorData::new(lo.clone(), [1, 3, 4]),
                device,
            );
            // lo + 0.5 * u stays inside [lo, lo + 0.5].
            x.mul_scalar(0.5) + lo.repeat_dim(0, 8)
        }
        _ => x,
    }
}

fn in_box(threat: &ThreatModel, y: &[f32]) -> bool {
    match threat.bounds() {
        Bounds::Unbounded => true,
        Bounds::Box { lo, hi } => y.iter().all(|v| *v >= lo - TOL && *v <= hi + TOL),
        Bounds::PerFeature { lo, hi } => y
            .iter()
            .enumerate()
            .all(|(i, v)| *v >= lo[i % 12] - TOL && *v <= hi[i % 12] + TOL),
    }
}

#[test]
fn projections_land_in_ball_and_box_and_fix_inside_points() {
    let device = Device::flex();
    let mut rng = AttackRng::new(3);
    for threat in threats() {
        for round in 0..5 {
            let x = clean(&threat, &mut rng, &device);
            let scale = [0.01, 0.3, 1.0, 3.0, 10.0][round];
            let z = x.clone() + rng.normal([8, 3, 4], &device).mul_scalar(scale);
            let p = threat.project(z.clone(), x.clone(), None);
            let dist = values(threat.distance(p.clone(), x.clone()));
            assert!(
                dist.iter().all(|d| *d <= threat.eps() as f32 + TOL),
                "{threat:?}: {dist:?}"
            );
            assert!(in_box(&threat, &values(p.clone())), "{threat:?}");

            // Already inside: unchanged.
            let again = threat.project(p.clone(), x.clone(), None);
            let (a, b) = (values(again), values(p.clone()));
            assert!(
                a.iter().zip(&b).all(|(u, v)| (u - v).abs() <= TOL),
                "{threat:?}"
            );

            // Nearest: no random feasible point is closer to z than p.
            let (zv, pv) = (values(z.clone()), values(p.clone()));
            let q = threat.random_point(x.clone(), &mut rng, None);
            let qv = values(q);
            for s in 0..8 {
                let d = |u: &[f32]| -> f32 {
                    (0..12)
                        .map(|i| (u[s * 12 + i] - zv[s * 12 + i]).powi(2))
                        .sum()
                };
                assert!(d(&pv) <= d(&qv) + 1e-4, "{threat:?}: sample {s}");
            }
        }
    }
}

#[test]
fn random_points_are_feasible() {
    let device = Device::flex();
    let mut rng = AttackRng::new(5);
    for threat in threats() {
        let x = clean(&threat, &mut rng, &device);
        let q = threat.random_point(x.clone(), &mut rng, None);
        let dist = values(threat.distance(q.clone(), x));
        assert!(
            dist.iter().all(|d| *d <= threat.eps() as f32 + TOL),
            "{threat:?}"
        );
        assert!(in_box(&threat, &values(q)), "{threat:?}");
    }
}

#[test]
fn per_token_balls_respect_the_padding_mask() {
    let device = Device::flex();
    let mut rng = AttackRng::new(9);
    let threat = ThreatModel::new(Norm::L2, 0.5)
        .unwrap()
        .with_bounds(Bounds::Unbounded)
        .unwrap()
        .per_token();
    // 2 sentences of 3 tokens with 4-dim embeddings; the last token of each is padding.
    let x = rng.normal([2, 3, 4], &device);
    let mask = Tensor::<3>::from_floats([[[1.0], [1.0], [0.0]], [[1.0], [1.0], [0.0]]], &device);
    let z = x.clone() + rng.normal([2, 3, 4], &device).mul_scalar(5.0);
    let p = threat.project(z, x.clone(), Some(mask));
    let delta = values(p - x);
    for s in 0..2 {
        for t in 0..3 {
            let norm: f32 = (0..4)
                .map(|e| delta[s * 12 + t * 4 + e].powi(2))
                .sum::<f32>()
                .sqrt();
            if t == 2 {
                assert_eq!(norm, 0.0, "padding token moved");
            } else {
                assert!(
                    (norm - 0.5).abs() < 1e-4,
                    "token ({s}, {t}) at distance {norm}"
                );
            }
        }
    }
}

#[test]
fn invalid_threat_models_are_errors() {
    assert!(ThreatModel::new(Norm::Linf, -0.1).is_err());
    assert!(ThreatModel::new(Norm::L2, f64::NAN).is_err());
    assert!(ThreatModel::new(Norm::L2, f64::INFINITY).is_err());
    let t = ThreatModel::new(Norm::Linf, 0.1).unwrap();
    assert!(
        t.clone()
            .with_bounds(Bounds::Box { lo: 1.0, hi: 0.0 })
            .is_err()
    );
    assert!(
        t.with_bounds(Bounds::PerFeature {
            lo: vec![0.0],
            hi: vec![]
        })
        .is_err()
    );
    assert_eq!("l2".parse::<Norm>().unwrap(), Norm::L2);
    assert!(
        "l3".parse::<Norm>()
            .unwrap_err()
            .to_string()
            .contains("linf or l2")
    );
}
