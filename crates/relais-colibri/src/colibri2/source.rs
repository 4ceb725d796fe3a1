//! Media sources (`sources[]`): a named audio or video source with its SSRCs and SSRC groups,
//! as endpoints announce them and as the bridge announces its own feedback sources.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// Name of the bridge's audio feedback source.
pub const BRIDGE_AUDIO_SOURCE: &str = "jvb-a0";
/// Name of the bridge's video feedback source.
pub const BRIDGE_VIDEO_SOURCE: &str = "jvb-v0";

/// A media source (`sources[]`): one audio source, camera or screen share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MediaSource {
    /// `audio` or `video`.
    #[serde(rename = "type")]
    pub media_type: String,
    /// The source name: `<endpoint>-a0` (audio), `<endpoint>-v0` (camera), `<endpoint>-v1`
    /// (screen).
    pub id: String,
    /// The SSRCs (simulcast layers and their RTX).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<SourceEntry>>,
    /// How the SSRCs belong together (simulcast, RTX).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssrc_groups: Option<Vec<SsrcGroup>>,
    /// Fields relais does not model (e.g. `synthetic`), kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl MediaSource {
    /// The SSRCs of [`Self::sources`], in order.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.sources.iter().flatten().map(SourceEntry::ssrc)
    }

    /// The bridge's feedback sources `jvb-a0` and `jvb-v0`, which JVB puts in the answer to
    /// every request that creates the conference or an endpoint (msid as JVB writes it).
    pub fn bridge_feedback_sources(audio_ssrc: u32, video_ssrc: u32) -> Vec<MediaSource> {
        let feedback = |media_type: &str, name: &str, ssrc: u32, msid: &str| MediaSource {
            media_type: media_type.to_owned(),
            id: name.to_owned(),
            sources: Some(vec![SourceEntry::Described(SourceDescription {
                ssrc,
                name: Some(name.to_owned()),
                parameters: Some(BTreeMap::from([("msid".to_owned(), msid.to_owned())])),
                other: Map::new(),
            })]),
            ssrc_groups: None,
            other: Map::new(),
        };
        vec![
            feedback(
                "audio",
                BRIDGE_AUDIO_SOURCE,
                audio_ssrc,
                "mixedmslabel mixedlabelaudio0",
            ),
            feedback(
                "video",
                BRIDGE_VIDEO_SOURCE,
                video_ssrc,
                "mixedmslabel mixedlabelvideo0",
            ),
        ]
    }
}

/// One SSRC of a source: a bare JSON number, or an object `{ssrc, name, parameters{msid}}`.
/// Each form is written back as it was read.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEntry {
    /// A bare SSRC number.
    Ssrc(u32),
    /// An SSRC with its name and parameters.
    Described(SourceDescription),
}

impl SourceEntry {
    /// The SSRC.
    pub fn ssrc(&self) -> u32 {
        match self {
            Self::Ssrc(ssrc) => *ssrc,
            Self::Described(description) => description.ssrc,
        }
    }
}

impl Serialize for SourceEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Ssrc(ssrc) => serializer.serialize_u32(*ssrc),
            Self::Described(description) => description.serialize(serializer),
        }
    }
}

// By hand rather than `#[serde(untagged)]`: untagged buffers the input, which loses the
// error's position and replaces it with "did not match any variant".
impl<'de> Deserialize<'de> for SourceEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SourceEntryVisitor)
    }
}

struct SourceEntryVisitor;

impl<'de> Visitor<'de> for SourceEntryVisitor {
    type Value = SourceEntry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an SSRC (a 32-bit number) or an object with `ssrc`")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<SourceEntry, E> {
        u32::try_from(v)
            .map(SourceEntry::Ssrc)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<SourceEntry, E> {
        u32::try_from(v)
            .map(SourceEntry::Ssrc)
            .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SourceEntry, A::Error> {
        SourceDescription::deserialize(MapAccessDeserializer::new(map)).map(SourceEntry::Described)
    }
}

/// The object form of a [`SourceEntry`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SourceDescription {
    /// The SSRC.
    pub ssrc: u32,
    /// The source name this SSRC belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Source parameters, e.g. `msid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
    /// Fields relais does not model (e.g. `videoType`, `rid`), kept so that the message
    /// round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// An SSRC group (`ssrc-groups[]`): `SIM` (simulcast layers, lowest first) or `FID`
/// (a primary SSRC and its RTX).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SsrcGroup {
    /// `SIM` or `FID` (or `FEC-FR`).
    pub semantics: String,
    /// The SSRCs, in the group's order (bare numbers in practice).
    pub sources: Vec<SourceEntry>,
    /// Fields relais does not model, kept so that the message round-trips.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl SsrcGroup {
    /// The SSRCs, in order.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.sources.iter().map(SourceEntry::ssrc)
    }
}
