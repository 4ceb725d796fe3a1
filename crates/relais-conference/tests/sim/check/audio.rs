//! [`AudioChecker`]: speech and comfort-noise packets received per sender.

use std::collections::{BTreeMap, BTreeSet};

use relais_rtp::extensions::AudioLevel;
use relais_rtp::rtp::RtpPacket;

use super::super::media::{classify_opus_payload, AudioPacketKind, EXT_AUDIO_LEVEL};

/// What one sender's audio looked like at the receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioSenderStats {
    /// Speech packets received.
    pub speech: u64,
    /// Comfort-noise (DTX) packets received.
    pub silence: u64,
    /// SSRCs the sender's packets arrived on.
    pub ssrcs: BTreeSet<u32>,
    /// The audio level of the last packet that had one.
    pub last_level: Option<AudioLevel>,
    /// Packets whose audio level V bit disagreed with their payload (speech without V,
    /// comfort noise with V).
    pub level_mismatches: u64,
}

/// Counts the audio a receiver gets, per sender, from the payload marker of
/// [`OpusSource`](super::super::media::OpusSource) packets.
#[derive(Debug, Clone)]
pub struct AudioChecker {
    senders: BTreeMap<u8, AudioSenderStats>,
    unrecognised: u64,
    audio_level_id: u8,
}

impl Default for AudioChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioChecker {
    /// A checker reading the audio level from extension id 1.
    pub fn new() -> Self {
        Self::with_audio_level_id(EXT_AUDIO_LEVEL)
    }

    /// A checker reading the audio level from extension `id` (the receiver's negotiated id).
    pub fn with_audio_level_id(id: u8) -> Self {
        Self {
            senders: BTreeMap::new(),
            unrecognised: 0,
            audio_level_id: id,
        }
    }

    /// Feeds one received packet (plaintext RTP, Opus payload).
    pub fn on_packet(&mut self, packet: &[u8]) {
        let Ok(packet) = RtpPacket::parse(packet) else {
            self.unrecognised += 1;
            return;
        };
        let (source, speech) = match classify_opus_payload(packet.payload()) {
            Some(AudioPacketKind::Speech { source, .. }) => (source, true),
            Some(AudioPacketKind::ComfortNoise { source }) => (source, false),
            None => {
                self.unrecognised += 1;
                return;
            }
        };
        let level = packet
            .extension(self.audio_level_id)
            .and_then(|value| AudioLevel::parse(value).ok());
        let sender = self.senders.entry(source).or_default();
        if speech {
            sender.speech += 1;
        } else {
            sender.silence += 1;
        }
        sender.ssrcs.insert(packet.ssrc());
        if let Some(level) = level {
            if level.voice_activity != speech {
                sender.level_mismatches += 1;
            }
            sender.last_level = Some(level);
        }
    }

    /// Speech packets received from `source`.
    pub fn speech_packets(&self, source: u8) -> u64 {
        self.senders.get(&source).map_or(0, |s| s.speech)
    }

    /// Comfort-noise packets received from `source`.
    pub fn silence_packets(&self, source: u8) -> u64 {
        self.senders.get(&source).map_or(0, |s| s.silence)
    }

    /// What was received from `source`.
    pub fn sender(&self, source: u8) -> Option<&AudioSenderStats> {
        self.senders.get(&source)
    }

    /// The senders heard, in id order.
    pub fn senders(&self) -> Vec<u8> {
        self.senders.keys().copied().collect()
    }

    /// Packets that were not RTP or not from an `OpusSource`.
    pub fn unrecognised(&self) -> u64 {
        self.unrecognised
    }
}
