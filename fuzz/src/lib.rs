//! Fuzz targets for every parser of relais, one function per target.
//!
//! Each function takes arbitrary bytes, runs them through a parser and, when the parse
//! succeeds, through every getter and in-place rewrite the hot path uses. A panic is the bug
//! the fuzzer looks for; errors are the expected answer to garbage.
//!
//! The same functions serve two harnesses: the AFL++ binaries in `src/bin/` (coverage-guided,
//! built with `cargo afl build`, see docs/fuzzing.md) and the corpus test in `tests/`, which
//! replays the seeds and every crash ever found on each `cargo test`.

use relais_rtp::codec::{h264, opus, vp8, vp9};
use relais_rtp::extensions::{self, ExtensionKind, ExtensionMap};
use relais_rtp::rtcp::{parse_typed, RtcpCompound};
use relais_rtp::rtp::{self, RtpPacket};
use relais_rtp::stun::{StunKey, StunMessage};
use relais_rtp::{demux, stun};
use relais_srtp::{SrtpConfig, SrtpKey, SrtpProfile, SrtpReceiver, SrtpSender};

/// Extension ids as Chromium negotiates them, so the typed readers see real ids.
fn chromium_extension_map() -> ExtensionMap {
    let mut map = ExtensionMap::new();
    for (id, kind) in [
        (1, ExtensionKind::AudioLevel),
        (2, ExtensionKind::AbsSendTime),
        (3, ExtensionKind::TransportCc),
        (4, ExtensionKind::Mid),
        (10, ExtensionKind::RtpStreamId),
        (11, ExtensionKind::RepairedRtpStreamId),
        (13, ExtensionKind::AbsCaptureTime),
    ] {
        // The ids are distinct and in range; an error here would only lose coverage.
        let _ = map.insert(id, kind);
    }
    map
}

/// RTP: demultiplexing, the header view, extension lookup and every in-place rewrite.
pub fn rtp(data: &[u8]) {
    let _ = demux::classify(data);
    let _ = rtp::header_len(data);
    let Ok(packet) = RtpPacket::parse(data) else {
        return;
    };
    let map = chromium_extension_map();
    let values = map.values(&packet);
    std::hint::black_box(&values);
    for (id, value) in packet.extensions() {
        let _ = extensions::AudioLevel::parse(value);
        let _ = extensions::TransportSequenceNumber::parse(value);
        let _ = extensions::AbsSendTime::parse(value);
        let _ = extensions::AbsCaptureTime::parse(value);
        let _ = extensions::parse_mid(value);
        let _ = extensions::parse_rtp_stream_id(value);
        std::hint::black_box((id, packet.extension(id)));
    }
    std::hint::black_box((
        packet.payload(),
        packet.padding_len(),
        packet.csrcs().count(),
        packet.marker(),
    ));

    let mut copy = data.to_vec();
    let Ok(mut packet) = RtpPacket::parse(copy.as_mut_slice()) else {
        return;
    };
    packet.set_ssrc(0x1234_5678);
    packet.set_sequence_number(0xFFFF);
    packet.set_timestamp(0xFFFF_FFFF);
    packet.set_payload_type(96);
    packet.set_marker(true);
    if let Some(value) = packet.extension_mut(3) {
        let _ = extensions::TransportSequenceNumber(7).write(value);
    }
    let _ = packet.set_extension_id(2, 5);
    let _ = packet.remap_extension_ids(|id| if id == 4 { None } else { Some(id) });
    let _ = packet.remove_extension(1);
    // A rewritten packet must still parse: rewriting never breaks the framing.
    if RtpPacket::parse(packet.as_bytes()).is_err() {
        panic!("in-place rewriting produced an unparsable packet");
    }
}

/// RTCP: compound iteration, the allocation-free getters, and the typed layer.
pub fn rtcp(data: &[u8]) {
    for view in RtcpCompound::new(data) {
        let Ok(view) = view else { break };
        std::hint::black_box((
            view.kind(),
            view.sender_ssrc(),
            view.media_ssrc(),
            view.sender_info(),
            view.report_blocks().count(),
            view.nack_pairs().count(),
        ));
    }
    if let Ok(packets) = parse_typed(data) {
        let mut out = vec![0u8; data.len() + 64];
        let _ = relais_rtp::rtcp::marshal_compound(&packets, &mut out);
    }
}

/// STUN: parsing, every getter, MESSAGE-INTEGRITY and FINGERPRINT verification.
pub fn stun(data: &[u8]) {
    let _ = stun::is_stun(data);
    let _ = stun::transaction_id(data);
    let Ok(message) = StunMessage::parse(data) else {
        return;
    };
    std::hint::black_box((
        message.class(),
        message.method(),
        message.username(),
        message.ice_ufrags(),
        message.priority(),
        message.use_candidate(),
        message.ice_controlling(),
        message.ice_controlled(),
        message.xor_mapped_address(),
        message.error_code().map(|code| code.code()),
        message.unknown_comprehension_required(),
        message.attributes().count(),
    ));
    let key = StunKey::new(b"VOkJxbRl1RmTxUk/WvJxBt");
    let _ = message.verify_message_integrity_with(&key);
    let _ = message.verify_fingerprint();
}

/// Codec payload descriptors: the first byte picks the codec, the rest is the RTP payload.
pub fn codec(data: &[u8]) {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let mut copy = payload.to_vec();
    match selector % 4 {
        0 => {
            if let Ok(descriptor) = vp8::parse(payload) {
                std::hint::black_box((descriptor, descriptor.starts_frame()));
                let _ = vp8::rewrite_picture_id(&mut copy, 0x7FFF);
                let _ = vp8::rewrite_tl0_pic_idx(&mut copy, 0xFF);
            }
        }
        1 => {
            if let Ok(descriptor) = vp9::parse(payload) {
                std::hint::black_box((
                    descriptor.is_keyframe(),
                    descriptor.p_diffs(),
                    descriptor.is_layer_switch_point(1, 1),
                ));
                let _ = vp9::rewrite_picture_id(&mut copy, 0x7FFF);
                let _ = vp9::rewrite_tl0_pic_idx(&mut copy, 0xFF);
            }
        }
        2 => {
            if let Ok(descriptor) = h264::parse(payload) {
                std::hint::black_box(descriptor.is_keyframe());
            }
            std::hint::black_box(h264::stap_a_nal_units(payload).count());
        }
        _ => {
            let _ = opus::is_dtx(payload);
            if let Ok(toc) = opus::OpusToc::parse(payload) {
                std::hint::black_box((toc.mode(), toc.bandwidth(), toc.frame_duration_us()));
            }
            let _ = opus::frame_count(payload);
        }
    }
}

/// SRTP: unprotecting arbitrary bytes as RTP and RTCP in both profiles, and protecting
/// them (the sender must refuse what is not RTP, never panic).
pub fn srtp(data: &[u8]) {
    for profile in SrtpProfile::ALL {
        let master_key = [0x2B; 16];
        let master_salt = vec![0x5A; profile.master_salt_len()];
        let Ok(key) = SrtpKey::new(profile, &master_key, &master_salt) else {
            return;
        };
        let (Ok(mut receiver), Ok(mut sender)) = (
            SrtpReceiver::new(&key, SrtpConfig::default()),
            SrtpSender::new(&key, SrtpConfig::default()),
        ) else {
            return;
        };
        let mut packet = data.to_vec();
        let _ = receiver.unprotect_rtp(&mut packet);
        packet.copy_from_slice(data);
        let _ = receiver.unprotect_rtcp(&mut packet);

        let mut room = data.to_vec();
        room.resize(data.len() + profile.rtcp_overhead(), 0);
        let _ = sender.protect_rtp(&mut room, data.len());
        room.truncate(data.len());
        room.copy_from_slice(data);
        room.resize(data.len() + profile.rtcp_overhead(), 0);
        let _ = sender.protect_rtcp(&mut room, data.len());
    }
}
