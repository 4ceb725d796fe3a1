//! Colibri2 for the node: [`NodeHandle`] implements [`ColibriBackend`] by handing the
//! request to the media task (which owns conferences and decides) and writing its outcome
//! as jitsi-videobridge's `conference-modified` answer; and the pure translations from
//! Colibri2's JSON model to the conference core's types.

use relais_colibri::colibri2::{
    Candidate as ColibriCandidate, ColibriError, ConferenceModified, ConferenceModify,
    Endpoint as ColibriEndpoint, Fingerprint as ColibriFingerprint, IceUdpTransport, Media,
    MediaSource, Transport, ICE_UDP_XMLNS,
};
use relais_colibri::http::ColibriBackend;
use relais_conference::allocation::VideoType;
use relais_conference::{
    CodecName, EndpointDescription, MediaKind, NegotiatedCodec, PublishedSource,
};
use relais_rtp::extensions::{ExtensionKind, ExtensionMap};

use super::media::Command;
use super::signalling::NodeHandle;

/// One endpoint the media task created or restarted: its local ICE credentials.
#[derive(Debug, Clone)]
pub(crate) struct AllocatedEndpoint {
    /// The Colibri2 endpoint id.
    pub(crate) id: String,
    /// Local ICE ufrag.
    pub(crate) ufrag: String,
    /// Local ICE pwd (also the bridge channel's credential).
    pub(crate) pwd: String,
}

/// What the media task did with a `conference-modify`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColibriOutcome {
    /// Endpoints whose transport goes into the answer (created or ICE-restarted).
    pub(crate) endpoints: Vec<AllocatedEndpoint>,
    /// Endpoints named in the request without a new transport (answered with their id).
    pub(crate) updated: Vec<String>,
    /// The node's feedback SSRCs of the conference (audio, video), when it was created.
    pub(crate) feedback_ssrcs: Option<(u32, u32)>,
}

/// A codec name as Colibri2 (and SDP) writes it.
fn codec_name(name: &str) -> Option<CodecName> {
    match name.to_ascii_lowercase().as_str() {
        "opus" => Some(CodecName::Opus),
        "vp8" => Some(CodecName::Vp8),
        "vp9" => Some(CodecName::Vp9),
        "h264" => Some(CodecName::H264),
        "av1" => Some(CodecName::Av1),
        _ => None,
    }
}

/// The codecs and header extensions of an endpoint's `medias`. Codecs relais does not
/// forward (RED, telephone-event, ...) are left out; RTX is paired through `apt`.
pub(crate) fn endpoint_description(
    name: &str,
    medias: &[Media],
) -> Result<EndpointDescription, ColibriError> {
    let mut codecs = Vec::new();
    let mut extensions = ExtensionMap::new();
    for media in medias {
        let payload_types = media.payload_types.as_deref().unwrap_or_default();
        for payload_type in payload_types {
            let Some(codec) = payload_type.name.as_deref().and_then(codec_name) else {
                continue;
            };
            // A payload type without an id describes a codec without negotiating it (Jicofo
            // sends such updates): nothing to map, as JVB ignores it too.
            if payload_type.id.is_none() {
                continue;
            }
            let pt = payload_type.payload_type().map_err(|e| {
                ColibriError::bad_request(format!("payload-type {codec:?}: id: {e}"))
            })?;
            let clock_rate = payload_type.clockrate_hz().map_err(|e| {
                ColibriError::bad_request(format!("payload-type {pt}: clockrate: {e}"))
            })?;
            let rtx = payload_types.iter().find_map(|candidate| {
                let is_rtx = candidate
                    .name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case("rtx"));
                let apt = candidate.parameter("apt")?.parse::<u8>().ok()?;
                (is_rtx && apt == pt)
                    .then(|| candidate.payload_type().ok())
                    .flatten()
            });
            codecs.push(NegotiatedCodec {
                payload_type: pt,
                name: codec,
                clock_rate,
                rtx_payload_type: rtx,
            });
        }
        for extension in media.rtp_hdrexts.as_deref().unwrap_or_default() {
            if let Some(kind) = ExtensionKind::from_uri(&extension.uri) {
                extensions.insert(extension.id, kind).map_err(|_| {
                    ColibriError::bad_request(format!(
                        "rtp-hdrext id {} is not a valid extension id",
                        extension.id
                    ))
                })?;
            }
        }
    }
    Ok(EndpointDescription {
        name: name.to_owned(),
        codecs,
        extensions,
    })
}

/// The sources of an endpoint: media SSRCs in SIM-group order (lowest first), RTX pairs
/// from FID groups.
pub(crate) fn published_sources(
    sources: &[MediaSource],
) -> Result<Vec<PublishedSource>, ColibriError> {
    let mut out = Vec::with_capacity(sources.len());
    for source in sources {
        let kind = match source.media_type.as_str() {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            _ => {
                return Err(ColibriError::bad_request(
                    "a source's type is neither audio nor video",
                ))
            }
        };
        let groups = source.ssrc_groups.as_deref().unwrap_or_default();
        let mut rtx = Vec::new();
        let mut simulcast: Vec<u32> = Vec::new();
        for group in groups {
            let ssrcs: Vec<u32> = group.ssrcs().collect();
            match group.semantics.as_str() {
                "FID" => {
                    if let [media, repair] = ssrcs.as_slice() {
                        rtx.push((*media, *repair));
                    }
                }
                "SIM" => simulcast = ssrcs,
                _ => {}
            }
        }
        let ssrcs = if simulcast.is_empty() {
            source
                .ssrcs()
                .filter(|s| !rtx.iter().any(|(_, r)| r == s))
                .collect()
        } else {
            simulcast
        };
        out.push(PublishedSource {
            name: source.id.clone(),
            kind,
            ssrcs,
            rtx,
            video_type: if source.id.ends_with("-v1") {
                VideoType::Desktop
            } else {
                VideoType::Camera
            },
        });
    }
    Ok(out)
}

/// The client's remote candidates that relais can use: UDP, component 1, IP literals.
pub(crate) fn remote_candidates(
    transport: &IceUdpTransport,
) -> impl Iterator<Item = (std::net::SocketAddr, u32)> + '_ {
    transport
        .candidates
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|c| c.protocol.eq_ignore_ascii_case("udp") && c.component == "1")
        .filter_map(|c| {
            let ip: std::net::IpAddr = c.ip.parse().ok()?;
            let port: u16 = c.port.parse().ok()?;
            let priority: u32 = c.priority.parse().ok()?;
            Some((std::net::SocketAddr::new(ip, port), priority))
        })
}

impl NodeHandle {
    fn answer(&self, meeting_id: &str, outcome: ColibriOutcome) -> ConferenceModified {
        let mut endpoints: Vec<ColibriEndpoint> = outcome
            .endpoints
            .into_iter()
            .map(|allocated| {
                let candidates = self
                    .candidates()
                    .iter()
                    .enumerate()
                    .map(|(index, c)| ColibriCandidate {
                        foundation: c.foundation.clone(),
                        component: c.component.to_string(),
                        protocol: c.transport.clone(),
                        priority: c.priority.to_string(),
                        ip: c.address.clone(),
                        port: c.port.to_string(),
                        candidate_type: "host".to_owned(),
                        generation: Some("0".to_owned()),
                        network: Some("0".to_owned()),
                        id: Some(format!("{}{index}", allocated.ufrag)),
                        ..Default::default()
                    })
                    .collect();
                let (hash, fingerprint) = self.fingerprint_parts();
                let web_socket = self.web_socket_url(meeting_id, &allocated.id, &allocated.pwd);
                ColibriEndpoint {
                    id: allocated.id,
                    transport: Some(Transport {
                        transport: Some(IceUdpTransport {
                            xmlns: Some(ICE_UDP_XMLNS.to_owned()),
                            ufrag: Some(allocated.ufrag),
                            pwd: Some(allocated.pwd),
                            rtcp_mux: Some(true),
                            fingerprints: Some(vec![ColibriFingerprint {
                                fingerprint,
                                setup: Some("actpass".to_owned()),
                                hash: Some(hash),
                                ..Default::default()
                            }]),
                            candidates: Some(candidates),
                            web_sockets: web_socket.map(|url| vec![url]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect();
        endpoints.extend(outcome.updated.into_iter().map(|id| ColibriEndpoint {
            id,
            ..Default::default()
        }));
        ConferenceModified {
            endpoints: (!endpoints.is_empty()).then_some(endpoints),
            sources: outcome
                .feedback_ssrcs
                .map(|(audio, video)| MediaSource::bridge_feedback_sources(audio, video)),
            ..Default::default()
        }
    }
}

impl ColibriBackend for NodeHandle {
    async fn conference_modify(
        &self,
        request: ConferenceModify,
    ) -> Result<ConferenceModified, ColibriError> {
        let meeting_id = request.meeting_id.clone().unwrap_or_default();
        let outcome = self
            .request(|reply| Command::Colibri(Box::new(request), reply))
            .await
            .ok_or_else(ColibriError::graceful_shutdown)??;
        Ok(self.answer(&meeting_id, outcome))
    }

    async fn dominant_speaker_identification(
        &self,
        meeting_id: &str,
    ) -> Result<serde_json::Value, ColibriError> {
        let meeting_id = meeting_id.to_owned();
        self.request(|reply| Command::DominantSpeaker { meeting_id, reply })
            .await
            .flatten()
            .ok_or_else(ColibriError::conference_not_found)
    }
}
