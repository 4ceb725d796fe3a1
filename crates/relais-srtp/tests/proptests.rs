//! Property tests: unprotecting arbitrary bytes never panics and never succeeds;
//! protect → unprotect is the identity for arbitrary headers and payloads; AES-CM (through
//! webrtc-srtp) accepts exactly the packets GCM (relais's own code) accepts, whatever the
//! sequence-number jumps and the reordering.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{keys, rtp, PLAIN};
use proptest::prelude::*;
use relais_srtp::{ReplayProtection, SrtpConfig, SrtpProfile, SrtpReceiver, SrtpSender};

fn profile() -> impl Strategy<Value = SrtpProfile> {
    prop_oneof![
        Just(SrtpProfile::AeadAes128Gcm),
        Just(SrtpProfile::Aes128CmHmacSha1_80)
    ]
}

fn contexts(profile: SrtpProfile) -> (SrtpSender, SrtpReceiver) {
    let (relais, peer) = keys(profile, 31);
    (
        SrtpSender::new(&peer.local, SrtpConfig::default()).unwrap(),
        SrtpReceiver::new(&relais.remote, SrtpConfig::default()).unwrap(),
    )
}

/// An RTP packet from arbitrary header fields, CSRCs, extension block and payload.
#[derive(Debug, Clone)]
struct RtpParts {
    marker_pt: u8,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    csrcs: Vec<u32>,
    extension: Option<(u16, Vec<u8>)>,
    padding_bit: bool,
    payload: Vec<u8>,
}

impl RtpParts {
    fn bytes(&self) -> Vec<u8> {
        let mut p = vec![
            0x80 | if self.padding_bit { 0x20 } else { 0 }
                | if self.extension.is_some() { 0x10 } else { 0 }
                | self.csrcs.len() as u8,
            self.marker_pt,
        ];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.timestamp.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrcs {
            p.extend_from_slice(&c.to_be_bytes());
        }
        if let Some((profile, data)) = &self.extension {
            p.extend_from_slice(&profile.to_be_bytes());
            p.extend_from_slice(&((data.len() / 4) as u16).to_be_bytes());
            p.extend_from_slice(data);
        }
        p.extend_from_slice(&self.payload);
        p
    }
}

fn rtp_parts() -> impl Strategy<Value = RtpParts> {
    (
        any::<u8>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u32>(), 0..=15),
        prop::option::of((
            any::<u16>(),
            (0usize..=6).prop_flat_map(|w| prop::collection::vec(any::<u8>(), w * 4)),
        )),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..1300),
    )
        .prop_map(
            |(marker_pt, seq, timestamp, ssrc, csrcs, extension, padding_bit, payload)| RtpParts {
                marker_pt,
                seq,
                timestamp,
                ssrc,
                csrcs,
                extension,
                padding_bit,
                payload,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_unprotect(
        profile in profile(),
        mut bytes in prop::collection::vec(any::<u8>(), 0..1500),
        rtp_like in any::<bool>(),
    ) {
        let (_, mut rx) = contexts(profile);
        if rtp_like {
            // Steer most inputs past header parsing and into the crypto.
            if let Some(b) = bytes.first_mut() {
                *b = 0x80 | (*b & 0x3f);
            }
        }
        let mut rtp = bytes.clone();
        prop_assert!(rx.unprotect_rtp(&mut rtp).is_err());
        let mut rtcp = bytes;
        prop_assert!(rx.unprotect_rtcp(&mut rtcp).is_err());
    }

    #[test]
    fn arbitrary_plaintext_never_panics_on_protect(
        profile in profile(),
        bytes in prop::collection::vec(any::<u8>(), 0..1500),
        room in 0usize..40,
    ) {
        let (mut tx, _) = contexts(profile);
        let mut buf = bytes.clone();
        buf.resize(bytes.len() + room, 0);
        let _ = tx.protect_rtp(&mut buf, bytes.len());
        let _ = tx.protect_rtcp(&mut buf, bytes.len());
        let _ = tx.protect_rtp(&mut buf, bytes.len() + room + 1);
    }

    #[test]
    fn rtp_round_trip(profile in profile(), parts in rtp_parts()) {
        let (mut tx, mut rx) = contexts(profile);
        let plain = parts.bytes();
        let mut buf = plain.clone();
        tx.protect_rtp_vec(&mut buf).unwrap();
        prop_assert_eq!(buf.len(), plain.len() + profile.rtp_overhead());
        let n = rx.unprotect_rtp(&mut buf).unwrap();
        prop_assert_eq!(&buf[..n], &plain[..]);
    }

    #[test]
    fn rtcp_round_trip(
        profile in profile(),
        first in 0u8..=0x3f,
        pt in any::<u8>(),
        ssrc in any::<u32>(),
        body in prop::collection::vec(any::<u8>(), 0..1200),
    ) {
        let (mut tx, mut rx) = contexts(profile);
        let mut plain = vec![0x80 | first, pt, 0, 0];
        plain.extend_from_slice(&ssrc.to_be_bytes());
        plain.extend_from_slice(&body);
        let mut buf = plain.clone();
        tx.protect_rtcp_vec(&mut buf).unwrap();
        prop_assert_eq!(buf.len(), plain.len() + profile.rtcp_overhead());
        let n = rx.unprotect_rtcp(&mut buf).unwrap();
        prop_assert_eq!(&buf[..n], &plain[..]);
    }

    /// Any single bit flip in a protected packet is caught.
    #[test]
    fn bit_flips_are_rejected(profile in profile(), parts in rtp_parts(), bit in any::<prop::sample::Index>()) {
        let (mut tx, mut rx) = contexts(profile);
        let mut buf = parts.bytes();
        tx.protect_rtp_vec(&mut buf).unwrap();
        let bit = bit.index(buf.len() * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(rx.unprotect_rtp(&mut buf).is_err());
    }

    /// The ROC and replay logic is relais's for both profiles; only the crypto differs
    /// (for AES-CM, webrtc-srtp, whose own ROC estimate relais keeps aligned). Sequence
    /// numbers walk with small steps and jumps of about half the sequence space, in both
    /// directions (late sends included); the receiver gets them reordered. Every packet
    /// must have the same fate in both profiles, and the ROCs must match.
    #[test]
    fn cm_and_gcm_accept_the_same_packets(
        steps in prop::collection::vec(
            prop_oneof![
                4 => -150i64..150,
                1 => 32_000i64..33_600,
                1 => -33_600i64..-32_000,
            ],
            1..48,
        ),
        swaps in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..24),
        replay_on in any::<bool>(),
    ) {
        let config = SrtpConfig {
            replay: if replay_on { ReplayProtection::default() } else { ReplayProtection::Disabled },
            ..SrtpConfig::default()
        };
        let mut seq = 60_000u16;
        let seqs: Vec<u16> = steps
            .iter()
            .map(|&d| {
                seq = seq.wrapping_add(d as u16);
                seq
            })
            .collect();
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        for (a, b) in &swaps {
            let (a, b) = (a.index(order.len()), b.index(order.len()));
            order.swap(a, b);
        }

        let mut fates = Vec::new();
        let mut rocs = Vec::new();
        for profile in SrtpProfile::ALL {
            let (relais, peer) = keys(profile, 33);
            let mut tx = SrtpSender::new(&peer.local, config).unwrap();
            let mut rx = SrtpReceiver::new(&relais.remote, config).unwrap();
            let wires: Vec<_> = seqs
                .iter()
                .map(|&s| {
                    let mut b = rtp(0x99, s, PLAIN);
                    tx.protect_rtp_vec(&mut b).map(|()| b)
                })
                .collect();
            let fate: Vec<_> = order
                .iter()
                .map(|&i| match &wires[i] {
                    Ok(w) => {
                        let mut w = w.clone();
                        match rx.unprotect_rtp(&mut w) {
                            Ok(n) => {
                                assert_eq!(&w[..n], &rtp(0x99, seqs[i], PLAIN)[..]);
                                "ok"
                            }
                            Err(e) => e.reason(),
                        }
                    }
                    Err(e) => e.reason(),
                })
                .collect();
            fates.push(fate);
            rocs.push((tx.roc(0x99), rx.roc(0x99)));
        }
        prop_assert_eq!(&fates[0], &fates[1]);
        prop_assert_eq!(rocs[0], rocs[1]);
    }
}
