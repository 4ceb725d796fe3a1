//! A Colibri2 endpoint (one participant's connection to the bridge) and the rules a request
//! for one must follow.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ColibriError;
use super::media::Media;
use super::source::MediaSource;
use super::transport::Transport;

/// Capability every endpoint must announce: sources are identified by name (mandatory since
/// Jitsi dropped the SSRC-only signalling).
pub const CAPABILITY_SOURCE_NAMES: &str = "source-names";
/// Capability: the client accepts rewritten SSRCs (a fixed set of SSRCs mapped to the
/// forwarded sources, announced by VideoSourcesMap / AudioSourcesMap).
pub const CAPABILITY_SSRC_REWRITING: &str = "ssrc-rewriting";
/// Capability: the endpoint may be reached on private addresses.
pub const CAPABILITY_PRIVATE_ADDRESS_CONNECTIVITY: &str = "private-address-connectivity";

/// Longest accepted endpoint id, in bytes.
pub const MAX_ENDPOINT_ID_LEN: usize = 128;

/// An endpoint (`endpoints[]`) in a request or an answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Endpoint {
    /// The endpoint id (the participant's MUC resource).
    pub id: String,
    /// Creates the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
    /// Removes the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<bool>,
    /// The id statistics use for this participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_id: Option<String>,
    /// `moderator`, `participant` or `visitor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muc_role: Option<String>,
    /// What it may send and receive, per media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medias: Option<Vec<Media>>,
    /// The transport: ICE role and, once known, the client's ICE-UDP transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// The sources it sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<MediaSource>>,
    /// Capabilities, e.g. [`CAPABILITY_SOURCE_NAMES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    /// The last-n the endpoint starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_last_n: Option<InitialLastN>,
    /// Mutes the endpoint's audio and/or video at the bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_mute: Option<ForceMute>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Endpoint {
    /// An endpoint with only its id (the start of an answer entry).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// Whether the request creates this endpoint.
    pub fn creates(&self) -> bool {
        self.create == Some(true)
    }

    /// Whether the request removes this endpoint.
    pub fn expires(&self) -> bool {
        self.expire == Some(true)
    }

    /// Whether the endpoint announces `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().flatten().any(|c| c == capability)
    }

    /// Whether the endpoint joins as a visitor (receives only).
    pub fn is_visitor(&self) -> bool {
        self.muc_role.as_deref() == Some("visitor")
    }

    /// Checks the rules one endpoint entry of a request must follow on its own (`label`
    /// names it in messages, e.g. `endpoints[0]`):
    ///
    /// - the id is 1–[`MAX_ENDPOINT_ID_LEN`] bytes of printable ASCII without `/`, `?`, `#`,
    ///   `%` (it goes into the colibri-ws URL path);
    /// - creating it (and not expiring it) needs a `transport` and the
    ///   [`CAPABILITY_SOURCE_NAMES`] capability;
    /// - a visitor sends nothing, so it announces no sources.
    ///
    /// All are [`super::Reason::BadRequest`]. Whether the endpoint exists (for `create`, and
    /// for updates without it) depends on the conference: the backend decides.
    pub fn validate(&self, label: &str) -> Result<(), ColibriError> {
        if !is_valid_endpoint_id(&self.id) {
            return Err(ColibriError::bad_request(format!(
                "{label}: `id` must be 1-{MAX_ENDPOINT_ID_LEN} printable ASCII characters \
                 without '/', '?', '#' or '%'"
            )));
        }
        if self.creates() && !self.expires() {
            if self.transport.is_none() {
                return Err(ColibriError::bad_request(format!(
                    "{label}: creating an endpoint needs a `transport`"
                )));
            }
            if !self.has_capability(CAPABILITY_SOURCE_NAMES) {
                return Err(ColibriError::bad_request(format!(
                    "{label}: creating an endpoint needs the `{CAPABILITY_SOURCE_NAMES}` capability"
                )));
            }
        }
        if self.is_visitor() && self.sources.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(ColibriError::bad_request(format!(
                "{label}: a visitor endpoint cannot announce sources"
            )));
        }
        Ok(())
    }
}

/// Whether `id` is acceptable as an endpoint id (see [`Endpoint::validate`]).
pub fn is_valid_endpoint_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ENDPOINT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'?' | b'#' | b'%'))
}

/// `initial-last-n`: how many video sources the endpoint receives at first (−1: no limit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InitialLastN {
    /// The last-n value.
    pub value: i32,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `force-mute`: media the bridge drops from this endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ForceMute {
    /// Drop its audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<bool>,
    /// Drop its video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<bool>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}
