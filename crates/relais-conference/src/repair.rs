//! Repair of loss between a publisher and the node: the [`RetransmissionRequester`] that
//! decides which sequence numbers of one incoming video stream to ask for again (Generic
//! NACK, RFC 4585) and [`unwrap_rtx`], which turns a publisher's RTX retransmission
//! (RFC 4588) back into the original packet.
//!
//! A packet lost upstream is lost for every receiver: the receivers' NACKs are answered
//! from the node's caches, which never held it. So the node asks the publisher itself, as
//! jitsi-videobridge's RetransmissionRequester and libwebrtc's NackRequester do: a new gap
//! is requested at once, each number still missing is requested again every retry interval
//! up to a maximum, and the repaired packet, unwrapped, is handled like the original.
//!
//! The requester is sans-IO (time is passed in) and allocates only when created: its list
//! of missing numbers has a fixed capacity.

use std::time::{Duration, Instant};

use relais_rtp::rtcp::{feedback, RtcpPacket};
use relais_rtp::rtp::RtpPacket;

use crate::conference::rewrite::seq_newer;

/// Most sequence numbers one requester remembers as missing; beyond that the oldest are
/// given up (counted as abandoned).
pub const MAX_MISSING: usize = 256;
/// A jump of the sequence number larger than this is a restart of the stream, not loss:
/// the requester forgets what it waited for instead of requesting the whole jump.
pub const MAX_GAP: u16 = 1000;
/// A missing number is given up when it was first seen missing this long ago (a repair
/// later than that comes after receivers gave up on the frame).
pub const MAX_MISSING_AGE: Duration = Duration::from_secs(1);
/// The shortest retry interval, whatever the measured round trip.
pub const MIN_RETRY_INTERVAL: Duration = Duration::from_millis(20);
/// Most sequence numbers in one NACK packet: spread out, each needs a (PID, BLP) pair of
/// its own, and the `rtcp` crate encodes at most [`feedback::MAX_NACK_PAIRS`].
const MAX_SEQS_PER_NACK: usize = 200;

/// Tunables of upstream repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairConfig {
    /// Send NACKs to publishers and unwrap their RTX. When off, publisher RTX is dropped
    /// and counted in [`crate::ForwarderStats::dropped_publisher_rtx`].
    pub enabled: bool,
    /// How long to wait for a repair before asking again, until a round trip to the
    /// publisher is measured (then the round trip and a margin, at least
    /// [`MIN_RETRY_INTERVAL`]).
    pub retry_interval: Duration,
    /// Requests sent for one sequence number (the first included) before giving up.
    pub max_requests: u8,
}

impl Default for RepairConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            retry_interval: Duration::from_millis(100),
            max_requests: 10,
        }
    }
}

/// Where an arriving packet fell relative to what the requester knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The first packet, or newer than every packet so far (`gap` numbers were skipped and
    /// are now missing).
    Newest {
        /// Sequence numbers skipped, now waited for.
        gap: u16,
    },
    /// A number that was missing: the gap is filled.
    Filled,
    /// Older than the newest and not missing: a duplicate, or a repair given up on.
    NotMissing,
    /// A jump larger than [`MAX_GAP`] (or far back): the stream restarted from here.
    Reset,
}

/// One sequence number waited for.
#[derive(Debug, Clone, Copy)]
struct Missing {
    seq: u16,
    /// When the gap was seen.
    since: Instant,
    /// When it was last requested (`None`: not yet).
    requested_at: Option<Instant>,
    /// Requests sent so far.
    requests: u8,
}

/// What [`RetransmissionRequester::poll_requests`] decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Sequence numbers written to the caller's list (to request now).
    pub requested: usize,
    /// Sequence numbers given up on (too many requests, or too old).
    pub abandoned: u64,
}

/// The upstream loss tracker of one incoming media SSRC.
#[derive(Debug, Clone)]
pub struct RetransmissionRequester {
    config: RepairConfig,
    highest: Option<u16>,
    /// Missing numbers, oldest gap first (the order they were found in).
    missing: Vec<Missing>,
    /// Smoothed round trip from a first request to its repair (Karn: only repairs of numbers
    /// requested once are sampled, so a sample cannot match an earlier request, nor a late
    /// original).
    smoothed_rtt: Option<Duration>,
    /// Numbers given up on since the last poll (evicted when the list was full, or reset).
    abandoned: u64,
}

impl RetransmissionRequester {
    /// A requester with nothing missing yet; its list is allocated here, once.
    pub fn new(config: RepairConfig) -> Self {
        Self {
            config,
            highest: None,
            missing: Vec::with_capacity(MAX_MISSING),
            smoothed_rtt: None,
            abandoned: 0,
        }
    }

    /// The newest sequence number seen.
    pub fn highest(&self) -> Option<u16> {
        self.highest
    }

    /// Numbers currently waited for.
    pub fn missing_count(&self) -> usize {
        self.missing.len()
    }

    /// Whether `seq` is waited for (a repair of it is wanted).
    pub fn is_missing(&self, seq: u16) -> bool {
        self.missing.iter().any(|m| m.seq == seq)
    }

    /// The measured round trip from a request to its repair, once there is a sample.
    pub fn round_trip(&self) -> Option<Duration> {
        self.smoothed_rtt
    }

    /// How long to wait before requesting a number again: the measured round trip plus a
    /// quarter (repairs queue behind media at the publisher's pacer), else the configured
    /// default; never below [`MIN_RETRY_INTERVAL`].
    pub fn retry_interval(&self) -> Duration {
        self.smoothed_rtt
            .map_or(self.config.retry_interval, |rtt| rtt + rtt / 4)
            .max(MIN_RETRY_INTERVAL)
    }

    /// Accounts an arriving original packet with sequence number `seq`.
    pub fn on_packet(&mut self, now: Instant, seq: u16) -> Arrival {
        self.arrive(now, seq, false)
    }

    /// Accounts a repair of `seq` (unwrapped from RTX); it also measures the round trip.
    pub fn on_repair(&mut self, now: Instant, seq: u16) -> Arrival {
        self.arrive(now, seq, true)
    }

    fn arrive(&mut self, now: Instant, seq: u16, repaired: bool) -> Arrival {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return Arrival::Newest { gap: 0 };
        };
        if seq_newer(seq, highest) {
            let distance = seq.wrapping_sub(highest);
            if distance > MAX_GAP {
                self.reset(seq);
                return Arrival::Reset;
            }
            let gap = distance - 1;
            for offset in 1..distance {
                self.push_missing(now, highest.wrapping_add(offset));
            }
            self.highest = Some(seq);
            return Arrival::Newest { gap };
        }
        if let Some(index) = self.missing.iter().position(|m| m.seq == seq) {
            let found = self.missing.remove(index);
            if let (true, 1, Some(at)) = (repaired, found.requests, found.requested_at) {
                self.sample_rtt(now.saturating_duration_since(at));
            }
            return Arrival::Filled;
        }
        if highest.wrapping_sub(seq) > MAX_GAP {
            // Far behind what anything could still repair: a restarted sender.
            self.reset(seq);
            return Arrival::Reset;
        }
        Arrival::NotMissing
    }

    /// Forgets the stream (its sender changed SSRC or restarted): what was missing is
    /// given up, the next packet starts it again.
    pub fn clear(&mut self) {
        self.abandoned += self.missing.len() as u64;
        self.missing.clear();
        self.highest = None;
    }

    /// Starts over at `seq`: what was missing is given up.
    fn reset(&mut self, seq: u16) {
        self.abandoned += self.missing.len() as u64;
        self.missing.clear();
        self.highest = Some(seq);
    }

    fn push_missing(&mut self, now: Instant, seq: u16) {
        if self.missing.len() >= MAX_MISSING {
            // Full: the oldest gap is the least likely to be repaired in time.
            self.missing.remove(0);
            self.abandoned += 1;
        }
        self.missing.push(Missing {
            seq,
            since: now,
            requested_at: None,
            requests: 0,
        });
    }

    fn sample_rtt(&mut self, sample: Duration) {
        self.smoothed_rtt = Some(match self.smoothed_rtt {
            // RFC 6298's smoothing: 7/8 old, 1/8 new.
            Some(rtt) => (rtt * 7 + sample) / 8,
            None => sample,
        });
    }

    /// Writes into `due` (cleared first) the numbers to request now: new gaps and numbers
    /// whose last request is a retry interval old. Numbers requested
    /// [`RepairConfig::max_requests`] times, or missing for longer than
    /// [`MAX_MISSING_AGE`], are given up. `due` is the caller's reused list: at most
    /// [`MAX_MISSING`] entries are written.
    pub fn poll_requests(&mut self, now: Instant, due: &mut Vec<u16>) -> PollOutcome {
        due.clear();
        let interval = self.retry_interval();
        let max_requests = self.config.max_requests.max(1);
        let mut abandoned = std::mem::take(&mut self.abandoned);
        self.missing.retain_mut(|m| {
            let retry_due = m
                .requested_at
                .is_none_or(|at| now.saturating_duration_since(at) >= interval);
            if !retry_due {
                return true;
            }
            if m.requests >= max_requests
                || now.saturating_duration_since(m.since) > MAX_MISSING_AGE
            {
                abandoned += 1;
                return false;
            }
            m.requests += 1;
            m.requested_at = Some(now);
            due.push(m.seq);
            true
        });
        PollOutcome {
            requested: due.len(),
            abandoned,
        }
    }

    /// When [`RetransmissionRequester::poll_requests`] has something to do next: the
    /// earliest retry (or give-up) of a number waited for.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let interval = self.retry_interval();
        self.missing
            .iter()
            .map(|m| m.requested_at.map_or(m.since, |at| at + interval))
            .min()
    }
}

/// The Generic NACKs (RFC 4585 §6.2.1) from `sender_ssrc` asking `media_ssrc`'s sender
/// for `due`, each with the count of sequence numbers it carries. RTCP goes through the
/// `rtcp` crate (allocates; sent on loss only, never per forwarded packet).
pub(crate) fn nack_packets(
    sender_ssrc: u32,
    media_ssrc: u32,
    due: &[u16],
) -> impl Iterator<Item = (RtcpPacket, usize)> + '_ {
    due.chunks(MAX_SEQS_PER_NACK).filter_map(move |chunk| {
        feedback::nack(sender_ssrc, media_ssrc, chunk)
            .ok()
            .map(|nack| (RtcpPacket::from(nack), chunk.len()))
    })
}

/// What [`unwrap_rtx`] made of an RTX packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtxPayload {
    /// The original sequence number; the original packet is in the output buffer.
    Original(u16),
    /// Padding only (a bandwidth probe): nothing to unwrap.
    Padding,
}

/// Rebuilds the original packet of an RTX retransmission (RFC 4588 §4) into `out` (cleared
/// first; reused by the caller so that unwrapping does not allocate): the RTX header with
/// `media_ssrc`, `media_payload_type` and the original sequence number read from the first
/// two payload bytes, followed by the rest of the payload, without padding.
pub fn unwrap_rtx(
    rtx: &RtpPacket<&[u8]>,
    media_ssrc: u32,
    media_payload_type: u8,
    out: &mut Vec<u8>,
) -> RtxPayload {
    out.clear();
    let Some((osn, payload)) = rtx.payload().split_first_chunk::<2>() else {
        return RtxPayload::Padding;
    };
    let original_seq = u16::from_be_bytes(*osn);
    let header = rtx.as_bytes().get(..rtx.header_len()).unwrap_or_default();
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    if let Some(first) = out.first_mut() {
        // The padding was not copied.
        *first &= !0x20;
    }
    match RtpPacket::parse(out.as_mut_slice()) {
        Ok(mut packet) => {
            packet.set_ssrc(media_ssrc);
            packet.set_payload_type(media_payload_type);
            packet.set_sequence_number(original_seq);
            RtxPayload::Original(original_seq)
        }
        Err(_) => {
            out.clear();
            RtxPayload::Padding
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn poll(r: &mut RetransmissionRequester, now: Instant) -> (Vec<u16>, u64) {
        let mut due = Vec::new();
        let outcome = r.poll_requests(now, &mut due);
        assert_eq!(outcome.requested, due.len());
        (due, outcome.abandoned)
    }

    fn requester() -> RetransmissionRequester {
        RetransmissionRequester::new(RepairConfig {
            enabled: true,
            retry_interval: ms(50),
            max_requests: 3,
        })
    }

    #[test]
    fn a_gap_is_requested_at_once() {
        let t0 = Instant::now();
        let mut r = requester();
        assert_eq!(r.on_packet(t0, 10), Arrival::Newest { gap: 0 });
        assert_eq!(r.on_packet(t0, 11), Arrival::Newest { gap: 0 });
        assert_eq!(poll(&mut r, t0), (vec![], 0));
        assert_eq!(r.on_packet(t0, 14), Arrival::Newest { gap: 2 });
        assert!(r.is_missing(12) && r.is_missing(13) && !r.is_missing(14));
        assert_eq!(r.poll_timeout(), Some(t0));
        assert_eq!(poll(&mut r, t0), (vec![12, 13], 0));
        // Nothing more until the retry interval.
        assert_eq!(poll(&mut r, t0 + ms(49)), (vec![], 0));
        assert_eq!(r.poll_timeout(), Some(t0 + ms(50)));
    }

    #[test]
    fn retries_at_the_interval_up_to_the_maximum_then_gives_up() {
        let t0 = Instant::now();
        let mut r = requester();
        r.on_packet(t0, 100);
        r.on_packet(t0, 102);
        assert_eq!(poll(&mut r, t0), (vec![101], 0));
        assert_eq!(poll(&mut r, t0 + ms(50)), (vec![101], 0));
        assert_eq!(poll(&mut r, t0 + ms(100)), (vec![101], 0));
        // Three requests sent: the fourth turn gives it up.
        assert_eq!(poll(&mut r, t0 + ms(150)), (vec![], 1));
        assert_eq!(r.missing_count(), 0);
        assert_eq!(r.poll_timeout(), None);
        // A repair after giving up is not wanted any more.
        assert_eq!(r.on_packet(t0 + ms(160), 101), Arrival::NotMissing);
    }

    #[test]
    fn a_repair_removes_the_number_and_measures_the_round_trip() {
        let t0 = Instant::now();
        let mut r = requester();
        r.on_packet(t0, 1);
        r.on_packet(t0, 4);
        assert_eq!(poll(&mut r, t0), (vec![2, 3], 0));
        assert_eq!(r.on_repair(t0 + ms(30), 2), Arrival::Filled);
        assert_eq!(r.on_repair(t0 + ms(31), 2), Arrival::NotMissing);
        assert_eq!(r.round_trip(), Some(ms(30)));
        // The retry interval follows the round trip (plus a quarter).
        assert_eq!(r.retry_interval(), Duration::from_micros(37_500));
        assert_eq!(poll(&mut r, t0 + ms(37)), (vec![], 0));
        assert_eq!(poll(&mut r, t0 + ms(38)), (vec![3], 0));
    }

    #[test]
    fn a_late_original_is_no_round_trip_sample() {
        let t0 = Instant::now();
        let mut r = requester();
        r.on_packet(t0, 1);
        r.on_packet(t0, 3);
        poll(&mut r, t0);
        // Reordered, not repaired: it says nothing about the publisher's answer time.
        assert_eq!(r.on_packet(t0 + ms(2), 2), Arrival::Filled);
        assert_eq!(r.round_trip(), None);
        assert_eq!(r.retry_interval(), ms(50));
    }

    #[test]
    fn retry_interval_has_a_floor() {
        let t0 = Instant::now();
        let mut r = requester();
        r.on_packet(t0, 1);
        r.on_packet(t0, 3);
        poll(&mut r, t0);
        r.on_repair(t0 + ms(1), 2);
        assert_eq!(r.round_trip(), Some(ms(1)));
        assert_eq!(r.retry_interval(), MIN_RETRY_INTERVAL);
    }

    #[test]
    fn wraparound() {
        let t0 = Instant::now();
        let mut r = requester();
        r.on_packet(t0, 65534);
        assert_eq!(r.on_packet(t0, 1), Arrival::Newest { gap: 2 });
        assert_eq!(poll(&mut r, t0), (vec![65535, 0], 0));
        assert_eq!(r.highest(), Some(1));
        assert_eq!(r.on_packet(t0, 0), Arrival::Filled);
        assert_eq!(r.on_packet(t0, 65535), Arrival::Filled);
        assert_eq!(r.on_packet(t0, 2), Arrival::Newest { gap: 0 });
    }

    #[test]
    fn a_reordered_packet_fills_its_gap_before_it_is_requested() {
        let t0 = Instant::now();
        let mut r = requester();
        r.on_packet(t0, 10);
        r.on_packet(t0, 12);
        assert_eq!(r.on_packet(t0, 11), Arrival::Filled);
        assert_eq!(poll(&mut r, t0), (vec![], 0));
        // An old duplicate is not missing.
        assert_eq!(r.on_packet(t0, 9), Arrival::NotMissing);
        assert_eq!(r.highest(), Some(12));
    }

    #[test]
    fn a_large_jump_resets_instead_of_requesting_everything() {
        let t0 = Instant::now();
        let mut r = requester();
        r.on_packet(t0, 100);
        r.on_packet(t0, 103);
        assert_eq!(r.missing_count(), 2);
        assert_eq!(r.on_packet(t0, 100 + MAX_GAP + 10), Arrival::Reset);
        assert_eq!(r.missing_count(), 0);
        assert_eq!(poll(&mut r, t0), (vec![], 2));
        assert_eq!(
            r.on_packet(t0, 100 + MAX_GAP + 11),
            Arrival::Newest { gap: 0 }
        );
        // Far behind counts as a restart too.
        assert_eq!(r.on_packet(t0, 50_000), Arrival::Reset);
        assert_eq!(r.highest(), Some(50_000));
    }

    #[test]
    fn remembered_numbers_are_bounded() {
        let t0 = Instant::now();
        let mut r = requester();
        r.on_packet(t0, 0);
        // 900 missing: only the newest MAX_MISSING are kept, the others are given up.
        assert_eq!(r.on_packet(t0, 901), Arrival::Newest { gap: 900 });
        assert_eq!(r.missing_count(), MAX_MISSING);
        assert!(!r.is_missing(1));
        assert!(r.is_missing(900) && r.is_missing(900 - MAX_MISSING as u16 + 1));
        let (due, abandoned) = poll(&mut r, t0);
        assert_eq!(due.len(), MAX_MISSING);
        assert_eq!(abandoned, 900 - MAX_MISSING as u64);
        assert!(
            r.missing.capacity() == MAX_MISSING,
            "no growth past the bound"
        );
    }

    #[test]
    fn old_numbers_are_given_up() {
        let t0 = Instant::now();
        let mut r = RetransmissionRequester::new(RepairConfig {
            retry_interval: ms(400),
            ..RepairConfig::default()
        });
        r.on_packet(t0, 1);
        r.on_packet(t0, 3);
        assert_eq!(poll(&mut r, t0), (vec![2], 0));
        assert_eq!(poll(&mut r, t0 + ms(400)), (vec![2], 0));
        assert_eq!(poll(&mut r, t0 + ms(800)), (vec![2], 0));
        // Over a second missing: given up although requests are left.
        assert_eq!(poll(&mut r, t0 + ms(1200)), (vec![], 1));
    }

    #[test]
    fn unwraps_rtx_and_recognises_padding() {
        // RTX: PT 97, seq 7, ts 0x1234, SSRC 0xBEEF, one-byte extension, OSN 0x0102, payload.
        let mut rtx = vec![0x90, 97, 0, 7, 0, 0, 0x12, 0x34, 0, 0, 0xBE, 0xEF];
        rtx.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAB, 0, 0]);
        rtx.extend_from_slice(&[0x01, 0x02, 0xDE, 0xAD]);
        let parsed = RtpPacket::parse(rtx.as_slice()).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            unwrap_rtx(&parsed, 0xF1, 96, &mut out),
            RtxPayload::Original(0x0102)
        );
        let original = RtpPacket::parse(out.as_slice()).unwrap();
        assert_eq!(original.ssrc(), 0xF1);
        assert_eq!(original.payload_type(), 96);
        assert_eq!(original.sequence_number(), 0x0102);
        assert_eq!(original.timestamp(), 0x1234);
        assert_eq!(original.extension(1), Some(&[0xAB][..]));
        assert_eq!(original.payload(), &[0xDE, 0xAD]);
        // Padding only: P bit, no payload before the padding.
        let padding = [
            0xA0, 97, 0, 8, 0, 0, 0x12, 0x34, 0, 0, 0xBE, 0xEF, 0, 0, 0, 4,
        ];
        let parsed = RtpPacket::parse(&padding[..]).unwrap();
        assert_eq!(unwrap_rtx(&parsed, 0xF1, 96, &mut out), RtxPayload::Padding);
        assert!(out.is_empty());
    }
}
