//! One received RTP stream (one SSRC at one receiver): what arrived, what was lost and
//! repaired, how late first transmissions were, and for video when frames completed and which
//! layer was showing.

use std::time::Duration;

use serde::Serialize;

use super::sequence::{SeqEvent, SequenceWindow};

/// Most layer switches kept with their times per stream; later ones are only counted. Layer
/// switches are rare (a few per minute), so this bounds memory without losing anything
/// useful.
const MAX_RECORDED_SWITCHES: usize = 256;

/// How long after a view change a stream may show the old height before it counts as off
/// its view height: the keyframe request, the sender's keyframe (rate-limited to one per
/// 500 ms) and its way through the node fit well within it.
pub const SWITCH_GRACE: Duration = Duration::from_secs(2);

/// Audio or video: video streams also track frames, freezes and layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    /// An audio stream (Opus).
    Audio,
    /// A video stream (one forwarded source, whatever simulcast layer it carries).
    Video,
}

/// Settings shared by every stream of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureConfig {
    /// Time since run start from which freezes count and streams count as received: the end
    /// of ramp-up.
    pub measure_from: Duration,
    /// A gap filled by a retransmission within this time of being detected counts as
    /// recovered in time.
    pub recovery_deadline: Duration,
    /// Delay the impairment layer adds on purpose, subtracted from every latency sample so
    /// that latency is what the node (and the host) added.
    pub impairment_delay: Duration,
    /// A gap between completed video frames longer than this counts as a freeze.
    pub freeze_threshold: Duration,
}

impl Default for MeasureConfig {
    /// Measure from the start, 1 s recovery deadline, no impairment, 500 ms freezes.
    fn default() -> Self {
        Self {
            measure_from: Duration::ZERO,
            recovery_deadline: Duration::from_secs(1),
            impairment_delay: Duration::ZERO,
            freeze_threshold: Duration::from_millis(500),
        }
    }
}

/// The clear facts of one arriving RTP packet, after SRTP decryption and RTX unwrapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceivedPacket {
    /// Sequence number; for a retransmission, the original sequence number it carries.
    pub sequence_number: u16,
    /// RTP timestamp; a new value starts a new frame.
    pub rtp_timestamp: u32,
    /// The marker bit: the last packet of a video frame.
    pub marker: bool,
    /// When it arrived, since run start.
    pub arrival: Duration,
    /// RTP payload size in bytes.
    pub payload_len: usize,
    /// When it was sent, since run start on the same clock (from abs-capture-time, see
    /// [`NtpEpoch`](super::NtpEpoch)), if the packet says.
    pub send_time: Option<Duration>,
    /// Whether it arrived as a retransmission (RTX).
    pub retransmission: bool,
    /// Whether it is the first packet of a keyframe.
    pub keyframe_start: bool,
    /// The keyframe's height in pixels, if the payload tells it (VP8 keyframe header, H264
    /// SPS).
    pub keyframe_height: Option<u32>,
}

/// What became of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Ahead of every earlier packet (possibly after a gap).
    InOrder,
    /// A first transmission arriving after a later one: it fills its gap, which is then no
    /// loss.
    Reordered,
    /// A retransmission that filled a gap.
    Recovered {
        /// Whether it came within the recovery deadline of the gap's detection.
        in_time: bool,
    },
    /// A sequence number already received (a duplicate or a redundant retransmission).
    Duplicate,
    /// Older than [`SEQUENCE_WINDOW`](super::SEQUENCE_WINDOW) behind the highest: not matched.
    TooLate,
}

/// What [`ReceivedStream::on_packet`] observed, for the caller's own aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketOutcome {
    /// What became of the packet.
    pub disposition: Disposition,
    /// Sequence numbers this packet revealed as missing.
    pub new_gaps: u64,
    /// Added latency (arrival − send time − impairment delay), for first transmissions that
    /// carry a send time.
    pub latency: Option<Duration>,
}

/// A change of the height of the keyframes a video stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LayerSwitch {
    /// Arrival of the first keyframe packet at the new height, since run start.
    #[serde(serialize_with = "super::latency::serialize_duration_ms")]
    pub at: Duration,
    /// Height before.
    pub from_height: u32,
    /// Height after.
    pub to_height: u32,
}

/// Counters of one stream, or summed over several (see [`StreamStats::add`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    /// Packets arrived, including retransmissions and duplicates.
    pub packets: u64,
    /// Payload bytes arrived, including retransmissions and duplicates.
    pub bytes: u64,
    /// Retransmissions arrived.
    pub retransmissions: u64,
    /// Sequence numbers from the first to the highest received.
    pub expected: u64,
    /// Distinct sequence numbers received (first transmissions and repairs).
    pub received: u64,
    /// Sequence numbers whose first transmission never arrived (raw loss).
    pub lost: u64,
    /// Lost sequence numbers later filled by a retransmission.
    pub recovered: u64,
    /// Of those, filled within the recovery deadline.
    pub recovered_in_time: u64,
    /// First transmissions that arrived after a later packet.
    pub reordered: u64,
    /// Packets whose sequence number had already been received.
    pub duplicates: u64,
    /// Packets too far behind to be matched.
    pub too_late: u64,
    /// Video frames completed (marker received).
    pub frames: u64,
    /// Keyframes started.
    pub keyframes: u64,
    /// Longest gap between completed frames after `measure_from`.
    #[serde(serialize_with = "super::latency::serialize_duration_ms")]
    pub longest_freeze: Duration,
    /// Gaps between completed frames longer than the freeze threshold.
    pub freezes: u64,
    /// Changes of keyframe height.
    pub layer_switches: u64,
    /// Time after `measure_from` the stream showed the height the receiver's view asks for
    /// (see [`ReceivedStream::set_target_height`]).
    #[serde(serialize_with = "super::latency::serialize_duration_ms")]
    pub time_at_view_height: Duration,
    /// Time after `measure_from` it showed another height while the view asked for one and
    /// no switch to it was under way.
    #[serde(serialize_with = "super::latency::serialize_duration_ms")]
    pub time_off_view_height: Duration,
    /// Time after `measure_from` between a view change that asked for another height and
    /// the first keyframe at that height (the switch under way), at most [`SWITCH_GRACE`]
    /// per change.
    #[serde(serialize_with = "super::latency::serialize_duration_ms")]
    pub time_switching: Duration,
    /// View changes answered by a keyframe at the asked height.
    pub view_switches: u64,
    /// Their delays (view change to the keyframe's arrival), summed.
    #[serde(serialize_with = "super::latency::serialize_duration_ms")]
    pub view_switch_delay_total: Duration,
    /// The longest of them.
    #[serde(serialize_with = "super::latency::serialize_duration_ms")]
    pub view_switch_delay_max: Duration,
}

impl StreamStats {
    /// Adds `other`'s counters to these; the longest freeze is the longer one.
    pub fn add(&mut self, other: &Self) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.retransmissions += other.retransmissions;
        self.expected += other.expected;
        self.received += other.received;
        self.lost += other.lost;
        self.recovered += other.recovered;
        self.recovered_in_time += other.recovered_in_time;
        self.reordered += other.reordered;
        self.duplicates += other.duplicates;
        self.too_late += other.too_late;
        self.frames += other.frames;
        self.keyframes += other.keyframes;
        self.longest_freeze = self.longest_freeze.max(other.longest_freeze);
        self.freezes += other.freezes;
        self.layer_switches += other.layer_switches;
        self.time_at_view_height += other.time_at_view_height;
        self.time_off_view_height += other.time_off_view_height;
        self.time_switching += other.time_switching;
        self.view_switches += other.view_switches;
        self.view_switch_delay_total += other.view_switch_delay_total;
        self.view_switch_delay_max = self.view_switch_delay_max.max(other.view_switch_delay_max);
    }

    /// Mean delay from a view change to the first keyframe at the asked height.
    pub fn view_switch_delay_mean(&self) -> Option<Duration> {
        let count = u32::try_from(self.view_switches).ok().filter(|&n| n > 0)?;
        Some(self.view_switch_delay_total / count)
    }

    /// Share of the settled time (a view height known, no switch under way) that the
    /// stream showed the asked height, percent; `None` when no such time was measured.
    pub fn at_view_height_pct(&self) -> Option<f64> {
        let total = self.time_at_view_height + self.time_off_view_height;
        (!total.is_zero())
            .then(|| 100.0 * self.time_at_view_height.as_secs_f64() / total.as_secs_f64())
    }

    /// Lost sequence numbers never filled.
    pub fn residual(&self) -> u64 {
        self.lost.saturating_sub(self.recovered)
    }

    /// Raw loss, percent of expected (0 when nothing was expected).
    pub fn loss_pct(&self) -> f64 {
        percent(self.lost, self.expected)
    }

    /// Residual loss, percent of expected.
    pub fn residual_loss_pct(&self) -> f64 {
        percent(self.residual(), self.expected)
    }

    /// Share of lost packets recovered in time, percent (100 when nothing was lost).
    pub fn recovered_in_time_pct(&self) -> f64 {
        if self.lost == 0 {
            100.0
        } else {
            percent(self.recovered_in_time, self.lost)
        }
    }

    /// Average payload bitrate over `span`, bits per second.
    pub fn bits_per_second(&self, span: Duration) -> f64 {
        let seconds = span.as_secs_f64();
        if seconds > 0.0 {
            self.bytes as f64 * 8.0 / seconds
        } else {
            0.0
        }
    }
}

/// `part` as a percentage of `whole`; 0 when `whole` is 0.
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Completed frames and the gaps between them.
#[derive(Debug, Clone, Default)]
struct FrameTracker {
    /// RTP timestamp of the newest frame started.
    newest_started: Option<u32>,
    /// RTP timestamp of the newest frame completed.
    newest_completed: Option<u32>,
    /// When that frame completed.
    last_completion: Option<Duration>,
}

/// Whether RTP timestamp `a` is after `b`, across wrap-around.
fn is_newer(a: u32, b: u32) -> bool {
    // Reinterpreting the wrapped distance as signed is the standard serial-number comparison.
    (a.wrapping_sub(b) as i32) > 0
}

/// Tracks sequence, latency, frames and layers of one received SSRC.
///
/// Per packet: O(1), no allocation (the gap list and the layer-switch list allocate only when
/// there is loss or a switch, and keep their capacity).
#[derive(Debug, Clone)]
pub struct ReceivedStream {
    kind: StreamKind,
    config: MeasureConfig,
    sequence: SequenceWindow,
    frames: FrameTracker,
    stats: StreamStats,
    /// Detected gaps, before subtracting reordered fills.
    gaps_detected: u64,
    first_arrival: Option<Duration>,
    last_arrival: Duration,
    /// Last packet (any) at or after `measure_from`.
    last_arrival_measured: Option<Duration>,
    /// Last completed frame at or after `measure_from`.
    last_frame_measured: Option<Duration>,
    current_height: Option<u32>,
    switches: Vec<LayerSwitch>,
    /// The height the receiver's view asks this stream for, if known.
    target_height: Option<u32>,
    /// When the view last asked for a height the stream did not show: a switch is under
    /// way until a keyframe at that height arrives.
    switch_asked_at: Option<Duration>,
    /// Start of the interval in which height and target have been what they are; `None`
    /// while the height is unknown or the stream is paused.
    height_since: Option<Duration>,
    /// Time after `measure_from` spent at each height, in order of first appearance (a
    /// handful of entries: one per simulcast layer).
    time_at_height: Vec<(u32, Duration)>,
}

impl ReceivedStream {
    /// A stream with nothing received yet.
    pub fn new(kind: StreamKind, config: MeasureConfig) -> Self {
        Self {
            kind,
            config,
            sequence: SequenceWindow::new(),
            frames: FrameTracker::default(),
            stats: StreamStats::default(),
            gaps_detected: 0,
            first_arrival: None,
            last_arrival: Duration::ZERO,
            last_arrival_measured: None,
            last_frame_measured: None,
            current_height: None,
            switches: Vec::new(),
            target_height: None,
            switch_asked_at: None,
            height_since: None,
            time_at_height: Vec::new(),
        }
    }

    /// The receiver's view asks for `height` of this stream from `at` on (`None`: it asks
    /// for nothing in particular). Time at and off that height is measured from here; if
    /// the stream shows another height, a switch is under way until a keyframe at `height`
    /// arrives (its delay is measured, the time until then is neither at nor off).
    pub fn set_target_height(&mut self, at: Duration, height: Option<u32>) {
        if self.target_height != height {
            self.account_height(at);
            self.target_height = height;
            self.switch_asked_at = match (self.current_height, height) {
                (Some(current), Some(asked)) if current != asked => Some(at),
                _ => None,
            };
        }
    }

    /// The height the view asks for, if set.
    pub fn target_height(&self) -> Option<u32> {
        self.target_height
    }

    /// Time spent at each height after `measure_from`, in order of first appearance.
    pub fn time_at_height(&self) -> &[(u32, Duration)] {
        &self.time_at_height
    }

    /// Accounts the interval since `height_since` to the current height (and to the view
    /// target) and starts a new one at `now`.
    fn account_height(&mut self, now: Duration) {
        let (Some(height), Some(since)) = (self.current_height, self.height_since) else {
            return;
        };
        self.height_since = Some(now.max(since));
        let from = since.max(self.config.measure_from);
        let Some(elapsed) = now.checked_sub(from).filter(|d| !d.is_zero()) else {
            return;
        };
        match self.time_at_height.iter_mut().find(|(h, _)| *h == height) {
            Some((_, total)) => *total += elapsed,
            None => self.time_at_height.push((height, elapsed)),
        }
        match self.target_height {
            Some(target) if target == height => self.stats.time_at_view_height += elapsed,
            Some(_) => {
                // Within the grace after the view change the switch is under way; after it,
                // the stream is off its height.
                let grace_end = self
                    .switch_asked_at
                    .map_or(from, |asked| asked + SWITCH_GRACE);
                let switching = grace_end.saturating_sub(from).min(elapsed);
                self.stats.time_switching += switching;
                self.stats.time_off_view_height += elapsed - switching;
            }
            None => {}
        }
    }

    /// Audio or video.
    pub fn kind(&self) -> StreamKind {
        self.kind
    }

    /// Accounts one arriving packet.
    pub fn on_packet(&mut self, packet: &ReceivedPacket) -> PacketOutcome {
        let now = packet.arrival;
        self.stats.packets += 1;
        self.stats.bytes += packet.payload_len as u64;
        if packet.retransmission {
            self.stats.retransmissions += 1;
        }
        if self.first_arrival.is_none() {
            self.first_arrival = Some(now);
        }
        self.last_arrival = self.last_arrival.max(now);
        if now >= self.config.measure_from {
            self.last_arrival_measured = Some(now);
        }

        let event = self
            .sequence
            .on_arrival(packet.sequence_number, now, packet.retransmission);
        let (disposition, new_gaps) = match event {
            SeqEvent::Advanced { new_gaps } => (Disposition::InOrder, new_gaps),
            SeqEvent::Filled { waited, new_gaps } if packet.retransmission => {
                self.stats.recovered += 1;
                let in_time = waited <= self.config.recovery_deadline;
                if in_time {
                    self.stats.recovered_in_time += 1;
                }
                (Disposition::Recovered { in_time }, new_gaps)
            }
            SeqEvent::Filled { new_gaps, .. } => {
                self.stats.reordered += 1;
                (Disposition::Reordered, new_gaps)
            }
            SeqEvent::Duplicate => {
                self.stats.duplicates += 1;
                return PacketOutcome {
                    disposition: Disposition::Duplicate,
                    new_gaps: 0,
                    latency: None,
                };
            }
            SeqEvent::TooLate => {
                self.stats.too_late += 1;
                return PacketOutcome {
                    disposition: Disposition::TooLate,
                    new_gaps: 0,
                    latency: None,
                };
            }
        };
        self.gaps_detected += new_gaps;
        self.stats.received += 1;

        let latency = if packet.retransmission {
            None
        } else {
            packet.send_time.map(|sent| {
                now.saturating_sub(sent)
                    .saturating_sub(self.config.impairment_delay)
            })
        };

        if self.kind == StreamKind::Video {
            self.track_frame(packet);
            self.track_layer(packet);
        }

        PacketOutcome {
            disposition,
            new_gaps,
            latency,
        }
    }

    fn track_frame(&mut self, packet: &ReceivedPacket) {
        let ts = packet.rtp_timestamp;
        let frames = &mut self.frames;
        if frames
            .newest_started
            .is_none_or(|newest| is_newer(ts, newest))
        {
            frames.newest_started = Some(ts);
        }
        if !packet.marker
            || frames
                .newest_completed
                .is_some_and(|done| !is_newer(ts, done))
        {
            return;
        }
        frames.newest_completed = Some(ts);
        let now = packet.arrival;
        if let Some(previous) = frames.last_completion.replace(now) {
            self.account_gap(previous, now);
        }
        self.stats.frames += 1;
        if now >= self.config.measure_from {
            self.last_frame_measured = Some(now);
        }
    }

    /// Accounts the gap between frames completed at `previous` and `now`, counting only the
    /// part after `measure_from` (a hole during ramp-up is not a freeze).
    fn account_gap(&mut self, previous: Duration, now: Duration) {
        if now <= self.config.measure_from {
            return;
        }
        let gap = now.saturating_sub(previous.max(self.config.measure_from));
        self.stats.longest_freeze = self.stats.longest_freeze.max(gap);
        if gap > self.config.freeze_threshold {
            self.stats.freezes += 1;
        }
    }

    fn track_layer(&mut self, packet: &ReceivedPacket) {
        if !packet.keyframe_start {
            return;
        }
        self.stats.keyframes += 1;
        let Some(height) = packet.keyframe_height else {
            return;
        };
        self.account_height(packet.arrival);
        if self.height_since.is_none() {
            self.height_since = Some(packet.arrival);
        }
        if self.target_height == Some(height) {
            if let Some(asked) = self.switch_asked_at.take() {
                let delay = packet.arrival.saturating_sub(asked);
                self.stats.view_switches += 1;
                self.stats.view_switch_delay_total += delay;
                self.stats.view_switch_delay_max = self.stats.view_switch_delay_max.max(delay);
            }
        }
        if let Some(previous) = self.current_height.replace(height) {
            if previous != height {
                self.stats.layer_switches += 1;
                if self.switches.len() < MAX_RECORDED_SWITCHES {
                    self.switches.push(LayerSwitch {
                        at: packet.arrival,
                        from_height: previous,
                        to_height: height,
                    });
                }
            }
        }
    }

    /// Ends the stream at `end`: the time since its last completed frame counts as a gap (a
    /// stream that stopped is frozen). Call it only for streams that should have run to the
    /// end; a participant that left stops legitimately.
    pub fn finish(&mut self, end: Duration) {
        if self.kind != StreamKind::Video {
            return;
        }
        self.account_height(end);
        if let Some(previous) = self.frames.last_completion {
            if end > previous {
                self.account_gap(previous, end);
            }
        }
    }

    /// The sender stopped forwarding this stream on purpose (it left the receiver's
    /// allocation, e.g. last-N): the time until its next frame is not a freeze.
    pub fn pause(&mut self) {
        self.frames.last_completion = None;
        self.account_height(self.last_arrival);
        self.height_since = None;
        // A switch the view asked for before the pause is not timed across it.
        self.switch_asked_at = None;
    }

    /// The stream's counters so far.
    pub fn stats(&self) -> StreamStats {
        let mut stats = self.stats;
        stats.expected = self.sequence.expected();
        stats.lost = self.gaps_detected.saturating_sub(stats.reordered);
        stats
    }

    /// Whether it delivered media at or after `measure_from`: a completed frame for video, a
    /// packet for audio.
    pub fn received_after_ramp_up(&self) -> bool {
        match self.kind {
            StreamKind::Audio => self.last_arrival_measured.is_some(),
            StreamKind::Video => self.last_frame_measured.is_some(),
        }
    }

    /// Height of the last keyframe whose height was known.
    pub fn current_height(&self) -> Option<u32> {
        self.current_height
    }

    /// The layer switches seen, oldest first (at most the first 256; all are counted in
    /// [`StreamStats::layer_switches`]).
    pub fn layer_switches(&self) -> &[LayerSwitch] {
        &self.switches
    }

    /// First arrival, since run start.
    pub fn first_arrival(&self) -> Option<Duration> {
        self.first_arrival
    }

    /// Latest arrival, since run start.
    pub fn last_arrival(&self) -> Option<Duration> {
        self.first_arrival.map(|_| self.last_arrival)
    }

    /// Average payload bitrate from the first to the last arrival, bits per second.
    pub fn bits_per_second(&self) -> f64 {
        let span = self.first_arrival.map_or(Duration::ZERO, |first| {
            self.last_arrival.saturating_sub(first)
        });
        self.stats.bits_per_second(span)
    }
}
