//! The Colibri2 JSON model: the `conference-modify` request Jicofo sends to allocate
//! endpoints, the `conference-modified` answer, the error answer, and the rules relais
//! applies before asking the node.
//!
//! The JSON is jitsi-xmpp-extensions' `Colibri2JSONSerializer` format (what JVB's
//! `/colibri/v2/conferences` accepts). Every struct keeps the fields it does not model in a
//! flattened `other` map, so that a message read and written again is the same JSON (key
//! order aside); absent optional fields stay absent.
//!
//! Wire quirks kept as they are: payload-type `id`/`clockrate`/`channels` and candidate
//! numbers are JSON strings (typed accessors parse them; a non-negative JSON integer is
//! accepted on input, as JVB accepts any JSON primitive there, and is written back as a
//! string), header-extension `id` is a number, and an SSRC in
//! `sources` is a bare number or an object ([`SourceEntry`]).
//!
//! - [`conference`]: [`ConferenceModify`] (with [`ConferenceModify::validate`]),
//!   [`ConferenceModified`], [`Relay`], [`Connect`].
//! - [`endpoint`]: [`Endpoint`] and its rules, capabilities, `initial-last-n`, `force-mute`.
//! - [`media`]: [`Media`], [`PayloadType`], [`RtcpFb`], [`RtpHdrExt`].
//! - [`transport`]: [`Transport`], [`IceUdpTransport`], [`Fingerprint`], [`Candidate`],
//!   [`Sctp`].
//! - [`source`]: [`MediaSource`], [`SourceEntry`], [`SsrcGroup`], the bridge's feedback
//!   sources.
//! - [`error`]: [`Reason`], [`ColibriError`] and the JSON error body.
//! - [`json`]: parsing with errors that name the field.

pub mod conference;
pub mod endpoint;
pub mod error;
pub mod json;
pub mod media;
mod numeric_string;
pub mod source;
pub mod transport;

pub use conference::{
    is_valid_meeting_id, ConferenceModified, ConferenceModify, Connect, Ping, Relay,
    MAX_MEETING_ID_LEN,
};
pub use endpoint::{
    is_valid_endpoint_id, Endpoint, ForceMute, InitialLastN,
    CAPABILITY_PRIVATE_ADDRESS_CONNECTIVITY, CAPABILITY_SOURCE_NAMES, CAPABILITY_SSRC_REWRITING,
    MAX_ENDPOINT_ID_LEN,
};
pub use error::{ColibriError, ErrorDetail, ErrorResponse, Reason};
pub use json::{from_json_slice, parse_conference_modify};
pub use media::{Media, PayloadType, RtcpFb, RtpHdrExt};
pub use numeric_string::NumericFieldError;
pub use source::{
    MediaSource, SourceDescription, SourceEntry, SsrcGroup, BRIDGE_AUDIO_SOURCE,
    BRIDGE_VIDEO_SOURCE,
};
pub use transport::{Candidate, Fingerprint, IceUdpTransport, Sctp, Transport, ICE_UDP_XMLNS};
