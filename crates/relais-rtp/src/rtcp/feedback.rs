//! Builders for the feedback relais sends: NACK, PLI, FIR, REMB and TWCC.
//!
//! They return the `rtcp` crate's packet types (convert them `into()` an
//! [`RtcpPacket`](super::RtcpPacket) to encode with
//! [`RtcpPacket::marshal_to`](super::RtcpPacket::marshal_to) or
//! [`marshal_compound`](super::marshal_compound)) and check the limits the crate's encoder
//! would otherwise violate or report late.

use super::packets::{
    FirEntry, FullIntraRequest, PacketStatusChunk, PictureLossIndication,
    ReceiverEstimatedMaximumBitrate, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk,
    SymbolSizeTypeTcc, SymbolTypeTcc, TransportLayerNack,
};
use super::{RtcpError, RtcpKind};

/// Most NACK pairs the `rtcp` crate's encoder accepts.
pub const MAX_NACK_PAIRS: usize = 253;

/// Most SSRCs a REMB carries (its Num SSRC field is one byte).
pub const MAX_REMB_SSRCS: usize = 255;

/// Most TWCC symbols in a run length chunk (13-bit run length).
pub const MAX_RUN_LENGTH: u16 = 0x1FFF;

/// A Generic NACK (RFC 4585 §6.2.1) from `sender_ssrc` for the `lost` sequence numbers of
/// `media_ssrc`, packed into (PID, BLP) pairs.
///
/// `lost` should be in RTP sequence order (wrapping at 65535 is fine); unordered input is
/// still covered, in more pairs.
pub fn nack(
    sender_ssrc: u32,
    media_ssrc: u32,
    lost: &[u16],
) -> Result<TransportLayerNack, RtcpError> {
    let kind = RtcpKind::Nack;
    if lost.is_empty() {
        return Err(RtcpError::NoItems { kind });
    }
    let nacks =
        ::rtcp::transport_feedbacks::transport_layer_nack::nack_pairs_from_sequence_numbers(lost);
    if nacks.len() > MAX_NACK_PAIRS {
        return Err(RtcpError::TooManyItems {
            kind,
            count: nacks.len(),
            max: MAX_NACK_PAIRS,
        });
    }
    Ok(TransportLayerNack {
        sender_ssrc,
        media_ssrc,
        nacks,
    })
}

/// A Picture Loss Indication (RFC 4585 §6.3.1) asking `media_ssrc` for a keyframe.
pub fn pli(sender_ssrc: u32, media_ssrc: u32) -> PictureLossIndication {
    PictureLossIndication {
        sender_ssrc,
        media_ssrc,
    }
}

/// A Full Intra Request (RFC 5104 §4.3.1) for each `(media_ssrc, command sequence number)`.
///
/// The sequence number must be incremented for each new request to the same SSRC and
/// repeated for retransmissions of one request; the caller keeps that state. The header's
/// media SSRC field is 0 as RFC 5104 requires.
pub fn fir(sender_ssrc: u32, requests: &[(u32, u8)]) -> Result<FullIntraRequest, RtcpError> {
    if requests.is_empty() {
        return Err(RtcpError::NoItems {
            kind: RtcpKind::Fir,
        });
    }
    Ok(FullIntraRequest {
        sender_ssrc,
        media_ssrc: 0,
        fir: requests
            .iter()
            .map(|&(ssrc, sequence_number)| FirEntry {
                ssrc,
                sequence_number,
            })
            .collect(),
    })
}

/// A REMB (draft-alvestrand-rmcat-remb) announcing `bitrate_bps` for the streams `ssrcs`.
///
/// The wire format keeps 18 significant bits, so the bitrate is rounded down to that
/// precision.
pub fn remb(
    sender_ssrc: u32,
    bitrate_bps: u64,
    ssrcs: &[u32],
) -> Result<ReceiverEstimatedMaximumBitrate, RtcpError> {
    if ssrcs.len() > MAX_REMB_SSRCS {
        return Err(RtcpError::TooManyItems {
            kind: RtcpKind::Remb,
            count: ssrcs.len(),
            max: MAX_REMB_SSRCS,
        });
    }
    Ok(ReceiverEstimatedMaximumBitrate {
        sender_ssrc,
        // f32 holds 24 significant bits, more than the 18 the encoding keeps.
        bitrate: bitrate_bps as f32,
        ssrcs: ssrcs.to_vec(),
    })
}

/// A TWCC run length chunk: `run_length` consecutive packets with the same `symbol`.
pub fn twcc_run_length(
    symbol: SymbolTypeTcc,
    run_length: u16,
) -> Result<PacketStatusChunk, RtcpError> {
    if run_length > MAX_RUN_LENGTH {
        return Err(RtcpError::TooManyItems {
            kind: RtcpKind::TransportCc,
            count: usize::from(run_length),
            max: usize::from(MAX_RUN_LENGTH),
        });
    }
    Ok(PacketStatusChunk::RunLengthChunk(RunLengthChunk {
        type_tcc: StatusChunkTypeTcc::RunLengthChunk,
        packet_status_symbol: symbol,
        run_length,
    }))
}

/// A TWCC status vector chunk.
///
/// Up to 7 symbols make a two-bit vector covering 7 packets; 8 to 14 symbols a one-bit vector
/// covering 14 packets, which can only say "not received" or "small delta". Short lists are
/// filled up with "not received", so the chunk equals what a parser returns for it and the
/// packet status count must include the fill.
pub fn twcc_status_vector(symbols: &[SymbolTypeTcc]) -> Result<PacketStatusChunk, RtcpError> {
    let (symbol_size, capacity) = if symbols.len() <= 7 {
        (SymbolSizeTypeTcc::TwoBit, 7)
    } else {
        (SymbolSizeTypeTcc::OneBit, 14)
    };
    let fits_one_bit = |s: &SymbolTypeTcc| {
        matches!(
            s,
            SymbolTypeTcc::PacketNotReceived | SymbolTypeTcc::PacketReceivedSmallDelta
        )
    };
    if symbol_size == SymbolSizeTypeTcc::OneBit && !symbols.iter().all(fits_one_bit) {
        return Err(RtcpError::TooManyItems {
            kind: RtcpKind::TransportCc,
            count: symbols.len(),
            max: 7,
        });
    }
    if symbols.len() > capacity {
        return Err(RtcpError::TooManyItems {
            kind: RtcpKind::TransportCc,
            count: symbols.len(),
            max: capacity,
        });
    }
    let mut symbol_list = symbols.to_vec();
    symbol_list.resize(capacity, SymbolTypeTcc::PacketNotReceived);
    Ok(PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
        type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
        symbol_size,
        symbol_list,
    }))
}
