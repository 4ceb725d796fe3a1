//! Why a bridge channel message was refused.

use thiserror::Error;

/// Why [`parse`](super::parse) (or [`VideoConstraints::parse`](super::VideoConstraints::parse))
/// refused a text. Every variant says what is wrong and, for fields, which one, so the session
/// can log it; [`UnknownClass`](Self::UnknownClass) is the one a session ignores and counts
/// rather than treats as a client error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BridgeChannelError {
    /// The text is larger than [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES).
    #[error("bridge channel message is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// The text is not JSON (syntax error, trailing characters, nesting deeper than the
    /// JSON reader's limit of 128 levels).
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// An object (at any depth) has the same key twice. JVB refuses these too, since a
    /// reader that keeps the last one would let `colibriClass`, `to` or `from` be smuggled.
    #[error("duplicate key `{0}`")]
    DuplicateKey(String),
    /// The JSON value is not an object.
    #[error("a bridge channel message must be a JSON object")]
    NotAnObject,
    /// The object has no `colibriClass`.
    #[error("message has no `colibriClass`")]
    MissingClass,
    /// The `colibriClass` is not one relais knows.
    #[error("unknown colibriClass `{0}`")]
    UnknownClass(String),
    /// A field the class requires is absent.
    #[error("{class}: missing field `{field}`")]
    MissingField {
        /// The message class (or type) being read.
        class: &'static str,
        /// The missing field, as a path from the message (`constraints.ep1.maxHeight`).
        field: String,
    },
    /// A field has the wrong type or a value out of range.
    #[error("{class}: field `{field}` must be {expected}")]
    InvalidField {
        /// The message class (or type) being read.
        class: &'static str,
        /// The offending field, as a path from the message (`mappedSources[1].ssrc`).
        field: String,
        /// What the field must be.
        expected: &'static str,
    },
}
