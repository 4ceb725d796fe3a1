//! Just enough RTP/RTCP header parsing to key a packet: where encryption starts, SSRC and
//! sequence number. Bounds-checked, allocation-free, never panics.
//!
//! Deliberately independent of `relais-rtp`: SRTP needs only the length fields
//! (RFC 3550 §5.1, §5.3.1), not the extension elements, and the authenticated header is
//! what the sender put on the wire, however its extension block is laid out.
//!
//! This parse is also the only one an AES-CM packet gets: webrtc-srtp, which does that
//! profile's crypto, is handed a header built from it instead of parsing the packet with
//! `rtp::header::Header::unmarshal`, which panics on extension elements running past the
//! end of the packet and measures the header from the elements rather than the block
//! length (see `cm`).

use crate::error::{HeaderError, SrtpError};

/// Fixed RTP header length (RFC 3550 §5.1).
pub(crate) const RTP_FIXED_HEADER_LEN: usize = 12;
/// RTCP header plus sender SSRC: the part SRTCP leaves in the clear (RFC 3711 §3.4).
pub(crate) const RTCP_CLEAR_LEN: usize = 8;

/// What SRTP needs from an RTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RtpHeader {
    /// Header length including CSRCs and the extension block: encryption starts here.
    pub len: usize,
    pub seq: u16,
    pub ssrc: u32,
}

fn be_u16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(b.try_into().ok()?))
}

pub(crate) fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn version(first: u8) -> Result<(), SrtpError> {
    match first >> 6 {
        2 => Ok(()),
        v => Err(SrtpError::BadHeader(HeaderError::Version(v))),
    }
}

/// Parses the RTP header at the start of `buf` (which may be longer than the packet).
pub(crate) fn parse_rtp(buf: &[u8]) -> Result<RtpHeader, SrtpError> {
    let too_short = SrtpError::TooShort {
        len: buf.len(),
        min: RTP_FIXED_HEADER_LEN,
    };
    let (&first, _) = buf.split_first().ok_or(too_short)?;
    if buf.len() < RTP_FIXED_HEADER_LEN {
        return Err(too_short);
    }
    version(first)?;
    let seq = be_u16(buf, 2).ok_or(too_short)?;
    let ssrc = be_u32(buf, 8).ok_or(too_short)?;

    let csrc_count = usize::from(first & 0x0f);
    let mut len = RTP_FIXED_HEADER_LEN + 4 * csrc_count;
    if len > buf.len() {
        return Err(SrtpError::BadHeader(HeaderError::CsrcOverrun));
    }
    if first & 0x10 != 0 {
        // 16-bit profile, 16-bit length in 32-bit words, then the extension data.
        let words =
            be_u16(buf, len + 2).ok_or(SrtpError::BadHeader(HeaderError::ExtensionOverrun))?;
        len += 4 + 4 * usize::from(words);
        if len > buf.len() {
            return Err(SrtpError::BadHeader(HeaderError::ExtensionOverrun));
        }
    }
    Ok(RtpHeader { len, seq, ssrc })
}

/// Checks the RTCP header at the start of `buf` and returns the sender SSRC.
pub(crate) fn parse_rtcp(buf: &[u8]) -> Result<u32, SrtpError> {
    let too_short = SrtpError::TooShort {
        len: buf.len(),
        min: RTCP_CLEAR_LEN,
    };
    let (&first, _) = buf.split_first().ok_or(too_short)?;
    if buf.len() < RTCP_CLEAR_LEN {
        return Err(too_short);
    }
    version(first)?;
    be_u32(buf, 4).ok_or(too_short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_header() {
        let p = [
            0x80, 0x60, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 0xff,
        ];
        assert_eq!(
            parse_rtp(&p),
            Ok(RtpHeader {
                len: 12,
                seq: 0x1234,
                ssrc: 0xdeadbeef
            })
        );
    }

    #[test]
    fn csrcs_and_extension() {
        // CC = 2, X = 1, extension of 2 words.
        let mut p = vec![0x92, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
        p.extend_from_slice(&[0; 8]); // CSRCs
        p.extend_from_slice(&[0xbe, 0xde, 0, 2]);
        p.extend_from_slice(&[0x10, 0xaa, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(b"payload");
        assert_eq!(parse_rtp(&p).unwrap().len, 12 + 8 + 4 + 8);
        // Cut inside the extension data.
        assert_eq!(
            parse_rtp(&p[..30]),
            Err(SrtpError::BadHeader(HeaderError::ExtensionOverrun))
        );
        // Cut inside the extension header.
        assert_eq!(
            parse_rtp(&p[..22]),
            Err(SrtpError::BadHeader(HeaderError::ExtensionOverrun))
        );
        // Cut inside the CSRCs.
        assert_eq!(
            parse_rtp(&p[..16]),
            Err(SrtpError::BadHeader(HeaderError::CsrcOverrun))
        );
    }

    #[test]
    fn bad_version_and_short() {
        assert_eq!(
            parse_rtp(&[0x40; 12]),
            Err(SrtpError::BadHeader(HeaderError::Version(1)))
        );
        assert_eq!(parse_rtp(&[]), Err(SrtpError::TooShort { len: 0, min: 12 }));
        assert_eq!(
            parse_rtp(&[0x80; 11]),
            Err(SrtpError::TooShort { len: 11, min: 12 })
        );
        assert_eq!(
            parse_rtcp(&[0x80; 7]),
            Err(SrtpError::TooShort { len: 7, min: 8 })
        );
        assert_eq!(
            parse_rtcp(&[0x00; 8]),
            Err(SrtpError::BadHeader(HeaderError::Version(0)))
        );
        assert_eq!(parse_rtcp(&[0x80, 200, 0, 6, 1, 2, 3, 4]), Ok(0x01020304));
    }
}
