//! The RTP view against the independent `rtp` crate: what it marshals we parse field for
//! field, and what we rewrite in place is byte-identical to what it marshals anew.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod rtp_common;

use bytes::Bytes;
use proptest::prelude::*;
use relais_rtp::extensions::{ExtensionKind, ExtensionMap, TransportSequenceNumber};
use relais_rtp::rtp::{header_len, ExtensionForm, RtpError, RtpPacket};
use rtp::header::{Extension, Header};
use rtp::packet::Packet;
use rtp_common::{assert_matches, config, marshal, packet};
use webrtc_util::marshal::{MarshalSize, Unmarshal};

fn ext(id: u8, payload: &[u8]) -> Extension {
    Extension {
        id,
        payload: Bytes::copy_from_slice(payload),
    }
}

fn sample(profile: u16, extensions: Vec<Extension>, padding: bool) -> Packet {
    Packet {
        header: Header {
            version: 2,
            padding,
            extension: true,
            marker: true,
            payload_type: 111,
            sequence_number: 0xFFFE,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x1234_5678,
            csrc: vec![1, 2, 0xFFFF_FFFF],
            extension_profile: profile,
            extensions,
            extensions_padding: 0,
        },
        payload: Bytes::from_static(b"\x01\x02\x03\x04\x05"),
    }
}

#[test]
fn one_byte_extensions_csrcs_padding_marker() {
    let p = sample(
        0xBEDE,
        vec![ext(1, &[0x7F]), ext(3, &[0, 1]), ext(14, &[9; 16])],
        true,
    );
    let bytes = marshal(&p);
    let view = RtpPacket::parse(&bytes[..]).unwrap();
    assert_matches(&view, &p);
    assert_eq!(view.extension_form(), Some(ExtensionForm::OneByte));
    assert_eq!(view.padding_len(), 3);
    assert_eq!(view.extension(3), Some(&[0, 1][..]));
}

#[test]
fn two_byte_extensions_with_empty_value_and_large_ids() {
    let p = sample(
        0x1000,
        vec![ext(200, &[1, 2, 3]), ext(1, &[]), ext(255, &[7; 40])],
        false,
    );
    let mut bytes = marshal(&p);
    let view = RtpPacket::parse(&bytes[..]).unwrap();
    assert_matches(&view, &p);
    assert_eq!(view.extension_form(), Some(ExtensionForm::TwoByte));
    // RFC 8285 appbits (low 4 bits of the profile) do not change the form.
    bytes[12 + 12 + 1] = 0x0F;
    let view = RtpPacket::parse(&bytes[..]).unwrap();
    assert_eq!(view.extension_profile(), Some(0x100F));
    assert_eq!(view.extension_form(), Some(ExtensionForm::TwoByte));
    assert_eq!(view.extension(1), Some(&[][..]));
    assert_eq!(view.padding_len(), 0);
}

#[test]
fn rfc3550_extension_is_opaque() {
    let mut p = sample(0x1234, vec![ext(0, &[1, 2, 3, 4, 5, 6, 7, 8])], false);
    p.header.csrc.clear();
    let bytes = marshal(&p);
    let view = RtpPacket::parse(&bytes[..]).unwrap();
    assert_eq!(view.extension_profile(), Some(0x1234));
    assert_eq!(view.extension_form(), None);
    assert_eq!(view.extension_data(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(view.extensions().count(), 0);
    assert_eq!(view.payload(), &p.payload[..]);
}

#[test]
fn structural_errors() {
    let p = sample(0xBEDE, vec![ext(1, &[1])], true);
    let bytes = marshal(&p);
    // Version 1.
    let mut v1 = bytes.clone();
    v1[0] = (v1[0] & 0x3F) | 0x40;
    assert_eq!(RtpPacket::parse(&v1[..]), Err(RtpError::BadVersion(1)));
    // Extension length far beyond the buffer.
    let mut long = bytes.clone();
    let at = 12 + 4 * 3 + 2;
    long[at..at + 2].copy_from_slice(&0xFFFFu16.to_be_bytes());
    assert_eq!(
        RtpPacket::parse(&long[..]),
        Err(RtpError::Truncated {
            needed: 12 + 12 + 4 + 4 * 0xFFFF,
            available: bytes.len()
        })
    );
    assert_eq!(
        header_len(&long),
        RtpPacket::parse(&long[..]).map(|p| p.header_len())
    );
    // Padding count larger than the payload.
    let mut pad = bytes.clone();
    *pad.last_mut().unwrap() = 200;
    assert!(matches!(
        RtpPacket::parse(&pad[..]),
        Err(RtpError::BadPadding {
            padding_len: 200,
            ..
        })
    ));
    // CSRC count beyond the buffer.
    assert_eq!(
        RtpPacket::parse(&[0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]),
        Err(RtpError::Truncated {
            needed: 72,
            available: 12
        })
    );
    assert_eq!(
        RtpPacket::parse(&[0x80; 11][..]),
        Err(RtpError::Truncated {
            needed: 12,
            available: 11
        })
    );
}

#[test]
fn header_len_ignores_encrypted_trailer() {
    // An SRTP packet: P set, but the last byte is part of the auth tag.
    let p = sample(0xBEDE, vec![ext(2, &[1, 2, 3])], true);
    let mut bytes = marshal(&p);
    *bytes.last_mut().unwrap() = 0xFF;
    assert!(RtpPacket::parse(&bytes[..]).is_err());
    assert_eq!(header_len(&bytes), Ok(p.header.marshal_size()));
}

#[test]
fn transport_cc_rewrite_through_extension_map() {
    let mut sender = ExtensionMap::new();
    sender
        .insert_uri(3, relais_rtp::extensions::TRANSPORT_CC_URI)
        .unwrap();
    sender.insert(4, ExtensionKind::Mid).unwrap();
    let mut receiver = ExtensionMap::new();
    receiver.insert(5, ExtensionKind::TransportCc).unwrap();

    let p = sample(0xBEDE, vec![ext(3, &[0, 7]), ext(4, b"1")], false);
    let mut bytes = marshal(&p);
    let mut view = RtpPacket::parse(&mut bytes[..]).unwrap();
    let values = sender.values(&view);
    assert_eq!(
        TransportSequenceNumber::parse(values.get(ExtensionKind::TransportCc).unwrap()),
        Ok(TransportSequenceNumber(7))
    );
    assert_eq!(values.get(ExtensionKind::Mid), Some(&b"1"[..]));
    assert_eq!(sender.get(&view, ExtensionKind::AudioLevel), None);

    TransportSequenceNumber(0x0102)
        .write(view.extension_mut(3).unwrap())
        .unwrap();
    view.remap_extension_ids(|id| sender.translate(&receiver, id))
        .unwrap();

    // The rtp crate reads what the receiver should get: tcc under id 5, mid gone.
    let header = Header::unmarshal(&mut &bytes[..]).unwrap();
    assert_eq!(header.extensions, vec![ext(5, &[1, 2])]);
    // 3 bytes of block padding plus the 2 zeroed bytes of the dropped mid element.
    assert_eq!(header.extensions_padding, 5);
}

#[test]
fn owned_buffers_parse_and_rewrite() {
    let p = sample(0xBEDE, vec![ext(3, &[0, 9])], false);
    let owned = bytes::BytesMut::from(&marshal(&p)[..]);
    let mut view = RtpPacket::parse(owned).unwrap();
    view.set_ssrc(7);
    view.set_extension_value(3, &[1, 2]).unwrap();
    assert_eq!(
        view.set_extension_value(4, &[1, 2]),
        Err(RtpError::ExtensionNotFound(4))
    );
    assert_eq!(
        view.set_extension_id(3, 15),
        Err(RtpError::InvalidExtensionId {
            id: 15,
            form: ExtensionForm::OneByte
        })
    );
    view.set_extension_id(3, 14).unwrap();
    let frozen = view.into_inner().freeze();
    let back = Packet::unmarshal(&mut &frozen[..]).unwrap();
    assert_eq!(back.header.ssrc, 7);
    assert_eq!(back.header.extensions, vec![ext(14, &[1, 2])]);
    let vec_view = RtpPacket::parse(frozen.to_vec()).unwrap();
    assert_eq!(vec_view.ssrc(), 7);
}

#[test]
fn removed_extension_reads_as_padding_to_the_rtp_crate() {
    let p = sample(
        0x1000,
        vec![ext(1, &[1]), ext(200, &[2, 2]), ext(3, &[3])],
        false,
    );
    let mut bytes = marshal(&p);
    let mut view = RtpPacket::parse(&mut bytes[..]).unwrap();
    view.remove_extension(200).unwrap();
    assert_eq!(
        view.remove_extension(200),
        Err(RtpError::ExtensionNotFound(200))
    );
    let header = Header::unmarshal(&mut &bytes[..]).unwrap();
    assert_eq!(header.extensions, vec![ext(1, &[1]), ext(3, &[3])]);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parse_of_marshal_matches(p in packet()) {
        let bytes = marshal(&p);
        let view = RtpPacket::parse(&bytes[..]).unwrap();
        assert_matches(&view, &p);
        // And the rtp crate agrees with itself on the same bytes.
        let back = Packet::unmarshal(&mut &bytes[..]).unwrap();
        prop_assert_eq!(&back.payload, &p.payload);
    }

    #[test]
    fn in_place_rewrite_equals_fresh_marshal(
        p in packet(),
        ssrc in any::<u32>(),
        seq in any::<u16>(),
        ts in any::<u32>(),
        pt in 0u8..128,
        marker in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        fill in any::<u8>(),
    ) {
        let mut bytes = marshal(&p);
        let mut view = RtpPacket::parse(&mut bytes[..]).unwrap();
        view.set_ssrc(ssrc);
        view.set_sequence_number(seq);
        view.set_timestamp(ts);
        view.set_payload_type(pt);
        view.set_marker(marker);

        let mut expected = p.clone();
        let h = &mut expected.header;
        h.ssrc = ssrc;
        h.sequence_number = seq;
        h.timestamp = ts;
        h.payload_type = pt;
        h.marker = marker;
        if view.extension_form().is_some() && !h.extensions.is_empty() {
            let id = h.extensions[pick.index(h.extensions.len())].id;
            let first = h.extensions.iter_mut().find(|e| e.id == id).unwrap();
            let value = vec![fill; first.payload.len()];
            first.payload = Bytes::from(value.clone());
            view.set_extension_value(id, &value).unwrap();
        }
        prop_assert_eq!(&bytes, &marshal(&expected));
    }

    #[test]
    fn remap_equals_fresh_marshal_with_new_ids(p in packet(), offset in 1u8..=13) {
        let mut bytes = marshal(&p);
        let mut view = RtpPacket::parse(&mut bytes[..]).unwrap();
        let Some(form) = view.extension_form() else { return Ok(()); };
        // A bijection on the form's ids; odd ids map, even ids drop.
        let map = |id: u8| -> Option<u8> {
            if id % 2 == 0 { return None; }
            Some(match form {
                ExtensionForm::OneByte => (id - 1 + offset) % 14 + 1,
                ExtensionForm::TwoByte => id.wrapping_add(offset).max(1),
            })
        };
        view.remap_extension_ids(map).unwrap();
        let got: Vec<_> = RtpPacket::parse(&bytes[..]).unwrap()
            .extensions().map(|(id, v)| (id, v.to_vec())).collect();
        let want: Vec<_> = p.header.extensions.iter()
            .filter_map(|e| Some((map(e.id)?, e.payload.to_vec()))).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(bytes.len(), marshal(&p).len());
    }

    #[test]
    fn invalid_remap_changes_nothing(p in packet()) {
        let mut bytes = marshal(&p);
        let before = bytes.clone();
        let mut view = RtpPacket::parse(&mut bytes[..]).unwrap();
        if view.extension_form() == Some(ExtensionForm::OneByte) && view.extensions().count() > 0 {
            let last = view.extensions().last().unwrap().0;
            let result = view.remap_extension_ids(|id| Some(if id == last { 15 } else { 1 }));
            let refused = matches!(result, Err(RtpError::InvalidExtensionId { id: 15, .. }));
            prop_assert!(refused);
            prop_assert_eq!(&bytes, &before);
        }
    }
}
