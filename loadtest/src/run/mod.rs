//! One run: participants join the meeting on a target over the ramp-up, media flows for
//! the measured window, the node is observed, and a [`RunReport`] comes out.
//!
//! Everything runs on the calling thread inside a [`tokio::task::LocalSet`] on a
//! current-thread runtime (see [`run_blocking`]): the participants' driver, one signalling
//! task per simulated person (join, then its control channel), and the sampler.
//!
//! The targets differ in the join path only ([`TargetOptions`]): through Colibri2 a person
//! is one participant (one transport that sends and receives; the view follows the node's
//! dominant-speaker events); through Janus's VideoRoom a person is two, a sender on the
//! publisher transport and a receiver on the subscriber transport whose SSRCs are Janus's own
//! (set from the subscription whenever it changes), and the view follows the scenario's
//! speaker schedule (Janus has no dominant-speaker events). Through WHIP/WHEP a person is a
//! publisher transport (one WHIP session, if it sends anything) and one receiving transport
//! per watched stream (one WHEP session each, opened and closed as the view changes), all
//! measured together by a view of its own ([`MeetingApp::add_view`]). Media, measurement,
//! observation and the report are shared.

pub mod camera;
pub mod floor;
pub mod meeting;
pub mod node;
pub mod sender_estimate;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use relais_bwe::BweConfig;
use relais_transport::dtls_srtp::NodeCertificate;
use relais_transport::ice::IceConfig;

use rand::{Rng, SeedableRng};

use crate::impair::ImpairmentConfig;
use crate::measure::{
    evaluate, Bound, ExpectedStreams, LatencyHistogram, LossyCriteria, MeasureConfig, NtpEpoch,
    ReceiverMeasurements, RunMeasurements, StreamKind,
};
use crate::media::{
    derive_seed, AudioConfig, AudioSource, ExtensionIds, ReplayCapture, ReplayConfig, ReplaySource,
    RtpWriter, RtxStream, SdesTag, SpeakerSchedule, VideoCodec, VideoConfig, VideoSource,
};
use crate::participant::driver::{bind, impairment_seed};
use crate::participant::{
    Driver, Participant, ParticipantConfig, ParticipantId, ProbePadding, SendEstimateConfig,
};
use crate::report::{
    CriterionOutcome, LatencyMs, LoadGeneratorTotals, NodePoint, NodeTotals, RatePoint,
    ReceiveTotals, RunReport,
};
use crate::scenario::Scenario;
use crate::target::colibri::{
    video_payload_types, video_source_name, ColibriConfig, ColibriTarget, ABS_CAPTURE_TIME_ID,
    AUDIO_LEVEL_ID, OPUS_PT, TRANSPORT_CC_ID,
};
use crate::target::janus::{
    JanusConfig, JanusTarget, SubscribedStream, SUBSCRIBER_H264_PT, SUBSCRIBER_READY,
    SUBSCRIBER_VP8_PT,
};
use crate::target::sdp::MediaKind as SdpKind;
use crate::target::sdp::{AUDIO_MID, VIDEO_MID};
use crate::target::whip::{
    watched_streams, WatchedStream, WhipConfig, WhipTarget, MID_ID as WHIP_MID_ID,
    REPAIRED_RID_ID as WHIP_REPAIRED_RID_ID, RID_ID as WHIP_RID_ID,
};
use crate::target::{JoinRequest, Target, TargetError, TargetEvent, View, ViewChannel};

use camera::{Camera, CameraLayer};
use meeting::{MediaFormat, MeetingApp, MemberMedia, SdesTags, StreamOwner};
use node::{NodeSample, NodeSampler};
use sender_estimate::CameraEstimate;

/// The RTX payload type of Janus 1.1's subscription offers (it numbers VP8 96 and its RTX 97
/// whatever the publisher used). The receiving participant must know it before the offer
/// arrives: RTX payload types are never NACKed and always verified.
const JANUS_SUBSCRIBER_RTX_PT: u8 = 97;
/// Where a camera sender's bandwidth estimate starts (libwebrtc's default start rate); its
/// first probes (3× and 6×) and those that follow find what the path carries.
const SENDER_START_BPS: u64 = 300_000;
/// Probe padding SSRCs: this plus the participant's index (outside the media blocks).
const PROBE_SSRC_BASE: u32 = 0x5000_0000;

/// How often a Janus participant checks the speaker schedule for a new speaker to put on
/// stage (a view change costs Janus a renegotiation, so at most this often, and only when
/// the speaker changed).
const JANUS_VIEW_INTERVAL: Duration = Duration::from_secs(1);

/// How often a WHIP/WHEP receiver checks which streams its view wants (publishers came or
/// went, the speaker on stage changed); a change opens or closes WHEP sessions, and a
/// session that could not be opened is tried again.
const WHIP_VIEW_INTERVAL: Duration = Duration::from_secs(1);

/// Why a run could not be carried out (a failed criterion is not an error: see
/// [`RunReport::passed`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The media models refused the scenario.
    #[error("media: {0}")]
    Media(#[from] crate::media::MediaError),
    /// No participant could join.
    #[error("no participant joined: {0}")]
    NobodyJoined(String),
    /// A local resource failed.
    #[error("{0}")]
    Local(String),
}

/// The SFU a run loads.
#[derive(Debug, Clone)]
pub enum TargetOptions {
    /// relais through Colibri2 (its private API) and the bridge channel.
    RelaisColibri {
        /// The node's private HTTP listener.
        private_api: SocketAddr,
        /// Its bearer token, if it requires one.
        token: Option<String>,
    },
    /// Janus 1.1's VideoRoom through its HTTP API (a room of its own for the run).
    Janus {
        /// The HTTP API, `http://IP:PORT/janus`.
        url: String,
    },
    /// relais (or any WHIP/WHEP server) through WHIP (publish) and WHEP (watch).
    Whip {
        /// The base URL of the `whip/` and `whep/` routes, `http://IP:PORT[/PATH]`.
        url: String,
        /// The bearer token the server requires, if any.
        token: Option<String>,
    },
}

impl TargetOptions {
    /// The target's name in the report.
    pub fn report_name(&self) -> &'static str {
        match self {
            Self::RelaisColibri { .. } => "relais (Colibri2)",
            Self::Janus { .. } => "janus (videoroom)",
            Self::Whip { .. } => "relais (WHIP/WHEP)",
        }
    }
}

/// The target of a run, built from [`TargetOptions`].
#[derive(Debug, Clone)]
enum RunTarget {
    Colibri(Rc<ColibriTarget>),
    Janus(Rc<JanusTarget>),
    Whip(Rc<WhipTarget>),
}

impl RunTarget {
    fn new(
        options: &TargetOptions,
        scenario: &Scenario,
        video_codec: VideoCodec,
    ) -> Result<Self, RunError> {
        Ok(match options {
            TargetOptions::RelaisColibri { private_api, token } => {
                let mut config = ColibriConfig::new(*private_api, &mut rand::rng());
                config.token = token.clone();
                Self::Colibri(Rc::new(ColibriTarget::new(config)))
            }
            TargetOptions::Janus { url } => {
                let mut config = JanusConfig::from_url(url, &mut rand::rng())
                    .map_err(|e| RunError::Local(format!("Janus URL: {e}")))?;
                config.video_codec = video_codec;
                Self::Janus(Rc::new(JanusTarget::new(config)))
            }
            TargetOptions::Whip { url, token } => {
                let mut config = WhipConfig::from_url(url)
                    .map_err(|e| RunError::Local(format!("WHIP URL: {e}")))?;
                config.token = token.clone();
                config.rids = scenario
                    .video
                    .layers
                    .iter()
                    .map(|l| l.rid.clone())
                    .collect();
                config.video_codec = video_codec;
                Self::Whip(Rc::new(WhipTarget::new(config)))
            }
        })
    }

    async fn leave(&self, endpoint_id: &str) -> Result<(), TargetError> {
        match self {
            Self::Colibri(target) => target.leave(endpoint_id).await,
            Self::Janus(target) => target.leave(endpoint_id).await,
            Self::Whip(target) => target.leave(endpoint_id).await,
        }
    }

    async fn end(&self) -> Result<(), TargetError> {
        match self {
            Self::Colibri(target) => target.end().await,
            Self::Janus(target) => target.end().await,
            Self::Whip(target) => target.end().await,
        }
    }

    /// Starts `who`'s signalling task.
    fn spawn(&self, shared: &Rc<Shared>, who: Identity) -> tokio::task::JoinHandle<()> {
        match self {
            Self::Colibri(target) => tokio::task::spawn_local(participant_task(
                Rc::clone(shared),
                who,
                Rc::clone(target),
            )),
            Self::Janus(target) => tokio::task::spawn_local(janus_person_task(
                Rc::clone(shared),
                who,
                Rc::clone(target),
            )),
            Self::Whip(target) => tokio::task::spawn_local(whip_person_task(
                Rc::clone(shared),
                who,
                Rc::clone(target),
            )),
        }
    }
}

/// What every signalling task of a run shares.
#[derive(Debug)]
struct Shared {
    scenario: Scenario,
    driver: Driver<MeetingApp>,
    certificate: NodeCertificate,
    local_ip: IpAddr,
    roster: Rc<RefCell<Roster>>,
    start: Instant,
    replay: Option<Arc<ReplayCapture>>,
    /// Who speaks when (Janus participants put the speaker on stage by it).
    schedule: SpeakerSchedule,
    /// The impairment between every participant and the node.
    impairment: Option<ImpairmentConfig>,
    /// Which directions it applies to.
    impairment_direction: ImpairmentDirection,
    /// Only the participants with a scenario index below this are impaired (`None`: all).
    impaired_participants: Option<u32>,
    /// Whether cameras follow their sender's bandwidth estimate.
    sender_estimate: bool,
    /// Payload types, extension ids and codec of the participants' media.
    format: MediaFormat,
    /// Whether receivers read the first packet of each video frame (`--no-layer-measure`).
    measure_layers: bool,
}

impl Shared {
    /// The payload types whose frame starts a receiver decrypts: `video` unless layer
    /// measurement is off.
    fn frame_start_payload_types(&self, video: &[u8]) -> Vec<u8> {
        if self.measure_layers {
            video.to_vec()
        } else {
            Vec::new()
        }
    }

    /// What `who` sends, starting now.
    fn media(&self, who: &Identity) -> Result<MemberMedia, String> {
        self.media_following(who, self.sender_estimate)
    }

    /// What `who` sends, starting now, its camera following its sender's estimate only if
    /// `estimate` (a transport that keeps none must not: its camera would stay at the start
    /// rate's layers).
    fn media_following(&self, who: &Identity, estimate: bool) -> Result<MemberMedia, String> {
        let now = Instant::now().saturating_duration_since(self.start);
        let mut media = media_for(&self.scenario, who, now, self.replay.as_ref())
            .map_err(|e| format!("media: {e}"))?;
        if !estimate {
            // No estimate arrives (the transport keeps none): allowing every layer keeps
            // the camera at what the sender constraints allow, and the layers it sends are
            // still reported.
            media.estimate = media.video.as_ref().map(|camera| {
                let kbps: Vec<u32> = camera.layers().iter().map(|l| l.kbps).collect();
                CameraEstimate::new(&kbps, 0, u64::MAX)
            });
        }
        Ok(media)
    }

    /// The send-side estimate of `who`'s transport, if its camera follows one.
    fn send_estimate(&self, who: &Identity) -> Option<SendEstimateConfig> {
        sender_estimate_config(who, self.format.video_rtx_pt).filter(|_| self.sender_estimate)
    }

    /// Puts the run's impairment on `participant` (before its transport starts, so ICE and
    /// DTLS cross it too).
    fn impair(&self, participant: ParticipantId, who: &Identity) {
        if self
            .impaired_participants
            .is_some_and(|count| who.index >= count)
        {
            return;
        }
        if let Some(config) = self.impairment {
            let seed = impairment_seed(self.scenario.seed, u64::from(who.index));
            let none = ImpairmentConfig::default();
            let (up, down) = match self.impairment_direction {
                ImpairmentDirection::Both => (config, config),
                ImpairmentDirection::Up => (config, none),
                ImpairmentDirection::Down => (none, config),
            };
            self.driver.set_impairment(participant, up, down, seed);
        }
    }
}

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The meeting.
    pub scenario: Scenario,
    /// Where.
    pub target: TargetOptions,
    /// The address the participants' sockets bind to (loopback or a namespace's).
    pub local_ip: IpAddr,
    /// The node's process, to sample its CPU and RSS.
    pub node_pid: Option<u32>,
    /// The node's metrics listener (`GET /metrics`), if it has one.
    pub node_metrics: Option<SocketAddr>,
    /// Print a status line this often (none: quiet).
    pub progress: Option<Duration>,
    /// Video senders replay this capture's video streams instead of the synthetic model.
    pub replay: Option<Arc<ReplayCapture>>,
    /// Impairment between every participant and the node, each direction (the lossy
    /// scenario's `[network]`, or `--impair`); `None` or transparent: none.
    pub impairment: Option<ImpairmentConfig>,
    /// How the impairment was given, for the report (e.g. `loss=2%,delay=40ms`).
    pub impairment_label: String,
    /// Which directions the impairment applies to.
    pub impairment_direction: ImpairmentDirection,
    /// Impair only the first this many participants (by join order; `None`: every one), to
    /// compare impaired and unimpaired senders in one run.
    pub impaired_participants: Option<u32>,
    /// Cameras follow their sender's own bandwidth estimate (transport-cc feedback and REMB
    /// from the node, with probing), as browsers do; `false`: every camera sends the layers
    /// the node's sender constraints allow whatever the estimate (a fixed offered load).
    pub sender_estimate: bool,
    /// Whether receivers decrypt the first packet of each video frame to measure keyframe
    /// heights and layer switches.
    pub measure_layers: bool,
}

/// Which way the impairment acts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ImpairmentDirection {
    /// Participant to node and node to participant.
    #[default]
    Both,
    /// Participant to node only (what the node receives).
    Up,
    /// Node to participant only (what the node sends).
    Down,
}

/// One participant's identity in the run.
#[derive(Debug, Clone)]
struct Identity {
    /// Unique in the run (newcomers of the churn scenario continue after the first ones).
    index: u32,
    /// The participant's place in the speaker schedule (a newcomer takes its
    /// predecessor's).
    slot: u32,
    endpoint_id: String,
    audio_ssrc: Option<u32>,
    video_ssrcs: Vec<u32>,
    rtx_ssrcs: Vec<u32>,
}

fn identity(scenario: &Scenario, index: u32, slot: u32) -> Identity {
    // SSRCs in blocks of 8 per participant; the endpoint id mixes the seed in so two runs
    // against one node do not collide.
    let base = 0x1000_0000_u32.wrapping_add(index.wrapping_mul(8));
    let layers = if slot < scenario.video_senders {
        scenario.video.layers.len() as u32
    } else {
        0
    };
    let id = derive_seed(scenario.seed, index, 0xE1D) as u32;
    Identity {
        index,
        slot,
        endpoint_id: format!("{id:08x}"),
        audio_ssrc: (slot < scenario.audio_senders()).then_some(base),
        video_ssrcs: (1..=layers).map(|l| base + l).collect(),
        rtx_ssrcs: (1..=layers).map(|l| base + 4 + l).collect(),
    }
}

fn media_for(
    scenario: &Scenario,
    who: &Identity,
    start: Duration,
    replay: Option<&Arc<ReplayCapture>>,
) -> Result<MemberMedia, RunError> {
    let (video_pt, video_rtx_pt) = video_payload_types(video_codec(scenario)?);
    let audio = match who.audio_ssrc {
        Some(ssrc) => Some(AudioSource::new(
            AudioConfig::from_scenario(&scenario.audio, ssrc, OPUS_PT)?,
            derive_seed(scenario.seed, who.index, 1),
            start,
        )?),
        None => None,
    };
    let video = if who.video_ssrcs.is_empty() {
        None
    } else {
        let config = VideoConfig::from_scenario(&scenario.video, &who.video_ssrcs, video_pt)?;
        let seed = derive_seed(scenario.seed, who.index, 2);
        Some(match replay {
            None => Camera::Synthetic(VideoSource::new(config, seed, start)?),
            Some(_) if config.codec != VideoCodec::Vp8 => {
                return Err(RunError::Local(
                    "--replay replays VP8 captures only; the scenario's codec is not VP8".into(),
                ))
            }
            Some(capture) => {
                // Video only: the scenario's speaker schedule keeps driving the audio.
                let replay_config = ReplayConfig::from_media(None, Some(&config));
                let layers = config
                    .layers
                    .iter()
                    .map(|l| CameraLayer {
                        ssrc: l.ssrc,
                        height: u32::from(l.height),
                        kbps: l.kbps,
                    })
                    .collect();
                let source = ReplaySource::new(Arc::clone(capture), &replay_config, seed, start)
                    .map_err(|e| RunError::Local(format!("replay: {e}")))?;
                Camera::Replay {
                    source: Box::new(source),
                    layers,
                }
            }
        })
    };
    let rtx = who
        .rtx_ssrcs
        .iter()
        .map(|&ssrc| RtxStream::new(ssrc, video_rtx_pt, 0))
        .collect();
    // What a browser's allocator gives audio before video: its bitrate (RTP overhead is
    // left to the estimate's margin).
    let reserved_bps = audio
        .as_ref()
        .map_or(0, |_| u64::from(scenario.audio.bitrate_kbps) * 1000);
    let estimate = video.as_ref().map(|camera| {
        let kbps: Vec<u32> = camera.layers().iter().map(|l| l.kbps).collect();
        CameraEstimate::new(&kbps, reserved_bps, SENDER_START_BPS)
    });
    Ok(MemberMedia {
        audio,
        video,
        estimate,
        rtx,
        index: who.slot,
        video_source_name: (!who.video_ssrcs.is_empty())
            .then(|| video_source_name(&who.endpoint_id)),
    })
}

/// The scenario's video codec.
fn video_codec(scenario: &Scenario) -> Result<VideoCodec, RunError> {
    Ok(VideoCodec::from_name(&scenario.video.codec)?)
}

/// The heights a receiver's view asks for, as the heights of the simulcast layers the node
/// should forward: the highest layer within each limit (the lowest layer when none fits, as
/// the node never forwards less than that to a receiver that wants the source).
fn view_layer_heights(scenario: &Scenario) -> (u32, u32) {
    let within = |max: u32| {
        let heights = scenario.video.layers.iter().map(|l| l.height);
        heights
            .clone()
            .filter(|&h| h <= max)
            .max()
            .or_else(|| heights.min())
            .unwrap_or(0)
    };
    (
        within(scenario.view.on_stage_max_height),
        within(scenario.view.thumbnail_max_height),
    )
}

/// Runs `options` on a new current-thread runtime on this thread.
pub fn run_blocking(options: RunOptions) -> Result<RunReport, RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Local(format!("tokio runtime: {e}")))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(options))
}

/// Shared between the signalling tasks and the run. A person is known by its receiving
/// participant (the only one with Colibri2).
#[derive(Debug, Default)]
struct Roster {
    /// Who is in the meeting, and since when.
    present: HashMap<ParticipantId, (Identity, Instant)>,
    /// Endpoint id by participant.
    endpoints: HashMap<ParticipantId, String>,
    /// Participant by endpoint id.
    by_endpoint: HashMap<String, ParticipantId>,
    /// A receiving participant's other transports, when a person has several (Janus: the
    /// publisher; WHIP/WHEP: the publisher and one per watched stream).
    partners: HashMap<ParticipantId, Vec<ParticipantId>>,
    /// Endpoint ids that send video.
    video_endpoints: Vec<String>,
    /// The endpoint id holding each place of the speaker schedule that sends video.
    speaker_slots: HashMap<u32, String>,
    join_failures: Vec<String>,
    /// Participants that left (churn).
    left: u32,
}

impl Roster {
    /// Takes `participant`'s person out; returns its participants (receiver first).
    fn remove(&mut self, participant: ParticipantId) -> Vec<ParticipantId> {
        self.present.remove(&participant);
        if let Some(endpoint) = self.endpoints.remove(&participant) {
            self.by_endpoint.remove(&endpoint);
        }
        self.left += 1;
        std::iter::once(participant)
            .chain(self.partners.remove(&participant).unwrap_or_default())
            .collect()
    }

    /// Adds a transport of the person measured by `receiver`.
    fn add_partner(&mut self, receiver: ParticipantId, partner: ParticipantId) {
        self.partners.entry(receiver).or_default().push(partner);
    }

    /// Removes a transport of the person measured by `receiver` (a WHEP session closed).
    fn remove_partner(&mut self, receiver: ParticipantId, partner: ParticipantId) {
        if let Some(list) = self.partners.get_mut(&receiver) {
            list.retain(|p| *p != partner);
        }
    }

    /// Registers a person who joined: `receiver` measures, `sender` (if another
    /// participant) sends.
    fn add(&mut self, who: &Identity, receiver: ParticipantId, sender: Option<ParticipantId>) {
        self.present.insert(receiver, (who.clone(), Instant::now()));
        self.endpoints.insert(receiver, who.endpoint_id.clone());
        self.by_endpoint.insert(who.endpoint_id.clone(), receiver);
        if let Some(sender) = sender {
            self.add_partner(receiver, sender);
        }
    }

    /// Whether the person of receiving participant `m` is connected: its transports are up.
    fn connected(&self, app: &MeetingApp, m: ParticipantId) -> bool {
        app.is_connected(m)
            && self
                .partners
                .get(&m)
                .is_none_or(|others| others.iter().all(|&p| app.is_connected(p)))
    }
}

/// A person leaves: the node is told, its transports close, what it measured is kept.
async fn leave_task(
    participants: Vec<ParticipantId>,
    endpoint_id: String,
    target: RunTarget,
    driver: Driver<MeetingApp>,
    departed: Rc<RefCell<Vec<ReceiverMeasurements>>>,
) {
    let _ = tokio::time::timeout(Duration::from_secs(10), target.leave(&endpoint_id)).await;
    for participant in participants {
        let _ = driver.remove(participant);
        if let Some(Some(measurements)) = driver.with(|app, _| app.remove_member(participant)) {
            departed.borrow_mut().push(measurements);
        }
    }
}

/// Runs a scenario; must be called inside a `LocalSet` (see [`run_blocking`]).
pub async fn run(options: RunOptions) -> Result<RunReport, RunError> {
    let scenario = options.scenario.clone();
    let start = Instant::now();
    let started_unix_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let epoch = NtpEpoch::from_system_time(SystemTime::now())
        .ok_or_else(|| RunError::Local("the system clock is before 1970".into()))?;
    let ramp_up = Duration::from_secs(u64::from(scenario.ramp_up_s));
    let window = Duration::from_secs(u64::from(scenario.duration_s));
    // Streams count from a little after the last join: a joiner needs a moment for ICE,
    // DTLS and its first keyframes.
    let measure_from = ramp_up + Duration::from_secs(2).min(window / 4);
    let end = ramp_up + window;

    // Janus's VideoRoom does not accept abs-capture-time (so latency cannot be measured
    // through it) and negotiates transport-cc on video only; ids and payload types are the
    // same for both targets.
    // A WHIP publisher names its m-lines and simulcast encodings in every packet (mid, rid),
    // as browsers do, and sends no transport-wide numbers (relais does not negotiate
    // transport-cc with publishers).
    let janus = matches!(options.target, TargetOptions::Janus { .. });
    let whip = matches!(options.target, TargetOptions::Whip { .. });
    let abs_capture_time = (!janus).then_some(ABS_CAPTURE_TIME_ID);
    let writer = RtpWriter::new(ExtensionIds {
        audio_level: scenario.audio.audio_level_ext.then_some(AUDIO_LEVEL_ID),
        transport_cc: (!whip).then_some(TRANSPORT_CC_ID),
        abs_capture_time,
        mid: whip.then_some(WHIP_MID_ID),
        rid: whip.then_some(WHIP_RID_ID),
        repaired_rid: whip.then_some(WHIP_REPAIRED_RID_ID),
    })?;
    let sdes = if whip {
        let mut rids = [None; 3];
        for (slot, layer) in rids.iter_mut().zip(&scenario.video.layers) {
            *slot = Some(SdesTag::rid(&layer.rid)?);
        }
        SdesTags {
            audio_mid: Some(SdesTag::mid(AUDIO_MID)?),
            video_mid: Some(SdesTag::mid(VIDEO_MID)?),
            rids,
        }
    } else {
        SdesTags::default()
    };
    let codec = video_codec(&scenario)?;
    let (video_pt, video_rtx_pt) = video_payload_types(codec);
    let format = MediaFormat {
        audio_pt: OPUS_PT,
        video_pt,
        video_rtx_pt,
        video_codec: codec,
        abs_capture_time_id: abs_capture_time,
        audio_transport_cc: !janus,
        sdes,
    };
    // A packet from one participant to another crosses two impairment stages (the sender's
    // up and the receiver's down): latency is what the node adds on top.
    let impairment_delay = options.impairment.filter(|c| !c.is_transparent()).map_or(
        Duration::ZERO,
        |c| match options.impairment_direction {
            ImpairmentDirection::Both => c.delay * 2,
            ImpairmentDirection::Up | ImpairmentDirection::Down => c.delay,
        },
    );
    let measure = MeasureConfig {
        measure_from,
        impairment_delay,
        ..MeasureConfig::default()
    };
    let mut app = MeetingApp::new(
        start,
        epoch,
        format,
        writer,
        SpeakerSchedule::from_scenario(&scenario),
        measure,
    );
    app.set_read_frame_starts(options.measure_layers);
    let driver = Driver::new(app);
    let timer_loop = tokio::task::spawn_local({
        let driver = driver.clone();
        async move { driver.run().await }
    });

    let target = RunTarget::new(&options.target, &scenario, codec)?;
    let certificate = NodeCertificate::generate()
        .map_err(|e| RunError::Local(format!("DTLS certificate: {e}")))?;
    let roster: Rc<RefCell<Roster>> = Rc::default();
    for index in 0..scenario.video_senders {
        let endpoint = identity(&scenario, index, index).endpoint_id;
        let mut r = roster.borrow_mut();
        r.video_endpoints.push(endpoint.clone());
        r.speaker_slots.insert(index, endpoint);
    }
    let shared = Rc::new(Shared {
        scenario: scenario.clone(),
        driver: driver.clone(),
        certificate,
        local_ip: options.local_ip,
        roster: Rc::clone(&roster),
        start,
        replay: options.replay.clone(),
        schedule: SpeakerSchedule::from_scenario(&scenario),
        impairment: options.impairment.filter(|c| !c.is_transparent()),
        impairment_direction: options.impairment_direction,
        impaired_participants: options.impaired_participants,
        sender_estimate: options.sender_estimate,
        format,
        measure_layers: options.measure_layers,
    });

    // ---- joins, spread over the ramp-up ----
    let mut signalling: HashMap<u32, tokio::task::JoinHandle<()>> = HashMap::new();
    // Churn: after the ramp-up, every `interval` one participant who stayed long enough
    // leaves and a newcomer takes its place (and its role).
    let churn_interval = scenario
        .churn
        .as_ref()
        .filter(|c| c.leaves_per_minute > 0)
        .map(|c| Duration::from_secs(60) / c.leaves_per_minute);
    let mut next_churn = churn_interval.map(|i| ramp_up + i);
    let mut churn_rng = rand::rngs::StdRng::seed_from_u64(derive_seed(scenario.seed, 0, 0xC4));
    let mut next_index = scenario.participants;
    let departed: Rc<RefCell<Vec<ReceiverMeasurements>>> = Rc::default();
    let participants = scenario.participants;
    let sampler = options
        .node_pid
        .map(|pid| NodeSampler::new(pid, options.node_metrics, start));
    let mut node_samples: Vec<NodeSample> = Vec::new();
    let mut window_start: Option<(NodeSample, Duration)> = None;
    let self_cpu_at = |_: ()| self_cpu();
    let mut progress_due = options.progress.map(|p| start + p);
    // On a terminal, a progress bar with the live figures; elsewhere (CI, a pipe) a status
    // line every `progress` interval.
    let bar = options
        .progress
        .filter(|_| std::io::stderr().is_terminal())
        .map(|_| progress_bar(end));
    let mut next_join = 0u32;
    let mut rate_points: Vec<RatePoint> = Vec::new();
    let mut window_latency = LatencyHistogram::new();
    let mut last_sample = start;
    let mut self_cpu_window_start: Option<Duration> = None;
    loop {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= end {
            break;
        }
        // Joins due by now.
        while next_join < participants {
            let due = if participants <= 1 {
                Duration::ZERO
            } else {
                ramp_up.mul_f64(f64::from(next_join) / f64::from(participants))
            };
            if due > elapsed {
                break;
            }
            let who = identity(&scenario, next_join, next_join);
            signalling.insert(next_join, target.spawn(&shared, who));
            next_join += 1;
        }
        if let (Some(due), Some(interval), Some(churn)) =
            (next_churn, churn_interval, scenario.churn.as_ref())
        {
            if elapsed >= due {
                next_churn = Some(due + interval);
                let stay_min = Duration::from_secs(u64::from(churn.stay_s[0]));
                let candidates: Vec<(ParticipantId, Identity)> = roster
                    .borrow()
                    .present
                    .iter()
                    .filter(|(_, (_, joined))| now.saturating_duration_since(*joined) >= stay_min)
                    .map(|(id, (who, _))| (*id, who.clone()))
                    .collect();
                if !candidates.is_empty() {
                    let pick = churn_rng.random_range(0..candidates.len());
                    if let Some((leaver, who)) = candidates.get(pick).cloned() {
                        if let Some(task) = signalling.remove(&who.index) {
                            task.abort();
                        }
                        let leavers = roster.borrow_mut().remove(leaver);
                        tokio::task::spawn_local(leave_task(
                            leavers,
                            who.endpoint_id.clone(),
                            target.clone(),
                            driver.clone(),
                            Rc::clone(&departed),
                        ));
                        let newcomer = identity(&scenario, next_index, who.slot);
                        if who.slot < scenario.video_senders {
                            let mut r = roster.borrow_mut();
                            r.video_endpoints.retain(|e| *e != who.endpoint_id);
                            r.video_endpoints.push(newcomer.endpoint_id.clone());
                            r.speaker_slots
                                .insert(who.slot, newcomer.endpoint_id.clone());
                        }
                        signalling.insert(next_index, target.spawn(&shared, newcomer));
                        next_index += 1;
                    }
                }
            }
        }
        // Once a second: the node, and the receive figures.
        if now.saturating_duration_since(last_sample) >= Duration::from_secs(1) {
            last_sample = now;
            if let Some(sampler) = &sampler {
                if let Ok(sample) = sampler.sample().await {
                    if window_start.is_none() && elapsed >= measure_from {
                        window_start = Some((sample, elapsed));
                        self_cpu_window_start = self_cpu_at(());
                    }
                    node_samples.push(sample);
                }
            } else if self_cpu_window_start.is_none() && elapsed >= measure_from {
                self_cpu_window_start = self_cpu_at(());
            }
            let seconds = driver.with(|app, _| app.take_seconds()).unwrap_or_default();
            let present = roster.borrow().endpoints.len() as u32;
            for (second, figures) in seconds {
                let at = Duration::from_secs(second);
                if at >= measure_from {
                    window_latency.add(&figures.latency);
                }
                rate_points.push(rate_point(second, &figures, present));
            }
        }
        if let Some(due) = progress_due {
            if now >= due {
                progress_due = options.progress.map(|p| due + p);
                let connected = driver
                    .with(|app, _| {
                        let r = roster.borrow();
                        app.members()
                            .filter(|&m| app.receives(m) && r.connected(app, m))
                            .count()
                    })
                    .unwrap_or(0);
                let last = rate_points.last().copied().unwrap_or_default();
                let cpu = node_cpu_pct(&node_samples);
                let latency = if abs_capture_time.is_some() {
                    format!("p99 {:.1} ms", last.latency_p99_ms)
                } else {
                    "latency not measured".to_owned()
                };
                let status = format!(
                    "participants {connected}/{} connected, received {:.0} pkt/s {:.1} Mbit/s, loss {:.3} %, {latency}{}",
                    participants,
                    last.packets_per_s,
                    last.bits_per_s / 1e6,
                    last.loss_pct,
                    cpu.map(|c| format!(", node CPU {c:.0} %")).unwrap_or_default(),
                );
                match &bar {
                    Some(bar) => {
                        bar.set_position(elapsed.as_secs());
                        bar.set_message(status);
                    }
                    None => eprintln!("[{:>4.0}s] {status}", elapsed.as_secs_f64()),
                }
            }
        }
        if let Some(bar) = &bar {
            bar.set_position(elapsed.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let elapsed = start.elapsed();
    // ---- the window is over: measure, then leave ----
    let final_sample = match &sampler {
        Some(s) => s.sample().await.ok(),
        None => None,
    };
    let self_cpu_end = self_cpu();
    let report_end = elapsed.min(end);
    let collected = driver.with(|app, out| {
        app.finish(report_end);
        let stats = app.stats();
        let r = roster.borrow();
        // People, by their receiving participant.
        let members: Vec<ParticipantId> = app.members().filter(|&m| app.receives(m)).collect();
        let connected: Vec<ParticipantId> = members
            .iter()
            .copied()
            .filter(|&m| r.connected(app, m))
            .collect();
        let mut participant_stats = Vec::new();
        for m in app.members() {
            if let Some(p) = out.participant(m) {
                participant_stats.push(*p.stats());
            }
        }
        let seconds = app.take_seconds();
        let senders = app.sender_layers(report_end);
        (
            stats,
            members,
            connected,
            participant_stats,
            seconds,
            senders,
        )
    });
    let Some((meeting_stats, members, connected, participant_stats, seconds, senders)) = collected
    else {
        return Err(RunError::Local("the driver's state was busy".into()));
    };
    if std::env::var_os("LOADTEST_DEBUG").is_some() {
        eprintln!("DEBUG meeting {meeting_stats:?}");
        let nacks: u64 = participant_stats
            .iter()
            .map(|s| s.rtcp_received_by_kind.nacks)
            .sum();
        let plis: u64 = participant_stats
            .iter()
            .map(|s| s.rtcp_received_by_kind.plis)
            .sum();
        eprintln!("DEBUG participants received NACK {nacks} PLI {plis}");
    }
    for (second, figures) in seconds {
        if Duration::from_secs(second) >= measure_from {
            window_latency.add(&figures.latency);
        }
        rate_points.push(rate_point(second, &figures, members.len() as u32));
    }
    if members.is_empty() {
        let failures = roster.borrow().join_failures.join("; ");
        return Err(RunError::NobodyJoined(failures));
    }
    let video_present = {
        let r = roster.borrow();
        r.video_endpoints
            .iter()
            .filter(|e| r.by_endpoint.get(*e).is_some_and(|p| connected.contains(p)))
            .count() as u32
    };
    let mut run_measurements = RunMeasurements::new(Duration::from_secs(1));
    let audio_present = connected.len() as u32; // upper bound; audio is not a criterion
    {
        let r = roster.borrow();
        let _ = driver.with(|app, _| {
            for &m in &connected {
                let sends_video = r
                    .endpoints
                    .get(&m)
                    .is_some_and(|e| r.video_endpoints.contains(e));
                let others = video_present.saturating_sub(u32::from(sends_video));
                let expected = ExpectedStreams {
                    video: others.min(scenario.view.last_n),
                    audio: 0,
                };
                if let Some(measurements) = app.measurements(m) {
                    if std::env::var_os("LOADTEST_DEBUG").is_some() {
                        for (ssrc, stream) in measurements.streams() {
                            let stats = stream.stats();
                            if stats.longest_freeze > Duration::from_millis(500) {
                                eprintln!("DEBUG rx {} ssrc {ssrc:08x} {stats:?}", m.0);
                            }
                        }
                    }
                    run_measurements.add_receiver(m.0, measurements, expected);
                }
            }
        });
    }
    let _ = audio_present;
    // A participant that left stopped receiving then: its streams are not ended at the end
    // of the run (that would count the rest of the run as a freeze).
    for (n, measurements) in departed.borrow().iter().enumerate() {
        let id = u32::MAX - n as u32;
        run_measurements.add_receiver(id, measurements, ExpectedStreams::default());
    }
    if std::env::var_os("LOADTEST_DEBUG").is_some() {
        // Which kind the loss is in: upstream audio loss is not recoverable (browsers do not
        // NACK Opus), video loss is.
        for (kind, stats) in [
            ("video", &run_measurements.video),
            ("audio", &run_measurements.audio),
        ] {
            eprintln!(
                "DEBUG received {kind}: expected {} lost {} recovered {} (in time {}) \
                 reordered {} duplicates {} residual {}",
                stats.expected,
                stats.lost,
                stats.recovered,
                stats.recovered_in_time,
                stats.reordered,
                stats.duplicates,
                stats.residual(),
            );
        }
    }
    let lossy = scenario
        .network
        .apply
        .then(|| LossyCriteria::from_network(&scenario.network));
    let criteria: Vec<CriterionOutcome> =
        evaluate(&scenario.pass, lossy.as_ref(), &run_measurements)
            .into_iter()
            .map(|c| CriterionOutcome {
                name: c.name.to_owned(),
                bound: match c.bound {
                    Bound::AtMost => "at most".to_owned(),
                    Bound::AtLeast => "at least".to_owned(),
                },
                limit: c.limit,
                measured: c.measured,
                passed: c.passed,
            })
            .collect();
    let total = run_measurements.total();
    let window_s = report_end
        .saturating_sub(measure_from)
        .as_secs_f64()
        .max(1e-3);
    let received_in_window: u64 = rate_points
        .iter()
        .filter(|p| p.at_s >= measure_from.as_secs_f64())
        .map(|p| p.packets_per_s as u64)
        .sum();
    let latency = window_latency.summary();
    let receive = ReceiveTotals {
        packets: total.packets,
        retransmissions: total.retransmissions,
        bytes: total.bytes,
        expected: total.expected,
        lost: total.lost,
        recovered: total.recovered,
        loss_pct: total.loss_pct(),
        residual_loss_pct: total.residual_loss_pct(),
        worst_receiver_loss_pct: run_measurements.worst_loss_pct(),
        latency: LatencyMs {
            samples: latency.samples,
            p50: latency.p50_us as f64 / 1000.0,
            p90: latency.p90_us as f64 / 1000.0,
            p99: latency.p99_us as f64 / 1000.0,
            max: latency.max_us as f64 / 1000.0,
        },
        streams_received_pct: run_measurements.streams_received_pct(),
        longest_freeze_ms: run_measurements.longest_freeze().as_secs_f64() * 1000.0,
        frames: total.frames,
        layer_switches: total.layer_switches,
        time_at_height_ms: run_measurements.time_at_height_ms(),
        at_view_height_pct: run_measurements.video.at_view_height_pct(),
        view_switches: run_measurements.video.view_switches,
        view_switch_ms_mean: run_measurements
            .video
            .view_switch_delay_mean()
            .map(|d| d.as_secs_f64() * 1000.0),
        view_switch_ms_max: (run_measurements.video.view_switches > 0)
            .then_some(run_measurements.video.view_switch_delay_max.as_secs_f64() * 1000.0),
        receivers_with_view_heights: run_measurements.view_heights().0,
        receivers_at_view_heights: run_measurements.view_heights().1,
    };
    let mut load_generator = LoadGeneratorTotals {
        joined: members.len() as u32,
        connected: connected.len() as u32,
        failed: roster.borrow().join_failures.len() as u32 + meeting_stats.failed as u32,
        ..LoadGeneratorTotals::default()
    };
    for s in &participant_stats {
        load_generator.srtp_verified += s.srtp_verified;
        load_generator.srtp_verify_failed += s.srtp_verify_failed;
        load_generator.frame_starts_decrypted += s.frame_starts_decrypted;
    }
    if let Some(driver_stats) = driver.stats() {
        load_generator.send_dropped = driver_stats.send_dropped;
        load_generator.datagrams_sent = driver_stats.datagrams_sent;
        load_generator.datagrams_received = driver_stats.datagrams_received;
    }
    if let (Some(a), Some(b)) = (self_cpu_window_start, self_cpu_end) {
        load_generator.cpu_s = b.saturating_sub(a).as_secs_f64();
        load_generator.cpu_pct = 100.0 * load_generator.cpu_s / window_s;
    }
    let node = match (window_start, final_sample) {
        (Some((first, at)), Some(last)) => {
            let span = (last.at_s - at.as_secs_f64()).max(1e-3);
            let cpu_s = (last.cpu_s - first.cpu_s).max(0.0);
            let (forwarded, source) = match (first.packets_sent, last.packets_sent) {
                (Some(a), Some(b)) => ((b - a).max(0.0) as u64, "metrics"),
                _ => (received_in_window, "receivers"),
            };
            let rss_max = node_samples
                .iter()
                .chain(std::iter::once(&last))
                .map(|s| s.rss_bytes)
                .max()
                .unwrap_or(0);
            Some(NodeTotals {
                cpu_s,
                cpu_pct: 100.0 * cpu_s / span,
                rss_max_mib: rss_max as f64 / 1_048_576.0,
                rss_end_mib: last.rss_bytes as f64 / 1_048_576.0,
                forwarded_packets: forwarded,
                egress_pps: forwarded as f64 / span,
                us_per_forwarded_packet: if forwarded > 0 {
                    cpu_s * 1e6 / forwarded as f64
                } else {
                    0.0
                },
                cpu_s_per_million_packets: if forwarded > 0 {
                    cpu_s * 1e6 / forwarded as f64
                } else {
                    0.0
                },
                forwarded_source: source.to_owned(),
            })
        }
        _ => None,
    };
    let mut node_series = Vec::new();
    for pair in node_samples.windows(2) {
        if let [a, b] = pair {
            let dt = (b.at_s - a.at_s).max(1e-3);
            let egress = match (a.packets_sent, b.packets_sent) {
                (Some(x), Some(y)) => (y - x).max(0.0) / dt,
                // No metrics (Janus): what the receivers got in the last whole second.
                _ => {
                    let second = (b.at_s.floor() - 1.0).max(0.0);
                    rate_points
                        .iter()
                        .find(|p| p.at_s == second)
                        .map_or(0.0, |p| p.packets_per_s)
                }
            };
            node_series.push(NodePoint {
                at_s: b.at_s,
                cpu_pct: 100.0 * (b.cpu_s - a.cpu_s).max(0.0) / dt,
                rss_mib: b.rss_bytes as f64 / 1_048_576.0,
                egress_pps: egress,
            });
        }
    }
    let passed = criteria.iter().all(|c| c.passed) && !criteria.is_empty();
    let report = RunReport {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        scenario: scenario.name.clone(),
        target: options.target.report_name().to_owned(),
        started_unix_s,
        participants,
        video_senders: scenario.video_senders,
        ramp_up_s: ramp_up.as_secs_f64(),
        duration_s: window.as_secs_f64(),
        impairment: options.impairment_label.clone(),
        criteria,
        passed,
        receive,
        load_generator,
        node,
        floor: None,
        node_series,
        receive_series: rate_points,
        senders,
    };

    // ---- leave, bounded ----
    for task in signalling.into_values() {
        task.abort();
    }
    let endpoints: Vec<String> = roster.borrow().endpoints.values().cloned().collect();
    let leave = async {
        for endpoint in &endpoints {
            let _ = target.leave(endpoint).await;
        }
        let _ = target.end().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), leave).await;
    driver.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(2), timer_loop).await;
    Ok(report)
}

fn rate_point(second: u64, figures: &meeting::SecondFigures, participants: u32) -> RatePoint {
    let summary = figures.latency.summary();
    RatePoint {
        at_s: second as f64,
        packets_per_s: figures.packets as f64,
        bits_per_s: figures.bytes as f64 * 8.0,
        loss_pct: if figures.packets > 0 {
            100.0 * figures.gaps as f64 / (figures.packets + figures.gaps) as f64
        } else {
            0.0
        },
        latency_p50_ms: summary.p50_us as f64 / 1000.0,
        latency_p99_ms: summary.p99_us as f64 / 1000.0,
        participants,
    }
}

/// The run's progress bar: seconds of ramp-up and window, and the live figures.
fn progress_bar(end: Duration) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(end.as_secs());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} s  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn node_cpu_pct(samples: &[NodeSample]) -> Option<f64> {
    let [.., a, b] = samples else {
        return None;
    };
    let dt = (b.at_s - a.at_s).max(1e-3);
    Some(100.0 * (b.cpu_s - a.cpu_s).max(0.0) / dt)
}

/// This process's CPU time (all threads), from `/proc/self/stat`.
fn self_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    crate::measure::parse_stat_cpu(&stat, 100).ok()
}

/// A participant with `config` on a new socket of `shared.local_ip`.
async fn new_participant(
    shared: &Shared,
    config: ParticipantConfig,
) -> Result<(Participant, tokio::net::UdpSocket), String> {
    let socket = bind(shared.local_ip)
        .await
        .map_err(|e| format!("socket: {e}"))?;
    let local = socket.local_addr().map_err(|e| format!("socket: {e}"))?;
    let participant = Participant::new(
        config,
        local,
        shared.certificate.clone(),
        &mut rand::rng(),
        Instant::now(),
    )
    .map_err(|e| format!("participant: {e}"))?;
    Ok((participant, socket))
}

/// The send-side estimate of a camera sender (`None` for the others: nothing to adapt):
/// libwebrtc's start rate, probing with padding on a stream of its own (RTX payload type
/// `rtx_pt`, the camera's).
fn sender_estimate_config(who: &Identity, rtx_pt: u8) -> Option<SendEstimateConfig> {
    (!who.video_ssrcs.is_empty()).then(|| SendEstimateConfig {
        bwe: BweConfig {
            initial_bps: SENDER_START_BPS,
            ..BweConfig::default()
        },
        probe_padding: Some(ProbePadding {
            ssrc: PROBE_SSRC_BASE.wrapping_add(who.index),
            payload_type: rtx_pt,
        }),
    })
}

/// `who`'s sources, sent from `transport`.
fn join_request(
    who: &Identity,
    transport: crate::participant::LocalTransport,
    codec: VideoCodec,
) -> JoinRequest {
    JoinRequest {
        endpoint_id: who.endpoint_id.clone(),
        transport,
        audio_ssrc: who.audio_ssrc,
        video: (!who.video_ssrcs.is_empty()).then(|| crate::target::VideoSource {
            ssrcs: who.video_ssrcs.clone(),
            rtx_ssrcs: who.rtx_ssrcs.clone(),
            codec,
        }),
    }
}

/// The view of a receiver with `stage` (an endpoint id, not `me`) on stage.
fn view_with_stage(scenario: &Scenario, me: &str, stage: Option<&str>) -> View {
    let on_stage = stage
        .filter(|s| *s != me)
        .map(|s| vec![video_source_name(s)])
        .unwrap_or_default();
    View::from_scenario(&scenario.view, on_stage)
}

/// One participant's signalling: join, connect, then follow its bridge channel (the view
/// follows the dominant speaker; the node's sender constraints limit its camera).
async fn participant_task(shared: Rc<Shared>, who: Identity, target: Rc<ColibriTarget>) {
    let scenario = &shared.scenario;
    let driver = &shared.driver;
    let roster = &shared.roster;
    let fail = |what: String| roster.borrow_mut().join_failures.push(what);
    let config = ParticipantConfig {
        transport_cc_id: Some(TRANSPORT_CC_ID),
        rtcp_ssrc: who.audio_ssrc.unwrap_or(0x2000_0000 + who.index),
        rtx_payload_types: vec![shared.format.video_rtx_pt],
        send_estimate: shared.send_estimate(&who),
        frame_start_payload_types: shared.frame_start_payload_types(&[shared.format.video_pt]),
        ..ParticipantConfig::default()
    };
    let (participant, socket) = match new_participant(&shared, config).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let request = join_request(
        &who,
        participant.local_transport(),
        shared.format.video_codec,
    );
    let joined = match target.join(&request).await {
        Ok(j) => j,
        Err(e) => return fail(format!("join: {e}")),
    };
    let media = match shared.media(&who) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let Some(id) = driver.add(participant, socket) else {
        return fail("driver busy".into());
    };
    shared.impair(id, &who);
    let _ = driver.with(|app, _| app.add_member(id, media));
    roster.borrow_mut().add(&who, id, None);
    let remote = joined.remote.clone();
    match driver.with_participant(id, |p| p.set_remote(Instant::now(), remote)) {
        Some(Ok(())) => {}
        Some(Err(e)) => return fail(format!("transport: {e}")),
        None => return fail("driver busy".into()),
    }
    let mut channel = match target.open_channel(&joined).await {
        Ok(c) => c,
        Err(e) => return fail(format!("bridge channel: {e}")),
    };
    let view_of = |speaker: Option<&str>| view_with_stage(scenario, &who.endpoint_id, speaker);
    let video_endpoints: Vec<String> = roster.borrow().video_endpoints.clone();
    let (stage_height, thumbnail_height) = view_layer_heights(scenario);
    // What the receiver measures its streams' heights against follows every view sent.
    let measure_view = |view: &View| {
        let _ = driver.with(|app, out| {
            app.set_view_heights(
                id,
                out.now(),
                view.on_stage_sources.first().map(String::as_str),
                stage_height,
                thumbnail_height,
            );
        });
    };
    let first_view = view_of(None);
    if channel.set_view(&first_view).await.is_err() {
        return fail("bridge channel: the first view was refused".into());
    }
    measure_view(&first_view);
    let mut stage: Option<String> = None;
    loop {
        match channel.next_event().await {
            Ok(Some(TargetEvent::DominantSpeaker { endpoint, .. })) => {
                // As Jitsi Meet's stage view: the dominant speaker's camera on stage.
                if scenario.view.on_stage > 0
                    && video_endpoints.contains(&endpoint)
                    && stage.as_deref() != Some(endpoint.as_str())
                {
                    let view = view_of(Some(&endpoint));
                    stage = Some(endpoint);
                    if channel.set_view(&view).await.is_err() {
                        break;
                    }
                    measure_view(&view);
                }
            }
            Ok(Some(TargetEvent::ForwardedSources(sources))) => {
                let _ = driver.with(|app, _| app.set_forwarded(id, &sources));
            }
            Ok(Some(TargetEvent::SenderSourceConstraints { max_height, .. })) => {
                let _ = driver.with(|app, out| app.constrain_video(id, max_height, out.now()));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

/// The camera a Janus client following the active speaker shows on stage at `t` (since the
/// run's start): the first current speaker of the schedule, in slot order, who sends video
/// and is not `me`. Janus has no dominant-speaker events; the schedule is what the speakers'
/// audio levels would tell.
fn scheduled_stage(shared: &Shared, me: &str, t: Duration) -> Option<String> {
    if shared.scenario.view.on_stage == 0 {
        return None;
    }
    let roster = shared.roster.borrow();
    shared
        .schedule
        .speakers_at(t)
        .filter_map(|slot| roster.speaker_slots.get(&slot))
        .find(|endpoint| endpoint.as_str() != me)
        .cloned()
}

/// The SSRCs Janus sends a subscription's streams with, and whose they are.
fn subscription_owners(streams: &[SubscribedStream]) -> HashMap<u32, StreamOwner> {
    let mut owners = HashMap::with_capacity(streams.len() * 2);
    for stream in streams {
        let Some(ssrc) = stream.ssrc else {
            continue;
        };
        let kind = match stream.kind {
            SdpKind::Audio => StreamKind::Audio,
            SdpKind::Video => StreamKind::Video,
            SdpKind::Other => continue,
        };
        owners.insert(
            ssrc,
            StreamOwner {
                kind,
                repairs: None,
                sender: stream.feed,
            },
        );
        if let (StreamKind::Video, Some(rtx)) = (kind, stream.rtx_ssrc) {
            owners.insert(
                rtx,
                StreamOwner {
                    kind,
                    repairs: Some(ssrc),
                    sender: stream.feed,
                },
            );
        }
    }
    owners
}

/// One person's signalling on Janus: a sending participant on the publisher transport and
/// a receiving one on the subscriber transport (both ICE controlling: Janus is ICE lite).
/// The channel is polled for as long as the person stays (the subscription follows
/// publishers joining and leaving); the receiver's SSRCs follow the subscription, and the
/// view the speaker schedule (checked every [`JANUS_VIEW_INTERVAL`], changed only when the
/// speaker did).
async fn janus_person_task(shared: Rc<Shared>, who: Identity, target: Rc<JanusTarget>) {
    let scenario = &shared.scenario;
    let driver = &shared.driver;
    let roster = &shared.roster;
    let fail = |what: String| roster.borrow_mut().join_failures.push(what);
    let sender_config = ParticipantConfig {
        ice: IceConfig::controlling(),
        transport_cc_id: Some(TRANSPORT_CC_ID),
        rtcp_ssrc: who.audio_ssrc.unwrap_or(0x2000_0000 + who.index),
        rtx_payload_types: vec![shared.format.video_rtx_pt],
        send_estimate: shared.send_estimate(&who),
        ..ParticipantConfig::default()
    };
    let receiver_config = ParticipantConfig {
        ice: IceConfig::controlling(),
        // Janus sends no transport-wide numbers to subscribers it would want feedback on.
        transport_cc_id: None,
        rtcp_ssrc: 0x3000_0000 + who.index,
        rtx_payload_types: vec![JANUS_SUBSCRIBER_RTX_PT],
        frame_start_payload_types: shared
            .frame_start_payload_types(&[SUBSCRIBER_VP8_PT, SUBSCRIBER_H264_PT]),
        ..ParticipantConfig::default()
    };
    let (sender, send_socket) = match new_participant(&shared, sender_config).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let (receiver, receive_socket) = match new_participant(&shared, receiver_config).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    target.set_receiver(&who.endpoint_id, receiver.local_transport());
    let request = join_request(&who, sender.local_transport(), shared.format.video_codec);
    let joined = match target.join(&request).await {
        Ok(j) => j,
        Err(e) => return fail(format!("join: {e}")),
    };
    let media = match shared.media(&who) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let (Some(send_id), Some(receive_id)) = (
        driver.add(sender, send_socket),
        driver.add(receiver, receive_socket),
    ) else {
        return fail("driver busy".into());
    };
    shared.impair(send_id, &who);
    shared.impair(receive_id, &who);
    let _ = driver.with(|app, _| {
        app.add_sender(send_id, media);
        app.add_receiver(receive_id, who.slot);
    });
    roster.borrow_mut().add(&who, receive_id, Some(send_id));
    let remote = joined.remote.clone();
    match driver.with_participant(send_id, |p| p.set_remote(Instant::now(), remote)) {
        Some(Ok(())) => {}
        Some(Err(e)) => return fail(format!("transport: {e}")),
        None => return fail("driver busy".into()),
    }
    let mut channel = match target.open_channel(&joined).await {
        Ok(c) => c,
        Err(e) => return fail(format!("Janus channel: {e}")),
    };
    let since_start = || Instant::now().saturating_duration_since(shared.start);
    let mut stage = scheduled_stage(&shared, &who.endpoint_id, since_start());
    let view_of = |stage: Option<&str>| view_with_stage(scenario, &who.endpoint_id, stage);
    if channel.set_view(&view_of(stage.as_deref())).await.is_err() {
        return fail("Janus channel: the first view was refused".into());
    }
    let mut subscribed: Vec<SubscribedStream> = Vec::new();
    let mut next_check = Instant::now() + JANUS_VIEW_INTERVAL;
    let (stage_height, thumbnail_height) = view_layer_heights(scenario);
    // The receiver's streams are measured against its view: the stage camera is the
    // subscription's stream of the staged publisher.
    let measure_view = |subscribed: &[SubscribedStream], stage: Option<&str>| {
        let on_stage = stage.and_then(|endpoint| {
            subscribed
                .iter()
                .find(|s| s.kind == SdpKind::Video && s.endpoint_id == endpoint)
                .and_then(|s| s.ssrc)
        });
        let _ = driver.with(|app, out| {
            app.set_view_heights_by_ssrc(
                receive_id,
                out.now(),
                on_stage,
                stage_height,
                thumbnail_height,
            );
        });
    };
    loop {
        match channel
            .next_event_until(tokio::time::Instant::from_std(next_check))
            .await
        {
            Ok(Some(TargetEvent::Other { class, .. })) if class == SUBSCRIBER_READY => {
                let Some(remote) = channel.subscriber_remote().cloned() else {
                    continue;
                };
                match driver.with_participant(receive_id, |p| p.set_remote(Instant::now(), remote))
                {
                    Some(Ok(())) => {}
                    Some(Err(e)) => return fail(format!("transport: {e}")),
                    None => return fail("driver busy".into()),
                }
            }
            Ok(Some(_)) => {}
            Ok(None) if channel.is_closed() => break,
            Ok(None) => {}
            Err(_) => break,
        }
        let now = Instant::now();
        if now >= next_check {
            next_check = now + JANUS_VIEW_INTERVAL;
            let speaker = scheduled_stage(&shared, &who.endpoint_id, since_start());
            if speaker != stage {
                stage = speaker;
                if channel.set_view(&view_of(stage.as_deref())).await.is_err() {
                    break;
                }
                measure_view(&subscribed, stage.as_deref());
            }
        }
        // The subscription changed (a view change, a publisher came or went): the receiver's
        // SSRCs follow it.
        if channel.subscribed_streams() != subscribed.as_slice() {
            subscribed = channel.subscribed_streams().to_vec();
            if std::env::var_os("LOADTEST_DEBUG").is_some() {
                eprintln!("DEBUG janus {} subscribed {subscribed:?}", who.endpoint_id);
            }
            let owners = subscription_owners(&subscribed);
            let _ = driver.with(|app, _| app.set_receiver_streams(receive_id, owners));
            measure_view(&subscribed, stage.as_deref());
        }
    }
}

/// A WHEP session a person has open.
#[derive(Debug)]
struct Watching {
    /// The stream (its publisher's endpoint id).
    stream: String,
    /// The session's transport.
    participant: ParticipantId,
    /// Its resource on the server.
    location: String,
    /// What the server sends on it.
    streams: Vec<WatchedStream>,
}

/// The SSRCs of a person's WHEP sessions, and whose they are (each session's streams are
/// told apart by its transport's id).
fn watching_owners(sessions: &[Watching]) -> HashMap<u32, StreamOwner> {
    let mut owners = HashMap::with_capacity(sessions.len() * 3);
    for session in sessions {
        let sender = u64::from(session.participant.0);
        for stream in &session.streams {
            let kind = match stream.kind {
                SdpKind::Audio => StreamKind::Audio,
                SdpKind::Video => StreamKind::Video,
                SdpKind::Other => continue,
            };
            owners.insert(
                stream.ssrc,
                StreamOwner {
                    kind,
                    repairs: None,
                    sender,
                },
            );
            if let Some(rtx) = stream.rtx_ssrc {
                owners.insert(
                    rtx,
                    StreamOwner {
                        kind,
                        repairs: Some(stream.ssrc),
                        sender,
                    },
                );
            }
        }
    }
    owners
}

/// Opens a WHEP session on `stream` for `who`, measured by `view`.
async fn open_whep(
    shared: &Shared,
    who: &Identity,
    target: &WhipTarget,
    view: ParticipantId,
    stream: &str,
) -> Result<Watching, String> {
    let config = ParticipantConfig {
        ice: IceConfig::controlling(),
        // relais numbers what it sends a viewer transport-wide and estimates from the
        // feedback, as for a browser.
        transport_cc_id: Some(TRANSPORT_CC_ID),
        rtcp_ssrc: 0x3000_0000 + who.index,
        // relais sends a viewer the payload types it offered: the publishers' numbers.
        rtx_payload_types: vec![shared.format.video_rtx_pt],
        // Frame starts are read for the person's view (keyframe heights, layer switches).
        frame_start_payload_types: shared.frame_start_payload_types(&[shared.format.video_pt]),
        ..ParticipantConfig::default()
    };
    let (participant, socket) = new_participant(shared, config).await?;
    let (session, streams) = target
        .watch(&who.endpoint_id, stream, &participant.local_transport())
        .await
        .map_err(|e| format!("WHEP: {e}"))?;
    let Some(id) = shared.driver.add(participant, socket) else {
        let _ = target.stop(&who.endpoint_id, &session.location).await;
        return Err("driver busy".into());
    };
    shared.impair(id, who);
    let _ = shared.driver.with(|app, _| app.add_view_session(id, view));
    shared.roster.borrow_mut().add_partner(view, id);
    let watching = Watching {
        stream: stream.to_owned(),
        participant: id,
        location: session.location,
        streams,
    };
    let refused = match shared
        .driver
        .with_participant(id, |p| p.set_remote(Instant::now(), session.remote))
    {
        Some(Ok(())) => return Ok(watching),
        Some(Err(e)) => format!("transport: {e}"),
        None => "driver busy".to_owned(),
    };
    // Not left half open: a transport that cannot connect would keep the person from
    // counting as connected.
    close_whep(shared, who, target, view, watching).await;
    Err(refused)
}

/// Closes one of `who`'s WHEP sessions (its stream left the view).
async fn close_whep(
    shared: &Shared,
    who: &Identity,
    target: &WhipTarget,
    view: ParticipantId,
    session: Watching,
) {
    let _ = target.stop(&who.endpoint_id, &session.location).await;
    let _ = shared.driver.remove(session.participant);
    let _ = shared
        .driver
        .with(|app, _| app.remove_member(session.participant));
    shared
        .roster
        .borrow_mut()
        .remove_partner(view, session.participant);
}

/// One person's signalling through WHIP/WHEP: a WHIP session on a transport of its own if
/// it sends anything (ICE controlling: the server is ICE lite), and one WHEP session per
/// stream its view watches ([`watched_streams`]; the camera on stage follows the speaker
/// schedule as for Janus), re-checked every [`WHIP_VIEW_INTERVAL`] for as long as the
/// person stays. What the sessions receive is measured by the person's view, a member with
/// no transport whose id (`u32::MAX - index`) no driver slot reaches.
async fn whip_person_task(shared: Rc<Shared>, who: Identity, target: Rc<WhipTarget>) {
    let scenario = &shared.scenario;
    let driver = &shared.driver;
    let roster = &shared.roster;
    let fail = |what: String| roster.borrow_mut().join_failures.push(what);
    let view = ParticipantId(u32::MAX - who.index);
    let sender = if who.audio_ssrc.is_some() || !who.video_ssrcs.is_empty() {
        let config = ParticipantConfig {
            ice: IceConfig::controlling(),
            transport_cc_id: None,
            rtcp_ssrc: who.audio_ssrc.unwrap_or(0x2000_0000 + who.index),
            rtx_payload_types: vec![shared.format.video_rtx_pt],
            ..ParticipantConfig::default()
        };
        let (participant, socket) = match new_participant(&shared, config).await {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        let request = join_request(
            &who,
            participant.local_transport(),
            shared.format.video_codec,
        );
        let session = match target.publish(&request).await {
            Ok(s) => s,
            Err(e) => return fail(format!("WHIP: {e}")),
        };
        // The publisher's transport keeps no send-side estimate (relais negotiates no
        // transport-cc with WHIP publishers): its camera sends every layer, as before
        // cameras followed an estimate.
        let media = match shared.media_following(&who, false) {
            Ok(m) => m,
            Err(e) => return fail(e),
        };
        let Some(id) = driver.add(participant, socket) else {
            return fail("driver busy".into());
        };
        shared.impair(id, &who);
        let _ = driver.with(|app, _| app.add_sender(id, media));
        match driver.with_participant(id, |p| p.set_remote(Instant::now(), session.remote)) {
            Some(Ok(())) => {}
            Some(Err(e)) => return fail(format!("transport: {e}")),
            None => return fail("driver busy".into()),
        }
        Some(id)
    } else {
        None
    };
    let _ = driver.with(|app, _| app.add_view(view, who.slot));
    roster.borrow_mut().add(&who, view, sender);
    let mut sessions: Vec<Watching> = Vec::new();
    // Streams whose session was refused once: a refusal is reported once, not at every try.
    let mut refused: Vec<String> = Vec::new();
    loop {
        let since_start = Instant::now().saturating_duration_since(shared.start);
        let stage = scheduled_stage(&shared, &who.endpoint_id, since_start);
        let wanted = {
            let view_now = view_with_stage(scenario, &who.endpoint_id, stage.as_deref());
            watched_streams(
                &view_now,
                &roster.borrow().video_endpoints,
                &who.endpoint_id,
            )
        };
        let before = sessions.len();
        let (keep, gone): (Vec<Watching>, Vec<Watching>) = std::mem::take(&mut sessions)
            .into_iter()
            .partition(|s| wanted.contains(&s.stream));
        sessions = keep;
        let mut changed = sessions.len() != before;
        for session in gone {
            close_whep(&shared, &who, &target, view, session).await;
        }
        for stream in &wanted {
            if sessions.iter().any(|s| s.stream == *stream) {
                continue;
            }
            match open_whep(&shared, &who, &target, view, stream).await {
                Ok(session) => {
                    sessions.push(session);
                    changed = true;
                }
                // Tried again at the next check (e.g. the server's session rate limit).
                Err(e) if !refused.contains(stream) => {
                    refused.push(stream.clone());
                    fail(e);
                }
                Err(_) => {}
            }
        }
        if changed {
            let owners = watching_owners(&sessions);
            let _ = driver.with(|app, _| app.set_receiver_streams(view, owners));
        }
        tokio::time::sleep(WHIP_VIEW_INTERVAL).await;
    }
}
