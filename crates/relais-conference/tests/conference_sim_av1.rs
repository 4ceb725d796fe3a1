//! AV1 SVC with the dependency descriptor through the simulator: the synthetic source and
//! its checker on their own (clean, thinned by hand per decode target, and the mistakes an
//! SFU could make), then a [`relais_conference::Conference`] thinning one L3T3_KEY or L3T3
//! sender for a 180p and a 720p receiver.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

#[allow(
    unused_imports,
    reason = "the shared simulator re-exports checkers this binary does not use"
)]
mod sim;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use relais_conference::allocation::{ReceiverConstraintsUpdate, VideoConstraints, VideoType};
use relais_conference::{
    CodecName, ConferenceConfig, EndpointDescription, EndpointId, MediaKind, NegotiatedCodec,
    PublishedSource,
};
use relais_rtp::codec::av1::{self, DependencyDescriptorReader, ScalabilityMode};
use relais_rtp::extensions::{ExtensionKind, ExtensionMap};
use relais_rtp::rtp::{ExtensionForm, RtpPacket};

use sim::check::*;
use sim::harness::{pli_ssrcs, Harness};
use sim::media::*;

/// These receivers send no transport-wide feedback: allocate without a bandwidth estimate.
fn no_feedback_config() -> ConferenceConfig {
    ConferenceConfig {
        bandwidth_estimation: false,
        ..ConferenceConfig::default()
    }
}

const STEP: Duration = Duration::from_millis(5);

fn parse(packet: &[u8]) -> RtpPacket<&[u8]> {
    RtpPacket::parse(packet).unwrap()
}

fn descriptor_value(packet: &[u8]) -> Vec<u8> {
    parse(packet)
        .extension(EXT_DEPENDENCY_DESCRIPTOR)
        .unwrap()
        .to_vec()
}

/// Polls `source` every 5 ms from `from` for `length`.
fn run_source(source: &mut Av1SvcSource, from: Instant, length: Duration) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut now = from;
    while now < from + length {
        packets.extend(source.poll(now));
        now += STEP;
    }
    packets
}

fn check(packets: &[Vec<u8>]) -> Av1StreamChecker {
    let mut checker = Av1StreamChecker::new();
    for packet in packets {
        checker.on_packet(packet);
    }
    checker.flush();
    checker
}

/// Sets the marker on the last packet of every timestamp and clears it elsewhere, then
/// renumbers from the first packet's sequence number: what an SFU does after thinning.
fn remark_and_renumber(packets: &mut [Vec<u8>]) {
    let first = parse(&packets[0]).sequence_number();
    let timestamps: Vec<u32> = packets.iter().map(|p| parse(p).timestamp()).collect();
    for (index, packet) in packets.iter_mut().enumerate() {
        let last_of_unit = timestamps.get(index + 1) != Some(&timestamps[index]);
        let mut rtp = RtpPacket::parse(&mut packet[..]).unwrap();
        rtp.set_marker(last_of_unit);
        rtp.set_sequence_number(first.wrapping_add(index as u16));
    }
}

/// The packets of the frames that are part of `decode_target`, switching to `switch_to`
/// (when given) at the first frame start at or after packet `switch_at` where the
/// descriptor says the frame is a switch point of it; marker and numbering fixed up.
fn thin(packets: &[Vec<u8>], decode_target: u8, switch: Option<(usize, u8)>) -> Vec<Vec<u8>> {
    let mut reader = DependencyDescriptorReader::new();
    let mut current = decode_target;
    let mut kept = Vec::new();
    for (index, packet) in packets.iter().enumerate() {
        let d = reader.read(&descriptor_value(packet)).unwrap();
        if let Some((at, to)) = switch {
            if index >= at && current != to && d.start_of_frame && d.is_switch_point(to) {
                current = to;
            }
        }
        if d.is_part_of(current) {
            kept.push(packet.clone());
        }
    }
    remark_and_renumber(&mut kept);
    kept
}

fn ten_seconds(mode: ScalabilityMode) -> (Av1SvcSource, Vec<Vec<u8>>) {
    let start = Instant::now();
    let mut source = Av1SvcSource::new(Av1SvcConfig::new(3).with_mode(mode), start);
    let packets = run_source(&mut source, start, Duration::from_secs(10));
    (source, packets)
}

const MODES: [ScalabilityMode; 2] = [ScalabilityMode::L3T3Key, ScalabilityMode::L3T3];

#[test]
fn av1_source_into_checker_is_clean() {
    for mode in MODES {
        let (source, packets) = ten_seconds(mode);
        let mut checker = check(&packets);
        checker.assert_clean();
        let stats = checker.stats(source.ssrc()).unwrap();
        assert_eq!(stats.units_decoded, 300, "{mode:?}: {stats:?}");
        assert_eq!(stats.keyframes_decoded, 1);
        assert_eq!(stats.decoded_height, Some(720));
        assert_eq!(stats.resolutions, vec![(320, 180), (640, 360), (1280, 720)]);
        assert_eq!(checker.max_layers_over_last(4), Some((2, 2)));
        // T0, T1 and T2 are a quarter, a quarter and half of the units, on every layer.
        for spatial in 0..3 {
            assert_eq!(checker.frames_decoded(spatial, 0), 75);
            assert_eq!(checker.frames_decoded(spatial, 1), 75);
            assert_eq!(checker.frames_decoded(spatial, 2), 150);
            assert_eq!(source.stats(usize::from(spatial)).frames, 300);
        }
        assert_eq!(source.packets_sent(), packets.len() as u64);
    }
}

#[test]
fn av1_packets_look_like_libwebrtc() {
    let (source, packets) = ten_seconds(ScalabilityMode::L3T3Key);
    let mut reader = DependencyDescriptorReader::new();
    let mut structures = 0;
    let mut previous_frame: Option<u16> = None;
    for (index, packet) in packets.iter().enumerate() {
        let rtp = parse(packet);
        assert_eq!(rtp.payload_type(), AV1_PT);
        assert_eq!(rtp.ssrc(), source.ssrc());
        assert!(rtp.payload().len() <= 1100);
        let value = descriptor_value(packet);
        let d = reader.read(&value).unwrap();
        // One frame number per layer frame, consecutive.
        if d.start_of_frame {
            if let Some(previous) = previous_frame {
                assert_eq!(d.frame_number, previous.wrapping_add(1));
            }
            previous_frame = Some(d.frame_number);
        }
        if d.carries_structure {
            structures += 1;
            assert!(d.start_of_frame && d.spatial_id == 0);
            assert!(av1::starts_keyframe(rtp.payload()));
            assert_eq!(reader.structure(), Some(source.structure()));
            // ~110 bytes: the two-byte header-extension form.
            assert!(value.len() > 16, "{}", value.len());
            assert_eq!(rtp.extension_form(), Some(ExtensionForm::TwoByte));
        } else {
            assert!(!av1::starts_keyframe(rtp.payload()));
            assert_eq!(value.len(), av1::MANDATORY_LEN);
            assert_eq!(rtp.extension_form(), Some(ExtensionForm::OneByte));
        }
        // The marker ends the temporal unit: the top spatial layer's last packet.
        let next_ts = packets.get(index + 1).map(|p| parse(p).timestamp());
        let unit_ends = next_ts != Some(rtp.timestamp());
        assert_eq!(rtp.marker(), d.end_of_frame && d.spatial_id == 2);
        if index + 1 < packets.len() {
            assert_eq!(rtp.marker(), unit_ends);
        }
        let stamp = FrameStamp::parse(&rtp.payload()[AV1_AGGREGATION_HEADER_LEN..]).unwrap();
        assert_eq!(
            (stamp.layer, stamp.temporal_id, stamp.picture_id),
            (d.spatial_id, d.temporal_id, d.frame_number)
        );
    }
    assert_eq!(structures, 1);
    assert_eq!(source.keyframes_sent(), 1);
    assert_eq!(
        source.structure().resolution(1),
        Some(av1::RenderResolution::new(640, 360))
    );
}

#[test]
fn av1_key_frames_periodic_and_on_request() {
    let start = Instant::now();
    let mut config = Av1SvcConfig::new(1);
    config.keyframe_interval = Some(Duration::from_secs(2));
    let mut source = Av1SvcSource::new(config, start);
    let mut packets = run_source(&mut source, start, Duration::from_millis(3000));
    assert_eq!(source.keyframes_sent(), 2);
    source.request_keyframe();
    packets.extend(run_source(
        &mut source,
        start + Duration::from_millis(3000),
        Duration::from_millis(500),
    ));
    assert_eq!(source.keyframes_sent(), 3);
    let keys = packets
        .iter()
        .filter(|p| av1::starts_keyframe(parse(p).payload()))
        .count();
    assert_eq!(keys, 3);
    let mut checker = check(&packets);
    checker.assert_clean();
    assert_eq!(checker.stats(source.ssrc()).unwrap().keyframes_decoded, 3);
    // Retransmissions carry the descriptor and the original sequence number.
    let original = &packets[packets.len() - 5];
    let rtx = source
        .retransmit(start, source.ssrc(), parse(original).sequence_number())
        .unwrap();
    let rtx_parsed = parse(&rtx);
    assert_eq!(rtx_parsed.payload_type(), AV1_RTX_PT);
    assert_eq!(rtx_parsed.ssrc(), source.rtx_ssrc());
    assert_eq!(descriptor_value(&rtx), descriptor_value(original));
    assert_eq!(
        &rtx_parsed.payload()[..2],
        &parse(original).sequence_number().to_be_bytes()
    );
    assert_eq!(&rtx_parsed.payload()[2..], parse(original).payload());
}

#[test]
fn av1_thinned_by_hand_to_every_decode_target_is_clean() {
    for mode in MODES {
        let (source, packets) = ten_seconds(mode);
        let structure = source.structure();
        for dt in 0..structure.decode_target_count() {
            let (spatial, temporal) = structure.decode_target_layers(dt).unwrap();
            let thinned = thin(&packets, dt, None);
            let mut checker = check(&thinned);
            checker.set_layer_limit(spatial, temporal);
            checker.assert_clean();
            let stats = checker.stats(source.ssrc()).unwrap();
            let expected_units = [75, 150, 300][usize::from(temporal)];
            assert_eq!(stats.units_decoded, expected_units, "{mode:?} DT{dt}");
            assert_eq!(
                stats.decoded_height,
                Some([180, 360, 720][usize::from(spatial)])
            );
            assert_eq!(checker.max_layers_over_last(8), Some((spatial, temporal)));
        }
        // K-SVC sends only the top layer's delta frames to a 720p receiver; full SVC all.
        let top = thin(&packets, 8, None).len();
        let base = thin(&packets, 2, None).len();
        match mode {
            ScalabilityMode::L3T3Key => assert!(base * 3 < top && top * 10 < packets.len() * 9),
            _ => assert_eq!(top, packets.len()),
        }
    }
}

#[test]
fn av1_thinning_mistakes_are_detected() {
    let (_, packets) = ten_seconds(ScalabilityMode::L3T3Key);

    // Dropping packets without renumbering: a gap, and frames lost.
    let mut gap = thin(&packets, 8, None);
    gap.remove(40);
    let mut checker = check(&gap);
    assert!(checker.violations().count(ViolationKind::SequenceGap) == 1);
    checker.assert_only(&[
        ViolationKind::SequenceGap,
        ViolationKind::UndecodableAfterLoss,
    ]);

    // Keeping the sender's marker (on S2) while forwarding S0 only: no marker on any unit.
    let mut reader = DependencyDescriptorReader::new();
    let mut unmarked: Vec<Vec<u8>> = packets
        .iter()
        .filter(|p| reader.read(&descriptor_value(p)).unwrap().is_part_of(2))
        .cloned()
        .collect();
    let first = parse(&unmarked[0]).sequence_number();
    for (index, packet) in unmarked.iter_mut().enumerate() {
        RtpPacket::parse(&mut packet[..])
            .unwrap()
            .set_sequence_number(first.wrapping_add(index as u16));
    }
    let mut checker = check(&unmarked);
    assert!(checker.violations().count(ViolationKind::MissingMarker) >= 299);
    checker.assert_only(&[ViolationKind::MissingMarker]);

    // The marker in the middle of a unit: its later packets come after the marker.
    let mut early = packets.clone();
    let mut reader = DependencyDescriptorReader::new();
    let at = early
        .iter()
        .position(|p| {
            let d = reader.read(&descriptor_value(p)).unwrap();
            d.spatial_id == 1 && d.end_of_frame && d.frame_number > 20
        })
        .unwrap();
    RtpPacket::parse(&mut early[at][..])
        .unwrap()
        .set_marker(true);
    let checker = check(&early);
    assert!(checker.violations().count(ViolationKind::MarkerNotAtEnd) >= 1);

    // Starting without the key frame: nothing resolvable until one comes.
    let checker = check(&packets[200..]);
    assert_eq!(
        checker.violations().count(ViolationKind::NoKeyframeAtStart),
        1
    );

    // K-SVC: switching up from S0 (DT 2) to S2 (DT 8) at an S2 T0 delta frame, which the
    // descriptor marks as a switch point, without the S2 frames it predicts from: the
    // checker sees the missing reference. (A correct SFU waits for a key frame.)
    let switch_at = packets.len() / 2;
    let switched = thin(&packets, 2, Some((switch_at, 8)));
    let mut checker = check(&switched);
    assert_eq!(
        checker.violations().count(ViolationKind::MissingReference),
        1,
        "{:?}",
        checker.violations().messages()
    );
    checker.assert_only(&[ViolationKind::MissingReference]);

    // S1 before S0 in a temporal unit: a layer hole.
    let mut swapped = packets.clone();
    let mut reader = DependencyDescriptorReader::new();
    let layers: Vec<(u8, bool)> = swapped
        .iter()
        .map(|p| {
            let d = reader.read(&descriptor_value(p)).unwrap();
            (d.spatial_id, d.start_of_frame)
        })
        .collect();
    let s0 = (400..).find(|&i| layers[i] == (0, true)).unwrap();
    let s2 = (s0..).find(|&i| layers[i] == (2, true)).unwrap();
    let s1 = (s0..).find(|&i| layers[i] == (1, true)).unwrap();
    swapped[s0..s2].rotate_left(s1 - s0);
    remark_and_renumber(&mut swapped);
    let checker = check(&swapped);
    assert_eq!(checker.violations().count(ViolationKind::LayerHole), 1);
}

// ---------------------------------------------------------------------------------------
// Through the conference.
// ---------------------------------------------------------------------------------------

/// Opus 111 and AV1 41 (RTX 42); audio level 1, abs-send-time 3, transport-cc 5,
/// dependency descriptor 11.
fn av1_description(name: &str) -> EndpointDescription {
    let mut extensions = ExtensionMap::new();
    for (id, kind) in [
        (EXT_AUDIO_LEVEL, ExtensionKind::AudioLevel),
        (EXT_ABS_SEND_TIME, ExtensionKind::AbsSendTime),
        (EXT_TRANSPORT_CC, ExtensionKind::TransportCc),
        (
            EXT_DEPENDENCY_DESCRIPTOR,
            ExtensionKind::DependencyDescriptor,
        ),
    ] {
        extensions.insert(id, kind).unwrap();
    }
    EndpointDescription {
        name: name.to_owned(),
        codecs: vec![
            NegotiatedCodec {
                payload_type: OPUS_PT,
                name: CodecName::Opus,
                clock_rate: 48_000,
                rtx_payload_type: None,
            },
            NegotiatedCodec {
                payload_type: AV1_PT,
                name: CodecName::Av1,
                clock_rate: 90_000,
                rtx_payload_type: Some(AV1_RTX_PT),
            },
        ],
        extensions,
    }
}

struct Participant {
    id: EndpointId,
    name: String,
    audio: OpusSource,
    video: Option<Av1SvcSource>,
}

impl Participant {
    fn sources(&self) -> Vec<PublishedSource> {
        let mut sources = vec![PublishedSource {
            name: format!("{}-a0", self.name),
            kind: MediaKind::Audio,
            ssrcs: vec![self.audio.ssrc()],
            rtx: Vec::new(),
            video_type: VideoType::Camera,
        }];
        if let Some(video) = &self.video {
            sources.push(PublishedSource {
                name: format!("{}-v0", self.name),
                kind: MediaKind::Video,
                ssrcs: vec![video.ssrc()],
                rtx: vec![(video.ssrc(), video.rtx_ssrc())],
                video_type: VideoType::Camera,
            });
        }
        sources
    }
}

#[derive(Default)]
struct Received {
    /// AV1 packets received.
    video_packets: u64,
    av1: Av1StreamChecker,
    audio: AudioChecker,
}

fn run(
    harness: &mut Harness,
    participants: &mut [Participant],
    until: Instant,
    received: &mut HashMap<EndpointId, Received>,
) -> u64 {
    let mut plis = 0;
    while harness.now < until {
        let now = harness.now;
        for p in participants.iter_mut() {
            let mut packets = p.audio.poll(now);
            if let Some(video) = &mut p.video {
                packets.extend(video.poll(now));
            }
            for packet in packets {
                harness.send_rtp(p.id, packet);
            }
        }
        harness.advance_to(now + STEP);
        for p in participants.iter_mut() {
            let inbox = harness.take_inbox(p.id);
            for compound in &inbox.rtcp {
                for ssrc in pli_ssrcs(compound) {
                    if let Some(video) = p.video.as_mut().filter(|v| v.ssrc() == ssrc) {
                        plis += 1;
                        video.request_keyframe();
                    }
                }
            }
            let entry = received.entry(p.id).or_default();
            for packet in inbox.rtp {
                match parse(&packet).payload_type() {
                    AV1_PT => {
                        entry.video_packets += 1;
                        entry.av1.on_packet(&packet);
                    }
                    OPUS_PT => entry.audio.on_packet(&packet),
                    other => panic!("unexpected payload type {other}"),
                }
            }
        }
    }
    plis
}

fn max_height(height: i32) -> ReceiverConstraintsUpdate {
    ReceiverConstraintsUpdate {
        default_constraints: Some(VideoConstraints {
            max_height: height,
            max_frame_rate: 30.0,
        }),
        ..Default::default()
    }
}

/// One AV1 sender in `mode`, a receiver limited to 180p and one to 720p, for 8 s.
fn av1_is_thinned_per_receiver(mode: ScalabilityMode, seed: u64) {
    let mut harness = Harness::new(seed, no_feedback_config());
    let start = harness.now;
    let mut participants: Vec<Participant> = (0..3u8)
        .map(|i| Participant {
            id: EndpointId(400 + u64::from(i)),
            name: format!("ep{i:02}"),
            audio: OpusSource::new(OpusConfig::new(i), start),
            video: (i == 0).then(|| Av1SvcSource::new(Av1SvcConfig::new(i).with_mode(mode), start)),
        })
        .collect();
    for p in &participants {
        harness
            .conference
            .add_endpoint(start, p.id, av1_description(&p.name))
            .unwrap();
        harness
            .conference
            .set_sources(start, p.id, p.sources())
            .unwrap();
    }
    let (small, large) = (participants[1].id, participants[2].id);
    harness
        .conference
        .set_receiver_constraints(start, small, max_height(180))
        .unwrap();
    harness
        .conference
        .set_receiver_constraints(start, large, max_height(720))
        .unwrap();
    let mut received = HashMap::new();
    let plis = run(
        &mut harness,
        &mut participants,
        start + Duration::from_secs(8),
        &mut received,
    );
    let sender = participants[0].video.as_ref().unwrap();
    let (ssrc, sent) = (sender.ssrc(), sender.packets_sent());
    let mut summary = Vec::new();
    for (receiver, height, spatial) in [(small, 180, 0), (large, 720, 2)] {
        let r = received.get_mut(&receiver).unwrap();
        r.av1.flush();
        let stats = r.av1.stats(ssrc).cloned();
        summary.push(format!(
            "{mode:?} receiver {receiver:?}: {} packets of {sent}, {plis} PLIs, {stats:?}, violations {:?}",
            r.video_packets,
            r.av1.violations().counts()
        ));
        eprintln!("{}", summary.last().unwrap());
        r.av1.assert_clean();
        let stats = stats.unwrap();
        assert_eq!(stats.decoded_height, Some(height), "{mode:?}: {stats:?}");
        assert_eq!(stats.decoded_spatial_id, Some(spatial));
        // The top spatial layer, and all three temporal layers (30 fps), over the last 2 s.
        assert_eq!(
            r.av1.max_layers_over_last(60),
            Some((spatial, 2)),
            "{mode:?}"
        );
        assert!(stats.units_decoded > 200, "{mode:?}: {stats:?}");
        for temporal in 0..3 {
            assert!(
                stats
                    .frames_decoded
                    .get(&(spatial, temporal))
                    .copied()
                    .unwrap_or(0)
                    > 40,
                "{mode:?}: {stats:?}"
            );
        }
    }
    let small_packets = received[&small].video_packets;
    let large_packets = received[&large].video_packets;
    assert!(
        small_packets * 3 < large_packets,
        "{mode:?}: {small_packets} vs {large_packets}"
    );
    assert!(large_packets <= sent);
}

#[test]
fn av1_l3t3_key_is_thinned_per_receiver() {
    av1_is_thinned_per_receiver(ScalabilityMode::L3T3Key, 21);
}

#[test]
fn av1_l3t3_full_svc_is_thinned_per_receiver() {
    av1_is_thinned_per_receiver(ScalabilityMode::L3T3, 22);
}

/// K-SVC after the start: at 4 s the 180p receiver asks for 720p and the 720p one for 180p.
/// Each must move at a point its decoder can follow (in L3T3_KEY both directions need a key
/// frame: a delta frame of a spatial layer predicts only from that layer's earlier frames,
/// which the receiver was not sent).
#[test]
fn av1_l3t3_key_receivers_swap_constraints() {
    let mut harness = Harness::new(23, no_feedback_config());
    let start = harness.now;
    let mut participants: Vec<Participant> = (0..3u8)
        .map(|i| Participant {
            id: EndpointId(500 + u64::from(i)),
            name: format!("ep{i:02}"),
            audio: OpusSource::new(OpusConfig::new(i), start),
            video: (i == 0).then(|| Av1SvcSource::new(Av1SvcConfig::new(i), start)),
        })
        .collect();
    for p in &participants {
        harness
            .conference
            .add_endpoint(start, p.id, av1_description(&p.name))
            .unwrap();
        harness
            .conference
            .set_sources(start, p.id, p.sources())
            .unwrap();
    }
    let (a, b) = (participants[1].id, participants[2].id);
    let mut received = HashMap::new();
    for (receiver, height) in [(a, 180), (b, 720)] {
        harness
            .conference
            .set_receiver_constraints(start, receiver, max_height(height))
            .unwrap();
    }
    run(
        &mut harness,
        &mut participants,
        start + Duration::from_secs(4),
        &mut received,
    );
    for (receiver, height) in [(a, 720), (b, 180)] {
        let now = harness.now;
        harness
            .conference
            .set_receiver_constraints(now, receiver, max_height(height))
            .unwrap();
    }
    run(
        &mut harness,
        &mut participants,
        start + Duration::from_secs(8),
        &mut received,
    );
    let ssrc = participants[0].video.as_ref().unwrap().ssrc();
    for receiver in [a, b] {
        let r = received.get_mut(&receiver).unwrap();
        r.av1.flush();
        eprintln!(
            "{receiver:?}: {:?} {:?}",
            r.av1.stats(ssrc),
            r.av1.violations().messages()
        );
    }
    for (receiver, height, spatial) in [(a, 720, 2), (b, 180, 0)] {
        let r = received.get_mut(&receiver).unwrap();
        r.av1.assert_clean();
        let stats = r.av1.stats(ssrc).unwrap();
        assert_eq!(stats.decoded_height, Some(height), "{stats:?}");
        assert_eq!(r.av1.max_layers_over_last(60), Some((spatial, 2)));
    }
}
