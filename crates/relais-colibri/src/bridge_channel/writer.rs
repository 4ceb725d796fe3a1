//! Writing one JSON object with its keys in a chosen order.
//!
//! JVB writes `colibriClass` first and then the fields in declaration order; a
//! `serde_json::Map` would sort them (or not, depending on a crate feature), so messages are
//! written field by field. Nothing here can fail, so `to_json` returns a plain `String`.

use serde_json::Value;

/// Builds one JSON object, field by field.
pub(crate) struct ObjectWriter {
    out: String,
    first: bool,
}

impl ObjectWriter {
    /// An empty object.
    pub(crate) fn new() -> Self {
        Self {
            out: String::from("{"),
            first: true,
        }
    }

    /// A message object, starting with its `colibriClass`.
    pub(crate) fn message(class: &str) -> Self {
        let mut writer = Self::new();
        writer.string("colibriClass", class);
        writer
    }

    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_json_string(&mut self.out, name);
        self.out.push(':');
    }

    /// A string field.
    pub(crate) fn string(&mut self, name: &str, value: &str) {
        self.key(name);
        write_json_string(&mut self.out, value);
    }

    /// A string field written only when present.
    pub(crate) fn optional_string(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.string(name, value);
        }
    }

    /// A string field written as `null` when absent (JVB writes nulls by default).
    pub(crate) fn nullable_string(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(value) => self.string(name, value),
            None => self.raw(name, "null"),
        }
    }

    /// An array-of-strings field.
    pub(crate) fn strings(&mut self, name: &str, values: &[String]) {
        self.key(name);
        self.out.push('[');
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            write_json_string(&mut self.out, value);
        }
        self.out.push(']');
    }

    /// A signed integer field.
    pub(crate) fn integer(&mut self, name: &str, value: i64) {
        self.key(name);
        self.out.push_str(&value.to_string());
    }

    /// An unsigned integer field.
    pub(crate) fn unsigned(&mut self, name: &str, value: u64) {
        self.key(name);
        self.out.push_str(&value.to_string());
    }

    /// A float field (`null` if not finite, which JSON cannot carry).
    pub(crate) fn float(&mut self, name: &str, value: f64) {
        self.key(name);
        self.out.push_str(&Value::from(value).to_string());
    }

    /// A boolean field.
    pub(crate) fn boolean(&mut self, name: &str, value: bool) {
        self.raw(name, if value { "true" } else { "false" });
    }

    /// A field holding any JSON value.
    pub(crate) fn value(&mut self, name: &str, value: &Value) {
        self.key(name);
        self.out.push_str(&value.to_string());
    }

    /// A field whose value is already JSON text.
    pub(crate) fn raw(&mut self, name: &str, json: &str) {
        self.key(name);
        self.out.push_str(json);
    }

    /// The finished object.
    pub(crate) fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Appends `text` as a JSON string literal (RFC 8259 escaping).
pub(crate) fn write_json_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            control if u32::from(control) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_to_valid_json() {
        let text = "a\"b\\c\n\u{01}\u{1f}é😀";
        let mut out = String::new();
        write_json_string(&mut out, text);
        assert_eq!(
            serde_json::from_str::<String>(&out).expect("valid JSON"),
            text
        );
    }

    #[test]
    fn fields_keep_their_order() {
        let mut writer = ObjectWriter::message("X");
        writer.integer("b", -1);
        writer.boolean("a", true);
        assert_eq!(writer.finish(), r#"{"colibriClass":"X","b":-1,"a":true}"#);
    }
}
