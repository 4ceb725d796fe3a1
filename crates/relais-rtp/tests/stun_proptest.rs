//! Property tests for the STUN view and writer: hostile input never panics, and what the
//! writer builds parses back to the same fields.
// Tests may unwrap (workspace policy); helpers outside #[test] fns need telling.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use relais_rtp::stun::{
    attr, error_code, split_message_type, StunClass, StunError, StunKey, StunMessage, StunMethod,
    StunWriter, MAGIC_COOKIE,
};

/// Touch everything a caller could touch on a parsed message.
fn exercise(message: &StunMessage<'_>) {
    let _ = (
        message.class(),
        message.method(),
        message.transaction_id(),
        message.username(),
        message.username_str(),
        message.ice_ufrags(),
        message.software(),
        message.priority(),
        message.use_candidate(),
        message.ice_controlling(),
        message.ice_controlled(),
        message.xor_mapped_address(),
        message.unknown_comprehension_required(),
        message.message_integrity_offset(),
        message.fingerprint_offset(),
    );
    if let Some(error) = message.error_code() {
        let _ = (error.code(), error.reason_str());
    }
    let total: usize = message.attributes().map(|a| 4 + a.value.len()).sum();
    assert!(total <= message.as_bytes().len());
    let _ = message.verify_message_integrity(b"password");
    let _ = message.verify_fingerprint();
}

fn parse_and_exercise(bytes: &[u8]) {
    let _ = relais_rtp::stun::is_stun(bytes);
    let _ = relais_rtp::stun::transaction_id(bytes);
    if let Ok(message) = StunMessage::parse(bytes) {
        exercise(&message);
    }
}

/// A header that passes the header checks, followed by `body` (length rounded down to 4).
fn with_valid_header(message_type: u16, mut body: Vec<u8>) -> Vec<u8> {
    body.truncate(body.len() / 4 * 4);
    let mut out = Vec::with_capacity(20 + body.len());
    out.extend_from_slice(&(message_type & 0x3FFF).to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(&[0x42; 12]);
    out.extend_from_slice(&body);
    out
}

/// Random attributes with plausible headers (known types, sometimes wrong lengths).
fn attribute_soup() -> impl Strategy<Value = Vec<u8>> {
    let types = prop::sample::select(vec![
        attr::USERNAME,
        attr::MESSAGE_INTEGRITY,
        attr::ERROR_CODE,
        attr::XOR_MAPPED_ADDRESS,
        attr::PRIORITY,
        attr::USE_CANDIDATE,
        attr::SOFTWARE,
        attr::FINGERPRINT,
        attr::ICE_CONTROLLED,
        attr::ICE_CONTROLLING,
        0x0003,
        0xC057,
    ]);
    let one = (
        types,
        prop::collection::vec(any::<u8>(), 0..24),
        0usize..4,
        any::<bool>(),
    );
    prop::collection::vec(one, 0..8).prop_map(|attrs| {
        let mut out = Vec::new();
        for (attr_type, value, lie, pad) in attrs {
            out.extend_from_slice(&attr_type.to_be_bytes());
            // Sometimes claim a different length than the value has.
            let claimed = (value.len() + lie * 3) as u16;
            out.extend_from_slice(&claimed.to_be_bytes());
            out.extend_from_slice(&value);
            if pad {
                out.resize(out.len().next_multiple_of(4), 0);
            }
        }
        out
    })
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<u128>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

/// A binding request as the writer would build it, plus its fields.
#[derive(Debug, Clone)]
struct Request {
    transaction_id: [u8; 12],
    username: Vec<u8>,
    priority: u32,
    controlling: bool,
    tie_breaker: u64,
    use_candidate: bool,
    password: Vec<u8>,
    padding: u8,
}

fn request() -> impl Strategy<Value = Request> {
    (
        any::<[u8; 12]>(),
        prop::collection::vec(any::<u8>(), 0..80),
        any::<u32>(),
        any::<bool>(),
        any::<u64>(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<u8>(),
    )
        .prop_map(
            |(
                transaction_id,
                username,
                priority,
                controlling,
                tie_breaker,
                use_candidate,
                password,
                padding,
            )| {
                Request {
                    transaction_id,
                    username,
                    priority,
                    controlling,
                    tie_breaker,
                    use_candidate,
                    password,
                    padding,
                }
            },
        )
}

fn build_request(request: &Request, buf: &mut [u8]) -> Result<usize, StunError> {
    let mut writer = StunWriter::binding_request(buf, request.transaction_id)?;
    writer
        .padding_byte(request.padding)
        .username(&request.username)?
        .priority(request.priority)?;
    if request.controlling {
        writer.ice_controlling(request.tie_breaker)?;
    } else {
        writer.ice_controlled(request.tie_breaker)?;
    }
    if request.use_candidate {
        writer.use_candidate()?;
    }
    writer
        .message_integrity_with_password(&request.password)?
        .fingerprint()?;
    Ok(writer.finish())
}

proptest! {
    #[test]
    fn message_type_splits_and_joins(message_type in 0u16..0x4000) {
        let (class, method) = split_message_type(message_type);
        prop_assert_eq!(relais_rtp::stun::message_type(class, method), message_type);
        prop_assert_eq!(StunMethod::new(method.number()), Some(method));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        parse_and_exercise(&bytes);
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(
        message_type in any::<u16>(),
        body in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        parse_and_exercise(&with_valid_header(message_type, body));
    }

    #[test]
    fn attribute_soup_never_panics(message_type in any::<u16>(), body in attribute_soup()) {
        parse_and_exercise(&with_valid_header(message_type, body));
    }

    #[test]
    fn built_requests_parse_back(request in request()) {
        let mut buf = [0u8; 512];
        let len = build_request(&request, &mut buf).unwrap();
        let message = StunMessage::parse(&buf[..len]).unwrap();
        prop_assert!(message.is_binding_request());
        prop_assert_eq!(message.transaction_id(), request.transaction_id);
        prop_assert_eq!(message.username(), Some(&request.username[..]));
        prop_assert_eq!(message.priority(), Some(request.priority));
        prop_assert_eq!(message.use_candidate(), request.use_candidate);
        if request.controlling {
            prop_assert_eq!(message.ice_controlling(), Some(request.tie_breaker));
            prop_assert_eq!(message.ice_controlled(), None);
        } else {
            prop_assert_eq!(message.ice_controlled(), Some(request.tie_breaker));
            prop_assert_eq!(message.ice_controlling(), None);
        }
        prop_assert_eq!(message.verify_message_integrity(&request.password), Ok(()));
        let key = StunKey::new(&request.password);
        prop_assert_eq!(message.verify_message_integrity_with(&key), Ok(()));
        prop_assert_eq!(message.verify_fingerprint(), Ok(()));
        let mut wrong = request.password.clone();
        wrong.push(b'x');
        prop_assert_eq!(
            message.verify_message_integrity(&wrong),
            Err(StunError::IntegrityMismatch)
        );
    }

    #[test]
    fn built_success_responses_parse_back(
        transaction_id in any::<[u8; 12]>(),
        address in socket_addr(),
        password in prop::collection::vec(any::<u8>(), 1..40),
    ) {
        let mut buf = [0u8; 128];
        let mut writer = StunWriter::binding_success(&mut buf, transaction_id).unwrap();
        writer
            .xor_mapped_address(address)
            .unwrap()
            .message_integrity_with_password(&password)
            .unwrap()
            .fingerprint()
            .unwrap();
        let len = writer.finish();
        let message = StunMessage::parse(&buf[..len]).unwrap();
        prop_assert!(message.is_binding_success());
        prop_assert_eq!(message.xor_mapped_address(), Some(address));
        prop_assert_eq!(message.verify_message_integrity(&password), Ok(()));
        prop_assert_eq!(message.verify_fingerprint(), Ok(()));
    }

    #[test]
    fn built_error_responses_parse_back(
        transaction_id in any::<[u8; 12]>(),
        code in 300u16..=699,
        reason in "[ -~]{0,100}",
    ) {
        let mut buf = [0u8; 256];
        let mut writer = StunWriter::binding_error(&mut buf, transaction_id).unwrap();
        writer
            .error_code(code, &reason)
            .unwrap()
            .message_integrity_with_password(b"pwd")
            .unwrap()
            .fingerprint()
            .unwrap();
        let len = writer.finish();
        let message = StunMessage::parse(&buf[..len]).unwrap();
        prop_assert!(message.is_binding_error());
        let error = message.error_code().unwrap();
        prop_assert_eq!(error.code(), code);
        prop_assert_eq!(error.reason_str(), Some(reason.as_str()));
        prop_assert_eq!(message.verify_message_integrity(b"pwd"), Ok(()));
        prop_assert_eq!(message.verify_fingerprint(), Ok(()));
    }

    #[test]
    fn mutated_requests_never_panic(
        request in request(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut buf = [0u8; 512];
        let len = build_request(&request, &mut buf).unwrap();
        let mut mutated = buf[..len].to_vec();
        for (index, xor) in flips {
            let i = index.index(mutated.len());
            mutated[i] ^= xor;
        }
        if truncate {
            mutated.truncate(cut.index(mutated.len() + 1));
        }
        parse_and_exercise(&mutated);
        // Fix up the length field so the mutation reaches the attribute walk.
        if mutated.len() >= 20 {
            let body = (mutated.len() - 20) as u16;
            mutated[2..4].copy_from_slice(&body.to_be_bytes());
            parse_and_exercise(&mutated);
        }
    }

    #[test]
    fn writer_never_panics_on_small_buffers(request in request(), size in 0usize..200) {
        let mut buf = vec![0u8; size];
        match build_request(&request, &mut buf) {
            Ok(len) => {
                let message = StunMessage::parse(&buf[..len]).unwrap();
                prop_assert_eq!(message.verify_fingerprint(), Ok(()));
            }
            Err(error) => {
                let is_buffer_too_small = matches!(error, StunError::BufferTooSmall { .. });
                prop_assert!(is_buffer_too_small, "{error:?}");
            }
        }
    }
}

#[test]
fn writer_enforces_attribute_order() {
    let mut buf = [0u8; 256];
    let mut writer = StunWriter::binding_request(&mut buf, [1; 12]).unwrap();
    writer.message_integrity_with_password(b"p").unwrap();
    assert_eq!(
        writer.priority(1).unwrap_err(),
        StunError::AttributeAfterIntegrity
    );
    assert_eq!(
        writer.message_integrity_with_password(b"p").unwrap_err(),
        StunError::AttributeAfterIntegrity
    );
    writer.fingerprint().unwrap();
    assert_eq!(
        writer.fingerprint().unwrap_err(),
        StunError::AttributeAfterFingerprint
    );
    assert_eq!(
        writer.attribute(attr::SOFTWARE, b"x").unwrap_err(),
        StunError::AttributeAfterFingerprint
    );
    let len = writer.finish();
    let message = StunMessage::parse(&buf[..len]).unwrap();
    message.verify_message_integrity(b"p").unwrap();
    message.verify_fingerprint().unwrap();
}

#[test]
fn writer_rejects_raw_computed_attributes_and_bad_codes() {
    let mut buf = [0u8; 64];
    let mut writer = StunWriter::binding_error(&mut buf, [1; 12]).unwrap();
    assert!(matches!(
        writer.attribute(attr::MESSAGE_INTEGRITY, &[0; 20]),
        Err(StunError::ComputedAttribute { .. })
    ));
    assert!(matches!(
        writer.attribute(attr::FINGERPRINT, &[0; 4]),
        Err(StunError::ComputedAttribute { .. })
    ));
    assert_eq!(
        writer.error_code(200, "OK").unwrap_err(),
        StunError::InvalidErrorCode { code: 200 }
    );
    assert!(matches!(
        writer.software(&"x".repeat(100)),
        Err(StunError::BufferTooSmall { .. })
    ));
    // Failed calls leave the message intact.
    writer
        .error_code(error_code::ROLE_CONFLICT, "Role Conflict")
        .unwrap();
    let len = writer.finish();
    let message = StunMessage::parse(&buf[..len]).unwrap();
    assert_eq!(message.error_code().unwrap().code(), 487);
    assert_eq!(message.class(), StunClass::ErrorResponse);
}

#[test]
fn attributes_after_integrity_are_ignored_and_fingerprint_must_be_last() {
    // MESSAGE-INTEGRITY, then a PRIORITY an attacker appended: not reported.
    let mut buf = [0u8; 128];
    let mut writer = StunWriter::binding_request(&mut buf, [3; 12]).unwrap();
    writer
        .username(b"a:b")
        .unwrap()
        .message_integrity_with_password(b"k")
        .unwrap();
    let mut bytes = writer.as_bytes().to_vec();
    bytes.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 0, 0, 0, 9]);
    let body = (bytes.len() - 20) as u16;
    bytes[2..4].copy_from_slice(&body.to_be_bytes());
    let message = StunMessage::parse(&bytes).unwrap();
    assert_eq!(message.priority(), None);
    message.verify_message_integrity(b"k").unwrap();

    // FINGERPRINT followed by anything is rejected.
    let mut buf = [0u8; 128];
    let mut writer = StunWriter::binding_request(&mut buf, [3; 12]).unwrap();
    writer.fingerprint().unwrap();
    let mut bytes = writer.as_bytes().to_vec();
    bytes.extend_from_slice(&[0x80, 0x22, 0x00, 0x00]);
    let body = (bytes.len() - 20) as u16;
    bytes[2..4].copy_from_slice(&body.to_be_bytes());
    assert_eq!(
        StunMessage::parse(&bytes).unwrap_err(),
        StunError::FingerprintNotLast
    );
}

#[test]
fn unknown_comprehension_required_attribute_is_reported() {
    let mut buf = [0u8; 128];
    let mut writer = StunWriter::binding_request(&mut buf, [4; 12]).unwrap();
    writer
        .attribute(0xC057, &[0, 1, 0, 0])
        .unwrap()
        .attribute(0x0003, &[0; 4])
        .unwrap();
    let len = writer.finish();
    let message = StunMessage::parse(&buf[..len]).unwrap();
    assert_eq!(message.unknown_comprehension_required(), Some(0x0003));
}

#[test]
fn debug_output_leaves_out_username_and_address() {
    let mut buf = [0u8; 128];
    let mut writer = StunWriter::binding_success(&mut buf, [6; 12]).unwrap();
    writer
        .username(b"secret-ufrag:other")
        .unwrap()
        .xor_mapped_address("198.51.100.7:4242".parse().unwrap())
        .unwrap();
    let len = writer.finish();
    let debug = format!("{:?}", StunMessage::parse(&buf[..len]).unwrap());
    assert!(!debug.contains("secret"), "{debug}");
    assert!(!debug.contains("198.51"), "{debug}");
    assert!(!debug.contains("4242"), "{debug}");
}

#[test]
fn header_errors_are_typed() {
    let mut buf = [0u8; 64];
    let len = StunWriter::binding_request(&mut buf, [5; 12])
        .unwrap()
        .finish();
    let good = buf[..len].to_vec();
    assert_eq!(
        StunMessage::parse(&good[..19]).unwrap_err(),
        StunError::TooShort { len: 19 }
    );
    let mut bad = good.clone();
    bad[0] |= 0x80;
    assert_eq!(StunMessage::parse(&bad).unwrap_err(), StunError::NotStun);
    let mut bad = good.clone();
    bad[4] ^= 1;
    assert_eq!(
        StunMessage::parse(&bad).unwrap_err(),
        StunError::BadMagicCookie
    );
    let mut bad = good.clone();
    bad[3] = 2;
    assert_eq!(
        StunMessage::parse(&bad).unwrap_err(),
        StunError::LengthNotAligned { declared: 2 }
    );
    let mut bad = good.clone();
    bad.extend_from_slice(&[0; 4]);
    assert_eq!(
        StunMessage::parse(&bad).unwrap_err(),
        StunError::LengthMismatch {
            declared: 0,
            actual: 4
        }
    );
    let mut bad = good;
    bad.extend_from_slice(&[0x00, 0x24, 0x00, 0x08]);
    bad[3] = 4;
    assert_eq!(
        StunMessage::parse(&bad).unwrap_err(),
        StunError::AttributeTruncated {
            attr_type: attr::PRIORITY
        }
    );
}
