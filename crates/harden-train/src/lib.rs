//! Adversarial training for harden on burn-train's `Learner`: objectives from
//! `harden-adversarial`, learning-rate and eps schedules, checkpoints, run directories and
//! reports.
//!
//! The trainer itself is built on top of the data, model and attack layers; this crate holds
//! its place in the workspace so the layering (`harden-cli` -> `harden-train` ->
//! `harden-adversarial` -> `harden-model` -> `harden-data`) is fixed from the start.
