//! The request (`conference-modify`) and answer (`conference-modified`), the parts relais
//! parses only to refuse (`relays`, `connects`), and the request-wide rules.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::endpoint::Endpoint;
use super::error::ColibriError;
use super::media::Media;
use super::source::MediaSource;
use super::transport::Transport;

/// Longest accepted meeting-id, in bytes.
pub const MAX_MEETING_ID_LEN: usize = 256;

/// A `conference-modify` request: create, update or expire a conference and its endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConferenceModify {
    /// The conference key (a UUID from Jicofo). In a PATCH body it may be left out: the URL
    /// carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_id: Option<String>,
    /// The conference name (the MUC JID). Never echoed in errors or logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Creates the conference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
    /// Ends the conference and all its endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<bool>,
    /// Whether rtcstats are collected for the conference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtcstats_enabled: Option<bool>,
    /// Legacy callstats flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callstats_enabled: Option<bool>,
    /// Endpoints to create, update or expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<Endpoint>>,
    /// Relays to other bridges (cascading); refused until relais cascades.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relays: Option<Vec<Relay>>,
    /// Media exports to transcribers/recorders; refused (relais exports no media).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connects: Option<Vec<Connect>>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ConferenceModify {
    /// Whether the request creates the conference.
    pub fn creates_conference(&self) -> bool {
        self.create == Some(true)
    }

    /// Whether the request ends the conference.
    pub fn expires_conference(&self) -> bool {
        self.expire == Some(true)
    }

    /// The endpoints of the request (none when absent).
    pub fn endpoints(&self) -> &[Endpoint] {
        self.endpoints.as_deref().unwrap_or_default()
    }

    /// Checks the rules that need no conference state, in this order:
    ///
    /// 1. `meeting-id` is present and 1–[`MAX_MEETING_ID_LEN`] bytes of printable ASCII
    ///    without `/`, `?`, `#`, `%` → else BAD_REQUEST;
    /// 2. `connects` is absent or empty → else FEATURE_NOT_IMPLEMENTED (relais exports no
    ///    media, by design);
    /// 3. `relays` is absent or empty → else FEATURE_NOT_IMPLEMENTED (no cascading yet);
    /// 4. endpoint ids are unique within the request → else BAD_REQUEST;
    /// 5. every endpoint follows [`Endpoint::validate`] (create needs `transport` and the
    ///    `source-names` capability, …) → else BAD_REQUEST.
    ///
    /// The backend decides what needs state: CONFERENCE_NOT_FOUND (no `create`, unknown
    /// meeting-id), CONFERENCE_ALREADY_EXISTS (`create`, known meeting-id),
    /// UNKNOWN_ENDPOINT (update of an endpoint the conference lacks), CONFLICT (endpoint
    /// `create` with an existing id), GRACEFUL_SHUTDOWN.
    pub fn validate(&self) -> Result<(), ColibriError> {
        match self.meeting_id.as_deref() {
            None => return Err(ColibriError::bad_request("`meeting-id` is missing")),
            Some(id) if !is_valid_meeting_id(id) => {
                return Err(ColibriError::bad_request(format!(
                    "`meeting-id` must be 1-{MAX_MEETING_ID_LEN} printable ASCII characters \
                     without '/', '?', '#' or '%'"
                )))
            }
            Some(_) => {}
        }
        if self.connects.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(ColibriError::feature_not_implemented(
                "`connects` is not supported: relais exports no media",
            ));
        }
        if self.relays.as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(ColibriError::feature_not_implemented(
                "`relays` is not supported: relais does not cascade bridges",
            ));
        }
        let mut seen = HashSet::new();
        for (index, endpoint) in self.endpoints().iter().enumerate() {
            let label = format!("endpoints[{index}]");
            endpoint.validate(&label)?;
            if !seen.insert(endpoint.id.as_str()) {
                return Err(ColibriError::bad_request(format!(
                    "{label}: the same endpoint id appears twice in the request"
                )));
            }
        }
        Ok(())
    }
}

/// Whether `id` is acceptable as a meeting-id (see [`ConferenceModify::validate`]).
pub fn is_valid_meeting_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MEETING_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'?' | b'#' | b'%'))
}

/// A `conference-modified` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConferenceModified {
    /// One entry per endpoint of the request; created endpoints carry the bridge's transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<Endpoint>>,
    /// One entry per relay of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relays: Option<Vec<Relay>>,
    /// The bridge's feedback sources (see [`MediaSource::bridge_feedback_sources`]), with
    /// every answer to a request that creates the conference or an endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<MediaSource>>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A relay to another bridge (`relays[]`), parsed so that it can be refused by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Relay {
    /// The relay id (the other bridge's relay id).
    pub id: String,
    /// Creates the relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
    /// Removes the relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<bool>,
    /// The mesh the relay belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_id: Option<String>,
    /// Media of the relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medias: Option<Vec<Media>>,
    /// The relay's transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Sources of the relay itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<MediaSource>>,
    /// The endpoints behind the other bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<Endpoint>>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A media export to a transcriber, recorder or translator (`connects[]`), parsed so that it
/// can be refused by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Connect {
    /// The WebSocket URL media goes to.
    pub url: String,
    /// The protocol, e.g. `mediajson`.
    pub protocol: String,
    /// `transcriber`, `recorder`, `translator`, ….
    #[serde(rename = "type")]
    pub connect_type: String,
    /// Export audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<bool>,
    /// Export video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<bool>,
    /// HTTP headers of the WebSocket handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Keep-alive pings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<Ping>,
    /// Source names to export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exports: Option<Vec<String>>,
    /// Source names requested back (e.g. translations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Vec<String>>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Keep-alive pings of a [`Connect`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Ping {
    /// Interval in milliseconds.
    pub interval: u64,
    /// Timeout in milliseconds.
    pub timeout: u64,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}
