//! Parsing the kind flags (`--norm`, `--objective`, `--model`, ...) by the names their types
//! give themselves: the same table serves `--help` (`[possible values: ...]`), parsing and the
//! one-line error listing every valid name.

use std::marker::PhantomData;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Arg, Command, Error, ValueEnum};

/// The value parser of a kind flag of type `T`: `#[arg(value_parser = Kind::<T>::new())]`.
#[derive(Debug, Clone, Copy)]
pub struct Kind<T>(PhantomData<T>);

impl<T> Kind<T> {
    /// The parser.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T> Default for Kind<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ValueEnum + Clone + Send + Sync + 'static> TypedValueParser for Kind<T> {
    type Value = T;

    /// Parses one of `T`'s names or aliases (the same names configuration files use).
    fn parse_ref(
        &self,
        cmd: &Command,
        arg: Option<&Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, Error> {
        let text = value.to_string_lossy();
        T::from_str(&text, false).map_err(|_| {
            let flag = arg.map_or_else(|| "value".to_string(), |a| format!("'{a}'"));
            let message = format!(
                "invalid value '{text}' for {flag}: expected {}",
                names::<T>()
            );
            Error::raw(ErrorKind::InvalidValue, format!("{message}\n")).with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            T::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
}

/// `T`'s names as a sentence: `a, b or c`.
pub fn names<T: ValueEnum>() -> String {
    let names: Vec<String> = T::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|p| p.get_name().to_string())
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}
