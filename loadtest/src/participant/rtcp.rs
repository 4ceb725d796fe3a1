//! RTCP in both directions: what the node's (decrypted) compounds ask of the participant,
//! turned into [`ParticipantEvent`]s, and the NTP clock the participant's own reports use.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use relais_rtp::rtcp::{RtcpCompound, RtcpKind, RtcpPacket};

use super::stats::RtcpCounts;
use super::ParticipantEvent;

/// Seconds from 1900 (NTP era 0) to 1970.
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

/// Maps the caller's [`Instant`]s to NTP time, anchored once at creation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NtpClock {
    instant: Instant,
    /// NTP time at `instant`, in microseconds since 1900.
    ntp_micros: u64,
}

impl NtpClock {
    /// Anchors the clock: `wall` is the wall-clock time at `now`.
    pub(crate) fn new(now: Instant, wall: SystemTime) -> Self {
        let since_unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            instant: now,
            ntp_micros: (since_unix.as_micros() as u64)
                .saturating_add(NTP_UNIX_OFFSET_S * 1_000_000),
        }
    }

    /// 32.32 fixed-point NTP time at `now`.
    pub(crate) fn ntp(&self, now: Instant) -> u64 {
        let micros =
            self.ntp_micros + now.saturating_duration_since(self.instant).as_micros() as u64;
        let seconds = micros / 1_000_000;
        let fraction = ((micros % 1_000_000) << 32) / 1_000_000;
        (seconds << 32) | fraction
    }

    /// The middle 32 bits of [`Self::ntp`] (LSR / DLSR units: 1/65536 s).
    pub(crate) fn compact(&self, now: Instant) -> u32 {
        (self.ntp(now) >> 16) as u32
    }
}

/// Round-trip time from an RR block's LSR and DLSR (RFC 3550 §6.4.1), if it echoes one of
/// our sender reports.
pub(crate) fn round_trip(now_compact: u32, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let units = now_compact.wrapping_sub(lsr).wrapping_sub(dlsr);
    // A negative result (clock steps, forged blocks) wraps to a huge value: no estimate.
    (units < 1 << 30).then(|| Duration::from_micros(u64::from(units) * 1_000_000 / 65_536))
}

/// What one decrypted compound contained that the receive side needs itself.
pub(crate) struct SenderReportSeen {
    pub(crate) ssrc: u32,
    pub(crate) compact_ntp: u32,
}

/// Walks a decrypted compound: counts every packet, pushes events, and returns the sender
/// reports (for LSR) through `sender_reports`. Returns false if the compound was malformed
/// (the packets before the fault still count).
pub(crate) fn parse_compound(
    compound: &[u8],
    now_compact: u32,
    counts: &mut RtcpCounts,
    events: &mut impl FnMut(ParticipantEvent),
    sender_reports: &mut impl FnMut(SenderReportSeen),
) -> bool {
    for item in RtcpCompound::new(compound) {
        let Ok(view) = item else {
            return false;
        };
        let kind = view.kind();
        counts.count(kind);
        match kind {
            RtcpKind::SenderReport => {
                if let (Some(ssrc), Some(info)) = (view.sender_ssrc(), view.sender_info()) {
                    sender_reports(SenderReportSeen {
                        ssrc,
                        compact_ntp: info.compact_ntp(),
                    });
                    events(ParticipantEvent::SenderReport {
                        ssrc,
                        ntp_time: info.ntp_time,
                        rtp_time: info.rtp_time,
                        packet_count: info.packet_count,
                        octet_count: info.octet_count,
                    });
                }
                report_blocks(&view, now_compact, events);
            }
            RtcpKind::ReceiverReport => report_blocks(&view, now_compact, events),
            RtcpKind::Pli => {
                if let Some(ssrc) = view.media_ssrc() {
                    events(ParticipantEvent::KeyframeRequest {
                        ssrc,
                        full_intra: false,
                    });
                }
            }
            RtcpKind::Fir => {
                let fci = view.payload().get(8..).unwrap_or_default();
                for entry in fci.chunks_exact(8) {
                    if let Some(ssrc) = entry.first_chunk::<4>() {
                        events(ParticipantEvent::KeyframeRequest {
                            ssrc: u32::from_be_bytes(*ssrc),
                            full_intra: true,
                        });
                    }
                }
            }
            RtcpKind::Nack => {
                if let Some(ssrc) = view.media_ssrc() {
                    let sequence_numbers: Vec<u16> = view.nack_pairs().sequence_numbers().collect();
                    if !sequence_numbers.is_empty() {
                        events(ParticipantEvent::Nack {
                            ssrc,
                            sequence_numbers,
                        });
                    }
                }
            }
            RtcpKind::Remb => {
                if let Ok(RtcpPacket::Remb(remb)) = RtcpPacket::parse(&view) {
                    events(ParticipantEvent::Remb {
                        bitrate_bps: f64::from(remb.bitrate) as u64,
                        ssrcs: remb.ssrcs,
                    });
                }
            }
            RtcpKind::TransportCc => {
                if let Ok(RtcpPacket::TransportCc(feedback)) = RtcpPacket::parse(&view) {
                    events(ParticipantEvent::TransportFeedback(Box::new(feedback)));
                }
            }
            RtcpKind::Goodbye => {
                if let Ok(RtcpPacket::Goodbye(bye)) = RtcpPacket::parse(&view) {
                    events(ParticipantEvent::Goodbye { ssrcs: bye.sources });
                }
            }
            _ => {}
        }
    }
    true
}

fn report_blocks(
    view: &relais_rtp::rtcp::RtcpPacketView<'_>,
    now_compact: u32,
    events: &mut impl FnMut(ParticipantEvent),
) {
    for block in view.report_blocks() {
        events(ParticipantEvent::ReceptionReport {
            ssrc: block.ssrc(),
            fraction_lost: block.fraction_lost(),
            cumulative_lost: block.cumulative_lost(),
            extended_highest_sequence: block.extended_highest_sequence(),
            jitter: block.jitter(),
            round_trip: round_trip(
                now_compact,
                block.last_sender_report(),
                block.delay_since_last_sender_report(),
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ntp_clock_and_round_trip() {
        let now = Instant::now();
        let clock = NtpClock::new(now, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(clock.ntp(now), (NTP_UNIX_OFFSET_S + 1) << 32);
        let later = now + Duration::from_millis(500);
        assert_eq!(clock.ntp(later) & 0xFFFF_FFFF, 1 << 31);
        let lsr = clock.compact(now);
        // 100 ms in the peer, 50 ms of round trip.
        let dlsr = 65_536 / 10;
        let rtt = round_trip(clock.compact(now + Duration::from_millis(150)), lsr, dlsr).unwrap();
        assert!(rtt.abs_diff(Duration::from_millis(50)) < Duration::from_millis(1));
        assert_eq!(round_trip(5, 0, 0), None);
    }
}
