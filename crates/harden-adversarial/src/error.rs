//! [`ParamError`] and the range checks every hyperparameter of harden goes through (attacks,
//! objectives, and the training configuration built on them).

/// A hyperparameter outside its valid range (of an attack, a threat model, an objective or a
/// training run).
///
/// Hyperparameters are checked once, when a configuration becomes a runnable attack or
/// objective, so an invalid one can never run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name}: expected {expected}, got {value}")]
pub struct ParamError {
    /// The hyperparameter, as the CLI flag spells it (`eps`, `steps`, ...).
    pub name: &'static str,
    /// The value given.
    pub value: String,
    /// What a valid value is.
    pub expected: &'static str,
}

/// `value` must be finite and `>= 0`.
///
/// # Errors
///
/// [`ParamError`] naming `name` otherwise.
pub fn check_finite_non_negative(name: &'static str, value: f64) -> Result<(), ParamError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ParamError {
            name,
            value: value.to_string(),
            expected: "a finite number >= 0",
        })
    }
}

/// `value` must be finite and `> 0`.
///
/// # Errors
///
/// [`ParamError`] naming `name` otherwise.
pub fn check_finite_positive(name: &'static str, value: f64) -> Result<(), ParamError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ParamError {
            name,
            value: value.to_string(),
            expected: "a finite number > 0",
        })
    }
}

/// `value` must be at least 1.
///
/// # Errors
///
/// [`ParamError`] naming `name` otherwise.
pub fn check_at_least_one(name: &'static str, value: usize) -> Result<(), ParamError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(ParamError {
            name,
            value: value.to_string(),
            expected: "an integer >= 1",
        })
    }
}

/// The range of a count hyperparameter: from 1 to `max`, with the reason for the bound in
/// the words of [`ParamError::expected`]. A count is bounded when a large value would run for
/// days or exhaust memory rather than fail: the bound says so before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The largest value accepted.
    pub max: usize,
    /// What a valid value is, and why.
    pub expected: &'static str,
}

/// Declares the [`Limit`] constants, one row each: `NAME = max, "why the bound";`, with the
/// doc comment above. The message reads "an integer from 1 to max (why the bound)".
macro_rules! limits {
    ($($(#[$doc:meta])* $name:ident = $max:literal, $why:literal;)*) => {$(
        $(#[$doc])*
        pub const $name: Limit = Limit {
            max: $max,
            expected: concat!("an integer from 1 to ", $max, " (", $why, ")"),
        };
    )*};
}

limits! {
    /// Attack iterations (`steps`, `eval-steps`, `valid-steps`).
    STEPS = 10000, "published protocols use at most a few thousand steps; more take hours per batch";
    /// Random restarts of an attack (`restarts`, `eval-restarts`).
    RESTARTS = 1000, "each restart repeats the whole attack";
    /// Queries of a black-box attack.
    QUERIES = 1000000, "AutoAttack's Square uses 5000";
    /// Training epochs.
    EPOCHS = 100000, "published schedules use at most a few hundred";
    /// Samples in one batch.
    BATCH = 65536, "a batch's activations and gradients are held in memory at once";
    /// Tokens of a text sequence.
    TOKENS = 8192, "attention memory grows with the square of the length";
    /// Edits of one text (words changed, tokens flipped) and candidates tried per word.
    EDITS = 10000, "each edit is searched over the whole text";
}

/// The settings every iterative attack shares: a valid threat model, and `steps` and
/// `restarts` within [`STEPS`] and [`RESTARTS`]. Returns the checked threat model.
///
/// # Errors
///
/// [`ParamError`] naming the first invalid setting.
pub fn check_search(
    threat: crate::ThreatModel,
    steps: usize,
    restarts: usize,
) -> Result<crate::ThreatModel, ParamError> {
    let threat = threat.checked()?;
    check_count("steps", steps, STEPS)?;
    check_count("restarts", restarts, RESTARTS)?;
    Ok(threat)
}

/// `value` must be in `1..=limit.max`.
///
/// # Errors
///
/// [`ParamError`] naming `name`, with the limit's reason, otherwise.
pub fn check_count(name: &'static str, value: usize, limit: Limit) -> Result<(), ParamError> {
    if (1..=limit.max).contains(&value) {
        Ok(())
    } else {
        Err(ParamError {
            name,
            value: value.to_string(),
            expected: limit.expected,
        })
    }
}
