//! SRTP protect / unprotect per packet: relais-srtp against webrtc-srtp used directly (both
//! profiles) and the raw ceiling, one `ring` AES-128-GCM seal/open of the same bytes with
//! the same AAD length.
//!
//! * `relais-gcm`: relais's own in-place AEAD_AES_128_GCM over `ring` (allocation-free).
//! * `relais-cm`: relais's AES_CM_128_HMAC_SHA1_80, which is a wrapper around webrtc-srtp:
//!   relais's header parse, ROC estimation, replay and SSRC checks, then the crate's
//!   `encrypt_rtp_with_header` / `decrypt_rtp_with_header` on the SSRC's own context
//!   (which allocate the packet they return), then a copy back into relais's buffer. Its
//!   distance to `webrtc-srtp-cm` is the cost of the wrapper (minus the header parse the
//!   crate's plain API does and the wrapper skips).
//! * `webrtc-srtp-{gcm,cm}`: `Context::encrypt_rtp` / `decrypt_rtp` called directly.
//!
//! Packets: a 1200-byte video packet and a 100-byte audio packet (total RTP length), each a
//! 12-byte RTP header plus an 8-byte RFC 8285 one-byte extension block (4-byte extension
//! header + 4 bytes of elements): 20 bytes of header/AAD, the rest payload. Throughput is
//! one element per iteration, so criterion's elem/s is packets per second on one core.
//!
//! Methodology:
//! * protect: relais encrypts in place in one buffer (for AES-CM: the crate's output is
//!   copied back into it), bumping the sequence number every iteration (what a forwarding
//!   worker does to its pooled buffer); the payload is the previous iteration's
//!   ciphertext, which costs the same to encrypt. webrtc-srtp gets the plaintext slice
//!   (sequence number bumped) and returns a freshly allocated packet, which is its API.
//! * unprotect: replay protection stays ON for relais (the default). Each input is a fresh
//!   packet with a new sequence number, made by `iter_batched_ref` setup code that is not
//!   timed; the timed routine is one unprotect. The ring ceiling opens a fresh copy of one
//!   sealed packet the same way.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark harness: a panic aborts the run"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use relais_srtp::{DtlsRole, SrtpConfig, SrtpKey, SrtpKeys, SrtpProfile, SrtpReceiver, SrtpSender};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

/// RTP header (12) + one-byte extension header (4) + elements (4).
const HEADER_LEN: usize = 20;
const SIZES: [(&str, usize); 2] = [("video-1200B", 1200), ("audio-100B", 100)];
const SSRC: u32 = 0x1234_5678;

fn packet(len: usize, seq: u16) -> Vec<u8> {
    let mut p = vec![0x90, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&90_000u32.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    // 0xBEDE, 1 word: id 1 (audio level, 1 byte), id 2 (1 byte).
    p.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 0x10, 0x7f, 0x20, 0x05]);
    debug_assert_eq!(p.len(), HEADER_LEN);
    p.resize(len, 0xa5);
    p
}

fn set_seq(p: &mut [u8], seq: u16) {
    p[2..4].copy_from_slice(&seq.to_be_bytes());
}

fn keys(profile: SrtpProfile) -> SrtpKeys {
    let material: Vec<u8> = (0..profile.keying_material_len() as u8)
        .map(|b| b.wrapping_mul(37))
        .collect();
    SrtpKeys::from_dtls_keying_material(profile, &material, DtlsRole::Client).unwrap()
}

fn webrtc(key: &SrtpKey) -> Context {
    let profile = match key.profile() {
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
    };
    Context::new(key.master_key(), key.master_salt(), profile, None, None).unwrap()
}

fn ring_key() -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[0x42; 16]).unwrap())
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn label(profile: SrtpProfile) -> &'static str {
    match profile {
        SrtpProfile::AeadAes128Gcm => "gcm",
        SrtpProfile::Aes128CmHmacSha1_80 => "cm",
    }
}

fn protect(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp_protect");
    group.throughput(Throughput::Elements(1));
    for (name, len) in SIZES {
        group.bench_function(BenchmarkId::new("ring-aes128gcm-seal-ceiling", name), |b| {
            let key = ring_key();
            let mut buf = packet(len, 0);
            let mut counter = 0u64;
            b.iter(|| {
                counter += 1;
                let (aad, payload) = buf.split_at_mut(HEADER_LEN);
                let tag = key
                    .seal_in_place_separate_tag(nonce(counter), Aad::from(&*aad), payload)
                    .unwrap();
                black_box(&tag);
            });
        });

        for profile in SrtpProfile::ALL {
            let key = keys(profile).local;
            group.bench_function(
                BenchmarkId::new(format!("relais-{}", label(profile)), name),
                |b| {
                    let mut sender = SrtpSender::new(&key, SrtpConfig::default()).unwrap();
                    let mut buf = packet(len, 0);
                    buf.resize(len + profile.rtp_overhead(), 0);
                    let mut seq = 0u16;
                    b.iter(|| {
                        seq = seq.wrapping_add(1);
                        set_seq(&mut buf, seq);
                        black_box(sender.protect_rtp(black_box(&mut buf), len).unwrap());
                    });
                },
            );

            group.bench_function(
                BenchmarkId::new(format!("webrtc-srtp-{}", label(profile)), name),
                |b| {
                    let mut ctx = webrtc(&key);
                    let mut plain = packet(len, 0);
                    let mut seq = 0u16;
                    b.iter(|| {
                        seq = seq.wrapping_add(1);
                        set_seq(&mut plain, seq);
                        black_box(ctx.encrypt_rtp(black_box(&plain)).unwrap());
                    });
                },
            );
        }
    }
    group.finish();
}

fn unprotect(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp_unprotect");
    group.throughput(Throughput::Elements(1));
    for (name, len) in SIZES {
        group.bench_function(BenchmarkId::new("ring-aes128gcm-open-ceiling", name), |b| {
            let key = ring_key();
            let mut sealed = packet(len, 0);
            let (aad, payload) = sealed.split_at_mut(HEADER_LEN);
            let tag = key
                .seal_in_place_separate_tag(nonce(1), Aad::from(&*aad), payload)
                .unwrap();
            sealed.extend_from_slice(tag.as_ref());
            b.iter_batched_ref(
                || sealed.clone(),
                |buf| {
                    let (aad, rest) = buf.split_at_mut(HEADER_LEN);
                    black_box(
                        key.open_in_place(nonce(1), Aad::from(&*aad), rest)
                            .unwrap()
                            .len(),
                    );
                },
                BatchSize::SmallInput,
            );
        });

        for profile in SrtpProfile::ALL {
            let keys = keys(profile);
            // The receiver unprotects with the key the peer protects with.
            let (tx_key, rx_key) = (keys.local.clone(), keys.local);

            group.bench_function(
                BenchmarkId::new(format!("relais-{}", label(profile)), name),
                |b| {
                    let mut sender = SrtpSender::new(&tx_key, SrtpConfig::default()).unwrap();
                    let mut receiver = SrtpReceiver::new(&rx_key, SrtpConfig::default()).unwrap();
                    let mut plain = packet(len, 0);
                    let mut seq = 0u16;
                    b.iter_batched_ref(
                        || {
                            seq = seq.wrapping_add(1);
                            set_seq(&mut plain, seq);
                            let mut wire = plain.clone();
                            sender.protect_rtp_vec(&mut wire).unwrap();
                            wire
                        },
                        |wire| black_box(receiver.unprotect_rtp(wire).unwrap()),
                        BatchSize::SmallInput,
                    );
                },
            );

            group.bench_function(
                BenchmarkId::new(format!("webrtc-srtp-{}", label(profile)), name),
                |b| {
                    let mut tx = webrtc(&tx_key);
                    let mut rx = webrtc(&rx_key);
                    let mut plain = packet(len, 0);
                    let mut seq = 0u16;
                    b.iter_batched_ref(
                        || {
                            seq = seq.wrapping_add(1);
                            set_seq(&mut plain, seq);
                            tx.encrypt_rtp(&plain).unwrap()
                        },
                        |wire| black_box(rx.decrypt_rtp(wire).unwrap()),
                        BatchSize::SmallInput,
                    );
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, protect, unprotect);
criterion_main!(benches);
