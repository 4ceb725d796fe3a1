//! [`OpusSource`]: Opus with speaking turns and DTX.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use std::time::{Duration, Instant};

use relais_rtp::extensions::AudioLevel;

use super::{
    default_ssrc, write_rtp, MediaSource, RtpFields, SimRng, TransportSeq, EXT_AUDIO_LEVEL,
    EXT_TRANSPORT_CC, OPUS_PT,
};

/// Opus frame duration.
pub const OPUS_FRAME: Duration = Duration::from_millis(20);
/// RTP ticks per Opus frame.
pub const OPUS_FRAME_TICKS: u32 = 960;
/// libwebrtc's Opus DTX sends one comfort-noise packet every this many silent frames
/// (400 ms).
const OPUS_DTX_INTERVAL_FRAMES: u32 = 20;
/// TOC byte of the packets: configuration 15 (hybrid, fullband, 20 ms), mono, one frame:
/// what Chrome's Opus at speech bitrates usually emits.
const OPUS_TOC: u8 = 0x78;
/// Second byte of a speech packet.
pub const SPEECH_MARKER: u8 = b'S';

/// What a received Opus payload from an [`OpusSource`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPacketKind {
    /// A speech frame: `[TOC, 'S', source, seq (2 bytes), filler...]`.
    Speech {
        /// The sender.
        source: u8,
        /// The sender's RTP sequence number of the packet.
        sequence_number: u16,
    },
    /// A DTX comfort-noise packet: `[TOC, source]`, 2 bytes, which is what
    /// `relais_rtp::codec::opus::is_dtx` (and libwebrtc) classify as DTX.
    ComfortNoise {
        /// The sender.
        source: u8,
    },
}

/// Tells speech from comfort noise in a payload an [`OpusSource`] wrote; `None` for
/// anything else.
pub fn classify_opus_payload(payload: &[u8]) -> Option<AudioPacketKind> {
    match *payload {
        [OPUS_TOC, source] => Some(AudioPacketKind::ComfortNoise { source }),
        [OPUS_TOC, SPEECH_MARKER, source, hi, lo, ..] => Some(AudioPacketKind::Speech {
            source,
            sequence_number: u16::from_be_bytes([hi, lo]),
        }),
        _ => None,
    }
}

/// Configuration of an [`OpusSource`].
#[derive(Debug, Clone)]
pub struct OpusConfig {
    /// The sender's id, written into every payload.
    pub source_id: u8,
    /// The SSRC.
    pub ssrc: u32,
    /// Speaking turns as `(start, end)` offsets from the source's start.
    pub turns: Vec<(Duration, Duration)>,
    /// Seed of initial sequence number, timestamp, levels and sizes.
    pub seed: u64,
    /// The sender's transport-wide sequence counter.
    pub transport_seq: TransportSeq,
}

impl OpusConfig {
    /// Silent source `source_id` with SSRC `default_ssrc(source_id, 1)`.
    pub fn new(source_id: u8) -> Self {
        Self {
            source_id,
            ssrc: default_ssrc(source_id, 0x01),
            turns: Vec::new(),
            seed: 0xA0D1_0000 + u64::from(source_id),
            transport_seq: TransportSeq::default(),
        }
    }

    /// Adds a speaking turn from `start` to `end` after the source's start.
    pub fn with_turn(mut self, start: Duration, end: Duration) -> Self {
        self.turns.push((start, end));
        self
    }
}

/// Opus as libwebrtc sends it with DTX: a 20 ms frame every 20 ms while speaking (audio
/// level 25..=55 -dBov, V bit set, marker on the first packet of a talkspurt), and while
/// silent one 2-byte comfort-noise packet on entering silence and every 400 ms after
/// (level 95..=127, V clear). Every packet has audio level and transport-cc extensions.
#[derive(Debug)]
pub struct OpusSource {
    config: OpusConfig,
    start: Instant,
    rng: SimRng,
    /// Index of the next frame slot (every 20 ms from `start`).
    next_frame: u64,
    sequence_number: u16,
    timestamp_offset: u32,
    /// `set_speaking(true)` in force.
    speaking_override: bool,
    /// Silent frames since the last comfort-noise packet; `None` while speaking.
    silent_frames_since_noise: Option<u32>,
    speech_sent: u64,
    silence_sent: u64,
}

impl OpusSource {
    /// A source whose first frame slot is at `start`.
    pub fn new(config: OpusConfig, start: Instant) -> Self {
        let mut rng = SimRng::new(config.seed);
        Self {
            sequence_number: rng.next_u16(),
            timestamp_offset: rng.next_u32(),
            config,
            start,
            rng,
            next_frame: 0,
            speaking_override: false,
            silent_frames_since_noise: None,
            speech_sent: 0,
            silence_sent: 0,
        }
    }

    /// The SSRC.
    pub fn ssrc(&self) -> u32 {
        self.config.ssrc
    }

    /// The sender id written into payloads.
    pub fn source_id(&self) -> u8 {
        self.config.source_id
    }

    /// Forces speaking on (`true`) or hands control back to the scripted turns (`false`),
    /// for every frame not yet polled: poll up to now first to keep the past as it was.
    pub fn set_speaking(&mut self, speaking: bool) {
        self.speaking_override = speaking;
    }

    /// Adds a speaking turn from `start` to `end` after the source's start.
    pub fn add_turn(&mut self, start: Duration, end: Duration) {
        self.config.turns.push((start, end));
    }

    /// Whether the frame captured at `at` is speech.
    pub fn is_speaking_at(&self, at: Instant) -> bool {
        let offset = at.saturating_duration_since(self.start);
        self.speaking_override
            || self
                .config
                .turns
                .iter()
                .any(|&(start, end)| start <= offset && offset < end)
    }

    /// Speech packets sent so far.
    pub fn speech_packets_sent(&self) -> u64 {
        self.speech_sent
    }

    /// Comfort-noise packets sent so far.
    pub fn silence_packets_sent(&self) -> u64 {
        self.silence_sent
    }

    fn frame_time(&self, frame: u64) -> Instant {
        self.start + OPUS_FRAME * u32::try_from(frame).unwrap()
    }

    /// Whether a silent frame `ahead` slots after `next_frame` sends comfort noise, given
    /// that all slots in between are silent too.
    fn noise_due(&self, ahead: u32) -> bool {
        match self.silent_frames_since_noise {
            None => ahead == 0,
            Some(count) => (count + ahead + 1) % OPUS_DTX_INTERVAL_FRAMES == 0,
        }
    }

    /// The packets due at or before `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while self.frame_time(self.next_frame) <= now {
            let frame = self.next_frame;
            self.next_frame += 1;
            if let Some(packet) = self.frame(frame) {
                out.push(packet);
            }
        }
        out
    }

    /// The packet of frame slot `frame`, if it sends one.
    fn frame(&mut self, frame: u64) -> Option<Vec<u8>> {
        let speaking = self.is_speaking_at(self.frame_time(frame));
        let talkspurt_start = speaking
            && (self.silent_frames_since_noise.is_some()
                || self.speech_sent + self.silence_sent == 0);
        let payload = if speaking {
            self.silent_frames_since_noise = None;
            let mut payload = vec![OPUS_TOC, SPEECH_MARKER, self.config.source_id];
            payload.extend_from_slice(&self.sequence_number.to_be_bytes());
            // Around 32 kbit/s: 80 bytes per 20 ms.
            let len = self.rng.range(60, 100) as usize;
            payload.extend((payload.len()..len).map(|i| i as u8));
            payload
        } else {
            let send = self.noise_due(0);
            self.silent_frames_since_noise = Some(match self.silent_frames_since_noise {
                Some(count) if !send => count + 1,
                _ => 0,
            });
            if !send {
                return None;
            }
            vec![OPUS_TOC, self.config.source_id]
        };
        let level = if speaking {
            self.rng.range(25, 55)
        } else {
            self.rng.range(95, 127)
        };
        let mut level_value = [0];
        AudioLevel {
            voice_activity: speaking,
            level: level as u8,
        }
        .write(&mut level_value)
        .unwrap();
        let transport_seq = self.config.transport_seq.next().to_be_bytes();
        let packet = write_rtp(
            &RtpFields {
                payload_type: OPUS_PT,
                marker: talkspurt_start,
                sequence_number: self.sequence_number,
                timestamp: self
                    .timestamp_offset
                    .wrapping_add((frame as u32).wrapping_mul(OPUS_FRAME_TICKS)),
                ssrc: self.config.ssrc,
            },
            &[
                (EXT_AUDIO_LEVEL, &level_value),
                (EXT_TRANSPORT_CC, &transport_seq),
            ],
            &payload,
        );
        self.sequence_number = self.sequence_number.wrapping_add(1);
        if speaking {
            self.speech_sent += 1;
        } else {
            self.silence_sent += 1;
        }
        Some(packet)
    }

    /// When the next packet is due: the next speaking slot or comfort-noise slot (within
    /// 400 ms by construction). A turn or `set_speaking` change takes effect at poll time.
    pub fn next_due(&self) -> Instant {
        (0..OPUS_DTX_INTERVAL_FRAMES)
            .map(|ahead| (ahead, self.frame_time(self.next_frame + u64::from(ahead))))
            .find(|&(ahead, at)| self.is_speaking_at(at) || self.noise_due(ahead))
            .map_or_else(|| self.frame_time(self.next_frame), |(_, at)| at)
    }

    /// Audio has no key frames.
    pub fn request_keyframe(&mut self) {}
}

impl MediaSource for OpusSource {
    fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        OpusSource::poll(self, now)
    }
    fn next_due(&self) -> Instant {
        OpusSource::next_due(self)
    }
    fn request_keyframe(&mut self) {}
    fn media_ssrcs(&self) -> Vec<u32> {
        vec![self.ssrc()]
    }
    fn retransmit(&mut self, _: Instant, _: u32, _: u16) -> Option<Vec<u8>> {
        None
    }
}
