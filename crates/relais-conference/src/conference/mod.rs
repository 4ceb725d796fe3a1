//! A multi-party conference, sans-IO: every endpoint may publish sources and receive the
//! others'; each receiver gets the sources and layers its allocation picks.
//!
//! # Model
//!
//! conference → endpoints → sources. An endpoint (one ICE/DTLS transport, named with its
//! Jitsi endpoint id) publishes audio and video sources (named `<endpoint>-a0`, `-v0`, ...)
//! with announced SSRCs: a video source has one SSRC per simulcast encoding (lowest first)
//! or a single SSRC carrying SVC layers, each with an RTX SSRC. Every receiver has, per
//! source it may get, a [`projection::Projection`]: the layer selection and rewriting for
//! that receiver.
//!
//! # Decisions
//!
//! - **Receivers see the sender's SSRCs**: each source is forwarded on its primary
//!   (lowest encoding's) SSRC and RTX SSRC, as Jitsi clients expect without SSRC rewriting;
//!   sequence numbers, timestamps and picture ids are rewritten per receiver.
//! - **Allocation** ([`crate::allocation`]) runs for every receiver when something it
//!   depends on changes: constraints, sources, active layers, the speaker order. Its result
//!   sets each projection's target and, when the set of forwarded sources changes, a
//!   `ForwardedSources` event goes to the receiver.
//! - **Audio**: forwarded to every receiver whose audio subscription includes it, unless the
//!   silence filter suppresses it ([`crate::speech`]); audio levels feed the dominant speaker
//!   identification, whose changes go to every endpoint and reorder last-N.
//! - **Feedback** is terminated here: NACKs are answered from the source's packet cache,
//!   PLI/FIR become rate-limited keyframe requests to the sender, SRs are translated per
//!   receiver, receiver reports feed loss and RTT counters. Senders get REMB.
//! - **Upstream repair** ([`crate::repair`]): what a sender's video loses on the way to the
//!   node is asked for again with NACKs to the sender; its RTX (mapped by the FID groups of
//!   its sources) is unwrapped and, when the packet is still missing, handled exactly like
//!   the original: cached and forwarded, late, with the sequence number the original would
//!   have had. Padding-only RTX (probes) counts for transport-cc and is dropped.
//! - **E2EE**: only the RTP header, header extensions and the codec payload descriptors are
//!   read; payloads encrypted with insertable streams pass through untouched.

mod bandwidth;
mod projection;
pub(crate) mod rewrite;
mod source;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use relais_rtp::extensions::{AudioLevel, ExtensionKind, ExtensionMap, TransportSequenceNumber};
use relais_rtp::rtcp::{feedback, RtcpCompound, RtcpKind, RtcpPacket};
use relais_rtp::rtp::RtpPacket;

use crate::allocation::{
    self, LayerDescription, ReceiverConstraints, ReceiverConstraintsUpdate, SourceDescription,
    VideoType,
};
use crate::repair::{self, Arrival, RepairConfig, RtxPayload};
use crate::speech::{
    DominantSpeakerConfig, DominantSpeakerIdentification, SilenceFilter, SilenceFilterConfig,
};
use crate::{CodecName, ConferenceError, EndpointId, ForwarderStats, MediaKind, NegotiatedCodec};
use projection::{LayerTarget, Projection, ReceiverLink, Verdict};
use source::{inspect, Source, SourceId};

/// Longest RTP packet accepted from a sender.
pub const MAX_RTP_LEN: usize = 1500;
/// Capacity of pooled output buffers: the largest packet, the SRTP tag and RTX's 2 bytes.
pub const BUFFER_CAPACITY: usize = MAX_RTP_LEN + 32;
/// Most buffers kept in the free list.
const MAX_POOLED_BUFFERS: usize = 8192;
/// The conference timer period (rates, allocation upkeep, keyframe retries).
const TICK: Duration = Duration::from_millis(100);
/// While a receiver waits for a key frame, the request is repeated this often.
const KEYFRAME_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// An endpoint that publishes and sent no media for this long is announced inactive (as
/// JVB's connectivity monitor does).
pub const MEDIA_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(3);
/// Most probe padding packets one timer call sends to one receiver.
const MAX_PROBE_PACKETS_PER_CALL: usize = 64;
/// Most SSRCs an endpoint may announce (media and RTX), as Jitsi's limit.
pub const MAX_SSRCS_PER_ENDPOINT: usize = 20;

/// Tunables of a conference.
#[derive(Debug, Clone)]
pub struct ConferenceConfig {
    /// Minimum spacing of keyframe requests (PLI) to one sender encoding.
    pub keyframe_request_interval: Duration,
    /// Bitrate announced to senders with REMB until bandwidth estimation exists.
    pub sender_remb_bps: u64,
    /// REMB interval.
    pub sender_remb_interval: Duration,
    /// Suppress below-threshold audio of non-speakers.
    pub silence_suppression: bool,
    /// Dominant speaker identification tunables.
    pub dominant_speaker: DominantSpeakerConfig,
    /// Silence suppression tunables.
    pub silence: SilenceFilterConfig,
    /// Estimate receivers' downlinks from their transport-wide feedback (those that
    /// negotiated transport-cc), pace their packets and allocate within the estimate.
    pub bandwidth_estimation: bool,
    /// The estimate's bounds and starting point.
    pub bandwidth: relais_bwe::BweConfig,
    /// NACKs to senders for what their video lost on the way to the node, and unwrapping
    /// of their RTX.
    pub upstream_repair: RepairConfig,
}

impl Default for ConferenceConfig {
    fn default() -> Self {
        Self {
            keyframe_request_interval: Duration::from_millis(500),
            sender_remb_bps: 3_000_000,
            sender_remb_interval: Duration::from_secs(1),
            silence_suppression: true,
            dominant_speaker: DominantSpeakerConfig::default(),
            silence: SilenceFilterConfig::default(),
            bandwidth_estimation: true,
            bandwidth: relais_bwe::BweConfig::default(),
            upstream_repair: RepairConfig::default(),
        }
    }
}

/// An endpoint joining a conference: its name and what its transport negotiated.
#[derive(Debug, Clone)]
pub struct EndpointDescription {
    /// The Jitsi endpoint id (used in source names and bridge channel messages).
    pub name: String,
    /// Audio and video codecs with this endpoint's payload types.
    pub codecs: Vec<NegotiatedCodec>,
    /// Header extensions with this endpoint's ids (both directions).
    pub extensions: ExtensionMap,
}

/// A source an endpoint publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedSource {
    /// The source name (`<endpoint>-v0`).
    pub name: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// Media SSRCs: one, or one per simulcast encoding, lowest resolution first (the order
    /// of the SIM group).
    pub ssrcs: Vec<u32>,
    /// `(media, rtx)` SSRC pairs (FID groups).
    pub rtx: Vec<(u32, u32)>,
    /// Camera or screen share.
    pub video_type: VideoType,
}

/// Which audio sources a receiver wants (the bridge channel's ReceiverAudioSubscription).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AudioSubscription {
    /// Every audio source (the default).
    #[default]
    All,
    /// No audio.
    None,
    /// Only these sources.
    Include(Vec<String>),
    /// Every source but these.
    Exclude(Vec<String>),
}

impl AudioSubscription {
    fn wants(&self, source: &str) -> bool {
        match self {
            Self::All => true,
            Self::None => false,
            Self::Include(names) => names.iter().any(|n| n == source),
            Self::Exclude(names) => !names.iter().any(|n| n == source),
        }
    }
}

/// A message for one endpoint's bridge channel.
#[derive(Debug, Clone, PartialEq)]
pub enum ConferenceEvent {
    /// The video sources now forwarded to the receiver.
    ForwardedSources {
        /// Source names.
        sources: Vec<String>,
    },
    /// The dominant speaker changed.
    DominantSpeaker {
        /// Endpoint name of the dominant speaker.
        speaker: String,
        /// Previous speakers, most recent first (at most 10).
        previous: Vec<String>,
        /// Nobody speaks.
        silence: bool,
    },
    /// An endpoint's media stopped arriving, or started again (JVB's
    /// EndpointConnectivityStatusChangeEvent).
    EndpointConnectivity {
        /// The endpoint's name.
        endpoint: String,
        /// Whether its media flows.
        active: bool,
    },
    /// The receiver's estimated downlink (JVB's ConnectionStats).
    ConnectionStats {
        /// Bits per second.
        estimated_downlink_bps: u64,
    },
    /// The largest height any receiver needs of one of the endpoint's sources.
    SenderSourceConstraints {
        /// The source.
        source: String,
        /// Height in pixels; 0 when nobody receives it.
        max_height: i32,
    },
}

/// What the conference wants sent.
#[derive(Debug)]
pub enum ConferenceOutput {
    /// A plaintext RTP packet for `to` (the buffer has room for the SRTP tag; recycle it).
    Rtp {
        /// The receiving endpoint.
        to: EndpointId,
        /// The packet.
        packet: Vec<u8>,
    },
    /// A plaintext (compound) RTCP packet for `to`.
    Rtcp {
        /// The receiving endpoint.
        to: EndpointId,
        /// The packet.
        packet: Vec<u8>,
    },
    /// A bridge channel message for `to`.
    Event {
        /// The receiving endpoint.
        to: EndpointId,
        /// The message.
        event: ConferenceEvent,
    },
}

/// Output queue, buffer pool and counters shared by everything in the conference.
#[derive(Debug, Default)]
pub(crate) struct Io {
    pool: Vec<Vec<u8>>,
    out: std::collections::VecDeque<ConferenceOutput>,
    pub(crate) stats: ForwarderStats,
}

impl Io {
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        let mut buffer = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUFFER_CAPACITY));
        buffer.clear();
        buffer
    }

    pub(crate) fn recycle(&mut self, buffer: Vec<u8>) {
        if buffer.capacity() >= BUFFER_CAPACITY && self.pool.len() < MAX_POOLED_BUFFERS {
            self.pool.push(buffer);
        }
    }

    pub(crate) fn push_rtp(&mut self, to: EndpointId, packet: Vec<u8>) {
        self.out.push_back(ConferenceOutput::Rtp { to, packet });
    }

    pub(crate) fn push_rtcp(&mut self, to: EndpointId, packet: Vec<u8>) {
        self.out.push_back(ConferenceOutput::Rtcp { to, packet });
    }

    fn event(&mut self, to: EndpointId, event: ConferenceEvent) {
        self.out.push_back(ConferenceOutput::Event { to, event });
    }

    /// A PLI (RFC 4585 §6.3.1), 12 bytes, no allocation.
    fn pli(&mut self, to: EndpointId, sender_ssrc: u32, media_ssrc: u32) {
        let mut packet = self.buffer();
        packet.extend_from_slice(&[0x81, 206, 0, 2]);
        packet.extend_from_slice(&sender_ssrc.to_be_bytes());
        packet.extend_from_slice(&media_ssrc.to_be_bytes());
        self.stats.keyframe_requests += 1;
        self.push_rtcp(to, packet);
    }

    fn rtcp(&mut self, to: EndpointId, packet: &RtcpPacket) {
        let mut buffer = self.buffer();
        buffer.resize(packet.marshal_size(), 0);
        match packet.marshal_to(&mut buffer) {
            Ok(len) => {
                buffer.truncate(len);
                self.push_rtcp(to, buffer);
            }
            Err(_) => self.recycle(buffer),
        }
    }
}

/// The dependency descriptor extension's value in `packet`, if the sender negotiated it.
fn sender_extensions_ref<'a>(
    extensions: &ExtensionMap,
    packet: &'a RtpPacket<&[u8]>,
) -> Option<&'a [u8]> {
    extensions.get(packet, ExtensionKind::DependencyDescriptor)
}

/// Sends `sender` the NACKs `requester` wants now (new gaps, retries) for `media_ssrc`,
/// from the node's SSRC for that sender; `due` is a reused list.
fn request_repairs(
    io: &mut Io,
    now: Instant,
    sender: EndpointId,
    node_ssrc: u32,
    media_ssrc: u32,
    requester: &mut repair::RetransmissionRequester,
    due: &mut Vec<u16>,
) {
    let outcome = requester.poll_requests(now, due);
    io.stats.upstream_repairs_abandoned += outcome.abandoned;
    for (nack, count) in repair::nack_packets(node_ssrc, media_ssrc, due) {
        io.stats.upstream_nacks_sent += 1;
        io.stats.upstream_nacked_packets += count as u64;
        io.rtcp(sender, &nack);
    }
}

/// What an incoming SSRC of an endpoint is: a source's encoding, or the RTX stream that
/// repairs it (FID group).
#[derive(Debug, Clone, Copy)]
enum SsrcRoute {
    Media { source: SourceId, encoding: u8 },
    Rtx { source: SourceId, encoding: u8 },
}

/// One endpoint: its receiving link, its sources and its receiver state.
#[derive(Debug)]
struct Endpoint {
    name: String,
    link: ReceiverLink,
    node_ssrc: u32,
    sources: Vec<SourceId>,
    routes: HashMap<u32, SsrcRoute>,
    constraints: ReceiverConstraints,
    audio_subscription: AudioSubscription,
    /// The last ForwardedSources sent.
    forwarded: Vec<String>,
    next_remb: Instant,
    /// When the endpoint's last media packet arrived.
    last_media: Option<Instant>,
    /// What the others were last told: media flowing (`true`) or stopped.
    announced_active: bool,
    /// Arrivals of the endpoint's transport-wide sequence numbers, for the feedback its
    /// sending side estimates its uplink with (when it negotiated transport-cc).
    twcc: Option<relais_bwe::twcc::TwccRecorder>,
}

/// A source and every receiver's projection of it.
#[derive(Debug)]
struct SourceEntry {
    source: Source,
    projections: Vec<Projection>,
    silence: SilenceFilter,
    /// The last SenderSourceConstraints height sent to the owner.
    announced_height: Option<i32>,
}

/// One conference (sans-IO).
#[derive(Debug)]
pub struct Conference {
    config: ConferenceConfig,
    io: Io,
    endpoints: HashMap<EndpointId, Endpoint>,
    /// Join order, for stable allocation ordering of non-speakers.
    order: Vec<EndpointId>,
    sources: HashMap<SourceId, SourceEntry>,
    next_source_id: u32,
    speakers: DominantSpeakerIdentification,
    allocation_dirty: bool,
    next_tick: Instant,
    next_keyframe_retry: Instant,
    layer_scratch: Vec<LayerDescription>,
    /// The original packet unwrapped from a sender's RTX (reused: unwrapping does not
    /// allocate).
    rtx_scratch: Vec<u8>,
    /// Sequence numbers due for a NACK to a sender (reused).
    nack_scratch: Vec<u16>,
    /// The latest time the conference was given (for `poll_timeout`).
    last_now: Instant,
}

impl Conference {
    /// An empty conference.
    pub fn new(now: Instant, config: ConferenceConfig) -> Self {
        let speakers = DominantSpeakerIdentification::new(config.dominant_speaker.clone());
        Self {
            config,
            io: Io::default(),
            endpoints: HashMap::new(),
            order: Vec::new(),
            sources: HashMap::new(),
            next_source_id: 0,
            speakers,
            allocation_dirty: false,
            next_tick: now + TICK,
            next_keyframe_retry: now + KEYFRAME_RETRY_INTERVAL,
            layer_scratch: Vec::new(),
            rtx_scratch: Vec::with_capacity(MAX_RTP_LEN),
            nack_scratch: Vec::with_capacity(repair::MAX_MISSING),
            last_now: now,
        }
    }

    /// The sender SSRC of RTCP the node sends to `endpoint`.
    pub fn node_ssrc(endpoint: EndpointId) -> u32 {
        crate::Forwarder::node_ssrc(endpoint)
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether the conference has no endpoint.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The endpoint with this Jitsi name.
    pub fn endpoint_by_name(&self, name: &str) -> Option<EndpointId> {
        self.endpoints
            .iter()
            .find(|(_, e)| e.name == name)
            .map(|(id, _)| *id)
    }

    /// Every endpoint with its name, in join order.
    pub fn endpoints(&self) -> impl Iterator<Item = (EndpointId, &str)> + '_ {
        self.order
            .iter()
            .filter_map(|id| self.endpoints.get(id).map(|e| (*id, e.name.as_str())))
    }

    /// The dominant speaker's endpoint name.
    pub fn dominant_speaker(&self) -> Option<&str> {
        let id = self.speakers.dominant_speaker()?;
        self.endpoints.get(&id).map(|e| e.name.as_str())
    }

    /// The downlink estimate of `endpoint`, when it negotiated transport-cc.
    pub fn estimate_bps(&self, endpoint: EndpointId) -> Option<u64> {
        self.endpoints
            .get(&endpoint)?
            .link
            .bandwidth
            .as_ref()
            .map(|b| b.estimate_bps())
    }

    /// Endpoint names in speaker order (dominant first).
    pub fn speaker_order(&self) -> Vec<String> {
        self.speakers
            .speaker_order()
            .filter_map(|id| self.endpoints.get(&id).map(|e| e.name.clone()))
            .collect()
    }

    /// Adds an endpoint (it publishes nothing until [`Conference::set_sources`]).
    pub fn add_endpoint(
        &mut self,
        now: Instant,
        id: EndpointId,
        description: EndpointDescription,
    ) -> Result<(), ConferenceError> {
        if self.endpoints.contains_key(&id) {
            return Err(ConferenceError::EndpointExists);
        }
        let tcc_id = description.extensions.id(ExtensionKind::TransportCc);
        self.endpoints.insert(
            id,
            Endpoint {
                name: description.name,
                link: ReceiverLink {
                    endpoint: id,
                    codecs: description.codecs,
                    extensions: description.extensions,
                    tcc_id,
                    tcc_seq: 1,
                    bandwidth: self.new_bandwidth(now, tcc_id),
                },
                node_ssrc: Self::node_ssrc(id),
                sources: Vec::new(),
                routes: HashMap::new(),
                constraints: ReceiverConstraints::default(),
                audio_subscription: AudioSubscription::All,
                forwarded: Vec::new(),
                next_remb: now,
                last_media: None,
                announced_active: true,
                twcc: tcc_id.map(|_| relais_bwe::twcc::TwccRecorder::default()),
            },
        );
        self.order.push(id);
        self.speakers.add_speaker(id);
        // Every existing audio source reaches the newcomer.
        for entry in self.sources.values_mut() {
            if entry.source.kind == MediaKind::Audio && entry.source.owner != id {
                if let Some(ssrc) = entry.source.primary_ssrc() {
                    entry.projections.push(Projection::new(id, ssrc, None));
                }
            }
        }
        self.allocation_dirty = true;
        Ok(())
    }

    fn new_bandwidth(
        &self,
        now: Instant,
        tcc_id: Option<u8>,
    ) -> Option<Box<bandwidth::ReceiverBandwidth>> {
        (self.config.bandwidth_estimation && tcc_id.is_some()).then(|| {
            Box::new(bandwidth::ReceiverBandwidth::new(
                now,
                self.config.bandwidth,
            ))
        })
    }

    /// Changes an endpoint's negotiated codecs and extension ids.
    pub fn set_endpoint_media(
        &mut self,
        now: Instant,
        id: EndpointId,
        codecs: Vec<NegotiatedCodec>,
        extensions: ExtensionMap,
    ) -> Result<(), ConferenceError> {
        let endpoint = self
            .endpoints
            .get_mut(&id)
            .ok_or(ConferenceError::UnknownEndpoint)?;
        let tcc_id = extensions.id(ExtensionKind::TransportCc);
        if tcc_id.is_none() {
            endpoint.link.bandwidth = None;
        } else if endpoint.link.bandwidth.is_none() && self.config.bandwidth_estimation {
            endpoint.link.bandwidth = Some(Box::new(bandwidth::ReceiverBandwidth::new(
                now,
                self.config.bandwidth,
            )));
        }
        endpoint.link.tcc_id = tcc_id;
        endpoint.link.codecs = codecs;
        endpoint.link.extensions = extensions;
        Ok(())
    }

    /// Replaces the sources an endpoint publishes. Sources that keep their name and SSRCs
    /// keep their state; receivers keep continuous numbering.
    pub fn set_sources(
        &mut self,
        now: Instant,
        id: EndpointId,
        sources: Vec<PublishedSource>,
    ) -> Result<(), ConferenceError> {
        let _ = now;
        let Some(endpoint) = self.endpoints.get(&id) else {
            return Err(ConferenceError::UnknownEndpoint);
        };
        let ssrc_count: usize = sources.iter().map(|s| s.ssrcs.len() + s.rtx.len()).sum();
        if ssrc_count > MAX_SSRCS_PER_ENDPOINT {
            return Err(ConferenceError::TooManySsrcs);
        }
        // SSRCs must be unique in the endpoint and not used by another endpoint's source.
        let mut seen = Vec::with_capacity(ssrc_count);
        for ssrc in sources
            .iter()
            .flat_map(|s| s.ssrcs.iter().chain(s.rtx.iter().map(|(_, r)| r)))
        {
            if seen.contains(ssrc) {
                return Err(ConferenceError::DuplicateSsrc(*ssrc));
            }
            seen.push(*ssrc);
        }
        for source in &sources {
            if source.ssrcs.is_empty() {
                return Err(ConferenceError::NoSsrc(source.name.clone()));
            }
            let taken = self.sources.values().any(|e| {
                e.source.owner != id
                    && (e.source.name == source.name
                        || e.source
                            .encodings
                            .iter()
                            .any(|enc| source.ssrcs.contains(&enc.ssrc)))
            });
            if taken {
                return Err(ConferenceError::SourceInUse(source.name.clone()));
            }
        }
        let existing = endpoint.sources.clone();
        let mut kept = Vec::new();
        for source_id in existing {
            let keep = self.sources.get(&source_id).and_then(|entry| {
                sources.iter().find(|s| {
                    s.name == entry.source.name
                        && s.kind == entry.source.kind
                        && s.ssrcs
                            .iter()
                            .eq(entry.source.encodings.iter().map(|e| &e.ssrc))
                })
            });
            match keep {
                Some(published) => {
                    if let Some(entry) = self.sources.get_mut(&source_id) {
                        entry.source.video_type = published.video_type;
                    }
                    kept.push(source_id);
                }
                None => {
                    self.sources.remove(&source_id);
                }
            }
        }
        let mut ids = kept.clone();
        let kept_names: Vec<String> = kept
            .iter()
            .filter_map(|k| self.sources.get(k).map(|e| e.source.name.clone()))
            .collect();
        for published in sources.iter().filter(|p| !kept_names.contains(&p.name)) {
            let source_id = SourceId(self.next_source_id);
            self.next_source_id = self.next_source_id.wrapping_add(1);
            let source = Source::new(
                published.name.clone(),
                id,
                published.kind,
                published.video_type,
                &published.ssrcs,
                &published.rtx,
                self.config.upstream_repair,
            );
            let mut projections = Vec::new();
            if published.kind == MediaKind::Audio {
                if let Some(ssrc) = source.primary_ssrc() {
                    projections.extend(
                        self.order
                            .iter()
                            .filter(|r| **r != id)
                            .map(|r| Projection::new(*r, ssrc, None)),
                    );
                }
            }
            self.sources.insert(
                source_id,
                SourceEntry {
                    source,
                    projections,
                    silence: SilenceFilter::new(self.config.silence.clone()),
                    announced_height: None,
                },
            );
            ids.push(source_id);
        }
        let mut routes = HashMap::new();
        for source_id in &ids {
            if let Some(entry) = self.sources.get(source_id) {
                for (index, encoding) in entry.source.encodings.iter().enumerate() {
                    routes.insert(
                        encoding.ssrc,
                        SsrcRoute::Media {
                            source: *source_id,
                            encoding: index as u8,
                        },
                    );
                    if let Some(rtx) = encoding.rtx_ssrc {
                        routes.insert(
                            rtx,
                            SsrcRoute::Rtx {
                                source: *source_id,
                                encoding: index as u8,
                            },
                        );
                    }
                }
            }
        }
        if let Some(endpoint) = self.endpoints.get_mut(&id) {
            endpoint.sources = ids;
            endpoint.routes = routes;
        }
        self.allocation_dirty = true;
        Ok(())
    }

    /// Removes an endpoint, its sources and its projections.
    pub fn remove_endpoint(&mut self, now: Instant, id: EndpointId) {
        let _ = now;
        let Some(endpoint) = self.endpoints.remove(&id) else {
            return;
        };
        for source_id in endpoint.sources {
            self.sources.remove(&source_id);
        }
        for entry in self.sources.values_mut() {
            entry.projections.retain(|p| p.receiver != id);
        }
        self.order.retain(|e| *e != id);
        self.speakers.remove_speaker(id);
        self.allocation_dirty = true;
    }

    /// Applies a (partial) ReceiverVideoConstraints update from `id`.
    pub fn set_receiver_constraints(
        &mut self,
        now: Instant,
        id: EndpointId,
        update: ReceiverConstraintsUpdate,
    ) -> Result<(), ConferenceError> {
        let endpoint = self
            .endpoints
            .get_mut(&id)
            .ok_or(ConferenceError::UnknownEndpoint)?;
        if endpoint.constraints.apply(update) {
            self.allocation_dirty = true;
            self.reallocate(now);
        }
        Ok(())
    }

    /// A SourceVideoTypeMessage from the source's owner.
    pub fn set_video_type(
        &mut self,
        now: Instant,
        id: EndpointId,
        source_name: &str,
        video_type: VideoType,
    ) -> Result<(), ConferenceError> {
        let entry = self
            .sources
            .values_mut()
            .find(|e| e.source.owner == id && e.source.name == source_name)
            .ok_or(ConferenceError::UnknownSource)?;
        if entry.source.video_type != video_type {
            entry.source.video_type = video_type;
            self.allocation_dirty = true;
            self.reallocate(now);
        }
        Ok(())
    }

    /// A ReceiverAudioSubscription from `id`.
    pub fn set_audio_subscription(
        &mut self,
        id: EndpointId,
        subscription: AudioSubscription,
    ) -> Result<(), ConferenceError> {
        let endpoint = self
            .endpoints
            .get_mut(&id)
            .ok_or(ConferenceError::UnknownEndpoint)?;
        endpoint.audio_subscription = subscription;
        Ok(())
    }

    /// A decrypted RTP packet from `from`.
    pub fn handle_rtp(&mut self, now: Instant, from: EndpointId, packet: &[u8]) {
        if packet.len() > MAX_RTP_LEN {
            self.io.stats.dropped_malformed += 1;
            return;
        }
        let Ok(packet) = RtpPacket::parse(packet) else {
            self.io.stats.dropped_malformed += 1;
            return;
        };
        let Some(sender) = self.endpoints.get_mut(&from) else {
            self.io.stats.dropped_unknown_endpoint += 1;
            return;
        };
        sender.last_media = Some(now);
        // Before routing: padding-only probes and RTX count for the sender's estimate too.
        if let (Some(twcc), Some(id)) = (sender.twcc.as_mut(), sender.link.tcc_id) {
            if let Some(seq) = packet
                .extension(id)
                .and_then(|v| TransportSequenceNumber::parse(v).ok())
            {
                twcc.on_packet(now, seq.0);
            }
        }
        match sender.routes.get(&packet.ssrc()).copied() {
            Some(SsrcRoute::Media { source, encoding }) => {
                self.handle_media(now, from, &packet, source, encoding, false);
            }
            Some(SsrcRoute::Rtx { source, encoding }) => {
                self.handle_sender_rtx(now, from, &packet, source, encoding);
            }
            None => self.io.stats.dropped_unknown_stream += 1,
        }
    }

    /// A sender's RTX packet: unwrapped and handled as the original when that is still
    /// missing; dropped (counted) otherwise.
    fn handle_sender_rtx(
        &mut self,
        now: Instant,
        from: EndpointId,
        packet: &RtpPacket<&[u8]>,
        source_id: SourceId,
        encoding: u8,
    ) {
        let stats = &mut self.io.stats;
        if !self.config.upstream_repair.enabled {
            stats.dropped_publisher_rtx += 1;
            return;
        }
        let rtx_pt = packet.payload_type();
        let media_pt = self.endpoints.get(&from).and_then(|sender| {
            sender
                .link
                .codecs
                .iter()
                .find(|c| c.rtx_payload_type == Some(rtx_pt))
                .map(|c| c.payload_type)
        });
        let encoding_state = self
            .sources
            .get(&source_id)
            .and_then(|entry| entry.source.encodings.get(usize::from(encoding)));
        let (Some(media_pt), Some(encoding_state)) = (media_pt, encoding_state) else {
            stats.dropped_publisher_rtx += 1;
            return;
        };
        let mut scratch = std::mem::take(&mut self.rtx_scratch);
        match repair::unwrap_rtx(packet, encoding_state.ssrc, media_pt, &mut scratch) {
            RtxPayload::Padding => stats.dropped_publisher_rtx += 1,
            RtxPayload::Original(seq) => {
                let missing = encoding_state
                    .repair
                    .as_ref()
                    .is_some_and(|r| r.is_missing(seq));
                if !missing {
                    stats.publisher_rtx_duplicate += 1;
                } else if let Ok(original) = RtpPacket::parse(scratch.as_slice()) {
                    self.handle_media(now, from, &original, source_id, encoding, true);
                } else {
                    stats.dropped_malformed += 1;
                }
            }
        }
        self.rtx_scratch = scratch;
    }

    /// A media packet of `source_id`'s `encoding` (`repaired`: unwrapped from RTX).
    fn handle_media(
        &mut self,
        now: Instant,
        from: EndpointId,
        packet: &RtpPacket<&[u8]>,
        source_id: SourceId,
        encoding: u8,
        repaired: bool,
    ) {
        let Self {
            io,
            endpoints,
            sources,
            speakers,
            config,
            allocation_dirty,
            nack_scratch,
            ..
        } = self;
        let Some(sender) = endpoints.get(&from) else {
            io.stats.dropped_unknown_endpoint += 1;
            return;
        };
        let pt = packet.payload_type();
        let Some(codec) = sender.link.codecs.iter().find(|c| c.payload_type == pt) else {
            if sender
                .link
                .codecs
                .iter()
                .any(|c| c.rtx_payload_type == Some(pt))
            {
                io.stats.dropped_publisher_rtx += 1;
            } else {
                io.stats.dropped_unknown_stream += 1;
            }
            return;
        };
        let (codec_name, clock_rate) = (codec.name, codec.clock_rate);
        let Some(entry) = sources.get_mut(&source_id) else {
            io.stats.dropped_unknown_stream += 1;
            return;
        };
        if let Some(requester) = entry
            .source
            .encodings
            .get_mut(usize::from(encoding))
            .and_then(|e| e.repair.as_mut())
        {
            let seq = packet.sequence_number();
            let arrival = if repaired {
                requester.on_repair(now, seq)
            } else {
                requester.on_packet(now, seq)
            };
            match arrival {
                // A new gap is asked for at once.
                Arrival::Newest { gap } if gap > 0 => request_repairs(
                    io,
                    now,
                    from,
                    sender.node_ssrc,
                    packet.ssrc(),
                    requester,
                    nack_scratch,
                ),
                Arrival::Filled if repaired => io.stats.publisher_rtx_recovered += 1,
                _ => {}
            }
        }
        let dependency = sender_extensions_ref(&sender.link.extensions, packet);
        let Ok((mut info, dimensions)) = inspect(
            packet,
            codec_name,
            clock_rate,
            encoding,
            dependency,
            &mut entry.source.dependency_reader,
        ) else {
            io.stats.dropped_malformed += 1;
            return;
        };
        let sender_extensions = sender.link.extensions.clone();
        let sender_node_ssrc = sender.node_ssrc;
        if entry.source.record(now, &mut info, dimensions, packet) {
            *allocation_dirty = true;
        }
        if codec_name == CodecName::Opus {
            let level = sender_extensions
                .get(packet, ExtensionKind::AudioLevel)
                .and_then(|v| AudioLevel::parse(v).ok())
                .map(|l| l.level);
            if let Some(level) = level {
                speakers.audio_level(now, from, level);
            }
            let admit = !config.silence_suppression
                || entry
                    .silence
                    .admit(now, level, speakers.is_active_speaker(now, from));
            if !admit {
                io.stats.silence_suppressed += 1;
            }
            let SourceEntry {
                source,
                projections,
                ..
            } = entry;
            for projection in projections.iter_mut() {
                let Some(receiver) = endpoints.get_mut(&projection.receiver) else {
                    continue;
                };
                if admit && receiver.audio_subscription.wants(&source.name) {
                    projection.forward(
                        now,
                        &info,
                        info.marker,
                        packet,
                        &sender_extensions,
                        &mut receiver.link,
                        io,
                    );
                } else {
                    projection.skip(&info, packet);
                }
            }
            return;
        }
        let SourceEntry {
            source,
            projections,
            ..
        } = entry;
        let scheme = source.scheme;
        let structure = source.dependency_reader.structure();
        let mut wants_keyframe = false;
        for projection in projections.iter_mut() {
            match projection.select(&info, scheme, structure) {
                Verdict::Forward { marker } => {
                    let Some(receiver) = endpoints.get_mut(&projection.receiver) else {
                        continue;
                    };
                    projection.forward(
                        now,
                        &info,
                        marker,
                        packet,
                        &sender_extensions,
                        &mut receiver.link,
                        io,
                    );
                }
                Verdict::Late => io.stats.dropped_late += 1,
                Verdict::Drop {
                    intentional,
                    wants_keyframe: wants,
                } => {
                    if intentional {
                        io.stats.dropped_thinned += 1;
                        projection.skip(&info, packet);
                    }
                    wants_keyframe |= wants;
                }
            }
        }
        if wants_keyframe {
            if let Some(ssrc) =
                source.keyframe_request(now, encoding, config.keyframe_request_interval)
            {
                io.pli(from, sender_node_ssrc, ssrc);
            }
        }
    }

    /// A decrypted (compound) RTCP packet from `from`.
    pub fn handle_rtcp(&mut self, now: Instant, from: EndpointId, compound: &[u8]) {
        if !self.endpoints.contains_key(&from) {
            self.io.stats.dropped_unknown_endpoint += 1;
            return;
        }
        for item in RtcpCompound::new(compound) {
            let Ok(view) = item else {
                self.io.stats.dropped_rtcp += 1;
                break;
            };
            match view.kind() {
                RtcpKind::SenderReport => {
                    if let (Some(ssrc), Some(info)) = (view.sender_ssrc(), view.sender_info()) {
                        self.translate_sender_report(now, from, ssrc, info.ntp_time, info.rtp_time);
                    }
                    self.report_blocks(now, from, &view);
                }
                RtcpKind::ReceiverReport => self.report_blocks(now, from, &view),
                RtcpKind::TransportCc => {
                    let moved = self
                        .endpoints
                        .get_mut(&from)
                        .and_then(|e| e.link.bandwidth.as_mut())
                        .is_some_and(|b| b.on_feedback(now, view.bytes()));
                    if moved {
                        self.allocation_dirty = true;
                    }
                }
                RtcpKind::Pli => {
                    self.io.stats.plis_received += 1;
                    if let Some(ssrc) = view.media_ssrc() {
                        self.receiver_keyframe_request(now, from, ssrc);
                    }
                }
                RtcpKind::Fir => {
                    self.io.stats.firs_received += 1;
                    let fci = view.payload().get(8..).unwrap_or_default();
                    for entry in fci.chunks_exact(8) {
                        if let Some(ssrc) = entry.first_chunk::<4>() {
                            self.receiver_keyframe_request(now, from, u32::from_be_bytes(*ssrc));
                        }
                    }
                }
                RtcpKind::Nack => {
                    self.io.stats.nacks_received += 1;
                    let sequence_numbers: Vec<u16> = view.nack_pairs().sequence_numbers().collect();
                    self.io.stats.nacked_packets += sequence_numbers.len() as u64;
                    if let Some(ssrc) = view.media_ssrc() {
                        self.receiver_nack(now, from, ssrc, &sequence_numbers);
                    }
                }
                _ => {}
            }
        }
    }

    fn translate_sender_report(
        &mut self,
        now: Instant,
        from: EndpointId,
        ssrc: u32,
        ntp: u64,
        rtp_time: u32,
    ) {
        let Some(endpoint) = self.endpoints.get(&from) else {
            return;
        };
        let Some(SsrcRoute::Media { source, .. }) = endpoint.routes.get(&ssrc).copied() else {
            return;
        };
        let Some(entry) = self.sources.get_mut(&source) else {
            return;
        };
        for projection in &mut entry.projections {
            let to = projection.receiver;
            projection.sender_report(now, ssrc, ntp, rtp_time, &mut self.io, to);
        }
    }

    fn report_blocks(
        &mut self,
        now: Instant,
        from: EndpointId,
        view: &relais_rtp::rtcp::RtcpPacketView<'_>,
    ) {
        for block in view.report_blocks() {
            let ssrc = block.ssrc();
            for entry in self.sources.values_mut() {
                if entry.source.primary_ssrc() != Some(ssrc) {
                    continue;
                }
                if let Some(projection) = entry.projections.iter_mut().find(|p| p.receiver == from)
                {
                    projection.report_block(now, &block, &mut self.io.stats);
                }
            }
        }
    }

    fn projection_of(&mut self, receiver: EndpointId, out_ssrc: u32) -> Option<SourceId> {
        self.sources.iter().find_map(|(id, entry)| {
            (entry.source.kind == MediaKind::Video
                && entry.source.primary_ssrc() == Some(out_ssrc)
                && entry.projections.iter().any(|p| p.receiver == receiver))
            .then_some(*id)
        })
    }

    fn receiver_keyframe_request(&mut self, now: Instant, from: EndpointId, ssrc: u32) {
        let Some(source_id) = self.projection_of(from, ssrc) else {
            self.io.stats.dropped_rtcp += 1;
            return;
        };
        let Some(entry) = self.sources.get_mut(&source_id) else {
            return;
        };
        let owner = entry.source.owner;
        let encoding = entry
            .projections
            .iter()
            .find(|p| p.receiver == from)
            .and_then(|p| p.target())
            .map(|t| match entry.source.scheme {
                source::LayerScheme::Simulcast => t.encoding,
                source::LayerScheme::Svc => 0,
            });
        let Some(encoding) = encoding else {
            return;
        };
        let Some(node_ssrc) = self.endpoints.get(&owner).map(|e| e.node_ssrc) else {
            return;
        };
        if let Some(media_ssrc) =
            entry
                .source
                .keyframe_request(now, encoding, self.config.keyframe_request_interval)
        {
            self.io.pli(owner, node_ssrc, media_ssrc);
        }
    }

    fn receiver_nack(
        &mut self,
        now: Instant,
        from: EndpointId,
        ssrc: u32,
        sequence_numbers: &[u16],
    ) {
        let Some(source_id) = self.projection_of(from, ssrc) else {
            self.io.stats.dropped_rtcp += 1;
            return;
        };
        let Some(entry) = self.sources.get_mut(&source_id) else {
            return;
        };
        let owner = entry.source.owner;
        // NACKs are rare next to media: copying the sender's codecs beats juggling borrows.
        let Some((codecs, extensions)) = self
            .endpoints
            .get(&owner)
            .map(|s| (s.link.codecs.clone(), s.link.extensions.clone()))
        else {
            return;
        };
        let Some(receiver) = self.endpoints.get_mut(&from) else {
            return;
        };
        let SourceEntry {
            source,
            projections,
            ..
        } = entry;
        let Some(projection) = projections.iter_mut().find(|p| p.receiver == from) else {
            return;
        };
        for &seq in sequence_numbers {
            projection.retransmit(
                now,
                seq,
                &source.cache,
                &codecs,
                &extensions,
                &mut receiver.link,
                &mut self.io,
            );
        }
    }

    /// Drives timers: rate windows, allocation upkeep, dominant speaker, REMB, keyframe
    /// request retries.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        self.bandwidth_timers(now);
        self.speakers.handle_timeout(now);
        while let Some(event) = self.speakers.poll_event() {
            let _ = event;
            self.announce_dominant_speaker();
            self.allocation_dirty = true;
        }
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            for entry in self.sources.values_mut() {
                if entry.source.tick(now) {
                    self.allocation_dirty = true;
                }
            }
            self.remb(now);
        }
        if self.allocation_dirty {
            self.reallocate(now);
        }
        if now >= self.next_keyframe_retry {
            self.next_keyframe_retry = now + KEYFRAME_RETRY_INTERVAL;
            self.retry_keyframes(now);
            self.connectivity(now);
        }
        self.retry_repairs(now);
    }

    /// NACKs again what senders' video still misses, and gives up what is too old.
    fn retry_repairs(&mut self, now: Instant) {
        for entry in self.sources.values_mut() {
            let owner = entry.source.owner;
            let Some(node_ssrc) = self.endpoints.get(&owner).map(|e| e.node_ssrc) else {
                continue;
            };
            for encoding in &mut entry.source.encodings {
                let ssrc = encoding.ssrc;
                let Some(requester) = encoding.repair.as_mut() else {
                    continue;
                };
                if requester.poll_timeout().is_some_and(|due| due <= now) {
                    request_repairs(
                        &mut self.io,
                        now,
                        owner,
                        node_ssrc,
                        ssrc,
                        requester,
                        &mut self.nack_scratch,
                    );
                }
            }
        }
    }

    /// Pacers, probes, ConnectionStats and the TWCC feedback to senders.
    fn bandwidth_timers(&mut self, now: Instant) {
        // By index: nothing below changes `order`, and cloning it allocated on every call.
        for index in 0..self.order.len() {
            let Some(&id) = self.order.get(index) else {
                break;
            };
            let Some(endpoint) = self.endpoints.get_mut(&id) else {
                continue;
            };
            if let Some(twcc) = endpoint.twcc.as_mut() {
                let media_ssrc = endpoint
                    .sources
                    .iter()
                    .filter_map(|s| self.sources.get(s))
                    .find_map(|e| e.source.primary_ssrc())
                    .unwrap_or(0);
                while let Some(feedback) = twcc.poll_feedback(now, endpoint.node_ssrc, media_ssrc) {
                    self.io.push_rtcp(id, feedback);
                }
            }
            endpoint.link.release(now, &mut self.io);
            let Some(bandwidth) = endpoint.link.bandwidth.as_mut() else {
                continue;
            };
            if now >= bandwidth.next_stats {
                bandwidth.next_stats = now + bandwidth::CONNECTION_STATS_INTERVAL;
                let estimate = bandwidth.estimate_bps();
                self.io.event(
                    id,
                    ConferenceEvent::ConnectionStats {
                        estimated_downlink_bps: estimate,
                    },
                );
            }
            // The search below walks every video source's projections: only when probing.
            if !bandwidth.probe_due(now) {
                continue;
            }
            // Probe clusters: padding on the RTX SSRC of a video stream the receiver gets
            // (clusters wait until there is one: padding needs a stream to ride on).
            let Some(projection) = self
                .sources
                .values_mut()
                .filter(|e| e.source.kind == MediaKind::Video)
                .flat_map(|e| e.projections.iter_mut())
                .find(|p| p.receiver == id && p.can_pad())
            else {
                continue;
            };
            // Bounded per call: a prober that keeps asking at the same instant cannot spin.
            let mut budget = MAX_PROBE_PACKETS_PER_CALL;
            while let Some((cluster, bytes)) = endpoint
                .link
                .bandwidth
                .as_mut()
                .filter(|_| budget > 0)
                .and_then(|b| b.poll_probe(now))
            {
                let mut left = bytes;
                while left > 0 && budget > 0 {
                    budget -= 1;
                    let size = left.min(255);
                    left -= size;
                    let Some((packet, transport_seq)) =
                        projection.probe_padding(&mut endpoint.link, size, &mut self.io)
                    else {
                        break;
                    };
                    if let Some(bandwidth) = endpoint.link.bandwidth.as_mut() {
                        bandwidth.on_sent_packet(now, transport_seq, packet.len(), Some(cluster));
                    }
                    self.io.stats.probe_packets += 1;
                    self.io.push_rtp(id, packet);
                }
            }
        }
    }

    /// Tells the others when an endpoint's media stops or resumes. Only endpoints that
    /// publish sources and sent media once are watched (a listener is not "inactive").
    fn connectivity(&mut self, now: Instant) {
        let mut changes = Vec::new();
        for endpoint in self.endpoints.values_mut() {
            let Some(last) = endpoint.last_media else {
                continue;
            };
            if endpoint.sources.is_empty() {
                continue;
            }
            let active = now.saturating_duration_since(last) < MEDIA_INACTIVITY_TIMEOUT;
            if active != endpoint.announced_active {
                endpoint.announced_active = active;
                changes.push((endpoint.link.endpoint, endpoint.name.clone(), active));
            }
        }
        for (id, name, active) in changes {
            for to in self.order.iter().filter(|e| **e != id) {
                self.io.event(
                    *to,
                    ConferenceEvent::EndpointConnectivity {
                        endpoint: name.clone(),
                        active,
                    },
                );
            }
        }
    }

    /// When [`Conference::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.next_tick.min(self.next_keyframe_retry);
        if let Some(t) = self.speakers.poll_timeout() {
            next = next.min(t);
        }
        for endpoint in self.endpoints.values() {
            if let Some(bandwidth) = &endpoint.link.bandwidth {
                if let Some(t) = bandwidth.poll_timeout(self.last_now) {
                    next = next.min(t);
                }
                next = next.min(bandwidth.next_stats);
            }
            if let Some(t) = endpoint.twcc.as_ref().and_then(|t| t.poll_timeout()) {
                next = next.min(t);
            }
        }
        let repairs = self
            .sources
            .values()
            .flat_map(|e| e.source.encodings.iter())
            .filter_map(|e| e.repair.as_ref()?.poll_timeout());
        for t in repairs {
            next = next.min(t);
        }
        if self.allocation_dirty {
            next = next.min(self.last_now);
        }
        Some(next)
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<ConferenceOutput> {
        self.io.out.pop_front()
    }

    /// Returns a sent output buffer to the pool.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        self.io.recycle(buffer);
    }

    /// Counters.
    pub fn stats(&self) -> ForwarderStats {
        self.io.stats
    }

    /// What an endpoint whose bridge channel opens only now has missed: the last
    /// ForwardedSources announced to it, the current dominant speaker and the last
    /// SenderSourceConstraints for each of its video sources. All are otherwise sent only
    /// when they change, so a channel that opens after the first announcement would wait
    /// for the next change.
    pub fn catch_up_events(&self, endpoint: EndpointId) -> Vec<ConferenceEvent> {
        let mut events = Vec::with_capacity(2);
        let Some(receiver) = self.endpoints.get(&endpoint) else {
            return events;
        };
        if !receiver.forwarded.is_empty() {
            events.push(ConferenceEvent::ForwardedSources {
                sources: receiver.forwarded.clone(),
            });
        }
        events.extend(self.dominant_speaker_event());
        for entry in receiver
            .sources
            .iter()
            .filter_map(|id| self.sources.get(id))
        {
            if let Some(max_height) = entry.announced_height {
                events.push(ConferenceEvent::SenderSourceConstraints {
                    source: entry.source.name.clone(),
                    max_height,
                });
            }
        }
        events
    }

    fn dominant_speaker_event(&self) -> Option<ConferenceEvent> {
        let speaker = self
            .speakers
            .dominant_speaker()
            .and_then(|id| self.endpoints.get(&id))
            .map(|e| e.name.clone())?;
        let previous: Vec<String> = self
            .speakers
            .previous_speakers(10)
            .into_iter()
            .filter_map(|id| self.endpoints.get(&id).map(|e| e.name.clone()))
            .collect();
        Some(ConferenceEvent::DominantSpeaker {
            speaker,
            previous,
            silence: self.speakers.is_silent(),
        })
    }

    fn announce_dominant_speaker(&mut self) {
        let Some(event) = self.dominant_speaker_event() else {
            return;
        };
        for id in &self.order {
            self.io.event(*id, event.clone());
        }
    }

    fn remb(&mut self, now: Instant) {
        for endpoint in self.endpoints.values_mut() {
            if now < endpoint.next_remb {
                continue;
            }
            endpoint.next_remb = now + self.config.sender_remb_interval;
            let ssrcs: Vec<u32> = endpoint
                .sources
                .iter()
                .filter_map(|id| self.sources.get(id))
                .filter(|e| e.source.kind == MediaKind::Video)
                .flat_map(|e| e.source.encodings.iter().map(|enc| enc.ssrc))
                .collect();
            if ssrcs.is_empty() {
                continue;
            }
            if let Ok(remb) =
                feedback::remb(endpoint.node_ssrc, self.config.sender_remb_bps, &ssrcs)
            {
                self.io
                    .rtcp(endpoint.link.endpoint, &RtcpPacket::from(remb));
            }
        }
    }

    fn retry_keyframes(&mut self, now: Instant) {
        for entry in self.sources.values_mut() {
            let waiting: Vec<u8> = entry
                .projections
                .iter()
                .filter_map(|p| p.waiting_for_keyframe())
                .collect();
            let owner = entry.source.owner;
            let Some(node_ssrc) = self.endpoints.get(&owner).map(|e| e.node_ssrc) else {
                continue;
            };
            for encoding in waiting {
                let encoding = match entry.source.scheme {
                    source::LayerScheme::Simulcast => encoding,
                    source::LayerScheme::Svc => 0,
                };
                if let Some(ssrc) = entry.source.keyframe_request(
                    now,
                    encoding,
                    self.config.keyframe_request_interval,
                ) {
                    self.io.pli(owner, node_ssrc, ssrc);
                }
            }
        }
    }

    /// Runs the allocation of every receiver and applies it.
    fn reallocate(&mut self, now: Instant) {
        self.allocation_dirty = false;
        let speaker_order: Vec<EndpointId> = self.speakers.speaker_order().collect();
        // Layers of every video source, computed once for all receivers.
        let mut video: Vec<(SourceId, Vec<LayerDescription>)> = Vec::new();
        let mut ids: Vec<SourceId> = self
            .sources
            .iter()
            .filter(|(_, e)| e.source.kind == MediaKind::Video)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        for id in ids {
            if let Some(entry) = self.sources.get(&id) {
                entry.source.layers(now, &mut self.layer_scratch);
                video.push((id, self.layer_scratch.clone()));
            }
        }
        let mut max_heights: HashMap<SourceId, i32> = HashMap::new();
        for receiver_id in self.order.clone() {
            let available = self
                .endpoints
                .get_mut(&receiver_id)
                .and_then(|r| r.link.bandwidth.as_mut())
                .map(|b| b.allocation_bps());
            let Some(receiver) = self.endpoints.get(&receiver_id) else {
                continue;
            };
            let descriptions: Vec<SourceDescription<'_>> = video
                .iter()
                .filter_map(|(id, layers)| {
                    let entry = self.sources.get(id)?;
                    Some(SourceDescription {
                        name: &entry.source.name,
                        owner: entry.source.owner,
                        video_type: entry.source.video_type,
                        layers,
                    })
                })
                .collect();
            let result = allocation::allocate(
                receiver_id,
                &receiver.constraints,
                &descriptions,
                &speaker_order,
                available,
            );
            if result.ideal_bps > result.target_bps {
                if let Some(bandwidth) = self
                    .endpoints
                    .get_mut(&receiver_id)
                    .and_then(|r| r.link.bandwidth.as_mut())
                {
                    bandwidth.want(now, result.ideal_bps);
                }
            }
            let mut forwarded = Vec::new();
            let mut targets: Vec<(SourceId, Option<LayerTarget>, Option<i32>)> = Vec::new();
            for (id, layers) in &video {
                let Some(entry) = self.sources.get(id) else {
                    continue;
                };
                if entry.source.owner == receiver_id {
                    continue;
                }
                let decision = result.sources.iter().find(|a| a.name == entry.source.name);
                let target = decision
                    .and_then(|a| a.layer)
                    .and_then(|index| layers.get(index))
                    .map(|l| LayerTarget {
                        encoding: l.encoding,
                        temporal: l.temporal,
                    });
                let wanted_height = decision
                    .and_then(|a| sender_height(a.effective_constraints.max_height, layers));
                if target.is_some() {
                    forwarded.push(entry.source.name.clone());
                }
                targets.push((*id, target, wanted_height));
            }
            for (id, target, wanted_height) in targets {
                let Some(entry) = self.sources.get_mut(&id) else {
                    continue;
                };
                if let Some(height) = wanted_height {
                    let max = max_heights.entry(id).or_insert(0);
                    *max = (*max).max(height);
                }
                match entry
                    .projections
                    .iter_mut()
                    .find(|p| p.receiver == receiver_id)
                {
                    Some(projection) => {
                        if projection.target() != target {
                            projection.set_target(target);
                        }
                    }
                    None => {
                        if target.is_some() {
                            if let Some(ssrc) = entry.source.primary_ssrc() {
                                let mut projection = Projection::new(
                                    receiver_id,
                                    ssrc,
                                    entry.source.primary_rtx_ssrc(),
                                );
                                projection.set_target(target);
                                entry.projections.push(projection);
                            }
                        }
                    }
                }
            }
            if let Some(receiver) = self.endpoints.get_mut(&receiver_id) {
                if receiver.forwarded != forwarded {
                    receiver.forwarded = forwarded.clone();
                    self.io.event(
                        receiver_id,
                        ConferenceEvent::ForwardedSources { sources: forwarded },
                    );
                }
            }
        }
        for (id, entry) in self.sources.iter_mut() {
            if entry.source.kind != MediaKind::Video {
                continue;
            }
            let height = max_heights.get(id).copied().unwrap_or(0);
            if entry.announced_height != Some(height) {
                entry.announced_height = Some(height);
                self.io.event(
                    entry.source.owner,
                    ConferenceEvent::SenderSourceConstraints {
                        source: entry.source.name.clone(),
                        max_height: height,
                    },
                );
            }
        }
    }
}

/// The height a receiver's effective constraint asks the sender of a source to encode up to,
/// over all the source's layers, sending or not (`None`: it asks for nothing). From the
/// constraint, not from the allocated layer: the allocator only picks layers that are
/// sending, so a sender told to stop a layer would otherwise never be asked for it again.
/// The limit is soft, as in the allocation: below the lowest layer it is the lowest layer.
fn sender_height(max_height: i32, layers: &[LayerDescription]) -> Option<i32> {
    let lowest = layers.iter().map(|l| i32::from(l.height)).min()?;
    let highest = layers.iter().map(|l| i32::from(l.height)).max()?;
    match max_height {
        0 => None,
        unlimited if unlimited < 0 => Some(highest),
        limit => Some(limit.clamp(lowest, highest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(height: u16, active: bool) -> LayerDescription {
        LayerDescription {
            encoding: 0,
            temporal: 0,
            height,
            frame_rate: 30.0,
            bitrate_bps: 0,
            active,
        }
    }

    #[test]
    fn a_stopped_layer_is_still_asked_for() {
        // The camera stopped 360p and 720p (nobody watched them); a receiver now wants 720p.
        let layers = [layer(180, true), layer(360, false), layer(720, false)];
        assert_eq!(sender_height(720, &layers), Some(720));
        assert_eq!(sender_height(-1, &layers), Some(720));
        assert_eq!(sender_height(500, &layers), Some(500));
        // Soft limit: never below the lowest layer; 0 asks for nothing.
        assert_eq!(sender_height(90, &layers), Some(180));
        assert_eq!(sender_height(0, &layers), None);
        assert_eq!(sender_height(720, &[]), None);
    }
}
