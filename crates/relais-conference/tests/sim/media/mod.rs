//! Synthetic media sources for the conference simulator: what a libwebrtc sender (Chrome in
//! Jitsi Meet) puts on the wire, as plaintext RTP, with Jitsi's payload types and one-byte
//! (RFC 8285) header extensions.
//!
//! - [`OpusSource`]: 20 ms Opus frames on a speaking script, DTX during silence.
//! - [`Vp8SimulcastSource`]: VP8 simulcast (default 3 encodings), L1T3 per encoding.
//! - [`Vp9SvcSource`]: VP9 full SVC L3T3 in one SSRC, non-flexible mode.
//! - [`Av1SvcSource`]: AV1 SVC (L3T3_KEY or L3T3) in one SSRC, with the dependency descriptor.
//!
//! Every source is deterministic: time is the `Instant` given to `poll`, randomness (initial
//! sequence numbers, timestamps, picture ids, frame-size noise, audio levels) comes from a
//! seeded [`SimRng`]. `poll(now)` returns every packet due at or before `now`, so a caller
//! that polls late gets the backlog in one burst, as a real encoder's pacer would.
//!
//! Payload bytes are synthetic but self-describing. Each video packet carries a
//! [`FrameStamp`] (sender, layer, original picture id, packet index, and the frames the frame
//! references) followed by filler bytes derived from the stamp, so the receiver-side checkers
//! in [`super::check`] can tell, after the SFU rewrote SSRC, sequence number, timestamp and
//! picture id, which sender, layer and frame a packet belongs to and whether it could be
//! decoded: a real decoder learns the references from the bitstream, ours from the stamp.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use relais_rtp::extensions::AbsSendTime;
use relais_rtp::rtp::RtpPacket;

mod av1;
mod opus;
mod vp8;
mod vp9;

pub use av1::*;
pub use opus::*;
pub use vp8::*;
pub use vp9::*;

/// Opus payload type (48 kHz, stereo signalled, mono sent).
pub const OPUS_PT: u8 = 111;
/// VP8 payload type.
pub const VP8_PT: u8 = 100;
/// RTX payload type for VP8.
pub const VP8_RTX_PT: u8 = 96;
/// VP9 payload type.
pub const VP9_PT: u8 = 101;
/// RTX payload type for VP9.
pub const VP9_RTX_PT: u8 = 97;
/// AV1 payload type.
pub const AV1_PT: u8 = 41;
/// RTX payload type for AV1.
pub const AV1_RTX_PT: u8 = 42;

/// Header-extension id of the RFC 6464 audio level.
pub const EXT_AUDIO_LEVEL: u8 = 1;
/// Header-extension id of abs-send-time.
pub const EXT_ABS_SEND_TIME: u8 = 3;
/// Header-extension id of the transport-wide CC sequence number.
pub const EXT_TRANSPORT_CC: u8 = 5;
/// Header-extension id of the AV1 dependency descriptor.
pub const EXT_DEPENDENCY_DESCRIPTOR: u8 = 11;

/// RTP clock of Opus.
pub const OPUS_CLOCK_RATE: u32 = 48_000;
/// RTP clock of video.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;

/// Default SSRC of a sender's media: `0x1000_0000 + source_id * 0x100 + offset`, offsets
/// 0x01 (Opus), 0x10 + i / 0x20 + i (VP8 encoding i and its RTX), 0x30 / 0x31 (VP9 and RTX).
pub fn default_ssrc(source_id: u8, offset: u32) -> u32 {
    0x1000_0000 + u32::from(source_id) * 0x100 + offset
}

// ---------------------------------------------------------------------------------------
// Randomness, transport-wide sequence numbers, RTP writing.
// ---------------------------------------------------------------------------------------

/// SplitMix64: tiny, statistically decent, and the same sequence on every platform.
#[derive(Debug, Clone)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// The next 16 random bits.
    pub fn next_u16(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        low + self.next_u64() % (high - low + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An independent generator seeded from this one.
    pub fn fork(&mut self) -> Self {
        Self::new(self.next_u64())
    }
}

/// The transport-wide CC sequence number of one sender's transport. Clones share the
/// counter, so the sources of one endpoint number their packets in one sequence, as
/// libwebrtc does.
#[derive(Debug, Clone, Default)]
pub struct TransportSeq(Rc<Cell<u16>>);

impl TransportSeq {
    /// A counter whose first number is `first`.
    pub fn starting_at(first: u16) -> Self {
        Self(Rc::new(Cell::new(first)))
    }

    /// Takes the next number.
    pub fn next(&self) -> u16 {
        let value = self.0.get();
        self.0.set(value.wrapping_add(1));
        value
    }

    /// The number the next packet will get.
    pub fn peek(&self) -> u16 {
        self.0.get()
    }
}

/// The fixed-header fields of a packet to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpFields {
    /// Payload type.
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub sequence_number: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// Writes an RTP packet with `extensions` as `(id, value)` one-byte-form elements (ids
/// 1..=14, values of 1..=16 bytes), zero-padded to a 32-bit boundary.
pub fn write_rtp(fields: &RtpFields, extensions: &[(u8, &[u8])], payload: &[u8]) -> Vec<u8> {
    let elements_len: usize = extensions.iter().map(|(_, value)| 1 + value.len()).sum();
    let block_len = elements_len.div_ceil(4) * 4;
    let mut packet = Vec::with_capacity(16 + block_len + payload.len());
    let extension_bit = if extensions.is_empty() { 0 } else { 0x10 };
    packet.push(0x80 | extension_bit);
    packet.push((u8::from(fields.marker) << 7) | (fields.payload_type & 0x7F));
    packet.extend_from_slice(&fields.sequence_number.to_be_bytes());
    packet.extend_from_slice(&fields.timestamp.to_be_bytes());
    packet.extend_from_slice(&fields.ssrc.to_be_bytes());
    if !extensions.is_empty() {
        packet.extend_from_slice(&[0xBE, 0xDE]);
        packet.extend_from_slice(&u16::try_from(block_len / 4).unwrap().to_be_bytes());
        let block_start = packet.len();
        for &(id, value) in extensions {
            assert!((1..=14).contains(&id), "one-byte extension id {id}");
            assert!((1..=16).contains(&value.len()), "extension value length");
            packet.push((id << 4) | (value.len() as u8 - 1));
            packet.extend_from_slice(value);
        }
        packet.resize(block_start + block_len, 0);
    }
    packet.extend_from_slice(payload);
    packet
}

/// `mask` if `set`, else 0: for assembling descriptor bytes bit by bit.
fn flag(set: bool, mask: u8) -> u8 {
    if set {
        mask
    } else {
        0
    }
}

/// Microseconds from `epoch` to `at`, for abs-send-time.
fn abs_send_time(epoch: Instant, at: Instant) -> [u8; 3] {
    let micros = u64::try_from(at.saturating_duration_since(epoch).as_micros()).unwrap();
    let mut value = [0; 3];
    AbsSendTime::from_micros(micros).write(&mut value).unwrap();
    value
}

/// The extensions every video packet carries: abs-send-time and transport-cc.
fn video_extensions(epoch: Instant, at: Instant, transport_seq: u16) -> ([u8; 3], [u8; 2]) {
    (abs_send_time(epoch, at), transport_seq.to_be_bytes())
}

// ---------------------------------------------------------------------------------------
// The payload stamp shared by the video sources and the checkers.
// ---------------------------------------------------------------------------------------

/// Length of a [`FrameStamp`] on the wire.
pub const FRAME_STAMP_LEN: usize = 17;
/// First byte of every stamp, to catch a checker reading at the wrong offset.
const FRAME_STAMP_MAGIC: u8 = 0xA5;

/// A frame a frame depends on: the same sender's layer frame `layer` of original picture
/// `picture_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameRef {
    /// VP8: the encoding index; VP9: the spatial layer.
    pub layer: u8,
    /// The original (sender's) picture id.
    pub picture_id: u16,
}

/// What every synthetic video packet says about itself, right after the codec's own header
/// bytes. The SFU never rewrites it, so it survives forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameStamp {
    /// The sender ([`Vp8SimulcastConfig::source_id`], [`Vp9SvcConfig::source_id`]).
    pub source: u8,
    /// VP8: the simulcast encoding index; VP9: the spatial layer id.
    pub layer: u8,
    /// The temporal layer id.
    pub temporal_id: u8,
    /// The sender's picture id (15 bits), before any rewriting.
    pub picture_id: u16,
    /// Index of this packet within the (layer) frame.
    pub packet_index: u16,
    /// Number of packets of the (layer) frame.
    pub packet_count: u16,
    /// The frames this frame predicts from (none on a key frame's base layer).
    pub references: [Option<FrameRef>; 2],
}

impl FrameStamp {
    /// Appends the stamp to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[FRAME_STAMP_MAGIC, self.source, self.layer, self.temporal_id]);
        out.extend_from_slice(&self.picture_id.to_be_bytes());
        out.extend_from_slice(&self.packet_index.to_be_bytes());
        out.extend_from_slice(&self.packet_count.to_be_bytes());
        let count = self.references.iter().flatten().count();
        out.push(count as u8);
        for slot in self.references {
            let reference = slot.unwrap_or(FrameRef {
                layer: 0,
                picture_id: 0,
            });
            out.push(reference.layer);
            out.extend_from_slice(&reference.picture_id.to_be_bytes());
        }
    }

    /// Reads a stamp from the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let b = bytes.get(..FRAME_STAMP_LEN)?;
        if b[0] != FRAME_STAMP_MAGIC || b[10] > 2 {
            return None;
        }
        let reference = |at: usize| FrameRef {
            layer: b[at],
            picture_id: u16::from_be_bytes([b[at + 1], b[at + 2]]),
        };
        let count = b[10];
        Some(Self {
            source: b[1],
            layer: b[2],
            temporal_id: b[3],
            picture_id: u16::from_be_bytes([b[4], b[5]]),
            packet_index: u16::from_be_bytes([b[6], b[7]]),
            packet_count: u16::from_be_bytes([b[8], b[9]]),
            references: [
                (count >= 1).then(|| reference(11)),
                (count >= 2).then(|| reference(14)),
            ],
        })
    }

    /// The references, in order.
    pub fn references(&self) -> impl Iterator<Item = FrameRef> + '_ {
        self.references.iter().flatten().copied()
    }

    /// The filler byte at `index` after the stamp: a function of the stamp, so a checker can
    /// verify that nothing in the payload was altered.
    pub fn filler_byte(&self, index: usize) -> u8 {
        let seed = u32::from(self.picture_id)
            .wrapping_mul(31)
            .wrapping_add(u32::from(self.packet_index).wrapping_mul(131))
            .wrapping_add(u32::from(self.layer).wrapping_mul(7))
            .wrapping_add(u32::from(self.source).wrapping_mul(13));
        (seed.wrapping_add(index as u32) & 0xFF) as u8
    }

    /// Reads the stamp at the start of `data` and checks the filler after it.
    pub fn parse_and_verify(data: &[u8]) -> Result<Self, String> {
        let stamp = Self::parse(data).ok_or_else(|| "no frame stamp".to_owned())?;
        let filler = &data[FRAME_STAMP_LEN..];
        if let Some(at) = (0..filler.len()).find(|&i| filler[i] != stamp.filler_byte(i)) {
            return Err(format!("filler byte {at} altered"));
        }
        Ok(stamp)
    }
}

/// The data of one packet: `prefix` (codec header bytes), the stamp, then filler up to
/// `len` bytes in all.
fn packet_data(prefix: &[u8], stamp: &FrameStamp, len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(len);
    data.extend_from_slice(prefix);
    stamp.write(&mut data);
    let filler = len.saturating_sub(data.len());
    data.extend((0..filler).map(|i| stamp.filler_byte(i)));
    data
}

/// Splits `total` bytes into packets of at most `max_per_packet`, as evenly as libwebrtc's
/// packetizers do, each at least `min_first` (first) or `min_other` bytes.
fn split_frame(
    total: usize,
    max_per_packet: usize,
    min_first: usize,
    min_other: usize,
) -> Vec<usize> {
    let count = total.div_ceil(max_per_packet).max(1);
    let (base, extra) = (total / count, total % count);
    (0..count)
        .map(|i| {
            let size = base + usize::from(i < extra);
            size.max(if i == 0 { min_first } else { min_other })
        })
        .collect()
}

/// Frame size multipliers per temporal layer in L1T3/L3T3: libwebrtc gives TL0, TL1, TL2
/// 40 %, 20 % and 40 % of the bitrate, and TL0 and TL1 a quarter of the frames each, TL2
/// half; so the average frame has weight 1.
const TEMPORAL_WEIGHTS: [f64; 3] = [1.6, 0.8, 0.8];
/// A key frame is this many times the average frame.
const KEYFRAME_WEIGHT: f64 = 5.0;
/// Per-frame size noise: uniform in ±this fraction.
const FRAME_SIZE_NOISE: f64 = 0.1;

/// Bytes of one frame: the average of `bitrate_bps` at `fps`, weighted, with noise.
fn frame_bytes(rng: &mut SimRng, bitrate_bps: u32, fps: u32, weight: f64) -> usize {
    let average = f64::from(bitrate_bps) / 8.0 / f64::from(fps);
    let noise = 1.0 + FRAME_SIZE_NOISE * (2.0 * rng.unit() - 1.0);
    (average * weight * noise).round() as usize
}

/// Sent packets kept for retransmission, oldest first.
#[derive(Debug, Default)]
struct RtxHistory {
    packets: VecDeque<(u16, Vec<u8>)>,
}

impl RtxHistory {
    /// About 3 s of the highest encoding at 1.5 Mbit/s.
    const CAPACITY: usize = 600;

    fn push(&mut self, sequence_number: u16, packet: &[u8]) {
        if self.packets.len() == Self::CAPACITY {
            self.packets.pop_front();
        }
        self.packets.push_back((sequence_number, packet.to_vec()));
    }

    fn get(&self, sequence_number: u16) -> Option<&[u8]> {
        self.packets
            .iter()
            .rev()
            .find(|(seq, _)| *seq == sequence_number)
            .map(|(_, packet)| packet.as_slice())
    }
}

/// Where an RTX packet goes and what it carries besides the original.
struct RtxTarget {
    payload_type: u8,
    ssrc: u32,
    sequence_number: u16,
    abs_send_time: [u8; 3],
    transport_seq: u16,
}

/// An RFC 4588 retransmission of `original`: same timestamp and marker, the RTX stream's
/// SSRC, payload type and sequence number, and the original sequence number before the
/// original payload.
fn rtx_packet(original: &[u8], target: &RtxTarget) -> Vec<u8> {
    let packet = RtpPacket::parse(original).unwrap();
    let mut payload = packet.sequence_number().to_be_bytes().to_vec();
    payload.extend_from_slice(packet.payload());
    write_rtp(
        &RtpFields {
            payload_type: target.payload_type,
            marker: packet.marker(),
            sequence_number: target.sequence_number,
            timestamp: packet.timestamp(),
            ssrc: target.ssrc,
        },
        &[
            (EXT_ABS_SEND_TIME, &target.abs_send_time),
            (EXT_TRANSPORT_CC, &target.transport_seq.to_be_bytes()),
        ],
        &payload,
    )
}

/// What a source sent on one video stream or layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoSendStats {
    /// Frames (VP9: layer frames) sent.
    pub frames: u64,
    /// Key frames among them.
    pub keyframes: u64,
    /// RTP packets sent, retransmissions excluded.
    pub packets: u64,
    /// Codec bytes sent: RTP payloads without the payload descriptor.
    pub media_bytes: u64,
}

/// The interface the harness drives every source through.
pub trait MediaSource {
    /// The plaintext RTP packets due at or before `now`, in send order.
    fn poll(&mut self, now: Instant) -> Vec<Vec<u8>>;
    /// When the next packet is due.
    fn next_due(&self) -> Instant;
    /// Asks for a key frame (PLI/FIR); audio ignores it.
    fn request_keyframe(&mut self);
    /// The media SSRCs (no RTX).
    fn media_ssrcs(&self) -> Vec<u32>;
    /// An RTX retransmission of packet `sequence_number` of media SSRC `ssrc`, if still in
    /// the history; `None` for audio.
    fn retransmit(&mut self, now: Instant, ssrc: u32, sequence_number: u16) -> Option<Vec<u8>>;
}
