//! Bridge channel messages (colibri-ws): the JSON messages a Jitsi client and the bridge
//! exchange over the WebSocket (or SCTP data channel), told apart by `colibriClass`.
//!
//! This module owns the wire format: [`parse`] turns one text frame into a typed
//! [`BridgeChannelMessage`] or says why not ([`BridgeChannelError`]), and
//! [`BridgeChannelMessage::to_json`] writes one as jitsi-videobridge (JVB) does. What a
//! message does (forwarding, merging constraints, counting unknown classes) is the session's
//! and the conference core's business.
//!
//! Reading rules, after JVB's `BridgeChannelMessage.parse`:
//! - at most [`MAX_MESSAGE_BYTES`]; nesting is bounded by the JSON reader (128 levels);
//! - a key twice in any object, at any depth, is refused (JVB enables Jackson's strict
//!   duplicate detection); a reader keeping the last duplicate would let `colibriClass`,
//!   `to` or `from` be overridden behind the session's back;
//! - an unknown `colibriClass` is [`BridgeChannelError::UnknownClass`], which a session
//!   ignores and counts; relay-only classes (`AddReceiver`, `RemoveReceiver`) are unknown
//!   until relais cascades;
//! - required fields missing, `null` or of the wrong type are refused, naming the field;
//!   optional fields that are `null` read as absent; fields a class does not define are
//!   ignored (forward compatibility; JVB refuses them on most classes), except on
//!   `EndpointMessage` and `EndpointStats`, which carry them through unchanged.
//!
//! Writing gives back what was read, up to these normalisations: `videoType` is written
//! upper-case; a `maxFrameRate` is written as a float (`30` → `30.0`); `null` optional
//! fields and ignored unknown fields are left out; `DominantSpeakerEndpointChangeEvent`
//! always carries `silence`; `ReceiverAudioSubscription` leaves out its defaults (`all:
//! false`, empty lists) and the `list` of `All` / `None`.

mod audio_subscription;
mod constraints;
mod error;
mod fields;
mod message;
mod sources;
mod strict_json;
mod writer;

use serde_json::Value;

pub use audio_subscription::ReceiverAudioSubscription;
pub use constraints::{ReceiverVideoConstraints, VideoConstraints};
pub use error::BridgeChannelError;
pub use message::{
    AudioSourcesMap, BridgeChannelMessage, ConnectionStats, DominantSpeakerEndpointChangeEvent,
    EndpointConnectivityStatusChangeEvent, EndpointMessage, EndpointStats, ForwardedSources,
    LastNChangedEvent, SenderSourceConstraints, ServerHello, SourceVideoTypeMessage,
    VideoSourcesMap, VideoTypeMessage, COLIBRI_CLASSES,
};
pub use sources::{AudioSourceMapping, UnknownVideoType, VideoSourceMapping, VideoType};

/// Largest message accepted, in bytes. Real messages are a few KiB at most (EndpointStats
/// being the largest); the cap bounds what one frame can make the bridge allocate.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The name of the field that tells message types apart.
pub const CLASS_FIELD: &str = "colibriClass";

/// Reads one bridge channel message (one WebSocket text frame).
pub fn parse(text: &str) -> Result<BridgeChannelMessage, BridgeChannelError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(BridgeChannelError::TooLarge {
            size: text.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let Value::Object(mut map) = strict_json::parse_strict(text)? else {
        return Err(BridgeChannelError::NotAnObject);
    };
    match map.remove(CLASS_FIELD) {
        None => Err(BridgeChannelError::MissingClass),
        Some(Value::String(class)) => BridgeChannelMessage::read(&class, map),
        Some(_) => Err(BridgeChannelError::InvalidField {
            class: "BridgeChannelMessage",
            field: CLASS_FIELD.to_owned(),
            expected: "a string",
        }),
    }
}
