//! [`ReplaySource`]: a participant's audio and video sources that send a capture's streams
//! again, with the participant's SSRCs and payload types, the capture's timing, sequence
//! numbers, timestamps, markers and sizes, and synthesised payloads (its type docs say
//! how).

use std::sync::Arc;
use std::time::Duration;

use super::super::packet::{MediaKind, MediaPacket, MediaPayload};
use super::super::vp8::{Vp8PacketHeader, VP8_MAX_PREFIX_LEN};
use super::super::{
    AudioConfig, KeyframeRequest, LayerSet, MediaError, VideoConfig, XorShift,
    KEYFRAME_MIN_INTERVAL,
};
use super::{ReplayCapture, ReplayError, ReplayPacket, ReplayStream};

/// Pause between the capture's last packet and the first one of the next lap.
pub const LOOP_GAP: Duration = Duration::from_millis(20);
/// How late a frame may be polled and still be sent (as the synthetic sources).
const MAX_LATENESS: Duration = Duration::from_millis(200);
/// Opus TOC of speech: configuration 15 (hybrid, fullband, 20 ms), mono, one frame.
const SPEECH_TOC: u8 = 15 << 3;
/// Opus TOC of comfort noise: configuration 9 (SILK, wideband, 20 ms), mono, one frame.
const COMFORT_NOISE_TOC: u8 = 9 << 3;
/// Audio payloads up to this size without a level are taken for comfort noise (DTX).
const COMFORT_NOISE_MAX_BYTES: u16 = 12;

/// One video layer the replay sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLayer {
    /// The participant's SSRC for the layer.
    pub ssrc: u32,
    /// Resolution written into the layer's keyframe headers (the capture's is encrypted).
    pub width: u16,
    /// See `width`.
    pub height: u16,
}

/// Which of the participant's SSRCs and payload types replace the capture's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// SSRC for the capture's audio stream; `None` sends no audio.
    pub audio_ssrc: Option<u32>,
    /// The participant's negotiated Opus payload type.
    pub audio_payload_type: u8,
    /// The participant's negotiated VP8 payload type.
    pub video_payload_type: u8,
    /// The participant's layers, lowest first: layer `i` sends the capture's `i`-th video
    /// stream by increasing bitrate. Capture streams beyond the layers are not sent; layers
    /// beyond the capture's streams do not exist in the source.
    pub video_layers: Vec<ReplayLayer>,
}

impl ReplayConfig {
    /// The SSRCs, payload types and resolutions of the participant's synthetic sources'
    /// configurations (what the runner already builds from the scenario).
    pub fn from_media(audio: Option<&AudioConfig>, video: Option<&VideoConfig>) -> Self {
        Self {
            audio_ssrc: audio.map(|a| a.ssrc),
            audio_payload_type: audio.map_or(111, |a| a.payload_type),
            video_payload_type: video.map_or(96, |v| v.payload_type),
            video_layers: video
                .map(|v| {
                    v.layers
                        .iter()
                        .map(|l| ReplayLayer {
                            ssrc: l.ssrc,
                            width: l.width,
                            height: l.height,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Which capture stream a cursor replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamRef {
    Audio,
    Video(usize),
}

fn stream_of(capture: &ReplayCapture, stream: StreamRef) -> Option<&ReplayStream> {
    match stream {
        StreamRef::Audio => capture.audio.as_ref(),
        StreamRef::Video(index) => capture.video.get(index),
    }
}

/// `lap × period`, saturating.
fn laps(period: Duration, lap: u32) -> Duration {
    period.checked_mul(lap).unwrap_or(Duration::MAX)
}

/// One replayed stream's position and rewriting state.
#[derive(Debug, Clone)]
struct Cursor {
    stream: StreamRef,
    kind: MediaKind,
    ssrc: u32,
    payload_type: u8,
    width: u16,
    height: u16,
    /// Index of the next packet in the stream.
    next: usize,
    /// Index of the packet every lap after the first starts with (see [`ReplaySource`]).
    loop_first: usize,
    /// Laps completed.
    lap: u32,
    sequence_per_lap: u16,
    timestamp_per_lap: u32,
    /// Packets skipped (layer off, late): later sequence numbers close the gap.
    skipped: u16,
    /// A frame has started and its remaining packets are still to come.
    in_frame: bool,
    frame_keyframe: bool,
    frame_capture_time: Duration,
    picture_id: u16,
    tl0_pic_idx: u8,
    active: bool,
    keyframe_due: bool,
    keyframe_requested: Option<Duration>,
    last_keyframe: Option<Duration>,
}

impl Cursor {
    fn due(&self, start: Duration, period: Duration, packets: &[ReplayPacket]) -> Option<Duration> {
        let packet = packets.get(self.next)?;
        Some(
            start
                .saturating_add(laps(period, self.lap))
                .saturating_add(packet.at),
        )
    }

    /// Steps past the next packet; returns the lap it belonged to.
    fn advance(&mut self, packets: &[ReplayPacket]) -> u32 {
        let lap = self.lap;
        self.next += 1;
        let wrapped = self.next >= packets.len();
        if wrapped {
            self.next = self.loop_first;
            self.lap = self.lap.saturating_add(1);
        }
        // The following packet continues the frame unless it opens one (a lap's first
        // packet always does).
        self.in_frame = !wrapped && packets.get(self.next).is_some_and(|p| !p.frame_start);
        lap
    }

    /// Skips, without using sequence numbers, every frame that starts before `t`.
    fn skip_frames_before(
        &mut self,
        start: Duration,
        period: Duration,
        packets: &[ReplayPacket],
        t: Duration,
    ) {
        // Packets per lap after the first.
        let len = packets.len().saturating_sub(self.loop_first);
        // Whole laps arithmetically, the rest packet by packet: at most about two laps'
        // worth of steps (the first lap's lead-in to the loop point included).
        for _ in 0..2 * packets.len() + 4 {
            if self.in_frame {
                // Finish skipping the frame already cut into.
                self.skipped = self.skipped.wrapping_add(1);
                self.advance(packets);
                continue;
            }
            let Some(due) = self.due(start, period, packets) else {
                return;
            };
            if due >= t {
                return;
            }
            // At the loop point (in the first lap too), a lap later is the same packet.
            if self.next == self.loop_first && !period.is_zero() {
                let behind = t.saturating_sub(due).as_nanos() / period.as_nanos();
                if behind >= 1 {
                    let whole = u32::try_from(behind).unwrap_or(u32::MAX);
                    self.lap = self.lap.saturating_add(whole);
                    // Sequence numbers are mod 2^16: the product's low bits are the count.
                    let per_lap = whole.wrapping_mul(u32::try_from(len).unwrap_or(u32::MAX));
                    self.skipped = self.skipped.wrapping_add(per_lap as u16);
                    continue;
                }
            }
            self.skipped = self.skipped.wrapping_add(1);
            self.advance(packets);
        }
    }
}

/// A participant's audio and video sources replaying a [`ReplayCapture`].
///
/// The poll API mirrors [`VideoSource`](crate::media::VideoSource), so the runner drives it
/// the same way and sends its [`MediaPacket`]s through the same writer:
///
/// - Timing: packet `i` of lap `k` is due at `start + k × period + at(i)`, where `at` is its
///   capture time since the first replayed packet and `period` the length of a lap after
///   the first (below) plus [`LOOP_GAP`]. Packets within a frame keep the capture's pacing.
/// - Looping: the first lap is the whole capture; the following ones start at the loop
///   point, the moment the last replayed video layer started (`loop_start`), with each
///   stream's first frame from then on. A browser turns its simulcast layers on one after
///   another as its estimate ramps up (Chromium's highest about a second in); replaying
///   that start-up on every lap would stop the highest layer for that long each time,
///   which no browser does once it sends a layer (a receiver watching it would see a
///   freeze). At the end of the capture every stream starts over at the loop point, its
///   sequence numbers and timestamps continuing (lap `k` adds `k × packets-per-lap` to
///   sequence numbers and `k × period × clock` to timestamps), so a 20 s capture feeds a
///   120 s run.
/// - Payloads: audio is an Opus TOC (speech or comfort noise, after the captured level or
///   size) plus filler; video is the VP8 descriptor and, on a frame's first packet, the frame
///   header written by `media::vp8`: a keyframe header (with the layer's
///   resolution) on the frames the size heuristic marked, on each layer's first frame, after
///   re-activation and on request; else an interframe tag. Each payload has the captured
///   size (a packet smaller than its codec header grows to it).
/// - Layer switching and keyframe requests behave as `VideoSource`'s; the packets a
///   switched-off layer does not send are skipped without using sequence numbers, as a
///   browser's would be.
/// - Like the synthetic sources, frames more than 200 ms late are dropped rather than sent in
///   a burst (again without using sequence numbers).
#[derive(Debug, Clone)]
pub struct ReplaySource {
    capture: Arc<ReplayCapture>,
    start: Duration,
    period: Duration,
    /// Capture time every lap after the first starts from.
    loop_start: Duration,
    /// The audio cursor (if any) first, then the video layers lowest first.
    cursors: Vec<Cursor>,
    /// Index of layer 0's cursor in `cursors`.
    first_video: usize,
}

impl ReplaySource {
    /// A source replaying `capture` from `start`, with the participant's SSRCs and payload
    /// types from `config`; `seed` picks the VP8 picture ids. Every video layer starts with
    /// a keyframe. Fails when the mapping leaves nothing to send.
    pub fn new(
        capture: Arc<ReplayCapture>,
        config: &ReplayConfig,
        seed: u64,
        start: Duration,
    ) -> Result<Self, ReplayError> {
        let video_layers = config.video_layers.len().min(capture.video.len());
        let loop_start = loop_start(&capture, config.audio_ssrc.is_some(), video_layers);
        let period = capture
            .duration()
            .saturating_sub(loop_start)
            .saturating_add(LOOP_GAP);
        let mut rng = XorShift::new(seed);
        let mut cursors = Vec::new();
        let mut new_cursor = |stream: StreamRef, kind, ssrc, payload_type, width, height| {
            let replayed = stream_of(&capture, stream)?;
            let loop_first = first_frame_from(replayed, loop_start).unwrap_or(0);
            let first = replayed.packets.get(loop_first)?;
            let last = replayed.packets.last()?;
            let units = u128::from(replayed.clock_rate) * period.as_nanos() / 1_000_000_000;
            let initial = rng.next_u64();
            Some(Cursor {
                stream,
                kind,
                ssrc,
                payload_type,
                width,
                height,
                next: 0,
                loop_first,
                lap: 0,
                sequence_per_lap: last
                    .sequence_number
                    .wrapping_sub(first.sequence_number)
                    .wrapping_add(1),
                // RTP timestamps are mod 2^32: the low bits are the advance.
                timestamp_per_lap: units as u32,
                skipped: 0,
                in_frame: false,
                frame_keyframe: false,
                frame_capture_time: Duration::ZERO,
                picture_id: (initial as u16) & 0x7FFF,
                tl0_pic_idx: (initial >> 16) as u8,
                active: true,
                keyframe_due: true,
                keyframe_requested: None,
                last_keyframe: None,
            })
        };
        if let Some(ssrc) = config.audio_ssrc {
            if let Some(cursor) = new_cursor(
                StreamRef::Audio,
                MediaKind::Audio,
                ssrc,
                config.audio_payload_type,
                0,
                0,
            ) {
                cursors.push(cursor);
            }
        }
        let first_video = cursors.len();
        for (index, layer) in config
            .video_layers
            .iter()
            .enumerate()
            .take(capture.video.len())
        {
            let Ok(layer_index) = u8::try_from(index) else {
                break;
            };
            if let Some(cursor) = new_cursor(
                StreamRef::Video(index),
                MediaKind::Video { layer: layer_index },
                layer.ssrc,
                config.video_payload_type,
                layer.width,
                layer.height,
            ) {
                cursors.push(cursor);
            }
        }
        if cursors.is_empty() {
            return Err(ReplayError::InvalidConfig(
                "no capture stream maps to an SSRC of the participant",
            ));
        }
        Ok(Self {
            capture,
            start,
            period,
            loop_start,
            cursors,
            first_video,
        })
    }

    /// Time from one lap's start to the next after the first: the capture's duration from
    /// [`loop_start`](Self::loop_start) on, plus [`LOOP_GAP`].
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Capture time the laps after the first start from: when the last replayed video
    /// layer started (zero when that leaves a replayed stream nothing to send).
    pub fn loop_start(&self) -> Duration {
        self.loop_start
    }

    /// The capture being replayed.
    pub fn capture(&self) -> &ReplayCapture {
        &self.capture
    }

    /// Whether the source sends audio.
    pub fn has_audio(&self) -> bool {
        self.first_video > 0
    }

    /// Number of video layers the source sends (capture streams mapped to layers).
    pub fn layer_count(&self) -> usize {
        self.cursors.len() - self.first_video
    }

    /// The layer that sends with `ssrc`.
    pub fn layer_of_ssrc(&self, ssrc: u32) -> Option<usize> {
        self.cursors
            .get(self.first_video..)?
            .iter()
            .position(|c| c.ssrc == ssrc)
    }

    /// The layers currently sending.
    pub fn active_layers(&self) -> LayerSet {
        self.cursors
            .get(self.first_video..)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .filter(|(_, c)| c.active)
            .fold(LayerSet::EMPTY, |set, (index, _)| set.with(index))
    }

    fn layer_mut(&mut self, layer: usize) -> Result<&mut Cursor, MediaError> {
        self.cursors
            .get_mut(self.first_video + layer)
            .ok_or(MediaError::NoSuchLayer(layer))
    }

    /// Switches a layer on or off at `now`. An inactive layer sends nothing (a frame it has
    /// begun is finished); a layer switched back on resumes with its first frame captured
    /// at or after `now`, as a keyframe.
    pub fn set_layer_active(
        &mut self,
        now: Duration,
        layer: usize,
        active: bool,
    ) -> Result<(), MediaError> {
        let (start, period) = (self.start, self.period);
        let capture = Arc::clone(&self.capture);
        let cursor = self.layer_mut(layer)?;
        if active && !cursor.active {
            if let Some(stream) = stream_of(&capture, cursor.stream) {
                if !cursor.in_frame {
                    cursor.skip_frames_before(start, period, &stream.packets, now);
                }
            }
            cursor.keyframe_due = true;
        }
        cursor.active = active;
        Ok(())
    }

    /// Makes exactly the layers in `set` active (see [`set_layer_active`](Self::set_layer_active)).
    pub fn set_active_layers(&mut self, now: Duration, set: LayerSet) {
        for layer in 0..self.layer_count() {
            // Indices come from the range, so the layer exists.
            let _ = self.set_layer_active(now, layer, set.contains(layer));
        }
    }

    /// Asks for a keyframe on `layer` (a PLI or FIR arrived at `now`): the layer's next
    /// frame, at most one per [`KEYFRAME_MIN_INTERVAL`], is sent as a keyframe (its size
    /// stays the captured one).
    pub fn request_keyframe(
        &mut self,
        now: Duration,
        layer: usize,
    ) -> Result<KeyframeRequest, MediaError> {
        let cursor = self.layer_mut(layer)?;
        if !cursor.active {
            return Ok(KeyframeRequest::Inactive);
        }
        if cursor.keyframe_due || cursor.keyframe_requested.is_some() {
            return Ok(KeyframeRequest::AlreadyPending);
        }
        let earliest = cursor
            .last_keyframe
            .map_or(Duration::ZERO, |t| t.saturating_add(KEYFRAME_MIN_INTERVAL));
        let not_before = earliest.max(now);
        cursor.keyframe_requested = Some(not_before);
        Ok(if not_before <= now {
            KeyframeRequest::NextFrame
        } else {
            KeyframeRequest::Deferred { not_before }
        })
    }

    /// [`request_keyframe`](Self::request_keyframe) for the layer sending with `ssrc`.
    pub fn request_keyframe_for_ssrc(
        &mut self,
        now: Duration,
        ssrc: u32,
    ) -> Option<KeyframeRequest> {
        let layer = self.layer_of_ssrc(ssrc)?;
        self.request_keyframe(now, layer).ok()
    }

    /// When the next packet is due; `None` when every stream is off.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.cursors
            .iter()
            .filter(|c| c.active || c.in_frame)
            .filter_map(|c| {
                let stream = stream_of(&self.capture, c.stream)?;
                c.due(self.start, self.period, &stream.packets)
            })
            .min()
    }

    /// The next packet due at `now`, if any; call until it returns `None`. Packets due at
    /// the same instant come audio first, then lowest layer first.
    pub fn poll(&mut self, now: Duration) -> Option<MediaPacket> {
        let (start, period) = (self.start, self.period);
        let capture = Arc::clone(&self.capture);
        let cutoff = now.saturating_sub(MAX_LATENESS);
        let mut best: Option<(Duration, usize)> = None;
        for (index, cursor) in self.cursors.iter_mut().enumerate() {
            if !cursor.active && !cursor.in_frame {
                continue;
            }
            let Some(stream) = stream_of(&capture, cursor.stream) else {
                continue;
            };
            if cursor.active && !cursor.in_frame {
                cursor.skip_frames_before(start, period, &stream.packets, cutoff);
            }
            let Some(due) = cursor.due(start, period, &stream.packets) else {
                continue;
            };
            if due <= now && best.is_none_or(|(t, _)| due < t) {
                best = Some((due, index));
            }
        }
        let (due, index) = best?;
        let cursor = self.cursors.get_mut(index)?;
        let stream = stream_of(&capture, cursor.stream)?;
        emit(cursor, stream, due)
    }
}

/// The loop point of [`ReplaySource`]: the first packet of the latest-starting replayed
/// video layer (the first `video_layers` of the capture), if every replayed stream has a
/// frame from then on; else zero (the whole capture loops).
fn loop_start(capture: &ReplayCapture, audio: bool, video_layers: usize) -> Duration {
    let video = capture.video.get(..video_layers).unwrap_or(&[]);
    let Some(latest) = video
        .iter()
        .filter_map(|s| s.packets.first())
        .map(|p| p.at)
        .max()
    else {
        return Duration::ZERO;
    };
    let audio = capture.audio.as_ref().filter(|_| audio);
    if audio
        .into_iter()
        .chain(video)
        .all(|stream| first_frame_from(stream, latest).is_some())
    {
        latest
    } else {
        Duration::ZERO
    }
}

/// Index of the stream's first packet that opens a frame at or after `t`.
fn first_frame_from(stream: &ReplayStream, t: Duration) -> Option<usize> {
    stream
        .packets
        .iter()
        .position(|p| p.frame_start && p.at >= t)
}

/// Sends the cursor's next packet, due at `due`.
fn emit(cursor: &mut Cursor, stream: &ReplayStream, due: Duration) -> Option<MediaPacket> {
    let packet = *stream.packets.get(cursor.next)?;
    let starts_frame = !cursor.in_frame;
    let video = matches!(cursor.kind, MediaKind::Video { .. });
    if starts_frame {
        let requested = cursor
            .keyframe_requested
            .is_some_and(|not_before| due >= not_before);
        let keyframe = video && (cursor.keyframe_due || packet.keyframe || requested);
        if keyframe {
            cursor.keyframe_due = false;
            cursor.keyframe_requested = None;
            cursor.last_keyframe = Some(due);
        }
        cursor.frame_keyframe = keyframe;
        cursor.frame_capture_time = due;
        if video {
            cursor.picture_id = (cursor.picture_id + 1) & 0x7FFF;
            cursor.tl0_pic_idx = cursor.tl0_pic_idx.wrapping_add(1);
        }
    }
    let lap = cursor.advance(&stream.packets);
    // Sequence numbers and timestamps are mod 2^16 and 2^32: wrapping is the arithmetic.
    let sequence_number = packet
        .sequence_number
        .wrapping_add((lap as u16).wrapping_mul(cursor.sequence_per_lap))
        .wrapping_sub(cursor.skipped);
    let timestamp = packet
        .timestamp
        .wrapping_add(lap.wrapping_mul(cursor.timestamp_per_lap));
    let length = usize::from(packet.payload_len);
    let payload = if video {
        let header = Vp8PacketHeader {
            picture_id: cursor.picture_id,
            tl0_pic_idx: cursor.tl0_pic_idx,
            keyframe: cursor.frame_keyframe,
            first_packet: starts_frame,
            frame_bytes: packet.frame_bytes,
            width: cursor.width,
            height: cursor.height,
        };
        let mut prefix = [0u8; VP8_MAX_PREFIX_LEN];
        let prefix_len = header.write(&mut prefix);
        // Cannot fail: the prefix is at most 16 bytes and the length a u16.
        MediaPayload::new(
            prefix.get(..prefix_len)?,
            length.saturating_sub(prefix_len),
            sequence_number,
        )
        .ok()?
    } else {
        let speech = match packet.audio_level {
            Some(level) => level.voice_activity,
            None => packet.payload_len > COMFORT_NOISE_MAX_BYTES,
        };
        let toc = if speech {
            SPEECH_TOC
        } else {
            COMFORT_NOISE_TOC
        };
        MediaPayload::new(&[toc], length.saturating_sub(1), sequence_number).ok()?
    };
    Some(MediaPacket {
        kind: cursor.kind,
        ssrc: cursor.ssrc,
        payload_type: cursor.payload_type,
        sequence_number,
        timestamp,
        marker: packet.marker,
        payload,
        audio_level: packet.audio_level,
        keyframe_start: starts_frame && cursor.frame_keyframe,
        capture_time: cursor.frame_capture_time,
        original_sequence_number: None,
    })
}
