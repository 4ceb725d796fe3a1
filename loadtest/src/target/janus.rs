//! Janus 1.1's VideoRoom plugin over its HTTP API, driven as janus.js drives it: each
//! simulated participant is a publisher with its own PeerConnection, and receives through a
//! second, multistream subscriber PeerConnection whose streams follow its view.
//!
//! Janus has no SSRC signalling of its own and gives every participant two transports, so
//! a participant here is **two** [`Participant`](crate::participant::Participant)s, both ICE
//! controlling (Janus is ICE lite):
//!
//! 1. the receiving participant's transport is registered first
//!    ([`JanusTarget::set_receiver`]);
//! 2. [`Target::join`] creates the participant's Janus session (with its long poll and
//!    keepalive), joins the room as a publisher (display name: the endpoint id) and
//!    publishes the SDP offer built from the [`JoinRequest`] (see [`sdp::publisher_offer`]):
//!    its [`Joined::remote`] (Janus's answer plus its trickled candidates) goes to the
//!    sending participant;
//! 3. [`Target::open_channel`] gives the participant's [`JanusChannel`]; its
//!    [`ViewChannel::set_view`] subscribes the receiving participant to what the view asks
//!    for (every other publisher's audio; the video of at most `last_n` publishers, on-stage
//!    first, with Janus's simulcast `substream` chosen by height: 0 below 360, 1 below 720,
//!    2 otherwise, capped at the sender's encodings), answering Janus's offers itself;
//! 4. once the subscription's PeerConnection exists, [`ViewChannel::next_event`] yields
//!    [`TargetEvent::Other`] with class [`SUBSCRIBER_READY`]: the receiving participant then
//!    gets [`JanusChannel::subscriber_remote`]. [`JanusChannel::subscribed_streams`] maps the
//!    SSRCs Janus sends to their publisher (Janus rewrites SSRCs, sequence numbers and
//!    timestamps; payloads pass unchanged except VP8's picture id);
//! 5. [`Target::leave`] destroys the session (Janus detaches both handles); the channel
//!    then ends. [`Target::end`] destroys every session and the room.
//!
//! The channel must be polled ([`ViewChannel::next_event`]) for the subscription to follow
//! publishers joining and leaving (each re-applies the last view) and to answer the offers
//! Janus sends by itself.
//!
//! Media: Opus [`OPUS_PT`] with the microphone's SSRC; VP8 [`VP8_PT`] with RTX
//! [`VP8_RTX_PT`] or H264 [`H264_PT`] with RTX [`H264_RTX_PT`] (the room's
//! [`JanusConfig::video_codec`]), the camera's encodings signalled by SSRC (`ssrc-group:SIM`, lowest first
//! as in [`VideoSource`](crate::target::VideoSource), one `FID` group per encoding), so no
//! `rid` is needed; header extensions [`HEADER_EXTENSIONS`] (Janus accepts what its room
//! enables, see [`JanusTarget::negotiated_extensions`]).

mod http;
pub mod sdp;
mod session;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use relais_rtp::extensions::{ABS_CAPTURE_TIME_URI, AUDIO_LEVEL_URI, MID_URI, TRANSPORT_CC_URI};
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use tokio::time::Instant;

pub use super::colibri::{audio_source_name, video_source_name};
use super::{JoinRequest, Joined, Target, TargetError, TargetEvent, View, ViewChannel};
use crate::media::VideoCodec;
use crate::participant::{Candidate, LocalTransport, RemoteTransport};
use sdp::{Description, MediaKind};
use session::{plugin_data, sender, Answer, Endpoint, Events, Session};

/// Header extension id of the RFC 6464 audio level (as for Colibri2).
pub const AUDIO_LEVEL_ID: u8 = 1;
/// Header extension id of the BUNDLE `mid` (Janus demultiplexes by the signalled SSRCs, so
/// sending it is optional).
pub const MID_ID: u8 = 4;
/// Header extension id of the transport-wide sequence number (as for Colibri2).
pub const TRANSPORT_CC_ID: u8 = 5;
/// Header extension id of abs-capture-time (as for Colibri2).
pub const ABS_CAPTURE_TIME_ID: u8 = 7;

/// The header extensions the publisher offers: `(id, URI)` (audio level on audio only).
pub const HEADER_EXTENSIONS: [(u8, &str); 4] = [
    (AUDIO_LEVEL_ID, AUDIO_LEVEL_URI),
    (MID_ID, MID_URI),
    (TRANSPORT_CC_ID, TRANSPORT_CC_URI),
    (ABS_CAPTURE_TIME_ID, ABS_CAPTURE_TIME_URI),
];

/// The payload types of the publisher's offer (the shared writer's).
pub use super::sdp::{video_payload_types, H264_PT, H264_RTX_PT, OPUS_PT, VP8_PT, VP8_RTX_PT};
/// The payload type Janus 1.1 gives VP8 in its subscriber offers, whatever the publisher
/// used (its fixed numbering: VP8 96, H264 107).
pub const SUBSCRIBER_VP8_PT: u8 = 96;
/// The payload type Janus 1.1 gives H264 in its subscriber offers.
pub const SUBSCRIBER_H264_PT: u8 = 107;

/// The VideoRoom's `videocodec` for `codec`.
fn room_codec(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::Vp8 => "vp8",
        VideoCodec::H264 => "h264",
    }
}

/// The [`TargetEvent::Other`] class announcing that the receiving participant's transport
/// is known ([`JanusChannel::subscriber_remote`]).
pub const SUBSCRIBER_READY: &str = "janus-subscriber-ready";

/// How long Janus may take to trickle all its candidates after an SDP exchange.
const CANDIDATES_WAIT: Duration = Duration::from_secs(2);

/// Settings of a [`JanusTarget`].
#[derive(Debug, Clone)]
pub struct JanusConfig {
    /// Janus's HTTP transport.
    pub address: SocketAddr,
    /// Its base path (`/janus`).
    pub base_path: String,
    /// The VideoRoom room id.
    pub room: u64,
    /// Whether the adapter creates the room (else it must exist, without a PIN).
    pub create_room: bool,
    /// Most publishers of a created room.
    pub max_publishers: u32,
    /// Bound of each request and of each wait for Janus's answer.
    pub timeout: Duration,
    /// The room's video codec (what every publisher sends).
    pub video_codec: VideoCodec,
}

impl JanusConfig {
    /// Defaults for Janus at `url` (`http://IP:PORT/PATH`, as `loadtest/scripts/janus`
    /// prints it), with a random room id.
    pub fn from_url(url: &str, rng: &mut impl Rng) -> Result<Self, TargetError> {
        let rest = url.strip_prefix("http://").ok_or(TargetError::Unsupported(
            "Janus URLs other than http://IP:PORT/PATH",
        ))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, "janus"));
        let address: SocketAddr = authority
            .parse()
            .map_err(|_| TargetError::Unsupported("Janus URLs other than http://IP:PORT/PATH"))?;
        Ok(Self {
            address,
            base_path: format!("/{}", path.trim_end_matches('/')),
            room: rng.random_range(1_000_000..1_000_000_000),
            create_room: true,
            max_publishers: 1000,
            timeout: Duration::from_secs(10),
            video_codec: VideoCodec::Vp8,
        })
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            address: self.address,
            base_path: self.base_path.clone(),
            timeout: self.timeout,
        }
    }
}

/// What the adapter and the channels share.
#[derive(Debug, Default)]
struct Shared {
    /// The number of simulcast encodings of each endpoint's camera.
    layers: Mutex<HashMap<String, usize>>,
}

/// A participant in the room.
#[derive(Debug)]
struct Member {
    session: Arc<Session>,
    publisher: u64,
    feed: u64,
    private_id: Option<u64>,
    /// Until the channel opens.
    events: Option<Events>,
    /// The room's publishers when the participant joined.
    publishers: Vec<Publisher>,
    /// Header extensions Janus accepted.
    extensions: Vec<(u8, String)>,
}

/// What publishing gave.
#[derive(Debug)]
struct Published {
    publisher: u64,
    feed: u64,
    private_id: Option<u64>,
    publishers: Vec<Publisher>,
    extensions: Vec<(u8, String)>,
    remote: RemoteTransport,
}

/// Another publisher in the room.
#[derive(Debug, Clone)]
struct Publisher {
    feed: u64,
    endpoint_id: String,
    /// `(mid, kind)` of each enabled stream.
    streams: Vec<(String, MediaKind)>,
}

impl Publisher {
    fn parse(value: &Value) -> Option<Self> {
        let feed = value.get("id").and_then(Value::as_u64)?;
        let endpoint_id = value
            .get("display")
            .and_then(Value::as_str)
            .map_or_else(|| feed.to_string(), str::to_owned);
        let streams = value
            .get("streams")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|s| !s.get("disabled").and_then(Value::as_bool).unwrap_or(false))
            .filter_map(|s| {
                let mid = s.get("mid").and_then(Value::as_str)?.to_owned();
                let kind = match s.get("type").and_then(Value::as_str)? {
                    "audio" => MediaKind::Audio,
                    "video" => MediaKind::Video,
                    _ => return None,
                };
                Some((mid, kind))
            })
            .collect();
        Some(Self {
            feed,
            endpoint_id,
            streams,
        })
    }
}

/// The Janus VideoRoom adapter. See the [module documentation](self).
#[derive(Debug)]
pub struct JanusTarget {
    config: JanusConfig,
    room: OnceCell<()>,
    shared: Arc<Shared>,
    members: Mutex<HashMap<String, Member>>,
    receivers: Mutex<HashMap<String, LocalTransport>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl JanusTarget {
    /// An adapter for one room.
    pub fn new(config: JanusConfig) -> Self {
        Self {
            config,
            room: OnceCell::new(),
            shared: Arc::default(),
            members: Mutex::new(HashMap::new()),
            receivers: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &JanusConfig {
        &self.config
    }

    /// Registers the transport of `endpoint_id`'s receiving participant (its second
    /// [`Participant`](crate::participant::Participant), ICE controlling). Must precede
    /// [`Target::open_channel`]; without it the channel subscribes to nothing.
    pub fn set_receiver(&self, endpoint_id: &str, receiver: LocalTransport) {
        lock(&self.receivers).insert(endpoint_id.to_owned(), receiver);
    }

    /// The header extensions Janus accepted in `endpoint_id`'s publisher answer, `(id,
    /// URI)`: the ones the media layer may send (ids are those of [`HEADER_EXTENSIONS`]).
    pub fn negotiated_extensions(&self, endpoint_id: &str) -> Option<Vec<(u8, String)>> {
        lock(&self.members)
            .get(endpoint_id)
            .map(|m| m.extensions.clone())
    }

    /// Creates the room (once; later calls wait for the first).
    pub async fn create_room(&self) -> Result<(), TargetError> {
        self.room
            .get_or_try_init(|| async {
                if self.config.create_room {
                    let body = json!({
                        "request": "create",
                        "room": self.config.room,
                        "publishers": self.config.max_publishers,
                        "bitrate": 0,
                        "audiocodec": "opus",
                        "videocodec": room_codec(self.config.video_codec),
                        "audiolevel_ext": true,
                        "transport_wide_cc_ext": true,
                        "notify_joining": false,
                    });
                    self.control(body).await?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// A synchronous VideoRoom request on a short-lived session of its own.
    async fn control(&self, body: Value) -> Result<Value, TargetError> {
        let (session, mut events) = Session::create(self.config.endpoint()).await?;
        let result = async {
            let handle = session.attach().await?;
            match session.message(handle, body, None).await? {
                Answer::Done(data) => Ok(data),
                Answer::Pending(transaction) => events
                    .answer(&transaction, Instant::now() + self.config.timeout)
                    .await
                    .map(|e| plugin_data(&e).cloned().unwrap_or(Value::Null)),
            }
        }
        .await;
        let _ = session.destroy().await;
        result
    }

    async fn publish(
        &self,
        session: &Session,
        events: &mut Events,
        request: &JoinRequest,
    ) -> Result<Published, TargetError> {
        let deadline = || Instant::now() + self.config.timeout;
        let publisher = session.attach().await?;
        let join = json!({"request": "join", "ptype": "publisher", "room": self.config.room,
            "display": request.endpoint_id});
        let joined = match session.message(publisher, join, None).await? {
            Answer::Pending(transaction) => events.answer(&transaction, deadline()).await?,
            Answer::Done(_) => return Err(TargetError::Protocol("Janus joined synchronously")),
        };
        let data = plugin_data(&joined).ok_or(TargetError::Protocol("Janus's join has no data"))?;
        let feed = data
            .get("id")
            .and_then(Value::as_u64)
            .ok_or(TargetError::Protocol("Janus's join has no feed id"))?;
        let private_id = data.get("private_id").and_then(Value::as_u64);
        let publishers = data
            .get("publishers")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(Publisher::parse)
            .filter(|p| p.feed != feed)
            .collect();
        let offer = sdp::publisher_offer(request, rand::random::<u32>().into())?;
        let publish = json!({"request": "publish"});
        let jsep = json!({"type": "offer", "sdp": offer});
        let configured = match session.message(publisher, publish, Some(jsep)).await? {
            Answer::Pending(transaction) => events.answer(&transaction, deadline()).await?,
            Answer::Done(_) => return Err(TargetError::Protocol("Janus published synchronously")),
        };
        let answer = jsep_sdp(&configured, "answer")
            .ok_or(TargetError::Protocol("Janus's publish answer has no SDP"))?;
        let description = Description::parse(answer);
        let candidates = collect_candidates(events, publisher, self.config.timeout).await?;
        let remote = description.remote_transport(&candidates)?;
        let mut extensions: Vec<(u8, String)> = Vec::new();
        for section in &description.sections {
            for extension in &section.extmaps {
                if !extensions.contains(extension) {
                    extensions.push(extension.clone());
                }
            }
        }
        Ok(Published {
            publisher,
            feed,
            private_id,
            publishers,
            extensions,
            remote,
        })
    }
}

/// The SDP of the message's JSEP of `kind` (`offer`/`answer`).
fn jsep_sdp<'a>(message: &'a Value, kind: &str) -> Option<&'a str> {
    let jsep = message.get("jsep")?;
    if jsep.get("type").and_then(Value::as_str) != Some(kind) {
        return None;
    }
    jsep.get("sdp").and_then(Value::as_str)
}

/// The candidate (or end of candidates: `Err(())`) a trickle event of `handle` carries.
fn trickle(event: &Value, handle: u64) -> Option<Result<Candidate, ()>> {
    if event.get("janus").and_then(Value::as_str) != Some("trickle")
        || sender(event) != Some(handle)
    {
        return None;
    }
    let candidate = event.get("candidate")?;
    if candidate.get("completed").and_then(Value::as_bool) == Some(true) {
        return Some(Err(()));
    }
    let line = candidate.get("candidate").and_then(Value::as_str)?;
    sdp::parse_candidate(line).map(Ok)
}

/// The candidates Janus trickles for `handle` until it says it is done (or
/// [`CANDIDATES_WAIT`] passes with at least one).
async fn collect_candidates(
    events: &mut Events,
    handle: u64,
    timeout: Duration,
) -> Result<Vec<Candidate>, TargetError> {
    let mut candidates = Vec::new();
    let mut done = false;
    // Whether the trickle ended; candidates are appended.
    let absorb = |event: &Value, candidates: &mut Vec<Candidate>| match trickle(event, handle) {
        Some(Ok(candidate)) => {
            candidates.push(candidate);
            false
        }
        Some(Err(())) => true,
        None => false,
    };
    for event in events.take_buffered(|e| trickle(e, handle).is_some()) {
        done |= absorb(&event, &mut candidates);
    }
    let start = Instant::now();
    while !done {
        let wait = if candidates.is_empty() {
            timeout
        } else {
            CANDIDATES_WAIT
        };
        match events
            .wait(start + wait, "Janus's candidates", |e| {
                trickle(e, handle).is_some()
            })
            .await
        {
            Ok(event) => done |= absorb(&event, &mut candidates),
            Err(TargetError::Timeout(_)) if !candidates.is_empty() => break,
            Err(error) => return Err(error),
        }
    }
    Ok(candidates)
}

impl Target for JanusTarget {
    type Channel = JanusChannel;

    async fn join(&self, request: &JoinRequest) -> Result<Joined, TargetError> {
        self.create_room().await?;
        if lock(&self.members).contains_key(&request.endpoint_id) {
            return Err(TargetError::Refused {
                status: 409,
                reason: "loadtest".to_owned(),
                message: "the endpoint id is in the room already".to_owned(),
            });
        }
        let (session, mut events) = Session::create(self.config.endpoint()).await?;
        let published = match self.publish(&session, &mut events, request).await {
            Ok(published) => published,
            Err(error) => {
                let _ = session.destroy().await;
                return Err(error);
            }
        };
        let layers = request.video.as_ref().map_or(0, |v| v.ssrcs.len());
        lock(&self.shared.layers).insert(request.endpoint_id.clone(), layers);
        let remote = published.remote.clone();
        lock(&self.members).insert(
            request.endpoint_id.clone(),
            Member {
                session: Arc::new(session),
                publisher: published.publisher,
                feed: published.feed,
                private_id: published.private_id,
                events: Some(events),
                publishers: published.publishers,
                extensions: published.extensions,
            },
        );
        Ok(Joined {
            endpoint_id: request.endpoint_id.clone(),
            remote,
            channel_url: None,
        })
    }

    async fn open_channel(&self, joined: &Joined) -> Result<JanusChannel, TargetError> {
        let receiver = lock(&self.receivers).remove(&joined.endpoint_id);
        let mut members = lock(&self.members);
        let member = members
            .get_mut(&joined.endpoint_id)
            .ok_or(TargetError::Protocol("the endpoint has not joined"))?;
        let events = member.events.take().ok_or(TargetError::Protocol(
            "the endpoint's channel is open already",
        ))?;
        Ok(JanusChannel {
            shared: Arc::clone(&self.shared),
            session: Arc::clone(&member.session),
            timeout: self.config.timeout,
            room: self.config.room,
            publisher: member.publisher,
            feed: member.feed,
            private_id: member.private_id,
            events,
            receiver,
            publishers: std::mem::take(&mut member.publishers),
            view: None,
            subscriber: None,
            out: VecDeque::new(),
            closed: false,
            sdp_session: rand::random::<u32>().into(),
            sdp_version: 1,
        })
    }

    async fn leave(&self, endpoint_id: &str) -> Result<(), TargetError> {
        lock(&self.receivers).remove(endpoint_id);
        lock(&self.shared.layers).remove(endpoint_id);
        let member = lock(&self.members).remove(endpoint_id);
        match member {
            Some(member) => member.session.destroy().await,
            None => Err(TargetError::Refused {
                status: 404,
                reason: "loadtest".to_owned(),
                message: "no such endpoint in the room".to_owned(),
            }),
        }
    }

    async fn end(&self) -> Result<(), TargetError> {
        let members: Vec<Member> = lock(&self.members).drain().map(|(_, m)| m).collect();
        lock(&self.receivers).clear();
        for member in &members {
            let _ = member.session.destroy().await;
        }
        self.control(json!({"request": "destroy", "room": self.config.room}))
            .await
            .map(drop)
    }
}

/// One stream of a participant's subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedStream {
    /// The subscription's mid.
    pub mid: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// The publisher's endpoint id (its display name).
    pub endpoint_id: String,
    /// The publisher's Janus feed id.
    pub feed: u64,
    /// The publisher's mid of the stream.
    pub feed_mid: String,
    /// The SSRC Janus sends the stream with.
    pub ssrc: Option<u32>,
    /// The SSRC of its retransmissions.
    pub rtx_ssrc: Option<u32>,
    /// Its payload type.
    pub payload_type: Option<u8>,
    /// The payload type of its retransmissions.
    pub rtx_payload_type: Option<u8>,
    /// The simulcast substream asked for (video).
    pub substream: Option<u8>,
}

/// One stream the view asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    feed: u64,
    feed_mid: String,
    substream: Option<u8>,
}

/// The subscriber handle and its PeerConnection.
#[derive(Debug)]
struct Subscriber {
    handle: u64,
    remote: Option<RemoteTransport>,
    streams: Vec<SubscribedStream>,
    /// Header extensions of Janus's last offer, `(id, URI)`.
    extensions: Vec<(u8, String)>,
}

/// A participant's control channel: its session's events, its subscription and its view.
/// See the [module documentation](self).
#[derive(Debug)]
pub struct JanusChannel {
    shared: Arc<Shared>,
    session: Arc<Session>,
    timeout: Duration,
    room: u64,
    publisher: u64,
    feed: u64,
    private_id: Option<u64>,
    events: Events,
    receiver: Option<LocalTransport>,
    /// The other publishers, in the order they appeared.
    publishers: Vec<Publisher>,
    view: Option<View>,
    subscriber: Option<Subscriber>,
    out: VecDeque<TargetEvent>,
    closed: bool,
    sdp_session: u64,
    sdp_version: u64,
}

/// Janus's simulcast substream for a height limit: 0 (lowest) below 360, 1 below 720, 2
/// (highest) otherwise, capped at the publisher's encodings.
fn substream_for(max_height: i32, layers: usize) -> u8 {
    let wanted: u8 = match max_height {
        h if h < 360 => 0,
        h if h < 720 => 1,
        _ => 2,
    };
    let top = u8::try_from(layers.saturating_sub(1)).unwrap_or(u8::MAX);
    wanted.min(top)
}

impl JanusChannel {
    /// The receiving participant's remote transport, once Janus offered the subscription
    /// (announced by [`SUBSCRIBER_READY`]). Janus keeps it across renegotiations.
    pub fn subscriber_remote(&self) -> Option<&RemoteTransport> {
        self.subscriber.as_ref().and_then(|s| s.remote.as_ref())
    }

    /// The streams the receiving participant is subscribed to now.
    pub fn subscribed_streams(&self) -> &[SubscribedStream] {
        self.subscriber
            .as_ref()
            .map(|s| s.streams.as_slice())
            .unwrap_or_default()
    }

    /// The header extensions of Janus's last subscription offer, `(id, URI)`: what the
    /// receiving participant gets (e.g. for its transport-cc id).
    pub fn subscriber_extensions(&self) -> &[(u8, String)] {
        self.subscriber
            .as_ref()
            .map(|s| s.extensions.as_slice())
            .unwrap_or_default()
    }

    /// The participant's Janus feed id.
    pub fn feed(&self) -> u64 {
        self.feed
    }

    /// [`ViewChannel::next_event`], but waiting for Janus no later than `deadline`: `Ok(None)`
    /// then, or once the channel closed ([`is_closed`](Self::is_closed) tells which). Only the
    /// wait for Janus's next event is bounded; an event that arrived is handled to the end.
    /// Use this, not a timeout around `next_event` (dropping that future half-way through
    /// an exchange with Janus would lose its answer), to act on time between events, e.g. to
    /// move the view to the current speaker.
    pub async fn next_event_until(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<TargetEvent>, TargetError> {
        loop {
            if let Some(event) = self.out.pop_front() {
                return Ok(Some(event));
            }
            if self.closed {
                return Ok(None);
            }
            // Waiting on the event queue is cancel-safe; handling the event is not.
            let Ok(next) = tokio::time::timeout_at(deadline, self.events.next()).await else {
                return Ok(None);
            };
            let Some(event) = next else {
                self.closed = true;
                continue;
            };
            if self.on_event(event).await? {
                self.apply().await?;
            }
        }
    }

    /// Whether the channel ended (the session was destroyed or timed out).
    pub fn is_closed(&self) -> bool {
        self.closed && self.out.is_empty()
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// What the view asks for, in priority order.
    fn wanted(&self, view: &View) -> Vec<Want> {
        let mut wants = Vec::new();
        for publisher in &self.publishers {
            for (mid, kind) in &publisher.streams {
                if *kind == MediaKind::Audio {
                    wants.push(Want {
                        feed: publisher.feed,
                        feed_mid: mid.clone(),
                        substream: None,
                    });
                }
            }
        }
        let name = |p: &Publisher| video_source_name(&p.endpoint_id);
        let mut order: Vec<(&Publisher, bool)> = Vec::new();
        for source in &view.on_stage_sources {
            if let Some(p) = self.publishers.iter().find(|p| name(p) == *source) {
                order.push((p, true));
            }
        }
        let rest = view
            .selected_sources
            .iter()
            .filter_map(|source| self.publishers.iter().find(|p| name(p) == *source))
            .chain(self.publishers.iter());
        for p in rest {
            if !order.iter().any(|(q, _)| q.feed == p.feed) {
                order.push((p, false));
            }
        }
        let limit = usize::try_from(view.last_n).unwrap_or(usize::MAX);
        let layers = lock(&self.shared.layers);
        let with_video = order
            .into_iter()
            .filter(|(p, _)| p.streams.iter().any(|(_, k)| *k == MediaKind::Video))
            .take(limit);
        for (publisher, on_stage) in with_video {
            let height = if on_stage {
                view.on_stage_max_height
            } else {
                view.default_max_height
            };
            if height <= 0 {
                continue;
            }
            let count = layers.get(&publisher.endpoint_id).copied().unwrap_or(3);
            for (mid, kind) in &publisher.streams {
                if *kind == MediaKind::Video {
                    wants.push(Want {
                        feed: publisher.feed,
                        feed_mid: mid.clone(),
                        substream: Some(substream_for(height, count)),
                    });
                }
            }
        }
        wants
    }

    /// Brings the subscription in line with the last view.
    async fn apply(&mut self) -> Result<(), TargetError> {
        let (Some(view), Some(_)) = (self.view.clone(), self.receiver.as_ref()) else {
            return Ok(());
        };
        let wants = self.wanted(&view);
        let event = match &self.subscriber {
            None if wants.is_empty() => return Ok(()),
            None => {
                let handle = self.session.attach().await?;
                self.subscriber = Some(Subscriber {
                    handle,
                    remote: None,
                    streams: Vec::new(),
                    extensions: Vec::new(),
                });
                let streams: Vec<Value> = wants
                    .iter()
                    .map(|w| json!({"feed": w.feed, "mid": w.feed_mid}))
                    .collect();
                let mut join = json!({"request": "join", "ptype": "subscriber",
                    "room": self.room, "streams": streams});
                if let (Some(id), Some(object)) = (self.private_id, join.as_object_mut()) {
                    object.insert("private_id".to_owned(), json!(id));
                }
                Some(self.request(handle, join).await?)
            }
            Some(subscriber) => {
                let current = &subscriber.streams;
                let subscribe: Vec<Value> = wants
                    .iter()
                    .filter(|w| {
                        !current
                            .iter()
                            .any(|s| s.feed == w.feed && s.feed_mid == w.feed_mid)
                    })
                    .map(|w| json!({"feed": w.feed, "mid": w.feed_mid}))
                    .collect();
                let unsubscribe: Vec<Value> = current
                    .iter()
                    .filter(|s| {
                        !wants
                            .iter()
                            .any(|w| s.feed == w.feed && s.feed_mid == w.feed_mid)
                    })
                    .map(|s| json!({"sub_mid": s.mid}))
                    .collect();
                let handle = subscriber.handle;
                let mut update = serde_json::Map::new();
                update.insert("request".to_owned(), json!("update"));
                if !subscribe.is_empty() {
                    update.insert("subscribe".to_owned(), Value::Array(subscribe));
                }
                if !unsubscribe.is_empty() {
                    update.insert("unsubscribe".to_owned(), Value::Array(unsubscribe));
                }
                if update.len() > 1 {
                    Some(self.request(handle, Value::Object(update)).await?)
                } else {
                    None
                }
            }
        };
        if let Some(event) = event {
            self.on_subscriber_event(&event).await?;
        }
        self.configure_substreams(&wants).await
    }

    /// Sends `body` on `handle` and waits for the plugin's answer.
    async fn request(&mut self, handle: u64, body: Value) -> Result<Value, TargetError> {
        match self.session.message(handle, body, None).await? {
            Answer::Pending(transaction) => {
                let deadline = self.deadline();
                self.events.answer(&transaction, deadline).await
            }
            Answer::Done(data) => Ok(json!({"plugindata": {"data": data}})),
        }
    }

    /// Asks Janus for the substream each subscribed video wants, where it changed.
    async fn configure_substreams(&mut self, wants: &[Want]) -> Result<(), TargetError> {
        let Some(subscriber) = self.subscriber.as_mut() else {
            return Ok(());
        };
        let mut streams = Vec::new();
        for stream in &mut subscriber.streams {
            let wanted = wants
                .iter()
                .find(|w| w.feed == stream.feed && w.feed_mid == stream.feed_mid)
                .and_then(|w| w.substream);
            if wanted.is_some() && wanted != stream.substream {
                stream.substream = wanted;
                streams.push(json!({"mid": stream.mid, "substream": wanted}));
            }
        }
        if streams.is_empty() {
            return Ok(());
        }
        let handle = subscriber.handle;
        self.request(handle, json!({"request": "configure", "streams": streams}))
            .await
            .map(drop)
    }

    /// An event of the subscriber handle: a new stream layout, and an offer to answer.
    async fn on_subscriber_event(&mut self, event: &Value) -> Result<(), TargetError> {
        let Some(handle) = self.subscriber.as_ref().map(|s| s.handle) else {
            return Ok(());
        };
        let layout = plugin_data(event)
            .and_then(|d| d.get("streams"))
            .and_then(Value::as_array)
            .cloned();
        let Some(offer) = jsep_sdp(event, "offer").map(Description::parse) else {
            if let Some(layout) = layout {
                self.set_layout(&layout, None);
            }
            return Ok(());
        };
        let Some(local) = self.receiver.clone() else {
            return Ok(());
        };
        self.sdp_version += 1;
        let answer = sdp::subscriber_answer(&offer, &local, self.sdp_session, self.sdp_version);
        let jsep = json!({"type": "answer", "sdp": answer});
        match self
            .session
            .message(handle, json!({"request": "start"}), Some(jsep))
            .await?
        {
            Answer::Pending(transaction) => {
                let deadline = self.deadline();
                self.events.answer(&transaction, deadline).await?;
            }
            Answer::Done(_) => {}
        }
        if let Some(layout) = layout {
            self.set_layout(&layout, Some(&offer));
        }
        let ready = self.subscriber.as_ref().is_some_and(|s| s.remote.is_some());
        if !ready {
            let candidates = collect_candidates(&mut self.events, handle, self.timeout).await?;
            let remote = offer.remote_transport(&candidates)?;
            if let Some(subscriber) = self.subscriber.as_mut() {
                subscriber.remote = Some(remote);
            }
            self.out.push_back(TargetEvent::Other {
                class: SUBSCRIBER_READY.to_owned(),
                message: json!({"handle": handle}),
            });
        }
        let forwarded = self
            .subscribed_streams()
            .iter()
            .filter(|s| s.kind == MediaKind::Video)
            .map(|s| video_source_name(&s.endpoint_id))
            .collect();
        self.out.push_back(TargetEvent::ForwardedSources(forwarded));
        Ok(())
    }

    /// Replaces the subscription's streams with Janus's `streams` layout (active ones),
    /// with SSRCs and payload types from `offer` when there is one.
    fn set_layout(&mut self, layout: &[Value], offer: Option<&Description>) {
        let Some(subscriber) = self.subscriber.as_mut() else {
            return;
        };
        let previous = std::mem::take(&mut subscriber.streams);
        for entry in layout {
            if !entry.get("active").and_then(Value::as_bool).unwrap_or(true) {
                continue;
            }
            let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
            let (Some(mid), Some(feed), Some(feed_mid)) = (
                text("mid"),
                entry.get("feed_id").and_then(Value::as_u64),
                text("feed_mid"),
            ) else {
                continue;
            };
            let kind = match text("type").as_deref() {
                Some("audio") => MediaKind::Audio,
                Some("video") => MediaKind::Video,
                _ => continue,
            };
            let old = previous.iter().find(|s| s.mid == mid);
            let section = offer.and_then(|o| {
                o.sections
                    .iter()
                    .find(|s| s.mid.as_deref() == Some(mid.as_str()))
            });
            let pick = |from_offer: Option<u32>, from_old: Option<u32>| from_offer.or(from_old);
            subscriber.streams.push(SubscribedStream {
                endpoint_id: text("feed_display").unwrap_or_else(|| feed.to_string()),
                kind,
                feed,
                feed_mid,
                ssrc: pick(
                    section.and_then(sdp::Section::media_ssrc),
                    old.and_then(|s| s.ssrc),
                ),
                rtx_ssrc: pick(
                    section.and_then(sdp::Section::rtx_ssrc),
                    old.and_then(|s| s.rtx_ssrc),
                ),
                payload_type: section
                    .and_then(sdp::Section::codec_payload_type)
                    .or(old.and_then(|s| s.payload_type)),
                rtx_payload_type: section
                    .and_then(sdp::Section::rtx_payload_type)
                    .or(old.and_then(|s| s.rtx_payload_type)),
                substream: old.filter(|s| s.feed == feed).and_then(|s| s.substream),
                mid,
            });
        }
        if let Some(offer) = offer {
            subscriber.extensions.clear();
            for section in &offer.sections {
                for extension in &section.extmaps {
                    if !subscriber.extensions.contains(extension) {
                        subscriber.extensions.push(extension.clone());
                    }
                }
            }
        }
    }

    /// Handles one session event; returns whether the view must be re-applied.
    async fn on_event(&mut self, event: Value) -> Result<bool, TargetError> {
        let kind = event
            .get("janus")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let from = sender(&event);
        let subscriber = self.subscriber.as_ref().map(|s| s.handle);
        if kind == "event" && from == Some(self.publisher) {
            let Some(data) = plugin_data(&event) else {
                return Ok(false);
            };
            let mut changed = false;
            for publisher in data
                .get("publishers")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(Publisher::parse)
                .filter(|p| p.feed != self.feed)
            {
                self.out.push_back(TargetEvent::EndpointConnectivity {
                    endpoint: publisher.endpoint_id.clone(),
                    active: true,
                });
                match self
                    .publishers
                    .iter_mut()
                    .find(|p| p.feed == publisher.feed)
                {
                    Some(known) => *known = publisher,
                    None => self.publishers.push(publisher),
                }
                changed = true;
            }
            for key in ["unpublished", "leaving", "kicked"] {
                if let Some(feed) = data.get(key).and_then(Value::as_u64) {
                    if let Some(index) = self.publishers.iter().position(|p| p.feed == feed) {
                        let gone = self.publishers.remove(index);
                        self.out.push_back(TargetEvent::EndpointConnectivity {
                            endpoint: gone.endpoint_id,
                            active: false,
                        });
                        changed = true;
                    }
                }
            }
            if !changed {
                self.out.push_back(other(&kind, event.clone()));
            }
            return Ok(changed);
        }
        if kind == "event" && from.is_some() && from == subscriber {
            self.on_subscriber_event(&event).await?;
            return Ok(false);
        }
        match kind.as_str() {
            // Candidates after the first exchange (Janus keeps its transport): nothing new.
            "trickle" => {}
            "timeout" | "detached" if from.is_none() || from == Some(self.publisher) => {
                self.closed = true;
                self.out.push_back(other(&kind, event));
            }
            _ => self.out.push_back(other(&kind, event)),
        }
        Ok(false)
    }
}

/// A Janus message as [`TargetEvent::Other`], classed `janus.<kind>`.
fn other(kind: &str, message: Value) -> TargetEvent {
    TargetEvent::Other {
        class: format!("janus.{kind}"),
        message,
    }
}

impl ViewChannel for JanusChannel {
    async fn set_view(&mut self, view: &View) -> Result<(), TargetError> {
        self.view = Some(view.clone());
        self.apply().await
    }

    async fn next_event(&mut self) -> Result<Option<TargetEvent>, TargetError> {
        loop {
            if let Some(event) = self.out.pop_front() {
                return Ok(Some(event));
            }
            if self.closed {
                return Ok(None);
            }
            let Some(event) = self.events.next().await else {
                self.closed = true;
                continue;
            };
            if self.on_event(event).await? {
                self.apply().await?;
            }
        }
    }

    async fn close(&mut self) -> Result<(), TargetError> {
        if let Some(handle) = self.subscriber.as_ref().map(|s| s.handle) {
            let _ = self
                .session
                .message(handle, json!({"request": "leave"}), None)
                .await;
        }
        self.closed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn urls_and_substreams() {
        let config =
            JanusConfig::from_url("http://10.99.0.1:8088/janus", &mut rand::rng()).unwrap();
        assert_eq!(config.address.port(), 8088);
        assert_eq!(config.base_path, "/janus");
        assert!(JanusConfig::from_url("https://x/janus", &mut rand::rng()).is_err());
        assert_eq!(substream_for(720, 3), 2);
        assert_eq!(substream_for(1080, 2), 1);
        assert_eq!(substream_for(360, 3), 1);
        assert_eq!(substream_for(180, 3), 0);
        assert_eq!(substream_for(720, 1), 0);
    }

    #[test]
    fn publishers_parse_from_janus_events() {
        let value = json!({"id": 42, "display": "abcd0001", "streams": [
            {"type": "audio", "mid": "0", "codec": "opus"},
            {"type": "video", "mid": "1", "codec": "vp8", "simulcast": true},
            {"type": "data", "mid": "2"},
            {"type": "video", "mid": "3", "disabled": true}]});
        let publisher = Publisher::parse(&value).unwrap();
        assert_eq!(publisher.feed, 42);
        assert_eq!(publisher.endpoint_id, "abcd0001");
        assert_eq!(
            publisher.streams,
            vec![
                ("0".into(), MediaKind::Audio),
                ("1".into(), MediaKind::Video)
            ]
        );
    }
}
