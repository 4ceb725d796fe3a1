//! `--replay FILE`: media sources that replay the RTP streams of a packet capture.
//!
//! This module owns reading a pcap/pcapng of a real client's call (typically `tshark -i lo`
//! while a browser publishes to relais; `loadtest/scripts/capture-publish` makes one) into
//! per-stream packet lists ([`ReplayCapture`]), and replaying them as a participant's
//! sources ([`ReplaySource`]).
//!
//! Only what SRTP leaves in the clear is used: the RTP header (SSRC, sequence number,
//! timestamp, marker, payload type, header extensions) and each datagram's size and capture
//! time. No keys are exported and nothing is decrypted; the payload bytes are synthesised
//! (an Opus TOC or a VP8 descriptor and frame header, then filler), sized like the original.
//!
//! Reading, in order:
//! 1. Container and network: pcap or pcapng; link types Ethernet, Linux cooked
//!    (SLL, SLL2), raw IPv4/IPv6 and BSD loopback; IPv4/IPv6 and UDP parsed by hand. Sizes
//!    come from the UDP header, so a capture truncated with a snap length replays full-size.
//! 2. Demultiplexing: RTP by RFC 7983's first byte 128–191 unless its packet type
//!    is RTCP's 192–223; RTCP, STUN and DTLS are skipped.
//! 3. The flow: the UDP flow (source and destination address and port) with the most RTP
//!    packets, optionally only toward [`ReplayOptions::destination_port`] (the SFU's media
//!    port). The first packet of a replayed stream is time zero.
//! 4. Streams, by SSRC, classified as in [`ReplayOptions`]: audio and video by their clock
//!    (RTP timestamp units per second of capture time: ~48 000 for Opus, 90 000 for video),
//!    or by payload types the caller names. Padding-only streams (bandwidth probes) and
//!    streams of a second video payload type (RTX) are skipped: libwebrtc sends RTX with its
//!    own payload type, and probes with the padding bit set.
//! 5. Payload length = UDP payload − RTP header − SRTP auth tag (SRTP padding is encrypted
//!    and stays counted). The tag is 16 bytes for AEAD_AES_128_GCM and 10 for
//!    AES_CM_128_HMAC_SHA1_80; unless [`ReplayOptions::srtp_tag_len`] says which, it is
//!    GCM's unless a packet of the flow is too short to hold a GCM tag and a payload byte,
//!    then HMAC's. Chromium publishing to relais negotiates HMAC_SHA1_80 (relais is the
//!    DTLS server there and takes the client's order, which lists it first), and its Opus
//!    DTX packets, 1–3 bytes of payload, show it.
//! 6. Keyframes, from sizes alone (the VP8 payload header is encrypted): a frame (the packets
//!    of one RTP timestamp) at least [`KEYFRAME_SIZE_FACTOR`] times the median of the
//!    [`KEYFRAME_WINDOW`] frames on each side of it is taken for a keyframe. Keyframes are
//!    several times a delta frame while the bitrate changes slowly around them, so a local
//!    median tracks the ramp-up of a starting encoder where a global one would not.

mod pcap;
mod rtp;
mod source;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use relais_rtp::extensions::AudioLevel;

pub use pcap::FrameCounts;
pub use source::{ReplayConfig, ReplayLayer, ReplaySource, LOOP_GAP};

use relais_rtp::demux::{classify, DatagramKind};
use rtp::ClearHeader;

/// SRTP authentication tag length of AEAD_AES_128_GCM (RFC 7714), the profile relais
/// prefers when it chooses.
pub const GCM_TAG_LEN: usize = 16;
/// SRTP authentication tag length of AES_CM_128_HMAC_SHA1_80 (RFC 3711), what Chromium
/// lists first and so gets when relais is the DTLS server.
pub const HMAC_SHA1_80_TAG_LEN: usize = 10;
/// Largest capture file read: the whole file is held in memory while it is parsed.
pub const MAX_CAPTURE_BYTES: u64 = 1 << 30;
/// A frame this many times the local median frame size is taken for a keyframe.
pub const KEYFRAME_SIZE_FACTOR: f64 = 2.0;
/// Frames on each side of a frame whose sizes make the local median.
pub const KEYFRAME_WINDOW: usize = 8;
/// Streams with fewer packets are skipped (stray packets, a stream cut at the capture's end).
pub const MIN_STREAM_PACKETS: usize = 10;
/// Share of padding-bit packets above which a stream is a bandwidth probe.
const PADDING_STREAM_SHARE: f64 = 0.5;
/// A stream's timestamp clock is estimated only over at least this much capture time.
const MIN_CLOCK_SPAN: Duration = Duration::from_millis(200);
/// Estimated clocks in this range (Hz) are video's 90 kHz.
const VIDEO_CLOCK_RANGE: std::ops::RangeInclusive<f64> = 60_000.0..=120_000.0;
/// Estimated clocks in this range (Hz) are an audio codec's.
const AUDIO_CLOCK_RANGE: std::ops::RangeInclusive<f64> = 6_000.0..=60_000.0;
/// Audio clock rates an estimate is rounded to.
const AUDIO_CLOCKS: [u32; 6] = [8_000, 16_000, 24_000, 32_000, 44_100, 48_000];
/// RTP clock rate of video.
const VIDEO_CLOCK: u32 = 90_000;
/// An extension id is the audio level when at least this share of audio packets carry it.
const AUDIO_LEVEL_PRESENCE: f64 = 0.8;

/// Why a capture could not be read or replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be opened or read.
    #[error("cannot read the capture file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than [`MAX_CAPTURE_BYTES`].
    #[error("capture file of {0} bytes is larger than {MAX_CAPTURE_BYTES} bytes")]
    TooLarge(u64),
    /// Neither the pcap nor the pcapng magic number.
    #[error("not a pcap or pcapng file")]
    UnknownFormat,
    /// The file ends inside a record.
    #[error("capture file truncated after {frames} frames")]
    Truncated {
        /// Complete frames before the cut.
        frames: u64,
    },
    /// A record of the container is invalid.
    #[error("malformed capture file after {frames} frames: {reason}")]
    Malformed {
        /// Frames read before the bad record.
        frames: u64,
        /// What is wrong (from the container reader).
        reason: String,
    },
    /// No RTP packet in the capture (or none toward the requested port).
    #[error("no RTP packets{}", port.map(|p| format!(" toward port {p}")).unwrap_or_default())]
    NoRtp {
        /// The requested destination port.
        port: Option<u16>,
    },
    /// RTP was found, but no stream qualifies as audio or video.
    #[error("no audio or video stream in the capture's RTP flow ({skipped} streams skipped)")]
    NoStreams {
        /// Streams skipped by the heuristics.
        skipped: usize,
    },
    /// The replay configuration is unusable.
    #[error("invalid replay configuration: {0}")]
    InvalidConfig(&'static str),
}

/// How to read a capture. `Default` suits a Chromium capture of a publish to relais.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// SRTP authentication tag length subtracted from each datagram: [`GCM_TAG_LEN`] or
    /// [`HMAC_SHA1_80_TAG_LEN`]; `None`: from the packet sizes (see the module docs).
    pub srtp_tag_len: Option<usize>,
    /// Only RTP toward this UDP port (the SFU's media port); `None`: the flow with the most
    /// RTP packets, whatever its port.
    pub destination_port: Option<u16>,
    /// Payload types that are audio. Naming any audio or video payload type turns the clock
    /// heuristic off: streams of other payload types are then skipped.
    pub audio_payload_types: Vec<u8>,
    /// Payload types that are video (see `audio_payload_types`).
    pub video_payload_types: Vec<u8>,
    /// The audio level extension's id (RFC 6464); `None`: the one-byte extension carried
    /// by at least 80 % of the audio packets with values that change (mid is constant).
    pub audio_level_extension_id: Option<u8>,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// An audio stream (Opus in a browser capture).
    Audio,
    /// A video stream (one simulcast layer).
    Video,
}

/// One RTP packet of a captured stream, as far as SRTP lets it be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayPacket {
    /// Capture time since the first packet of the replayed streams.
    pub at: Duration,
    /// Original RTP sequence number.
    pub sequence_number: u16,
    /// Original RTP timestamp.
    pub timestamp: u32,
    /// Original marker bit.
    pub marker: bool,
    /// Payload bytes: UDP payload minus RTP header minus SRTP tag.
    pub payload_len: u16,
    /// The packet's RFC 6464 audio level (audio streams whose level extension was found).
    pub audio_level: Option<AudioLevel>,
    /// Whether the packet opens a frame: its timestamp differs from the previous packet's
    /// (or it is the stream's first packet).
    pub frame_start: bool,
    /// Whether the packet opens a frame the size heuristic takes for a keyframe.
    pub keyframe: bool,
    /// Payload bytes of the frame the packet belongs to (all its packets).
    pub frame_bytes: u32,
}

/// One SSRC's packets in capture order.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayStream {
    /// Audio or video.
    pub kind: StreamKind,
    /// The SSRC in the capture.
    pub ssrc: u32,
    /// The payload type in the capture (the most frequent one of the stream).
    pub payload_type: u8,
    /// RTP clock rate: 90 000 for video, the audio rate the timestamps suggest.
    pub clock_rate: u32,
    /// The packets, in capture order.
    pub packets: Vec<ReplayPacket>,
}

impl ReplayStream {
    /// Sum of the payload lengths.
    pub fn payload_bytes(&self) -> u64 {
        self.packets.iter().map(|p| u64::from(p.payload_len)).sum()
    }

    /// Capture time from the stream's first packet to its last.
    pub fn span(&self) -> Duration {
        match (self.packets.first(), self.packets.last()) {
            (Some(first), Some(last)) => last.at.saturating_sub(first.at),
            _ => Duration::ZERO,
        }
    }

    /// Average payload bitrate over the stream's span (0 for a span under a millisecond).
    pub fn bitrate_bps(&self) -> u64 {
        let span = self.span().as_micros();
        if span < 1_000 {
            return 0;
        }
        u64::try_from(u128::from(self.payload_bytes()) * 8 * 1_000_000 / span).unwrap_or(u64::MAX)
    }

    /// Number of frames (packets opening one).
    pub fn frames(&self) -> usize {
        self.packets.iter().filter(|p| p.frame_start).count()
    }

    /// Number of frames taken for keyframes.
    pub fn keyframes(&self) -> usize {
        self.packets.iter().filter(|p| p.keyframe).count()
    }
}

/// Why a stream of the flow is not replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Fewer than [`MIN_STREAM_PACKETS`] packets.
    TooFewPackets,
    /// Most packets have the padding bit: bandwidth probing.
    Padding,
    /// A video stream with a payload type other than the main video one: RTX.
    Retransmission,
    /// Its payload type is not among those the caller named.
    OtherPayloadType,
    /// The timestamp clock is neither audio's nor video's (or too short to tell).
    UnknownClock,
    /// A second audio stream (only the one with the most packets is replayed).
    ExtraAudio,
}

/// A stream of the flow that is not replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedStream {
    /// Its SSRC.
    pub ssrc: u32,
    /// Its most frequent payload type.
    pub payload_type: u8,
    /// Its packet count.
    pub packets: usize,
    /// Why it is skipped.
    pub reason: SkipReason,
}

/// The replayable streams of a capture.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayCapture {
    /// The audio stream, if any.
    pub audio: Option<ReplayStream>,
    /// The video streams by increasing bitrate: simulcast layers, lowest first.
    pub video: Vec<ReplayStream>,
    /// Streams of the flow not replayed, and why.
    pub skipped: Vec<SkippedStream>,
    /// Destination port of the replayed flow.
    pub destination_port: u16,
    /// RTP packets in the replayed flow (kept and skipped streams).
    pub flow_rtp_packets: usize,
    /// What the container held.
    pub frames: FrameCounts,
    /// The audio level extension id used (found or given).
    pub audio_level_extension_id: Option<u8>,
    /// The SRTP tag length subtracted from each datagram (given or detected).
    pub srtp_tag_len: usize,
}

/// One RTP packet of the file, before the flow is chosen.
#[derive(Debug, Clone, Copy)]
struct RawRtp {
    time: Duration,
    length: usize,
    header: ClearHeader,
}

/// A UDP flow (both ends).
type FlowKey = (IpAddr, u16, IpAddr, u16);

impl ReplayCapture {
    /// Reads the capture at `path` (pcap or pcapng).
    pub fn read(path: impl AsRef<Path>, options: &ReplayOptions) -> Result<Self, ReplayError> {
        let size = std::fs::metadata(path.as_ref())?.len();
        if size > MAX_CAPTURE_BYTES {
            return Err(ReplayError::TooLarge(size));
        }
        let bytes = std::fs::read(path)?;
        Self::parse(&bytes, options)
    }

    /// Reads a capture held in memory.
    pub fn parse(bytes: &[u8], options: &ReplayOptions) -> Result<Self, ReplayError> {
        let mut flows: HashMap<FlowKey, Vec<RawRtp>> = HashMap::new();
        let mut flow_order: Vec<FlowKey> = Vec::new();
        let frames = pcap::for_each_datagram(bytes, |datagram| {
            if options
                .destination_port
                .is_some_and(|port| port != datagram.destination_port)
                || classify(datagram.payload) != DatagramKind::Rtp
            {
                return;
            }
            let Some(header) = rtp::parse(datagram.payload, datagram.length) else {
                return;
            };
            let key = (
                datagram.source,
                datagram.source_port,
                datagram.destination,
                datagram.destination_port,
            );
            let packets = flows.entry(key).or_insert_with(|| {
                flow_order.push(key);
                Vec::new()
            });
            packets.push(RawRtp {
                time: datagram.time,
                length: datagram.length,
                header,
            });
        })?;
        // The busiest flow; the earliest of equals, so the choice does not depend on hashing.
        let busiest = flow_order
            .iter()
            .enumerate()
            .max_by_key(|&(position, key)| {
                (
                    flows.get(key).map_or(0, Vec::len),
                    std::cmp::Reverse(position),
                )
            })
            .map(|(_, key)| *key);
        let Some(key) = busiest else {
            return Err(ReplayError::NoRtp {
                port: options.destination_port,
            });
        };
        let packets = flows.remove(&key).unwrap_or_default();
        let mut capture = analyse(&packets, options)?;
        capture.destination_port = key.3;
        capture.frames = frames;
        Ok(capture)
    }

    /// Capture time from the first packet of the replayed streams to their last.
    pub fn duration(&self) -> Duration {
        self.streams()
            .filter_map(|s| s.packets.last())
            .map(|p| p.at)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// The replayed streams: audio first, then video lowest first.
    pub fn streams(&self) -> impl Iterator<Item = &ReplayStream> + '_ {
        self.audio.iter().chain(&self.video)
    }
}

/// Per-SSRC facts the classification needs.
#[derive(Debug)]
struct SsrcPackets<'a> {
    ssrc: u32,
    packets: Vec<&'a RawRtp>,
    payload_type: u8,
    padding: usize,
}

impl SsrcPackets<'_> {
    /// RTP timestamp units per second of capture time, over the stream's span.
    fn clock_estimate(&self) -> Option<f64> {
        let (first, last) = (self.packets.first()?, self.packets.last()?);
        let span = last.time.checked_sub(first.time)?;
        if span < MIN_CLOCK_SPAN {
            return None;
        }
        // Forward distance: timestamps wrap, and a stream runs forward.
        let units = last.header.timestamp.wrapping_sub(first.header.timestamp);
        Some(f64::from(units) / span.as_secs_f64())
    }
}

fn analyse(packets: &[RawRtp], options: &ReplayOptions) -> Result<ReplayCapture, ReplayError> {
    let origin = packets.first().map_or(Duration::ZERO, |p| p.time);
    let mut by_ssrc: Vec<SsrcPackets<'_>> = Vec::new();
    let mut index: HashMap<u32, usize> = HashMap::new();
    for packet in packets {
        let slot = *index.entry(packet.header.ssrc).or_insert_with(|| {
            by_ssrc.push(SsrcPackets {
                ssrc: packet.header.ssrc,
                packets: Vec::new(),
                payload_type: 0,
                padding: 0,
            });
            by_ssrc.len() - 1
        });
        if let Some(stream) = by_ssrc.get_mut(slot) {
            stream.packets.push(packet);
            stream.padding += usize::from(packet.header.padding);
        }
    }
    for stream in &mut by_ssrc {
        let mut counts = [0usize; 128];
        for packet in &stream.packets {
            if let Some(count) = counts.get_mut(usize::from(packet.header.payload_type)) {
                *count += 1;
            }
        }
        stream.payload_type = (0u8..128)
            .max_by_key(|&pt| (counts.get(usize::from(pt)).copied(), std::cmp::Reverse(pt)))
            .unwrap_or(0);
    }

    let named = !options.audio_payload_types.is_empty() || !options.video_payload_types.is_empty();
    let mut skipped = Vec::new();
    let mut audio: Vec<(&SsrcPackets<'_>, u32)> = Vec::new();
    let mut video: Vec<&SsrcPackets<'_>> = Vec::new();
    for stream in &by_ssrc {
        let skip = |reason| SkippedStream {
            ssrc: stream.ssrc,
            payload_type: stream.payload_type,
            packets: stream.packets.len(),
            reason,
        };
        let count = stream.packets.len();
        if count < MIN_STREAM_PACKETS {
            skipped.push(skip(SkipReason::TooFewPackets));
            continue;
        }
        if stream.padding as f64 > count as f64 * PADDING_STREAM_SHARE {
            skipped.push(skip(SkipReason::Padding));
            continue;
        }
        let estimate = stream.clock_estimate();
        let kind = if named {
            if options.audio_payload_types.contains(&stream.payload_type) {
                Some(StreamKind::Audio)
            } else if options.video_payload_types.contains(&stream.payload_type) {
                Some(StreamKind::Video)
            } else {
                skipped.push(skip(SkipReason::OtherPayloadType));
                continue;
            }
        } else {
            match estimate {
                Some(hz) if VIDEO_CLOCK_RANGE.contains(&hz) => Some(StreamKind::Video),
                Some(hz) if AUDIO_CLOCK_RANGE.contains(&hz) => Some(StreamKind::Audio),
                _ => None,
            }
        };
        match kind {
            Some(StreamKind::Audio) => audio.push((stream, audio_clock(estimate))),
            Some(StreamKind::Video) => video.push(stream),
            None => skipped.push(skip(SkipReason::UnknownClock)),
        }
    }

    // One audio stream: the busiest.
    audio.sort_by_key(|(s, _)| std::cmp::Reverse(s.packets.len()));
    for (extra, _) in audio.iter().skip(1) {
        skipped.push(SkippedStream {
            ssrc: extra.ssrc,
            payload_type: extra.payload_type,
            packets: extra.packets.len(),
            reason: SkipReason::ExtraAudio,
        });
    }
    // Without named payload types, the video payload type is the one of most packets; the
    // video streams of another type are RTX (libwebrtc's retransmissions and probes).
    if !named {
        let mut per_type: HashMap<u8, usize> = HashMap::new();
        for stream in &video {
            *per_type.entry(stream.payload_type).or_default() += stream.packets.len();
        }
        let main = per_type
            .iter()
            .max_by_key(|&(&pt, &count)| (count, std::cmp::Reverse(pt)))
            .map(|(&pt, _)| pt);
        video.retain(|stream| {
            let keep = Some(stream.payload_type) == main;
            if !keep {
                skipped.push(SkippedStream {
                    ssrc: stream.ssrc,
                    payload_type: stream.payload_type,
                    packets: stream.packets.len(),
                    reason: SkipReason::Retransmission,
                });
            }
            keep
        });
    }

    let tag_len = options
        .srtp_tag_len
        .unwrap_or_else(|| detect_tag_len(packets));
    let audio_level_extension_id = options
        .audio_level_extension_id
        .or_else(|| audio.first().and_then(|(s, _)| find_audio_level_id(s)));
    let audio = audio.first().map(|&(stream, clock)| {
        build_stream(
            stream,
            StreamKind::Audio,
            clock,
            origin,
            tag_len,
            audio_level_extension_id,
        )
    });
    let mut video: Vec<ReplayStream> = video
        .iter()
        .map(|stream| {
            let mut built = build_stream(
                stream,
                StreamKind::Video,
                VIDEO_CLOCK,
                origin,
                tag_len,
                None,
            );
            mark_keyframes(&mut built.packets);
            built
        })
        .collect();
    video.sort_by_key(|stream| (stream.bitrate_bps(), stream.ssrc));
    // Time zero is the first replayed packet (a skipped stream, e.g. a probe, may start
    // earlier), so a source's first packet is due at its start.
    let mut audio = audio;
    let first = audio
        .iter()
        .chain(&video)
        .filter_map(|s| s.packets.first())
        .map(|p| p.at)
        .min()
        .unwrap_or(Duration::ZERO);
    for stream in audio.iter_mut().chain(video.iter_mut()) {
        for packet in &mut stream.packets {
            packet.at = packet.at.saturating_sub(first);
        }
    }
    if audio.is_none() && video.is_empty() {
        return Err(ReplayError::NoStreams {
            skipped: skipped.len(),
        });
    }
    Ok(ReplayCapture {
        audio,
        video,
        skipped,
        destination_port: 0,
        flow_rtp_packets: packets.len(),
        frames: FrameCounts::default(),
        audio_level_extension_id,
        srtp_tag_len: tag_len,
    })
}

/// GCM's tag, unless a packet leaves no room for it and one payload byte (every RTP packet
/// but padding has a payload byte; padding packets are left out).
fn detect_tag_len(packets: &[RawRtp]) -> usize {
    let shortest = packets
        .iter()
        .filter(|p| !p.header.padding)
        .map(|p| p.length.saturating_sub(p.header.header_len))
        .min();
    match shortest {
        Some(room) if room <= GCM_TAG_LEN => HMAC_SHA1_80_TAG_LEN,
        _ => GCM_TAG_LEN,
    }
}

/// The standard audio clock nearest the estimate; Opus's 48 kHz without one.
fn audio_clock(estimate: Option<f64>) -> u32 {
    let Some(hz) = estimate else { return 48_000 };
    AUDIO_CLOCKS
        .iter()
        .copied()
        .min_by(|a, b| {
            (f64::from(*a) - hz)
                .abs()
                .total_cmp(&(f64::from(*b) - hz).abs())
        })
        .unwrap_or(48_000)
}

/// The one-byte extension id carried by most audio packets (at least
/// [`AUDIO_LEVEL_PRESENCE`]) whose value changes: the audio level. mid is constant and
/// stops once the SFU's receiver reports arrive, so it fails both tests.
fn find_audio_level_id(stream: &SsrcPackets<'_>) -> Option<u8> {
    let mut seen: HashMap<u8, (usize, u8, bool)> = HashMap::new();
    for packet in &stream.packets {
        let header = &packet.header;
        let short = header
            .short_extensions
            .get(..usize::from(header.short_extension_count))
            .unwrap_or(&[]);
        for &(id, value) in short {
            let entry = seen.entry(id).or_insert((0, value, false));
            entry.0 += 1;
            entry.2 |= entry.1 != value;
        }
    }
    let needed = stream.packets.len() as f64 * AUDIO_LEVEL_PRESENCE;
    seen.into_iter()
        .filter(|&(_, (count, _, varies))| varies && count as f64 >= needed)
        .max_by_key(|&(id, (count, _, _))| (count, std::cmp::Reverse(id)))
        .map(|(id, _)| id)
}

fn build_stream(
    stream: &SsrcPackets<'_>,
    kind: StreamKind,
    clock_rate: u32,
    origin: Duration,
    tag_len: usize,
    audio_level_id: Option<u8>,
) -> ReplayStream {
    let mut previous_at = Duration::ZERO;
    let mut previous_timestamp = None;
    let packets = stream
        .packets
        .iter()
        .map(|raw| {
            let header = &raw.header;
            // Captures are in time order per interface; clamp so a merged file's stray
            // out-of-order stamp cannot make time run backwards.
            let at = raw.time.saturating_sub(origin).max(previous_at);
            previous_at = at;
            let payload = raw
                .length
                .saturating_sub(header.header_len)
                .saturating_sub(tag_len);
            let frame_start = previous_timestamp != Some(header.timestamp);
            previous_timestamp = Some(header.timestamp);
            ReplayPacket {
                at,
                sequence_number: header.sequence_number,
                timestamp: header.timestamp,
                marker: header.marker,
                payload_len: u16::try_from(payload).unwrap_or(u16::MAX),
                audio_level: audio_level_id
                    .and_then(|id| header.short_extension(id))
                    .and_then(|value| AudioLevel::parse(&[value]).ok()),
                frame_start,
                keyframe: false,
                frame_bytes: 0,
            }
        })
        .collect();
    let mut built = ReplayStream {
        kind,
        ssrc: stream.ssrc,
        payload_type: stream.payload_type,
        clock_rate,
        packets,
    };
    fill_frame_bytes(&mut built.packets);
    built
}

/// The frames of a stream as `(first packet index, packet count)`.
fn frame_ranges(packets: &[ReplayPacket]) -> Vec<(usize, usize)> {
    let mut frames: Vec<(usize, usize)> = Vec::new();
    for (index, packet) in packets.iter().enumerate() {
        match frames.last_mut() {
            Some((_, count)) if !packet.frame_start => *count += 1,
            _ => frames.push((index, 1)),
        }
    }
    frames
}

fn fill_frame_bytes(packets: &mut [ReplayPacket]) {
    for (first, count) in frame_ranges(packets) {
        let Some(frame) = packets.get_mut(first..first + count) else {
            continue;
        };
        let bytes: u32 = frame.iter().map(|p| u32::from(p.payload_len)).sum();
        for packet in frame {
            packet.frame_bytes = bytes;
        }
    }
}

/// The size heuristic of the module docs: marks the first packet of each likely keyframe.
fn mark_keyframes(packets: &mut [ReplayPacket]) {
    let frames = frame_ranges(packets);
    let sizes: Vec<u32> = frames
        .iter()
        .filter_map(|&(first, _)| packets.get(first).map(|p| p.frame_bytes))
        .collect();
    for (index, &(first, _)) in frames.iter().enumerate() {
        let lower = index.saturating_sub(KEYFRAME_WINDOW);
        let upper = (index + 1 + KEYFRAME_WINDOW).min(sizes.len());
        let mut window: Vec<u32> = sizes
            .get(lower..index)
            .unwrap_or(&[])
            .iter()
            .chain(sizes.get(index + 1..upper).unwrap_or(&[]))
            .copied()
            .collect();
        if window.is_empty() {
            continue;
        }
        window.sort_unstable();
        let median = window.get(window.len() / 2).copied().unwrap_or(0);
        let size = sizes.get(index).copied().unwrap_or(0);
        if median > 0 && f64::from(size) >= KEYFRAME_SIZE_FACTOR * f64::from(median) {
            if let Some(packet) = packets.get_mut(first) {
                packet.keyframe = true;
            }
        }
    }
}
