//! Reading Colibri2 JSON with errors a caller can act on: the path of the offending field
//! (`endpoints[0].medias[1].rtp-hdrexts[0].id`) and what was expected, but never the
//! offending value, which could be an address or the conference name.

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use super::conference::ConferenceModify;
use super::error::ColibriError;

/// Parses a `conference-modify` request body. Errors are BAD_REQUEST.
pub fn parse_conference_modify(body: &[u8]) -> Result<ConferenceModify, ColibriError> {
    from_json_slice(body)
}

/// Parses any Colibri2 model type from JSON. Errors are BAD_REQUEST: a syntax error gives
/// its line and column, a type error the field path and the expected type.
pub fn from_json_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, ColibriError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| describe(e.path(), e.inner()))?;
    // Trailing data after the value is a syntax error too.
    deserializer.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(error: &serde_json::Error) -> ColibriError {
    ColibriError::bad_request(format!(
        "malformed JSON at line {} column {}",
        error.line(),
        error.column()
    ))
}

fn describe(path: &serde_path_to_error::Path, error: &serde_json::Error) -> ColibriError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => malformed(error),
        Category::Data => {
            let message = redact_values(&message_without_position(error));
            let location = render_path(path);
            if location.is_empty() {
                ColibriError::bad_request(format!("request body: {message}"))
            } else {
                ColibriError::bad_request(format!("`{location}`: {message}"))
            }
        }
    }
}

/// serde_json's message without its " at line L column C" suffix (positions of type errors
/// point past the value, which says less than the path).
fn message_without_position(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
}

/// Drops quoted and back-quoted values from a serde message (`invalid type: string "…",
/// expected a boolean` → `invalid type: string, expected a boolean`). Field names in
/// "missing field `x`" / "duplicate field `x`" are kept: they come from the model, not the
/// input.
fn redact_values(message: &str) -> String {
    if message.starts_with("missing field `") || message.starts_with("duplicate field `") {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut escaped = false;
                for q in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if q == '\\' {
                        escaped = true;
                    } else if q == '"' {
                        break;
                    }
                }
                trim_trailing_space(&mut out);
            }
            '`' => {
                for q in chars.by_ref() {
                    if q == '`' {
                        break;
                    }
                }
                trim_trailing_space(&mut out);
            }
            _ => out.push(c),
        }
    }
    out
}

fn trim_trailing_space(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

/// The path as `a.b[0].c`. Map keys from the input (e.g. format parameter names) are shown
/// only when they are short tokens of `[A-Za-z0-9_-]`, so that no address or name can appear.
fn render_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                let safe = !key.is_empty()
                    && key.len() <= 64
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                out.push_str(if safe { key } else { "?" });
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn redacts_quoted_and_backquoted_values() {
        assert_eq!(
            redact_values(r#"invalid type: string "10.0.0.1:\"x\"", expected a boolean"#),
            "invalid type: string, expected a boolean"
        );
        assert_eq!(
            redact_values(
                "invalid value: integer `-3`, expected a string or a non-negative integer"
            ),
            "invalid value: integer, expected a string or a non-negative integer"
        );
        assert_eq!(redact_values("missing field `id`"), "missing field `id`");
    }
}
