//! The media models against the numbers the scenario promises: speaker turns, Opus packet
//! rates and sizes, VP8 simulcast bitrates, frame rates, keyframes and packetisation, and
//! the RTP/RTX bytes as `relais_rtp` (the node's own parser) reads them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use relais_loadtest::media::{
    derive_seed, layers_for_bitrate, ntp_from_unix, AudioConfig, AudioSource, ExtensionIds,
    KeyframeRequest, LayerSet, MediaError, MediaKind, MediaPacket, MediaPayload, RetransmitBuffer,
    RtpWriter, RtxStream, SdesTag, SendExtensions, SpeakerParams, SpeakerSchedule, VideoConfig,
    VideoSource, KEYFRAME_MIN_INTERVAL, NTP_UNIX_OFFSET_S,
};
use relais_loadtest::scenario::Scenario;
use relais_rtp::codec::vp8;
use relais_rtp::codec::PictureId;
use relais_rtp::extensions::{
    parse_mid, parse_repaired_rtp_stream_id, parse_rtp_stream_id, AbsCaptureTime, AudioLevel,
    ExtensionKind, ExtensionMap, TransportSequenceNumber,
};
use relais_rtp::rtp::RtpPacket;

const SECOND: Duration = Duration::from_secs(1);

fn hostsharing() -> Scenario {
    Scenario::load("hostsharing").unwrap()
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

// ---------------------------------------------------------------------------------------
// Speaker schedule

#[test]
fn speakers_exactly_k_distinct_video_senders_at_all_times() {
    let scenario = hostsharing();
    let schedule = SpeakerSchedule::from_scenario(&scenario);
    assert_eq!(schedule.concurrent(), 3);
    let horizon = SpeakerSchedule::horizon_for(&scenario);
    // Every 10 ms, plus both sides of every turn boundary.
    let mut instants: Vec<Duration> = (0..horizon.as_millis() as u64 / 10)
        .map(|i| ms(i * 10))
        .collect();
    for turn in schedule.turns() {
        instants.push(turn.start);
        instants.push(turn.end - Duration::from_nanos(1));
        instants.push(turn.end);
    }
    for t in instants.into_iter().filter(|&t| t < horizon) {
        let speakers: Vec<u32> = schedule.speakers_at(t).collect();
        let distinct: HashSet<u32> = speakers.iter().copied().collect();
        assert_eq!(speakers.len(), 3, "at {t:?}: {speakers:?}");
        assert_eq!(distinct.len(), 3, "at {t:?}: {speakers:?}");
        assert!(speakers.iter().all(|&p| p < scenario.video_senders));
        for p in 0..scenario.participants {
            assert_eq!(
                schedule.is_speaking(p, t),
                speakers.contains(&p),
                "{p} at {t:?}"
            );
        }
    }
}

#[test]
fn speaker_turns_last_within_bounds_and_rotate() {
    let scenario = hostsharing();
    let schedule = SpeakerSchedule::from_scenario(&scenario);
    let turns: Vec<_> = schedule.turns().copied().collect();
    assert!(turns.len() > 3 * 10, "only {} turns", turns.len());
    for turn in &turns {
        let length = turn.end - turn.start;
        assert!(length >= 2 * SECOND && length <= 15 * SECOND, "{turn:?}");
    }
    // Each slot's turns are back to back and change speaker.
    let mut by_slot: BTreeMap<u32, Vec<_>> = BTreeMap::new();
    for turn in &turns {
        by_slot.entry(turn.slot).or_default().push(*turn);
    }
    for slot_turns in by_slot.values() {
        assert_eq!(slot_turns[0].start, Duration::ZERO);
        for pair in slot_turns.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert_ne!(pair[0].participant, pair[1].participant);
        }
    }
    // Over the run many different participants get to speak.
    let speakers: HashSet<u32> = turns.iter().map(|t| t.participant).collect();
    assert!(speakers.len() >= 20, "{} distinct speakers", speakers.len());
}

#[test]
fn speaker_schedule_is_a_function_of_the_seed() {
    let params = SpeakerParams::from_scenario(&hostsharing());
    let horizon = 300 * SECOND;
    let a: Vec<_> = SpeakerSchedule::new(params, horizon)
        .turns()
        .copied()
        .collect();
    let b: Vec<_> = SpeakerSchedule::new(params, horizon)
        .turns()
        .copied()
        .collect();
    assert_eq!(a, b);
    let other = SpeakerParams {
        seed: params.seed + 1,
        ..params
    };
    let c: Vec<_> = SpeakerSchedule::new(other, horizon)
        .turns()
        .copied()
        .collect();
    assert_ne!(a, c);
}

#[test]
fn speaker_next_change_agrees_with_is_speaking() {
    let schedule = SpeakerSchedule::from_scenario(&hostsharing());
    for participant in 0..40 {
        let mut t = Duration::ZERO;
        let mut speaking = schedule.is_speaking(participant, t);
        while let Some(change) = schedule.next_change(participant, t) {
            assert!(change > t);
            // Constant until the change, different at it.
            let probe = t + (change - t) / 2;
            assert_eq!(schedule.is_speaking(participant, probe), speaking);
            assert_eq!(
                schedule.is_speaking(participant, change - Duration::from_nanos(1)),
                speaking
            );
            assert_ne!(schedule.is_speaking(participant, change), speaking);
            speaking = !speaking;
            t = change;
        }
    }
}

#[test]
fn speaker_pool_caps_concurrency() {
    // The lecture: one audio and video sender, who therefore always speaks.
    let lecture = Scenario::load("lecture").unwrap();
    let schedule = SpeakerSchedule::from_scenario(&lecture);
    assert_eq!(schedule.concurrent(), 1);
    let horizon = schedule.horizon().as_secs();
    for s in 0..horizon {
        assert_eq!(
            schedule
                .speakers_at(Duration::from_secs(s))
                .collect::<Vec<_>>(),
            vec![0]
        );
    }
    // Asking for more speakers than there are: everyone speaks, always.
    let schedule = SpeakerSchedule::new(
        SpeakerParams {
            seed: 1,
            pool: 2,
            concurrent: 5,
            turn_min: SECOND,
            turn_max: 2 * SECOND,
        },
        60 * SECOND,
    );
    assert_eq!(schedule.concurrent(), 2);
    for t in (0..600).map(|i| ms(i * 100)) {
        let mut speakers: Vec<u32> = schedule.speakers_at(t).collect();
        speakers.sort_unstable();
        assert_eq!(speakers, vec![0, 1]);
    }
}

// ---------------------------------------------------------------------------------------
// Audio

fn audio_source(dtx: bool) -> AudioSource {
    let mut scenario = hostsharing();
    scenario.audio.dtx = dtx;
    let config = AudioConfig::from_scenario(&scenario.audio, 0xA0D1_0000, 111).unwrap();
    AudioSource::new(config, derive_seed(scenario.seed, 7, 0), Duration::ZERO).unwrap()
}

/// Polls `source` at every frame for `duration`, with `speaking(t)`.
fn run_audio(
    source: &mut AudioSource,
    duration: Duration,
    speaking: impl Fn(Duration) -> bool,
) -> Vec<MediaPacket> {
    let mut packets = Vec::new();
    loop {
        let t = source.poll_timeout();
        if t >= duration {
            return packets;
        }
        while let Some(packet) = source.poll(t, speaking(t)) {
            packets.push(packet);
        }
    }
}

#[test]
fn audio_speaking_is_50_pps_of_80_bytes_at_voice_level() {
    let mut source = audio_source(true);
    let packets = run_audio(&mut source, 60 * SECOND, |_| true);
    assert_eq!(packets.len(), 3000);
    let first = packets[0];
    for (i, packet) in packets.iter().enumerate() {
        assert_eq!(packet.kind, MediaKind::Audio);
        assert_eq!(packet.payload.len(), 80);
        assert_eq!(packet.payload_type, 111);
        let level = packet.audio_level.unwrap();
        assert!(level.voice_activity);
        assert!((27..=33).contains(&level.level), "level {}", level.level);
        assert_eq!(packet.marker, i == 0, "marker on the talkspurt start only");
        assert_eq!(
            packet.sequence_number,
            first.sequence_number.wrapping_add(i as u16)
        );
        assert_eq!(
            packet.timestamp,
            first.timestamp.wrapping_add(960 * i as u32)
        );
        assert_eq!(packet.capture_time, ms(20 * i as u64));
    }
    let levels: HashSet<u8> = packets
        .iter()
        .map(|p| p.audio_level.unwrap().level)
        .collect();
    assert!(levels.len() > 1, "levels vary around -30 dBov");
}

#[test]
fn audio_silence_under_dtx_is_comfort_noise_every_400_ms() {
    let mut source = audio_source(true);
    let packets = run_audio(&mut source, 60 * SECOND, |_| false);
    assert_eq!(packets.len(), 150, "2.5 packets per second");
    let first = packets[0];
    for (i, packet) in packets.iter().enumerate() {
        assert!((5..=10).contains(&packet.payload.len()));
        assert_eq!(
            packet.audio_level,
            Some(AudioLevel {
                voice_activity: false,
                level: 90
            })
        );
        assert!(!packet.marker);
        assert_eq!(packet.capture_time, ms(400 * i as u64));
        // 400 ms of 48 kHz between packets: the timestamp runs through the gaps.
        assert_eq!(
            packet.timestamp,
            first.timestamp.wrapping_add(19_200 * i as u32)
        );
        assert_eq!(
            packet.sequence_number,
            first.sequence_number.wrapping_add(i as u16)
        );
    }
}

#[test]
fn audio_silence_without_dtx_is_sent_every_frame() {
    let mut source = audio_source(false);
    let packets = run_audio(&mut source, 60 * SECOND, |_| false);
    assert_eq!(packets.len(), 3000);
    assert!(packets.iter().all(|p| p.audio_level.unwrap().level == 90
        && !p.audio_level.unwrap().voice_activity
        && !p.marker));
}

#[test]
fn audio_follows_speaker_turns_with_talkspurt_markers() {
    let schedule = SpeakerSchedule::from_scenario(&hostsharing());
    // A participant who speaks at some point in the first two minutes.
    let participant = (0..40)
        .find(|&p| (0..120).any(|s| schedule.is_speaking(p, s * SECOND)))
        .unwrap();
    let mut source = audio_source(true);
    let packets = run_audio(&mut source, 120 * SECOND, |t| {
        schedule.is_speaking(participant, t)
    });
    let first = packets[0];
    let mut previous_speaking = None;
    for packet in &packets {
        let speaking = schedule.is_speaking(participant, packet.capture_time);
        assert_eq!(packet.audio_level.unwrap().voice_activity, speaking);
        assert_eq!(packet.marker, speaking && previous_speaking != Some(true));
        // Timestamp = 48 ticks per ms since the first packet's capture.
        let elapsed_ms = (packet.capture_time - first.capture_time).as_millis() as u32;
        assert_eq!(
            packet.timestamp,
            first.timestamp.wrapping_add(48 * elapsed_ms)
        );
        previous_speaking = Some(speaking);
    }
    let talkspurts = packets.iter().filter(|p| p.marker).count();
    assert!(talkspurts >= 1);
}

#[test]
fn audio_next_send_time_sleeps_through_dtx_without_missing_packets() {
    let schedule = SpeakerSchedule::from_scenario(&hostsharing());
    let participant = schedule.speakers_at(30 * SECOND).next().unwrap();
    let end = 90 * SECOND;
    let speaking = |t| schedule.is_speaking(participant, t);
    let every_frame = run_audio(&mut audio_source(true), end, speaking);

    let mut source = audio_source(true);
    let mut sparse = Vec::new();
    let mut wakeups = 0;
    let mut now = Duration::ZERO;
    while now < end {
        wakeups += 1;
        while let Some(packet) = source.poll_with(now, speaking) {
            sparse.push(packet);
        }
        let next_send = source.next_send_time(speaking(now));
        let next_change = schedule
            .next_change(participant, now)
            .unwrap_or(Duration::MAX);
        now = next_send.min(next_change);
    }
    let first_difference = sparse.iter().zip(&every_frame).position(|(a, b)| a != b);
    assert!(
        sparse == every_frame,
        "{} packets sleeping, {} polling every frame, first difference at {first_difference:?}: {:?} vs {:?}",
        sparse.len(),
        every_frame.len(),
        first_difference.map(|i| (sparse[i].capture_time, sparse[i].marker)),
        first_difference.map(|i| (every_frame[i].capture_time, every_frame[i].marker)),
    );
    assert!(wakeups < every_frame.len() + 200, "{wakeups} wakeups");
}

#[test]
fn audio_drops_frames_polled_too_late() {
    let mut source = audio_source(true);
    assert!(source.poll(Duration::ZERO, true).is_some());
    // The driver stalled for 5 s: no burst of 250 stale frames.
    let mut burst = 0;
    while source.poll(5 * SECOND, true).is_some() {
        burst += 1;
    }
    assert!(burst <= 1, "{burst} packets after a stall");
    assert!(source.poll_timeout() > 5 * SECOND);
}

// ---------------------------------------------------------------------------------------
// Video

const VIDEO_SSRCS: [u32; 3] = [0x1000, 0x1001, 0x1002];

fn video_source() -> VideoSource {
    let scenario = hostsharing();
    let config = VideoConfig::from_scenario(&scenario.video, &VIDEO_SSRCS, 96).unwrap();
    VideoSource::new(config, derive_seed(scenario.seed, 3, 1), Duration::ZERO).unwrap()
}

/// Polls `source` at every timeout until `until`, calling `at` before each poll instant.
fn run_video_with(
    source: &mut VideoSource,
    until: Duration,
    mut at: impl FnMut(&mut VideoSource, Duration),
) -> Vec<MediaPacket> {
    let mut packets = Vec::new();
    while let Some(t) = source.poll_timeout() {
        if t >= until {
            break;
        }
        at(source, t);
        let before = packets.len();
        while let Some(packet) = source.poll(t) {
            packets.push(packet);
        }
        assert!(packets.len() > before || source.poll_timeout() != Some(t));
    }
    packets
}

fn run_video(source: &mut VideoSource, until: Duration) -> Vec<MediaPacket> {
    run_video_with(source, until, |_, _| ())
}

fn layer_packets(packets: &[MediaPacket], layer: u8) -> Vec<MediaPacket> {
    packets
        .iter()
        .filter(|p| p.kind == MediaKind::Video { layer })
        .copied()
        .collect()
}

/// Capture times of the keyframes of one layer's packets, checked with the node's parser.
fn keyframe_times(packets: &[MediaPacket]) -> Vec<Duration> {
    packets
        .iter()
        .filter(|p| {
            let payload = p.payload.to_vec();
            let keyframe = vp8::parse(&payload).unwrap().is_keyframe;
            assert_eq!(keyframe, p.keyframe_start);
            keyframe
        })
        .map(|p| p.capture_time)
        .collect()
}

#[test]
fn video_layers_hit_bitrate_and_fps_over_30_s() {
    let scenario = hostsharing();
    let mut source = video_source();
    let duration = 30 * SECOND;
    let packets = run_video(&mut source, duration);
    for (index, layer) in scenario.video.layers.iter().enumerate() {
        let stream = layer_packets(&packets, index as u8);
        assert!(stream.iter().all(|p| p.ssrc == VIDEO_SSRCS[index]));
        let frames = stream.iter().filter(|p| p.marker).count() as u32;
        assert_eq!(frames, layer.fps * 30, "layer {}", layer.rid);
        let bytes: usize = stream.iter().map(|p| p.payload.len()).sum();
        let kbps = bytes as f64 * 8.0 / duration.as_secs_f64() / 1000.0;
        let target = f64::from(layer.kbps);
        assert!(
            (kbps - target).abs() <= target * 0.10,
            "layer {}: {kbps:.1} kbps for {target}",
            layer.rid
        );
        // Frames sit exactly on the layer's frame clock.
        let mut capture_times: Vec<Duration> = stream.iter().map(|p| p.capture_time).collect();
        capture_times.dedup();
        for (i, t) in capture_times.iter().enumerate() {
            assert_eq!(
                *t,
                Duration::from_nanos(i as u64 * 1_000_000_000 / u64::from(layer.fps))
            );
        }
    }
}

#[test]
fn video_packets_are_rfc7741_vp8_within_the_mtu() {
    let scenario = hostsharing();
    let mtu = scenario.video.mtu_payload_bytes as usize;
    let mut source = video_source();
    let packets = run_video(&mut source, 12 * SECOND);
    for (index, layer) in scenario.video.layers.iter().enumerate() {
        let stream = layer_packets(&packets, index as u8);
        let mut previous: Option<(MediaPacket, vp8::Vp8Descriptor)> = None;
        let mut in_keyframe = false;
        for packet in &stream {
            let payload = packet.payload.to_vec();
            assert_eq!(payload.len(), packet.payload.len());
            assert!(payload.len() <= mtu, "{} bytes", payload.len());
            let descriptor = vp8::parse(&payload).unwrap();
            assert_eq!(descriptor.len, 6);
            assert_eq!(descriptor.partition_index, 0);
            assert!(!descriptor.non_reference);
            assert!(matches!(descriptor.picture_id, Some(PictureId::Bits15(_))));
            assert_eq!(descriptor.temporal_id, Some(0));
            assert_eq!(descriptor.key_idx, None);
            let frame_start = previous.is_none_or(|(p, _)| p.marker);
            assert_eq!(descriptor.start_of_partition, frame_start);
            if let Some((prev, prev_descriptor)) = previous {
                assert_eq!(packet.sequence_number, prev.sequence_number.wrapping_add(1));
                let prev_pid = prev_descriptor.picture_id.unwrap().value();
                let pid = descriptor.picture_id.unwrap().value();
                let prev_tl0 = prev_descriptor.tl0_pic_idx.unwrap();
                let tl0 = descriptor.tl0_pic_idx.unwrap();
                if frame_start {
                    // A new frame: picture id and TL0PICIDX advance by one, timestamp by
                    // 90 kHz over the frame interval.
                    assert_eq!(pid, (prev_pid + 1) & 0x7FFF);
                    assert_eq!(tl0, prev_tl0.wrapping_add(1));
                    assert_eq!(
                        packet.timestamp.wrapping_sub(prev.timestamp),
                        90_000 / layer.fps
                    );
                } else {
                    assert_eq!((pid, tl0), (prev_pid, prev_tl0));
                    assert_eq!(packet.timestamp, prev.timestamp);
                    assert_eq!(packet.capture_time, prev.capture_time);
                }
            }
            if frame_start {
                in_keyframe = descriptor.is_keyframe;
            }
            assert_eq!(
                descriptor.layer_sync, in_keyframe,
                "Y set on keyframes only"
            );
            if descriptor.is_keyframe {
                let dimensions = vp8::keyframe_dimensions(&payload, &descriptor);
                assert_eq!(
                    dimensions,
                    Some((layer.width as u16, layer.height as u16)),
                    "layer {}",
                    layer.rid
                );
            } else {
                assert_eq!(vp8::keyframe_dimensions(&payload, &descriptor), None);
            }
            previous = Some((*packet, descriptor));
        }
        assert!(
            stream.last().unwrap().marker,
            "last packet of a frame has the marker"
        );
        // A frame's packets differ in size by at most one byte (even split).
        let mut by_frame: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for p in &stream {
            by_frame
                .entry(p.timestamp)
                .or_default()
                .push(p.payload.len());
        }
        for sizes in by_frame.values().filter(|s| s.len() > 2) {
            // The first packet also carries the frame header; compare the others.
            let rest = &sizes[1..];
            let (min, max) = (rest.iter().min().unwrap(), rest.iter().max().unwrap());
            assert!(max - min <= 1, "{sizes:?}");
        }
    }
}

#[test]
fn video_keyframes_every_10_s_on_every_layer() {
    let mut source = video_source();
    let packets = run_video(&mut source, 35 * SECOND);
    for layer in 0..3 {
        let keyframes = keyframe_times(&layer_packets(&packets, layer));
        assert_eq!(
            keyframes,
            vec![Duration::ZERO, 10 * SECOND, 20 * SECOND, 30 * SECOND]
        );
    }
    // A keyframe is about four average delta frames.
    let full = layer_packets(&packets, 2);
    let mut frame_bytes: BTreeMap<u32, (bool, usize)> = BTreeMap::new();
    for p in &full {
        let entry = frame_bytes.entry(p.timestamp).or_default();
        entry.0 |= p.keyframe_start;
        entry.1 += p.payload.len();
    }
    let key: Vec<usize> = frame_bytes.values().filter(|f| f.0).map(|f| f.1).collect();
    let delta: Vec<usize> = frame_bytes.values().filter(|f| !f.0).map(|f| f.1).collect();
    let mean_delta = delta.iter().sum::<usize>() as f64 / delta.len() as f64;
    for k in key {
        let ratio = k as f64 / mean_delta;
        assert!(
            (3.5..=4.5).contains(&ratio),
            "keyframe {ratio:.2}× a delta frame"
        );
    }
}

#[test]
fn video_keyframe_requests_are_served_at_most_every_500_ms() {
    let mut source = video_source();
    let mut outcomes = Vec::new();
    // A PLI storm on the top layer: every 100 ms from 3 s to 5 s; one on the lowest at 7 s.
    let mut next_request = 3 * SECOND;
    let packets = run_video_with(&mut source, 12 * SECOND, |source, t| {
        if t >= next_request && t <= 5 * SECOND {
            outcomes.push((t, source.request_keyframe(t, 2).unwrap()));
            next_request += ms(100);
        }
        if t == 7 * SECOND {
            outcomes.push((
                t,
                source.request_keyframe_for_ssrc(t, VIDEO_SSRCS[0]).unwrap(),
            ));
        }
    });
    let top = keyframe_times(&layer_packets(&packets, 2));
    // The first keyframe, the first request at once, then one per 500 ms; the periodic
    // interval counts from the last keyframe, so the next periodic one is after 12 s.
    assert_eq!(top[0], Duration::ZERO);
    assert_eq!(top[1], 3 * SECOND);
    assert!(!top.contains(&(10 * SECOND)));
    for pair in top.windows(2) {
        assert!(pair[1] - pair[0] >= KEYFRAME_MIN_INTERVAL, "{top:?}");
    }
    let storm: Vec<_> = top
        .iter()
        .filter(|&&t| t >= 3 * SECOND && t < 6 * SECOND)
        .collect();
    assert!((4..=6).contains(&storm.len()), "{storm:?}");
    assert_eq!(outcomes[0], (3 * SECOND, KeyframeRequest::NextFrame));
    assert!(outcomes
        .iter()
        .any(|(_, o)| matches!(o, KeyframeRequest::Deferred { not_before } if *not_before == 3 * SECOND + KEYFRAME_MIN_INTERVAL)));
    assert!(outcomes
        .iter()
        .any(|(_, o)| *o == KeyframeRequest::AlreadyPending));
    // The lowest layer serves its one request on its next frame; its periodic keyframe
    // then comes 10 s after that. The middle layer keeps the 10 s rhythm.
    let low = keyframe_times(&layer_packets(&packets, 0));
    assert_eq!(low, vec![Duration::ZERO, 7 * SECOND]);
    let middle = keyframe_times(&layer_packets(&packets, 1));
    assert_eq!(middle, vec![Duration::ZERO, 10 * SECOND]);
    // Unknown layers and SSRCs are refused.
    assert_eq!(
        source.request_keyframe(12 * SECOND, 3),
        Err(MediaError::NoSuchLayer(3))
    );
    assert_eq!(source.request_keyframe_for_ssrc(12 * SECOND, 42), None);
}

#[test]
fn video_bitrate_holds_with_keyframe_requests_every_2_s() {
    let scenario = hostsharing();
    let mut source = video_source();
    let mut next_request = SECOND;
    let packets = run_video_with(&mut source, 30 * SECOND, |source, t| {
        if t >= next_request {
            for layer in 0..3 {
                source.request_keyframe(t, layer).unwrap();
            }
            next_request += 2 * SECOND;
        }
    });
    for (index, layer) in scenario.video.layers.iter().enumerate() {
        let stream = layer_packets(&packets, index as u8);
        assert!(keyframe_times(&stream).len() >= 15);
        let bytes: usize = stream.iter().map(|p| p.payload.len()).sum();
        let kbps = bytes as f64 * 8.0 / 30.0 / 1000.0;
        let target = f64::from(layer.kbps);
        assert!(
            (kbps - target).abs() <= target * 0.10,
            "{}: {kbps:.1}",
            layer.rid
        );
    }
}

#[test]
fn video_inactive_layers_send_nothing_and_resume_with_a_keyframe() {
    let mut source = video_source();
    let packets = run_video_with(&mut source, 8 * SECOND, |source, t| {
        if t == 2 * SECOND {
            source.set_layer_active(t, 2, false).unwrap();
            source.set_layer_active(t, 1, false).unwrap();
        }
        if t == 5 * SECOND {
            source.set_layer_active(t, 2, true).unwrap();
        }
    });
    let top = layer_packets(&packets, 2);
    let middle = layer_packets(&packets, 1);
    // Frames captured before the switch finish; nothing captured while off.
    assert!(top
        .iter()
        .all(|p| p.capture_time < 2 * SECOND || p.capture_time >= 5 * SECOND));
    assert!(middle.iter().all(|p| p.capture_time < 2 * SECOND));
    assert_eq!(keyframe_times(&top), vec![Duration::ZERO, 5 * SECOND]);
    let resumed = top.iter().find(|p| p.capture_time >= 5 * SECOND).unwrap();
    assert!(resumed.keyframe_start);
    // Picture ids and sequence numbers continue across the gap.
    let gap = top
        .iter()
        .position(|p| p.capture_time >= 5 * SECOND)
        .unwrap();
    let (before, after) = (&top[gap - 1], &top[gap]);
    assert_eq!(
        after.sequence_number,
        before.sequence_number.wrapping_add(1)
    );
    let pid = |p: &MediaPacket| {
        vp8::parse(&p.payload.to_vec())
            .unwrap()
            .picture_id
            .unwrap()
            .value()
    };
    assert_eq!(pid(after), (pid(before) + 1) & 0x7FFF);
    assert_eq!(source.active_layers(), LayerSet::first(1).with(2));
    // Every layer off: nothing to poll for.
    source.set_active_layers(8 * SECOND, LayerSet::EMPTY);
    while source.poll(8 * SECOND).is_some() {}
    assert_eq!(source.poll_timeout(), None);
}

#[test]
fn video_layer_policy_drops_highest_layers_first() {
    let scenario = hostsharing();
    let config = VideoConfig::from_scenario(&scenario.video, &VIDEO_SSRCS, 96).unwrap();
    let layers = &config.layers;
    let set = |bps| layers_for_bitrate(layers, bps).iter().collect::<Vec<_>>();
    assert_eq!(set(0), vec![0], "the lowest layer always stays");
    assert_eq!(set(149_999), vec![0]);
    assert_eq!(set(650_000), vec![0, 1]);
    assert_eq!(set(2_149_999), vec![0, 1]);
    assert_eq!(set(2_150_000), vec![0, 1, 2]);
    assert_eq!(set(10_000_000), vec![0, 1, 2]);

    let mut source = video_source();
    let active = source.apply_bitrate_estimate(Duration::ZERO, 700_000);
    assert_eq!(active, source.active_layers());
    assert_eq!(active.iter().collect::<Vec<_>>(), vec![0, 1]);
    let packets = run_video(&mut source, 2 * SECOND);
    assert!(layer_packets(&packets, 2).is_empty());
}

#[test]
fn video_config_refuses_what_it_cannot_model() {
    let mut scenario = hostsharing();
    assert!(matches!(
        VideoConfig::from_scenario(&scenario.video, &VIDEO_SSRCS[..2], 96),
        Err(MediaError::SsrcCountMismatch {
            layers: 3,
            ssrcs: 2
        })
    ));
    scenario.video.codec = "AV1".into();
    assert!(matches!(
        VideoConfig::from_scenario(&scenario.video, &VIDEO_SSRCS, 96),
        Err(MediaError::UnsupportedCodec(_))
    ));
    // H264 is modelled, in any case.
    scenario.video.codec = "h264".into();
    assert!(VideoConfig::from_scenario(&scenario.video, &VIDEO_SSRCS, 96).is_ok());
}

#[test]
fn sources_are_deterministic_for_a_seed() {
    let run = || {
        let mut source = video_source();
        run_video(&mut source, 3 * SECOND)
    };
    assert_eq!(run(), run());
    let a = run_audio(&mut audio_source(true), 5 * SECOND, |t| t > 2 * SECOND);
    let b = run_audio(&mut audio_source(true), 5 * SECOND, |t| t > 2 * SECOND);
    assert_eq!(a, b);
}

// ---------------------------------------------------------------------------------------
// RTP writer

fn all_ids() -> ExtensionIds {
    let mut map = ExtensionMap::new();
    map.insert(1, ExtensionKind::AudioLevel).unwrap();
    map.insert(3, ExtensionKind::TransportCc).unwrap();
    map.insert(4, ExtensionKind::Mid).unwrap();
    map.insert(10, ExtensionKind::RtpStreamId).unwrap();
    map.insert(11, ExtensionKind::RepairedRtpStreamId).unwrap();
    map.insert(13, ExtensionKind::AbsCaptureTime).unwrap();
    map.insert(2, ExtensionKind::AbsSendTime).unwrap();
    let ids = ExtensionIds::from_map(&map);
    assert_eq!(ids.abs_capture_time, Some(13));
    ids
}

#[test]
fn rtp_writer_round_trips_through_the_node_parser() {
    let writer = RtpWriter::new(all_ids()).unwrap();
    let mut source = audio_source(true);
    let packet = source.poll(Duration::ZERO, true).unwrap();
    let extensions = SendExtensions {
        transport_cc_seq: Some(0xBEEF),
        abs_capture_ntp: Some(ntp_from_unix(Duration::new(1_700_000_000, 250_000_000))),
        mid: Some(SdesTag::mid("0").unwrap()),
        rid: None,
        repaired_rid: None,
    };
    let mut out = Vec::new();
    writer.write(&packet, &extensions, &mut out).unwrap();
    let parsed = RtpPacket::parse(&out[..]).unwrap();
    assert_eq!(parsed.version(), 2);
    assert!(!parsed.has_padding());
    assert_eq!(parsed.csrc_count(), 0);
    assert_eq!(parsed.marker(), packet.marker);
    assert_eq!(parsed.payload_type(), packet.payload_type);
    assert_eq!(parsed.sequence_number(), packet.sequence_number);
    assert_eq!(parsed.timestamp(), packet.timestamp);
    assert_eq!(parsed.ssrc(), packet.ssrc);
    assert_eq!(parsed.payload(), &packet.payload.to_vec()[..]);
    assert_eq!(parsed.header_len() % 4, 0);
    assert_eq!(
        AudioLevel::parse(parsed.extension(1).unwrap()).unwrap(),
        packet.audio_level.unwrap()
    );
    assert_eq!(
        TransportSequenceNumber::parse(parsed.extension(3).unwrap()).unwrap(),
        TransportSequenceNumber(0xBEEF)
    );
    let capture = AbsCaptureTime::parse(parsed.extension(13).unwrap()).unwrap();
    assert_eq!(capture.clock_offset, None);
    assert_eq!(capture.capture_ntp >> 32, 1_700_000_000 + NTP_UNIX_OFFSET_S);
    assert_eq!(capture.capture_ntp & 0xFFFF_FFFF, 1 << 30);
    assert_eq!(parse_mid(parsed.extension(4).unwrap()).unwrap(), "0");
    assert_eq!(parsed.extension(10), None);
    assert_eq!(parsed.extensions().count(), 4);
}

#[test]
fn rtp_writer_reuses_its_buffer_and_omits_an_empty_extension_block() {
    let mut source = video_source();
    let packets = run_video(&mut source, 2 * SECOND);
    let bare = RtpWriter::new(ExtensionIds::default()).unwrap();
    let mut out = Vec::with_capacity(1500);
    let capacity = out.capacity();
    for packet in &packets {
        bare.write(packet, &SendExtensions::default(), &mut out)
            .unwrap();
        assert_eq!(out.capacity(), capacity, "no reallocation");
        let parsed = RtpPacket::parse(&out[..]).unwrap();
        assert!(!parsed.has_extension());
        assert_eq!(parsed.header_len(), 12);
        assert_eq!(out.len(), 12 + packet.payload.len());
        assert_eq!(parsed.marker(), packet.marker);
    }
    // With every extension, the video packet still fits a 1200-byte datagram budget.
    let writer = RtpWriter::new(all_ids()).unwrap();
    let extensions = SendExtensions {
        transport_cc_seq: Some(1),
        abs_capture_ntp: Some(42),
        mid: Some(SdesTag::mid("video-1").unwrap()),
        rid: Some(SdesTag::rid("f").unwrap()),
        repaired_rid: None,
    };
    for packet in &packets {
        writer.write(packet, &extensions, &mut out).unwrap();
        assert!(out.len() <= 12 + 36 + 1160);
        let parsed = RtpPacket::parse(&out[..]).unwrap();
        assert_eq!(
            parse_rtp_stream_id(parsed.extension(10).unwrap()).unwrap(),
            "f"
        );
        assert_eq!(parsed.extension(1), None, "video carries no audio level");
        assert_eq!(parsed.payload(), &packet.payload.to_vec()[..]);
    }
}

#[test]
fn rtp_writer_refuses_bad_ids_and_tags() {
    let ids = |audio_level, transport_cc| ExtensionIds {
        audio_level,
        transport_cc,
        ..ExtensionIds::default()
    };
    assert_eq!(
        RtpWriter::new(ids(Some(0), None)),
        Err(MediaError::InvalidExtensionId(0))
    );
    assert_eq!(
        RtpWriter::new(ids(Some(15), None)),
        Err(MediaError::InvalidExtensionId(15))
    );
    assert_eq!(
        RtpWriter::new(ids(Some(5), Some(5))),
        Err(MediaError::DuplicateExtensionId(5))
    );
    assert!(SdesTag::mid("").is_err());
    assert!(SdesTag::mid("a b").is_err());
    assert!(SdesTag::mid("seventeen-bytes-x").is_err());
    assert!(SdesTag::rid("r.1").is_err());
    assert_eq!(SdesTag::rid("hi_res-2").unwrap().as_str(), "hi_res-2");
    assert_eq!(
        SdesTag::mid("sixteen-bytes-xx").unwrap().as_bytes().len(),
        16
    );
    // A level above 127 cannot be encoded.
    let mut packet = audio_source(true).poll(Duration::ZERO, true).unwrap();
    packet.audio_level = Some(AudioLevel {
        voice_activity: true,
        level: 128,
    });
    let writer = RtpWriter::new(all_ids()).unwrap();
    assert!(matches!(
        writer.write(&packet, &SendExtensions::default(), &mut Vec::new()),
        Err(MediaError::Extension(_))
    ));
}

#[test]
fn ntp_timestamps() {
    assert_eq!(ntp_from_unix(Duration::ZERO), NTP_UNIX_OFFSET_S << 32);
    assert_eq!(
        ntp_from_unix(Duration::from_millis(1500)),
        ((NTP_UNIX_OFFSET_S + 1) << 32) | 0x8000_0000
    );
}

fn arbitrary_packet() -> impl Strategy<Value = MediaPacket> {
    (
        any::<u32>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..=20),
        0usize..1400,
        any::<u16>(),
        proptest::option::of((any::<bool>(), 0u8..=127)),
    )
        .prop_map(
            |(
                ssrc,
                payload_type,
                sequence_number,
                timestamp,
                marker,
                prefix,
                filler,
                phase,
                level,
            )| {
                MediaPacket {
                    kind: MediaKind::Audio,
                    ssrc,
                    payload_type,
                    sequence_number,
                    timestamp,
                    marker,
                    payload: MediaPayload::new(&prefix, filler, phase).unwrap(),
                    audio_level: level.map(|(voice_activity, level)| AudioLevel {
                        voice_activity,
                        level,
                    }),
                    keyframe_start: false,
                    capture_time: Duration::ZERO,
                    original_sequence_number: None,
                }
            },
        )
}

proptest! {
    #[test]
    fn rtp_writer_round_trip_property(
        packet in arbitrary_packet(),
        transport_cc_seq in proptest::option::of(any::<u16>()),
        abs_capture_ntp in proptest::option::of(any::<u64>()),
        mid in proptest::option::of("[a-z0-9]{1,16}"),
        rid in proptest::option::of("[A-Za-z0-9_-]{1,16}"),
        repaired_rid in proptest::option::of("[a-z]{1,3}"),
    ) {
        let writer = RtpWriter::new(all_ids()).unwrap();
        let extensions = SendExtensions {
            transport_cc_seq,
            abs_capture_ntp,
            mid: mid.as_deref().map(|m| SdesTag::mid(m).unwrap()),
            rid: rid.as_deref().map(|r| SdesTag::rid(r).unwrap()),
            repaired_rid: repaired_rid.as_deref().map(|r| SdesTag::rid(r).unwrap()),
        };
        let mut out = Vec::new();
        writer.write(&packet, &extensions, &mut out).unwrap();
        let parsed = RtpPacket::parse(&out[..]).unwrap();
        prop_assert_eq!(parsed.ssrc(), packet.ssrc);
        prop_assert_eq!(parsed.payload_type(), packet.payload_type);
        prop_assert_eq!(parsed.sequence_number(), packet.sequence_number);
        prop_assert_eq!(parsed.timestamp(), packet.timestamp);
        prop_assert_eq!(parsed.marker(), packet.marker);
        prop_assert_eq!(parsed.payload(), &packet.payload.to_vec()[..]);
        prop_assert_eq!(parsed.extension(1).map(|v| AudioLevel::parse(v).unwrap()), packet.audio_level);
        prop_assert_eq!(parsed.extension(3).map(|v| TransportSequenceNumber::parse(v).unwrap().0), transport_cc_seq);
        prop_assert_eq!(parsed.extension(13).map(|v| AbsCaptureTime::parse(v).unwrap().capture_ntp), abs_capture_ntp);
        prop_assert_eq!(parsed.extension(4).map(|v| parse_mid(v).unwrap().to_owned()), mid);
        prop_assert_eq!(parsed.extension(10).map(|v| parse_rtp_stream_id(v).unwrap().to_owned()), rid);
        prop_assert_eq!(parsed.extension(11).map(|v| parse_repaired_rtp_stream_id(v).unwrap().to_owned()), repaired_rid);
    }
}

// ---------------------------------------------------------------------------------------
// Retransmission

#[test]
fn retransmit_buffer_is_bounded_by_count_and_age() {
    let mut source = video_source();
    let packets = layer_packets(&run_video(&mut source, 10 * SECOND), 2);
    assert!(packets.len() > 1000);
    let mut buffer = RetransmitBuffer::new(500, SECOND);
    assert_eq!(buffer.capacity(), 512);
    for packet in &packets[..1000] {
        buffer.insert(*packet);
    }
    let now = packets[999].capture_time;
    for (i, packet) in packets[..1000].iter().enumerate() {
        let held = buffer.get(packet.sequence_number, now);
        if i >= 1000 - 512 && now - packet.capture_time <= SECOND {
            assert_eq!(held, Some(packet));
        } else {
            assert_eq!(held, None, "packet {i}");
        }
    }
    // The newest packet ages out after a second.
    let newest = packets[999];
    assert!(buffer
        .get(newest.sequence_number, newest.capture_time + 2 * SECOND)
        .is_none());
    buffer.clear();
    assert!(buffer.get(newest.sequence_number, now).is_none());
}

#[test]
fn rtx_packets_follow_rfc4588() {
    let mut source = video_source();
    let packets = layer_packets(&run_video(&mut source, SECOND), 2);
    let mut buffer = RetransmitBuffer::new(512, SECOND);
    for packet in &packets {
        buffer.insert(*packet);
    }
    let now = packets.last().unwrap().capture_time;
    let mut rtx = RtxStream::new(0x2002, 97, 65_535);
    let writer = RtpWriter::new(all_ids()).unwrap();
    let extensions = SendExtensions {
        transport_cc_seq: Some(9),
        repaired_rid: Some(SdesTag::rid("f").unwrap()),
        ..SendExtensions::default()
    };
    let mut out = Vec::new();
    for (i, original) in [&packets[0], &packets[5], &packets[6]]
        .into_iter()
        .enumerate()
    {
        let repair = rtx
            .answer_nack(&buffer, original.sequence_number, now)
            .unwrap();
        assert_eq!(
            repair.original_sequence_number,
            Some(original.sequence_number)
        );
        writer.write(&repair, &extensions, &mut out).unwrap();
        let parsed = RtpPacket::parse(&out[..]).unwrap();
        assert_eq!(parsed.ssrc(), 0x2002);
        assert_eq!(parsed.payload_type(), 97);
        assert_eq!(parsed.sequence_number(), 65_535u16.wrapping_add(i as u16));
        assert_eq!(parsed.timestamp(), original.timestamp);
        assert_eq!(parsed.marker(), original.marker);
        let payload = parsed.payload();
        assert_eq!(&payload[..2], &original.sequence_number.to_be_bytes());
        assert_eq!(&payload[2..], &original.payload.to_vec()[..]);
        assert_eq!(
            parse_repaired_rtp_stream_id(parsed.extension(11).unwrap()).unwrap(),
            "f"
        );
    }
    // A packet never sent, or long gone, is not answered.
    let missing = packets.last().unwrap().sequence_number.wrapping_add(1);
    assert!(rtx.answer_nack(&buffer, missing, now).is_none());
    assert!(rtx
        .answer_nack(&buffer, packets[0].sequence_number, now + 5 * SECOND)
        .is_none());
}
