//! The names of the kind enums, as configuration files, reports and the CLI spell them.

use serde::Serialize;

/// The name serde gives a unit variant (`rename_all = "kebab-case"` on the enum): the single
/// table of names that configuration files, reports and, through `clap::ValueEnum`'s same
/// kebab-case rule, the CLI share.
///
/// # Panics
///
/// Panics when `value` does not serialise to a string (it is not a unit variant).
pub fn name_of<T: Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => panic!("not a unit variant: {other:?}"),
    }
}
