//! Shared fixtures: one publisher (Opus + VP8 3-layer simulcast) and viewers.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    dead_code,
    reason = "test code: a panic is a test failure"
)]

use std::time::{Duration, Instant};

use relais_conference::{
    CodecName, EndpointId, Forwarder, ForwarderConfig, ForwarderOutput, MediaKind, MediaLine,
    NegotiatedCodec,
};
use relais_rtp::extensions::{ExtensionKind, ExtensionMap};
use relais_rtp::rtp::RtpPacket;

pub const PUB: EndpointId = EndpointId(1);
pub const PUB2: EndpointId = EndpointId(2);
pub const V1: EndpointId = EndpointId(10);
pub const V2: EndpointId = EndpointId(11);

pub const STREAM: &str = "live";

// Publisher extension ids.
pub const P_AUDIO_LEVEL: u8 = 1;
pub const P_TCC: u8 = 3;
pub const P_MID: u8 = 4;
pub const P_ABS_CAPTURE: u8 = 7;
pub const P_RID: u8 = 10;
pub const P_RRID: u8 = 11;

// Viewer extension ids.
pub const V_TCC: u8 = 5;
pub const V_ABS_CAPTURE: u8 = 2;
pub const V_AUDIO_LEVEL: u8 = 9;

pub const AUDIO_SSRC: u32 = 0xA0;
/// Layer SSRCs of the first publisher, lowest first.
pub const LAYER_SSRCS: [u32; 3] = [0xF1, 0xF2, 0xF3];

pub const ABS_CAPTURE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

pub fn publisher_ext() -> ExtensionMap {
    let mut m = ExtensionMap::new();
    m.insert(P_AUDIO_LEVEL, ExtensionKind::AudioLevel).unwrap();
    m.insert(P_TCC, ExtensionKind::TransportCc).unwrap();
    m.insert(P_MID, ExtensionKind::Mid).unwrap();
    m.insert(P_ABS_CAPTURE, ExtensionKind::AbsCaptureTime)
        .unwrap();
    m.insert(P_RID, ExtensionKind::RtpStreamId).unwrap();
    m.insert(P_RRID, ExtensionKind::RepairedRtpStreamId)
        .unwrap();
    m
}

pub fn viewer_ext(tcc: bool) -> ExtensionMap {
    let mut m = ExtensionMap::new();
    if tcc {
        m.insert(V_TCC, ExtensionKind::TransportCc).unwrap();
    }
    m.insert(V_ABS_CAPTURE, ExtensionKind::AbsCaptureTime)
        .unwrap();
    m.insert(V_AUDIO_LEVEL, ExtensionKind::AudioLevel).unwrap();
    m
}

fn line(mid: &str, kind: MediaKind, codecs: Vec<NegotiatedCodec>, ext: ExtensionMap) -> MediaLine {
    MediaLine {
        mid: mid.into(),
        kind,
        codecs,
        extensions: ext,
        simulcast_rids: vec![],
        announced_ssrcs: vec![],
        send_ssrc: None,
        send_rtx_ssrc: None,
    }
}

pub fn opus(pt: u8) -> NegotiatedCodec {
    NegotiatedCodec {
        payload_type: pt,
        name: CodecName::Opus,
        clock_rate: 48_000,
        rtx_payload_type: None,
    }
}

pub fn vp8(pt: u8, rtx: Option<u8>) -> NegotiatedCodec {
    NegotiatedCodec {
        payload_type: pt,
        name: CodecName::Vp8,
        clock_rate: 90_000,
        rtx_payload_type: rtx,
    }
}

pub fn publisher_lines() -> Vec<MediaLine> {
    let audio = line("0", MediaKind::Audio, vec![opus(111)], publisher_ext());
    let mut video = line(
        "1",
        MediaKind::Video,
        vec![vp8(96, Some(97))],
        publisher_ext(),
    );
    video.simulcast_rids = vec!["q".into(), "h".into(), "f".into()];
    vec![audio, video]
}

/// Viewer lines; `base` gives SSRCs base+1 (audio), base+2 (video), base+3 (video RTX).
pub fn viewer_lines(base: u32, rtx: bool, tcc: bool) -> Vec<MediaLine> {
    let mut audio = line("a", MediaKind::Audio, vec![opus(109)], viewer_ext(tcc));
    audio.send_ssrc = Some(base + 1);
    let mut video = line(
        "v",
        MediaKind::Video,
        vec![vp8(120, rtx.then_some(121))],
        viewer_ext(tcc),
    );
    video.send_ssrc = Some(base + 2);
    if rtx {
        video.send_rtx_ssrc = Some(base + 3);
    }
    vec![audio, video]
}

pub fn forwarder() -> Forwarder {
    Forwarder::new(ForwarderConfig {
        retransmission_cache_packets: 64,
        ..ForwarderConfig::default()
    })
}

/// An RTP packet with one-byte header extensions.
pub fn rtp(
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    exts: &[(u8, &[u8])],
    payload: &[u8],
) -> Vec<u8> {
    let mut p = vec![0x80, (u8::from(marker) << 7) | pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    if !exts.is_empty() {
        p[0] |= 0x10;
        let mut block = Vec::new();
        for (id, value) in exts {
            block.push((id << 4) | (value.len() as u8 - 1));
            block.extend_from_slice(value);
        }
        while block.len() % 4 != 0 {
            block.push(0);
        }
        p.extend_from_slice(&[0xBE, 0xDE]);
        p.extend_from_slice(&((block.len() / 4) as u16).to_be_bytes());
        p.extend_from_slice(&block);
    }
    p.extend_from_slice(payload);
    p
}

/// A VP8 payload with a 15-bit picture id and TL0PICIDX.
pub fn vp8_payload(picture_id: u16, tl0: u8, keyframe: bool) -> Vec<u8> {
    vec![
        0x90,
        0xC0,
        0x80 | ((picture_id >> 8) as u8 & 0x7F),
        picture_id as u8,
        tl0,
        if keyframe { 0x00 } else { 0x01 },
        0xAA,
        0xBB,
    ]
}

pub fn video_packet(
    layer: usize,
    ssrc: u32,
    seq: u16,
    ts: u32,
    pic: u16,
    keyframe: bool,
    tcc: u16,
) -> Vec<u8> {
    let rid = ["q", "h", "f"][layer];
    rtp(
        96,
        true,
        seq,
        ts,
        ssrc,
        &[
            (P_MID, b"1"),
            (P_RID, rid.as_bytes()),
            (P_TCC, &tcc.to_be_bytes()),
            (P_ABS_CAPTURE, &ABS_CAPTURE),
        ],
        &vp8_payload(pic, pic as u8, keyframe),
    )
}

pub fn audio_packet(seq: u16, ts: u32, tcc: u16) -> Vec<u8> {
    rtp(
        111,
        false,
        seq,
        ts,
        AUDIO_SSRC,
        &[
            (P_MID, b"0"),
            (P_AUDIO_LEVEL, &[0x85]),
            (P_TCC, &tcc.to_be_bytes()),
            (P_ABS_CAPTURE, &ABS_CAPTURE),
        ],
        &[0xFC, 1, 2, 3],
    )
}

/// Everything queued, buffers not recycled.
pub fn drain(f: &mut Forwarder) -> Vec<ForwarderOutput> {
    std::iter::from_fn(|| f.poll_output()).collect()
}

/// The RTP packets to `to` among `outputs`.
pub fn rtp_to(outputs: &[ForwarderOutput], to: EndpointId) -> Vec<Vec<u8>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            ForwarderOutput::Rtp { to: t, packet } if *t == to => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

/// The RTCP packets to `to` among `outputs`.
pub fn rtcp_to(outputs: &[ForwarderOutput], to: EndpointId) -> Vec<Vec<u8>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            ForwarderOutput::Rtcp { to: t, packet } if *t == to => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

/// Media SSRCs of the PLIs in `packets`.
pub fn pli_targets(packets: &[Vec<u8>]) -> Vec<u32> {
    packets
        .iter()
        .filter(|p| p[1] == 206 && p[0] & 0x1F == 1)
        .map(|p| u32::from_be_bytes(p[8..12].try_into().unwrap()))
        .collect()
}

pub fn parse(p: &[u8]) -> RtpPacket<&[u8]> {
    RtpPacket::parse(p).unwrap()
}

/// A clock for the tests.
pub struct Clock {
    pub start: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
    pub fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }
}

/// Publisher frame at `frame` (33 ms apart): one packet per layer in `layers`, highest
/// first, and one audio packet. Returns the time.
pub struct Source {
    pub ssrcs: [u32; 3],
    pub seq: [u16; 3],
    pub ts: u32,
    pub pic: u16,
    pub audio_seq: u16,
    pub tcc: u16,
}

impl Source {
    pub fn new(ssrcs: [u32; 3]) -> Self {
        Self {
            ssrcs,
            seq: [1000, 2000, 3000],
            ts: 90_000,
            pic: 100,
            audio_seq: 500,
            tcc: 1,
        }
    }

    /// Sends one frame on `layers` (highest first) plus an audio packet.
    pub fn frame(
        &mut self,
        f: &mut Forwarder,
        from: EndpointId,
        now: Instant,
        layers: &[usize],
        keyframe: bool,
    ) {
        for &layer in layers {
            let p = video_packet(
                layer,
                self.ssrcs[layer],
                self.seq[layer],
                self.ts,
                self.pic,
                keyframe,
                self.tcc,
            );
            self.seq[layer] = self.seq[layer].wrapping_add(1);
            self.tcc = self.tcc.wrapping_add(1);
            f.handle_rtp(now, from, &p);
        }
        let a = audio_packet(self.audio_seq, self.ts / 90 * 48, self.tcc);
        self.audio_seq = self.audio_seq.wrapping_add(1);
        self.tcc = self.tcc.wrapping_add(1);
        f.handle_rtp(now, from, &a);
        self.ts = self.ts.wrapping_add(2970);
        self.pic = (self.pic + 1) & 0x7FFF;
    }
}
