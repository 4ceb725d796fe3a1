//! The SDP the SDP-speaking adapters share ([`janus`](super::janus), [`whip`](super::whip)):
//! a lenient reader of the target's descriptions ([`Description`]), the publisher's offer
//! built from a [`JoinRequest`] ([`publisher_offer`]), a receive-only offer for a viewer
//! ([`viewer_offer`]), and the transport lines both write.
//!
//! Only what a WebRTC peer of Janus 1.1 or a WHIP/WHEP server needs is written or read: one
//! BUNDLE transport (ICE credentials, DTLS fingerprint and setup, host candidates), per
//! m-line the mid, direction, payload types with their `rtpmap`/`fmtp`/`rtcp-fb`, header
//! extensions, SSRCs and simulcast `rid`s. Candidates a target trickles instead of writing
//! them in its SDP are passed to [`Description::remote_transport`].

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use relais_rtp::extensions::AUDIO_LEVEL_URI;
use relais_srtp::DtlsRole;
use relais_transport::dtls_srtp::Fingerprint;
use relais_transport::ice::IceCredentials;

use super::colibri::{audio_source_name, video_source_name};
use crate::media::VideoCodec;
use crate::participant::{Candidate, LocalTransport, RemoteTransport};
use crate::target::{JoinRequest, TargetError};

/// The mid of the audio m-line of the offers written here.
pub const AUDIO_MID: &str = "0";
/// The mid of the video m-line of the offers written here.
pub const VIDEO_MID: &str = "1";

/// Opus payload type of the offers written here (Jicofo's, and what Janus accepts).
pub const OPUS_PT: u8 = 111;
/// VP8 payload type of the offers written here.
pub const VP8_PT: u8 = 100;
/// VP8 RTX payload type of the offers written here.
pub const VP8_RTX_PT: u8 = 96;
/// H264 payload type of the offers written here.
pub const H264_PT: u8 = 107;
/// H264 RTX payload type of the offers written here.
pub const H264_RTX_PT: u8 = 99;
/// The fmtp of the H264 offered: constrained baseline, packetization mode 1 (RFC 6184).
const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// The payload types of a camera sending `codec` in the offers written here: `(media, rtx)`.
/// The same numbers as Colibri2's ([`super::colibri::video_payload_types`]), which is what
/// the participants' media is written with whatever the target: a server that answers with
/// the offered payload types (relais over WHIP/WHEP, Janus for its publishers) then sees
/// the numbers it negotiated.
pub fn video_payload_types(codec: VideoCodec) -> (u8, u8) {
    match codec {
        VideoCodec::Vp8 => (VP8_PT, VP8_RTX_PT),
        VideoCodec::H264 => (H264_PT, H264_RTX_PT),
    }
}

/// How a publisher's offer signals its camera's simulcast encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulcast<'a> {
    /// By SSRC: `a=ssrc-group:SIM` lowest first and one `FID` group per encoding (Janus,
    /// older Chromium).
    Ssrc,
    /// By `rid` (RFC 8851/8853), lowest first, as browsers publish over WHIP: `a=rid:<id>
    /// send` and `a=simulcast:send`, no video SSRC lines; packets then carry the `mid` and
    /// `rid` header extensions.
    Rids(&'a [String]),
}

/// What an offer negotiates besides the transport.
#[derive(Debug, Clone, Copy)]
pub struct OfferOptions<'a> {
    /// Header extensions `(id, URI)`, on every m-line except the audio level (audio only).
    pub extensions: &'a [(u8, &'a str)],
    /// How simulcast is signalled (publisher offers only).
    pub simulcast: Simulcast<'a>,
}

impl OfferOptions<'_> {
    /// The `a=extmap` lines of one m-line.
    fn write_extmaps(&self, sdp: &mut String, audio: bool) {
        for (id, uri) in self.extensions {
            if *uri == AUDIO_LEVEL_URI && !audio {
                continue;
            }
            let _ = write!(sdp, "a=extmap:{id} {uri}\r\n");
        }
    }
}

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
                .ok_or(TargetError::Protocol("no ICE ufrag in the target's SDP"))?,
            self.pwd
                .as_deref()
                .ok_or(TargetError::Protocol("no ICE pwd in the target's SDP"))?,
        )
        .map_err(|_| TargetError::Protocol("invalid ICE credentials in the target's SDP"))?;
        let fingerprint = Fingerprint::parse(self.fingerprint.as_deref().ok_or(
            TargetError::Protocol("no DTLS fingerprint in the target's SDP"),
        )?)
        .map_err(|_| TargetError::Protocol("invalid DTLS fingerprint in the target's SDP"))?;
        let dtls_role = match self.setup.as_deref() {
            // The target takes the client side: the participant serves.
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
            return Err(TargetError::Protocol(
                "the target sent no usable UDP candidate",
            ));
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
pub(crate) fn write_transport(sdp: &mut String, local: &LocalTransport, setup: &str) {
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

pub(crate) fn session_header(sdp: &mut String, session_id: u64, version: u64, mids: &[&str]) {
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
/// in the camera's codec (VP8 [`VP8_PT`] with RTX [`VP8_RTX_PT`], or H264 constrained
/// baseline mode 1 [`H264_PT`] with RTX [`H264_RTX_PT`]; RTX when the camera has RTX SSRCs)
/// when it has a camera,
/// both `sendonly`, with the camera's encodings signalled as `options.simulcast` says and
/// the header extensions of `options`. The participant offers DTLS `actpass`.
pub fn publisher_offer(
    request: &JoinRequest,
    session_id: u64,
    options: &OfferOptions<'_>,
) -> Result<String, TargetError> {
    let mut mids = Vec::new();
    if request.audio_ssrc.is_some() {
        mids.push(AUDIO_MID);
    }
    if request.video.as_ref().is_some_and(|v| !v.ssrcs.is_empty()) {
        mids.push(VIDEO_MID);
    }
    if mids.is_empty() {
        return Err(TargetError::Unsupported(
            "a publisher needs a microphone or a camera",
        ));
    }
    let cname = &request.endpoint_id;
    let stream = format!("{}-stream", request.endpoint_id);
    let mut sdp = String::with_capacity(2048);
    session_header(&mut sdp, session_id, 2, &mids);
    if let Some(ssrc) = request.audio_ssrc {
        let track = audio_source_name(&request.endpoint_id);
        let _ = write!(sdp, "m=audio 9 UDP/TLS/RTP/SAVPF {OPUS_PT}\r\n");
        write_transport(&mut sdp, &request.transport, "actpass");
        let _ = write!(sdp, "a=mid:{AUDIO_MID}\r\n");
        options.write_extmaps(&mut sdp, true);
        let _ = write!(
            sdp,
            "a=sendonly\r\na=msid:{stream} {track}\r\na=rtcp-mux\r\n\
             a=rtpmap:{OPUS_PT} opus/48000/2\r\na=rtcp-fb:{OPUS_PT} transport-cc\r\n\
             a=fmtp:{OPUS_PT} minptime=10;useinbandfec=1\r\n\
             a=ssrc:{ssrc} cname:{cname}\r\na=ssrc:{ssrc} msid:{stream} {track}\r\n"
        );
    }
    if let Some(video) = request.video.as_ref().filter(|v| !v.ssrcs.is_empty()) {
        let track = video_source_name(&request.endpoint_id);
        let rtx = !video.rtx_ssrcs.is_empty();
        write_video_media(&mut sdp, &request.transport, video.codec, rtx, options);
        let _ = write!(sdp, "a=sendonly\r\na=msid:{stream} {track}\r\n");
        match options.simulcast {
            Simulcast::Rids(rids) => {
                for rid in rids {
                    let _ = write!(sdp, "a=rid:{rid} send\r\n");
                }
                if !rids.is_empty() {
                    let _ = write!(sdp, "a=simulcast:send {}\r\n", rids.join(";"));
                }
            }
            Simulcast::Ssrc => {
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
        }
    }
    Ok(sdp)
}

/// The video m-line up to its direction: `codec` (and its RTX when `rtx`) with a browser's
/// feedback, the transport, the mid and the header extensions.
fn write_video_media(
    sdp: &mut String,
    local: &LocalTransport,
    codec: VideoCodec,
    rtx: bool,
    options: &OfferOptions<'_>,
) {
    let (pt, rtx_pt) = video_payload_types(codec);
    let formats = if rtx {
        format!("{pt} {rtx_pt}")
    } else {
        pt.to_string()
    };
    let _ = write!(sdp, "m=video 9 UDP/TLS/RTP/SAVPF {formats}\r\n");
    write_transport(sdp, local, "actpass");
    let _ = write!(sdp, "a=mid:{VIDEO_MID}\r\n");
    options.write_extmaps(sdp, false);
    let encoding = match codec {
        VideoCodec::Vp8 => "VP8",
        VideoCodec::H264 => "H264",
    };
    let _ = write!(
        sdp,
        "a=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:{pt} {encoding}/90000\r\n"
    );
    if codec == VideoCodec::H264 {
        let _ = write!(sdp, "a=fmtp:{pt} {H264_FMTP}\r\n");
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
}

/// A viewer's offer (WHEP): one `recvonly` audio m-line (Opus [`OPUS_PT`]) and one
/// `recvonly` video m-line in `codec` with its RTX ([`video_payload_types`]: the publishers'
/// codec and numbers), the participant's transport with DTLS `actpass`, and the header
/// extensions of `options` (its simulcast is ignored: a viewer receives one encoding).
pub fn viewer_offer(
    local: &LocalTransport,
    session_id: u64,
    codec: VideoCodec,
    options: &OfferOptions<'_>,
) -> String {
    let mut sdp = String::with_capacity(2048);
    session_header(&mut sdp, session_id, 2, &[AUDIO_MID, VIDEO_MID]);
    let _ = write!(sdp, "m=audio 9 UDP/TLS/RTP/SAVPF {OPUS_PT}\r\n");
    write_transport(&mut sdp, local, "actpass");
    let _ = write!(sdp, "a=mid:{AUDIO_MID}\r\n");
    options.write_extmaps(&mut sdp, true);
    let _ = write!(
        sdp,
        "a=recvonly\r\na=rtcp-mux\r\na=rtpmap:{OPUS_PT} opus/48000/2\r\n\
         a=rtcp-fb:{OPUS_PT} transport-cc\r\na=fmtp:{OPUS_PT} minptime=10;useinbandfec=1\r\n"
    );
    write_video_media(&mut sdp, local, codec, true, options);
    sdp.push_str("a=recvonly\r\n");
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
        let rids = ["q".to_owned(), "h".to_owned()];
        for simulcast in [Simulcast::Ssrc, Simulcast::Rids(&rids)] {
            let options = OfferOptions {
                extensions: &[],
                simulcast,
            };
            let sdp = publisher_offer(&request, 7, &options).unwrap();
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
            assert_eq!(parsed.sections[0].codec_payload_type(), Some(H264_PT));
            assert_eq!(parsed.sections[0].rtx_payload_type(), Some(H264_RTX_PT));
        }
        // A viewer of H264 publishers receives H264 with the same numbers.
        let options = OfferOptions {
            extensions: &[],
            simulcast: Simulcast::Ssrc,
        };
        let viewer = viewer_offer(&local(), 7, VideoCodec::H264, &options);
        let parsed = Description::parse(&viewer);
        assert_eq!(parsed.sections[1].codec_payload_type(), Some(H264_PT));
        assert_eq!(parsed.sections[1].rtx_payload_type(), Some(H264_RTX_PT));
        assert!(viewer.contains("a=fmtp:107 level-asymmetry-allowed=1;"));
    }
}
