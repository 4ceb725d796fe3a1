//! Typed RTCP through the webrtc-rs `rtcp` crate, behind this module's validation.
//!
//! The crate is fed one packet at a time, only after [`RtcpPacketView`] accepted it and the
//! per-type guards below passed. Types the SFU does not act on (APP, XR, SLI, RRR, unknown
//! feedback) are kept as raw bytes in [`RtcpPacket::Other`] rather than handed to the crate.

use std::borrow::Cow;

use ::rtcp::packet::Packet;
use bytes::Bytes;

use super::packets::{
    FullIntraRequest, Goodbye, PictureLossIndication, ReceiverEstimatedMaximumBitrate,
    ReceiverReport, SenderReport, SourceDescription, TransportLayerCc, TransportLayerNack,
};
use super::view::{RtcpCompound, RtcpPacketView};
use super::{RtcpError, RtcpKind};

/// Largest packet typed parsing and building accept: a length field below 16384 keeps the
/// crate's 16-bit `4 * length` arithmetic (NACK, FIR, SLI) from overflowing, and no UDP
/// datagram carries more anyway.
const MAX_TYPED_LEN: usize = 65536;

/// Fixed part of a TWCC payload: sender SSRC, media SSRC, base sequence number, packet status
/// count, reference time and feedback packet count.
const TWCC_FIXED_LEN: usize = 16;

/// Largest TWCC packet status count the crate's parser survives: it adds up to 14 to a
/// `u16` counter that is below the status count, which overflows (and panics in builds with
/// overflow checks) above 65535 - 14.
const TWCC_MAX_STATUS_COUNT: u16 = u16::MAX - 14;

/// One RTCP packet, typed where relais acts on it.
#[derive(Debug, Clone, PartialEq)]
pub enum RtcpPacket {
    /// SR.
    SenderReport(SenderReport),
    /// RR.
    ReceiverReport(ReceiverReport),
    /// SDES.
    SourceDescription(SourceDescription),
    /// BYE.
    Goodbye(Goodbye),
    /// Generic NACK.
    Nack(TransportLayerNack),
    /// Picture Loss Indication.
    Pli(PictureLossIndication),
    /// Full Intra Request.
    Fir(FullIntraRequest),
    /// Receiver Estimated Maximum Bitrate.
    Remb(ReceiverEstimatedMaximumBitrate),
    /// Transport-wide congestion control feedback.
    TransportCc(TransportLayerCc),
    /// Any other packet, as its raw bytes (header and padding included).
    Other {
        /// What the packet is.
        kind: RtcpKind,
        /// The whole packet.
        bytes: Bytes,
    },
}

impl RtcpPacket {
    /// Decode one validated packet.
    ///
    /// Guards applied before the `rtcp` crate sees the bytes, each for an input that makes
    /// rtcp 0.17.2 panic or misbehave:
    /// - feedback shorter than 12 bytes (the view's check): NACK and FIR read the media SSRC
    ///   after checking for only 8 bytes;
    /// - FIR whose FCI is not a whole number of 8-byte entries: the entry loop reads past the
    ///   end;
    /// - REMB whose Num SSRC disagrees with the payload: the SSRC loop reads past the end;
    /// - TWCC with a packet status count above 65521 (a `u16` overflow in the chunk loop), or
    ///   whose chunks and deltas do not fit (the crate would allocate one delta per announced
    ///   packet, up to 65535, before noticing);
    /// - packets above 64 KiB (16-bit overflow of `4 * length`);
    /// - padding: the crate does not strip it (NACK reads it as FCI entries, SR/RR put it in
    ///   the profile extensions), so it is removed here, except for TWCC, whose parser skips
    ///   trailing bytes and whose padding is legitimately not a multiple of four.
    pub fn parse(view: &RtcpPacketView<'_>) -> Result<Self, RtcpError> {
        let kind = view.kind();
        if view.byte_len() > MAX_TYPED_LEN {
            return Err(RtcpError::PacketTooLarge {
                len: view.byte_len(),
            });
        }
        let packet = match kind {
            RtcpKind::SenderReport => RtcpPacket::SenderReport(decode(kind, &unpadded(view)?)?),
            RtcpKind::ReceiverReport => RtcpPacket::ReceiverReport(decode(kind, &unpadded(view)?)?),
            RtcpKind::SourceDescription => {
                RtcpPacket::SourceDescription(decode(kind, &unpadded(view)?)?)
            }
            RtcpKind::Goodbye => RtcpPacket::Goodbye(decode(kind, &unpadded(view)?)?),
            RtcpKind::Nack => RtcpPacket::Nack(decode(kind, &unpadded(view)?)?),
            RtcpKind::Pli => RtcpPacket::Pli(decode(kind, &unpadded(view)?)?),
            RtcpKind::Fir => {
                let fci_len = view.payload().len().saturating_sub(8);
                if fci_len % 8 != 0 {
                    return Err(RtcpError::FirMisaligned {
                        len: view.payload().len(),
                    });
                }
                RtcpPacket::Fir(decode(kind, &unpadded(view)?)?)
            }
            RtcpKind::Remb => {
                check_remb(view.payload())?;
                RtcpPacket::Remb(decode(kind, &unpadded(view)?)?)
            }
            RtcpKind::TransportCc => {
                check_twcc(view)?;
                RtcpPacket::TransportCc(decode(kind, view.bytes())?)
            }
            _ => RtcpPacket::Other {
                kind,
                bytes: Bytes::copy_from_slice(view.bytes()),
            },
        };
        Ok(packet)
    }

    /// What the packet is.
    pub fn kind(&self) -> RtcpKind {
        match self {
            RtcpPacket::SenderReport(_) => RtcpKind::SenderReport,
            RtcpPacket::ReceiverReport(_) => RtcpKind::ReceiverReport,
            RtcpPacket::SourceDescription(_) => RtcpKind::SourceDescription,
            RtcpPacket::Goodbye(_) => RtcpKind::Goodbye,
            RtcpPacket::Nack(_) => RtcpKind::Nack,
            RtcpPacket::Pli(_) => RtcpKind::Pli,
            RtcpPacket::Fir(_) => RtcpKind::Fir,
            RtcpPacket::Remb(_) => RtcpKind::Remb,
            RtcpPacket::TransportCc(_) => RtcpKind::TransportCc,
            RtcpPacket::Other { kind, .. } => *kind,
        }
    }

    /// Encoded length in bytes.
    pub fn marshal_size(&self) -> usize {
        match self {
            RtcpPacket::SenderReport(p) => size_of(p),
            RtcpPacket::ReceiverReport(p) => size_of(p),
            RtcpPacket::SourceDescription(p) => size_of(p),
            RtcpPacket::Goodbye(p) => size_of(p),
            RtcpPacket::Nack(p) => size_of(p),
            RtcpPacket::Pli(p) => size_of(p),
            RtcpPacket::Fir(p) => size_of(p),
            RtcpPacket::Remb(p) => size_of(p),
            RtcpPacket::TransportCc(p) => size_of(p),
            RtcpPacket::Other { bytes, .. } => bytes.len(),
        }
    }

    /// Encode into the start of `buf`; returns the bytes written.
    pub fn marshal_to(&self, buf: &mut [u8]) -> Result<usize, RtcpError> {
        let kind = self.kind();
        match self {
            RtcpPacket::SenderReport(p) => encode(kind, p, buf),
            RtcpPacket::ReceiverReport(p) => encode(kind, p, buf),
            RtcpPacket::SourceDescription(p) => encode(kind, p, buf),
            RtcpPacket::Goodbye(p) => encode(kind, p, buf),
            RtcpPacket::Nack(p) => encode(kind, p, buf),
            RtcpPacket::Pli(p) => encode(kind, p, buf),
            RtcpPacket::Fir(p) => encode(kind, p, buf),
            RtcpPacket::Remb(p) => {
                // The crate writes the count as `len() as u8`, silently wrapping.
                if p.ssrcs.len() > usize::from(u8::MAX) {
                    return Err(RtcpError::TooManyItems {
                        kind,
                        count: p.ssrcs.len(),
                        max: usize::from(u8::MAX),
                    });
                }
                encode(kind, p, buf)
            }
            RtcpPacket::TransportCc(p) => encode(kind, p, buf),
            RtcpPacket::Other { bytes, .. } => {
                // Raw bytes go out only if they are exactly one well-formed packet.
                RtcpPacketView::parse(bytes)?;
                let available = buf.len();
                let out = buf
                    .get_mut(..bytes.len())
                    .ok_or(RtcpError::BufferTooSmall {
                        needed: bytes.len(),
                        available,
                    })?;
                out.copy_from_slice(bytes);
                Ok(bytes.len())
            }
        }
    }

    /// Encode into a new buffer.
    pub fn to_bytes(&self) -> Result<Bytes, RtcpError> {
        let mut out = vec![0; self.marshal_size()];
        let len = self.marshal_to(&mut out)?;
        out.truncate(len);
        Ok(out.into())
    }
}

/// `From` for every typed variant, so builders' results convert with `.into()`.
macro_rules! impl_from_packet {
    ($($variant:ident($packet:ty)),* $(,)?) => {
        $(
            impl From<$packet> for RtcpPacket {
                fn from(packet: $packet) -> Self {
                    RtcpPacket::$variant(packet)
                }
            }
        )*
    };
}

impl_from_packet!(
    SenderReport(SenderReport),
    ReceiverReport(ReceiverReport),
    SourceDescription(SourceDescription),
    Goodbye(Goodbye),
    Nack(TransportLayerNack),
    Pli(PictureLossIndication),
    Fir(FullIntraRequest),
    Remb(ReceiverEstimatedMaximumBitrate),
    TransportCc(TransportLayerCc),
);

/// Parse every packet of a compound into typed packets; fails on the first bad packet.
///
/// To keep the good packets of a compound with a bad one, iterate [`RtcpCompound`] and call
/// [`RtcpPacket::parse`] per packet instead.
pub fn parse_typed(compound: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    RtcpCompound::new(compound)
        .map(|view| view.and_then(|view| RtcpPacket::parse(&view)))
        .collect()
}

/// Encode `packets` back to back into `buf` (a compound packet); returns the bytes written.
pub fn marshal_compound(packets: &[RtcpPacket], buf: &mut [u8]) -> Result<usize, RtcpError> {
    let mut written = 0;
    for packet in packets {
        let available = buf.len();
        let out = buf.get_mut(written..).ok_or(RtcpError::BufferTooSmall {
            needed: written + packet.marshal_size(),
            available,
        })?;
        written += packet.marshal_to(out).map_err(|error| match error {
            RtcpError::BufferTooSmall { needed, .. } => RtcpError::BufferTooSmall {
                needed: written + needed,
                available,
            },
            other => other,
        })?;
    }
    Ok(written)
}

/// The packet's bytes with padding removed (padding bit cleared, length field reduced).
/// Borrowed when there is no padding; padding that is not whole words cannot be expressed in
/// the length field and is rejected.
fn unpadded<'a>(view: &RtcpPacketView<'a>) -> Result<Cow<'a, [u8]>, RtcpError> {
    let padding = view.padding_len();
    if padding == 0 {
        return Ok(Cow::Borrowed(view.bytes()));
    }
    let bad_padding = RtcpError::BadPadding {
        padding: u8::try_from(padding).unwrap_or(u8::MAX),
        len: view.byte_len(),
    };
    if padding % 4 != 0 {
        return Err(bad_padding);
    }
    let payload = view.payload();
    let length_words = u16::try_from(payload.len() / 4).map_err(|_| bad_padding)?;
    let [l0, l1] = length_words.to_be_bytes();
    let mut bytes = Vec::with_capacity(4 + payload.len());
    bytes.extend_from_slice(&[
        view.version() << 6 | view.count(),
        view.packet_type(),
        l0,
        l1,
    ]);
    bytes.extend_from_slice(payload);
    Ok(Cow::Owned(bytes))
}

/// REMB: "REMB", Num SSRC, exponent and mantissa after the two SSRCs, then exactly Num SSRC
/// SSRCs.
fn check_remb(payload: &[u8]) -> Result<(), RtcpError> {
    const FIXED: usize = 16;
    let declared = *payload.get(12).ok_or(RtcpError::TooShortForType {
        kind: RtcpKind::Remb,
        len: payload.len(),
        min: FIXED,
    })?;
    if payload.len() != FIXED + 4 * usize::from(declared) {
        return Err(RtcpError::RembSsrcCountMismatch {
            declared,
            len: payload.len(),
        });
    }
    Ok(())
}

/// Walk TWCC's status chunks the way the crate will and check that the count cannot overflow
/// its counter and that chunks and receive deltas fit in the packet.
fn check_twcc(view: &RtcpPacketView<'_>) -> Result<(), RtcpError> {
    let payload = view.payload();
    let fixed = payload
        .first_chunk::<TWCC_FIXED_LEN>()
        .ok_or(RtcpError::TooShortForType {
            kind: RtcpKind::TransportCc,
            len: payload.len(),
            min: TWCC_FIXED_LEN,
        })?;
    let [_, _, _, _, _, _, _, _, _, _, c0, c1, _, _, _, _] = *fixed;
    let status_count = u16::from_be_bytes([c0, c1]);
    if status_count > TWCC_MAX_STATUS_COUNT {
        return Err(RtcpError::TwccStatusCountTooLarge {
            count: status_count,
        });
    }
    // Positions are in packet bytes, header included, as in the crate.
    let available = view.byte_len();
    let mut position = 4 + TWCC_FIXED_LEN;
    let mut processed = 0u32;
    let mut delta_bytes = 0usize;
    while processed < u32::from(status_count) {
        let chunk = view.bytes().get(position..position + 2);
        let Some(&[b0, b1]) = chunk else {
            return Err(RtcpError::TwccTruncated {
                needed: position + 2,
                available,
            });
        };
        let chunk = u16::from_be_bytes([b0, b1]);
        if chunk & 0x8000 == 0 {
            // Run length chunk: symbol in bits 14..13, run length in the low 13 bits.
            let symbol = (chunk >> 13) & 0b11;
            let run = u32::from(chunk & 0x1FFF).min(u32::from(status_count) - processed);
            delta_bytes += delta_size(symbol) * run as usize;
            processed += run;
        } else if chunk & 0x4000 == 0 {
            // One-bit status vector: 14 symbols, 1 = received with a small delta.
            delta_bytes += (chunk & 0x3FFF).count_ones() as usize;
            processed += 14;
        } else {
            // Two-bit status vector: 7 symbols.
            delta_bytes += (0..7)
                .map(|i| delta_size((chunk >> (12 - 2 * i)) & 0b11))
                .sum::<usize>();
            processed += 7;
        }
        position += 2;
    }
    let needed = position + delta_bytes;
    if needed > available {
        return Err(RtcpError::TwccTruncated { needed, available });
    }
    Ok(())
}

/// Bytes of receive delta a TWCC status symbol carries.
#[inline]
fn delta_size(symbol: u16) -> usize {
    match symbol {
        1 => 1,
        2 => 2,
        _ => 0,
    }
}

fn decode<T: Packet>(kind: RtcpKind, mut bytes: &[u8]) -> Result<T, RtcpError> {
    T::unmarshal(&mut bytes).map_err(|source| RtcpError::Decode {
        kind,
        source: source.into(),
    })
}

fn size_of<T: Packet>(packet: &T) -> usize {
    packet.marshal_size()
}

fn encode<T: Packet>(kind: RtcpKind, packet: &T, buf: &mut [u8]) -> Result<usize, RtcpError> {
    let needed = packet.marshal_size();
    if needed > MAX_TYPED_LEN {
        return Err(RtcpError::PacketTooLarge { len: needed });
    }
    let available = buf.len();
    let out = buf
        .get_mut(..needed)
        .ok_or(RtcpError::BufferTooSmall { needed, available })?;
    packet.marshal_to(out).map_err(|source| RtcpError::Encode {
        kind,
        source: source.into(),
    })
}
