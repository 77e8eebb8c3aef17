//! Learning-rate and eps schedules, as functions of the iteration.
//!
//! burn's `LinearLrScheduler` cannot start at a rate of 0 (the one-cycle schedule does) and
//! its schedulers count calls rather than epochs; [`LrSchedule`] is one closed-form function of
//! the iteration for the three schedules harden offers, so a resumed run only needs the epoch
//! it resumes from to be exactly where the interrupted run was.

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};

use crate::{ScheduleKind, TrainConfig};

/// The learning rate of a run, updated every batch (burn-train calls
/// [`step`](LrScheduler::step) once before each optimizer step).
#[derive(Debug, Clone)]
pub struct LrSchedule {
    kind: ScheduleKind,
    lr: f64,
    epochs: f64,
    peak_epoch: f64,
    milestones: Vec<f64>,
    gamma: f64,
    iters_per_epoch: usize,
    /// Optimizer steps taken so far.
    iteration: usize,
}

impl LrSchedule {
    /// The schedule `config` describes, for `iters_per_epoch` batches per epoch, positioned
    /// after `done_epochs` complete epochs (0 for a new run).
    pub fn new(config: &TrainConfig, iters_per_epoch: usize, done_epochs: usize) -> Self {
        Self {
            kind: config.schedule,
            lr: config.lr,
            epochs: config.epochs as f64,
            peak_epoch: config.peak_epoch(),
            milestones: config.milestones(),
            gamma: config.gamma,
            iters_per_epoch: iters_per_epoch.max(1),
            iteration: done_epochs * iters_per_epoch.max(1),
        }
    }

    /// The rate of the `iteration`-th optimizer step (1-based), at fractional epoch
    /// `t = iteration / iters_per_epoch`: for one-cycle the linear interpolation of
    /// `(0, 0), (peak, lr), (epochs, 0)` as in Wong, Rice & Kolter's code.
    pub fn lr_at(&self, iteration: usize) -> f64 {
        let t = iteration as f64 / self.iters_per_epoch as f64;
        match self.kind {
            ScheduleKind::Constant => self.lr,
            ScheduleKind::OneCycle => {
                if t < self.peak_epoch {
                    self.lr * t / self.peak_epoch
                } else {
                    let rest = (self.epochs - self.peak_epoch).max(f64::MIN_POSITIVE);
                    (self.lr * (self.epochs - t) / rest).max(0.0)
                }
            }
            ScheduleKind::Piecewise => {
                // A milestone at epoch m applies from the first step after m epochs.
                let passed = self.milestones.iter().filter(|&&m| t > m).count();
                self.lr * self.gamma.powi(passed as i32)
            }
        }
    }
}

impl LrScheduler for LrSchedule {
    fn step(&mut self) -> f64 {
        self.iteration += 1;
        self.lr_at(self.iteration)
    }

    /// The position is restored from the resumed epoch by [`LrSchedule::new`], so the record
    /// is empty.
    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new()
    }

    fn load_record(&mut self, _record: LrSchedulerRecord) {}
}

/// The eps of the training attack at `iteration` (1-based): rising linearly from 0 to `eps`
/// over the first `warmup_epochs`, then constant.
pub fn eps_at(eps: f64, warmup_epochs: f64, iteration: usize, iters_per_epoch: usize) -> f64 {
    if warmup_epochs <= 0.0 {
        return eps;
    }
    let t = iteration as f64 / iters_per_epoch.max(1) as f64;
    eps * (t / warmup_epochs).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_is_the_fast_at_triangle() {
        let config = TrainConfig {
            epochs: 10,
            lr: 5e-3,
            ..Default::default()
        };
        let s = LrSchedule::new(&config, 600, 0);
        // Peak at epoch (2 * 10) / 5 = 4.
        assert!((s.lr_at(1) - 5e-3 / 2400.0).abs() < 1e-15);
        assert!((s.lr_at(2400) - 5e-3).abs() < 1e-15);
        assert!((s.lr_at(4200) - 2.5e-3).abs() < 1e-12);
        assert_eq!(s.lr_at(6000), 0.0);
        let mut stepped = s.clone();
        let rates: Vec<f64> = (0..6000).map(|_| stepped.step()).collect();
        assert_eq!(rates[2399], s.lr_at(2400));
        // Resuming after 3 epochs continues at the same rate.
        let mut resumed = LrSchedule::new(&config, 600, 3);
        assert_eq!(resumed.step(), rates[1800]);
    }

    #[test]
    fn piecewise_and_constant() {
        let config = TrainConfig {
            epochs: 4,
            lr: 0.1,
            schedule: ScheduleKind::Piecewise,
            milestones: Some(vec![2.0, 3.0]),
            ..Default::default()
        };
        let s = LrSchedule::new(&config, 10, 0);
        assert_eq!(s.lr_at(20), 0.1);
        assert!((s.lr_at(21) - 0.01).abs() < 1e-15);
        assert!((s.lr_at(31) - 0.001).abs() < 1e-15);
        let constant = LrSchedule::new(
            &TrainConfig {
                schedule: ScheduleKind::Constant,
                ..config
            },
            10,
            0,
        );
        assert_eq!(constant.lr_at(39), 0.1);
    }

    #[test]
    fn eps_ramps_over_the_warm_up() {
        assert_eq!(eps_at(0.3, 0.0, 1, 100), 0.3);
        assert!((eps_at(0.3, 3.0, 150, 100) - 0.15).abs() < 1e-12);
        assert_eq!(eps_at(0.3, 3.0, 301, 100), 0.3);
    }
}
