//! What the node sent one receiving endpoint, and the reading of that endpoint's TWCC
//! feedback into [`PacketResult`]s.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use relais_rtp::rtcp::packets::TransportLayerCc;
use relais_rtp::rtcp::{RtcpCompound, RtcpKind, RtcpPacket};

use super::chunks::{for_each_status, Status};
use super::recorder::unwrap_near;
use super::{TwccError, REFERENCE_TIME_BITS, REFERENCE_TIME_UNIT_US};
use crate::PacketResult;

/// Most packets the send history keeps.
pub const SEND_HISTORY_CAPACITY: usize = 1 << 13;

/// Packets sent longer ago than this are dropped from the send history (at the next send).
pub const SEND_HISTORY_MAX_AGE: Duration = Duration::from_secs(5);

/// What feedback has said about a packet so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reported {
    Nothing,
    Lost,
    Received,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    sent: Instant,
    /// The place of the packet in the order packets were sent (the order of `on_sent`).
    order: u64,
    size: usize,
    probe_cluster: Option<u32>,
    reported: Reported,
}

/// Most sequence numbers held back, reported missing but not yet judged lost.
const MAX_PENDING_LOST: usize = 1024;

/// The packets the node sent one receiving endpoint, by transport-wide sequence number, and
/// the reading of that endpoint's TWCC feedback about them.
///
/// Each packet yields at most one "lost" result and at most one "received" result: a packet
/// reported received is never reported again, and one reported lost is reported again only
/// if later feedback says it arrived after all (a late packet the receiver re-reports, as
/// libwebrtc's receivers do); its second result then carries the arrival.
///
/// # Lost means overtaken
///
/// Transport-wide sequence numbers may be written before the packets leave (the SFU stamps a
/// packet when it queues it in the pacer, and audio, retransmissions or probes stamped later
/// may leave first), so sequence order is not send order. A packet the feedback says is
/// missing is only judged lost once a packet *sent after it* (in the order of
/// [`on_sent`](Self::on_sent)) has been reported received: until then it may simply still be
/// on its way, and it is held back (no result) and judged again at each later feedback. With
/// stamping at send time, as libwebrtc does, this changes nothing: a missing packet always
/// has a received one with a higher sequence number in the same feedback.
///
/// # Arrival clock
///
/// Feedback gives arrivals on the receiver's clock. The first feedback read anchors that
/// clock to ours: its reference time is placed at the `now` it was read at. Every arrival
/// after that is `anchor_now + (receiver time − anchor reference time)`, with the 24-bit
/// reference time unwrapped across feedback. So the clock offset and the one-way delay fold
/// into one constant: differences between arrivals are the receiver's own (to the 250 µs
/// resolution of the wire format), while absolute arrivals, and their relation to send
/// times, mean nothing beyond their trend.
#[derive(Debug, Clone)]
pub struct TwccSendHistory {
    /// Packets `base..base + len`; `None` for sequence numbers not sent (skipped).
    packets: VecDeque<Option<Sent>>,
    base: u64,
    /// Highest unwrapped sequence number sent.
    highest: Option<u64>,
    last_feedback_count: Option<u8>,
    /// The last feedback's reference time, raw and unwrapped (in 64 ms units).
    reference: Option<(u32, i64)>,
    /// Our instant for a receiver time (µs).
    anchor: Option<(Instant, i64)>,
    /// The send order the next packet gets.
    next_order: u64,
    /// The send order of the last-sent packet reported received.
    newest_received_order: Option<u64>,
    /// Sequence numbers reported missing but not yet judged lost (see the type's docs).
    pending_lost: VecDeque<u64>,
}

impl Default for TwccSendHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl TwccSendHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self {
            packets: VecDeque::new(),
            base: 0,
            highest: None,
            last_feedback_count: None,
            reference: None,
            anchor: None,
            next_order: 0,
            newest_received_order: None,
            pending_lost: VecDeque::new(),
        }
    }

    /// Packets (and skipped sequence numbers between them) currently kept.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether the history is empty.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Record that the packet with `transport_seq`, `size` bytes on the wire, went out at
    /// `now`, as part of `probe_cluster` if it was a probe.
    ///
    /// Sequence numbers are unwrapped against the highest sent; one sent again replaces the
    /// earlier packet. The history keeps the last [`SEND_HISTORY_CAPACITY`] sequence numbers
    /// and nothing older than [`SEND_HISTORY_MAX_AGE`].
    pub fn on_sent(
        &mut self,
        now: Instant,
        transport_seq: u16,
        size: usize,
        probe_cluster: Option<u32>,
    ) {
        let seq = match self.highest {
            None => u64::from(transport_seq),
            Some(highest) => match unwrap_near(highest, transport_seq) {
                Some(seq) => seq,
                None => return,
            },
        };
        let order = self.next_order;
        self.next_order = self.next_order.wrapping_add(1);
        let packet = Some(Sent {
            sent: now,
            order,
            size,
            probe_cluster,
            reported: Reported::Nothing,
        });
        let end = self.base + self.packets.len() as u64;
        if self.packets.is_empty() || seq >= end.saturating_add(SEND_HISTORY_CAPACITY as u64) {
            self.packets.clear();
            self.packets.push_back(packet);
            self.base = seq;
        } else if seq >= end {
            let skipped = usize::try_from(seq - end).unwrap_or(0);
            self.packets.extend(std::iter::repeat_n(None, skipped));
            self.packets.push_back(packet);
        } else {
            let slot = seq
                .checked_sub(self.base)
                .and_then(|offset| usize::try_from(offset).ok())
                .and_then(|index| self.packets.get_mut(index));
            match slot {
                Some(slot) => *slot = packet,
                None => return,
            }
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        self.prune(now);
    }

    fn prune(&mut self, now: Instant) {
        while let Some(front) = self.packets.front() {
            let expired = match front {
                None => true,
                Some(sent) => now.saturating_duration_since(sent.sent) > SEND_HISTORY_MAX_AGE,
            };
            if !expired && self.packets.len() <= SEND_HISTORY_CAPACITY {
                break;
            }
            self.packets.pop_front();
            self.base += 1;
        }
    }

    /// Read one TWCC feedback (from [`RtcpPacket::TransportCc`]) received at `now`: append
    /// a [`PacketResult`] to `out` for each packet it covers that is in the history and not
    /// already reported (see the type's docs), in feedback order, then for the packets held
    /// back by earlier feedback that are now judged lost. Returns how many were appended.
    ///
    /// Feedback with the same feedback packet count as the previous one is a duplicate and
    /// ignored. Sequence numbers not in the history (never sent, or dropped as too old) are
    /// skipped; so are packets marked received without a receive delta (the reserved
    /// symbol), which have no arrival time. The SSRCs are not looked at: the feedback is
    /// transport-wide.
    pub fn on_feedback(
        &mut self,
        now: Instant,
        feedback: &TransportLayerCc,
        out: &mut Vec<PacketResult>,
    ) -> usize {
        if self.last_feedback_count == Some(feedback.fb_pkt_count) {
            return 0;
        }
        self.last_feedback_count = Some(feedback.fb_pkt_count);
        let reference = self.unwrap_reference(feedback.reference_time);
        let Some(mut receiver_us) = reference.checked_mul(REFERENCE_TIME_UNIT_US) else {
            return 0;
        };
        let anchor = *self.anchor.get_or_insert((now, receiver_us));
        let Some(highest) = self.highest else {
            return 0;
        };
        // Unwrapped as an i64: the first packets may be reported before sequence number 0.
        let diff = feedback.base_sequence_number.wrapping_sub(highest as u16) as i16;
        let base_seq = i64::try_from(highest)
            .ok()
            .and_then(|highest| highest.checked_add(i64::from(diff)));
        let Some(base_seq) = base_seq else {
            return 0;
        };
        let before = out.len();
        let history_base = self.base;
        let index_of = move |index: u16| -> Option<(u64, usize)> {
            let seq = u64::try_from(base_seq.checked_add(i64::from(index))?).ok()?;
            let offset = usize::try_from(seq.checked_sub(history_base)?).ok()?;
            Some((seq, offset))
        };
        // First the newest-sent packet this feedback reports received: what overtook the
        // missing ones.
        let packets = &mut self.packets;
        let mut newest_received = self.newest_received_order;
        for_each_status(feedback, |index, status| {
            if let Status::Received(_) = status {
                if let Some(Some(packet)) = index_of(index).and_then(|(_, i)| packets.get(i)) {
                    newest_received =
                        Some(newest_received.map_or(packet.order, |n| n.max(packet.order)));
                }
            }
        });
        self.newest_received_order = newest_received;
        let pending_lost = &mut self.pending_lost;
        let mut clock_ok = true;
        for_each_status(feedback, |index, status| {
            let arrival_us = match status {
                Status::Lost => None,
                Status::Received(delta) => {
                    match receiver_us.checked_add(delta) {
                        Some(t) => receiver_us = t,
                        None => clock_ok = false,
                    }
                    Some(receiver_us)
                }
                Status::ReceivedWithoutDelta => return,
            };
            if !clock_ok {
                return;
            }
            let Some((seq, offset)) = index_of(index) else {
                return;
            };
            let Some(Some(packet)) = packets.get_mut(offset) else {
                return;
            };
            let arrival = match arrival_us {
                None if packet.reported != Reported::Nothing => return,
                None if newest_received.is_some_and(|n| packet.order < n) => {
                    packet.reported = Reported::Lost;
                    None
                }
                None => {
                    // Nothing sent after it has arrived yet: it may still be on its way.
                    if !pending_lost.contains(&seq) {
                        if pending_lost.len() >= MAX_PENDING_LOST {
                            pending_lost.pop_front();
                        }
                        pending_lost.push_back(seq);
                    }
                    return;
                }
                Some(_) if packet.reported == Reported::Received => return,
                Some(t) => match to_instant(anchor, t) {
                    Some(arrival) => {
                        packet.reported = Reported::Received;
                        Some(arrival)
                    }
                    None => return,
                },
            };
            out.push(PacketResult {
                transport_seq: seq,
                size: packet.size,
                sent: packet.sent,
                arrival,
                probe_cluster: packet.probe_cluster,
            });
        });
        self.judge_pending_lost(out);
        out.len() - before
    }

    /// Reports as lost the held-back packets that a packet sent after them has overtaken;
    /// forgets those received meanwhile or no longer in the history.
    fn judge_pending_lost(&mut self, out: &mut Vec<PacketResult>) {
        let Some(newest) = self.newest_received_order else {
            return;
        };
        let (base, packets) = (self.base, &mut self.packets);
        let mut pending: Vec<u64> = self.pending_lost.drain(..).collect();
        pending.sort_unstable();
        for seq in pending {
            let entry = seq
                .checked_sub(base)
                .and_then(|offset| usize::try_from(offset).ok())
                .and_then(|index| packets.get_mut(index));
            let Some(Some(packet)) = entry else {
                continue;
            };
            if packet.reported != Reported::Nothing {
                continue;
            }
            if packet.order < newest {
                packet.reported = Reported::Lost;
                out.push(PacketResult {
                    transport_seq: seq,
                    size: packet.size,
                    sent: packet.sent,
                    arrival: None,
                    probe_cluster: packet.probe_cluster,
                });
            } else {
                self.pending_lost.push_back(seq);
            }
        }
    }

    /// Read the TWCC feedback in a (decrypted) compound RTCP packet, as
    /// [`on_feedback`](Self::on_feedback) does; other packets are skipped. Each TWCC packet
    /// goes through [`RtcpPacket::parse`] and its guards. Stops at the first malformed
    /// packet, after reading the feedback before it, and returns its error.
    pub fn on_rtcp(
        &mut self,
        now: Instant,
        compound: &[u8],
        out: &mut Vec<PacketResult>,
    ) -> Result<usize, TwccError> {
        let mut appended = 0;
        for view in RtcpCompound::new(compound) {
            let view = view?;
            if view.kind() != RtcpKind::TransportCc {
                continue;
            }
            if let RtcpPacket::TransportCc(feedback) = RtcpPacket::parse(&view)? {
                appended += self.on_feedback(now, &feedback, out);
            }
        }
        Ok(appended)
    }

    /// Unwrap a 24-bit reference time against the previous feedback's.
    fn unwrap_reference(&mut self, raw: u32) -> i64 {
        let mask = (1u32 << REFERENCE_TIME_BITS) - 1;
        let raw = raw & mask;
        let unwrapped = match self.reference {
            None => i64::from(raw),
            Some((last_raw, last)) => {
                let diff = i64::from(raw.wrapping_sub(last_raw) & mask);
                let half = 1i64 << (REFERENCE_TIME_BITS - 1);
                let diff = if diff >= half {
                    diff - (1 << REFERENCE_TIME_BITS)
                } else {
                    diff
                };
                last.saturating_add(diff)
            }
        };
        self.reference = Some((raw, unwrapped));
        unwrapped
    }
}

/// Our instant for receiver time `receiver_us`, given the anchor.
fn to_instant((anchor_now, anchor_us): (Instant, i64), receiver_us: i64) -> Option<Instant> {
    let diff = receiver_us.checked_sub(anchor_us)?;
    let magnitude = Duration::from_micros(diff.unsigned_abs());
    if diff >= 0 {
        anchor_now.checked_add(magnitude)
    } else {
        anchor_now.checked_sub(magnitude)
    }
}
