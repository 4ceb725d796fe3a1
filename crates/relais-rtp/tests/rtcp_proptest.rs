//! Property tests for RTCP: hostile input never panics (neither this crate's views nor the
//! `rtcp` crate behind the typed layer), and built feedback parses back to what was built.

// Tests may unwrap (workspace policy); helpers outside #[test] fns need telling.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::Bytes;
use proptest::prelude::*;
use relais_rtp::rtcp::feedback::{self, twcc_run_length, twcc_status_vector};
use relais_rtp::rtcp::packets::{
    ReceiverReport, ReceptionReport, RecvDelta, SenderReport, SymbolTypeTcc, TransportLayerCc,
};
use relais_rtp::rtcp::{
    parse_typed, RtcpCompound, RtcpError, RtcpKind, RtcpPacket, RtcpPacketView,
};

/// Touch every getter of every view, parse each packet typed, and re-encode what parsed.
fn exercise(compound: &[u8]) {
    let _ = RtcpCompound::validate(compound);
    for view in RtcpCompound::new(compound) {
        let Ok(view) = view else { continue };
        let _ = (
            view.version(),
            view.has_padding(),
            view.padding_len(),
            view.fmt(),
            view.packet_type(),
            view.length_words(),
            view.payload(),
            view.sender_ssrc(),
            view.media_ssrc(),
            view.sender_info(),
        );
        for block in view.report_blocks() {
            let _ = (
                block.ssrc(),
                block.fraction_lost(),
                block.cumulative_lost(),
                block.extended_highest_sequence(),
                block.jitter(),
                block.last_sender_report(),
                block.delay_since_last_sender_report(),
            );
        }
        let _ = view.nack_pairs().sequence_numbers().count();
        if let Ok(packet) = RtcpPacket::parse(&view) {
            let _ = packet.kind();
            let _ = packet.to_bytes();
        }
    }
    let _ = parse_typed(compound);
}

/// One packet with a valid-looking header: version 2, any type near the RTCP range, any
/// count, a length matching the body, and optionally the padding bit.
fn plausible_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![190u8..=210, any::<u8>()],
        0u8..32,
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(packet_type, count, padding, mut body)| {
            body.truncate(body.len() / 4 * 4);
            let words = (body.len() / 4) as u16;
            let mut out = vec![0x80 | (u8::from(padding) << 5) | count, packet_type];
            out.extend_from_slice(&words.to_be_bytes());
            out.extend_from_slice(&body);
            out
        })
}

/// A feedback packet of a type the typed layer hands to the crate, with a random FCI whose
/// length and counts are often inconsistent.
fn plausible_feedback() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![(205u8, 1u8), (205, 15), (206, 1), (206, 4), (206, 15)]),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..48),
        any::<u16>(),
    )
        .prop_map(
            |((packet_type, fmt), sender, media, remb, mut fci, status_count)| {
                if packet_type == 206 && fmt == 15 && remb && fci.len() >= 4 {
                    fci[..4].copy_from_slice(b"REMB");
                }
                if packet_type == 205 && fmt == 15 && fci.len() >= 4 {
                    fci[2..4].copy_from_slice(&status_count.to_be_bytes());
                }
                fci.truncate(fci.len() / 4 * 4);
                let words = (2 + fci.len() / 4) as u16;
                let mut out = vec![0x80 | fmt, packet_type];
                out.extend_from_slice(&words.to_be_bytes());
                out.extend_from_slice(&sender.to_be_bytes());
                out.extend_from_slice(&media.to_be_bytes());
                out.extend_from_slice(&fci);
                out
            },
        )
}

fn reception_report() -> impl Strategy<Value = ReceptionReport> {
    (any::<[u32; 5]>(), any::<u8>(), 0u32..(1 << 24)).prop_map(
        |(
            [ssrc, last_sequence_number, jitter, last_sender_report, delay],
            fraction_lost,
            total_lost,
        )| {
            ReceptionReport {
                ssrc,
                fraction_lost,
                total_lost,
                last_sequence_number,
                jitter,
                last_sender_report,
                delay,
            }
        },
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    Lost,
    Small(u8),
    Large(i16),
}

fn arrival() -> impl Strategy<Value = Arrival> {
    prop_oneof![
        Just(Arrival::Lost),
        any::<u8>().prop_map(Arrival::Small),
        any::<i16>().prop_map(Arrival::Large),
    ]
}

fn symbol(arrival: Arrival) -> SymbolTypeTcc {
    match arrival {
        Arrival::Lost => SymbolTypeTcc::PacketNotReceived,
        Arrival::Small(_) => SymbolTypeTcc::PacketReceivedSmallDelta,
        Arrival::Large(_) => SymbolTypeTcc::PacketReceivedLargeDelta,
    }
}

/// A TWCC for `arrivals`: either runs of equal symbols as run length chunks, or status
/// vectors (one-bit for 14 lost/small arrivals, else two-bit for 7) with runs for the tail
/// (so the status count matches what a parser counts).
fn build_twcc(arrivals: &[Arrival], use_vectors: bool) -> TransportLayerCc {
    let mut packet_chunks = Vec::new();
    let mut i = 0;
    while i < arrivals.len() {
        let rest = &arrivals[i..];
        let one_bit = |a: &Arrival| matches!(a, Arrival::Lost | Arrival::Small(_));
        let vector = match rest.len() {
            n if use_vectors && n >= 14 && rest[..14].iter().all(one_bit) => 14,
            n if use_vectors && n >= 7 => 7,
            _ => 0,
        };
        if vector > 0 {
            let symbols: Vec<SymbolTypeTcc> = rest[..vector].iter().copied().map(symbol).collect();
            packet_chunks.push(twcc_status_vector(&symbols).unwrap());
            i += vector;
        } else {
            let s = symbol(rest[0]);
            let run = rest.iter().take_while(|a| symbol(**a) == s).count();
            packet_chunks.push(twcc_run_length(s, run as u16).unwrap());
            i += run;
        }
    }
    let recv_deltas = arrivals
        .iter()
        .filter_map(|a| match *a {
            Arrival::Lost => None,
            Arrival::Small(d) => Some(RecvDelta {
                type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                delta: i64::from(d) * 250,
            }),
            Arrival::Large(d) => Some(RecvDelta {
                type_tcc_packet: SymbolTypeTcc::PacketReceivedLargeDelta,
                delta: i64::from(d) * 250,
            }),
        })
        .collect();
    TransportLayerCc {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_sequence_number: 3,
        packet_status_count: arrivals.len() as u16,
        reference_time: 4,
        fb_pkt_count: 5,
        packet_chunks,
        recv_deltas,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        exercise(&bytes);
    }

    #[test]
    fn plausible_compounds_never_panic(packets in prop::collection::vec(plausible_packet(), 1..5)) {
        exercise(&packets.concat());
    }

    #[test]
    fn plausible_feedback_never_panics(packet in plausible_feedback()) {
        exercise(&packet);
    }

    #[test]
    fn mutated_valid_compounds_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut compound = valid_compound();
        for (index, xor) in flips {
            let i = index.index(compound.len());
            compound[i] ^= xor;
        }
        if truncate {
            compound.truncate(cut.index(compound.len() + 1));
        }
        exercise(&compound);
    }
}

proptest! {
    #[test]
    fn nack_covers_exactly_the_lost_sequence_numbers(
        start in any::<u16>(),
        gaps in prop::collection::vec(1u16..40, 1..60),
    ) {
        let mut lost = vec![start];
        for gap in gaps {
            let next = lost.last().unwrap().wrapping_add(gap);
            lost.push(next);
        }
        let packet = RtcpPacket::from(feedback::nack(7, 8, &lost).unwrap());
        let bytes = packet.to_bytes().unwrap();
        let view = RtcpPacketView::parse(&bytes).unwrap();
        let seqs: Vec<u16> = view.nack_pairs().sequence_numbers().collect();
        prop_assert_eq!(seqs, lost);
        prop_assert_eq!(RtcpPacket::parse(&view).unwrap(), packet);
    }

    #[test]
    fn reports_roundtrip(
        ssrc in any::<u32>(),
        ntp_time in any::<u64>(),
        rtp_time in any::<u32>(),
        reports in prop::collection::vec(reception_report(), 0..31),
        sender in any::<bool>(),
    ) {
        let packet: RtcpPacket = if sender {
            SenderReport {
                ssrc,
                ntp_time,
                rtp_time,
                packet_count: 1,
                octet_count: 2,
                reports: reports.clone(),
                profile_extensions: Bytes::new(),
            }
            .into()
        } else {
            ReceiverReport { ssrc, reports: reports.clone(), profile_extensions: Bytes::new() }
                .into()
        };
        let bytes = packet.to_bytes().unwrap();
        let view = RtcpPacketView::parse(&bytes).unwrap();
        prop_assert_eq!(view.sender_ssrc(), Some(ssrc));
        prop_assert_eq!(view.report_blocks().count(), reports.len());
        for (block, report) in view.report_blocks().zip(&reports) {
            prop_assert_eq!(block.ssrc(), report.ssrc);
            prop_assert_eq!(block.jitter(), report.jitter);
            prop_assert_eq!(block.cumulative_lost() & 0x00FF_FFFF, report.total_lost as i32);
        }
        if sender {
            let info = view.sender_info().unwrap();
            prop_assert_eq!((info.ntp_time, info.rtp_time), (ntp_time, rtp_time));
        }
        prop_assert_eq!(RtcpPacket::parse(&view).unwrap(), packet);
    }

    #[test]
    fn twcc_roundtrips(
        arrivals in prop::collection::vec(arrival(), 1..120),
        use_vectors in any::<bool>(),
    ) {
        // The base packet of real feedback is received; the crate also wants a byte after the
        // last chunk, which a delta provides.
        let mut arrivals = arrivals;
        arrivals[0] = Arrival::Small(1);
        let twcc = build_twcc(&arrivals, use_vectors);
        let packet = RtcpPacket::from(twcc);
        let bytes = packet.to_bytes().unwrap();
        let view = RtcpPacketView::parse(&bytes).unwrap();
        prop_assert_eq!(view.kind(), RtcpKind::TransportCc);
        prop_assert_eq!(RtcpPacket::parse(&view).unwrap(), packet);
    }

    #[test]
    fn fir_and_remb_roundtrip(
        entries in prop::collection::vec((any::<u32>(), any::<u8>()), 1..20),
        mantissa in 0u64..(1 << 18),
        exponent in 0u32..40,
        ssrcs in prop::collection::vec(any::<u32>(), 0..20),
    ) {
        let fir = RtcpPacket::from(feedback::fir(9, &entries).unwrap());
        let bytes = fir.to_bytes().unwrap();
        prop_assert_eq!(parse_typed(&bytes).unwrap(), vec![fir]);

        let bitrate = mantissa << exponent;
        let remb = RtcpPacket::from(feedback::remb(9, bitrate, &ssrcs).unwrap());
        let bytes = remb.to_bytes().unwrap();
        let parsed = parse_typed(&bytes).unwrap();
        let [RtcpPacket::Remb(parsed)] = &parsed[..] else { panic!("{parsed:?}") };
        prop_assert_eq!(parsed.bitrate, bitrate as f32);
        prop_assert_eq!(&parsed.ssrcs, &ssrcs);
    }
}

/// A compound of every typed kind, for mutation.
fn valid_compound() -> Vec<u8> {
    let packets: Vec<RtcpPacket> = vec![
        ReceiverReport {
            ssrc: 1,
            reports: vec![ReceptionReport::default()],
            ..Default::default()
        }
        .into(),
        feedback::nack(1, 2, &[5, 6, 9, 40]).unwrap().into(),
        feedback::pli(1, 2).into(),
        feedback::fir(1, &[(2, 3)]).unwrap().into(),
        feedback::remb(1, 300_000, &[2, 3]).unwrap().into(),
        build_twcc(
            &[
                Arrival::Small(3),
                Arrival::Lost,
                Arrival::Large(-7),
                Arrival::Small(9),
            ],
            false,
        )
        .into(),
    ];
    let mut buf = vec![0u8; 1500];
    let len = relais_rtp::rtcp::marshal_compound(&packets, &mut buf).unwrap();
    buf.truncate(len);
    buf
}

/// The crate inputs that panic rtcp 0.17.2 (found while writing the guards) are rejected with
/// typed errors instead.
#[test]
fn known_crate_panics_are_guarded() {
    type Case = (&'static [u8], fn(&RtcpError) -> bool);
    let cases: [Case; 5] = [
        // NACK of 8 bytes: the crate reads the media SSRC past the end.
        (&[0x81, 205, 0, 1, 1, 2, 3, 4], |e| {
            matches!(e, RtcpError::TooShortForType { .. })
        }),
        // FIR of 8 bytes.
        (&[0x84, 206, 0, 1, 1, 2, 3, 4], |e| {
            matches!(e, RtcpError::TooShortForType { .. })
        }),
        // FIR with a 4-byte FCI.
        (
            &[0x84, 206, 0, 3, 1, 2, 3, 4, 0, 0, 0, 0, 9, 9, 9, 9],
            |e| matches!(e, RtcpError::FirMisaligned { len: 12 }),
        ),
        // REMB announcing 5 SSRCs and carrying none.
        (
            &[
                0x8f, 206, 0, 4, 1, 2, 3, 4, 0, 0, 0, 0, b'R', b'E', b'M', b'B', 5, 0, 0, 1,
            ],
            |e| {
                matches!(
                    e,
                    RtcpError::RembSsrcCountMismatch {
                        declared: 5,
                        len: 16
                    }
                )
            },
        ),
        // TWCC with status count 65535: eight runs of 8191 then a vector overflow the
        // crate's u16 counter.
        (
            &[
                0x8f, 205, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0x1f, 0xff,
                0x1f, 0xff, 0x1f, 0xff, 0x1f, 0xff, 0x1f, 0xff, 0x1f, 0xff, 0x1f, 0xff, 0x1f, 0xff,
                0x80, 0x00, 0x00, 0x00,
            ],
            |e| matches!(e, RtcpError::TwccStatusCountTooLarge { count: 65535 }),
        ),
    ];
    for (bytes, expected) in cases {
        let error = parse_typed(bytes).unwrap_err();
        assert!(expected(&error), "{error:?}");
    }

    // A TWCC announcing 8191 received packets in one 2-byte chunk is rejected before the crate
    // allocates a delta for each.
    let twcc: &[u8] = &[
        0x8f, 205, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x1f, 0xff, 0, 0, 0, 0, 0x3f, 0xff, 0, 0,
    ];
    assert!(matches!(
        parse_typed(twcc).unwrap_err(),
        RtcpError::TwccTruncated {
            needed: 8213,
            available: 24
        }
    ));
}

#[test]
fn header_errors_are_typed() {
    assert_eq!(
        RtcpCompound::validate(&[0x80, 201, 0]),
        Err(RtcpError::Truncated {
            needed: 4,
            available: 3
        })
    );
    assert_eq!(
        RtcpCompound::validate(&[0x40, 201, 0, 1, 0, 0, 0, 0]),
        Err(RtcpError::BadVersion { version: 1 })
    );
    assert_eq!(
        RtcpCompound::validate(&[0x80, 201, 0, 2, 0, 0, 0, 0]),
        Err(RtcpError::Truncated {
            needed: 12,
            available: 8
        })
    );
    assert_eq!(
        RtcpCompound::validate(&[0xA0, 201, 0, 1, 0, 0, 0, 0]),
        Err(RtcpError::BadPadding { padding: 0, len: 8 })
    );
    assert_eq!(
        RtcpCompound::validate(&[0xA0, 201, 0, 1, 0, 0, 0, 5]),
        Err(RtcpError::BadPadding { padding: 5, len: 8 })
    );
    assert_eq!(
        RtcpCompound::validate(&[0x81, 201, 0, 1, 0, 0, 0, 0]),
        Err(RtcpError::TooShortForType {
            kind: RtcpKind::ReceiverReport,
            len: 4,
            min: 28
        })
    );
    assert_eq!(
        RtcpCompound::validate(&[0x80, 200, 0, 1, 0, 0, 0, 0]),
        Err(RtcpError::TooShortForType {
            kind: RtcpKind::SenderReport,
            len: 4,
            min: 24
        })
    );
    // The error ends iteration; packets before it are still yielded.
    let compound = [
        &[0x80, 201, 0, 1, 0, 0, 0, 1][..],
        &[0x00, 201, 0, 1, 0, 0, 0, 1][..],
        &[0x80, 201, 0, 1, 0, 0, 0, 1][..],
    ]
    .concat();
    let results: Vec<_> = RtcpCompound::new(&compound).collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert_eq!(results[1], Err(RtcpError::BadVersion { version: 0 }));
    assert_eq!(RtcpCompound::validate(&[]), Ok(0));
    assert!(RtcpPacketView::parse(&compound).is_err());
}
