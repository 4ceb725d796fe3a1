//! Receiver-side measurements: sequence accounting, recovery, latency, freezes, layer
//! switches, aggregation, pass criteria and node-side sampling, on crafted packet sequences.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use relais_loadtest::measure::{
    cpu_per_packet, evaluate, parse_stat_cpu, parse_status_rss_bytes, prometheus_counter_sum,
    Bound, Disposition, ExpectedStreams, HeightView, LayerSwitch, LossyCriteria, MeasureConfig,
    NtpEpoch, ProcParseError, ProcessSample, ReceivedPacket, ReceivedStream, ReceiverMeasurements,
    RunMeasurements, StreamKind, TimeSeries, SEQUENCE_WINDOW, SWITCH_GRACE,
};
use relais_loadtest::scenario::PassSection;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn packet(seq: u16, arrival_ms: u64) -> ReceivedPacket {
    ReceivedPacket {
        sequence_number: seq,
        arrival: ms(arrival_ms),
        payload_len: 100,
        ..ReceivedPacket::default()
    }
}

fn rtx(seq: u16, arrival_ms: u64) -> ReceivedPacket {
    ReceivedPacket {
        retransmission: true,
        ..packet(seq, arrival_ms)
    }
}

fn audio() -> ReceivedStream {
    ReceivedStream::new(StreamKind::Audio, MeasureConfig::default())
}

#[test]
fn gaps_across_rollover_are_loss() {
    let mut stream = audio();
    let seqs = [65530u16, 65531, 65532, 65534, 65535, 0, 1, 3, 4, 5];
    for (i, seq) in seqs.iter().enumerate() {
        stream.on_packet(&packet(*seq, i as u64 * 20));
    }
    let stats = stream.stats();
    assert_eq!(stats.expected, 12, "65530..=65535 and 0..=5");
    assert_eq!(stats.received, 10);
    assert_eq!(stats.lost, 2, "65533 and 2");
    assert_eq!(stats.residual(), 2);
    assert!((stats.loss_pct() - 200.0 / 12.0).abs() < 1e-9);
    assert_eq!(stats.packets, 10);
    assert_eq!(stats.bytes, 1000);
}

#[test]
fn many_rollovers_keep_counting() {
    let mut stream = audio();
    // 200 000 packets, one lost in every 1000: three rollovers.
    let mut arrival = 0;
    for n in 0u32..200_000 {
        if n % 1000 == 999 {
            continue;
        }
        arrival += 1;
        stream.on_packet(&packet(n as u16, arrival));
    }
    let stats = stream.stats();
    assert_eq!(stats.expected, 199_999, "up to the last received, 199 998");
    assert_eq!(stats.lost, 199);
    assert_eq!(stats.received, 199_800);
}

#[test]
fn reorder_within_window_is_not_loss() {
    let mut stream = audio();
    let outcomes: Vec<_> = [10u16, 11, 13, 12, 14, 9]
        .iter()
        .enumerate()
        .map(|(i, seq)| stream.on_packet(&packet(*seq, i as u64)))
        .collect();
    assert_eq!(outcomes[2].disposition, Disposition::InOrder);
    assert_eq!(outcomes[2].new_gaps, 1);
    assert_eq!(outcomes[3].disposition, Disposition::Reordered);
    assert_eq!(
        outcomes[5].disposition,
        Disposition::Reordered,
        "before the first packet"
    );
    let stats = stream.stats();
    assert_eq!(stats.expected, 6, "9..=14");
    assert_eq!(stats.received, 6);
    assert_eq!(stats.lost, 0);
    assert_eq!(stats.reordered, 2);

    // Arriving before the first packet with a hole in between: the hole is loss.
    let mut stream = audio();
    stream.on_packet(&packet(100, 0));
    stream.on_packet(&packet(101, 1));
    stream.on_packet(&packet(97, 2));
    let stats = stream.stats();
    assert_eq!(stats.expected, 5);
    assert_eq!(stats.lost, 2, "98 and 99");
}

#[test]
fn packets_older_than_the_window_are_too_late() {
    let mut stream = audio();
    stream.on_packet(&packet(0, 0));
    stream.on_packet(&packet(2, 1));
    for seq in 3..=(SEQUENCE_WINDOW as u16 + 2) {
        stream.on_packet(&packet(seq, 2));
    }
    let outcome = stream.on_packet(&packet(1, 3));
    assert_eq!(outcome.disposition, Disposition::TooLate);
    let stats = stream.stats();
    assert_eq!(stats.too_late, 1);
    assert_eq!(stats.lost, 1, "still lost: matched too late");
}

#[test]
fn duplicates_are_counted_once() {
    let mut stream = audio();
    for (i, seq) in [1u16, 2, 2, 3, 3, 3].iter().enumerate() {
        stream.on_packet(&packet(*seq, i as u64));
    }
    let stats = stream.stats();
    assert_eq!(stats.packets, 6);
    assert_eq!(stats.received, 3);
    assert_eq!(stats.duplicates, 3);
    assert_eq!(stats.expected, 3);
    assert_eq!(stats.lost, 0);
}

#[test]
fn retransmissions_recover_in_time_late_or_never() {
    let mut stream = audio();
    for seq in (1u16..=10).filter(|s| ![3, 5, 7].contains(s)) {
        stream.on_packet(&packet(seq, u64::from(seq) * 20));
    }
    // Gap 3 detected at 80 ms, 5 at 120 ms, 7 at 160 ms.
    let in_time = stream.on_packet(&rtx(3, 80 + 200));
    let late = stream.on_packet(&rtx(5, 120 + 1500));
    let redundant = stream.on_packet(&rtx(4, 1700));
    assert_eq!(
        in_time.disposition,
        Disposition::Recovered { in_time: true }
    );
    assert_eq!(late.disposition, Disposition::Recovered { in_time: false });
    assert_eq!(redundant.disposition, Disposition::Duplicate);
    assert_eq!(in_time.latency, None, "no latency for retransmissions");

    let stats = stream.stats();
    assert_eq!(stats.expected, 10);
    assert_eq!(stats.lost, 3, "raw loss counts repaired packets");
    assert_eq!(stats.recovered, 2);
    assert_eq!(stats.recovered_in_time, 1);
    assert_eq!(stats.residual(), 1, "7 never came");
    assert_eq!(stats.retransmissions, 3);
    assert!((stats.residual_loss_pct() - 10.0).abs() < 1e-9);
    assert!((stats.recovered_in_time_pct() - 100.0 / 3.0).abs() < 1e-9);

    // A retransmission ahead of everything: its original was lost and it repairs it at once.
    let ahead = stream.on_packet(&rtx(12, 2000));
    assert_eq!(ahead.disposition, Disposition::Recovered { in_time: true });
    assert_eq!(ahead.new_gaps, 2, "11 and 12 itself");
    let stats = stream.stats();
    assert_eq!(stats.expected, 12);
    assert_eq!(stats.lost, 5);
    assert_eq!(stats.recovered, 3);
    assert_eq!(stats.residual(), 2, "7 and 11");
}

#[test]
fn latency_percentiles_subtract_the_impairment_delay() {
    let config = MeasureConfig {
        impairment_delay: ms(40),
        ..MeasureConfig::default()
    };
    let mut receiver = ReceiverMeasurements::new(config, Duration::from_secs(1));
    // Added latencies 1..=100 ms on top of the 40 ms impairment.
    for k in 1u16..=100 {
        let arrival = 1000 + u64::from(k) * 10;
        let sent = ms(arrival) - ms(40 + u64::from(k));
        receiver.on_packet(
            7,
            StreamKind::Audio,
            &ReceivedPacket {
                send_time: Some(sent),
                ..packet(k, arrival)
            },
        );
    }
    // Retransmissions and duplicates carry no latency sample.
    receiver.on_packet(
        7,
        StreamKind::Audio,
        &ReceivedPacket {
            send_time: Some(ms(0)),
            ..rtx(5, 5000)
        },
    );
    receiver.on_packet(
        7,
        StreamKind::Audio,
        &ReceivedPacket {
            send_time: Some(ms(0)),
            ..packet(6, 5000)
        },
    );
    let summary = receiver.latency().summary();
    assert_eq!(summary.samples, 100);
    let near = |measured: u64, expected_ms: u64| {
        let expected = expected_ms as f64 * 1000.0;
        (measured as f64 - expected).abs() <= expected * 0.001 + 1.0
    };
    assert!(near(summary.p50_us, 50), "{summary:?}");
    assert!(near(summary.p90_us, 90), "{summary:?}");
    assert!(near(summary.p99_us, 99), "{summary:?}");
    assert!(near(summary.max_us, 100), "{summary:?}");
}

#[test]
fn ntp_round_trip() {
    let unix = NtpEpoch::from_system_time(UNIX_EPOCH).unwrap();
    assert_eq!(unix.ntp(), 2_208_988_800u64 << 32);
    let epoch =
        NtpEpoch::from_system_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000)).unwrap();
    assert_eq!(
        epoch.to_ntp(ms(500)) - epoch.ntp(),
        1 << 31,
        "half a second"
    );
    for nanos in [
        0u64,
        1,
        7,
        999_999_999,
        1_000_000_000,
        123_456_789_012,
        86_400_000_000_001,
    ] {
        let since = Duration::from_nanos(nanos);
        assert_eq!(
            epoch.since_epoch(epoch.to_ntp(since)),
            Some(since),
            "{nanos}"
        );
    }
    assert_eq!(epoch.since_epoch(epoch.ntp() - 1), None, "before the epoch");
    // Across the NTP era rollover (2036).
    let late = NtpEpoch::from_ntp(u64::MAX - (1 << 32));
    let since = Duration::from_secs(3) + Duration::from_nanos(250);
    let ntp = late.to_ntp(since);
    assert!(ntp < late.ntp(), "wrapped");
    assert_eq!(late.since_epoch(ntp), Some(since));
    // A wall clock later than the epoch gives its distance.
    let now = SystemTime::now();
    let start = NtpEpoch::from_system_time(now).unwrap();
    let later = NtpEpoch::from_system_time(now + ms(1234)).unwrap();
    assert_eq!(start.since_epoch(later.ntp()), Some(ms(1234)));
}

/// A video stream of 20 fps frames of two packets each, at `times` (ms), measured from 10 s.
fn video_frames(times: impl Iterator<Item = u64>) -> ReceivedStream {
    let config = MeasureConfig {
        measure_from: Duration::from_secs(10),
        ..MeasureConfig::default()
    };
    let mut stream = ReceivedStream::new(StreamKind::Video, config);
    let mut seq = 0u16;
    for t in times {
        let ts = (t * 90) as u32;
        for marker in [false, true] {
            stream.on_packet(&ReceivedPacket {
                rtp_timestamp: ts,
                marker,
                ..packet(seq, t)
            });
            seq = seq.wrapping_add(1);
        }
    }
    stream
}

#[test]
fn freeze_after_ramp_up_counts_and_before_is_ignored() {
    // Every 50 ms for 20 s, with a 2 s hole during ramp-up (3-5 s), a hole spanning the end of
    // ramp-up (9.8-10.3 s: 300 ms of it counts) and a 700 ms hole at 12.0-12.7 s.
    let times = (0..=400u64).map(|k| k * 50).filter(|t| {
        !((3000 < *t && *t < 5000) || (9800 < *t && *t < 10300) || (12000 < *t && *t < 12700))
    });
    let stream = video_frames(times);
    let stats = stream.stats();
    assert_eq!(stats.longest_freeze, ms(700));
    assert_eq!(stats.freezes, 1, "over the 500 ms threshold");
    assert!(stream.received_after_ramp_up());
    assert_eq!(stats.lost, 0, "a freeze without sequence gaps");

    // A stream that stops at 15 s freezes until the end, if the caller says it should not have.
    let mut stopped = video_frames((0..=300u64).map(|k| k * 50));
    assert_eq!(stopped.stats().longest_freeze, ms(50));
    stopped.finish(Duration::from_secs(20));
    assert_eq!(stopped.stats().longest_freeze, Duration::from_secs(5));
    assert_eq!(stopped.stats().freezes, 1);
}

#[test]
fn frames_complete_on_marker_even_when_it_comes_late() {
    let config = MeasureConfig::default();
    let mut stream = ReceivedStream::new(StreamKind::Video, config);
    let frame = |seq, ts, marker, t| ReceivedPacket {
        rtp_timestamp: ts,
        marker,
        ..packet(seq, t)
    };
    stream.on_packet(&frame(0, 0, true, 0));
    stream.on_packet(&frame(1, 3000, false, 33));
    // Marker of frame 3000 lost; frame 6000 completes at 66 ms.
    stream.on_packet(&frame(3, 6000, true, 66));
    // The retransmitted marker of frame 3000 is older than the completed frame: ignored.
    stream.on_packet(&ReceivedPacket {
        retransmission: true,
        ..frame(2, 3000, true, 80)
    });
    let stats = stream.stats();
    assert_eq!(stats.frames, 2);
    assert_eq!(stats.longest_freeze, ms(66));
}

#[test]
fn layer_switches_follow_keyframe_heights() {
    let mut stream = ReceivedStream::new(StreamKind::Video, MeasureConfig::default());
    for (seq, (t, height)) in [(0u64, 180u32), (1000, 180), (2000, 720), (3000, 360)]
        .into_iter()
        .enumerate()
    {
        stream.on_packet(&ReceivedPacket {
            keyframe_start: true,
            keyframe_height: Some(height),
            marker: true,
            rtp_timestamp: t as u32 * 90,
            ..packet(seq as u16, t)
        });
    }
    // A keyframe of unknown height changes nothing.
    stream.on_packet(&ReceivedPacket {
        keyframe_start: true,
        ..packet(4, 4000)
    });
    let stats = stream.stats();
    assert_eq!(stats.layer_switches, 2);
    assert_eq!(stats.keyframes, 5);
    assert_eq!(stream.current_height(), Some(360));
    assert_eq!(
        stream.layer_switches(),
        [
            LayerSwitch {
                at: ms(2000),
                from_height: 180,
                to_height: 720
            },
            LayerSwitch {
                at: ms(3000),
                from_height: 720,
                to_height: 360
            },
        ]
    );
}

/// A keyframe of `height` at `t_ms`, sequence number `seq`.
fn keyframe(seq: u16, t_ms: u64, height: u32) -> ReceivedPacket {
    ReceivedPacket {
        keyframe_start: true,
        keyframe_height: Some(height),
        marker: true,
        rtp_timestamp: t_ms as u32 * 90,
        ..packet(seq, t_ms)
    }
}

#[test]
fn time_at_each_height_and_at_the_view_height_follow_a_scripted_sequence() {
    // Measured from 1 s; the view asks for 180 until it puts the stream on stage at 4 s.
    let config = MeasureConfig {
        measure_from: ms(1000),
        ..MeasureConfig::default()
    };
    let mut stream = ReceivedStream::new(StreamKind::Video, config);
    stream.set_target_height(ms(0), Some(180));
    // 180 from 0 s, still 180 at 2 s (no switch), 720 at 4.5 s (the keyframe after the
    // view change), 180 again at 8 s (the view changed back at 7.9 s), stream ends at 10 s.
    let script = [(0, 180), (2000, 180), (4500, 720), (6000, 720), (8000, 180)];
    for (seq, &(t, height)) in script.iter().enumerate() {
        if t == 4500 {
            stream.set_target_height(ms(4000), Some(720));
        }
        if t == 8000 {
            stream.set_target_height(ms(7900), Some(180));
        }
        stream.on_packet(&keyframe(seq as u16, t, height));
    }
    stream.finish(ms(10_000));
    let stats = stream.stats();
    assert_eq!(stats.layer_switches, 2);
    assert_eq!(stats.keyframes, 5);
    // 180: 1..4.5 s and 8..10 s; 720: 4.5..8 s.
    assert_eq!(stream.time_at_height(), [(180, ms(5500)), (720, ms(3500))]);
    // Switching, not off: 4..4.5 s (waiting for the 720 keyframe) and 7.9..8 s.
    assert_eq!(stats.time_switching, ms(600));
    assert_eq!(stats.time_off_view_height, Duration::ZERO);
    assert_eq!(stats.time_at_view_height, ms(8400));
    assert_eq!(stats.at_view_height_pct(), Some(100.0));
    assert_eq!(stats.view_switches, 2);
    assert_eq!(stats.view_switch_delay_max, ms(500));
    assert_eq!(stats.view_switch_delay_mean(), Some(ms(300)));
}

#[test]
fn a_stream_that_stays_at_the_wrong_height_is_off_its_view_height() {
    let mut stream = ReceivedStream::new(StreamKind::Video, MeasureConfig::default());
    stream.on_packet(&keyframe(0, 0, 360));
    // The view asks for 720 at 1 s, but 360 keyframes keep coming: no switch arrives. The
    // first SWITCH_GRACE is the switch under way, the rest is off.
    stream.set_target_height(ms(1000), Some(720));
    stream.on_packet(&keyframe(1, 2000, 360));
    stream.finish(ms(5000));
    let stats = stream.stats();
    assert_eq!(stats.time_switching, SWITCH_GRACE);
    assert_eq!(stats.time_off_view_height, ms(4000) - SWITCH_GRACE);
    assert_eq!(stats.view_switches, 0);
    // A stream shown at another height than asked without a view change is off.
    let mut wrong = ReceivedStream::new(StreamKind::Video, MeasureConfig::default());
    wrong.set_target_height(ms(0), Some(180));
    wrong.on_packet(&keyframe(0, 0, 360));
    wrong.finish(ms(1000));
    assert_eq!(wrong.stats().time_off_view_height, ms(1000));
    assert_eq!(wrong.stats().at_view_height_pct(), Some(0.0));
}

#[test]
fn a_receiver_view_sets_each_stream_target_and_reports_heights() {
    let config = MeasureConfig::default();
    let mut receiver = ReceiverMeasurements::new(config, Duration::from_secs(1));
    // Stream 1 is on stage at 720, stream 2 a thumbnail at 180; stream 2 shows 360.
    receiver.set_view(
        ms(0),
        HeightView {
            on_stage: Some(1),
            on_stage_height: 720,
            other_height: 180,
        },
    );
    receiver.on_packet(1, StreamKind::Video, &keyframe(0, 0, 720));
    receiver.on_packet(2, StreamKind::Video, &keyframe(0, 0, 360));
    assert_eq!(receiver.stream(1).unwrap().target_height(), Some(720));
    assert_eq!(receiver.stream(2).unwrap().target_height(), Some(180));
    receiver.finish(ms(1000));
    let report = receiver.report(0, ExpectedStreams::default());
    assert_eq!(report.at_view_height_pct, Some(50.0));
    assert_eq!(report.got_view_heights, Some(false));
    assert_eq!(report.time_at_height_ms.get(&720), Some(&1000.0));
    assert_eq!(report.time_at_height_ms.get(&360), Some(&1000.0));
    // Without a view nothing is judged.
    let mut plain = ReceiverMeasurements::new(config, Duration::from_secs(1));
    plain.on_packet(1, StreamKind::Video, &keyframe(0, 0, 720));
    plain.finish(ms(1000));
    let report = plain.report(0, ExpectedStreams::default());
    assert_eq!(report.at_view_height_pct, None);
    assert_eq!(report.got_view_heights, None);
}

/// Feeds `receiver` a stream of `kind` on `ssrc` from `from_ms` to `to_ms`, one completed
/// frame (or audio packet) per 20 ms.
fn feed(
    receiver: &mut ReceiverMeasurements,
    ssrc: u32,
    kind: StreamKind,
    from_ms: u64,
    to_ms: u64,
) {
    for (i, t) in (from_ms..to_ms).step_by(20).enumerate() {
        receiver.on_packet(
            ssrc,
            kind,
            &ReceivedPacket {
                marker: true,
                rtp_timestamp: t as u32 * 90,
                ..packet(i as u16, t)
            },
        );
    }
}

#[test]
fn streams_received_per_receiver() {
    let config = MeasureConfig {
        measure_from: Duration::from_secs(5),
        ..MeasureConfig::default()
    };
    let bucket = Duration::from_secs(1);
    let expected = ExpectedStreams { video: 2, audio: 3 };

    let mut complete = ReceiverMeasurements::new(config, bucket);
    feed(&mut complete, 1, StreamKind::Video, 0, 10_000);
    feed(&mut complete, 2, StreamKind::Video, 6_000, 10_000);
    for ssrc in 10..13 {
        feed(&mut complete, ssrc, StreamKind::Audio, 0, 10_000);
    }
    let mut missing = ReceiverMeasurements::new(config, bucket);
    feed(&mut missing, 1, StreamKind::Video, 0, 10_000);
    // Stopped during ramp-up: not received.
    feed(&mut missing, 2, StreamKind::Video, 0, 4_000);
    for ssrc in 10..13 {
        feed(&mut missing, ssrc, StreamKind::Audio, 0, 10_000);
    }

    let report = complete.report(0, expected);
    assert_eq!(report.video_streams_received, 2);
    assert_eq!(report.audio_streams_received, 3);
    assert!(report.got_every_stream);
    let report = missing.report(1, expected);
    assert_eq!(report.video_streams_received, 1);
    assert!(!report.got_every_stream);

    let mut run = RunMeasurements::new(bucket);
    run.add_receiver(0, &complete, expected);
    run.add_receiver(1, &missing, expected);
    assert_eq!(run.streams_received().collect::<Vec<_>>(), [true, false]);
    assert!((run.streams_received_pct() - 50.0).abs() < 1e-9);
    assert_eq!(run.video.packets, 500 + 200 + 500 + 200);
    assert_eq!(run.audio.packets, 6 * 500);
}

#[test]
fn time_series_buckets_packets_bits_and_loss() {
    let mut series = TimeSeries::new(Duration::from_secs(1));
    let mut receiver = ReceiverMeasurements::new(MeasureConfig::default(), Duration::from_secs(1));
    // 50 packets in second 0, 50 in second 1 with 5 lost, one of them arriving late in 2.
    let mut arrivals: Vec<(u16, u64)> = (0..100u16)
        .filter(|s| !(60..65).contains(s))
        .map(|s| (s, u64::from(s) * 20))
        .collect();
    arrivals.push((62, 2500));
    for (seq, t) in arrivals {
        let packet = packet(seq, t);
        let outcome = receiver.on_packet(1, StreamKind::Audio, &packet);
        series.record(packet.arrival, packet.payload_len, &outcome);
    }
    assert_eq!(&series, receiver.series());
    let buckets = series.buckets();
    assert_eq!(buckets.len(), 3);
    assert_eq!(buckets[0].packets, 50);
    assert_eq!(buckets[1].packets, 45);
    assert_eq!(buckets[1].lost(), 5);
    assert_eq!(buckets[2].late_fills, 1);
    let bits: Vec<f64> = series.bits_per_second().collect();
    assert_eq!(bits[0], 50.0 * 100.0 * 8.0);
    let pps: Vec<f64> = series.packets_per_second().collect();
    assert_eq!(pps[1], 45.0);

    let mut merged = TimeSeries::new(Duration::from_secs(1));
    merged.add(&series);
    merged.add(&series);
    assert_eq!(merged.buckets()[1].packets, 90);
}

// ---- pass criteria -------------------------------------------------------------------------

fn pass_section() -> PassSection {
    PassSection {
        max_loss_pct: 0.1,
        max_added_latency_p99_ms: 10.0,
        min_streams_received_pct: 99.0,
        max_video_freeze_ms: 500,
    }
}

/// Knobs for a crafted run: one receiver with one video stream of 2000 packets (one frame
/// each, every 10 ms from 100 ms) measured from 1 s.
#[derive(Clone, Copy)]
struct Craft {
    /// Every n-th packet lost (0: none).
    lose_every: u16,
    /// Of the lost ones, every n-th is retransmitted in time (0: none).
    repair_every: u16,
    /// Added latency of every packet.
    latency_ms: u64,
    /// A hole in frames at 10 s of this length.
    freeze_ms: u64,
    /// Expected video streams.
    expected_video: u32,
}

impl Default for Craft {
    fn default() -> Self {
        Self {
            lose_every: 0,
            repair_every: 0,
            latency_ms: 5,
            freeze_ms: 0,
            expected_video: 1,
        }
    }
}

fn crafted_run(craft: Craft) -> RunMeasurements {
    let config = MeasureConfig {
        measure_from: Duration::from_secs(1),
        ..MeasureConfig::default()
    };
    let mut receiver = ReceiverMeasurements::new(config, Duration::from_secs(1));
    let mut lost = 0u16;
    for seq in 0..2000u16 {
        let mut t = 100 + u64::from(seq) * 10;
        if t >= 10_000 {
            t += craft.freeze_ms;
        }
        if craft.lose_every > 0 && seq % craft.lose_every == craft.lose_every - 1 {
            lost += 1;
            if craft.repair_every > 0 && lost % craft.repair_every == 0 {
                receiver.on_packet(
                    1,
                    StreamKind::Video,
                    &ReceivedPacket {
                        retransmission: true,
                        marker: true,
                        rtp_timestamp: u32::from(seq) * 900,
                        ..packet(seq, t + 5)
                    },
                );
            }
            continue;
        }
        receiver.on_packet(
            1,
            StreamKind::Video,
            &ReceivedPacket {
                marker: true,
                rtp_timestamp: u32::from(seq) * 900,
                send_time: Some(ms(t) - ms(craft.latency_ms)),
                ..packet(seq, t)
            },
        );
    }
    let mut run = RunMeasurements::new(Duration::from_secs(1));
    run.add_receiver(
        0,
        &receiver,
        ExpectedStreams {
            video: craft.expected_video,
            audio: 0,
        },
    );
    run
}

fn verdict(results: &[relais_loadtest::measure::CriterionResult], name: &str) -> (bool, f64) {
    let result = results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no criterion {name}: {results:?}"));
    (result.passed, result.measured)
}

#[test]
fn every_criterion_passes_on_a_clean_run() {
    let results = evaluate(&pass_section(), None, &crafted_run(Craft::default()));
    let names: Vec<_> = results.iter().map(|r| r.name).collect();
    assert_eq!(
        names,
        [
            "max_loss_pct",
            "max_added_latency_p99_ms",
            "min_streams_received_pct",
            "max_video_freeze_ms"
        ]
    );
    assert!(results.iter().all(|r| r.passed), "{results:?}");
    let (_, latency) = verdict(&results, "max_added_latency_p99_ms");
    assert!((latency - 5.0).abs() < 0.01, "{latency}");
    let (_, freeze) = verdict(&results, "max_video_freeze_ms");
    assert!((freeze - 10.0).abs() < 1e-9);
    assert_eq!(results[2].bound, Bound::AtLeast);
}

#[test]
fn loss_criterion_fails_above_the_limit() {
    let run = crafted_run(Craft {
        lose_every: 100,
        ..Craft::default()
    });
    let (passed, measured) = verdict(&evaluate(&pass_section(), None, &run), "max_loss_pct");
    assert!(!passed);
    // 20 of 2000 lost, but the last lost one (1999) is after the highest received.
    assert!(
        (measured - 19.0 * 100.0 / 1999.0).abs() < 1e-9,
        "{measured}"
    );
    let run = crafted_run(Craft {
        lose_every: 2000,
        ..Craft::default()
    });
    let (passed, _) = verdict(&evaluate(&pass_section(), None, &run), "max_loss_pct");
    assert!(passed, "no loss before the last packet");
}

#[test]
fn latency_criterion_fails_above_the_limit() {
    let run = crafted_run(Craft {
        latency_ms: 12,
        ..Craft::default()
    });
    let (passed, measured) = verdict(
        &evaluate(&pass_section(), None, &run),
        "max_added_latency_p99_ms",
    );
    assert!(!passed);
    assert!((measured - 12.0).abs() < 0.02, "{measured}");
}

#[test]
fn streams_criterion_fails_when_a_receiver_misses_one() {
    let run = crafted_run(Craft {
        expected_video: 2,
        ..Craft::default()
    });
    let (passed, measured) = verdict(
        &evaluate(&pass_section(), None, &run),
        "min_streams_received_pct",
    );
    assert!(!passed);
    assert_eq!(measured, 0.0);
}

#[test]
fn freeze_criterion_fails_above_the_limit() {
    let run = crafted_run(Craft {
        freeze_ms: 690,
        ..Craft::default()
    });
    let (passed, measured) = verdict(
        &evaluate(&pass_section(), None, &run),
        "max_video_freeze_ms",
    );
    assert!(!passed);
    assert!((measured - 700.0).abs() < 1e-9, "{measured}");
}

#[test]
fn lossy_criteria_check_residual_loss_and_recovery() {
    let lossy = LossyCriteria {
        max_residual_loss_pct: Some(0.5),
        min_recovered_pct: Some(80.0),
    };
    // 2 % lost (every 50th), all repaired in time: no residual loss, 100 % recovered.
    let run = crafted_run(Craft {
        lose_every: 50,
        repair_every: 1,
        ..Craft::default()
    });
    let results = evaluate(&pass_section(), Some(&lossy), &run);
    assert!(
        results.iter().all(|r| r.name != "max_loss_pct"),
        "raw loss is allowed"
    );
    let (passed, residual) = verdict(&results, "lossy_max_residual_loss_pct");
    assert!(passed && residual == 0.0, "{residual}");
    let (passed, recovered) = verdict(&results, "lossy_min_recovered_pct");
    assert!(passed && recovered == 100.0);

    // Half repaired: residual 1 %, recovered 50 %: both fail.
    let run = crafted_run(Craft {
        lose_every: 50,
        repair_every: 2,
        ..Craft::default()
    });
    let results = evaluate(&pass_section(), Some(&lossy), &run);
    let (passed, residual) = verdict(&results, "lossy_max_residual_loss_pct");
    assert!(!passed);
    assert!(
        (residual - 20.0 * 100.0 / 2000.0).abs() < 1e-9,
        "{residual}"
    );
    let (passed, recovered) = verdict(&results, "lossy_min_recovered_pct");
    assert!(!passed);
    assert!((recovered - 50.0).abs() < 1e-9);

    // The report serialises.
    let json = serde_json::to_value(&results).unwrap();
    assert_eq!(json[0]["name"], "lossy_max_residual_loss_pct");
    assert_eq!(json[0]["bound"], "at_most");
    let json = serde_json::to_value(&run).unwrap();
    assert_eq!(json["video"]["lost"], 40);
    assert!(json["latency"]["p99_us"].as_u64().unwrap() > 4000);
    assert_eq!(json["series"]["bucket_ms"], 1000.0);
    assert_eq!(json["receivers"][0]["got_every_stream"], true);
}

#[test]
fn lossy_criteria_from_the_scenario() {
    let scenario = relais_loadtest::scenario::Scenario::load("hostsharing-lossy").unwrap();
    let lossy = LossyCriteria::from_network(&scenario.network);
    assert_eq!(lossy.max_residual_loss_pct, Some(0.5));
    assert_eq!(lossy.min_recovered_pct, Some(80.0));
}

// ---- node-side sampling --------------------------------------------------------------------

const STAT: &str = "4242 (relais (x)) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 \
                    9 0 123456 987654321 3000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 \
                    0 0 0 0 0\n";
const STATUS: &str = "Name:\trelais\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t  200000 kB\n\
                      VmRSS:\t   12345 kB\nThreads:\t9\n";

#[test]
fn proc_stat_and_status_parse() {
    assert_eq!(parse_stat_cpu(STAT, 100).unwrap(), ms(3000));
    assert_eq!(parse_stat_cpu(STAT, 1000).unwrap(), ms(300));
    assert_eq!(parse_status_rss_bytes(STATUS).unwrap(), 12345 * 1024);
    assert_eq!(
        ProcessSample::parse(STAT, STATUS, 100).unwrap(),
        ProcessSample {
            cpu: ms(3000),
            rss_bytes: 12_641_280
        }
    );
    // A name with a space and a closing parenthesis followed by digits.
    let tricky = STAT.replace("(relais (x))", "(a) 1 2 3 (b c)");
    assert_eq!(parse_stat_cpu(&tricky, 100).unwrap(), ms(3000));
}

#[test]
fn proc_parse_errors() {
    assert_eq!(
        parse_stat_cpu("4242 relais S 1", 100),
        Err(ProcParseError::MissingComm)
    );
    assert_eq!(
        parse_stat_cpu("4242 (relais) S 1 2 3", 100),
        Err(ProcParseError::MissingField("utime"))
    );
    assert!(matches!(
        parse_stat_cpu(&STAT.replace(" 250 ", " x "), 100),
        Err(ProcParseError::NotANumber { field: "utime", .. })
    ));
    assert_eq!(parse_stat_cpu(STAT, 0), Err(ProcParseError::ZeroTickRate));
    assert_eq!(
        parse_status_rss_bytes("Name:\tkthreadd\n"),
        Err(ProcParseError::MissingRss)
    );
    assert!(parse_status_rss_bytes("VmRSS:\n").is_err());
    assert!(!ProcParseError::MissingComm.to_string().is_empty());
}

#[test]
fn cpu_per_packet_in_microseconds() {
    assert_eq!(cpu_per_packet(Duration::from_secs(2), 1_000_000), Some(2.0));
    assert_eq!(cpu_per_packet(Duration::from_secs(2), 0), None);
}

#[test]
fn prometheus_counters_sum_over_labels() {
    let text = r#"# HELP relais_rtp_packets_total RTP packets.
# TYPE relais_rtp_packets_total counter
relais_rtp_packets_total{direction="in",kind="audio"} 100
relais_rtp_packets_total{direction="out",kind="video}, x=\"y\""} 2.5e3 1700000000000
relais_rtp_packets_total 23
  relais_rtp_packets_total{} 1
relais_rtp_packets_total_created{direction="in"} 1700000000
relais_rtp_packets_totalx 5
other_metric{name="relais_rtp_packets_total"} 7
relais_rtp_packets_total{broken="no closing brace 9
relais_rtp_packets_total{a="b"} not_a_number
"#;
    assert_eq!(
        prometheus_counter_sum(text, "relais_rtp_packets_total"),
        Some(100.0 + 2500.0 + 23.0 + 1.0)
    );
    assert_eq!(prometheus_counter_sum(text, "other_metric"), Some(7.0));
    assert_eq!(prometheus_counter_sum(text, "missing_total"), None);
    assert_eq!(prometheus_counter_sum("", "x"), None);
}

proptest! {
    /// Whatever subset of a stream arrives, in whatever local order and with duplicates,
    /// expected = received + residual and nothing is counted twice.
    #[test]
    fn accounting_is_consistent(
        keep in proptest::collection::vec(0u8..10, 1..600),
        swaps in proptest::collection::vec((0usize..600, 1usize..20), 0..50),
        duplicates in proptest::collection::vec(0usize..600, 0..20),
        repairs in proptest::collection::vec(0usize..600, 0..40),
        start in any::<u16>(),
    ) {
        let mut order: Vec<u16> = keep
            .iter()
            .enumerate()
            .filter(|(_, k)| **k != 0)
            .map(|(i, _)| start.wrapping_add(i as u16))
            .collect();
        prop_assume!(!order.is_empty());
        for (at, distance) in swaps {
            let a = at % order.len();
            let b = (a + distance).min(order.len() - 1);
            order.swap(a, b);
        }
        for d in duplicates {
            let seq = order[d % order.len()];
            order.push(seq);
        }
        let mut stream = audio();
        for (i, seq) in order.iter().enumerate() {
            stream.on_packet(&packet(*seq, i as u64));
        }
        let stats = stream.stats();
        prop_assert_eq!(stats.packets, order.len() as u64);
        prop_assert_eq!(stats.received + stats.duplicates, stats.packets);
        prop_assert_eq!(stats.expected, stats.received + stats.residual());
        prop_assert_eq!(stats.lost, stats.expected - stats.received);

        // Retransmissions of any sequence numbers in the range, lost or not.
        for (i, at) in repairs.iter().enumerate() {
            let seq = start.wrapping_add((at % keep.len()) as u16);
            stream.on_packet(&rtx(seq, 10_000 + i as u64));
        }
        let repaired = stream.stats();
        prop_assert_eq!(repaired.expected, repaired.received + repaired.residual());
        prop_assert!(repaired.recovered <= repaired.lost);
        prop_assert_eq!(repaired.received + repaired.duplicates, repaired.packets);
    }
}
