//! The SDP the Janus adapter exchanges: the publisher's offer (built here from a
//! [`JoinRequest`]), Janus's answer to it, Janus's subscriber offers and the answers to them.
//!
//! Only what a WebRTC peer of Janus 1.1 needs is written or read: one BUNDLE transport (ICE
//! credentials, DTLS fingerprint and setup, host candidates), per m-line the mid, direction,
//! payload types with their `rtpmap`/`fmtp`/`rtcp-fb`, header extensions and SSRCs. Janus
//! sends no candidates in its SDP when `full_trickle` is on (they come as trickle events);
//! any it does send are read too.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use relais_rtp::extensions::{ABS_CAPTURE_TIME_URI, AUDIO_LEVEL_URI, MID_URI, TRANSPORT_CC_URI};
use relais_srtp::DtlsRole;
use relais_transport::dtls_srtp::Fingerprint;
use relais_transport::ice::IceCredentials;

use super::{
    video_payload_types, ABS_CAPTURE_TIME_ID, AUDIO_LEVEL_ID, MID_ID, OPUS_PT, TRANSPORT_CC_ID,
};
use crate::media::VideoCodec;
use crate::participant::{Candidate, LocalTransport, RemoteTransport};
use crate::target::{JoinRequest, TargetError};

/// The mid of the publisher's audio m-line.
pub const AUDIO_MID: &str = "0";
/// The mid of the publisher's video m-line.
pub const VIDEO_MID: &str = "1";

/// The kind of an m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `m=audio`.
    Audio,
    /// `m=video`.
    Video,
    /// Anything else (`m=application` for data channels).
    Other,
}

impl MediaKind {
    fn parse(name: &str) -> Self {
        match name {
            "audio" => Self::Audio,
            "video" => Self::Video,
            _ => Self::Other,
        }
    }

    /// The SDP media name (`audio`, `video`), as Janus's stream `type` too.
    pub fn name(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Other => "application",
        }
    }
}

/// One m-line of a parsed description.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// `audio`, `video`, `application`...
    pub media: String,
    /// The port (0: rejected or removed).
    pub port: u16,
    /// The transport protocol.
    pub proto: String,
    /// The format list as written.
    pub formats: Vec<String>,
    /// `a=mid`.
    pub mid: Option<String>,
    /// `sendonly`, `recvonly`, `sendrecv` or `inactive` (`sendrecv` when absent).
    pub direction: String,
    /// The `rtpmap`, `fmtp` and `rtcp-fb` lines by payload type, as written.
    pub payload_lines: Vec<(u8, String)>,
    /// `(payload type, encoding name, clock rate)` of each `rtpmap`.
    pub rtpmaps: Vec<(u8, String, u32)>,
    /// `(rtx payload type, apt)` of each `fmtp ... apt=`.
    pub rtx: Vec<(u8, u8)>,
    /// `a=extmap` as `(id, URI)`.
    pub extmaps: Vec<(u8, String)>,
    /// SSRCs in order of first appearance.
    pub ssrcs: Vec<u32>,
    /// `(media, rtx)` of each `ssrc-group:FID`.
    pub fid_groups: Vec<(u32, u32)>,
}

impl Section {
    /// The kind.
    pub fn kind(&self) -> MediaKind {
        MediaKind::parse(&self.media)
    }

    /// The first payload type that is not RTX (the codec).
    pub fn codec_payload_type(&self) -> Option<u8> {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .find(|pt| !self.rtx.iter().any(|(rtx, _)| rtx == pt))
    }

    /// The RTX payload type of the codec, if offered.
    pub fn rtx_payload_type(&self) -> Option<u8> {
        let codec = self.codec_payload_type()?;
        self.rtx
            .iter()
            .find(|(_, apt)| *apt == codec)
            .map(|(rtx, _)| *rtx)
    }

    /// The media SSRC: the first that is not the RTX partner of another.
    pub fn media_ssrc(&self) -> Option<u32> {
        self.ssrcs
            .iter()
            .copied()
            .find(|ssrc| !self.fid_groups.iter().any(|(_, rtx)| rtx == ssrc))
    }

    /// The RTX SSRC paired with the media SSRC.
    pub fn rtx_ssrc(&self) -> Option<u32> {
        let media = self.media_ssrc()?;
        self.fid_groups
            .iter()
            .find(|(m, _)| *m == media)
            .map(|(_, rtx)| *rtx)
    }
}

/// A parsed description.
#[derive(Debug, Clone, Default)]
pub struct Description {
    /// ICE ufrag (session or first media level).
    pub ufrag: Option<String>,
    /// ICE pwd.
    pub pwd: Option<String>,
    /// `a=fingerprint` value (`sha-256 AB:...`).
    pub fingerprint: Option<String>,
    /// `a=setup` value.
    pub setup: Option<String>,
    /// UDP component-1 candidates written in the SDP.
    pub candidates: Vec<Candidate>,
    /// The m-lines in order.
    pub sections: Vec<Section>,
}

impl Description {
    /// Parses `sdp` leniently: unknown lines are skipped, malformed values ignored.
    pub fn parse(sdp: &str) -> Self {
        let mut description = Self::default();
        for line in sdp.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(m) = line.strip_prefix("m=") {
                let mut parts = m.split_ascii_whitespace();
                let media = parts.next().unwrap_or_default().to_owned();
                let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let proto = parts.next().unwrap_or_default().to_owned();
                description.sections.push(Section {
                    media,
                    port,
                    proto,
                    formats: parts.map(str::to_owned).collect(),
                    direction: "sendrecv".to_owned(),
                    ..Section::default()
                });
                continue;
            }
            let Some(attribute) = line.strip_prefix("a=") else {
                continue;
            };
            let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
            // Transport attributes: the first occurrence wins (BUNDLE: all are equal).
            match name {
                "ice-ufrag" => {
                    description.ufrag.get_or_insert_with(|| value.to_owned());
                    continue;
                }
                "ice-pwd" => {
                    description.pwd.get_or_insert_with(|| value.to_owned());
                    continue;
                }
                "fingerprint" => {
                    description
                        .fingerprint
                        .get_or_insert_with(|| value.to_owned());
                    continue;
                }
                "setup" => {
                    description.setup.get_or_insert_with(|| value.to_owned());
                    continue;
                }
                "candidate" => {
                    if let Some(candidate) = parse_candidate(value) {
                        description.candidates.push(candidate);
                    }
                    continue;
                }
                _ => {}
            }
            let Some(section) = description.sections.last_mut() else {
                continue;
            };
            match name {
                "mid" => section.mid = Some(value.to_owned()),
                "sendonly" | "recvonly" | "sendrecv" | "inactive" => {
                    section.direction = name.to_owned();
                }
                "rtpmap" | "fmtp" | "rtcp-fb" => {
                    let Some((pt, rest)) = value.split_once(' ') else {
                        continue;
                    };
                    let Ok(pt) = pt.parse::<u8>() else { continue };
                    section.payload_lines.push((pt, line.to_owned()));
                    if name == "rtpmap" {
                        let mut codec = rest.split('/');
                        let encoding = codec.next().unwrap_or_default().to_owned();
                        let rate = codec.next().and_then(|r| r.parse().ok()).unwrap_or(90_000);
                        section.rtpmaps.push((pt, encoding, rate));
                    } else if name == "fmtp" {
                        let apt = rest
                            .split(';')
                            .filter_map(|p| p.trim().strip_prefix("apt="))
                            .find_map(|a| a.parse::<u8>().ok());
                        if let Some(apt) = apt {
                            section.rtx.push((pt, apt));
                        }
                    }
                }
                "extmap" => {
                    let mut parts = value.split_ascii_whitespace();
                    // `id[/direction] URI`
                    let id = parts
                        .next()
                        .and_then(|id| id.split('/').next())
                        .and_then(|id| id.parse::<u8>().ok());
                    if let (Some(id), Some(uri)) = (id, parts.next()) {
                        section.extmaps.push((id, uri.to_owned()));
                    }
                }
                "ssrc" => {
                    let ssrc = value
                        .split_ascii_whitespace()
                        .next()
                        .and_then(|s| s.parse::<u32>().ok());
                    if let Some(ssrc) = ssrc {
                        if !section.ssrcs.contains(&ssrc) {
                            section.ssrcs.push(ssrc);
                        }
                    }
                }
                "ssrc-group" => {
                    let mut parts = value.split_ascii_whitespace();
                    if parts.next() == Some("FID") {
                        let media = parts.next().and_then(|s| s.parse::<u32>().ok());
                        let rtx = parts.next().and_then(|s| s.parse::<u32>().ok());
                        if let (Some(media), Some(rtx)) = (media, rtx) {
                            section.fid_groups.push((media, rtx));
                        }
                    }
                }
                _ => {}
            }
        }
        description
    }

    /// The transport of the other side, for the participant that negotiated with this
    /// description; the participant's DTLS role follows the other side's `setup`.
    pub fn remote_transport(
        &self,
        extra_candidates: &[Candidate],
    ) -> Result<RemoteTransport, TargetError> {
        let credentials = IceCredentials::new(
            self.ufrag
                .as_deref()
                .ok_or(TargetError::Protocol("no ICE ufrag in Janus's SDP"))?,
            self.pwd
                .as_deref()
                .ok_or(TargetError::Protocol("no ICE pwd in Janus's SDP"))?,
        )
        .map_err(|_| TargetError::Protocol("invalid ICE credentials in Janus's SDP"))?;
        let fingerprint = Fingerprint::parse(
            self.fingerprint
                .as_deref()
                .ok_or(TargetError::Protocol("no DTLS fingerprint in Janus's SDP"))?,
        )
        .map_err(|_| TargetError::Protocol("invalid DTLS fingerprint in Janus's SDP"))?;
        let dtls_role = match self.setup.as_deref() {
            // Janus takes the client side: the participant serves.
            Some("active") => DtlsRole::Server,
            // passive or actpass: the participant is the client (and answers `active`).
            _ => DtlsRole::Client,
        };
        let mut candidates = self.candidates.clone();
        for candidate in extra_candidates {
            if !candidates.contains(candidate) {
                candidates.push(*candidate);
            }
        }
        if candidates.is_empty() {
            return Err(TargetError::Protocol("Janus sent no usable UDP candidate"));
        }
        Ok(RemoteTransport {
            credentials,
            candidates,
            fingerprint,
            dtls_role,
        })
    }
}

/// Parses the value of a `candidate:` attribute (with or without the `candidate:` prefix):
/// UDP, component 1, any type (the address is what the participant checks).
pub fn parse_candidate(value: &str) -> Option<Candidate> {
    let value = value.strip_prefix("candidate:").unwrap_or(value);
    let mut parts = value.split_ascii_whitespace();
    let _foundation = parts.next()?;
    if parts.next()? != "1" {
        return None;
    }
    if !parts.next()?.eq_ignore_ascii_case("udp") {
        return None;
    }
    let priority: u32 = parts.next()?.parse().ok()?;
    let ip: IpAddr = parts.next()?.parse().ok()?;
    let port: u16 = parts.next()?.parse().ok()?;
    Some(Candidate {
        address: SocketAddr::new(ip, port),
        priority,
    })
}

/// The transport lines of every m-line the participant writes.
fn write_transport(sdp: &mut String, local: &LocalTransport, setup: &str) {
    let _ = write!(
        sdp,
        "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n\
         a=ice-options:trickle\r\na=fingerprint:{}\r\na=setup:{setup}\r\n",
        local.credentials.ufrag, local.credentials.pwd, local.fingerprint
    );
    for (index, candidate) in local.candidates.iter().enumerate() {
        let ip = candidate.address.ip();
        let _ = write!(
            sdp,
            "a=candidate:{} 1 udp {} {ip} {} typ host generation 0\r\n",
            index + 1,
            candidate.priority,
            candidate.address.port()
        );
    }
    sdp.push_str("a=end-of-candidates\r\n");
}

fn session_header(sdp: &mut String, session_id: u64, version: u64, mids: &[&str]) {
    let _ = write!(
        sdp,
        "v=0\r\no=- {session_id} {version} IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    );
    if !mids.is_empty() {
        let _ = write!(sdp, "a=group:BUNDLE {}\r\n", mids.join(" "));
    }
    sdp.push_str("a=extmap-allow-mixed\r\na=msid-semantic: WMS *\r\n");
}

/// The publisher's offer: audio (Opus [`OPUS_PT`]) when the request has a microphone, video
/// (VP8 [`VP8_PT`](super::VP8_PT) with RTX [`VP8_RTX_PT`](super::VP8_RTX_PT), or H264
/// constrained baseline [`H264_PT`](super::H264_PT) with RTX
/// [`H264_RTX_PT`](super::H264_RTX_PT), as the camera's codec says) when it has a camera, with the camera's encodings
/// as an `ssrc-group:SIM` (lowest first, Janus's substream 0..2) and one `FID` group per
/// encoding. Header extensions: audio level (audio only), mid, transport-cc and
/// abs-capture-time with the ids of [`super::HEADER_EXTENSIONS`].
pub fn publisher_offer(request: &JoinRequest, session_id: u64) -> Result<String, TargetError> {
    let mut mids = Vec::new();
    if request.audio_ssrc.is_some() {
        mids.push(AUDIO_MID);
    }
    if request.video.as_ref().is_some_and(|v| !v.ssrcs.is_empty()) {
        mids.push(VIDEO_MID);
    }
    if mids.is_empty() {
        return Err(TargetError::Unsupported(
            "a Janus publisher needs a microphone or a camera",
        ));
    }
    let cname = &request.endpoint_id;
    let stream = format!("{}-stream", request.endpoint_id);
    let mut sdp = String::with_capacity(2048);
    session_header(&mut sdp, session_id, 2, &mids);
    let extmaps = |sdp: &mut String, audio: bool| {
        if audio {
            let _ = write!(sdp, "a=extmap:{AUDIO_LEVEL_ID} {AUDIO_LEVEL_URI}\r\n");
        }
        let _ = write!(
            sdp,
            "a=extmap:{MID_ID} {MID_URI}\r\na=extmap:{TRANSPORT_CC_ID} {TRANSPORT_CC_URI}\r\n\
             a=extmap:{ABS_CAPTURE_TIME_ID} {ABS_CAPTURE_TIME_URI}\r\n"
        );
    };
    if let Some(ssrc) = request.audio_ssrc {
        let track = super::audio_source_name(&request.endpoint_id);
        let _ = write!(sdp, "m=audio 9 UDP/TLS/RTP/SAVPF {OPUS_PT}\r\n");
        write_transport(&mut sdp, &request.transport, "actpass");
        let _ = write!(sdp, "a=mid:{AUDIO_MID}\r\n");
        extmaps(&mut sdp, true);
        let _ = write!(
            sdp,
            "a=sendonly\r\na=msid:{stream} {track}\r\na=rtcp-mux\r\n\
             a=rtpmap:{OPUS_PT} opus/48000/2\r\na=rtcp-fb:{OPUS_PT} transport-cc\r\n\
             a=fmtp:{OPUS_PT} minptime=10;useinbandfec=1\r\n\
             a=ssrc:{ssrc} cname:{cname}\r\na=ssrc:{ssrc} msid:{stream} {track}\r\n"
        );
    }
    if let Some(video) = request.video.as_ref().filter(|v| !v.ssrcs.is_empty()) {
        let track = super::video_source_name(&request.endpoint_id);
        let rtx = !video.rtx_ssrcs.is_empty();
        let (pt, rtx_pt) = video_payload_types(video.codec);
        let formats = if rtx {
            format!("{pt} {rtx_pt}")
        } else {
            pt.to_string()
        };
        let _ = write!(sdp, "m=video 9 UDP/TLS/RTP/SAVPF {formats}\r\n");
        write_transport(&mut sdp, &request.transport, "actpass");
        let _ = write!(sdp, "a=mid:{VIDEO_MID}\r\n");
        extmaps(&mut sdp, false);
        let _ = write!(
            sdp,
            "a=sendonly\r\na=msid:{stream} {track}\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
             a=rtpmap:{pt} {}/90000\r\n",
            match video.codec {
                VideoCodec::Vp8 => "VP8",
                VideoCodec::H264 => "H264",
            }
        );
        if video.codec == VideoCodec::H264 {
            let _ = write!(
                sdp,
                "a=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;\
                 profile-level-id=42e01f\r\n"
            );
        }
        for feedback in ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"] {
            let _ = write!(sdp, "a=rtcp-fb:{pt} {feedback}\r\n");
        }
        if rtx {
            let _ = write!(
                sdp,
                "a=rtpmap:{rtx_pt} rtx/90000\r\na=fmtp:{rtx_pt} apt={pt}\r\n"
            );
        }
        if video.ssrcs.len() > 1 {
            let list: Vec<String> = video.ssrcs.iter().map(u32::to_string).collect();
            let _ = write!(sdp, "a=ssrc-group:SIM {}\r\n", list.join(" "));
        }
        for (media, rtx) in video.ssrcs.iter().zip(&video.rtx_ssrcs) {
            let _ = write!(sdp, "a=ssrc-group:FID {media} {rtx}\r\n");
        }
        for ssrc in video.ssrcs.iter().chain(&video.rtx_ssrcs) {
            let _ = write!(
                sdp,
                "a=ssrc:{ssrc} cname:{cname}\r\na=ssrc:{ssrc} msid:{stream} {track}\r\n"
            );
        }
    }
    Ok(sdp)
}

/// The receiving participant's answer to a subscriber offer from Janus: every audio/video
/// m-line Janus offers with a port is accepted receive-only (`inactive` stays `inactive`)
/// with the offered payload types and header extensions mirrored; other m-lines (data
/// channels) and removed ones (port 0) are rejected. The participant takes the DTLS client
/// side (`active`) against Janus's `actpass`.
pub fn subscriber_answer(
    offer: &Description,
    local: &LocalTransport,
    session_id: u64,
    version: u64,
) -> String {
    let accepted = |section: &Section| section.port != 0 && section.kind() != MediaKind::Other;
    let mids: Vec<&str> = offer
        .sections
        .iter()
        .filter(|s| accepted(s))
        .filter_map(|s| s.mid.as_deref())
        .collect();
    let setup = match offer.setup.as_deref() {
        Some("active") => "passive",
        _ => "active",
    };
    let mut sdp = String::with_capacity(1024 + 512 * offer.sections.len());
    session_header(&mut sdp, session_id, version, &mids);
    for section in &offer.sections {
        if !accepted(section) {
            let _ = write!(
                sdp,
                "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\n",
                section.media,
                section.proto,
                section.formats.join(" ")
            );
            if let Some(mid) = &section.mid {
                let _ = write!(sdp, "a=mid:{mid}\r\n");
            }
            sdp.push_str("a=inactive\r\n");
            continue;
        }
        let _ = write!(
            sdp,
            "m={} 9 {} {}\r\n",
            section.media,
            section.proto,
            section.formats.join(" ")
        );
        write_transport(&mut sdp, local, setup);
        if let Some(mid) = &section.mid {
            let _ = write!(sdp, "a=mid:{mid}\r\n");
        }
        for (id, uri) in &section.extmaps {
            let _ = write!(sdp, "a=extmap:{id} {uri}\r\n");
        }
        let direction = match section.direction.as_str() {
            "inactive" | "recvonly" => "inactive",
            _ => "recvonly",
        };
        let _ = write!(sdp, "a={direction}\r\na=rtcp-mux\r\n");
        for (_, line) in &section.payload_lines {
            sdp.push_str(line);
            sdp.push_str("\r\n");
        }
    }
    sdp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::target::VideoSource;
    use relais_transport::dtls_srtp::NodeCertificate;

    fn local() -> LocalTransport {
        LocalTransport {
            credentials: IceCredentials::new("ufrag", "0123456789012345678901").unwrap(),
            fingerprint: NodeCertificate::generate().unwrap().fingerprint().clone(),
            candidates: vec![Candidate {
                address: "10.99.0.2:40000".parse().unwrap(),
                priority: 2_130_706_431,
            }],
        }
    }

    #[test]
    fn the_offer_signals_sim_and_fid_groups_lowest_first() {
        let request = JoinRequest {
            endpoint_id: "abcd0001".into(),
            transport: local(),
            audio_ssrc: Some(11),
            video: Some(VideoSource {
                ssrcs: vec![21, 22, 23],
                rtx_ssrcs: vec![31, 32, 33],
                codec: VideoCodec::Vp8,
            }),
        };
        let sdp = publisher_offer(&request, 7).unwrap();
        assert!(sdp.contains("a=group:BUNDLE 0 1\r\n"));
        assert!(sdp.contains("a=ssrc-group:SIM 21 22 23\r\n"));
        assert!(sdp.contains("a=ssrc-group:FID 23 33\r\n"));
        assert!(sdp.contains("a=candidate:1 1 udp 2130706431 10.99.0.2 40000 typ host"));
        let parsed = Description::parse(&sdp);
        assert_eq!(parsed.sections.len(), 2);
        assert_eq!(parsed.sections[0].ssrcs, vec![11]);
        assert_eq!(parsed.sections[1].ssrcs, vec![21, 22, 23, 31, 32, 33]);
        assert_eq!(
            parsed.sections[1].rtx_payload_type(),
            Some(super::super::VP8_RTX_PT)
        );
        assert_eq!(
            parsed.sections[0].extmaps[0],
            (AUDIO_LEVEL_ID, AUDIO_LEVEL_URI.into())
        );
        assert_eq!(parsed.ufrag.as_deref(), Some("ufrag"));
        let nothing = JoinRequest {
            audio_ssrc: None,
            video: None,
            ..request
        };
        assert!(publisher_offer(&nothing, 7).is_err());
    }

    #[test]
    fn an_h264_camera_offers_constrained_baseline_mode_1() {
        let request = JoinRequest {
            endpoint_id: "abcd0001".into(),
            transport: local(),
            audio_ssrc: None,
            video: Some(VideoSource {
                ssrcs: vec![21, 22],
                rtx_ssrcs: vec![31, 32],
                codec: VideoCodec::H264,
            }),
        };
        let sdp = publisher_offer(&request, 7).unwrap();
        assert!(
            sdp.contains("m=video 9 UDP/TLS/RTP/SAVPF 107 99\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("a=rtpmap:107 H264/90000\r\n"));
        assert!(sdp.contains(
            "a=fmtp:107 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
        ));
        assert!(sdp.contains("a=fmtp:99 apt=107\r\n"));
        assert!(!sdp.contains("VP8"));
        let parsed = Description::parse(&sdp);
        assert_eq!(parsed.sections[0].rtx_payload_type(), Some(99));
    }

    #[test]
    fn a_subscriber_offer_is_answered_receive_only() {
        let janus = NodeCertificate::generate().unwrap();
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 10.99.0.1\r\ns=VideoRoom 1\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n\
             a=ice-lite\r\na=fingerprint:{}\r\na=ice-ufrag:JnUs\r\na=ice-pwd:0123456789abcdefghijkl\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 10.99.0.1\r\na=sendonly\r\na=mid:0\r\n\
             a=rtcp-mux\r\na=ice-options:trickle\r\na=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\n\
             a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=ssrc:555 cname:janus\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 100 101\r\nc=IN IP4 10.99.0.1\r\na=sendonly\r\na=mid:1\r\n\
             a=rtpmap:100 VP8/90000\r\na=rtcp-fb:100 nack\r\na=rtpmap:101 rtx/90000\r\n\
             a=fmtp:101 apt=100\r\na=ssrc-group:FID 666 667\r\na=ssrc:666 cname:janus\r\n\
             a=ssrc:667 cname:janus\r\n\
             m=video 0 UDP/TLS/RTP/SAVPF 100\r\nc=IN IP4 10.99.0.1\r\na=inactive\r\na=mid:2\r\n",
            janus.fingerprint()
        );
        let parsed = Description::parse(&offer);
        let video = &parsed.sections[1];
        assert_eq!(video.media_ssrc(), Some(666));
        assert_eq!(video.rtx_ssrc(), Some(667));
        assert_eq!(video.codec_payload_type(), Some(100));
        assert_eq!(video.rtx_payload_type(), Some(101));
        let answer = subscriber_answer(&parsed, &local(), 9, 3);
        assert!(answer.contains("a=group:BUNDLE 0 1\r\n"), "{answer}");
        assert!(answer.contains("a=setup:active\r\n"));
        assert!(answer.contains("m=video 0 UDP/TLS/RTP/SAVPF 100\r\n"));
        assert!(answer.contains("a=fmtp:101 apt=100\r\n"));
        assert_eq!(answer.matches("a=recvonly").count(), 2);
        let candidate = parse_candidate("candidate:1 1 udp 2015363327 10.99.0.1 20123 typ host");
        let remote = parsed.remote_transport(&[candidate.unwrap()]).unwrap();
        assert_eq!(remote.dtls_role, DtlsRole::Client);
        assert_eq!(remote.candidates[0].address.port(), 20123);
        assert_eq!(&remote.fingerprint, janus.fingerprint());
        assert!(Description::default().remote_transport(&[]).is_err());
        assert_eq!(
            parse_candidate("candidate:1 2 udp 1 10.99.0.1 1 typ host"),
            None
        );
    }
}
