//! Reading settings from environment variables: one reader, shared by the engine's
//! [`Config`](crate::Config) and the sync's [`SyncConfig`](crate::sync::SyncConfig), so every
//! variable is parsed the same way and every bad value names its variable.

use std::ops::RangeInclusive;

use super::ConfigError;

/// Settings by variable name; empty values count as unset.
pub struct Env<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The trimmed value, `None` when unset or empty.
    pub fn get(&self, variable: &str) -> Option<String> {
        (self.lookup)(variable)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(
        &self,
        variable: &'static str,
        expected: &'static str,
    ) -> Result<String, ConfigError> {
        self.get(variable)
            .ok_or(ConfigError::Missing { variable, expected })
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`), any case.
    pub fn flag(&self, variable: &'static str, default: bool) -> Result<bool, ConfigError> {
        self.choice(
            variable,
            default,
            &[
                ("true", true),
                ("1", true),
                ("yes", true),
                ("false", false),
                ("0", false),
                ("no", false),
            ],
            "true or false",
        )
    }

    /// One of `choices` (matched without regard to case).
    pub fn choice<T: Copy>(
        &self,
        variable: &'static str,
        default: T,
        choices: &[(&str, T)],
        expected: &str,
    ) -> Result<T, ConfigError> {
        let Some(value) = self.get(variable) else {
            return Ok(default);
        };
        choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&value))
            .map(|(_, v)| *v)
            .ok_or_else(|| invalid(variable, &value, expected))
    }

    /// A size in bytes, or with a binary unit (`512KiB`, `16MiB`, `1GiB`).
    pub fn size(&self, variable: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.get(variable) {
            None => Ok(default),
            Some(v) => parse_size(&v).ok_or_else(|| {
                invalid(
                    variable,
                    &v,
                    "a size in bytes, or with a unit: 512KiB, 16MiB, 1GiB",
                )
            }),
        }
    }

    /// A whole number within `range`.
    pub fn number(
        &self,
        variable: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        match self.get(variable) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    invalid(
                        variable,
                        &v,
                        &format!("a whole number from {} to {}", range.start(), range.end()),
                    )
                }),
        }
    }
}

pub(crate) fn invalid(variable: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        variable,
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

/// Parses `16777216`, `16MiB`, `16 MiB`, `512KiB`, `1GiB` (binary units only, no ambiguity).
pub fn parse_size(value: &str) -> Option<u64> {
    use super::{GIB, KIB, MIB};
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let number: u64 = digits.parse().ok()?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{GIB, KIB, MIB};

    #[test]
    fn sizes_accept_binary_units() {
        assert_eq!(parse_size("16MiB"), Some(16 * MIB));
        assert_eq!(parse_size("16 MiB"), Some(16 * MIB));
        assert_eq!(parse_size("512KiB"), Some(512 * KIB));
        assert_eq!(parse_size("1GiB"), Some(GIB));
        assert_eq!(parse_size("42"), Some(42));
        assert_eq!(parse_size("16MB"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
    }

    #[test]
    fn values_are_trimmed_and_empty_is_unset() {
        let env = Env::new(|k: &str| match k {
            "A" => Some("  yes ".to_owned()),
            "B" => Some("   ".to_owned()),
            _ => None,
        });
        assert_eq!(env.flag("A", false), Ok(true));
        assert_eq!(env.flag("B", true), Ok(true));
        assert!(env.required("B", "x").is_err());
        assert!(env.number("A", 1, 0..=9).is_err());
    }
}
