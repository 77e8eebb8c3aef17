//! The optimizer a configuration asks for.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};

use crate::{OptimizerKind, TrainConfig};

/// Adam or SGD with the configuration's momentum and weight decay.
///
/// Adam uses PyTorch's epsilon (1e-8; burn defaults to 1e-5), so runs compare with PyTorch's.
pub fn build(config: &TrainConfig) -> ModuleOptimizer {
    let decay =
        (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32));
    match config.optimizer {
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum(
                (config.momentum > 0.0)
                    .then(|| MomentumConfig::new().with_momentum(config.momentum)),
            )
            .with_weight_decay(decay)
            .init(),
    }
}
