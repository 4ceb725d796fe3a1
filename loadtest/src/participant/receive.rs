//! The receive side of one participant's streams, as a browser keeps it: per SSRC the
//! extended highest sequence number, loss and interarrival jitter for receiver reports, the
//! last sender report for LSR/DLSR, and the sequence gaps waiting to be NACKed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use relais_rtp::rtcp::packets::ReceptionReport;

/// Largest forward jump still treated as loss (NACKed); a larger one is a stream restart.
const MAX_NACK_GAP: u64 = 256;

/// Most sequence numbers one stream keeps waiting for NACK.
const MAX_PENDING_NACKS: usize = 512;

/// Streams silent this long are left out of receiver reports.
const REPORT_IDLE: Duration = Duration::from_secs(5);

/// Streams silent this long are forgotten.
const FORGET_IDLE: Duration = Duration::from_secs(60);

/// One received SSRC.
#[derive(Debug)]
struct ReceiveStream {
    clock_rate: u32,
    /// Whether gaps are NACKed (not for RTX streams).
    nackable: bool,
    /// First extended sequence number.
    base: u64,
    /// Highest extended sequence number.
    highest: u64,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// RFC 3550 interarrival jitter in timestamp units, times 16.
    jitter_q4: u64,
    /// Previous transit time (arrival minus RTP timestamp, in timestamp units).
    last_transit: Option<i64>,
    /// Newest RTP timestamp seen: a packet with a newer one starts a frame.
    newest_timestamp: u32,
    /// Compact NTP of the last sender report about this SSRC and when it arrived.
    last_sender_report: Option<(u32, Instant)>,
    last_packet: Instant,
    /// Missing sequence numbers (extended) and when their NACK is due, in due order.
    pending: Vec<(u64, Instant)>,
}

impl ReceiveStream {
    fn new(now: Instant, sequence_number: u16, clock_rate: u32, nackable: bool) -> Self {
        // One cycle in, so that reordering before the first packet stays representable.
        let extended = (1 << 16) | u64::from(sequence_number);
        Self {
            clock_rate,
            nackable,
            base: extended,
            highest: extended,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            last_transit: None,
            // The first packet's timestamp is "new" (see `on_packet`).
            newest_timestamp: 0,
            last_sender_report: None,
            last_packet: now,
            pending: Vec::new(),
        }
    }

    fn extend(&self, sequence_number: u16) -> u64 {
        let delta = i64::from(sequence_number.wrapping_sub(self.highest as u16) as i16);
        self.highest.saturating_add_signed(delta)
    }
}

/// All received streams of one participant.
#[derive(Debug)]
pub(crate) struct ReceiveStreams {
    epoch: Instant,
    nack_delay: Duration,
    streams: HashMap<u32, ReceiveStream>,
}

impl ReceiveStreams {
    pub(crate) fn new(epoch: Instant, nack_delay: Duration) -> Self {
        Self {
            epoch,
            nack_delay,
            streams: HashMap::new(),
        }
    }

    /// Records one received packet; returns how many packets the stream has received and
    /// whether the packet is the first with its RTP timestamp (the first packet of a frame
    /// that arrived, for video).
    pub(crate) fn on_packet(
        &mut self,
        now: Instant,
        ssrc: u32,
        sequence_number: u16,
        timestamp: u32,
        clock_rate: u32,
        nackable: bool,
    ) -> (u64, bool) {
        let nack_delay = self.nack_delay;
        let stream = self
            .streams
            .entry(ssrc)
            .or_insert_with(|| ReceiveStream::new(now, sequence_number, clock_rate, nackable));
        stream.last_packet = now;
        stream.received += 1;
        // Serial-number comparison across the wrap (reinterpreting the distance as signed).
        let new_timestamp =
            stream.received == 1 || (timestamp.wrapping_sub(stream.newest_timestamp) as i32) > 0;
        if new_timestamp {
            stream.newest_timestamp = timestamp;
        }
        let extended = stream.extend(sequence_number);
        if extended > stream.highest {
            let gap = extended - stream.highest - 1;
            if gap > MAX_NACK_GAP {
                // A restart (or a long outage): nothing sensible to ask for.
                stream.pending.clear();
            } else if stream.nackable {
                let due = now + nack_delay;
                for missing in stream.highest + 1..extended {
                    if stream.pending.len() >= MAX_PENDING_NACKS {
                        stream.pending.remove(0);
                    }
                    stream.pending.push((missing, due));
                }
            }
            stream.highest = extended;
        } else {
            if extended < stream.base {
                stream.base = extended;
            }
            // Reordered or repaired: no NACK for it.
            if let Some(at) = stream.pending.iter().position(|(s, _)| *s == extended) {
                stream.pending.remove(at);
            }
        }
        // RFC 3550 §6.4.1 / A.8 jitter, in timestamp units.
        let arrival = now.saturating_duration_since(self.epoch).as_micros() as u64
            * u64::from(stream.clock_rate)
            / 1_000_000;
        let transit = (arrival as i64).wrapping_sub(i64::from(timestamp));
        if let Some(last) = stream.last_transit {
            let d = transit
                .wrapping_sub(last)
                .unsigned_abs()
                .min(u64::from(u32::MAX));
            // J += (|D| - J) / 16, kept times 16.
            stream.jitter_q4 = stream.jitter_q4 + d - (stream.jitter_q4 >> 4);
        }
        stream.last_transit = Some(transit);
        (stream.received, new_timestamp)
    }

    /// Remembers a sender report about `ssrc` for the LSR/DLSR of the next receiver report.
    pub(crate) fn on_sender_report(&mut self, now: Instant, ssrc: u32, compact_ntp: u32) {
        if let Some(stream) = self.streams.get_mut(&ssrc) {
            stream.last_sender_report = Some((compact_ntp, now));
        }
    }

    /// Moves the NACKs due at `now` into `out` as `(ssrc, sequence numbers)` lists.
    pub(crate) fn due_nacks(&mut self, now: Instant, out: &mut Vec<(u32, Vec<u16>)>) {
        for (ssrc, stream) in &mut self.streams {
            let due = stream
                .pending
                .iter()
                .take_while(|(_, at)| *at <= now)
                .count();
            if due == 0 {
                continue;
            }
            let lost: Vec<u16> = stream.pending.drain(..due).map(|(s, _)| s as u16).collect();
            out.push((*ssrc, lost));
        }
    }

    /// When the earliest pending NACK is due.
    pub(crate) fn next_nack(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter_map(|s| s.pending.first().map(|(_, at)| *at))
            .min()
    }

    /// Report blocks for every stream heard from recently; forgets long-idle streams.
    pub(crate) fn report_blocks(&mut self, now: Instant) -> Vec<ReceptionReport> {
        self.streams
            .retain(|_, s| now.saturating_duration_since(s.last_packet) < FORGET_IDLE);
        let mut blocks = Vec::with_capacity(self.streams.len());
        for (ssrc, stream) in &mut self.streams {
            if now.saturating_duration_since(stream.last_packet) >= REPORT_IDLE {
                continue;
            }
            let expected = stream.highest - stream.base + 1;
            let lost = expected.saturating_sub(stream.received);
            let expected_interval = expected - stream.expected_prior.min(expected);
            let received_interval = stream.received - stream.received_prior.min(stream.received);
            stream.expected_prior = expected;
            stream.received_prior = stream.received;
            let lost_interval = expected_interval.saturating_sub(received_interval);
            let fraction_lost = if expected_interval == 0 || lost_interval == 0 {
                0
            } else {
                ((lost_interval << 8) / expected_interval).min(255) as u8
            };
            let (last_sender_report, delay) = match stream.last_sender_report {
                Some((lsr, at)) => {
                    let since = now.saturating_duration_since(at);
                    // DLSR in units of 1/65536 s.
                    (lsr, (since.as_micros() as u64 * 65_536 / 1_000_000) as u32)
                }
                None => (0, 0),
            };
            blocks.push(ReceptionReport {
                ssrc: *ssrc,
                fraction_lost,
                // 24-bit field: clamp.
                total_lost: lost.min(0x7F_FFFF) as u32,
                last_sequence_number: stream.highest as u32,
                jitter: (stream.jitter_q4 >> 4).min(u64::from(u32::MAX)) as u32,
                last_sender_report,
                delay,
            });
        }
        blocks
    }

    /// How many streams are known.
    pub(crate) fn len(&self) -> usize {
        self.streams.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn a_gap_is_nacked_once_after_the_delay_unless_it_arrives() {
        let t0 = Instant::now();
        let mut streams = ReceiveStreams::new(t0, Duration::from_millis(20));
        streams.on_packet(t0, 7, 65534, 0, 90_000, true);
        // 65535, 0 and 1 missing (across the wrap).
        streams.on_packet(t0, 7, 2, 0, 90_000, true);
        // 0 arrives late (reordered).
        streams.on_packet(t0 + Duration::from_millis(5), 7, 0, 0, 90_000, true);
        assert_eq!(streams.next_nack(), Some(t0 + Duration::from_millis(20)));
        let mut out = Vec::new();
        streams.due_nacks(t0 + Duration::from_millis(10), &mut out);
        assert!(out.is_empty());
        streams.due_nacks(t0 + Duration::from_millis(20), &mut out);
        assert_eq!(out, vec![(7, vec![65535, 1])]);
        out.clear();
        streams.due_nacks(t0 + Duration::from_millis(40), &mut out);
        assert!(out.is_empty());
        assert_eq!(streams.next_nack(), None);
    }

    #[test]
    fn rtx_streams_are_not_nacked_and_reports_count_loss() {
        let t0 = Instant::now();
        let mut streams = ReceiveStreams::new(t0, Duration::from_millis(20));
        assert_eq!(streams.on_packet(t0, 9, 10, 0, 90_000, false), (1, true));
        assert_eq!(streams.on_packet(t0, 9, 20, 0, 90_000, false), (2, false));
        assert_eq!(streams.next_nack(), None);
        let blocks = streams.report_blocks(t0);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].ssrc, 9);
        assert_eq!(blocks[0].total_lost, 9);
        assert_eq!(blocks[0].last_sequence_number, (1 << 16) | 20);
        assert_eq!(blocks[0].fraction_lost, (9 * 256 / 11) as u8);
    }

    #[test]
    fn only_the_first_packet_with_a_newer_timestamp_starts_a_frame() {
        let t0 = Instant::now();
        let mut streams = ReceiveStreams::new(t0, Duration::from_millis(20));
        let mut starts = |seq: u16, ts: u32| streams.on_packet(t0, 5, seq, ts, 90_000, true).1;
        assert!(starts(10, u32::MAX - 3000), "a stream's first packet");
        assert!(!starts(11, u32::MAX - 3000), "same frame");
        assert!(starts(13, 2), "newer across the wrap (packet 12 lost)");
        assert!(
            !starts(12, u32::MAX - 3000),
            "a late packet of an older frame"
        );
        assert!(!starts(14, 2));
        assert!(starts(15, 3002));
        // Streams are independent.
        assert!(streams.on_packet(t0, 6, 1, 3002, 90_000, true).1);
    }
}
