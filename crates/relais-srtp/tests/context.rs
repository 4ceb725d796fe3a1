//! Behaviour of the contexts: replay protection, rollover counter, authentication
//! failures, truncation, the SSRC cap, and the typed errors for each.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{first_srtcp_index, keys, rtcp, rtp, seqs_across_wrap, PLAIN, RICH};
use relais_srtp::{
    HeaderError, ReplayProtection, SrtpConfig, SrtpError, SrtpProfile, SrtpReceiver, SrtpSender,
};

fn pair(profile: SrtpProfile, config: SrtpConfig) -> (SrtpSender, SrtpReceiver) {
    let (relais, peer) = keys(profile, 21);
    (
        SrtpSender::new(&peer.local, config).unwrap(),
        SrtpReceiver::new(&relais.remote, config).unwrap(),
    )
}

fn protect(sender: &mut SrtpSender, plain: &[u8]) -> Vec<u8> {
    let mut b = plain.to_vec();
    sender.protect_rtp_vec(&mut b).unwrap();
    b
}

fn protect_rtcp(sender: &mut SrtpSender, plain: &[u8]) -> Vec<u8> {
    let mut b = plain.to_vec();
    sender.protect_rtcp_vec(&mut b).unwrap();
    b
}

fn unprotect(receiver: &mut SrtpReceiver, wire: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut b = wire.to_vec();
    let n = receiver.unprotect_rtp(&mut b)?;
    b.truncate(n);
    Ok(b)
}

fn unprotect_rtcp(receiver: &mut SrtpReceiver, wire: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut b = wire.to_vec();
    let n = receiver.unprotect_rtcp(&mut b)?;
    b.truncate(n);
    Ok(b)
}

#[test]
fn same_packet_twice_is_a_replay() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, SrtpConfig::default());
        let wire = protect(&mut tx, &rtp(9, 1000, RICH));
        assert!(unprotect(&mut rx, &wire).is_ok());
        assert_eq!(
            unprotect(&mut rx, &wire),
            Err(SrtpError::Replayed {
                ssrc: 9,
                index: 1000
            })
        );

        let wire = protect_rtcp(&mut tx, &rtcp(9, 1));
        assert!(unprotect_rtcp(&mut rx, &wire).is_ok());
        assert_eq!(
            unprotect_rtcp(&mut rx, &wire),
            Err(SrtpError::Replayed {
                ssrc: 9,
                index: first_srtcp_index(profile)
            })
        );
    }
}

#[test]
fn packets_behind_the_window_are_too_old() {
    for profile in SrtpProfile::ALL {
        for window in [64u32, 128] {
            let config = SrtpConfig {
                replay: ReplayProtection::Window(window),
                ..SrtpConfig::default()
            };
            let (mut tx, mut rx) = pair(profile, config);
            let wires: Vec<_> = (0..300u16)
                .map(|s| protect(&mut tx, &rtp(5, s, PLAIN)))
                .collect();
            // Deliver 0 and then 1..300 except 299 - window and 300 - window.
            let oldest_ok = 299 - window as usize + 1;
            for (s, w) in wires.iter().enumerate() {
                if s != oldest_ok && s != oldest_ok - 1 {
                    unprotect(&mut rx, w).unwrap();
                }
            }
            // Exactly at the window's edge: accepted; one further back: too old.
            assert!(
                unprotect(&mut rx, &wires[oldest_ok]).is_ok(),
                "{profile} {window}"
            );
            assert_eq!(
                unprotect(&mut rx, &wires[oldest_ok - 1]),
                Err(SrtpError::TooOld {
                    ssrc: 5,
                    index: (oldest_ok - 1) as u64
                }),
                "{profile} {window}"
            );
            assert!(matches!(
                unprotect(&mut rx, &wires[0]),
                Err(SrtpError::TooOld { .. })
            ));

            // SRTCP: same window over the SRTCP index.
            let wires: Vec<_> = (0..300)
                .map(|n| protect_rtcp(&mut tx, &rtcp(5, n)))
                .collect();
            for w in &wires[1..] {
                unprotect_rtcp(&mut rx, w).unwrap();
            }
            assert_eq!(
                unprotect_rtcp(&mut rx, &wires[0]),
                Err(SrtpError::TooOld {
                    ssrc: 5,
                    index: first_srtcp_index(profile)
                })
            );
        }
    }
}

#[test]
fn reordered_within_the_window_is_accepted_once() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, SrtpConfig::default());
        let wires: Vec<_> = (0..50u16)
            .map(|s| protect(&mut tx, &rtp(6, s, PLAIN)))
            .collect();
        let order = [0usize, 3, 1, 2, 10, 4, 9, 5, 8, 6, 7];
        for &i in &order {
            assert_eq!(unprotect(&mut rx, &wires[i]), Ok(rtp(6, i as u16, PLAIN)));
        }
        for &i in &order {
            assert!(matches!(
                unprotect(&mut rx, &wires[i]),
                Err(SrtpError::Replayed { .. })
            ));
        }
        // A packet from 40 back (a NACK retransmission) is still fine.
        for w in &wires[11..50] {
            if w != &wires[20] {
                unprotect(&mut rx, w).unwrap();
            }
        }
        assert!(unprotect(&mut rx, &wires[20]).is_ok());
    }
}

#[test]
fn replay_protection_can_be_disabled() {
    for profile in SrtpProfile::ALL {
        let config = SrtpConfig {
            replay: ReplayProtection::Disabled,
            ..SrtpConfig::default()
        };
        let (mut tx, mut rx) = pair(profile, config);
        let wire = protect(&mut tx, &rtp(1, 7, PLAIN));
        for _ in 0..3 {
            assert!(unprotect(&mut rx, &wire).is_ok());
        }
        let wire = protect_rtcp(&mut tx, &rtcp(1, 0));
        for _ in 0..3 {
            assert!(unprotect_rtcp(&mut rx, &wire).is_ok());
        }
    }
}

#[test]
fn roc_steps_on_send_and_receive_across_the_wrap() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, SrtpConfig::default());
        for seq in seqs_across_wrap(20) {
            let plain = rtp(0xabc, seq, RICH);
            let wire = protect(&mut tx, &plain);
            assert_eq!(unprotect(&mut rx, &wire), Ok(plain));
            let roc = u32::from(seq < 65530);
            assert_eq!(tx.roc(0xabc), Some(roc), "{profile} seq {seq}");
            assert_eq!(rx.roc(0xabc), Some(roc), "{profile} seq {seq}");
        }
        // Several wraps in a row (every 1000th sequence number, so the estimate keeps up).
        let mut seq = 14u16;
        for _ in 0..(3 * 66) {
            seq = seq.wrapping_add(1000);
            let wire = protect(&mut tx, &rtp(0xabc, seq, PLAIN));
            unprotect(&mut rx, &wire).unwrap();
        }
        assert_eq!(tx.roc(0xabc), Some(4));
        assert_eq!(rx.roc(0xabc), Some(4));
    }
}

#[test]
fn roc_survives_reordering_around_the_wrap() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, SrtpConfig::default());
        // Protected in order: 65530..=65535 (ROC 0), 0..=9 (ROC 1).
        let seqs: Vec<u16> = seqs_across_wrap(16).collect();
        let wires: Vec<_> = seqs
            .iter()
            .map(|&s| protect(&mut tx, &rtp(3, s, PLAIN)))
            .collect();
        // Delivered: 65530, 65533, 0, 65531, 2, 65535, 1, 65534, 3, 65532, 4..=9.
        let order = [0usize, 3, 6, 1, 8, 5, 7, 4, 9, 2, 10, 11, 12, 13, 14, 15];
        for &i in &order {
            assert_eq!(
                unprotect(&mut rx, &wires[i]),
                Ok(rtp(3, seqs[i], PLAIN)),
                "{profile}: seq {}",
                seqs[i]
            );
        }
        assert_eq!(rx.roc(3), Some(1));
        // Late retransmissions of both cycles are replays, not misdecrypted.
        assert!(matches!(
            unprotect(&mut rx, &wires[5]),
            Err(SrtpError::Replayed { index: 65535, .. })
        ));
        assert!(matches!(
            unprotect(&mut rx, &wires[6]),
            Err(SrtpError::Replayed {
                index: 0x1_0000,
                ..
            })
        ));
        // The sender re-protecting 65535 after the wrap stays on ROC 0 (a retransmission).
        let again = protect(&mut tx, &rtp(3, 65535, PLAIN));
        assert_eq!(again, wires[5]);
        assert_eq!(tx.roc(3), Some(1));
    }
}

/// webrtc-srtp (which does AES-CM) estimates the ROC from the last packet it processed,
/// relais from the highest one. After a late packet, a jump of almost half the sequence
/// space is ROC + 1 from the highest but ROC + 0 from the late packet: relais realigns the
/// crate first, so AES-CM behaves exactly like GCM. Each side is checked against a peer
/// that saw the packets in order (a sender and a receiver that both used the crate's
/// estimate unaligned would agree with each other, on the wrong ROC). The late packet is
/// inside the default replay window, or far behind with replay protection off.
#[test]
fn late_packet_then_jump_of_almost_half_the_sequence_space() {
    let disabled = SrtpConfig {
        replay: ReplayProtection::Disabled,
        ..SrtpConfig::default()
    };
    struct Case {
        config: SrtpConfig,
        /// Send side: indices the sender protects, in order; the receiver gets all but
        /// the one at `unseen`, so its estimate is the plain one.
        sent: &'static [u64],
        unseen: usize,
        /// Receive side: indices the sender protects in order, and the arrival order
        /// (positions in `in_order`).
        in_order: &'static [u64],
        arrival: &'static [usize],
    }
    // 72_700 is ROC 1, SEQ 7164: 32_700 after 40_000 but 32_800 after 39_900.
    // 70_000 is ROC 1, SEQ 4464: 30_000 after 40_000 but 60_000 after 10_000.
    let cases = [
        Case {
            config: SrtpConfig::default(),
            sent: &[0, 10_000, 20_000, 30_000, 40_000, 39_900, 72_700, 72_701],
            unseen: 5,
            in_order: &[0, 10_000, 20_000, 30_000, 39_900, 40_000, 72_700, 72_701],
            arrival: &[0, 1, 2, 3, 5, 4, 6, 7],
        },
        Case {
            config: disabled,
            // 10_000 twice: a retransmission.
            sent: &[0, 10_000, 20_000, 30_000, 40_000, 10_000, 70_000, 70_001],
            unseen: 5,
            in_order: &[0, 10_000, 20_000, 30_000, 40_000, 70_000, 70_001],
            arrival: &[0, 1, 2, 3, 4, 1, 5, 6],
        },
    ];
    let packet = |tx: &mut SrtpSender, index: u64| {
        let plain = rtp(0x77, index as u16, PLAIN);
        (protect(tx, &plain), plain)
    };
    for profile in SrtpProfile::ALL {
        for case in &cases {
            let (mut tx, mut rx) = pair(profile, case.config);
            for (at, &index) in case.sent.iter().enumerate() {
                let (wire, plain) = packet(&mut tx, index);
                if at != case.unseen {
                    assert_eq!(
                        unprotect(&mut rx, &wire),
                        Ok(plain),
                        "{profile} send side, index {index}"
                    );
                }
            }
            assert_eq!((tx.roc(0x77), rx.roc(0x77)), (Some(1), Some(1)));

            let (mut tx, mut rx) = pair(profile, case.config);
            let wires: Vec<_> = case.in_order.iter().map(|&i| packet(&mut tx, i)).collect();
            for &at in case.arrival {
                let (wire, plain) = &wires[at];
                assert_eq!(
                    unprotect(&mut rx, wire).as_ref(),
                    Ok(plain),
                    "{profile} receive side, index {}",
                    case.in_order[at]
                );
            }
            assert_eq!(rx.roc(0x77), Some(1), "{profile}");
        }
    }
}

/// `remove_ssrc` really forgets: a new stream on the same SSRC starts at ROC 0 and a
/// fresh SRTCP index on both sides (for AES-CM in new webrtc-srtp contexts: the crate
/// itself cannot drop or reset an SSRC's state).
#[test]
fn a_removed_ssrc_starts_afresh() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, SrtpConfig::default());
        for seq in seqs_across_wrap(10) {
            let plain = rtp(0x55, seq, PLAIN);
            assert_eq!(unprotect(&mut rx, &protect(&mut tx, &plain)), Ok(plain));
        }
        for n in 0..3 {
            let plain = rtcp(0x55, n);
            let wire = protect_rtcp(&mut tx, &plain);
            assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(plain));
        }
        assert_eq!((tx.roc(0x55), rx.roc(0x55)), (Some(1), Some(1)));

        tx.remove_ssrc(0x55);
        rx.remove_ssrc(0x55);
        assert_eq!((tx.roc(0x55), rx.roc(0x55)), (None, None));
        // Sequence number 100 is ROC 0 for the new stream (it would be ROC 1 after the
        // old stream's last packet, 0x1_0003).
        for seq in [100u16, 101] {
            let plain = rtp(0x55, seq, PLAIN);
            assert_eq!(
                unprotect(&mut rx, &protect(&mut tx, &plain)),
                Ok(plain),
                "{profile} seq {seq}"
            );
        }
        assert_eq!((tx.roc(0x55), rx.roc(0x55)), (Some(0), Some(0)));
        let wire = protect_rtcp(&mut tx, &rtcp(0x55, 9));
        assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(rtcp(0x55, 9)));
        assert_eq!(
            unprotect_rtcp(&mut rx, &wire),
            Err(SrtpError::Replayed {
                ssrc: 0x55,
                index: first_srtcp_index(profile)
            })
        );
    }
}

#[test]
fn tampering_fails_authentication_and_does_not_move_the_window() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, SrtpConfig::default());
        let plain = rtp(4, 500, RICH);
        let wire = protect(&mut tx, &plain);
        let header_len = 12 + 8 + 12;
        for at in [
            0usize,
            3,
            11,
            12,
            header_len,
            wire.len() / 2,
            wire.len() - 1,
        ] {
            let mut bad = wire.clone();
            bad[at] ^= 0x20;
            let got = unprotect(&mut rx, &bad);
            // Flipping a header bit may also change what the header parses as.
            assert!(
                matches!(got, Err(SrtpError::AuthFailed | SrtpError::BadHeader(_))),
                "{profile} byte {at}: {got:?}"
            );
        }
        // The genuine packet still goes through: failures did not enter the window.
        assert_eq!(unprotect(&mut rx, &wire), Ok(plain));

        let plain = rtcp(4, 9);
        let wire = protect_rtcp(&mut tx, &plain);
        for at in [1usize, 8, 20, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x01;
            assert_eq!(
                unprotect_rtcp(&mut rx, &bad),
                Err(SrtpError::AuthFailed),
                "{profile} {at}"
            );
        }
        assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(plain));
    }
}

#[test]
fn wrong_key_fails_authentication() {
    let (a, _) = keys(SrtpProfile::AeadAes128Gcm, 1);
    let (b, _) = keys(SrtpProfile::AeadAes128Gcm, 2);
    let mut tx = SrtpSender::new(&a.local, SrtpConfig::default()).unwrap();
    let mut rx = SrtpReceiver::new(&b.local, SrtpConfig::default()).unwrap();
    let wire = protect(&mut tx, &rtp(1, 1, PLAIN));
    assert_eq!(unprotect(&mut rx, &wire), Err(SrtpError::AuthFailed));
}

#[test]
fn truncated_and_malformed_packets_are_typed_errors() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, SrtpConfig::default());
        let wire = protect(&mut tx, &rtp(8, 1, RICH));
        let header_len = 12 + 8 + 12;
        let tag = profile.rtp_auth_tag_len();

        assert_eq!(
            unprotect(&mut rx, &[]),
            Err(SrtpError::TooShort { len: 0, min: 12 })
        );
        assert_eq!(
            unprotect(&mut rx, &wire[..5]),
            Err(SrtpError::TooShort { len: 5, min: 12 })
        );
        assert_eq!(
            unprotect(&mut rx, &wire[..14]),
            Err(SrtpError::BadHeader(HeaderError::CsrcOverrun))
        );
        assert_eq!(
            unprotect(&mut rx, &wire[..24]),
            Err(SrtpError::BadHeader(HeaderError::ExtensionOverrun))
        );
        assert_eq!(
            unprotect(&mut rx, &wire[..header_len + tag - 1]),
            Err(SrtpError::TooShort {
                len: header_len + tag - 1,
                min: header_len + tag
            })
        );
        // Cut in the payload: only the tag can tell.
        assert_eq!(
            unprotect(&mut rx, &wire[..wire.len() - 3]),
            Err(SrtpError::AuthFailed)
        );
        let mut v1 = wire.clone();
        v1[0] = (v1[0] & 0x3f) | 0x40;
        assert_eq!(
            unprotect(&mut rx, &v1),
            Err(SrtpError::BadHeader(HeaderError::Version(1)))
        );

        let wire = protect_rtcp(&mut tx, &rtcp(8, 1));
        let min = 8 + profile.rtcp_overhead();
        assert_eq!(
            unprotect_rtcp(&mut rx, &wire[..7]),
            Err(SrtpError::TooShort { len: 7, min: 8 })
        );
        assert_eq!(
            unprotect_rtcp(&mut rx, &wire[..min - 1]),
            Err(SrtpError::TooShort { len: min - 1, min })
        );
        // Cut so that ciphertext lands where the E flag is read: refused either way.
        assert!(matches!(
            unprotect_rtcp(&mut rx, &wire[..min]),
            Err(SrtpError::AuthFailed | SrtpError::UnencryptedSrtcp)
        ));
        // E flag cleared.
        let mut clear = wire.clone();
        let e_at = match profile {
            SrtpProfile::AeadAes128Gcm => clear.len() - 4,
            SrtpProfile::Aes128CmHmacSha1_80 => clear.len() - 14,
        };
        clear[e_at] &= 0x7f;
        assert_eq!(
            unprotect_rtcp(&mut rx, &clear),
            Err(SrtpError::UnencryptedSrtcp)
        );
        assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(rtcp(8, 1)));
    }
}

#[test]
fn protect_checks_room_and_headers() {
    for profile in SrtpProfile::ALL {
        let (mut tx, _) = pair(profile, SrtpConfig::default());
        let plain = rtp(1, 1, PLAIN);
        let mut buf = plain.clone();
        buf.resize(plain.len() + profile.rtp_overhead() - 1, 0);
        let before = buf.clone();
        assert_eq!(
            tx.protect_rtp(&mut buf, plain.len()),
            Err(SrtpError::BufferTooSmall {
                needed: plain.len() + profile.rtp_overhead(),
                capacity: plain.len() + profile.rtp_overhead() - 1
            })
        );
        assert_eq!(buf, before, "untouched on error");
        assert!(matches!(
            tx.protect_rtp(&mut buf, usize::MAX),
            Err(SrtpError::BufferTooSmall { .. })
        ));
        let mut bad = vec![0u8; 64];
        assert_eq!(
            tx.protect_rtp(&mut bad, 40),
            Err(SrtpError::BadHeader(HeaderError::Version(0)))
        );
        assert_eq!(
            tx.protect_rtcp(&mut bad, 4),
            Err(SrtpError::TooShort { len: 4, min: 8 })
        );
        let mut v = vec![0x80u8, 96, 0, 1];
        assert_eq!(
            tx.protect_rtp_vec(&mut v),
            Err(SrtpError::TooShort { len: 4, min: 12 })
        );
        assert_eq!(v, [0x80, 96, 0, 1], "vec restored on error");
    }
}

#[test]
fn ssrc_cap_is_enforced_and_forgeries_do_not_consume_it() {
    for profile in SrtpProfile::ALL {
        let config = SrtpConfig {
            max_ssrcs: 2,
            ..SrtpConfig::default()
        };
        let (mut tx, mut rx) = pair(profile, config);
        let (_, stranger) = keys(profile, 99);
        let many = SrtpConfig {
            max_ssrcs: 1000,
            ..SrtpConfig::default()
        };
        let mut forger = SrtpSender::new(&stranger.local, many).unwrap();

        // Forged packets from many SSRCs: all fail auth, none takes a slot.
        for ssrc in 100..200 {
            let forged = protect(&mut forger, &rtp(ssrc, 1, PLAIN));
            assert_eq!(unprotect(&mut rx, &forged), Err(SrtpError::AuthFailed));
        }

        for ssrc in [1, 2] {
            let w = protect(&mut tx, &rtp(ssrc, 1, PLAIN));
            unprotect(&mut rx, &w).unwrap();
        }
        let mut third = rtp(3, 1, PLAIN);
        assert_eq!(
            tx.protect_rtp_vec(&mut third),
            Err(SrtpError::TooManySsrcs { max: 2 })
        );
        let mut other_tx =
            SrtpSender::new(&keys(profile, 21).1.local, SrtpConfig::default()).unwrap();
        let w3 = protect(&mut other_tx, &rtp(3, 1, PLAIN));
        assert_eq!(
            unprotect(&mut rx, &w3),
            Err(SrtpError::TooManySsrcs { max: 2 })
        );
        // Known SSRCs keep working.
        let w = protect(&mut tx, &rtp(1, 2, PLAIN));
        assert!(unprotect(&mut rx, &w).is_ok());

        // Freeing a slot admits the new SSRC.
        tx.remove_ssrc(2);
        rx.remove_ssrc(2);
        assert!(tx.protect_rtp_vec(&mut rtp(3, 1, PLAIN)).is_ok());
        assert!(unprotect(&mut rx, &w3).is_ok());

        // RTCP has its own cap.
        for ssrc in [1, 2] {
            let w = protect_rtcp(&mut tx, &rtcp(ssrc, 0));
            unprotect_rtcp(&mut rx, &w).unwrap();
        }
        let mut r3 = rtcp(3, 0);
        assert_eq!(
            tx.protect_rtcp_vec(&mut r3),
            Err(SrtpError::TooManySsrcs { max: 2 })
        );
        let w = protect_rtcp(&mut other_tx, &rtcp(3, 0));
        assert_eq!(
            unprotect_rtcp(&mut rx, &w),
            Err(SrtpError::TooManySsrcs { max: 2 })
        );
    }
}

#[test]
fn error_reasons_are_distinct() {
    let errors = [
        SrtpError::KeyingMaterialLength {
            expected: 0,
            actual: 0,
        },
        SrtpError::MasterKeyLength {
            expected: 0,
            actual: 0,
        },
        SrtpError::MasterSaltLength {
            expected: 0,
            actual: 0,
        },
        SrtpError::InvalidConfig(""),
        SrtpError::TooShort { len: 0, min: 0 },
        SrtpError::BufferTooSmall {
            needed: 0,
            capacity: 0,
        },
        SrtpError::BadHeader(HeaderError::CsrcOverrun),
        SrtpError::AuthFailed,
        SrtpError::Replayed { ssrc: 0, index: 0 },
        SrtpError::TooOld { ssrc: 0, index: 0 },
        SrtpError::TooManySsrcs { max: 0 },
        SrtpError::IndexExhausted { ssrc: 0 },
        SrtpError::UnencryptedSrtcp,
        SrtpError::Crypto,
    ];
    let mut reasons: Vec<_> = errors.iter().map(SrtpError::reason).collect();
    reasons.sort_unstable();
    reasons.dedup();
    assert_eq!(reasons.len(), errors.len());
}

/// Inputs that make webrtc-srtp 0.17 panic (an extension element longer than its block)
/// or accept a forgery (SRTCP with the E flag clear is returned unauthenticated) are
/// refused with typed errors here.
#[test]
fn packets_that_trip_webrtc_srtp_are_refused() {
    let (_, mut rx) = pair(SrtpProfile::Aes128CmHmacSha1_80, SrtpConfig::default());
    let mut bad_ext = [
        0x90u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x1f, 0, 0, 0,
    ];
    assert_eq!(
        rx.unprotect_rtp(&mut bad_ext),
        Err(SrtpError::TooShort { len: 20, min: 30 })
    );
    let mut forged = vec![0x80u8, 200, 0, 6, 0, 0, 0, 9];
    forged.extend_from_slice(b"forged body, no key needed");
    forged.extend_from_slice(&[0, 0, 0, 1]);
    forged.extend_from_slice(&[0xee; 10]);
    assert_eq!(
        rx.unprotect_rtcp(&mut forged),
        Err(SrtpError::UnencryptedSrtcp)
    );
}

#[test]
fn contexts_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SrtpSender>();
    check::<SrtpReceiver>();
    check::<SrtpError>();
}
