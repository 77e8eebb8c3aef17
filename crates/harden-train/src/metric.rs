//! What the train and validation steps report to burn-train's metrics.
//!
//! burn-train's `AccuracyMetric` reads two or more logits; harden's binary models have one, so
//! the outputs here present a single logit `z` as the pair `(0, z)`. Robust accuracy needs a
//! metric of its own name, [`RobustAccuracyMetric`].

use burn::tensor::{Int, Tensor, TensorReadError};
use burn::train::ItemLazy;
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    AccuracyInput, Adaptor, LossInput, Metric, MetricAttributes, MetricMetadata, MetricName,
    Numeric, NumericAttributes, NumericEntry, SerializedEntry,
};

/// Name of the validation robust-accuracy metric, as the event store and `metrics.jsonl` know it.
pub const ROBUST_ACCURACY: &str = "Robust Accuracy";

/// Logits `[N, K]` as at least two class scores: `(0, z)` for a single logit `z`.
pub fn class_scores(logits: Tensor<2>) -> Tensor<2> {
    if logits.dims()[1] == 1 {
        Tensor::cat(vec![logits.zeros_like(), logits], 1)
    } else {
        logits
    }
}

/// burn-train's loss and accuracy inputs of an output with `loss`, `scores` and `targets`.
macro_rules! loss_and_accuracy {
    ($output:ty) => {
        impl Adaptor<LossInput> for $output {
            fn adapt(&self) -> LossInput {
                LossInput::new(self.loss.clone())
            }
        }

        impl Adaptor<AccuracyInput> for $output {
            fn adapt(&self) -> AccuracyInput {
                AccuracyInput::new(self.scores.clone(), self.targets.clone())
            }
        }
    };
}

/// What a training step reports: the objective's loss and the logits it trained on.
pub struct StepOutput {
    /// Mean loss `[1]`.
    pub loss: Tensor<1>,
    /// Class scores `[N, K >= 2]` of the inputs trained on (adversarial for PGD and FGSM-RS).
    pub scores: Tensor<2>,
    /// Labels `[N]`.
    pub targets: Tensor<1, Int>,
}

impl ItemLazy for StepOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.loss.device().flush()?;
        Ok(Self {
            loss: self.loss.without_autodiff(),
            scores: self.scores.without_autodiff(),
            targets: self.targets.without_autodiff(),
        })
    }
}

loss_and_accuracy!(StepOutput);

/// What a validation step reports: clean loss and scores, and the scores under PGD.
pub struct ValidOutput {
    /// Clean mean loss `[1]`.
    pub loss: Tensor<1>,
    /// Clean class scores `[N, K >= 2]`.
    pub scores: Tensor<2>,
    /// Class scores `[M, K >= 2]` of the adversarial inputs: every sample's under PGD, or on
    /// text the first `valid-attack-texts` texts' under the character attack (`M` may be 0).
    pub robust_scores: Tensor<2>,
    /// Labels `[M]` of the adversarial inputs.
    pub robust_targets: Tensor<1, Int>,
    /// Labels `[N]`.
    pub targets: Tensor<1, Int>,
}

impl ItemLazy for ValidOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.loss.device().flush()?;
        Ok(self)
    }
}

loss_and_accuracy!(ValidOutput);

/// Input of [`RobustAccuracyMetric`]: adversarial class scores and labels.
pub struct RobustAccuracyInput {
    scores: Tensor<2>,
    targets: Tensor<1, Int>,
}

impl Adaptor<RobustAccuracyInput> for ValidOutput {
    fn adapt(&self) -> RobustAccuracyInput {
        RobustAccuracyInput {
            scores: self.robust_scores.clone(),
            targets: self.robust_targets.clone(),
        }
    }
}

/// Accuracy (in %) on the validation step's adversarial inputs.
#[derive(Clone, Default)]
pub struct RobustAccuracyMetric {
    state: NumericMetricState,
}

impl RobustAccuracyMetric {
    /// A new metric.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for RobustAccuracyMetric {
    type Input = RobustAccuracyInput;

    fn name(&self) -> MetricName {
        MetricName::new(ROBUST_ACCURACY.to_string())
    }

    fn update(
        &mut self,
        input: &RobustAccuracyInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let [n, _] = input.scores.dims();
        if n == 0 {
            // A batch with nothing attacked counts for nothing.
            self.state.update(0.0, 0);
            return Ok(self
                .state
                .compute_update(FormatOptions::new(self.name()).unit("%").precision(2)));
        }
        let correct = input
            .scores
            .clone()
            .argmax(1)
            .reshape([n])
            .equal(input.targets.clone())
            .int()
            .sum()
            .try_into_scalar::<f64>()?;
        self.state.update(100.0 * correct / n as f64, n);
        Ok(self
            .state
            .compute_update(FormatOptions::new(self.name()).unit("%").precision(2)))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self
            .state
            .compute_final(FormatOptions::new(self.name()).unit("%").precision(2)))
    }

    fn clear(&mut self) {
        self.state.reset()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("%".to_string()),
            higher_is_better: true,
        }
        .into()
    }
}

impl Numeric for RobustAccuracyMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }

    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}
