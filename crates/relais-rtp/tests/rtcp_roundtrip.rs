//! Packets built by the `rtcp` crate, marshalled into a compound, walked by the view and
//! parsed by the typed layer back to equal values.

// Tests may unwrap (workspace policy); helpers outside #[test] fns need telling.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::Bytes;
use relais_rtp::rtcp::feedback::{self, twcc_run_length, twcc_status_vector};
use relais_rtp::rtcp::packets::{
    Goodbye, ReceiverReport, ReceptionReport, RecvDelta, SdesType, SenderReport, SourceDescription,
    SourceDescriptionChunk, SourceDescriptionItem, SymbolTypeTcc, TransportLayerCc,
};
use relais_rtp::rtcp::{
    marshal_compound, packet_type, parse_typed, RtcpCompound, RtcpError, RtcpKind, RtcpPacket,
    RtcpPacketView, SenderInfo,
};

const SENDER: u32 = 0x1111_1111;
const MEDIA: u32 = 0x2222_2222;
const OTHER: u32 = 0x3333_3333;

fn report(ssrc: u32, lost: u32) -> ReceptionReport {
    ReceptionReport {
        ssrc,
        fraction_lost: 12,
        total_lost: lost,
        last_sequence_number: 0x0001_2345,
        jitter: 77,
        last_sender_report: 0xAABB_CCDD,
        delay: 65536,
    }
}

fn sender_report() -> SenderReport {
    SenderReport {
        ssrc: SENDER,
        ntp_time: 0xE8A1_0203_0405_0607,
        rtp_time: 0x1234_5678,
        packet_count: 1000,
        octet_count: 1_000_000,
        reports: vec![report(MEDIA, 5), report(OTHER, 0x00FF_FFFF)],
        profile_extensions: Bytes::new(),
    }
}

fn receiver_report() -> ReceiverReport {
    ReceiverReport {
        ssrc: SENDER,
        reports: vec![report(MEDIA, 1)],
        profile_extensions: Bytes::new(),
    }
}

fn sdes() -> SourceDescription {
    SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: SENDER,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: Bytes::from_static(b"{9c00eb92-1afb-9d49-a47d-91f64eee69f5}"),
            }],
        }],
    }
}

fn bye() -> Goodbye {
    Goodbye {
        sources: vec![SENDER, OTHER],
        reason: Bytes::from_static(b"leaving"),
    }
}

/// TWCC for 31 packets: a run of 3 small deltas, a two-bit vector, a one-bit vector, a run of
/// 5 losses and a run of 2 large deltas.
fn twcc() -> TransportLayerCc {
    use SymbolTypeTcc::{
        PacketNotReceived as Lost, PacketReceivedLargeDelta as Large,
        PacketReceivedSmallDelta as Small,
    };
    let one_bit = [
        Small, Lost, Small, Small, Lost, Lost, Lost, Small, Small, Small, Lost, Small, Lost, Small,
    ];
    let small = |ms4: i64| RecvDelta {
        type_tcc_packet: Small,
        delta: ms4 * 250,
    };
    let large = |ms4: i64| RecvDelta {
        type_tcc_packet: Large,
        delta: ms4 * 250,
    };
    let mut recv_deltas = vec![small(0), small(4), small(255)];
    recv_deltas.extend([small(1), large(-400), small(2), large(30000)]);
    recv_deltas.extend(one_bit.iter().filter(|s| **s == Small).map(|_| small(8)));
    recv_deltas.extend([large(-32768), large(32767)]);
    TransportLayerCc {
        sender_ssrc: SENDER,
        media_ssrc: MEDIA,
        base_sequence_number: 65530,
        packet_status_count: 3 + 7 + 14 + 5 + 2,
        reference_time: 0x00AB_CDEF,
        fb_pkt_count: 42,
        packet_chunks: vec![
            twcc_run_length(Small, 3).unwrap(),
            twcc_status_vector(&[Small, Large, Lost, Small, Lost, Lost, Large]).unwrap(),
            twcc_status_vector(&one_bit).unwrap(),
            twcc_run_length(Lost, 5).unwrap(),
            twcc_run_length(Large, 2).unwrap(),
        ],
        recv_deltas,
    }
}

const NACKED: [u16; 6] = [65534, 65535, 0, 3, 17, 18];

/// Every packet type relais types, in one compound.
fn packets() -> Vec<RtcpPacket> {
    vec![
        sender_report().into(),
        receiver_report().into(),
        sdes().into(),
        feedback::nack(SENDER, MEDIA, &NACKED).unwrap().into(),
        feedback::pli(SENDER, MEDIA).into(),
        feedback::fir(SENDER, &[(MEDIA, 7), (OTHER, 255)])
            .unwrap()
            .into(),
        feedback::remb(SENDER, 1_500_000, &[MEDIA, OTHER])
            .unwrap()
            .into(),
        twcc().into(),
        bye().into(),
    ]
}

/// The same packets marshalled by the crate itself.
fn crate_compound() -> Bytes {
    let boxed: Vec<Box<dyn rtcp::packet::Packet + Send + Sync>> = vec![
        Box::new(sender_report()),
        Box::new(receiver_report()),
        Box::new(sdes()),
        Box::new(feedback::nack(SENDER, MEDIA, &NACKED).unwrap()),
        Box::new(feedback::pli(SENDER, MEDIA)),
        Box::new(feedback::fir(SENDER, &[(MEDIA, 7), (OTHER, 255)]).unwrap()),
        Box::new(feedback::remb(SENDER, 1_500_000, &[MEDIA, OTHER]).unwrap()),
        Box::new(twcc()),
        Box::new(bye()),
    ];
    rtcp::packet::marshal(&boxed).unwrap()
}

#[test]
fn our_marshalling_matches_the_crates() {
    let mut buf = [0u8; 1500];
    let len = marshal_compound(&packets(), &mut buf).unwrap();
    assert_eq!(&buf[..len], &crate_compound()[..]);
}

#[test]
fn view_walks_the_compound() {
    let compound = crate_compound();
    let expected = packets();
    let views: Vec<RtcpPacketView<'_>> = RtcpCompound::new(&compound)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(RtcpCompound::validate(&compound), Ok(expected.len()));
    assert_eq!(views.len(), expected.len());
    for (view, packet) in views.iter().zip(&expected) {
        assert_eq!(view.kind(), packet.kind());
        assert_eq!(view.version(), 2);
        assert_eq!(view.byte_len(), packet.marshal_size());
        assert_eq!(usize::from(view.length_words()), view.byte_len() / 4 - 1);
        assert_eq!(view.sender_ssrc(), Some(SENDER), "{:?}", view.kind());
    }
    let kinds: Vec<RtcpKind> = views.iter().map(RtcpPacketView::kind).collect();
    assert_eq!(
        kinds,
        [
            RtcpKind::SenderReport,
            RtcpKind::ReceiverReport,
            RtcpKind::SourceDescription,
            RtcpKind::Nack,
            RtcpKind::Pli,
            RtcpKind::Fir,
            RtcpKind::Remb,
            RtcpKind::TransportCc,
            RtcpKind::Goodbye,
        ]
    );
    let types: Vec<u8> = views.iter().map(RtcpPacketView::packet_type).collect();
    assert_eq!(
        types,
        [
            packet_type::SENDER_REPORT,
            packet_type::RECEIVER_REPORT,
            packet_type::SOURCE_DESCRIPTION,
            packet_type::TRANSPORT_FEEDBACK,
            packet_type::PAYLOAD_FEEDBACK,
            packet_type::PAYLOAD_FEEDBACK,
            packet_type::PAYLOAD_FEEDBACK,
            packet_type::TRANSPORT_FEEDBACK,
            packet_type::GOODBYE,
        ]
    );

    let [sr, rr, sdes, nack, pli, fir, remb, twcc, bye] = views.try_into().unwrap();
    assert_eq!(
        sr.sender_info(),
        Some(SenderInfo {
            ntp_time: 0xE8A1_0203_0405_0607,
            rtp_time: 0x1234_5678,
            packet_count: 1000,
            octet_count: 1_000_000,
        })
    );
    assert_eq!(sr.sender_info().unwrap().compact_ntp(), 0x0203_0405);
    assert_eq!(sr.count(), 2);
    let blocks: Vec<_> = sr.report_blocks().collect();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].ssrc(), MEDIA);
    assert_eq!(blocks[0].fraction_lost(), 12);
    assert_eq!(blocks[0].cumulative_lost(), 5);
    assert_eq!(blocks[0].extended_highest_sequence(), 0x0001_2345);
    assert_eq!(blocks[0].jitter(), 77);
    assert_eq!(blocks[0].last_sender_report(), 0xAABB_CCDD);
    assert_eq!(blocks[0].delay_since_last_sender_report(), 65536);
    // 0xFFFFFF is -1 as a 24-bit signed count.
    assert_eq!(blocks[1].cumulative_lost(), -1);
    assert_eq!(rr.report_blocks().count(), 1);
    assert_eq!(rr.sender_info(), None);
    assert_eq!(sdes.media_ssrc(), None);

    assert_eq!(nack.fmt(), 1);
    assert_eq!(nack.media_ssrc(), Some(MEDIA));
    let seqs: Vec<u16> = nack.nack_pairs().sequence_numbers().collect();
    assert_eq!(seqs, NACKED);
    assert_eq!(pli.media_ssrc(), Some(MEDIA));
    assert_eq!(fir.media_ssrc(), Some(0));
    assert_eq!(remb.media_ssrc(), Some(0));
    assert_eq!(twcc.media_ssrc(), Some(MEDIA));
    assert_eq!(twcc.fmt(), 15);
    assert_eq!(bye.count(), 2);
    assert_eq!(sr.nack_pairs().count(), 0);
    assert_eq!(pli.report_blocks().count(), 0);
}

#[test]
fn typed_layer_parses_back_to_equal_values() {
    let compound = crate_compound();
    let parsed = parse_typed(&compound).unwrap();
    assert_eq!(parsed, packets());

    // And re-encodes to the same bytes.
    let mut buf = [0u8; 1500];
    let len = marshal_compound(&parsed, &mut buf).unwrap();
    assert_eq!(&buf[..len], &compound[..]);
}

#[test]
fn each_packet_alone_roundtrips() {
    for packet in packets() {
        let bytes = packet.to_bytes().unwrap();
        let view = RtcpPacketView::parse(&bytes).unwrap();
        assert_eq!(view.kind(), packet.kind());
        assert_eq!(RtcpPacket::parse(&view).unwrap(), packet);
    }
}

#[test]
fn remb_bitrate_survives_when_representable() {
    let bytes = RtcpPacket::from(feedback::remb(SENDER, 1_500_000, &[MEDIA]).unwrap())
        .to_bytes()
        .unwrap();
    let parsed = parse_typed(&bytes).unwrap();
    let [RtcpPacket::Remb(remb)] = &parsed[..] else {
        panic!("not a REMB: {parsed:?}");
    };
    assert_eq!(remb.bitrate, 1_500_000.0);
    assert_eq!(remb.ssrcs, [MEDIA]);
}

/// APP, XR, SLI and RRR are not typed: they come back as raw bytes, unchanged.
#[test]
fn untyped_packets_are_kept_raw() {
    let app: &[u8] = &[
        0x80, 204, 0, 3, 1, 1, 1, 1, b'r', b'l', b'a', b's', 9, 9, 9, 9,
    ];
    let xr: &[u8] = &[
        0x80, 207, 0, 4, 1, 1, 1, 1, 4, 0, 0, 2, 0xE8, 0, 0, 1, 0, 0, 0, 2,
    ];
    let sli: &[u8] = &[
        0x82, 206, 0, 3, 1, 1, 1, 1, 2, 2, 2, 2, 0x12, 0x34, 0x56, 0x78,
    ];
    let rrr: &[u8] = &[0x85, 205, 0, 2, 1, 1, 1, 1, 2, 2, 2, 2];
    let afb: &[u8] = &[
        0x8f, 206, 0, 4, 1, 1, 1, 1, 0, 0, 0, 0, b'N', b'O', b'P', b'E', 0, 0, 0, 0,
    ];
    let compound = [app, xr, sli, rrr, afb].concat();
    let parsed = parse_typed(&compound).unwrap();
    let kinds: Vec<RtcpKind> = parsed.iter().map(RtcpPacket::kind).collect();
    assert_eq!(
        kinds,
        [
            RtcpKind::ApplicationDefined,
            RtcpKind::ExtendedReport,
            RtcpKind::Sli,
            RtcpKind::RapidResync,
            RtcpKind::OtherPayloadFeedback(15),
        ]
    );
    let mut buf = [0u8; 256];
    let len = marshal_compound(&parsed, &mut buf).unwrap();
    assert_eq!(&buf[..len], &compound[..]);
    let views: Vec<_> = RtcpCompound::new(&compound).map(Result::unwrap).collect();
    assert_eq!(views[0].sender_ssrc(), Some(0x0101_0101));
    assert_eq!(views[2].media_ssrc(), Some(0x0202_0202));
}

#[test]
fn padding_is_stripped_before_the_crate() {
    // An RR with 4 bytes of padding: the crate alone would put them in profile_extensions.
    let mut bytes = RtcpPacket::from(receiver_report())
        .to_bytes()
        .unwrap()
        .to_vec();
    bytes[0] |= 0x20;
    let words = u16::from_be_bytes([bytes[2], bytes[3]]) + 1;
    bytes[2..4].copy_from_slice(&words.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 4]);
    let view = RtcpPacketView::parse(&bytes).unwrap();
    assert_eq!(view.padding_len(), 4);
    assert_eq!(
        RtcpPacket::parse(&view).unwrap(),
        RtcpPacket::ReceiverReport(receiver_report())
    );

    // A padded NACK: the crate alone would read the padding as another (PID, BLP) pair.
    let nack = feedback::nack(SENDER, MEDIA, &[10, 12]).unwrap();
    let mut bytes = RtcpPacket::from(nack.clone()).to_bytes().unwrap().to_vec();
    bytes[0] |= 0x20;
    let words = u16::from_be_bytes([bytes[2], bytes[3]]) + 1;
    bytes[2..4].copy_from_slice(&words.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 4]);
    let view = RtcpPacketView::parse(&bytes).unwrap();
    assert_eq!(view.nack_pairs().count(), 1);
    assert_eq!(RtcpPacket::parse(&view).unwrap(), RtcpPacket::Nack(nack));

    // Padding that is not whole words is only legitimate for TWCC.
    let mut bytes = RtcpPacket::from(feedback::pli(SENDER, MEDIA))
        .to_bytes()
        .unwrap()
        .to_vec();
    bytes[0] |= 0x20;
    bytes[3] += 1;
    bytes.extend_from_slice(&[0, 0, 0, 3]);
    let view = RtcpPacketView::parse(&bytes).unwrap();
    assert_eq!(view.payload().len(), 9);
    assert!(matches!(
        RtcpPacket::parse(&view),
        Err(RtcpError::BadPadding { .. })
    ));
}

#[test]
fn builders_check_limits() {
    assert_eq!(
        feedback::nack(SENDER, MEDIA, &[]).unwrap_err(),
        RtcpError::NoItems {
            kind: RtcpKind::Nack
        }
    );
    let scattered: Vec<u16> = (0..300).map(|i| i * 20).collect();
    assert!(matches!(
        feedback::nack(SENDER, MEDIA, &scattered),
        Err(RtcpError::TooManyItems { .. })
    ));
    assert!(matches!(
        feedback::remb(SENDER, 1, &[0; 256]),
        Err(RtcpError::TooManyItems { .. })
    ));
    assert!(matches!(
        feedback::fir(SENDER, &[]),
        Err(RtcpError::NoItems { .. })
    ));
    assert!(twcc_run_length(SymbolTypeTcc::PacketNotReceived, 0x2000).is_err());
    assert!(twcc_status_vector(&[SymbolTypeTcc::PacketReceivedLargeDelta; 8]).is_err());
    assert!(twcc_status_vector(&[SymbolTypeTcc::PacketReceivedSmallDelta; 15]).is_err());

    let mut small = [0u8; 8];
    assert!(matches!(
        RtcpPacket::from(feedback::pli(SENDER, MEDIA)).marshal_to(&mut small),
        Err(RtcpError::BufferTooSmall {
            needed: 12,
            available: 8
        })
    ));
    let mut buf = [0u8; 20];
    assert!(matches!(
        marshal_compound(
            &[feedback::pli(1, 2).into(), feedback::pli(3, 4).into()],
            &mut buf
        ),
        Err(RtcpError::BufferTooSmall {
            needed: 24,
            available: 20
        })
    ));
}
