//! Opus (RFC 7587 payload, RFC 6716 bitstream): the TOC byte and DTX detection.
//!
//! Opus needs no payload descriptor; an SFU only wants to know whether a packet carries
//! audio at all. With DTX (`usedtx=1`) libwebrtc's encoder stops sending during silence but
//! emits a packet of at most 2 bytes (a TOC byte and at most one more) when it enters DTX
//! and every 400 ms after; libwebrtc itself classifies encoder output of 2 bytes or fewer as
//! DTX (`opus_interface.cc`). [`is_dtx`] uses that rule, so silence suppression and
//! dominant-speaker code can skip those packets.

use thiserror::Error;

/// Why a payload has no valid Opus TOC (or frame count).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum OpusError {
    /// The payload is shorter than the TOC (and, for code 3, the frame count byte).
    #[error("Opus payload truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes in the payload.
        available: usize,
    },
    /// A code 3 packet announcing zero frames (RFC 6716 §3.2.5 forbids it).
    #[error("Opus code 3 packet with zero frames")]
    ZeroFrames,
}

/// Largest payload [`is_dtx`] treats as a DTX / comfort-noise packet.
pub const DTX_MAX_LEN: usize = 2;

/// Whether the payload is a DTX packet: 2 bytes or fewer, the rule libwebrtc applies. An
/// empty payload (not valid Opus) counts too: it carries no audio either.
#[inline]
pub fn is_dtx(payload: &[u8]) -> bool {
    payload.len() <= DTX_MAX_LEN
}

/// The coding mode a TOC configuration selects (RFC 6716 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpusMode {
    /// Configurations 0..=11: speech codec.
    Silk,
    /// Configurations 12..=15: SILK and CELT layered.
    Hybrid,
    /// Configurations 16..=31: music codec.
    Celt,
}

/// The audio bandwidth a TOC configuration selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpusBandwidth {
    /// 4 kHz, 8 kHz sampling.
    Narrowband,
    /// 6 kHz, 12 kHz sampling.
    Mediumband,
    /// 8 kHz, 16 kHz sampling.
    Wideband,
    /// 12 kHz, 24 kHz sampling.
    SuperWideband,
    /// 20 kHz, 48 kHz sampling.
    Fullband,
}

/// The table-of-contents byte that starts every Opus packet: `config(5) | s | c(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpusToc {
    /// Configuration number 0..=31: mode, bandwidth and frame duration.
    pub config: u8,
    /// s: stereo.
    pub stereo: bool,
    /// c: frame count code (0: one frame, 1: two equal, 2: two different, 3: arbitrary).
    pub frame_count_code: u8,
}

impl OpusToc {
    /// Reads the TOC byte.
    #[inline]
    pub fn parse(payload: &[u8]) -> Result<Self, OpusError> {
        let &toc = payload.first().ok_or(OpusError::Truncated {
            needed: 1,
            available: 0,
        })?;
        Ok(Self {
            config: toc >> 3,
            stereo: toc & 0x04 != 0,
            frame_count_code: toc & 0x03,
        })
    }

    /// The coding mode.
    #[inline]
    pub fn mode(&self) -> OpusMode {
        match self.config {
            0..=11 => OpusMode::Silk,
            12..=15 => OpusMode::Hybrid,
            _ => OpusMode::Celt,
        }
    }

    /// The audio bandwidth.
    #[inline]
    pub fn bandwidth(&self) -> OpusBandwidth {
        match self.config {
            0..=3 | 16..=19 => OpusBandwidth::Narrowband,
            4..=7 => OpusBandwidth::Mediumband,
            8..=11 | 20..=23 => OpusBandwidth::Wideband,
            12..=13 | 24..=27 => OpusBandwidth::SuperWideband,
            _ => OpusBandwidth::Fullband,
        }
    }

    /// Duration of one frame in microseconds (RFC 6716 Table 2).
    #[inline]
    pub fn frame_duration_us(&self) -> u32 {
        const SILK: [u32; 4] = [10_000, 20_000, 40_000, 60_000];
        const HYBRID: [u32; 2] = [10_000, 20_000];
        const CELT: [u32; 4] = [2_500, 5_000, 10_000, 20_000];
        let (table, index): (&[u32], u8) = match self.mode() {
            OpusMode::Silk => (&SILK, self.config % 4),
            OpusMode::Hybrid => (&HYBRID, self.config % 2),
            OpusMode::Celt => (&CELT, self.config % 4),
        };
        table.get(usize::from(index)).copied().unwrap_or(20_000)
    }
}

/// Number of frames in the packet: from the TOC for codes 0..=2, from the second byte for
/// code 3.
pub fn frame_count(payload: &[u8]) -> Result<u8, OpusError> {
    let toc = OpusToc::parse(payload)?;
    match toc.frame_count_code {
        0 => Ok(1),
        1 | 2 => Ok(2),
        _ => {
            let &count_byte = payload.get(1).ok_or(OpusError::Truncated {
                needed: 2,
                available: payload.len(),
            })?;
            match count_byte & 0x3F {
                0 => Err(OpusError::ZeroFrames),
                n => Ok(n),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toc_of_webrtc_default() {
        // Config 15: hybrid, fullband, 20 ms frames; stereo; code 1 (two equal frames).
        let toc = OpusToc::parse(&[15 << 3 | 0x04 | 0x01, 0, 0]).unwrap();
        assert_eq!(toc.config, 15);
        assert!(toc.stereo);
        assert_eq!(toc.mode(), OpusMode::Hybrid);
        assert_eq!(toc.bandwidth(), OpusBandwidth::Fullband);
        assert_eq!(toc.frame_duration_us(), 20_000);
        assert_eq!(
            OpusToc::parse(&[16 << 3]).unwrap().frame_duration_us(),
            2_500
        );
        assert_eq!(
            OpusToc::parse(&[11 << 3]).unwrap().frame_duration_us(),
            60_000
        );
        assert_eq!(frame_count(&[15 << 3 | 1]).unwrap(), 2);
        assert_eq!(frame_count(&[3, 0x05]).unwrap(), 5);
        assert_eq!(frame_count(&[3, 0x40]), Err(OpusError::ZeroFrames));
    }

    #[test]
    fn dtx_rule() {
        assert!(is_dtx(&[]));
        assert!(is_dtx(&[0xF8, 0xFF]));
        assert!(!is_dtx(&[0xF8, 0xFF, 0xFE]));
    }
}
