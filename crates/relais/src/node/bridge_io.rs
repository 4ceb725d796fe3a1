//! What the bridge channel (colibri-ws) exchanges with the media task: the typed inputs a
//! client's messages become, and the session a connected channel gets.
//!
//! The WebSocket side ([`super::bridge`]) parses JSON and owns the socket; the media task
//! owns conferences and decides. Messages to clients travel as ready JSON text.

use relais_conference::allocation::{ReceiverConstraintsUpdate, VideoType};
use relais_conference::{AudioSubscription, EndpointId};
use tokio::sync::mpsc;

/// JSON texts queued to one client's bridge channel before drops (counted).
pub(crate) const BRIDGE_OUTGOING_QUEUE: usize = 256;

/// A client message, typed, for the endpoint's conference.
#[derive(Debug)]
pub(crate) enum BridgeInput {
    /// ReceiverVideoConstraints (a partial update), or the legacy LastNChangedEvent as an
    /// update with only `last_n`.
    ReceiverVideoConstraints(ReceiverConstraintsUpdate),
    /// SourceVideoTypeMessage for one of the endpoint's own sources.
    SourceVideoType {
        /// The source name.
        source: String,
        /// Its new type.
        video_type: VideoType,
    },
    /// ReceiverAudioSubscription.
    AudioSubscription(AudioSubscription),
    /// EndpointMessage (or EndpointStats): `to` is an endpoint name, `None` for everybody
    /// else; `message` is the JSON object to deliver, with `from` still to be set by the
    /// media task (which knows the sender's name).
    EndpointMessage {
        /// The receiving endpoint's name; `None`: every other endpoint.
        to: Option<String>,
        /// The message as received (a JSON object).
        message: serde_json::Map<String, serde_json::Value>,
    },
}

/// A connected bridge channel: the endpoint it belongs to and the messages for it.
#[derive(Debug)]
pub(crate) struct BridgeSession {
    /// The endpoint (for [`super::media::Command::BridgeInput`]).
    pub(crate) id: EndpointId,
    /// JSON texts to send to the client, in order.
    pub(crate) outgoing: mpsc::Receiver<String>,
}

/// Why a bridge channel was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BridgeRefusal {
    /// No such conference or endpoint, or the pwd does not match (not told apart, so the
    /// URL reveals nothing).
    #[error("unknown conference, endpoint or credentials")]
    Forbidden,
}

/// What the bridge channel counts (into the media task's statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BridgeCounter {
    /// A message parsed and handled.
    Received,
    /// Not JSON, or not an object with a class: answered with nothing.
    Malformed,
    /// A class relais does not know: ignored.
    UnknownClass,
    /// A known class with wrong field types, missing fields or duplicate keys: refused.
    Invalid,
    /// A known class a client may not send (bridge-to-client messages): ignored.
    NotFromClients,
}
