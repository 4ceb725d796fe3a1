//! Typed reading of one JSON object's fields, with errors that name the class and the field.
//!
//! `serde_json::from_value` reports "invalid type: sequence, expected a string" without
//! saying which field; the session logs refusals, so each read here names its field path.

use serde_json::{Map, Value};

use super::BridgeChannelError;

/// How to read one field type, and how to describe it when the value does not fit.
pub(crate) struct Kind<T> {
    read: fn(Value) -> Option<T>,
    expected: &'static str,
}

/// A JSON string.
pub(crate) const STRING: Kind<String> = Kind {
    read: |value| match value {
        Value::String(text) => Some(text),
        _ => None,
    },
    expected: "a string",
};

/// A JSON array of strings.
pub(crate) const STRINGS: Kind<Vec<String>> = Kind {
    read: |value| match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => Some(text),
                _ => None,
            })
            .collect(),
        _ => None,
    },
    expected: "an array of strings",
};

/// A JSON boolean.
pub(crate) const BOOL: Kind<bool> = Kind {
    read: |value| value.as_bool(),
    expected: "a boolean",
};

/// An integer that fits JVB's `Int`.
pub(crate) const I32: Kind<i32> = Kind {
    read: |value| value.as_i64().and_then(|number| i32::try_from(number).ok()),
    expected: "an integer (32-bit)",
};

/// An integer that fits JVB's `Long`.
pub(crate) const I64: Kind<i64> = Kind {
    read: |value| value.as_i64(),
    expected: "an integer (64-bit)",
};

/// A non-negative integer.
pub(crate) const U64: Kind<u64> = Kind {
    read: |value| value.as_u64(),
    expected: "a non-negative integer",
};

/// An RTP SSRC.
pub(crate) const SSRC: Kind<u32> = Kind {
    read: |value| value.as_u64().and_then(|number| u32::try_from(number).ok()),
    expected: "an SSRC (integer 0..=4294967295)",
};

/// Any JSON number, as a float.
pub(crate) const F64: Kind<f64> = Kind {
    read: |value| value.as_f64(),
    expected: "a number",
};

/// The fields of one JSON object, consumed as they are read.
pub(crate) struct Fields {
    class: &'static str,
    /// Path of this object inside the message (`""` at the top, `"constraints.ep1."` below).
    prefix: String,
    map: Map<String, Value>,
}

impl Fields {
    /// The top-level fields of a message of `class`.
    pub(crate) fn new(class: &'static str, map: Map<String, Value>) -> Self {
        Self {
            class,
            prefix: String::new(),
            map,
        }
    }

    /// The full path of field `name` of this object.
    pub(crate) fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// An error saying field `name` must be `expected`.
    pub(crate) fn invalid(&self, name: &str, expected: &'static str) -> BridgeChannelError {
        BridgeChannelError::InvalidField {
            class: self.class,
            field: self.path(name),
            expected,
        }
    }

    /// Whether field `name` is present with a non-null value.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|value| !value.is_null())
    }

    /// Reads a field that must be present and not null.
    pub(crate) fn required<T>(
        &mut self,
        name: &str,
        kind: Kind<T>,
    ) -> Result<T, BridgeChannelError> {
        let value = self
            .map
            .remove(name)
            .ok_or_else(|| BridgeChannelError::MissingField {
                class: self.class,
                field: self.path(name),
            })?;
        (kind.read)(value).ok_or_else(|| self.invalid(name, kind.expected))
    }

    /// Reads a field that may be absent; `null` counts as absent (JVB's nullable fields).
    pub(crate) fn optional<T>(
        &mut self,
        name: &str,
        kind: Kind<T>,
    ) -> Result<Option<T>, BridgeChannelError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => (kind.read)(value)
                .map(Some)
                .ok_or_else(|| self.invalid(name, kind.expected)),
        }
    }

    /// Takes the raw value of a field that may be absent (`null` counts as absent).
    pub(crate) fn optional_value(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|value| !value.is_null())
    }

    /// Takes the raw value of a field that must be present and not null.
    pub(crate) fn required_value(&mut self, name: &str) -> Result<Value, BridgeChannelError> {
        match self.map.remove(name) {
            None => Err(BridgeChannelError::MissingField {
                class: self.class,
                field: self.path(name),
            }),
            Some(Value::Null) => Err(self.invalid(name, "present (not null)")),
            Some(value) => Ok(value),
        }
    }

    /// The fields of `value`, found at field `name` of this object, which must be an object.
    pub(crate) fn nested(&self, name: &str, value: Value) -> Result<Fields, BridgeChannelError> {
        match value {
            Value::Object(map) => Ok(Fields {
                class: self.class,
                prefix: format!("{}.", self.path(name)),
                map,
            }),
            _ => Err(self.invalid(name, "an object")),
        }
    }

    /// Takes all the fields not read so far, leaving this object empty (for objects used as
    /// maps, whose keys are names rather than fields).
    pub(crate) fn take_all(&mut self) -> Map<String, Value> {
        std::mem::take(&mut self.map)
    }

    /// The fields not read so far (the free fields of pass-through messages).
    pub(crate) fn into_rest(self) -> Map<String, Value> {
        self.map
    }
}
