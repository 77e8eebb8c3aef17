//! burn-train's renderer for harden: an indicatif progress bar per split on a terminal
//! (samples/s and ETA), nothing otherwise. Per-epoch lines come from the
//! [`EpochRecorder`](crate::recorder::EpochRecorder)'s callback, so logs stay plain when the
//! output is not a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Progress bars on stderr when it is a terminal and `enabled`; silent otherwise.
pub struct ProgressRenderer {
    enabled: bool,
    bar: Option<ProgressBar>,
    epoch: usize,
    epochs: usize,
}

impl ProgressRenderer {
    /// Bars only if `show` and stderr is a terminal.
    pub fn new(show: bool) -> Self {
        Self {
            enabled: show && std::io::stderr().is_terminal(),
            bar: None,
            epoch: 0,
            epochs: 0,
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl MetricsRendererTraining for ProgressRenderer {
    fn update_train(&mut self, _state: MetricState) {}

    fn update_valid(&mut self, _state: MetricState) {}

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        self.finish();
        Ok(())
    }
}

impl MetricsRendererEvaluation for ProgressRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}

    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        self.finish();
        Ok(())
    }
}

impl TrainingProgressLogger for ProgressRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.epochs = total_epochs;
        // Counted up as each training split starts.
        self.epoch = starting_epoch.saturating_sub(1);
    }

    fn update_epoch(&mut self, _epoch: usize) {}

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.finish();
        if split == "train" {
            self.epoch += 1;
        }
        if !self.enabled {
            return;
        }
        let bar =
            ProgressBar::with_draw_target(Some(total_items as u64), ProgressDrawTarget::stderr());
        let template = format!(
            "epoch {}/{} {split:<5} [{{bar:30}}] {{pos}}/{{len}} {{rate}} ETA {{eta}}",
            self.epoch, self.epochs
        );
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("valid template")
                .with_key(
                    "rate",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} samples/s", state.per_sec());
                    },
                )
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        self.bar = Some(bar);
    }

    fn update_split(&mut self, items_processed: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(items_processed as u64);
        }
    }

    fn end_split(&mut self) {
        self.finish();
    }

    fn end(&mut self) {
        self.finish();
    }

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for ProgressRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, name: &str, total_items: usize) {
        self.start_split(name, total_items);
    }

    fn update_test_progress(&mut self, items_processed: usize) {
        self.update_split(items_processed);
    }

    fn end_test(&mut self) {
        self.finish();
    }

    fn end_global_progress(&mut self) {
        self.finish();
    }

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for ProgressRenderer {
    fn manual_close(&mut self) {
        self.finish();
    }

    fn register_metric(&mut self, _definition: MetricDefinition) {}
}
