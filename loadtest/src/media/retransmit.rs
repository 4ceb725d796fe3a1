//! [`RetransmitBuffer`] and [`RtxStream`]: answering NACKs as a browser does, with RFC 4588
//! retransmissions on a separate SSRC.
//!
//! The buffer keeps [`MediaPacket`]s, not serialised bytes: they are `Copy`, a few dozen
//! bytes each and rebuild the exact same payload, so a second of video history per stream
//! costs tens of kilobytes and storing a packet allocates nothing. Send-time extensions
//! (transport-wide sequence number, abs-capture-time) are fresh on a retransmission anyway.

use std::time::Duration;

use super::packet::MediaPacket;
use super::MediaError;

/// The last packets sent on one SSRC, by sequence number.
#[derive(Debug, Clone)]
pub struct RetransmitBuffer {
    /// Slot `seq & mask` holds the latest packet with that sequence number's low bits.
    slots: Vec<Option<MediaPacket>>,
    mask: usize,
    max_age: Duration,
}

impl RetransmitBuffer {
    /// A buffer of `capacity` packets (rounded up to a power of two, within 1..=65536)
    /// that also forgets packets captured more than `max_age` ago: a retransmission that
    /// late would arrive after the receiver gave up on the frame.
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        let capacity = capacity.clamp(1, 1 << 16).next_power_of_two();
        Self {
            slots: vec![None; capacity],
            mask: capacity - 1,
            max_age,
        }
    }

    /// How many packets it holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Remembers a sent packet, replacing the one `capacity` sequence numbers before it.
    pub fn insert(&mut self, packet: MediaPacket) {
        if let Some(slot) = self
            .slots
            .get_mut(usize::from(packet.sequence_number) & self.mask)
        {
            *slot = Some(packet);
        }
    }

    /// The packet with `sequence_number`, if still held and not older than the age limit
    /// at `now`.
    pub fn get(&self, sequence_number: u16, now: Duration) -> Option<&MediaPacket> {
        self.slots
            .get(usize::from(sequence_number) & self.mask)?
            .as_ref()
            .filter(|p| p.sequence_number == sequence_number)
            .filter(|p| now.saturating_sub(p.capture_time) <= self.max_age)
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.slots.fill(None);
    }
}

/// The RTX stream (RFC 4588) that repairs one media stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtxStream {
    ssrc: u32,
    payload_type: u8,
    next_sequence_number: u16,
}

impl RtxStream {
    /// An RTX stream with its own SSRC, the negotiated RTX payload type (`a=fmtp:<pt>
    /// apt=<media pt>`) and a first sequence number.
    pub fn new(ssrc: u32, payload_type: u8, first_sequence_number: u16) -> Self {
        Self {
            ssrc,
            payload_type,
            next_sequence_number: first_sequence_number,
        }
    }

    /// The RTX SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The RTX payload type.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// The retransmission of `original`: RTX SSRC, payload type and next sequence number,
    /// the original timestamp and marker, and the original sequence number (big-endian)
    /// before the original payload.
    pub fn wrap(&mut self, original: &MediaPacket) -> Result<MediaPacket, MediaError> {
        let payload = original
            .payload
            .prepended(&original.sequence_number.to_be_bytes())?;
        let sequence_number = self.next_sequence_number;
        self.next_sequence_number = sequence_number.wrapping_add(1);
        Ok(MediaPacket {
            ssrc: self.ssrc,
            payload_type: self.payload_type,
            sequence_number,
            payload,
            original_sequence_number: Some(original.sequence_number),
            ..*original
        })
    }

    /// Answers a NACK for `sequence_number` from `buffer`: the RTX packet, or `None` when
    /// the packet is gone (the receiver will then ask for a keyframe).
    pub fn answer_nack(
        &mut self,
        buffer: &RetransmitBuffer,
        sequence_number: u16,
        now: Duration,
    ) -> Option<MediaPacket> {
        let original = buffer.get(sequence_number, now)?;
        self.wrap(original).ok()
    }
}
