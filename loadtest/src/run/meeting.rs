//! The media side of a run: the [`Application`] that makes every simulated participant send
//! what the scenario says (Opus with DTX and speaker turns, VP8 or H264 simulcast), answer the
//! node's keyframe requests and NACKs, and measure what it receives (including, from the
//! decrypted first packet of each video frame, keyframe heights against the receiver's view).
//!
//! A camera sends the layers both the node's sender constraints and its sender's own
//! bandwidth estimate allow ([`CameraEstimate`]), as a browser does.
//!
//! One [`MeetingApp`] serves all participants of a driver thread. Its sources sit in one
//! binary heap of due times, so a wake-up costs a heap operation per packet, not a scan.
//!
//! A member both sends and receives ([`MeetingApp::add_member`]: one transport per person, as
//! with Colibri2), or only sends ([`MeetingApp::add_sender`]) or only receives
//! ([`MeetingApp::add_receiver`]): Janus gives a person a publisher and a subscriber
//! transport. A receive-only member has SSRCs of its own ([`MeetingApp::set_receiver_streams`]:
//! Janus rewrites SSRCs per subscription), the others share the senders' SSRCs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use super::camera::Camera;
use super::sender_estimate::CameraEstimate;
use crate::measure::{
    HeightView, LatencyHistogram, MeasureConfig, NtpEpoch, ReceivedPacket, ReceiverMeasurements,
    StreamKind,
};
use crate::media::{
    inspect, AudioSource, LayerSet, MediaPacket, RetransmitBuffer, RtpWriter, RtxStream, SdesTag,
    SendExtensions, SpeakerSchedule, VideoCodec,
};
use crate::participant::{
    Application, Outbox, ParticipantEvent, ParticipantId, ReceivedRtp, Verification,
};
use crate::report::SenderLayers;

/// Packets kept per video layer for retransmission (about 1 s of the top layer).
const RETRANSMIT_CAPACITY: usize = 512;
/// How old a packet may be and still be retransmitted.
const RETRANSMIT_MAX_AGE: Duration = Duration::from_secs(1);

/// Payload types and extension ids the participants use (the target's).
#[derive(Debug, Clone, Copy)]
pub struct MediaFormat {
    /// Opus payload type.
    pub audio_pt: u8,
    /// Video payload type.
    pub video_pt: u8,
    /// Video RTX payload type.
    pub video_rtx_pt: u8,
    /// The video codec, to read the decrypted first packets of frames.
    pub video_codec: VideoCodec,
    /// The abs-capture-time extension id, to read latency on receive.
    pub abs_capture_time_id: Option<u8>,
    /// Whether audio packets carry the transport-wide sequence number too (Janus negotiates
    /// transport-cc on video only).
    pub audio_transport_cc: bool,
    /// The `mid`/`rid` values packets carry where the writer has their ids (WHIP: browsers
    /// name the m-line and the simulcast encoding in every packet).
    pub sdes: SdesTags,
}

/// The `mid` of each m-line and the `rid` of each simulcast layer, written into packets
/// when the [`RtpWriter`]'s ids include them. `Copy` and inline: no allocation per packet.
#[derive(Debug, Clone, Copy, Default)]
pub struct SdesTags {
    /// The audio m-line's mid.
    pub audio_mid: Option<SdesTag>,
    /// The video m-line's mid.
    pub video_mid: Option<SdesTag>,
    /// The rid of each video layer, lowest first (the scenario allows at most 3).
    pub rids: [Option<SdesTag>; 3],
}

/// What one participant sends and how to answer for it.
#[derive(Debug)]
pub struct MemberMedia {
    /// Microphone, if the participant sends audio.
    pub audio: Option<AudioSource>,
    /// Camera, if it sends video.
    pub video: Option<Camera>,
    /// One RTX stream per video layer (same order as the layers).
    pub rtx: Vec<RtxStream>,
    /// Its index in the scenario (speaker schedule).
    pub index: u32,
    /// The name of its camera source (Jitsi: `<endpoint>-v0`), for the receivers'
    /// allocation.
    pub video_source_name: Option<String>,
    /// How the camera follows the participant's own bandwidth estimate
    /// ([`ParticipantEvent::SendEstimate`]); `None`: the estimate is ignored.
    pub estimate: Option<CameraEstimate>,
}

#[derive(Debug)]
struct Member {
    media: MemberMedia,
    retransmit: Vec<RetransmitBuffer>,
    measurements: ReceiverMeasurements,
    /// Whether what it receives is measured (false: it only sends).
    receives: bool,
    /// The SSRCs this member receives, when they are its own (a receive-only member);
    /// otherwise the senders' SSRCs ([`MeetingApp`]'s `owners`) apply.
    ssrcs: Option<HashMap<u32, StreamOwner>>,
    connected: bool,
    /// The video SSRCs the node says it forwards to this member (ForwardedSources).
    forwarded: Vec<u32>,
    /// The member whose measurements (and SSRC map) what this one receives goes to (a
    /// WHEP session measured for its person); `None`: its own.
    measured_by: Option<ParticipantId>,
    /// The camera layers the node's sender constraints allow (all until it sends some).
    constrained: LayerSet,
    /// The camera's answer to the sender's estimate, when it follows one.
    estimate: Option<CameraEstimate>,
}

/// Whose stream an SSRC is, seen by a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOwner {
    /// Audio or video.
    pub kind: StreamKind,
    /// The media SSRC a retransmission on this SSRC repairs (`None`: not an RTX SSRC).
    pub repairs: Option<u32>,
    /// Who sends it, as an opaque number (the target's sender identity, e.g. the sender's
    /// feed id): a stream whose sender changes under the same SSRC is a new one.
    pub sender: u64,
}

/// Counters of the media side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeetingStats {
    /// Media packets sent (first transmissions).
    pub media_sent: u64,
    /// Retransmissions sent in answer to NACKs.
    pub retransmissions_sent: u64,
    /// NACKed packets no longer in the buffer.
    pub retransmissions_missed: u64,
    /// Keyframe requests received (PLI/FIR).
    pub keyframe_requests: u64,
    /// Sends the participant refused (not connected yet, gone, too large).
    pub send_errors: u64,
    /// Received RTP packets no stream was known for (bandwidth probes included).
    pub unknown_packets: u64,
    /// Received padding-only packets (the node's bandwidth probes).
    pub probe_packets: u64,
    /// Participants whose transport failed.
    pub failed: u64,
}

/// Receive-side figures of one second, all receivers.
#[derive(Debug, Clone, Default)]
pub struct SecondFigures {
    /// Packets received.
    pub packets: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// New sequence gaps seen.
    pub gaps: u64,
    /// Latency samples.
    pub latency: LatencyHistogram,
}

/// The [`Application`] of a run.
#[derive(Debug)]
pub struct MeetingApp {
    start: Instant,
    epoch: NtpEpoch,
    format: MediaFormat,
    writer: RtpWriter,
    schedule: SpeakerSchedule,
    measure: MeasureConfig,
    members: HashMap<ParticipantId, Member>,
    owners: HashMap<u32, StreamOwner>,
    /// A camera's SSRC as receivers see it (its lowest layer's), by source name.
    video_sources: HashMap<String, u32>,
    /// `(due, participant, source)`: source 0 is audio, 1 video. Entries may be stale (the
    /// source moved or the member left): checked when popped.
    due: BinaryHeap<Reverse<(Instant, u32, u8)>>,
    buffer: Vec<u8>,
    /// Packets due in one wake-up (kept to reuse its allocation).
    scratch: Vec<MediaPacket>,
    stats: MeetingStats,
    current_second: u64,
    second: SecondFigures,
    seconds: Vec<(u64, SecondFigures)>,
    /// Whether decrypted video packets are read for keyframes and heights.
    read_frame_starts: bool,
}

impl MeetingApp {
    /// An empty meeting starting at `start` (the media clock's zero).
    pub fn new(
        start: Instant,
        epoch: NtpEpoch,
        format: MediaFormat,
        writer: RtpWriter,
        schedule: SpeakerSchedule,
        measure: MeasureConfig,
    ) -> Self {
        Self {
            start,
            epoch,
            format,
            writer,
            schedule,
            measure,
            members: HashMap::new(),
            owners: HashMap::new(),
            video_sources: HashMap::new(),
            due: BinaryHeap::new(),
            buffer: Vec::with_capacity(1500),
            scratch: Vec::new(),
            stats: MeetingStats::default(),
            current_second: 0,
            second: SecondFigures::default(),
            seconds: Vec::new(),
            read_frame_starts: true,
        }
    }

    /// Whether decrypted video packets are read for keyframes and their heights (on by
    /// default). Off, only the sampled packets would be read, which measures heights from
    /// a random few keyframes: misleading, so nothing is read.
    pub fn set_read_frame_starts(&mut self, read: bool) {
        self.read_frame_starts = read;
    }

    /// Adds a participant; its media starts once its transport is connected.
    pub fn add_member(&mut self, participant: ParticipantId, mut media: MemberMedia) {
        if let Some(audio) = &media.audio {
            self.owners.insert(
                audio.ssrc(),
                StreamOwner {
                    kind: StreamKind::Audio,
                    repairs: None,
                    sender: u64::from(participant.0),
                },
            );
        }
        let mut retransmit = Vec::new();
        let mut estimate = None;
        let mut constrained = LayerSet::EMPTY;
        if let Some(video) = &media.video {
            let ssrcs: Vec<u32> = video.layers().iter().map(|l| l.ssrc).collect();
            constrained = LayerSet::first(ssrcs.len());
            estimate = media.estimate.take();
            for &ssrc in &ssrcs {
                self.owners.insert(
                    ssrc,
                    StreamOwner {
                        kind: StreamKind::Video,
                        repairs: None,
                        sender: u64::from(participant.0),
                    },
                );
                retransmit.push(RetransmitBuffer::new(
                    RETRANSMIT_CAPACITY,
                    RETRANSMIT_MAX_AGE,
                ));
            }
            if let (Some(name), Some(&primary)) = (&media.video_source_name, ssrcs.first()) {
                self.video_sources.insert(name.clone(), primary);
            }
            for (rtx, media_ssrc) in media.rtx.iter().zip(&ssrcs) {
                self.owners.insert(
                    rtx.ssrc(),
                    StreamOwner {
                        kind: StreamKind::Video,
                        repairs: Some(*media_ssrc),
                        sender: u64::from(participant.0),
                    },
                );
            }
        }
        self.members.insert(
            participant,
            Member {
                media,
                retransmit,
                measurements: ReceiverMeasurements::new(self.measure, Duration::from_secs(1)),
                receives: true,
                ssrcs: None,
                connected: false,
                forwarded: Vec::new(),
                measured_by: None,
                constrained,
                estimate,
            },
        );
        // The camera starts with the layers its initial estimate allows.
        if let Some(member) = self.members.get_mut(&participant) {
            if let (Some(video), Some(estimate)) =
                (member.media.video.as_mut(), member.estimate.as_ref())
            {
                video.set_active_layers(Duration::ZERO, estimate.allowed());
            }
        }
    }

    /// Adds a person's view without a transport of its own: a receive-only member that
    /// measures what the person's sessions ([`add_view_session`](Self::add_view_session))
    /// receive, with SSRCs of its own ([`set_receiver_streams`](Self::set_receiver_streams)).
    /// It counts as connected; whether the person is connected is its sessions' business.
    /// `view` must be an id no transport of the driver uses.
    pub fn add_view(&mut self, view: ParticipantId, index: u32) {
        self.add_receiver(view, index);
        if let Some(member) = self.members.get_mut(&view) {
            member.connected = true;
        }
    }

    /// Adds a transport that only receives, measured by `view` (one WHEP session of the
    /// person whose view it is).
    pub fn add_view_session(&mut self, participant: ParticipantId, view: ParticipantId) {
        let media = MemberMedia {
            audio: None,
            video: None,
            rtx: Vec::new(),
            index: 0,
            video_source_name: None,
            estimate: None,
        };
        self.add_member(participant, media);
        if let Some(member) = self.members.get_mut(&participant) {
            member.receives = false;
            member.measured_by = Some(view);
        }
    }

    /// Adds a participant that only sends `media` (what it receives is not measured: RTCP
    /// only, e.g. a Janus publisher transport).
    pub fn add_sender(&mut self, participant: ParticipantId, media: MemberMedia) {
        self.add_member(participant, media);
        if let Some(member) = self.members.get_mut(&participant) {
            member.receives = false;
        }
    }

    /// Adds a participant that only receives, with SSRCs of its own (set by
    /// [`set_receiver_streams`](Self::set_receiver_streams); a Janus subscriber transport).
    /// `index` is its person's place in the scenario.
    pub fn add_receiver(&mut self, participant: ParticipantId, index: u32) {
        let media = MemberMedia {
            audio: None,
            video: None,
            rtx: Vec::new(),
            index,
            video_source_name: None,
            estimate: None,
        };
        self.add_member(participant, media);
        if let Some(member) = self.members.get_mut(&participant) {
            member.ssrcs = Some(HashMap::new());
        }
    }

    /// The SSRCs a receive-only `participant` gets now and whose they are (the target's
    /// subscription changed). Video streams no longer in the set, or now carrying another
    /// sender, stopped on purpose: the wait for their next frame is no freeze.
    pub fn set_receiver_streams(
        &mut self,
        participant: ParticipantId,
        streams: HashMap<u32, StreamOwner>,
    ) {
        let Some(member) = self.members.get_mut(&participant) else {
            return;
        };
        let previous = member.ssrcs.replace(streams).unwrap_or_default();
        let Some(current) = member.ssrcs.as_ref() else {
            return;
        };
        for (ssrc, before) in &previous {
            if before.kind == StreamKind::Video
                && before.repairs.is_none()
                && current
                    .get(ssrc)
                    .is_none_or(|now| now.sender != before.sender)
            {
                member.measurements.pause(*ssrc);
            }
        }
    }

    /// Removes a participant (it left); returns what it measured (`None` for a send-only
    /// member).
    pub fn remove_member(&mut self, participant: ParticipantId) -> Option<ReceiverMeasurements> {
        let member = self.members.remove(&participant)?;
        if let Some(audio) = &member.media.audio {
            self.owners.remove(&audio.ssrc());
        }
        if let Some(video) = &member.media.video {
            for layer in video.layers() {
                self.owners.remove(&layer.ssrc);
            }
        }
        for rtx in &member.media.rtx {
            self.owners.remove(&rtx.ssrc());
        }
        if let Some(name) = &member.media.video_source_name {
            self.video_sources.remove(name);
        }
        // Its camera stopped because it left: no receiver saw a freeze.
        if let Some(video) = &member.media.video {
            let layers = video.layers();
            for other in self.members.values_mut() {
                for layer in &layers {
                    other.measurements.pause(layer.ssrc);
                }
            }
        }
        member.receives.then_some(member.measurements)
    }

    /// The counters.
    pub fn stats(&self) -> MeetingStats {
        self.stats
    }

    /// Whether what `participant` receives is measured (false for a send-only member).
    pub fn receives(&self, participant: ParticipantId) -> bool {
        self.members.get(&participant).is_some_and(|m| m.receives)
    }

    /// Whether `participant`'s transport is up.
    pub fn is_connected(&self, participant: ParticipantId) -> bool {
        self.members.get(&participant).is_some_and(|m| m.connected)
    }

    /// The participants present.
    pub fn members(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.members.keys().copied()
    }

    /// What `participant` measured so far (`None` for a send-only member).
    pub fn measurements(&self, participant: ParticipantId) -> Option<&ReceiverMeasurements> {
        self.members
            .get(&participant)
            .filter(|m| m.receives)
            .map(|m| &m.measurements)
    }

    /// Ends every stream's measurement at `end` (since the start).
    pub fn finish(&mut self, end: Duration) {
        for member in self.members.values_mut() {
            member.measurements.finish(end);
        }
    }

    /// The per-second receive figures completed so far (seconds since the start), taken.
    pub fn take_seconds(&mut self) -> Vec<(u64, SecondFigures)> {
        std::mem::take(&mut self.seconds)
    }

    /// The node now forwards `sources` (video source names) to `participant`: streams that
    /// left the set stopped on purpose, so the wait for their next frame is no freeze.
    pub fn set_forwarded(&mut self, participant: ParticipantId, sources: &[String]) {
        let ssrcs: Vec<u32> = sources
            .iter()
            .filter_map(|name| self.video_sources.get(name).copied())
            .collect();
        let Some(member) = self.members.get_mut(&participant) else {
            return;
        };
        // Every camera stream not in the new set, not only those of the previous one: the
        // node announces the set when it changes, and a set from before the bridge channel
        // opened is never seen.
        let stopped: Vec<u32> = member
            .measurements
            .streams()
            .filter(|(ssrc, stream)| stream.kind() == StreamKind::Video && !ssrcs.contains(ssrc))
            .map(|(ssrc, _)| ssrc)
            .collect();
        for ssrc in stopped {
            member.measurements.pause(ssrc);
        }
        member.forwarded = ssrcs;
    }

    /// `participant`'s view now asks for `stage_height` of the camera named `stage_source`
    /// and `other_height` of every other camera (layer heights, see [`HeightView`]): what
    /// its streams' keyframe heights are measured against from `now` on.
    pub fn set_view_heights(
        &mut self,
        participant: ParticipantId,
        now: Instant,
        stage_source: Option<&str>,
        stage_height: u32,
        other_height: u32,
    ) {
        let on_stage = stage_source.and_then(|name| self.video_sources.get(name).copied());
        self.set_view_heights_by_ssrc(participant, now, on_stage, stage_height, other_height);
    }

    /// [`set_view_heights`](Self::set_view_heights) with the on-stage camera named by the
    /// SSRC `participant` receives it with (a Janus subscription's own SSRC).
    pub fn set_view_heights_by_ssrc(
        &mut self,
        participant: ParticipantId,
        now: Instant,
        on_stage: Option<u32>,
        stage_height: u32,
        other_height: u32,
    ) {
        let at = now.saturating_duration_since(self.start);
        if let Some(member) = self.members.get_mut(&participant) {
            member.measurements.set_view(
                at,
                HeightView {
                    on_stage,
                    on_stage_height: stage_height,
                    other_height,
                },
            );
        }
    }

    /// Limits what `participant` sends of its camera to layers no higher than
    /// `max_height` (the node's SenderSourceConstraints; 0 stops the camera), as Jitsi
    /// Meet's client does.
    ///
    /// The tighter of these constraints and the sender's own estimate wins.
    pub fn constrain_video(&mut self, participant: ParticipantId, max_height: i32, now: Instant) {
        let Some(member) = self.members.get_mut(&participant) else {
            return;
        };
        let Some(video) = member.media.video.as_ref() else {
            return;
        };
        let mut set = LayerSet::EMPTY;
        for (i, layer) in video.layers().iter().enumerate() {
            if max_height > 0 && i64::from(layer.height) <= i64::from(max_height) {
                set = set.with(i);
            }
        }
        if max_height > 0 && set.is_empty() {
            set = set.with(0);
        }
        member.constrained = set;
        self.apply_camera_layers(participant, now, false);
    }

    /// Sends the layers both the sender constraints and the estimate allow (a layer that
    /// comes back starts with a keyframe: [`VideoSource::set_layer_active`]).
    ///
    /// [`VideoSource::set_layer_active`]: crate::media::VideoSource::set_layer_active
    /// `by_estimate`: the estimate caused it (counted when what is sent changes).
    fn apply_camera_layers(&mut self, participant: ParticipantId, now: Instant, by_estimate: bool) {
        let since = now.saturating_duration_since(self.start);
        let Some(member) = self.members.get_mut(&participant) else {
            return;
        };
        let Some(video) = member.media.video.as_mut() else {
            return;
        };
        let allowed = member.estimate.as_ref().map_or(member.constrained, |e| {
            intersect(member.constrained, e.allowed())
        });
        let before = video.active_layers();
        if allowed == before {
            return;
        }
        video.set_active_layers(since, allowed);
        if let (Some(estimate), true) = (member.estimate.as_mut(), member.connected) {
            if by_estimate {
                estimate.count_change(before.len(), allowed.len());
            }
            estimate.on_layers_sent(since, allowed.len());
        }
        if let Some(due) = video.poll_timeout() {
            self.due.push(Reverse((self.start + due, participant.0, 1)));
        }
    }

    /// How every camera present followed its sender's estimate, up to `end` (since the
    /// start), by the sender's place in the scenario.
    pub fn sender_layers(&mut self, end: Duration) -> Vec<SenderLayers> {
        let mut senders: Vec<SenderLayers> = self
            .members
            .values_mut()
            .filter_map(|m| {
                let index = m.media.index;
                Some(m.estimate.as_mut()?.summary(index, end))
            })
            .collect();
        senders.sort_by_key(|s| s.sender);
        senders
    }

    fn schedule_sources(&mut self, participant: ParticipantId) {
        let Some(member) = self.members.get(&participant) else {
            return;
        };
        if let Some(audio) = &member.media.audio {
            self.due.push(Reverse((
                self.start + audio.poll_timeout(),
                participant.0,
                0,
            )));
        }
        if let Some(due) = member.media.video.as_ref().and_then(Camera::poll_timeout) {
            self.due.push(Reverse((self.start + due, participant.0, 1)));
        }
    }

    fn send(&mut self, participant: ParticipantId, packet: &MediaPacket, out: &mut Outbox<'_>) {
        let since = out.now().saturating_duration_since(self.start);
        let transport_cc = self.format.audio_transport_cc
            || !matches!(packet.kind, crate::media::MediaKind::Audio);
        let extensions = SendExtensions {
            // The participant writes its transport-wide number over this placeholder.
            transport_cc_seq: self
                .writer
                .ids()
                .transport_cc
                .filter(|_| transport_cc)
                .map(|_| 0),
            abs_capture_ntp: Some(self.epoch.to_ntp(since)),
            ..SendExtensions::default()
        };
        let sdes = &self.format.sdes;
        let extensions = match packet.kind {
            crate::media::MediaKind::Audio => SendExtensions {
                mid: sdes.audio_mid,
                ..extensions
            },
            crate::media::MediaKind::Video { layer } => {
                let rid = sdes.rids.get(usize::from(layer)).copied().flatten();
                // A retransmission names the encoding it repairs (rrid), not its own.
                let retransmission = packet.original_sequence_number.is_some();
                SendExtensions {
                    mid: sdes.video_mid,
                    rid: rid.filter(|_| !retransmission),
                    repaired_rid: rid.filter(|_| retransmission),
                    ..extensions
                }
            }
        };
        if self
            .writer
            .write(packet, &extensions, &mut self.buffer)
            .is_err()
            || out.send_rtp(participant, &self.buffer).is_err()
        {
            self.stats.send_errors += 1;
        }
    }

    fn roll_second(&mut self, since: Duration) {
        let second = since.as_secs();
        if second != self.current_second {
            let done = std::mem::take(&mut self.second);
            self.seconds.push((self.current_second, done));
            self.current_second = second;
        }
    }
}

impl Application for MeetingApp {
    fn on_rtp(
        &mut self,
        participant: ParticipantId,
        now: Instant,
        packet: &ReceivedRtp<'_>,
        _out: &mut Outbox<'_>,
    ) {
        let arrival = now.saturating_duration_since(self.start);
        self.roll_second(arrival);
        // A session measured for its person's view records there.
        let participant = self
            .members
            .get(&participant)
            .and_then(|m| m.measured_by)
            .unwrap_or(participant);
        // A receive-only member's SSRCs are its own (its subscription's); the others see the
        // senders' SSRCs.
        let own = self
            .members
            .get(&participant)
            .and_then(|m| m.ssrcs.as_ref());
        let Some(owner) = own.unwrap_or(&self.owners).get(&packet.ssrc).copied() else {
            self.stats.unknown_packets += 1;
            return;
        };
        // The codec payload, where decrypted: after the original sequence number for RTX.
        let mut payload = packet.verified_payload();
        let (ssrc, sequence_number, retransmission) = match owner.repairs {
            None => (packet.ssrc, packet.sequence_number, false),
            Some(_) if packet.padding => {
                // Padding-only RTX: the node's bandwidth probes.
                self.stats.probe_packets += 1;
                return;
            }
            Some(media_ssrc) => {
                // A retransmission carries the original sequence number first in its
                // (always decrypted) payload.
                let original = match packet.verification {
                    Verification::Verified(_) => packet
                        .verified_payload()
                        .and_then(|p| p.get(..2))
                        .and_then(|b| <[u8; 2]>::try_from(b).ok())
                        .map(u16::from_be_bytes),
                    _ => None,
                };
                payload = payload.and_then(|p| p.get(2..));
                match original {
                    Some(seq) => (media_ssrc, seq, true),
                    None => {
                        self.stats.unknown_packets += 1;
                        return;
                    }
                }
            }
        };
        if packet.padding && packet.payload_len == 0 {
            self.stats.probe_packets += 1;
            return;
        }
        let send_time = self
            .format
            .abs_capture_time_id
            .and_then(|id| packet.extension(id))
            .and_then(|v| v.get(..8))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .and_then(|b| self.epoch.since_epoch(u64::from_be_bytes(b)));
        let Some(member) = self.members.get_mut(&participant) else {
            return;
        };
        // A decrypted video packet that starts a frame tells keyframe and resolution (the
        // participant decrypts the first packet of every frame).
        let frame_start = payload
            .filter(|_| self.read_frame_starts && owner.kind == StreamKind::Video)
            .and_then(|p| inspect::frame_start(self.format.video_codec, p));
        let received = ReceivedPacket {
            sequence_number,
            rtp_timestamp: packet.timestamp,
            marker: packet.marker,
            arrival,
            payload_len: packet.payload_len,
            send_time,
            retransmission,
            keyframe_start: frame_start.is_some_and(|f| f.keyframe),
            keyframe_height: frame_start.and_then(|f| f.resolution).map(|(_, h)| h),
        };
        let outcome = member.measurements.on_packet(ssrc, owner.kind, &received);
        self.second.packets += 1;
        self.second.bytes += packet.payload_len as u64;
        self.second.gaps += outcome.new_gaps;
        if let Some(latency) = outcome.latency {
            self.second.latency.record(latency);
        }
    }

    fn on_event(
        &mut self,
        participant: ParticipantId,
        now: Instant,
        event: ParticipantEvent,
        out: &mut Outbox<'_>,
    ) {
        let since = now.saturating_duration_since(self.start);
        match event {
            ParticipantEvent::Connected { .. } => {
                if let Some(member) = self.members.get_mut(&participant) {
                    member.connected = true;
                    let layers = member.media.video.as_ref().map(|v| v.active_layers().len());
                    if let (Some(estimate), Some(layers)) = (member.estimate.as_mut(), layers) {
                        estimate.on_layers_sent(since, layers);
                    }
                }
                self.schedule_sources(participant);
            }
            ParticipantEvent::SendEstimate(update) => {
                let Some(member) = self.members.get_mut(&participant) else {
                    return;
                };
                let Some(estimate) = member.estimate.as_mut() else {
                    return;
                };
                let changed = estimate.on_estimate(update.target_bps);
                let wanted = estimate.wanted_bps(member.constrained);
                if let Some(p) = out.participant(participant) {
                    p.request_send_bitrate(now, wanted);
                }
                if changed.is_some() {
                    self.apply_camera_layers(participant, now, true);
                }
            }
            ParticipantEvent::Failed(_) => self.stats.failed += 1,
            ParticipantEvent::KeyframeRequest { ssrc, .. } => {
                self.stats.keyframe_requests += 1;
                if let Some(video) = self
                    .members
                    .get_mut(&participant)
                    .and_then(|m| m.media.video.as_mut())
                {
                    video.request_keyframe_for_ssrc(since, ssrc);
                    if let Some(due) = video.poll_timeout() {
                        self.due.push(Reverse((self.start + due, participant.0, 1)));
                    }
                }
            }
            ParticipantEvent::Nack {
                ssrc,
                sequence_numbers,
            } => {
                let Some(member) = self.members.get_mut(&participant) else {
                    return;
                };
                let Some(layer) = member
                    .media
                    .video
                    .as_ref()
                    .and_then(|v| v.layer_of_ssrc(ssrc))
                else {
                    return;
                };
                let mut answers = Vec::new();
                if let (Some(buffer), Some(rtx)) = (
                    member.retransmit.get(layer),
                    member.media.rtx.get_mut(layer),
                ) {
                    for seq in sequence_numbers {
                        match rtx.answer_nack(buffer, seq, since) {
                            Some(packet) => answers.push(packet),
                            None => self.stats.retransmissions_missed += 1,
                        }
                    }
                }
                for packet in answers {
                    self.stats.retransmissions_sent += 1;
                    self.send(participant, &packet, out);
                }
            }
            _ => {}
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.due.peek().map(|Reverse((due, _, _))| *due)
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Outbox<'_>) {
        let since = now.saturating_duration_since(self.start);
        while let Some(&Reverse((due, id, source))) = self.due.peek() {
            if due > now {
                break;
            }
            self.due.pop();
            let participant = ParticipantId(id);
            let Some(member) = self.members.get_mut(&participant) else {
                continue;
            };
            if !member.connected {
                continue;
            }
            let mut packets = std::mem::take(&mut self.scratch);
            packets.clear();
            let next = if source == 0 {
                let Some(audio) = member.media.audio.as_mut() else {
                    continue;
                };
                // A stale entry: the source is not due (a newer entry exists).
                if self.start + audio.poll_timeout() > now {
                    continue;
                }
                let speaking = self.schedule.is_speaking(member.media.index, since);
                if let Some(packet) = audio.poll(since, speaking) {
                    packets.push(packet);
                }
                Some(audio.poll_timeout())
            } else {
                let Some(video) = member.media.video.as_mut() else {
                    continue;
                };
                match video.poll_timeout() {
                    Some(t) if self.start + t <= now => {}
                    _ => continue,
                }
                while let Some(packet) = video.poll(since) {
                    if let crate::media::MediaKind::Video { layer } = packet.kind {
                        if let Some(buffer) = member.retransmit.get_mut(usize::from(layer)) {
                            buffer.insert(packet);
                        }
                    }
                    packets.push(packet);
                }
                video.poll_timeout()
            };
            if let Some(next) = next {
                self.due.push(Reverse((self.start + next, id, source)));
            }
            for packet in &packets {
                self.stats.media_sent += 1;
                self.send(participant, packet, out);
            }
            self.scratch = packets;
        }
    }
}

/// The layers in both sets.
fn intersect(a: LayerSet, b: LayerSet) -> LayerSet {
    a.iter()
        .filter(|&layer| b.contains(layer))
        .fold(LayerSet::EMPTY, LayerSet::with)
}
