//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-01), as
//! a browser sends it for the packets the node stamps with a transport-wide sequence number.
//!
//! Deliberately simple: arrivals since the last feedback are reported every interval in
//! two-bit status vector chunks; a packet arriving after the feedback that covered its
//! sequence number is not reported again. That is what the node's estimator needs to see
//! a healthy (or impaired) path; exact libwebrtc chunk packing is not the point.

use std::time::{Duration, Instant};

use relais_rtp::rtcp::feedback::twcc_status_vector;
use relais_rtp::rtcp::packets::{RecvDelta, SymbolTypeTcc, TransportLayerCc};

/// Most packet statuses in one feedback packet: with two-bit vectors and large deltas that
/// stays far below an MTU.
const MAX_STATUSES: usize = 350;

/// Most arrivals kept between two feedbacks (a stalled driver must not grow without bound).
const MAX_ARRIVALS: usize = 8192;

/// Receive delta resolution.
const TICK_US: i64 = 250;

/// Reference time resolution.
const REFERENCE_US: i64 = 64_000;

/// Arrival record and feedback builder for one participant's transport.
#[derive(Debug)]
pub(crate) struct TwccFeedback {
    epoch: Instant,
    interval: Duration,
    /// Arrivals since the last feedback: extended sequence number and microseconds since
    /// `epoch`.
    arrivals: Vec<(u64, i64)>,
    highest: Option<u64>,
    /// First sequence number the next feedback covers.
    next_base: Option<u64>,
    feedback_count: u8,
    next_due: Option<Instant>,
}

impl TwccFeedback {
    pub(crate) fn new(epoch: Instant, interval: Duration) -> Self {
        Self {
            epoch,
            interval,
            arrivals: Vec::with_capacity(256),
            highest: None,
            next_base: None,
            feedback_count: 0,
            next_due: None,
        }
    }

    /// Records that the packet with transport-wide sequence number `sequence` arrived.
    pub(crate) fn on_packet(&mut self, now: Instant, sequence: u16) {
        let extended = match self.highest {
            None => (1 << 16) | u64::from(sequence),
            Some(highest) => {
                let delta = i64::from(sequence.wrapping_sub(highest as u16) as i16);
                highest.saturating_add_signed(delta)
            }
        };
        if self.next_base.is_some_and(|base| extended < base) {
            // Already reported as lost.
            return;
        }
        if self.arrivals.len() >= MAX_ARRIVALS {
            return;
        }
        self.highest = Some(self.highest.map_or(extended, |h| h.max(extended)));
        let at = now.saturating_duration_since(self.epoch).as_micros() as i64;
        self.arrivals.push((extended, at));
        if self.next_due.is_none() {
            self.next_due = Some(now + self.interval);
        }
    }

    /// When the next feedback is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_due
    }

    /// The next feedback packet, if one is due at `now`. Call until `None`.
    pub(crate) fn poll_feedback(
        &mut self,
        now: Instant,
        sender_ssrc: u32,
        media_ssrc: u32,
    ) -> Option<TransportLayerCc> {
        if self.next_due.is_none_or(|due| now < due) {
            return None;
        }
        if self.arrivals.is_empty() {
            self.next_due = None;
            return None;
        }
        self.arrivals.sort_unstable_by_key(|(seq, _)| *seq);
        self.arrivals.dedup_by_key(|(seq, _)| *seq);
        let first = self.arrivals.first().map_or(0, |(seq, _)| *seq);
        let highest = self.arrivals.last().map_or(first, |(seq, _)| *seq);
        let mut base = self.next_base.unwrap_or(first).min(first);
        // Sequence numbers far behind the first arrival are old losses nobody waits for.
        if first - base > MAX_STATUSES as u64 {
            base = first;
        }
        let end = (highest + 1).min(base + MAX_STATUSES as u64);
        let taken = self.arrivals.partition_point(|(seq, _)| *seq < end);
        let reference_us = self
            .arrivals
            .first()
            .map_or(0, |(_, at)| *at - at.rem_euclid(REFERENCE_US));
        let mut symbols = Vec::with_capacity((end - base) as usize);
        let mut deltas = Vec::with_capacity(taken);
        let mut previous_tick = reference_us / TICK_US;
        let mut next = self.arrivals.iter().take(taken).peekable();
        for seq in base..end {
            match next.next_if(|(s, _)| *s == seq) {
                Some((_, at)) => {
                    let tick = at / TICK_US;
                    let delta =
                        (tick - previous_tick).clamp(i64::from(i16::MIN), i64::from(i16::MAX));
                    previous_tick += delta;
                    let symbol = if (0..=255).contains(&delta) {
                        SymbolTypeTcc::PacketReceivedSmallDelta
                    } else {
                        SymbolTypeTcc::PacketReceivedLargeDelta
                    };
                    symbols.push(symbol);
                    deltas.push(RecvDelta {
                        type_tcc_packet: symbol,
                        delta: delta * TICK_US,
                    });
                }
                None => symbols.push(SymbolTypeTcc::PacketNotReceived),
            }
        }
        let chunks = symbols
            .chunks(7)
            .map(twcc_status_vector)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        self.arrivals.drain(..taken);
        self.next_base = Some(end);
        self.next_due = if self.arrivals.is_empty() {
            None
        } else {
            Some(now)
        };
        let feedback = TransportLayerCc {
            sender_ssrc,
            media_ssrc,
            base_sequence_number: base as u16,
            packet_status_count: symbols.len() as u16,
            reference_time: ((reference_us / REFERENCE_US) as u32) & 0x00FF_FFFF,
            fb_pkt_count: self.feedback_count,
            packet_chunks: chunks,
            recv_deltas: deltas,
        };
        self.feedback_count = self.feedback_count.wrapping_add(1);
        Some(feedback)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use relais_rtp::rtcp::{RtcpCompound, RtcpPacket};

    #[test]
    fn feedback_reports_arrivals_and_losses_and_round_trips() {
        let t0 = Instant::now();
        let mut twcc = TwccFeedback::new(t0, Duration::from_millis(100));
        for (i, seq) in [65533u16, 65534, 0, 1, 3].iter().enumerate() {
            twcc.on_packet(t0 + Duration::from_millis(i as u64 * 5), *seq);
        }
        assert_eq!(twcc.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        assert!(twcc.poll_feedback(t0, 1, 2).is_none());
        let feedback = twcc
            .poll_feedback(t0 + Duration::from_millis(100), 1, 2)
            .unwrap();
        assert_eq!(feedback.base_sequence_number, 65533);
        // 65533, 65534, (65535 lost), 0, 1, (2 lost), 3.
        assert_eq!(feedback.packet_status_count, 7);
        assert_eq!(feedback.recv_deltas.len(), 5);
        let mut buf = [0u8; 1500];
        let len = RtcpPacket::from(feedback.clone())
            .marshal_to(&mut buf)
            .unwrap();
        let view = RtcpCompound::new(&buf[..len]).next().unwrap().unwrap();
        let RtcpPacket::TransportCc(parsed) = RtcpPacket::parse(&view).unwrap() else {
            panic!("not TWCC");
        };
        assert_eq!(parsed.recv_deltas, feedback.recv_deltas);
        assert_eq!(twcc.poll_timeout(), None);
        // Late arrival of a reported loss: ignored; the next one starts after 3.
        twcc.on_packet(t0 + Duration::from_millis(120), 2);
        twcc.on_packet(t0 + Duration::from_millis(130), 4);
        let next = twcc
            .poll_feedback(t0 + Duration::from_millis(230), 1, 2)
            .unwrap();
        assert_eq!(next.base_sequence_number, 4);
        assert_eq!(next.packet_status_count, 1);
        assert_eq!(next.fb_pkt_count, 1);
    }
}
