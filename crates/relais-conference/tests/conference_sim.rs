//! Seeded simulations of multi-party conferences through [`Conference`]: last-N, per-receiver
//! simulcast and SVC layer selection, dominant speaker and silence suppression, with every
//! received stream checked by a depacketizer for continuity and decodability.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a test failure"
)]

mod sim;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use relais_bwe::twcc::TwccRecorder;
use relais_conference::allocation::{ReceiverConstraintsUpdate, VideoConstraints, VideoType};
use relais_conference::{
    CodecName, ConferenceConfig, ConferenceEvent, EndpointDescription, EndpointId, MediaKind,
    NegotiatedCodec, PublishedSource,
};
use relais_rtp::extensions::{ExtensionKind, ExtensionMap, TransportSequenceNumber};
use relais_rtp::rtp::RtpPacket;

use sim::check::{AudioChecker, Vp8StreamChecker, Vp9StreamChecker};
use sim::harness::{pli_ssrcs, Harness, LinkModel};
use sim::media::*;

/// These receivers send no transport-wide feedback: allocate without a bandwidth estimate.
fn no_feedback_config() -> ConferenceConfig {
    ConferenceConfig {
        bandwidth_estimation: false,
        ..ConferenceConfig::default()
    }
}

const STEP: Duration = Duration::from_millis(5);

/// What Jicofo offers every endpoint: Opus 111, VP8 100/96, VP9 101/97; audio level 1,
/// abs-send-time 3, transport-cc 5, dependency descriptor 11.
fn jitsi_description(name: &str) -> EndpointDescription {
    let mut extensions = ExtensionMap::new();
    extensions
        .insert(EXT_AUDIO_LEVEL, ExtensionKind::AudioLevel)
        .unwrap();
    extensions
        .insert(EXT_ABS_SEND_TIME, ExtensionKind::AbsSendTime)
        .unwrap();
    extensions
        .insert(EXT_TRANSPORT_CC, ExtensionKind::TransportCc)
        .unwrap();
    extensions
        .insert(
            EXT_DEPENDENCY_DESCRIPTOR,
            ExtensionKind::DependencyDescriptor,
        )
        .unwrap();
    let codec = |payload_type, name, clock_rate, rtx| NegotiatedCodec {
        payload_type,
        name,
        clock_rate,
        rtx_payload_type: rtx,
    };
    EndpointDescription {
        name: name.to_owned(),
        codecs: vec![
            codec(OPUS_PT, CodecName::Opus, 48_000, None),
            codec(VP8_PT, CodecName::Vp8, 90_000, Some(VP8_RTX_PT)),
            codec(VP9_PT, CodecName::Vp9, 90_000, Some(VP9_RTX_PT)),
        ],
        extensions,
    }
}

/// A simulated Jitsi participant.
struct Participant {
    id: EndpointId,
    name: String,
    audio: OpusSource,
    vp8: Option<Vp8SimulcastSource>,
    vp9: Option<Vp9SvcSource>,
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
        if let Some(video) = &self.vp8 {
            sources.push(PublishedSource {
                name: format!("{}-v0", self.name),
                kind: MediaKind::Video,
                ssrcs: video.ssrcs(),
                rtx: video.ssrcs().into_iter().zip(video.rtx_ssrcs()).collect(),
                video_type: VideoType::Camera,
            });
        }
        if let Some(video) = &self.vp9 {
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

    fn poll(&mut self, harness: &mut Harness) {
        let now = harness.now;
        let mut packets = self.audio.poll(now);
        if let Some(video) = &mut self.vp8 {
            packets.extend(video.poll(now));
        }
        if let Some(video) = &mut self.vp9 {
            packets.extend(video.poll(now));
        }
        for packet in packets {
            harness.send_rtp(self.id, packet);
        }
    }

    fn keyframe_requested(&mut self, ssrc: u32) {
        if let Some(video) = &mut self.vp8 {
            if video.encoding_of(ssrc).is_some() {
                video.request_keyframe();
            }
        }
        if let Some(video) = &mut self.vp9 {
            if video.ssrc() == ssrc {
                video.request_keyframe();
            }
        }
    }
}

fn name(index: usize) -> String {
    format!("ep{index:02}")
}

fn constraints(last_n: i32, on_stage: &str) -> ReceiverConstraintsUpdate {
    let mut per_source = BTreeMap::new();
    per_source.insert(
        on_stage.to_owned(),
        VideoConstraints {
            max_height: 720,
            max_frame_rate: 30.0,
        },
    );
    ReceiverConstraintsUpdate {
        last_n: Some(last_n),
        on_stage_sources: Some(vec![on_stage.to_owned()]),
        default_constraints: Some(VideoConstraints {
            max_height: 180,
            max_frame_rate: 30.0,
        }),
        constraints: Some(per_source),
        ..Default::default()
    }
}

/// What one receiver got, per incoming SSRC.
#[derive(Default)]
struct Received {
    /// Packets per SSRC (in arrival order).
    packets: HashMap<u32, Vec<Vec<u8>>>,
    /// The last ForwardedSources event.
    forwarded: Vec<String>,
    /// Dominant speaker events.
    dominant: Vec<String>,
    /// EndpointConnectivity events: (endpoint, active).
    connectivity: Vec<(String, bool)>,
    /// Every VP8 packet received, checked.
    vp8: Vp8StreamChecker,
    /// Every VP9 packet received, checked.
    vp9: Vp9StreamChecker,
    /// Every audio packet received, counted.
    audio: AudioChecker,
    /// When set, the receiver sends transport-wide feedback as a browser does.
    twcc: Option<TwccRecorder>,
    /// RTX packets received (retransmissions and probe padding).
    rtx: u64,
    /// The ConnectionStats estimates received.
    connection_stats: Vec<u64>,
}

fn run(
    harness: &mut Harness,
    participants: &mut [Participant],
    until: std::time::Instant,
    received: &mut HashMap<EndpointId, Received>,
) {
    while harness.now < until {
        for participant in participants.iter_mut() {
            participant.poll(harness);
        }
        let next = harness.now + STEP;
        harness.advance_to(next);
        for participant in participants.iter_mut() {
            let inbox = harness.take_inbox(participant.id);
            for compound in &inbox.rtcp {
                for ssrc in pli_ssrcs(compound) {
                    participant.keyframe_requested(ssrc);
                }
            }
            let entry = received.entry(participant.id).or_default();
            if let Some(twcc) = entry.twcc.as_mut() {
                for (packet, at) in inbox.rtp.iter().zip(&inbox.rtp_times) {
                    let parsed = RtpPacket::parse(packet.as_slice()).unwrap();
                    if let Some(seq) = parsed
                        .extension(EXT_TRANSPORT_CC)
                        .and_then(|v| TransportSequenceNumber::parse(v).ok())
                    {
                        twcc.on_packet(*at, seq.0);
                    }
                }
                while let Some(feedback) = twcc.poll_feedback(harness.now, 0x5EED, 0) {
                    harness.send_rtcp(participant.id, feedback);
                }
            }
            for packet in inbox.rtp {
                let parsed = RtpPacket::parse(packet.as_slice()).unwrap();
                let (ssrc, payload_type) = (parsed.ssrc(), parsed.payload_type());
                match payload_type {
                    VP8_PT => entry.vp8.on_packet(&packet),
                    VP9_PT => entry.vp9.on_packet(&packet),
                    OPUS_PT => entry.audio.on_packet(&packet),
                    VP8_RTX_PT | VP9_RTX_PT => {
                        entry.rtx += 1;
                        continue;
                    }
                    other => panic!("unexpected payload type {other}"),
                }
                entry.packets.entry(ssrc).or_default().push(packet);
            }
            for event in inbox.events {
                match event {
                    ConferenceEvent::ForwardedSources { sources } => entry.forwarded = sources,
                    ConferenceEvent::DominantSpeaker { speaker, .. } => {
                        entry.dominant.push(speaker)
                    }
                    ConferenceEvent::SenderSourceConstraints { .. } => {}
                    ConferenceEvent::ConnectionStats {
                        estimated_downlink_bps,
                    } => entry.connection_stats.push(estimated_downlink_bps),
                    ConferenceEvent::EndpointConnectivity { endpoint, active } => {
                        entry.connectivity.push((endpoint, active))
                    }
                }
            }
        }
    }
}

#[test]
fn twenty_endpoints_last_n_on_stage_and_thumbnails() {
    let mut harness = Harness::new(7, no_feedback_config());
    let start = harness.now;
    // Speakers take 4 s turns: ep03, ep05, ep09, ep12 (a non-video endpoint), ep06.
    let script = [3usize, 5, 9, 12, 6];
    let turn = Duration::from_secs(4);
    let mut participants: Vec<Participant> = (0..20)
        .map(|i| {
            let mut audio = OpusConfig::new(i as u8);
            for (n, speaker) in script.iter().enumerate() {
                if *speaker == i {
                    audio = audio.with_turn(turn * (n as u32 + 1), turn * (n as u32 + 2));
                }
            }
            Participant {
                id: EndpointId(100 + i as u64),
                name: name(i),
                audio: OpusSource::new(audio, start),
                vp8: (i < 8)
                    .then(|| Vp8SimulcastSource::new(Vp8SimulcastConfig::new(i as u8), start)),
                vp9: None,
            }
        })
        .collect();
    for p in &participants {
        harness
            .conference
            .add_endpoint(start, p.id, jitsi_description(&p.name))
            .unwrap();
        harness
            .conference
            .set_sources(start, p.id, p.sources())
            .unwrap();
    }
    let on_stage = format!("{}-v0", name(1));
    for p in &participants {
        harness
            .conference
            .set_receiver_constraints(start, p.id, constraints(5, &on_stage))
            .unwrap();
    }
    let mut received = HashMap::new();
    let mut dominant_checks = Vec::new();
    for (n, speaker) in script.iter().enumerate() {
        let turn_start = start + turn * (n as u32 + 1);
        run(
            &mut harness,
            &mut participants,
            turn_start + Duration::from_millis(1500),
            &mut received,
        );
        dominant_checks.push((
            name(*speaker),
            harness.conference.dominant_speaker().map(str::to_owned),
        ));
    }
    for (scripted, seen) in &dominant_checks {
        assert_eq!(
            seen.as_deref(),
            Some(scripted.as_str()),
            "dominant speaker 1.5 s into the turn"
        );
    }

    // Steady state: the last 3 s, with ep06 speaking.
    for r in received.values_mut() {
        r.packets.clear();
    }
    let end = harness.now + Duration::from_secs(3);
    run(&mut harness, &mut participants, end, &mut received);
    let video_ssrcs: HashMap<u32, usize> = participants
        .iter()
        .filter_map(|p| p.vp8.as_ref().map(|v| (v.ssrc(0), v.source_id() as usize)))
        .collect();
    for p in &participants {
        let r = &received[&p.id];
        let own = format!("{}-v0", p.name);
        assert_eq!(
            r.forwarded.len(),
            5,
            "{}: forwarded {:?}",
            p.name,
            r.forwarded
        );
        assert!(!r.forwarded.contains(&own), "{} gets its own video", p.name);
        // A bridge channel opening now catches up on what was announced, and on the
        // dominant speaker (ep06's turn).
        let catch_up = harness.conference.catch_up_events(p.id);
        assert_eq!(
            catch_up.first(),
            Some(&ConferenceEvent::ForwardedSources {
                sources: r.forwarded.clone()
            }),
            "{}",
            p.name
        );
        assert!(
            matches!(catch_up.get(1), Some(ConferenceEvent::DominantSpeaker { speaker, .. }) if *speaker == name(6)),
            "{}: {catch_up:?}",
            p.name
        );
        // A camera owner also hears the constraint of its camera: 720p for the on-stage
        // source, 180p for a thumbnail someone receives, 0 for a camera nobody receives.
        let constraints: Vec<(&str, i32)> = catch_up
            .iter()
            .filter_map(|e| match e {
                ConferenceEvent::SenderSourceConstraints { source, max_height } => {
                    Some((source.as_str(), *max_height))
                }
                _ => None,
            })
            .collect();
        if p.vp8.is_some() {
            let watched = received.values().any(|r| r.forwarded.contains(&own));
            let expected = match (own == on_stage, watched) {
                (true, _) => 720,
                (false, true) => 180,
                (false, false) => 0,
            };
            assert_eq!(constraints, vec![(own.as_str(), expected)], "{}", p.name);
        } else {
            assert!(constraints.is_empty(), "{}: {constraints:?}", p.name);
        }
        if p.name != name(1) {
            assert!(
                r.forwarded.contains(&on_stage),
                "{}: on-stage source missing",
                p.name
            );
        }
        let got: HashSet<usize> = r
            .packets
            .keys()
            .filter_map(|ssrc| video_ssrcs.get(ssrc).copied())
            .collect();
        let expected: HashSet<usize> = r
            .forwarded
            .iter()
            .map(|s| s[2..4].parse::<usize>().unwrap())
            .collect();
        assert_eq!(
            got, expected,
            "{}: video received vs ForwardedSources",
            p.name
        );
    }
    // Every received stream decodes, with continuous numbering and switches at key frames
    // only; the on-stage source arrives at 720p, thumbnails at 180p.
    let on_stage_ssrc = participants[1].vp8.as_ref().unwrap().ssrc(0);
    for p in &participants {
        let r = received.get_mut(&p.id).unwrap();
        r.vp8.flush();
        r.vp8.assert_clean();
        for ssrc in r.packets.keys().filter(|s| video_ssrcs.contains_key(s)) {
            let stats = r.vp8.stats(*ssrc).unwrap();
            let expected = if *ssrc == on_stage_ssrc { 720 } else { 180 };
            assert_eq!(
                stats.current_height,
                Some(expected),
                "{}: height of {ssrc:#x}",
                p.name
            );
            assert!(
                stats.frames_decoded.values().sum::<u64>() > 30,
                "{}: {stats:?}",
                p.name
            );
        }
    }
}

fn join(harness: &mut Harness, participants: &[Participant]) {
    let now = harness.now;
    for p in participants {
        harness
            .conference
            .add_endpoint(now, p.id, jitsi_description(&p.name))
            .unwrap();
        harness
            .conference
            .set_sources(now, p.id, p.sources())
            .unwrap();
    }
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

#[test]
fn vp9_l3t3_is_thinned_per_receiver() {
    let mut harness = Harness::new(11, no_feedback_config());
    let start = harness.now;
    let mut participants: Vec<Participant> = (0..3)
        .map(|i| Participant {
            id: EndpointId(200 + i as u64),
            name: name(i),
            audio: OpusSource::new(OpusConfig::new(i as u8), start),
            vp8: None,
            vp9: (i == 0).then(|| Vp9SvcSource::new(Vp9SvcConfig::new(i as u8), start)),
        })
        .collect();
    join(&mut harness, &participants);
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
    run(
        &mut harness,
        &mut participants,
        start + Duration::from_secs(8),
        &mut received,
    );
    let vp9_ssrc = participants[0].vp9.as_ref().unwrap().ssrc();
    for (receiver, height, spatial) in [(small, 180, 0), (large, 720, 2)] {
        let r = received.get_mut(&receiver).unwrap();
        r.vp9.flush();
        r.vp9.assert_clean();
        let stats = r.vp9.stats(vp9_ssrc).unwrap();
        assert_eq!(stats.decoded_height, Some(height), "{stats:?}");
        assert_eq!(
            r.vp9.max_layers_over_last(60).map(|(s, _)| s),
            Some(spatial)
        );
        assert!(stats.pictures_decoded > 150, "{stats:?}");
        // All three temporal layers (30 fps) reach both.
        assert_eq!(r.vp9.max_layers_over_last(60).map(|(_, t)| t), Some(2));
    }
    // The sender stops (network gone): after the inactivity timeout the others are told,
    // and told again when it is back.
    let video = participants[0].vp9.take();
    let pause_until = harness.now + Duration::from_secs(5);
    let silent = participants.remove(0);
    run(&mut harness, &mut participants, pause_until, &mut received);
    for r in [small, large] {
        assert_eq!(
            received[&r].connectivity,
            vec![(name(0), false)],
            "{r:?} connectivity events"
        );
    }
    let mut silent = silent;
    silent.vp9 = video;
    participants.insert(0, silent);
    let resume_until = harness.now + Duration::from_secs(2);
    run(&mut harness, &mut participants, resume_until, &mut received);
    assert_eq!(received[&small].connectivity.last(), Some(&(name(0), true)));
    // The constrained receiver got fewer bytes than the sender sent.
    let small_packets = received[&small].packets[&vp9_ssrc].len();
    let large_packets = received[&large].packets[&vp9_ssrc].len();
    assert!(
        small_packets * 2 < large_packets,
        "{small_packets} vs {large_packets}"
    );
}

#[test]
fn fifty_endpoints_with_dtx_silence_is_suppressed_speech_is_not() {
    let mut harness = Harness::new(13, no_feedback_config());
    let start = harness.now;
    // Three speakers take 3 s turns, twice round; everybody else stays silent (DTX).
    let speakers = [4usize, 17, 33];
    let turn = Duration::from_secs(3);
    let mut participants: Vec<Participant> = (0..50)
        .map(|i| {
            let mut audio = OpusConfig::new(i as u8);
            for round in 0..2u32 {
                for (n, s) in speakers.iter().enumerate() {
                    if *s == i {
                        let slot = round * 3 + n as u32 + 1;
                        audio = audio.with_turn(turn * slot, turn * (slot + 1));
                    }
                }
            }
            Participant {
                id: EndpointId(300 + i as u64),
                name: name(i),
                audio: OpusSource::new(audio, start),
                vp8: None,
                vp9: None,
            }
        })
        .collect();
    join(&mut harness, &participants);
    let mut received = HashMap::new();
    run(
        &mut harness,
        &mut participants,
        start + turn * 8,
        &mut received,
    );
    let sent_speech: HashMap<u8, u64> = participants
        .iter()
        .map(|p| (p.audio.source_id(), p.audio.speech_packets_sent()))
        .collect();
    let sent_silence: HashMap<u8, u64> = participants
        .iter()
        .map(|p| (p.audio.source_id(), p.audio.silence_packets_sent()))
        .collect();
    assert!(sent_speech[&4] > 200, "{sent_speech:?}");
    for p in &participants {
        let r = &received[&p.id];
        let (mut silence_sent, mut silence_received) = (0, 0);
        for other in participants.iter().filter(|o| o.id != p.id) {
            let source = other.audio.source_id();
            assert_eq!(
                r.audio.speech_packets(source),
                sent_speech[&source],
                "{} lost speech packets of {}",
                p.name,
                other.name
            );
            silence_sent += sent_silence[&source];
            silence_received += r.audio.silence_packets(source);
        }
        let forwarded = silence_received as f64 / silence_sent as f64;
        assert!(
            forwarded <= 0.05,
            "{}: {silence_received} of {silence_sent} silence packets forwarded",
            p.name
        );
    }
    assert!(harness.conference.stats().silence_suppressed > 0);
}

/// A receiver behind a 2.0 Mbit/s bottleneck, one on-stage simulcast source (1.5 / 0.5 /
/// 0.15 Mbit/s) and 6 thumbnails at 180p: the estimate converges to 80–100 % of the link
/// within 10 s, queueing stays under 200 ms after that, and the receiver ends with the
/// on-stage source at 360p and every thumbnail at 180p (the allocation gets 90 % of the
/// estimate: 720p with full-rate thumbnails does not fit).
#[test]
fn receiver_behind_two_megabits_gets_360p_on_stage_and_all_thumbnails() {
    let mut harness = Harness::new(31, ConferenceConfig::default());
    let start = harness.now;
    let mut participants: Vec<Participant> = (0..8)
        .map(|i| {
            let mut audio = OpusConfig::new(i as u8);
            if i == 1 {
                audio = audio.with_turn(Duration::ZERO, Duration::from_secs(60));
            }
            Participant {
                id: EndpointId(600 + i as u64),
                name: name(i),
                audio: OpusSource::new(audio, start),
                vp8: (i >= 1)
                    .then(|| Vp8SimulcastSource::new(Vp8SimulcastConfig::new(i as u8), start)),
                vp9: None,
            }
        })
        .collect();
    join(&mut harness, &participants);
    let receiver = participants[0].id;
    harness.links.insert(
        receiver,
        (
            LinkModel::default(),
            LinkModel {
                capacity_bps: Some(2_000_000),
                ..LinkModel::default()
            },
        ),
    );
    let on_stage = format!("{}-v0", name(1));
    let mut update = constraints(-1, &on_stage);
    update.last_n = Some(-1);
    harness
        .conference
        .set_receiver_constraints(start, receiver, update)
        .unwrap();
    let mut received = HashMap::new();
    received.insert(
        receiver,
        Received {
            twcc: Some(TwccRecorder::default()),
            ..Received::default()
        },
    );
    let mut converged_at = None;
    let mut estimates = Vec::new();
    while harness.now < start + Duration::from_secs(40) {
        let until = harness.now + Duration::from_millis(500);
        run(&mut harness, &mut participants, until, &mut received);
        let estimate = harness.conference.estimate_bps(receiver).unwrap();
        estimates.push(estimate);
        if converged_at.is_none() && estimate >= 1_600_000 {
            converged_at = Some(harness.now - start);
            harness
                .bottlenecks
                .get_mut(&receiver)
                .unwrap()
                .max_queue_delay = Duration::ZERO;
        }
    }
    eprintln!("estimates every 0.5 s: {estimates:?}");
    eprintln!(
        "probe packets {}, rtx received {}, bottleneck {:?}",
        harness.conference.stats().probe_packets,
        received[&receiver].rtx,
        harness.bottlenecks.get(&receiver)
    );
    let converged_at = converged_at.expect("the estimate never reached 80 % of 2 Mbit/s");
    eprintln!("converged (>= 1.6 Mbit/s) after {converged_at:?}");
    assert!(converged_at <= Duration::from_secs(10), "{converged_at:?}");
    let after: Vec<u64> = estimates[20..].to_vec();
    let (low, high) = (after.iter().min().unwrap(), after.iter().max().unwrap());
    eprintln!("estimate after 10 s: {low}..{high}");
    assert!(*low >= 1_600_000 && *high <= 2_000_000, "{low}..{high}");
    let queue = harness.bottlenecks[&receiver].max_queue_delay;
    eprintln!("largest queueing delay after convergence: {queue:?}");
    assert!(queue < Duration::from_millis(200), "{queue:?}");
    let r = received.get_mut(&receiver).unwrap();
    r.vp8.flush();
    let on_stage_ssrc = participants[1].vp8.as_ref().unwrap().ssrc(0);
    for p in participants.iter().skip(1) {
        let ssrc = p.vp8.as_ref().unwrap().ssrc(0);
        let stats = r.vp8.stats(ssrc).unwrap();
        let expected = if ssrc == on_stage_ssrc { 360 } else { 180 };
        assert_eq!(
            stats.current_height,
            Some(expected),
            "{}: {stats:?}",
            p.name
        );
    }
    assert!(!r.connection_stats.is_empty());
}
