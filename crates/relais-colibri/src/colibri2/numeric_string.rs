//! Serde helpers for the fields Jitsi writes as JSON strings holding numbers (payload-type
//! `id`/`clockrate`/`channels`, candidate `port`/`priority`/…).
//!
//! They are kept as strings, and written back as strings. On input a non-negative JSON
//! integer is accepted too and stored as its decimal string: JVB reads these fields as
//! untyped attributes (any JSON primitive, converted with `toString`), so a client that sends
//! `"clockrate": 48000` works with JVB and must work with relais. Anything else (negative or
//! fractional numbers, booleans, objects) is refused.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;

use super::error::ColibriError;

/// Why a numeric string field could not be read as a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumericFieldError {
    /// The field is absent.
    #[error("`{field}` is missing")]
    Missing {
        /// The JSON field name.
        field: &'static str,
    },
    /// The field is not a decimal number in the allowed range.
    #[error("`{field}` is not a number in range")]
    Invalid {
        /// The JSON field name.
        field: &'static str,
    },
}

impl From<NumericFieldError> for ColibriError {
    fn from(error: NumericFieldError) -> Self {
        ColibriError::bad_request(error.to_string())
    }
}

/// Parses a present numeric string field (decimal digits only).
pub(crate) fn parse_required<T: FromStr>(
    value: &str,
    field: &'static str,
) -> Result<T, NumericFieldError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumericFieldError::Invalid { field });
    }
    value
        .parse()
        .map_err(|_| NumericFieldError::Invalid { field })
}

/// Parses an optional numeric string field; absent is [`NumericFieldError::Missing`].
pub(crate) fn parse_present<T: FromStr>(
    value: Option<&str>,
    field: &'static str,
) -> Result<T, NumericFieldError> {
    parse_required(value.ok_or(NumericFieldError::Missing { field })?, field)
}

/// Parses an optional numeric string field; absent is `Ok(None)`.
pub(crate) fn parse_optional<T: FromStr>(
    value: Option<&str>,
    field: &'static str,
) -> Result<Option<T>, NumericFieldError> {
    value.map(|v| parse_required(v, field)).transpose()
}

/// A string, or a non-negative integer read as its decimal string.
struct StringOrInteger(String);

impl<'de> Deserialize<'de> for StringOrInteger {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(StringOrIntegerVisitor)
            .map(StringOrInteger)
    }
}

struct StringOrIntegerVisitor;

impl Visitor<'_> for StringOrIntegerVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a non-negative integer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        if v < 0 {
            return Err(E::invalid_value(Unexpected::Signed(v), &self));
        }
        Ok(v.to_string())
    }
}

/// `deserialize_with` for a required numeric string field.
pub(crate) fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    StringOrInteger::deserialize(deserializer).map(|s| s.0)
}

/// `deserialize_with` for an optional numeric string field (use with `#[serde(default)]`).
pub(crate) fn optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Option::<StringOrInteger>::deserialize(deserializer).map(|o| o.map(|s| s.0))
}
