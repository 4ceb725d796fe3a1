//! Receiver-side checks of what the SFU forwards: fed the plaintext RTP packets one receiver
//! gets (SFU's SSRC, sequence numbers, timestamps and picture ids), they play the part of
//! libwebrtc's jitter buffer and decoder and record every way the stream would fail one.
//!
//! - [`Vp8StreamChecker`]: simulcast VP8 after layer selection.
//! - [`Vp9StreamChecker`]: VP9 SVC after thinning.
//! - [`Av1StreamChecker`]: AV1 SVC after thinning by the dependency descriptor.
//! - [`AudioChecker`]: speech and comfort-noise packets per sender.
//!
//! The video checkers first restore sequence order per SSRC, waiting
//! [`REORDER_WINDOW`] packets for a hole to fill (reordering, retransmission) before they
//! declare it lost; a late packet after that is counted, not used. Then they assemble frames
//! and "decode" them: a frame decodes if it is complete and every frame it references (read
//! from the payload's [`FrameStamp`](super::media::FrameStamp)) decoded before it, or if it
//! is a key frame. What goes wrong is a [`Violation`]; [`Violations`] lets tests require a
//! clean stream or allow the kinds their injected losses explain.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

mod audio;
mod av1;
mod vp8;
mod vp9;

pub use audio::*;
pub use av1::*;
pub use vp8::*;
pub use vp9::*;

/// Packets a hole in the sequence numbers may lag behind the newest packet before it is
/// declared lost.
pub const REORDER_WINDOW: i64 = 256;
/// Violations kept with their details; beyond this only counted.
const MAX_KEPT_VIOLATIONS: usize = 500;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// Packets never arrived: a hole in the sequence numbers reordering did not fill.
    SequenceGap,
    /// The same sequence number twice.
    DuplicatePacket,
    /// Not RTP, or no valid payload descriptor.
    Unparsable,
    /// The payload's stamp or filler bytes were altered.
    CorruptPayload,
    /// A frame's timestamp is before the previous frame's.
    TimestampBackwards,
    /// Picture ids not consecutive (VP8) or not increasing (VP9) with no loss in between.
    PictureIdJump,
    /// TL0PICIDX not incremented on a TL0 frame, or changed on another, with no loss.
    Tl0PicIdx,
    /// The stream does not start with a key frame.
    NoKeyframeAtStart,
    /// The sender or encoding changed on a frame that is not a key frame.
    SwitchWithoutKeyframe,
    /// A key frame whose header is not a decodable key frame start.
    BadKeyframe,
    /// A frame references a frame that was never received, with no loss to explain it.
    MissingReference,
    /// A frame references a frame that was never received, after packet loss.
    UndecodableAfterLoss,
    /// A frame with missing packets, no loss to explain it.
    IncompleteFrame,
    /// A frame or picture ended without the marker bit.
    MissingMarker,
    /// Packets of a frame or picture after its marker bit.
    MarkerNotAtEnd,
    /// A spatial or temporal layer above the limit the test set.
    LayerAboveLimit,
    /// A picture's spatial layers are not 0, 1, ... without holes.
    LayerHole,
}

/// One thing that went wrong, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What.
    pub kind: ViolationKind,
    /// The received SSRC.
    pub ssrc: u32,
    /// The received sequence number it was found at.
    pub sequence_number: u16,
    /// A readable explanation.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} on ssrc {:#x} at seq {}: {}",
            self.kind, self.ssrc, self.sequence_number, self.detail
        )
    }
}

/// The violations a checker found, in the order found.
#[derive(Debug, Clone, Default)]
pub struct Violations {
    kept: Vec<Violation>,
    counts: BTreeMap<ViolationKind, usize>,
}

impl Violations {
    /// Records one.
    pub fn push(&mut self, kind: ViolationKind, ssrc: u32, sequence_number: u16, detail: String) {
        *self.counts.entry(kind).or_default() += 1;
        if self.kept.len() < MAX_KEPT_VIOLATIONS {
            self.kept.push(Violation {
                kind,
                ssrc,
                sequence_number,
                detail,
            });
        }
    }

    /// The first violations found (up to 500), with details.
    pub fn list(&self) -> &[Violation] {
        &self.kept
    }

    /// The kept violations as readable lines.
    pub fn messages(&self) -> Vec<String> {
        self.kept.iter().map(ToString::to_string).collect()
    }

    /// How many of `kind` were found.
    pub fn count(&self, kind: ViolationKind) -> usize {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// How many were found in all.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// Whether none were found.
    pub fn is_clean(&self) -> bool {
        self.counts.is_empty()
    }

    /// Count per kind.
    pub fn counts(&self) -> &BTreeMap<ViolationKind, usize> {
        &self.counts
    }

    /// Panics with a readable list if any violation is not of an `allowed` kind.
    pub fn assert_only(&self, allowed: &[ViolationKind]) {
        let unexpected: Vec<String> = self
            .kept
            .iter()
            .filter(|v| !allowed.contains(&v.kind))
            .take(40)
            .map(ToString::to_string)
            .collect();
        let unexpected_count: usize = self
            .counts
            .iter()
            .filter(|(kind, _)| !allowed.contains(kind))
            .map(|(_, count)| count)
            .sum();
        assert!(
            unexpected_count == 0,
            "{unexpected_count} violations ({:?}); first ones:\n  {}",
            self.counts,
            unexpected.join("\n  ")
        );
    }

    /// Panics with a readable list if there is any violation.
    pub fn assert_clean(&self) {
        self.assert_only(&[]);
    }
}

/// What the in-order stage hands on.
#[derive(Debug)]
enum Delivery {
    /// The next packet in sequence order.
    Packet(Vec<u8>),
    /// `count` packets from `first` on were declared lost.
    Lost { first: u16, count: u64 },
}

/// How a packet arrived relative to what was already delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Buffered or delivered.
    Accepted,
    /// Its sequence number had been declared lost already; dropped.
    Late,
    /// Its sequence number was delivered or buffered already; dropped.
    Duplicate,
}

/// Restores sequence order, like a jitter buffer, and declares holes lost once the stream
/// is [`REORDER_WINDOW`] packets past them.
#[derive(Debug, Clone, Default)]
struct InOrder {
    /// Unwrapped sequence number of the next packet to deliver; `None` before the first.
    next: Option<i64>,
    /// Highest unwrapped sequence number seen.
    highest: i64,
    pending: BTreeMap<i64, Vec<u8>>,
    /// Recently declared lost, to tell a late packet from a duplicate.
    declared_lost: BTreeSet<i64>,
}

impl InOrder {
    fn unwrap_seq(&self, sequence_number: u16) -> i64 {
        if self.next.is_none() {
            return i64::from(sequence_number);
        }
        let delta = sequence_number.wrapping_sub(self.highest as u16) as i16;
        self.highest + i64::from(delta)
    }

    fn push(&mut self, sequence_number: u16, packet: Vec<u8>, out: &mut Vec<Delivery>) -> Arrival {
        let seq = self.unwrap_seq(sequence_number);
        let next = *self.next.get_or_insert(seq);
        if seq < next {
            return if self.declared_lost.remove(&seq) {
                Arrival::Late
            } else {
                Arrival::Duplicate
            };
        }
        if self.pending.contains_key(&seq) {
            return Arrival::Duplicate;
        }
        self.pending.insert(seq, packet);
        self.highest = self.highest.max(seq);
        self.drain(out, false);
        Arrival::Accepted
    }

    /// Delivers what is in order; declares the hole at the front lost when the stream is
    /// far enough past it, or always with `flush`.
    fn drain(&mut self, out: &mut Vec<Delivery>, flush: bool) {
        let Some(mut next) = self.next else {
            return;
        };
        while let Some((&first, _)) = self.pending.first_key_value() {
            if first == next {
                let packet = self.pending.remove(&first).unwrap();
                out.push(Delivery::Packet(packet));
                next += 1;
            } else if flush || self.highest - next >= REORDER_WINDOW {
                out.push(Delivery::Lost {
                    first: next as u16,
                    count: (first - next) as u64,
                });
                self.declared_lost.extend(next..first);
                next = first;
            } else {
                break;
            }
        }
        self.next = Some(next);
        // Only keep what a retransmission could still plausibly fill.
        let horizon = next - 16 * REORDER_WINDOW;
        while self
            .declared_lost
            .first()
            .is_some_and(|&oldest| oldest < horizon)
        {
            self.declared_lost.pop_first();
        }
    }

    fn flush(&mut self, out: &mut Vec<Delivery>) {
        self.drain(out, true);
    }
}

/// Per-SSRC packet accounting of the in-order stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketCounts {
    /// Packets received, duplicates and late ones included.
    pub received: u64,
    /// Packets declared lost.
    pub lost: u64,
    /// Packets that arrived after being declared lost.
    pub late: u64,
    /// Packets received twice.
    pub duplicates: u64,
}

/// A bounded set of recently seen frames, oldest forgotten first.
#[derive(Debug, Clone)]
struct RecentFrames<T: Ord + Copy> {
    set: BTreeSet<T>,
    order: VecDeque<T>,
}

impl<T: Ord + Copy> Default for RecentFrames<T> {
    fn default() -> Self {
        Self {
            set: BTreeSet::new(),
            order: VecDeque::new(),
        }
    }
}

impl<T: Ord + Copy> RecentFrames<T> {
    /// Far more than any reference distance, small enough that 15-bit picture ids do not
    /// wrap into it.
    const CAPACITY: usize = 1024;

    fn insert(&mut self, frame: T) {
        if self.set.insert(frame) {
            self.order.push_back(frame);
            if self.order.len() > Self::CAPACITY {
                let oldest = self.order.pop_front().unwrap();
                self.set.remove(&oldest);
            }
        }
    }

    fn contains(&self, frame: &T) -> bool {
        self.set.contains(frame)
    }

    fn clear(&mut self) {
        self.set.clear();
        self.order.clear();
    }
}

/// A parsed RTP packet's fields the checkers use.
#[derive(Debug, Clone)]
struct RtpView {
    ssrc: u32,
    sequence_number: u16,
    timestamp: u32,
    marker: bool,
    payload: Vec<u8>,
}

impl RtpView {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let packet = relais_rtp::rtp::RtpPacket::parse(bytes).ok()?;
        Some(Self {
            ssrc: packet.ssrc(),
            sequence_number: packet.sequence_number(),
            timestamp: packet.timestamp(),
            marker: packet.marker(),
            payload: packet.payload().to_vec(),
        })
    }
}

/// `a - b` for 15-bit picture ids, in `0..0x8000`.
fn picture_id_distance(a: u16, b: u16) -> u16 {
    a.wrapping_sub(b) & 0x7FFF
}

/// Whether timestamp `later` is before `earlier`, modulo 2^32.
fn timestamp_backwards(later: u32, earlier: u32) -> bool {
    (later.wrapping_sub(earlier) as i32) < 0
}
