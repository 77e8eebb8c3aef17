//! Declarative macros for the attack configurations: the builder setters and the checked,
//! runnable attack each configuration becomes.

/// Builder setters, one row each: `with_x(x: T);` under its doc comment becomes
/// `pub fn with_x(mut self, x: T) -> Self`, setting the field `x`.
macro_rules! setters {
    ($($(#[$doc:meta])* $setter:ident($field:ident: $ty:ty);)*) => {$(
        $(#[$doc])*
        pub fn $setter(mut self, $field: $ty) -> Self {
            self.$field = $field;
            self
        }
    )*};
}

pub(crate) use setters;

/// Declares a checked, runnable attack `$checked` holding its configuration `$config`, with
/// serde's checked round trip: `TryFrom<$config>` through `$config::check`, and
/// `From<$checked>` back to the configuration; it serialises as its configuration and
/// deserialises through `check`, so an unchecked attack can never be read.
macro_rules! checked {
    ($(#[$doc:meta])* pub struct $checked:ident($config:ident);) => {
        $(#[$doc])*
        ///
        #[doc = concat!("Deserialising goes through [`", stringify!($config), "::check`], so an invalid attack cannot be read back.")]
        #[derive(Debug, Clone, PartialEq)]
        pub struct $checked {
            config: $config,
        }

        impl serde::Serialize for $checked {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.config.serialize(serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $checked {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let config = <$config as serde::Deserialize>::deserialize(deserializer)?;
                config.check().map_err(serde::de::Error::custom)
            }
        }

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

pub(crate) use checked;
