//! Building the node's answer to an offer.

use std::net::IpAddr;

use relais_rtp::extensions::ExtensionKind;

use super::model::{
    Attribute, Candidate, CandidateType, Codec, Direction, Extmap, Fingerprint, Fmtp, MediaKind,
    MediaSection, Msid, Origin, Rid, RidDirection, RtcpFb, SessionDescription, Setup, Simulcast,
    SimulcastRid, Ssrc, SsrcGroup,
};
use super::SdpError;

/// The header extensions answered by default (when the offer has them): audio level,
/// abs-send-time, transport-cc, mid, rid, repaired-rid and abs-capture-time.
pub const DEFAULT_EXTENSIONS: [ExtensionKind; 7] = [
    ExtensionKind::AudioLevel,
    ExtensionKind::AbsSendTime,
    ExtensionKind::TransportCc,
    ExtensionKind::Mid,
    ExtensionKind::RtpStreamId,
    ExtensionKind::RepairedRtpStreamId,
    ExtensionKind::AbsCaptureTime,
];

/// One codec the node forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecSpec {
    /// Encoding name (`opus`, `VP8`, `H264`), compared case-insensitively.
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels (audio); an offer without a channel count means 1.
    pub channels: Option<u16>,
    /// The fmtp parameters the answer carries for this codec.
    pub fmtp: Fmtp,
    /// The feedback the node supports; the answer carries those the offer also has.
    pub rtcp_fb: Vec<RtcpFb>,
    /// Whether RTX (RFC 4588) is answered for this codec when offered.
    pub rtx: bool,
}

fn video_feedback() -> Vec<RtcpFb> {
    vec![
        RtcpFb::new("goog-remb", None),
        RtcpFb::new("transport-cc", None),
        RtcpFb::new("ccm", Some("fir")),
        RtcpFb::new("nack", None),
        RtcpFb::new("nack", Some("pli")),
    ]
}

impl CodecSpec {
    /// Opus/48000/2, `minptime=10;useinbandfec=1`, transport-cc feedback.
    pub fn opus() -> Self {
        Self {
            name: "opus".to_owned(),
            clock_rate: 48_000,
            channels: Some(2),
            fmtp: Fmtp::from_pairs([("minptime", "10"), ("useinbandfec", "1")]),
            rtcp_fb: vec![RtcpFb::new("transport-cc", None)],
            rtx: false,
        }
    }

    /// VP8/90000 with RTX and nack, nack pli, ccm fir, goog-remb, transport-cc.
    pub fn vp8() -> Self {
        Self {
            name: "VP8".to_owned(),
            clock_rate: 90_000,
            channels: None,
            fmtp: Fmtp::default(),
            rtcp_fb: video_feedback(),
            rtx: true,
        }
    }

    /// H264/90000 constrained baseline (`profile-level-id=42e01f`, `packetization-mode=1`,
    /// `level-asymmetry-allowed=1`) with RTX and the video feedback of [`CodecSpec::vp8`].
    pub fn h264() -> Self {
        Self {
            name: "H264".to_owned(),
            clock_rate: 90_000,
            channels: None,
            fmtp: Fmtp::from_pairs([
                ("level-asymmetry-allowed", "1"),
                ("packetization-mode", "1"),
                ("profile-level-id", "42e01f"),
            ]),
            rtcp_fb: video_feedback(),
            rtx: true,
        }
    }

    fn is_h264(&self) -> bool {
        self.name.eq_ignore_ascii_case("H264")
    }

    /// Whether an offered codec is this one (see [`answer`] for the H264 rule).
    pub fn matches(&self, offered: &Codec) -> bool {
        if !offered.name.eq_ignore_ascii_case(&self.name) || offered.clock_rate != self.clock_rate {
            return false;
        }
        if let Some(ch) = self.channels {
            if offered.channels.unwrap_or(1) != ch {
                return false;
            }
        }
        if self.is_h264() {
            let mode = |f: Option<&str>| f.unwrap_or("0").trim().to_owned();
            let plid = |f: Option<&str>| h264_profile(f.unwrap_or("42000a"));
            return mode(self.fmtp.get("packetization-mode"))
                == mode(offered.fmtp_param("packetization-mode"))
                && plid(self.fmtp.get("profile-level-id")).is_some()
                && plid(self.fmtp.get("profile-level-id"))
                    == plid(offered.fmtp_param("profile-level-id"));
        }
        true
    }
}

/// The codecs the node forwards, in preference order per kind. The default is Opus for
/// audio and VP8 then H264 for video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecConfig {
    /// Audio codecs.
    pub audio: Vec<CodecSpec>,
    /// Video codecs.
    pub video: Vec<CodecSpec>,
}

impl Default for CodecConfig {
    fn default() -> Self {
        Self {
            audio: vec![CodecSpec::opus()],
            video: vec![CodecSpec::vp8(), CodecSpec::h264()],
        }
    }
}

/// H264 profile, as libwebrtc distinguishes them for negotiation (RFC 6184 §8.1,
/// `profile_idc` and the constraint flags of `profile-iop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Profile {
    /// Constrained baseline (`42e0`, `4280`-style, `4de0`, `58f0`).
    ConstrainedBaseline,
    /// Baseline (`4200`).
    Baseline,
    /// Main (`4d00`).
    Main,
    /// Constrained high (`640c`).
    ConstrainedHigh,
    /// High (`6400`).
    High,
    /// Any other `profile_idc`.
    Other(u8),
}

/// The profile of an H264 `profile-level-id` (6 hex digits); `None` when malformed.
pub fn h264_profile(profile_level_id: &str) -> Option<H264Profile> {
    let s = profile_level_id.trim();
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u32::from_str_radix(s, 16).ok()?;
    let idc = ((v >> 16) & 0xff) as u8;
    let iop = ((v >> 8) & 0xff) as u8;
    Some(match idc {
        0x42 if iop & 0x40 != 0 => H264Profile::ConstrainedBaseline,
        0x42 => H264Profile::Baseline,
        0x4d if iop & 0x80 != 0 => H264Profile::ConstrainedBaseline,
        0x4d => H264Profile::Main,
        0x58 if iop & 0xc0 == 0xc0 => H264Profile::ConstrainedBaseline,
        0x64 if iop & 0x0c == 0x0c => H264Profile::ConstrainedHigh,
        0x64 => H264Profile::High,
        other => H264Profile::Other(other),
    })
}

/// What the node sends on one m-line (WHEP): announced as `a=msid`, `a=ssrc` (cname, msid)
/// and, when RTX is negotiated and `rtx_ssrc` is set, `a=ssrc-group:FID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendStream {
    /// The offer's mid this stream is sent on.
    pub mid: String,
    /// Media SSRC.
    pub ssrc: u32,
    /// RTX SSRC.
    pub rtx_ssrc: Option<u32>,
    /// RTCP CNAME.
    pub cname: String,
    /// Stream and track ids.
    pub msid: Msid,
}

/// The node's side of the negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerParams {
    /// `o=` session id of the answer.
    pub session_id: u64,
    /// Local ICE ufrag.
    pub ice_ufrag: String,
    /// Local ICE password.
    pub ice_pwd: String,
    /// Writes `a=ice-lite` (the node is ICE-lite where it answers).
    pub ice_lite: bool,
    /// Local DTLS certificate fingerprint.
    pub fingerprint: Fingerprint,
    /// The node's candidates (see [`host_candidates`]), put in every accepted m-line.
    pub candidates: Vec<Candidate>,
    /// Codecs the node forwards.
    pub codecs: CodecConfig,
    /// Header extensions the node answers.
    pub extensions: Vec<ExtensionKind>,
    /// The direction the node wants: `RecvOnly` for WHIP, `SendOnly` for WHEP. Each
    /// m-line's answer direction is this intersected with the reverse of the offer's.
    pub direction: Direction,
    /// What the node sends, per mid (used where the answer direction sends).
    pub send_streams: Vec<SendStream>,
}

impl AnswerParams {
    /// Parameters with the default codecs and extensions, ICE-lite, no candidates and no
    /// send streams.
    pub fn new(
        ice_ufrag: impl Into<String>,
        ice_pwd: impl Into<String>,
        fingerprint: Fingerprint,
        direction: Direction,
    ) -> Self {
        Self {
            session_id: 0,
            ice_ufrag: ice_ufrag.into(),
            ice_pwd: ice_pwd.into(),
            ice_lite: true,
            fingerprint,
            candidates: Vec::new(),
            codecs: CodecConfig::default(),
            extensions: DEFAULT_EXTENSIONS.to_vec(),
            direction,
            send_streams: Vec::new(),
        }
    }
}

/// RFC 8445 §5.1.2.1 priority of a host candidate: type preference 126.
pub fn host_candidate_priority(local_preference: u16, component: u16) -> u32 {
    let component = u32::from(component.clamp(1, 256));
    (126 << 24) | (u32::from(local_preference) << 8) | (256 - component)
}

/// One UDP host candidate (component 1) per address, all on `port`. Local preference
/// decreases from 65535 in the given order, so list the preferred address first;
/// foundations are `1`, `2`, ….
pub fn host_candidates(addresses: &[IpAddr], port: u16) -> Vec<Candidate> {
    addresses
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            let local_pref = u16::try_from(i).map_or(0, |i| u16::MAX.saturating_sub(i));
            Candidate {
                foundation: (i + 1).to_string(),
                component: 1,
                transport: "udp".to_owned(),
                priority: host_candidate_priority(local_pref, 1),
                address: addr.to_string(),
                port,
                typ: CandidateType::Host,
                raddr: None,
                rport: None,
                extensions: Vec::new(),
            }
        })
        .collect()
}

/// The DTLS role of the answer: `passive` (the node is the DTLS server and waits for the
/// client's ClientHello, which is what an ICE-lite node behind one port wants) when the
/// offer says `actpass`, `active` or nothing; `active` when the offer says `passive`.
fn answer_setup(offer: Option<Setup>) -> Result<Setup, SdpError> {
    match offer {
        None | Some(Setup::ActPass) | Some(Setup::Active) => Ok(Setup::Passive),
        Some(Setup::Passive) => Ok(Setup::Active),
        Some(Setup::HoldConn) => Err(SdpError::Unacceptable(
            "a=setup:holdconn is not supported".to_owned(),
        )),
    }
}

/// Whether an m-line is rejected (port 0 in the answer) whatever its codecs.
fn rejection(offer: &SessionDescription, m: &MediaSection) -> bool {
    let rtp_kind = matches!(m.kind, MediaKind::Audio | MediaKind::Video);
    let port_ok = m.port != 0 || m.has_attribute("bundle-only");
    let mid_ok = match &m.mid {
        Some(mid) => offer.bundle.is_empty() || offer.bundle.contains(mid),
        None => false,
    };
    !(rtp_kind && port_ok && mid_ok && m.protocol.contains("SAVP"))
}

/// Picks the answer's codecs: for each configured codec (in configuration order), the first
/// offered codec matching it, with the offer's payload type, the configured fmtp, the
/// feedback both sides have, and its RTX if both sides have it.
fn answer_codecs(specs: &[CodecSpec], offered: &MediaSection) -> Vec<Codec> {
    let mut out = Vec::new();
    for spec in specs {
        let Some(codec) = offered
            .codecs
            .iter()
            .find(|c| !c.is_rtx() && spec.matches(c))
        else {
            continue;
        };
        if out
            .iter()
            .any(|c: &Codec| c.payload_type == codec.payload_type)
        {
            continue;
        }
        out.push(Codec {
            payload_type: codec.payload_type,
            name: spec.name.clone(),
            clock_rate: spec.clock_rate,
            channels: spec.channels,
            fmtp: (!spec.fmtp.params.is_empty()).then(|| spec.fmtp.clone()),
            rtcp_fb: spec
                .rtcp_fb
                .iter()
                .filter(|fb| codec.rtcp_fb.contains(fb))
                .cloned()
                .collect(),
        });
        if spec.rtx {
            if let Some(rtx) = offered
                .rtx_payload_type(codec.payload_type)
                .and_then(|pt| offered.codec(pt))
            {
                let apt = codec.payload_type.to_string();
                out.push(Codec {
                    payload_type: rtx.payload_type,
                    name: "rtx".to_owned(),
                    clock_rate: rtx.clock_rate,
                    channels: None,
                    fmtp: Some(Fmtp::from_pairs([("apt", apt.as_str())])),
                    rtcp_fb: Vec::new(),
                });
            }
        }
    }
    out
}

/// The answer's `a=rid:<id> recv` lines and `a=simulcast:recv` for an offer that sends
/// simulcast: every rid of the offer's `a=simulcast:send` that has an `a=rid:<id> send`
/// line, in the offer's order, alternatives and `~` kept.
fn answer_simulcast(offered: &MediaSection) -> Option<(Vec<Rid>, Simulcast)> {
    let sc = offered.simulcast.as_ref()?;
    let has_rid = |id: &str| {
        offered
            .rids
            .iter()
            .any(|r| r.id == id && r.direction == RidDirection::Send)
    };
    let recv: Vec<Vec<SimulcastRid>> = sc
        .send
        .iter()
        .map(|alts| {
            alts.iter()
                .filter(|a| has_rid(&a.id))
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|alts| !alts.is_empty())
        .collect();
    if recv.is_empty() {
        return None;
    }
    let rids = recv
        .iter()
        .flatten()
        .map(|a| Rid {
            id: a.id.clone(),
            direction: RidDirection::Recv,
            params: Vec::new(),
        })
        .collect();
    Some((
        rids,
        Simulcast {
            send: Vec::new(),
            recv,
        },
    ))
}

fn add_send_stream(section: &mut MediaSection, stream: &SendStream) {
    let has_rtx = section.codecs.iter().any(Codec::is_rtx);
    let msid = stream.msid.to_string();
    let ssrc_entry = |ssrc: u32| Ssrc {
        ssrc,
        attributes: vec![
            Attribute {
                name: "cname".to_owned(),
                value: Some(stream.cname.clone()),
            },
            Attribute {
                name: "msid".to_owned(),
                value: Some(msid.clone()),
            },
        ],
    };
    section.msids.push(stream.msid.clone());
    section.ssrcs.push(ssrc_entry(stream.ssrc));
    if let (Some(rtx), true) = (stream.rtx_ssrc, has_rtx) {
        section.ssrc_groups.push(SsrcGroup {
            semantics: "FID".to_owned(),
            ssrcs: vec![stream.ssrc, rtx],
        });
        section.ssrcs.push(ssrc_entry(rtx));
    }
}

/// Builds the node's answer to `offer`.
///
/// - m-lines are accepted when they are audio or video over a `SAVP(F)` profile, have a mid
///   in the offer's BUNDLE group (port 0 only with `a=bundle-only`) and share a codec with
///   [`AnswerParams::codecs`]; the others (data channels included, for now) are answered with
///   port 0 and left out of the answer's BUNDLE group, which lists every accepted mid.
/// - An accepted m-line must offer `a=rtcp-mux`, ICE credentials and a fingerprint (at
///   media or session level), else [`SdpError::MissingAttribute`] names the one missing.
/// - Codecs: each configured codec is matched by name and clock rate (and channels) against
///   the offer; the first match keeps the offer's payload type. H264 also needs the same
///   `packetization-mode` and the same profile as configured (default constrained baseline,
///   `42e01f`: Chromium's `42e01f` and `4de01f` match, its baseline `42001f` and high
///   `64001f` do not); levels are not compared (`level-asymmetry-allowed=1`). RTX is answered
///   only with its `apt` codec.
/// - Header extensions: the offered ones whose URI is in [`AnswerParams::extensions`], with
///   the offer's ids.
/// - Direction: [`AnswerParams::direction`] intersected with the reverse of the offer's
///   (WHIP: sendonly offer → recvonly; WHEP: recvonly offer → sendonly).
/// - Simulcast: where the node receives, an offered `a=simulcast:send` with `a=rid:<id> send`
///   lines is answered with `a=rid:<id> recv` lines and `a=simulcast:recv` of the same list.
/// - Where the node sends, the [`SendStream`] of that mid is announced.
/// - DTLS role: `passive` for an `actpass` (or `active`) offer, `active` for a `passive` one.
pub fn answer(
    offer: &SessionDescription,
    params: &AnswerParams,
) -> Result<SessionDescription, SdpError> {
    let mut out = SessionDescription {
        origin: Origin {
            session_id: params.session_id,
            session_version: 1,
            ..Origin::default()
        },
        session_name: "-".to_owned(),
        ice_lite: params.ice_lite,
        extmap_allow_mixed: offer.extmap_allow_mixed
            || offer
                .media
                .iter()
                .any(|m| m.has_attribute("extmap-allow-mixed")),
        ..SessionDescription::default()
    };
    for (index, om) in offer.media.iter().enumerate() {
        let mut am = MediaSection::new(om.kind.clone(), 0, om.protocol.clone());
        am.mid = om.mid.clone();
        am.formats = om.formats.clone();
        am.connection = Some("IN IP4 0.0.0.0".to_owned());
        am.direction = Direction::Inactive;
        let specs: &[CodecSpec] = match om.kind {
            MediaKind::Audio => &params.codecs.audio,
            MediaKind::Video => &params.codecs.video,
            _ => &[],
        };
        let codecs = answer_codecs(specs, om);
        if rejection(offer, om) || codecs.is_empty() {
            out.media.push(am);
            continue;
        }
        let mid = om.mid.clone().unwrap_or_default();
        let missing = |attribute: &'static str| SdpError::MissingAttribute {
            index,
            mid: mid.clone(),
            attribute,
        };
        if !om.rtcp_mux {
            return Err(missing("a=rtcp-mux"));
        }
        if om.effective_ice_ufrag(offer).is_none() {
            return Err(missing("a=ice-ufrag"));
        }
        if om.effective_ice_pwd(offer).is_none() {
            return Err(missing("a=ice-pwd"));
        }
        if om.effective_fingerprints(offer).is_empty() {
            return Err(missing("a=fingerprint"));
        }
        am.port = 9;
        am.formats = codecs.iter().map(|c| c.payload_type.to_string()).collect();
        am.codecs = codecs;
        am.setup = Some(answer_setup(om.effective_setup(offer))?);
        am.ice_ufrag = Some(params.ice_ufrag.clone());
        am.ice_pwd = Some(params.ice_pwd.clone());
        am.fingerprints = vec![params.fingerprint.clone()];
        am.rtcp_mux = true;
        am.rtcp_rsize = om.rtcp_rsize;
        am.direction = Direction::from_flags(
            params.direction.sends() && om.direction.receives(),
            params.direction.receives() && om.direction.sends(),
        );
        am.extmaps = om
            .extmaps
            .iter()
            .filter(|e| {
                ExtensionKind::from_uri(&e.uri).is_some_and(|k| params.extensions.contains(&k))
            })
            .map(|e| Extmap {
                id: e.id,
                direction: None,
                uri: e.uri.clone(),
                attributes: None,
            })
            .collect();
        if am.direction.receives() {
            if let Some((rids, simulcast)) = answer_simulcast(om) {
                am.rids = rids;
                am.simulcast = Some(simulcast);
            }
        }
        if am.direction.sends() {
            if let Some(stream) = params.send_streams.iter().find(|s| s.mid == mid) {
                add_send_stream(&mut am, stream);
            }
        }
        am.candidates = params.candidates.clone();
        am.end_of_candidates = true;
        out.bundle.push(mid);
        out.media.push(am);
    }
    if out.bundle.is_empty() {
        return Err(SdpError::Unacceptable(
            "no audio or video m-line has a codec in common with the node".to_owned(),
        ));
    }
    if offer.bundle.is_empty() && out.bundle.len() > 1 {
        return Err(SdpError::Unacceptable(
            "several media m-lines but no a=group:BUNDLE; one BUNDLE transport is required"
                .to_owned(),
        ));
    }
    Ok(out)
}
