//! An endpoint's `medias`: payload types (with their RTCP feedback) and RTP header
//! extensions, per media type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::numeric_string::{self, parse_optional, parse_present, NumericFieldError};

/// One media type of an endpoint (`medias[]`): what it may send and receive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Media {
    /// `audio` or `video`.
    #[serde(rename = "type")]
    pub media_type: String,
    /// The payload types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_types: Option<Vec<PayloadType>>,
    /// The RTP header extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtp_hdrexts: Option<Vec<RtpHdrExt>>,
    /// Whether one- and two-byte header extensions may be mixed (RFC 8285 `extmap-allow-mixed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extmap_allow_mixed: Option<bool>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A payload type (`payload-types[]`). `id`, `clockrate` and `channels` are JSON strings on
/// the wire (a non-negative integer is accepted on input); the accessors parse them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PayloadType {
    /// The encoding name, e.g. `opus`, `VP8`, `rtx`, `red`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The RTP payload type number, as a string.
    #[serde(
        default,
        deserialize_with = "numeric_string::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// The clock rate in Hz, as a string.
    #[serde(
        default,
        deserialize_with = "numeric_string::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub clockrate: Option<String>,
    /// The channel count, as a string.
    #[serde(
        default,
        deserialize_with = "numeric_string::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub channels: Option<String>,
    /// Format parameters (`a=fmtp`). Jicofo writes RED's unnamed parameter under the key
    /// `"null"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
    /// RTCP feedback types (`a=rtcp-fb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtcp_fbs: Option<Vec<RtcpFb>>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl PayloadType {
    /// The RTP payload type number (0–127).
    pub fn payload_type(&self) -> Result<u8, NumericFieldError> {
        let pt: u8 = parse_present(self.id.as_deref(), "id")?;
        if pt > 127 {
            return Err(NumericFieldError::Invalid { field: "id" });
        }
        Ok(pt)
    }

    /// The clock rate in Hz.
    pub fn clockrate_hz(&self) -> Result<u32, NumericFieldError> {
        parse_present(self.clockrate.as_deref(), "clockrate")
    }

    /// The channel count; 1 when absent (the SDP default).
    pub fn channel_count(&self) -> Result<u8, NumericFieldError> {
        Ok(parse_optional(self.channels.as_deref(), "channels")?.unwrap_or(1))
    }

    /// The value of format parameter `name`, if present.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.as_ref()?.get(name).map(String::as_str)
    }
}

/// An RTCP feedback type (`rtcp-fbs[]`), e.g. `{"type": "nack", "subtype": "pli"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RtcpFb {
    /// The feedback type: `nack`, `ccm`, `transport-cc`, `goog-remb`, ….
    #[serde(rename = "type")]
    pub feedback_type: String,
    /// The subtype, e.g. `pli` or `fir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// An RTP header extension (`rtp-hdrexts[]`); unlike payload types its `id` is a JSON number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RtpHdrExt {
    /// The extension URI.
    pub uri: String,
    /// The extension id (1–14 one-byte, up to 255 two-byte).
    pub id: u8,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}
