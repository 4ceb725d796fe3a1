//! Video types and the source-to-SSRC mappings of `VideoSourcesMap` / `AudioSourcesMap`.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use super::fields::{Fields, SSRC, STRING};
use super::writer::ObjectWriter;
use super::BridgeChannelError;

/// The kind of a video source (JVB's `VideoType`). Read case-insensitively, as JVB does
/// (`"desktop_high_fps"` is accepted); written upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoType {
    /// A camera.
    Camera,
    /// A screen share.
    Desktop,
    /// A screen share sent at a high frame rate (e.g. a video being shared).
    DesktopHighFps,
    /// The source is turned off.
    Disabled,
    /// No source (older clients; newer ones send `Disabled`).
    None,
}

impl VideoType {
    /// The wire name (`CAMERA`, `DESKTOP`, `DESKTOP_HIGH_FPS`, `DISABLED`, `NONE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Camera => "CAMERA",
            Self::Desktop => "DESKTOP",
            Self::DesktopHighFps => "DESKTOP_HIGH_FPS",
            Self::Disabled => "DISABLED",
            Self::None => "NONE",
        }
    }

    /// Whether the source is sending video (neither `Disabled` nor `None`).
    pub fn is_enabled(self) -> bool {
        !matches!(self, Self::Disabled | Self::None)
    }
}

/// The name is not a video type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a video type (CAMERA, DESKTOP, DESKTOP_HIGH_FPS, DISABLED, NONE)")]
pub struct UnknownVideoType;

impl FromStr for VideoType {
    type Err = UnknownVideoType;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [
            Self::Camera,
            Self::Desktop,
            Self::DesktopHighFps,
            Self::Disabled,
            Self::None,
        ]
        .into_iter()
        .find(|video_type| video_type.as_str().eq_ignore_ascii_case(name))
        .ok_or(UnknownVideoType)
    }
}

impl fmt::Display for VideoType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

const VIDEO_TYPE_EXPECTED: &str =
    "a video type (CAMERA, DESKTOP, DESKTOP_HIGH_FPS, DISABLED, NONE)";

/// Reads the required `videoType` field.
pub(crate) fn read_video_type(fields: &mut Fields) -> Result<VideoType, BridgeChannelError> {
    let name = fields.required("videoType", STRING)?;
    name.parse()
        .map_err(|_| fields.invalid("videoType", VIDEO_TYPE_EXPECTED))
}

/// One forwarded video source and the SSRCs the bridge rewrites it to (ssrc-rewriting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSourceMapping {
    /// The source name (`<endpoint>-v0`).
    pub source: String,
    /// The endpoint sending the source, if known.
    pub owner: Option<String>,
    /// The SSRC the receiver sees for the source.
    pub ssrc: u32,
    /// The RTX SSRC the receiver sees for the source.
    pub rtx: u32,
    /// The kind of the source.
    pub video_type: VideoType,
}

/// One forwarded audio source and the SSRC the bridge rewrites it to (ssrc-rewriting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSourceMapping {
    /// The source name (`<endpoint>-a0`).
    pub source: String,
    /// The endpoint sending the source, if known.
    pub owner: Option<String>,
    /// The SSRC the receiver sees for the source.
    pub ssrc: u32,
}

/// Reads the required `mappedSources` array, each element with `read_one`.
pub(crate) fn read_mappings<T>(
    fields: &mut Fields,
    read_one: fn(Fields) -> Result<T, BridgeChannelError>,
) -> Result<Vec<T>, BridgeChannelError> {
    const NAME: &str = "mappedSources";
    let Value::Array(items) = fields.required_value(NAME)? else {
        return Err(fields.invalid(NAME, "an array of objects"));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| read_one(fields.nested(&format!("{NAME}[{index}]"), item)?))
        .collect()
}

impl VideoSourceMapping {
    pub(crate) fn read(mut fields: Fields) -> Result<Self, BridgeChannelError> {
        Ok(Self {
            source: fields.required("source", STRING)?,
            owner: fields.optional("owner", STRING)?,
            ssrc: fields.required("ssrc", SSRC)?,
            rtx: fields.required("rtx", SSRC)?,
            video_type: read_video_type(&mut fields)?,
        })
    }

    pub(crate) fn to_json(&self) -> String {
        let mut writer = ObjectWriter::new();
        writer.string("source", &self.source);
        writer.nullable_string("owner", self.owner.as_deref());
        writer.unsigned("ssrc", u64::from(self.ssrc));
        writer.unsigned("rtx", u64::from(self.rtx));
        writer.string("videoType", self.video_type.as_str());
        writer.finish()
    }
}

impl AudioSourceMapping {
    pub(crate) fn read(mut fields: Fields) -> Result<Self, BridgeChannelError> {
        Ok(Self {
            source: fields.required("source", STRING)?,
            owner: fields.optional("owner", STRING)?,
            ssrc: fields.required("ssrc", SSRC)?,
        })
    }

    pub(crate) fn to_json(&self) -> String {
        let mut writer = ObjectWriter::new();
        writer.string("source", &self.source);
        writer.nullable_string("owner", self.owner.as_deref());
        writer.unsigned("ssrc", u64::from(self.ssrc));
        writer.finish()
    }
}

/// Writes a JSON array from already-written elements.
pub(crate) fn json_array(elements: impl IntoIterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (index, element) in elements.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(&element);
    }
    out.push(']');
    out
}
