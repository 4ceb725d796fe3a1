//! Interop with an independent implementation: libsrtp2 (Cisco), through the small C
//! driver `tests/libsrtp_helper.c`, compiled here at test time.
//!
//! Requires a C compiler and libsrtp2 headers (`apt-get install -y libsrtp2-dev
//! pkg-config`). Without them these tests FAIL with that message: they are never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::{hex, keys, rtcp, rtp, seqs_across_wrap, unhex, SHAPES};
use relais_srtp::{SrtpConfig, SrtpError, SrtpKey, SrtpProfile, SrtpReceiver, SrtpSender};

const INSTALL: &str = "the libsrtp2 interop tests need a C compiler and libsrtp2: \
                       install them with `apt-get install -y libsrtp2-dev pkg-config` (Debian/Ubuntu)";
const SSRCS: [u32; 3] = [0x0000_0001, 0x5501_a0b2, 0xfeed_f00d];

/// Compiles the helper once per test binary and returns its path.
fn helper() -> &'static PathBuf {
    static HELPER: OnceLock<PathBuf> = OnceLock::new();
    HELPER.get_or_init(|| {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/libsrtp_helper.c");
        // One binary per test process (concurrent `cargo test` runs must not overwrite a
        // helper another run is executing); earlier runs' binaries are removed first, which
        // is harmless even if one is still running.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libsrtp-helper");
        std::fs::create_dir_all(&dir).unwrap();
        for old in std::fs::read_dir(&dir).unwrap().flatten() {
            let _ = std::fs::remove_file(old.path());
        }
        let binary = dir.join(format!("libsrtp_helper-{}", std::process::id()));

        // Prefer pkg-config's flags; plain -lsrtp2 works for the Debian package too.
        let flags = Command::new("pkg-config")
            .args(["--cflags", "--libs", "libsrtp2"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_else(|| vec!["-lsrtp2".to_string()]);
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
        let out = Command::new(&cc)
            .arg("-O1")
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .args(&flags)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}` ({e}): {INSTALL}"));
        assert!(
            out.status.success(),
            "compiling {} failed:\n{}\n{INSTALL}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        binary
    })
}

#[derive(Clone, Copy)]
enum Op {
    RtpProtect,
    RtpUnprotect,
    RtcpProtect,
    RtcpUnprotect,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::RtpProtect => "rtp-protect",
            Op::RtpUnprotect => "rtp-unprotect",
            Op::RtcpProtect => "rtcp-protect",
            Op::RtcpUnprotect => "rtcp-unprotect",
        }
    }
}

/// Runs `ops` through one libsrtp2 process keyed with `key` (its outbound session protects,
/// its inbound session unprotects). One answer per op, in order.
fn libsrtp(key: &SrtpKey, ops: &[(Op, Vec<u8>)]) -> Vec<Result<Vec<u8>, String>> {
    let profile = match key.profile() {
        SrtpProfile::Aes128CmHmacSha1_80 => "cm",
        SrtpProfile::AeadAes128Gcm => "gcm",
    };
    let key_hex = format!("{}{}", hex(key.master_key()), hex(key.master_salt()));
    let mut child = Command::new(helper())
        .args([profile, &key_hex])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the libsrtp helper ({e}): {INSTALL}"));

    let input: String = ops
        .iter()
        .map(|(op, packet)| format!("{} {}\n", op.name(), hex(packet)))
        .collect();
    let mut stdin = child.stdin.take().unwrap();
    // Written from another thread so a large batch cannot deadlock on full pipes.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut output = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    writer.join().unwrap().unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "libsrtp helper failed: {stderr}");

    let answers: Vec<_> = output
        .lines()
        .map(|line| match line.strip_prefix("ok ") {
            Some(h) => Ok(unhex(h)),
            None => Err(line.to_string()),
        })
        .collect();
    assert_eq!(
        answers.len(),
        ops.len(),
        "helper output: {output}\n{stderr}"
    );
    answers
}

/// Packets of several SSRCs and header shapes, 20 per SSRC across the sequence wrap.
fn rtp_packets() -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    for (i, seq) in seqs_across_wrap(20).enumerate() {
        for (k, &ssrc) in SSRCS.iter().enumerate() {
            packets.push(rtp(ssrc, seq, SHAPES[(i + k) % SHAPES.len()]));
        }
    }
    packets
}

#[test]
fn relais_protects_libsrtp_unprotects_rtp() {
    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 11);
        let mut sender = SrtpSender::new(&relais.local, SrtpConfig::default()).unwrap();
        let plain = rtp_packets();
        let protected: Vec<Vec<u8>> = plain
            .iter()
            .map(|p| {
                let mut b = p.clone();
                sender.protect_rtp_vec(&mut b).unwrap();
                b
            })
            .collect();

        // libsrtp unprotects with the peer's remote key, and also protects the same
        // plaintexts with it: RTP protection is deterministic, so the bytes must match.
        let mut ops: Vec<_> = protected
            .iter()
            .map(|p| (Op::RtpUnprotect, p.clone()))
            .collect();
        ops.extend(plain.iter().map(|p| (Op::RtpProtect, p.clone())));
        let answers = libsrtp(&peer.remote, &ops);
        let (unprotected, reprotected) = answers.split_at(plain.len());

        for (i, p) in plain.iter().enumerate() {
            assert_eq!(unprotected[i].as_ref(), Ok(p), "{profile}: packet {i}");
            assert_eq!(
                reprotected[i].as_ref(),
                Ok(&protected[i]),
                "{profile}: packet {i}"
            );
        }
        for ssrc in SSRCS {
            assert_eq!(sender.roc(ssrc), Some(1));
        }
    }
}

#[test]
fn libsrtp_protects_relais_unprotects_rtp_with_reordering_across_the_wrap() {
    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 12);
        let plain = rtp_packets();
        let ops: Vec<_> = plain.iter().map(|p| (Op::RtpProtect, p.clone())).collect();
        let protected: Vec<Vec<u8>> = libsrtp(&peer.local, &ops)
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("{profile}: libsrtp protect: {e}")))
            .collect();

        // Deliver with neighbours swapped in groups (65533 after 0, and so on), so packets
        // of both rollover cycles arrive out of order around the wrap.
        let mut order: Vec<usize> = (0..protected.len()).collect();
        for chunk in order.chunks_mut(7) {
            chunk.reverse();
        }
        let mut receiver = SrtpReceiver::new(&relais.remote, SrtpConfig::default()).unwrap();
        for i in order {
            let mut wire = protected[i].clone();
            let n = receiver
                .unprotect_rtp(&mut wire)
                .unwrap_or_else(|e| panic!("{profile}: packet {i}: {e}"));
            assert_eq!(&wire[..n], &plain[i][..], "{profile}: packet {i}");
        }
        for ssrc in SSRCS {
            assert_eq!(receiver.roc(ssrc), Some(1));
        }
        // And libsrtp's packets are replays now.
        let mut again = protected[0].clone();
        assert!(matches!(
            receiver.unprotect_rtp(&mut again),
            Err(SrtpError::Replayed { .. })
        ));
    }
}

#[test]
fn rtcp_both_ways() {
    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 13);
        let mut sender = SrtpSender::new(&relais.local, SrtpConfig::default()).unwrap();
        let plain: Vec<Vec<u8>> = (0..8)
            .flat_map(|n| SSRCS.iter().map(move |&s| rtcp(s, n)))
            .collect();

        // relais -> libsrtp
        let ops: Vec<_> = plain
            .iter()
            .map(|p| {
                let mut b = p.clone();
                sender.protect_rtcp_vec(&mut b).unwrap();
                (Op::RtcpUnprotect, b)
            })
            .collect();
        for (i, answer) in libsrtp(&peer.remote, &ops).iter().enumerate() {
            assert_eq!(answer.as_ref(), Ok(&plain[i]), "{profile}: rtcp {i}");
        }

        // libsrtp -> relais
        let ops: Vec<_> = plain.iter().map(|p| (Op::RtcpProtect, p.clone())).collect();
        let mut receiver = SrtpReceiver::new(&relais.remote, SrtpConfig::default()).unwrap();
        for (i, answer) in libsrtp(&peer.local, &ops).into_iter().enumerate() {
            let mut wire = answer.unwrap_or_else(|e| panic!("{profile}: libsrtp protect: {e}"));
            assert_eq!(wire.len(), plain[i].len() + profile.rtcp_overhead());
            let n = receiver
                .unprotect_rtcp(&mut wire)
                .unwrap_or_else(|e| panic!("{profile}: rtcp {i}: {e}"));
            assert_eq!(&wire[..n], &plain[i][..], "{profile}: rtcp {i}");
        }
    }
}

#[test]
fn libsrtp_refuses_tampered_relais_packets() {
    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 14);
        let mut sender = SrtpSender::new(&relais.local, SrtpConfig::default()).unwrap();
        let mut good = rtp(7, 100, SHAPES[3]);
        sender.protect_rtp_vec(&mut good).unwrap();
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let answers = libsrtp(
            &peer.remote,
            &[(Op::RtpUnprotect, bad), (Op::RtpUnprotect, good)],
        );
        assert!(answers[0].is_err(), "{profile}: tampered packet accepted");
        assert!(answers[1].is_ok(), "{profile}: {:?}", answers[1]);
    }
}

/// RTP header, SSRC 0x0bad_f00d, sequence number `seq`, with `ext` as extension header +
/// block.
fn with_extension(seq: u16, ext: &[u8], payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x90u8, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x10, 0, 0x0b, 0xad, 0xf0, 0x0d]);
    p.extend_from_slice(ext);
    p.extend((0..payload_len).map(|i| i as u8));
    p
}

/// Extension blocks whose RFC 8285 elements webrtc-srtp's own header parser would measure
/// differently from the block length (or panic on): an element overrunning its block, the
/// reserved ID 15 ending the elements early, two-byte elements, an element claiming more
/// bytes than the packet has. relais (for AES-CM through webrtc-srtp) encrypts from the end
/// of the block, like libsrtp: byte-identical both ways.
#[test]
fn odd_extension_blocks_interoperate() {
    let blocks: [(&[u8], usize); 5] = [
        (&[0xbe, 0xde, 0, 1, 0x13, 1, 2, 3], 2),
        (&[0xbe, 0xde, 0, 2, 0xf0, 0, 0, 0, 0x10, 0xaa, 0, 0], 40),
        (&[0x10, 0, 0, 2, 1, 2, 0xaa, 0xbb, 2, 0, 0, 5], 30),
        (&[0xbe, 0xde, 0, 1, 0x1f, 0, 0, 0], 0),
        (&[0x10, 0, 0, 1, 5, 0xff, 0, 0], 20),
    ];
    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 15);
        let plain: Vec<_> = blocks
            .iter()
            .enumerate()
            .map(|(i, (ext, payload))| with_extension(100 + i as u16, ext, *payload))
            .collect();

        let mut sender = SrtpSender::new(&relais.local, SrtpConfig::default()).unwrap();
        let ours: Vec<_> = plain
            .iter()
            .map(|p| {
                let mut b = p.clone();
                sender.protect_rtp_vec(&mut b).unwrap();
                b
            })
            .collect();
        let mut ops: Vec<_> = ours.iter().map(|p| (Op::RtpUnprotect, p.clone())).collect();
        ops.extend(plain.iter().map(|p| (Op::RtpProtect, p.clone())));
        let answers = libsrtp(&peer.remote, &ops);
        let (unprotected, theirs) = answers.split_at(plain.len());
        for (i, p) in plain.iter().enumerate() {
            assert_eq!(unprotected[i].as_ref(), Ok(p), "{profile}: block {i}");
            assert_eq!(theirs[i].as_ref(), Ok(&ours[i]), "{profile}: block {i}");
        }

        let mut receiver = SrtpReceiver::new(&peer.remote, SrtpConfig::default()).unwrap();
        for (i, wire) in theirs.iter().enumerate() {
            let mut wire = wire.clone().unwrap();
            let n = receiver
                .unprotect_rtp(&mut wire)
                .unwrap_or_else(|e| panic!("{profile}: block {i}: {e}"));
            assert_eq!(&wire[..n], &plain[i][..], "{profile}: block {i}");
        }
    }
}

/// A late packet followed by a jump of almost half the sequence space (index 72_700 is
/// ROC 1, SEQ 7164: 32_700 after the highest index 40_000, 32_800 after the late 39_900).
/// webrtc-srtp alone would estimate ROC 0 from the late packet; relais keeps it on
/// libsrtp's (RFC 3711) estimate, sending and receiving.
#[test]
fn late_packet_then_jump_of_almost_half_the_sequence_space() {
    let indices = [0u64, 10_000, 20_000, 30_000, 39_900, 40_000, 72_700, 72_701];
    let late = 4; // 39_900, sent or received after 40_000
    let mut late_order: Vec<usize> = (0..indices.len()).collect();
    late_order.swap(late, late + 1);
    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 16);
        let plain: Vec<_> = indices
            .iter()
            .map(|&i| rtp(0x0101_0101, i as u16, SHAPES[0]))
            .collect();

        // relais sends 39_900 late; libsrtp gets the others, in order.
        let mut sender = SrtpSender::new(&relais.local, SrtpConfig::default()).unwrap();
        let mut ops = Vec::new();
        for &i in &late_order {
            let mut b = plain[i].clone();
            sender.protect_rtp_vec(&mut b).unwrap();
            if i != late {
                ops.push((Op::RtpUnprotect, b));
            }
        }
        let expected: Vec<_> = late_order.iter().filter(|&&i| i != late).collect();
        for (answer, &&i) in libsrtp(&peer.remote, &ops).iter().zip(&expected) {
            assert_eq!(answer.as_ref(), Ok(&plain[i]), "{profile}: {}", indices[i]);
        }
        assert_eq!(sender.roc(0x0101_0101), Some(1));

        // libsrtp sends in order; relais receives 39_900 late.
        let ops: Vec<_> = plain.iter().map(|p| (Op::RtpProtect, p.clone())).collect();
        let wires = libsrtp(&peer.local, &ops);
        let mut receiver = SrtpReceiver::new(&relais.remote, SrtpConfig::default()).unwrap();
        for &i in &late_order {
            let mut wire = wires[i].clone().unwrap();
            let n = receiver
                .unprotect_rtp(&mut wire)
                .unwrap_or_else(|e| panic!("{profile}: {}: {e}", indices[i]));
            assert_eq!(&wire[..n], &plain[i][..]);
        }
        assert_eq!(receiver.roc(0x0101_0101), Some(1));
    }
}
