//! The webrtc-srtp 0.17.2 defects relais guards its AES-CM profile against (`src/cm.rs`
//! lists them with their source locations): each one shown on the crate used directly,
//! then what relais does with the same input, for both profiles where it applies.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{keys, rtcp, rtp, PLAIN};
use relais_srtp::{SrtpConfig, SrtpError, SrtpKey, SrtpProfile, SrtpReceiver, SrtpSender};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

const CM: SrtpProfile = SrtpProfile::Aes128CmHmacSha1_80;

/// webrtc-srtp keyed like `key` (AES-CM), used directly.
fn raw(key: &SrtpKey) -> Context {
    Context::new(
        key.master_key(),
        key.master_salt(),
        ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
    )
    .unwrap()
}

fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

fn pair(profile: SrtpProfile) -> (SrtpSender, SrtpReceiver, SrtpKey) {
    let (relais, peer) = keys(profile, 51);
    (
        SrtpSender::new(&peer.local, SrtpConfig::default()).unwrap(),
        SrtpReceiver::new(&relais.remote, SrtpConfig::default()).unwrap(),
        relais.remote,
    )
}

/// RTP header, SSRC 1, sequence number `seq`, with `ext` as extension header + block.
fn with_extension(seq: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x90u8, 96, 0, seq, 0, 0, 0, 0, 0, 0, 0, 1];
    p.extend_from_slice(ext);
    p.extend_from_slice(payload);
    p
}

/// Defect 1: rtp 0.17's header parser (which `Context::decrypt_rtp` / `encrypt_rtp` run
/// on the whole packet) bounds the extension block by the packet, but not the RFC 8285
/// elements inside it: an element running past the end of the packet panics. relais
/// parses headers itself and the crate never parses a packet.
#[test]
fn extension_elements_past_the_end_of_the_packet() {
    // The trigger found earlier: 20 bytes, a one-word one-byte block whose element (ID 1,
    // L = 15) claims 16 bytes from byte 17.
    let trigger = with_extension(1, &[0xbe, 0xde, 0, 1, 0x1f, 0, 0, 0], &[]);
    assert_eq!(trigger.len(), 20);
    // Long enough for header + tag, the element still ends past the packet (byte 33).
    let one_byte = with_extension(2, &[0xbe, 0xde, 0, 1, 0x1f, 0, 0, 0], &[0xab; 12]);
    // Two-byte profile: an element ID in the packet's last byte (its length byte is
    // missing), and an element claiming 255 bytes.
    let two_byte_id_last = with_extension(3, &[0x10, 0, 0, 1, 0, 0, 0, 5], &[]);
    let two_byte_long = with_extension(4, &[0x10, 0, 0, 1, 5, 0xff, 0, 0], &[0xab; 20]);

    for packet in [&trigger, &one_byte, &two_byte_id_last, &two_byte_long] {
        let key = pair(CM).2;
        assert!(panics(|| {
            let _ = raw(&key).decrypt_rtp(packet);
        }));
        assert!(panics(|| {
            let _ = raw(&key).encrypt_rtp(packet);
        }));
    }

    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx, _) = pair(profile);
        let tag = profile.rtp_auth_tag_len();
        // Shorter than header + tag: refused before any crypto.
        for short in [&trigger, &two_byte_id_last] {
            assert_eq!(
                rx.unprotect_rtp(&mut short.clone()),
                Err(SrtpError::TooShort {
                    len: 20,
                    min: 20 + tag
                }),
                "{profile}"
            );
        }
        // Long enough for header + tag: a forgery like any other.
        for forged in [&one_byte, &two_byte_long] {
            let expected = if forged.len() >= 20 + tag {
                SrtpError::AuthFailed
            } else {
                SrtpError::TooShort {
                    len: forged.len(),
                    min: 20 + tag,
                }
            };
            assert_eq!(
                rx.unprotect_rtp(&mut forged.clone()),
                Err(expected),
                "{profile}"
            );
        }
        // As plaintexts they are valid RTP (the block fits): protected, and round-trip.
        for plain in [&trigger, &one_byte, &two_byte_id_last, &two_byte_long] {
            let mut wire = plain.clone();
            tx.protect_rtp_vec(&mut wire).unwrap();
            assert_eq!(&wire[..20], &plain[..20], "{profile}: header in the clear");
            let n = rx.unprotect_rtp(&mut wire).unwrap();
            assert_eq!(&wire[..n], &plain[..], "{profile}");
        }
    }
}

/// Defect 1, second face: the same parser recomputes the header length from the elements
/// (`marshal_size()`), and the crate en/decrypts from there. An element overrunning its
/// block makes it longer than the packet (panic slicing the plaintext); the reserved ID 15
/// ends the walk early and makes it shorter (part of the extension block gets encrypted,
/// which no other implementation decrypts). relais hands the crate its own header length.
#[test]
fn extension_blocks_the_crate_measures_differently() {
    // ID 1, L = 3 (4 bytes) in a one-word block: the element ends one byte past the block.
    // 22 bytes: the crate's header length is 24.
    let overrun = with_extension(5, &[0xbe, 0xde, 0, 1, 0x13, 1, 2, 3], &[4, 0xaa]);
    // ID 15 first: the crate stops and counts no block byte (header length 16, not 24).
    let terminated = with_extension(
        6,
        &[0xbe, 0xde, 0, 2, 0xf0, 0, 0, 0, 0x10, 0xaa, 0, 0],
        &[0x55; 40],
    );

    let (mut tx, mut rx, _) = pair(CM);
    let (_, peer) = keys(CM, 51);
    assert!(panics(|| {
        let _ = raw(&peer.local).encrypt_rtp(&overrun);
    }));
    let misplaced = raw(&peer.local).encrypt_rtp(&terminated).unwrap();
    assert_ne!(
        &misplaced[16..24],
        &terminated[16..24],
        "webrtc-srtp encrypts part of the extension block"
    );

    for plain in [&overrun, &terminated] {
        let mut wire = plain.clone();
        tx.protect_rtp_vec(&mut wire).unwrap();
        let header_len = if plain.len() == 22 { 20 } else { 24 };
        assert_eq!(&wire[..header_len], &plain[..header_len]);
        let n = rx.unprotect_rtp(&mut wire).unwrap();
        assert_eq!(&wire[..n], &plain[..]);
    }
}

/// Defect 2: SRTCP with the E flag clear comes back from `decrypt_rtcp` as "plaintext"
/// without its tag being checked. relais refuses it before the crate sees it.
#[test]
fn srtcp_with_the_e_flag_clear() {
    let mut forged = vec![0x80u8, 200, 0, 6, 0, 0, 0, 9];
    forged.extend_from_slice(b"forged body, no key needed");
    forged.extend_from_slice(&[0, 0, 0, 1]);
    forged.extend_from_slice(&[0xee; 10]);

    let (_, mut rx, key) = pair(CM);
    let accepted = raw(&key).decrypt_rtcp(&forged).unwrap();
    assert_eq!(&accepted[..], &forged[..forged.len() - 14]);
    assert_eq!(
        rx.unprotect_rtcp(&mut forged.clone()),
        Err(SrtpError::UnencryptedSrtcp)
    );
}

/// Defect 5: `decrypt_rtcp` computes `len - 14` and reads bytes 4..8 before checking any
/// length: SRTCP shorter than 14 bytes panics it. relais refuses anything shorter than
/// 8 + 4 + 10 bytes first.
#[test]
fn short_srtcp() {
    let (_, mut rx, key) = pair(CM);
    let full = {
        let mut p = rtcp(9, 1);
        p.extend_from_slice(&[0x80, 0, 0, 1]);
        p.extend_from_slice(&[0xee; 10]);
        p
    };
    for len in 4..22 {
        let packet = &full[..len];
        if len < 14 {
            assert!(
                panics(|| {
                    let _ = raw(&key).decrypt_rtcp(packet);
                }),
                "{len}"
            );
        } else {
            assert!(raw(&key).decrypt_rtcp(packet).is_err());
        }
        let min = if len < 8 { 8 } else { 22 };
        assert_eq!(
            rx.unprotect_rtcp(&mut packet.to_vec()),
            Err(SrtpError::TooShort { len, min })
        );
    }
}

/// The crate numbers SRTCP itself, from 1; relais's AES-CM sender accounts for exactly
/// that (and checks it on every packet), GCM numbers from 0.
#[test]
fn srtcp_index_numbering() {
    let (relais, _) = keys(CM, 52);
    let plain = rtcp(0x0102_0304, 0);
    let raw_wire = raw(&relais.local).encrypt_rtcp(&plain).unwrap();
    let trailer = |wire: &[u8], tag: usize| wire[wire.len() - tag - 4..wire.len() - tag].to_vec();
    assert_eq!(trailer(&raw_wire, 10), [0x80, 0, 0, 1]);

    for (profile, first) in [(CM, 1u8), (SrtpProfile::AeadAes128Gcm, 0)] {
        let (relais, _) = keys(profile, 52);
        let mut tx = SrtpSender::new(&relais.local, SrtpConfig::default()).unwrap();
        for n in 0..3u8 {
            let mut wire = plain.clone();
            tx.protect_rtcp_vec(&mut wire).unwrap();
            let word = match profile {
                SrtpProfile::AeadAes128Gcm => wire[wire.len() - 4..].to_vec(),
                SrtpProfile::Aes128CmHmacSha1_80 => trailer(&wire, 10),
            };
            assert_eq!(word, [0x80, 0, 0, first + n], "{profile}");
        }
    }
}

/// Defect 4: the crate estimates the ROC from the last packet it processed. Used directly
/// as a sender, after a late packet it protects a jump of almost half the sequence space
/// under the old ROC, which a peer estimating from the highest index (relais, libsrtp,
/// RFC 3711 Appendix A) rejects. relais's sender realigns it and stays on the right ROC.
#[test]
fn crate_rollover_estimate_after_a_late_packet() {
    let (relais, peer) = keys(CM, 53);
    let mut theirs = raw(&peer.local);
    let mut ours = SrtpSender::new(&peer.local, SrtpConfig::default()).unwrap();
    let mut rx = SrtpReceiver::new(&relais.remote, SrtpConfig::default()).unwrap();

    for index in [0u64, 10_000, 20_000, 30_000, 40_000, 39_900] {
        let plain = rtp(0x66, index as u16, PLAIN);
        let mut wire = plain.clone();
        ours.protect_rtp_vec(&mut wire).unwrap();
        assert_eq!(theirs.encrypt_rtp(&plain).unwrap()[..], wire[..]);
        if index != 39_900 {
            rx.unprotect_rtp(&mut wire).unwrap();
        }
    }
    // Index 72_700 (ROC 1, SEQ 7164): 32_700 after 40_000, 32_800 after 39_900.
    let plain = rtp(0x66, 7164, PLAIN);
    let mut stale = theirs.encrypt_rtp(&plain).unwrap().to_vec();
    assert_eq!(rx.unprotect_rtp(&mut stale), Err(SrtpError::AuthFailed));
    let mut wire = plain.clone();
    ours.protect_rtp_vec(&mut wire).unwrap();
    let n = rx.unprotect_rtp(&mut wire).unwrap();
    assert_eq!(&wire[..n], &plain[..]);
    assert_eq!((ours.roc(0x66), rx.roc(0x66)), (Some(1), Some(1)));
}
