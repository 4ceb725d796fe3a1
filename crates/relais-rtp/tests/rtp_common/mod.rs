//! Shared by the RTP integration tests: proptest strategies that build packets with the
//! independent `rtp` crate, and the invariants every parsed view must satisfy.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use relais_rtp::rtp::{header_len, RtpPacket, ONE_BYTE_PROFILE, TWO_BYTE_PROFILE};
use rtp::header::{Extension, Header};
use rtp::packet::Packet;
use webrtc_util::marshal::{Marshal, MarshalSize};

/// Moderate case count so `cargo test` stays fast on two shared cores.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        // Shrunk failures are printed; writing regression files into the source tree is
        // left to whoever pins one down.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

pub fn marshal(packet: &Packet) -> Vec<u8> {
    packet.marshal().unwrap().to_vec()
}

fn extensions(
    ids: impl Strategy<Value = u8>,
    len: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Vec<Extension>> {
    vec(
        (ids, vec(any::<u8>(), len)).prop_map(|(id, payload)| Extension {
            id,
            payload: Bytes::from(payload),
        }),
        0..6,
    )
}

/// `(profile, elements)` of an extension block, or `None` for no block.
pub fn extension_block() -> impl Strategy<Value = Option<(u16, Vec<Extension>)>> {
    prop_oneof![
        Just(None),
        extensions(1u8..=14, 1..=16).prop_map(|e| Some((ONE_BYTE_PROFILE, e))),
        // The rtp crate knows the two-byte form only with appbits 0.
        extensions(1u8..=255, 0..=40).prop_map(|e| Some((TWO_BYTE_PROFILE, e))),
    ]
}

/// A valid RTP packet as the `rtp` crate builds it.
pub fn packet() -> impl Strategy<Value = Packet> {
    (
        (any::<bool>(), any::<bool>(), 0u8..128),
        (any::<u16>(), any::<u32>(), any::<u32>()),
        vec(any::<u32>(), 0..=15),
        extension_block(),
        vec(any::<u8>(), 0..300),
    )
        .prop_map(
            |((padding, marker, payload_type), (seq, ts, ssrc), csrc, block, payload)| {
                let (extension, extension_profile, extensions) = match block {
                    Some((profile, e)) => (true, profile, e),
                    None => (false, 0, vec![]),
                };
                Packet {
                    header: Header {
                        version: 2,
                        padding,
                        extension,
                        marker,
                        payload_type,
                        sequence_number: seq,
                        timestamp: ts,
                        ssrc,
                        csrc,
                        extension_profile,
                        extensions,
                        extensions_padding: 0,
                    },
                    payload: Bytes::from(payload),
                }
            },
        )
}

/// Asserts that the view shows exactly what the `rtp` crate put in.
pub fn assert_matches(view: &RtpPacket<&[u8]>, packet: &Packet) {
    let h = &packet.header;
    assert_eq!(view.version(), 2);
    assert_eq!(view.has_padding(), h.padding);
    assert_eq!(view.has_extension(), h.extension);
    assert_eq!(view.marker(), h.marker);
    assert_eq!(view.payload_type(), h.payload_type);
    assert_eq!(view.sequence_number(), h.sequence_number);
    assert_eq!(view.timestamp(), h.timestamp);
    assert_eq!(view.ssrc(), h.ssrc);
    assert_eq!(view.csrc_count() as usize, h.csrc.len());
    assert_eq!(view.csrcs().collect::<Vec<_>>(), h.csrc);
    assert_eq!(
        view.extension_profile(),
        h.extension.then_some(h.extension_profile)
    );
    let ours: Vec<(u8, Vec<u8>)> = view.extensions().map(|(id, v)| (id, v.to_vec())).collect();
    let theirs: Vec<(u8, Vec<u8>)> = if view.extension_form().is_some() {
        h.extensions
            .iter()
            .map(|e| (e.id, e.payload.to_vec()))
            .collect()
    } else {
        vec![]
    };
    assert_eq!(ours, theirs);
    for e in &h.extensions {
        if view.extension_form().is_some() {
            let first = h.extensions.iter().find(|f| f.id == e.id).unwrap();
            assert_eq!(view.extension(e.id), Some(&first.payload[..]));
        }
    }
    assert_eq!(view.payload(), &packet.payload[..]);
    assert_eq!(view.header_len(), h.marshal_size());
    assert_eq!(header_len(view.as_bytes()), Ok(view.header_len()));
}

/// Invariants of any successfully parsed view, and exercise of every accessor and
/// mutator on a copy (none may panic, and rewrites must keep the packet parseable).
pub fn check_view(bytes: &[u8]) {
    let Ok(view) = RtpPacket::parse(bytes) else {
        return;
    };
    assert_eq!(view.version(), 2);
    assert_eq!(
        view.header_len() + view.payload().len() + view.padding_len(),
        bytes.len()
    );
    assert_eq!(header_len(bytes), Ok(view.header_len()));
    assert_eq!(view.csrcs().count(), usize::from(view.csrc_count()));
    assert!(view.extension_data().len() <= view.header_len());
    let data = view.extension_data();
    let data_range = data.as_ptr_range();
    let ids: Vec<u8> = view.extensions().map(|(id, _)| id).collect();
    for (id, value) in view.extensions() {
        // Values lie inside the block, and ids are valid for the form.
        let r = value.as_ptr_range();
        assert!(data_range.start <= r.start && r.end <= data_range.end);
        assert!(view.extension_form().unwrap().is_valid_id(id));
        assert!(view.extension(id).is_some());
    }
    let _ = (view.marker(), view.payload_type(), view.sequence_number());
    let _ = (view.timestamp(), view.ssrc(), view.has_padding());

    let mut copy = bytes.to_vec();
    let mut view = RtpPacket::parse(&mut copy[..]).unwrap();
    // Identity remap leaves the bytes alone.
    view.remap_extension_ids(Some).unwrap();
    assert_eq!(view.as_bytes(), bytes);
    view.set_ssrc(!view.ssrc());
    view.set_sequence_number(view.sequence_number().wrapping_add(1));
    view.set_timestamp(view.timestamp().wrapping_add(3000));
    view.set_payload_type(view.payload_type() ^ 0x55);
    view.set_marker(!view.marker());
    if let Some(&id) = ids.first() {
        let len = view.extension(id).unwrap().len();
        view.extension_mut(id).unwrap().fill(0xA5);
        assert_eq!(
            view.set_extension_value(id, &vec![0; len + 1]),
            Err(relais_rtp::rtp::RtpError::ExtensionLengthMismatch {
                id,
                expected: len,
                actual: len + 1
            })
        );
        view.remove_extension(id).unwrap();
    }
    let reparsed = RtpPacket::parse(view.as_bytes()).unwrap();
    assert_eq!(reparsed.header_len(), view.header_len());
    assert_eq!(reparsed.payload(), view.payload());
    // Dropping every element leaves a valid, element-free block of the same length.
    let mut view = RtpPacket::parse(&mut copy[..]).unwrap();
    view.remap_extension_ids(|_| None).unwrap();
    let reparsed = RtpPacket::parse(view.as_bytes()).unwrap();
    assert_eq!(reparsed.extensions().count(), 0);
    assert_eq!(reparsed.len(), bytes.len());
}
