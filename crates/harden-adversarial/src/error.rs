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
