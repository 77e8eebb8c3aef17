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

/// Attack iterations (`steps`, `eval-steps`, `valid-steps`).
pub const STEPS: Limit = Limit {
    max: 10_000,
    expected: "an integer from 1 to 10000 (published protocols use at most a few thousand steps; more take hours per batch)",
};
/// Random restarts of an attack (`restarts`, `eval-restarts`).
pub const RESTARTS: Limit = Limit {
    max: 1_000,
    expected: "an integer from 1 to 1000 (each restart repeats the whole attack)",
};
/// Queries of a black-box attack.
pub const QUERIES: Limit = Limit {
    max: 1_000_000,
    expected: "an integer from 1 to 1000000 (AutoAttack's Square uses 5000)",
};
/// Training epochs.
pub const EPOCHS: Limit = Limit {
    max: 100_000,
    expected: "an integer from 1 to 100000",
};
/// Samples in one batch.
pub const BATCH: Limit = Limit {
    max: 65_536,
    expected: "an integer from 1 to 65536 (a batch's activations and gradients are held in memory at once)",
};
/// Tokens of a text sequence.
pub const TOKENS: Limit = Limit {
    max: 8_192,
    expected: "an integer from 1 to 8192 (attention memory grows with the square of the length)",
};
/// Edits of one text (words changed, tokens flipped) and candidates tried per word.
pub const EDITS: Limit = Limit {
    max: 10_000,
    expected: "an integer from 1 to 10000 (each edit is searched over the whole text)",
};

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

/// Implements serde's checked round trip for a runnable attack `$checked` and its
/// configuration `$config`: `TryFrom<$config>` through `$config::check`, and `From<$checked>`
/// back to the configuration, so `#[serde(try_from = .., into = ..)]` can never read an
/// unchecked attack.
macro_rules! checked_serde {
    ($checked:ty, $config:ty) => {
        impl TryFrom<$config> for $checked {
            type Error = crate::ParamError;

            fn try_from(config: $config) -> Result<Self, crate::ParamError> {
                config.check()
            }
        }

        impl From<$checked> for $config {
            fn from(checked: $checked) -> Self {
                checked.config
            }
        }
    };
}

pub(crate) use checked_serde;
