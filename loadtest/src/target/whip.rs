//! relais (or any WHIP/WHEP server) as OBS, GStreamer or a browser page drives it: every
//! sending participant publishes with one WHIP session, and every receiver watches the
//! streams its view asks for with one WHEP session each (one PeerConnection per stream, as
//! WHEP has it).
//!
//! - **Publish** ([`WhipTarget::publish`]): `POST {base}/whip/{endpoint id}` with the offer
//!   of [`sdp::publisher_offer`] (Opus, VP8 or H264 simulcast signalled by `rid` with
//!   `a=simulcast:send`, the header extensions of [`HEADER_EXTENSIONS`]) → `201 Created`,
//!   the answer and a `Location`. The stream name is the publisher's endpoint id.
//! - **Watch** ([`WhipTarget::watch`]): `POST {base}/whep/{endpoint id}` with the
//!   receive-only offer of [`sdp::viewer_offer`] → `201`, an answer announcing the SSRCs the
//!   server sends the stream's audio and video (and video RTX) with, and a `Location`.
//! - **Stop** ([`WhipTarget::stop`]): `DELETE` on the `Location`; [`WhipTarget::leave`]
//!   stops every session of one endpoint, [`WhipTarget::end`] every session left.
//!
//! ICE: the server is ICE lite and the participants are controlling; its candidates come in
//! the answer (nothing is trickled). DTLS: the participant offers `actpass` and takes the
//! client side against the server's `passive`.
//!
//! Which streams a receiver watches is [`watched_streams`]: the view's on-stage and
//! selected sources first, then the other publishers, at most `last_n`. WHEP has no way to
//! ask for a layer or a height: relais feeds every viewer the highest simulcast layer that
//! is active, so the view's heights do not hold through this target (see the README).
//!
//! Errors never contain addresses or the token (DESIGN.md principle 4).

mod http;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hyper::Method;
use relais_rtp::extensions::{
    ABS_CAPTURE_TIME_URI, AUDIO_LEVEL_URI, MID_URI, REPAIRED_RTP_STREAM_ID_URI, RTP_STREAM_ID_URI,
    TRANSPORT_CC_URI,
};

use super::colibri::video_source_name;
use super::sdp::{self, Description, MediaKind, OfferOptions, Simulcast};
use super::{JoinRequest, TargetError, View};
use crate::media::VideoCodec;
use crate::participant::{LocalTransport, RemoteTransport};
use http::HttpAnswer;

/// Header extension id of the RFC 6464 audio level (as for Colibri2 and Janus).
pub const AUDIO_LEVEL_ID: u8 = 1;
/// Header extension id of the BUNDLE `mid` (as for Janus).
pub const MID_ID: u8 = 4;
/// Header extension id of the transport-wide sequence number (as for Colibri2 and Janus).
pub const TRANSPORT_CC_ID: u8 = 5;
/// Header extension id of abs-capture-time (as for Colibri2 and Janus).
pub const ABS_CAPTURE_TIME_ID: u8 = 7;
/// Header extension id of the simulcast `rid` (rtp-stream-id).
pub const RID_ID: u8 = 10;
/// Header extension id of the `rrid` (repaired-rtp-stream-id) of RTX packets.
pub const REPAIRED_RID_ID: u8 = 11;

/// The header extensions every offer carries, `(id, URI)` (audio level on audio only). A
/// WHIP publisher's answer from relais drops transport-cc (it estimates with REMB); a WHEP
/// viewer's keeps it.
pub const HEADER_EXTENSIONS: [(u8, &str); 6] = [
    (AUDIO_LEVEL_ID, AUDIO_LEVEL_URI),
    (MID_ID, MID_URI),
    (TRANSPORT_CC_ID, TRANSPORT_CC_URI),
    (ABS_CAPTURE_TIME_ID, ABS_CAPTURE_TIME_URI),
    (RID_ID, RTP_STREAM_ID_URI),
    (REPAIRED_RID_ID, REPAIRED_RTP_STREAM_ID_URI),
];

/// Settings of a [`WhipTarget`].
#[derive(Debug, Clone)]
pub struct WhipConfig {
    /// The server's HTTP listener (relais: the public one).
    pub address: SocketAddr,
    /// The path the `whip/` and `whep/` routes hang under (`""` for relais).
    pub base_path: String,
    /// The bearer token the server requires (relais: `http.whip_bearer_token`), if any. It is
    /// a credential: never logged.
    pub token: Option<String>,
    /// The simulcast `rid`s of a camera's encodings, lowest first (the scenario's layers).
    pub rids: Vec<String>,
    /// The codec the viewers' offers receive (what every publisher sends: the scenario's).
    pub video_codec: VideoCodec,
    /// Bound of each request.
    pub timeout: Duration,
}

impl WhipConfig {
    /// Settings for the server at `url` (`http://IP:PORT[/PATH]`: its routes are
    /// `PATH/whip/{stream}` and `PATH/whep/{stream}`).
    pub fn from_url(url: &str) -> Result<Self, TargetError> {
        const SHAPE: &str = "WHIP URLs other than http://IP:PORT[/PATH]";
        let rest = url
            .strip_prefix("http://")
            .ok_or(TargetError::Unsupported(SHAPE))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let address: SocketAddr = authority
            .parse()
            .map_err(|_| TargetError::Unsupported(SHAPE))?;
        let path = path.trim_matches('/');
        Ok(Self {
            address,
            base_path: if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            },
            token: None,
            rids: Vec::new(),
            video_codec: VideoCodec::Vp8,
            timeout: Duration::from_secs(10),
        })
    }
}

/// A session the server created.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session's resource (a path on the server), for [`WhipTarget::stop`].
    pub location: String,
    /// The server's transport, for
    /// [`Participant::set_remote`](crate::participant::Participant::set_remote).
    pub remote: RemoteTransport,
    /// The answer.
    pub answer: Description,
}

/// One stream a WHEP session receives: what the server sends it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedStream {
    /// Audio or video.
    pub kind: MediaKind,
    /// The SSRC the server sends it with.
    pub ssrc: u32,
    /// The SSRC of its retransmissions (video with RTX).
    pub rtx_ssrc: Option<u32>,
}

/// The WHIP/WHEP adapter. See the [module documentation](self).
#[derive(Debug)]
pub struct WhipTarget {
    config: WhipConfig,
    /// Every open session's `Location`, by the endpoint that opened it.
    sessions: Mutex<HashMap<String, Vec<String>>>,
}

impl WhipTarget {
    /// An adapter for the server of `config`.
    pub fn new(config: WhipConfig) -> Self {
        Self {
            config,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &WhipConfig {
        &self.config
    }

    /// The offer options of a publisher.
    fn publisher_options(&self) -> OfferOptions<'_> {
        OfferOptions {
            extensions: &HEADER_EXTENSIONS,
            simulcast: Simulcast::Rids(&self.config.rids),
        }
    }

    /// Publishes `request`'s microphone and camera on the stream named by its endpoint id.
    pub async fn publish(&self, request: &JoinRequest) -> Result<Session, TargetError> {
        let offer = sdp::publisher_offer(
            request,
            rand::random::<u32>().into(),
            &self.publisher_options(),
        )?;
        let path = format!("{}/whip/{}", self.config.base_path, request.endpoint_id);
        let session = self.create(&path, offer).await?;
        let simulcast =
            request.video.as_ref().is_some_and(|v| v.ssrcs.len() > 1) && self.config.rids.len() > 1;
        if simulcast && !accepts_rids(&session.answer) {
            // Without the rid extension the server cannot tell the encodings apart.
            let _ = self.stop(&request.endpoint_id, &session.location).await;
            return Err(TargetError::Protocol(
                "the WHIP answer does not accept the rid header extension",
            ));
        }
        self.remember(&request.endpoint_id, &session.location);
        Ok(session)
    }

    /// Watches `stream` for `viewer` (its endpoint id) from the transport `local`; returns
    /// the session and what the server sends on it.
    pub async fn watch(
        &self,
        viewer: &str,
        stream: &str,
        local: &LocalTransport,
    ) -> Result<(Session, Vec<WatchedStream>), TargetError> {
        let options = OfferOptions {
            extensions: &HEADER_EXTENSIONS,
            simulcast: Simulcast::Ssrc,
        };
        let offer = sdp::viewer_offer(
            local,
            rand::random::<u32>().into(),
            self.config.video_codec,
            &options,
        );
        let path = format!("{}/whep/{stream}", self.config.base_path);
        let session = self.create(&path, offer).await?;
        let streams = match watched_ssrcs(&session.answer) {
            Ok(streams) => streams,
            Err(error) => {
                let _ = self.delete(&session.location).await;
                return Err(error);
            }
        };
        self.remember(viewer, &session.location);
        Ok((session, streams))
    }

    /// Ends `endpoint`'s session at `location`.
    pub async fn stop(&self, endpoint: &str, location: &str) -> Result<(), TargetError> {
        if let Some(list) = lock(&self.sessions).get_mut(endpoint) {
            list.retain(|l| l != location);
        }
        self.delete(location).await
    }

    /// Ends every session `endpoint` opened (it leaves).
    pub async fn leave(&self, endpoint: &str) -> Result<(), TargetError> {
        let locations = lock(&self.sessions).remove(endpoint).unwrap_or_default();
        let mut result = Ok(());
        for location in &locations {
            if let Err(error) = self.delete(location).await {
                result = Err(error);
            }
        }
        result
    }

    /// Ends every session still open.
    pub async fn end(&self) -> Result<(), TargetError> {
        let endpoints: Vec<String> = lock(&self.sessions).keys().cloned().collect();
        let mut result = Ok(());
        for endpoint in &endpoints {
            if let Err(error) = self.leave(endpoint).await {
                result = Err(error);
            }
        }
        result
    }

    fn remember(&self, endpoint: &str, location: &str) {
        lock(&self.sessions)
            .entry(endpoint.to_owned())
            .or_default()
            .push(location.to_owned());
    }

    async fn create(&self, path: &str, offer: String) -> Result<Session, TargetError> {
        let answer = http::request(
            self.config.address,
            self.config.token.as_deref(),
            Method::POST,
            path,
            Some(offer),
            self.config.timeout,
        )
        .await?;
        created_session(&answer)
    }

    async fn delete(&self, location: &str) -> Result<(), TargetError> {
        let answer = http::request(
            self.config.address,
            self.config.token.as_deref(),
            Method::DELETE,
            location,
            None,
            self.config.timeout,
        )
        .await?;
        match answer.status {
            200..=299 => Ok(()),
            _ => Err(refused(&answer)),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The server's refusal as [`TargetError::Refused`]: the status and the first line of its
/// body (relais writes what is wrong there; never an address), at most 200 characters.
fn refused(answer: &HttpAnswer) -> TargetError {
    TargetError::Refused {
        status: answer.status,
        reason: "whip".to_owned(),
        message: answer
            .body
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect(),
    }
}

/// What a `POST` to a WHIP/WHEP URL gave: `201 Created` with a `Location` and an SDP answer
/// the participant can connect with, or why not.
fn created_session(answer: &HttpAnswer) -> Result<Session, TargetError> {
    if answer.status != 201 {
        return Err(refused(answer));
    }
    let location = answer
        .location
        .as_deref()
        .ok_or(TargetError::Protocol("the 201 answer has no Location"))?;
    let location = location_path(location)?;
    let description = Description::parse(&answer.body);
    let accepted = description
        .sections
        .iter()
        .any(|s| s.port != 0 && s.kind() != MediaKind::Other);
    if !accepted {
        return Err(TargetError::Protocol(
            "the SDP answer accepts no audio or video m-line",
        ));
    }
    let remote = description.remote_transport(&[])?;
    Ok(Session {
        location,
        remote,
        answer: description,
    })
}

/// The path of a `Location` (absolute path, or an `http://` URL on the same server: its
/// path; the adapter always talks to the configured address).
fn location_path(location: &str) -> Result<String, TargetError> {
    let location = location.trim();
    if location.starts_with('/') {
        return Ok(location.to_owned());
    }
    if let Some(rest) = location.strip_prefix("http://") {
        if let Some(slash) = rest.find('/') {
            return Ok(rest.get(slash..).unwrap_or("/").to_owned());
        }
    }
    Err(TargetError::Unsupported(
        "a Location that is neither an absolute path nor an http:// URL",
    ))
}

/// Whether the answer's video m-line accepted the rid header extension.
fn accepts_rids(answer: &Description) -> bool {
    answer
        .sections
        .iter()
        .filter(|s| s.kind() == MediaKind::Video && s.port != 0)
        .any(|s| s.extmaps.iter().any(|(_, uri)| uri == RTP_STREAM_ID_URI))
}

/// The SSRCs a WHEP answer announces for what it sends, per accepted m-line.
fn watched_ssrcs(answer: &Description) -> Result<Vec<WatchedStream>, TargetError> {
    let streams: Vec<WatchedStream> = answer
        .sections
        .iter()
        .filter(|s| s.port != 0 && s.kind() != MediaKind::Other)
        .filter_map(|s| {
            Some(WatchedStream {
                kind: s.kind(),
                ssrc: s.media_ssrc()?,
                rtx_ssrc: s.rtx_ssrc(),
            })
        })
        .collect();
    if !streams.iter().any(|s| s.kind == MediaKind::Video) {
        return Err(TargetError::Protocol(
            "the WHEP answer announces no video SSRC",
        ));
    }
    Ok(streams)
}

/// The streams (publishers' endpoint ids) a receiver `me` watches with `view`, among
/// `publishers` (in their order): the on-stage sources first, then the selected ones, then
/// the rest, never `me`, at most `view.last_n` (negative: no limit). One WHEP session each.
pub fn watched_streams(view: &View, publishers: &[String], me: &str) -> Vec<String> {
    let limit = usize::try_from(view.last_n).unwrap_or(usize::MAX);
    let by_source = |source: &String| publishers.iter().find(|p| video_source_name(p) == *source);
    let mut out: Vec<String> = Vec::new();
    let preferred = view
        .on_stage_sources
        .iter()
        .chain(&view.selected_sources)
        .filter_map(by_source);
    for publisher in preferred.chain(publishers) {
        if out.len() >= limit {
            break;
        }
        if publisher != me && !out.contains(publisher) {
            out.push(publisher.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::participant::Candidate;
    use crate::target::VideoSource;
    use relais_srtp::DtlsRole;
    use relais_transport::dtls_srtp::NodeCertificate;
    use relais_transport::ice::IceCredentials;

    fn local() -> LocalTransport {
        LocalTransport {
            credentials: IceCredentials::new("ufrag", "0123456789012345678901").unwrap(),
            fingerprint: NodeCertificate::generate().unwrap().fingerprint().clone(),
            candidates: vec![Candidate {
                address: "127.0.0.1:40000".parse().unwrap(),
                priority: 2_130_706_431,
            }],
        }
    }

    fn target() -> WhipTarget {
        let mut config = WhipConfig::from_url("http://127.0.0.1:9090").unwrap();
        config.rids = vec!["q".into(), "h".into(), "f".into()];
        WhipTarget::new(config)
    }

    fn request() -> JoinRequest {
        JoinRequest {
            endpoint_id: "abcd0001".into(),
            transport: local(),
            audio_ssrc: Some(11),
            video: Some(VideoSource {
                ssrcs: vec![21, 22, 23],
                rtx_ssrcs: vec![31, 32, 33],
                codec: VideoCodec::Vp8,
            }),
        }
    }

    /// An answer as relais writes one (the server's own parser and writer: `relais-whip`
    /// is not a dependency of the load tester, so this is its output, abridged).
    fn answer(fingerprint: &str, video_ssrcs: &str) -> String {
        format!(
            "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=ice-lite\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
             a=ice-ufrag:node\r\na=ice-pwd:0123456789abcdefghijkl\r\na=fingerprint:{fingerprint}\r\n\
             a=setup:passive\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:501 cname:relais\r\n\
             a=candidate:1 1 udp 2130706431 127.0.0.1 10000 typ host\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 100 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
             a=extmap:10 {RTP_STREAM_ID_URI}\r\na=rtpmap:100 VP8/90000\r\na=rtpmap:96 rtx/90000\r\n\
             a=fmtp:96 apt=100\r\n{video_ssrcs}"
        )
    }

    fn created(status: u16, location: Option<&str>, body: String) -> HttpAnswer {
        HttpAnswer {
            status,
            location: location.map(str::to_owned),
            body,
        }
    }

    #[test]
    fn the_publisher_offer_signals_simulcast_by_rid_with_mid_and_rid_extensions() {
        let target = target();
        let offer = sdp::publisher_offer(&request(), 7, &target.publisher_options()).unwrap();
        assert!(offer.contains("a=group:BUNDLE 0 1\r\n"), "{offer}");
        assert!(offer.contains("a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\n"));
        assert!(offer.contains("a=simulcast:send q;h;f\r\n"));
        assert!(offer.contains(&format!("a=extmap:{MID_ID} {MID_URI}\r\n")));
        assert!(offer.contains(&format!("a=extmap:{RID_ID} {RTP_STREAM_ID_URI}\r\n")));
        assert!(offer.contains("a=setup:actpass\r\n"));
        // Encodings by rid: no video SSRC lines; the microphone's SSRC is announced.
        assert!(!offer.contains("ssrc-group:SIM"));
        let parsed = Description::parse(&offer);
        assert_eq!(parsed.sections.len(), 2);
        assert_eq!(parsed.sections[0].ssrcs, vec![11]);
        assert!(parsed.sections[1].ssrcs.is_empty());
        assert_eq!(parsed.sections[0].direction, "sendonly");
        assert_eq!(parsed.sections[1].direction, "sendonly");
        assert_eq!(parsed.sections[1].rtx_payload_type(), Some(sdp::VP8_RTX_PT));
        // Audio level on audio only.
        assert!(parsed.sections[0]
            .extmaps
            .contains(&(AUDIO_LEVEL_ID, AUDIO_LEVEL_URI.to_owned())));
        assert!(!parsed.sections[1]
            .extmaps
            .iter()
            .any(|(id, _)| *id == AUDIO_LEVEL_ID));
    }

    #[test]
    fn the_viewer_offer_receives_audio_and_video() {
        let offer = sdp::viewer_offer(
            &local(),
            9,
            VideoCodec::Vp8,
            &OfferOptions {
                extensions: &HEADER_EXTENSIONS,
                simulcast: Simulcast::Ssrc,
            },
        );
        let parsed = Description::parse(&offer);
        assert_eq!(parsed.sections.len(), 2);
        assert_eq!(parsed.sections[0].kind(), MediaKind::Audio);
        assert_eq!(parsed.sections[1].kind(), MediaKind::Video);
        assert!(parsed.sections.iter().all(|s| s.direction == "recvonly"));
        assert!(parsed.sections.iter().all(|s| s.ssrcs.is_empty()));
        assert_eq!(parsed.sections[1].rtx_payload_type(), Some(sdp::VP8_RTX_PT));
        assert!(parsed.sections[1]
            .extmaps
            .contains(&(TRANSPORT_CC_ID, TRANSPORT_CC_URI.to_owned())));
        // The transport on both m-lines (BUNDLE): the same candidate each time.
        assert_eq!(parsed.candidates.len(), 2);
        assert!(parsed
            .candidates
            .iter()
            .all(|c| *c == local().candidates[0]));
    }

    #[test]
    fn a_created_answer_gives_location_transport_and_ssrcs() {
        let node = NodeCertificate::generate().unwrap();
        let fingerprint = node.fingerprint().to_string();
        let body = answer(
            &fingerprint,
            "a=ssrc-group:FID 601 602\r\na=ssrc:601 cname:relais\r\na=ssrc:602 cname:relais\r\n",
        );
        let session = created_session(&created(201, Some("/whep/abcd0001/f00d"), body)).unwrap();
        assert_eq!(session.location, "/whep/abcd0001/f00d");
        assert_eq!(session.remote.dtls_role, DtlsRole::Client);
        assert_eq!(session.remote.candidates[0].address.port(), 10000);
        assert_eq!(&session.remote.fingerprint, node.fingerprint());
        assert!(accepts_rids(&session.answer));
        let streams = watched_ssrcs(&session.answer).unwrap();
        assert_eq!(
            streams,
            vec![
                WatchedStream {
                    kind: MediaKind::Audio,
                    ssrc: 501,
                    rtx_ssrc: None
                },
                WatchedStream {
                    kind: MediaKind::Video,
                    ssrc: 601,
                    rtx_ssrc: Some(602)
                },
            ]
        );
        // An absolute URL on the server is reduced to its path.
        let body = answer(&fingerprint, "a=ssrc:601 cname:relais\r\n");
        let session = created_session(&created(
            201,
            Some("http://127.0.0.1:9090/whip/abcd0001/f00d"),
            body,
        ))
        .unwrap();
        assert_eq!(session.location, "/whip/abcd0001/f00d");
    }

    #[test]
    fn refusals_and_broken_answers_are_clear_errors() {
        let fingerprint = NodeCertificate::generate()
            .unwrap()
            .fingerprint()
            .to_string();
        let good = answer(&fingerprint, "a=ssrc:601 cname:relais\r\n");
        // 4xx and 5xx: the status and the server's first line.
        for (status, text) in [
            (401, "missing or invalid bearer token"),
            (
                422,
                "no audio or video m-line with a codec the node forwards",
            ),
            (503, "service unavailable: limits.max_sessions_per_second"),
        ] {
            let error =
                created_session(&created(status, None, format!("{text}\nmore"))).unwrap_err();
            match error {
                TargetError::Refused {
                    status: s,
                    ref message,
                    ..
                } => {
                    assert_eq!(s, status);
                    assert_eq!(message, text);
                }
                other => panic!("{other:?}"),
            }
        }
        // A 200 is not a created session.
        assert!(matches!(
            created_session(&created(200, Some("/whip/x/y"), good.clone())),
            Err(TargetError::Refused { status: 200, .. })
        ));
        // No Location.
        let error = created_session(&created(201, None, good.clone())).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unexpected answer from the target: the 201 answer has no Location"
        );
        // A Location elsewhere.
        assert!(created_session(&created(201, Some("whip/x"), good.clone())).is_err());
        // Not SDP, or SDP without a transport.
        let error = created_session(&created(201, Some("/whip/x/y"), "<html>".into())).unwrap_err();
        assert!(
            error.to_string().contains("no audio or video m-line"),
            "{error}"
        );
        let no_ice = good.replace("a=ice-ufrag:node\r\n", "");
        let error = created_session(&created(201, Some("/whip/x/y"), no_ice)).unwrap_err();
        assert!(error.to_string().contains("no ICE ufrag"), "{error}");
        let garbage: String = (0..2000u32)
            .map(|i| char::from_u32(i * 7919 % 0x2FF).unwrap_or('x'))
            .collect();
        assert!(created_session(&created(201, Some("/whip/x/y"), garbage)).is_err());
        // A WHEP answer without the SSRCs of what it sends.
        let no_ssrc = answer(&fingerprint, "");
        let session = created_session(&created(201, Some("/whep/x/y"), no_ssrc)).unwrap();
        assert!(watched_ssrcs(&session.answer).is_err());
        // A WHIP answer without the rid extension.
        let no_rid = good.replace(&format!("a=extmap:10 {RTP_STREAM_ID_URI}\r\n"), "");
        let session = created_session(&created(201, Some("/whip/x/y"), no_rid)).unwrap();
        assert!(!accepts_rids(&session.answer));
    }

    #[test]
    fn the_view_maps_to_one_session_per_stream_stage_first_within_last_n() {
        let publishers: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let mut view = View {
            last_n: 3,
            on_stage_sources: vec![video_source_name("d")],
            on_stage_max_height: 720,
            selected_sources: vec![video_source_name("e"), video_source_name("zz")],
            default_max_height: 180,
        };
        assert_eq!(watched_streams(&view, &publishers, "a"), ["d", "e", "b"]);
        // Never oneself, even on stage.
        view.on_stage_sources = vec![video_source_name("a")];
        assert_eq!(watched_streams(&view, &publishers, "a"), ["e", "b", "c"]);
        view.last_n = -1;
        assert_eq!(
            watched_streams(&view, &publishers, "a"),
            ["e", "b", "c", "d"]
        );
        view.last_n = 0;
        assert!(watched_streams(&view, &publishers, "a").is_empty());
        assert!(watched_streams(&view, &[], "a").is_empty());
    }

    #[test]
    fn urls() {
        let config = WhipConfig::from_url("http://127.0.0.1:9090/").unwrap();
        assert_eq!(config.address.port(), 9090);
        assert_eq!(config.base_path, "");
        let config = WhipConfig::from_url("http://[::1]:8443/relais/").unwrap();
        assert_eq!(config.base_path, "/relais");
        assert!(WhipConfig::from_url("https://127.0.0.1/").is_err());
        assert!(WhipConfig::from_url("http://name:80/").is_err());
    }
}
