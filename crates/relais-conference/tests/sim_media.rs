//! The simulator's synthetic sources and receiver-side checkers, without an SFU in between:
//! each source's own output must pass its checker, each kind of damage an SFU could do must
//! be caught, and the sources must look like libwebrtc's on the wire.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod sim;

use std::time::{Duration, Instant};

use relais_rtp::codec::{opus, vp8, vp9};
use relais_rtp::extensions::{AudioLevel, TransportSequenceNumber};
use relais_rtp::rtp::RtpPacket;
use sim::check::{AudioChecker, ViolationKind, Vp8StreamChecker, Vp9StreamChecker};
use sim::media::{
    classify_opus_payload, AudioPacketKind, FrameStamp, MediaSource, OpusConfig, OpusSource,
    Vp8SimulcastConfig, Vp8SimulcastSource, Vp9SvcConfig, Vp9SvcSource, EXT_ABS_SEND_TIME,
    EXT_AUDIO_LEVEL, EXT_TRANSPORT_CC, OPUS_FRAME_TICKS, OPUS_PT, VP8_DESCRIPTOR_LEN, VP8_PT,
    VP8_RTX_PT, VP9_PT, VP9_RTX_PT,
};

const SECOND: Duration = Duration::from_secs(1);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Polls `source` every `step` from `from` (inclusive) to `until` (exclusive).
fn run(
    source: &mut dyn MediaSource,
    from: Instant,
    until: Instant,
    step: Duration,
) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut now = from;
    while now < until {
        packets.extend(source.poll(now));
        now += step;
    }
    packets
}

fn parse(packet: &[u8]) -> RtpPacket<&[u8]> {
    RtpPacket::parse(packet).unwrap()
}

fn transport_seq(packet: &[u8]) -> u16 {
    TransportSequenceNumber::parse(parse(packet).extension(EXT_TRANSPORT_CC).unwrap())
        .unwrap()
        .0
}

/// Rewrites sequence numbers from `first` on, as an SFU does after dropping packets.
fn renumber(packets: &mut [Vec<u8>], first: u16) {
    for (packet, seq) in packets.iter_mut().zip(first..) {
        RtpPacket::parse(&mut packet[..])
            .unwrap()
            .set_sequence_number(seq);
    }
}

// ---------------------------------------------------------------------------------------
// Opus.
// ---------------------------------------------------------------------------------------

/// Comfort-noise packets in a silent stretch of `length`: one on entering, then every
/// 400 ms.
fn noise_packets(length: Duration) -> u64 {
    length.as_millis().div_ceil(400) as u64
}

#[test]
fn opus_follows_the_speaking_script_with_dtx() {
    let start = Instant::now();
    let config = OpusConfig::new(7)
        .with_turn(2 * SECOND, 5 * SECOND)
        .with_turn(ms(10_000), ms(12_500));
    let mut source = OpusSource::new(config, start);
    // An odd polling step: the source must catch up on whatever is due.
    let packets = run(&mut source, start, start + 30 * SECOND, ms(7));

    let speech = (3_000 + 2_500) / 20;
    let silence = noise_packets(2 * SECOND) + noise_packets(5 * SECOND) + noise_packets(ms(17_500));
    assert_eq!(source.speech_packets_sent(), speech);
    assert_eq!(source.silence_packets_sent(), silence);
    assert_eq!(packets.len() as u64, speech + silence);

    let mut checker = AudioChecker::new();
    for packet in &packets {
        checker.on_packet(packet);
    }
    assert_eq!(checker.senders(), vec![7]);
    assert_eq!(checker.speech_packets(7), speech);
    assert_eq!(checker.silence_packets(7), silence);
    assert_eq!(checker.sender(7).unwrap().level_mismatches, 0);
    assert_eq!(checker.unrecognised(), 0);

    let mut markers = 0;
    for (i, packet) in packets.iter().enumerate() {
        let p = parse(packet);
        assert_eq!(p.payload_type(), OPUS_PT);
        assert_eq!(p.ssrc(), source.ssrc());
        let level = AudioLevel::parse(p.extension(EXT_AUDIO_LEVEL).unwrap()).unwrap();
        match classify_opus_payload(p.payload()).unwrap() {
            AudioPacketKind::Speech {
                source,
                sequence_number,
            } => {
                assert_eq!((source, sequence_number), (7, p.sequence_number()));
                assert!(level.voice_activity && (25..=55).contains(&level.level));
                assert!(!opus::is_dtx(p.payload()));
            }
            AudioPacketKind::ComfortNoise { source } => {
                assert_eq!(source, 7);
                assert!(!level.voice_activity && (95..=127).contains(&level.level));
                assert!(opus::is_dtx(p.payload()));
                assert!(!p.marker());
            }
        }
        markers += usize::from(p.marker());
        if i > 0 {
            let previous = parse(&packets[i - 1]);
            assert_eq!(
                p.sequence_number(),
                previous.sequence_number().wrapping_add(1)
            );
            assert_eq!(
                transport_seq(packet),
                transport_seq(&packets[i - 1]).wrapping_add(1)
            );
            // Timestamps advance by whole frames, across DTX gaps too.
            assert_eq!(
                p.timestamp().wrapping_sub(previous.timestamp()) % OPUS_FRAME_TICKS,
                0
            );
        }
    }
    assert_eq!(markers, 2, "one marker per talkspurt");
}

#[test]
fn opus_next_due_is_exactly_the_next_packet() {
    let start = Instant::now();
    let mut source = OpusSource::new(OpusConfig::new(1).with_turn(SECOND, 2 * SECOND), start);
    let mut sent = 0;
    let mut switched = false;
    loop {
        let due = source.next_due();
        if due >= start + 10 * SECOND {
            break;
        }
        if !switched && due >= start + 4 * SECOND {
            // Frames not yet polled follow the new state: bring the source up to 4 s first.
            assert!(source.poll(start + 4 * SECOND - ms(1)).is_empty());
            source.set_speaking(true);
            switched = true;
        }
        let packets = source.poll(due);
        assert_eq!(packets.len(), 1, "exactly one packet at {:?}", due - start);
        sent += 1;
    }
    // 0..1 s silent, 1..2 s speech, 2..4 s silent, then speech to 10 s.
    let speech = 50 + 300;
    let silence = noise_packets(SECOND) + noise_packets(2 * SECOND);
    assert_eq!(sent, speech + silence);
    assert_eq!(source.speech_packets_sent(), speech);
}

// ---------------------------------------------------------------------------------------
// VP8.
// ---------------------------------------------------------------------------------------

fn vp8_thirty_seconds() -> (Vp8SimulcastSource, Vec<Vec<u8>>) {
    let start = Instant::now();
    let mut source = Vp8SimulcastSource::new(Vp8SimulcastConfig::new(3), start);
    let packets = run(&mut source, start, start + 30 * SECOND, ms(5));
    (source, packets)
}

#[test]
fn vp8_simulcast_into_checker_is_clean() {
    let (source, packets) = vp8_thirty_seconds();
    let mut checker = Vp8StreamChecker::new();
    for packet in &packets {
        checker.on_packet(packet);
    }
    checker.assert_clean();
    for encoding in 0..3 {
        assert_eq!(checker.frames_decoded(encoding as u8), 900);
        let stats = checker.stats(source.ssrc(encoding)).unwrap();
        assert_eq!(stats.keyframes_decoded, 3, "at 0, 10 and 20 s");
        assert_eq!(stats.current_encoding, Some(encoding as u8));
        assert_eq!(stats.current_source, Some(3));
        let config = source.encoding_config(encoding);
        assert_eq!(stats.current_width, Some(config.width));
        assert_eq!(stats.current_height, Some(config.height));
        assert_eq!(stats.encoding_switches, 0);
        assert_eq!(stats.packets.received, source.stats(encoding).packets);
    }
}

#[test]
fn vp8_packets_look_like_libwebrtc() {
    let (source, packets) = vp8_thirty_seconds();
    let mut transport_seqs: Vec<u16> = packets.iter().map(|p| transport_seq(p)).collect();
    let first_transport_seq = transport_seqs[0];
    transport_seqs
        .iter_mut()
        .for_each(|t| *t = t.wrapping_sub(first_transport_seq));
    assert!(transport_seqs
        .iter()
        .enumerate()
        .all(|(i, &t)| usize::from(t) == i));

    for encoding in 0..3 {
        let config = source.encoding_config(encoding);
        let mine: Vec<&Vec<u8>> = packets
            .iter()
            .filter(|p| parse(p).ssrc() == config.ssrc)
            .collect();
        let mut frames = 0;
        let mut previous: Option<(u16, u8, u32)> = None; // picture id, TL0PICIDX, timestamp
        let mut since_keyframe = 0;
        for (i, packet) in mine.iter().enumerate() {
            let p = parse(packet);
            assert_eq!(p.payload_type(), VP8_PT);
            assert!(p.payload().len() <= 1100);
            assert!(p.extension(EXT_ABS_SEND_TIME).is_some());
            let d = vp8::parse(p.payload()).unwrap();
            assert_eq!(d.len, VP8_DESCRIPTOR_LEN);
            let next_starts = mine
                .get(i + 1)
                .is_none_or(|next| vp8::parse(parse(next).payload()).unwrap().starts_frame());
            assert_eq!(
                p.marker(),
                next_starts,
                "marker on the last packet of a frame"
            );
            if !d.starts_frame() {
                continue;
            }
            frames += 1;
            let picture_id = d.picture_id.unwrap();
            assert_eq!(picture_id.modulus(), 0x8000, "15-bit picture ids");
            let (tid, tl0) = (d.temporal_id.unwrap(), d.tl0_pic_idx.unwrap());
            if d.is_keyframe {
                since_keyframe = 0;
                let data = &p.payload()[d.len..];
                assert_eq!(&data[3..6], &[0x9D, 0x01, 0x2A]);
                assert_eq!(u16::from_le_bytes([data[6], data[7]]), config.width);
                assert_eq!(u16::from_le_bytes([data[8], data[9]]), config.height);
            }
            let step = since_keyframe % 8;
            assert_eq!(tid, [0, 2, 1, 2][step % 4], "L1T3 pattern");
            assert_eq!(d.layer_sync, d.is_keyframe || step == 1 || step == 2);
            assert_eq!(d.non_reference, tid == 2);
            if let Some((previous_id, previous_tl0, previous_ts)) = previous {
                assert_eq!(picture_id.value(), (previous_id + 1) & 0x7FFF);
                assert_eq!(tl0, previous_tl0.wrapping_add(u8::from(tid == 0)));
                assert_eq!(p.timestamp().wrapping_sub(previous_ts), 3000);
            }
            let header_len = if d.is_keyframe { 10 } else { 3 };
            let stamp = FrameStamp::parse(&p.payload()[d.len + header_len..]).unwrap();
            assert_eq!(
                (stamp.source, usize::from(stamp.layer), stamp.picture_id),
                (3, encoding, picture_id.value())
            );
            previous = Some((picture_id.value(), tl0, p.timestamp()));
            since_keyframe += 1;
        }
        assert_eq!(frames, 900);
    }
}

#[test]
fn frame_sizes_match_the_configured_bitrates() {
    let (source, packets) = vp8_thirty_seconds();
    for encoding in 0..3 {
        let config = source.encoding_config(encoding);
        let bytes: usize = packets
            .iter()
            .map(|p| parse(p))
            .filter(|p| p.ssrc() == config.ssrc)
            .map(|p| p.payload().len() - VP8_DESCRIPTOR_LEN)
            .sum();
        assert_eq!(bytes as u64, source.stats(encoding).media_bytes);
        let bitrate = bytes as f64 * 8.0 / 30.0;
        let target = f64::from(config.bitrate_bps);
        assert!(
            (bitrate / target - 1.0).abs() < 0.1,
            "encoding {encoding}: {bitrate} bit/s for {target}"
        );
    }

    let start = Instant::now();
    let mut svc = Vp9SvcSource::new(Vp9SvcConfig::new(4), start);
    run(&mut svc, start, start + 30 * SECOND, ms(5));
    for layer in 0..3 {
        let bitrate = svc.stats(layer).media_bytes as f64 * 8.0 / 30.0;
        let target = f64::from(svc.layer_config(layer).bitrate_bps);
        assert!(
            (bitrate / target - 1.0).abs() < 0.1,
            "spatial layer {layer}: {bitrate} bit/s for {target}"
        );
    }
}

#[test]
fn keyframe_requests_and_restarted_encodings() {
    let start = Instant::now();
    let mut source = Vp8SimulcastSource::new(Vp8SimulcastConfig::new(5), start);
    let mut packets = run(&mut source, start, start + 3 * SECOND, ms(10));
    source.request_keyframe();
    source.set_active(2, false);
    packets.extend(run(
        &mut source,
        start + 3 * SECOND,
        start + 6 * SECOND,
        ms(10),
    ));
    source.set_active(2, true);
    packets.extend(run(
        &mut source,
        start + 6 * SECOND,
        start + 9 * SECOND,
        ms(10),
    ));

    assert_eq!(source.stats(0).keyframes, 2, "start, request");
    assert_eq!(source.stats(1).keyframes, 2);
    assert_eq!(
        source.stats(2).keyframes,
        2,
        "start, restart (the request fell in the pause)"
    );
    assert_eq!(source.stats(2).frames, 180);
    let high: Vec<_> = packets
        .iter()
        .filter(|p| parse(p).ssrc() == source.ssrc(2))
        .collect();
    let gap = high
        .windows(2)
        .find(|w| {
            parse(w[1])
                .timestamp()
                .wrapping_sub(parse(w[0]).timestamp())
                > 3000
        })
        .unwrap();
    assert!(vp8::parse(parse(gap[1]).payload()).unwrap().is_keyframe);

    // The pause shows as a timestamp jump only: sequence numbers and picture ids go on.
    let mut checker = Vp8StreamChecker::new();
    for packet in &packets {
        checker.on_packet(packet);
    }
    checker.assert_clean();
    assert_eq!(checker.frames_decoded(2), 180);
}

#[test]
fn late_polls_catch_up() {
    let start = Instant::now();
    let mut source = Vp8SimulcastSource::new(Vp8SimulcastConfig::new(1), start);
    let packets = source.poll(start + SECOND);
    let frames = packets
        .iter()
        .filter(|p| parse(p).ssrc() == source.ssrc(0) && parse(p).marker())
        .count();
    assert_eq!(frames, 31, "frames at 0, 1/30, ..., 30/30 s");
    assert_eq!(
        source.next_due(),
        start + Duration::from_nanos(31_000_000_000 / 30)
    );

    let mut opus = OpusSource::new(OpusConfig::new(1).with_turn(Duration::ZERO, SECOND), start);
    assert_eq!(opus.poll(start + ms(990)).len(), 50);
}

/// Packets of encoding `encoding` grouped per frame.
fn frames_of(packets: &[Vec<u8>], ssrc: u32) -> Vec<Vec<Vec<u8>>> {
    let mut frames: Vec<Vec<Vec<u8>>> = Vec::new();
    for packet in packets.iter().filter(|p| parse(p).ssrc() == ssrc) {
        if vp8::parse(parse(packet).payload()).unwrap().starts_frame() {
            frames.push(Vec::new());
        }
        frames.last_mut().unwrap().push(packet.clone());
    }
    frames
}

fn check_vp8(packets: &[Vec<u8>]) -> Vp8StreamChecker {
    let mut checker = Vp8StreamChecker::new();
    for packet in packets {
        checker.on_packet(packet);
    }
    checker.flush();
    checker
}

#[test]
fn a_dropped_packet_is_a_gap_and_a_lost_frame() {
    let (source, packets) = vp8_thirty_seconds();
    let mut frames = frames_of(&packets, source.ssrc(2));
    // A TL0 frame of the 720p encoding, several packets long; lose its second packet.
    let victim = (150..).find(|&i| {
        frames[i].len() > 3 && {
            vp8::parse(parse(&frames[i][0]).payload())
                .unwrap()
                .temporal_id
                == Some(0)
        }
    });
    frames[victim.unwrap()].remove(1);
    let stream: Vec<Vec<u8>> = frames.into_iter().flatten().collect();

    let checker = check_vp8(&stream);
    let violations = checker.violations();
    assert_eq!(violations.count(ViolationKind::SequenceGap), 1);
    // What depends on the lost frame is a consequence of the loss, not another violation.
    violations.assert_only(&[ViolationKind::SequenceGap]);
    let stats = checker.stats(source.ssrc(2)).unwrap();
    assert_eq!((stats.packets.lost, stats.frames_lost), (1, 1));
    // Everything up to the next key frame (10 s) that depends on the lost TL0 frame.
    assert!(stats.frames_undecodable > 100);
}

#[test]
fn a_dropped_frame_is_a_picture_id_jump_and_a_missing_reference() {
    let (source, packets) = vp8_thirty_seconds();
    let mut frames = frames_of(&packets, source.ssrc(1));
    let victim = (40..)
        .find(|&i| {
            vp8::parse(parse(&frames[i][0]).payload())
                .unwrap()
                .temporal_id
                == Some(1)
        })
        .unwrap();
    frames.remove(victim);
    let mut stream: Vec<Vec<u8>> = frames.into_iter().flatten().collect();
    // Hide the loss: an SFU that drops a frame renumbers what follows.
    let first = parse(&stream[0]).sequence_number();
    renumber(&mut stream, first);

    let checker = check_vp8(&stream);
    let violations = checker.violations();
    assert_eq!(violations.count(ViolationKind::PictureIdJump), 1);
    // The first frame referencing the dropped one; those after it are consequences.
    assert_eq!(violations.count(ViolationKind::MissingReference), 1);
    violations.assert_only(&[
        ViolationKind::PictureIdJump,
        ViolationKind::MissingReference,
    ]);
}

#[test]
fn a_picture_id_jump_is_detected() {
    let (source, packets) = vp8_thirty_seconds();
    let mut stream: Vec<Vec<u8>> = packets
        .into_iter()
        .filter(|p| parse(p).ssrc() == source.ssrc(0))
        .collect();
    for packet in &mut stream[500..] {
        let mut p = RtpPacket::parse(&mut packet[..]).unwrap();
        let id = vp8::parse(p.payload()).unwrap().picture_id.unwrap().value();
        vp8::rewrite_picture_id(p.payload_mut(), id + 3).unwrap();
    }
    let checker = check_vp8(&stream);
    assert_eq!(checker.violations().count(ViolationKind::PictureIdJump), 1);
    checker
        .violations()
        .assert_only(&[ViolationKind::PictureIdJump]);
}

/// What an SFU does for one receiver of a simulcast stream: forwards one encoding on one
/// SSRC, keeping sequence numbers, timestamps, picture ids and TL0PICIDX continuous, and
/// switches to `target` at its next key frame, or at any frame start with `switch_on_delta`.
struct NaiveSwitcher {
    ssrcs: Vec<u32>,
    target: usize,
    switch_on_delta: bool,
    current: Option<usize>,
    sequence_number: u16,
    timestamp_offset: u32,
    last_timestamp: Option<u32>,
    picture_id: u16,
    tl0_pic_idx: u8,
}

impl NaiveSwitcher {
    const SSRC: u32 = 0xFEED;

    fn new(ssrcs: Vec<u32>, target: usize, switch_on_delta: bool) -> Self {
        Self {
            ssrcs,
            target,
            switch_on_delta,
            current: None,
            sequence_number: 100,
            timestamp_offset: 0,
            last_timestamp: None,
            picture_id: 7,
            tl0_pic_idx: 0,
        }
    }

    fn forward(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        let p = parse(packet);
        let encoding = self.ssrcs.iter().position(|&s| s == p.ssrc())?;
        let d = vp8::parse(p.payload()).unwrap();
        if d.starts_frame()
            && encoding == self.target
            && self.current != Some(encoding)
            && (d.is_keyframe || self.switch_on_delta)
        {
            self.current = Some(encoding);
            let next = self
                .last_timestamp
                .map_or(p.timestamp(), |ts| ts.wrapping_add(3000));
            self.timestamp_offset = next.wrapping_sub(p.timestamp());
        }
        if self.current != Some(encoding) {
            return None;
        }
        if d.starts_frame() {
            self.picture_id = (self.picture_id + 1) & 0x7FFF;
            if d.temporal_id == Some(0) {
                self.tl0_pic_idx = self.tl0_pic_idx.wrapping_add(1);
            }
        }
        let mut out = packet.to_vec();
        let mut p = RtpPacket::parse(&mut out[..]).unwrap();
        let timestamp = p.timestamp().wrapping_add(self.timestamp_offset);
        p.set_ssrc(Self::SSRC);
        p.set_sequence_number(self.sequence_number);
        p.set_timestamp(timestamp);
        vp8::rewrite_picture_id(p.payload_mut(), self.picture_id).unwrap();
        vp8::rewrite_tl0_pic_idx(p.payload_mut(), self.tl0_pic_idx).unwrap();
        self.sequence_number = self.sequence_number.wrapping_add(1);
        self.last_timestamp = Some(timestamp);
        Some(out)
    }
}

/// 0..3 s on encoding 0, then `target` 2; a key frame request at 3 s if `request`.
fn switch_run(switch_on_delta: bool, request: bool) -> Vp8StreamChecker {
    let start = Instant::now();
    let mut source = Vp8SimulcastSource::new(Vp8SimulcastConfig::new(9), start);
    let mut switcher = NaiveSwitcher::new(source.ssrcs(), 0, switch_on_delta);
    let mut checker = Vp8StreamChecker::new();
    let mut now = start;
    while now < start + 12 * SECOND {
        if now == start + 3 * SECOND {
            switcher.target = 2;
            if request {
                source.request_keyframe();
            }
        }
        for packet in source.poll(now) {
            if let Some(forwarded) = switcher.forward(&packet) {
                checker.on_packet(&forwarded);
            }
        }
        now += ms(10);
    }
    checker.flush();
    checker
}

#[test]
fn a_switch_on_a_key_frame_is_clean() {
    let mut checker = switch_run(false, true);
    checker.assert_clean();
    assert_eq!(checker.encoding_switches(), 1);
    assert_eq!(checker.current_encoding(), Some(2));
    assert_eq!(checker.current_height(), Some(720));
    assert_eq!(
        checker.frames_decoded(0),
        91,
        "0..=3 s, with the key frame at 3 s"
    );
    assert_eq!(checker.frames_decoded(2), 270, "3 s to 12 s");
}

#[test]
fn a_switch_without_a_key_frame_is_detected() {
    let checker = switch_run(true, false);
    let violations = checker.violations();
    assert_eq!(violations.count(ViolationKind::SwitchWithoutKeyframe), 1);
    // Then nothing decodes until the periodic key frame at 10 s; one violation, not 200.
    violations.assert_only(&[ViolationKind::SwitchWithoutKeyframe]);
    let stats = checker.stats(NaiveSwitcher::SSRC).unwrap();
    assert!(stats.frames_undecodable > 150);
    assert_eq!(checker.frames_decoded(2), 60, "10 s to 12 s");
    assert_eq!(checker.current_height(), Some(720));
}

// ---------------------------------------------------------------------------------------
// VP9.
// ---------------------------------------------------------------------------------------

fn vp9_thirty_seconds() -> (Vp9SvcSource, Vec<Vec<u8>>) {
    let start = Instant::now();
    let mut source = Vp9SvcSource::new(Vp9SvcConfig::new(6), start);
    let packets = run(&mut source, start, start + 30 * SECOND, ms(5));
    (source, packets)
}

fn check_vp9(packets: &[Vec<u8>], limit: Option<(u8, u8)>) -> Vp9StreamChecker {
    let mut checker = Vp9StreamChecker::new();
    if let Some((spatial, temporal)) = limit {
        checker.set_layer_limit(spatial, temporal);
    }
    for packet in packets {
        checker.on_packet(packet);
    }
    checker.flush();
    checker
}

/// Drops the packets of `drop`'s layers, renumbers, and (with `move_marker`) puts the
/// marker on the last packet of the highest layer left, as an SFU thinning SVC does.
fn thin_vp9(
    packets: &[Vec<u8>],
    keep: impl Fn(u8, u8) -> bool,
    top: u8,
    move_marker: bool,
) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = packets
        .iter()
        .filter(|p| {
            let d = vp9::parse(parse(p).payload()).unwrap();
            keep(d.spatial_id(), d.temporal_id())
        })
        .cloned()
        .collect();
    renumber(&mut out, 4242);
    if move_marker {
        for packet in &mut out {
            let mut p = RtpPacket::parse(&mut packet[..]).unwrap();
            let d = vp9::parse(p.payload()).unwrap();
            p.set_marker(d.end_of_frame && d.spatial_id() == top);
        }
    }
    out
}

#[test]
fn vp9_svc_into_checker_is_clean() {
    let (source, packets) = vp9_thirty_seconds();
    let mut checker = check_vp9(&packets, Some((2, 2)));
    checker.assert_clean();
    assert_eq!(checker.pictures_decoded(), 900);
    assert_eq!(checker.max_layers_over_last(30), Some((2, 2)));
    assert_eq!(checker.decoded_height(), Some(720));
    for spatial in 0..3 {
        assert_eq!(checker.layer_frames_decoded(spatial, 0), 225);
        assert_eq!(checker.layer_frames_decoded(spatial, 1), 225);
        assert_eq!(checker.layer_frames_decoded(spatial, 2), 450);
    }
    let stats = checker.stats(source.ssrc()).unwrap();
    assert_eq!(stats.keyframes_decoded, 3);
    assert_eq!(stats.resolutions, vec![(320, 180), (640, 360), (1280, 720)]);
}

#[test]
fn vp9_packets_look_like_libwebrtc() {
    let (source, packets) = vp9_thirty_seconds();
    let mut scalability_structures = 0;
    let mut key_picture = None;
    for (i, packet) in packets.iter().enumerate() {
        let p = parse(packet);
        assert_eq!((p.payload_type(), p.ssrc()), (VP9_PT, source.ssrc()));
        assert!(p.payload().len() <= 1100);
        let d = vp9::parse(p.payload()).unwrap();
        let layer = d.layer.unwrap();
        assert!(!d.flexible_mode && d.tl0_pic_idx.is_some());
        assert_eq!(
            layer.inter_layer_dependency,
            layer.spatial_id > 0,
            "full SVC"
        );
        assert_eq!(d.not_upper_reference, layer.spatial_id == 2);
        assert_eq!(p.marker(), d.end_of_frame && layer.spatial_id == 2);
        let next = packets
            .get(i + 1)
            .map(|n| vp9::parse(parse(n).payload()).unwrap());
        assert_eq!(d.end_of_frame, next.is_none_or(|n| n.start_of_frame));
        if let Some(ss) = d.scalability {
            scalability_structures += 1;
            assert!(d.is_keyframe());
            assert_eq!(ss.spatial_layers, 3);
            assert_eq!(ss.picture_group_len, Some(4));
            assert_eq!(ss.resolution(1), Some((640, 360)));
        }
        if d.is_keyframe() {
            key_picture = d.picture_id;
        }
        // Every layer frame of a key picture is intra or inter-layer predicted only.
        assert_eq!(d.inter_picture_predicted, d.picture_id != key_picture);
    }
    assert_eq!(scalability_structures, 3, "one per key picture");
}

#[test]
fn vp9_thinned_by_hand_to_s1t1_is_clean() {
    let (_, packets) = vp9_thirty_seconds();
    let thinned = thin_vp9(&packets, |s, t| s <= 1 && t <= 1, 1, true);
    let mut checker = check_vp9(&thinned, Some((1, 1)));
    checker.assert_clean();
    assert_eq!(
        checker.pictures_decoded(),
        450,
        "TL0 and TL1: half the pictures"
    );
    assert_eq!(checker.max_layers_over_last(100), Some((1, 1)));
    assert_eq!(checker.decoded_height(), Some(360));
    assert_eq!(checker.layer_frames_decoded(2, 0), 0);

    let base = thin_vp9(&packets, |s, t| s == 0 && t == 0, 0, true);
    let mut checker = check_vp9(&base, Some((0, 0)));
    checker.assert_clean();
    assert_eq!(checker.pictures_decoded(), 225);
    assert_eq!(checker.decoded_height(), Some(180));
}

#[test]
fn vp9_thinning_mistakes_are_detected() {
    let (_, packets) = vp9_thirty_seconds();

    // The marker left on the dropped top layer: no picture ends.
    let unmarked = thin_vp9(&packets, |s, _| s <= 1, 1, false);
    let checker = check_vp9(&unmarked, None);
    assert_eq!(
        checker.violations().count(ViolationKind::MissingMarker),
        899
    );
    checker
        .violations()
        .assert_only(&[ViolationKind::MissingMarker]);

    // A hole in the spatial layers: S2 without the S1 it predicts from.
    let holed = thin_vp9(&packets, |s, _| s != 1, 2, true);
    let checker = check_vp9(&holed, None);
    assert_eq!(checker.violations().count(ViolationKind::LayerHole), 900);
    for v in checker
        .violations()
        .list()
        .iter()
        .filter(|v| v.kind != ViolationKind::LayerHole)
    {
        eprintln!("{v}");
    }
    // One per key picture; the delta pictures after it depend on an undecodable frame.
    assert_eq!(
        checker.violations().count(ViolationKind::MissingReference),
        3
    );
    assert_eq!(checker.decoded_height(), Some(180));

    // More than the receiver should get.
    let checker = check_vp9(&packets, Some((1, 2)));
    assert_eq!(
        checker.violations().count(ViolationKind::LayerAboveLimit),
        900
    );
    checker
        .violations()
        .assert_only(&[ViolationKind::LayerAboveLimit]);

    // A lost packet.
    let mut lossy = packets.clone();
    lossy.remove(1000);
    let checker = check_vp9(&lossy, None);
    assert_eq!(checker.violations().count(ViolationKind::SequenceGap), 1);
    checker.violations().assert_only(&[
        ViolationKind::SequenceGap,
        ViolationKind::UndecodableAfterLoss,
    ]);
}

// ---------------------------------------------------------------------------------------
// Determinism and retransmission.
// ---------------------------------------------------------------------------------------

#[test]
fn sources_are_deterministic() {
    let start = Instant::now();
    let run_all = |seed: u64, start: Instant| {
        let mut opus = OpusConfig::new(1).with_turn(SECOND, 2 * SECOND);
        opus.seed = seed;
        let mut vp8 = Vp8SimulcastConfig::new(1);
        vp8.seed = seed;
        let mut vp9 = Vp9SvcConfig::new(1);
        vp9.seed = seed;
        let mut sources: Vec<Box<dyn MediaSource>> = vec![
            Box::new(OpusSource::new(opus, start)),
            Box::new(Vp8SimulcastSource::new(vp8, start)),
            Box::new(Vp9SvcSource::new(vp9, start)),
        ];
        sources
            .iter_mut()
            .flat_map(|s| run(s.as_mut(), start, start + 3 * SECOND, ms(10)))
            .collect::<Vec<_>>()
    };
    let first = run_all(42, start);
    assert_eq!(
        first,
        run_all(42, start + 5 * SECOND),
        "same seed, same bytes"
    );
    assert_ne!(first, run_all(43, start));
}

#[test]
fn retransmissions_are_rfc4588() {
    let start = Instant::now();
    let mut source = Vp8SimulcastSource::new(Vp8SimulcastConfig::new(2), start);
    let packets = run(&mut source, start, start + SECOND, ms(10));
    let original = packets
        .iter()
        .find(|p| parse(p).ssrc() == source.ssrc(1))
        .unwrap();
    let o = parse(original);
    let rtx = source
        .retransmit(start + SECOND, o.ssrc(), o.sequence_number())
        .unwrap();
    let r = parse(&rtx);
    assert_eq!(
        (r.payload_type(), r.ssrc()),
        (VP8_RTX_PT, source.rtx_ssrc(1))
    );
    assert_eq!((r.timestamp(), r.marker()), (o.timestamp(), o.marker()));
    assert_eq!(&r.payload()[..2], &o.sequence_number().to_be_bytes());
    assert_eq!(&r.payload()[2..], o.payload());
    assert!(r.extension(EXT_TRANSPORT_CC).is_some());
    assert!(source
        .retransmit(start, o.ssrc(), o.sequence_number().wrapping_sub(1))
        .is_none());

    let mut svc = Vp9SvcSource::new(Vp9SvcConfig::new(2), start);
    let packets = run(&mut svc, start, start + SECOND, ms(10));
    let o = parse(&packets[10]);
    let rtx = svc
        .retransmit(start, o.ssrc(), o.sequence_number())
        .unwrap();
    let r = parse(&rtx);
    assert_eq!((r.payload_type(), r.ssrc()), (VP9_RTX_PT, svc.rtx_ssrc()));
    assert_eq!(&r.payload()[2..], o.payload());
}

#[test]
fn reordering_and_retransmissions_in_time_are_not_losses() {
    let (source, packets) = vp8_thirty_seconds();
    let mut stream: Vec<Vec<u8>> = packets
        .into_iter()
        .filter(|p| parse(p).ssrc() == source.ssrc(2))
        .collect();
    // Swap two neighbours, and deliver one packet 100 packets late (a retransmission).
    stream.swap(300, 301);
    let late = stream.remove(1000);
    stream.insert(1100, late);
    let mut checker = check_vp8(&stream);
    checker.assert_clean();
    assert_eq!(checker.frames_decoded(2), 900);

    // Later than the reorder window: lost, then late.
    let late = stream.remove(2000);
    stream.insert(2000 + 300, late);
    let checker = check_vp8(&stream);
    let stats = checker.stats(source.ssrc(2)).unwrap();
    assert_eq!((stats.packets.lost, stats.packets.late), (1, 1));
    checker
        .violations()
        .assert_only(&[ViolationKind::SequenceGap]);

    // The same packet twice.
    let duplicate = stream[10].clone();
    stream.insert(12, duplicate);
    let checker = check_vp8(&stream);
    assert_eq!(
        checker.violations().count(ViolationKind::DuplicatePacket),
        1
    );
}
