//! Interop both ways with webrtc-srtp 0.17 (`webrtc_srtp::context::Context`) used
//! directly, both profiles, RTP and RTCP, several SSRCs with CSRCs and header extensions,
//! across the sequence-number wrap.
//!
//! For GCM this checks relais's own implementation against an independent one. AES-CM is
//! webrtc-srtp on both sides, but relais drives it differently (its own header parse and
//! `*_with_header` calls, its own ROC, one context per SSRC, output copied back): these
//! tests check that wrapper against the crate's plain API. libsrtp2
//! (`tests/libsrtp_interop.rs`) is the independent check for AES-CM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{keys, rtcp, rtp, seqs_across_wrap, SHAPES};
use relais_srtp::{SrtpConfig, SrtpKey, SrtpProfile, SrtpReceiver, SrtpSender};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

const SSRCS: [u32; 3] = [0x1111_1111, 0x2222_2222, 0xdead_beef];

fn webrtc_context(key: &SrtpKey) -> Context {
    let profile = match key.profile() {
        SrtpProfile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    };
    Context::new(key.master_key(), key.master_salt(), profile, None, None).unwrap()
}

#[test]
fn relais_protects_webrtc_srtp_unprotects_rtp() {
    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 1);
        let mut sender = SrtpSender::new(&relais.local, SrtpConfig::default()).unwrap();
        let mut theirs = webrtc_context(&peer.remote);

        for (i, seq) in seqs_across_wrap(20).enumerate() {
            for (k, &ssrc) in SSRCS.iter().enumerate() {
                let plain = rtp(ssrc, seq, SHAPES[(i + k) % SHAPES.len()]);
                let mut buf = plain.clone();
                sender.protect_rtp_vec(&mut buf).unwrap();
                assert_eq!(buf.len(), plain.len() + profile.rtp_overhead());
                let got = theirs
                    .decrypt_rtp(&buf)
                    .unwrap_or_else(|e| panic!("{profile} seq {seq} ssrc {ssrc:x}: {e}"));
                assert_eq!(&got[..], &plain[..], "{profile} seq {seq}");
            }
        }
        for ssrc in SSRCS {
            assert_eq!(sender.roc(ssrc), Some(1), "{profile}");
        }
    }
}

#[test]
fn webrtc_srtp_protects_relais_unprotects_rtp() {
    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 2);
        let mut theirs = webrtc_context(&peer.local);
        let mut receiver = SrtpReceiver::new(&relais.remote, SrtpConfig::default()).unwrap();

        for (i, seq) in seqs_across_wrap(20).enumerate() {
            for (k, &ssrc) in SSRCS.iter().enumerate() {
                let plain = rtp(ssrc, seq, SHAPES[(i + k) % SHAPES.len()]);
                let mut wire = theirs.encrypt_rtp(&plain).unwrap().to_vec();
                let n = receiver
                    .unprotect_rtp(&mut wire)
                    .unwrap_or_else(|e| panic!("{profile} seq {seq} ssrc {ssrc:x}: {e}"));
                assert_eq!(&wire[..n], &plain[..], "{profile} seq {seq}");
            }
        }
        for ssrc in SSRCS {
            assert_eq!(receiver.roc(ssrc), Some(1), "{profile}");
        }
    }
}

#[test]
fn rtcp_both_ways() {
    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 3);
        let mut sender = SrtpSender::new(&relais.local, SrtpConfig::default()).unwrap();
        let mut receiver = SrtpReceiver::new(&relais.remote, SrtpConfig::default()).unwrap();
        let mut their_rx = webrtc_context(&peer.remote);
        let mut their_tx = webrtc_context(&peer.local);

        for n in 0..10 {
            for &ssrc in &SSRCS {
                let plain = rtcp(ssrc, n);

                let mut buf = plain.clone();
                sender.protect_rtcp_vec(&mut buf).unwrap();
                assert_eq!(buf.len(), plain.len() + profile.rtcp_overhead());
                let got = their_rx
                    .decrypt_rtcp(&buf)
                    .unwrap_or_else(|e| panic!("{profile} rtcp {n}: {e}"));
                assert_eq!(&got[..], &plain[..]);

                let mut wire = their_tx.encrypt_rtcp(&plain).unwrap().to_vec();
                let len = receiver
                    .unprotect_rtcp(&mut wire)
                    .unwrap_or_else(|e| panic!("{profile} rtcp {n}: {e}"));
                assert_eq!(&wire[..len], &plain[..]);
            }
        }
    }
}

/// Both implementations are deterministic for a given key and packet index, so for RTP
/// the protected bytes must be identical, not just mutually decryptable. (For AES-CM: the
/// header relais hands webrtc-srtp puts the payload where the crate's own parse does.)
#[test]
fn rtp_ciphertexts_are_byte_identical() {
    for profile in SrtpProfile::ALL {
        let (relais, _) = keys(profile, 4);
        let mut ours = SrtpSender::new(&relais.local, SrtpConfig::default()).unwrap();
        let mut theirs = webrtc_context(&relais.local);
        for (i, seq) in seqs_across_wrap(12).enumerate() {
            let plain = rtp(0x4242_4242, seq, SHAPES[i % SHAPES.len()]);
            let mut buf = plain.clone();
            ours.protect_rtp_vec(&mut buf).unwrap();
            assert_eq!(
                buf,
                theirs.encrypt_rtp(&plain).unwrap().to_vec(),
                "{profile} {seq}"
            );
        }
    }
}
