//! Targets: the SFUs a run loads, behind one interface that brings a simulated participant
//! into a meeting and lets it set its view.
//!
//! A [`Target`] owns the signalling side only: it allocates the participant on the SFU with
//! its sources and transport ([`Target::join`], answering with the SFU's transport for
//! [`Participant::set_remote`](crate::participant::Participant::set_remote)), opens the
//! per-participant control channel ([`Target::open_channel`]) over which the receiver's view
//! goes out ([`ViewChannel::set_view`]) and the SFU's notifications come in
//! ([`ViewChannel::next_event`]), and takes the participant out again ([`Target::leave`]).
//! Media never passes through here.
//!
//! - [`colibri`]: relais (or jitsi-videobridge with REST Colibri2) as Jicofo and a Jitsi
//!   Meet client drive it: Colibri2 allocation on the private HTTP API, the bridge channel
//!   WebSocket for the view.
//! - [`janus`]: Janus 1.1's VideoRoom over its HTTP API: a publisher and a multistream
//!   subscriber PeerConnection per participant (two transports), the view as subscriptions.
//! - [`whip`]: relais (or any WHIP/WHEP server) as OBS or a browser page drives it: one
//!   WHIP session per publisher, one WHEP session per watched stream.
//! - [`sdp`]: the SDP reader and offer writer the SDP-speaking adapters share.
//!
//! Errors never contain addresses (DESIGN.md principle 4).

pub mod colibri;
mod http;
pub mod janus;
pub mod sdp;
pub mod whip;

use std::future::Future;

use crate::participant::{LocalTransport, RemoteTransport};
use crate::scenario::ViewSection;

/// A participant's camera: its codec and SSRCs (simulcast encodings lowest first, each with
/// its RTX partner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSource {
    /// What it sends (the SDP a target needs offers this codec).
    pub codec: crate::media::VideoCodec,
    /// Media SSRCs, lowest encoding first (the SIM group order).
    pub ssrcs: Vec<u32>,
    /// RTX SSRCs, in the same order (empty: no RTX).
    pub rtx_ssrcs: Vec<u32>,
}

/// One participant to bring into the meeting.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The participant's endpoint id in the meeting (Jitsi: 8 hex digits).
    pub endpoint_id: String,
    /// Its ICE credentials, fingerprint and candidates.
    pub transport: LocalTransport,
    /// Its microphone SSRC, if it sends audio.
    pub audio_ssrc: Option<u32>,
    /// Its camera, if it sends video.
    pub video: Option<VideoSource>,
}

/// A participant allocated on the target.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The endpoint id.
    pub endpoint_id: String,
    /// The SFU's transport, for [`Participant::set_remote`](crate::participant::Participant::set_remote).
    pub remote: RemoteTransport,
    /// Where the participant's control channel is (for Colibri2 the bridge channel URL;
    /// it carries a credential: do not log it).
    pub channel_url: Option<String>,
}

/// What a receiver asks for (Jitsi's ReceiverVideoConstraints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Most video streams forwarded (-1: no limit).
    pub last_n: i32,
    /// Source names shown large.
    pub on_stage_sources: Vec<String>,
    /// Height limit of on-stage sources.
    pub on_stage_max_height: i32,
    /// Source names the receiver selected (prioritised after the stage).
    pub selected_sources: Vec<String>,
    /// Height limit of everything else (thumbnails).
    pub default_max_height: i32,
}

impl View {
    /// The scenario's view with `on_stage_sources` (the current speakers) on stage.
    pub fn from_scenario(section: &ViewSection, on_stage_sources: Vec<String>) -> Self {
        let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        Self {
            last_n: clamp(section.last_n),
            on_stage_sources,
            on_stage_max_height: clamp(section.on_stage_max_height),
            selected_sources: Vec::new(),
            default_max_height: clamp(section.thumbnail_max_height),
        }
    }
}

/// What the SFU told a participant over its control channel.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetEvent {
    /// The answer to the participant's hello.
    ServerHello,
    /// The video sources now forwarded to the participant.
    ForwardedSources(Vec<String>),
    /// The dominant speaker changed.
    DominantSpeaker {
        /// The new dominant speaker's endpoint id.
        endpoint: String,
        /// Previous speakers, most recent first.
        previous: Vec<String>,
        /// Whether the conference is silent.
        silence: bool,
    },
    /// The SFU limits what the participant should send for one source.
    SenderSourceConstraints {
        /// The participant's source name.
        source: String,
        /// Largest height anybody receives (0: nobody).
        max_height: i32,
    },
    /// The SFU's downlink estimate for the participant.
    ConnectionStats {
        /// Estimated downlink bandwidth.
        estimated_downlink_bps: u64,
    },
    /// Another endpoint's media stopped or resumed.
    EndpointConnectivity {
        /// The endpoint.
        endpoint: String,
        /// Whether it is active.
        active: bool,
    },
    /// A message from another endpoint.
    EndpointMessage {
        /// The sender, as the SFU stamped it.
        from: Option<String>,
        /// The whole message.
        message: serde_json::Value,
    },
    /// Anything else, by its class.
    Other {
        /// The message class.
        class: String,
        /// The whole message.
        message: serde_json::Value,
    },
}

/// Why a target operation failed. Never contains an address.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Connecting or talking to the SFU failed.
    #[error("connection to the target: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("HTTP request: {0}")]
    Request(#[from] hyper::http::Error),
    /// A step did not finish in time.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The SFU refused the request.
    #[error("the target refused the request: HTTP {status} {reason}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The SFU's reason code (Colibri2: CONFERENCE_NOT_FOUND, ...), if any.
        reason: String,
        /// Its message, if any.
        message: String,
    },
    /// A JSON body did not parse.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The answer lacks something the participant needs.
    #[error("unexpected answer from the target: {0}")]
    Protocol(&'static str),
    /// The control channel failed.
    #[error("control channel: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The target asks for something this tool does not do.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
}

/// An SFU the load test can put participants on.
pub trait Target {
    /// The per-participant control channel.
    type Channel: ViewChannel;

    /// Allocates the participant with its sources and transport; returns the SFU's
    /// transport.
    fn join(&self, request: &JoinRequest) -> impl Future<Output = Result<Joined, TargetError>>;

    /// Opens the participant's control channel.
    fn open_channel(
        &self,
        joined: &Joined,
    ) -> impl Future<Output = Result<Self::Channel, TargetError>>;

    /// Takes the participant out of the meeting.
    fn leave(&self, endpoint_id: &str) -> impl Future<Output = Result<(), TargetError>>;

    /// Ends the meeting (every participant still in it).
    fn end(&self) -> impl Future<Output = Result<(), TargetError>>;
}

/// A participant's control channel to the SFU.
pub trait ViewChannel {
    /// Sends the participant's view (the whole of it).
    fn set_view(&mut self, view: &View) -> impl Future<Output = Result<(), TargetError>>;

    /// The next notification; `None` once the SFU closed the channel.
    fn next_event(&mut self) -> impl Future<Output = Result<Option<TargetEvent>, TargetError>>;

    /// Closes the channel.
    fn close(&mut self) -> impl Future<Output = Result<(), TargetError>>;
}
