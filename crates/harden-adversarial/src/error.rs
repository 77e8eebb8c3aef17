/// An attack, threat model or objective hyperparameter outside its valid range.
///
/// Hyperparameters are checked once, when a configuration becomes a runnable attack or
/// objective, so an invalid one can never run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {name} = {value}: expected {expected}")]
pub struct ParamError {
    /// The hyperparameter, as the CLI flag spells it (`eps`, `steps`, ...).
    pub name: &'static str,
    /// The value given.
    pub value: String,
    /// What a valid value is.
    pub expected: &'static str,
}

pub(crate) fn check_finite_non_negative(name: &'static str, value: f64) -> Result<(), ParamError> {
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

pub(crate) fn check_finite_positive(name: &'static str, value: f64) -> Result<(), ParamError> {
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

pub(crate) fn check_at_least_one(name: &'static str, value: usize) -> Result<(), ParamError> {
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
