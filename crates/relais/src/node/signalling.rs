//! WHIP/WHEP signalling: [`NodeHandle`] implements [`WhipBackend`] by turning an SDP offer
//! into an answer, the forwarder's [`MediaLine`]s and an endpoint of the media task.
//!
//! Publishers are answered without transport-wide congestion control (no `transport-cc`
//! extension, no `transport-cc` feedback): until bandwidth estimation exists the forwarder
//! sends REMB, and Chromium only honours REMB when transport-cc is not negotiated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use relais_conference::{CodecName, MediaKind as ConfKind, MediaLine, NegotiatedCodec};
use relais_rtp::extensions::{ExtensionKind, ExtensionMap};
use relais_srtp::DtlsRole;
use relais_transport::dtls_srtp::Fingerprint as DtlsFingerprint;
use relais_transport::ice::{IceAgent, IceConfig, IceCredentials};
use relais_whip::http::{CreatedSession, SessionKind, WhipBackend, WhipError};
use relais_whip::sdp::{
    self, AnswerParams, Candidate, Direction, Fingerprint, MediaKind, MediaSection, Msid, SdpError,
    SendStream, SessionDescription, Setup,
};
use tokio::sync::{mpsc, oneshot};

use super::media::{Command, CreateEndpoint, CreateError, MediaStats, NodeSnapshot, PatchReply};

/// `text` with everything but RFC 3986 unreserved characters percent-encoded (ICE pwds
/// may hold `+` and `/`, which a query or path would read differently).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// How long signalling waits for the media task to answer a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The signalling side's handle on the node: cheap to clone, one per HTTP request.
#[derive(Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    fingerprint: Fingerprint,
    candidates: Arc<Vec<Candidate>>,
    /// `ws://host:port` or `wss://host[:port]` of the public listener, for colibri-ws URLs.
    web_socket_base: Arc<str>,
}

impl NodeHandle {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        fingerprint: Fingerprint,
        candidates: Vec<Candidate>,
        web_socket_base: String,
    ) -> Self {
        Self {
            commands,
            fingerprint,
            candidates: Arc::new(candidates),
            web_socket_base: web_socket_base.into(),
        }
    }

    /// The node's ICE candidates.
    pub(crate) fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// The node certificate's fingerprint as (hash name, colon-separated hex).
    pub(crate) fn fingerprint_parts(&self) -> (String, String) {
        let text = self.fingerprint.to_string();
        match text.split_once(' ') {
            Some((hash, hex)) => (hash.to_owned(), hex.to_owned()),
            None => ("sha-256".to_owned(), text),
        }
    }

    /// The colibri-ws URL of an endpoint. The server id is a fixed name: JVB's default
    /// (its IP address) would put an address into every client's signalling.
    pub(crate) fn web_socket_url(
        &self,
        meeting_id: &str,
        endpoint: &str,
        pwd: &str,
    ) -> Option<String> {
        Some(format!(
            "{}/colibri-ws/relais/{}/{}?pwd={}",
            self.web_socket_base,
            percent_encode(meeting_id),
            percent_encode(endpoint),
            percent_encode(pwd)
        ))
    }

    /// Sends `make(reply)` to the media task and waits (bounded) for the reply.
    pub(crate) async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.ok()?;
        tokio::time::timeout(COMMAND_TIMEOUT, rx).await.ok()?.ok()
    }

    /// Queues a command without a reply; false when the media task is gone.
    pub(crate) async fn command(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// Whether the media task answers within `timeout` (the health check).
    pub async fn media_alive(&self, timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.commands.try_send(Command::Ping(tx)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())))
    }

    /// The media task's counters.
    pub async fn media_stats(&self) -> Option<MediaStats> {
        self.request(Command::Stats).await
    }

    /// A metrics snapshot, if the media task answers within `timeout`.
    pub(crate) async fn media_snapshot(&self, timeout: Duration) -> Option<NodeSnapshot> {
        let (tx, rx) = oneshot::channel();
        self.commands.try_send(Command::Snapshot(tx)).ok()?;
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }

    fn build(
        &self,
        kind: SessionKind,
        stream: &str,
        offer: &SessionDescription,
    ) -> Result<(SessionDescription, CreateEndpoint), WhipError> {
        let Some((index, first)) = offer
            .media
            .iter()
            .enumerate()
            .find(|(_, m)| matches!(m.kind, MediaKind::Audio | MediaKind::Video))
        else {
            return Err(WhipError::Unsupported(
                "the offer has no audio or video m-line".to_owned(),
            ));
        };
        let missing = |attribute| {
            WhipError::BadOffer(SdpError::MissingAttribute {
                index,
                mid: first.mid.clone().unwrap_or_default(),
                attribute,
            })
        };
        let remote_credentials = match (
            first.effective_ice_ufrag(offer),
            first.effective_ice_pwd(offer),
        ) {
            (Some(ufrag), Some(pwd)) => IceCredentials::new(ufrag, pwd)
                .map_err(|_| WhipError::Unsupported("invalid ICE credentials".to_owned()))?,
            (None, _) => return Err(missing("a=ice-ufrag")),
            (_, None) => return Err(missing("a=ice-pwd")),
        };
        let remote_fingerprint = first
            .effective_fingerprints(offer)
            .iter()
            .find_map(|f| DtlsFingerprint::parse(&f.to_string()).ok())
            .ok_or_else(|| missing("a=fingerprint"))?;

        let mut rng = rand::rng();
        let mut ice = IceAgent::new(IceConfig::lite(), &mut rng, Instant::now());
        ice.set_remote_credentials(remote_credentials);
        let local = ice.local_credentials().clone();
        let direction = match kind {
            SessionKind::Publish => Direction::RecvOnly,
            SessionKind::Play => Direction::SendOnly,
        };
        let mut params =
            AnswerParams::new(local.ufrag, local.pwd, self.fingerprint.clone(), direction);
        params.session_id = rng.random::<u64>() >> 1;
        params.candidates = self.candidates.as_ref().clone();
        match kind {
            SessionKind::Publish => {
                params
                    .extensions
                    .retain(|k| *k != ExtensionKind::TransportCc);
                for spec in params
                    .codecs
                    .audio
                    .iter_mut()
                    .chain(params.codecs.video.iter_mut())
                {
                    spec.rtcp_fb.retain(|fb| fb.kind != "transport-cc");
                }
            }
            SessionKind::Play => {
                params.send_streams = offer
                    .media
                    .iter()
                    .filter_map(|m| {
                        let video = match m.kind {
                            MediaKind::Audio => false,
                            MediaKind::Video => true,
                            _ => return None,
                        };
                        Some(SendStream {
                            mid: m.mid.clone()?,
                            ssrc: rng.random(),
                            rtx_ssrc: video.then(|| rng.random()),
                            cname: "relais".to_owned(),
                            msid: Msid {
                                stream_id: format!("relais-{stream}"),
                                track_id: Some(m.kind.as_str().to_owned()),
                            },
                        })
                    })
                    .collect();
            }
        }
        let answer = sdp::answer(offer, &params)?;

        let mut lines = Vec::new();
        let mut setup = None;
        for am in answer.media.iter().filter(|m| m.port != 0) {
            let Some(mid) = am.mid.clone() else { continue };
            let offered = offer.media_by_mid(&mid);
            let send = params.send_streams.iter().find(|s| s.mid == mid);
            if let Some(line) = media_line(kind, am, offered, send) {
                setup = setup.or(am.effective_setup(&answer));
                lines.push(line);
            }
        }
        if lines.is_empty() {
            return Err(WhipError::Unsupported(
                "no audio or video m-line with a codec the node forwards".to_owned(),
            ));
        }
        let dtls_role = match setup {
            Some(Setup::Active) => DtlsRole::Client,
            _ => DtlsRole::Server,
        };
        let session = session_id(&mut rng);
        let announced_sources = lines
            .iter()
            .map(|l| l.simulcast_rids.len().max(l.announced_ssrcs.len()) as u64)
            .sum();
        Ok((
            answer,
            CreateEndpoint {
                kind,
                stream: stream.to_owned(),
                session,
                ice,
                dtls_role,
                remote_fingerprint,
                lines,
                announced_sources,
            },
        ))
    }
}

/// What a WHIP/WHEP PATCH body (`application/trickle-ice-sdpfrag`, RFC 8840) carries that
/// the node uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SdpFrag {
    /// The peer's ICE credentials when the fragment has them (an ICE restart when they
    /// differ from the session's).
    pub(crate) credentials: Option<IceCredentials>,
    /// The first `m=` line and the `a=mid` that follows it, echoed in the answer fragment.
    pub(crate) media: Option<(String, Option<String>)>,
}

/// Parses a trickle-ICE SDP fragment: `a=ice-ufrag`, `a=ice-pwd`, `a=candidate`,
/// `a=end-of-candidates`, `a=group:BUNDLE`, `a=mid`, `m=` lines and other attributes
/// (ignored: an ICE-lite node needs no remote candidates); CRLF or LF line ends, blank
/// lines skipped.
///
/// Malformed fragments are [`WhipError::BadOffer`] (400): a line that is not `<letter>=...`,
/// an `a=candidate` without its six fixed fields, conflicting or invalid credentials, or a
/// ufrag without a password (or the reverse).
pub(crate) fn parse_sdpfrag(fragment: &str) -> Result<SdpFrag, WhipError> {
    let syntax = |line: usize, message: &str| {
        WhipError::BadOffer(SdpError::Syntax {
            line,
            message: message.to_owned(),
        })
    };
    let mut ufrag: Option<&str> = None;
    let mut pwd: Option<&str> = None;
    let mut media: Option<(String, Option<String>)> = None;
    let mut in_first_media = false;
    for (index, raw) in fragment.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        let Some((kind, value)) = line.split_once('=') else {
            return Err(syntax(number, "not an SDP line"));
        };
        if kind.len() != 1 || !kind.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(syntax(number, "not an SDP line"));
        }
        if kind == "m" {
            if value.split_ascii_whitespace().count() < 3 {
                return Err(syntax(number, "m=: expected media, port and protocol"));
            }
            in_first_media = media.is_none();
            if in_first_media {
                media = Some((line.to_owned(), None));
            }
            continue;
        }
        if kind != "a" {
            continue;
        }
        let (name, attribute) = value.split_once(':').unwrap_or((value, ""));
        match name {
            "ice-ufrag" | "ice-pwd" => {
                let slot = if name == "ice-ufrag" {
                    &mut ufrag
                } else {
                    &mut pwd
                };
                if attribute.is_empty() || slot.is_some_and(|seen| seen != attribute) {
                    return Err(syntax(
                        number,
                        "a=ice-ufrag/a=ice-pwd: empty or conflicting",
                    ));
                }
                *slot = Some(attribute);
            }
            "candidate" => {
                let fields: Vec<&str> = attribute.split_ascii_whitespace().collect();
                let valid = fields.len() >= 8
                    && fields.get(1).is_some_and(|c| c.parse::<u16>().is_ok())
                    && fields.get(3).is_some_and(|p| p.parse::<u32>().is_ok())
                    && fields.get(5).is_some_and(|p| p.parse::<u16>().is_ok())
                    && fields.get(6) == Some(&"typ");
                if !valid {
                    return Err(syntax(number, "a=candidate: malformed"));
                }
            }
            "mid" if in_first_media => {
                if let Some((_, mid)) = media.as_mut() {
                    mid.get_or_insert_with(|| attribute.to_owned());
                }
            }
            _ => {}
        }
    }
    // Errors about the fragment as a whole name its last line.
    let last = fragment.lines().count().max(1);
    let credentials = match (ufrag, pwd) {
        (Some(ufrag), Some(pwd)) => Some(
            IceCredentials::new(ufrag, pwd).map_err(|_| syntax(last, "invalid ICE credentials"))?,
        ),
        (None, None) => None,
        _ => return Err(syntax(last, "a=ice-ufrag and a=ice-pwd go together")),
    };
    Ok(SdpFrag { credentials, media })
}

/// The answer fragment of an ICE restart: the node's new credentials and its candidates.
fn restart_answer(
    credentials: &IceCredentials,
    candidates: &[Candidate],
    media: Option<&(String, Option<String>)>,
) -> String {
    let mut answer = format!(
        "a=ice-lite\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
        credentials.ufrag, credentials.pwd
    );
    if let Some((m_line, mid)) = media {
        answer.push_str(m_line);
        answer.push_str("\r\n");
        if let Some(mid) = mid {
            answer.push_str(&format!("a=mid:{mid}\r\n"));
        }
    }
    for candidate in candidates {
        answer.push_str(&format!("a=candidate:{candidate}\r\n"));
    }
    answer.push_str("a=end-of-candidates\r\n");
    answer
}

/// A random 128-bit session id, hex.
fn session_id(rng: &mut impl Rng) -> String {
    format!("{:032x}", rng.random::<u128>())
}

/// The publisher's media SSRCs from `a=ssrc`: the `SIM` group's order when there is one
/// (lowest layer first), else every SSRC in order of appearance; RTX SSRCs (second members
/// of `FID` groups) left out.
fn media_ssrcs(offer: &MediaSection) -> Vec<u32> {
    if let Some(sim) = offer.ssrc_groups.iter().find(|g| g.semantics == "SIM") {
        return sim.ssrcs.clone();
    }
    let repair: Vec<u32> = offer
        .ssrc_groups
        .iter()
        .filter(|g| g.semantics == "FID")
        .flat_map(|g| g.ssrcs.iter().skip(1).copied())
        .collect();
    let mut ssrcs = Vec::new();
    for ssrc in offer.ssrcs.iter().map(|s| s.ssrc) {
        if !repair.contains(&ssrc) && !ssrcs.contains(&ssrc) {
            ssrcs.push(ssrc);
        }
    }
    ssrcs
}

/// The forwarder's view of one accepted answer m-line.
fn media_line(
    kind: SessionKind,
    answer: &MediaSection,
    offer: Option<&MediaSection>,
    send: Option<&SendStream>,
) -> Option<MediaLine> {
    let media_kind = match answer.kind {
        MediaKind::Audio => ConfKind::Audio,
        MediaKind::Video => ConfKind::Video,
        _ => return None,
    };
    let codecs: Vec<NegotiatedCodec> = answer
        .codecs
        .iter()
        .filter(|c| !c.is_rtx())
        .filter_map(|c| {
            let name = match c.name.to_ascii_lowercase().as_str() {
                "opus" => CodecName::Opus,
                "vp8" => CodecName::Vp8,
                "vp9" => CodecName::Vp9,
                "h264" => CodecName::H264,
                "av1" => CodecName::Av1,
                _ => return None,
            };
            Some(NegotiatedCodec {
                payload_type: c.payload_type,
                name,
                clock_rate: c.clock_rate,
                rtx_payload_type: answer.rtx_payload_type(c.payload_type),
            })
        })
        .collect();
    if codecs.is_empty() {
        return None;
    }
    let mut extensions = ExtensionMap::default();
    for extmap in &answer.extmaps {
        if let Ok(id) = u8::try_from(extmap.id) {
            // Ids out of range or duplicated are not forwarded; the rest still works.
            let _ = extensions.insert_uri(id, &extmap.uri);
        }
    }
    let (simulcast_rids, announced_ssrcs) = match (kind, offer) {
        (SessionKind::Publish, Some(offer)) => {
            let rids = offer
                .simulcast
                .as_ref()
                .map(|s| {
                    s.send
                        .iter()
                        .filter_map(|alternatives| alternatives.first())
                        .map(|rid| rid.id.clone())
                        .collect()
                })
                .unwrap_or_default();
            (rids, media_ssrcs(offer))
        }
        _ => (Vec::new(), Vec::new()),
    };
    Some(MediaLine {
        mid: answer.mid.clone()?,
        kind: media_kind,
        codecs,
        extensions,
        simulcast_rids,
        announced_ssrcs,
        send_ssrc: send.map(|s| s.ssrc),
        send_rtx_ssrc: send.and_then(|s| s.rtx_ssrc),
    })
}

impl WhipBackend for NodeHandle {
    async fn create_session(
        &self,
        kind: SessionKind,
        stream: String,
        offer: SessionDescription,
    ) -> Result<CreatedSession, WhipError> {
        let (answer, request) = self.build(kind, &stream, &offer)?;
        let session = request.session.clone();
        let reply = self
            .request(|tx| Command::Create(Box::new(request), tx))
            .await
            .ok_or_else(|| WhipError::Unavailable("the media task is not answering".to_owned()))?;
        match reply {
            Ok(_) => Ok(CreatedSession { session, answer }),
            // Drain and capacity refusals: 503 naming the reason (GRACEFUL_SHUTDOWN while
            // draining, the limit's key otherwise); also counted in /about/stats.
            Err(e) if e.is_unavailable() => Err(WhipError::Unavailable(e.to_string())),
            Err(e @ CreateError::TooManySsrcs { .. }) => Err(WhipError::Unsupported(e.to_string())),
            Err(e) => {
                tracing::warn!("endpoint not created: {}", e);
                Err(WhipError::Unsupported(e.to_string()))
            }
        }
    }

    async fn delete_session(
        &self,
        kind: SessionKind,
        stream: String,
        session: String,
    ) -> Result<(), WhipError> {
        let existed = self
            .request(|reply| Command::Delete {
                kind,
                stream,
                session,
                reply,
            })
            .await
            .ok_or_else(|| WhipError::Unavailable("the media task is not answering".to_owned()))?;
        if existed {
            Ok(())
        } else {
            Err(WhipError::NotFound)
        }
    }

    /// RFC 9725 §4.4: a fragment with ICE credentials other than the session's restarts
    /// ICE (200 with the node's new credentials and candidates); trickled candidates alone
    /// are acknowledged (204: the node is ICE-lite and learns addresses from checks).
    /// Malformed fragments are 400, unknown sessions 404, a closed agent 422.
    async fn patch_session(
        &self,
        kind: SessionKind,
        stream: String,
        session: String,
        fragment: String,
    ) -> Result<Option<String>, WhipError> {
        let SdpFrag { credentials, media } = parse_sdpfrag(&fragment)?;
        let reply = self
            .request(|reply| Command::Patch {
                kind,
                stream,
                session,
                remote: credentials,
                reply,
            })
            .await
            .ok_or_else(|| WhipError::Unavailable("the media task is not answering".to_owned()))?;
        match reply {
            PatchReply::NotFound => Err(WhipError::NotFound),
            PatchReply::Unchanged => Ok(None),
            PatchReply::Restarted(local) => Ok(Some(restart_answer(
                &local,
                &self.candidates,
                media.as_ref(),
            ))),
            PatchReply::Failed => Err(WhipError::Unsupported(
                "the session's ICE agent cannot restart (closed or failed)".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sdpfrag_with_credentials_and_candidates() {
        let frag = "a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
            a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijkl\r\n\
            a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\na=end-of-candidates\r\n";
        let parsed = parse_sdpfrag(frag).unwrap();
        let creds = parsed.credentials.unwrap();
        assert_eq!(creds.ufrag, "abcd");
        assert_eq!(creds.pwd, "0123456789abcdefghijkl");
        let (m, mid) = parsed.media.unwrap();
        assert!(m.starts_with("m=audio"));
        assert_eq!(mid.as_deref(), Some("0"));
        // LF only, candidates only.
        let parsed =
            parse_sdpfrag("a=candidate:1 1 udp 1 192.0.2.1 5000 typ host\na=end-of-candidates\n")
                .unwrap();
        assert_eq!(parsed.credentials, None);
    }

    #[test]
    fn malformed_sdpfrags_are_bad_requests() {
        for frag in [
            "garbage",
            "a=ice-ufrag:abcd\r\n",
            "a=ice-pwd:0123456789abcdefghijkl\r\n",
            "a=candidate:1 1 udp\r\n",
            "a=ice-ufrag:abcd\r\na=ice-ufrag:efgh\r\na=ice-pwd:0123456789abcdefghijkl\r\n",
            "xy=z\r\n",
        ] {
            assert!(
                matches!(parse_sdpfrag(frag), Err(WhipError::BadOffer(_))),
                "{frag:?}"
            );
        }
    }

    #[test]
    fn restart_answer_has_credentials_and_candidates() {
        let creds = IceCredentials::new("node", "0123456789abcdefghijkl").unwrap();
        let candidates = sdp::host_candidates(&["127.0.0.1".parse().unwrap()], 4000);
        let answer = restart_answer(&creds, &candidates, None);
        assert!(answer.contains("a=ice-ufrag:node\r\na=ice-pwd:0123456789abcdefghijkl\r\n"));
        assert!(answer.contains("a=candidate:"));
        assert!(answer.contains(" 127.0.0.1 4000 typ host\r\n"));
        assert!(answer.ends_with("a=end-of-candidates\r\n"));
    }
}
