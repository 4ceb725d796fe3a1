//! The per-packet parsing and rewriting work of relais's forwarding hot path.
//!
//! - `rtp_parse/video_chrome`: a 1200-byte Chrome-like VP8 packet with five one-byte
//!   header extensions; parse, read SSRC/seq/ts, the transport-cc sequence number and two
//!   more extensions by meaning (what ingress does per packet).
//! - `rtp_parse/video_chrome_one_walk`: the same reads through one `ExtensionMap::values` walk.
//! - `rtp_parse/audio_level`: a Chrome-like Opus packet; parse and read the audio level.
//! - `rtp_parse/rtp_crate_unmarshal`: the `rtp` crate's (allocating) parse of the video
//!   packet, for scale.
//! - `codec/vp8_descriptor`: the VP8 payload descriptor of that packet.
//! - `rewrite/in_place`: per-receiver rewrite of SSRC/seq/ts, transport-cc seq and ids,
//!   plus VP8 picture id and TL0PICIDX, in a buffer that already holds the copy.
//! - `rewrite/copy_and_rewrite`: the same with the one copy per receiver included.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use relais_rtp::codec::vp8;
use relais_rtp::extensions::{AudioLevel, ExtensionKind, ExtensionMap, TransportSequenceNumber};
use relais_rtp::rtp::RtpPacket;
use webrtc_util::marshal::Unmarshal;

const VIDEO_LEN: usize = 1200;

/// Ids as Chrome's default offer numbers them (approximately).
fn sender_map() -> ExtensionMap {
    let mut map = ExtensionMap::new();
    for (id, kind) in [
        (1, ExtensionKind::AudioLevel),
        (2, ExtensionKind::AbsSendTime),
        (3, ExtensionKind::TransportCc),
        (4, ExtensionKind::Mid),
        (10, ExtensionKind::RtpStreamId),
        (12, ExtensionKind::PlayoutDelay),
    ] {
        map.insert(id, kind).ok();
    }
    map
}

/// The receiver negotiated other ids (and no playout-delay).
fn receiver_map() -> ExtensionMap {
    let mut map = ExtensionMap::new();
    for (id, kind) in [
        (5, ExtensionKind::TransportCc),
        (6, ExtensionKind::AbsSendTime),
        (9, ExtensionKind::Mid),
        (11, ExtensionKind::RtpStreamId),
    ] {
        map.insert(id, kind).ok();
    }
    map
}

fn video_packet() -> Vec<u8> {
    let mut p = vec![
        0x90, 0x60, 0x1A, 0x2B, 0x00, 0x01, 0x5F, 0x90, 0x11, 0x22, 0x33, 0x44, // header
        0xBE, 0xDE, 0x00, 0x05, // one-byte form, 5 words
        0x22, 0x12, 0x34, 0x56, // abs-send-time
        0x31, 0x00, 0x2A, // transport-cc 42
        0x40, b'1', // mid "1"
        0xA0, b'h', // rid "h"
        0xC2, 0x00, 0x00, 0x64, // playout-delay
        0x00, 0x00, 0x00, 0x00, 0x00, // padding to 20 bytes
        // VP8 descriptor: X S, I L T, 15-bit picture id, TL0PICIDX, TID.
        0x90, 0xE0, 0x81, 0x23, 0x07, 0x40, // then an inter-frame tag
        0x31, 0x0B, 0x00,
    ];
    p.resize(VIDEO_LEN, 0xA5);
    p
}

fn audio_packet() -> Vec<u8> {
    let mut p = vec![
        0x90, 0x6F, 0x1A, 0x2B, 0x00, 0x00, 0x3C, 0x00, 0x55, 0x66, 0x77, 0x88, // header
        0xBE, 0xDE, 0x00, 0x03, // one-byte form, 3 words
        0x10, 0x9E, // audio level, voice, -30 dBov
        0x22, 0x12, 0x34, 0x56, // abs-send-time
        0x31, 0x00, 0x2B, // transport-cc
        0x40, b'0', // mid
        0x00, // padding
    ];
    p.resize(12 + 16 + 80, 0x5A);
    p
}

fn parse(c: &mut Criterion) {
    let map = sender_map();
    let video = video_packet();
    let audio = audio_packet();
    let mut g = c.benchmark_group("rtp_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("video_chrome", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&video[..])).ok()?;
            let seq = map
                .get(&p, ExtensionKind::TransportCc)
                .and_then(|v| TransportSequenceNumber::parse(v).ok())?;
            let mid = map.get(&p, ExtensionKind::Mid)?;
            let abs = map.get(&p, ExtensionKind::AbsSendTime)?;
            Some((
                p.ssrc(),
                p.sequence_number(),
                p.timestamp(),
                seq,
                mid.len(),
                abs.len(),
            ))
        })
    });
    g.bench_function("video_chrome_one_walk", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&video[..])).ok()?;
            let values = map.values(&p);
            let seq = values
                .get(ExtensionKind::TransportCc)
                .and_then(|v| TransportSequenceNumber::parse(v).ok())?;
            let mid = values.get(ExtensionKind::Mid)?;
            let abs = values.get(ExtensionKind::AbsSendTime)?;
            Some((
                p.ssrc(),
                p.sequence_number(),
                p.timestamp(),
                seq,
                mid.len(),
                abs.len(),
            ))
        })
    });
    g.bench_function("audio_level", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&audio[..])).ok()?;
            let level = map
                .get(&p, ExtensionKind::AudioLevel)
                .and_then(|v| AudioLevel::parse(v).ok())?;
            Some((p.ssrc(), p.sequence_number(), level))
        })
    });
    g.bench_function("rtp_crate_unmarshal", |b| {
        b.iter(|| rtp::packet::Packet::unmarshal(&mut black_box(&video[..])).ok())
    });
    g.finish();

    let payload = RtpPacket::parse(&video[..])
        .map(|p| p.payload().to_vec())
        .unwrap_or_default();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("vp8_descriptor", |b| {
        b.iter(|| {
            // Read what the layer tracker reads, rather than moving the whole struct out.
            let d = vp8::parse(black_box(&payload[..])).ok()?;
            Some((
                d.picture_id?.value(),
                d.tl0_pic_idx?,
                d.temporal_id?,
                d.is_keyframe,
            ))
        })
    });
    g.finish();
}

/// What a receiver's worker does to its copy.
#[inline]
fn rewrite(buf: &mut [u8], from: &ExtensionMap, to: &ExtensionMap, seq: u16) -> Option<()> {
    let mut p = RtpPacket::parse(buf).ok()?;
    p.set_ssrc(0xCAFE_F00D);
    p.set_sequence_number(seq);
    p.set_timestamp(0x0102_0304);
    let tcc = p.extension_mut(from.id(ExtensionKind::TransportCc)?)?;
    TransportSequenceNumber(seq).write(tcc).ok()?;
    p.remap_extension_ids(|id| from.translate(to, id)).ok()?;
    let payload = p.payload_mut();
    vp8::rewrite_picture_id(payload, seq).ok()?;
    vp8::rewrite_tl0_pic_idx(payload, seq as u8).ok()
}

fn rewrite_bench(c: &mut Criterion) {
    let (from, to) = (sender_map(), receiver_map());
    let video = video_packet();
    let mut g = c.benchmark_group("rewrite");
    g.throughput(Throughput::Elements(1));
    g.bench_function("in_place", |b| {
        let mut buf = video.clone();
        let original_head = video.split_at(64).0;
        let mut seq = 0u16;
        b.iter(|| {
            // Restore the sender's first 64 bytes (the rewrite renamed and dropped ids);
            // the buffer stands for the pooled copy already made.
            buf.split_at_mut(64).0.copy_from_slice(original_head);
            seq = seq.wrapping_add(1);
            rewrite(black_box(&mut buf), &from, &to, seq)
        })
    });
    g.bench_function("copy_and_rewrite", |b| {
        let mut buf = vec![0u8; video.len()];
        let mut seq = 0u16;
        b.iter(|| {
            buf.copy_from_slice(black_box(&video));
            seq = seq.wrapping_add(1);
            rewrite(&mut buf, &from, &to, seq)
        })
    });
    g.finish();
}

criterion_group!(benches, parse, rewrite_bench);
criterion_main!(benches);
