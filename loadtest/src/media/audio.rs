//! [`AudioSource`]: one participant's Opus stream, as libwebrtc's encoder paces it.
//!
//! The encoder runs on a frame clock of `ptime`. While the participant speaks every frame
//! is a full-rate packet (`bitrate × ptime` bytes, voice flag set, level around -30 dBov);
//! the first one after silence carries the marker bit (RFC 3551 talkspurt start). While
//! silent, with DTX, the encoder sends one small comfort-noise packet when it enters
//! silence and one every `dtx_interval` after (the room's background noise level, -90 dBov,
//! voice flag clear); without DTX
//! every silent frame is sent as a small packet. The RTP timestamp follows the frame clock,
//! so it advances across DTX gaps as a receiver expects.

use std::time::Duration;

use relais_rtp::extensions::AudioLevel;

use super::packet::{MediaKind, MediaPacket, MediaPayload};
use super::{MediaError, XorShift};
use crate::scenario::AudioSection;

/// Opus TOC of speech: configuration 15 (hybrid, fullband, 20 ms), mono, one frame — what
/// libwebrtc produces for voice at 32 kb/s.
const SPEECH_TOC: u8 = 15 << 3;
/// Opus TOC of comfort noise: configuration 9 (SILK, wideband, 20 ms), mono, one frame.
const COMFORT_NOISE_TOC: u8 = 9 << 3;
/// Payload of a comfort-noise packet, TOC included: Opus's DTX updates are a few bytes.
pub const COMFORT_NOISE_PAYLOAD_BYTES: u16 = 8;
/// Level of speech in -dBov; each packet varies it by up to [`SPEECH_LEVEL_SPREAD`] so
/// level-based dominant-speaker detection sees something other than ties.
const SPEECH_LEVEL: u8 = 30;
/// See [`SPEECH_LEVEL`].
const SPEECH_LEVEL_SPREAD: u32 = 3;
/// RFC 6464 level while silent: a microphone's background noise, as browsers report it
/// during DTX. Not 127 (digital silence): level-based dominant-speaker detection (JVB's and
/// relais's) learns each speaker's noise floor from these levels, and without one it takes
/// the first speech for the floor and never sees that speaker as active.
const SILENCE_LEVEL: u8 = 90;
/// How late a frame may be polled and still be sent. An encoder whose thread stalls does
/// not send a burst of stale frames afterwards; it drops them.
const MAX_LATENESS: Duration = Duration::from_millis(200);

/// What an [`AudioSource`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioConfig {
    /// The stream's SSRC.
    pub ssrc: u32,
    /// The negotiated Opus payload type.
    pub payload_type: u8,
    /// RTP clock rate (48 000 for Opus).
    pub clock_rate: u32,
    /// Frame duration.
    pub ptime: Duration,
    /// Payload of a speech packet (bitrate × ptime), TOC included.
    pub speech_payload_bytes: u16,
    /// Payload of a comfort-noise (or, without DTX, silent) packet, TOC included.
    pub comfort_noise_payload_bytes: u16,
    /// Whether silence is sent as sparse comfort noise.
    pub dtx: bool,
    /// Interval of comfort-noise packets under DTX.
    pub dtx_interval: Duration,
}

impl AudioConfig {
    /// The scenario's `[audio]` for a stream with `ssrc` and `payload_type`.
    pub fn from_scenario(
        audio: &AudioSection,
        ssrc: u32,
        payload_type: u8,
    ) -> Result<Self, MediaError> {
        if !audio.codec.eq_ignore_ascii_case("opus") {
            return Err(MediaError::UnsupportedCodec(audio.codec.clone()));
        }
        let speech_bits = u64::from(audio.bitrate_kbps) * u64::from(audio.ptime_ms);
        let speech_payload_bytes = u16::try_from(speech_bits / 8)
            .map_err(|_| MediaError::InvalidConfig("audio bitrate × ptime above 64 KiB"))?;
        let config = Self {
            ssrc,
            payload_type,
            clock_rate: audio.clock_rate,
            ptime: Duration::from_millis(u64::from(audio.ptime_ms)),
            speech_payload_bytes,
            comfort_noise_payload_bytes: COMFORT_NOISE_PAYLOAD_BYTES,
            dtx: audio.dtx,
            dtx_interval: Duration::from_millis(u64::from(audio.dtx_interval_ms)),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), MediaError> {
        if self.ptime.is_zero() || self.dtx_interval.is_zero() {
            return Err(MediaError::InvalidConfig(
                "audio ptime and dtx interval must be positive",
            ));
        }
        if self.clock_rate == 0 {
            return Err(MediaError::InvalidConfig(
                "audio clock rate must be positive",
            ));
        }
        if self.speech_payload_bytes == 0 || self.comfort_noise_payload_bytes == 0 {
            return Err(MediaError::InvalidConfig(
                "audio payloads need at least the TOC byte",
            ));
        }
        Ok(())
    }

    /// RTP timestamp units per frame.
    fn samples_per_frame(&self) -> u32 {
        let samples = u128::from(self.clock_rate) * self.ptime.as_nanos() / 1_000_000_000;
        u32::try_from(samples).unwrap_or(u32::MAX)
    }

    /// Frames per comfort-noise interval, rounded up, at least 1.
    fn frames_per_dtx_interval(&self) -> u64 {
        let ptime = self.ptime.as_nanos().max(1);
        let frames = self.dtx_interval.as_nanos().div_ceil(ptime);
        u64::try_from(frames).unwrap_or(u64::MAX).max(1)
    }
}

/// One participant's Opus stream. Poll it with the participant's speaking state (from the
/// [`SpeakerSchedule`](super::SpeakerSchedule)); it returns the packets the encoder emits.
#[derive(Debug, Clone)]
pub struct AudioSource {
    config: AudioConfig,
    /// Frame 0's capture time (the participant's join).
    start: Duration,
    samples_per_frame: u32,
    frames_per_dtx_interval: u64,
    /// The next frame to encode.
    next_frame: u64,
    next_sequence_number: u16,
    timestamp_base: u32,
    /// Whether the previous frame was speech; `None` before the first frame.
    was_speaking: Option<bool>,
    /// Frames since the last comfort-noise packet, while silent under DTX.
    frames_since_comfort_noise: u64,
    levels: XorShift,
}

impl AudioSource {
    /// A stream whose first frame is captured at `start`; `seed` picks the random initial
    /// sequence number and timestamp (as browsers do) and the level variation.
    pub fn new(config: AudioConfig, seed: u64, start: Duration) -> Result<Self, MediaError> {
        config.validate()?;
        let mut rng = XorShift::new(seed);
        let initial = rng.next_u64();
        Ok(Self {
            samples_per_frame: config.samples_per_frame(),
            frames_per_dtx_interval: config.frames_per_dtx_interval(),
            config,
            start,
            next_frame: 0,
            // The low bits seed the sequence number, the high bits the timestamp.
            next_sequence_number: initial as u16,
            timestamp_base: (initial >> 32) as u32,
            was_speaking: None,
            frames_since_comfort_noise: 0,
            levels: rng,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AudioConfig {
        &self.config
    }

    /// The SSRC.
    pub fn ssrc(&self) -> u32 {
        self.config.ssrc
    }

    /// When the next frame is due. Whether it produces a packet depends on the speaking
    /// state then: see [`next_send_time`](Self::next_send_time) to sleep through DTX.
    pub fn poll_timeout(&self) -> Duration {
        self.frame_time(self.next_frame)
    }

    /// When the next packet goes out if the speaking state stays `speaking` until then. A
    /// driver wakes at the earlier of this and the next speaking change
    /// ([`SpeakerSchedule::next_change`](super::SpeakerSchedule::next_change)) and polls
    /// with [`poll_with`](Self::poll_with).
    pub fn next_send_time(&self, speaking: bool) -> Duration {
        let sends_next_frame = speaking
            || !self.config.dtx
            || self.was_speaking != Some(false)
            || self.frames_since_comfort_noise + 1 >= self.frames_per_dtx_interval;
        if sends_next_frame {
            return self.frame_time(self.next_frame);
        }
        let frames_left = self.frames_per_dtx_interval - self.frames_since_comfort_noise - 1;
        self.frame_time(self.next_frame + frames_left)
    }

    /// Encodes the frames due at `now` with the participant `speaking` and returns the next
    /// packet, if one is due. Call until it returns `None`. Frames more than 200 ms late are
    /// dropped, not sent in a burst.
    pub fn poll(&mut self, now: Duration, speaking: bool) -> Option<MediaPacket> {
        self.poll_with(now, |_| speaking)
    }

    /// [`poll`](Self::poll), asking `speaking_at` for the speaking state at each frame's
    /// capture time, e.g. `|t| schedule.is_speaking(p, t)`. Exact even when the driver
    /// wakes late or mid-frame: a frame captured before a turn starts stays silent.
    pub fn poll_with(
        &mut self,
        now: Duration,
        mut speaking_at: impl FnMut(Duration) -> bool,
    ) -> Option<MediaPacket> {
        self.skip_stale_frames(now);
        while self.frame_time(self.next_frame) <= now {
            let frame = self.next_frame;
            self.next_frame += 1;
            let speaking = speaking_at(self.frame_time(frame));
            if let Some(packet) = self.encode(frame, speaking) {
                return Some(packet);
            }
        }
        None
    }

    fn frame_time(&self, frame: u64) -> Duration {
        let offset = self.config.ptime.as_nanos() * u128::from(frame);
        self.start + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    fn skip_stale_frames(&mut self, now: Duration) {
        let Some(late) = now.checked_sub(self.frame_time(self.next_frame)) else {
            return;
        };
        if late > MAX_LATENESS {
            let ptime = self.config.ptime.as_nanos().max(1);
            let current = (now.saturating_sub(self.start)).as_nanos() / ptime;
            let current = u64::try_from(current).unwrap_or(u64::MAX);
            // Skipped frames send nothing, like DTX frames: they count towards the next
            // comfort-noise packet, so a driver sleeping until `next_send_time` through
            // silence gets its packet on time.
            let skipped = current.saturating_sub(self.next_frame);
            self.frames_since_comfort_noise =
                self.frames_since_comfort_noise.saturating_add(skipped);
            self.next_frame = current;
        }
    }

    fn encode(&mut self, frame: u64, speaking: bool) -> Option<MediaPacket> {
        let was_speaking = self.was_speaking.replace(speaking);
        let (toc, bytes, level, marker) = if speaking {
            let variation = self.levels.symmetric(SPEECH_LEVEL_SPREAD);
            let level = (i64::from(SPEECH_LEVEL) + variation).clamp(0, 127) as u8;
            let talkspurt_start = was_speaking != Some(true);
            (
                SPEECH_TOC,
                self.config.speech_payload_bytes,
                AudioLevel {
                    voice_activity: true,
                    level,
                },
                talkspurt_start,
            )
        } else {
            if self.config.dtx {
                let entering_silence = was_speaking != Some(false);
                self.frames_since_comfort_noise += 1;
                if !entering_silence
                    && self.frames_since_comfort_noise < self.frames_per_dtx_interval
                {
                    return None;
                }
                self.frames_since_comfort_noise = 0;
            }
            (
                COMFORT_NOISE_TOC,
                self.config.comfort_noise_payload_bytes,
                AudioLevel {
                    voice_activity: false,
                    level: SILENCE_LEVEL,
                },
                false,
            )
        };
        let sequence_number = self.next_sequence_number;
        self.next_sequence_number = sequence_number.wrapping_add(1);
        let frame_offset = (frame as u32).wrapping_mul(self.samples_per_frame);
        // Cannot fail: a one-byte prefix and a u16 length.
        let payload = MediaPayload::new(
            &[toc],
            usize::from(bytes).saturating_sub(1),
            sequence_number,
        )
        .ok()?;
        Some(MediaPacket {
            kind: MediaKind::Audio,
            ssrc: self.config.ssrc,
            payload_type: self.config.payload_type,
            sequence_number,
            timestamp: self.timestamp_base.wrapping_add(frame_offset),
            marker,
            payload,
            audio_level: Some(level),
            keyframe_start: false,
            capture_time: self.frame_time(frame),
            original_sequence_number: None,
        })
    }
}
