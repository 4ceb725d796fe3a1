//! H.264 RTP payload structure (RFC 6184) in non-interleaved mode, the only mode WebRTC
//! uses (`packetization-mode` 0 or 1): single NAL unit packets (types 1..=23), STAP-A (24)
//! and FU-A (28). STAP-B, MTAPs and FU-B belong to the interleaved mode and are refused.
//!
//! An SFU needs to know whether a packet starts a key frame (to switch simulcast layers on)
//! and whether it carries parameter sets; it never rewrites H.264 payloads. Key frame here
//! means the packet carries an IDR slice or an SPS (for FU-A: the start fragment of one),
//! which is what libwebrtc-based SFUs switch on: Chrome sends SPS and PPS right before
//! each IDR, in the same STAP-A or in their own packets.

use thiserror::Error;

/// NAL unit type of a coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// Payload type of a single-time aggregation packet.
pub const NAL_STAP_A: u8 = 24;
/// Payload type of a fragmentation unit (non-interleaved).
pub const NAL_FU_A: u8 = 28;

/// Why a payload is not a valid non-interleaved H.264 RTP payload.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum H264Error {
    /// The payload ends inside a header or an aggregated NAL unit.
    #[error("H.264 payload truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the structure announces.
        needed: usize,
        /// Bytes in the payload.
        available: usize,
    },
    /// A payload type outside non-interleaved mode (0, 25..=27, 29..=31).
    #[error("H.264 NAL unit type {0} not supported in non-interleaved mode")]
    UnsupportedNalType(u8),
    /// A STAP-A with no NAL unit, or an aggregated NAL unit of size 0.
    #[error("H.264 STAP-A with an empty NAL unit at offset {offset}")]
    EmptyNalUnit {
        /// Offset of the size field announcing 0 (or of the missing first unit).
        offset: usize,
    },
}

/// Which of the non-interleaved packet structures a payload uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum H264Packet {
    /// One whole NAL unit of this type (1..=23).
    Single {
        /// The NAL unit type.
        nal_type: u8,
    },
    /// Several whole NAL units (see [`stap_a_nal_units`]).
    StapA {
        /// How many NAL units it aggregates.
        nal_count: usize,
    },
    /// A fragment of one NAL unit.
    FuA {
        /// S: first fragment.
        start: bool,
        /// E: last fragment.
        end: bool,
        /// Type of the fragmented NAL unit.
        nal_type: u8,
    },
}

/// What an SFU needs from an H.264 RTP payload. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct H264Descriptor {
    /// The packet structure.
    pub packet: H264Packet,
    /// An SPS is in the packet (for FU-A: this is the start of one).
    pub has_sps: bool,
    /// A PPS is in the packet (for FU-A: this is the start of one).
    pub has_pps: bool,
    /// An IDR slice is in the packet (for FU-A: this is the start of one).
    pub has_idr: bool,
}

impl H264Descriptor {
    /// Whether the packet starts a key frame: it carries (the start of) an IDR slice or an
    /// SPS.
    #[inline]
    pub fn is_keyframe(&self) -> bool {
        self.has_idr || self.has_sps
    }
}

/// Iterator over the NAL units (header byte included) of a STAP-A payload. Stops at the
/// first malformed size; [`parse`] reports that as an error, so after a successful parse
/// it yields every unit.
#[derive(Debug, Clone)]
pub struct StapANalUnits<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for StapANalUnits<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let (size, rest) = self.rest.split_first_chunk::<2>()?;
        let (nal, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*size)))?;
        if nal.is_empty() {
            self.rest = &[];
            return None;
        }
        self.rest = rest;
        Some(nal)
    }
}

/// The NAL units aggregated in a STAP-A payload (the STAP-A header byte included in
/// `payload`). Empty for other structures.
#[inline]
pub fn stap_a_nal_units(payload: &[u8]) -> StapANalUnits<'_> {
    match payload.split_first() {
        Some((header, rest)) if header & 0x1F == NAL_STAP_A => StapANalUnits { rest },
        _ => StapANalUnits { rest: &[] },
    }
}

/// Parses an H.264 RTP payload, checking every STAP-A size against the payload.
pub fn parse(payload: &[u8]) -> Result<H264Descriptor, H264Error> {
    let available = payload.len();
    let Some((&header, rest)) = payload.split_first() else {
        return Err(H264Error::Truncated {
            needed: 1,
            available,
        });
    };
    let nal_type = header & 0x1F;
    let mut d = H264Descriptor {
        packet: H264Packet::Single { nal_type },
        has_sps: false,
        has_pps: false,
        has_idr: false,
    };
    let saw = |nal_type: u8, d: &mut H264Descriptor| match nal_type {
        NAL_SPS => d.has_sps = true,
        NAL_PPS => d.has_pps = true,
        NAL_IDR => d.has_idr = true,
        _ => {}
    };
    match nal_type {
        1..=23 => saw(nal_type, &mut d),
        NAL_STAP_A => {
            let mut offset = 1;
            let mut nal_count = 0;
            let mut rest = rest;
            while !rest.is_empty() {
                let Some((size, after_size)) = rest.split_first_chunk::<2>() else {
                    return Err(H264Error::Truncated {
                        needed: offset + 2,
                        available,
                    });
                };
                let size = usize::from(u16::from_be_bytes(*size));
                if size == 0 {
                    return Err(H264Error::EmptyNalUnit { offset });
                }
                let Some((nal, after_nal)) = after_size.split_at_checked(size) else {
                    return Err(H264Error::Truncated {
                        needed: offset + 2 + size,
                        available,
                    });
                };
                if let Some(nal_header) = nal.first() {
                    saw(nal_header & 0x1F, &mut d);
                }
                nal_count += 1;
                offset += 2 + size;
                rest = after_nal;
            }
            if nal_count == 0 {
                return Err(H264Error::EmptyNalUnit { offset });
            }
            d.packet = H264Packet::StapA { nal_count };
        }
        NAL_FU_A => {
            let Some(&fu_header) = rest.first() else {
                return Err(H264Error::Truncated {
                    needed: 2,
                    available,
                });
            };
            let start = fu_header & 0x80 != 0;
            let fragmented_type = fu_header & 0x1F;
            if start {
                saw(fragmented_type, &mut d);
            }
            d.packet = H264Packet::FuA {
                start,
                end: fu_header & 0x40 != 0,
                nal_type: fragmented_type,
            };
        }
        other => return Err(H264Error::UnsupportedNalType(other)),
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stap_a_with_parameter_sets() {
        let p = [
            0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE, 0x00, 0x03, 0x65, 0x88, 0x84,
        ];
        let d = parse(&p).unwrap();
        assert_eq!(d.packet, H264Packet::StapA { nal_count: 3 });
        assert!(d.has_sps && d.has_pps && d.has_idr && d.is_keyframe());
        let units: Vec<_> = stap_a_nal_units(&p).collect();
        assert_eq!(
            units,
            vec![&[0x67, 0x42][..], &[0x68, 0xCE], &[0x65, 0x88, 0x84]]
        );
    }

    #[test]
    fn malformed_stap_a() {
        assert_eq!(
            parse(&[0x78, 0x00, 0x05, 0x67]),
            Err(H264Error::Truncated {
                needed: 8,
                available: 4
            })
        );
        assert_eq!(
            parse(&[0x78, 0x00]),
            Err(H264Error::Truncated {
                needed: 3,
                available: 2
            })
        );
        assert_eq!(parse(&[0x78]), Err(H264Error::EmptyNalUnit { offset: 1 }));
        assert_eq!(
            parse(&[0x78, 0x00, 0x00]),
            Err(H264Error::EmptyNalUnit { offset: 1 })
        );
        assert_eq!(parse(&[0x79, 0x00]), Err(H264Error::UnsupportedNalType(25)));
    }
}
