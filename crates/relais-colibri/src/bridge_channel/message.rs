//! The message types, one per `colibriClass`, and their reading and writing.

use serde_json::{Map, Value};

use super::audio_subscription::ReceiverAudioSubscription;
use super::constraints::ReceiverVideoConstraints;
use super::fields::{Fields, BOOL, I32, STRING, STRINGS, U64};
use super::sources::{
    json_array, read_mappings, read_video_type, AudioSourceMapping, VideoSourceMapping, VideoType,
};
use super::writer::ObjectWriter;
use super::BridgeChannelError;

/// One bridge channel message. The variant names are the `colibriClass` values.
///
/// Direction (c = client, b = bridge) is noted on each variant; `parse` accepts all of them
/// either way, since a session decides what it does with a message it did not expect.
#[derive(Debug, Clone, PartialEq)]
pub enum BridgeChannelMessage {
    /// c→b: the client opened the channel.
    ClientHello,
    /// b→c: the bridge's greeting, on a new channel or in answer to `ClientHello`.
    ServerHello(ServerHello),
    /// both: a message from one endpoint to another (or all), relayed by the bridge.
    EndpointMessage(EndpointMessage),
    /// c→b→others: an endpoint's statistics, relayed by the bridge.
    EndpointStats(EndpointStats),
    /// c→b: the receiver's video preferences (partial update).
    ReceiverVideoConstraints(ReceiverVideoConstraints),
    /// b→c: the video sources now forwarded to the receiver.
    ForwardedSources(ForwardedSources),
    /// b→c: the dominant speaker changed.
    DominantSpeakerEndpointChangeEvent(DominantSpeakerEndpointChangeEvent),
    /// b→sender: the highest resolution anyone receives of one of the sender's sources.
    SenderSourceConstraints(SenderSourceConstraints),
    /// b→c: what the bridge measures about the client's connection.
    ConnectionStats(ConnectionStats),
    /// b→c: the bridge's connection to another endpoint came up or went down.
    EndpointConnectivityStatusChangeEvent(EndpointConnectivityStatusChangeEvent),
    /// c→b: the video type of one of the sender's sources.
    SourceVideoTypeMessage(SourceVideoTypeMessage),
    /// c→b (legacy, one video source per endpoint): the sender's video type.
    VideoTypeMessage(VideoTypeMessage),
    /// c→b: which audio sources the receiver wants.
    ReceiverAudioSubscription(ReceiverAudioSubscription),
    /// b→c (ssrc-rewriting): video source to SSRC mappings.
    VideoSourcesMap(VideoSourcesMap),
    /// b→c (ssrc-rewriting): audio source to SSRC mappings.
    AudioSourcesMap(AudioSourcesMap),
    /// c→b (legacy): the receiver's lastN.
    LastNChangedEvent(LastNChangedEvent),
}

/// The bridge's greeting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// The bridge's version; JVB leaves it out by default, and so does `to_json` when `None`.
    pub version: Option<String>,
}

/// A message between endpoints. Only `to` and `from` mean something to the bridge; every
/// other field (e.g. `msgPayload`) is carried through unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointMessage {
    /// The receiving endpoint's id; blank (`""`) for everyone.
    pub to: String,
    /// The sending endpoint's id. The bridge sets it: what a client wrote here is not trusted.
    pub from: Option<String>,
    /// Every other field, as received (`colibriClass`, `to` and `from` excluded).
    pub other_fields: Map<String, Value>,
}

impl EndpointMessage {
    /// Whether the message goes to every endpoint (`to` is blank, as JVB decides it).
    pub fn is_broadcast(&self) -> bool {
        self.to.trim().is_empty()
    }
}

/// An endpoint's statistics. Only `from` means something to the bridge; every other field
/// is carried through unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointStats {
    /// The sending endpoint's id, set by the bridge.
    pub from: Option<String>,
    /// Every other field, as received (`colibriClass` and `from` excluded).
    pub other_fields: Map<String, Value>,
}

/// The video sources now forwarded to a receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardedSources {
    /// The source names.
    pub forwarded_sources: Vec<String>,
}

/// The dominant speaker changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DominantSpeakerEndpointChangeEvent {
    /// The endpoint id of the new dominant speaker.
    pub dominant_speaker_endpoint: String,
    /// The previous speakers, most recent first (JVB sends at most 10); omitted when `None`.
    pub previous_speakers: Option<Vec<String>>,
    /// Whether the "speaker" is silence (nobody speaks). Absent on the wire reads as `false`.
    pub silence: bool,
}

/// The highest resolution any receiver wants of one of the sender's sources, so the sender
/// can stop encoding layers nobody receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderSourceConstraints {
    /// The sender's source name.
    pub source_name: String,
    /// Highest height wanted (0: nobody receives it).
    pub max_height: i32,
}

/// What the bridge measures about a client's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStats {
    /// The bridge's estimate of the client's downlink bandwidth, bits per second.
    pub estimated_downlink_bandwidth: u64,
}

/// The bridge's connection to an endpoint came up or went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConnectivityStatusChangeEvent {
    /// The endpoint's id.
    pub endpoint: String,
    /// Whether the endpoint is connected. On the wire it is the string `"true"`/`"false"`.
    pub active: bool,
}

/// The video type of one of the sender's sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceVideoTypeMessage {
    /// The source name.
    pub source_name: String,
    /// The source's video type.
    pub video_type: VideoType,
    /// The endpoint, when relayed between bridges; a client leaves it out.
    pub endpoint_id: Option<String>,
}

/// The sender's video type (legacy: one video source per endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTypeMessage {
    /// The video type.
    pub video_type: VideoType,
    /// The endpoint, when relayed between bridges; a client leaves it out.
    pub endpoint_id: Option<String>,
}

/// Video source to SSRC mappings (ssrc-rewriting).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoSourcesMap {
    /// The mappings.
    pub mapped_sources: Vec<VideoSourceMapping>,
}

/// Audio source to SSRC mappings (ssrc-rewriting).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioSourcesMap {
    /// The mappings.
    pub mapped_sources: Vec<AudioSourceMapping>,
}

/// The receiver's lastN (legacy; `ReceiverVideoConstraints` carries it now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastNChangedEvent {
    /// Most video sources to receive (−1 unlimited).
    pub last_n: i32,
}

/// The `colibriClass` of every message type, in the order of [`BridgeChannelMessage`].
pub const COLIBRI_CLASSES: [&str; 16] = [
    "ClientHello",
    "ServerHello",
    "EndpointMessage",
    "EndpointStats",
    "ReceiverVideoConstraints",
    "ForwardedSources",
    "DominantSpeakerEndpointChangeEvent",
    "SenderSourceConstraints",
    "ConnectionStats",
    "EndpointConnectivityStatusChangeEvent",
    "SourceVideoTypeMessage",
    "VideoTypeMessage",
    "ReceiverAudioSubscription",
    "VideoSourcesMap",
    "AudioSourcesMap",
    "LastNChangedEvent",
];

impl BridgeChannelMessage {
    /// The message's `colibriClass`.
    pub fn colibri_class(&self) -> &'static str {
        match self {
            Self::ClientHello => "ClientHello",
            Self::ServerHello(_) => "ServerHello",
            Self::EndpointMessage(_) => "EndpointMessage",
            Self::EndpointStats(_) => "EndpointStats",
            Self::ReceiverVideoConstraints(_) => "ReceiverVideoConstraints",
            Self::ForwardedSources(_) => "ForwardedSources",
            Self::DominantSpeakerEndpointChangeEvent(_) => "DominantSpeakerEndpointChangeEvent",
            Self::SenderSourceConstraints(_) => "SenderSourceConstraints",
            Self::ConnectionStats(_) => "ConnectionStats",
            Self::EndpointConnectivityStatusChangeEvent(_) => {
                "EndpointConnectivityStatusChangeEvent"
            }
            Self::SourceVideoTypeMessage(_) => "SourceVideoTypeMessage",
            Self::VideoTypeMessage(_) => "VideoTypeMessage",
            Self::ReceiverAudioSubscription(_) => "ReceiverAudioSubscription",
            Self::VideoSourcesMap(_) => "VideoSourcesMap",
            Self::AudioSourcesMap(_) => "AudioSourcesMap",
            Self::LastNChangedEvent(_) => "LastNChangedEvent",
        }
    }

    /// Reads the fields of a message whose `colibriClass` (already removed) is `class`.
    pub(crate) fn read(class: &str, map: Map<String, Value>) -> Result<Self, BridgeChannelError> {
        // The class must be 'static for errors, so it is looked up in the known list.
        let Some(class) = COLIBRI_CLASSES.into_iter().find(|known| *known == class) else {
            return Err(BridgeChannelError::UnknownClass(class.to_owned()));
        };
        let mut fields = Fields::new(class, map);
        let message = match class {
            "ClientHello" => Self::ClientHello,
            "ServerHello" => Self::ServerHello(ServerHello {
                version: fields.optional("version", STRING)?,
            }),
            "EndpointMessage" => {
                let to = fields.required("to", STRING)?;
                let from = fields.optional("from", STRING)?;
                Self::EndpointMessage(EndpointMessage {
                    to,
                    from,
                    other_fields: fields.into_rest(),
                })
            }
            "EndpointStats" => {
                let from = fields.optional("from", STRING)?;
                Self::EndpointStats(EndpointStats {
                    from,
                    other_fields: fields.into_rest(),
                })
            }
            "ReceiverVideoConstraints" => {
                Self::ReceiverVideoConstraints(ReceiverVideoConstraints::read(fields)?)
            }
            "ForwardedSources" => Self::ForwardedSources(ForwardedSources {
                forwarded_sources: fields.required("forwardedSources", STRINGS)?,
            }),
            "DominantSpeakerEndpointChangeEvent" => {
                Self::DominantSpeakerEndpointChangeEvent(DominantSpeakerEndpointChangeEvent {
                    dominant_speaker_endpoint: fields
                        .required("dominantSpeakerEndpoint", STRING)?,
                    previous_speakers: fields.optional("previousSpeakers", STRINGS)?,
                    silence: fields.optional("silence", BOOL)?.unwrap_or(false),
                })
            }
            "SenderSourceConstraints" => Self::SenderSourceConstraints(SenderSourceConstraints {
                source_name: fields.required("sourceName", STRING)?,
                max_height: fields.required("maxHeight", I32)?,
            }),
            "ConnectionStats" => Self::ConnectionStats(ConnectionStats {
                estimated_downlink_bandwidth: fields.required("estimatedDownlinkBandwidth", U64)?,
            }),
            "EndpointConnectivityStatusChangeEvent" => {
                let endpoint = fields.required("endpoint", STRING)?;
                let active = match fields.required("active", STRING)?.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(fields.invalid("active", "the string \"true\" or \"false\"")),
                };
                Self::EndpointConnectivityStatusChangeEvent(EndpointConnectivityStatusChangeEvent {
                    endpoint,
                    active,
                })
            }
            "SourceVideoTypeMessage" => Self::SourceVideoTypeMessage(SourceVideoTypeMessage {
                source_name: fields.required("sourceName", STRING)?,
                video_type: read_video_type(&mut fields)?,
                endpoint_id: fields.optional("endpointId", STRING)?,
            }),
            "VideoTypeMessage" => Self::VideoTypeMessage(VideoTypeMessage {
                video_type: read_video_type(&mut fields)?,
                endpoint_id: fields.optional("endpointId", STRING)?,
            }),
            "ReceiverAudioSubscription" => {
                Self::ReceiverAudioSubscription(ReceiverAudioSubscription::read(fields)?)
            }
            "VideoSourcesMap" => Self::VideoSourcesMap(VideoSourcesMap {
                mapped_sources: read_mappings(&mut fields, VideoSourceMapping::read)?,
            }),
            "AudioSourcesMap" => Self::AudioSourcesMap(AudioSourcesMap {
                mapped_sources: read_mappings(&mut fields, AudioSourceMapping::read)?,
            }),
            "LastNChangedEvent" => Self::LastNChangedEvent(LastNChangedEvent {
                last_n: fields.required("lastN", I32)?,
            }),
            // Unreachable: `class` comes from COLIBRI_CLASSES, and every entry has an arm.
            _ => return Err(BridgeChannelError::UnknownClass(class.to_owned())),
        };
        Ok(message)
    }

    /// The message as JSON text, as JVB writes it: `colibriClass` first, JVB's field names
    /// and order, optional fields left out when `None` (JVB writes `owner: null` in source
    /// mappings, and so does this). Free fields of `EndpointMessage` / `EndpointStats` are
    /// written as received.
    pub fn to_json(&self) -> String {
        let mut writer = ObjectWriter::message(self.colibri_class());
        match self {
            Self::ClientHello => {}
            Self::ServerHello(hello) => writer.optional_string("version", hello.version.as_deref()),
            Self::EndpointMessage(message) => {
                writer.string("to", &message.to);
                writer.optional_string("from", message.from.as_deref());
                write_free_fields(&mut writer, &message.other_fields);
            }
            Self::EndpointStats(stats) => {
                writer.optional_string("from", stats.from.as_deref());
                write_free_fields(&mut writer, &stats.other_fields);
            }
            Self::ReceiverVideoConstraints(constraints) => constraints.write(&mut writer),
            Self::ForwardedSources(forwarded) => {
                writer.strings("forwardedSources", &forwarded.forwarded_sources);
            }
            Self::DominantSpeakerEndpointChangeEvent(event) => {
                writer.string("dominantSpeakerEndpoint", &event.dominant_speaker_endpoint);
                if let Some(previous) = &event.previous_speakers {
                    writer.strings("previousSpeakers", previous);
                }
                writer.boolean("silence", event.silence);
            }
            Self::SenderSourceConstraints(constraints) => {
                writer.string("sourceName", &constraints.source_name);
                writer.integer("maxHeight", i64::from(constraints.max_height));
            }
            Self::ConnectionStats(stats) => {
                writer.unsigned(
                    "estimatedDownlinkBandwidth",
                    stats.estimated_downlink_bandwidth,
                );
            }
            Self::EndpointConnectivityStatusChangeEvent(event) => {
                writer.string("endpoint", &event.endpoint);
                writer.string("active", if event.active { "true" } else { "false" });
            }
            Self::SourceVideoTypeMessage(message) => {
                writer.string("videoType", message.video_type.as_str());
                writer.string("sourceName", &message.source_name);
                writer.optional_string("endpointId", message.endpoint_id.as_deref());
            }
            Self::VideoTypeMessage(message) => {
                writer.string("videoType", message.video_type.as_str());
                writer.optional_string("endpointId", message.endpoint_id.as_deref());
            }
            Self::ReceiverAudioSubscription(subscription) => subscription.write(&mut writer),
            Self::VideoSourcesMap(map) => writer.raw(
                "mappedSources",
                &json_array(map.mapped_sources.iter().map(VideoSourceMapping::to_json)),
            ),
            Self::AudioSourcesMap(map) => writer.raw(
                "mappedSources",
                &json_array(map.mapped_sources.iter().map(AudioSourceMapping::to_json)),
            ),
            Self::LastNChangedEvent(event) => writer.integer("lastN", i64::from(event.last_n)),
        }
        writer.finish()
    }
}

fn write_free_fields(writer: &mut ObjectWriter, fields: &Map<String, Value>) {
    for (name, value) in fields {
        writer.value(name, value);
    }
}
