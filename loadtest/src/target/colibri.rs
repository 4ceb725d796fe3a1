//! relais (and jitsi-videobridge with REST Colibri2) as a Jitsi Meet deployment drives it:
//! the adapter plays Jicofo on the node's private HTTP API and the Jitsi Meet client on the
//! bridge channel.
//!
//! Joining is Jicofo's sequence: the conference is created once (`POST
//! /colibri/v2/conferences` with `create`), each participant's endpoint is allocated with
//! its media description and sources and an ICE-controlling node agent (`PATCH` with an
//! endpoint `create`), the answer's transport (ICE credentials, candidates, DTLS
//! fingerprint, bridge channel URL) goes to the participant, and the participant's own
//! transport follows in a second `PATCH` (as Jicofo relays it after the client's
//! session-accept). The participant is ICE controlled and takes the DTLS client role
//! against the node's `actpass`. Leaving expires the endpoint; [`ColibriTarget::end`]
//! expires the conference.
//!
//! Media description: what Jicofo offers (Opus 111; VP8 100 with RTX 96; H264 107 with RTX
//! 99) and the header extensions of [`HEADER_EXTENSIONS`], whose ids the media layer must
//! use. Sources follow Jitsi's naming: `<endpoint>-a0` for the microphone, `<endpoint>-v0`
//! for the camera with a SIM group (lowest encoding first) and one FID group per encoding.

mod bridge;
mod http;

use std::net::SocketAddr;
use std::time::Duration;

use hyper::Method;
use rand::Rng;
use relais_rtp::extensions::{
    ABS_CAPTURE_TIME_URI, ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, TRANSPORT_CC_URI,
};
use relais_srtp::DtlsRole;
use relais_transport::dtls_srtp::Fingerprint;
use relais_transport::ice::IceCredentials;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

pub use bridge::BridgeChannel;

use super::{JoinRequest, Joined, Target, TargetError};
use crate::media::VideoCodec;
use crate::participant::{Candidate, LocalTransport, RemoteTransport};

/// Header extension id of the RFC 6464 audio level (Jicofo's).
pub const AUDIO_LEVEL_ID: u8 = 1;
/// Header extension id of abs-send-time (Jicofo's).
pub const ABS_SEND_TIME_ID: u8 = 3;
/// Header extension id of the transport-wide sequence number (Jicofo's).
pub const TRANSPORT_CC_ID: u8 = 5;
/// Header extension id of abs-capture-time (not offered by Jicofo; the load test uses it
/// to measure latency end to end, and the node forwards it like any negotiated extension).
pub const ABS_CAPTURE_TIME_ID: u8 = 7;

/// The header extensions every participant negotiates: `(id, URI)`.
pub const HEADER_EXTENSIONS: [(u8, &str); 4] = [
    (AUDIO_LEVEL_ID, AUDIO_LEVEL_URI),
    (ABS_SEND_TIME_ID, ABS_SEND_TIME_URI),
    (TRANSPORT_CC_ID, TRANSPORT_CC_URI),
    (ABS_CAPTURE_TIME_ID, ABS_CAPTURE_TIME_URI),
];

/// Opus payload type.
pub const OPUS_PT: u8 = 111;
/// VP8 payload type.
pub const VP8_PT: u8 = 100;
/// VP8 RTX payload type.
pub const VP8_RTX_PT: u8 = 96;
/// H264 payload type.
pub const H264_PT: u8 = 107;
/// H264 RTX payload type.
pub const H264_RTX_PT: u8 = 99;

/// The payload types a camera sending `codec` uses: `(media, rtx)`.
pub fn video_payload_types(codec: VideoCodec) -> (u8, u8) {
    match codec {
        VideoCodec::Vp8 => (VP8_PT, VP8_RTX_PT),
        VideoCodec::H264 => (H264_PT, H264_RTX_PT),
    }
}

/// The source name of an endpoint's microphone.
pub fn audio_source_name(endpoint_id: &str) -> String {
    format!("{endpoint_id}-a0")
}

/// The source name of an endpoint's camera.
pub fn video_source_name(endpoint_id: &str) -> String {
    format!("{endpoint_id}-v0")
}

/// Settings of a [`ColibriTarget`].
#[derive(Debug, Clone)]
pub struct ColibriConfig {
    /// The node's private HTTP listener (Colibri2).
    pub private_api: SocketAddr,
    /// `http.private_api_token`, when the node requires one.
    pub token: Option<String>,
    /// The conference's `meeting-id`.
    pub meeting_id: String,
    /// The conference's `name` (a MUC JID in Jitsi).
    pub conference_name: String,
    /// Whether the adapter creates the conference (else it must exist).
    pub create_conference: bool,
    /// Where to connect for the bridge channel instead of the URL's host (e.g. when the
    /// node announces a public name the load generator cannot resolve).
    pub bridge_channel_address: Option<SocketAddr>,
    /// Bound of each HTTP request and of the bridge channel's connection.
    pub timeout: Duration,
}

impl ColibriConfig {
    /// Defaults for the node at `private_api`, with a random meeting id.
    pub fn new(private_api: SocketAddr, rng: &mut impl Rng) -> Self {
        let a: u32 = rng.random();
        let b: u16 = rng.random();
        let c: u16 = rng.random::<u16>() & 0x0FFF | 0x4000;
        let d: u16 = rng.random::<u16>() & 0x3FFF | 0x8000;
        let e: u64 = rng.random::<u64>() & 0xFFFF_FFFF_FFFF;
        Self {
            private_api,
            token: None,
            meeting_id: format!("{a:08x}-{b:04x}-{c:04x}-{d:04x}-{e:012x}"),
            conference_name: "loadtest@conference.relais.invalid".to_owned(),
            create_conference: true,
            bridge_channel_address: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The relais Colibri2 adapter. See the [module documentation](self).
#[derive(Debug)]
pub struct ColibriTarget {
    config: ColibriConfig,
    conference: OnceCell<()>,
}

impl ColibriTarget {
    /// An adapter for one conference.
    pub fn new(config: ColibriConfig) -> Self {
        Self {
            config,
            conference: OnceCell::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ColibriConfig {
        &self.config
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<Value, TargetError> {
        http::request(
            self.config.private_api,
            self.config.token.as_deref(),
            method,
            path,
            body,
            self.config.timeout,
        )
        .await
    }

    async fn patch(&self, body: &Value) -> Result<Value, TargetError> {
        let path = format!("/colibri/v2/conferences/{}", self.config.meeting_id);
        self.request(Method::PATCH, &path, body).await
    }

    /// Creates the conference (once; later calls wait for the first).
    pub async fn create_conference(&self) -> Result<(), TargetError> {
        self.conference
            .get_or_try_init(|| async {
                if self.config.create_conference {
                    let body = json!({
                        "meeting-id": self.config.meeting_id,
                        "name": self.config.conference_name,
                        "create": true,
                        "endpoints": [],
                    });
                    self.request(Method::POST, "/colibri/v2/conferences", &body)
                        .await?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }
}

/// The `medias` of every endpoint.
fn medias() -> Value {
    let extensions = |uris: &[&str]| -> Vec<Value> {
        HEADER_EXTENSIONS
            .iter()
            .filter(|(_, uri)| uris.contains(uri))
            .map(|(id, uri)| json!({"uri": uri, "id": id}))
            .collect()
    };
    let video_feedback = json!([
        {"type": "ccm", "subtype": "fir"}, {"type": "nack"}, {"type": "nack", "subtype": "pli"},
        {"type": "goog-remb"}, {"type": "transport-cc"}
    ]);
    json!([
        {"type": "audio",
         "payload-types": [{"name": "opus", "id": OPUS_PT.to_string(), "clockrate": "48000",
            "channels": "2", "parameters": {"minptime": "10", "useinbandfec": "1"},
            "rtcp-fbs": [{"type": "transport-cc"}]}],
         "rtp-hdrexts": extensions(&[AUDIO_LEVEL_URI, ABS_SEND_TIME_URI, TRANSPORT_CC_URI,
            ABS_CAPTURE_TIME_URI]),
         "extmap-allow-mixed": true},
        {"type": "video",
         "payload-types": [
            {"name": "VP8", "id": VP8_PT.to_string(), "clockrate": "90000",
             "rtcp-fbs": video_feedback},
            {"name": "rtx", "id": VP8_RTX_PT.to_string(), "clockrate": "90000",
             "parameters": {"apt": VP8_PT.to_string()}},
            {"name": "H264", "id": H264_PT.to_string(), "clockrate": "90000",
             "parameters": {"profile-level-id": "42e01f", "packetization-mode": "1",
                "level-asymmetry-allowed": "1"},
             "rtcp-fbs": video_feedback},
            {"name": "rtx", "id": H264_RTX_PT.to_string(), "clockrate": "90000",
             "parameters": {"apt": H264_PT.to_string()}}],
         "rtp-hdrexts": extensions(&[ABS_SEND_TIME_URI, TRANSPORT_CC_URI, ABS_CAPTURE_TIME_URI]),
         "extmap-allow-mixed": true}
    ])
}

/// The `sources` of one endpoint.
fn sources(request: &JoinRequest) -> Value {
    let mut sources = Vec::new();
    if let Some(ssrc) = request.audio_ssrc {
        let name = audio_source_name(&request.endpoint_id);
        sources.push(json!({"type": "audio", "id": name,
            "sources": [{"ssrc": ssrc, "name": name}]}));
    }
    if let Some(video) = &request.video {
        let name = video_source_name(&request.endpoint_id);
        let ssrcs: Vec<Value> = video
            .ssrcs
            .iter()
            .chain(&video.rtx_ssrcs)
            .map(|ssrc| json!({"ssrc": ssrc, "name": name}))
            .collect();
        let mut groups = Vec::new();
        if video.ssrcs.len() > 1 {
            groups.push(json!({"semantics": "SIM", "sources": video.ssrcs}));
        }
        for (media, rtx) in video.ssrcs.iter().zip(&video.rtx_ssrcs) {
            groups.push(json!({"semantics": "FID", "sources": [media, rtx]}));
        }
        sources.push(json!({"type": "video", "id": name, "sources": ssrcs,
            "ssrc-groups": groups}));
    }
    Value::Array(sources)
}

/// The participant's transport as Jicofo relays it: DTLS `setup` is the participant's
/// role (active: client).
fn client_transport(local: &LocalTransport, role: DtlsRole) -> Value {
    let fingerprint = local.fingerprint.to_string();
    let (hash, hex) = fingerprint
        .split_once(' ')
        .unwrap_or(("sha-256", &fingerprint));
    let setup = match role {
        DtlsRole::Client => "active",
        DtlsRole::Server => "passive",
    };
    let candidates: Vec<Value> = local
        .candidates
        .iter()
        .enumerate()
        .map(|(index, c)| {
            json!({"foundation": (index + 1).to_string(), "component": "1", "protocol": "udp",
                "priority": c.priority.to_string(), "ip": c.address.ip().to_string(),
                "port": c.address.port().to_string(), "type": "host", "generation": "0",
                "network": "0", "id": format!("{}{index}", local.credentials.ufrag)})
        })
        .collect();
    json!({"transport": {
        "ufrag": local.credentials.ufrag, "pwd": local.credentials.pwd, "rtcp-mux": true,
        "fingerprints": [{"fingerprint": hex, "setup": setup, "hash": hash}],
        "candidates": candidates,
    }})
}

/// The node's transport from a `conference-modified` endpoint; also the bridge channel URL.
fn remote_transport(endpoint: &Value) -> Result<(RemoteTransport, Option<String>), TargetError> {
    let transport = endpoint
        .get("transport")
        .and_then(|t| t.get("transport"))
        .ok_or(TargetError::Protocol("the endpoint has no transport"))?;
    let text = |key: &str| transport.get(key).and_then(Value::as_str);
    let credentials = IceCredentials::new(
        text("ufrag").ok_or(TargetError::Protocol("no ICE ufrag"))?,
        text("pwd").ok_or(TargetError::Protocol("no ICE pwd"))?,
    )
    .map_err(|_| TargetError::Protocol("invalid ICE credentials"))?;
    let number = |candidate: &Value, key: &str| -> Option<u64> {
        match candidate.get(key)? {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    };
    let candidates: Vec<Candidate> = transport
        .get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|c| {
            c.get("protocol")
                .and_then(Value::as_str)
                .is_some_and(|p| p.eq_ignore_ascii_case("udp"))
                && number(c, "component") == Some(1)
        })
        .filter_map(|c| {
            let ip: std::net::IpAddr = c.get("ip")?.as_str()?.parse().ok()?;
            let port = u16::try_from(number(c, "port")?).ok()?;
            let priority = u32::try_from(number(c, "priority")?).ok()?;
            Some(Candidate {
                address: SocketAddr::new(ip, port),
                priority,
            })
        })
        .collect();
    if candidates.is_empty() {
        return Err(TargetError::Protocol("no usable UDP candidate"));
    }
    let fingerprint = transport
        .get("fingerprints")
        .and_then(Value::as_array)
        .and_then(|list| list.first())
        .ok_or(TargetError::Protocol("no DTLS fingerprint"))?;
    let hash = fingerprint
        .get("hash")
        .and_then(Value::as_str)
        .unwrap_or("sha-256");
    let hex = fingerprint
        .get("fingerprint")
        .and_then(Value::as_str)
        .ok_or(TargetError::Protocol("no DTLS fingerprint"))?;
    let parsed = Fingerprint::parse(&format!("{hash} {hex}"))
        .map_err(|_| TargetError::Protocol("invalid DTLS fingerprint"))?;
    // The node's setup decides ours: it answers actpass (we take the client side, as
    // Jitsi clients do); active makes us the server.
    let dtls_role = match fingerprint.get("setup").and_then(Value::as_str) {
        Some("active") => DtlsRole::Server,
        _ => DtlsRole::Client,
    };
    let web_socket = transport
        .get("web-sockets")
        .and_then(Value::as_array)
        .and_then(|list| list.first())
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((
        RemoteTransport {
            credentials,
            candidates,
            fingerprint: parsed,
            dtls_role,
        },
        web_socket,
    ))
}

impl Target for ColibriTarget {
    type Channel = BridgeChannel;

    async fn join(&self, request: &JoinRequest) -> Result<Joined, TargetError> {
        self.create_conference().await?;
        let allocate = json!({
            "meeting-id": self.config.meeting_id,
            "endpoints": [{
                "id": request.endpoint_id,
                "create": true,
                "stats-id": request.endpoint_id,
                "muc-role": "participant",
                "medias": medias(),
                "transport": {"ice-controlling": true},
                "capabilities": ["source-names"],
                "sources": sources(request),
            }],
        });
        let answer = self.patch(&allocate).await?;
        let endpoint = answer
            .get("endpoints")
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter().find(|e| {
                    e.get("id").and_then(Value::as_str) == Some(request.endpoint_id.as_str())
                })
            })
            .ok_or(TargetError::Protocol("the answer lacks the endpoint"))?;
        let (remote, channel_url) = remote_transport(endpoint)?;
        let transport = json!({
            "meeting-id": self.config.meeting_id,
            "endpoints": [{
                "id": request.endpoint_id,
                "transport": client_transport(&request.transport, remote.dtls_role),
            }],
        });
        self.patch(&transport).await?;
        Ok(Joined {
            endpoint_id: request.endpoint_id.clone(),
            remote,
            channel_url,
        })
    }

    async fn open_channel(&self, joined: &Joined) -> Result<BridgeChannel, TargetError> {
        let url = joined.channel_url.as_deref().ok_or(TargetError::Protocol(
            "the answer has no bridge channel URL",
        ))?;
        BridgeChannel::connect(url, self.config.bridge_channel_address, self.config.timeout).await
    }

    async fn leave(&self, endpoint_id: &str) -> Result<(), TargetError> {
        let body = json!({
            "meeting-id": self.config.meeting_id,
            "endpoints": [{"id": endpoint_id, "expire": true}],
        });
        self.patch(&body).await.map(|_| ())
    }

    async fn end(&self) -> Result<(), TargetError> {
        let body = json!({"meeting-id": self.config.meeting_id, "expire": true});
        self.request(Method::POST, "/colibri/v2/conferences", &body)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::target::VideoSource;
    use relais_transport::dtls_srtp::NodeCertificate;

    #[test]
    fn sources_name_and_group_as_jitsi_does() {
        let certificate = NodeCertificate::generate().unwrap();
        let request = JoinRequest {
            endpoint_id: "abcd0001".into(),
            transport: LocalTransport {
                credentials: IceCredentials::new("ufrag", "0123456789012345678901").unwrap(),
                fingerprint: certificate.fingerprint().clone(),
                candidates: vec![],
            },
            audio_ssrc: Some(11),
            video: Some(VideoSource {
                ssrcs: vec![21, 22, 23],
                rtx_ssrcs: vec![31, 32, 33],
                codec: VideoCodec::Vp8,
            }),
        };
        let sources = sources(&request);
        assert_eq!(sources[0]["id"], "abcd0001-a0");
        assert_eq!(sources[0]["sources"][0]["ssrc"], 11);
        assert_eq!(sources[1]["id"], "abcd0001-v0");
        assert_eq!(sources[1]["ssrc-groups"][0]["semantics"], "SIM");
        assert_eq!(sources[1]["ssrc-groups"][0]["sources"], json!([21, 22, 23]));
        assert_eq!(sources[1]["ssrc-groups"][3]["sources"], json!([23, 33]));
        let transport = client_transport(&request.transport, DtlsRole::Client);
        assert_eq!(transport["transport"]["fingerprints"][0]["setup"], "active");
        assert_eq!(transport["transport"]["fingerprints"][0]["hash"], "sha-256");
    }

    #[test]
    fn the_answer_gives_the_remote_transport() {
        let certificate = NodeCertificate::generate().unwrap();
        let fingerprint = certificate.fingerprint().to_string();
        let (hash, hex) = fingerprint.split_once(' ').unwrap();
        let endpoint = json!({"id": "x", "transport": {"transport": {
            "ufrag": "abcd", "pwd": "0123456789012345678901", "rtcp-mux": true,
            "fingerprints": [{"fingerprint": hex, "hash": hash, "setup": "actpass"}],
            "candidates": [{"foundation": "1", "component": "1", "protocol": "udp",
                "priority": "2130706431", "ip": "127.0.0.1", "port": "10000", "type": "host"}],
            "web-sockets": ["ws://127.0.0.1:9090/colibri-ws/relais/m/x?pwd=p"]}}});
        let (remote, url) = remote_transport(&endpoint).unwrap();
        assert_eq!(remote.dtls_role, DtlsRole::Client);
        assert_eq!(remote.candidates[0].address.port(), 10000);
        assert_eq!(&remote.fingerprint, certificate.fingerprint());
        assert!(url.unwrap().starts_with("ws://"));
        assert!(remote_transport(&json!({"id": "x"})).is_err());
    }
}
