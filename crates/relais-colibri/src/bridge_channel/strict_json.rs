//! A JSON reader that refuses duplicate object keys at any depth.
//!
//! `serde_json::Value` keeps the last of two equal keys, which would let a client hide a
//! second `colibriClass`, `to` or `from` behind the first. This reader builds the same
//! `Value` through its own visitor and fails on the first repeated key. Nesting stays
//! bounded by serde_json's recursion limit (128 levels), which applies to every
//! `deserialize_any` call this visitor makes.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::BridgeChannelError;

/// Parses `text` as one JSON value, refusing duplicate keys.
pub(crate) fn parse_strict(text: &str) -> Result<Value, BridgeChannelError> {
    // The visitor reports the repeated key here, so that it is not confused with a syntax
    // error (both surface as a `serde_json::Error`).
    let duplicate = RefCell::new(None);
    let mut reader = serde_json::Deserializer::from_str(text);
    let parsed = StrictValue {
        duplicate: &duplicate,
    }
    .deserialize(&mut reader)
    .and_then(|value| reader.end().map(|()| value));
    match parsed {
        Ok(value) => Ok(value),
        Err(error) => match duplicate.into_inner() {
            Some(key) => Err(BridgeChannelError::DuplicateKey(key)),
            None => Err(BridgeChannelError::Malformed(error.to_string())),
        },
    }
}

/// Seed and visitor building a [`Value`]; shares the duplicate-key report slot.
#[derive(Clone, Copy)]
struct StrictValue<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let error = A::Error::custom(format_args!("duplicate key `{key}`"));
                *self.duplicate.borrow_mut() = Some(key);
                return Err(error);
            }
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_duplicates_are_found() {
        assert_eq!(
            parse_strict(r#"{"a":[{"b":1,"b":2}]}"#),
            Err(BridgeChannelError::DuplicateKey("b".to_owned()))
        );
    }

    #[test]
    fn equal_keys_in_sibling_objects_are_fine() {
        assert!(parse_strict(r#"[{"a":1},{"a":2}]"#).is_ok());
    }

    #[test]
    fn trailing_characters_are_malformed() {
        assert!(matches!(
            parse_strict("{} x"),
            Err(BridgeChannelError::Malformed(_))
        ));
    }
}
