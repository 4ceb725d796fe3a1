//! An endpoint's `transport`: the Colibri2 wrapper (ICE role, restart) around the Jingle
//! ICE-UDP transport (credentials, DTLS fingerprints, candidates, colibri-ws URLs), and SCTP.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::numeric_string::{self, parse_optional, parse_required, NumericFieldError};

/// The `xmlns` JVB puts on the ICE-UDP transport of its answers.
pub const ICE_UDP_XMLNS: &str = "urn:xmpp:jingle:transports:ice-udp:1";

/// The outer Colibri2 `transport` of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Transport {
    /// Whether the bridge takes the ICE controlling role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice_controlling: Option<bool>,
    /// Asks for new ICE credentials (make-before-break restart); the answer carries them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice_restart: Option<bool>,
    /// Asks for a port of its own instead of the shared one (relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_unique_port: Option<bool>,
    /// The ICE-UDP transport: the client's in requests, the bridge's in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<IceUdpTransport>,
    /// An SCTP data channel over the DTLS transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sctp: Option<Sctp>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The Jingle ICE-UDP transport (`transport.transport`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IceUdpTransport {
    /// [`ICE_UDP_XMLNS`] in JVB's answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmlns: Option<String>,
    /// ICE username fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ufrag: Option<String>,
    /// ICE password (also the colibri-ws credential of the bridge's answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pwd: Option<String>,
    /// RTP and RTCP on one port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtcp_mux: Option<bool>,
    /// DTLS certificate fingerprints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprints: Option<Vec<Fingerprint>>,
    /// ICE candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<Candidate>>,
    /// Bridge-channel WebSocket URLs (`wss://…/colibri-ws/<server>/<conference>/<endpoint>?pwd=…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_sockets: Option<Vec<String>>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A DTLS certificate fingerprint (`fingerprints[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Fingerprint {
    /// Colon-separated hex bytes.
    pub fingerprint: String,
    /// DTLS role: `actpass`, `active` or `passive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// Hash function, e.g. `sha-256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// RFC 9335 header-extension encryption offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cryptex: Option<bool>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// An ICE candidate (`candidates[]`). Numbers are JSON strings on the wire (a non-negative
/// integer is accepted on input); the accessors parse them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Candidate {
    /// Foundation.
    #[serde(deserialize_with = "numeric_string::required")]
    pub foundation: String,
    /// Component (1 = RTP).
    #[serde(deserialize_with = "numeric_string::required")]
    pub component: String,
    /// `udp` or `tcp`.
    pub protocol: String,
    /// Priority.
    #[serde(deserialize_with = "numeric_string::required")]
    pub priority: String,
    /// Address.
    pub ip: String,
    /// Port.
    #[serde(deserialize_with = "numeric_string::required")]
    pub port: String,
    /// `host`, `srflx`, `prflx` or `relay`.
    #[serde(rename = "type")]
    pub candidate_type: String,
    /// Generation.
    #[serde(
        default,
        deserialize_with = "numeric_string::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub generation: Option<String>,
    /// Network index.
    #[serde(
        default,
        deserialize_with = "numeric_string::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub network: Option<String>,
    /// Candidate id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Related address (srflx, relay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_addr: Option<String>,
    /// Related port (srflx, relay).
    #[serde(
        default,
        deserialize_with = "numeric_string::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub rel_port: Option<String>,
    /// Fields relais does not model (e.g. `tcptype`), kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Candidate {
    /// The component number.
    pub fn component_number(&self) -> Result<u16, NumericFieldError> {
        parse_required(&self.component, "component")
    }

    /// The priority.
    pub fn priority_value(&self) -> Result<u32, NumericFieldError> {
        parse_required(&self.priority, "priority")
    }

    /// The port.
    pub fn port_number(&self) -> Result<u16, NumericFieldError> {
        parse_required(&self.port, "port")
    }

    /// The generation, if present.
    pub fn generation_number(&self) -> Result<Option<u32>, NumericFieldError> {
        parse_optional(self.generation.as_deref(), "generation")
    }

    /// The related port, if present.
    pub fn rel_port_number(&self) -> Result<Option<u16>, NumericFieldError> {
        parse_optional(self.rel_port.as_deref(), "rel-port")
    }
}

/// SCTP over the DTLS transport (`transport.sctp`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Sctp {
    /// SCTP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `server` or `client`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}
