//! Packet builders and keys shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use relais_srtp::{DtlsRole, SrtpKeys, SrtpProfile};

/// Deterministic, non-trivial keying material for `profile` (a different stream per seed).
pub fn material(profile: SrtpProfile, seed: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9u32 ^ u32::from(seed);
    (0..profile.keying_material_len())
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Both ends of one DTLS-SRTP association: relais as DTLS server, the peer as client.
pub fn keys(profile: SrtpProfile, seed: u8) -> (SrtpKeys, SrtpKeys) {
    let m = material(profile, seed);
    (
        SrtpKeys::from_dtls_keying_material(profile, &m, DtlsRole::Server).unwrap(),
        SrtpKeys::from_dtls_keying_material(profile, &m, DtlsRole::Client).unwrap(),
    )
}

/// SRTCP index of an SSRC's first packet from an `SrtpSender`: GCM numbers from 0, AES-CM
/// from 1 (webrtc-srtp, which does that profile, increments before the first packet).
pub fn first_srtcp_index(profile: SrtpProfile) -> u64 {
    match profile {
        SrtpProfile::AeadAes128Gcm => 0,
        SrtpProfile::Aes128CmHmacSha1_80 => 1,
    }
}

/// Shape of an RTP header to build.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub csrcs: u8,
    /// Add an RFC 8285 one-byte extension block (2 words: ids 1 and 2, one padding byte).
    pub extension: bool,
    pub payload_len: usize,
}

pub const PLAIN: Shape = Shape {
    csrcs: 0,
    extension: false,
    payload_len: 160,
};
pub const RICH: Shape = Shape {
    csrcs: 2,
    extension: true,
    payload_len: 1000,
};

/// The shapes interop tests cycle through: plain, CSRCs, extension, both.
pub const SHAPES: [Shape; 4] = [
    PLAIN,
    Shape {
        csrcs: 3,
        extension: false,
        payload_len: 90,
    },
    Shape {
        csrcs: 0,
        extension: true,
        payload_len: 1200,
    },
    RICH,
];

/// An RTP packet (V=2, PT 96 or 111) with the given shape.
pub fn rtp(ssrc: u32, seq: u16, shape: Shape) -> Vec<u8> {
    let mut p = Vec::with_capacity(1500);
    let x = if shape.extension { 0x10 } else { 0 };
    p.push(0x80 | x | (shape.csrcs & 0x0f));
    p.push(if seq % 7 == 0 { 0x80 | 96 } else { 111 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq).wrapping_mul(960)).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for i in 0..u32::from(shape.csrcs) {
        p.extend_from_slice(&(0xc5c0_0000 + i).to_be_bytes());
    }
    if shape.extension {
        p.extend_from_slice(&[0xbe, 0xde, 0x00, 0x02]);
        // id 1 len 1 (audio level), id 2 len 4 (abs-send-time-ish), one padding byte.
        p.extend_from_slice(&[0x10, 0x55, 0x23, 0x01, 0x02, 0x03, (seq & 0xff) as u8, 0x00]);
    }
    p.extend((0..shape.payload_len).map(|i| (i as u8).wrapping_mul(31) ^ (seq as u8)));
    p
}

/// A compound RTCP packet: SR (sender `ssrc`) followed by an RR, `n` mixed in.
pub fn rtcp(ssrc: u32, n: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    // SR: length 6 words -> 28 bytes.
    p.extend_from_slice(&[0x80, 200, 0, 6]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&(0xe000_0000u64 + u64::from(n)).to_be_bytes()); // NTP
    p.extend_from_slice(&(n * 960).to_be_bytes()); // RTP timestamp
    p.extend_from_slice(&n.to_be_bytes()); // packet count
    p.extend_from_slice(&(n * 100).to_be_bytes()); // octet count
                                                   // RR with one report block: length 7 words -> 32 bytes.
    p.extend_from_slice(&[0x81, 201, 0, 7]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&0x0bad_cafeu32.to_be_bytes());
    p.extend_from_slice(&[
        0, 0, 0, 1, 0, 0, 0x10, 0x00, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    p
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Sequence numbers starting near the wrap: 65530, ..., 65535, 0, 1, ... (`n` of them).
pub fn seqs_across_wrap(n: u16) -> impl Iterator<Item = u16> {
    (0..n).map(|i| 65530u16.wrapping_add(i))
}
