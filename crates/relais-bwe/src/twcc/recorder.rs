//! The arrival record of one sending endpoint and the TWCC feedback the node sends it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use relais_rtp::rtcp::packets::{RecvDelta, SymbolTypeTcc, TransportLayerCc};
use relais_rtp::rtcp::RtcpPacket;

use super::chunks::ChunkEncoder;
use super::{TwccError, DELTA_TICK_US, REFERENCE_TIME_BITS, TICKS_PER_REFERENCE};

/// How often feedback goes out while packets arrive (the draft's 50–100 ms, at the fast end).
pub const DEFAULT_FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);

/// Largest feedback packet the recorder builds, in bytes (padding included): one fits a
/// datagram with SRTCP and UDP/IP overhead. More statuses split into several packets.
pub const MAX_FEEDBACK_SIZE: usize = 1100;

/// Most sequence numbers awaiting feedback the recorder keeps: when a newer packet is further
/// ahead than this, the oldest unreported sequence numbers are dropped without feedback.
pub const RECORDER_MAX_SPAN: u64 = 1 << 13;

/// How far behind the last feedback a late packet may be and still be reported: arrivals of
/// this many sequence numbers before the end of the last feedback are kept, and a packet
/// among them that arrives late (after feedback called it lost) moves the next feedback's
/// start back to it, so that feedback reports it and re-reports what follows, as libwebrtc's
/// `RemoteEstimatorProxy` does.
pub const RECORDER_REREPORT_SPAN: u64 = 1 << 10;

/// Header, SSRCs, base sequence number, status count, reference time and feedback count.
const FIXED_LEN: usize = 20;

/// Arrival slot of a packet not received (arrivals are never negative).
const NOT_RECEIVED: i64 = -1;

/// Largest receive delta in a small-delta byte, in ticks.
const MAX_SMALL_DELTA: i64 = 0xFF;

/// Arrival records of one sending endpoint's packets, by transport-wide sequence number, and
/// the TWCC feedback built from them.
///
/// Sans-IO: call [`on_packet`](Self::on_packet) for each packet received with the
/// transport-wide sequence number extension, and [`poll_feedback`](Self::poll_feedback)
/// whenever [`poll_timeout`](Self::poll_timeout) has passed, until it returns `None`.
///
/// Feedback goes out every [`interval`](Self::interval) while packets arrive: the first
/// packet after a quiet period is due one interval after the previous feedback (or after it
/// arrived, if there was none), or at once if that is past. Each feedback covers the sequence
/// numbers from the end of the previous one to the highest received; a receive delta that
/// does not fit (more than ±8.19 s from the previous arrival) or the
/// [`MAX_FEEDBACK_SIZE`] ends a feedback packet, and the rest is due at once.
///
/// Arrival times are kept in 250 µs ticks from the first arrival, rounded to the nearest,
/// so each reported arrival is within 125 µs of the one recorded.
#[derive(Debug, Clone)]
pub struct TwccRecorder {
    interval: Duration,
    /// The first arrival: tick 0.
    epoch: Option<Instant>,
    /// Highest unwrapped sequence number seen.
    highest: Option<u64>,
    /// Arrival ticks (or [`NOT_RECEIVED`]) of `ring_base..ring_base + len`; the last one is
    /// always a received packet.
    arrivals: VecDeque<i64>,
    ring_base: u64,
    /// First sequence number the next feedback covers.
    window_start: u64,
    /// Whether any feedback has been built (before that, reordered earlier packets extend
    /// the record backwards).
    reported_any: bool,
    last_feedback: Option<Instant>,
    next_due: Option<Instant>,
    feedback_count: u8,
}

impl Default for TwccRecorder {
    fn default() -> Self {
        Self::new(DEFAULT_FEEDBACK_INTERVAL)
    }
}

impl TwccRecorder {
    /// A recorder sending feedback every `interval` while packets arrive.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            epoch: None,
            highest: None,
            arrivals: VecDeque::new(),
            ring_base: 0,
            window_start: 0,
            reported_any: false,
            last_feedback: None,
            next_due: None,
            feedback_count: 0,
        }
    }

    /// The feedback interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Record that the packet with `transport_seq` arrived at `now`.
    ///
    /// Duplicates are ignored; so are packets older than the record (more than
    /// [`RECORDER_REREPORT_SPAN`] before the last feedback's end).
    pub fn on_packet(&mut self, now: Instant, transport_seq: u16) {
        let Some(seq) = self.unwrap(transport_seq) else {
            return;
        };
        let epoch = *self.epoch.get_or_insert(now);
        let ticks = ticks_between(epoch, now);
        if !self.record(seq, ticks) {
            return;
        }
        if self.next_due.is_none() {
            let due = match self.last_feedback {
                Some(last) => last.checked_add(self.interval).unwrap_or(now).max(now),
                None => now.checked_add(self.interval).unwrap_or(now),
            };
            self.next_due = Some(due);
        }
    }

    /// When [`poll_feedback`](Self::poll_feedback) has something to send; `None` while no
    /// packet awaits feedback.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_due
    }

    /// A marshalled TWCC feedback packet (RTPFB, FMT 15) from `sender_ssrc` (the node) about
    /// `media_ssrc` (a media SSRC of the endpoint), if one is due at `now`.
    ///
    /// Returns one packet per call; call again until `None`, as a feedback too large for one
    /// packet, or one whose deltas do not fit, is split and the rest is due at once.
    pub fn poll_feedback(
        &mut self,
        now: Instant,
        sender_ssrc: u32,
        media_ssrc: u32,
    ) -> Option<Vec<u8>> {
        let due = self.next_due?;
        if now < due {
            return None;
        }
        let feedback = self.build(sender_ssrc, media_ssrc);
        self.reported_any = true;
        self.last_feedback = Some(now);
        self.next_due = (self.window_start < self.ring_end()).then_some(now);
        self.prune();
        marshal(feedback?).ok()
    }

    fn ring_end(&self) -> u64 {
        self.ring_base + self.arrivals.len() as u64
    }

    fn unwrap(&mut self, seq: u16) -> Option<u64> {
        let unwrapped = match self.highest {
            // Start one cycle in, so packets reordered before the first stay representable.
            None => (1 << 16) + u64::from(seq),
            Some(highest) => unwrap_near(highest, seq)?,
        };
        self.highest = Some(self.highest.map_or(unwrapped, |h| h.max(unwrapped)));
        Some(unwrapped)
    }

    /// Store one arrival; `false` if it is a duplicate or too old.
    fn record(&mut self, seq: u64, ticks: i64) -> bool {
        let end = self.ring_end();
        if self.arrivals.is_empty() || seq >= end.saturating_add(RECORDER_MAX_SPAN) {
            // First packet, or so far ahead that everything recorded is dropped.
            self.arrivals.clear();
            self.arrivals.push_back(ticks);
            self.ring_base = seq;
            self.window_start = seq;
            return true;
        }
        if seq >= end {
            let missing = usize::try_from(seq - end).unwrap_or(0);
            self.arrivals
                .extend(std::iter::repeat_n(NOT_RECEIVED, missing));
            self.arrivals.push_back(ticks);
            self.prune();
            return true;
        }
        if let Some(offset) = seq.checked_sub(self.ring_base) {
            let slot = usize::try_from(offset)
                .ok()
                .and_then(|index| self.arrivals.get_mut(index));
            let Some(slot) = slot else {
                return false;
            };
            if *slot != NOT_RECEIVED {
                return false;
            }
            *slot = ticks;
            self.window_start = self.window_start.min(seq);
            return true;
        }
        // Before the record: only while no feedback went out, and within the span.
        if self.reported_any || end - seq > RECORDER_MAX_SPAN {
            return false;
        }
        for _ in seq + 1..self.ring_base {
            self.arrivals.push_front(NOT_RECEIVED);
        }
        self.arrivals.push_front(ticks);
        self.ring_base = seq;
        self.window_start = seq;
        true
    }

    /// Keep at most [`RECORDER_MAX_SPAN`] unreported sequence numbers and
    /// [`RECORDER_REREPORT_SPAN`] reported ones.
    fn prune(&mut self) {
        let end = self.ring_end();
        if end - self.window_start > RECORDER_MAX_SPAN {
            self.window_start = end - RECORDER_MAX_SPAN;
        }
        let keep_from = self
            .window_start
            .saturating_sub(RECORDER_REREPORT_SPAN)
            .max(self.ring_base);
        let drop = usize::try_from(keep_from - self.ring_base)
            .unwrap_or(usize::MAX)
            .min(self.arrivals.len());
        self.arrivals.drain(..drop);
        self.ring_base += drop as u64;
    }

    /// The next feedback packet, from `window_start` on; advances `window_start` past what
    /// it covers.
    fn build(&mut self, sender_ssrc: u32, media_ssrc: u32) -> Option<TransportLayerCc> {
        let start = self.window_start;
        let skip = usize::try_from(start.checked_sub(self.ring_base)?).ok()?;
        let first = self
            .arrivals
            .iter()
            .skip(skip)
            .copied()
            .find(|&ticks| ticks != NOT_RECEIVED)?;
        let reference = first.div_euclid(TICKS_PER_REFERENCE);
        let mut last = reference * TICKS_PER_REFERENCE;
        let mut encoder = ChunkEncoder::new();
        let mut recv_deltas = Vec::new();
        let mut delta_bytes = 0;
        let mut count: u16 = 0;
        for &ticks in self.arrivals.iter().skip(skip) {
            if count == u16::MAX - 14 {
                break;
            }
            let (symbol, delta_len) = if ticks == NOT_RECEIVED {
                (SymbolTypeTcc::PacketNotReceived, 0)
            } else {
                let delta = ticks - last;
                if (0..=MAX_SMALL_DELTA).contains(&delta) {
                    (SymbolTypeTcc::PacketReceivedSmallDelta, 1)
                } else if (i64::from(i16::MIN)..=i64::from(i16::MAX)).contains(&delta) {
                    (SymbolTypeTcc::PacketReceivedLargeDelta, 2)
                } else {
                    break;
                }
            };
            let size = FIXED_LEN + encoder.bytes_with(symbol) + delta_bytes + delta_len;
            if size.next_multiple_of(4) > MAX_FEEDBACK_SIZE {
                break;
            }
            encoder.add(symbol);
            if delta_len > 0 {
                recv_deltas.push(RecvDelta {
                    type_tcc_packet: symbol,
                    delta: (ticks - last) * DELTA_TICK_US,
                });
                delta_bytes += delta_len;
                last = ticks;
            }
            count += 1;
        }
        self.window_start = start + u64::from(count);
        let feedback_count = self.feedback_count;
        self.feedback_count = self.feedback_count.wrapping_add(1);
        Some(TransportLayerCc {
            sender_ssrc,
            media_ssrc,
            base_sequence_number: start as u16,
            packet_status_count: count,
            reference_time: (reference as u32) & ((1 << REFERENCE_TIME_BITS) - 1),
            fb_pkt_count: feedback_count,
            packet_chunks: encoder.finish().ok()?,
            recv_deltas,
        })
    }
}

fn marshal(feedback: TransportLayerCc) -> Result<Vec<u8>, TwccError> {
    let packet = RtcpPacket::from(feedback);
    let mut out = vec![0; packet.marshal_size()];
    let len = packet.marshal_to(&mut out)?;
    out.truncate(len);
    Ok(out)
}

/// The unwrapped sequence number closest to `reference` whose low 16 bits are `seq`; `None`
/// below zero.
pub(super) fn unwrap_near(reference: u64, seq: u16) -> Option<u64> {
    let diff = seq.wrapping_sub(reference as u16) as i16;
    let unwrapped = i64::try_from(reference)
        .ok()?
        .checked_add(i64::from(diff))?;
    u64::try_from(unwrapped).ok()
}

/// `now - epoch` in 250 µs ticks, rounded to the nearest.
fn ticks_between(epoch: Instant, now: Instant) -> i64 {
    let micros = now.saturating_duration_since(epoch).as_micros();
    let tick = DELTA_TICK_US as u128;
    // Far beyond any session (2^50 ticks is ~8900 years); keeps the arithmetic from
    // overflowing.
    i64::try_from((micros + tick / 2) / tick)
        .unwrap_or(i64::MAX)
        .min(1 << 50)
}
