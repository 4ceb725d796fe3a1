//! RFC 5769 test vectors (§2.1–§2.3): parse, verify and rebuild byte for byte.
//!
//! The vectors pad with 0x20 (spaces), so the writer is told to do the same; see
//! `StunWriter::padding_byte`. §2.4 (long-term credentials) is not covered: relais uses only
//! ICE short-term credentials, and the long-term key needs MD5.
// Tests may unwrap (workspace policy); helpers outside #[test] fns need telling.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::net::SocketAddr;

use relais_rtp::stun::{attr, StunClass, StunError, StunKey, StunMessage, StunMethod, StunWriter};

const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
const TRANSACTION_ID: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

/// RFC 5769 §2.1: sample request.
const REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, // Request type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x10, // SOFTWARE attribute header
    0x53, 0x54, 0x55, 0x4e, // }
    0x20, 0x74, 0x65, 0x73, // }  User-agent...
    0x74, 0x20, 0x63, 0x6c, // }  ...name
    0x69, 0x65, 0x6e, 0x74, // }
    0x00, 0x24, 0x00, 0x04, // PRIORITY attribute header
    0x6e, 0x00, 0x01, 0xff, // ICE priority value
    0x80, 0x29, 0x00, 0x08, // ICE-CONTROLLED attribute header
    0x93, 0x2f, 0xf9, 0xb1, // }  Pseudo-random tie breaker...
    0x51, 0x26, 0x3b, 0x36, // }   ...for ICE control
    0x00, 0x06, 0x00, 0x09, // USERNAME attribute header
    0x65, 0x76, 0x74, 0x6a, // }
    0x3a, 0x68, 0x36, 0x76, // }  Username (9 bytes) and padding (3 bytes)
    0x59, 0x20, 0x20, 0x20, // }
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0x9a, 0xea, 0xa7, 0x0c, // }
    0xbf, 0xd8, 0xcb, 0x56, // }
    0x78, 0x1e, 0xf2, 0xb5, // }  HMAC-SHA1 fingerprint
    0xb2, 0xd3, 0xf2, 0x49, // }
    0xc1, 0xb5, 0x71, 0xa2, // }
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xe5, 0x7a, 0x3b, 0xcf, // CRC32 fingerprint
];

/// RFC 5769 §2.2: sample IPv4 response.
const RESPONSE_V4: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, // Response type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x0b, // SOFTWARE attribute header
    0x74, 0x65, 0x73, 0x74, // }
    0x20, 0x76, 0x65, 0x63, // }  UTF-8 server name
    0x74, 0x6f, 0x72, 0x20, // }
    0x00, 0x20, 0x00, 0x08, // XOR-MAPPED-ADDRESS attribute header
    0x00, 0x01, 0xa1, 0x47, // Address family (IPv4) and xor'd mapped port number
    0xe1, 0x12, 0xa6, 0x43, // Xor'd mapped IPv4 address
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0x2b, 0x91, 0xf5, 0x99, // }
    0xfd, 0x9e, 0x90, 0xc3, // }
    0x8c, 0x74, 0x89, 0xf9, // }  HMAC-SHA1 fingerprint
    0x2a, 0xf9, 0xba, 0x53, // }
    0xf0, 0x6b, 0xe7, 0xd7, // }
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xc0, 0x7d, 0x4c, 0x96, // CRC32 fingerprint
];

/// RFC 5769 §2.3: sample IPv6 response.
const RESPONSE_V6: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, // Response type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x0b, // SOFTWARE attribute header
    0x74, 0x65, 0x73, 0x74, // }
    0x20, 0x76, 0x65, 0x63, // }  UTF-8 server name
    0x74, 0x6f, 0x72, 0x20, // }
    0x00, 0x20, 0x00, 0x14, // XOR-MAPPED-ADDRESS attribute header
    0x00, 0x02, 0xa1, 0x47, // Address family (IPv6) and xor'd mapped port number
    0x01, 0x13, 0xa9, 0xfa, // }
    0xa5, 0xd3, 0xf1, 0x79, // }  Xor'd mapped IPv6 address
    0xbc, 0x25, 0xf4, 0xb5, // }
    0xbe, 0xd2, 0xb9, 0xd9, // }
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0xa3, 0x82, 0x95, 0x4e, // }
    0x4b, 0xe6, 0x7b, 0xf1, // }
    0x17, 0x84, 0xc9, 0x7c, // }  HMAC-SHA1 fingerprint
    0x82, 0x92, 0xc2, 0x75, // }
    0xbf, 0xe3, 0xed, 0x41, // }
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xc8, 0xfb, 0x0b, 0x4c, // CRC32 fingerprint
];

fn v4_address() -> SocketAddr {
    "192.0.2.1:32853".parse().unwrap()
}

fn v6_address() -> SocketAddr {
    "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap()
}

#[test]
fn sample_request_parses_and_verifies() {
    let message = StunMessage::parse(&REQUEST).unwrap();
    assert!(message.is_binding_request());
    assert_eq!(message.class(), StunClass::Request);
    assert_eq!(message.method(), StunMethod::BINDING);
    assert_eq!(message.transaction_id(), TRANSACTION_ID);
    assert_eq!(message.software(), Some(&b"STUN test client"[..]));
    assert_eq!(message.priority(), Some(0x6e00_01ff));
    assert_eq!(message.ice_controlled(), Some(0x932f_f9b1_5126_3b36));
    assert_eq!(message.ice_controlling(), None);
    assert!(!message.use_candidate());
    assert_eq!(message.username_str(), Some("evtj:h6vY"));
    assert_eq!(message.ice_ufrags(), Some((&b"evtj"[..], &b"h6vY"[..])));
    assert_eq!(message.message_integrity_offset(), Some(76));
    assert_eq!(message.fingerprint_offset(), Some(100));
    assert_eq!(message.unknown_comprehension_required(), None);
    message.verify_message_integrity(PASSWORD).unwrap();
    message
        .verify_message_integrity_with(&StunKey::new(PASSWORD))
        .unwrap();
    message.verify_fingerprint().unwrap();
}

#[test]
fn sample_ipv4_response_parses_and_verifies() {
    let message = StunMessage::parse(&RESPONSE_V4).unwrap();
    assert!(message.is_binding_success());
    assert_eq!(message.transaction_id(), TRANSACTION_ID);
    assert_eq!(message.software(), Some(&b"test vector"[..]));
    assert_eq!(message.xor_mapped_address(), Some(v4_address()));
    message.verify_message_integrity(PASSWORD).unwrap();
    message.verify_fingerprint().unwrap();
}

#[test]
fn sample_ipv6_response_parses_and_verifies() {
    let message = StunMessage::parse(&RESPONSE_V6).unwrap();
    assert!(message.is_binding_success());
    assert_eq!(message.software(), Some(&b"test vector"[..]));
    assert_eq!(message.xor_mapped_address(), Some(v6_address()));
    message.verify_message_integrity(PASSWORD).unwrap();
    message.verify_fingerprint().unwrap();
}

#[test]
fn sample_request_is_rebuilt_byte_for_byte() {
    let mut buf = [0u8; 256];
    let mut writer = StunWriter::binding_request(&mut buf, TRANSACTION_ID).unwrap();
    writer
        .padding_byte(0x20)
        .software("STUN test client")
        .unwrap()
        .priority(0x6e00_01ff)
        .unwrap()
        .ice_controlled(0x932f_f9b1_5126_3b36)
        .unwrap()
        .username(b"evtj:h6vY")
        .unwrap()
        .message_integrity_with_password(PASSWORD)
        .unwrap()
        .fingerprint()
        .unwrap();
    let len = writer.finish();
    assert_eq!(&buf[..len], &REQUEST[..]);
}

#[test]
fn sample_ipv4_response_is_rebuilt_byte_for_byte() {
    let mut buf = [0u8; 256];
    let key = StunKey::new(PASSWORD);
    let mut writer = StunWriter::binding_success(&mut buf, TRANSACTION_ID).unwrap();
    writer
        .padding_byte(0x20)
        .software("test vector")
        .unwrap()
        .xor_mapped_address(v4_address())
        .unwrap()
        .message_integrity(&key)
        .unwrap()
        .fingerprint()
        .unwrap();
    assert_eq!(writer.as_bytes(), &RESPONSE_V4[..]);
}

#[test]
fn sample_ipv6_response_is_rebuilt_byte_for_byte() {
    let mut buf = [0u8; 256];
    let key = StunKey::new(PASSWORD);
    let mut writer = StunWriter::binding_success(&mut buf, TRANSACTION_ID).unwrap();
    writer
        .padding_byte(0x20)
        .software("test vector")
        .unwrap()
        .xor_mapped_address(v6_address())
        .unwrap()
        .message_integrity(&key)
        .unwrap()
        .fingerprint()
        .unwrap();
    assert_eq!(writer.as_bytes(), &RESPONSE_V6[..]);
}

#[test]
fn zero_padding_changes_only_padding_and_checksums() {
    // With the default zero padding the request differs from the vector exactly in the three
    // padding bytes and the two values that cover them.
    let mut buf = [0u8; 256];
    let mut writer = StunWriter::binding_request(&mut buf, TRANSACTION_ID).unwrap();
    writer
        .software("STUN test client")
        .unwrap()
        .priority(0x6e00_01ff)
        .unwrap()
        .ice_controlled(0x932f_f9b1_5126_3b36)
        .unwrap()
        .username(b"evtj:h6vY")
        .unwrap()
        .message_integrity_with_password(PASSWORD)
        .unwrap()
        .fingerprint()
        .unwrap();
    let len = writer.finish();
    let built = &buf[..len];
    assert_eq!(built.len(), REQUEST.len());
    assert_eq!(&built[..73], &REQUEST[..73]);
    assert_eq!(&built[73..76], &[0, 0, 0]);
    let parsed = StunMessage::parse(built).unwrap();
    parsed.verify_message_integrity(PASSWORD).unwrap();
    parsed.verify_fingerprint().unwrap();
}

#[test]
fn wrong_password_fails_integrity() {
    for vector in [&REQUEST[..], &RESPONSE_V4[..], &RESPONSE_V6[..]] {
        let message = StunMessage::parse(vector).unwrap();
        assert_eq!(
            message.verify_message_integrity(b"VOkJxbRl1RmTxUk/WvJxBu"),
            Err(StunError::IntegrityMismatch)
        );
        assert_eq!(
            message.verify_message_integrity(b""),
            Err(StunError::IntegrityMismatch)
        );
    }
}

#[test]
fn any_flipped_bit_is_caught() {
    // Every single-bit flip either fails parsing, or fails FINGERPRINT; flips before
    // MESSAGE-INTEGRITY's end that keep the layout intact also fail MESSAGE-INTEGRITY.
    for vector in [&REQUEST[..], &RESPONSE_V4[..], &RESPONSE_V6[..]] {
        let mi_end = StunMessage::parse(vector)
            .unwrap()
            .message_integrity_offset()
            .unwrap()
            + 24;
        for bit in 0..vector.len() * 8 {
            let mut mutated = vector.to_vec();
            mutated[bit / 8] ^= 1 << (bit % 8);
            let Ok(message) = StunMessage::parse(&mutated) else {
                continue;
            };
            let fingerprint = message.verify_fingerprint();
            assert!(fingerprint.is_err(), "bit {bit} flip passed FINGERPRINT");
            if message.has_fingerprint() {
                assert_eq!(
                    fingerprint,
                    Err(StunError::FingerprintMismatch),
                    "bit {bit}"
                );
            }
            if bit / 8 < mi_end && message.has_message_integrity() {
                assert!(
                    message.verify_message_integrity(PASSWORD).is_err(),
                    "bit {bit} flip passed MESSAGE-INTEGRITY"
                );
            }
        }
    }
}

#[test]
fn flipped_fingerprint_bit_is_fingerprint_mismatch() {
    let mut mutated = REQUEST;
    mutated[107] ^= 0x01;
    let message = StunMessage::parse(&mutated).unwrap();
    assert_eq!(
        message.verify_fingerprint(),
        Err(StunError::FingerprintMismatch)
    );
    // FINGERPRINT is outside MESSAGE-INTEGRITY's coverage.
    message.verify_message_integrity(PASSWORD).unwrap();

    let mut mutated = RESPONSE_V4;
    mutated[30] ^= 0x40; // inside SOFTWARE
    let message = StunMessage::parse(&mutated).unwrap();
    assert_eq!(
        message.verify_fingerprint(),
        Err(StunError::FingerprintMismatch)
    );
    assert_eq!(
        message.verify_message_integrity(PASSWORD),
        Err(StunError::IntegrityMismatch)
    );
}

#[test]
fn attributes_iterate_in_wire_order() {
    let message = StunMessage::parse(&REQUEST).unwrap();
    let types: Vec<u16> = message.attributes().map(|a| a.attr_type).collect();
    assert_eq!(
        types,
        [
            attr::SOFTWARE,
            attr::PRIORITY,
            attr::ICE_CONTROLLED,
            attr::USERNAME,
            attr::MESSAGE_INTEGRITY,
            attr::FINGERPRINT
        ]
    );
    let username = message
        .attributes()
        .find(|a| a.attr_type == attr::USERNAME)
        .unwrap();
    assert_eq!(username.value, b"evtj:h6vY");
}

#[test]
fn header_peeks() {
    assert!(relais_rtp::stun::is_stun(&REQUEST));
    assert_eq!(
        relais_rtp::stun::transaction_id(&RESPONSE_V6),
        Some(TRANSACTION_ID)
    );
    assert!(!relais_rtp::stun::is_stun(&REQUEST[..107]));
    assert!(!relais_rtp::stun::is_stun(&[0x80; 40]));
    assert_eq!(relais_rtp::stun::transaction_id(&REQUEST[..19]), None);
}
